"""Bad input, in one table: every wrong argument to the ops, the layers and
the callback, with the error each gives.

Each row of `TABLE` is a `Bad` row: an id, a callable making the bad call,
the exception type, a regex its message must match, and the argument the
message must name. Every error must be raised in the package itself (the last
frame of the traceback), so that the user sees our message, never a stack
trace from deep inside the backend. The table is the same on every Keras
backend (TensorFlow, JAX, PyTorch), and so are the messages. Errors that
Keras or Python raise with their own words (an unknown keyword argument, a
dtype policy) are not ours to pin and have no row.

`test_no_silent_nan` then lists inputs that pass validation but are
degenerate: each must raise a clear error or give finite output, never NaN
in silence. The behaviour the README documents as giving NaN (a temperature
tensor in a compiled function, XLA or `jax.jit`, which has no run-time
check) is a strict xfail: it fails this test's contract on purpose, and the
xfail turns into a failure once it is fixed. (PyTorch trains eagerly, so
there the value is checked and the row passes.)
"""

import collections
import functools
import os

import keras
import numpy as np
import pytest

import keras_gumbel
from _helpers import BACKEND
from _helpers import as_float64
from _helpers import compiled
from _helpers import tensor
from _helpers import tf_only
from keras_gumbel import GumbelRao
from keras_gumbel import GumbelRaoSigmoid
from keras_gumbel import GumbelSigmoid
from keras_gumbel import GumbelSoftmax
from keras_gumbel import GumbelTopK
from keras_gumbel import ReinMax
from keras_gumbel import ReinMaxSigmoid
from keras_gumbel import STGumbel
from keras_gumbel import STGumbelSigmoid
from keras_gumbel import StraightThrough
from keras_gumbel import StraightThroughSigmoid
from keras_gumbel import TemperatureAnnealing
from keras_gumbel import ops
from keras_gumbel import score_function as sf

PACKAGE_DIR = os.path.dirname(os.path.abspath(keras_gumbel.__file__))

# The layers whose forward value is an exact sample (the temperature only
# shapes the gradient), and which therefore refuse a learned temperature.


def _layer_factory(cls, name, *args, **kwargs):
    """`cls` with some arguments given, named `name` in the rows' ids (the
    k-subset layer takes `k` first)."""
    factory = functools.partial(cls, *args, **kwargs)
    factory.__name__ = name
    return factory


TOPK = _layer_factory(GumbelTopK, "GumbelTopK", 2)
TOPK_HARD = _layer_factory(GumbelTopK, "GumbelTopK(hard=True)", 2,
                           hard=True)
STRAIGHT_THROUGH = [STGumbel, STGumbelSigmoid, StraightThrough, ReinMax,
                    GumbelRao, StraightThroughSigmoid, ReinMaxSigmoid,
                    GumbelRaoSigmoid, TOPK_HARD]
ALL_LAYERS = [GumbelSoftmax, GumbelSigmoid, TOPK] + STRAIGHT_THROUGH
CATEGORICAL = [GumbelSoftmax, STGumbel, StraightThrough, ReinMax, GumbelRao,
               TOPK, TOPK_HARD]
NAN, INF = float("nan"), float("inf")
# What the package's checks say, in Keras's wording.
INVALID = "Invalid value received for argument `{}`"
INVALID_INPUT = "Invalid input received by layer"

X = np.zeros((2, 3), "float32")  # valid logits
X_INT = np.zeros((2, 3), "int32")
X_BOOL = np.zeros((2, 3), bool)
MASKED = np.array([[0.0, -np.inf, 1.0]], "float32")

Bad = collections.namedtuple("Bad", "id call error match argument")


def _invalid(name):
    return INVALID.format(name)


def _set_temperature(cls, value, learn_temperature=False):
    layer = cls(learn_temperature=learn_temperature)
    layer.temperature = value


def _call_twice(layer, first, second):
    """Calls `layer` on `first` (which builds it), then on `second`."""
    layer(first)
    layer(second)


def _annealing_without(layer):
    """`on_train_begin` of a model whose only layer is `layer`."""
    model = keras.Sequential([keras.Input((3,)), layer])
    callback = TemperatureAnnealing()
    callback.set_model(model)
    callback.on_train_begin()


# The estimators beyond Gumbel-Softmax: exact samples, other gradients.
ESTIMATOR_OPS = [("straight_through", ops.straight_through),
                 ("reinmax", ops.reinmax),
                 ("gumbel_rao", ops.gumbel_rao),
                 ("straight_through_sigmoid", ops.straight_through_sigmoid),
                 ("reinmax_sigmoid", ops.reinmax_sigmoid),
                 ("gumbel_rao_sigmoid", ops.gumbel_rao_sigmoid)]
