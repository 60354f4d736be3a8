"""Property-based tests (hypothesis) of the ops and the layers.

Over random shapes (rank 1 to 4, each dimension 1 to 6), axes, dtypes
(float16, bfloat16, float32, float64), temperatures (1e-3 to 1e3, log-uniform;
one scalar or one per row) and logits (up to +-1e4, with `-inf` masks), every
sample must be finite and in [0, 1]; soft samples must sum to 1 along the
axis and give masked classes 0; hard samples must be exactly one-hot (0/1 for
the binary ops) and never pick a masked class; the soft and hard samples drawn
with the same integer seed must agree (same noise); and the gradients with
respect to the logits and the temperature must be finite, and zero at masked
classes.

Every test is `derandomize=True`: hypothesis draws the same examples on every
run, so CI is deterministic. The example counts are modest (the suite's time
budget); run with `--hypothesis-seed`/more examples locally to search wider.

The tests run on every Keras backend, the gradients by the backend's own
autodiff (`value_and_grads`). On JAX without x64 (its default) there is no
float64: float64 is then left out of the dtypes drawn.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _helpers import ALL_LAYERS
from _helpers import BACKEND
from _helpers import CATEGORICAL
from _helpers import HAS_FLOAT64
from _helpers import SOFT_LAYERS
from _helpers import STRAIGHT_THROUGH
from _helpers import as_float64
from _helpers import dtype_of
from _helpers import tensor
from _helpers import value_and_grads
from _helpers import value_and_grads_with_variables
from keras_gumbel import ops

# float64 only where the backend computes in it (not JAX without x64, where
# float64 inputs become float32).
DTYPES = ["float16", "bfloat16", "float32"] + (
    ["float64"] if HAS_FLOAT64 else [])
# How far from 1 a soft sample's sum may be once cast to the output dtype:
# each of the (at most 6) probabilities is rounded to the dtype's precision,
# so the sum is off by at most about half an ulp of 1.
SUM_ATOL = {"float16": 2e-3, "bfloat16": 8e-3, "float32": 1e-5,
            "float64": 1e-12}
MAX_LOGIT = 1e4


def _settings(n):
    # On JAX every new shape hypothesis draws compiles the random draw anew
    # (1-2 s each on a 2-core CPU: 11 minutes for this module at full
    # count), so JAX checks a quarter of the examples; TensorFlow and
    # PyTorch, running the same math, check them all.
    if BACKEND == "jax":
        n = max(5, n // 4)
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture,
                               HealthCheck.too_slow,
                               HealthCheck.data_too_large])


# --------------------------------------------------------------------------
# Strategies.
# --------------------------------------------------------------------------


shapes = st.integers(1, 4).flatmap(
    lambda rank: st.tuples(*[st.integers(1, 6)] * rank))
# Log-uniform in [1e-3, 1e3], the ends included.
temperatures = st.one_of(
    st.sampled_from([1e-3, 1e3, 1.0]),
    st.floats(-3.0, 3.0).map(lambda e: float(10.0 ** e)))
logit_values = st.one_of(
    st.floats(-MAX_LOGIT, MAX_LOGIT, allow_nan=False, allow_infinity=False),
    st.sampled_from([-MAX_LOGIT, MAX_LOGIT, 0.0]))


def _temperature_array(draw, shape):
    """Independent log-uniform temperatures of `shape` (float64)."""
    exponents = draw(hnp.arrays(
        np.float64, shape, elements=st.floats(-3.0, 3.0)))
    return 10.0 ** exponents


@st.composite
def categorical_cases(draw):
    """(logits float64 array, dtype, axis, temperature, mask)."""
    shape = draw(shapes)
    rank = len(shape)
    axis = draw(st.integers(-rank, rank - 1))
    dtype = draw(st.sampled_from(DTYPES))
    logits = draw(hnp.arrays(np.float64, shape, elements=logit_values))
    mask = draw(hnp.arrays(
        np.bool_, shape, elements=st.sampled_from([False, False, True])))
    # Every row keeps at least one class (a row of only -inf has no sample).
    first = [slice(None)] * rank
    first[axis] = 0
    empty = np.all(mask, axis=axis)
    mask[tuple(first)] &= ~empty
    logits = np.where(mask, -np.inf, logits)
    if draw(st.booleans()):
        temperature = draw(temperatures)
    else:  # one temperature per row: size 1 along the class axis
        tau_shape = list(shape)
        tau_shape[axis] = 1
        temperature = _temperature_array(draw, tuple(tau_shape))
    return logits, dtype, axis, temperature, mask


@st.composite
def binary_cases(draw):
    """(logits float64 array, dtype, temperature); +-inf allowed."""
    shape = draw(shapes)
    dtype = draw(st.sampled_from(DTYPES))
    logits = draw(hnp.arrays(np.float64, shape, elements=st.one_of(
        logit_values, st.sampled_from([-np.inf, np.inf]))))
    if draw(st.booleans()):
        temperature = draw(temperatures)
    else:  # one temperature per example: (batch, 1, ..., 1)
        temperature = _temperature_array(
            draw, (shape[0],) + (1,) * (len(shape) - 1))
    return logits, dtype, temperature


def _tensors(logits, dtype, temperature):
    """The logits as a `dtype` tensor and the temperature as a tensor of the
    dtype the ops compute in (float32 for the half types)."""
    x = tensor(np.asarray(logits, np.float64), dtype)
    compute = "float64" if dtype == "float64" else "float32"
    tau = tensor(np.asarray(temperature, np.float64), compute)
    return x, tau


def _upstream(shape, seed):
    """A fixed random upstream gradient (the loss is sum(w * y))."""
    return np.random.default_rng(seed).standard_normal(shape)


def _sample_and_grads(fn, x, tau, w):
    """y = fn(x, tau) and the gradients of sum(y * w) w.r.t. x and tau, by
    the backend's autodiff (`w` a float64 array, the loss summed in float32
    on JAX without x64, else float64). `fn` draws with an integer seed: `y`
    is drawn again by a second call (the same sample)."""
    loss_dtype = "float64" if HAS_FLOAT64 else "float32"
    w = tensor(np.asarray(w), loss_dtype)
    _, (dx, dtau) = value_and_grads(
        lambda x, t: keras.ops.cast(fn(x, t), loss_dtype) * w, x, tau)
    return fn(x, tau), dx, dtau


def _assert_finite_grads(dx, dtau, shape, tau_shape):
    assert dx is not None and dtau is not None
    assert tuple(dx.shape) == tuple(shape)
    assert tuple(dtau.shape) == tuple(tau_shape)
    assert np.all(np.isfinite(as_float64(dx))), as_float64(dx)
    assert np.all(np.isfinite(as_float64(dtau))), as_float64(dtau)


def _one_hot_along(y, axis):
    return (np.all((y == 0) | (y == 1))
            and np.all(np.sum(y, axis=axis) == 1))


# --------------------------------------------------------------------------
# Categorical ops.
# --------------------------------------------------------------------------


@_settings(60)
@given(case=categorical_cases(), seed=st.integers(0, 2**31 - 1))
def test_gumbel_softmax_soft_and_hard(case, seed):
    logits, dtype, axis, temperature, mask = case
    x, tau = _tensors(logits, dtype, temperature)
    w = _upstream(logits.shape, seed % 1000)

    soft, dx, dtau = _sample_and_grads(
        lambda x, t: ops.gumbel_softmax(x, t, axis=axis, seed=seed),
        x, tau, w)
    assert dtype_of(soft) == dtype_of(x) == dtype
    assert tuple(soft.shape) == tuple(x.shape)
    y = as_float64(soft)
    assert np.all(np.isfinite(y))
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, atol=SUM_ATOL[dtype])
    assert np.all(y[mask] == 0)
    _assert_finite_grads(dx, dtau, logits.shape, np.shape(temperature))
    assert np.all(as_float64(dx)[mask] == 0)
    if np.ndim(temperature) == 0:  # a Python float: the same sample
        np.testing.assert_array_equal(as_float64(ops.gumbel_softmax(
            x, temperature, axis=axis, seed=seed)), y)

    hard, dx_hard, dtau_hard = _sample_and_grads(
        lambda x, t: ops.gumbel_softmax(
            x, t, hard=True, axis=axis, seed=seed), x, tau, w)
    assert dtype_of(hard) == dtype
    h = as_float64(hard)
    assert _one_hot_along(h, axis)
    assert np.all(h[mask] == 0)
    # Same seed, same noise: the hard sample is the argmax of the soft one.
    chosen = np.sum(np.where(h == 1, y, 0.0), axis=axis, keepdims=True)
    assert np.all(chosen >= y)
    # Straight-through: the gradient is the soft sample's.
    _assert_finite_grads(dx_hard, dtau_hard, logits.shape,
                         np.shape(temperature))
    np.testing.assert_array_equal(as_float64(dx_hard), as_float64(dx))
    np.testing.assert_array_equal(as_float64(dtau_hard), as_float64(dtau))


@_settings(30)
@given(case=categorical_cases())
def test_deterministic_categorical_ops(case):
    logits, dtype, axis, temperature, mask = case
    x, tau = _tensors(logits, dtype, temperature)
    rows_have_a_class = np.any(~mask, axis=axis)
    assert np.all(rows_have_a_class)

    mode = as_float64(ops.softmax_mode(x, axis=axis))
    assert _one_hot_along(mode, axis)
    assert np.all(mode[mask] == 0)
    assert np.all(np.sum(np.where(mode == 1, as_float64(x), 0.0), axis=axis)
                  == np.max(as_float64(x), axis=axis))

    soft = as_float64(ops.tempered_softmax(x, tau, axis=axis))
    assert np.all(np.isfinite(soft)) and np.all((soft >= 0) & (soft <= 1))
    np.testing.assert_allclose(soft.sum(axis=axis), 1.0,
                               atol=SUM_ATOL[dtype])
    assert np.all(soft[mask] == 0)

    kl, (grad,) = value_and_grads(
        lambda x: ops.kl_categorical_uniform(x, axis=axis), x)
    k = as_float64(kl)
    assert np.all(np.isfinite(k))
    # KL >= 0, and <= log K per row (the KL of a one-hot); rounding aside.
    rows = np.prod(tuple(kl.shape)) if len(kl.shape) else 1
    assert np.all(k >= -1e-3 * rows)
    grad = as_float64(grad)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[mask] == 0)


@_settings(40)
@given(case=categorical_cases(), seed=st.integers(0, 2**31 - 1),
       data=st.data())
def test_gumbel_topk_soft_and_hard(case, seed, data):
    """k-subsets: k from 1 to the fewest finite classes of a row; the soft
    sample is finite, non-negative (not bounded by 1: see the README),
    sums to k and gives masked classes 0; the hard one is a k-hot that
    never picks a masked class; the straight-through gradient is the soft
    one's; the gradients are finite and zero at masked classes."""
    logits, dtype, axis, temperature, mask = case
    k = data.draw(st.integers(1, int(np.min(np.sum(~mask, axis=axis)))),
                  label="k")
    x, tau = _tensors(logits, dtype, temperature)
    w = _upstream(logits.shape, seed % 1000)

    soft, dx, dtau = _sample_and_grads(
        lambda x, t: ops.gumbel_topk(x, k, t, axis=axis, seed=seed),
        x, tau, w)
    assert dtype_of(soft) == dtype
    y = as_float64(soft)
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    # Entries up to about 2 (each rounded to the dtype), k sums of them.
    np.testing.assert_allclose(y.sum(axis=axis), k,
                               atol=3 * k * SUM_ATOL[dtype])
    assert np.all(y[mask] == 0)
    _assert_finite_grads(dx, dtau, logits.shape, np.shape(temperature))
    assert np.all(as_float64(dx)[mask] == 0)

    hard, dx_hard, dtau_hard = _sample_and_grads(
        lambda x, t: ops.gumbel_topk(x, k, t, hard=True, axis=axis,
                                     seed=seed), x, tau, w)
    h = as_float64(hard)
    assert np.all((h == 0) | (h == 1))
    assert np.all(np.sum(h, axis=axis) == k)
    assert np.all(h[mask] == 0)
    np.testing.assert_array_equal(as_float64(dx_hard), as_float64(dx))
    np.testing.assert_array_equal(as_float64(dtau_hard), as_float64(dtau))

    mode = as_float64(ops.topk_mode(x, k, axis=axis))
    assert np.all(np.sum(mode, axis=axis) == k) and np.all(mode[mask] == 0)


