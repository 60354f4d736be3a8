"""k-subsets: `ops.gumbel_topk`, `ops.topk_mode`, `ops.tempered_topk` and the
`GumbelTopK` layer, on every backend.

References, independent of the library's formulas: the Plackett-Luce
probabilities of each unordered k-subset by enumerating the ordered draws
without replacement (NumPy, float64); the relaxation's closed form for two
classes; its gradient by central differences of its forward (float64).
Statistical tests use fixed seeds and the significance `ALPHA`.
"""

import itertools
import os

import keras
import numpy as np
import pytest
import scipy.stats

import keras_gumbel
from _helpers import HAS_FLOAT64
from _helpers import as_float64
from _helpers import compiled
from _helpers import needs_float64
from _helpers import random_logits
from _helpers import tensor
from _helpers import tf_only
from _helpers import value_and_grads
from _helpers import value_and_grads_with_variables
from keras_gumbel import GumbelTopK
from keras_gumbel import ops

ALPHA = 1e-3
FLOAT = "float64" if HAS_FLOAT64 else "float32"


def plackett_luce_subsets(logits, k):
    """{frozenset of k classes: probability} for k draws without
    replacement from softmax(logits), by enumerating the ordered draws."""
    w = np.exp(np.asarray(logits, np.float64) - np.max(logits))
    probs = {}
    for order in itertools.permutations(range(len(w)), k):
        p, left = 1.0, w.sum()
        for c in order:
            p *= w[c] / left
            left -= w[c]
        key = frozenset(order)
        probs[key] = probs.get(key, 0.0) + p
    return probs


# --------------------------------------------------------------------------
# Exact sampling.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_hard_subsets_follow_plackett_luce(k):
    """The unordered k-subsets of `hard=True` have the probabilities of k
    draws without replacement (chi-square over every subset)."""
    logits = np.array([1.0, 0.2, -0.5, 0.7, -1.5], "float32")
    n = 40_000
    y = ops.gumbel_topk(np.tile(logits, (n, 1)), k, hard=True, seed=10 + k)
    y = as_float64(y)
    assert set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(y.sum(axis=1), k)
    probs = plackett_luce_subsets(logits, k)
    subsets = sorted(probs, key=sorted)
    index = {s: i for i, s in enumerate(subsets)}
    counts = np.zeros(len(subsets))
    rows, cols = np.nonzero(y)
    for row in cols.reshape(n, k):
        counts[index[frozenset(row.tolist())]] += 1
    expected = n * np.array([probs[s] for s in subsets])
    assert scipy.stats.chisquare(counts, expected).pvalue > ALPHA


def test_k_equal_one_draws_gumbel_softmax_sample_with_the_same_noise():
    x = random_logits((64, 7), seed=1).astype("float32")
    np.testing.assert_array_equal(
        as_float64(ops.gumbel_topk(x, 1, 0.7, hard=True, seed=5)),
        as_float64(ops.gumbel_softmax(x, 0.7, hard=True, seed=5)))


def test_masked_classes_are_never_chosen_and_get_zero_gradient():
    x = random_logits((2000, 6), seed=2).astype("float32")
    x[:, [1, 4]] = -np.inf
    x[::2, 0] = -np.inf  # every other row has 3 finite classes: k = 3
    for hard in (False, True):
        for tau in (1e-3, 0.5, 10.0):
            y, (grad,) = value_and_grads(
                lambda v, h=hard, t=tau: ops.gumbel_topk(
                    v, 3, t, hard=h, seed=3) * tensor(
                        np.arange(1.0, 7.0, dtype="float32")), x)
            y, grad = as_float64(y), as_float64(grad)
            assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
            assert np.all(y[np.isneginf(x)] == 0)
            assert np.all(grad[np.isneginf(x)] == 0)
            if hard:
                # Rows with 3 finite classes (0-based 2, 3, 5) choose
                # them all: the weights 3, 4, 6 times 1.
                np.testing.assert_array_equal(
                    y[::2][:, [2, 3, 5]],
                    np.broadcast_to([3.0, 4.0, 6.0], (1000, 3)))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_hard_sample_has_k_ones_where_perturbed_logits_tie(k):
    """Logits of 1e9 swallow the noise in float32 (its spacing there is
    64), so the k-th and (k+1)-th largest `logits + g` are equal: still
    exactly k ones, among the tied classes, in every row (also in the
    untied rows of the same batch)."""
    x = np.zeros((300, 8), "float32")
    x[:200, :5] = 1e9
    x[200:] = random_logits((100, 8), seed=40)
    y = as_float64(ops.gumbel_topk(x, k, 0.5, hard=True, seed=41))
    np.testing.assert_array_equal(y.sum(axis=-1), k)
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert np.all(y[:200, 5:] == 0)
    untied = as_float64(ops.gumbel_topk(x[200:], k, 0.5, hard=True,
                                        seed=41))
    np.testing.assert_array_equal(untied.sum(axis=-1), k)


