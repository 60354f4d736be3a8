"""Tests of `keras_gumbel.experiments.semisupervised` (the M2 model).

The losses are checked against exact enumeration over the classes and
against TFP's distributions; the training step on tiny synthetic problems.
The networks are made tiny (4 filters, k = 3, a 2-d `z`) so that the module
runs in a few seconds.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_gumbel
from keras_gumbel import ops as gops
from keras_gumbel.experiments import semisupervised as ss

tfd = tfp.distributions

K, D = 3, 2
TINY = dict(classifier_filters=(4, 4, 4), encoder_filters=(4, 4, 4),
            decoder_filters=(4, 4, 4))


def _nets(seed=0):
    keras.utils.set_random_seed(seed)
    return (ss.build_classifier(K, (4, 4, 4)),
            ss.build_encoder(K, D, (4, 4, 4)),
            ss.build_decoder(K, D, (4, 4, 4)))


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant((rng.random((n, 784)) < 0.3).astype("float32"))


def test_network_shapes():
    classifier, encoder, decoder = _nets()
    x = _images(5)
    y = tf.one_hot([0, 1, 2, 0, 1], K)
    assert classifier(x).shape == (5, K)
    mean, log_var = encoder([x, y])
    assert mean.shape == (5, D) and log_var.shape == (5, D)
    assert decoder([mean, y]).shape == (5, 784)


def test_encoder_depends_on_the_class():
    # y enters the first layer: two classes give two posteriors.
    _, encoder, _ = _nets()
    x = _images(2)
    m0, _ = encoder([x, tf.one_hot([0, 0], K)])
    m1, _ = encoder([x, tf.one_hot([1, 1], K)])
    assert np.max(np.abs(m0.numpy() - m1.numpy())) > 1e-4


def test_gaussian_kl_matches_tfp():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 3)).astype("float32")
    log_var = rng.normal(size=(4, 3)).astype("float32")
    expected = tfd.MultivariateNormalDiag(
        mean, tf.exp(0.5 * log_var)).kl_divergence(
        tfd.MultivariateNormalDiag(tf.zeros(3), tf.ones(3)))
    np.testing.assert_allclose(ss.gaussian_kl(mean, log_var).numpy(),
                               expected.numpy(), rtol=1e-5)


def test_conditional_nelbo_matches_tfp():
    _, encoder, decoder = _nets()
    x = _images(4)
    y = tf.one_hot([0, 1, 2, 1], K)
    noise = tf.random.stateless_normal((4, D), seed=[1, 2])
    mean, log_var = encoder([x, y])
    z = mean + tf.exp(0.5 * log_var) * noise
    q_z = tfd.MultivariateNormalDiag(mean, tf.exp(0.5 * log_var))
    p_z = tfd.MultivariateNormalDiag(tf.zeros(D), tf.ones(D))
    log_lik = tf.reduce_sum(
        tfd.Bernoulli(logits=decoder([z, y])).log_prob(x), -1)
    expected = -log_lik + q_z.kl_divergence(p_z)
    actual = ss.conditional_nelbo(encoder, decoder, x, y, noise)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5)
    labelled = ss.labelled_term(encoder, decoder, x, y, noise)
    np.testing.assert_allclose(labelled.numpy(),
                               expected.numpy() + math.log(K), rtol=1e-5)


def test_marginal_term_equals_the_explicit_sum_over_classes():
    classifier, encoder, decoder = _nets()
    x = _images(4)
    logits = classifier(x) * 3.0  # sharpen q(y|x) a little
    noise = tf.random.stateless_normal((K, 4, D), seed=[3, 4])
    actual = ss.marginal_unlabelled_term(encoder, decoder, x, logits, noise)
    q = tf.nn.softmax(logits).numpy()
    expected = np.zeros(4)
    for i in range(4):
        for c in range(K):
            y = tf.one_hot([c], K)
            loss = ss.labelled_term(encoder, decoder, x[i:i + 1], y,
                                    noise[c, i:i + 1]).numpy()[0]
            # sum_y q(y|x) L(x, y) - H(q(y|x)): L includes -log p(y) = log K.
            expected[i] += q[i, c] * (loss + math.log(q[i, c]))
    assert actual.shape == (4,)
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5)


def test_one_hot_sample_term_is_the_conditional_bound():
    # The Gumbel estimator's forward with a one-hot y is L'(x, y) + KL(q||U);
    # weighting by q(y|x) over every class gives back the marginal term.
    classifier, encoder, decoder = _nets()
    x = _images(4)
    logits = classifier(x)
    noise = tf.random.stateless_normal((K, 4, D), seed=[5, 6])
    kl = gops.kl_categorical_uniform(logits).numpy()
    q = tf.nn.softmax(logits).numpy()
    weighted = np.zeros(4)
    for c in range(K):
        y = tf.one_hot([c] * 4, K)
        term = ss.sampled_unlabelled_term(encoder, decoder, x, logits, y,
                                          noise[c]).numpy()
        cond = ss.labelled_term(encoder, decoder, x, y, noise[c]).numpy()
        np.testing.assert_allclose(term, cond - math.log(K) + kl, rtol=1e-5)
        weighted += q[:, c] * term
    marginal = ss.marginal_unlabelled_term(encoder, decoder, x, logits, noise)
    np.testing.assert_allclose(weighted, marginal.numpy(), rtol=1e-5)


def test_hard_sample_term_is_unbiased_and_soft_tends_to_it():
    # With z at its mean (noise 0) each class has a fixed bound L'_c; one
    # exact categorical sample (hard Gumbel) estimates sum_c q_c L'_c.
    classifier, encoder, decoder = _nets()
    n = 4000
    x = tf.tile(_images(1), [n, 1])
    logits = tf.tile(classifier(x[:1]), [n, 1])
    noise = tf.zeros((n, D))
    exact = ss.marginal_unlabelled_term(
        encoder, decoder, x[:1], logits[:1], tf.zeros((K, 1, D))).numpy()[0]
    per_class = np.array([
        ss.sampled_unlabelled_term(encoder, decoder, x[:1], logits[:1],
                                   tf.one_hot([c], K), noise[:1]).numpy()[0]
        for c in range(K)])
    q = tf.nn.softmax(logits[0]).numpy()
    std = math.sqrt(np.sum(q * (per_class - exact) ** 2))
    hard = gops.gumbel_softmax(logits, 0.5, hard=True, seed=7)
    estimate = ss.sampled_unlabelled_term(encoder, decoder, x, logits, hard,
                                          noise).numpy()
    # 4 standard errors: fails by chance about once in 16,000 runs (the seed
    # is fixed, so it either passes or the estimator is biased).
    assert abs(estimate.mean() - exact) < 4 * std / math.sqrt(n) + 1e-3
    # Same noise, tau -> 0: the relaxed sample and its bound tend to the
    # hard ones. Only rows whose two largest perturbed logits are within a
    # few tau of each other stay soft: at tau = 1e-3 about 0.4 % of them.
    soft = gops.gumbel_softmax(logits, 1e-3, hard=False, seed=7)
    differs = np.max(np.abs(soft.numpy() - hard.numpy()), axis=-1) > 1e-3
    assert differs.mean() < 0.01
    soft_term = ss.sampled_unlabelled_term(encoder, decoder, x, logits, soft,
                                           noise).numpy()
    np.testing.assert_allclose(soft_term[~differs], estimate[~differs],
                               rtol=1e-4)
    np.testing.assert_allclose(soft_term.mean(), estimate.mean(), rtol=1e-3)


def test_gumbel_and_st_models_give_the_same_forward_on_the_same_noise():
    # Same weights, same seeds: the ST model's unlabelled bound is the
    # Gumbel model's evaluated at the hard sample; at tau -> 0 they agree.
    x_u, x_l = _images(6, 1), _images(3, 2)
    y_l = tf.constant([0, 1, 2])
    parts = {}
    for estimator in ("gumbel", "st"):
        model = ss.build_m2(K, D, estimator=estimator, seed=0,
                            temperature=1e-3, **TINY)
        parts[estimator], _ = model.compute_terms(x_u, x_l, y_l)
    for key in ("loss", "unlabelled_nelbo", "labelled_nelbo",
                "cross_entropy"):
        np.testing.assert_allclose(parts["gumbel"][key].numpy(),
                                   parts["st"][key].numpy(), rtol=1e-4)


def test_semi_supervised_dataset():
    rng = np.random.default_rng(0)
    x_u = rng.random((50, 784)).astype("float32")
    x_l = rng.random((6, 784)).astype("float32")
    y_l = np.array([0, 1, 2, 0, 1, 2])
    ds = ss.semi_supervised_dataset(x_u, x_l, y_l, batch_size=20,
                                    labelled_batch_size=4, seed=0)
    batches = list(ds)
    assert len(batches) == 50 // 20  # full unlabelled batches only
    for b in batches:
        assert b["x_unlabelled"].shape == (20, 784)
        assert b["x_labelled"].shape == (4, 784)
        assert b["y_labelled"].shape == (4,)
        for key in ("x_unlabelled", "x_labelled"):
            values = np.unique(b[key].numpy())
            assert set(values) <= {0.0, 1.0}
    # Each labelled image keeps its label: match binarized images back to
    # the intensities they came from (a pixel can be 1 only if p > 0).
    first = batches[0]
    for img, label in zip(first["x_labelled"].numpy(),
                          first["y_labelled"].numpy()):
        match = [i for i in range(6)
                 if np.all((img == 1) <= (x_l[i] > 0))
                 and np.corrcoef(img, x_l[i])[0, 1] > 0.5]
        assert match and all(y_l[i] == label for i in match)
    # A new pass draws new pixels.
    second = next(iter(ds))
    assert not np.array_equal(second["x_unlabelled"].numpy(),
                              first["x_unlabelled"].numpy())
    with pytest.raises(ValueError, match="labelled_batch_size"):
        ss.semi_supervised_dataset(x_u, x_l, y_l, labelled_batch_size=7)


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
@pytest.mark.parametrize("estimator", ss.ESTIMATORS)
def test_fit_lowers_the_loss(estimator):
    # A few hundred synthetic images of three prototypes; 6 labels.
    rng = np.random.default_rng(0)
    protos = rng.random((K, 784)) < 0.3
    labels = rng.integers(0, K, 300)
    x = np.where(protos[labels], 0.9, 0.05).astype("float32")
    idx = np.concatenate([np.flatnonzero(labels == c)[:2] for c in range(K)])
    ds = ss.semi_supervised_dataset(x, x[idx], labels[idx], batch_size=30,
                                    seed=0)
    model = ss.build_m2(K, D, estimator=estimator, seed=0,
                        learning_rate=1e-2, jit_compile=False, **TINY)
    history = model.fit(ds.repeat(), steps_per_epoch=5, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    # From about 1080 nats (two images of 784 pixels at p = 0.5, plus the
    # cross-entropy) to about 985 in 20 steps (0.91); without training it
    # would stay within a few nats of 1080 (the pixels are redrawn).
    assert losses[-1] < 0.95 * losses[0], losses
    acc = ss.accuracy(model, x, labels)
    assert 0.0 <= acc <= 1.0
    logs = model.evaluate(x, labels, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["accuracy"], acc, atol=1e-6)


def test_accuracy_counts_the_argmax():
    classifier, _, _ = _nets()
    x = _images(20)
    predicted = np.argmax(classifier(x).numpy(), -1)
    assert ss.accuracy(classifier, x, predicted) == 1.0
    assert ss.accuracy(classifier, x, (predicted + 1) % K) == 0.0
    half = predicted.copy()
    half[:10] = (half[:10] + 1) % K
    assert ss.accuracy(classifier, x, half) == 0.5


def test_annealing_drives_the_sampler():
    model = ss.build_m2(K, D, estimator="gumbel", seed=0, **TINY)
    assert keras_gumbel.find_gumbel_layers(model) == [model.sampler]
    marginal = ss.build_m2(K, D, estimator="marginal", seed=0, **TINY)
    assert keras_gumbel.find_gumbel_layers(marginal) == []
    assert isinstance(
        ss.build_m2(K, D, estimator="st", seed=0, **TINY).sampler,
        keras_gumbel.STGumbel)


def test_class_weight_scaling():
    model = ss.build_m2(K, D, alpha=0.1, n_total=50000, n_labelled=100,
                        seed=0, **TINY)
    assert model.class_weight == pytest.approx(50.0)
    plain = ss.build_m2(K, D, alpha=0.3, seed=0, **TINY)
    assert plain.class_weight == pytest.approx(0.3)
    with pytest.raises(ValueError, match="n_labelled"):
        ss.build_m2(K, D, n_total=50000, **TINY)


def test_evaluate_nelbo_is_the_marginal_bound():
    model = ss.build_m2(K, D, estimator="marginal", seed=0, **TINY)
    x = _images(8).numpy()
    value = ss.evaluate_nelbo(model, x, batch_size=8, seed=3)
    # The same noise, drawn the same way, in one batch.
    generator = keras.random.SeedGenerator(3)
    noise = keras.random.normal((K, 8, D), seed=generator)
    logits = model.classifier(x)
    direct = ss.marginal_unlabelled_term(model.encoder, model.decoder, x,
                                         logits, noise).numpy().mean()
    np.testing.assert_allclose(value, direct, rtol=1e-5)
    # Batching changes only the noise: a second estimate is close.
    other = ss.evaluate_nelbo(model, x, batch_size=3, seed=3)
    assert abs(other - value) < 0.05 * abs(value)


def test_save_and_load_round_trip(tmp_path):
    model = ss.build_m2(K, D, estimator="st", seed=0, temperature=0.7,
                        **TINY)
    path = str(tmp_path / "m2.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.estimator == "st" and loaded.num_classes == K
    assert loaded.sampler.temperature == pytest.approx(0.7)
    x = _images(3)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("estimator", ["gumbel", "marginal"])
def test_time_training_steps(estimator):
    rate = ss.time_training_steps(K, estimator, batch_size=4, steps=2,
                                  warmup=1, rounds=2, jit_compile=False,
                                  latent_dim=D, **TINY)
    assert isinstance(rate, float) and rate > 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="estimator"):
        ss.build_m2(K, estimator="reinforce")
    with pytest.raises(ValueError, match="num_classes"):
        ss.build_m2(0)
    with pytest.raises(ValueError, match="batch_size"):
        ss.time_training_steps(K, batch_size=0)
    with pytest.raises(ValueError, match="rounds"):
        ss.time_training_steps(K, rounds=0)
