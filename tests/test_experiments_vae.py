"""Tests of `keras_gumbel.experiments.vae` on tiny models and synthetic data.

The evaluation functions are checked against exact enumeration: with 2
categorical variables of 3 classes (9 codes) or 3 binary units (8 codes),
`log p(x)` and the ELBO are sums over every code.
"""

import itertools
import math

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

import keras_gumbel
from keras_gumbel.experiments import vae

PIXELS = 6


def _tiny(prior, straight_through=False, seed=0, **kwargs):
    if prior == "categorical":
        return vae.build_categorical_vae(
            latents=2, classes=3, hidden=(8,), pixels=PIXELS, seed=seed,
            straight_through=straight_through, **kwargs)
    return vae.build_bernoulli_vae(
        units=3, hidden=(8,), pixels=PIXELS, seed=seed,
        straight_through=straight_through, **kwargs)


def _images(n, seed=0):
    return (np.random.default_rng(seed).random((n, PIXELS)) < 0.4).astype(
        "float32")


def _all_codes(prior, latent_shape):
    """Every discrete code: one-hot rows (categorical) or 0/1 (Bernoulli)."""
    if prior == "categorical":
        latents, classes = latent_shape
        eye = np.eye(classes, dtype="float32")
        return np.array([eye[list(c)] for c in itertools.product(
            range(classes), repeat=latents)])
    return np.array(list(itertools.product([0.0, 1.0], repeat=latent_shape[
        0])), dtype="float32")


def _exact(model, x):
    """Exact `-log p(x)` and `-ELBO` per image, by enumerating the codes."""
    encoder, decoder, prior = vae.vae_parts(model)
    latent_shape = tuple(encoder.output.shape[1:])
    codes = _all_codes(prior, latent_shape)                  # (C, ...)
    logits = encoder(x).numpy().astype(np.float64)           # (n, ...)
    x_logits = decoder(codes).numpy().astype(np.float64)     # (C, P)
    # log p(x | z) for every image and code: (n, C).
    log_px_z = -np.sum(
        np.logaddexp(0, x_logits[None]) - x[:, None] * x_logits[None],
        axis=-1)
    flat_codes = codes.reshape(len(codes), -1)
    if prior == "categorical":
        log_q_all = scipy.special.log_softmax(logits, axis=-1).reshape(
            len(x), -1)
        log_prior = -latent_shape[0] * math.log(latent_shape[1])
    else:
        log_q_all = None
        log_prior = -latent_shape[0] * math.log(2)
    if log_q_all is not None:
        log_q = log_q_all @ flat_codes.T                     # (n, C)
    else:
        log_p1 = -np.logaddexp(0, -logits)
        log_p0 = -np.logaddexp(0, logits)
        log_q = log_p1 @ flat_codes.T + log_p0 @ (1 - flat_codes).T
    q = np.exp(log_q)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-6)
    nll = -scipy.special.logsumexp(log_px_z + log_prior, axis=1)
    kl = np.sum(q * (log_q - log_prior), axis=1)
    neg_elbo = -np.sum(q * log_px_z, axis=1) + kl
    return nll, neg_elbo


# -- builders ---------------------------------------------------------------


@pytest.mark.parametrize("straight_through", [False, True])
def test_categorical_vae_shapes_and_layers(straight_through):
    model = _tiny("categorical", straight_through)
    encoder, decoder, prior = vae.vae_parts(model)
    assert prior == "categorical"
    assert model.output.shape == (None, PIXELS)
    assert encoder.output.shape == (None, 2, 3)
    assert decoder.input.shape == (None, 2, 3)
    latent = model.get_layer("latent")
    expected = (keras_gumbel.STGumbel if straight_through
                else keras_gumbel.GumbelSoftmax)
    assert type(latent) is expected
    assert keras_gumbel.find_gumbel_layers(model) == [latent]
    # Not training: the most likely code, so predict is deterministic.
    x = _images(4)
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_paper_sizes():
    model = vae.build_categorical_vae()
    encoder, decoder, _ = vae.vae_parts(model)
    dense = [layer.units for layer in encoder.layers + decoder.layers
             if isinstance(layer, keras.layers.Dense)]
    assert dense == [512, 256, 200, 256, 512, 784]
    model = vae.build_bernoulli_vae()
    encoder, decoder, prior = vae.vae_parts(model)
    assert prior == "bernoulli"
    assert encoder.output.shape == (None, 200)
    assert type(model.get_layer("latent")) is keras_gumbel.GumbelSigmoid


