"""A small categorical VAE with keras_gumbel, on synthetic data (no download).

Data: 10 random binary prototypes of 64 pixels, each example one prototype
with 5 % of its pixels flipped. The model encodes an example into 4 categorical
latents of 10 classes, decodes Bernoulli logits, and is trained on the
negative ELBO (reconstruction + KL to the uniform prior) with the temperature
annealed by `TemperatureAnnealing`. At the end it prints the test loss, the
temperature, and how well the most likely code reconstructs the data (5 % of
the pixels are noise, so 0.95 is the best possible).

Run: python examples/quickstart.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import ops as gops  # noqa: E402

LATENTS, CLASSES, PIXELS = 4, 10, 64


PROTOTYPES = np.random.default_rng(1234).random((10, PIXELS)) < 0.5


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    prototypes = PROTOTYPES
    labels = rng.integers(0, 10, size=n)
    flips = rng.random((n, PIXELS)) < 0.05
    return (prototypes[labels] ^ flips).astype("float32")


class NegativeELBO(keras.layers.Layer):
    """Adds the KL term to the model's losses; passes the logits through."""

    def call(self, logits):
        kl = gops.kl_categorical_uniform(logits)
        self.add_loss(tf.reduce_mean(kl))
        return logits


def build_model(seed=0):
    x = keras.Input(shape=(PIXELS,))
    h = keras.layers.Dense(128, activation="relu")(x)
    logits = keras.layers.Reshape((LATENTS, CLASSES))(
        keras.layers.Dense(LATENTS * CLASSES)(h))
    logits = NegativeELBO()(logits)
    z = keras_gumbel.GumbelSoftmax(
        temperature=1.0, seed=seed, inference_mode="mode")(logits)
    h = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(z))
    x_logits = keras.layers.Dense(PIXELS)(h)
    return keras.Model(x, x_logits)


def reconstruction_nats(y_true, y_logits):
    """Bernoulli negative log-likelihood, summed over pixels."""
    return tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(y_true, y_logits), axis=-1)


def main():
    keras.utils.set_random_seed(0)
    x_train, x_test = make_data(4000, seed=0), make_data(1000, seed=1)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=reconstruction_nats)
    model.summary()
    annealing = keras_gumbel.TemperatureAnnealing(
        initial=1.0, rate=1e-3, minimum=0.5, update_every=100, verbose=1)
    history = model.fit(x_train, x_train, batch_size=100, epochs=15,
                        callbacks=[annealing], verbose=2)
    test_loss = model.evaluate(x_test, x_test, verbose=0)
    # "mode" inference: the most likely code, decoded.
    pixels = model.predict(x_test, verbose=0) > 0
    accuracy = float(np.mean(pixels == (x_test > 0.5)))
    print(f"final temperature: {history.history['temperature'][-1]:.4f}")
    print(f"test loss, nats (reconstruction from the most likely code + KL "
          f"to the uniform prior): {test_loss:.2f}")
    print(f"pixels reconstructed from the most likely code: {accuracy:.3f}")


if __name__ == "__main__":
    main()