# Each estimator op's layer, which its error for a symbolic input names.
LAYER_OF = {"straight_through": "StraightThrough", "reinmax": "ReinMax",
            "gumbel_rao": "GumbelRao",
            "straight_through_sigmoid": "StraightThroughSigmoid",
            "reinmax_sigmoid": "ReinMaxSigmoid",
            "gumbel_rao_sigmoid": "GumbelRaoSigmoid",
            "gumbel_topk": "GumbelTopK", "tempered_topk": "GumbelTopK",
            "topk_mode": "GumbelTopK"}


def _with_k(fn, k=2):
    """`fn(logits, k, ...)` as `fn(logits, ...)`, for the rows that the
    one-hot ops share with the k-subset ops."""
    return lambda x, *args, **kwargs: fn(x, k, *args, **kwargs)


# The k-subset ops with k = 2 (the logits' rows hold 3 classes).
SUBSET_OPS = [("gumbel_topk", _with_k(ops.gumbel_topk)),
              ("tempered_topk", _with_k(ops.tempered_topk)),
              ("topk_mode", _with_k(ops.topk_mode))]
TEMPERATURE_OPS = [("gumbel_softmax", ops.gumbel_softmax),
                   ("gumbel_sigmoid", ops.gumbel_sigmoid),
                   ("tempered_softmax", ops.tempered_softmax),
                   ("tempered_sigmoid", ops.tempered_sigmoid)
                   ] + ESTIMATOR_OPS + SUBSET_OPS[:2]