def test_same_seed_same_initial_weights():
    a, b, c = _tiny("categorical"), _tiny("categorical"), _tiny(
        "categorical", seed=1)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    # The layers' seeds differ: not the same kernel twice.
    assert not np.array_equal(a.get_weights()[0][:, :1],
                              a.get_weights()[2][:8, :1])


@pytest.mark.parametrize("prior", vae.PRIORS)
def test_kl_layer_adds_the_mean_kl(prior):
    logits = tf.constant(np.random.default_rng(0).normal(
        size=(4, 2, 3) if prior == "categorical" else (4, 3)), tf.float32)
    layer = vae.KLToPrior(prior)
    out = layer(logits)
    np.testing.assert_array_equal(out.numpy(), logits.numpy())
    expected = np.mean(vae.kl_to_prior(logits, prior).numpy())
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-6)
    assert expected > 0
    with pytest.raises(ValueError, match="Invalid value received for "
                       "argument `prior`"):
        vae.KLToPrior("gaussian")


@pytest.mark.slow
@pytest.mark.parametrize("prior,straight_through", [
    ("categorical", False), ("categorical", True), ("bernoulli", False)])
def test_fit_lowers_the_negative_elbo(prior, straight_through):
    # Two prototypes with 5 % of the pixels flipped: a code can learn them.
    rng = np.random.default_rng(0)
    protos = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], "float32")
    x = protos[rng.integers(0, 2, 400)]
    x = np.abs(x - (rng.random(x.shape) < 0.05)).astype("float32")
    keras.utils.set_random_seed(0)  # fit's shuffling
    # No XLA: compiling takes longer than these 200 steps.
    model = _tiny(prior, straight_through, learning_rate=1e-2,
                  jit_compile=False)
    before = vae.negative_elbo(model, x)["negative_elbo"]
    annealing = keras_gumbel.TemperatureAnnealing(
        rate=vae.annealing_rate(200), update_every=10)
    history = model.fit(x, x, batch_size=20, epochs=10, verbose=0,
                        callbacks=[annealing])
    logs = history.history
    assert {"loss", "kl", "reconstruction", "temperature"} <= set(logs)
    # The loss is the negative ELBO: reconstruction + KL.
    np.testing.assert_allclose(
        logs["loss"], np.add(logs["reconstruction"], logs["kl"]), rtol=1e-4)
    assert logs["loss"][-1] < logs["loss"][0]
    # 200 steps: annealed to 0.5 after 90 % of them.
    assert model.get_layer("latent").temperature == pytest.approx(0.5)
    after = vae.negative_elbo(model, x)["negative_elbo"]
    # Untrained: about 6 log 2 = 4.2 nats; the data's own entropy is 1.9
    # (log 2 for the prototype, 6 H(0.05) = 1.2 for the flips).
    assert after < before - 1.0, (before, after)


def test_annealing_rate_reaches_the_minimum_near_the_end():
    rate = vae.annealing_rate(10_000)
    schedule = keras_gumbel.TemperatureAnnealing(rate=rate, update_every=1)
    assert schedule.temperature_at(8_000) > 0.5
    assert schedule.temperature_at(9_000) == pytest.approx(0.5)
    assert vae.annealing_rate(1000, fraction=1.0) == pytest.approx(
        math.log(2) / 1000)
    with pytest.raises(ValueError, match="total_steps"):
        vae.annealing_rate(0)


# -- evaluation against exact enumeration ---------------------------------


