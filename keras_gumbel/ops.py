"""The math of the Gumbel-Softmax (Concrete) distribution, written once.

Everything here is a TensorFlow function of tensors: the layers in
`keras_gumbel.layers` read their temperature variable and seed generator and
call these functions, adding no math of their own.

Numerics, in one place:

- Uniform noise is drawn from `[tiny, 1)`, `tiny` the smallest normal number of
  the dtype the noise is computed in, so `-log(u)` and `log(-log(u))` are
  finite for every draw. No `+1e-20` guard: that constant is 0 in float16.
- float16 and bfloat16 inputs are computed in float32 (noise, division by the
  temperature, softmax) and the result is cast back to the input's dtype.
- The gradients are written by hand (`tf.custom_gradient`) so that logits of
  `-inf` (masked classes) give zero gradient instead of `inf * 0 = NaN`, and so
  that the gradient with respect to the temperature stays finite at small
  temperatures and large logits.

References:
    - Jang, Gu, Poole. Categorical Reparameterization with Gumbel-Softmax.
      ICLR 2017. https://arxiv.org/abs/1611.01144
    - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous Relaxation
      of Discrete Random Variables. ICLR 2017.
      https://arxiv.org/abs/1611.00712
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_gumbel import _checks
from keras_gumbel._checks import MAX_TEMPERATURE  # noqa: F401
from keras_gumbel._checks import MIN_TEMPERATURE  # noqa: F401

__all__ = [
    "gumbel_softmax",
    "gumbel_sigmoid",
    "sample_gumbel",
    "sample_logistic",
    "kl_categorical_uniform",
    "kl_bernoulli_uniform",
    "softmax_mode",
    "sigmoid_mode",
    "tempered_softmax",
    "tempered_sigmoid",
]

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def _compute_dtype(dtype):
    return tf.float32 if dtype in _HALF_DTYPES else dtype


# --------------------------------------------------------------------------
# Noise.
# --------------------------------------------------------------------------


def _seed_pair(seed):
    """A stateless seed (two int32) drawn with `keras.random`'s semantics.

    `seed` is None, an int or a `keras.random.SeedGenerator`, and means what
    it means to `keras.random`: an int gives the same pair on every call, a
    generator a new pair each call, None the global generator (reproducible
    after `keras.utils.set_random_seed`). Drawing two integers costs nothing.
    """
    return keras.random.randint(
        (2,), minval=0, maxval=2**31 - 1, dtype="int32", seed=seed)


def _uniform(shape, dtype, seed):
    """Uniform noise on `[tiny, 1)`, computed in `dtype`.

    The floor is the smallest *normal* number: anything smaller (0, or a
    subnormal flushed to 0) would make `log(u)` infinite. The algorithm is
    Philox, named: under XLA on a CPU the default (`auto_select`) is much
    slower (see benchmarks/results.md).

    Eagerly, the draw runs as one call of a traced function: the same ops
    and numbers, without the Python overhead of running
    `tf.random.stateless_uniform`'s ops one by one.
    """
    seed = _seed_pair(seed)
    if tf.executing_eagerly():
        return _traced_uniform(tf.cast(shape, tf.int64), seed, dtype)
    return _uniform_ops(shape, dtype, seed)


def _uniform_ops(shape, dtype, seed):
    tiny = np.finfo(dtype.as_numpy_dtype).tiny
    return tf.random.stateless_uniform(
        shape, seed=seed, minval=tf.constant(tiny, dtype),
        maxval=tf.constant(1.0, dtype), dtype=dtype, alg="philox")


@tf.function(autograph=False, reduce_retracing=True)
def _traced_uniform(shape, seed, dtype):
    return _uniform_ops(shape, dtype, seed)


def sample_gumbel(shape, dtype="float32", seed=None):
    """Draws standard Gumbel(0, 1) noise, finite for every draw.

    `g = -log(-log(u))` with `u` uniform on `[tiny, 1)`: `g` lies in about
    `[-4.5, 16.6]` in float32. float16 and bfloat16 noise is computed in
    float32 and cast.

    Args:
        shape: the shape of the noise, a tuple or a 1-D integer tensor.
        dtype: a floating-point dtype.
        seed: `None`, an integer or a `keras.random.SeedGenerator`, with the
            meaning `keras.random` gives them: an integer gives the same noise
            on every call, a `SeedGenerator` new noise on each call.

    Returns:
        A tensor of `shape` and `dtype`.
    """
    dtype = _checks.float_dtype(dtype)
    compute = _compute_dtype(dtype)
    u = _uniform(_checks.shape(shape), compute, _checks.seed(seed))
    return tf.cast(-tf.math.log(-tf.math.log(u)), dtype)


def sample_logistic(shape, dtype="float32", seed=None):
    """Draws standard logistic noise, `log(u) - log(1 - u)`, finite always.

    The difference of two independent Gumbel(0, 1) draws, from one uniform.
    Arguments as in `sample_gumbel`.
    """
    dtype = _checks.float_dtype(dtype)
    compute = _compute_dtype(dtype)
    u = _uniform(_checks.shape(shape), compute, _checks.seed(seed))
    # u < 1 strictly, so log1p(-u) is finite; u >= tiny, so log(u) is too.
    return tf.cast(tf.math.log(u) - tf.math.log1p(-u), dtype)


# --------------------------------------------------------------------------
# Relaxed samples with hand-written gradients.
# --------------------------------------------------------------------------


def _sum_to_shape(grad, shape):
    """Sums a broadcast gradient back to the `shape` of its input."""
    reduce_axes, _ = tf.raw_ops.BroadcastGradientArgs(
        s0=shape, s1=tf.shape(grad))
    return tf.reshape(tf.reduce_sum(grad, axis=reduce_axes), shape)


def _constant_along(tau, rank, axis):
    """Whether `tau`, broadcast to rank `rank`, has size 1 along `axis`."""
    if tau.shape.rank is None:
        return False
    position = axis - (rank - tau.shape.rank)
    return position < 0 or tau.shape[position] == 1


def _tau_grad(z, s, tau, axis):
    """d loss / d tau, where z = p / tau and s = d loss / d z.

    d z / d tau = -z / tau. For the softmax, `s` sums to zero along the class
    axis, so where `tau` is one number per row, `z` may be shifted by its
    row maximum: that keeps `z * s` small where `s` is not zero (small
    temperatures, large logits). `-inf` entries (masked classes) have `s = 0`
    and contribute 0, not NaN (`multiply_no_nan`).
    """
    if axis is not None and _constant_along(tau, z.shape.rank, axis):
        z = z - tf.reduce_max(z, axis=axis, keepdims=True)
    return _sum_to_shape(
        -tf.math.multiply_no_nan(z, s) / tau, tf.shape(tau))


def _relaxed_softmax(perturbed, tau, axis, hard):
    """softmax(perturbed / tau) along `axis`, or its one-hot.

    `perturbed` is logits + Gumbel noise; the gradient flows to it and to tau
    (for the one-hot too: the straight-through estimator).
    """
    depth = tf.shape(perturbed)[axis]

    @tf.custom_gradient
    def _fn(p, t):
        z = p / t
        y = tf.nn.softmax(z, axis=axis)
        if hard:
            out = tf.one_hot(
                tf.argmax(z, axis=axis), depth, axis=axis, dtype=y.dtype)
        else:
            out = y

        def grad(dy):
            # The softmax's gradient, also for the hard sample
            # (straight-through): s = y * (dy - <dy, y>).
            s = y * (dy - tf.reduce_sum(dy * y, axis=axis, keepdims=True))
            return s / t, _tau_grad(z, s, t, axis)

        return out, grad

    return _fn(perturbed, tau)


def _relaxed_sigmoid(perturbed, tau, hard):
    """sigmoid(perturbed / tau), or `perturbed > 0` (straight-through)."""

    @tf.custom_gradient
    def _fn(p, t):
        z = p / t
        y = tf.math.sigmoid(z)
        out = tf.cast(z > 0, y.dtype) if hard else y

        def grad(dy):
            # y * (1 - y) has no division: finite when y is exactly 0 or 1.
            s = dy * y * (1 - y)
            return s / t, _tau_grad(z, s, t, None)

        return out, grad

    return _fn(perturbed, tau)


def _temperature(temperature, x):
    """The validated temperature as a tensor of `x`'s dtype; its broadcast
    against the logits `x` must have `x`'s shape."""
    tau = _checks.temperature_tensor(temperature, x.dtype)
    return _checks.temperature_shape(tau, x)


