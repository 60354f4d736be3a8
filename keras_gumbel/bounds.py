"""Pieces of the evidence lower bound (ELBO) and of importance-weighted bounds.

The notebooks' models (categorical and Bernoulli VAEs, the structured-output
SBNs, the semi-supervised M2) all score a sample the same way: log-likelihoods
of binary pixels, log-probabilities of discrete latents under the encoder and
the prior, and a log-mean-exp over `m` samples for the multi-sample bound

    log p(x) >= E[ log (1/m) sum_i p(x, z_i) / q(z_i | x) ],  z_i ~ q(z | x),

which is the ELBO at `m = 1` and tightens as `m` grows (Burda et al. 2016).
The paper's test figures use `m = 1000`.

Every function works in log-space and returns one value per example (summed
over every axis but the first, like the KL terms in `keras_gumbel.ops`).
"""

import math

import tensorflow as tf

from keras_gumbel import ops as gops

__all__ = [
    "log_mean_exp",
    "bernoulli_log_likelihood",
    "categorical_log_prob",
    "bernoulli_log_prob",
    "uniform_categorical_log_prob",
]


def _per_example(values):
    if values.shape.rank is not None and values.shape.rank <= 1:
        return values
    return tf.reduce_sum(values, axis=tf.range(1, tf.rank(values)))


def log_mean_exp(values, axis=0):
    """`log(mean(exp(values), axis))`, without overflow or underflow.

    The maximum along `axis` is taken out first; rows that are all `-inf`
    give `-inf`, not NaN.

    Args:
        values: float tensor, e.g. log-weights of shape `(m, batch)`.
        axis: the axis of the samples.

    Returns:
        `values` reduced over `axis`.
    """
    x = tf.convert_to_tensor(values)
    m = tf.stop_gradient(tf.reduce_max(x, axis=axis, keepdims=True))
    m = tf.where(tf.math.is_finite(m), m, tf.zeros_like(m))
    n = tf.cast(tf.shape(x)[axis], x.dtype)
    out = tf.math.log(tf.reduce_sum(tf.math.exp(x - m), axis=axis,
                                    keepdims=True)) + m - tf.math.log(n)
    return tf.squeeze(out, axis=axis)


def bernoulli_log_likelihood(targets, logits):
    """`log p(targets | logits)` of independent Bernoulli pixels, per example.

    `targets` in [0, 1] (binary, or intensities for the authors' notebook's
    continuous-pixel variant); `logits` the decoder's log-odds. Computed as
    `-sigmoid_cross_entropy_with_logits`, stable for any logits.

    Returns:
        Shape `(batch,)`: summed over every axis but the first.
    """
    logits = tf.convert_to_tensor(logits)
    targets = tf.cast(targets, logits.dtype)
    return _per_example(-tf.nn.sigmoid_cross_entropy_with_logits(
        labels=targets, logits=logits))


def categorical_log_prob(one_hot, logits, axis=-1):
    """`log q(z)` of one-hot samples `z` under categoricals with `logits`.

    Summed over the latent variables: `(batch, latents, classes)` gives
    `(batch,)`. Classes with `-inf` logits that are not chosen add 0.
    """
    logits = tf.convert_to_tensor(logits)
    one_hot = tf.cast(one_hot, logits.dtype)
    log_q = tf.nn.log_softmax(logits, axis=axis)
    # 0 * log 0 = 0 for masked classes that were not chosen; the `where` sits
    # on the log so that no gradient is 0 * inf.
    safe_log_q = tf.where(one_hot > 0, log_q, tf.zeros_like(log_q))
    return _per_example(tf.reduce_sum(one_hot * safe_log_q, axis=axis))


def bernoulli_log_prob(bits, logits):
    """`log q(b)` of 0/1 samples `b` under Bernoullis with log-odds `logits`.

    Summed over every axis but the first.
    """
    return bernoulli_log_likelihood(bits, logits)


def uniform_categorical_log_prob(num_latents, num_classes, dtype="float32"):
    """`log p(z)` of any one-hot `z` under the uniform prior: `-N log K`."""
    if num_latents < 1 or num_classes < 1:
        raise gops._invalid(
            "num_latents, num_classes", "positive integers",
            (num_latents, num_classes))
    return tf.constant(-num_latents * math.log(num_classes), dtype)