def test_hard_sample_is_the_same_with_and_without_a_gradient():
    """Where no gradient is wanted (eager PyTorch without autograd, as in
    `predict`), the hard sample skips the threshold: the same k-hot as
    where a gradient is taken, for the same seed."""
    x = random_logits((50, 12), seed=42).astype("float32")
    for tau in (0.1, 2.0):
        plain = ops.gumbel_topk(x, 3, tau, hard=True, seed=43)
        traced, (grad,) = value_and_grads(
            lambda v, t=tau: ops.gumbel_topk(v, 3, t, hard=True, seed=43),
            x)
        np.testing.assert_array_equal(as_float64(plain), as_float64(traced))
        assert np.all(np.isfinite(as_float64(grad)))


# --------------------------------------------------------------------------
# The relaxation.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [1e-3, 1e-1, 1.0, 10.0, 1e3])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_relaxed_sums_to_k_finite_non_negative(tau, scale):
    """For every temperature and logits up to +-1e4: finite, in [0, 1],
    summing to k, with finite gradients for the logits and the
    temperature."""
    x = (random_logits((256, 10), seed=4, scale=1.0) * scale).astype(
        "float32")
    x[0, :5], x[0, 5:] = scale, -scale  # ties at the extremes
    w = tensor(random_logits((256, 10), seed=5).astype("float32"))
    for k in (1, 3, 9):
        _, (gx, gt) = value_and_grads(
            lambda v, t, kk=k: ops.gumbel_topk(v, kk, t, seed=6) * w,
            x, np.float32(tau))
        y = as_float64(ops.gumbel_topk(x, k, tau, seed=6))
        assert np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1))
        np.testing.assert_allclose(y.sum(axis=-1), k, rtol=1e-5)
        assert np.all(np.isfinite(as_float64(gx)))
        assert np.isfinite(float(as_float64(gt)))


def test_two_classes_closed_form():
    """K = 2, k = 1: the threshold is the midpoint, y_1 = sigmoid((x_1 -
    x_2) / (2 tau)), and its derivatives are the sigmoid's."""
    x = np.array([[2.0, 0.5], [-1.0, 3.0], [0.0, 0.0]], FLOAT)
    tau = 0.7
    d = x[:, 0] - x[:, 1]
    expected = 1.0 / (1.0 + np.exp(-d / (2 * tau)))
    w = np.array([[1.0, -2.0]], FLOAT)
    y, (gx, gt) = value_and_grads(
        lambda v, t: ops.tempered_topk(v, 1, t) * tensor(w), x,
        np.array(tau, FLOAT))
    tol = 1e-12 if FLOAT == "float64" else 1e-6
    np.testing.assert_allclose(as_float64(ops.tempered_topk(x, 1, tau)),
                               np.stack([expected, 1 - expected], 1),
                               atol=tol)
    # d/d x_1 of (y_1 - 2 y_2) = 3 s / (2 tau), s = y_1 (1 - y_1).
    slope = expected * (1 - expected)
    np.testing.assert_allclose(
        as_float64(gx), np.stack([3 * slope / (2 * tau),
                                  -3 * slope / (2 * tau)], 1), atol=tol)
    np.testing.assert_allclose(
        float(as_float64(gt)), np.sum(-3 * slope * d / (2 * tau ** 2)),
        atol=tol)


