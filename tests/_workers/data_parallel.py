"""Data-parallel training on JAX over two CPU devices.

Started by `tests/test_training.py` with `KERAS_BACKEND=jax` and
`XLA_FLAGS=--xla_force_host_platform_device_count=2` (two host devices).
Usage: `data_parallel.py OUT.json`. Trains a model with an annealed
`GumbelSoftmax` and a learned-temperature `GumbelSigmoid` under
`keras.distribution.DataParallel` over both devices, and writes the
devices, the losses, the weights' change, the annealed temperature with
the schedule's value, and the devices the variables live on to `OUT.json`.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

ANNEALING = dict(initial=1.0, rate=0.05, minimum=0.1, update_every=4)


def main(out_path):
    assert keras.backend.backend() == "jax", keras.backend.backend()
    devices = keras.distribution.list_devices("cpu")
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(0)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 6)).astype("float32")
    y = (x @ rng.standard_normal((6, 1))).astype("float32")

    inputs = keras.Input((6,))
    logits = keras.layers.Reshape((2, 4))(
        keras.layers.Dense(8, name="categorical_logits")(inputs))
    annealed = keras_gumbel.GumbelSoftmax(seed=1, name="annealed")
    learned = keras_gumbel.GumbelSigmoid(
        seed=2, temperature=0.7, learn_temperature=True, name="learned")
    features = keras.layers.Concatenate()([
        keras.layers.Flatten()(annealed(logits)),
        learned(keras.layers.Dense(3, name="binary_logits")(inputs))])
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(features))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")

    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    callback = keras_gumbel.TemperatureAnnealing(**ANNEALING)
    history = model.fit(x, y, batch_size=16, epochs=5, shuffle=False,
                        verbose=0, callbacks=[callback])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))

    variable_devices = sorted({
        len(v.value.sharding.device_set) for v in model.variables})
    result = {
        "jax_devices": len(jax.devices()),
        "distribution_devices": len(distribution.device_mesh.devices.ravel()),
        "losses": [float(v) for v in history.history["loss"]],
        "weights_changed": [not np.array_equal(a, b)
                            for a, b in zip(before, after)],
        "step": step,
        "temperature": annealed.temperature,
        "expected_temperature": callback.temperature_at(step),
        "logged_temperatures": [float(v) for v in
                                history.history["temperature"]],
        "learned_temperature": learned.temperature,
        "variable_devices": variable_devices,
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
