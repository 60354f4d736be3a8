"""Two training runs under `keras.utils.set_random_seed` and op determinism.

Usage: `determinism.py OUT.npz`. Op determinism is global and cannot be
turned off, so this runs in its own process, on the Keras backend that
`KERAS_BACKEND` names (TensorFlow's op determinism, PyTorch's deterministic
algorithms; JAX is deterministic on a CPU). Trains the same model twice
(re-seeding before each run) and saves, for each run `r`, its final
variables (`r{r}_var{i}`: weights, temperatures, noise generator states),
two successive training-mode samples of the model (`r{r}_train{k}`), a
sample-mode `predict` (`r{r}_predict`), two draws of the ops with the global
generator (`r{r}_op{k}`) and the temperatures the run trained with.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import ops  # noqa: E402


def run():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 8)).astype("float32")
    y = rng.standard_normal((96, 1)).astype("float32")

    inputs = keras.Input((8,))
    logits = keras.layers.Reshape((3, 4))(keras.layers.Dense(12)(inputs))
    # seed=None: the noise seeds come from the global seed.
    soft = keras_gumbel.GumbelSoftmax(
        learn_temperature=True, name="soft")(logits)
    hard = keras_gumbel.STGumbel(name="hard")(logits)
    bits = keras_gumbel.GumbelSigmoid(name="bits")(
        keras.layers.Dense(4)(inputs))
    features = keras.layers.Concatenate()([
        keras.layers.Flatten()(soft), keras.layers.Flatten()(hard), bits])
    model = keras.Model(inputs, keras.layers.Dense(1)(features))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(
        x, y, batch_size=16, epochs=3, shuffle=True, verbose=0,
        callbacks=[keras_gumbel.TemperatureAnnealing(
            rate=0.05, minimum=0.3, update_every=2)])

    result = {f"var{i}": keras.ops.convert_to_numpy(v)
              for i, v in enumerate(model.variables)}
    result["temperatures"] = np.asarray(history.history["temperature"])
    result["train0"] = keras.ops.convert_to_numpy(model(x, training=True))
    result["train1"] = keras.ops.convert_to_numpy(model(x, training=True))
    result["predict"] = model.predict(x, verbose=0)
    result["op0"] = keras.ops.convert_to_numpy(ops.gumbel_softmax(x))
    result["op1"] = keras.ops.convert_to_numpy(
        ops.gumbel_softmax(x, hard=True))
    return result


def enable_determinism():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def main(out_path):
    enable_determinism()
    saved = {}
    for r in range(2):
        for key, value in run().items():
            saved[f"r{r}_{key}"] = value
    np.savez(out_path, **saved)


if __name__ == "__main__":
    main(sys.argv[1])
