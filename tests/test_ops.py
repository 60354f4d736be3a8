"""Tests of `keras_gumbel.ops`, the math of the Gumbel-Softmax distribution.

They run on every Keras backend (TensorFlow, JAX, PyTorch); the few that use
TensorFlow itself (TensorFlow Probability as a reference, `tf.function`
mechanics) are marked `tf_only`.

Conventions:

- Every random draw has a fixed seed, so every test is deterministic on a
  given backend (the backends draw different noise for the same seed); the
  statistical tests still state a significance level (`ALPHA`) or a
  tolerance in standard errors, so that a failure means "this would be a
  very unlikely draw if the op were right", not "the seed was unlucky".
- Statistical references are independent of `ops`: NumPy samplers and
  closed forms, scipy's distributions, exact probabilities from the logits,
  TFP distributions (on TensorFlow), and the gradient of the textbook
  formula in float64 NumPy by the complex step (exact to round-off).
- Gradients are taken of `sum(y * w)` with weights `w` that differ per class
  and per row: the plain `sum(y)` has zero gradient through a softmax by
  construction and would prove nothing. They are the backend's own autodiff
  through the ops' hand-written gradients (`value_and_grads`).
- float64: JAX computes in float32 unless its x64 mode is on; float64 cases
  are skipped there (`needs_float64`), or run in float32 where the test
  says so.
"""

import math
import os
import re

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats

from _helpers import BACKEND
from _helpers import HAS_FLOAT64
from _helpers import as_float64
from _helpers import compiled
from _helpers import dtype_of
from _helpers import needs_float64
from _helpers import random_logits
from _helpers import tensor
from _helpers import tf_only
from _helpers import value_and_grads
from _helpers import value_and_grads_with_variables
from keras_gumbel import _backend
from keras_gumbel import ops


def _tfd():
    """TensorFlow Probability's distributions (imported by tf_only tests)."""
    import tensorflow_probability as tfp

    return tfp.distributions


# Significance level of every goodness-of-fit test (chi-square, KS, binomial).
# The seeds are fixed, so this is the false-alarm rate over choices of seed,
# not a flakiness rate.
ALPHA = 1e-3
# Mean comparisons: |difference| <= N_SE standard errors. 5 SE is a two-sided
# false-alarm rate of ~6e-7 for a (CLT-)normal estimate.
N_SE = 5.0

EULER_GAMMA = 0.5772156649015329
# float64 needs x64 on JAX.
F64 = pytest.param("float64", marks=needs_float64)
FLOAT_DTYPES = ["float16", "bfloat16", "float32", F64]
HALF_DTYPES = ["float16", "bfloat16"]
# Machine epsilon of the half dtypes (10 and 7 mantissa bits).
HALF_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
TEMPERATURES = [0.1, 0.5, 1.0, 10.0]
# Tolerance against a float64 reference, relative to the largest entry:
# 1e-5 for float32 (~100 ulps: a softmax, a division and sums of 5-8 terms),
# 1e-10 for float64.
REFERENCE_RTOL = {"float32": 1e-5, "float64": 1e-10}
# The most precise float dtype the backend computes in (float32 on JAX
# without x64), for tests that state their tolerance by it.
PRECISE = "float64" if HAS_FLOAT64 else "float32"

# Class probabilities for the Gumbel-max tests; a probability of 0 is a logit
# of -inf (a masked class).
CATEGORICAL_PROBS = {
    "uniform": [0.25, 0.25, 0.25, 0.25],
    "moderate": [0.1, 0.6, 0.3],
    "skewed": [0.9, 0.06, 0.03, 0.01],
    "masked": [0.5, 0.0, 0.2, 0.3],
}


# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------


def _logits_from_probs(probs, offset=3.0):
    """log(probs) + offset, with -inf for zero probabilities.

    The offset checks that the ops treat logits as unnormalized.
    """
    probs = np.asarray(probs, np.float64)
    with np.errstate(divide="ignore"):
        return np.log(probs) + offset


def _weights(shape):
    """Loss weights that differ per class and per row (not symmetric)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=shape) + np.arange(shape[-1])


def _weighted_grads(fn, logits, temperature, dtype="float32"):
    """y = fn(x, tau) and the gradients of sum(y * w) w.r.t. x and tau.

    `x` and `tau` are tensors of `dtype` made from `logits` and
    `temperature`; the gradients are the backend's autodiff. `fn` must draw
    with an integer seed: `y` is drawn again by a second call (the same
    sample, see `test_integer_seed_repeats`).
    """
    x = tensor(np.asarray(logits), dtype)
    tau = tensor(np.asarray(temperature), dtype)
    w = tensor(_weights(tuple(x.shape)), dtype)
    _, (grad_x, grad_tau) = value_and_grads(
        lambda x, t: keras.ops.cast(fn(x, t), dtype) * w, x, tau)
    return fn(x, tau), grad_x, grad_tau


def _np_softmax(z, axis=-1):
    """softmax along `axis` in NumPy, for real or complex `z` (the complex
    step): the maximum of the real part is subtracted."""
    z = z - z.real.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _np_sigmoid(z):
    """1 / (1 + exp(-z)) in NumPy, for real or complex `z`."""
    return 1.0 / (1.0 + np.exp(-z))


def _complex_step_grads(f, *arrays, h=1e-30):
    """The gradients of the real scalar `f(*arrays)` w.r.t. each float64
    array, by the complex step: df/da = Im f(a + i h) / h, exact to float64
    round-off (no difference of nearby values), for `f` written with
    analytic NumPy functions. One evaluation per entry."""
    arrays = [np.asarray(a, np.complex128) for a in arrays]
    grads = []
    for i, a in enumerate(arrays):
        grad = np.zeros(a.shape)
        for index in np.ndindex(a.shape):
            stepped = a.copy()
            stepped[index] += 1j * h
            args = arrays[:i] + [stepped] + arrays[i + 1:]
            grad[index] = f(*args).imag / h
        grads.append(grad)
    return grads


def _assert_close_to_reference(actual, desired, dtype):
    """`actual`, computed in `dtype`, against a reference (REFERENCE_RTOL)."""
    desired = as_float64(desired)
    rtol = REFERENCE_RTOL[dtype]
    np.testing.assert_allclose(as_float64(actual), desired, rtol=rtol,
                               atol=rtol * np.abs(desired).max())


def _assert_one_hot(y, axis):
    """Values exactly 0 or 1, and exactly one 1 along `axis`."""
    y = as_float64(y)
    assert np.all((y == 0.0) | (y == 1.0))
    np.testing.assert_array_equal(y.sum(axis=axis), 1.0)


def _assert_finite(*tensors):
    for t in tensors:
        assert t is not None
        assert np.all(np.isfinite(as_float64(t))), t


def _assert_same_nontrivial_grads(soft, hard):
    """The straight-through gradients (logits, temperature) equal the soft
    ones, which are non-trivial so that equality means something."""
    for g_soft, g_hard in zip(soft, hard):
        assert np.abs(as_float64(g_soft)).max() > 1e-3
        # Both come from the same soft sample (same noise): equal to float
        # round-off.
        np.testing.assert_allclose(as_float64(g_hard), as_float64(g_soft),
                                   rtol=1e-6,
                                   atol=1e-7)


def _chisquare_p(counts, probs):
    """Chi-square p-value of `counts` against `probs`.

    Classes of probability 0 are left out of the test (their expected count
    is 0); the caller asserts that they were never drawn.
    """
    counts = np.asarray(counts, np.float64)
    probs = np.asarray(probs, np.float64)
    keep = probs > 0
    expected = counts.sum() * probs[keep] / probs[keep].sum()
    return scipy.stats.chisquare(counts[keep], expected).pvalue


def _assert_means_close(a, b):
    """Means of two independent samples within N_SE standard errors."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    se = np.sqrt(a.var(axis=0) / len(a) + b.var(axis=0) / len(b))
    # `1e-12` allows identical degenerate samples (se = 0).
    assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) <= N_SE * se
                  + 1e-12), (a.mean(axis=0), b.mean(axis=0), se)


