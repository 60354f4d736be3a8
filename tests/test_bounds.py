"""Tests of `keras_gumbel.bounds` against scipy, TFP and exact enumeration."""


import math

import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

from keras_gumbel import bounds
from keras_gumbel import ops

tfd = tfp.distributions


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_log_mean_exp_matches_scipy(scale):
    x = np.random.default_rng(0).normal(size=(50, 7)) * scale
    expected = scipy.special.logsumexp(x, axis=0) - math.log(50)
    actual = bounds.log_mean_exp(tf.constant(x), axis=0).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
    assert np.all(np.isfinite(actual))


def test_log_mean_exp_other_axis_and_minus_inf():
    x = tf.constant([[0.0, -np.inf], [np.log(3.0), -np.inf]])
    out = bounds.log_mean_exp(x, axis=1).numpy()
    np.testing.assert_allclose(out, [math.log(0.5), math.log(1.5)])
    all_masked = bounds.log_mean_exp(tf.constant([[-np.inf, -np.inf]]),
                                     axis=1).numpy()
    assert all_masked[0] == -np.inf


def test_log_mean_exp_gradient_is_softmax_weights():
    # d/dx_i log mean exp(x) = softmax(x)_i: the importance weights.
    x = tf.Variable([1.0, 2.0, 5.0])
    with tf.GradientTape() as tape:
        y = bounds.log_mean_exp(x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(),
                               tf.nn.softmax(x).numpy(), rtol=1e-6)


def test_bernoulli_log_likelihood_matches_tfp():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 3, 5)).astype("float32") * 5
    x = (rng.random((4, 3, 5)) < 0.5).astype("float32")
    expected = tf.reduce_sum(
        tfd.Bernoulli(logits=logits).log_prob(x), axis=[1, 2])
    actual = bounds.bernoulli_log_likelihood(x, logits)
    assert actual.shape == (4,)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5)
    # Large logits stay finite.
    big = bounds.bernoulli_log_likelihood(x, logits * 1e3)
    assert np.all(np.isfinite(big.numpy()))


@pytest.mark.parametrize("masked", [False, True])
def test_categorical_log_prob_matches_tfp(masked):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 4, 5)).astype("float32")
    if masked:
        logits[:, :, 0] = -np.inf
    z = ops.gumbel_softmax(tf.constant(logits), hard=True, seed=3)
    # TFP's log_prob gives NaN with a -inf logit (0 * -inf); a class that is
    # never drawn can be removed instead, giving the same distribution.
    ref_logits, ref_z = (logits[..., 1:], z[..., 1:]) if masked else (
        logits, z)
    expected = tf.reduce_sum(
        tfd.OneHotCategorical(logits=ref_logits).log_prob(ref_z), axis=1)
    actual = bounds.categorical_log_prob(z, logits)
    assert actual.shape == (6,)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5)
    # Gradients with respect to the logits and the one-hot are finite.
    lv, zv = tf.Variable(logits), tf.Variable(z)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(bounds.categorical_log_prob(zv, lv))
    for g in tape.gradient(total, [lv, zv]):
        assert np.all(np.isfinite(g.numpy()))


def test_uniform_prior():
    np.testing.assert_allclose(
        bounds.uniform_categorical_log_prob(20, 10).numpy(),
        -20 * math.log(10), rtol=1e-6)
    with pytest.raises(ValueError, match="Invalid value received"):
        bounds.uniform_categorical_log_prob(0, 10)


def _toy_model():
    """One latent of 3 classes, 4 binary pixels; exact log p(x) by sums."""
    rng = np.random.default_rng(4)
    prior = np.array([0.2, 0.5, 0.3])
    decoder_logits = rng.normal(size=(3, 4)) * 2
    x = np.array([1.0, 0.0, 1.0, 1.0])
    log_px_given_z = np.array([
        np.sum(x * -np.logaddexp(0, -l) + (1 - x) * -np.logaddexp(0, l))
        for l in decoder_logits])
    exact = scipy.special.logsumexp(np.log(prior) + log_px_given_z)
    return prior, decoder_logits, x, exact


def test_importance_weighted_bound_converges_to_exact_log_likelihood():
    prior, decoder_logits, x, exact = _toy_model()
    q_logits = np.log([0.6, 0.3, 0.1])  # a poor encoder on purpose
    m = 20000
    z = ops.gumbel_softmax(
        tf.constant(np.tile(q_logits, (m, 1)), tf.float64), hard=True,
        seed=5)
    log_q = bounds.categorical_log_prob(z[:, None, :], np.tile(
        q_logits, (m, 1, 1)))
    log_p_z = bounds.categorical_log_prob(z[:, None, :], np.tile(
        np.log(prior), (m, 1, 1)))
    x_logits = tf.matmul(z, tf.constant(decoder_logits))
    log_px_z = bounds.bernoulli_log_likelihood(np.tile(x, (m, 1)), x_logits)
    log_w = log_px_z + log_p_z - log_q
    elbo = float(tf.reduce_mean(log_w))
    iw = float(bounds.log_mean_exp(log_w))
    # Exact enumeration: the ELBO is a bound, and the m-sample estimate of
    # log p(x) with m = 20000 is within 0.02 nats (the weights take only 3
    # values here; their relative standard error at m = 20000 is < 1%).
    assert elbo < exact
    assert iw == pytest.approx(exact, abs=0.02)
    # The same weights enumerated exactly give log p(x) to float precision.
    classes = np.eye(3)
    log_w_exact = [
        float(bounds.bernoulli_log_likelihood(
            x[None], (c @ decoder_logits)[None])[0]) + math.log(prior[i])
        for i, c in enumerate(classes)]
    assert scipy.special.logsumexp(log_w_exact) == pytest.approx(exact)