# --------------------------------------------------------------------------
# Binary ops.
# --------------------------------------------------------------------------


@_settings(50)
@given(case=binary_cases(), seed=st.integers(0, 2**31 - 1))
def test_gumbel_sigmoid_soft_and_hard(case, seed):
    logits, dtype, temperature = case
    x, tau = _tensors(logits, dtype, temperature)
    w = _upstream(logits.shape, seed % 1000)

    soft, dx, dtau = _sample_and_grads(
        lambda x, t: ops.gumbel_sigmoid(x, t, seed=seed), x, tau, w)
    assert dtype_of(soft) == dtype_of(x) == dtype
    assert tuple(soft.shape) == tuple(x.shape)
    y = as_float64(soft)
    assert np.all(np.isfinite(y))
    assert np.all((y >= 0) & (y <= 1))
    # +inf and -inf are certain outcomes (documented).
    assert np.all(y[logits == np.inf] == 1)
    assert np.all(y[logits == -np.inf] == 0)
    _assert_finite_grads(dx, dtau, logits.shape, np.shape(temperature))
    assert np.all(as_float64(dx)[np.isinf(logits)] == 0)
    if np.ndim(temperature) == 0:  # a Python float: the same sample
        np.testing.assert_array_equal(as_float64(ops.gumbel_sigmoid(
            x, temperature, seed=seed)), y)

    hard, dx_hard, dtau_hard = _sample_and_grads(
        lambda x, t: ops.gumbel_sigmoid(x, t, hard=True, seed=seed),
        x, tau, w)
    h = as_float64(hard)
    assert np.all((h == 0) | (h == 1))
    # Same seed, same noise: 1 exactly where the soft sample is >= 1/2.
    assert np.all(y[h == 1] >= 0.5) and np.all(y[h == 0] <= 0.5)
    _assert_finite_grads(dx_hard, dtau_hard, logits.shape,
                         np.shape(temperature))
    np.testing.assert_array_equal(as_float64(dx_hard), as_float64(dx))


