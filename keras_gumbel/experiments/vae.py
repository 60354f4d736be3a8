"""The VAEs of Jang, Gu, Poole (ICLR 2017), and the temperature trade-off.

Notebook 2 (the categorical and Bernoulli VAEs):

- `build_categorical_vae(latents=20, classes=10, hidden=(512, 256), ...)`:
  784-512-256 -> 20x10 Gumbel-Softmax (or straight-through) latents ->
  256-512-784 Bernoulli logits, compiled so that `fit(x, x)` minimizes the
  negative ELBO. `build_bernoulli_vae(units=200, ...)`: the same with 200
  relaxed Bernoulli latents.
- `vae_parts(model)`: its encoder and decoder submodels and its prior.
- `negative_elbo(model, x)`: the test negative ELBO with discrete latents
  (one-hot / 0-1, as the paper evaluates); `importance_weighted_bound(model,
  x, num_samples)`: the `m`-sample bound on `-log p(x)` (the paper's test
  figure, `m = 1000`), batched to bound memory.
- `reconstruct`, `prior_samples`, `tile_images`: the notebook's figures.
- `annealing_rate(total_steps)`: the rate `r` of
  `tau = max(0.5, exp(-r t))` that reaches 0.5 near the end of a short run.

Notebook 0 (the temperature trade-off of the paper's Figure 1):

- `squared_error(target)`: a loss `f(y)` that is not symmetric in the classes
  (a symmetric one, such as `sum(y)`, has zero gradient on the simplex).
- `exact_gradient(logits, f)`: the gradient of `E[f(one_hot(z))]`,
  `z ~ Categorical(softmax(logits))`, by enumeration over the classes.
- `per_sample_gradients(...)` and `gradient_tradeoff(...)`: single-sample
  gradient estimates with the Gumbel-Softmax and straight-through
  estimators, their variance and their bias against the exact gradient.

The ELBO of a VAE with prior `p(z)` (uniform: 1/K per class, or
Bernoulli(0.5) per unit), encoder `q(z|x)` and decoder `p(x|z)` is

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),

with the KL term analytic (`keras_gumbel.ops.kl_categorical_uniform`,
`kl_bernoulli_uniform`). In training `z` is a relaxed sample; at evaluation
it is discrete.

References:
    - Jang, Gu, Poole. Categorical Reparameterization with Gumbel-Softmax.
      ICLR 2017. https://arxiv.org/abs/1611.01144
    - Maddison, Mnih, Teh. The Concrete Distribution. ICLR 2017.
    - Burda, Grosse, Salakhutdinov. Importance Weighted Autoencoders.
      ICLR 2016 (the multi-sample bound).
"""

import math

import keras
import numpy as np
import tensorflow as tf

import keras_gumbel
from keras_gumbel import bounds
from keras_gumbel import ops as gops

__all__ = [
    "PRIORS",
    "KLToPrior",
    "kl_to_prior",
    "bernoulli_nll",
    "build_categorical_vae",
    "build_bernoulli_vae",
    "vae_parts",
    "annealing_rate",
    "negative_elbo",
    "importance_weighted_bound",
    "reconstruct",
    "prior_samples",
    "tile_images",
    "squared_error",
    "exact_gradient",
    "per_sample_gradients",
    "gradient_tradeoff",
]

PIXELS = 784
PRIORS = ("categorical", "bernoulli")


def _check_prior(prior):
    if prior not in PRIORS:
        raise gops._invalid("prior", f"one of {PRIORS}", prior)
    return prior


# --------------------------------------------------------------------------
# The loss: reconstruction + KL to the prior.
# --------------------------------------------------------------------------


def kl_to_prior(logits, prior):
    """KL(q(z|x) || p(z)) per example, analytic.

    Args:
        logits: `(batch, latents, classes)` for `prior="categorical"` (the
            prior uniform over the classes), `(batch, units)` for
            `prior="bernoulli"` (the prior Bernoulli(0.5) for each unit).
        prior: `"categorical"` or `"bernoulli"`.

    Returns:
        Shape `(batch,)`, in nats.
    """
    if _check_prior(prior) == "categorical":
        return gops.kl_categorical_uniform(logits)
    return gops.kl_bernoulli_uniform(logits)


