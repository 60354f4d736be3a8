"""Score-function estimators against the exact gradient, by enumeration.

The problem: 2 categorical latents of 3 classes (or 3 Bernoulli units),
small enough to sum over every configuration, and a loss `f` that is not
linear in the sample. Each estimator's single-sample gradients are drawn in
one backward pass (the logits tiled, one row per sample), and their mean is
compared with the exact gradient coordinate by coordinate: within 4.5
standard errors (a false alarm about once in 150,000 coordinates).

They run on every Keras backend: the losses `f` are written with
`keras.ops`, the gradients are the backend's own autodiff
(`value_and_grads`), and the backends draw different noise for the same
seed, so the statistical tests hold on each backend's own draws.
"""

import itertools

import keras
import numpy as np
import pytest

from _helpers import as_float64
from _helpers import tensor
from _helpers import value_and_grads
from keras_gumbel import score_function as sf

K = keras.ops

N = 20_000
THETA = np.array([[0.5, -1.0, 0.2], [1.5, 0.0, -0.5]], np.float32)
A = np.array([[1.0, -2.0, 0.5, 1.0, 0.0, 2.0],
              [0.5, 1.5, -1.0, -0.5, 2.0, 0.0]], np.float32)
TARGET = np.array([0.3, -0.4], np.float32)
OFFSET = 10.0  # makes E[f] large, so that a baseline matters


def f_categorical(z):
    """A smooth loss of a (batch, 2, 3) sample: (batch,)."""
    flat = K.reshape(z, (-1, 6))
    r = K.matmul(flat, tensor(A.T)) - tensor(TARGET)
    return K.sum(K.square(r) + 0.5 * r ** 3, -1) + OFFSET


def exact_categorical():
    configs = [np.eye(3, dtype=np.float32)[list(c)]
               for c in itertools.product(range(3), repeat=2)]
    z = tensor(np.stack(configs))

    def expectation(theta):
        log_q = K.sum(z * K.log_softmax(theta, axis=-1), axis=(1, 2))
        return K.sum(K.exp(log_q) * f_categorical(z))

    return as_float64(value_and_grads(expectation, THETA)[1][0])


def per_sample_gradients(estimator, seed=0, reducer=None):
    """(N, 2, 3) single-sample gradients of E[f] with respect to THETA."""

    def total(tiled):
        z = sf.sample_categorical(tiled, seed=seed)
        f = f_categorical(z)
        log_q = sf.categorical_log_prob(z, tiled)
        if estimator == "reinforce":
            loss = sf.surrogate_loss(f, log_q)
        elif estimator == "baseline":
            signal, _ = reducer(f, training=False)
            loss = sf.surrogate_loss(f, log_q, signal)
        elif estimator == "muprop":
            cv = sf.muprop_control_variate(f_categorical, z, tiled)
            loss = sf.surrogate_loss(f, log_q, f - cv.value, cv.analytic)
        elif estimator == "darn":
            signal = sf.darn_learning_signal(f_categorical, z, "categorical")
            loss = sf.surrogate_loss(f, log_q, signal)
        return loss

    tiled = np.ascontiguousarray(np.broadcast_to(THETA, (N, 2, 3)))
    return as_float64(value_and_grads(total, tiled)[1][0])


@pytest.fixture(scope="module")
def warmed_baseline():
    """A moving-average baseline after 50 batches of the loss."""
    reducer = sf.VarianceReduction(decay=0.8, normalize=False)
    for step in range(50):
        tiled = tensor(np.ascontiguousarray(np.broadcast_to(THETA,
                                                            (100, 2, 3))))
        f = f_categorical(sf.sample_categorical(tiled, seed=1000 + step))
        reducer(f, training=True)
    return reducer


def z_scores(grads, exact):
    mean = grads.mean(0)
    error = grads.std(0, ddof=1) / np.sqrt(len(grads))
    return np.abs(mean - exact) / error


@pytest.mark.parametrize("estimator", ["reinforce", "baseline", "muprop"])
def test_unbiased_estimators_match_the_exact_gradient(estimator,
                                                      warmed_baseline):
    grads = per_sample_gradients(estimator, reducer=warmed_baseline)
    assert np.all(z_scores(grads, exact_categorical()) < 4.5)