def _ops_rows():
    rows = []
    add = rows.append
    gs = ops.gumbel_softmax
    # logits
    for name, fn in [("gumbel_softmax", gs),
                     ("gumbel_sigmoid", ops.gumbel_sigmoid),
                     ("kl_categorical_uniform", ops.kl_categorical_uniform),
                     ("kl_bernoulli_uniform", ops.kl_bernoulli_uniform),
                     ("softmax_mode", ops.softmax_mode),
                     ("sigmoid_mode", ops.sigmoid_mode),
                     ("tempered_softmax", ops.tempered_softmax),
                     ("tempered_sigmoid", ops.tempered_sigmoid)
                     ] + ESTIMATOR_OPS + SUBSET_OPS:
        add(Bad(f"{name}-int-logits", lambda fn=fn: fn(X_INT),
                ValueError, r"`logits`.*floating-point.*dtype=int32",
                "logits"))
        add(Bad(f"{name}-scalar-logits", lambda fn=fn: fn(1.0),
                ValueError, r"`logits`.*rank >= 1.*shape=\(\)", "logits"))
        layers = (f"its layer instead.*`keras_gumbel.{LAYER_OF[name]}`"
                  if name in LAYER_OF else "the layers instead.*GumbelSoftmax")
        add(Bad(f"{name}-symbolic-logits",
                lambda fn=fn: fn(keras.Input((3,))),
                ValueError, rf"keras_gumbel.ops.{name}.*symbolic.*use "
                + layers, "logits"))
    add(Bad("gumbel_softmax-bool-logits", lambda: gs(X_BOOL),
            ValueError, r"`logits`.*dtype=bool", "logits"))
    add(Bad("gumbel_softmax-string-logits", lambda: gs(["a", "b"]),
            ValueError, r"`logits`.*dtype=string", "logits"))
    add(Bad("gumbel_softmax-none-logits", lambda: gs(None),
            ValueError, r"`logits`", "logits"))
    add(Bad("gumbel_softmax-ragged-logits",
            lambda: gs([[1.0], [1.0, 2.0]]),
            ValueError, r"`logits`", "logits"))
    add(Bad("kl_categorical_uniform-object-logits",
            lambda: ops.kl_categorical_uniform(object()),
            ValueError, r"`logits`", "logits"))
    add(Bad("gumbel_softmax-list-int-logits", lambda: gs([[1, 2, 3]]),
            ValueError, r"`logits`.*dtype=int32", "logits"))
    # temperature
    for name, fn in TEMPERATURE_OPS:
        for label, value, match in [
                ("0.0", 0.0, r"positive, finite float.*temperature=0.0"),
                ("-1", -1, r"positive, finite float.*temperature=-1"),
                ("nan", NAN, r"positive, finite float.*temperature=nan"),
                ("inf", INF, r"positive, finite float.*temperature=inf"),
                ("np.float32(0)", np.float32(0.0),
                 r"positive, finite float.*temperature=0.0"),
                ("True", True, r"positive float.*temperature=True"),
                ("'1.0'", "1.0", r"float tensor.*temperature='1.0'"),
                ("1j", 1j, r"float tensor.*temperature=1j"),
                ("None", None, r"float tensor.*temperature=None"),
                ("array-with-nan", np.array([[1.0], [np.nan]]),
                 r"positive, finite values"),
                ("tensor-0", tensor(0.0), r"positive, finite"),
                ("tensor-with-negative", tensor([[1.0], [-2.0]]),
                 r"positive, finite values")]:
            add(Bad(f"{name}-temperature={label}",
                    lambda fn=fn, v=value: fn(X, temperature=v),
                    ValueError, _invalid("temperature") + ".*" + match,
                    "temperature"))
        add(Bad(f"{name}-temperature=keras.Input",
                lambda fn=fn: fn(X, temperature=keras.Input((1,))),
                ValueError, _invalid("temperature") + ".*symbolic",
                "temperature"))
        # The shape: its broadcast with the logits must be the logits'
        # shape. (2, 3) logits and 4 temperatures do not broadcast; the
        # others broadcast to a shape larger than the logits', which
        # computed the softmax along the wrong axis.
        for case, logits, temperature in [
                ("does-not-broadcast", X, np.ones(4, "float32")),
                ("larger-rank", [2.0, 3.0, -4.0], [[1.0], [1.4]]),
                ("larger-dim", [[2.0, 3.0, -4.0]], [[1.0], [1.4]]),
                ("larger-rank-per-class", X, np.ones((2, 1, 3)))]:
            add(Bad(f"{name}-temperature-shape-{case}",
                    lambda fn=fn, x=logits, t=temperature: fn(
                        tensor(x), temperature=tensor(t)),
                    ValueError, _invalid("temperature")
                    + r".*broadcast with the logits has the logits' shape"
                    r".*Received: temperature with shape \(", "temperature"))
    # hard
    for value in ["yes", None, 1, 1.0]:
        add(Bad(f"gumbel_softmax-hard={value!r}",
                lambda v=value: gs(X, hard=v),
                ValueError, _invalid("hard") + ".*Expected a bool", "hard"))
    add(Bad("gumbel_sigmoid-hard='no'",
            lambda: ops.gumbel_sigmoid(X, hard="no"),
            ValueError, _invalid("hard"), "hard"))
    # axis
    for name, fn in [("gumbel_softmax", gs),
                     ("kl_categorical_uniform", ops.kl_categorical_uniform),
                     ("softmax_mode", ops.softmax_mode),
                     ("tempered_softmax", ops.tempered_softmax)
                     ] + ESTIMATOR_OPS[:3] + SUBSET_OPS:
        add(Bad(f"{name}-axis=2", lambda fn=fn: fn(X, axis=2),
                ValueError, _invalid("axis") + r".*\[-2, 2\).*axis=2",
                "axis"))
        add(Bad(f"{name}-axis=-3", lambda fn=fn: fn(X, axis=-3),
                ValueError, _invalid("axis") + r".*axis=-3", "axis"))
    for value in [1.5, None, "last"]:
        add(Bad(f"gumbel_softmax-axis={value!r}",
                lambda v=value: gs(X, axis=v),
                ValueError, _invalid("axis") + ".*an integer", "axis"))
    # seed: `keras.random`'s contract (None, an int, a SeedGenerator),
    # checked before Keras sees it.
    for value in ["abc", 1.5, True]:
        add(Bad(f"gumbel_softmax-seed={value!r}",
                lambda v=value: gs(X, seed=v),
                ValueError, _invalid("seed") + ".*SeedGenerator", "seed"))
    for name, fn in ESTIMATOR_OPS:
        add(Bad(f"{name}-seed='abc'", lambda fn=fn: fn(X, seed="abc"),
                ValueError, _invalid("seed") + ".*SeedGenerator", "seed"))
    # k (the k-subset ops): a positive int, at most the classes, and at
    # most the finite classes of every row when the values can be read.
    for name, fn in [("gumbel_topk", ops.gumbel_topk),
                     ("tempered_topk", ops.tempered_topk),
                     ("topk_mode", ops.topk_mode)]:
        for value in [0, -1, 1.5, True, "2", None]:
            add(Bad(f"{name}-k={value!r}", lambda fn=fn, v=value: fn(X, v),
                    ValueError, _invalid("k") + ".*a positive integer",
                    "k"))
        add(Bad(f"{name}-k=4-of-3", lambda fn=fn: fn(X, 4),
                ValueError, _invalid("k") + r".*at most the number of "
                r"classes along axis 1 \(3\).*k=4", "k"))
        add(Bad(f"{name}-k=3-of-2-finite", lambda fn=fn: fn(MASKED, 3),
                ValueError, _invalid("k") + r".*finite logit in every row.*"
                r"has 2.*k=3", "k"))
    add(Bad("gumbel_topk-hard='yes'",
            lambda: ops.gumbel_topk(X, 2, hard="yes"),
            ValueError, _invalid("hard") + ".*Expected a bool", "hard"))
    add(Bad("gumbel_topk-seed='abc'",
            lambda: ops.gumbel_topk(X, 2, seed="abc"),
            ValueError, _invalid("seed") + ".*SeedGenerator", "seed"))
    # num_samples (Gumbel-Rao's K)
    for name, fn in [("gumbel_rao", ops.gumbel_rao),
                     ("gumbel_rao_sigmoid", ops.gumbel_rao_sigmoid)]:
        for value in [0, -1, 1.5, True, "10", None]:
            add(Bad(f"{name}-num_samples={value!r}",
                    lambda fn=fn, v=value: fn(X, num_samples=v),
                    ValueError, _invalid("num_samples")
                    + ".*a positive integer", "num_samples"))
    # noise: shape, dtype, seed
    for name, fn in [("sample_gumbel", ops.sample_gumbel),
                     ("sample_logistic", ops.sample_logistic)]:
        for dtype in ["int32", "bool", "foo", "string"]:
            add(Bad(f"{name}-dtype={dtype}",
                    lambda fn=fn, d=dtype: fn((2,), dtype=d),
                    ValueError, _invalid("dtype")
                    + ".*floating-point dtype", "dtype"))
        add(Bad(f"{name}-seed='x'", lambda fn=fn: fn((2,), seed="x"),
                ValueError, _invalid("seed"), "seed"))
        for shape in [(-1, 2), (2.5,), None, "ab", [[2, 3]]]:
            add(Bad(f"{name}-shape={shape!r}",
                    lambda fn=fn, s=shape: fn(s),
                    ValueError, r"`shape`", "shape"))
    return rows


