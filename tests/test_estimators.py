"""Tests of the estimators beyond Gumbel-Softmax: straight-through, ReinMax
and Gumbel-Rao, as ops (`keras_gumbel.ops`) and layers.

Each op draws an exact sample forward and differs only in the gradient it
passes back, so the tests check the forward against the distribution
(chi-square, binomial) and each gradient against an independent reference:

- `straight_through`: J(p(theta / tau))^T g / tau computed in NumPy.
- `reinmax`: a NumPy transcription of the reference implementation's
  backward pass (microsoft/ReinMax, `ReinMaxCore.backward`), run on the
  sample the op drew; and, by exact enumeration, its expectation at tau = 1
  for a loss linear in the sample (where ReinMax is unbiased).
- `gumbel_rao`: its conditional noise (drawn by the private helpers
  `ops._conditional_gumbel` and `ops._conditional_logistic`, which its
  backward pass calls) against rejection sampling in NumPy (KS tests), and
  its mean gradient against that of
  `gumbel_softmax(hard=True)` on the same samples (it is a
  Rao-Blackwellization of it: the same conditional expectation given the
  sample), with a lower variance.
- The binary ops against the categorical NumPy references over the two
  classes with logits (0, logits).

Seeds are fixed; statistical tests state their significance (`ALPHA`) or
their tolerance in standard errors (`N_SE`), as in `test_ops.py`.

They run on every Keras backend; the gradients are each backend's own
autodiff (`tf.GradientTape`, `jax.grad`, `torch.autograd`) through the ops'
hand-written gradients. The backends draw different noise for the same
seed, so no test depends on particular draws. Where an op gives no gradient
(ReinMax's temperature), TensorFlow and PyTorch report None and JAX, whose
autodiff has no None, zeros. The tests that need TensorFlow itself (a
`tf.function` of unknown rank, a served SavedModel) are `tf_only`.
"""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats

import keras_gumbel
from _helpers import BACKEND
from _helpers import as_float64
from _helpers import compiled
from _helpers import dtype_of
from _helpers import tensor
from _helpers import tf_only
from _helpers import value_and_grads
from keras_gumbel import _backend
from keras_gumbel import ops

K = keras.ops

# Significance of each goodness-of-fit test; the seeds are fixed, so this is
# the false-alarm rate over choices of seed.
ALPHA = 1e-3
# Mean comparisons: |difference| <= N_SE standard errors (two-sided
# false-alarm rate ~6e-7 for a CLT-normal estimate).
N_SE = 5.0
HALF_DTYPES = ["float16", "bfloat16"]

CATEGORICAL_OPS = ["straight_through", "reinmax", "gumbel_rao"]
BINARY_OPS = ["straight_through_sigmoid", "reinmax_sigmoid",
              "gumbel_rao_sigmoid"]
ALL_OPS = CATEGORICAL_OPS + BINARY_OPS
# The temperature gets a gradient from these (through their surrogates);
# ReinMax's estimate is not the derivative of a function of it.
TAU_DIFFERENTIABLE = {"straight_through", "gumbel_rao",
                      "straight_through_sigmoid", "gumbel_rao_sigmoid"}
# Each op's counterpart with the same forward sample for the same seed.
SAME_SAMPLE_AS = {"straight_through": "gumbel_softmax",
                  "reinmax": "gumbel_softmax",
                  "gumbel_rao": "gumbel_softmax",
                  "straight_through_sigmoid": "gumbel_sigmoid",
                  "reinmax_sigmoid": "gumbel_sigmoid",
                  "gumbel_rao_sigmoid": "gumbel_sigmoid"}

# Class probabilities for the frequency tests; 0 is a logit of -inf.
SKEWED = [0.6, 0.25, 0.1, 0.05]
MASKED = [0.5, 0.0, 0.2, 0.3]


# --------------------------------------------------------------------------
# Helpers and NumPy references.
# --------------------------------------------------------------------------


_f64 = as_float64


def _op(name):
    return getattr(ops, name)


def _logits_from_probs(probs, offset=3.0):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(probs, np.float64)) + offset


def _random_logits(shape, seed=0, scale=2.0):
    return np.random.default_rng(seed).normal(size=shape) * scale


def _weights(shape, seed=0):
    """Upstream gradients that differ per class and per row: `sum(y)` would
    give a zero gradient through a softmax and prove nothing."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape) + np.arange(shape[-1])


def _sample_and_grads(fn, w, *args):
    """y = fn(*args) and the gradients of sum(y * w) w.r.t. each arg, by
    `value_and_grads`: fn's output is returned alongside the weighted one,
    behind a stop-gradient (so that the sum's gradient is the weighted
    sum's), and taken back out in fn's dtype."""
    dtypes = []

    def weighted(*xs):
        y = fn(*xs)
        dtypes.append(dtype_of(y))
        y = K.cast(y, dtype_of(w))
        return K.concatenate([K.reshape(y * w, (-1,)),
                              K.reshape(K.stop_gradient(y), (-1,))])

    value, grads = value_and_grads(weighted, *args)
    y = K.reshape(value[value.shape[0] // 2:], tuple(w.shape))
    return K.cast(y, dtypes[-1]), grads


def _grads(fn, logits, temperature, weights=None, dtype="float32"):
    """y = fn(x, tau) and the gradients of sum(y * w) w.r.t. x and tau."""
    x = tensor(np.asarray(logits), dtype)
    tau = tensor(np.asarray(temperature), dtype)
    w = tensor(_weights(tuple(x.shape)) if weights is None else
               np.asarray(weights), dtype)
    y, (grad_x, grad_tau) = _sample_and_grads(fn, w, x, tau)
    return y, grad_x, grad_tau


def _assert_no_gradient(grad):
    """The backend's "no gradient": None, or zeros on JAX (`jax.grad` has
    no None)."""
    if BACKEND == "jax":
        assert grad is not None and np.all(_f64(grad) == 0.0)
    else:
        assert grad is None


def _count_draws(fn, *args):
    """How many uniform tensors `fn(*args)` draws: the calls of the one
    float draw every op makes its noise with (`_backend.uniform`), while
    `fn` runs (eagerly or traced). The seed pairs are integer draws."""
    calls = []
    uniform = _backend.uniform

    def counting(*a, **kw):
        calls.append(1)
        return uniform(*a, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "uniform", counting)
        fn(*args)
    return len(calls)


def _graph_draws(fn):
    """On TensorFlow, the float draws in `fn`'s traced graph."""
    import tensorflow as tf

    graph = tf.function(fn).get_concrete_function().graph
    return sum(op.type == "StatelessRandomUniformV2"
               for op in graph.get_operations())


