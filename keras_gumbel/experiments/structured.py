"""Structured output prediction: the lower half of a digit from its upper half.

The first experiment of Jang, Gu, Poole (ICLR 2017), Table 1, "SBN" rows. A
stochastic binary network (SBN) maps the upper 14 x 28 half of a binarized
digit (392 pixels) through two stochastic layers to Bernoulli logits of the
lower half (392 pixels):

    x_upper -> Dense -> h1 (stochastic) -> Dense -> h2 (stochastic)
            -> Dense -> logits of x_lower

Each stochastic layer is an affine map of the previous layer's sample giving
logits, then a Gumbel layer: 200 Bernoulli units (`GumbelSigmoid`, or
`STGumbelSigmoid` for straight-through), or 20 categorical variables of 10
classes (`GumbelSoftmax` / `STGumbel` on a `(20, 10)` reshape). There is no
deterministic hidden layer.

Training minimizes `-log p(x_lower | z)` with one sample `z` drawn through the
network (the importance-sampled objective with m = 1). The Gumbel-Softmax
estimator trains with the relaxed (soft) sample; the straight-through one with
the exact discrete sample forward. At test time both are scored as the
discrete model they stand for, with m samples from it:

    NLL(x_lower | x_upper) ~= -log (1/m) sum_i p(x_lower | z_i),
                               z_i ~ p(z | x_upper), discrete units,

which is a stochastic upper bound of the true NLL that tightens as m grows
(the paper uses m = 1000). The discrete units come from `discrete_twin`: a
copy of the model that shares its weights and has straight-through layers in
place of the Gumbel layers, whose forward value is the exact one-hot / 0-1
sample.

Public API:

- `build_sbn(kind, straight_through, hidden, temperature, seed, ...)`: the
  compiled functional model, upper half -> lower-half logits.
- `lower_half_nll(y_true, logits)`: the training loss, nats per example.
- `discrete_twin(model, seed=None)`: the weight-sharing model with hard units.
- `importance_sampled_nll(model, x_upper, x_lower, m=1000, batch=10, seed)`:
  the m-sample test NLL per example.
- `sample_lower_halves(model, x_upper, num_samples, seed)`: pixel
  probabilities and binary samples of the lower half, with discrete units.
- `join_halves(upper, lower)`: the 28 x 28 images from the two halves.
- `PAPER_TEST_NLL`: the paper's Table 1 numbers for the four models.

References:
    - Jang, Gu, Poole. Categorical Reparameterization with Gumbel-Softmax.
      ICLR 2017. https://arxiv.org/abs/1611.01144 (Section 4.1).
    - Maddison, Mnih, Teh. The Concrete Distribution. ICLR 2017.
"""

import functools
import itertools
import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_gumbel import bounds
from keras_gumbel import layers as glayers
from keras_gumbel import ops as gops

__all__ = [
    "KINDS",
    "PAPER_TEST_NLL",
    "build_sbn",
    "lower_half_nll",
    "discrete_twin",
    "importance_sampled_nll",
    "sample_lower_halves",
    "join_halves",
]

KINDS = ("bernoulli", "categorical")
"""The two kinds of stochastic units."""

HALF_PIXELS = 392
"""Pixels in one half of a 28 x 28 digit (14 rows of 28)."""

PAPER_TEST_NLL = {
    ("bernoulli", False): 58.5,
    ("bernoulli", True): 59.3,
    ("categorical", False): 59.0,
    ("categorical", True): 59.7,
}
"""Table 1 of the paper: test NLL in nats (binarized MNIST, m = 1000), keyed
by `(kind, straight_through)`."""

_DEFAULT_HIDDEN = {"bernoulli": 200, "categorical": (20, 10)}


def _check_hidden(kind, hidden):
    if hidden is None:
        return _DEFAULT_HIDDEN[kind]
    if kind == "bernoulli":
        return gops._check_positive_int(hidden, "hidden")
    if (not isinstance(hidden, (tuple, list)) or len(hidden) != 2
            or isinstance(hidden[0], bool) or isinstance(hidden[1], bool)
            or not all(isinstance(h, numbers.Integral) and h >= 1
                       for h in hidden)
            or hidden[1] < 2):
        raise gops._invalid(
            "hidden", "a pair (latents, classes) of positive integers with "
            "classes >= 2 for categorical units", hidden)
    return (int(hidden[0]), int(hidden[1]))