def linearization_gradient(f, theta, point, mean_of):
    """<f'(point), grad E_q[z]>: DARN's mean in closed form (the slope taken
    by the backend's autodiff here, the mean's gradient through
    `mean_of`)."""
    _, (slope,) = value_and_grads(f, point)
    _, (grad,) = value_and_grads(lambda t: slope * mean_of(t), theta)
    return as_float64(grad)


def test_darn_mean_is_the_gradient_of_the_linearization():
    # E[<f'(1/K), z - 1/K> grad log q] = <f'(1/K), grad softmax(theta)>:
    # a statistical test (4.5 standard errors per coordinate) against the
    # closed form, which is not the exact gradient on this loss.
    grads = per_sample_gradients("darn")
    reference = linearization_gradient(
        f_categorical, THETA[None], np.full((1, 2, 3), 1 / 3, np.float32),
        K.softmax)[0]
    assert np.all(z_scores(grads, reference) < 4.5)
    assert z_scores(grads, exact_categorical()).max() > 10


def test_variance_reductions_reduce_the_variance(warmed_baseline):
    def total_variance(estimator):
        grads = per_sample_gradients(estimator, seed=7,
                                     reducer=warmed_baseline)
        return grads.var(0, ddof=1).sum()

    plain = total_variance("reinforce")
    baseline = total_variance("baseline")
    muprop = total_variance("muprop")
    # Measured (seed 7, each backend's own noise; TensorFlow, JAX,
    # PyTorch): 507/489/487, 102/95/94 and 197/179/181. The moving-average
    # baseline removes most of the variance that E[f] = 10.6 brings;
    # MuProp's Taylor term removes less on this problem, whose loss is far
    # from linear between the one-hot corners, but still more than half.
    assert baseline < 0.3 * plain
    assert muprop < 0.5 * plain


def test_input_dependent_baseline_removes_what_the_moving_average_cannot():
    # Two kinds of input: f is larger by 20 for x = 1. A moving average sees
    # a mixture; NVIL's input-dependent baseline b(x), here a table of two
    # values trained by the layer's regression loss, learns the difference.
    def signal(batch, seed):
        rng = np.random.default_rng(seed)
        x = tensor(rng.integers(0, 2, batch), "int32")
        tiled = tensor(np.ascontiguousarray(np.broadcast_to(THETA,
                                                            (batch, 2, 3))))
        z = sf.sample_categorical(tiled, seed=seed)
        return x, f_categorical(z) + 20.0 * K.cast(x, "float32")

    table = keras.Variable([0.0, 0.0])
    reducer = sf.VarianceReduction(decay=0.8, normalize=False)
    optimizer = keras.optimizers.SGD(0.1)
    for step in range(300):
        x, f = signal(100, step)

        def regression(values):
            # The table's values as an argument: the gradient of the
            # regression loss the layer adds, w.r.t. them.
            reducer(f, input_baseline=K.take(values, x), training=True)
            return K.sum(K.stack(reducer.losses))

        _, (grad,) = value_and_grads(regression, table.value)
        optimizer.apply([grad], [table])

    x, f = signal(N, 10_000)
    moving_only, _ = reducer(f, training=False)
    with_input, _ = reducer(f, input_baseline=K.take(table.value, x),
                            training=False)
    # The score-function gradient is signal * grad log q, with the same
    # grad log q for both: compare the signals' second moments. Measured
    # (fixed seeds; TensorFlow, JAX, PyTorch): 228/238/249 with the moving
    # average alone, 56 with b(x) on each; what is left is the spread of f
    # within one kind of input.
    assert np.mean(as_float64(with_input) ** 2) < 0.3 * np.mean(
        as_float64(moving_only) ** 2)
    learned = as_float64(table.value)
    np.testing.assert_allclose(learned[1] - learned[0], 20.0, atol=1.0)


# Bernoulli units: 3 units, f of the 0/1 vector.
PHI = np.array([0.3, -1.2, 2.0], np.float32)
W = np.array([1.0, -2.0, 1.5], np.float32)


def f_bernoulli(z):
    s = K.matmul(K.reshape(z, (-1, 3)), tensor(W))
    return K.square(s - 0.7) + K.sin(3.0 * s)