def _layer_rows():
    rows = []
    add = rows.append
    for cls in ALL_LAYERS:
        n = cls.__name__
        for value, match in [
                (0.0, "positive, finite float"), (-1.0, "positive, finite"),
                (NAN, "positive, finite"), (INF, "positive, finite"),
                (True, "positive float"), ("1.0", "positive float"),
                (None, "positive float"),
                ([0.5, 1.0], "one scalar temperature")]:
            add(Bad(f"{n}(temperature={value!r})",
                    lambda c=cls, v=value: c(temperature=v),
                    ValueError, _invalid("temperature") + ".*" + match,
                    "temperature"))
        # A finite float that float32 (the variable's dtype) cannot hold.
        add(Bad(f"{n}(temperature=1e39)",
                lambda c=cls: c(temperature=1e39),
                ValueError, r"`temperature`", "temperature"))
        for value in ["a", 1.5, True]:
            add(Bad(f"{n}(seed={value!r})",
                    lambda c=cls, v=value: c(seed=v),
                    ValueError, _invalid("seed") + ".*None or an integer",
                    "seed"))
        if cls in STRAIGHT_THROUGH:
            add(Bad(f"{n}(learn_temperature=True)",
                    lambda c=cls: c(learn_temperature=True),
                    ValueError, _invalid("learn_temperature")
                    + r".*Expected False.*does not depend on the temperature"
                    r".*learn_temperature=True", "learn_temperature"))
        add(Bad(f"{n}(learn_temperature='yes')",
                lambda c=cls: c(learn_temperature="yes"),
                ValueError, _invalid("learn_temperature") + ".*a bool",
                "learn_temperature"))
        for value in ["argmax", None, "MODE", np.array(["sample"])]:
            add(Bad(f"{n}(inference_mode={value!r})",
                    lambda c=cls, v=value: c(inference_mode=v),
                    ValueError, _invalid("inference_mode")
                    + r".*one of \('sample', 'mode', 'soft'\)",
                    "inference_mode"))
        # Calls.
        add(Bad(f"{n}-call-int", lambda c=cls: c()(X_INT),
                ValueError, INVALID_INPUT + r".*floating-point logits.*"
                "dtype=int32", "inputs"))
        add(Bad(f"{n}-call-bool-symbolic",
                lambda c=cls: c()(keras.Input((3,), dtype="bool")),
                ValueError, INVALID_INPUT + r".*dtype=bool", "inputs"))
        add(Bad(f"{n}-call-string",
                lambda c=cls: c()(np.array([["a"]])),
                ValueError, INVALID_INPUT + r".*dtype=string", "inputs"))
        add(Bad(f"{n}-call-scalar", lambda c=cls: c()(np.float32(1.0)),
                ValueError, INVALID_INPUT + r".*rank >= 1", "input"))
        add(Bad(f"{n}-call-None", lambda c=cls: c()(None),
                ValueError, r"`inputs`|inputs", "inputs"))
        add(Bad(f"{n}-call-dict", lambda c=cls: c()({"logits": X}),
                ValueError, r"`inputs`|inputs", "inputs"))
        # Assigning the temperature.
        for learn in (False, True) if cls not in STRAIGHT_THROUGH else (
                False,):
            for value in [0.0, NAN, INF, -2.0, None, [0.5, 0.2],
                          tensor([0.5, 0.2])]:
                add(Bad(f"{n}(learn_temperature={learn}).temperature="
                        f"{value!r}"[:80],
                        lambda c=cls, v=value, lt=learn:
                            _set_temperature(c, v, lt),
                        ValueError, _invalid("temperature"), "temperature"))
            add(Bad(f"{n}(learn_temperature={learn}).temperature=1e39",
                    lambda c=cls, lt=learn: _set_temperature(c, 1e39, lt),
                    ValueError, r"`temperature`", "temperature"))
    for cls in (GumbelRao, GumbelRaoSigmoid):
        for value in [0, -1, 1.5, True, "10", None]:
            add(Bad(f"{cls.__name__}(num_samples={value!r})",
                    lambda c=cls, v=value: c(num_samples=v),
                    ValueError, _invalid("num_samples")
                    + ".*a positive integer", "num_samples"))
    for value in [0, -1, 1.5, True, "2", None]:
        add(Bad(f"GumbelTopK(k={value!r})", lambda v=value: GumbelTopK(v),
                ValueError, _invalid("k") + ".*a positive integer", "k"))
    add(Bad("GumbelTopK(hard='yes')",
            lambda: GumbelTopK(2, hard="yes"),
            ValueError, _invalid("hard") + ".*Expected a bool", "hard"))
    add(Bad("GumbelTopK(k=4)-call-3-classes", lambda: GumbelTopK(4)(X),
            ValueError, _invalid("k") + r".*at most the number of classes "
            r"along axis -1.*\(3\).*k=4", "k"))
    add(Bad("GumbelTopK(k=4)-symbolic-3-classes",
            lambda: GumbelTopK(4)(keras.Input((3,))),
            ValueError, _invalid("k") + r".*\(3\).*k=4", "k"))
    add(Bad("GumbelTopK(k=3)-call-2-finite",
            lambda: GumbelTopK(3)(MASKED, training=True),
            ValueError, _invalid("k") + r".*finite logit.*k=3", "k"))
    for cls in CATEGORICAL:
        n = cls.__name__
        for value in [1.5, "x", None, True, [1]]:
            add(Bad(f"{n}(axis={value!r})",
                    lambda c=cls, v=value: c(axis=v),
                    ValueError, _invalid("axis") + ".*an integer", "axis"))
        add(Bad(f"{n}(axis=2)-call-rank-2", lambda c=cls: c(axis=2)(X),
                ValueError, _invalid("axis") + r".*\[-2, 2\).*axis=2",
                "axis"))
        add(Bad(f"{n}(axis=2)-built-for-rank-3-call-rank-2",
                lambda c=cls: _call_twice(c(axis=2), np.zeros((2, 3, 4)), X),
                ValueError, _invalid("axis") + r".*\[-2, 2\).*axis=2",
                "axis"))
        add(Bad(f"{n}(axis=-3)-symbolic-rank-2",
                lambda c=cls: c(axis=-3)(keras.Input((3,))),
                ValueError, _invalid("axis") + r".*axis=-3", "axis"))
    return rows