@keras.saving.register_keras_serializable(package="keras_gumbel")
def lower_half_nll(y_true, y_pred):
    """`-log p(x_lower | z)` in nats per example: the training loss.

    Args:
        y_true: the binary lower half, `(batch, pixels)`.
        y_pred: the network's Bernoulli logits for it, `(batch, pixels)`.

    Returns:
        Shape `(batch,)`: summed over the pixels (Keras then averages over
        the batch), so the loss reads in nats per image, as the paper's
        table does.
    """
    return -bounds.bernoulli_log_likelihood(y_true, y_pred)


def build_sbn(kind="bernoulli", straight_through=False, hidden=None,
              temperature=1.0, seed=0, input_dim=HALF_PIXELS,
              output_dim=HALF_PIXELS, optimizer=None, name=None):
    """The paper's two-layer stochastic network, compiled for training.

    `input_dim -> hidden -> hidden -> output_dim`: two stochastic layers,
    each an affine map (`Dense`) of the previous sample giving logits and a
    Gumbel layer sampling from them. In training (`fit`) the Gumbel layers
    draw relaxed samples (Gumbel-Softmax) or exact discrete samples with the
    relaxed gradient (straight-through). Called outside training, the
    Gumbel-Softmax layers still draw relaxed samples (`inference_mode=
    "sample"`), so `evaluate` reports the training objective; score the
    discrete model with `importance_sampled_nll`.

    Args:
        kind: `"bernoulli"` (binary units, `GumbelSigmoid` /
            `STGumbelSigmoid`) or `"categorical"` (one-of-K variables,
            `GumbelSoftmax` / `STGumbel` on the last axis).
        straight_through: whether to use the straight-through layers.
        hidden: units per stochastic layer: an int for `"bernoulli"`
            (default 200), a pair `(latents, classes)` for `"categorical"`
            (default `(20, 10)`).
        temperature: the Gumbel layers' fixed temperature (the paper: 1).
        seed: an int. Seeds the Dense initializers and the Gumbel layers'
            noise (layer `i` gets `seed + i`), so two models built with the
            same seed and kind start from the same weights, whatever the
            estimator.
        input_dim: pixels of the given half (392).
        output_dim: pixels of the predicted half (392).
        optimizer: a Keras optimizer or its name; default
            `keras.optimizers.Adam(1e-3)`.
        name: the model's name; default e.g. `"sbn_bernoulli_st"`.

    Returns:
        A compiled `keras.Model` from `(batch, input_dim)` upper halves to
        `(batch, output_dim)` lower-half logits, with loss `lower_half_nll`.

    Example:

    >>> model = build_sbn("categorical", straight_through=True)
    >>> model.fit(x_upper, x_lower, batch_size=100, epochs=1)  # doctest: +SKIP
    """
    if kind not in KINDS:
        raise gops._invalid("kind", f"one of {KINDS}", kind)
    if not isinstance(straight_through, (bool, np.bool_)):
        raise gops._invalid("straight_through", "a bool", straight_through)
    hidden = _check_hidden(kind, hidden)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or seed < 0:
        raise gops._invalid("seed", "a non-negative integer", seed)
    seed = int(seed)
    input_dim = gops._check_positive_int(input_dim, "input_dim")
    output_dim = gops._check_positive_int(output_dim, "output_dim")

    if kind == "bernoulli":
        gumbel = glayers.STGumbelSigmoid if straight_through \
            else glayers.GumbelSigmoid
        units = hidden
    else:
        gumbel = glayers.STGumbel if straight_through \
            else glayers.GumbelSoftmax
        units = hidden[0] * hidden[1]

    def dense(size, i, layer_name):
        return keras.layers.Dense(
            size, name=layer_name,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i))

    upper = keras.Input(shape=(input_dim,), name="upper_half")
    h = upper
    for i in (1, 2):
        logits = dense(units, i, f"h{i}_logits")(h)
        if kind == "categorical":
            logits = keras.layers.Reshape(hidden, name=f"h{i}_reshape")(logits)
        h = gumbel(temperature=temperature, seed=seed + i,
                   name=f"h{i}_sample")(logits)
        if kind == "categorical":
            h = keras.layers.Flatten(name=f"h{i}_flatten")(h)
    lower_logits = dense(output_dim, 3, "lower_half_logits")(h)

    if name is None:
        name = f"sbn_{kind}_{'st' if straight_through else 'gs'}"
    model = keras.Model(upper, lower_logits, name=name)
    model.compile(
        optimizer=optimizer if optimizer is not None
        else keras.optimizers.Adam(1e-3),
        loss=lower_half_nll)
    return model