def test_bernoulli_muprop_unbiased_and_darn_mean_as_derived():
    configs = tensor(np.array(list(itertools.product([0.0, 1.0], repeat=3)),
                              np.float32))

    def expectation(units):
        log_q = sf.bernoulli_log_prob(
            configs, K.broadcast_to(units, (8, 3)))
        return K.sum(K.exp(log_q) * f_bernoulli(configs))

    exact = as_float64(value_and_grads(expectation, PHI)[1][0])

    def grads(which):
        def total(tiled):
            z = sf.sample_bernoulli(tiled, seed=3)
            f = f_bernoulli(z)
            log_q = sf.bernoulli_log_prob(z, tiled)
            if which == "muprop":
                cv = sf.muprop_control_variate(f_bernoulli, z, tiled,
                                               "bernoulli")
                return sf.surrogate_loss(f, log_q, f - cv.value,
                                         cv.analytic)
            return sf.surrogate_loss(
                f, log_q, sf.darn_learning_signal(f_bernoulli, z))

        tiled = np.ascontiguousarray(np.broadcast_to(PHI, (N, 3)))
        return as_float64(value_and_grads(total, tiled)[1][0])

    assert np.all(z_scores(grads("muprop"), exact) < 4.5)
    darn = grads("darn")
    reference = linearization_gradient(
        f_bernoulli, PHI[None], np.full((1, 3), 0.5, np.float32),
        K.sigmoid)[0]
    assert np.all(z_scores(darn, reference) < 4.5)
    # This loss (a sine of the units' sum) is far from linear: biased.
    assert z_scores(darn, exact).max() > 10


# DARN against the exact gradient, both by enumeration over the 256
# configurations of 8 Bernoulli units: close for a loss that is nearly
# linear in the units, far for a strongly non-linear one.
PHI8 = np.array([0.4, -1.0, 1.3, 0.0, -0.3, 2.0, -1.7, 0.8], np.float32)
W8 = np.array([1.0, -0.5, 0.8, -1.2, 0.3, 0.6, -0.9, 1.5], np.float32)
CONFIGS8 = np.array(list(itertools.product([0.0, 1.0], repeat=8)),
                    np.float32)


def nearly_linear(z):
    s = K.matmul(K.reshape(z, (-1, 8)), tensor(W8))
    return s + 0.02 * K.square(s)


def strongly_nonlinear(z):
    s = K.matmul(K.reshape(z, (-1, 8)), tensor(W8))
    return K.square(s - 0.5) + 2.0 * K.cos(3.0 * s)


def enumerated_gradients(f):
    """(exact gradient, DARN's mean), each summed over all 256 samples
    weighted by their probabilities."""
    units = np.ascontiguousarray(np.broadcast_to(PHI8, CONFIGS8.shape))
    z = tensor(CONFIGS8)

    def expectation(units):
        return K.exp(sf.bernoulli_log_prob(z, units)) * f(z)

    def darn(units):
        log_q = sf.bernoulli_log_prob(z, units)
        weight = K.stop_gradient(K.exp(log_q))
        return weight * sf.surrogate_loss(
            K.zeros(len(CONFIGS8)), log_q, sf.darn_learning_signal(f, z))

    exact = as_float64(value_and_grads(expectation, units)[1][0]).sum(0)
    mean = as_float64(value_and_grads(darn, units)[1][0]).sum(0)
    return exact, mean


def cosine_and_relative_error(estimate, exact):
    cosine = estimate @ exact / np.linalg.norm(estimate) / np.linalg.norm(
        exact)
    return cosine, np.linalg.norm(estimate - exact) / np.linalg.norm(exact)


def test_darn_is_close_for_a_nearly_linear_loss():
    cosine, error = cosine_and_relative_error(
        *reversed(enumerated_gradients(nearly_linear)))
    # Measured: cosine 0.99999, relative error 0.041 (DARN's mean is the
    # linearization's gradient; the quadratic term is what it misses).
    assert cosine > 0.999
    assert error < 0.08


def test_darn_is_biased_for_a_strongly_nonlinear_loss():
    cosine, error = cosine_and_relative_error(
        *reversed(enumerated_gradients(strongly_nonlinear)))
    # Measured: cosine -0.996, relative error 2.21: the slope at 1/2 of
    # cos(3 s) points the other way from the flip differences, and DARN's
    # mean is the opposite of the gradient.
    assert cosine < 0
    assert error > 1.0