@_settings(30)
@given(case=binary_cases())
def test_deterministic_binary_ops(case):
    logits, dtype, temperature = case
    x, tau = _tensors(logits, dtype, temperature)

    mode = as_float64(ops.sigmoid_mode(x))
    # `x > 0` of the logits as cast to `dtype` (tiny values round to 0).
    # XLA on a CPU (JAX) flushes subnormal numbers to zero in its ops, so
    # there a subnormal logit compares as 0: a tie, mode 0.
    expected = as_float64(x)
    if BACKEND == "jax":
        tiny = np.finfo(np.float32 if dtype == "bfloat16" else dtype).tiny
        expected = np.where(np.abs(expected) < tiny, 0.0, expected)
    np.testing.assert_array_equal(mode, (expected > 0).astype(np.float64))
    soft = as_float64(ops.tempered_sigmoid(x, tau))
    assert np.all(np.isfinite(soft)) and np.all((soft >= 0) & (soft <= 1))

    kl, (grad,) = value_and_grads(ops.kl_bernoulli_uniform, x)
    k = as_float64(kl)
    assert np.all(np.isfinite(k)) and np.all(k >= -1e-3 * logits.size)
    grad = as_float64(grad)
    assert np.all(np.isfinite(grad))


@_settings(40)
@given(case=st.one_of(
    categorical_cases().map(lambda c: ("softmax",) + c),
    binary_cases().map(lambda c: ("sigmoid", c[0], c[1], None, c[2], None))))
