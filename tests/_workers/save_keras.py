"""Trains and saves a model with every Gumbel layer to a `.keras` file, on
the Keras backend `KERAS_BACKEND` names.

Started by `tests/test_training.py` on another backend than its own, which
then loads the file. Usage: `save_keras.py INPUTS.npy OUT_DIR`. Builds one
head per layer class on shared logits (the layers in `inference_mode="mode"`,
and a second `GumbelSoftmax` in `"soft"`), trains it a few steps with
`TemperatureAnnealing` (so the file holds trained weights, annealed and
learned temperatures other than the initial ones, and the noise generators'
state), saves `OUT_DIR/model.keras`, and saves the predictions on the inputs
to `OUT_DIR/expected.npz` (`y_{name}` is the output of the layer `name`)
with the backend's name
and each Gumbel layer's name, temperature and noise generator state.
"""

import inspect
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

LAYER_CLASSES = [
    getattr(keras_gumbel, name) for name in keras_gumbel.__all__
    if inspect.isclass(getattr(keras_gumbel, name))
    and issubclass(getattr(keras_gumbel, name),
                   keras_gumbel.layers.GumbelLayer)]


def build():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(12, name="logits")(inputs)
    categorical = keras.layers.Reshape((3, 4))(h)
    outputs = []
    for i, cls in enumerate(LAYER_CLASSES):
        parameters = inspect.signature(cls).parameters
        # GumbelTopK chooses k = 2 of the 4 classes.
        extra = {"k": 2} if "k" in parameters else {}
        layer = cls(seed=i, inference_mode="mode",
                    name=f"mode_{cls.__name__}", **extra)
        is_categorical = "axis" in parameters
        outputs.append(layer(categorical if is_categorical else h))
    soft = keras_gumbel.GumbelSoftmax(
        seed=99, learn_temperature=True, inference_mode="soft",
        name="soft_GumbelSoftmax")
    outputs.append(soft(categorical))
    return keras.Model(inputs, outputs)


def main(inputs_path, out_dir):
    x = np.load(inputs_path)
    model = build()
    # Trained through a head on all the outputs (the layers sample in
    # training), sharing the model's layers.
    trainer = keras.Model(
        model.inputs, keras.layers.Dense(1)(keras.layers.Concatenate()(
            [keras.layers.Flatten()(y) for y in model.outputs])))
    trainer.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    y = np.random.default_rng(1).standard_normal((len(x), 1))
    trainer.fit(x, y.astype("float32"), batch_size=16, epochs=2,
                verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(
                    rate=0.1, minimum=0.05, update_every=2)])
    model.save(os.path.join(out_dir, "model.keras"))
    predictions = model.predict(x, verbose=0)
    layers = keras_gumbel.find_gumbel_layers(model)
    np.savez(
        os.path.join(out_dir, "expected.npz"),
        backend=keras.backend.backend(),
        names=np.array([layer.name for layer in layers]),
        temperatures=np.array([layer.temperature for layer in layers]),
        states=np.array([keras.ops.convert_to_numpy(
            layer.seed_generator.state).astype("int64") for layer in layers]),
        **{f"y_{name}": np.asarray(p)
           for name, p in zip(model.output_names, predictions)})


if __name__ == "__main__":
    main(*sys.argv[1:])