def _callback_rows():
    rows = []
    add = rows.append
    ta = TemperatureAnnealing
    for name, values in [
            ("initial", [0.0, -1.0, NAN, INF, True, "1", None,
                         np.array([1.0, 2.0])]),
            ("minimum", [0.0, -0.5, NAN, INF, None]),
            ("rate", [-1e-3, NAN, INF, True, "fast", None]),
            ("update_every", [0, -5, 1.5, 10.0, True, "10"]),
            ("schedule", ["cosine", 0.5]),
            ("layers", [[keras.layers.Dense(2)], ["gumbel"], "gumbel",
                        [GumbelSoftmax(learn_temperature=True)]]),
            ("verbose", [3, -1, "loud", np.array([1, 2])])]:
        for value in values:
            add(Bad(f"TemperatureAnnealing({name}={value!r})"[:70],
                    lambda k=name, v=value: ta(**{k: v}),
                    ValueError, _invalid(name), name))
    # Not iterable: the message must still name `layers`.
    for value in [GumbelSoftmax(), 5]:
        add(Bad(f"TemperatureAnnealing(layers={type(value).__name__})",
                lambda v=value: ta(layers=v),
                ValueError, _invalid("layers"), "layers"))
    # Finite floats whose temperature float32 cannot hold (inf, or a
    # subnormal that the division overflows on).
    add(Bad("TemperatureAnnealing(initial=1e39)",
            lambda: ta(initial=1e39), ValueError, _invalid("initial"),
            "initial"))
    add(Bad("TemperatureAnnealing(minimum=1e-45)",
            lambda: ta(minimum=1e-45), ValueError, _invalid("minimum"),
            "minimum"))
    add(Bad("temperature_at(-1)", lambda: ta().temperature_at(-1),
            ValueError, _invalid("step") + r".*>= 0", "step"))
    for value in ["x", None]:
        add(Bad(f"temperature_at({value!r})",
                lambda v=value: ta().temperature_at(v),
                ValueError, _invalid("step"), "step"))
    for value in [-1.0, NAN, "a", None]:
        add(Bad(f"schedule-returns-{value!r}",
                lambda v=value: ta(
                    schedule=lambda step: v).temperature_at(0),
                ValueError, r"Invalid value returned by `schedule`",
                "schedule"))
    add(Bad("TemperatureAnnealing(layers=[a learned temperature])",
            lambda: ta(layers=[GumbelSigmoid(),
                               GumbelSigmoid(learn_temperature=True)]),
            ValueError, _invalid("layers") + r".*learn_temperature=True",
            "layers"))
    add(Bad("TemperatureAnnealing-model-without-layers",
            lambda: _annealing_without(keras.layers.Dense(2)), ValueError,
            r"found no Gumbel layer.*`layers=\[\.\.\.\]`", "layers"))
    add(Bad("TemperatureAnnealing-model-with-only-learned-temperatures",
            lambda: _annealing_without(
                GumbelSoftmax(learn_temperature=True)), ValueError,
            r"found no Gumbel layer with a fixed temperature.*"
            r"`layers=\[\.\.\.\]`", "layers"))
    return rows