def test_tempered_gradients_are_finite(case):
    """The noiseless relaxations ("soft" inference) are differentiable in
    the logits and the temperature too (a learned temperature gets their
    gradient when a model is trained through `training=False` calls)."""
    kind, logits, dtype, axis, temperature, mask = case
    x, tau = _tensors(logits, dtype, temperature)
    w = _upstream(logits.shape, 0)
    if kind == "softmax":
        fn = lambda x, t: ops.tempered_softmax(x, t, axis=axis)  # noqa: E731
    else:
        fn = ops.tempered_sigmoid
    y, dx, dtau = _sample_and_grads(fn, x, tau, w)
    assert np.all(np.isfinite(as_float64(y)))
    _assert_finite_grads(dx, dtau, logits.shape, np.shape(temperature))


# --------------------------------------------------------------------------
# Noise.
# --------------------------------------------------------------------------


@_settings(20)
@given(shape=shapes, dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**31 - 1))
def test_noise_is_finite(shape, dtype, seed):
    for sample in (ops.sample_gumbel, ops.sample_logistic):
        noise = sample(shape, dtype=dtype, seed=seed)
        assert tuple(noise.shape) == shape
        assert dtype_of(noise) == dtype
        assert np.all(np.isfinite(as_float64(noise)))
        # The same integer seed gives the same noise.
        np.testing.assert_array_equal(
            as_float64(sample(shape, dtype=dtype, seed=seed)),
            as_float64(noise))