def gumbel_softmax(logits, temperature=1.0, hard=False, axis=-1, seed=None):
    """Draws one sample of the Gumbel-Softmax (Concrete) distribution.

    `y = softmax((logits + g) / temperature)` along `axis`, `g` standard
    Gumbel noise. With `hard=True` the forward value is the exact one-hot of
    the sample's argmax (a sample of the categorical distribution, by the
    Gumbel-max trick) and the gradient is that of the soft sample drawn with
    the same noise: the straight-through Gumbel estimator.

    Args:
        logits: a float tensor of unnormalized log-probabilities (not
            probabilities: pass `log(p)` if you hold `p`). `-inf` masks a
            class: it is never sampled and gets zero gradient.
        temperature: a positive float, a scalar tensor or variable, or a
            tensor that broadcasts against `logits` without changing their
            shape (rank at most that of `logits`, each dimension 1 or equal
            to theirs), e.g. shape `(batch, 1)` for one temperature per
            example. Differentiable. Values must lie in [1e-20, 1e20].
        hard: whether to return one-hot samples (straight-through).
        axis: the axis of the classes.
        seed: `None`, an integer or a `keras.random.SeedGenerator`, with the
            meaning `keras.random` gives them. For a given seed, `hard=True`
            and `hard=False` draw the same noise.

    Returns:
        A tensor of the shape and dtype of `logits`. float16 and bfloat16
        logits are computed in float32 and the result cast back.

    Example:

    >>> logits = tf.math.log([[0.1, 0.6, 0.3]])
    >>> y = gumbel_softmax(logits, temperature=0.5, seed=1)
    >>> float(tf.reduce_sum(y))  # doctest: +ELLIPSIS
    1.0...
    """
    x = _checks.logits_tensor(logits, "gumbel_softmax")
    hard = _checks.boolean(hard, "hard")
    axis = _checks.axis(axis, x.shape.rank)
    _checks.logit_values(x, axis)
    seed = _checks.seed(seed)
    dtype = x.dtype
    x = tf.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    u = _uniform(tf.shape(x), x.dtype, seed)
    # x + g, g = -log(-log u) as in `sample_gumbel`, in one subtraction:
    # the same numbers with one pass fewer over the tensor.
    perturbed = x - tf.math.log(-tf.math.log(u))
    y = _relaxed_softmax(perturbed, tau, axis, hard)
    return tf.cast(y, dtype)