# --------------------------------------------------------------------------
# 1. Gumbel-max: hard samples are draws of Categorical(softmax(logits)).
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CATEGORICAL_PROBS))
def test_hard_gumbel_softmax_frequencies_match_softmax(name):
    # N = 20000 draws; the smallest non-zero expected count is 200.
    n = 20000
    probs = CATEGORICAL_PROBS[name]
    logits = np.tile(_logits_from_probs(probs), (n, 1)).astype(np.float32)
    y = ops.gumbel_softmax(logits, temperature=0.5, hard=True, seed=1234)
    _assert_one_hot(y, axis=-1)
    counts = as_float64(y).sum(axis=0)
    # A class of probability 0 (logit -inf) is never drawn.
    np.testing.assert_array_equal(counts[np.asarray(probs) == 0], 0)
    assert _chisquare_p(counts, probs) > ALPHA, (counts, probs)


@pytest.mark.parametrize("layout", ["rank2_axis0", "rank3_axis1",
                                    "rank3_axis-2"])
def test_hard_gumbel_softmax_frequencies_along_other_axis(layout):
    # Classes along an axis other than the last; N = 20000 draws per
    # distribution, each distribution tested at ALPHA / 2 (Bonferroni).
    n = 20000
    dists = [CATEGORICAL_PROBS["skewed"], CATEGORICAL_PROBS["masked"]]
    if layout == "rank2_axis0":
        dists = dists[:1]
        # (classes, n): one draw per column.
        logits = np.tile(_logits_from_probs(dists[0])[:, None], (1, n))
        axis, count_axes = 0, (1,)
    else:
        # (n, classes, 2): column c along the last axis is distribution c.
        column = np.stack([_logits_from_probs(p) for p in dists], axis=-1)
        logits = np.tile(column[None], (n, 1, 1))
        axis = 1 if layout == "rank3_axis1" else -2
        count_axes = (0,)
    y = ops.gumbel_softmax(logits.astype(np.float32), temperature=1.0,
                           hard=True, axis=axis, seed=99)
    assert y.shape == logits.shape
    _assert_one_hot(y, axis=axis)
    counts = as_float64(y).sum(axis=count_axes)
    if counts.ndim == 1:
        counts = counts[:, None]
    for c, probs in enumerate(dists):
        np.testing.assert_array_equal(
            counts[np.asarray(probs) == 0, c], 0)
        assert _chisquare_p(counts[:, c], probs) > ALPHA / len(dists)


def test_hard_gumbel_sigmoid_frequencies_match_sigmoid():
    # N = 20000 draws per unit; an exact binomial test per unit at
    # ALPHA / units (Bonferroni). Reference: P(1) = sigmoid(logit), exactly.
    n = 20000
    logits = np.array([-2.0, -0.5, 0.0, 1.0, 3.0], np.float32)
    y = as_float64(ops.gumbel_sigmoid(np.tile(logits, (n, 1)), temperature=0.3,
                                hard=True, seed=7))
    assert np.all((y == 0.0) | (y == 1.0))
    probs = scipy.special.expit(logits.astype(np.float64))
    for unit, p in enumerate(probs):
        k = int(y[:, unit].sum())
        assert scipy.stats.binomtest(k, n, p).pvalue > ALPHA / len(probs)


# --------------------------------------------------------------------------
# 2. Relaxed samples follow the Concrete distribution.
# --------------------------------------------------------------------------


# The reference samplers of the Concrete distributions: TFP's (on
# TensorFlow), and NumPy's Gumbel / logistic draws through the closed form.
SAMPLERS = ["numpy", pytest.param("tfp", marks=tf_only)]
# Where a float32 sample and a float64 NumPy reference differ only by
# rounding: below the smallest normal float32 (underflow, flushed to 0 or
# not depending on the backend) and within a few float32 ulps of 1 (rounded
# to exactly 1). Both samples are clipped to [KS_LOW, KS_HIGH] before the
# KS tests against the NumPy reference: a monotone map applied to both
# samples, so the test stays valid, and the mass beyond the ends is still
# compared (as ties at the end).
KS_LOW, KS_HIGH = 1e-30, 1.0 - 1e-4


def _ks_samples(ours, reference, sampler):
    if sampler == "numpy":
        return (np.clip(ours, KS_LOW, KS_HIGH),
                np.clip(reference, KS_LOW, KS_HIGH))
    return ours, reference


def _reference_relaxed_one_hot(sampler, temperature, logits, n):
    """n samples of the Concrete distribution, independent of `ops`."""
    if sampler == "tfp":
        return as_float64(_tfd().RelaxedOneHotCategorical(
            temperature, logits=logits).sample(n, seed=(3, 14)))
    g = np.random.default_rng(314).gumbel(size=(n, len(logits)))
    return _np_softmax((logits.astype(np.float64) + g) / temperature)


def _reference_relaxed_bernoulli(sampler, temperature, logits, n):
    """n samples of the binary Concrete distribution, independent of
    `ops`."""
    if sampler == "tfp":
        return as_float64(_tfd().RelaxedBernoulli(
            temperature, logits=logits).sample(n, seed=(2, 71)))
    noise = np.random.default_rng(271).logistic(size=(n, len(logits)))
    return scipy.special.expit(
        (logits.astype(np.float64) + noise) / temperature)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_gumbel_softmax_matches_reference_concrete_sampler(temperature,
                                                           sampler):
    # N = 20000 samples from each; two-sample KS per coordinate at
    # ALPHA / classes (Bonferroni), and means within N_SE standard errors.
    # The reference is TFP's RelaxedOneHotCategorical, or NumPy's Gumbel
    # draws through softmax((logits + g) / tau) in float64 (then both are
    # clipped as `_ks_samples` says). At tau = 0.1 many coordinates round to
    # exactly 0 or 1; ks_2samp handles the ties.
    n = 20000
    logits = _logits_from_probs([0.1, 0.6, 0.3]).astype(np.float32)
    ours = as_float64(ops.gumbel_softmax(np.tile(logits, (n, 1)), temperature,
                                         seed=2024))
    reference = _reference_relaxed_one_hot(sampler, temperature, logits, n)
    assert ours.shape == reference.shape == (n, 3)
    ours_ks, reference_ks = _ks_samples(ours, reference, sampler)
    for k in range(3):
        p = scipy.stats.ks_2samp(ours_ks[:, k], reference_ks[:, k]).pvalue
        assert p > ALPHA / 3, (k, p)
    _assert_means_close(ours, reference)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_gumbel_softmax_log_ratio_is_logistic(temperature):
    # Closed form: with y = softmax((x + g) / tau), the scaled log-ratio
    # tau * (log y_i - log y_j) = x_i - x_j + g_i - g_j, and the difference of
    # two independent Gumbel(0, 1) is Logistic(0, 1). One-sample KS against
    # scipy's logistic CDF, N = 20000, at ALPHA / 2 for two pairs. float64,
    # so that no coordinate underflows to 0 at tau = 0.1; on JAX without x64,
    # float32, where tau = 0.1 is skipped (scaled gaps beyond ~87 underflow)
    # and at tau >= 0.5 the largest scaled gap, ~(3 + 11) / 0.5 = 28, does
    # not.
    if PRECISE == "float32" and temperature < 0.5:
        pytest.skip("float32 (JAX without x64): coordinates underflow to 0 "
                    "at tau = 0.1")
    n = 20000
    logits = np.array([0.5, -1.0, 2.0], PRECISE)
    y = as_float64(ops.gumbel_softmax(np.tile(logits, (n, 1)), temperature,
                                      seed=31))
    assert np.all(y > 0)
    for i, j in [(0, 1), (2, 0)]:
        ratio = temperature * (np.log(y[:, i]) - np.log(y[:, j]))
        p = scipy.stats.kstest(
            ratio, scipy.stats.logistic(loc=logits[i] - logits[j]).cdf).pvalue
        assert p > ALPHA / 2, (i, j, p)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_gumbel_sigmoid_matches_reference_relaxed_bernoulli(temperature,
                                                            sampler):
    # N = 20000 per unit, 3 units. Two-sample KS against TFP's
    # RelaxedBernoulli, or NumPy's logistic draws through
    # sigmoid((logits + l) / tau) in float64 (both then clipped as
    # `_ks_samples` says), at ALPHA / 3 (Bonferroni over units); means within
    # N_SE standard errors. Saturated draws (exactly 0 or 1 in float32) are
    # ties, which ks_2samp handles.
    n = 20000
    logits = np.array([-1.5, 0.0, 2.0], np.float32)
    ours = as_float64(ops.gumbel_sigmoid(np.tile(logits, (n, 1)), temperature,
                                         seed=77))
    reference = _reference_relaxed_bernoulli(sampler, temperature, logits, n)
    assert ours.shape == reference.shape == (n, 3)
    ours_ks, reference_ks = _ks_samples(ours, reference, sampler)
    for unit in range(3):
        p = scipy.stats.ks_2samp(ours_ks[:, unit],
                                 reference_ks[:, unit]).pvalue
        assert p > ALPHA / 3, (unit, p)
    _assert_means_close(ours, reference)


