"""Score-function estimators: REINFORCE, NVIL's variance reductions, DARN, MuProp.

The Gumbel layers give a gradient through the sample itself. A
score-function (likelihood-ratio) estimator needs no such path: it weights
the gradient of `log q(z)` by the value of the loss at the sample,

    grad E_q[f(z)] = E_q[(f(z) - h(z)) grad log q(z)] + grad E_q[h(z)],

`h` a control variate (a baseline, or a Taylor expansion of `f`). Because it
needs the loss's value, it is not a layer between logits and sample: these
are the pieces of a `train_step` (see the README's example).

- `sample_categorical`, `sample_bernoulli`: an exact one-hot or 0/1 sample,
  with no gradient (the score function carries it).
- `categorical_log_prob`, `bernoulli_log_prob`: `log q(z)` per example.
- `taylor_control_variate(f, sample, point, mean=None)`: the first-order
  Taylor expansion of `f` around `point` evaluated at the sample, and, given
  the distribution's `mean`, the analytic term that keeps the estimator
  unbiased. `muprop_control_variate` expands around the mean (Gu et al.
  2016).
- `darn_learning_signal(f, sample, kind="bernoulli")`: DARN's learning
  signal (Gregor et al. 2014), the first-order Taylor term of `f` around
  the centre `1/2` (`1/K`) in place of `f` itself: biased, low variance.
- `VarianceReduction`: NVIL's variance reductions (Mnih & Gregor 2014) as a
  layer holding their state: a moving-average baseline, an optional
  input-dependent baseline trained by regression, and division by the
  moving standard deviation of the learning signal.
- `surrogate_loss(f, log_q, signal, analytic=0)`: the per-example loss whose
  value is `f` and whose gradient is the estimator.

References:
    - Williams. Simple statistical gradient-following algorithms for
      connectionist reinforcement learning. Machine Learning, 1992.
    - Mnih, Gregor. Neural Variational Inference and Learning in Belief
      Networks. ICML 2014.
    - Gregor, Danihelka, Mnih, Blundell, Wierstra. Deep AutoRegressive
      Networks. ICML 2014.
    - Gu, Levine, Sutskever, Mnih. MuProp: Unbiased Backpropagation for
      Stochastic Neural Networks. ICLR 2016.
"""

import collections
import numbers

import keras
import numpy as np

from keras_gumbel import _backend
from keras_gumbel import _checks
from keras_gumbel import ops

K = keras.ops
_stop = K.stop_gradient

__all__ = [
    "sample_categorical",
    "sample_bernoulli",
    "categorical_log_prob",
    "bernoulli_log_prob",
    "ControlVariate",
    "taylor_control_variate",
    "muprop_control_variate",
    "darn_learning_signal",
    "surrogate_loss",
    "VarianceReduction",
]

ControlVariate = collections.namedtuple("ControlVariate", ["value", "analytic"])
ControlVariate.__doc__ = """A control variate `h` of a score-function estimator.

Attributes:
    value: `h(z)` at the sample, per example `(batch,)`, without gradient.
    analytic: a per-example term whose value is 0 and whose gradient is
        `grad E_q[h]` (zeros where no `mean` is given).
"""


def sample_categorical(logits, axis=-1, seed=None):
    """One-hot samples of `Categorical(softmax(logits))`, with no gradient.

    The Gumbel-max trick with the noise and seeds of `ops.gumbel_softmax`;
    `-inf` logits are never drawn.

    Args:
        logits: float logits, the classes along `axis`.
        axis: the class axis.
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        A tensor of the shape and dtype of `logits`, one 1 per row.
    """
    return _stop(ops.gumbel_softmax(logits, hard=True, axis=axis, seed=seed))


def sample_bernoulli(logits, seed=None):
    """0/1 samples of `Bernoulli(sigmoid(logits))`, with no gradient."""
    return _stop(ops.gumbel_sigmoid(logits, hard=True, seed=seed))


def categorical_log_prob(sample, logits, axis=-1):
    """`log q(z)` of one-hot samples, summed per example: `(batch,)`.

    `sum(z * log_softmax(logits))` along `axis`, then over every axis but the
    first. A masked class (`-inf` logit) that is not sampled adds 0.
    """
    x = _checks.logits_tensor(logits, "score_function.categorical_log_prob")
    axis = _checks.axis(axis, _backend.rank(x))
    z = K.cast(K.convert_to_tensor(sample), x.dtype)
    log_p = _backend.log_softmax(x, axis=axis)
    # 0 * -inf = 0 for a masked class that was not drawn.
    return _backend.sum_except_first(
        K.sum(_backend.multiply_no_nan(log_p, z), axis=axis))