def _score_function_rows():
    rows = []
    add = rows.append
    f = lambda z: keras.ops.sum(z, -1)  # noqa: E731  a loss per example
    for name, call in [
            ("sample_categorical", lambda: sf.sample_categorical(X_INT)),
            ("sample_bernoulli", lambda: sf.sample_bernoulli(X_BOOL)),
            ("categorical_log_prob",
             lambda: sf.categorical_log_prob(X, X_INT)),
            ("bernoulli_log_prob", lambda: sf.bernoulli_log_prob(X, X_BOOL)),
            ("muprop_control_variate",
             lambda: sf.muprop_control_variate(f, X, X_INT))]:
        add(Bad(f"score_function.{name}(integer logits)", call, ValueError,
                _invalid("logits"), "logits"))
    add(Bad("score_function.categorical_log_prob(axis=5)",
            lambda: sf.categorical_log_prob(X, X, axis=5), ValueError,
            _invalid("axis"), "axis"))
    for name, call in [
            ("taylor_control_variate", lambda: sf.taylor_control_variate(
                "f", X, X)),
            ("darn_learning_signal", lambda: sf.darn_learning_signal(
                None, X))]:
        add(Bad(f"score_function.{name}(f not callable)", call, ValueError,
                _invalid("f"), "f"))
    for name, call in [
            ("muprop_control_variate", lambda: sf.muprop_control_variate(
                f, X, X, kind="gaussian")),
            ("darn_learning_signal", lambda: sf.darn_learning_signal(
                f, X, kind="normal"))]:
        add(Bad(f"score_function.{name}(kind=?)", call, ValueError,
                _invalid("kind"), "kind"))
    for name, call in [
            ("log_q", lambda: sf.surrogate_loss(keras.ops.ones(3),
                                                 keras.ops.ones(4))),
            ("signal", lambda: sf.surrogate_loss(keras.ops.ones(3),
                                                 keras.ops.ones(3),
                                                 keras.ops.ones((3, 2))))]:
        add(Bad(f"score_function.surrogate_loss({name} of another shape)",
                call, ValueError, _invalid(name), name))
    for name, values in [("decay", [1.0, -0.1, True, "a", NAN]),
                         ("center", [1, "yes"]),
                         ("normalize", [None, 0])]:
        for value in values:
            add(Bad(f"VarianceReduction({name}={value!r})",
                    lambda k=name, v=value: sf.VarianceReduction(**{k: v}),
                    ValueError, _invalid(name), name))
    add(Bad("VarianceReduction()(signal of shape (2, 2))",
            lambda: sf.VarianceReduction()(keras.ops.ones((2, 2)),
                                           training=True),
            ValueError, _invalid("signal"), "signal"))
    return rows


TABLE = (_ops_rows() + _layer_rows() + _callback_rows()
         + _score_function_rows())


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_bad_input(row):
    with pytest.raises(row.error, match=row.match) as excinfo:
        row.call()
    message = str(excinfo.value)
    assert row.argument in message, (
        f"the message does not name `{row.argument}`: {message!r}")
    last = os.path.abspath(str(excinfo.traceback[-1].path))
    assert last.startswith(PACKAGE_DIR + os.sep), (
        f"raised in {last}, not in keras_gumbel")