# tau = 0.1 is left out: there sigmoid(z) rounds to exactly 1.0 (float64,
# z > ~37) for ~15% of the draws at logit 2, an atom that a one-sample KS
# against a continuous CDF cannot take. The reference-sampler comparison
# covers tau = 0.1. On JAX without x64 the test runs in float32, where
# sigmoid(z) rounds to 1 for z > ~16.6: ~0.2% of the draws at logit 2 and
# tau = 0.5 (skipped there), < 1e-6 at tau >= 1.
@pytest.mark.parametrize("temperature", [0.5, 1.0, 10.0])
def test_gumbel_sigmoid_matches_closed_form_cdf(temperature):
    # Closed form: Y = sigmoid((x + L) / tau), L ~ Logistic(0, 1), so
    # P(Y <= y) = sigmoid(tau * logit(y) - x). One-sample KS, N = 20000 per
    # unit, at ALPHA / 3 (Bonferroni over 3 units). float64 (float32 on JAX
    # without x64).
    if PRECISE == "float32" and temperature < 1.0:
        pytest.skip("float32 (JAX without x64): samples round to exactly 1 "
                    "for ~0.2% of the draws at tau = 0.5")
    n = 20000
    logits = np.array([-1.5, 0.0, 2.0], PRECISE)
    y = as_float64(ops.gumbel_sigmoid(np.tile(logits, (n, 1)), temperature,
                                      seed=78))
    for unit, x in enumerate(logits):

        def cdf(v, x=x):
            return scipy.special.expit(
                temperature * scipy.special.logit(v) - x)

        p = scipy.stats.kstest(y[:, unit], cdf).pvalue
        assert p > ALPHA / 3, (unit, p)


# name: (mean, variance, excess kurtosis, scipy distribution, seed).
# Gumbel(0, 1): mean = Euler-Mascheroni gamma, variance pi^2 / 6, excess
# kurtosis 12 / 5. Logistic(0, 1): mean 0, variance pi^2 / 3, excess
# kurtosis 6 / 5.
NOISE_MOMENTS = {
    "sample_gumbel": (EULER_GAMMA, math.pi**2 / 6, 12 / 5,
                      scipy.stats.gumbel_r, 11),
    "sample_logistic": (0.0, math.pi**2 / 3, 6 / 5, scipy.stats.logistic,
                        12),
}


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", F64])
@pytest.mark.parametrize("name", sorted(NOISE_MOMENTS))
def test_noise_moments_and_distribution(name, dtype):
    # N = 10^6. Standard errors: sqrt(var / N) for the mean, and
    # var * sqrt((excess kurtosis + 2) / N) for the variance; both within
    # N_SE. Plus a KS test against scipy's distribution.
    mean, var, excess_kurtosis, dist, seed = NOISE_MOMENTS[name]
    n = 10**6
    noise = getattr(ops, name)((n,), dtype=dtype, seed=seed)
    assert dtype_of(noise) == dtype and tuple(noise.shape) == (n,)
    noise = as_float64(noise)
    assert abs(noise.mean() - mean) <= N_SE * math.sqrt(var / n)
    assert abs(noise.var() - var) <= N_SE * var * math.sqrt(
        (excess_kurtosis + 2) / n)
    assert scipy.stats.kstest(noise, dist.cdf).pvalue > ALPHA


# --------------------------------------------------------------------------
# 3. Straight-through estimator and the hand-written gradients.
# --------------------------------------------------------------------------

# (logits shape, class axis) for the categorical gradient tests.
CATEGORICAL_LAYOUTS = [((16, 5), -1), ((5, 16), 0), ((4, 5, 3), 1)]


@pytest.mark.parametrize("shape,axis", CATEGORICAL_LAYOUTS)
def test_hard_gumbel_softmax_is_one_hot_of_soft_sample(shape, axis):
    logits = random_logits(shape).astype(np.float32)
    soft = ops.gumbel_softmax(logits, 0.7, hard=False, axis=axis, seed=5)
    hard = ops.gumbel_softmax(logits, 0.7, hard=True, axis=axis, seed=5)
    _assert_one_hot(hard, axis=axis)
    # Same seed, same noise: the hard sample is the argmax of the soft one.
    np.testing.assert_array_equal(
        np.argmax(as_float64(hard), axis=axis),
        np.argmax(as_float64(soft), axis=axis))


@pytest.mark.parametrize("shape,axis", CATEGORICAL_LAYOUTS)
@pytest.mark.parametrize("per_example", [False, True])
def test_hard_gumbel_softmax_gradient_equals_soft_gradient(shape, axis,
                                                           per_example):
    logits = random_logits(shape, seed=1)
    if per_example:
        # One temperature per position outside the class axis.
        tau_shape = list(shape)
        tau_shape[axis] = 1
        temperature = np.random.default_rng(2).uniform(0.3, 2.0, tau_shape)
    else:
        temperature = 0.7

    def run(hard):
        return _weighted_grads(
            lambda x, t: ops.gumbel_softmax(x, t, hard=hard, axis=axis,
                                            seed=21),
            logits, temperature)

    _, gx_soft, gt_soft = run(False)
    y_hard, gx_hard, gt_hard = run(True)
    _assert_one_hot(y_hard, axis=axis)
    assert tuple(gx_hard.shape) == shape
    assert tuple(gt_hard.shape) == np.shape(temperature)
    _assert_same_nontrivial_grads((gx_soft, gt_soft), (gx_hard, gt_hard))


@pytest.mark.parametrize("per_example", [False, True])
def test_hard_gumbel_sigmoid_gradient_equals_soft_gradient(per_example):
    shape = (16, 6)
    logits = random_logits(shape, seed=3)
    temperature = (np.random.default_rng(4).uniform(0.3, 2.0, (16, 1))
                   if per_example else 0.6)

    def run(hard):
        return _weighted_grads(
            lambda x, t: ops.gumbel_sigmoid(x, t, hard=hard, seed=8),
            logits, temperature)

    y_soft, gx_soft, gt_soft = run(False)
    y_hard, gx_hard, gt_hard = run(True)
    y_hard = as_float64(y_hard)
    assert np.all((y_hard == 0.0) | (y_hard == 1.0))
    # Same noise: the hard sample is the soft one thresholded at 1/2.
    np.testing.assert_array_equal(y_hard, (as_float64(y_soft) > 0.5))
    assert tuple(gt_hard.shape) == np.shape(temperature)
    _assert_same_nontrivial_grads((gx_soft, gt_soft), (gx_hard, gt_hard))