def test_entries_are_in_zero_one_and_every_class_chosen_is_all_ones():
    x = random_logits((64, 9), seed=29).astype("float32")
    for tau in (1e-3, 0.3, 3.0, 1e3):
        y = as_float64(ops.gumbel_topk(x, 4, tau, seed=30))
        assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_array_equal(as_float64(ops.gumbel_topk(x, 9, seed=1)),
                                  1.0)


def test_small_temperature_gives_the_hard_sample_of_the_same_seed():
    x = random_logits((500, 12), seed=7).astype("float32")
    for k in (1, 4, 11):
        soft = as_float64(ops.gumbel_topk(x, k, 1e-5, seed=8))
        hard = as_float64(ops.gumbel_topk(x, k, 1e-5, hard=True, seed=8))
        # Where the k-th and (k+1)-th noisy logits are closer than a few
        # temperatures, the two share the threshold: rare at tau = 1e-5.
        assert np.mean(np.all(np.abs(soft - hard) < 1e-4, axis=-1)) > 0.99
        np.testing.assert_array_equal(hard.sum(axis=-1), k)


def test_straight_through_gradient_is_the_relaxed_gradient():
    x = random_logits((32, 9), seed=9).astype("float32")
    w = tensor(random_logits((32, 9), seed=10).astype("float32"))
    grads = {}
    for hard in (False, True):
        _, grads[hard] = value_and_grads(
            lambda v, t, h=hard: ops.gumbel_topk(v, 3, t, hard=h,
                                                 seed=11) * w,
            x, np.float32(0.6))
    for a, b in zip(grads[False], grads[True]):
        np.testing.assert_allclose(as_float64(a), as_float64(b), rtol=1e-6,
                                   atol=1e-7)