def test_table_covers_every_public_callable():
    """Each op, layer and the callback has rows."""
    ids = " ".join(row.id for row in TABLE)
    for name in ["gumbel_softmax", "gumbel_sigmoid", "sample_gumbel",
                 "sample_logistic", "kl_categorical_uniform",
                 "kl_bernoulli_uniform", "softmax_mode", "sigmoid_mode",
                 "tempered_softmax", "tempered_sigmoid", "GumbelSoftmax(",
                 "STGumbel(", "GumbelSigmoid(", "STGumbelSigmoid(",
                 "TemperatureAnnealing(", "gumbel_topk", "tempered_topk",
                 "topk_mode", "GumbelTopK("] + [
                     f"score_function.{name}" for name in sf.__all__
                     if name not in ("ControlVariate", "VarianceReduction")
                 ] + ["VarianceReduction("] + [
                     name for name, _ in ESTIMATOR_OPS] + [
                     cls.__name__ + "(" for cls in STRAIGHT_THROUGH]:
        assert name in ids, name
    assert len({row.id for row in TABLE}) == len(TABLE), "duplicate ids"


# --------------------------------------------------------------------------
# No NaN in silence.
# --------------------------------------------------------------------------


def _layer_with_temperature(value, cls=GumbelSoftmax, **kwargs):
    layer = cls(seed=0, **kwargs)
    layer.temperature = value
    return layer


# A compiled temperature tensor cannot be checked without a run-time
# assertion in every step: TensorFlow's XLA drops the assertion, a traced
# JAX value has none. PyTorch runs eagerly (`compiled` is the function
# itself), so there the value is checked and the row passes.
COMPILED_DROPS_CHECK = pytest.mark.xfail(
    BACKEND != "torch", strict=True,
    reason="documented in the README: a compiled function (XLA, jax.jit) "
    "drops the run-time check of a temperature tensor")

ALL_MASKED = np.full((2, 3), -np.inf, "float32")
PLUS_INF = np.array([[0.0, np.inf, 1.0]], "float32")
WITH_NAN = np.array([[0.0, np.nan, 1.0]], "float32")
DEGENERATE = [
    # Temperatures that pass validation but that float32 cannot divide by
    # (1e-45 is a float32 subnormal) or hold (1e39 > float32's max).
    ("gumbel_softmax-temperature=1e-45",
     lambda: ops.gumbel_softmax(X + 1, 1e-45, seed=0)),
    ("gumbel_softmax-temperature=1e39-masked",
     lambda: ops.gumbel_softmax(MASKED, 1e39, seed=0)),
    ("gumbel_sigmoid-temperature=1e39-infinite-logits",
     lambda: ops.gumbel_sigmoid(np.array([np.inf, -np.inf], "float32"),
                                1e39, seed=0)),
    ("GumbelSoftmax(temperature=1e-45)",
     lambda: GumbelSoftmax(temperature=1e-45, seed=0)(X + 1, training=True)),
    ("GumbelSoftmax.temperature=1e39-masked",
     lambda: _layer_with_temperature(1e39)(MASKED, training=True)),
    ("TemperatureAnnealing(minimum=1e-45)-drives-a-layer",
     lambda: _layer_with_temperature(TemperatureAnnealing(
         minimum=1e-45, rate=1.0, update_every=1).temperature_at(200))(
             X + 1, training=True)),
    ("straight_through-temperature=1e-45",
     lambda: ops.straight_through(X + 1, 1e-45, seed=0)),
    ("gumbel_rao-temperature=1e39-masked",
     lambda: ops.gumbel_rao(MASKED, 1e39, seed=0)),
    ("gumbel_topk-temperature=1e-45",
     lambda: ops.gumbel_topk(X + 1, 2, 1e-45, seed=0)),
    ("gumbel_topk-temperature=1e39-masked",
     lambda: ops.gumbel_topk(MASKED, 2, 1e39, seed=0)),
    ("GumbelTopK(temperature=1e-45)",
     lambda: GumbelTopK(2, temperature=1e-45, seed=0)(X + 1, training=True)),
    ("gumbel_topk-+inf-logit", lambda: ops.gumbel_topk(PLUS_INF, 2)),
    ("gumbel_topk-nan-logit", lambda: ops.gumbel_topk(WITH_NAN, 2)),
    ("gumbel_topk-all--inf-row", lambda: ops.gumbel_topk(ALL_MASKED, 1)),
    # +inf logits (a certain class): NaN instead of the one-hot.
    ("gumbel_softmax-+inf-logit", lambda: ops.gumbel_softmax(PLUS_INF)),
    ("tempered_softmax-+inf-logit", lambda: ops.tempered_softmax(PLUS_INF)),
    ("reinmax-+inf-logit", lambda: ops.reinmax(PLUS_INF)),
    ("kl_categorical_uniform-+inf-logit",
     lambda: ops.kl_categorical_uniform(PLUS_INF)),
    ("GumbelSoftmax(inference_mode='soft')-+inf-logit",
     lambda: GumbelSoftmax(inference_mode="soft")(PLUS_INF)),
    # NaN logits: NaN samples, while softmax_mode picks a class as if the
    # NaN were not there.
    ("gumbel_softmax-nan-logit", lambda: ops.gumbel_softmax(WITH_NAN)),
    ("gumbel_sigmoid-nan-logit", lambda: ops.gumbel_sigmoid(WITH_NAN)),
    ("gumbel_rao_sigmoid-nan-logit",
     lambda: ops.gumbel_rao_sigmoid(WITH_NAN)),
    ("kl_bernoulli_uniform-nan-logit",
     lambda: ops.kl_bernoulli_uniform(WITH_NAN)),
    ("GumbelSoftmax-nan-logit",
     lambda: GumbelSoftmax(seed=0)(WITH_NAN, training=True)),
    # A row of only -inf logits has no sample: an error when eager (in a
    # compiled function it gives NaN, as the README says).
    ("gumbel_softmax-all--inf-row", lambda: ops.gumbel_softmax(ALL_MASKED)),
    ("gumbel_rao-all--inf-row", lambda: ops.gumbel_rao(ALL_MASKED)),
    ("kl_categorical_uniform-all--inf-row",
     lambda: ops.kl_categorical_uniform(ALL_MASKED)),
    pytest.param("xla-temperature-tensor-0",
                 lambda: compiled(
                     lambda x, t: ops.gumbel_softmax(x, t, seed=0))(
                         tensor(X), tensor(0.0)),
                 marks=COMPILED_DROPS_CHECK),
]