# Temperature shapes for logits of shape (batch, classes) = (8, 5): the
# docstring allows any tensor that broadcasts against the logits.
TEMPERATURE_SHAPES = {
    "scalar": (),
    "per_example": (8, 1),
    "per_class": (1, 5),
    "per_element": (8, 5),
}


def _float64_reference(kind, dtype, seed, logits, temperature):
    """The textbook formula and its gradients, in float64 NumPy, with the
    op's noise.

    The noise is `sample_gumbel` / `sample_logistic` in `dtype` with the same
    integer seed, cast to float64; `logits` and `temperature` are already
    rounded to `dtype`. The gradients of sum(y * w) are the complex step's
    (exact to float64 round-off), independent of the backend's autodiff and
    of the ops' hand-written gradients; float64 makes the reference more
    accurate than a float32 op, so the comparison tests the op, not the
    reference.
    """
    shape = logits.shape
    if kind == "softmax":
        g = as_float64(ops.sample_gumbel(shape, dtype=dtype, seed=seed))

        def formula(x, t):
            return _np_softmax((x + g) / t, axis=-1)
    else:
        noise = as_float64(ops.sample_logistic(shape, dtype=dtype, seed=seed))

        def formula(x, t):
            return _np_sigmoid((x + noise) / t)

    x = logits.astype(np.float64)
    t = temperature.astype(np.float64)
    w = _weights(shape)
    gx, gt = _complex_step_grads(lambda x, t: np.sum(formula(x, t) * w),
                                 x, t)
    return formula(x, t), gx, gt


@pytest.mark.parametrize("dtype", ["float32", F64])
@pytest.mark.parametrize("tau_shape", sorted(TEMPERATURE_SHAPES))
@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_soft_gradient_matches_float64_reference(kind, tau_shape, dtype):
    # The hand-written gradients (w.r.t. logits and temperature), through
    # the backend's autodiff, against the complex-step gradient of
    # softmax((x + g) / tau) or sigmoid((x + l) / tau) in float64.
    shape, seed = (8, 5), 17
    logits = random_logits(shape, seed=6).astype(dtype)
    temperature = np.random.default_rng(7).uniform(
        0.3, 2.0, TEMPERATURE_SHAPES[tau_shape]).astype(dtype)
    op = ops.gumbel_softmax if kind == "softmax" else ops.gumbel_sigmoid
    y, gx, gt = _weighted_grads(lambda x, t: op(x, t, seed=seed), logits,
                                temperature, dtype)
    y_ref, gx_ref, gt_ref = _float64_reference(kind, dtype, seed, logits,
                                               temperature)
    assert dtype_of(y) == dtype_of(gx) == dtype_of(gt) == dtype
    assert tuple(gx.shape) == shape
    assert tuple(gt.shape) == temperature.shape
    _assert_close_to_reference(y, y_ref, dtype)
    _assert_close_to_reference(gx, gx_ref, dtype)
    _assert_close_to_reference(gt, gt_ref, dtype)


