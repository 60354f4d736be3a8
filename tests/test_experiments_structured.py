"""Tests of `keras_gumbel.experiments.structured` on tiny networks.

The m-sample NLL is checked against the exact marginal likelihood, computed
by enumerating every configuration of the discrete units of a network small
enough to enumerate (2 binary units, or 1 categorical variable of 3 classes,
in each of the two layers).
"""

import itertools
import math

import keras
import numpy as np
import pytest

import keras_gumbel
from keras_gumbel import datasets
from keras_gumbel.experiments import structured

KINDS_AND_ESTIMATORS = [
    ("bernoulli", False), ("bernoulli", True),
    ("categorical", False), ("categorical", True)]
IDS = ["bernoulli-gs", "bernoulli-st", "categorical-gs", "categorical-st"]
TINY_HIDDEN = {"bernoulli": 2, "categorical": (1, 3)}


def _tiny(kind, straight_through=False, seed=0, input_dim=3, output_dim=4,
          scale=2.0):
    """A tiny SBN with large random weights (a distribution far from
    uniform, so that the test can tell a wrong marginal from the right
    one)."""
    model = structured.build_sbn(
        kind, straight_through, hidden=TINY_HIDDEN[kind], seed=seed,
        input_dim=input_dim, output_dim=output_dim)
    rng = np.random.default_rng(seed + 100)
    model.set_weights([
        scale * rng.standard_normal(w.shape).astype(np.float32)
        if w.ndim else w for w in model.get_weights()])
    return model


# --------------------------------------------------------------------------
# Exact enumeration.
# --------------------------------------------------------------------------


def _configurations(kind, hidden):
    """Every value of one stochastic layer, flattened: (configs, units)."""
    if kind == "bernoulli":
        return np.array(list(itertools.product([0.0, 1.0], repeat=hidden)))
    latents, classes = hidden
    eye = np.eye(classes)
    return np.array([np.concatenate([eye[c] for c in choice])
                     for choice in itertools.product(range(classes),
                                                     repeat=latents)])


def _log_prob(kind, hidden, z, logits):
    """log p(z | logits) of one configuration (numpy)."""
    if kind == "bernoulli":
        log_p = -np.logaddexp(0.0, -logits)
        log_1mp = -np.logaddexp(0.0, logits)
        return float(np.sum(z * log_p + (1 - z) * log_1mp))
    latents, classes = hidden
    a = logits.reshape(latents, classes)
    log_q = a - np.logaddexp.reduce(a, axis=-1, keepdims=True)
    return float(np.sum(z.reshape(latents, classes) * log_q))


def _exact(model, kind, x_upper, x_lower):
    """Per example, by enumeration: the exact -log p(x_lower | x_upper); the
    variance of one importance weight w = p(x_lower | z) over its mean
    squared; and -E[log w], what the estimate is with m = 1."""
    hidden = TINY_HIDDEN[kind]
    w1, b1 = model.get_layer("h1_logits").get_weights()
    w2, b2 = model.get_layer("h2_logits").get_weights()
    w3, b3 = model.get_layer("lower_half_logits").get_weights()
    configs = _configurations(kind, hidden)
    nll, rel_var, one_sample = [], [], []
    for u, lower in zip(x_upper.astype(np.float64), x_lower):
        log_prior, log_w = [], []
        for z1 in configs:
            lp1 = _log_prob(kind, hidden, z1, u @ w1 + b1)
            for z2 in configs:
                lp2 = _log_prob(kind, hidden, z2, z1 @ w2 + b2)
                log_prior.append(lp1 + lp2)
                # log p(lower | z2): Bernoulli pixels.
                log_w.append(_log_prob("bernoulli", None, lower,
                                       z2 @ w3 + b3))
        p, log_w = np.exp(log_prior), np.array(log_w)
        assert abs(p.sum() - 1) < 1e-9  # the enumeration is complete
        mean = float(p @ np.exp(log_w))
        nll.append(-math.log(mean))
        rel_var.append(float(p @ np.exp(2 * log_w)) / mean**2 - 1.0)
        one_sample.append(-float(p @ log_w))
    return np.array(nll), np.array(rel_var), np.array(one_sample)


@pytest.mark.parametrize("kind", structured.KINDS)
@pytest.mark.parametrize("straight_through", [False, True], ids=["gs", "st"])
def test_importance_sampled_nll_matches_exact_marginal(kind,
                                                       straight_through):
    model = _tiny(kind, straight_through, seed=1)
    rng = np.random.default_rng(0)
    x_upper = (rng.random((3, 3)) < 0.5).astype(np.float32)
    x_lower = (rng.random((3, 4)) < 0.5).astype(np.float32)
    exact, rel_var, one_sample = _exact(model, kind, x_upper, x_lower)
    m = 20000
    estimate = structured.importance_sampled_nll(
        model, x_upper, x_lower, m=m, batch=2, seed=3)
    assert estimate.shape == (3,)
    # -log of a mean of m weights: standard error ~ sqrt(rel_var / m) (delta
    # method), bias ~ rel_var / (2m) upward. 5 standard errors: a false
    # failure about once in 10^6 runs per example.
    tolerance = 5 * np.sqrt(rel_var / m) + rel_var / m
    np.testing.assert_array_less(np.abs(estimate - exact), tolerance)
    # Not a vacuous check: a mean of log-weights (the m = 1 bound, what a
    # wrong reduction would give) is off by more than the tolerance here.
    assert np.all(one_sample - exact > 3 * tolerance)


