"""Semi-supervised classification with the M2 model (Kingma et al. 2014).

The experiment of Jang, Gu, Poole (ICLR 2017), Section 4.3: a generative
model of images `x` with a categorical class `y` and a Gaussian style `z`,

    p(y) = uniform over k classes,  p(z) = N(0, I),  p(x | y, z) Bernoulli,

and an inference model `q(y | x) q(z | x, y)` whose `q(y | x)` is the
classifier. Labelled examples train the ELBO with `y` observed and a
classification loss; unlabelled examples need the ELBO with `y` unknown, whose
expectation over `q(y | x)` is either summed exactly over the k classes
(marginalization: k passes of `q(z | x, y)` and `p(x | y, z)` per example) or
estimated with one Gumbel-Softmax sample of `y` (one pass). The paper's point:
the second is as accurate and, at k = 100, 9.9x faster per training step.

The losses, in nats per example (`L'` without the constant `log k`):

- `L'(x, y) = -log p(x | y, z) + KL(q(z | x, y) || N(0, I))`, one
  reparameterized `z ~ q(z | x, y)`;
- labelled: `L(x, y) = L'(x, y) + log k` (`-log p(y)`, uniform prior), plus
  `class_weight * -log q(y | x)`;
- unlabelled, marginalization: `U(x) = sum_y q(y|x) L(x, y) - H(q(y|x))
  = sum_y q(y|x) L'(x, y) + KL(q(y|x) || uniform)`;
- unlabelled, Gumbel-Softmax: `L'(x, y~) + KL(q(y|x) || uniform)`, `y~` one
  relaxed sample (`GumbelSoftmax`) or one straight-through one-hot sample
  (`STGumbel`) of `q(y | x)`. With a one-hot `y~` its expectation is `U(x)`.

The batch loss is `mean U(x_u) + mean L(x_l, y_l) + class_weight * mean
-log q(y_l | x_l)` over an unlabelled and a labelled batch.
`class_weight` is the paper's plain `alpha` by default, or Kingma et al.'s
scaled `alpha * n_total / n_labelled`, see `build_m2`.

Public names:

- `build_classifier`, `build_encoder`, `build_decoder`: the three functional
  networks (small CNNs, sized for a 2-core CPU).
- `M2`: a `keras.Model` holding them, with the estimator's `train_step`.
- `build_m2(...)`: makes and compiles an `M2`.
- `conditional_nelbo` (`L'`), `labelled_term`, `marginal_unlabelled_term`,
  `sampled_unlabelled_term`, `gaussian_kl`: the losses, as functions of the
  networks.
- `semi_supervised_dataset(...)`: the `tf.data` pipeline that zips
  unlabelled and labelled batches, binarized anew on every pass.
- `evaluate_nelbo(model, x)`: the test -ELBO (exact sum over classes, one `z`
  per class); `accuracy(model, x, y)`.
- `time_training_steps(num_classes, estimator, ...)`: training steps per
  second on random data with random labels (the paper's speed experiment).

References:
    - Jang, Gu, Poole. Categorical Reparameterization with Gumbel-Softmax.
      ICLR 2017.
    - Kingma, Rezende, Mohamed, Welling. Semi-Supervised Learning with Deep
      Generative Models. NeurIPS 2014.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

import keras_gumbel
from keras_gumbel import bounds
from keras_gumbel import datasets
from keras_gumbel import ops as gops

__all__ = [
    "ESTIMATORS",
    "build_classifier",
    "build_encoder",
    "build_decoder",
    "M2",
    "build_m2",
    "gaussian_kl",
    "conditional_nelbo",
    "labelled_term",
    "marginal_unlabelled_term",
    "sampled_unlabelled_term",
    "semi_supervised_dataset",
    "evaluate_nelbo",
    "accuracy",
    "time_training_steps",
]

ESTIMATORS = ("marginal", "gumbel", "st")
IMAGE_SHAPE = (28, 28, 1)
N_PIXELS = 784


def _check_estimator(estimator):
    if estimator not in ESTIMATORS:
        raise gops._invalid("estimator", f"one of {ESTIMATORS}", estimator)
    return estimator


# --------------------------------------------------------------------------
# The three networks (functional API).
# --------------------------------------------------------------------------


def _conv_trunk(h, filters, prefix, start=0):
    for i, f in enumerate(filters, start):
        h = keras.layers.Conv2D(f, 3, strides=2, padding="same",
                                activation="relu", name=f"{prefix}_conv{i}")(h)
    return h


def build_classifier(num_classes=10, filters=(16, 32, 32), name="classifier"):
    """q(y | x): a 3-layer CNN (3x3, stride 2, ReLU) and a linear layer.

    Args:
        num_classes: k.
        filters: the three convolutions' filters.
        name: the model's name.

    Returns:
        A functional `keras.Model`: flat images `(batch, 784)` to class
        logits `(batch, k)`.
    """
    x = keras.Input((N_PIXELS,), name="x")
    h = keras.layers.Reshape(IMAGE_SHAPE, name="image")(x)
    h = _conv_trunk(h, filters, "q_y")
    h = keras.layers.Flatten(name="q_y_flat")(h)
    logits = keras.layers.Dense(num_classes, name="q_y_logits")(h)
    return keras.Model(x, logits, name=name)


def build_encoder(num_classes=10, latent_dim=32, filters=(16, 32, 32),
                  name="encoder"):
    """q(z | x, y): a 3-layer CNN on `x` with `y` entering its first layer.

    `y` is mapped to one bias per channel of the first convolution, what
    concatenating `y` to the image as k constant channels gives away from
    the borders, at the cost of a `(k, filters[0])` matrix instead of k more
    input channels. So every layer depends on `y`, and marginalization needs
    the whole encoder once per class, as in Kingma et al.'s M2.

    Args:
        num_classes: k.
        latent_dim: the size of the Gaussian `z`.
        filters: the three convolutions' filters.
        name: the model's name.

    Returns:
        A functional `keras.Model`: `[x (batch, 784), y (batch, k)]` to
        `[z_mean, z_log_var]`, each `(batch, latent_dim)`. `y` may be
        one-hot or a relaxed (Gumbel-Softmax) sample.
    """
    x = keras.Input((N_PIXELS,), name="x")
    y = keras.Input((num_classes,), name="y")
    h = keras.layers.Reshape(IMAGE_SHAPE, name="image")(x)
    h = keras.layers.Conv2D(filters[0], 3, strides=2, padding="same",
                            name="q_z_conv0")(h)
    bias = keras.layers.Dense(filters[0], use_bias=False, name="q_z_y")(y)
    bias = keras.layers.Reshape((1, 1, filters[0]), name="q_z_y_map")(bias)
    h = keras.layers.Add(name="q_z_add_y")([h, bias])
    h = keras.layers.ReLU(name="q_z_relu0")(h)
    h = _conv_trunk(h, filters[1:], "q_z", start=1)
    h = keras.layers.Flatten(name="q_z_flat")(h)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(h)
    return keras.Model([x, y], [z_mean, z_log_var], name=name)


def build_decoder(num_classes=10, latent_dim=32, filters=(32, 32, 16),
                  name="decoder"):
    """p(x | y, z): a 4-layer transposed-convolution net (ReLU).

    `[z, y]` -> dense to 7x7x`filters[0]` -> transposed convolutions (3x3,
    stride 2) to 14x14x`filters[1]` and 28x28x`filters[2]` -> a 3x3
    transposed convolution to one channel of Bernoulli logits.

    Returns:
        A functional `keras.Model`: `[z (batch, latent_dim), y (batch, k)]`
        to pixel logits `(batch, 784)`.
    """
    z = keras.Input((latent_dim,), name="z")
    y = keras.Input((num_classes,), name="y")
    h = keras.layers.Concatenate(name="p_x_zy")([z, y])
    h = keras.layers.Dense(7 * 7 * filters[0], activation="relu",
                           name="p_x_dense")(h)
    h = keras.layers.Reshape((7, 7, filters[0]), name="p_x_map")(h)
    h = keras.layers.Conv2DTranspose(filters[1], 3, strides=2, padding="same",
                                     activation="relu", name="p_x_deconv0")(h)
    h = keras.layers.Conv2DTranspose(filters[2], 3, strides=2, padding="same",
                                     activation="relu", name="p_x_deconv1")(h)
    h = keras.layers.Conv2DTranspose(1, 3, padding="same",
                                     name="p_x_logits")(h)
    logits = keras.layers.Flatten(name="p_x_flat")(h)
    return keras.Model([z, y], logits, name=name)


# --------------------------------------------------------------------------
# The losses.
# --------------------------------------------------------------------------


def gaussian_kl(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)), summed over `z`: `(batch,)`."""
    return 0.5 * tf.reduce_sum(
        tf.square(z_mean) + tf.exp(z_log_var) - 1.0 - z_log_var, axis=-1)