@pytest.mark.parametrize("shape,axis", CATEGORICAL_LAYOUTS)
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_noise_is_sample_gumbel(shape, axis, hard):
    # With an integer seed S, gumbel_softmax(x, tau, seed=S) uses exactly
    # g = sample_gumbel(shape(x), seed=S).
    x = tensor(random_logits(shape, seed=10), "float32")
    g = ops.sample_gumbel(tuple(x.shape), seed=42)
    y = ops.gumbel_softmax(x, 0.4, hard=hard, axis=axis, seed=42)
    soft = keras.ops.softmax((x + g) / 0.4, axis=axis)
    if hard:
        expected = keras.ops.one_hot(keras.ops.argmax(soft, axis=axis),
                                     shape[axis],
                                     axis=axis if axis >= 0 else -1)
        np.testing.assert_array_equal(as_float64(y), as_float64(expected))
    else:
        np.testing.assert_allclose(as_float64(y), as_float64(soft),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_sigmoid_noise_is_sample_logistic(hard):
    x = tensor(random_logits((10, 4), seed=11), "float32")
    noise = ops.sample_logistic(tuple(x.shape), seed=43)
    y = ops.gumbel_sigmoid(x, 0.4, hard=hard, seed=43)
    if hard:
        np.testing.assert_array_equal(as_float64(y),
                                      as_float64(x + noise > 0))
    else:
        np.testing.assert_allclose(
            as_float64(y), as_float64(keras.ops.sigmoid((x + noise) / 0.4)),
            rtol=1e-6,
            atol=1e-7)


@pytest.mark.parametrize("fn", ["gumbel_softmax", "gumbel_sigmoid"])
def test_temperature_as_keras_variable_gets_a_gradient(fn):
    # The layers hold the temperature in a keras.Variable: its gradient, as
    # the backend's training takes it, equals that of a plain tensor.
    x = tensor(random_logits((6, 4), seed=12), "float32")
    w = tensor(_weights((6, 4)), "float32")
    op = getattr(ops, fn)
    tau = keras.Variable(0.8)
    _, _, (grad,) = value_and_grads_with_variables(
        lambda: op(x, tau, seed=3) * w, [tau])
    _, (grad_ref,) = value_and_grads(lambda t: op(x, t, seed=3) * w,
                                     tensor(0.8, "float32"))
    assert grad is not None and abs(float(grad_ref)) > 1e-3
    np.testing.assert_allclose(float(grad), float(grad_ref), rtol=1e-6)


# --------------------------------------------------------------------------
# 4. Seeds.
# --------------------------------------------------------------------------

RANDOM_FNS = {
    "gumbel_softmax": lambda seed: ops.gumbel_softmax(
        keras.ops.zeros((50, 4)), 0.5, seed=seed),
    "gumbel_softmax_hard": lambda seed: ops.gumbel_softmax(
        keras.ops.zeros((50, 4)), 0.5, hard=True, seed=seed),
    "gumbel_sigmoid": lambda seed: ops.gumbel_sigmoid(
        keras.ops.zeros((50, 4)), 0.5, seed=seed),
    "sample_gumbel": lambda seed: ops.sample_gumbel((50, 4), seed=seed),
    "sample_logistic": lambda seed: ops.sample_logistic((50, 4), seed=seed),
}


@pytest.mark.parametrize("name", sorted(RANDOM_FNS))
def test_integer_seed_repeats(name):
    fn = RANDOM_FNS[name]
    np.testing.assert_array_equal(as_float64(fn(123)), as_float64(fn(123)))
    # ... and a different integer gives different noise.
    assert not np.array_equal(as_float64(fn(123)), as_float64(fn(124)))


@pytest.mark.parametrize("name", sorted(RANDOM_FNS))
def test_seed_generator_advances_and_is_reproducible(name):
    fn = RANDOM_FNS[name]
    gen_a = keras.random.SeedGenerator(7)
    gen_b = keras.random.SeedGenerator(7)
    first_a, second_a = as_float64(fn(gen_a)), as_float64(fn(gen_a))
    first_b, second_b = as_float64(fn(gen_b)), as_float64(fn(gen_b))
    # New noise on each call...
    assert not np.array_equal(first_a, second_a)
    # ... and the same sequence from the same seed.
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(second_a, second_b)


@pytest.mark.parametrize("name", sorted(RANDOM_FNS))
def test_no_seed_gives_new_noise(name):
    fn = RANDOM_FNS[name]
    assert not np.array_equal(as_float64(fn(None)), as_float64(fn(None)))


def _same_draw(name, a, b):
    """The noise bit for bit; the samples to float32 rounding (a compiled
    function may rewrite the division by the temperature), far below what
    another draw would change."""
    if name.startswith("sample_"):
        np.testing.assert_array_equal(as_float64(a), as_float64(b))
    else:
        np.testing.assert_allclose(as_float64(a), as_float64(b),
                                   rtol=1e-6, atol=0)


def _compiled_with_generator(fn, generator):
    """`fn(generator)` compiled, the generator's state carried as a compiled
    training step carries it: a `tf.function` updates the variable; on JAX
    the state goes into `jax.jit` through a `keras.StatelessScope` and the
    new state is assigned after the call; PyTorch runs eagerly."""
    if BACKEND != "jax":
        return compiled(lambda: fn(generator), jit_compile=False)
    import jax

    @jax.jit
    def step(state):
        with keras.StatelessScope(
                state_mapping=[(generator.state, state)]) as scope:
            out = fn(generator)
        return out, scope.get_current_value(generator.state)

    def call():
        out, state = step(generator.state.value)
        generator.state.assign(state)
        return out

    return call


@pytest.mark.parametrize("name", sorted(RANDOM_FNS))
def test_eager_and_compiled_draw_the_same_integer_seed_noise(name):
    # On TensorFlow the uniform is drawn eagerly by a traced function, in a
    # graph by the ops themselves; on JAX eagerly or under jax.jit. The
    # noise must not depend on which. (TensorFlow under XLA is not compared:
    # there `stateless_uniform` draws other numbers than eagerly, Philox
    # named or not.)
    fn = RANDOM_FNS[name]
    _same_draw(name, fn(123),
               compiled(lambda: fn(123), jit_compile=False)())


@pytest.mark.parametrize("name", sorted(RANDOM_FNS))
def test_eager_and_compiled_draw_the_same_generator_noise(name):
    # A SeedGenerator advanced inside a compiled function gives the sequence
    # it gives eagerly.
    fn = RANDOM_FNS[name]
    gen_eager = keras.random.SeedGenerator(7)
    graph_fn = _compiled_with_generator(fn, keras.random.SeedGenerator(7))
    for _ in range(2):
        _same_draw(name, fn(gen_eager), graph_fn())


# --------------------------------------------------------------------------
# 5. Numerics.
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn", ["sample_gumbel", "sample_logistic"])
def test_noise_is_finite_for_a_large_draw(fn, dtype):
    # 10^6 draws. A uniform computed naively in float16 hits u = 0 with
    # probability ~2^-11 per draw, so this would see an inf; the floor at the
    # smallest normal number (and float32 computation for half dtypes) keeps
    # every draw finite.
    noise = getattr(ops, fn)((10**6,), dtype=dtype, seed=2)
    assert dtype_of(noise) == dtype
    values = as_float64(noise)
    assert np.all(np.isfinite(values))
    # Not a constant: the noise spans more than a unit interval.
    assert values.max() - values.min() > 5.0


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("edge", ["lowest", "highest"])
@pytest.mark.parametrize("fn", ["sample_gumbel", "sample_logistic"])
def test_noise_is_finite_at_the_edges_of_the_uniform_draw(
        monkeypatch, fn, edge, dtype):
    # The extreme uniform draws are too rare to hit by sampling (2^-23 per
    # draw in float32), so the generator is replaced by one that returns
    # exactly the lowest value it may return or the highest (the largest
    # float below `maxval` = 1). On TensorFlow the generator is
    # `tf.random.stateless_uniform`, whose `minval` must be the floor (> 0);
    # on PyTorch `torch.rand`, and elsewhere `keras.random.uniform`, both
    # from 0, which the op must floor.
    calls = []

    if BACKEND == "tensorflow":
        import tensorflow as tf

        original = tf.random.stateless_uniform

        def edge_uniform(shape, seed, minval=0, maxval=None,
                         dtype=tf.float32, **kwargs):
            if not tf.as_dtype(dtype).is_floating:  # the seed pair
                return original(shape, seed, minval, maxval, dtype, **kwargs)
            calls.append(dtype)
            minval = tf.convert_to_tensor(minval, dtype)
            maxval = tf.convert_to_tensor(maxval, dtype)
            value = minval if edge == "lowest" else tf.math.nextafter(
                maxval, tf.zeros_like(maxval))
            return tf.fill(shape, value)

        monkeypatch.setattr(tf.random, "stateless_uniform", edge_uniform)
        # Eagerly the draw runs in a cached traced function: trace anew.
        monkeypatch.setattr(_backend, "_TRACED_UNIFORM", [])
    elif BACKEND == "torch":
        import torch

        def edge_rand(*size, dtype=None, **kwargs):
            calls.append(dtype)
            if len(size) == 1 and isinstance(size[0], (tuple, list)):
                size = tuple(size[0])
            lowest = torch.zeros((), dtype=dtype)
            value = lowest if edge == "lowest" else torch.nextafter(
                torch.ones((), dtype=dtype), lowest)
            return torch.full(size, value.item(), dtype=dtype,
                              device=kwargs.get("device"))

        monkeypatch.setattr(torch, "rand", edge_rand)
    else:

        def edge_uniform(shape, minval=0.0, maxval=1.0, dtype=None,
                         seed=None):
            calls.append(dtype)
            np_dtype = np.dtype(keras.backend.standardize_dtype(dtype))
            value = (np.asarray(minval, np_dtype) if edge == "lowest"
                     else np.nextafter(np.asarray(maxval, np_dtype),
                                       np_dtype.type(0)))
            return keras.ops.full(shape, value, dtype=dtype)

        monkeypatch.setattr(keras.random, "uniform", edge_uniform)
    noise = as_float64(getattr(ops, fn)((4,), dtype=dtype, seed=0))
    assert calls, "the patched generator was not called"
    assert np.all(np.isfinite(noise)), noise


# Logits with masked classes (-inf), classes along the last axis.
MASKED_LOGITS = np.array([[0.0, -np.inf, 1.0, 2.0],
                          [-np.inf, 3.0, -np.inf, 0.0],
                          [-np.inf, -np.inf, -np.inf, 5.0]], np.float32)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_gumbel_softmax_masked_logits(hard, temperature):
    # 3 x 500 rows: the masked classes get exactly 0, in the sample and in the
    # gradient, and nothing is NaN.
    logits = np.tile(MASKED_LOGITS, (500, 1))
    y, gx, gt = _weighted_grads(
        lambda x, t: ops.gumbel_softmax(x, t, hard=hard, seed=4),
        logits, temperature)
    _assert_finite(y, gx, gt)
    mask = np.isinf(logits)
    assert np.all(as_float64(y)[mask] == 0.0)
    assert np.all(as_float64(gx)[mask] == 0.0)
    np.testing.assert_allclose(as_float64(y).sum(axis=-1), 1.0, rtol=1e-6)
    if hard:
        _assert_one_hot(y, axis=-1)
    # A fully masked-but-one row is deterministic: the one class, always.
    np.testing.assert_array_equal(as_float64(y)[2::3, 3], 1.0)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_gumbel_sigmoid_infinite_logits(hard, temperature):
    logits = np.tile(np.array([[-np.inf, np.inf, 0.5, -1.0]], np.float32),
                     (200, 1))
    y, gx, gt = _weighted_grads(
        lambda x, t: ops.gumbel_sigmoid(x, t, hard=hard, seed=6),
        logits, temperature)
    _assert_finite(y, gx, gt)
    y, gx = as_float64(y), as_float64(gx)
    assert np.all(y[:, 0] == 0.0)
    assert np.all(y[:, 1] == 1.0)
    assert np.all(gx[:, :2] == 0.0)
    # The finite units still get a gradient.
    assert np.abs(gx[:, 2:]).max() > 1e-3


EXTREME_LOGITS = np.array([[1e4, -1e4, 0.0, 5e3],
                           [-1e4, -1e4, 1e4, 1e4],
                           [-1e4, -1e4, -1e4, -1e4],
                           [1e4, 1e4 - 1.0, -1e4, 3.0]], np.float32)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("temperature", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("fn", ["gumbel_softmax", "gumbel_sigmoid"])
def test_extreme_logits_and_temperatures_are_finite(fn, temperature, hard):
    logits = np.tile(EXTREME_LOGITS, (50, 1))
    y, gx, gt = _weighted_grads(
        lambda x, t: getattr(ops, fn)(x, t, hard=hard, seed=9),
        logits, temperature)
    _assert_finite(y, gx, gt)
    y = as_float64(y)
    assert np.all((y >= 0.0) & (y <= 1.0))
    if fn == "gumbel_softmax":
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    if hard:
        assert np.all((y == 0.0) | (y == 1.0))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("fn", ["gumbel_softmax", "gumbel_sigmoid"])
def test_half_precision_is_computed_in_float32(fn, dtype):
    op = getattr(ops, fn)
    logits = tensor(random_logits((64, 6), seed=13), dtype)
    y = op(logits, 0.5, seed=10)
    assert dtype_of(y) == dtype
    _assert_finite(y)
    # The same op on the float32 logits, cast back, gives the same result:
    # the computation (noise included) happens in float32.
    y32 = op(keras.ops.cast(logits, "float32"), 0.5, seed=10)
    np.testing.assert_array_equal(as_float64(y),
                                  as_float64(keras.ops.cast(y32, dtype)))
    if fn == "gumbel_softmax":
        # Each of the 6 entries is rounded to the dtype (relative error
        # <= eps / 2), so the row sum is 1 within 6 * eps / 2; we allow
        # 6 * eps (eps = 2^-10 for float16, 2^-7 for bfloat16).
        eps = HALF_EPS[dtype]
        np.testing.assert_allclose(as_float64(y).sum(axis=-1), 1.0, rtol=0,
                                   atol=6 * eps)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("fn", ["gumbel_softmax", "gumbel_sigmoid"])
def test_half_precision_extremes_do_not_overflow(fn, hard, dtype):
    # 1e4 / 1e-3 = 1e7 overflows float16 (max 65504): an op computing in
    # float16 would give inf and NaN here.
    logits = np.tile(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 2.0]]), (20, 1))
    y, gx, gt = _weighted_grads(
        lambda x, t: getattr(ops, fn)(x, t, hard=hard, seed=12),
        logits, 1e-3, dtype)
    assert dtype_of(y) == dtype_of(gx) == dtype_of(gt) == dtype
    _assert_finite(y, gx, gt)
    if fn == "gumbel_softmax":
        # A logit gap of 1e4 at tau = 1e-3: the sample is the argmax.
        np.testing.assert_array_equal(as_float64(y), np.tile(
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], (20, 1)))