def test_importance_sampled_nll_decreases_with_m_on_average():
    # E[-log mean of m weights] decreases in m (Burda et al. 2016).
    model = _tiny("bernoulli", seed=2)
    rng = np.random.default_rng(1)
    x_upper = (rng.random((40, 3)) < 0.5).astype(np.float32)
    x_lower = (rng.random((40, 4)) < 0.5).astype(np.float32)
    nll = {m: structured.importance_sampled_nll(
        model, x_upper, x_lower, m=m, batch=7, seed=0).mean()
        for m in (1, 10, 1000)}
    assert nll[1] > nll[10] > nll[1000]


# --------------------------------------------------------------------------
# The model.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind, straight_through", KINDS_AND_ESTIMATORS,
                         ids=IDS)
def test_paper_architecture(kind, straight_through):
    model = structured.build_sbn(kind, straight_through)
    assert model.input_shape == (None, 392)
    assert model.output_shape == (None, 392)
    # 392-200-200-392: the same number of weights for both kinds (20 x 10 =
    # 200 units).
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == (392 * 200 + 200) + (200 * 200 + 200) + (
        200 * 392 + 392)
    expected = {
        ("bernoulli", False): keras_gumbel.GumbelSigmoid,
        ("bernoulli", True): keras_gumbel.STGumbelSigmoid,
        ("categorical", False): keras_gumbel.GumbelSoftmax,
        ("categorical", True): keras_gumbel.STGumbel,
    }[(kind, straight_through)]
    gumbel = keras_gumbel.find_gumbel_layers(model)
    assert [type(g) for g in gumbel] == [expected, expected]
    assert all(g.temperature == 1.0 for g in gumbel)
    if kind == "categorical":
        assert model.get_layer("h1_sample").output.shape == (None, 20, 10)
    x = np.zeros((5, 392), np.float32)
    assert model(x).shape == (5, 392)
    assert model.loss is structured.lower_half_nll


@pytest.mark.parametrize("kwargs, name", [
    ({"kind": "gaussian"}, "kind"),
    ({"kind": "bernoulli", "hidden": (20, 10)}, "hidden"),
    ({"kind": "categorical", "hidden": 200}, "hidden"),
    ({"kind": "categorical", "hidden": (20, 1)}, "hidden"),
    ({"straight_through": "yes"}, "straight_through"),
    ({"seed": -1}, "seed"),
    ({"input_dim": 0}, "input_dim"),
])
def test_build_sbn_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        structured.build_sbn(**kwargs)


def test_lower_half_nll_is_the_summed_cross_entropy():
    rng = np.random.default_rng(0)
    y = (rng.random((6, 392)) < 0.3).astype(np.float32)
    logits = 3 * rng.standard_normal((6, 392)).astype(np.float32)
    ours = keras.ops.convert_to_numpy(structured.lower_half_nll(y, logits))
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -np.sum(y * np.log(p) + (1 - y) * np.log1p(-p), axis=1)
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind, straight_through", KINDS_AND_ESTIMATORS,
                         ids=IDS)
def test_training_lowers_the_loss(kind, straight_through):
    # Synthetic task: the lower half is the upper half, flipped left-right.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_upper = (rng.random((1500, 8)) < 0.5).astype(np.float32)
    x_lower = x_upper[:, ::-1].copy()
    hidden = 16 if kind == "bernoulli" else (8, 4)
    model = structured.build_sbn(
        kind, straight_through, hidden=hidden, input_dim=8, output_dim=8,
        optimizer=keras.optimizers.Adam(1e-2))

    def nll():
        return structured.importance_sampled_nll(
            model, x_upper[:200], x_lower[:200], m=10, batch=50,
            seed=0).mean()

    before = nll()
    history = model.fit(x_upper, x_lower, batch_size=50, epochs=3,
                        verbose=0)
    after = nll()
    # 8 fair bits are 5.5 nats; three epochs learn part of the copy (about
    # 1 to 1.5 nats here). The margin, 0.5 nat, is 3 to 4 times the Monte
    # Carlo standard error of the difference (200 examples x 10 samples,
    # about 1.5 nats of spread per example); the seeds are fixed anyway.
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after < before - 0.5