@pytest.mark.parametrize(
    "name, call", DEGENERATE,
    ids=[c.values[0] if hasattr(c, "values") else c[0] for c in DEGENERATE])
def test_no_silent_nan(name, call):
    """A degenerate input raises a clear ValueError, or the output is
    finite."""
    try:
        out = call()
    except ValueError as e:
        assert "Invalid" in str(e), str(e)
        return
    values = as_float64(out)
    assert np.all(np.isfinite(values)), f"{name} gave {values}"


@tf_only  # a run-time `tf.debugging` assertion inside a `tf.function`
@pytest.mark.parametrize("name, fn", TEMPERATURE_OPS,
                         ids=[name for name, _ in TEMPERATURE_OPS])
def test_bad_temperature_tensor_in_tf_function_is_named(name, fn):
    """Inside a `tf.function` a temperature tensor can only be checked when
    it runs: the error is TensorFlow's InvalidArgumentError, raised where
    the function runs, and its message names the argument."""
    import tensorflow as tf

    call = tf.function(lambda x, t: fn(x, t))
    for value in [0.0, -1.0, NAN]:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"argument `temperature`"):
            call(tf.constant(X), tf.constant(value))
    assert call(tf.constant(X), tf.constant(0.5)).shape == X.shape


@tf_only  # shapes unknown when traced exist only in a `tf.function`
@pytest.mark.parametrize("name, fn", TEMPERATURE_OPS,
                         ids=[name for name, _ in TEMPERATURE_OPS])
def test_temperature_shape_unknown_when_traced_is_checked_when_run(name, fn):
    """With dimensions unknown when the function is traced, a temperature
    whose broadcast would grow the logits fails when it runs, naming the
    argument; per-example temperatures still run."""
    import tensorflow as tf

    call = tf.function(lambda x, t: fn(x, t), input_signature=[
        tf.TensorSpec(None, tf.float32), tf.TensorSpec(None, tf.float32)])
    for logits, temperature in [
            ([2.0, 3.0, -4.0], [[1.0], [1.4]]),
            ([[2.0, 3.0, -4.0]], [[1.0], [1.4]]),
            (X, np.ones((2, 1, 1)))]:
        with pytest.raises(
                tf.errors.InvalidArgumentError,
                match=r"argument `temperature`.*shape of the logits"):
            call(tf.constant(logits), tf.constant(temperature, tf.float32))
    y = call(tf.constant(X), tf.constant([[0.5], [2.0]]))
    assert y.shape == X.shape


def test_score_function_rejects_symbolic_inputs_pointing_to_train_step():
    with pytest.raises(ValueError, match=r"`keras_gumbel\.score_function\."
                       r"categorical_log_prob`.*train_step"):
        sf.categorical_log_prob(X, keras.Input((3,)))