@needs_float64
@pytest.mark.parametrize("temperature", [
    "python_float", "np_float64", "float64_tensor"])
@pytest.mark.parametrize("fn", ["gumbel_softmax", "gumbel_sigmoid",
                                "tempered_softmax", "tempered_sigmoid"])
def test_float64_stays_float64(fn, temperature):
    # Computed in float64 throughout, the temperature included: equal to the
    # float64 formula (NumPy, with the op's noise) to ~1e-12, far below
    # float32's ~1e-7.
    temperature = {"python_float": 0.3, "np_float64": np.float64(0.3),
                   "float64_tensor": tensor(0.3, "float64")}[temperature]
    logits = random_logits((20, 5), seed=14)
    x = tensor(logits, "float64")
    tau = 0.3
    if fn.startswith("gumbel"):
        y = getattr(ops, fn)(x, temperature, seed=15)
    else:
        y = getattr(ops, fn)(x, temperature)
    assert dtype_of(y) == "float64"
    if fn == "gumbel_softmax":
        g = as_float64(ops.sample_gumbel((20, 5), dtype="float64", seed=15))
        expected = _np_softmax((logits + g) / tau)
    elif fn == "gumbel_sigmoid":
        noise = as_float64(
            ops.sample_logistic((20, 5), dtype="float64", seed=15))
        expected = scipy.special.expit((logits + noise) / tau)
    elif fn == "tempered_softmax":
        expected = _np_softmax(logits / tau)
    else:
        expected = scipy.special.expit(logits / tau)
    np.testing.assert_allclose(as_float64(y), expected, rtol=1e-12,
                               atol=1e-14)


# --------------------------------------------------------------------------
# 6. The temperature's shape. (Bad values: tests/test_bad_input.py.)
# --------------------------------------------------------------------------

TEMPERATURE_OPS = {
    "gumbel_softmax": lambda x, t: ops.gumbel_softmax(x, t, seed=3),
    "gumbel_softmax_hard": lambda x, t: ops.gumbel_softmax(
        x, t, hard=True, seed=3),
    "gumbel_sigmoid": lambda x, t: ops.gumbel_sigmoid(x, t, seed=3),
    "gumbel_sigmoid_hard": lambda x, t: ops.gumbel_sigmoid(
        x, t, hard=True, seed=3),
    "tempered_softmax": ops.tempered_softmax,
    "tempered_sigmoid": ops.tempered_sigmoid,
}

# (logits, temperature) pairs that broadcast, but to a shape larger than the
# logits'. They were accepted: with logits (3,) the output had shape (2, 3)
# (rows not summing to 1; (3, 3) with hard=True), with logits (1, 3) the
# forward was right but the gradient raised InvalidArgumentError.
GROWING_TEMPERATURES = {
    "larger_rank": ([2.0, 3.0, -4.0], [[1.0], [1.4]]),
    "larger_dim": ([[2.0, 3.0, -4.0]], [[1.0], [1.4]]),
    "larger_rank_per_class": ([[2.0, 3.0, -4.0]], [[[1.0, 1.2, 0.5]]] * 2),
}


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("case", sorted(GROWING_TEMPERATURES))
@pytest.mark.parametrize("fn", sorted(TEMPERATURE_OPS))
def test_temperature_that_would_grow_the_logits_is_rejected(fn, case,
                                                            traced):
    # Eagerly and when compiled (tf.function with XLA, jax.jit: static
    # shapes; PyTorch is eager either way), under the backend's autodiff: a
    # ValueError before anything is computed.
    logits, temperature = GROWING_TEMPERATURES[case]
    x = tensor(np.asarray(logits, np.float32))
    tau = tensor(np.asarray(temperature, np.float32))
    call = TEMPERATURE_OPS[fn]
    if traced:
        call = compiled(call)
    with pytest.raises(
            ValueError, match=r"`temperature`.*logits' shape") as info:
        value_and_grads(call, x, tau)
    assert f"shape {tuple(np.shape(temperature))}" in str(info.value)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("fn", sorted(TEMPERATURE_OPS))
def test_per_example_temperature_forward_and_gradient(fn, traced):
    # (batch, 1) temperatures: the output has the logits' shape, the
    # gradient the temperature's, and a compiled function (tf.function,
    # jax.jit) gives what the eager call gives, to float32 rounding: 1e-6
    # for the sample; for the gradients, two float32 ulps of the largest
    # weight over the smallest temperature (the softmax's gradient
    # y (w - <w, y>) / tau rounds to about an ulp of max |w| before the
    # division, where y is near one-hot, and a compiler that fuses or
    # reorders the sums, as XLA under jax.jit does, may round otherwise).
    # (TensorFlow under XLA is not compared: its noise differs from the
    # eager noise, see test_eager_and_compiled_draw_the_same_integer_seed_
    # noise.)
    x = tensor(random_logits((6, 4), seed=40), "float32")
    taus = np.linspace(0.3, 3.0, 6)[:, None]
    tau = tensor(taus, "float32")
    w = tensor(_weights((6, 4)), "float32")
    grad_atol = (2 * np.finfo(np.float32).eps * np.abs(_weights((6, 4))).max()
                 / taus.min())
    op = TEMPERATURE_OPS[fn]

    def run(x, tau):
        _, (gx, gt) = value_and_grads(lambda x, t: op(x, t) * w, x, tau)
        return op(x, tau), gx, gt

    y, gx, gt = (compiled(run, jit_compile=False)(x, tau) if traced
                 else run(x, tau))
    assert tuple(y.shape) == (6, 4) and tuple(gx.shape) == (6, 4)
    assert tuple(gt.shape) == (6, 1)
    _assert_finite(y, gx, gt)
    if fn.endswith("softmax") or fn == "gumbel_softmax_hard":
        np.testing.assert_allclose(as_float64(y).sum(axis=-1), 1.0,
                                   rtol=1e-6)
    if traced:
        for traced_value, eager, atol in zip(
                (y, gx, gt), run(x, tau), (1e-7, grad_atol, grad_atol)):
            np.testing.assert_allclose(as_float64(traced_value),
                                       as_float64(eager), rtol=1e-6,
                                       atol=atol)