# --------------------------------------------------------------------------
# The discrete twin.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", structured.KINDS)
def test_twin_shares_weights_and_emits_discrete_units(kind):
    model = _tiny(kind, straight_through=False)
    twin = structured.discrete_twin(model)
    for name in ("h1_logits", "h2_logits", "lower_half_logits"):
        assert twin.get_layer(name) is model.get_layer(name)
    hard = keras_gumbel.find_gumbel_layers(twin)
    expected = (keras_gumbel.STGumbelSigmoid if kind == "bernoulli"
                else keras_gumbel.STGumbel)
    assert [type(g) for g in hard] == [expected, expected]
    x = np.random.default_rng(0).random((500, 3)).astype(np.float32)
    for name in ("h1_sample_discrete", "h2_sample_discrete"):
        units = keras.ops.convert_to_numpy(keras.Model(
            twin.input, twin.get_layer(name).output)(x, training=False))
        assert set(np.unique(units)) <= {0.0, 1.0}
        if kind == "categorical":
            np.testing.assert_array_equal(units.sum(axis=-1), 1.0)
        # Random, not the mode: both values occur.
        assert 0 < units.mean() < 1
    # The model's soft samples are not discrete.
    soft = keras.ops.convert_to_numpy(keras.Model(
        model.input, model.get_layer("h1_sample").output)(x))
    assert np.mean((soft > 0) & (soft < 1)) > 0.9
    # Sharing: a change to the model's weights changes the twin's output.
    before = keras.ops.convert_to_numpy(
        structured.discrete_twin(model, seed=0)(x))
    layer = model.get_layer("lower_half_logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 1.0])
    after = keras.ops.convert_to_numpy(
        structured.discrete_twin(model, seed=0)(x))
    np.testing.assert_allclose(after, before + 1.0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", structured.KINDS)
def test_both_estimators_have_the_same_discrete_forward(kind):
    # Built with the same seed, the Gumbel-Softmax and straight-through
    # models start from the same weights, and their discrete twins draw the
    # same noise: the same forward. The straight-through model's own
    # forward is that discrete forward too.
    gs = structured.build_sbn(kind, False, seed=4)
    st = structured.build_sbn(kind, True, seed=4)
    for a, b in zip(gs.get_weights(), st.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = (np.random.default_rng(0).random((16, 392)) < 0.5).astype(np.float32)
    twin_gs = keras.ops.convert_to_numpy(structured.discrete_twin(gs)(x))
    twin_st = keras.ops.convert_to_numpy(structured.discrete_twin(st)(x))
    own_st = keras.ops.convert_to_numpy(st(x, training=True))
    np.testing.assert_array_equal(twin_gs, twin_st)
    np.testing.assert_array_equal(twin_st, own_st)
    # ...and the soft model's own forward differs from it.
    assert not np.allclose(keras.ops.convert_to_numpy(gs(x)), own_st)


# --------------------------------------------------------------------------
# Samples and images.
# --------------------------------------------------------------------------


def test_sample_lower_halves():
    model = _tiny("categorical", output_dim=392, scale=1.0)
    x_upper = np.random.default_rng(0).random((2, 3)).astype(np.float32)
    probs, pixels = structured.sample_lower_halves(
        model, x_upper, num_samples=5, seed=0)
    assert probs.shape == pixels.shape == (2, 5, 392)
    assert np.all((probs > 0) & (probs < 1))
    assert set(np.unique(pixels)) == {0.0, 1.0}
    # One of 3 hidden states per layer: the 5 samples' probabilities take at
    # most 3 distinct values per example, and the pixels follow them.
    assert len({p.tobytes() for p in probs[0]}) <= 3
    assert abs(pixels.mean() - probs.mean()) < 0.05  # 3920 pixels: 5 sigma


def test_join_halves_inverts_split_halves():
    x = np.random.default_rng(0).random((4, 784)).astype(np.float32)
    upper, lower = datasets.split_halves(x)
    np.testing.assert_array_equal(
        structured.join_halves(upper, lower), x.reshape(4, 28, 28))
    # One given half above several sampled halves.
    stacked = structured.join_halves(upper[:, None], np.zeros((4, 3, 392)))
    assert stacked.shape == (4, 3, 28, 28)
    np.testing.assert_array_equal(stacked[:, 2, :14], x.reshape(4, 28, 28)[
        :, :14])
    with pytest.raises(ValueError, match="392 pixels"):
        structured.join_halves(np.zeros(10), np.zeros(10))


def test_save_and_load(tmp_path):
    model = _tiny("bernoulli", straight_through=True)
    model.optimizer.build(model.trainable_variables)
    path = str(tmp_path / "sbn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # the loss is registered
    assert loaded.loss is structured.lower_half_nll
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.ones((4, 3), np.float32)
    y = np.zeros((4, 4), np.float32)
    np.testing.assert_array_equal(
        structured.importance_sampled_nll(model, x, y, m=50, seed=1),
        structured.importance_sampled_nll(loaded, x, y, m=50, seed=1))