def gumbel_sigmoid(logits, temperature=1.0, hard=False, seed=None):
    """Draws one sample of the relaxed Bernoulli (binary Concrete).

    `y = sigmoid((logits + l) / temperature)`, `l` standard logistic noise;
    each element is an independent binary variable with
    `P(1) = sigmoid(logits)`. With `hard=True` the forward value is exactly
    0 or 1 (`logits + l > 0`, a Bernoulli sample) and the gradient that of
    the soft sample drawn with the same noise.

    Args:
        logits: a float tensor of log-odds. `+inf` and `-inf` give 1 and 0.
        temperature: as in `gumbel_softmax`.
        hard: whether to return 0/1 samples (straight-through).
        seed: as in `gumbel_softmax`.

    Returns:
        A tensor of the shape and dtype of `logits`.
    """
    x = _checks.logits_tensor(logits, "gumbel_sigmoid")
    hard = _checks.boolean(hard, "hard")
    _checks.logit_values(x, allow_plus_inf=True)
    seed = _checks.seed(seed)
    dtype = x.dtype
    x = tf.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    noise = sample_logistic(tf.shape(x), x.dtype, seed)
    y = _relaxed_sigmoid(x + noise, tau, hard)
    return tf.cast(y, dtype)


# --------------------------------------------------------------------------
# Deterministic counterparts (the layers' inference modes).
# --------------------------------------------------------------------------


def softmax_mode(logits, axis=-1):
    """One-hot of the most likely class, `one_hot(argmax(logits, axis))`.

    Ties go to the first of the tied classes: exactly one 1 per row.
    """
    x = _checks.logits_tensor(logits, "softmax_mode")
    axis = _checks.axis(axis, x.shape.rank)
    _checks.logit_values(x, axis, allow_plus_inf=True)
    return tf.one_hot(
        tf.argmax(x, axis=axis), tf.shape(x)[axis], axis=axis, dtype=x.dtype)


def sigmoid_mode(logits):
    """The most likely binary outcome, `logits > 0`, as 0/1 floats.

    A logit of exactly 0 (a tie) gives 0.
    """
    x = _checks.logits_tensor(logits, "sigmoid_mode")
    _checks.logit_values(x, allow_plus_inf=True)
    return tf.cast(x > 0, x.dtype)