@pytest.mark.parametrize("prior", vae.PRIORS)
def test_negative_elbo_matches_enumeration(prior):
    model = _tiny(prior)
    x = _images(5)
    _, exact = _exact(model, x)
    # Each image 4000 times: the mean over its draws estimates its ELBO.
    reps = 4000
    x_rep = np.repeat(x, reps, axis=0)
    for i in range(len(x)):
        result = vae.negative_elbo(model, x_rep[i * reps:(i + 1) * reps],
                                   batch_size=1000, seed=i)
        # 4 standard errors: a false failure has probability ~6e-5 per image
        # (and the seeds are fixed, so the test is deterministic).
        assert abs(result["negative_elbo"] - exact[i]) < 4 * result[
            "std_error"], (i, result, exact[i])


@pytest.fixture
def quiet_retracing():
    """`importance_weighted_bound` traces a new `tf.function` per call; TF
    warns after five such calls, which these tests make on purpose."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("prior", vae.PRIORS)
def test_importance_weighted_bound_matches_enumeration(prior,
                                                       quiet_retracing):
    model = _tiny(prior)
    x = _images(7)
    nll, neg_elbo = _exact(model, x)
    assert np.all(nll <= neg_elbo + 1e-9)
    # Large m: the bound converges to -log p(x). Odd sizes check the batching
    # (3 images per batch, chunks of 300 and a remainder of 200).
    tight = vae.importance_weighted_bound(
        model, x, num_samples=2000, batch_size=3, sample_chunk=300, seed=0)
    assert tight["num_images"] == 7 and tight["num_samples"] == 2000
    assert tight["per_image"].shape == (7,)
    assert tight["bound"] == pytest.approx(tight["per_image"].mean())
    # The bound's bias is ~ Var(w) / (2 m p(x)^2), here < 0.01 nats; 0.03
    # allows for the Monte Carlo noise of the mean over 7 images.
    assert abs(tight["bound"] - nll.mean()) < 0.03, (tight, nll.mean())
    # m = 1 is the negative ELBO in expectation (log-ratio instead of the
    # analytic KL): over many copies of the images, within 4 standard errors.
    reps = 2000
    loose = vae.importance_weighted_bound(
        model, np.tile(x, (reps, 1)), num_samples=1, batch_size=1000, seed=1)
    assert abs(loose["bound"] - neg_elbo.mean()) < 4 * loose["std_error"]
    # And the bound tightens with m.
    middle = vae.importance_weighted_bound(
        model, np.tile(x, (50, 1)), num_samples=10, seed=2)
    assert loose["bound"] > middle["bound"] > tight["bound"] - 0.03


# -- figures ---------------------------------------------------------------


@pytest.mark.parametrize("prior", vae.PRIORS)
def test_reconstructions_and_prior_samples(prior):
    model = _tiny(prior)
    x = _images(5)
    for sample in (False, True):
        means = vae.reconstruct(model, x, sample=sample)
        assert means.shape == x.shape
        assert np.all((means > 0) & (means < 1))
    # The most likely code is deterministic.
    np.testing.assert_array_equal(vae.reconstruct(model, x),
                                  vae.reconstruct(model, x))
    samples = vae.prior_samples(model, 8, seed=0)
    assert samples.shape == (8, PIXELS)
    np.testing.assert_array_equal(samples, vae.prior_samples(model, 8, 0))


def test_prior_samples_are_uniform_codes():
    # The decoder of a 1x3 categorical VAE, made the identity on its 3
    # inputs (as pixels' log-odds +-20), shows which class was drawn.
    model = vae.build_categorical_vae(latents=1, classes=3, hidden=(),
                                      pixels=3)
    decoder = vae.vae_parts(model)[1]
    decoder.get_layer("x_logits").set_weights(
        [40 * np.eye(3, dtype="float32"), -20 * np.ones(3, "float32")])
    means = vae.prior_samples(model, 3000, seed=0)
    codes = means > 0.5
    np.testing.assert_array_equal(codes.sum(axis=1), 1)
    # Each class has probability 1/3: 0.04 is 4.6 standard errors
    # (sqrt(2/9 / 3000) = 0.0086).
    np.testing.assert_allclose(codes.mean(axis=0), 1 / 3, atol=0.04)


def test_tile_images():
    images = np.arange(5 * 4, dtype="float32").reshape(5, 4) / 20
    grid = vae.tile_images(images, columns=2, size=2, pad=1, fill=-1)
    assert grid.shape == (3 * 3 - 1, 2 * 3 - 1)
    np.testing.assert_array_equal(grid[0:2, 0:2], images[0].reshape(2, 2))
    np.testing.assert_array_equal(grid[0:2, 3:5], images[1].reshape(2, 2))
    np.testing.assert_array_equal(grid[6:8, 0:2], images[4].reshape(2, 2))
    assert np.all(grid[2, :] == -1) and np.all(grid[6:8, 3:5] == -1)


# -- notebook 0: gradient variance and bias -------------------------------

LOGITS = np.log([0.1, 0.2, 0.05, 0.4, 0.25])
TARGET = [0.6, 0.1, 0.3, 0.0, 0.0]


def test_exact_gradient_closed_form():
    f = vae.squared_error(TARGET)
    p = np.exp(LOGITS)
    values = np.array([np.sum((np.eye(5)[k] - TARGET) ** 2)
                       for k in range(5)])
    expectation, gradient = vae.exact_gradient(LOGITS, f)
    assert expectation == pytest.approx(float(p @ values), rel=1e-6)
    # d/dtheta_i sum_k p_k f_k = p_i (f_i - E[f]).
    np.testing.assert_allclose(gradient, p * (values - p @ values),
                               atol=1e-6)


def test_straight_through_forward_is_a_categorical_sample():
    f = vae.squared_error(TARGET)
    expectation, _ = vae.exact_gradient(LOGITS, f)
    values, gradients = vae.per_sample_gradients(
        LOGITS, f, 0.5, 50_000, straight_through=True, seed=3)
    assert gradients.shape == (50_000, 5)
    stderr = values.std() / math.sqrt(len(values))
    assert abs(values.mean() - expectation) < 4 * stderr
    # The soft sample with the same noise: a different forward value...
    soft, _ = vae.per_sample_gradients(LOGITS, f, 0.5, 50_000, seed=3)
    assert not np.allclose(soft, values)


def test_per_sample_gradients_are_pathwise_derivatives():
    # With the noise fixed (integer seed), the mean of the per-sample
    # gradients is the derivative of the mean of f: a central difference.
    f = vae.squared_error(TARGET)
    _, g = vae.per_sample_gradients(LOGITS, f, 0.7, 2000, seed=5)
    h = 1e-2
    for i in range(5):
        step = np.eye(5)[i] * h
        up, _ = vae.per_sample_gradients(LOGITS + step, f, 0.7, 2000, seed=5)
        down, _ = vae.per_sample_gradients(LOGITS - step, f, 0.7, 2000,
                                           seed=5)
        # The central difference errs by O(h^2) ~ 1e-4 times the third
        # derivative; float32 sums by ~1e-5.
        assert g[:, i].mean() == pytest.approx(
            (up.mean() - down.mean()) / (2 * h), abs=1e-3)


def test_gradient_tradeoff_shows_the_paper_trade_off():
    f = vae.squared_error(TARGET)
    result = vae.gradient_tradeoff(LOGITS, f, [0.1, 1.0, 10.0],
                                   num_samples=20_000)
    norm = np.linalg.norm(result["exact_gradient"])
    for name in ("gumbel_softmax", "straight_through"):
        variance = result[name]["variance"]
        assert variance[0] > variance[1] > variance[2], (name, variance)
        assert result[name]["mean_gradient"].shape == (3, 5)
    soft = result["gumbel_softmax"]
    # Small tau: nearly unbiased (the bias here is ~0.1 of the gradient's
    # norm); large tau: the gradient shrinks, the bias near its full norm.
    assert soft["bias"][0] < 0.25 * norm
    assert soft["bias"][2] > 0.6 * norm
    assert np.all(soft["bias_noise"] > 0)