@needs_float64
@pytest.mark.parametrize("temperature_shape", [(), (6, 1), (6, 5)])
def test_gradient_matches_finite_differences(temperature_shape):
    """The implicit gradient equals central differences of the forward
    (float64) for the logits and the temperature: one, one per row, or
    one per element."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 5))
    tau = rng.uniform(0.3, 3.0, size=temperature_shape)
    w = rng.normal(size=(6, 5))

    def loss(v, t):
        return float(np.sum(as_float64(ops.tempered_topk(
            tensor(v), 2, tensor(t))) * w))

    _, (gx, gt) = value_and_grads(
        lambda v, t: ops.tempered_topk(v, 2, t) * tensor(w), x, tau)
    h = 1e-6
    for value, grad, other in [(x, gx, "x"), (tau, gt, "tau")]:
        numeric = np.zeros(np.shape(value))
        for i in np.ndindex(np.shape(value)):
            up, down = np.array(value, float), np.array(value, float)
            up[i] += h
            down[i] -= h
            if other == "x":
                numeric[i] = (loss(up, tau) - loss(down, tau)) / (2 * h)
            else:
                numeric[i] = (loss(x, up) - loss(x, down)) / (2 * h)
        np.testing.assert_allclose(as_float64(grad), numeric, rtol=1e-5,
                                   atol=1e-7)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_axis(axis):
    x = random_logits((5, 6, 7), seed=13).astype("float32")
    k = 3
    moved = np.moveaxis(x, axis, -1)
    for hard in (False, True):
        y = as_float64(ops.gumbel_topk(x, k, 0.5, hard=hard, axis=axis,
                                       seed=14))
        assert y.shape == x.shape
        np.testing.assert_allclose(y.sum(axis=axis), k, rtol=1e-5)
    soft = as_float64(ops.tempered_topk(x, k, 0.5, axis=axis))
    np.testing.assert_allclose(
        np.moveaxis(soft, axis, -1),
        as_float64(ops.tempered_topk(moved, k, 0.5)), rtol=1e-5, atol=1e-6)
    mode = as_float64(ops.topk_mode(x, k, axis=axis))
    top = np.argsort(-moved, axis=-1)[..., :k]
    expected = np.zeros_like(moved)
    np.put_along_axis(expected, top, 1.0, axis=-1)
    np.testing.assert_array_equal(np.moveaxis(mode, axis, -1), expected)


def test_topk_mode_is_the_k_hot_of_the_largest_logits():
    x = np.array([[0.5, np.inf, -np.inf, 2.0, 1.0]], "float32")
    np.testing.assert_array_equal(as_float64(ops.topk_mode(x, 2)),
                                  [[0, 1, 0, 1, 0]])
    np.testing.assert_array_equal(
        as_float64(ops.topk_mode(x[:, [0, 1, 3, 4]], 4)), [[1, 1, 1, 1]])


def test_compiled():
    """Compiled as a training step is (XLA, jax.jit): a valid sample; traced
    without XLA (`tf.function`, jax.jit): the eager sample of the same
    seed. (TensorFlow's XLA draws other noise for an int seed than eager
    TensorFlow does, for every op of the library.)"""
    x = random_logits((8, 10), seed=15).astype("float32")
    fn = lambda v: ops.gumbel_topk(v, 4, 0.5, seed=16)  # noqa: E731
    hard = lambda v: ops.gumbel_topk(v, 4, hard=True, seed=16)  # noqa
    np.testing.assert_allclose(
        as_float64(compiled(fn)(tensor(x))).sum(axis=-1), 4, rtol=1e-5)
    np.testing.assert_array_equal(
        as_float64(compiled(hard)(tensor(x))).sum(axis=-1), 4)
    np.testing.assert_allclose(
        as_float64(compiled(fn, jit_compile=False)(tensor(x))),
        as_float64(fn(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(dtype):
    x = random_logits((4, 20), seed=17).astype("float32")
    y = ops.gumbel_topk(tensor(x, dtype), 5, 0.5, seed=18)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    ref = as_float64(ops.gumbel_topk(x, 5, 0.5, seed=18))
    np.testing.assert_allclose(as_float64(y), ref, atol=2e-2)


# --------------------------------------------------------------------------
# The layer.
# --------------------------------------------------------------------------


def test_layer_samples_in_training_and_follows_its_inference_mode():
    x = random_logits((16, 10), seed=19).astype("float32")
    for hard in (False, True):
        y = as_float64(GumbelTopK(3, 0.5, hard=hard, seed=0)(
            x, training=True))
        np.testing.assert_allclose(y.sum(axis=-1), 3, rtol=1e-5)
        if hard:
            assert set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(
        as_float64(GumbelTopK(3, inference_mode="mode")(x)),
        as_float64(ops.topk_mode(x, 3)))
    np.testing.assert_allclose(
        as_float64(GumbelTopK(3, 0.7, inference_mode="soft")(x)),
        as_float64(ops.tempered_topk(x, 3, 0.7)), rtol=1e-6)


def test_layer_same_seed_same_noise_as_the_op_sequence():
    """Two layers with the same seed draw the same samples."""
    x = random_logits((6, 8), seed=20).astype("float32")
    a, b = GumbelTopK(2, seed=3), GumbelTopK(2, seed=3)
    for _ in range(2):
        np.testing.assert_array_equal(as_float64(a(x, training=True)),
                                      as_float64(b(x, training=True)))


def test_layer_config_round_trip():
    layer = GumbelTopK(4, temperature=0.3, hard=True, axis=1, seed=2,
                       inference_mode="mode", name="picks")
    config = layer.get_config()
    assert config["k"] == 4 and config["hard"] is True
    clone = GumbelTopK.from_config(config)
    assert clone.get_config() == config
    assert not clone.forward_uses_temperature


def test_layer_learned_temperature_gets_a_gradient():
    layer = GumbelTopK(2, temperature=0.8, learn_temperature=True, seed=0)
    x = random_logits((4, 6), seed=21).astype("float32")
    layer.build(x.shape)
    w = tensor(random_logits((4, 6), seed=22).astype("float32"))
    _, _, (grad,) = value_and_grads_with_variables(
        lambda v: layer(v, training=True) * w, layer.trainable_variables, x)
    assert np.isfinite(float(as_float64(grad)))
    assert float(as_float64(grad)) != 0.0


def test_layer_keras_file_round_trip(tmp_path):
    inputs = keras.Input((12,))
    picks = GumbelTopK(3, hard=True, seed=1, inference_mode="mode")(
        keras.layers.Dense(12)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(picks))
    model.compile("adam", "mse")
    x = random_logits((32, 12), seed=23).astype("float32")
    model.fit(x, np.zeros((32, 2), "float32"), epochs=1, verbose=0)
    path = os.path.join(tmp_path, "topk.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    layer = [la for la in loaded.layers if isinstance(la, GumbelTopK)][0]
    assert (layer.k, layer.hard) == (3, True)


def test_annealing_drives_the_layer():
    inputs = keras.Input((6,))
    layer = GumbelTopK(2, temperature=1.0, seed=0)
    model = keras.Model(inputs, layer(keras.layers.Dense(6)(inputs)))
    assert keras_gumbel.find_gumbel_layers(model) == [layer]
    model.compile("sgd", "mse")
    callback = keras_gumbel.TemperatureAnnealing(
        initial=1.0, rate=0.1, minimum=0.2, update_every=1)
    x = np.zeros((16, 6), "float32")
    model.fit(x, np.zeros((16, 6), "float32"), batch_size=4, epochs=1,
              verbose=0, callbacks=[callback])
    # Four steps: the temperature of step 4 is in place after them.
    assert layer.temperature == pytest.approx(np.exp(-0.1 * 4), rel=1e-5)


def test_layer_passes_the_mask_on():
    inputs = keras.Input((5, 8))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = GumbelTopK(2, seed=0)
    out = layer(masked)
    assert out.shape == (None, 5, 8)
    x = random_logits((3, 5, 8), seed=24).astype("float32")
    x[:, 1] = 0.0
    mask = layer.compute_mask(tensor(x), keras.ops.any(
        keras.ops.not_equal(tensor(x), 0.0), axis=-1))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(mask)[:, 1], False)


def test_layer_under_mixed_precision():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    inputs = keras.Input((10,))
    layer = GumbelTopK(3, seed=0)
    model = keras.Model(inputs, layer(keras.layers.Dense(10)(inputs)))
    x = random_logits((8, 10), seed=25).astype("float32")
    y = model(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    np.testing.assert_allclose(as_float64(y).sum(axis=-1), 3, rtol=2e-3)
    assert keras.backend.standardize_dtype(
        layer.temperature_variable.dtype) == "float32"


def test_layer_trains_a_model_on_every_backend():
    """A k-hot feature mask learned with `fit`: the loss goes down."""
    rng = np.random.default_rng(26)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 2] + x[:, 5])[:, None].astype("float32")
    inputs = keras.Input((8,))
    scores = keras.layers.Dense(8)(inputs)
    mask = GumbelTopK(2, temperature=0.5, hard=True, seed=0)(scores)
    out = keras.layers.Dense(1)(keras.layers.Multiply()([inputs, mask]))
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(0.02), "mse")
    history = model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses


@tf_only  # ranks unknown when traced exist only in a `tf.function`
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_rank_unknown_when_traced(axis):
    """The k-hot with the rank unknown when traced, along any axis (the
    relaxation along the last: `tf.nn.softmax` needs a known rank for
    another axis, as `gumbel_softmax` does)."""
    import tensorflow as tf

    x = random_logits((4, 5, 6), seed=27).astype("float32")
    spec = [tf.TensorSpec(None, tf.float32)]
    mode = tf.function(lambda v: ops.topk_mode(v, 2, axis=axis),
                       input_signature=spec)(tf.constant(x))
    np.testing.assert_array_equal(as_float64(mode),
                                  as_float64(ops.topk_mode(x, 2, axis=axis)))
    if axis != -1:
        return
    soft, hard = tf.function(
        lambda v: (ops.gumbel_topk(v, 2, 0.5, seed=28),
                   ops.gumbel_topk(v, 2, hard=True, seed=28)),
        input_signature=spec)(tf.constant(x))
    np.testing.assert_allclose(as_float64(soft).sum(axis=-1), 2, rtol=1e-5)
    np.testing.assert_array_equal(as_float64(hard).sum(axis=-1), 2)