def _assert_one_hot(y, axis=-1):
    y = _f64(y)
    assert np.all((y == 0.0) | (y == 1.0))
    np.testing.assert_array_equal(y.sum(axis=axis), 1.0)


def _assert_finite(*tensors):
    for t in tensors:
        assert t is not None
        assert np.all(np.isfinite(_f64(t))), t


def _chisquare_p(counts, probs):
    counts = np.asarray(counts, np.float64)
    probs = np.asarray(probs, np.float64)
    keep = probs > 0
    expected = counts.sum() * probs[keep] / probs[keep].sum()
    return scipy.stats.chisquare(counts[keep], expected).pvalue


def np_softmax(x, axis=-1):
    """softmax in float64; -inf entries give exactly 0."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_softmax_vjp(p, g, axis=-1):
    """J(p)^T g for the softmax Jacobian J(p) = diag(p) - p p^T."""
    return p * g - p * np.sum(p * g, axis=axis, keepdims=True)


def np_straight_through(theta, tau, g, axis=-1):
    """The straight-through gradients of <g, D> w.r.t. theta and tau: those
    of the surrogate <g, softmax(theta / tau)>.

    d/dtheta = J(p)^T g / tau, d/dtau = <J(p)^T g, -theta / tau^2> (summed
    along the classes, i.e. per row for a per-row tau).
    """
    theta = np.asarray(theta, np.float64)
    p = np_softmax(theta / tau, axis)
    s = np_softmax_vjp(p, g, axis)
    # Masked classes: s = 0 and theta = -inf; their product is 0.
    finite_theta = np.where(np.isfinite(theta), theta, 0.0)
    return s / tau, np.sum(-s * finite_theta / tau**2, axis=axis,
                           keepdims=True)


def np_reinmax_reference(logits, tau, one_hot_sample, grad_at_sample):
    """ReinMax's backward pass, transcribed from the reference code
    (microsoft/ReinMax, `ReinMaxCore.backward`), classes on the last axis,
    with no gradient arriving at its second output (the softmax).

    The reference steps, in order: pi = (softmax(logits / tau) + D) / 2;
    a = 2 g * pi, a -= pi * sum(a); b = -g/2 * p, b -= p * sum(b) with
    p = softmax(logits); the result a + b with its mean over the classes
    taken off.
    """
    p = np_softmax(logits)
    pi = 0.5 * (np_softmax(np.asarray(logits, np.float64) / tau)
                + one_hot_sample)
    a = (2.0 * grad_at_sample) * pi
    a = a - pi * a.sum(axis=-1, keepdims=True)
    b = (-0.5 * grad_at_sample) * p
    b = b - p * b.sum(axis=-1, keepdims=True)
    total = a + b
    return total - total.mean(axis=-1, keepdims=True)


def _sum_to_shape(a, shape):
    """Sums `a` over the dimensions that broadcasting `shape` against it
    added or stretched: the gradient of a broadcast input."""
    a = np.sum(a, axis=tuple(range(a.ndim - len(shape))))
    stretched = tuple(i for i, d in enumerate(shape) if d == 1
                      and a.shape[i] != 1)
    return np.sum(a, axis=stretched, keepdims=True).reshape(shape)


def _two_classes(logits):
    """Binary logits as categorical logits (0, logits) on a new last axis."""
    logits = np.asarray(logits, np.float64)
    return np.stack([np.zeros_like(logits), logits], axis=-1)


def _paired_mean_zero(diff):
    """Asserts the mean of paired differences (rows) is 0 within N_SE."""
    diff = np.asarray(diff, np.float64)
    se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
    assert np.all(np.abs(diff.mean(axis=0)) <= N_SE * se + 1e-12), (
        diff.mean(axis=0), se)


# --------------------------------------------------------------------------
# 1. Forward: exact samples of the distribution.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("probs", [SKEWED, MASKED], ids=["skewed", "masked"])
@pytest.mark.parametrize("name", CATEGORICAL_OPS)
def test_frequencies_match_softmax(name, probs):
    # N = 20000 draws, the smallest non-zero expected count 1000; a
    # chi-square test at ALPHA. A masked class is never drawn.
    n = 20000
    logits = np.tile(_logits_from_probs(probs), (n, 1)).astype(np.float32)
    y = _op(name)(logits, temperature=0.5, seed=1234)
    _assert_one_hot(y)
    counts = _f64(y).sum(axis=0)
    np.testing.assert_array_equal(counts[np.asarray(probs) == 0], 0)
    assert _chisquare_p(counts, probs) > ALPHA, (counts, probs)


@pytest.mark.parametrize("axis", [1, -3])
@pytest.mark.parametrize("name", CATEGORICAL_OPS)
def test_frequencies_along_another_axis(name, axis):
    # Logits of shape (n, classes, 2) (axis 1) or (classes, n, 2) (axis -3,
    # the first): column c of the last axis is distribution c. N = 20000
    # draws per distribution, each tested at ALPHA / 2 (Bonferroni).
    n = 20000
    dists = [SKEWED, MASKED]
    column = np.stack([_logits_from_probs(p) for p in dists], axis=-1)
    logits = np.tile(column[None], (n, 1, 1))
    if axis == -3:
        logits = np.transpose(logits, (1, 0, 2))
    y = _op(name)(logits.astype(np.float32), temperature=2.0, axis=axis,
                  seed=99)
    assert y.shape == logits.shape
    _assert_one_hot(y, axis=axis)
    counts = _f64(y).sum(axis=0 if axis == 1 else 1)
    for c, probs in enumerate(dists):
        np.testing.assert_array_equal(counts[np.asarray(probs) == 0, c], 0)
        assert _chisquare_p(counts[:, c], probs) > ALPHA / 2


@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_frequencies_match_sigmoid(name):
    # N = 20000 draws per unit; an exact binomial test per unit at
    # ALPHA / 5 (Bonferroni). Infinite logits are certain.
    n = 20000
    logits = np.array([-2.0, -0.5, 0.0, 1.0, 3.0], np.float32)
    y = _f64(_op(name)(np.tile(logits, (n, 1)), temperature=0.3, seed=7))
    assert np.all((y == 0.0) | (y == 1.0))
    for unit, p in enumerate(scipy.special.expit(logits.astype(np.float64))):
        k = int(y[:, unit].sum())
        assert scipy.stats.binomtest(k, n, p).pvalue > ALPHA / 5


@pytest.mark.parametrize("name", ALL_OPS)
def test_forward_is_the_hard_gumbel_sample(name):
    # Same seed, same noise: the sample of `gumbel_softmax(hard=True)` (or
    # `gumbel_sigmoid(hard=True)`), for an int seed and a SeedGenerator.
    # Temperature 1, where dividing by it cannot break a near-tie
    # differently.
    shape = (40, 6)
    logits = _random_logits(shape, seed=3).astype(np.float32)
    reference = getattr(ops, SAME_SAMPLE_AS[name])
    ours = _op(name)(logits, 1.0, seed=11)
    np.testing.assert_array_equal(
        _f64(ours), _f64(reference(logits, 1.0, hard=True, seed=11)))
    gen_a, gen_b = keras.random.SeedGenerator(5), keras.random.SeedGenerator(5)
    for _ in range(2):
        np.testing.assert_array_equal(
            _f64(_op(name)(logits, 1.0, seed=gen_a)),
            _f64(reference(logits, 1.0, hard=True, seed=gen_b)))


# --------------------------------------------------------------------------
# 2. Gradients against NumPy references.
# --------------------------------------------------------------------------

# (logits shape, class axis, temperature shape).
LAYOUTS = [((16, 5), -1, ()), ((5, 16), 0, ()), ((4, 5, 3), 1, ()),
           ((16, 5), -1, (16, 1)), ((4, 5, 3), 1, (4, 1, 3))]
LAYOUT_IDS = ["last", "axis0", "rank3-axis1", "per-example",
              "rank3-per-position"]


def _temperature(tau_shape, scale=1.0, seed=2):
    if tau_shape == ():
        return 0.7 * scale
    return np.random.default_rng(seed).uniform(0.3, 2.0, tau_shape) * scale


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_straight_through_gradient_matches_numpy(layout):
    shape, axis, tau_shape = layout
    logits = _random_logits(shape, seed=1)
    temperature = _temperature(tau_shape)
    y, gx, gt = _grads(lambda x, t: ops.straight_through(
        x, t, axis=axis, seed=21), logits, temperature)
    _assert_one_hot(y, axis)
    want_x, want_t = np_straight_through(
        logits.astype(np.float32), temperature, _weights(shape), axis)
    # float32 against float64: 1e-5 relative to the largest entry (a
    # softmax, a division and sums of 5-16 terms are ~100 ulps).
    np.testing.assert_allclose(_f64(gx), want_x, rtol=1e-5,
                               atol=1e-5 * np.abs(want_x).max())
    np.testing.assert_allclose(_f64(gt), _sum_to_shape(want_t, tau_shape),
                               rtol=1e-5, atol=1e-5 * np.abs(want_t).max())
    # It does not depend on the sample: another seed, the same gradient.
    _, gx_other, _ = _grads(lambda x, t: ops.straight_through(
        x, t, axis=axis, seed=22), logits, temperature)
    np.testing.assert_array_equal(_f64(gx_other), _f64(gx))


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.0, 10.0])
@pytest.mark.parametrize("axis", [-1, 0])
def test_reinmax_gradient_matches_reference(axis, temperature):
    # The reference backward on the sample the op drew (float64 NumPy).
    shape = (32, 6) if axis == -1 else (6, 32)
    logits = _random_logits(shape, seed=4)
    masked = logits.copy()
    masked[::3, 1 if axis == -1 else slice(None)] = -np.inf  # some masking
    for x in (logits, masked):
        y, gx, gt = _grads(lambda x, t: ops.reinmax(
            x, t, axis=axis, seed=5), x, temperature)
        _assert_one_hot(y, axis)
        _assert_no_gradient(gt)  # The temperature gets no gradient.
        g = _weights(shape)
        move = (lambda a: a) if axis == -1 else (lambda a: a.T)
        want = move(np_reinmax_reference(
            move(x.astype(np.float32)), temperature, move(_f64(y)),
            move(g)))
        # The reference's final mean subtraction is 0 in exact arithmetic;
        # float32 against float64, 1e-5 of the largest entry.
        np.testing.assert_allclose(_f64(gx), want, rtol=1e-5,
                                   atol=1e-5 * np.abs(want).max())
        assert np.all(_f64(gx)[np.isinf(x)] == 0.0)


def test_reinmax_is_unbiased_for_a_linear_loss_at_temperature_one():
    # For loss <w, D> and tau = 1, E_D[ReinMax] = J(p)^T w exactly (checked
    # by enumerating D in float64); the op's mean over N = 20000 draws
    # matches it within N_SE standard errors. At tau = 0.5 the expectation
    # is biased by ~0.3 of the gradient's norm: the test can tell.
    n = 20000
    theta = np.array([0.5, -1.0, 1.5, 0.0, -0.3])
    w = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    p = np_softmax(theta)
    exact = np_softmax_vjp(p, w)
    eye = np.eye(5)
    enumerated = sum(p[d] * np_reinmax_reference(theta, 1.0, eye[d], w)
                     for d in range(5))
    np.testing.assert_allclose(enumerated, exact, atol=1e-12)
    w32 = tensor(w, "float32")
    _, (grad,) = value_and_grads(lambda x: ops.reinmax(x, 1.0, seed=3) * w32,
                                 np.tile(theta, (n, 1)).astype(np.float32))
    _paired_mean_zero(_f64(grad) - exact)


def test_reinmax_is_unbiased_for_a_quadratic_loss_at_temperature_one():
    # ReinMax is a second-order method: for a loss quadratic in the sample
    # its expectation at tau = 1 is the exact gradient. Two latents of four
    # classes coupled by f(D) = ||D_1 A_1 + D_2 A_2 - t||^2: the exact
    # gradient and the reference's expectation, both by enumerating the 16
    # outcomes in float64, agree to 1e-12 (at tau = 2 they differ by 0.46
    # of the gradient's norm, and the op's mean misses by 6-40 standard
    # errors); the op's mean over N = 20000 draws matches within N_SE
    # standard errors per coordinate.
    n = 20000
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(2, 4))
    a = rng.normal(size=(2, 4, 3))
    t = rng.normal(size=3)
    p = np_softmax(theta)
    eye = np.eye(4)
    exact = np.zeros_like(theta)
    enumerated = np.zeros_like(theta)
    for i in range(4):
        for j in range(4):
            d = np.stack([eye[i], eye[j]])
            prob = p[0, i] * p[1, j]
            residual = a[0, i] + a[1, j] - t
            f = residual @ residual
            exact += prob * f * (d - p)  # the score-function identity
            upstream = 2.0 * a @ residual  # d f / d D, (2, 4)
            enumerated += prob * np_reinmax_reference(theta, 1.0, d,
                                                      upstream)
    np.testing.assert_allclose(enumerated, exact, atol=1e-12)
    a32, t32 = tensor(a, "float32"), tensor(t, "float32")

    def loss(x):
        d = ops.reinmax(x, 1.0, seed=6)
        return K.square(K.einsum("nlk,lkc->nc", d, a32) - t32)

    _, (grad,) = value_and_grads(
        loss, np.tile(theta[None], (n, 1, 1)).astype(np.float32))
    per_draw = _f64(grad).reshape(n, -1)
    _paired_mean_zero(per_draw - exact.ravel())


@pytest.mark.parametrize("temperature", [0.3, 1.0, 5.0])
@pytest.mark.parametrize("name", ["straight_through_sigmoid",
                                  "reinmax_sigmoid"])
def test_binary_gradient_matches_two_class_reference(name, temperature):
    # The binary op's gradient w.r.t. its log-odds x is the categorical
    # reference's over logits (0, x) w.r.t. the second one, with the
    # upstream gradient on class 1 only (the output is the class-1
    # indicator). Row 0 holds -inf and +inf: zero gradient there.
    shape = (20, 7)
    logits = _random_logits(shape, seed=6)
    logits[0, :2] = [-np.inf, np.inf]
    y, gx, gt = _grads(lambda x, t: _op(name)(x, t, seed=8), logits,
                       temperature)
    y, gx = _f64(y), _f64(gx)
    assert np.all((y == 0.0) | (y == 1.0))
    assert np.all(gx[0, :2] == 0.0)
    finite = np.isfinite(logits)
    cat = _two_classes(np.where(finite, logits, 0.0).astype(np.float32))
    g = _weights(shape)
    g_cat = np.stack([np.zeros(shape), g], axis=-1)
    if name == "straight_through_sigmoid":
        want_x, want_t = np_straight_through(cat, temperature, g_cat)
        np.testing.assert_allclose(_f64(gt), want_t[finite].sum(),
                                   rtol=1e-5)
    else:
        sample = np.stack([1.0 - y, y], axis=-1)
        want_x = np_reinmax_reference(cat, temperature, sample, g_cat)
        _assert_no_gradient(gt)
    want_x = want_x[..., 1][finite]
    np.testing.assert_allclose(gx[finite], want_x, rtol=1e-5,
                               atol=1e-5 * np.abs(want_x).max())


# --------------------------------------------------------------------------
# 3. Gumbel-Rao: conditional noise, mean and variance.
# --------------------------------------------------------------------------


def _conditional_draws(theta, d, k, seed=0):
    """K draws of theta + G given argmax = d, as the op makes them: one
    uniform vector per draw, log(u) to the helper, the maximum's Gumbel
    from the entry at d."""
    x = tensor(theta[None], "float32")
    sample = tensor(np.eye(len(theta))[[d]], "float32")
    gumbel = ops.sample_gumbel((k, 1, len(theta)), seed=seed)
    # log(u) for u uniform: -exp(-g) for g standard Gumbel.
    gap, top = ops._conditional_gumbel(x, gumbel[..., d:d + 1],
                                       -K.exp(-gumbel), axis=1)
    # The op zeroes the gap at D (multiplying by sample - 1) as here.
    shifted = _f64(gap * (sample - 1.0))
    return shifted[:, 0], _f64(top)[:, 0]


def test_conditional_gumbel_keeps_the_sample_and_matches_rejection():
    # theta over 4 classes with one masked; D = class 2 (probability 0.2).
    # Every conditional draw has its argmax at D, strictly; and N = 20000
    # draws match N_rej draws by rejection (NumPy Gumbels, kept where the
    # argmax is D), coordinate by coordinate (two-sample KS at ALPHA / 3,
    # Bonferroni over the 3 unmasked classes) and in one joint statistic,
    # the gap between the top two (KS at ALPHA).
    theta = _logits_from_probs([0.5, 0.0, 0.2, 0.3])
    d, n = 2, 20000
    shifted, top = _conditional_draws(theta.astype(np.float32), d, n)
    assert np.all(shifted[:, d] == 0.0)
    others = np.delete(shifted, d, axis=1)
    assert np.all(others < 0.0)
    assert np.all(np.isneginf(shifted[:, 1]))
    ours = shifted + top
    rng = np.random.default_rng(0)
    reference = theta + rng.gumbel(size=(6 * n, 4))
    reference = reference[np.argmax(reference, axis=1) == d]
    assert len(reference) > 0.15 * 6 * n
    for c in (0, 2, 3):
        p = scipy.stats.ks_2samp(ours[:, c], reference[:, c]).pvalue
        assert p > ALPHA / 3, (c, p)

    def gap(v):
        top_two = np.sort(v, axis=1)[:, -2:]
        return top_two[:, 1] - top_two[:, 0]

    assert scipy.stats.ks_2samp(gap(ours), gap(reference)).pvalue > ALPHA


def test_conditional_logistic_keeps_the_sign_and_matches_rejection():
    # logits + l given its sign, against NumPy rejection, N = 20000 each
    # side, KS at ALPHA / 4 (two logits, two signs).
    n = 20000
    rng = np.random.default_rng(1)
    for x in (-1.0, 2.0):
        for b in (0.0, 1.0):
            noise = ops.sample_logistic((n,), seed=int(10 * x + b) + 50)
            ours = _f64(ops._conditional_logistic(
                tensor(x, "float32"), tensor(b, "float32"), noise))
            assert np.all(ours > 0) if b else np.all(ours < 0)
            reference = x + rng.logistic(size=8 * n)
            reference = reference[(reference > 0) == bool(b)]
            p = scipy.stats.ks_2samp(ours, reference).pvalue
            assert p > ALPHA / 4, (x, b, p)


def _per_draw_gradients(fn, logits, temperature, n, seed):
    """Gradients of <w, y> for N independent draws (rows): w.r.t. the
    logits (n, classes) and a per-row temperature (n, 1)."""
    x = np.tile(logits, (n, 1))
    tau = np.full((n, 1), temperature)
    w = np.tile(_weights((1, len(logits)), seed=3), (n, 1))
    _, gx, gt = _grads(lambda x, t: fn(x, t, seed), x, tau, w)
    return np.concatenate([_f64(gx), _f64(gt)], axis=1)


@pytest.mark.parametrize("binary", [False, True], ids=["softmax", "sigmoid"])
def test_gumbel_rao_mean_is_st_gumbel_mean_with_lower_variance(binary):
    # N = 4000 draws of each, on the same samples (same seed): the paired
    # differences of the gradients (logits and temperature) have mean 0
    # within N_SE standard errors, since E[GR | D] = E[ST-GS | D]. And at
    # K = 10 the variance is lower: the logits' gradients' summed variance
    # below half of ST-GS's, the temperature's below 0.75 of it. Measured
    # on the three backends (their own noise, seed 17): logits 0.31-0.32
    # of it for the categorical, 0.17-0.18 for the binary; temperature
    # 0.56-0.62 and 0.63-0.65; bootstrap standard errors of these ratios
    # 0.013-0.025, so each bound is at least 5 of them away. (The two
    # summed together, as this test once did, are 0.49-0.50 for the
    # binary: too close to one half to test.)
    n, temperature = 4000, 0.5
    if binary:
        logits = np.array([-1.0, 0.3, 2.0])
        st_gs = lambda x, t, s: ops.gumbel_sigmoid(x, t, hard=True, seed=s)
        rao = lambda k: lambda x, t, s: ops.gumbel_rao_sigmoid(
            x, t, num_samples=k, seed=s)
    else:
        logits = np.array([0.5, -1.0, 1.5, 0.0, -np.inf])
        st_gs = lambda x, t, s: ops.gumbel_softmax(x, t, hard=True, seed=s)
        rao = lambda k: lambda x, t, s: ops.gumbel_rao(
            x, t, num_samples=k, seed=s)
    reference = _per_draw_gradients(st_gs, logits, temperature, n, 17)
    for k in (1, 10):
        ours = _per_draw_gradients(rao(k), logits, temperature, n, 17)
        assert np.all(np.isfinite(ours))
        _paired_mean_zero(ours - reference)
        ratio = ours.var(axis=0).sum() / reference.var(axis=0).sum()
        if k == 10:
            variance, reference_variance = (
                ours.var(axis=0), reference.var(axis=0))
            logits_ratio = variance[:-1].sum() / reference_variance[:-1].sum()
            tau_ratio = variance[-1] / reference_variance[-1]
            assert logits_ratio < 0.5, logits_ratio
            assert tau_ratio < 0.75, tau_ratio
        else:
            # K = 1 has ST-GS's distribution: the same variance within
            # 10% (~5 standard errors of the ratio).
            assert abs(ratio - 1.0) < 0.1, ratio


def test_gumbel_rao_draws_its_noise_only_for_the_gradient():
    # A forward-only call draws one uniform tensor, as gumbel_softmax does;
    # the gradient draws one more (the K - 1 conditional vectors besides
    # the forward pass's own). Counted as calls of the draw on every
    # backend, and on TensorFlow also as draws in the traced graph.
    x = tensor(_random_logits((8, 5)), "float32")
    classes = K.arange(5, dtype="float32")

    def forward():
        return ops.gumbel_rao(x, 0.5, num_samples=10, seed=1)

    def with_gradient():
        return value_and_grads(lambda x: ops.gumbel_rao(
            x, 0.5, num_samples=10, seed=1) * classes, x)[1][0]

    def reference():
        return ops.gumbel_softmax(x, 0.5, hard=True, seed=1)

    assert _count_draws(forward) == _count_draws(reference) == 1
    assert _count_draws(with_gradient) == 2
    if BACKEND == "tensorflow":
        assert _graph_draws(forward) == _graph_draws(reference) == 1
        assert _graph_draws(with_gradient) == 2


@pytest.mark.parametrize("binary", [False, True], ids=["softmax", "sigmoid"])
def test_gumbel_rao_uses_the_forward_noise_as_one_draw(binary):
    # The forward pass's noise is a draw of the noise given the sample, so
    # it is one of the K: at K = 1 the gradient (logits and temperature) is
    # ST Gumbel-Softmax's on the same seed, to rounding, with no second
    # draw; at K = 4 the first of the K is that draw (the other three are
    # fresh), so the gradient differs.
    logits = _random_logits((32, 5), seed=4)
    logits[0, 1] = -np.inf if not binary else logits[0, 1]
    w = _weights(logits.shape, seed=5)
    if binary:
        st_gs = lambda x, t: ops.gumbel_sigmoid(x, t, hard=True, seed=8)
        rao = lambda k: lambda x, t: ops.gumbel_rao_sigmoid(
            x, t, num_samples=k, seed=8)
    else:
        st_gs = lambda x, t: ops.gumbel_softmax(x, t, hard=True, seed=8)
        rao = lambda k: lambda x, t: ops.gumbel_rao(
            x, t, num_samples=k, seed=8)
    tau = np.full((32, 1), 0.7)
    y_ref, gx_ref, gt_ref = _grads(st_gs, logits, tau, w)
    y_one, gx_one, gt_one = _grads(rao(1), logits, tau, w)
    np.testing.assert_array_equal(_f64(y_one), _f64(y_ref))
    np.testing.assert_allclose(_f64(gx_one), _f64(gx_ref), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(_f64(gt_one), _f64(gt_ref), rtol=1e-5,
                               atol=1e-6)
    _, gx_four, _ = _grads(rao(4), logits, tau, w)
    assert not np.allclose(_f64(gx_four), _f64(gx_ref), atol=1e-3)

    def draws(k, count=_count_draws):
        x, w32 = tensor(logits, "float32"), tensor(w, "float32")

        def with_gradient():
            return value_and_grads(lambda x: rao(k)(x, 0.7) * w32, x)[1][0]

        return count(with_gradient)

    assert draws(1) == 1
    assert draws(4) == 2
    if BACKEND == "tensorflow":
        assert draws(1, _graph_draws) == 1
        assert draws(4, _graph_draws) == 2


@pytest.mark.parametrize("name", ["gumbel_rao", "gumbel_rao_sigmoid"])
def test_gumbel_rao_gradient_is_reproducible(name):
    # The conditional noise's seed comes from the sample's: the same int
    # seed, the same gradient; eager and compiled alike (`tf.function`,
    # `jax.jit`; PyTorch runs eagerly); a new draw from a SeedGenerator, a
    # new gradient.
    logits = _random_logits((16, 5), seed=9)
    fn = _op(name)

    def grad(seed, jit=False):
        def run(x, t):
            return fn(x, t, num_samples=4, seed=seed)
        if jit:
            # Without XLA on TensorFlow: XLA draws other noise.
            run = compiled(run, jit_compile=False)
        return _f64(_grads(run, logits, 0.7)[1])

    first = grad(3)
    np.testing.assert_array_equal(grad(3), first)
    np.testing.assert_allclose(grad(3, jit=True), first, rtol=1e-6,
                               atol=1e-7)
    assert not np.allclose(grad(4), first)
    gen = keras.random.SeedGenerator(1)
    assert not np.allclose(grad(gen), grad(gen))


@tf_only  # A tf.function input signature of unknown rank.
@pytest.mark.parametrize("name", ALL_OPS + ["gumbel_softmax"])
def test_gradient_with_logits_of_unknown_rank(name):
    # Traced with logits of unknown rank (the class axis then stays -1):
    # the gradient runs, and is the one traced with the shape known.
    # `gumbel_softmax(hard=True)` too: its temperature gradient failed
    # there before.
    import tensorflow as tf

    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = _op(name)(x, 0.5, seed=1) if name != "gumbel_softmax" else (
                ops.gumbel_softmax(x, 0.5, hard=True, seed=1))
            loss = tf.reduce_sum(y * tf.range(3.0))
        return tape.gradient(loss, x)

    x = tf.constant(_random_logits((4, 3), seed=24), tf.float32)
    unknown = tf.function(grad, input_signature=[
        tf.TensorSpec(None, tf.float32)])(x)
    known = tf.function(grad)(x)
    np.testing.assert_allclose(_f64(unknown), _f64(known), rtol=1e-6,
                               atol=1e-7)
    assert np.abs(_f64(known)).max() > 1e-3


# --------------------------------------------------------------------------
# 4. Numerics: masking, extremes, dtypes, XLA.
# --------------------------------------------------------------------------

MASKED_LOGITS = np.array([[0.0, -np.inf, 1.0, 2.0],
                          [-np.inf, 3.0, -np.inf, 0.0],
                          [-np.inf, -np.inf, -np.inf, 5.0]], np.float32)
INFINITE_BINARY = np.array([[-np.inf, np.inf, 0.5, -1.0]], np.float32)


@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
@pytest.mark.parametrize("name", ALL_OPS)
def test_masked_logits(name, temperature):
    # -inf never drawn and zero gradient (+inf certain, for the binary
    # ops), nothing NaN; the unmasked classes still get a gradient.
    binary = name in BINARY_OPS
    logits = np.tile(INFINITE_BINARY if binary else MASKED_LOGITS, (200, 1))
    y, gx, gt = _grads(lambda x, t: _op(name)(x, t, seed=4), logits,
                       temperature)
    _assert_finite(y, gx, *([gt] if name in TAU_DIFFERENTIABLE else []))
    y, gx = _f64(y), _f64(gx)
    mask = np.isinf(logits)
    assert np.all(gx[mask] == 0.0)
    assert np.abs(gx[~mask]).max() > 1e-3
    if binary:
        assert np.all(y[:, 0] == 0.0) and np.all(y[:, 1] == 1.0)
    else:
        assert np.all(y[mask] == 0.0)
        _assert_one_hot(y)
        np.testing.assert_array_equal(y[2::3, 3], 1.0)


EXTREME_LOGITS = np.array([[1e4, -1e4, 0.0, 5e3],
                           [-1e4, -1e4, 1e4, 1e4],
                           [-1e4, -1e4, -1e4, -1e4],
                           [1e4, 1e4 - 1.0, -1e4, 3.0]], np.float32)


@pytest.mark.parametrize("temperature", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("name", ALL_OPS)
def test_extreme_logits_and_temperatures_are_finite(name, temperature):
    y, gx, gt = _grads(lambda x, t: _op(name)(x, t, seed=9),
                       np.tile(EXTREME_LOGITS, (20, 1)), temperature)
    _assert_finite(y, gx, *([gt] if name in TAU_DIFFERENTIABLE else []))
    y = _f64(y)
    assert np.all((y == 0.0) | (y == 1.0))
    if name in CATEGORICAL_OPS:
        _assert_one_hot(y)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_half_precision_is_computed_in_float32(name, dtype):
    # Same sample as the op on the float32 logits (the computation, noise
    # included, is in float32), and the gradient that one's rounded to the
    # dtype; 1e4 / 1e-3 overflows float16, so the extremes are in too.
    logits = np.concatenate([_random_logits((30, 4), seed=13),
                             [[1e4, -1e4, 0.0, 2.0]]])
    half = K.cast(tensor(logits, "float32"), dtype)

    def rounded(a):
        """`a` rounded to the dtype, as float64: exact in float32 too."""
        return _f64(K.cast(tensor(a, "float32"), dtype))

    # The same logits, upstream gradient and temperature on both sides.
    x, w = _f64(half), rounded(_weights(logits.shape))
    for temperature in (0.5, float(rounded(1e-3))):
        y, gx, _ = _grads(lambda x, t: _op(name)(x, t, seed=10), x,
                          temperature, w, dtype=dtype)
        assert dtype_of(y) == dtype_of(gx) == dtype
        y32, gx32, _ = _grads(lambda x, t: _op(name)(x, t, seed=10), x,
                              temperature, w)
        np.testing.assert_array_equal(_f64(y), _f64(y32))
        _assert_finite(gx)
        np.testing.assert_array_equal(
            _f64(gx), _f64(K.cast(gx32, dtype)))


@pytest.mark.slow
def test_xla_with_per_example_temperature():
    # All six ops compile with XLA in one function (one compilation;
    # `jax.jit` on JAX, eager on PyTorch), with a temperature per example:
    # exact samples, gradients finite and w.r.t. the temperature of its
    # shape. XLA draws other noise than TensorFlow's kernels (as for
    # `gumbel_softmax`), so the sample is checked for validity, and the
    # gradients that do not depend on it (straight-through) against the
    # eager ones.
    logits = tensor(_random_logits((12, 5), seed=15), "float32")
    temperature = tensor(_temperature((12, 1)), "float32")
    w = tensor(_weights((12, 5)), "float32")

    def all_grads(x, t):
        out = {}
        for name in ALL_OPS:
            y, (gx, gt) = _sample_and_grads(
                lambda x, t: _op(name)(x, t, seed=2), w, x, t)
            out[name] = (y, gx, gt)
        return out

    xla = compiled(all_grads)(logits, temperature)
    eager = all_grads(logits, temperature)
    for name, (y, gx, gt) in xla.items():
        if name in CATEGORICAL_OPS:
            _assert_one_hot(y)
        else:
            assert np.all((_f64(y) == 0.0) | (_f64(y) == 1.0))
        if name in TAU_DIFFERENTIABLE:
            assert tuple(gt.shape) == (12, 1)
            _assert_finite(gx, gt)
        else:
            _assert_no_gradient(gt)
            _assert_finite(gx)
        if name.startswith("straight_through"):
            np.testing.assert_allclose(_f64(gx), _f64(eager[name][1]),
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(_f64(gt), _f64(eager[name][2]),
                                       rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# 5. Layers.
# --------------------------------------------------------------------------

# layer name -> its op.
LAYER_OPS = {"StraightThrough": "straight_through", "ReinMax": "reinmax",
             "GumbelRao": "gumbel_rao",
             "StraightThroughSigmoid": "straight_through_sigmoid",
             "ReinMaxSigmoid": "reinmax_sigmoid",
             "GumbelRaoSigmoid": "gumbel_rao_sigmoid"}
layer_names = pytest.mark.parametrize("name", sorted(LAYER_OPS))


def _layer_kwargs(layer, **kwargs):
    """`kwargs` plus the arguments only some layers take."""
    if LAYER_OPS[layer] in CATEGORICAL_OPS:
        kwargs.setdefault("axis", -1)
    if layer.startswith("GumbelRao"):
        kwargs.setdefault("num_samples", 3)
    return kwargs


def _op_kwargs(name, layer_kwargs):
    return {k: v for k, v in layer_kwargs.items()
            if k in ("axis", "num_samples")}


@layer_names
def test_layer_config_round_trip(name):
    cls = getattr(keras_gumbel, name)
    kwargs = _layer_kwargs(name, temperature=0.5, seed=7,
                           inference_mode="soft", name="estimator")
    if "axis" in kwargs:
        kwargs["axis"] = 1
    layer = cls(**kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    assert cls.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls
    assert restored.get_config() == config


@layer_names
def test_layer_trains_with_its_op(name):
    # In training the layer is its op, drawing from its seed generator:
    # the same sample and gradient as the op given a SeedGenerator with
    # the layer's seed.
    cls = getattr(keras_gumbel, name)
    kwargs = _layer_kwargs(name, temperature=0.7, seed=3)
    logits = _random_logits((16, 5), seed=20).astype(np.float32)
    w = tensor(_weights((16, 5)), "float32")

    def run(fn):
        y, (grad,) = _sample_and_grads(fn, w, logits)
        return _f64(y), _f64(grad)

    layer = cls(**kwargs)
    generator = keras.random.SeedGenerator(3)
    ours = run(lambda x: layer(x, training=True))
    reference = run(lambda x: _op(LAYER_OPS[name])(
        x, 0.7, seed=generator, **_op_kwargs(name, kwargs)))
    np.testing.assert_array_equal(ours[0], reference[0])
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-6, atol=1e-7)
    assert np.abs(ours[1]).max() > 1e-3


@layer_names
def test_layer_inference_modes(name):
    cls = getattr(keras_gumbel, name)
    x = _random_logits((16, 5), seed=21).astype(np.float32)
    binary = LAYER_OPS[name] in BINARY_OPS
    mode = cls(**_layer_kwargs(name, seed=0, inference_mode="mode"))(x)
    soft = cls(**_layer_kwargs(name, temperature=0.7,
                               inference_mode="soft"))(x)
    sample = cls(**_layer_kwargs(name, seed=0))(x)
    if binary:
        np.testing.assert_array_equal(_f64(mode), x > 0)
        np.testing.assert_allclose(_f64(soft), scipy.special.expit(x / 0.7),
                                   rtol=1e-6)
        assert np.all((_f64(sample) == 0.0) | (_f64(sample) == 1.0))
    else:
        np.testing.assert_array_equal(_f64(mode),
                                      np.eye(5)[np.argmax(x, axis=1)])
        np.testing.assert_allclose(_f64(soft), np_softmax(x / 0.7),
                                   rtol=1e-6)
        _assert_one_hot(sample)


@layer_names
def test_layer_refuses_a_learned_temperature(name):
    # The forward value is an exact sample: the temperature only shapes
    # the gradient, so learning it would follow a value the model never
    # uses.
    cls = getattr(keras_gumbel, name)
    with pytest.raises(ValueError, match=r"argument `learn_temperature`"):
        cls(**_layer_kwargs(name, learn_temperature=True))


@pytest.mark.slow
@layer_names
def test_layer_fits_anneals_saves_and_loads(name, tmp_path):
    # One epoch of a small regression: the Dense layer before the
    # estimator learns (the gradient flows through it), the annealing
    # callback finds and drives the layer, and a .keras file brings back
    # the config, the temperature and the noise state.
    cls = getattr(keras_gumbel, name)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    before = keras.layers.Dense(5)
    gumbel = cls(**_layer_kwargs(name, seed=0))
    outputs = keras.layers.Dense(1)(gumbel(before(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    assert keras_gumbel.find_gumbel_layers(model) == [gumbel]
    kernel = K.convert_to_numpy(before.kernel).copy()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x[:, :1] - x[:, 1:2]
    annealing = keras_gumbel.TemperatureAnnealing(rate=0.1, update_every=1)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                        callbacks=[annealing])
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(K.convert_to_numpy(before.kernel), kernel)
    assert gumbel.temperature == pytest.approx(np.exp(-0.1 * 4), rel=1e-6)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.layers[2]
    assert type(restored) is cls
    assert restored.get_config() == gumbel.get_config()
    assert restored.temperature == pytest.approx(gumbel.temperature)
    np.testing.assert_array_equal(
        _f64(restored(before(x[:8]), training=True)),
        _f64(gumbel(before(x[:8]), training=True)))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["GumbelRao", "ReinMaxSigmoid"])
def test_layer_mixed_precision(name, policy):
    # The layer computes in the policy's dtype, its temperature stays
    # float32, and the gradient reaches the logits finite.
    keras.mixed_precision.set_dtype_policy(policy)
    compute = policy.split("_")[1]
    layer = getattr(keras_gumbel, name)(**_layer_kwargs(name, seed=0))
    x = tensor(_random_logits((16, 5), seed=22), compute)
    w = tensor(_weights((16, 5)), "float32")
    dtypes = []

    def loss(x):
        y = layer(x, training=True)
        dtypes.append(dtype_of(y))
        return K.cast(y, "float32") * w

    _, (grad,) = value_and_grads(loss, x)
    assert dtypes == [compute]
    assert dtype_of(grad) == compute
    assert dtype_of(layer.temperature_tensor()) == "float32"
    _assert_finite(grad)
    assert np.abs(_f64(grad)).max() > 1e-3


@tf_only  # Serves a TensorFlow SavedModel (`tf.saved_model.load`).
@pytest.mark.slow
@pytest.mark.parametrize("name", ["GumbelRao", "StraightThroughSigmoid"])
def test_layer_export_serves_samples(name, tmp_path):
    # `model.export` serves the forward pass: exact samples, new ones on
    # each call.
    import tensorflow as tf

    inputs = keras.Input((4,))
    gumbel = getattr(keras_gumbel, name)(**_layer_kwargs(name, seed=0))
    model = keras.Model(inputs, gumbel(keras.layers.Dense(5)(inputs)))
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    served = tf.saved_model.load(path)
    x = _random_logits((32, 4), seed=23).astype(np.float32)
    first, second = _f64(served.serve(x)), _f64(served.serve(x))
    assert first.shape == (32, 5)
    assert np.all((first == 0.0) | (first == 1.0))
    if LAYER_OPS[name] in CATEGORICAL_OPS:
        _assert_one_hot(first)
    assert not np.array_equal(first, second)