def conditional_nelbo(encoder, decoder, x, y, noise, training=False):
    """`L'(x, y) = -log p(x | y, z) + KL(q(z | x, y) || p(z))`, per example.

    Args:
        encoder, decoder: from `build_encoder`, `build_decoder`.
        x: binary images `(batch, 784)`.
        y: one-hot or relaxed classes `(batch, k)`.
        noise: standard normal noise `(batch, latent_dim)`; `z = mean +
            exp(log_var / 2) * noise` (the reparameterization).
        training: passed to the networks.

    Returns:
        `(batch,)`, in nats; `-log p(y)` (= log k) not included.
    """
    z_mean, z_log_var = encoder([x, y], training=training)
    z = z_mean + tf.exp(0.5 * z_log_var) * noise
    logits = decoder([z, y], training=training)
    return (-bounds.bernoulli_log_likelihood(x, logits)
            + gaussian_kl(z_mean, z_log_var))


def labelled_term(encoder, decoder, x, y_onehot, noise, training=False):
    """The labelled -ELBO `L(x, y) = L'(x, y) + log k`, per example."""
    k = y_onehot.shape[-1]
    return (conditional_nelbo(encoder, decoder, x, y_onehot, noise, training)
            + math.log(k))


def marginal_unlabelled_term(encoder, decoder, x, class_logits, noise,
                             training=False):
    """The unlabelled -ELBO summed over every class, per example.

    `U(x) = sum_y q(y|x) L'(x, y) + KL(q(y|x) || uniform)`: `x` is repeated
    k times, once with each class, through the encoder and the decoder.

    Args:
        x: `(batch, 784)`.
        class_logits: the classifier's logits `(batch, k)`.
        noise: `(k, batch, latent_dim)`, one `z` per class and example.

    Returns:
        `(batch,)`, in nats.
    """
    k = class_logits.shape[-1]
    batch = tf.shape(x)[0]
    # Class-major tiling: row c * batch + i is example i with class c.
    x_tiled = tf.tile(x, [k, 1])
    y_tiled = tf.repeat(tf.eye(k, dtype=x.dtype), batch, axis=0)
    noise = tf.reshape(noise, [k * batch, -1])
    per_class = conditional_nelbo(encoder, decoder, x_tiled, y_tiled, noise,
                                  training)
    per_class = tf.transpose(tf.reshape(per_class, [k, batch]))  # (batch, k)
    q = tf.nn.softmax(class_logits, axis=-1)
    return (tf.reduce_sum(q * per_class, axis=-1)
            + gops.kl_categorical_uniform(class_logits))


