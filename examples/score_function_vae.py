"""A categorical VAE trained with a score-function estimator, in `fit`.

The data and the model are those of `examples/quickstart.py` (10 random
binary prototypes of 64 pixels with 5 % of the pixels flipped; 4 latents of
10 classes). Instead of a Gumbel layer, the sample is drawn without a
gradient and the encoder learns from the score function: the reconstruction
term's value times the gradient of `log q(z|x)`, with MuProp's control
variate and NVIL's variance reductions (a moving-average baseline, an
input-dependent baseline network and variance normalization). The KL term
is analytic and keeps its exact gradient.

Run: python examples/score_function_vae.py [--estimator reinforce|nvil|muprop]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gumbel import ops  # noqa: E402
from keras_gumbel import score_function as sf  # noqa: E402

LATENTS, CLASSES, PIXELS = 4, 10, 64
PROTOTYPES = np.random.default_rng(1234).random((10, PIXELS)) < 0.5


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    flips = rng.random((n, PIXELS)) < 0.05
    return (PROTOTYPES[rng.integers(0, 10, n)] ^ flips).astype("float32")


class ScoreFunctionVAE(keras.Model):
    """Encoder, decoder and a baseline network, with a score-function step.

    `estimator`: `"reinforce"` (the reconstruction term as learning signal,
    nothing else), `"nvil"` (with NVIL's baselines and normalization) or
    `"muprop"` (NVIL's reductions around MuProp's control variate).
    """

    def __init__(self, estimator="muprop", seed=0, **kwargs):
        super().__init__(**kwargs)
        self.estimator = estimator
        self.encoder = keras.Sequential([
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(LATENTS * CLASSES),
            keras.layers.Reshape((LATENTS, CLASSES))], name="encoder")
        self.decoder = keras.Sequential([
            keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(PIXELS)], name="decoder")
        self.baseline = keras.Sequential([
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1)], name="input_baseline")
        self.reduce = sf.VarianceReduction(decay=0.8)
        self.noise = keras.random.SeedGenerator(seed)
        self.tracker = keras.metrics.Mean(name="negative_elbo")

    @property
    def metrics(self):
        return [self.tracker]

    def reconstruction(self, x, z):
        """-log p(x|z) per example; z one-hot, or relaxed (for MuProp)."""
        return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=x, logits=self.decoder(z)), axis=-1)

    def call(self, x):
        logits = self.encoder(x)
        z = sf.sample_categorical(logits, seed=self.noise)
        return self.reconstruction(x, z) + ops.kl_categorical_uniform(logits)

    def train_step(self, x):
        with tf.GradientTape() as tape:
            logits = self.encoder(x)
            z = sf.sample_categorical(logits, seed=self.noise)
            f = self.reconstruction(x, z)  # the term with no exact gradient
            log_q = sf.categorical_log_prob(z, logits)
            if self.estimator == "reinforce":
                surrogate = sf.surrogate_loss(f, log_q)
            else:
                cv = sf.ControlVariate(tf.zeros_like(f), tf.zeros_like(f))
                if self.estimator == "muprop":
                    cv = sf.muprop_control_variate(
                        lambda v: self.reconstruction(x, v), z, logits)
                signal, scale = self.reduce(
                    f - cv.value, input_baseline=self.baseline(x),
                    training=True)
                surrogate = sf.surrogate_loss(f, log_q, signal,
                                              cv.analytic / scale)
            # The KL term keeps its exact gradient. NVIL's normalization
            # divides the encoder's whole gradient by `scale`, so the KL's
            # share too (it reaches only the encoder).
            kl = ops.kl_categorical_uniform(logits)
            loss = tf.reduce_mean(surrogate + kl / (
                1.0 if self.estimator == "reinforce" else scale))
            if self.estimator != "reinforce":
                loss += tf.add_n(self.reduce.losses)  # trains the baseline
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.tracker.update_state(f + kl)
        return {"negative_elbo": self.tracker.result()}


def train(estimator="muprop", epochs=20, seed=0, verbose=2):
    """Trains on 4000 examples; returns the test -ELBO before and after."""
    keras.utils.set_random_seed(seed)
    x_train, x_test = make_data(4000, seed=0), make_data(1000, seed=1)
    model = ScoreFunctionVAE(estimator, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = float(np.mean(model.predict(x_test, verbose=0)))
    model.fit(x_train, batch_size=100, epochs=epochs, verbose=verbose)
    after = float(np.mean(model.predict(x_test, verbose=0)))
    return before, after


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="muprop",
                        choices=["reinforce", "nvil", "muprop"])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    before, after = train(args.estimator, args.epochs)
    print(f"{args.estimator}: test -ELBO with discrete z, nats: "
          f"{before:.2f} before training, {after:.2f} after")


if __name__ == "__main__":
    main()