def bernoulli_log_prob(sample, logits):
    """`log q(z)` of 0/1 samples under log-odds `logits`: `(batch,)`."""
    x = _checks.logits_tensor(logits, "score_function.bernoulli_log_prob")
    z = K.cast(K.convert_to_tensor(sample), x.dtype)
    # log q(z) = z x - softplus(x): the Bernoulli log-likelihood in log
    # space, finite for large finite logits of either sign.
    return _backend.sum_except_first(z * x - K.softplus(x))


def _check_callable(f, name="f"):
    if not callable(f):
        raise _checks.invalid(
            name, "a function of the sample returning the loss per example",
            f)
    return f


def _value_and_slope(f, point):
    """`f(point)` and its gradient at `point`, both without gradient.

    Each example's `f` depends on its own row only, so the gradient of the
    sum over the batch is the per-example gradient.
    """
    return _backend.value_and_grad_of_sum(f, point)


def taylor_control_variate(f, sample, point, mean=None):
    """The first-order Taylor expansion of `f` around `point`, at `sample`.

    `h(z) = f(point) + <grad f(point), z - point>`, summed over every axis
    but the first. Its value carries no gradient. Given `mean` (`E_q[z]` as
    a differentiable function of the distribution's parameters), `analytic`
    is `<grad f(point), mean>` minus its own value: 0, with gradient
    `grad E_q[h]`, the term that keeps `(f - h) grad log q + grad E_q[h]`
    unbiased for any `point` that does not depend on the sample.

    Args:
        f: a function of a sample `(batch, ...)` returning the loss per
            example `(batch,)`; it must accept relaxed values at `point`.
        sample: the discrete sample `(batch, ...)`.
        point: the expansion point, of the sample's shape (or broadcasting
            to it); held constant.
        mean: `E_q[z]`, of the sample's shape, or None (no analytic term).

    Returns:
        A `ControlVariate(value, analytic)`, each `(batch,)`.
    """
    f = _check_callable(f)
    sample = _stop(K.convert_to_tensor(sample))
    point = K.broadcast_to(
        K.cast(K.convert_to_tensor(point), sample.dtype),
        _backend.shape(sample))
    f_point, slope = _value_and_slope(f, point)
    value = f_point + _backend.sum_except_first(slope * (sample - point))
    if mean is None:
        analytic = K.zeros_like(value)
    else:
        linear = _backend.sum_except_first(slope * K.cast(mean, slope.dtype))
        analytic = linear - _stop(linear)
    return ControlVariate(_stop(value), analytic)


def _mean(logits, kind, axis):
    if kind == "categorical":
        return _backend.softmax(logits, axis=axis)
    return K.sigmoid(logits)


def _check_kind(kind):
    return _checks.one_of(kind, "kind", ("categorical", "bernoulli"))


def muprop_control_variate(f, sample, logits, kind="categorical", axis=-1):
    """MuProp's control variate: `f` expanded around the mean, unbiased.

    The expansion point is `E_q[z]` (`softmax(logits)` or
    `sigmoid(logits)`), held constant, and the analytic term
    `<grad f(mean), mean>` is included, so the estimator is unbiased. For a
    single stochastic layer the mean is the mean-field network's value.

    Args:
        f: the loss per example as a function of the sample.
        sample: the discrete sample.
        logits: the distribution's logits (differentiable).
        kind: `"categorical"` (one-hot along `axis`) or `"bernoulli"`.
        axis: the class axis, for `"categorical"`.

    Returns:
        A `ControlVariate`.
    """
    kind = _check_kind(kind)
    logits = _checks.logits_tensor(
        logits, "score_function.muprop_control_variate")
    mean = _mean(logits, kind, axis)
    return taylor_control_variate(f, sample, _stop(mean), mean)


