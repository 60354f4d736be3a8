"""The math of the Gumbel-Softmax (Concrete) distribution, written once.

Also here: exact categorical and Bernoulli samples with other gradient
estimators (straight-through, ReinMax, Gumbel-Rao), on the same noise, and
k-subsets (Gumbel-top-k, relaxed by a sigmoid threshold summing to k).

Everything here is a function of the Keras backend's tensors, written once
on `keras.ops` (what differs between TensorFlow, JAX and PyTorch is in the
private `keras_gumbel._backend`): the layers in `keras_gumbel.layers` read
their temperature variable and seed generator and call these functions,
adding no math of their own.

Numerics, in one place:

- Uniform noise is drawn from `[tiny, 1)`, `tiny` the smallest normal number of
  the dtype the noise is computed in, so `-log(u)` and `log(-log(u))` are
  finite for every draw. No `+1e-20` guard: that constant is 0 in float16.
- float16 and bfloat16 inputs are computed in float32 (noise, division by the
  temperature, softmax) and the result is cast back to the input's dtype.
- The gradients are written by hand (`tf.custom_gradient` on TensorFlow,
  `keras.ops.custom_gradient` on the other backends) so that logits of
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

from keras_gumbel import _backend
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
    "straight_through",
    "reinmax",
    "gumbel_rao",
    "straight_through_sigmoid",
    "reinmax_sigmoid",
    "gumbel_rao_sigmoid",
    "gumbel_topk",
    "tempered_topk",
    "topk_mode",
]

K = keras.ops
_compute_dtype = _backend.compute_dtype


# --------------------------------------------------------------------------
# Noise.
# --------------------------------------------------------------------------


def _uniform(shape, dtype, seed):
    """Uniform noise on `[tiny, 1)`, computed in `dtype` (see
    `_backend.uniform`), for a seed with `keras.random`'s meaning."""
    return _backend.uniform(shape, dtype, _backend.seed_pair(seed))


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
    return K.cast(-K.log(-K.log(u)), dtype)


def sample_logistic(shape, dtype="float32", seed=None):
    """Draws standard logistic noise, `log(u) - log(1 - u)`, finite always.

    The difference of two independent Gumbel(0, 1) draws, from one uniform.
    Arguments as in `sample_gumbel`.
    """
    dtype = _checks.float_dtype(dtype)
    compute = _compute_dtype(dtype)
    u = _uniform(_checks.shape(shape), compute, _checks.seed(seed))
    return K.cast(_logistic(u), dtype)


def _logistic(u):
    """Standard logistic noise `log(u) - log(1 - u)` from uniform `u`: u < 1
    strictly, so log1p(-u) is finite; u >= tiny, so log(u) is too."""
    return K.log(u) - K.log1p(-u)


# --------------------------------------------------------------------------
# Relaxed samples with hand-written gradients.
# --------------------------------------------------------------------------


def _constant_along(tau, rank, axis):
    """Whether `tau`, broadcast to rank `rank`, has size 1 along `axis`
    (False where a rank is unknown when traced: then it is not known)."""
    tau_rank = _backend.rank(tau)
    if tau_rank is None or rank is None:
        return False
    position = axis - (rank - tau_rank)
    return position < 0 or tau.shape[position] == 1


def _tau_grad(z, s, tau, axis):
    """d loss / d tau, where z = p / tau and s = d loss / d z.

    d z / d tau = -z / tau. For the softmax, `s` sums to zero along the class
    axis, so where `tau` is one number per row, `z` may be shifted by its
    row maximum: that keeps `z * s` small where `s` is not zero (small
    temperatures, large logits). `-inf` entries (masked classes) have `s = 0`
    and contribute 0, not NaN (`multiply_no_nan`). The sum runs before the
    division: `tau` is constant along the summed axes, and it saves two
    passes over the logits' size where nothing fuses them (eager PyTorch).

    None where `tau` needs no gradient (`_backend.needs_grad`: a constant
    temperature in eager PyTorch), so that its cost is not paid there.
    """
    if not _backend.needs_grad(tau):
        return None
    if axis is not None and _constant_along(tau, _backend.rank(z), axis):
        z = z - K.max(z, axis=axis, keepdims=True)
    return -_backend.sum_to_shape(_backend.multiply_no_nan(z, s), tau) / tau


def _relaxed_softmax(perturbed, tau, axis, hard):
    """softmax(perturbed / tau) along `axis`, or its one-hot.

    `perturbed` is logits + Gumbel noise; the gradient flows to it and to tau
    (for the one-hot too: the straight-through estimator).
    """
    depth = _backend.depth(perturbed, axis)

    @_backend.custom_gradient
    def _fn(p, t):
        z = p / t
        y = _backend.softmax(z, axis=axis)
        if hard:
            out = _backend.one_hot(_backend.argmax(z, axis=axis), depth,
                                   axis, _backend.dtype_name(y))
        else:
            out = y

        def grad(dy):
            # The softmax's gradient, also for the hard sample
            # (straight-through): s = y * (dy - <dy, y>).
            s = _softmax_vjp(y, dy, axis)
            return s / t, _tau_grad(z, s, t, axis)

        return out, grad

    return _fn(perturbed, tau)


def _relaxed_sigmoid(perturbed, tau, hard):
    """sigmoid(perturbed / tau), or `perturbed > 0` (straight-through)."""

    @_backend.custom_gradient
    def _fn(p, t):
        z = p / t
        y = K.sigmoid(z)
        out = K.cast(z > 0, _backend.dtype_name(y)) if hard else y

        def grad(dy):
            # y * (1 - y) has no division: finite when y is exactly 0 or 1.
            s = dy * y * (1 - y)
            return s / t, _tau_grad(z, s, t, None)

        return out, grad

    return _fn(perturbed, tau)


def _temperature(temperature, x):
    """The validated temperature as a tensor of `x`'s dtype; its broadcast
    against the logits `x` must have `x`'s shape."""
    tau = _checks.temperature_tensor(temperature, _backend.dtype_name(x))
    return _checks.temperature_shape(tau, x)