def sampled_unlabelled_term(encoder, decoder, x, class_logits, y_sample,
                            noise, training=False):
    """The unlabelled -ELBO with one sample `y_sample` of `q(y | x)`.

    `L'(x, y_sample) + KL(q(y|x) || uniform)`, per example. With a one-hot
    `y_sample` drawn from `q(y | x)` its expectation is
    `marginal_unlabelled_term`; with a relaxed sample it is the Gumbel-Softmax
    estimator's (biased, low-variance) surrogate.
    """
    return (conditional_nelbo(encoder, decoder, x, y_sample, noise, training)
            + gops.kl_categorical_uniform(class_logits))


# --------------------------------------------------------------------------
# The model.
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_gumbel")
class M2(keras.Model):
    """The M2 model: a classifier, an encoder and a decoder, trained together.

    The three networks are functional models (`build_classifier`,
    `build_encoder`, `build_decoder`); this class adds the training step of
    the chosen estimator of the unlabelled term.

    In training (`fit`) each element of the data is a dict with
    `"x_unlabelled"` `(b_u, 784)`, `"x_labelled"` `(b_l, 784)` and
    `"y_labelled"` `(b_l,)` int labels (`semi_supervised_dataset` makes
    them). The logs: `loss`; `unlabelled_nelbo` (the estimator's value of
    `U(x)`: exact for marginalization, the one-sample surrogate otherwise);
    `labelled_nelbo`; `cross_entropy` and `labelled_accuracy` on the labelled
    batch. At inference (`predict`, `evaluate`, calling the model) it is the
    classifier: images `(batch, 784)` to class logits `(batch, k)`;
    `evaluate` on `(x, y)` gives `accuracy` and `cross_entropy`.

    Args:
        classifier, encoder, decoder: the networks.
        estimator: `"marginal"` (sum over classes), `"gumbel"` (one
            `GumbelSoftmax` sample) or `"st"` (one `STGumbel` sample).
        class_weight: the weight of `-log q(y | x)` on labelled examples.
        temperature: the sampler's initial temperature (annealed by
            `keras_gumbel.TemperatureAnnealing`, which finds `self.sampler`).
        seed: seeds the sampler and the Gaussian noise.
        **kwargs: `keras.Model` arguments (`name`).
    """

    def __init__(self, classifier, encoder, decoder, estimator="gumbel",
                 class_weight=1.0, temperature=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.estimator = _check_estimator(estimator)
        self.classifier = classifier
        self.encoder = encoder
        self.decoder = decoder
        self.num_classes = int(classifier.outputs[0].shape[-1])
        self.latent_dim = int(encoder.outputs[0].shape[-1])
        self.class_weight = float(class_weight)
        self.seed = seed
        if estimator == "gumbel":
            self.sampler = keras_gumbel.GumbelSoftmax(
                temperature=temperature, seed=seed, name="y_sample")
        elif estimator == "st":
            self.sampler = keras_gumbel.STGumbel(
                temperature=temperature, seed=seed, name="y_sample")
        else:
            self.sampler = None
        if self.sampler is not None:
            self.sampler.build((None, self.num_classes))
        self.noise_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.unlabelled_tracker = keras.metrics.Mean(name="unlabelled_nelbo")
        self.labelled_tracker = keras.metrics.Mean(name="labelled_nelbo")
        self.ce_tracker = keras.metrics.Mean(name="cross_entropy")
        self.acc_tracker = keras.metrics.SparseCategoricalAccuracy(
            name="labelled_accuracy")
        self.eval_acc = keras.metrics.SparseCategoricalAccuracy(
            name="accuracy")
        self.eval_ce = keras.metrics.Mean(name="cross_entropy")
        self.built = True

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, self.unlabelled_tracker,
                self.labelled_tracker, self.ce_tracker, self.acc_tracker,
                self.eval_acc, self.eval_ce]

    def _noise(self, *shape):
        return keras.random.normal(shape + (self.latent_dim,),
                                   seed=self.noise_generator)

    def compute_terms(self, x_u, x_l, y_l, training=True):
        """The batch loss and its parts (each a scalar mean)."""
        b_u, b_l = tf.shape(x_u)[0], tf.shape(x_l)[0]
        logits = self.classifier(tf.concat([x_u, x_l], 0), training=training)
        logits_u, logits_l = logits[:b_u], logits[b_u:]
        y_onehot = tf.one_hot(y_l, self.num_classes, dtype=x_l.dtype)
        labelled = labelled_term(self.encoder, self.decoder, x_l, y_onehot,
                                 self._noise(b_l), training)
        if self.estimator == "marginal":
            unlabelled = marginal_unlabelled_term(
                self.encoder, self.decoder, x_u, logits_u,
                self._noise(self.num_classes, b_u), training)
        else:
            y_sample = self.sampler(logits_u, training=training)
            unlabelled = sampled_unlabelled_term(
                self.encoder, self.decoder, x_u, logits_u, y_sample,
                self._noise(b_u), training)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(y_l, tf.int32), logits=logits_l)
        parts = {
            "unlabelled_nelbo": tf.reduce_mean(unlabelled),
            "labelled_nelbo": tf.reduce_mean(labelled),
            "cross_entropy": tf.reduce_mean(ce),
        }
        parts["loss"] = (parts["unlabelled_nelbo"] + parts["labelled_nelbo"]
                         + self.class_weight * parts["cross_entropy"])
        return parts, logits_l

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x_u = tf.convert_to_tensor(x["x_unlabelled"])
        x_l = tf.convert_to_tensor(x["x_labelled"])
        y_l = tf.convert_to_tensor(x["y_labelled"])
        with tf.GradientTape() as tape:
            parts, logits_l = self.compute_terms(x_u, x_l, y_l, training=True)
        variables = self.trainable_variables
        grads = tape.gradient(parts["loss"], variables)
        self.optimizer.apply(grads, variables)
        self.loss_tracker.update_state(parts["loss"])
        self.unlabelled_tracker.update_state(parts["unlabelled_nelbo"])
        self.labelled_tracker.update_state(parts["labelled_nelbo"])
        self.ce_tracker.update_state(parts["cross_entropy"])
        self.acc_tracker.update_state(y_l, logits_l)
        return {m.name: m.result() for m in self.metrics[:5]}

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.classifier(x, training=False)
        self.eval_acc.update_state(y, logits)
        self.eval_ce.update_state(
            tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.cast(y, tf.int32), logits=logits))
        return {"accuracy": self.eval_acc.result(),
                "cross_entropy": self.eval_ce.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "estimator": self.estimator,
            "class_weight": self.class_weight,
            "temperature": (self.sampler.initial_temperature
                            if self.sampler is not None else 1.0),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("classifier", "encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_m2(num_classes=10, latent_dim=32, estimator="gumbel", alpha=1.0,
             n_total=None, n_labelled=None, learning_rate=1e-3,
             temperature=1.0, seed=0, jit_compile="auto",
             classifier_filters=(16, 32, 32), encoder_filters=(16, 32, 32),
             decoder_filters=(32, 32, 16)):
    """Builds and compiles the M2 model for one estimator.

    The classification loss's weight is `alpha`, as in the paper (which
    picks it from {0.1, 0.2, 0.3, 0.8, 1.0}). Given `n_total` and
    `n_labelled`, it is `alpha * n_total / n_labelled` instead, the scaling
    of Kingma et al. (2014), who set `alpha = 0.1 * N` for a loss
    summed over the data: per labelled example that is `0.1 * N / N_l`
    (= 50 with 50,000 unlabelled and 100 labelled images).

    Args:
        num_classes: k.
        latent_dim: the size of `z`.
        estimator: `"marginal"`, `"gumbel"` or `"st"`.
        alpha: the classification loss's weight (before scaling, when
            `n_total` and `n_labelled` are given).
        n_total, n_labelled: None (no scaling) or the numbers of training
            images in all and of labelled ones, for Kingma et al.'s
            scaling.
        learning_rate: Adam's.
        temperature: the sampler's initial temperature.
        seed: seeds the weights (`keras.utils.set_random_seed`), the sampler
            and the Gaussian noise.
        jit_compile: passed to `compile` (`"auto"`: XLA with TensorFlow).
        classifier_filters, encoder_filters, decoder_filters: the networks'
            widths.

    Returns:
        A compiled `M2`.
    """
    num_classes = gops._check_positive_int(num_classes, "num_classes")
    latent_dim = gops._check_positive_int(latent_dim, "latent_dim")
    _check_estimator(estimator)
    if (n_total is None) != (n_labelled is None):
        raise ValueError(
            "Invalid value received for arguments `n_total` and `n_labelled`."
            " Expected both None (a plain alpha) or both positive integers. "
            f"Received: n_total={n_total!r}, n_labelled={n_labelled!r}")
    class_weight = float(alpha)
    if n_total is not None:
        class_weight *= (gops._check_positive_int(n_total, "n_total")
                         / gops._check_positive_int(n_labelled, "n_labelled"))
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = M2(
        build_classifier(num_classes, classifier_filters),
        build_encoder(num_classes, latent_dim, encoder_filters),
        build_decoder(num_classes, latent_dim, decoder_filters),
        estimator=estimator,
        class_weight=class_weight,
        temperature=temperature,
        seed=seed,
        name=f"m2_{estimator}",
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  jit_compile=jit_compile)
    # Made now, the optimizer's slots are not created inside the first traced
    # step, which would trace the step twice.
    model.optimizer.build(model.trainable_variables)
    return model


# --------------------------------------------------------------------------
# Data.
# --------------------------------------------------------------------------


def semi_supervised_dataset(x_unlabelled, x_labelled, y_labelled,
                            batch_size=100, labelled_batch_size=None, seed=0):
    """Zips unlabelled batches with labelled batches, binarized dynamically.

    One pass (a Keras epoch) is one pass over the unlabelled images, in
    full batches (`len(x_unlabelled) // batch_size` steps); the labelled set
    is reshuffled and repeated as often as it takes. Both are binarized anew
    on every pass (`datasets.dynamic_binarized_dataset`).

    Args:
        x_unlabelled: intensities in [0, 1], `(n_u, 784)`.
        x_labelled, y_labelled: `(n_l, 784)` and int labels `(n_l,)`.
        batch_size: unlabelled images per step.
        labelled_batch_size: labelled images per step (default
            `min(batch_size, n_l)`); drawn without replacement within a pass
            over the labelled set.
        seed: a non-negative int.

    Returns:
        A `tf.data.Dataset` of dicts `{"x_unlabelled", "x_labelled",
        "y_labelled"}`.
    """
    batch_size = gops._check_positive_int(batch_size, "batch_size")
    if labelled_batch_size is None:
        labelled_batch_size = min(batch_size, len(x_labelled))
    labelled_batch_size = gops._check_positive_int(
        labelled_batch_size, "labelled_batch_size")
    if labelled_batch_size > len(x_labelled):
        raise gops._invalid("labelled_batch_size",
                            f"at most the number of labelled images "
                            f"({len(x_labelled)})", labelled_batch_size)
    unlabelled = datasets.dynamic_binarized_dataset(
        x_unlabelled, batch_size=batch_size, seed=seed, drop_remainder=True)
    labelled = datasets.dynamic_binarized_dataset(
        x_labelled, y_labelled, batch_size=labelled_batch_size,
        seed=seed + 2, drop_remainder=True).repeat()

    def as_dict(x_u, labelled_batch):
        x_l, y_l = labelled_batch
        return {"x_unlabelled": x_u, "x_labelled": x_l, "y_labelled": y_l}

    return tf.data.Dataset.zip((unlabelled, labelled)).map(as_dict)


# --------------------------------------------------------------------------
# Evaluation.
# --------------------------------------------------------------------------


def evaluate_nelbo(model, x, batch_size=500, seed=0):
    """The unlabelled -ELBO `U(x)` on `x`, averaged over the images.

    The same bound for every estimator: the exact sum over the k classes,
    one `z ~ q(z | x, y)` per class (so "single-sample" in `z`).

    Args:
        model: an `M2`.
        x: binary images `(n, 784)` (binarize test images once, e.g.
            `MnistData.binarized`).
        batch_size: images per evaluation batch.
        seed: for the Gaussian noise.

    Returns:
        A Python float, nats per image.
    """
    generator = keras.random.SeedGenerator(seed)
    k, d = model.num_classes, model.latent_dim

    @tf.function(autograph=False)  # no Python control flow on tensors
    def batch_total(xb):
        logits = model.classifier(xb, training=False)
        noise = keras.random.normal((k, tf.shape(xb)[0], d), seed=generator)
        return tf.reduce_sum(marginal_unlabelled_term(
            model.encoder, model.decoder, xb, logits, noise))

    x = np.asarray(x, np.float32)
    total = 0.0
    for start in range(0, len(x), batch_size):
        total += float(batch_total(tf.constant(x[start:start + batch_size])))
    return total / len(x)


def accuracy(model, x, y, batch_size=1000):
    """The classifier's accuracy on `(x, y)` (argmax of `q(y | x)`).

    Args:
        model: an `M2` (its `classifier` is used) or any model from images
            to class logits, e.g. `build_classifier()` trained alone.
        x, y: images `(n, 784)` and int labels `(n,)`.
        batch_size: images per prediction batch.

    Returns:
        A Python float in [0, 1].
    """
    classifier = getattr(model, "classifier", model)
    logits = classifier.predict(np.asarray(x, np.float32),
                                batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(y)))