# --------------------------------------------------------------------------
# 7. KL terms.
# --------------------------------------------------------------------------


# The references of the KL terms: closed forms in float64 NumPy (their
# gradients by the complex step), and TFP's KL divergences (on TensorFlow,
# their gradients by TensorFlow's autodiff).
KL_REFERENCES = ["numpy", pytest.param("tfp", marks=tf_only)]


def _np_kl_categorical_uniform(logits):
    """KL(Categorical(logits) || uniform) along the last axis, summed over
    every axis but the first: sum_k q_k (log q_k + log K), log q the
    log-softmax. NumPy, real or complex (finite logits)."""
    log_q = logits - logits.real.max(axis=-1, keepdims=True)
    log_q = log_q - np.log(np.exp(log_q).sum(axis=-1, keepdims=True))
    kl = np.sum(np.exp(log_q) * log_q, axis=-1) + np.log(logits.shape[-1])
    return kl.reshape(kl.shape[0], -1).sum(axis=1) if kl.ndim > 1 else kl


def _tfp_kl_categorical_uniform(logits):
    """TFP's KL(Categorical(logits) || uniform) along the last axis, summed
    over every axis but the first."""
    import tensorflow as tf

    tfd = _tfd()
    kl = tfd.kl_divergence(tfd.Categorical(logits=logits),
                           tfd.Categorical(logits=tf.zeros_like(logits)))
    if kl.shape.rank > 1:
        kl = tf.reduce_sum(tf.reshape(kl, (tf.shape(kl)[0], -1)), axis=1)
    return kl


def _reference_kl_categorical_uniform(reference, logits):
    """The KL of the float64 (or float32) array `logits` along the last axis
    and the gradient of its sum: `(kl, grad)` as float64 arrays."""
    if reference == "numpy":
        x = logits.astype(np.float64)
        (grad,) = _complex_step_grads(
            lambda x: np.sum(_np_kl_categorical_uniform(x)), x)
        return _np_kl_categorical_uniform(x), grad
    kl, (grad,) = value_and_grads(_tfp_kl_categorical_uniform, logits)
    return as_float64(kl), as_float64(grad)


@pytest.mark.parametrize("reference", KL_REFERENCES)
@pytest.mark.parametrize("dtype", ["float32", F64])
@pytest.mark.parametrize("shape,out_shape", [
    ((6, 3, 5), (6,)), ((6, 5), (6,)), ((5,), ()), ((4, 2, 3, 5), (4,))])
def test_kl_categorical_uniform_matches_reference(shape, out_shape, dtype,
                                                  reference):
    logits = random_logits(shape, seed=20, scale=3.0).astype(dtype)
    kl, (grad,) = value_and_grads(ops.kl_categorical_uniform, logits)
    assert tuple(kl.shape) == out_shape and dtype_of(kl) == dtype
    kl_ref, grad_ref = _reference_kl_categorical_uniform(reference, logits)
    # Float round-off of sums of a few terms of size ~log K.
    rtol = REFERENCE_RTOL[dtype]
    np.testing.assert_allclose(as_float64(kl), kl_ref, rtol=rtol, atol=rtol)
    # The gradient too, against the reference's.
    _assert_close_to_reference(grad, grad_ref, dtype)


@pytest.mark.parametrize("reference", KL_REFERENCES)
@pytest.mark.parametrize("axis", [0, 1, -2])
def test_kl_categorical_uniform_axis_not_last(axis, reference):
    # float64 (float32 on JAX without x64, at REFERENCE_RTOL["float32"]).
    logits = random_logits((6, 5, 3), seed=21).astype(PRECISE)
    kl = ops.kl_categorical_uniform(logits, axis=axis)
    if axis == 0:
        # Classes first: the "batch" axis left after the class sum is 5.
        assert tuple(kl.shape) == (5,)
    else:
        assert tuple(kl.shape) == (6,)
    expected, _ = _reference_kl_categorical_uniform(
        reference, np.moveaxis(logits, axis, -1))
    rtol = {"float64": 1e-10, "float32": REFERENCE_RTOL["float32"]}[PRECISE]
    np.testing.assert_allclose(as_float64(kl), expected, rtol=rtol)


def test_kl_categorical_uniform_is_nonnegative_and_zero_at_uniform():
    # 200 x 7 random logits over several scales; KL >= 0 up to float32
    # round-off (a few ulps of log 7 ~ 2: 1e-6).
    logits = np.concatenate([
        random_logits((100, 7), seed=22, scale=s) for s in (0.01, 1, 30)])
    kl = as_float64(ops.kl_categorical_uniform(logits.astype(np.float32)))
    assert np.all(kl >= -1e-6)
    # Uniform (constant) logits: zero, whatever the constant.
    flat = np.full((3, 7), [[0.0], [5.0], [-1e3]], np.float32)
    np.testing.assert_allclose(
        as_float64(ops.kl_categorical_uniform(flat)), 0.0, atol=1e-6)


def test_kl_categorical_uniform_masked_class():
    # With q_k = 0 for a masked class, KL(q || uniform over K) =
    # sum_{k unmasked} q_k log(K q_k), q the softmax over the unmasked
    # classes and K counting all classes. Computed here by hand in numpy.
    logits = np.array([[0.0, -np.inf, 1.0, 2.0],
                       [-np.inf, 3.0, -np.inf, 0.0],
                       [-np.inf, -np.inf, -np.inf, 5.0]])
    expected = []
    for row in logits:
        kept = row[np.isfinite(row)]
        q = np.exp(kept - kept.max())
        q /= q.sum()
        expected.append(np.sum(q * np.log(len(row) * q)))
    row_weights = tensor(np.array([1.0, 2.0, 3.0], np.float32))
    _, (grad,) = value_and_grads(
        lambda x: ops.kl_categorical_uniform(x) * row_weights,
        logits.astype(np.float32))
    kl = ops.kl_categorical_uniform(logits.astype(np.float32))
    _assert_finite(kl, grad)
    np.testing.assert_allclose(as_float64(kl), expected, rtol=1e-6)
    assert np.all(as_float64(grad)[np.isinf(logits)] == 0.0)


def _np_kl_bernoulli_uniform(logits):
    """KL(Bernoulli(sigmoid(logits)) || Bernoulli(1/2)) per unit, summed
    over every axis but the first: p log p + (1 - p) log(1 - p) + log 2,
    with log p = -log(1 + exp(-x)), log(1 - p) = -log(1 + exp(x)). NumPy,
    real or complex (moderate logits)."""
    log_p = -np.log1p(np.exp(-logits))
    log_1mp = -np.log1p(np.exp(logits))
    kl = np.exp(log_p) * log_p + np.exp(log_1mp) * log_1mp + np.log(2.0)
    return kl.reshape(kl.shape[0], -1).sum(axis=1)


def _tfp_kl_bernoulli_uniform(logits):
    import tensorflow as tf

    tfd = _tfd()
    logits = tf.convert_to_tensor(logits)
    kl = tfd.kl_divergence(tfd.Bernoulli(logits=logits),
                           tfd.Bernoulli(probs=tf.constant(0.5, logits.dtype)))
    return tf.reduce_sum(tf.reshape(kl, (tf.shape(kl)[0], -1)), axis=1)


