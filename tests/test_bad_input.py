"""Bad input, in one table: every wrong argument to the ops, the layers, the
callback and the data loader, with the error each gives.

Each row of `TABLE` is a `Bad` row: an id, a callable making the bad call
(it gets the `files` namespace of prepared bad IDX files), the exception type,
a regex its message must match, the argument the message must name, and
where the error must be raised (the last frame of the traceback):

- ``"keras_gumbel"`` (most rows): in the package itself, so that the user
  sees our message, never a stack trace from deep inside TensorFlow;
- ``"keras"``: for the few arguments that Keras itself checks and names
  (unknown base-layer keyword arguments, a dtype policy, a `seed` Keras's
  `SeedGenerator` rejects), whose messages are Keras's own;
- ``"caller"``: Python's own argument binding (an unknown keyword argument
  to a function), which fails at the call itself.

`test_no_silent_nan` then lists inputs that pass validation but are
degenerate: each must raise a clear error or give finite output, never NaN
in silence. The two behaviours the README documents as giving NaN (a row of
only `-inf` logits, and a temperature tensor under XLA, which drops the
run-time check) are strict xfails: they fail this test's contract on
purpose, and the xfail turns into a failure once they are fixed.
"""

import collections
import gzip
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gumbel
from keras_gumbel import GumbelSigmoid
from keras_gumbel import GumbelSoftmax
from keras_gumbel import STGumbel
from keras_gumbel import STGumbelSigmoid
from keras_gumbel import TemperatureAnnealing
from keras_gumbel import datasets
from keras_gumbel import ops

PACKAGE_DIR = os.path.dirname(os.path.abspath(keras_gumbel.__file__))
KERAS_DIR = os.path.dirname(os.path.abspath(keras.__file__))
THIS_FILE = os.path.abspath(__file__)

ALL_LAYERS = [GumbelSoftmax, STGumbel, GumbelSigmoid, STGumbelSigmoid]
CATEGORICAL = [GumbelSoftmax, STGumbel]
NAN, INF = float("nan"), float("inf")
# What the package's checks say, in Keras's wording.
INVALID = "Invalid value received for argument `{}`"
INVALID_INPUT = "Invalid input received by layer"

X = np.zeros((2, 3), "float32")  # valid logits
X_INT = np.zeros((2, 3), "int32")
X_BOOL = np.zeros((2, 3), bool)
MASKED = np.array([[0.0, -np.inf, 1.0]], "float32")

Bad = collections.namedtuple(
    "Bad", "id call error match argument where", defaults=("keras_gumbel",))


def _invalid(name):
    return INVALID.format(name)


def _set_temperature(cls, value, learn_temperature=False):
    layer = cls(learn_temperature=learn_temperature)
    layer.temperature = value