def bernoulli_nll(y_true, y_logits):
    """`-log p(x | z)` of binary pixels, summed over pixels: `(batch,)`.

    A Keras loss: `y_true` the binary image, `y_logits` the decoder's
    log-odds.
    """
    return -bounds.bernoulli_log_likelihood(y_true, y_logits)


@keras.saving.register_keras_serializable(package="keras_gumbel.experiments")
class KLToPrior(keras.layers.Layer):
    """Adds KL(q(z|x) || p(z)) to the model's losses; returns its input.

    Placed on the encoder's logits, it makes the model's loss the negative
    ELBO when the compiled loss is the reconstruction term (`bernoulli_nll`).
    The mean KL per example is also logged as the metric `kl`.

    Args:
        prior: `"categorical"` (uniform over the classes; logits
            `(batch, latents, classes)`) or `"bernoulli"` (Bernoulli(0.5);
            logits `(batch, units)`).
        **kwargs: base layer keyword arguments, such as `name`.

    Call arguments:
        logits: the encoder's logits.

    Returns:
        `logits`, unchanged.
    """

    def __init__(self, prior="categorical", **kwargs):
        super().__init__(**kwargs)
        self.prior = _check_prior(prior)
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def call(self, logits):
        kl = kl_to_prior(logits, self.prior)
        self.add_loss(tf.reduce_mean(kl))
        self.kl_tracker.update_state(kl)
        return logits

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "prior": self.prior}


# --------------------------------------------------------------------------
# Model builders.
# --------------------------------------------------------------------------


class _Seeds:
    """Distinct, deterministic initializer seeds: the same `seed` gives the
    same initial weights, without touching Keras's global seed."""

    def __init__(self, seed):
        self._next = int(seed) * 1000

    def glorot(self):
        self._next += 1
        return keras.initializers.GlorotUniform(seed=self._next)


def _dense_stack(h, hidden, seeds, prefix):
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(
            units, activation="relu", kernel_initializer=seeds.glorot(),
            name=f"{prefix}_{i}")(h)
    return h


def _check_hidden(hidden):
    hidden = tuple(hidden)
    for units in hidden:
        gops._check_positive_int(units, "hidden")
    return hidden


def _build_vae(latent_shape, prior, latent_layer, hidden, seed, pixels,
               learning_rate, jit_compile, name):
    seeds = _Seeds(seed)
    size = int(np.prod(latent_shape))

    x = keras.Input(shape=(pixels,), name="x")
    h = _dense_stack(x, hidden, seeds, "encoder_dense")
    logits = keras.layers.Dense(
        size, kernel_initializer=seeds.glorot(), name="logits")(h)
    if len(latent_shape) > 1:
        logits = keras.layers.Reshape(latent_shape, name="latent_logits")(
            logits)
    encoder = keras.Model(x, logits, name="encoder")

    z = keras.Input(shape=latent_shape, name="z")
    h = keras.layers.Flatten(name="flatten")(z) if len(latent_shape) > 1 \
        else z
    h = _dense_stack(h, hidden[::-1], seeds, "decoder_dense")
    x_logits = keras.layers.Dense(
        pixels, kernel_initializer=seeds.glorot(), name="x_logits")(h)
    decoder = keras.Model(z, x_logits, name="decoder")

    x = keras.Input(shape=(pixels,), name="image")
    logits = KLToPrior(prior, name="kl_to_prior")(encoder(x))
    z = latent_layer(logits)
    model = keras.Model(x, decoder(z), name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=bernoulli_nll,
        metrics=[keras.metrics.MeanMetricWrapper(
            bernoulli_nll, name="reconstruction")],
        jit_compile=jit_compile)
    return model