def discrete_twin(model, seed=None):
    """The same network with discrete units, sharing the model's weights.

    Every Gumbel layer is replaced by its straight-through counterpart
    (`GumbelSoftmax` -> `STGumbel` on the same axis, `GumbelSigmoid` ->
    `STGumbelSigmoid`; straight-through layers are replaced too, by fresh
    copies), whose forward value is the exact one-hot or 0/1 sample of the
    categorical or Bernoulli distribution with the layer's logits. Every
    other layer is the model's own layer, so the twin follows the model's
    weights as it trains. With the temperature's effect on the forward value
    gone, the twin is the discrete SBN the paper scores.

    Args:
        model: a functional model, e.g. from `build_sbn`.
        seed: `None` gives each hard layer the seed of the layer it replaces
            (so the twin of a straight-through model draws the same noise as
            the model itself does from its first call); an int gives the
            `i`-th Gumbel layer (in the model's order) `seed + i`.

    Returns:
        An uncompiled functional `keras.Model` with the model's inputs and
        outputs.
    """
    if seed is not None and (isinstance(seed, bool)
                             or not isinstance(seed, numbers.Integral)):
        raise gops._invalid("seed", "None or an integer", seed)
    counter = itertools.count()

    def harden(layer):
        if isinstance(layer, (glayers.GumbelSoftmax, glayers.STGumbel)):
            cls, extra = glayers.STGumbel, {"axis": layer.axis}
        elif isinstance(layer, (glayers.GumbelSigmoid,
                                glayers.STGumbelSigmoid)):
            cls, extra = glayers.STGumbelSigmoid, {}
        else:
            return layer  # shared: the twin uses the model's weights
        layer_seed = layer.seed if seed is None else int(seed) + next(counter)
        return cls(temperature=layer.temperature, seed=layer_seed,
                   name=f"{layer.name}_discrete", **extra)

    return keras.models.clone_model(model, clone_function=harden)


def _check_halves(x_upper, x_lower=None):
    x_upper = np.asarray(x_upper, np.float32)
    if x_upper.ndim != 2:
        raise gops._invalid("x_upper", "an array of shape (n, pixels)",
                            f"array of shape {x_upper.shape}")
    if x_lower is None:
        return x_upper
    x_lower = np.asarray(x_lower, np.float32)
    if x_lower.ndim != 2 or len(x_lower) != len(x_upper):
        raise gops._invalid(
            "x_lower", f"an array of shape ({len(x_upper)}, pixels), one row "
            "per upper half", f"array of shape {x_lower.shape}")
    return x_upper, x_lower


def _log_mean_likelihood(twin, m, upper, lower):
    """`log (1/m) sum_i p(lower | z_i)` per example, `z_i` from `twin`."""
    k = tf.shape(upper)[0]
    logits = twin(tf.repeat(upper, m, axis=0), training=False)
    log_lik = bounds.bernoulli_log_likelihood(
        tf.repeat(lower, m, axis=0), logits)
    # Rows are example-major: row j * m + i is sample i of example j.
    return bounds.log_mean_exp(tf.reshape(log_lik, (k, m)), axis=1)