def _perturbed_logits(x, temperature, seed):
    """`(logits + g, tau, dtype)` for checked logits `x`: g standard Gumbel
    noise from `seed` (checked here), both in the compute dtype, and the
    dtype to cast the result back to. `gumbel_softmax` and `gumbel_topk`
    draw the same noise for the same seed through it."""
    seed = _checks.seed(seed)
    dtype = _backend.dtype_name(x)
    x = K.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    u = _uniform(_backend.shape(x), _backend.dtype_name(x), seed)
    # x + g, g = -log(-log u) as in `sample_gumbel`, in one subtraction:
    # the same numbers with one pass fewer over the tensor.
    return x - K.log(-K.log(u)), tau, dtype


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

    >>> logits = keras.ops.log([[0.1, 0.6, 0.3]])
    >>> y = gumbel_softmax(logits, temperature=0.5, seed=1)
    >>> float(keras.ops.sum(y))  # doctest: +ELLIPSIS
    1.0...
    """
    x = _checks.logits_tensor(logits, "gumbel_softmax")
    hard = _checks.boolean(hard, "hard")
    axis = _checks.axis(axis, _backend.rank(x))
    _checks.logit_values(x, axis)
    perturbed, tau, dtype = _perturbed_logits(x, temperature, seed)
    y = _relaxed_softmax(perturbed, tau, axis, hard)
    return K.cast(y, dtype)


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
    dtype = _backend.dtype_name(x)
    x = K.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    u = _uniform(_backend.shape(x), _backend.dtype_name(x), seed)
    y = _relaxed_sigmoid(x + _logistic(u), tau, hard)
    return K.cast(y, dtype)


# The threshold of `_sigmoid_threshold` is found by safeguarded Newton steps,
# run until every row's sum is k to within this many epsilons of the dtype
# times k, or a step no longer moves it, and at most this many steps.
_THRESHOLD_TOLERANCE = 64
_THRESHOLD_MAX_STEPS = 30


def _nonzero(d):
    """A non-negative divisor with its zeros made ones: where it is 0, what
    it divides is 0 too, or the quotient is not used."""
    return K.where(d > 0, d, K.ones_like(d))


def _newton_threshold(sums, spread, s, lo, hi, tol, in_log):
    """Safeguarded Newton steps for the threshold `s` of each row.

    `sums(s)` returns `(y, excess)`: the sample at `s` and its sum minus k
    (decreasing in `s`); `spread(s, y)` the slope: where `in_log` the sum of
    y (1 - y) (the step is then Newton's in v = exp(s), where the sum is
    sum_i a_i / (a_i + v): convex and decreasing, so from below the root
    the steps stay below it and converge quadratically), else
    -d excess / d s (Newton's step in `s`). A step that would leave the
    bracket [lo, hi] (excess >= 0 at lo, <= 0 at hi) bisects instead.
    Steps run while a row's |excess| is above `tol` and its last step moved
    it, at most `_THRESHOLD_MAX_STEPS`; the slope is computed only for a
    step taken. Returns `s` and `y` at `s`.
    """
    y, excess = sums(s)

    def unsettled(s, lo, hi, y, excess, moved):
        return K.any(K.logical_and(K.abs(excess) > tol, moved))

    def step(s, lo, hi, y, excess, moved):
        lo = K.where(excess >= 0, s, lo)
        hi = K.where(excess <= 0, s, hi)
        slope = spread(s, y)
        ratio = excess / _nonzero(slope)
        if in_log:
            ok = K.logical_and(slope > 0, ratio > -1.0)
            newton = s + K.log1p(K.where(ok, ratio, K.zeros_like(ratio)))
        else:
            ok = slope > 0
            newton = s + ratio
        inside = K.logical_and(ok, K.logical_and(newton >= lo, newton <= hi))
        new = K.where(inside, newton, 0.5 * (lo + hi))
        return (new, lo, hi) + tuple(sums(new)) + (K.not_equal(new, s),)

    state = _backend.while_loop(
        unsettled, step,
        (s, lo, hi, y, excess, K.ones_like(excess, dtype="bool")),
        maximum_iterations=_THRESHOLD_MAX_STEPS)
    return state[0], state[3]


def _largest(p, k, axis):
    """The k + 1 largest entries of `p` along `axis` (largest first), their
    indices, their positions 1..k+1, and x_(k), x_(k+1) (size 1 along
    `axis`). The two are picked by masked reductions, not slices: XLA on a
    CPU turns a top_k whose values are sliced into a sort of every row
    (920 ms against 35 at (64, 128, 1000), benchmarks/results.md)."""
    top, index = _backend.top_k(p, k + 1, axis)
    position = K.cumsum(K.ones_like(top), axis=axis)
    kth = K.max(K.where(position == k, top, K.full_like(top, -np.inf)),
                axis=axis, keepdims=True)
    return top, index, position, kth, K.min(top, axis=axis, keepdims=True)


def _k_hot(p, index, position, kth, after, k, axis):
    """Exactly k ones along `axis`, at the k largest entries of `p`.

    Where x_(k) > x_(k+1) in every row, the entries above x_(k+1) are the
    top k: one comparison. Where some row has the two equal (a tie, rare
    for noisy logits), the first k of the k + 1 indices, as the backend's
    top_k breaks ties (a scatter of all k + 1 with weights 1, ..., 1, 0:
    no slice either)."""
    dtype = _backend.dtype_name(p)
    return _backend.cond(
        K.any(K.equal(after, kth)),
        lambda: _backend.scatter_along(
            index, K.cast(position <= k, dtype), p, axis, dtype),
        lambda: K.cast(p > after, dtype))


def _sigmoid_threshold(perturbed, tau, k, axis, hard):
    """The relaxed k-hot `sigmoid((perturbed - c) / tau)`, `c` per row such
    that it sums to k along `axis`, or (hard) the exact k-hot of the top k
    of `perturbed` with the relaxed one's gradient.

    Each entry is in [0, 1]; as tau -> 0, `c` lies between the k-th and the
    (k+1)-th largest entries and the sample is the exact k-hot. `c` is
    found by Newton's method kept inside a bracket (a step that would leave
    it bisects instead): with x_(k), x_(k+1) the k-th and (k+1)-th largest
    entries, the sums at `x_(k+1) - T (log K + 1)` and
    `x_(k) + T (log K + 1)` (T the largest temperature of the row) are
    >= k and < k.

    Where the temperature is one per row, Newton starts from the root of a
    small problem that stands in for the row: its k + 1 largest entries
    (the top_k the hard sample needs anyway) and, for the rest, one entry
    at mu repeated n times, n and mu matching the rest's sums of
    a = exp(x / tau) and a^2 (exact where the rest is equal; one pass over
    the logits' size). From there the row's own sum is k to rounding after
    0 to 2 steps (each a pass), against 3 to 7 from the bracket's middle
    (`benchmarks/topk_steps.py`), where Newton starts with a temperature
    that varies along the classes.

    The gradient is that of the implicit function (the threshold moves so
    that the sum stays k): with w = y (1 - y) / tau and the upstream g,
    d/d perturbed = w (g - <w, g> / <w, 1>), and d/d tau = -z times that,
    z = (perturbed - c) / tau, summed over the axes where tau is broadcast
    (`multiply_no_nan`: 0, not NaN, at masked classes). Where every entry
    of a row is 0 or 1 to float precision, w = 0 and the gradient is 0.
    """
    dtype = _backend.dtype_name(perturbed)
    depth = _backend.depth(perturbed, axis)
    static_depth = (perturbed.shape[axis]
                    if _backend.rank(perturbed) is not None else None)
    if static_depth == k:
        # Every class chosen: all ones, with zero gradients.
        @_backend.custom_gradient
        def _all(p, t):
            def grad(dy):
                return K.zeros_like(p), K.zeros_like(t)

            return K.ones_like(p), grad

        return _all(perturbed, tau)
    if hard and not (_backend.needs_grad(perturbed)
                     or _backend.needs_grad(tau)):
        # No gradient wanted (eager PyTorch without autograd, e.g.
        # `predict`): the k-hot alone, no threshold to solve for.
        _, index, position, kth, after = _largest(perturbed, k, axis)
        return _k_hot(perturbed, index, position, kth, after, k, axis)
    tol = _THRESHOLD_TOLERANCE * float(np.finfo(dtype).eps) * k

    @_backend.custom_gradient
    def _fn(p, t):
        top, index, position, kth, after = _largest(p, k, axis)
        out = _k_hot(p, index, position, kth, after, k, axis) if hard \
            else None
        # Relative to x_(k): the entries near the threshold and the
        # threshold itself are then small numbers, resolved finely (at
        # logits of 1e4, float32 holds c itself only to 1e-3).
        p = p - kth
        top = top - kth
        after = after - kth  # x_(k+1); x_(k) is now 0
        inv_t = 1.0 / t
        u = p * inv_t
        # Fewer than k + 1 finite entries: every finite one is chosen, the
        # threshold goes to -inf; 60 temperatures below x_(k) give 1.0.
        finite_after = after > -np.inf
        log_depth = K.log(K.cast(depth, dtype)) + 1.0

        def spread(s, y):
            return K.sum(y * (1.0 - y), axis=axis, keepdims=True)

        if _constant_along(t, _backend.rank(p), axis):
            # The threshold as s = c / tau, in the units of u.
            u_top = top * inv_t
            u_after = K.where(finite_after, after * inv_t,
                              K.zeros_like(after))
            lo = K.where(finite_after, u_after - log_depth,
                         K.full_like(after, -60.0))
            hi = K.zeros_like(lo) + log_depth
            # The rest's sums of a and a^2, a = exp(u - u_(k+1)) <= 1: the
            # k + 1 largest give 1 each (and ties with x_(k+1) belong to
            # the rest, with a = 1 too).
            a = K.exp(K.minimum(u - u_after, 0.0))
            m1 = K.sum(a, axis=axis, keepdims=True) - (k + 1)
            m2 = K.sum(a * a, axis=axis, keepdims=True) - (k + 1)
            ok = K.logical_and(m1 > 0, m2 > 0)
            count = K.where(ok, m1 * m1 / _nonzero(m2), K.zeros_like(m1))
            mu = u_after + K.log(K.where(ok, m2 / _nonzero(m1),
                                         K.ones_like(m1)))

            def small(s):
                y = K.sigmoid(u_top - s)
                rest = K.sigmoid(mu - s)
                return y, (K.sum(y, axis=axis, keepdims=True)
                           + count * rest - k)

            def small_slope(s, y):
                rest = K.sigmoid(mu - s)
                return spread(s, y) + count * rest * (1.0 - rest)

            def whole(s):
                y = K.sigmoid(u - s)
                return y, K.sum(y, axis=axis, keepdims=True) - k

            start = K.where(finite_after, 0.5 * u_after, lo)
            s, _ = _newton_threshold(small, small_slope, start, lo, hi,
                                     tol, True)
            s, y = _newton_threshold(whole, spread, s, lo, hi, tol, True)
            z = u - s
        else:
            t_row = K.max(t * K.ones_like(p), axis=axis, keepdims=True)
            margin = t_row * log_depth
            lo = K.where(finite_after, after - margin, -60.0 * t_row)
            hi = margin

            def whole(c):
                y = K.sigmoid(u - c * inv_t)
                return y, K.sum(y, axis=axis, keepdims=True) - k

            def slope(c, y):
                return K.sum(y * (1.0 - y) * inv_t, axis=axis, keepdims=True)

            start = K.where(finite_after, 0.5 * after, lo)
            c, y = _newton_threshold(whole, slope, start, lo, hi, tol,
                                     False)
            z = u - c * inv_t
        if not hard:
            out = y

        def grad(dy):
            w = y * (1.0 - y) * inv_t
            total = K.sum(w, axis=axis, keepdims=True)
            a = w * (dy - K.sum(w * dy, axis=axis, keepdims=True)
                     / _nonzero(total))
            grad_t = None
            if _backend.needs_grad(t):
                grad_t = -_backend.sum_to_shape(
                    _backend.multiply_no_nan(z, a), t)
            return a, grad_t

        return _backend.identity(out), grad

    return _fn(perturbed, tau)


def gumbel_topk(logits, k, temperature=1.0, hard=False, axis=-1, seed=None):
    """Draws k classes without replacement, relaxed (Gumbel-top-k).

    The indices of the k largest `logits + g` along `axis`, `g` standard
    Gumbel noise, are a sample of k classes without replacement from
    `softmax(logits)` (the Plackett-Luce distribution; Kool et al. 2019).
    With `hard=False` the result is the relaxed k-hot
    `y = sigmoid((logits + g - c) / temperature)`, the threshold `c` set per
    row so that `y` sums to k along `axis` (the form of Amos et al.'s LML
    layer, here on Gumbel-perturbed logits): each entry in [0, 1], and the
    exact k-hot as the temperature goes to 0. Its gradient is that of the
    implicit function (the threshold moves with the logits), bounded like
    a softmax's. We chose it over Xie & Ermon's successive softmaxes by
    measurement (README, "Subsets": lower error of the gradient at every
    temperature measured, gradients up to 1e19 from successive softmaxes
    at tau = 0.01). With `hard=True` the result is the exact k-hot
    (exactly k ones along `axis`), and the gradient that of the relaxed
    sample drawn with the same noise (straight-through).

    For the same seed the noise is that of `gumbel_softmax`: with `k=1`,
    `hard=True` gives `gumbel_softmax(hard=True)`'s sample.

    Args:
        logits: a float tensor of unnormalized log-probabilities. `-inf`
            masks a class: it is never chosen (while `k` is at most the
            number of finite logits in the row) and gets zero gradient.
        k: the number of classes to choose, a positive Python int at most
            the number of classes along `axis`.
        temperature: as in `gumbel_softmax` (differentiable; per-example
            temperatures broadcast against the logits).
        hard: whether to return the exact k-hot (straight-through).
        axis: the axis of the classes.
        seed: as in `gumbel_softmax`.

    Returns:
        A tensor of the shape and dtype of `logits`. float16 and bfloat16
        logits are computed in float32 and the result cast back. The
        threshold costs a top-(k+1), one pass for a starting point and
        Newton steps until every row sums to k to rounding (typically
        three passes of a sigmoid and a sum over the logits' size); the
        gradient costs about what a softmax's does.

    Example:

    >>> logits = keras.ops.zeros((2, 10))
    >>> y = gumbel_topk(logits, k=3, hard=True, seed=1)
    >>> keras.ops.convert_to_numpy(keras.ops.sum(y, axis=-1)).tolist()
    [3.0, 3.0]

    References:
        - Kool, van Hoof, Welling. Stochastic Beams and Where to Find
          Them: The Gumbel-Top-k Trick for Sampling Sequences Without
          Replacement. ICML 2019. https://arxiv.org/abs/1903.06059
        - Amos, Koltun, Kolter. The Limited Multi-Label Projection Layer.
          2019. https://arxiv.org/abs/1906.08707
        - Xie, Ermon. Reparameterizable Subset Sampling via Continuous
          Relaxations. IJCAI 2019 (the successive-softmax relaxation we
          measured against). https://arxiv.org/abs/1901.10517
    """
    x = _checks.logits_tensor(logits, "gumbel_topk")
    hard = _checks.boolean(hard, "hard")
    axis = _checks.axis(axis, _backend.rank(x))
    k = _checks.subset_size(k, x, axis)
    perturbed, tau, dtype = _perturbed_logits(x, temperature, seed)
    y = _sigmoid_threshold(perturbed, tau, k, axis, hard)
    return K.cast(y, dtype)


# --------------------------------------------------------------------------
# Exact samples with other gradient estimators.
#
# Each op draws the sample `gumbel_softmax(hard=True)` (or
# `gumbel_sigmoid(hard=True)`) draws, with the same noise for the same seed,
# and passes back a different gradient. Notation: theta the logits along
# `axis`, D the one-hot sample, g the upstream gradient, tau the temperature,
# p(x) = softmax(x) and J(p)^T g = p * (g - <p, g>).
# --------------------------------------------------------------------------


def _softmax_vjp(p, g, axis):
    """J(p)^T g = p * (g - <p, g>) along `axis`: zero where p is 0."""
    return p * (g - K.sum(p * g, axis=axis, keepdims=True))


def _categorical_sample(logits, temperature, axis, seed, func):
    """Checks the arguments and draws the one-hot Gumbel-max sample.

    Returns the logits in their compute dtype, the temperature, the
    non-negative axis, the sample, the stateless seed pair of its noise,
    the dtype to return, the perturbed logits (logits + the noise) and the
    sample's class index along `axis`.
    """
    x = _checks.logits_tensor(logits, func)
    axis = _checks.axis(axis, _backend.rank(x))
    _checks.logit_values(x, axis)
    seed = _checks.seed(seed)
    dtype = _backend.dtype_name(x)
    compute = _compute_dtype(dtype)
    x = K.cast(x, compute)
    tau = _temperature(temperature, x)
    seed_pair = _backend.seed_pair(seed)
    u = _backend.uniform(_backend.shape(x), compute, seed_pair)
    perturbed = x - K.log(-K.log(u))
    index = _backend.argmax(perturbed, axis=axis)
    sample = _backend.one_hot(index, _backend.depth(x, axis), axis, compute)
    return x, tau, axis, sample, seed_pair, dtype, perturbed, index


def _binary_sample(logits, temperature, seed, func):
    """Checks the arguments and draws the 0/1 sample `logits + l > 0`;
    returns the perturbed logits `logits + l` last."""
    x = _checks.logits_tensor(logits, func)
    _checks.logit_values(x, allow_plus_inf=True)
    seed = _checks.seed(seed)
    dtype = _backend.dtype_name(x)
    compute = _compute_dtype(dtype)
    x = K.cast(x, compute)
    tau = _temperature(temperature, x)
    seed_pair = _backend.seed_pair(seed)
    u = _backend.uniform(_backend.shape(x), compute, seed_pair)
    noise = _logistic(u)
    perturbed = x + noise
    sample = K.cast(perturbed > 0, compute)
    return x, tau, sample, seed_pair, dtype, perturbed


def _conditional_seed(seed_pair):
    """The seed of Gumbel-Rao's conditional noise, derived from the seed of
    the sample: reproducible, and independent of the sample's noise."""
    return _backend.fold_in(seed_pair, 1)


def _draws_axis(axis):
    """The class axis of a tensor of K draws, `(K,) + logits.shape`."""
    return axis + 1 if axis >= 0 else axis


def _conditional_gumbel(x, top_gumbel, log_uniform, axis):
    """theta + G conditioned on argmax(theta + G) = D, as `(gap, top)`.

    The maximum M of theta + G is distributed as logsumexp(theta) + G_0, G_0
    standard Gumbel, whatever the argmax; `top_gumbel` holds G_0, one per
    row and draw, shape `(K,) + x.shape` with size 1 along `axis` (or any
    shape that broadcasts so). Given M, every other class j is a
    Gumbel(theta_j) truncated to lie below M, drawn by inverting its CDF as
    M - softplus(M - theta_j - g_j) (Maddison et al. 2014, "A* sampling";
    Paulus et al. 2021, appendix), with g_j a fresh standard Gumbel, here
    g_j = -log(-log(u_j)) and `log_uniform` = log(u_j).

    Returns `gap = M - (theta + G)` and `top = M`. The gap is computed as
    log1p(E_j exp(A_j) exp(G_0)) with E_j = -log(u_j) and A_j =
    logsumexp(theta) - theta_j >= 0 (the softplus above, with one log1p
    per element and draw and no second log), A_j clipped at 60 and the
    excess added back: past it the log1p is its log to float precision,
    and below it nothing overflows (E_j <= 87.4, exp(G_0) <= exp(16.7) in
    float32). The gap is > 0 except at D, where it is not used (the caller
    multiplies it by `sample - 1`, a value of the formula but not a draw;
    the sample D itself is not an argument): E_j >= 6e-8,
    exp(A_j) >= 1 and exp(G_0) >= exp(-4.5) keep the log1p's argument
    above 6e-10, so the argmax stays D. Masked classes get +inf.
    """
    lse = K.logsumexp(x, axis=axis, keepdims=True)
    excess = lse - x
    # `where`, not `minimum`: Keras's `minimum` returns float32 for float64
    # inputs outside TensorFlow (its type promotion), `where` keeps them.
    clipped = K.where(excess > 60.0, K.cast(60.0, excess.dtype), excess)
    # -exp(clipped) * log(u) = E exp(clipped): the sign folded into the
    # per-class factor, computed once for all draws.
    scale = -K.exp(clipped)
    gap = (K.log1p((log_uniform * scale) * K.exp(top_gumbel))
           + (excess - clipped))
    return gap, lse + top_gumbel


def _conditional_logistic(x, sample, logistic):
    """logits + l conditioned on its sign being that of the sample.

    The two-class `_conditional_gumbel` with logits (0, x), in closed form:
    `c softplus(softplus(c x) + l')`, c = 2 b - 1, l' standard logistic.
    Infinite logits give +-inf (the sample is then certain).
    """
    c = 2.0 * sample - 1.0
    return c * K.softplus(K.softplus(c * x) + logistic)


def _rao_fresh_draws(x, sample, index, g, t, axis, num_draws, seed_pair):
    """Gumbel-Rao's sums over `num_draws` fresh conditional draws.

    `index` is the sample's class along `axis`. Returns `sum_k J(p_k)^T g`
    with `p_k = softmax((theta + G_k - M_k) / tau)`, of the logits' shape,
    and the draws' summed gradient for the temperature, of its shape. The
    draws go along a new first axis, which `g` broadcasts over:
    elementwise work and reductions, which XLA fuses.
    """
    draws_axis = _draws_axis(axis)
    shape = _backend.prepend(num_draws, _backend.shape(x))
    log_u = K.log(_backend.uniform(
        shape, _backend.dtype_name(x), _conditional_seed(seed_pair)))
    # Each draw's maximum takes the noise of its sample's class, G_0 =
    # -log(-log(u_D)) (independent of the other classes' noise). Gathered
    # where the classes are the last axis, summed against the one-hot
    # sample elsewhere (the same value). Reading `log_u` twice also makes
    # XLA write it out once, instead of fusing the draw into the loop over
    # the logits' shape, which costs it 2-4 times more (benchmarks/).
    rank = _backend.rank(x)
    if rank is not None and axis == rank - 1:
        log_u_top = _backend.gather_last(log_u, index, shape[:-1])
    else:
        log_u_top = K.sum(sample * log_u, axis=draws_axis, keepdims=True)
    top_gumbel = -K.log(-log_u_top)
    gap, _ = _conditional_gumbel(x, top_gumbel, log_u, axis)
    # z = (theta + G - M) / tau: -gap / tau, and 0 at the sample (where gap
    # is finite), in one multiplication; -inf at masked classes. It is
    # shifted already (its maximum along the classes is 0), so `_tau_grad`
    # needs no axis to shift along.
    z = gap * ((sample - 1.0) / t)
    s = _softmax_vjp(_backend.softmax(z, axis=draws_axis), g, draws_axis)
    return K.sum(s, axis=0), _tau_grad(z, s, t, None)


def straight_through(logits, temperature=1.0, axis=-1, seed=None):
    """A categorical sample with the straight-through gradient.

    Forward: the exact one-hot sample `gumbel_softmax(hard=True)` draws
    for the same seed, a draw of Categorical(softmax(logits)). Backward: the
    gradient of the noiseless `softmax(logits / temperature)`,
    `J(p(theta / tau))^T g / tau` (Bengio et al. 2013); it does not depend on
    the sample. With the temperature annealed downward (slope `1 / tau`
    rising) it is the slope-annealed straight-through estimator of Chung et
    al. 2016, Jang et al.'s "Annealed ST" (at temperature 1, their "ST").

    Args:
        logits: a float tensor of unnormalized log-probabilities. `-inf`
            masks a class: never sampled, zero gradient.
        temperature: as in `gumbel_softmax`; it only shapes the gradient.
            The temperature gets the gradient of the surrogate
            `softmax(logits / temperature)`.
        axis: the axis of the classes.
        seed: as in `gumbel_softmax`.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`.

    Example (TensorFlow; `jax.grad` and `torch.autograd` see the same
    gradient):

    >>> logits = tf.Variable(tf.math.log([[0.1, 0.6, 0.3]]))
    >>> with tf.GradientTape() as tape:
    ...     y = straight_through(logits, temperature=1.0, seed=1)
    ...     loss = tf.reduce_sum(y * [[1.0, 2.0, 3.0]])
    >>> grad = tape.gradient(loss, logits)  # J(softmax(logits))^T g

    References:
        - Bengio, Leonard, Courville. Estimating or Propagating Gradients
          Through Stochastic Neurons for Conditional Computation. 2013.
          https://arxiv.org/abs/1308.3432
        - Chung, Ahn, Bengio. Hierarchical Multiscale Recurrent Neural
          Networks. ICLR 2017. https://arxiv.org/abs/1609.01704
    """
    x, tau, axis, sample, _, dtype, _, _ = _categorical_sample(
        logits, temperature, axis, seed, "straight_through")

    @_backend.custom_gradient
    def _fn(x, t, sample):
        def grad(g):
            # Computed only here: a forward-only call costs the draw alone.
            z = x / t
            s = _softmax_vjp(_backend.softmax(z, axis=axis), g, axis)
            return s / t, _tau_grad(z, s, t, axis), None

        return _backend.identity(sample), grad

    return K.cast(_fn(x, tau, sample), dtype)


def reinmax(logits, temperature=1.0, axis=-1, seed=None):
    """A categorical sample with the ReinMax gradient.

    Forward: the exact one-hot sample `gumbel_softmax(hard=True)` draws for
    the same seed. Backward: ReinMax's second-order estimate (Liu et al.
    2023), `2 J(pi)^T g - J(p(theta))^T g / 2` with
    `pi = (p(theta / tau) + D) / 2` held constant. Its authors recommend
    `temperature >= 1` (their code refuses less); every valid temperature
    is accepted here, so that an annealing schedule may pass below 1.

    Args:
        logits: a float tensor of unnormalized log-probabilities. `-inf`
            masks a class: never sampled, zero gradient.
        temperature: as in `gumbel_softmax`; it only shapes the gradient,
            and gets none itself (`None`): the estimate is not the
            derivative of a function of the temperature, and the reference
            passes none either.
        axis: the axis of the classes.
        seed: as in `gumbel_softmax`.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`.

    Example (TensorFlow; `jax.grad` and `torch.autograd` see the same
    gradient):

    >>> logits = tf.Variable(tf.math.log([[0.1, 0.6, 0.3]]))
    >>> with tf.GradientTape() as tape:
    ...     y = reinmax(logits, temperature=1.0, seed=1)
    ...     loss = tf.reduce_sum(y * [[1.0, 2.0, 3.0]])
    >>> grad = tape.gradient(loss, logits)

    References:
        - Liu, Chen, Gao, Xu, Wang, Gao. Bridging Discrete and
          Backpropagation: Straight-Through and Beyond. NeurIPS 2023.
          https://arxiv.org/abs/2304.08612
    """
    x, tau, axis, sample, _, dtype, _, _ = _categorical_sample(
        logits, temperature, axis, seed, "reinmax")

    @_backend.custom_gradient
    def _fn(x, tau, sample):
        def grad(g):
            # 2 J(pi)^T g - J(p)^T g / 2, with 2 pi = q + D kept as one
            # tensor: 2 pi * (g - <pi, g>) - p * (g - <p, g>) / 2. Written
            # out, it makes two passes fewer over the logits' size than two
            # `_softmax_vjp` calls and their scalings (benchmarks/).
            two_pi = _backend.softmax(x / tau, axis=axis) + sample
            p = _backend.softmax(x, axis=axis)
            half_pi_g = 0.5 * K.sum(two_pi * g, axis=axis, keepdims=True)
            p_g = K.sum(p * g, axis=axis, keepdims=True)
            return (two_pi * (g - half_pi_g) - 0.5 * (p * (g - p_g)), None,
                    None)

        return _backend.identity(sample), grad

    return K.cast(_fn(x, tau, sample), dtype)


def gumbel_rao(logits, temperature=1.0, num_samples=10, axis=-1, seed=None):
    """A categorical sample with the Gumbel-Rao gradient (GR-MCK).

    Forward: the exact one-hot sample `gumbel_softmax(hard=True)` draws for
    the same seed. Backward: the straight-through Gumbel-Softmax gradient
    averaged over `num_samples` (K) Gumbel noise vectors drawn given the
    sample, `(1/K) sum_k J(p((theta + G_k) / tau))^T g / tau` with
    `argmax(theta + G_k) = D` and G_k not differentiated (Paulus et al.
    2021). Its expectation is that of `gumbel_softmax(hard=True)`'s
    gradient, and its variance lower. The forward pass's own noise is one
    of the K (it is a draw given the sample); the other K - 1 are drawn
    only when the gradient is computed: a forward-only call costs what
    `gumbel_softmax(hard=True)` costs, and at K = 1 the gradient is
    exactly `gumbel_softmax(hard=True)`'s; a gradient costs about K times
    that.

    Args:
        logits: a float tensor of unnormalized log-probabilities. `-inf`
            masks a class: never sampled, zero gradient.
        temperature: as in `gumbel_softmax`; it only shapes the gradient.
            The temperature gets the gradient of the surrogate
            `(1/K) sum_k softmax((logits + G_k) / temperature)`.
        num_samples: a positive integer, K.
        axis: the axis of the classes.
        seed: as in `gumbel_softmax`. The conditional noise's seed is
            derived from the sample's: the same seed gives the same sample
            and the same gradient.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`.

    Example (TensorFlow; `jax.grad` and `torch.autograd` see the same
    gradient):

    >>> logits = tf.Variable(tf.math.log([[0.1, 0.6, 0.3]]))
    >>> with tf.GradientTape() as tape:
    ...     y = gumbel_rao(logits, temperature=0.5, num_samples=10, seed=1)
    ...     loss = tf.reduce_sum(y * [[1.0, 2.0, 3.0]])
    >>> grad = tape.gradient(loss, logits)  # 10 conditional draws

    References:
        - Paulus, Maddison, Krause. Rao-Blackwellizing the
          Straight-Through Gumbel-Softmax Gradient Estimator. ICLR 2021.
          https://arxiv.org/abs/2010.04838
    """
    num_samples = _checks.positive_int(num_samples, "num_samples")
    (x, tau, axis, sample, seed_pair, dtype, perturbed,
     index) = _categorical_sample(
        logits, temperature, axis, seed, "gumbel_rao")

    @_backend.custom_gradient
    def _fn(x, t, sample, perturbed, index, seed_pair):
        # The forward pass's own noise is one draw of the noise given the
        # sample (its argmax is the sample by construction); its relaxed
        # sample is computed here, as `gumbel_softmax(hard=True)` computes
        # its own, so that K = 1 costs what ST Gumbel-Softmax costs. The
        # other K - 1 draws are made in the backward pass. All K are
        # independent given the sample, as in GR-MCK.
        z_own = perturbed / t
        y_own = _backend.softmax(z_own, axis=axis)

        def grad(g):
            s = _softmax_vjp(y_own, g, axis)
            grad_tau = _tau_grad(z_own, s, t, axis)
            if num_samples > 1:
                s_fresh, grad_tau_fresh = _rao_fresh_draws(
                    x, sample, index, g, t, axis, num_samples - 1,
                    seed_pair)
                s = s + s_fresh
                if grad_tau is not None:
                    grad_tau = grad_tau + grad_tau_fresh
            if grad_tau is not None:
                grad_tau = grad_tau / num_samples
            return s / (num_samples * t), grad_tau, None, None, None, None

        return _backend.identity(sample), grad

    return K.cast(_fn(x, tau, sample, perturbed, index, seed_pair), dtype)


def straight_through_sigmoid(logits, temperature=1.0, seed=None):
    """A Bernoulli sample with the straight-through gradient.

    Forward: exactly 0 or 1, the sample `gumbel_sigmoid(hard=True)` draws
    for the same seed (`P(1) = sigmoid(logits)`). Backward: the gradient of
    `sigmoid(logits / temperature)`, `s (1 - s) g / tau`; `straight_through`
    over the two classes with logits `(0, logits)`.

    Args:
        logits: a float tensor of log-odds. `+inf` and `-inf` give 1 and 0,
            with zero gradient.
        temperature: as in `straight_through`.
        seed: as in `gumbel_softmax`.

    Returns:
        A tensor of 0s and 1s of the shape and dtype of `logits`.
    """
    x, tau, sample, _, dtype, _ = _binary_sample(
        logits, temperature, seed, "straight_through_sigmoid")

    @_backend.custom_gradient
    def _fn(x, t, sample):
        def grad(g):
            z = x / t
            y = K.sigmoid(z)
            s = g * y * (1 - y)
            return s / t, _tau_grad(z, s, t, None), None

        return _backend.identity(sample), grad

    return K.cast(_fn(x, tau, sample), dtype)


def reinmax_sigmoid(logits, temperature=1.0, seed=None):
    """A Bernoulli sample with the ReinMax gradient.

    Forward as `straight_through_sigmoid`. Backward: `reinmax` over the two
    classes with logits `(0, logits)`, written directly:
    `(2 pi (1 - pi) - s (1 - s) / 2) g` with `pi = (sigmoid(logits / tau) +
    b) / 2`, `s = sigmoid(logits)` and b the sample.

    Args:
        logits: a float tensor of log-odds. `+inf` and `-inf` give 1 and 0,
            with zero gradient.
        temperature: as in `reinmax` (no gradient; `>= 1` recommended).
        seed: as in `gumbel_softmax`.

    Returns:
        A tensor of 0s and 1s of the shape and dtype of `logits`.
    """
    x, tau, sample, _, dtype, _ = _binary_sample(
        logits, temperature, seed, "reinmax_sigmoid")

    @_backend.custom_gradient
    def _fn(x, tau, sample):
        def grad(g):
            pi = 0.5 * (K.sigmoid(x / tau) + sample)
            s = K.sigmoid(x)
            return g * (2.0 * pi * (1 - pi) - 0.5 * s * (1 - s)), None, None

        return _backend.identity(sample), grad

    return K.cast(_fn(x, tau, sample), dtype)


def gumbel_rao_sigmoid(logits, temperature=1.0, num_samples=10, seed=None):
    """A Bernoulli sample with the Gumbel-Rao gradient.

    Forward as `straight_through_sigmoid`. Backward: `gumbel_rao` over the
    two classes with logits `(0, logits)`, written directly: the gradient
    of `sigmoid(v_k / tau)` averaged over K draws of `v = logits + l`
    (l logistic) given the sign of v that the sample has. For the sample
    b and `c = 2 b - 1`, `v = c softplus(softplus(c logits) + l')` with l'
    standard logistic (the two-class conditional Gumbels, in closed form).

    Args:
        logits: a float tensor of log-odds. `+inf` and `-inf` give 1 and 0,
            with zero gradient.
        temperature: as in `gumbel_rao`.
        num_samples: a positive integer, K.
        seed: as in `gumbel_rao`.

    Returns:
        A tensor of 0s and 1s of the shape and dtype of `logits`.
    """
    num_samples = _checks.positive_int(num_samples, "num_samples")
    x, tau, sample, seed_pair, dtype, perturbed = _binary_sample(
        logits, temperature, seed, "gumbel_rao_sigmoid")

    @_backend.custom_gradient
    def _fn(x, t, sample, perturbed, seed_pair):
        # The forward pass's own logistic noise is one of the K draws given
        # the sample, as in `gumbel_rao`, its relaxed value computed here;
        # K - 1 are drawn in the backward pass.
        z_own = perturbed / t
        y_own = K.sigmoid(z_own)

        def grad(g):
            s = g * y_own * (1 - y_own)
            grad_tau = _tau_grad(z_own, s, t, None)
            if num_samples > 1:
                # The K - 1 draws along a new first axis, added to the
                # forward draw's terms without concatenating them.
                shape = _backend.prepend(num_samples - 1, _backend.shape(x))
                u = _backend.uniform(shape, _backend.dtype_name(x),
                                     _conditional_seed(seed_pair))
                z = _conditional_logistic(
                    x, sample, _logistic(u)) / t
                y = K.sigmoid(z)
                s_fresh = g * y * (1 - y)
                s = s + K.sum(s_fresh, axis=0)
                if grad_tau is not None:
                    grad_tau = grad_tau + _tau_grad(z, s_fresh, t, None)
            if grad_tau is not None:
                grad_tau = grad_tau / num_samples
            return s / (num_samples * t), grad_tau, None, None, None

        return _backend.identity(sample), grad

    return K.cast(_fn(x, tau, sample, perturbed, seed_pair), dtype)


# --------------------------------------------------------------------------
# Deterministic counterparts (the layers' inference modes).
# --------------------------------------------------------------------------


def softmax_mode(logits, axis=-1):
    """One-hot of the most likely class, `one_hot(argmax(logits, axis))`.

    Ties go to the first of the tied classes: exactly one 1 per row.
    """
    x = _checks.logits_tensor(logits, "softmax_mode")
    axis = _checks.axis(axis, _backend.rank(x))
    _checks.logit_values(x, axis, allow_plus_inf=True)
    return _backend.one_hot(_backend.argmax(x, axis=axis),
                            _backend.depth(x, axis), axis,
                            _backend.dtype_name(x))


def sigmoid_mode(logits):
    """The most likely binary outcome, `logits > 0`, as 0/1 floats.

    A logit of exactly 0 (a tie) gives 0.
    """
    x = _checks.logits_tensor(logits, "sigmoid_mode")
    _checks.logit_values(x, allow_plus_inf=True)
    return K.cast(x > 0, _backend.dtype_name(x))


def tempered_softmax(logits, temperature=1.0, axis=-1):
    """The noiseless relaxation `softmax(logits / temperature)`.

    Differentiable in the logits and the temperature, with the gradients of
    `gumbel_softmax` (finite with `-inf` logits).
    """
    x = _checks.logits_tensor(logits, "tempered_softmax")
    dtype = _backend.dtype_name(x)
    x = K.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    axis = _checks.axis(axis, _backend.rank(x))
    _checks.logit_values(x, axis)
    return K.cast(_relaxed_softmax(x, tau, axis, hard=False), dtype)


def topk_mode(logits, k, axis=-1):
    """The k-hot of the k largest logits along `axis`: the most likely
    outcome of `gumbel_topk`'s k classes, exactly k ones per row (ties
    broken as the backend's `top_k` breaks them)."""
    x = _checks.logits_tensor(logits, "topk_mode")
    axis = _checks.axis(axis, _backend.rank(x))
    k = _checks.subset_size(k, x, axis, allow_plus_inf=True)
    return _backend.top_k_hot(x, k, axis, _backend.dtype_name(x))


def tempered_topk(logits, k, temperature=1.0, axis=-1):
    """The noiseless relaxed k-hot `sigmoid((logits - c) / temperature)`,
    `c` per row such that it sums to k: `gumbel_topk`'s relaxation without
    noise. Differentiable in the logits and the temperature, with
    `gumbel_topk`'s gradients."""
    x = _checks.logits_tensor(logits, "tempered_topk")
    axis = _checks.axis(axis, _backend.rank(x))
    k = _checks.subset_size(k, x, axis)
    dtype = _backend.dtype_name(x)
    x = K.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    return K.cast(_sigmoid_threshold(x, tau, k, axis, hard=False), dtype)


def tempered_sigmoid(logits, temperature=1.0):
    """The noiseless relaxation `sigmoid(logits / temperature)`.

    Differentiable in the logits and the temperature, with the gradients of
    `gumbel_sigmoid` (finite with infinite logits).
    """
    x = _checks.logits_tensor(logits, "tempered_sigmoid")
    dtype = _backend.dtype_name(x)
    x = K.cast(x, _compute_dtype(dtype))
    tau = _temperature(temperature, x)
    _checks.logit_values(x, allow_plus_inf=True)
    return K.cast(_relaxed_sigmoid(x, tau, hard=False), dtype)


# --------------------------------------------------------------------------
# KL terms for the ELBO.
# --------------------------------------------------------------------------


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
    axis = _checks.axis(axis, _backend.rank(x))
    _checks.logit_values(x, axis)
    dtype = _backend.dtype_name(x)
    compute = _compute_dtype(dtype)
    x = K.cast(x, compute)
    log_q = _backend.log_softmax(x, axis=axis)
    q = K.exp(log_q)
    # 0 * log 0 = 0: a masked class contributes nothing, with zero gradient.
    safe_log_q = K.where(q > 0, log_q, K.zeros_like(log_q))
    num_classes = K.cast(_backend.depth(x, axis), compute)
    kl = K.sum(q * safe_log_q, axis=axis) + K.log(num_classes)
    return K.cast(_backend.sum_except_first(kl), dtype)


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
    dtype = _backend.dtype_name(x)
    compute = _compute_dtype(dtype)
    x = K.cast(x, compute)
    p = K.sigmoid(x)
    # 0 * log 0 = 0 at logits of +-inf; the `where` sits on the log, not on
    # the product, so that the unused branch's gradient is not 0 * inf.
    log_p = -K.softplus(-x)
    log_1mp = -K.softplus(x)
    safe_log_p = K.where(p > 0, log_p, K.zeros_like(p))
    safe_log_1mp = K.where(p < 1, log_1mp, K.zeros_like(p))
    kl = (p * safe_log_p + (1 - p) * safe_log_1mp
          + K.convert_to_tensor(math.log(2.0), dtype=compute))
    if _backend.rank(kl) == 1:
        kl = K.sum(kl)
    else:
        kl = _backend.sum_except_first(kl)
    return K.cast(kl, dtype)