@pytest.mark.parametrize("reference", KL_REFERENCES)
@pytest.mark.parametrize("dtype", ["float32", F64])
@pytest.mark.parametrize("shape", [(6, 8), (6, 2, 4)])
def test_kl_bernoulli_uniform_matches_reference(shape, dtype, reference):
    logits = random_logits(shape, seed=23, scale=3.0).astype(dtype)
    example_weights = np.arange(1.0, 7.0)
    _, (grad,) = value_and_grads(
        lambda x: ops.kl_bernoulli_uniform(x) * tensor(example_weights,
                                                       dtype), logits)
    kl = ops.kl_bernoulli_uniform(logits)
    assert tuple(kl.shape) == (shape[0],) and dtype_of(kl) == dtype
    if reference == "numpy":
        x = logits.astype(np.float64)
        kl_ref = _np_kl_bernoulli_uniform(x)
        (grad_ref,) = _complex_step_grads(
            lambda x: np.sum(_np_kl_bernoulli_uniform(x) * example_weights),
            x)
    else:
        _, (grad_ref,) = value_and_grads(
            lambda x: _tfp_kl_bernoulli_uniform(x) * tensor(
                example_weights, dtype), logits)
        kl_ref = _tfp_kl_bernoulli_uniform(logits)
    rtol = REFERENCE_RTOL[dtype]
    np.testing.assert_allclose(as_float64(kl), as_float64(kl_ref), rtol=rtol,
                               atol=rtol)
    _assert_close_to_reference(grad, grad_ref, dtype)


@pytest.mark.parametrize("dtype", ["float32", F64])
def test_kl_bernoulli_uniform_is_zero_at_logit_zero(dtype):
    # p = 1/2 is the prior itself: KL = 0 up to round-off of log 2 in the
    # dtype (eps ~1e-7 for float32, ~2e-16 for float64; 8 units).
    kl = ops.kl_bernoulli_uniform(keras.ops.zeros((3, 8), dtype))
    atol = {"float32": 1e-6, "float64": 1e-14}[dtype]
    np.testing.assert_allclose(as_float64(kl), 0.0, atol=atol)


def test_kl_bernoulli_uniform_rank1_is_one_example():
    # Documented: a rank-1 input is one example's units, summed to a scalar:
    # the KL of the same units as one row of a batch (float32 round-off:
    # 1e-6), which the closed form gives.
    logits = np.array([-2.0, 0.0, 1.5], np.float32)
    kl = ops.kl_bernoulli_uniform(logits)
    assert tuple(kl.shape) == ()
    np.testing.assert_allclose(
        as_float64(kl), as_float64(ops.kl_bernoulli_uniform(logits[None]))[0],
        rtol=1e-6)
    np.testing.assert_allclose(
        as_float64(kl),
        _np_kl_bernoulli_uniform(logits[None].astype(np.float64))[0],
        rtol=1e-6)


def test_kl_bernoulli_uniform_extreme_logits():
    # p = sigmoid(x) saturates to exactly 0 or 1 in float32: KL -> log 2 per
    # unit; value and gradient finite (no 0 * inf).
    logits = np.array([[1e4, -1e4, np.inf, -np.inf],
                       [50.0, -50.0, 0.0, 1e4]], np.float32)
    row_weights = tensor(np.array([1.0, 2.0], np.float32))
    _, (grad,) = value_and_grads(
        lambda x: ops.kl_bernoulli_uniform(x) * row_weights, logits)
    kl = ops.kl_bernoulli_uniform(logits)
    _assert_finite(kl, grad)
    # Row 0: four saturated units; row 1: three saturated, one at 0 (KL 0).
    np.testing.assert_allclose(as_float64(kl),
                               [4 * math.log(2), 3 * math.log(2)], rtol=1e-6)


# --------------------------------------------------------------------------
# 8. Deterministic counterparts.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_mode_is_one_hot_of_argmax(axis):
    logits = random_logits((4, 5, 6), seed=30).astype(np.float32)
    y = as_float64(ops.softmax_mode(logits, axis=axis))
    expected = np.moveaxis(
        np.eye(logits.shape[axis])[np.argmax(logits, axis=axis)], -1, axis)
    np.testing.assert_array_equal(y, expected)


def test_softmax_mode_ties_pick_the_first():
    logits = tensor(np.array([[1.0, 3.0, 3.0, 0.0],
                              [2.0, 2.0, 2.0, 2.0],
                              [-np.inf, 0.0, 0.0, -np.inf]], np.float32))
    np.testing.assert_array_equal(
        as_float64(ops.softmax_mode(logits)),
        [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]])


def test_sigmoid_mode():
    logits = tensor(np.array([[-1.0, 0.0, 2.0, -np.inf, np.inf, 1e-30]],
                             np.float32))
    y = ops.sigmoid_mode(logits)
    assert dtype_of(y) == "float32"
    # P(1) = 0.5 at logit 0: a tie, decided as 0.
    np.testing.assert_array_equal(as_float64(y), [[0, 0, 1, 0, 1, 1]])


# The references below are the backend's own softmax and sigmoid of
# x / tau, computed in float32 as the ops compute.


@pytest.mark.parametrize("temperature", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("axis", [-1, 0])
def test_tempered_softmax_equals_softmax_over_temperature(temperature, axis):
    x = tensor(random_logits((6, 5), seed=31), "float32")
    np.testing.assert_allclose(
        as_float64(ops.tempered_softmax(x, temperature, axis=axis)),
        as_float64(keras.ops.softmax(x / temperature, axis=axis)), rtol=1e-6,
        atol=1e-7)


def test_tempered_softmax_per_example_temperature():
    x = tensor(random_logits((6, 5), seed=32), "float32")
    tau = tensor(np.linspace(0.2, 3.0, 6)[:, None], "float32")
    np.testing.assert_allclose(
        as_float64(ops.tempered_softmax(x, tau)),
        as_float64(keras.ops.softmax(x / tau)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("temperature", [0.1, 1.0, 10.0])
def test_tempered_sigmoid_equals_sigmoid_over_temperature(temperature):
    x = tensor(random_logits((6, 5), seed=33), "float32")
    np.testing.assert_allclose(
        as_float64(ops.tempered_sigmoid(x, temperature)),
        as_float64(keras.ops.sigmoid(x / temperature)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("fn", ["tempered_softmax", "tempered_sigmoid"])
def test_tempered_half_precision(fn, dtype):
    # Computed in float32 and cast: no overflow at 1e4 / 1e-3.
    x = tensor(np.array([[1e4, -1e4, 0.0]]), dtype)
    y = getattr(ops, fn)(x, 1e-3)
    assert dtype_of(y) == dtype
    _assert_finite(y)
    expected = [[1, 0, 0]] if fn == "tempered_softmax" else [[1, 0, 0.5]]
    np.testing.assert_array_equal(as_float64(y), expected)


# --------------------------------------------------------------------------
# 9. Public names.
# --------------------------------------------------------------------------


def test_public_names_are_the_documented_ops():
    # The README's API table lists these; everything else in the module is
    # internal (underscore-named) or a constant.
    documented = {
        "gumbel_softmax", "gumbel_sigmoid", "sample_gumbel",
        "sample_logistic", "kl_categorical_uniform", "kl_bernoulli_uniform",
        "softmax_mode", "sigmoid_mode", "tempered_softmax",
        "tempered_sigmoid", "straight_through", "reinmax", "gumbel_rao",
        "straight_through_sigmoid", "reinmax_sigmoid", "gumbel_rao_sigmoid",
        "gumbel_topk", "topk_mode", "tempered_topk"}
    with open(os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), "README.md")) as f:
        readme = f.read()
    api = readme[readme.index("## API at a glance"):readme.index(
        "### Choices we made")]
    assert set(re.findall(r"`ops\.(\w+)", api)) == documented
    assert set(ops.__all__) == documented
    functions = {name for name, value in vars(ops).items()
                 if callable(value) and not name.startswith("_")
                 and getattr(value, "__module__", None) == ops.__name__}
    assert functions == documented