def tempered_softmax(logits, temperature=1.0, axis=-1):
    """The noiseless relaxation `softmax(logits / temperature)`.

    Differentiable in the logits and the temperature, with the gradients of
    `gumbel_softmax` (finite with `-inf` logits).
    """
    x = _checks.logits_tensor(logits, "tempered_softmax")
    dtype = x.dtype
    x = tf.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    axis = _checks.axis(axis, x.shape.rank)
    _checks.logit_values(x, axis)
    return tf.cast(_relaxed_softmax(x, tau, axis, hard=False), dtype)


def tempered_sigmoid(logits, temperature=1.0):
    """The noiseless relaxation `sigmoid(logits / temperature)`.

    Differentiable in the logits and the temperature, with the gradients of
    `gumbel_sigmoid` (finite with infinite logits).
    """
    x = _checks.logits_tensor(logits, "tempered_sigmoid")
    dtype = x.dtype
    x = tf.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    _checks.logit_values(x, allow_plus_inf=True)
    return tf.cast(_relaxed_sigmoid(x, tau, hard=False), dtype)


# --------------------------------------------------------------------------
# KL terms for the ELBO.
# --------------------------------------------------------------------------


def _sum_latents(kl):
    """Sums a per-variable KL over every axis but the first (the batch)."""
    if kl.shape.rank is not None and kl.shape.rank <= 1:
        return kl
    return tf.reduce_sum(kl, axis=tf.range(1, tf.rank(kl)))


def kl_categorical_uniform(logits, axis=-1):
    """KL(q || uniform) of categorical distributions given by logits.

    `KL = sum_k q_k (log q_k + log K)`, computed from `log_softmax` (log-space:
    no `log(softmax)` underflow). Classes with `-inf` logits have `q = 0` and
    add 0. Always `>= 0`.

    Args:
        logits: float tensor; the classes along `axis`. The usual VAE shape is
            `(batch, latents, classes)`.
        axis: the axis of the classes.

    Returns:
        The KL per example: summed over the classes and then over every axis
        but the first, so `(batch, latents, classes)` and `(batch, classes)`
        give shape `(batch,)`; a rank-1 input gives a scalar.
    """
    x = _checks.logits_tensor(logits, "kl_categorical_uniform")
    axis = _checks.axis(axis, x.shape.rank)
    _checks.logit_values(x, axis)
    dtype = x.dtype
    x = tf.cast(x, _compute_dtype(dtype))
    log_q = tf.nn.log_softmax(x, axis=axis)
    q = tf.math.exp(log_q)
    # 0 * log 0 = 0: a masked class contributes nothing, with zero gradient.
    safe_log_q = tf.where(q > 0, log_q, tf.zeros_like(log_q))
    num_classes = tf.cast(tf.shape(x)[axis], x.dtype)
    kl = tf.reduce_sum(q * safe_log_q, axis=axis) + tf.math.log(num_classes)
    return tf.cast(_sum_latents(kl), dtype)


def kl_bernoulli_uniform(logits):
    """KL(q || Bernoulli(0.5)) of Bernoulli variables given by log-odds.

    `KL = p log p + (1 - p) log(1 - p) + log 2`, `p = sigmoid(logits)`, with
    `log p = -softplus(-logits)` and `log(1 - p) = -softplus(logits)`
    (log-space: finite for logits up to the float range; `+-inf` give
    `log 2`).

    Args:
        logits: float tensor of log-odds, e.g. shape `(batch, units)`.

    Returns:
        The KL per example, summed over every axis but the first:
        `(batch, units)` gives shape `(batch,)`. A rank-1 input is taken as
        one example's variables and gives a scalar.
    """
    x = _checks.logits_tensor(logits, "kl_bernoulli_uniform")
    _checks.logit_values(x, allow_plus_inf=True)
    dtype = x.dtype
    x = tf.cast(x, _compute_dtype(dtype))
    p = tf.math.sigmoid(x)
    # 0 * log 0 = 0 at logits of +-inf; the `where` sits on the log, not on
    # the product, so that the unused branch's gradient is not 0 * inf.
    log_p = -tf.math.softplus(-x)
    log_1mp = -tf.math.softplus(x)
    safe_log_p = tf.where(p > 0, log_p, tf.zeros_like(p))
    safe_log_1mp = tf.where(p < 1, log_1mp, tf.zeros_like(p))
    kl = (p * safe_log_p + (1 - p) * safe_log_1mp
          + tf.constant(math.log(2.0), x.dtype))
    if kl.shape.rank == 1:
        kl = tf.reduce_sum(kl)
    else:
        kl = _sum_latents(kl)
    return tf.cast(kl, dtype)