def darn_learning_signal(f, sample, kind="bernoulli", axis=-1):
    """DARN's learning signal: the first-order term of `f` around the centre.

    Gregor et al. (2014) train a layer of stochastic binary units with the
    score-function estimator whose learning signal is not the loss itself
    but its first-order Taylor term around `z_bar = 1/2`,

        grad ~= <f'(z_bar), z - z_bar> * grad log q(z),

    the change of `f` between the sample and the centre, linearized (for a
    single unit, `f'(1/2) (z - 1/2)` is half the Taylor estimate of the
    difference between `z` and its flip). This is DARN as the Gumbel-Softmax
    paper's comparison (after Gu et al. 2016, MuProp) is read here; neither
    paper's text was reachable from the machine this was written on, so no
    equation number is cited, and the tests check the estimator's defining
    property by enumeration. Its mean is
    `<f'(z_bar), grad E_q[z]>` exactly, because
    `E_q[(z - z_bar) grad log q(z)] = grad E_q[z]` for any `z_bar` that does
    not depend on the sample: the gradient of `f`'s linearization at
    `z_bar`, so DARN is biased wherever `f` is not linear in the units, and
    of low variance. There is no analytic term.

    For categorical units we take the centre of the simplex, `1/K` for each
    of the `K` classes: a fixed point, as DARN's `1/2` is (the mean would make
    the expansion point depend on the parameters), and for `K = 2` the same
    point as a Bernoulli unit's.

    Args:
        f: the loss per example as a function of the sample; it must accept
            relaxed values at the centre.
        sample: the discrete sample (0/1, or one-hot along `axis`).
        kind: `"bernoulli"` or `"categorical"`.
        axis: the class axis, for `"categorical"`.

    Returns:
        The learning signal per example `(batch,)`, without gradient: pass
        it (after `VarianceReduction`, if used) as `surrogate_loss`'s
        `signal`.

    References:
        - Gregor, Danihelka, Mnih, Blundell, Wierstra. Deep AutoRegressive
          Networks. ICML 2014.
        - Gu, Levine, Sutskever, Mnih. MuProp: Unbiased Backpropagation for
          Stochastic Neural Networks. ICLR 2016.
    """
    f = _check_callable(f)
    kind = _check_kind(kind)
    sample = _stop(K.convert_to_tensor(sample))
    if kind == "bernoulli":
        point = K.ones_like(sample) * 0.5
    else:
        axis = _checks.axis(axis, _backend.rank(sample))
        depth = K.cast(_backend.depth(sample, axis), sample.dtype)
        point = K.ones_like(sample) / depth
    _, slope = _value_and_slope(f, point)
    return _stop(_backend.sum_except_first(slope * (sample - point)))


def surrogate_loss(f, log_q, signal=None, analytic=0.0):
    """The per-example loss whose gradient is the score-function estimator.

    `f + stop_gradient(signal) * (log_q - stop_gradient(log_q)) + analytic`:
    its value is `f`; its gradient is `f`'s own (through the parameters it
    depends on directly, e.g. a decoder's) plus `signal * grad log q` plus
    the analytic term's. Without `signal` it is `f` itself: plain
    REINFORCE.

    Args:
        f: the loss per example `(batch,)`, computed from a sample drawn
            without gradient (`sample_categorical`, `sample_bernoulli`).
        log_q: `log q(z)` of that sample, per example, differentiable in
            the distribution's parameters.
        signal: the learning signal per example, e.g. `f - h - baseline`,
            divided by a scale (`VarianceReduction` returns it). Default:
            `f`.
        analytic: a control variate's analytic term (`ControlVariate`),
            divided by the same scale as `signal`.

    Returns:
        `(batch,)`; average it over the batch for the training loss.
    """
    f = K.convert_to_tensor(f)
    log_q = K.cast(K.convert_to_tensor(log_q), f.dtype)
    signal = f if signal is None else K.cast(signal, f.dtype)
    for name, value in (("log_q", log_q), ("signal", signal)):
        if not _compatible(value.shape, f.shape):
            raise ValueError(
                f"Invalid value received for argument `{name}`. Expected "
                f"one value per example, the shape of `f` {tuple(f.shape)}. "
                f"Received: {name} with shape={tuple(value.shape)}")
    return (f + _stop(signal) * (log_q - _stop(log_q))
            + K.cast(analytic, f.dtype))


def _compatible(a, b):
    """Whether two static shapes can be equal (None matches anything)."""
    if _backend.is_tensorflow() and (getattr(a, "rank", 0) is None
                                     or getattr(b, "rank", 0) is None):
        return True
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b))