def build_categorical_vae(latents=20, classes=10, hidden=(512, 256),
                          temperature=1.0, straight_through=False, seed=0,
                          pixels=PIXELS, learning_rate=1e-3,
                          jit_compile="auto"):
    """The categorical VAE of the paper: 784-512-256 -> 20x10 -> 256-512-784.

    The encoder (ReLU layers of `hidden` units) gives logits of `latents`
    categorical variables of `classes` classes each; a `GumbelSoftmax` layer
    (or `STGumbel`, with `straight_through=True`) samples them; the decoder
    (the reverse of `hidden`) gives the pixels' Bernoulli log-odds. The model
    is compiled with Adam so that `fit(x, x)` minimizes the negative ELBO
    (reconstruction + KL to the uniform prior), in nats per image, logging
    `loss` (the negative ELBO with relaxed samples), `reconstruction` and
    `kl`. The latent layer's temperature is annealed with
    `keras_gumbel.TemperatureAnnealing` in `callbacks=`.

    In training the latents are relaxed samples (straight-through: one-hot
    samples with the relaxed gradient); when not training (`predict`,
    `evaluate`, a plain call) the latent layer returns the most likely code
    (`inference_mode="mode"`). For the paper's test figures use
    `negative_elbo` and `importance_weighted_bound`, which sample discrete
    latents.

    Args:
        latents: the number of categorical variables.
        classes: the number of classes of each.
        hidden: the encoder's hidden sizes; the decoder's are reversed.
        temperature: the latent layer's initial temperature.
        straight_through: `STGumbel` instead of `GumbelSoftmax`.
        seed: seeds the initial weights and the latent layer's noise.
        pixels: the size of the (flat, binary) input.
        learning_rate: Adam's learning rate.
        jit_compile: passed to `compile`.

    Returns:
        A compiled `keras.Model` from `(batch, pixels)` images to
        `(batch, pixels)` log-odds, with the nested models `encoder`
        (`(batch, pixels)` -> logits `(batch, latents, classes)`) and
        `decoder` (`(batch, latents, classes)` -> `(batch, pixels)`); see
        `vae_parts`.
    """
    latents = gops._check_positive_int(latents, "latents")
    classes = gops._check_positive_int(classes, "classes")
    pixels = gops._check_positive_int(pixels, "pixels")
    hidden = _check_hidden(hidden)
    layer_class = (keras_gumbel.STGumbel if straight_through
                   else keras_gumbel.GumbelSoftmax)
    latent_layer = layer_class(temperature=temperature, seed=seed,
                               inference_mode="mode", name="latent")
    name = "st_gumbel_vae" if straight_through else "gumbel_softmax_vae"
    return _build_vae((latents, classes), "categorical", latent_layer,
                      hidden, seed, pixels, learning_rate, jit_compile, name)


def build_bernoulli_vae(units=200, hidden=(512, 256), temperature=1.0,
                        straight_through=False, seed=0, pixels=PIXELS,
                        learning_rate=1e-3, jit_compile="auto"):
    """The paper's Bernoulli VAE: 784-512-256 -> 200 binary -> 256-512-784.

    As `build_categorical_vae`, with `units` binary latents sampled by
    `GumbelSigmoid` (or `STGumbelSigmoid`) and a Bernoulli(0.5) prior.
    The encoder gives logits `(batch, units)`.
    """
    units = gops._check_positive_int(units, "units")
    pixels = gops._check_positive_int(pixels, "pixels")
    hidden = _check_hidden(hidden)
    layer_class = (keras_gumbel.STGumbelSigmoid if straight_through
                   else keras_gumbel.GumbelSigmoid)
    latent_layer = layer_class(temperature=temperature, seed=seed,
                               inference_mode="mode", name="latent")
    name = "st_bernoulli_vae" if straight_through else "bernoulli_vae"
    return _build_vae((units,), "bernoulli", latent_layer, hidden, seed,
                      pixels, learning_rate, jit_compile, name)


def vae_parts(model):
    """`(encoder, decoder, prior)` of a model built by this module.

    `prior` is `"categorical"` when the encoder gives
    `(batch, latents, classes)` logits, `"bernoulli"` for `(batch, units)`.
    """
    encoder = model.get_layer("encoder")
    decoder = model.get_layer("decoder")
    rank = len(encoder.output.shape)
    return encoder, decoder, "categorical" if rank == 3 else "bernoulli"


def annealing_rate(total_steps, initial=1.0, minimum=0.5, fraction=0.9):
    """The rate `r` of `tau = max(minimum, initial * exp(-r t))` that reaches
    `minimum` after `fraction` of `total_steps`.

    The paper's rates (1e-5 to 1e-4, the authors' notebook 3e-5) assume tens
    of thousands of steps; a shorter run needs a larger rate to anneal as far.
    """
    total_steps = gops._check_positive_int(total_steps, "total_steps")
    if not 0 < fraction <= 1:
        raise gops._invalid("fraction", "a float in (0, 1]", fraction)
    if not 0 < minimum < initial:
        raise gops._invalid("minimum", f"a float in (0, {initial})", minimum)
    return math.log(initial / minimum) / (fraction * total_steps)