def test_surrogate_value_is_the_loss_and_masked_classes_stay_finite():
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]],
                      np.float32)
    weights = tensor(np.array([1.0, 2.0, 3.0], np.float32))

    def sample_and_loss(logits):
        z = sf.sample_categorical(logits, seed=0)
        return z, K.sum(z * weights, -1)

    def surrogate(logits):
        z, f = sample_and_loss(logits)
        return sf.surrogate_loss(f, sf.categorical_log_prob(z, logits))

    loss, (grad,) = value_and_grads(surrogate, logits)
    # The same int seed, the same sample: z and f again, outside autodiff.
    z, f = sample_and_loss(tensor(logits))
    np.testing.assert_allclose(as_float64(loss), as_float64(f))
    grad, z = as_float64(grad), as_float64(z)
    assert np.all(np.isfinite(grad))
    assert grad[0, 1] == 0.0 and grad[1, 2] == 0.0
    assert z[0, 1] == 0.0 and z[1, 2] == 0.0


def test_variance_reduction_statistics_and_scale():
    reducer = sf.VarianceReduction(decay=0.5)
    batches = [np.array([1.0, 3.0, 5.0], np.float32),
               np.array([10.0, 30.0, 20.0], np.float32)]
    mean, variance = 0.0, 1.0
    for batch in batches:
        signal, scale = reducer(tensor(batch), training=True)
        # Centred and scaled with the statistics from before the batch.
        expected_scale = max(1.0, np.sqrt(variance))
        np.testing.assert_allclose(as_float64(scale), expected_scale,
                                   rtol=1e-6)
        np.testing.assert_allclose(as_float64(signal),
                                   (batch - mean) / expected_scale,
                                   rtol=1e-5)
        mean = 0.5 * mean + 0.5 * batch.mean()
        variance = 0.5 * variance + 0.5 * batch.var()
    np.testing.assert_allclose(as_float64(reducer.signal_mean.value), mean,
                               rtol=1e-6)
    np.testing.assert_allclose(as_float64(reducer.signal_variance.value),
                               variance, rtol=1e-6)
    # Not in training: nothing changes.
    reducer(tensor(np.array([100.0, 200.0], np.float32)), training=False)
    np.testing.assert_allclose(as_float64(reducer.signal_mean.value), mean,
                               rtol=1e-6)


def test_input_baseline_is_trained_by_regression_only():
    reducer = sf.VarianceReduction(decay=0.0, normalize=False)
    signal = tensor(np.array([4.0, 6.0], np.float32))

    def regression_and_reduced(b):
        # The regression loss, then the reduced signal behind a
        # stop-gradient (already without gradient): the sum's gradient is
        # the regression's.
        reduced, _ = reducer(signal, input_baseline=b, training=True)
        regression = K.sum(K.stack(reducer.losses))
        return K.concatenate([K.reshape(regression, (1,)),
                              K.stop_gradient(reduced)])

    value, (grad,) = value_and_grads(regression_and_reduced,
                                     np.array([1.0, 1.0], np.float32))
    regression, reduced = as_float64(value)[0], as_float64(value)[1:]
    # c was 0 before the batch: (l - b)^2 averaged = (9 + 25) / 2.
    np.testing.assert_allclose(regression, 17.0)
    np.testing.assert_allclose(reduced, [3.0, 5.0])
    np.testing.assert_allclose(as_float64(grad), [-3.0, -5.0])


def test_variance_reduction_config_and_saved_statistics(tmp_path):
    reducer = sf.VarianceReduction(decay=0.9, center=False)
    reducer(tensor(np.array([1.0, 5.0], np.float32)), training=True)
    clone = sf.VarianceReduction.from_config(reducer.get_config())
    assert (clone.decay, clone.center, clone.normalize) == (0.9, False, True)
    path = str(tmp_path / "r.weights.h5")
    inputs = keras.Input((1,))
    model = keras.Model(inputs, inputs)
    model.reducer = reducer
    model.save_weights(path)
    other = keras.Model(inputs, inputs)
    other.reducer = clone
    other.load_weights(path)
    np.testing.assert_allclose(as_float64(clone.signal_variance.value),
                               as_float64(reducer.signal_variance.value))