def importance_sampled_nll(model, x_upper, x_lower, m=1000, batch=10,
                           seed=None):
    """The paper's test figure: `-log (1/m) sum_i p(x_lower | z_i)`.

    For each example, `m` samples `z_i` of the discrete units are drawn from
    the model given `x_upper` (through `discrete_twin(model, seed)`), and the
    Bernoulli likelihoods of `x_lower` under them are averaged in log-space
    (`bounds.log_mean_exp`). Its expectation is an upper bound of the true
    `-log p(x_lower | x_upper)` that decreases to it as `m` grows. With the
    model's own prior as proposal, the importance weights are the
    likelihoods themselves.

    Memory stays bounded: `batch` examples are processed at a time, each
    repeated `m` times, so one forward pass has `batch * m` rows (10 x 1000
    rows of 392 floats: about 16 MB per activation).

    Args:
        model: a model from `build_sbn` (trained with either estimator).
        x_upper: `(n, input_dim)` given halves.
        x_lower: `(n, output_dim)` binary halves to score.
        m: samples per example (the paper: 1000).
        batch: examples per forward pass.
        seed: the twin's noise seed (see `discrete_twin`); `None` reuses the
            model's layer seeds.

    Returns:
        A float64 numpy array of shape `(n,)`: the estimate per example, in
        nats. Its mean is the test NLL.
    """
    x_upper, x_lower = _check_halves(x_upper, x_lower)
    m = gops._check_positive_int(m, "m")
    batch = gops._check_positive_int(batch, "batch")
    twin = discrete_twin(model, seed=seed)

    # One trace per call, for any number of rows. A `partial`, not a
    # closure: TensorFlow counts the traces of closures by their code, and
    # would warn of "retracing" when the function is called for a few models.
    # No Python control flow inside, so no autograph.
    score = tf.function(
        functools.partial(_log_mean_likelihood, twin, m),
        input_signature=[
            tf.TensorSpec((None, x_upper.shape[1]), tf.float32),
            tf.TensorSpec((None, x_lower.shape[1]), tf.float32)],
        autograph=False)
    out = [-score(x_upper[s:s + batch], x_lower[s:s + batch]).numpy()
           for s in range(0, len(x_upper), batch)]
    if not out:
        return np.zeros((0,), np.float64)
    return np.concatenate(out).astype(np.float64)


def sample_lower_halves(model, x_upper, num_samples=8, seed=None,
                        pixel_seed=0):
    """Completions of given upper halves, with discrete units.

    Draws `num_samples` samples `z_i` of the discrete units for each upper
    half (through `discrete_twin`), and for each the lower half's pixel
    probabilities `sigmoid(logits)` and one binary image drawn from them.
    The average of the probabilities over many samples is the model's
    predictive mean `p(pixel = 1 | x_upper)`.

    Args:
        model: a model from `build_sbn`.
        x_upper: `(n, input_dim)` given halves.
        num_samples: samples per example.
        seed: the twin's noise seed (see `discrete_twin`).
        pixel_seed: the numpy seed of the binary pixels.

    Returns:
        `(probabilities, pixels)`, two float32 arrays of shape
        `(n, num_samples, output_dim)`; `pixels` holds 0/1.
    """
    x_upper = _check_halves(x_upper)
    num_samples = gops._check_positive_int(num_samples, "num_samples")
    twin = discrete_twin(model, seed=seed)
    logits = twin(np.repeat(x_upper, num_samples, axis=0), training=False)
    probs = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))
    probs = probs.reshape(len(x_upper), num_samples, -1).astype(np.float32)
    rng = np.random.default_rng(pixel_seed)
    pixels = (rng.random(probs.shape, dtype=np.float32) < probs).astype(
        np.float32)
    return probs, pixels


def join_halves(upper, lower):
    """28 x 28 images from upper and lower halves of 392 pixels each.

    `upper` broadcasts against `lower`: pass `upper[:, None]` to put one given
    half above several samples. The inverse of `datasets.split_halves`.

    Returns:
        A numpy array of shape `(..., 28, 28)`.
    """
    upper, lower = np.asarray(upper), np.asarray(lower)
    upper, lower = np.broadcast_arrays(
        upper, lower) if upper.shape != lower.shape else (upper, lower)
    images = np.concatenate([upper, lower], axis=-1)
    if images.shape[-1] != 2 * HALF_PIXELS:
        raise ValueError(
            "Invalid value received for argument `upper, lower`. Expected "
            f"halves of {HALF_PIXELS} pixels each. Received: halves of "
            f"{upper.shape[-1]} and {lower.shape[-1]} pixels")
    return images.reshape(images.shape[:-1] + (28, 28))