# --------------------------------------------------------------------------
# Evaluation with discrete latents.
# --------------------------------------------------------------------------


def _sample_discrete(logits, prior, seed):
    """One-hot (categorical) or 0/1 (Bernoulli) samples of q(z|x)."""
    if prior == "categorical":
        return gops.gumbel_softmax(logits, hard=True, seed=seed)
    return gops.gumbel_sigmoid(logits, hard=True, seed=seed)


def _log_q(z, logits, prior):
    if prior == "categorical":
        return bounds.categorical_log_prob(z, logits)
    return bounds.bernoulli_log_prob(z, logits)


def _log_prior(latent_shape, prior):
    """`log p(z)`, the same for every discrete `z` under both priors."""
    if prior == "categorical":
        return bounds.uniform_categorical_log_prob(*latent_shape)
    return tf.constant(-latent_shape[0] * math.log(2.0), tf.float32)


def _batches(n, batch_size):
    return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _summary(values):
    """Mean and its standard error (NaN for a single value)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(
        values.std(ddof=1) / math.sqrt(len(values)))


def negative_elbo(model, x, batch_size=1000, seed=0):
    """The test negative ELBO with discrete latents, nats per image.

    For each image, one discrete `z ~ q(z|x)` (one-hot, or 0/1: the paper's
    "made one-hot at evaluation"):
    `-log p(x | z) + KL(q(z|x) || p(z))`, the KL analytic. Its mean over
    images estimates the negative ELBO without the relaxation's bias.

    Args:
        model: a VAE from `build_categorical_vae` / `build_bernoulli_vae`.
        x: binary images, `(n, pixels)`.
        batch_size: images per batch.
        seed: the seed of the latent samples (the same seed, the same draws).

    Returns:
        A dict: `negative_elbo`, `reconstruction`, `kl` (means over the
        images), `std_error` (the standard error of `negative_elbo`) and
        `per_image` (the `(n,)` numpy array it averages).
    """
    encoder, decoder, prior = vae_parts(model)
    batch_size = gops._check_positive_int(batch_size, "batch_size")
    generator = keras.random.SeedGenerator(seed)

    def terms(xb):  # eager: a few large batches
        logits = encoder(xb, training=False)
        z = _sample_discrete(logits, prior, generator)
        reconstruction = bernoulli_nll(xb, decoder(z, training=False))
        return reconstruction, kl_to_prior(logits, prior)

    x = np.asarray(x, np.float32)
    rec, kl = [], []
    for start, stop in _batches(len(x), batch_size):
        r, k = terms(tf.constant(x[start:stop]))
        rec.append(r.numpy())
        kl.append(k.numpy())
    rec, kl = np.concatenate(rec), np.concatenate(kl)
    mean, std_error = _summary(rec + kl)
    return {"negative_elbo": mean, "reconstruction": float(rec.mean()),
            "kl": float(kl.mean()), "std_error": std_error,
            "per_image": rec + kl}


def importance_weighted_bound(model, x, num_samples=1000, batch_size=100,
                              sample_chunk=100, seed=0):
    """The `m`-sample bound on `-log p(x)`, nats per image (lower is better).

    For each image, `m = num_samples` discrete samples `z_i ~ q(z|x)` and

        -log p(x) <= -log (1/m) sum_i p(x | z_i) p(z_i) / q(z_i | x)

    in expectation (Burda et al. 2016): at `m = 1` the negative ELBO, and
    tighter as `m` grows. The paper's test figures use `m = 1000`. Images
    are encoded `batch_size` at a time and their samples decoded
    `sample_chunk` at a time, so at most `batch_size * sample_chunk`
    images are decoded at once (100 x 100 x 784 log-odds: 31 MB).

    Args:
        model: a VAE from `build_categorical_vae` / `build_bernoulli_vae`.
        x: binary images, `(n, pixels)`.
        num_samples: `m`.
        batch_size: images per batch.
        sample_chunk: samples per image decoded at once.
        seed: the seed of the latent samples.

    Returns:
        A dict: `bound` (the mean over images), `std_error` (over images),
        `num_samples`, `num_images` and `per_image` (the `(n,)` numpy array
        of each image's bound: compare two models on the same images
        through their paired differences, which vary far less than the
        images do).
    """
    encoder, decoder, prior = vae_parts(model)
    num_samples = gops._check_positive_int(num_samples, "num_samples")
    batch_size = gops._check_positive_int(batch_size, "batch_size")
    sample_chunk = gops._check_positive_int(sample_chunk, "sample_chunk")
    generator = keras.random.SeedGenerator(seed)
    latent_shape = tuple(encoder.output.shape[1:])
    log_p_z = _log_prior(latent_shape, prior)

    @tf.function(reduce_retracing=True)
    def log_weights(xb, logits, chunk):
        # logits (b, *latent) -> `chunk` samples per image, decoded as one
        # batch of chunk * b images; returns log w of shape (chunk, b).
        b = tf.shape(xb)[0]
        tiled = tf.repeat(logits[tf.newaxis], chunk, axis=0)
        tiled = tf.reshape(tiled, tf.concat([[-1], latent_shape], 0))
        z = _sample_discrete(tiled, prior, generator)
        x_logits = decoder(z, training=False)
        targets = tf.reshape(tf.repeat(xb[tf.newaxis], chunk, axis=0),
                             [-1, xb.shape[-1]])
        log_w = (bounds.bernoulli_log_likelihood(targets, x_logits)
                 + log_p_z - _log_q(z, tiled, prior))
        return tf.reshape(log_w, tf.stack([chunk, b]))

    chunks = [sample_chunk] * (num_samples // sample_chunk)
    if num_samples % sample_chunk:
        chunks.append(num_samples % sample_chunk)
    x = np.asarray(x, np.float32)
    per_image = []
    for start, stop in _batches(len(x), batch_size):
        xb = tf.constant(x[start:stop])
        logits = encoder(xb, training=False)
        log_w = tf.concat(
            [log_weights(xb, logits, tf.constant(c)) for c in chunks], 0)
        per_image.append(-bounds.log_mean_exp(log_w, axis=0).numpy())
    per_image = np.concatenate(per_image)
    bound, std_error = _summary(per_image)
    return {"bound": bound, "std_error": std_error,
            "num_samples": num_samples, "num_images": len(x),
            "per_image": per_image}


# --------------------------------------------------------------------------
# Figures.
# --------------------------------------------------------------------------


def _means(decoder, z):
    return keras.ops.convert_to_numpy(
        tf.math.sigmoid(decoder(z, training=False)))


def reconstruct(model, x, sample=False, seed=0):
    """Decoded pixel means `sigmoid(decoder(z))` of images `x`.

    `z` is the most likely code (`sample=False`) or one discrete sample of
    `q(z|x)` (`sample=True`).

    Returns:
        A numpy array of `x`'s shape, values in (0, 1).
    """
    encoder, decoder, prior = vae_parts(model)
    logits = encoder(np.asarray(x, np.float32), training=False)
    if sample:
        z = _sample_discrete(logits, prior, seed)
    elif prior == "categorical":
        z = gops.softmax_mode(logits)
    else:
        z = gops.sigmoid_mode(logits)
    return _means(decoder, z)


def prior_samples(model, n, seed=0):
    """Decoded pixel means of `n` latents drawn from the prior.

    Categorical: each variable one-hot with a uniformly drawn class;
    Bernoulli: each unit 0 or 1 with probability 1/2.

    Returns:
        `(n, pixels)` numpy array, values in (0, 1).
    """
    encoder, decoder, prior = vae_parts(model)
    n = gops._check_positive_int(n, "n")
    latent_shape = tuple(encoder.output.shape[1:])
    # Zero logits are the uniform prior: sampling q with them samples p(z).
    zeros = tf.zeros((n,) + latent_shape)
    return _means(decoder, _sample_discrete(zeros, prior, seed))


def tile_images(images, columns, size=28, pad=1, fill=0.5):
    """Flat images `(n, size * size)` as one grid image for `imshow`.

    Row-major: image `i` at row `i // columns`, column `i % columns`. The
    cells are separated by `pad` pixels of value `fill` (0.5: grey, apart
    from both the black and the white of binary images), which also fills
    the empty cells of the last row.

    Returns:
        A 2-D float32 array of shape
        `(rows * (size + pad) - pad, columns * (size + pad) - pad)`.
    """
    images = np.asarray(images, np.float32).reshape(-1, size, size)
    columns = gops._check_positive_int(columns, "columns")
    rows = -(-len(images) // columns)
    step = size + pad
    grid = np.full((rows * step - pad, columns * step - pad), fill,
                   np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * step:r * step + size, c * step:c * step + size] = image
    return grid


# --------------------------------------------------------------------------
# Notebook 0: the variance and bias of the gradient against temperature.
# --------------------------------------------------------------------------


def squared_error(target):
    """`f(y) = sum_i (y_i - target_i)^2` per row: `(n, K)` -> `(n,)`.

    Not symmetric in the classes (for `target` not constant), so its
    gradient on the simplex is not zero by construction.
    """
    target = tf.constant(np.asarray(target, np.float32))

    def f(y):
        return tf.reduce_sum(tf.square(y - target), axis=-1)

    return f


def exact_gradient(logits, f):
    """The exact gradient of `E[f(one_hot(z))]`, `z ~ Cat(softmax(logits))`.

    By enumeration: `E = sum_k softmax(logits)_k f(e_k)`, `e_k` the one-hot
    vectors, differentiated with respect to `logits` (`(K,)`).

    Returns:
        `(expectation, gradient)`: a float and a `(K,)` numpy array.
    """
    logits = tf.constant(np.asarray(logits, np.float32))
    values = f(tf.eye(logits.shape[-1]))
    with tf.GradientTape() as tape:
        tape.watch(logits)
        expectation = tf.reduce_sum(tf.nn.softmax(logits) * values)
    return float(expectation), tape.gradient(expectation, logits).numpy()


def per_sample_gradients(logits, f, temperature, num_samples,
                         straight_through=False, seed=0):
    """Single-sample estimates of the gradient of `E[f(y)]` w.r.t. `logits`.

    Each row is `d f(y_n) / d logits`, `y_n` one sample of
    `gops.gumbel_softmax(logits, temperature, hard=straight_through)`. The
    logits are tiled to `(num_samples, K)`: each row of the sample depends
    on its own row of logits only, so one backward pass gives every
    sample's gradient. For a given integer `seed` the soft and the
    straight-through estimators draw the same noise.

    Returns:
        `(values, gradients)`: `f(y_n)` of shape `(num_samples,)` and the
        gradients `(num_samples, K)`, numpy arrays.
    """
    logits = np.asarray(logits, np.float32)
    num_samples = gops._check_positive_int(num_samples, "num_samples")
    tiled = tf.constant(np.broadcast_to(logits, (num_samples,) + logits.shape))
    with tf.GradientTape() as tape:
        tape.watch(tiled)
        y = gops.gumbel_softmax(tiled, temperature, hard=straight_through,
                                seed=seed)
        values = f(y)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, tiled).numpy()


def gradient_tradeoff(logits, f, temperatures, num_samples=100_000, seed=0):
    """Variance and bias of the two estimators at each temperature.

    For each temperature and each estimator (`"gumbel_softmax"`: the soft
    sample; `"straight_through"`: one-hot forward, soft gradient), the
    `num_samples` single-sample gradients `g_n` (`per_sample_gradients`)
    give

    - `variance`: the total variance `E ||g - E g||^2` (the trace of the
      covariance) of one sample's gradient;
    - `bias`: `||mean(g) - exact||`, `exact` from `exact_gradient`;
    - `bias_noise`: `sqrt(variance / num_samples)`, the size of the bias
      estimate's own Monte Carlo error: a bias below it is not resolved.

    Returns:
        A dict: `temperature` (the array), `exact_gradient`, and for each
        estimator a dict of arrays `variance`, `bias`, `bias_noise`,
        `mean_gradient` (`(T, K)`).
    """
    temperatures = np.asarray(temperatures, np.float64)
    _, exact = exact_gradient(logits, f)
    out = {"temperature": temperatures, "exact_gradient": exact}
    for name, hard in (("gumbel_softmax", False), ("straight_through", True)):
        rows = {"variance": [], "bias": [], "bias_noise": [],
                "mean_gradient": []}
        for i, tau in enumerate(temperatures):
            _, g = per_sample_gradients(logits, f, float(tau), num_samples,
                                        straight_through=hard, seed=seed + i)
            g = g.astype(np.float64)
            mean = g.mean(axis=0)
            variance = float(np.sum(g.var(axis=0, ddof=1)))
            rows["variance"].append(variance)
            rows["bias"].append(float(np.linalg.norm(mean - exact)))
            rows["bias_noise"].append(math.sqrt(variance / num_samples))
            rows["mean_gradient"].append(mean)
        out[name] = {k: np.asarray(v) for k, v in rows.items()}
    return out