def _annealing_without_layers():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    callback = TemperatureAnnealing()
    callback.set_model(model)
    callback.on_train_begin()


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
                     ("tempered_sigmoid", ops.tempered_sigmoid)]:
        add(Bad(f"{name}-int-logits", lambda f, fn=fn: fn(X_INT),
                ValueError, r"`logits`.*floating-point.*dtype=int32",
                "logits"))
        add(Bad(f"{name}-scalar-logits", lambda f, fn=fn: fn(1.0),
                ValueError, r"`logits`.*rank >= 1.*shape=\(\)", "logits"))
        add(Bad(f"{name}-symbolic-logits",
                lambda f, fn=fn: fn(keras.Input((3,))),
                ValueError, rf"keras_gumbel.ops.{name}.*symbolic", "logits"))
    add(Bad("gumbel_softmax-bool-logits", lambda f: gs(X_BOOL),
            ValueError, r"`logits`.*dtype=bool", "logits"))
    add(Bad("gumbel_softmax-string-logits", lambda f: gs(["a", "b"]),
            ValueError, r"`logits`.*dtype=string", "logits"))
    add(Bad("gumbel_softmax-none-logits", lambda f: gs(None),
            ValueError, r"`logits`", "logits"))
    add(Bad("gumbel_softmax-ragged-logits",
            lambda f: gs([[1.0], [1.0, 2.0]]),
            ValueError, r"`logits`", "logits"))
    add(Bad("kl_categorical_uniform-object-logits",
            lambda f: ops.kl_categorical_uniform(object()),
            ValueError, r"`logits`", "logits"))
    # temperature
    for value, match in [
            (0.0, r"positive, finite float.*temperature=0.0"),
            (-1, r"positive, finite float.*temperature=-1"),
            (NAN, r"positive, finite float.*temperature=nan"),
            (INF, r"positive, finite float.*temperature=inf"),
            (True, r"positive float.*temperature=True"),
            ("1.0", r"float tensor.*temperature='1.0'"),
            (1j, r"float tensor.*temperature=1j"),
            (np.array([[1.0], [0.0]]), r"positive, finite values"),
            (tf.constant([[1.0], [-2.0]]), r"positive, finite values")]:
        add(Bad(f"gumbel_softmax-temperature={value!r}"[:60],
                lambda f, v=value: gs(X, temperature=v),
                ValueError, _invalid("temperature") + ".*" + match,
                "temperature"))
    add(Bad("gumbel_sigmoid-temperature=-1",
            lambda f: ops.gumbel_sigmoid(X, temperature=-1.0),
            ValueError, _invalid("temperature"), "temperature"))
    add(Bad("tempered_softmax-temperature=0",
            lambda f: ops.tempered_softmax(X, temperature=0),
            ValueError, _invalid("temperature"), "temperature"))
    add(Bad("tempered_sigmoid-temperature=nan",
            lambda f: ops.tempered_sigmoid(X, temperature=NAN),
            ValueError, _invalid("temperature"), "temperature"))
    add(Bad("gumbel_softmax-temperature=None",
            lambda f: gs(X, temperature=None),
            ValueError, r"`temperature`", "temperature"))
    for name, fn in [("gumbel_softmax", gs),
                     ("gumbel_sigmoid", ops.gumbel_sigmoid),
                     ("tempered_softmax", ops.tempered_softmax),
                     ("tempered_sigmoid", ops.tempered_sigmoid)]:
        # (2, 3) logits and 4 temperatures: they do not broadcast.
        add(Bad(f"{name}-temperature-does-not-broadcast",
                lambda f, fn=fn: fn(X, np.ones(4, "float32")),
                ValueError, r"`temperature`.*(broadcast|shape)",
                "temperature"))
    # hard
    for value in ["yes", None, 1]:
        add(Bad(f"gumbel_softmax-hard={value!r}",
                lambda f, v=value: gs(X, hard=v),
                ValueError, _invalid("hard") + ".*Expected a bool", "hard"))
    add(Bad("gumbel_sigmoid-hard='no'",
            lambda f: ops.gumbel_sigmoid(X, hard="no"),
            ValueError, _invalid("hard"), "hard"))
    # axis
    for name, fn in [("gumbel_softmax", gs),
                     ("kl_categorical_uniform", ops.kl_categorical_uniform),
                     ("softmax_mode", ops.softmax_mode),
                     ("tempered_softmax", ops.tempered_softmax)]:
        add(Bad(f"{name}-axis=2", lambda f, fn=fn: fn(X, axis=2),
                ValueError, _invalid("axis") + r".*\[-2, 2\).*axis=2",
                "axis"))
        add(Bad(f"{name}-axis=-3", lambda f, fn=fn: fn(X, axis=-3),
                ValueError, _invalid("axis") + r".*axis=-3", "axis"))
    for value in [1.5, None, "last"]:
        add(Bad(f"gumbel_softmax-axis={value!r}",
                lambda f, v=value: gs(X, axis=v),
                ValueError, _invalid("axis") + ".*an integer", "axis"))
    # seed: `keras.random`'s contract (None, an int, a SeedGenerator),
    # checked before Keras sees it.
    for value in ["abc", 1.5, True]:
        add(Bad(f"gumbel_softmax-seed={value!r}",
                lambda f, v=value: gs(X, seed=v),
                ValueError, _invalid("seed") + ".*SeedGenerator", "seed"))
    # noise: shape, dtype, seed
    for name, fn in [("sample_gumbel", ops.sample_gumbel),
                     ("sample_logistic", ops.sample_logistic)]:
        for dtype in ["int32", "bool", "foo", "string"]:
            add(Bad(f"{name}-dtype={dtype}",
                    lambda f, fn=fn, d=dtype: fn((2,), dtype=d),
                    ValueError, _invalid("dtype")
                    + ".*floating-point dtype", "dtype"))
        add(Bad(f"{name}-seed='x'", lambda f, fn=fn: fn((2,), seed="x"),
                ValueError, _invalid("seed"), "seed"))
        for shape in [(-1, 2), (2.5,), None, "ab", [[2, 3]]]:
            add(Bad(f"{name}-shape={shape!r}",
                    lambda f, fn=fn, s=shape: fn(s),
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
                    lambda f, c=cls, v=value: c(temperature=v),
                    ValueError, _invalid("temperature") + ".*" + match,
                    "temperature"))
        # A finite float that float32 (the variable's dtype) cannot hold.
        add(Bad(f"{n}(temperature=1e39)",
                lambda f, c=cls: c(temperature=1e39),
                ValueError, r"`temperature`", "temperature"))
        for value in ["a", 1.5, True]:
            add(Bad(f"{n}(seed={value!r})",
                    lambda f, c=cls, v=value: c(seed=v),
                    ValueError, _invalid("seed") + ".*None or an integer",
                    "seed"))
        add(Bad(f"{n}(learn_temperature='yes')",
                lambda f, c=cls: c(learn_temperature="yes"),
                ValueError, _invalid("learn_temperature") + ".*a bool",
                "learn_temperature"))
        for value in ["argmax", None, "MODE"]:
            add(Bad(f"{n}(inference_mode={value!r})",
                    lambda f, c=cls, v=value: c(inference_mode=v),
                    ValueError, _invalid("inference_mode")
                    + r".*one of \('sample', 'mode', 'soft'\)",
                    "inference_mode"))
        add(Bad(f"{n}(tau=0.5)", lambda f, c=cls: c(tau=0.5),
                ValueError, r"Unrecognized keyword arguments.*'tau'", "tau",
                "keras"))
        add(Bad(f"{n}(dtype='foo')", lambda f, c=cls: c(dtype="foo"),
                ValueError, r"Cannot convert 'foo'", "foo", "keras"))
        # Calls.
        add(Bad(f"{n}-call-int", lambda f, c=cls: c()(X_INT),
                ValueError, INVALID_INPUT + r".*floating-point logits.*"
                "dtype=int32", "inputs"))
        add(Bad(f"{n}-call-bool-symbolic",
                lambda f, c=cls: c()(keras.Input((3,), dtype="bool")),
                ValueError, INVALID_INPUT + r".*dtype=bool", "inputs"))
        add(Bad(f"{n}-call-string",
                lambda f, c=cls: c()(tf.constant([["a"]])),
                ValueError, INVALID_INPUT + r".*dtype=string", "inputs"))
        add(Bad(f"{n}-call-scalar", lambda f, c=cls: c()(np.float32(1.0)),
                ValueError, INVALID_INPUT + r".*rank >= 1", "input"))
        add(Bad(f"{n}-call-None", lambda f, c=cls: c()(None),
                ValueError, r"`inputs`|inputs", "inputs"))
        add(Bad(f"{n}-call-dict", lambda f, c=cls: c()({"logits": X}),
                ValueError, r"`inputs`|inputs", "inputs"))
        # Assigning the temperature.
        for learn in (False, True):
            for value in [0.0, NAN, INF, -2.0, None, [0.5, 0.2],
                          tf.constant([0.5, 0.2])]:
                add(Bad(f"{n}(learn_temperature={learn}).temperature="
                        f"{value!r}"[:80],
                        lambda f, c=cls, v=value, lt=learn:
                            _set_temperature(c, v, lt),
                        ValueError, _invalid("temperature"), "temperature"))
            add(Bad(f"{n}(learn_temperature={learn}).temperature=1e39",
                    lambda f, c=cls, lt=learn: _set_temperature(c, 1e39, lt),
                    ValueError, r"`temperature`", "temperature"))
    for cls in CATEGORICAL:
        n = cls.__name__
        for value in [1.5, "x", None]:
            add(Bad(f"{n}(axis={value!r})",
                    lambda f, c=cls, v=value: c(axis=v),
                    ValueError, _invalid("axis") + ".*an integer", "axis"))
        add(Bad(f"{n}(axis=2)-call-rank-2", lambda f, c=cls: c(axis=2)(X),
                ValueError, _invalid("axis") + r".*\[-2, 2\).*axis=2",
                "axis"))
        add(Bad(f"{n}(axis=-3)-symbolic-rank-2",
                lambda f, c=cls: c(axis=-3)(keras.Input((3,))),
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
            ("update_every", [0, -5, 1.5, True, "10"]),
            ("schedule", ["cosine", 0.5]),
            ("layers", [[keras.layers.Dense(2)], ["gumbel"], "gumbel",
                        [GumbelSoftmax(learn_temperature=True)]]),
            ("verbose", [3, -1, "loud"])]:
        for value in values:
            add(Bad(f"TemperatureAnnealing({name}={value!r})"[:70],
                    lambda f, k=name, v=value: ta(**{k: v}),
                    ValueError, _invalid(name), name))
    # Not iterable: the message must still name `layers`.
    for value in [GumbelSoftmax(), 5]:
        add(Bad(f"TemperatureAnnealing(layers={type(value).__name__})",
                lambda f, v=value: ta(layers=v),
                ValueError, _invalid("layers"), "layers"))
    # Finite floats whose temperature float32 cannot hold (inf, or a
    # subnormal that the division overflows on).
    add(Bad("TemperatureAnnealing(initial=1e39)",
            lambda f: ta(initial=1e39), ValueError, _invalid("initial"),
            "initial"))
    add(Bad("TemperatureAnnealing(minimum=1e-45)",
            lambda f: ta(minimum=1e-45), ValueError, _invalid("minimum"),
            "minimum"))
    add(Bad("TemperatureAnnealing(temp=1)", lambda f: ta(temp=1),
            TypeError, r"unexpected keyword argument 'temp'", "temp",
            "caller"))
    add(Bad("temperature_at(-1)", lambda f: ta().temperature_at(-1),
            ValueError, _invalid("step") + r".*>= 0", "step"))
    for value in ["x", None]:
        add(Bad(f"temperature_at({value!r})",
                lambda f, v=value: ta().temperature_at(v),
                ValueError, _invalid("step"), "step"))
    for value in [-1.0, NAN, "a", None]:
        add(Bad(f"schedule-returns-{value!r}",
                lambda f, v=value: ta(
                    schedule=lambda step: v).temperature_at(0),
                ValueError, r"Invalid value returned by `schedule`",
                "schedule"))
    add(Bad("TemperatureAnnealing-model-without-layers",
            lambda f: _annealing_without_layers(), ValueError,
            r"found no Gumbel layer.*`layers=\[\.\.\.\]`", "layers"))
    return rows


def _dataset_rows():
    rows = []
    add = rows.append
    load = datasets.load_mnist
    for name, value, match in [
            ("source", "web", r"one of \('auto', 'tfds', 'idx'\)"),
            ("source", 1, "one of"),
            ("data_dir", 1.5, "None or a path to a folder"),
            ("tfds_data_dir", 3, "None or a path to a folder"),
            ("validation_size", -1, "non-negative integer"),
            ("validation_size", 1.5, "non-negative integer"),
            ("validation_size", True, "non-negative integer"),
            ("flatten", "yes", "a bool"),
            ("download", "no", "a bool")]:
        add(Bad(f"load_mnist({name}={value!r})",
                lambda f, k=name, v=value: load(**{k: v}),
                ValueError, _invalid(name) + ".*" + match, name))
    add(Bad("load_mnist(source='tfds', data_dir=...)",
            lambda f: load(source="tfds", data_dir=f.tiny),
            ValueError, _invalid("data_dir") + ".*source='tfds'",
            "data_dir"))
    add(Bad("load_mnist(validation_size=too large)",
            lambda f: load(data_dir=f.tiny, validation_size=12),
            ValueError, _invalid("validation_size") + r".*\[0, 12\)",
            "validation_size"))
    add(Bad("load_mnist(data_dir=missing)",
            lambda f: load(data_dir=f.missing),
            datasets.DataUnavailableError,
            r"idx \(data_dir\): .* is not a folder", "data_dir"))
    add(Bad("load_mnist(data_dir=empty folder)",
            lambda f: load(data_dir=f.empty_dir),
            datasets.DataUnavailableError, r"lacks train-images-idx3-ubyte",
            "data_dir"))
    add(Bad("load_mnist(data_dir=malformed file)",
            lambda f: load(data_dir=f.broken_dir),
            ValueError, r"Cannot read IDX file .*truncated",
            "train-images-idx3-ubyte"))
    add(Bad("load_mnist(foo=1)", lambda f: load(foo=1), TypeError,
            r"unexpected keyword argument 'foo'", "foo", "caller"))
    read = datasets.read_idx
    for value in [None, 3]:
        add(Bad(f"read_idx({value!r})", lambda f, v=value: read(v),
                ValueError, _invalid("path") + ".*path-like", "path"))
    add(Bad("read_idx(missing)", lambda f: read(f.missing),
            FileNotFoundError, r"No such file", "missing-file"))
    add(Bad("read_idx(folder)", lambda f: read(f.empty_dir),
            IsADirectoryError, r"Is a directory", "empty-dir"))
    for key, match in [
            ("empty", "fewer than the 4"), ("header", "truncated"),
            ("truncated", "truncated"), ("extra", "too many"),
            ("magic", "wrong magic number 0x12340803"),
            ("float", r"type code is 0x0D \(float\)"),
            ("gzip", "gzip data is corrupt")]:
        add(Bad(f"read_idx({key} file)",
                lambda f, k=key: read(getattr(f, k)),
                ValueError, r"Cannot read IDX file .*" + match,
                f"bad-{key}"))
    return rows


TABLE = _ops_rows() + _layer_rows() + _callback_rows() + _dataset_rows()


def _idx_bytes(array, type_code=0x08):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad IDX files and folders; paths named so that the row's argument
    (the path) is recognizable in the message."""
    root = tmp_path_factory.mktemp("bad-input")
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28))
    labels = np.arange(12) % 10
    good = _idx_bytes(images)
    contents = {
        "empty": b"", "header": good[:9], "truncated": good[:-5],
        "extra": good + b"\0", "magic": b"\x12\x34" + good[2:],
        "float": _idx_bytes(images, 0x0D),
        "gzip": gzip.compress(good)[:40],
    }
    paths = {}
    for key, data in contents.items():
        path = root / f"bad-{key}"
        path.write_bytes(data)
        paths[key] = str(path)
    tiny = root / "tiny"
    tiny.mkdir()
    for stem, array in [("train-images-idx3-ubyte", images),
                        ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", images[:6]),
                        ("t10k-labels-idx1-ubyte", labels[:6])]:
        (tiny / stem).write_bytes(_idx_bytes(array))
    broken = root / "broken"
    broken.mkdir()
    for stem in os.listdir(tiny):
        (broken / stem).write_bytes((tiny / stem).read_bytes())
    (broken / "train-images-idx3-ubyte").write_bytes(good[:-5])
    empty = root / "empty-dir"
    empty.mkdir()
    return types.SimpleNamespace(
        **paths, tiny=str(tiny), broken_dir=str(broken),
        empty_dir=str(empty), missing=str(root / "missing-file"))


def _origin_dir(where):
    return {"keras_gumbel": PACKAGE_DIR, "keras": KERAS_DIR}[where]


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_bad_input(row, files):
    with pytest.raises(row.error, match=row.match) as excinfo:
        row.call(files)
    message = str(excinfo.value)
    assert row.argument in message, (
        f"the message does not name `{row.argument}`: {message!r}")
    last = os.path.abspath(str(excinfo.traceback[-1].path))
    if row.where == "caller":
        assert last == THIS_FILE, last
    else:
        assert last.startswith(_origin_dir(row.where) + os.sep), (
            f"raised in {last}, not in {row.where}")


def test_table_covers_every_public_callable():
    """Each op, layer, the callback and the loader has rows."""
    ids = " ".join(row.id for row in TABLE)
    for name in ["gumbel_softmax", "gumbel_sigmoid", "sample_gumbel",
                 "sample_logistic", "kl_categorical_uniform",
                 "kl_bernoulli_uniform", "softmax_mode", "sigmoid_mode",
                 "tempered_softmax", "tempered_sigmoid", "GumbelSoftmax(",
                 "STGumbel(", "GumbelSigmoid(", "STGumbelSigmoid(",
                 "TemperatureAnnealing(", "load_mnist(", "read_idx("]:
        assert name in ids, name
    assert len({row.id for row in TABLE}) == len(TABLE), "duplicate ids"


# --------------------------------------------------------------------------
# No NaN in silence.
# --------------------------------------------------------------------------


def _layer_with_temperature(value, cls=GumbelSoftmax, **kwargs):
    layer = cls(seed=0, **kwargs)
    layer.temperature = value
    return layer


def _xla(fn):
    return tf.function(fn, jit_compile=True)


XLA_DROPS_CHECK = pytest.mark.xfail(
    strict=True, reason="documented in the README: XLA drops the run-time "
    "check of a temperature tensor")

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
    # +inf logits (a certain class): NaN instead of the one-hot.
    ("gumbel_softmax-+inf-logit", lambda: ops.gumbel_softmax(PLUS_INF)),
    ("tempered_softmax-+inf-logit", lambda: ops.tempered_softmax(PLUS_INF)),
    ("kl_categorical_uniform-+inf-logit",
     lambda: ops.kl_categorical_uniform(PLUS_INF)),
    ("GumbelSoftmax(inference_mode='soft')-+inf-logit",
     lambda: GumbelSoftmax(inference_mode="soft")(PLUS_INF)),
    # NaN logits: NaN samples, while softmax_mode picks a class as if the
    # NaN were not there.
    ("gumbel_softmax-nan-logit", lambda: ops.gumbel_softmax(WITH_NAN)),
    ("gumbel_sigmoid-nan-logit", lambda: ops.gumbel_sigmoid(WITH_NAN)),
    ("kl_bernoulli_uniform-nan-logit",
     lambda: ops.kl_bernoulli_uniform(WITH_NAN)),
    ("GumbelSoftmax-nan-logit",
     lambda: GumbelSoftmax(seed=0)(WITH_NAN, training=True)),
    # A row of only -inf logits has no sample: an error when eager (in a
    # compiled function it gives NaN, as the README says).
    ("gumbel_softmax-all--inf-row", lambda: ops.gumbel_softmax(ALL_MASKED)),
    ("kl_categorical_uniform-all--inf-row",
     lambda: ops.kl_categorical_uniform(ALL_MASKED)),
    pytest.param("xla-temperature-tensor-0",
                 lambda: _xla(ops.gumbel_softmax)(
                     tf.constant(X), tf.constant(0.0)),
                 marks=XLA_DROPS_CHECK),
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
    values = tf.cast(out, tf.float64).numpy()
    assert np.all(np.isfinite(values)), f"{name} gave {values}"


def test_bad_temperature_tensor_in_tf_function_is_named():
    """Inside a `tf.function` a temperature tensor can only be checked when
    it runs: the error is TensorFlow's InvalidArgumentError, raised where
    the function runs, and its message names the argument."""
    fn = tf.function(ops.gumbel_softmax)
    for value in [0.0, -1.0, NAN]:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"argument `temperature`"):
            fn(tf.constant(X), tf.constant(value))
    np.testing.assert_allclose(
        fn(tf.constant(X), tf.constant(0.5)).numpy().sum(axis=-1), 1.0,
        rtol=1e-6)