# --------------------------------------------------------------------------
# The speed experiment.
# --------------------------------------------------------------------------


def time_training_steps(num_classes, estimator="gumbel", batch_size=100,
                        labelled_batch_size=None, steps=10, warmup=2,
                        rounds=1, jit_compile="auto", seed=0,
                        **build_kwargs):
    """Training steps per second of the M2 model with k classes.

    As in the paper's speed experiment, the data are random: binary images
    (each pixel 1 with probability 0.3) with uniformly random labels among
    the k classes; the step is the same as in training (an unlabelled batch
    and a labelled batch). After `warmup` steps (tracing, compilation) it
    times `rounds` rounds of `steps` calls of `train_on_batch` (each call
    waits for its result) and returns the median round's rate: on a machine
    shared with other jobs, one slow round does not decide the result.

    Args:
        num_classes: k.
        estimator: `"marginal"`, `"gumbel"` or `"st"`.
        batch_size: unlabelled images per step.
        labelled_batch_size: labelled images per step (default
            `batch_size`).
        steps: timed steps per round.
        warmup: untimed steps first.
        rounds: timed rounds.
        jit_compile: passed to `compile`. On this project's 2-core CPU,
            `False` was faster than XLA (`"auto"`), for marginalization
            about 2.5x at k = 10.
        seed: seeds the model and the data.
        **build_kwargs: more `build_m2` arguments (`latent_dim`, filters).

    Returns:
        Steps per second, a Python float.
    """
    num_classes = gops._check_positive_int(num_classes, "num_classes")
    batch_size = gops._check_positive_int(batch_size, "batch_size")
    steps = gops._check_positive_int(steps, "steps")
    rounds = gops._check_positive_int(rounds, "rounds")
    labelled_batch_size = gops._check_positive_int(
        labelled_batch_size or batch_size, "labelled_batch_size")
    model = build_m2(num_classes, estimator=estimator, seed=seed,
                     jit_compile=jit_compile, **build_kwargs)
    rng = np.random.default_rng(seed)
    data = {
        "x_unlabelled": tf.constant(
            (rng.random((batch_size, N_PIXELS)) < 0.3).astype("float32")),
        "x_labelled": tf.constant(
            (rng.random((labelled_batch_size, N_PIXELS)) < 0.3).astype(
                "float32")),
        "y_labelled": tf.constant(
            rng.integers(0, num_classes, labelled_batch_size)),
    }
    for _ in range(warmup):
        model.train_on_batch(data)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(data)
        rates.append(steps / (time.perf_counter() - start))
    return float(np.median(rates))