# --------------------------------------------------------------------------
# Layers.
# --------------------------------------------------------------------------


@st.composite
def layer_cases(draw):
    cls = draw(st.sampled_from(ALL_LAYERS))
    shape = draw(shapes)
    kwargs = dict(
        temperature=draw(temperatures),
        dtype=draw(st.sampled_from(DTYPES)),
        learn_temperature=cls in SOFT_LAYERS and draw(st.booleans()),
        inference_mode=draw(st.sampled_from(["sample", "mode", "soft"])),
        seed=draw(st.integers(0, 1000)),
    )
    categorical = cls in CATEGORICAL
    logits = draw(hnp.arrays(np.float64, shape, elements=logit_values))
    mask = np.zeros(shape, bool)
    if categorical:
        kwargs["axis"] = draw(st.integers(-len(shape), len(shape) - 1))
        mask = draw(hnp.arrays(
            np.bool_, shape, elements=st.sampled_from([False, False, True])))
        first = [slice(None)] * len(shape)
        first[kwargs["axis"]] = 0
        mask[tuple(first)] &= ~np.all(mask, axis=kwargs["axis"])
        logits = np.where(mask, -np.inf, logits)
    training = draw(st.booleans())
    return cls, kwargs, logits, mask, training


@_settings(40)
@given(case=layer_cases())
def test_layers(case):
    cls, kwargs, logits, mask, training = case
    dtype = kwargs["dtype"]
    layer = cls(**kwargs)
    x = tensor(np.asarray(logits, np.float64), dtype)
    loss_dtype = "float64" if HAS_FLOAT64 else "float32"
    w = tensor(_upstream(logits.shape, 0), loss_dtype)
    seen = {}

    def weighted_and_output(x):
        # The loss sum(y * w); the output's value rides along with no
        # gradient (`stop_gradient`), so that it is the value of this very
        # call (the layer's seed generator draws new noise on each call).
        y = layer(x, training=training)
        seen["dtype"], seen["shape"] = dtype_of(y), tuple(y.shape)
        y = keras.ops.cast(y, loss_dtype)
        return keras.ops.stack([y * w, keras.ops.stop_gradient(y)])

    # The gradients w.r.t. the logits and the layer's trainable variables
    # (a learned temperature), as the backend's training takes them.
    value, (grad_x,), grad_vars = value_and_grads_with_variables(
        weighted_and_output, layer.trainable_variables, x)
    assert seen["dtype"] == dtype and seen["shape"] == tuple(x.shape)
    y = value[1]
    out = as_float64(y)
    assert np.all(np.isfinite(out))
    assert np.all((out >= 0) & (out <= 1))
    assert np.all(out[mask] == 0)
    path = "sample" if training else kwargs["inference_mode"]
    categorical = cls in CATEGORICAL
    hard = path == "mode" or (path == "sample" and cls in STRAIGHT_THROUGH)
    if categorical and hard:
        assert _one_hot_along(out, kwargs["axis"])
    elif categorical:
        np.testing.assert_allclose(out.sum(axis=kwargs["axis"]), 1.0,
                                   atol=SUM_ATOL[dtype])
    elif hard:
        assert np.all((out == 0) | (out == 1))

    # The gradients of samples (the gradients of the "soft" relaxation are
    # tested on the ops, in `test_tempered_gradients_are_finite`; the mode is
    # a constant of the logits).
    grads = [grad_x] + list(grad_vars)
    if path == "sample":
        for grad in grads:
            assert grad is not None
            assert np.all(np.isfinite(as_float64(grad)))
    assert layer.temperature == pytest.approx(kwargs["temperature"],
                                              rel=1e-6)