@keras.saving.register_keras_serializable(package="keras_gumbel")
class VarianceReduction(keras.layers.Layer):
    """NVIL's variance reductions of a score-function learning signal.

    Mnih and Gregor (2014) reduce the variance of `l * grad log q` in three
    ways, all here: subtract a moving average `c` of the signal (a baseline
    that does not depend on the sample), subtract an input-dependent
    baseline `b(x)` (a small network the user builds, trained here by
    regression on `l - c`), and divide by `max(1, sqrt(v))`, `v` a moving
    average of the signal's variance. Subtracting a baseline that does not
    depend on the sample leaves the estimator unbiased; the division is a
    step size that adapts to the signal's scale. It must divide the whole
    gradient of the distribution's parameters: divide every other term of
    their loss by the same `scale` (a control variate's analytic term, an
    analytic KL term), or the division changes their relative weights.

    In training, the signal is centred with the statistics from before this
    batch (so the baseline does not depend on the batch's own samples), then
    the statistics are updated:
    `c <- decay * c + (1 - decay) * mean(l - b)` and
    `v <- decay * v + (1 - decay) * var(l - b)`; and the regression loss
    `mean((l - c - b(x))^2)` (gradient into `b` only) is added to the
    layer's losses, which `fit`, or `model.losses` in a `train_step`,
    collect. Not in training the statistics stay as they are and no loss is
    added.

    Args:
        decay: the moving averages' decay, a float in `[0, 1)` (NVIL: 0.8).
        center: whether to subtract the moving-average baseline `c`.
        normalize: whether to divide by `max(1, sqrt(v))`.
        **kwargs: base layer keyword arguments, such as `name`.

    Call arguments:
        signal: the learning signal per example `(batch,)`: the loss, or the
            loss minus a control variate's value.
        input_baseline: optional `b(x)` per example `(batch,)` (or
            `(batch, 1)`), the output of the user's baseline network.
        training: Python bool; `fit` sets it.

    Returns:
        `(signal, scale)`: the reduced signal `(l - c - b) / scale` per
        example, without gradient, and the scalar `scale` (divide a control
        variate's analytic term by it too).

    Example:

    >>> reduce = VarianceReduction(decay=0.8)
    >>> signal, scale = reduce(keras.ops.convert_to_tensor([3.0, 5.0]),
    ...                        training=True)
    """

    def __init__(self, decay=0.8, center=True, normalize=True, **kwargs):
        super().__init__(**kwargs)
        if (isinstance(decay, (bool, np.bool_))
                or not isinstance(decay, numbers.Real)
                or not 0.0 <= float(decay) < 1.0):
            raise _checks.invalid("decay", "a float in [0, 1)", decay)
        self.decay = float(decay)
        self.center = _checks.boolean(center, "center")
        self.normalize = _checks.boolean(normalize, "normalize")
        self.signal_mean = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="float32",
            autocast=False, name="signal_mean")
        self.signal_variance = self.add_weight(
            shape=(), initializer="ones", trainable=False, dtype="float32",
            autocast=False, name="signal_variance")

    def call(self, signal, input_baseline=None, training=None):
        signal = _stop(K.cast(signal, "float32"))
        if _backend.rank(signal) != 1:
            raise ValueError(
                "Invalid value received for argument `signal`. Expected one "
                "value per example, shape (batch,). Received: signal with "
                f"shape={tuple(signal.shape)}")
        baseline = K.zeros_like(signal)
        if input_baseline is not None:
            baseline = K.reshape(K.cast(input_baseline, "float32"), (-1,))
        c = K.convert_to_tensor(self.signal_mean) if self.center else 0.0
        scale = (K.maximum(1.0, K.sqrt(K.convert_to_tensor(
            self.signal_variance))) if self.normalize
            else K.convert_to_tensor(1.0, "float32"))
        reduced = (signal - c - _stop(baseline)) / scale
        if training:
            if input_baseline is not None:
                self.add_loss(K.mean(K.square(signal - c - baseline)))
            residual = signal - _stop(baseline)
            mean, variance = K.moments(residual, axes=[0])
            self.signal_mean.assign(
                self.decay * self.signal_mean + (1 - self.decay) * mean)
            self.signal_variance.assign(
                self.decay * self.signal_variance
                + (1 - self.decay) * variance)
        return _stop(reduced), _stop(scale)

    def compute_output_spec(self, signal, input_baseline=None,
                            training=None):
        return (keras.KerasTensor(signal.shape, dtype="float32"),
                keras.KerasTensor((), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "decay": self.decay,
                "center": self.center, "normalize": self.normalize}
