"""Tests of the four Gumbel layers: construction, calling, inference modes,
seeds, learned temperatures, saving, masking, mixed precision, compiled and
distributed training, and export.

They run on every Keras backend, except the few marked `tf_only`: the
SavedModel export and `tf.distribute`."""

import math
import warnings

import keras
import numpy as np
import pytest

import keras_gumbel
from _helpers import ALL_LAYERS
from _helpers import BACKEND
from _helpers import CATEGORICAL
from _helpers import SOFT_LAYERS
from _helpers import STRAIGHT_THROUGH
from _helpers import CountTraces
from _helpers import as_float64
from _helpers import assert_valid_sample
from _helpers import dtype_of
from _helpers import needs_float64
from _helpers import random_logits
from _helpers import regression_data
from _helpers import tensor
from _helpers import tf_only
from _helpers import value_and_grads
from _helpers import value_and_grads_with_variables
from keras_gumbel import GumbelSoftmax
from keras_gumbel import STGumbel
from keras_gumbel import STGumbelSigmoid

INFERENCE_MODES = ["sample", "mode", "soft"]
layer_classes = pytest.mark.parametrize(
    "cls", ALL_LAYERS, ids=lambda c: c.__name__)
soft_layer_classes = pytest.mark.parametrize(
    "cls", SOFT_LAYERS, ids=lambda c: c.__name__)
# (class, learn_temperature): every class with a fixed temperature, the soft
# ones with a learned one too.
TEMPERATURE_KINDS = pytest.mark.parametrize(
    "cls, learn_temperature",
    [(cls, False) for cls in ALL_LAYERS]
    + [(cls, True) for cls in SOFT_LAYERS],
    ids=lambda v: v.__name__ if isinstance(v, type) else f"learn={v}")
# The `jit_compile` values of a compiled `fit` or `predict`: XLA and the
# default on TensorFlow and JAX. PyTorch runs eagerly by default ("auto");
# its `jit_compile=True` (`torch.compile`) takes about a minute per model on
# a CPU and is left out.
JIT_COMPILE = [True, "auto"] if BACKEND != "torch" else ["auto"]
# Whether a compiled `fit` traces the model's `call` (then a retrace shows
# in `CountTraces`); PyTorch runs it eagerly at every step.
TRACES = BACKEND != "torch"


def _logits(shape=(16, 5), seed=0, scale=2.0):
    return random_logits(shape, seed, scale).astype("float32")


def _expected_mode(cls, x, axis=-1):
    """The most likely outcome, in NumPy: one-hot of the argmax along `axis`
    (categorical) or `x > 0` (binary)."""
    if cls in CATEGORICAL:
        depth = x.shape[axis]
        one_hot = np.eye(depth, dtype="float32")[np.argmax(x, axis=axis)]
        return np.moveaxis(one_hot, -1, axis)
    return (x > 0).astype("float32")


def _expected_soft(cls, x, tau, axis=-1):
    """The noiseless relaxation, in NumPy (float64)."""
    z = np.asarray(x, "float64") / tau
    if cls in CATEGORICAL:
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


class SubclassedModel(keras.Model):
    def __init__(self, gumbel, **kwargs):
        super().__init__(**kwargs)
        self.logits = keras.layers.Dense(5)
        self.gumbel = gumbel
        self.head = keras.layers.Dense(1)

    def call(self, inputs, training=None):
        return self.head(self.gumbel(self.logits(inputs), training=training))


def _make_model(kind, gumbel):
    """A small model of `kind`, its first Dense (the logits) and the layer."""
    if kind == "sequential":
        logits = keras.layers.Dense(5)
        model = keras.Sequential(
            [keras.Input((4,)), logits, gumbel, keras.layers.Dense(1)])
    elif kind == "functional":
        logits = keras.layers.Dense(5)
        inputs = keras.Input((4,))
        outputs = keras.layers.Dense(1)(gumbel(logits(inputs)))
        model = keras.Model(inputs, outputs)
    else:
        model = SubclassedModel(gumbel)
        logits = model.logits
    return model, logits


def _regression_data(n=32):
    return regression_data(n, seed=1)


# --------------------------------------------------------------------------
# Construction, config, calling.
# --------------------------------------------------------------------------


@TEMPERATURE_KINDS
def test_config_round_trip(cls, learn_temperature):
    kwargs = dict(temperature=0.5, seed=7, inference_mode="soft",
                  learn_temperature=learn_temperature, name="gumbel")
    if cls in CATEGORICAL:
        kwargs["axis"] = 1
    layer = cls(**kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert clone.temperature == pytest.approx(0.5)


@layer_classes
def test_serialize_round_trip_without_custom_objects(cls):
    layer = cls(temperature=0.4, seed=3, inference_mode="mode")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls
    assert restored.get_config() == layer.get_config()


@layer_classes
def test_symbolic_call_keeps_shape(cls):
    inputs = keras.Input((3, 5))
    outputs = cls()(inputs)
    assert tuple(outputs.shape) == (None, 3, 5)
    assert outputs.dtype == "float32"


@layer_classes
@pytest.mark.parametrize("training", [True, False])
def test_eager_call_keeps_shape_and_gives_a_sample(cls, training):
    x = _logits((2, 3, 5))
    y = cls(seed=0)(x, training=training)
    assert tuple(y.shape) == (2, 3, 5)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert_valid_sample(cls, y)


@needs_float64
@layer_classes
@pytest.mark.parametrize("inference_mode", INFERENCE_MODES)
def test_float64_layer(cls, inference_mode):
    layer = cls(dtype="float64", inference_mode=inference_mode, seed=0)
    x = _logits((8, 5)).astype("float64")
    for training in (True, False):
        y = layer(x, training=training)
        assert keras.backend.standardize_dtype(y.dtype) == "float64"
        assert_valid_sample(cls, y, hard=(cls in STRAIGHT_THROUGH and (
            training or inference_mode == "sample"))
            or (not training and inference_mode == "mode"))
    assert keras.backend.standardize_dtype(
        layer.temperature_variable.dtype) == "float32"


@layer_classes
def test_default_temperature_and_mode(cls):
    layer = cls()
    assert layer.temperature == 1.0
    assert layer.inference_mode == "sample"
    assert layer.learn_temperature is False
    assert keras.backend.standardize_dtype(
        layer.temperature_variable.dtype) == "float32"


# --------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------


@pytest.mark.slow
@layer_classes
@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_fit_one_step_in_each_kind_of_model(cls, kind):
    model, logits = _make_model(kind, cls(seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = _regression_data(32)
    model(x[:1])  # builds every kind of model
    kernel_before = _numpy(logits.kernel).copy()
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert int(_numpy(model.optimizer.iterations)) == 1
    assert np.isfinite(history.history["loss"][0])
    # The gradient reached the logits through the Gumbel layer (the
    # straight-through layers included).
    assert not np.allclose(_numpy(logits.kernel), kernel_before)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


@pytest.mark.slow
@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch's jit_compile=True "
                    "is torch.compile, about a minute per model on a CPU; "
                    "PyTorch trains eagerly by default (the other tests)")
@layer_classes
def test_fit_with_jit_compile(cls):
    model, logits = _make_model("functional", cls(seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  jit_compile=True)
    x, y = _regression_data(64)
    kernel_before = _numpy(logits.kernel).copy()
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert model.jit_compile is True
    assert int(_numpy(model.optimizer.iterations)) == 2
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(_numpy(logits.kernel), kernel_before)


@pytest.mark.slow
@layer_classes
def test_fit_with_annealing_in_the_default_compilation(cls):
    """A functional model trained with `fit` as the backend compiles it by
    default (`tf.function` on TensorFlow, XLA on JAX, eager on PyTorch),
    the temperature annealed along the way."""
    model, logits = _make_model("functional", cls(seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    gumbel = keras_gumbel.find_gumbel_layers(model)[0]
    callback = keras_gumbel.TemperatureAnnealing(
        rate=0.1, minimum=0.05, update_every=2)
    x, y = _regression_data(64)
    kernel_before = _numpy(logits.kernel).copy()
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                        callbacks=[callback])
    assert int(_numpy(model.optimizer.iterations)) == 8
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(_numpy(logits.kernel), kernel_before)
    # Epoch ends at steps 4 and 8 log the temperature of steps 3 and 7.
    assert history.history["temperature"] == pytest.approx(
        [math.exp(-0.2), math.exp(-0.6)])
    assert gumbel.temperature == pytest.approx(math.exp(-0.8), rel=1e-6)


def _zero_logits_model(cls, temperature, jit_compile):
    """A model with no weights: zero logits through a trace counter and a
    soft Gumbel layer. With zero logits the sample is `sigmoid(l / tau)`
    (or a softmax over 2 classes of Gumbel noise over tau), so the L1
    distance to 0.5 is about 0 at tau=100 and about 0.5 at tau=0.01."""
    shape = (8, 2) if cls in CATEGORICAL else (8,)
    inputs = keras.Input(shape)
    counter = CountTraces()
    gumbel = cls(temperature=temperature, seed=0)
    model = keras.Model(inputs, gumbel(counter(inputs)))
    model.compile(optimizer="sgd", loss="mae", jit_compile=jit_compile)
    x = np.zeros((64,) + shape, "float32")
    y = np.full((64,) + shape, 0.5, "float32")
    return model, gumbel, counter, x, y


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The model does not have any trainable")
@pytest.mark.parametrize("cls", SOFT_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("jit_compile", JIT_COMPILE)
def test_compiled_fit_reads_new_temperature_without_retracing(
        cls, jit_compile):
    model, gumbel, counter, x, y = _zero_logits_model(cls, 100.0, jit_compile)
    hot = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    traces = counter.traces
    gumbel.temperature = 0.01
    cold = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    if TRACES:
        assert counter.traces == traces  # the same compiled function ran
    assert hot.history["loss"][0] < 0.05
    assert cold.history["loss"][0] > 0.4


@pytest.mark.slow
@layer_classes
@pytest.mark.parametrize("jit_compile", JIT_COMPILE)
def test_compiled_predict_reads_new_temperature_without_retracing(
        cls, jit_compile):
    shape = (5,)
    inputs = keras.Input(shape)
    counter = CountTraces()
    gumbel = cls(temperature=1.0, inference_mode="soft")
    model = keras.Model(inputs, gumbel(counter(inputs)))
    model.compile(loss="mse", jit_compile=jit_compile)
    x = _logits((32, 5))
    first = model.predict(x, batch_size=32, verbose=0)
    np.testing.assert_allclose(first, _expected_soft(cls, x, 1.0), atol=1e-5)
    traces = counter.traces
    gumbel.temperature = 0.25
    second = model.predict(x, batch_size=32, verbose=0)
    if TRACES:
        assert counter.traces == traces
    np.testing.assert_allclose(second, _expected_soft(cls, x, 0.25),
                               atol=1e-5)
    # evaluate reads it too: the MSE to the tau=0.25 output is zero.
    gumbel.temperature = 1.0
    loss_far = model.evaluate(x, second, batch_size=32, verbose=0)
    gumbel.temperature = 0.25
    loss_near = model.evaluate(x, second, batch_size=32, verbose=0)
    assert loss_near < 1e-10 < loss_far


# --------------------------------------------------------------------------
# Saving and exporting.
# --------------------------------------------------------------------------


@pytest.mark.slow
@TEMPERATURE_KINDS
@pytest.mark.parametrize("inference_mode", ["mode", "soft"])
def test_save_and_load_keras_file(cls, inference_mode, learn_temperature,
                                  tmp_path):
    inputs = keras.Input((6,))
    gumbel = cls(seed=1, inference_mode=inference_mode,
                 learn_temperature=learn_temperature, name="gumbel")
    model = keras.Model(inputs, gumbel(keras.layers.Dense(4)(inputs)))
    gumbel.temperature = 0.3
    x = _logits((8, 6))
    expected = model.predict(x, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path)  # no custom_objects

    layer = loaded.get_layer("gumbel")
    assert type(layer) is cls
    assert layer.inference_mode == inference_mode
    assert layer.learn_temperature is learn_temperature
    assert layer.temperature == pytest.approx(0.3, rel=1e-6)
    assert layer.get_config() == gumbel.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected,
                               atol=1e-6)


def _export(cls, inference_mode, tmp_path):
    """A small model around `cls`, exported and loaded back as a SavedModel."""
    import tensorflow as tf

    inputs = keras.Input((4,))
    gumbel = cls(seed=0, inference_mode=inference_mode)
    model = keras.Model(inputs, gumbel(keras.layers.Dense(5)(inputs)))
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    return model, tf.saved_model.load(path)


@pytest.mark.slow
@tf_only  # a TensorFlow SavedModel, served by `tf.saved_model.load`
@layer_classes
def test_export_serves_mode_deterministically(cls, tmp_path):
    model, served = _export(cls, "mode", tmp_path)
    x = _logits((16, 4))
    first = served.serve(x).numpy()
    assert first.shape == (16, 5)
    np.testing.assert_array_equal(served.serve(x).numpy(), first)
    np.testing.assert_array_equal(first, model.predict(x, verbose=0))


@pytest.mark.slow
@tf_only  # a TensorFlow SavedModel, served by `tf.saved_model.load`
@pytest.mark.parametrize("cls", [GumbelSoftmax, STGumbelSigmoid],
                         ids=lambda c: c.__name__)
def test_export_serves_samples(cls, tmp_path):
    _, served = _export(cls, "sample", tmp_path)
    x = _logits((16, 4))
    first = served.serve(x)
    assert tuple(first.shape) == (16, 5)
    assert_valid_sample(cls, first)
    assert not np.array_equal(served.serve(x).numpy(), first.numpy())


# --------------------------------------------------------------------------
# Mixed precision.
# --------------------------------------------------------------------------


@layer_classes
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("path", ["training", "sample", "mode", "soft"])
def test_mixed_precision(cls, policy, path):
    keras.mixed_precision.set_dtype_policy(policy)
    compute = policy.split("_")[1]
    inference_mode = "sample" if path == "training" else path
    layer = cls(temperature=0.5, seed=0, inference_mode=inference_mode)
    x = _logits((16, 5))
    y = layer(x, training=path == "training")
    assert keras.backend.standardize_dtype(y.dtype) == compute
    assert keras.backend.standardize_dtype(
        layer.temperature_variable.dtype) == "float32"
    assert dtype_of(layer.temperature_tensor()) == "float32"
    assert layer.temperature == 0.5
    atol = 2e-3 if compute == "float16" else 2e-2
    hard = (cls in STRAIGHT_THROUGH and path != "soft") or path == "mode"
    assert_valid_sample(cls, y, atol=atol, hard=hard)
    if path == "mode":
        np.testing.assert_array_equal(as_float64(y), _expected_mode(cls, x))
    if path == "soft":
        np.testing.assert_allclose(as_float64(y), _expected_soft(cls, x, 0.5),
                                   atol=atol)


@pytest.mark.slow
@soft_layer_classes
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_fit_with_learned_temperature(cls, policy):
    keras.mixed_precision.set_dtype_policy(policy)
    gumbel = cls(seed=0, learn_temperature=True)
    model, _ = _make_model("functional", gumbel)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = _regression_data(64)
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert keras.backend.standardize_dtype(
        gumbel.temperature_variable.dtype) == "float32"
    assert math.isfinite(gumbel.temperature)
    assert gumbel.temperature != 1.0


# --------------------------------------------------------------------------
# Inference modes.
# --------------------------------------------------------------------------


@layer_classes
@pytest.mark.parametrize("inference_mode", INFERENCE_MODES)
def test_training_always_samples(cls, inference_mode):
    layer = cls(temperature=0.5, seed=0, inference_mode=inference_mode)
    x = np.zeros((64, 5), "float32")  # every outcome equally likely
    first = as_float64(layer(x, training=True))
    second = as_float64(layer(x, training=True))
    assert_valid_sample(cls, first)
    assert not np.array_equal(first, second)


@layer_classes
def test_inference_sample_draws(cls):
    layer = cls(seed=0, inference_mode="sample")
    x = np.zeros((64, 5), "float32")
    first = as_float64(layer(x, training=False))
    second = as_float64(layer(x))  # training=None: inference too
    assert_valid_sample(cls, first)
    assert_valid_sample(cls, second)
    assert not np.array_equal(first, second)


@layer_classes
@pytest.mark.parametrize("training", [False, None])
def test_inference_mode_gives_most_likely_outcome(cls, training):
    layer = cls(seed=0, inference_mode="mode")
    x = _logits((16, 5))
    y = as_float64(layer(x, training=training))
    np.testing.assert_array_equal(y, _expected_mode(cls, x))
    np.testing.assert_array_equal(as_float64(layer(x, training=training)), y)


@layer_classes
def test_inference_soft_is_tempered_relaxation(cls):
    layer = cls(temperature=0.7, seed=0, inference_mode="soft")
    x = _logits((16, 5))
    np.testing.assert_allclose(as_float64(layer(x, training=False)),
                               _expected_soft(cls, x, 0.7), atol=1e-6)
    layer.temperature = 2.5
    np.testing.assert_allclose(as_float64(layer(x)),
                               _expected_soft(cls, x, 2.5), atol=1e-6)


@pytest.mark.parametrize("cls", STRAIGHT_THROUGH, ids=lambda c: c.__name__)
def test_straight_through_forward_is_exact(cls):
    layer = cls(temperature=5.0, seed=0)
    y = as_float64(layer(_logits((64, 5)), training=True))
    assert set(np.unique(y)) == {0.0, 1.0}
    if cls is STGumbel:
        np.testing.assert_array_equal(y.sum(axis=-1), 1.0)


@pytest.mark.parametrize("cls", STRAIGHT_THROUGH, ids=lambda c: c.__name__)
def test_straight_through_gradient_is_not_zero(cls):
    layer = cls(temperature=1.0, seed=0)
    weights = tensor(_logits((8, 5), seed=1))
    _, (grad,) = value_and_grads(
        lambda x: layer(x, training=True) * weights, _logits((8, 5)))
    assert grad is not None
    grad = as_float64(grad)
    assert np.all(np.isfinite(grad))
    assert np.any(grad != 0)


# --------------------------------------------------------------------------
# Seeds.
# --------------------------------------------------------------------------


@layer_classes
def test_same_seed_same_samples(cls):
    x = _logits((32, 5))
    a, b = cls(seed=42), cls(seed=42)
    for _ in range(2):  # the two layers stay in step, call after call
        np.testing.assert_array_equal(as_float64(a(x, training=True)),
                                      as_float64(b(x, training=True)))


@layer_classes
def test_different_seeds_and_successive_calls_differ(cls):
    x = np.zeros((64, 5), "float32")
    a, b = cls(seed=1), cls(seed=2)
    first = as_float64(a(x, training=True))
    assert not np.array_equal(first, as_float64(b(x, training=True)))
    assert not np.array_equal(first, as_float64(a(x, training=True)))


@layer_classes
def test_seed_none(cls):
    layer = cls(seed=None)
    assert layer.get_config()["seed"] is None
    x = np.zeros((64, 5), "float32")
    first = layer(x, training=True)
    assert_valid_sample(cls, first)
    assert not np.array_equal(as_float64(first),
                              as_float64(layer(x, training=True)))


# --------------------------------------------------------------------------
# Temperature.
# --------------------------------------------------------------------------


@layer_classes
def test_fixed_temperature_is_not_trainable(cls):
    layer = cls(temperature=0.8)
    variable = layer.temperature_variable
    assert not any(w is variable for w in layer.trainable_weights)
    assert any(w is variable for w in layer.non_trainable_weights)
    layer.temperature = 0.7
    assert layer.temperature == pytest.approx(0.7)
    assert float(_numpy(variable)) == pytest.approx(0.7)


@soft_layer_classes
def test_learned_temperature_is_a_trainable_weight(cls):
    layer = cls(temperature=0.8, learn_temperature=True)
    variable = layer.temperature_variable
    assert any(w is variable for w in layer.trainable_weights)
    assert layer.temperature == pytest.approx(0.8)
    layer.temperature = 0.7
    assert layer.temperature == pytest.approx(0.7)
    assert float(_numpy(layer.temperature_tensor())) == pytest.approx(0.7)


@pytest.mark.slow
@soft_layer_classes
def test_learned_temperature_changes_in_fit(cls):
    shape = (8, 2) if cls in CATEGORICAL else (8,)
    inputs = keras.Input(shape)
    gumbel = cls(temperature=1.0, seed=0, learn_temperature=True)
    model = keras.Model(inputs, gumbel(inputs))
    # The target 0.5 is reached by a larger temperature.
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    x = np.zeros((64,) + shape, "float32")
    y = np.full((64,) + shape, 0.5, "float32")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    tau = gumbel.temperature
    assert math.isfinite(tau)
    assert abs(tau - 1.0) > 1e-3


@soft_layer_classes
def test_temperature_gradient_is_finite(cls):
    layer = cls(temperature=0.05, seed=0, learn_temperature=True)
    x = _logits((8, 5), scale=30.0)
    weights = tensor(_logits((8, 5), seed=3))
    layer.build(x.shape)
    _, _, (grad,) = value_and_grads_with_variables(
        lambda: layer(x, training=True) * weights,
        [layer.temperature_variable])
    assert grad is not None and np.isfinite(as_float64(grad))


# --------------------------------------------------------------------------
# axis.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [1, -2])
def test_gumbel_softmax_axis(axis):
    x = _logits((4, 6, 3))
    y = as_float64(GumbelSoftmax(axis=axis, seed=0)(x, training=True))
    assert y.shape == (4, 6, 3)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    # Rows along the last axis are not normalized.
    assert not np.allclose(y.sum(axis=-1), 1.0, atol=1e-3)


@pytest.mark.parametrize("axis", [1, -2])
def test_st_gumbel_axis_one_hot(axis):
    x = _logits((4, 6, 3))
    y = as_float64(STGumbel(axis=axis, seed=0)(x, training=True))
    assert set(np.unique(y)) == {0.0, 1.0}
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)


@pytest.mark.parametrize("cls", CATEGORICAL, ids=lambda c: c.__name__)
def test_axis_in_inference_modes(cls):
    x = _logits((4, 6, 3))
    mode = as_float64(cls(axis=1, inference_mode="mode")(x))
    np.testing.assert_array_equal(mode, _expected_mode(cls, x, axis=1))
    soft = as_float64(
        cls(axis=1, temperature=0.5, inference_mode="soft")(x))
    np.testing.assert_allclose(soft, _expected_soft(cls, x, 0.5, axis=1),
                               atol=1e-6)


@pytest.mark.parametrize("cls", CATEGORICAL, ids=lambda c: c.__name__)
def test_axis_symbolic(cls):
    outputs = cls(axis=1)(keras.Input((6, 3)))
    assert tuple(outputs.shape) == (None, 6, 3)


# --------------------------------------------------------------------------
# Masking, and layers inside other layers.
# --------------------------------------------------------------------------


@layer_classes
def test_mask_passes_through(cls):
    """A Keras mask reaches the layers after a Gumbel layer: the pooling
    averages only the unmasked time steps (zero logits mark the masked
    ones, which would otherwise add the mode of zero logits)."""
    inputs = keras.Input((6, 5))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    outputs = keras.layers.GlobalAveragePooling1D()(
        cls(inference_mode="mode")(masked))
    model = keras.Model(inputs, outputs)
    x = _logits((4, 6, 5))
    keep = np.ones((4, 6), bool)
    keep[0, 4:] = keep[1, 1:] = keep[3, :3] = False
    x[~keep] = 0.0
    mode = _expected_mode(cls, x)
    expected = (mode * keep[..., None]).sum(axis=1) / keep.sum(
        axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected,
                               atol=1e-6)
    mask = cls().compute_mask(tensor(x), tensor(keep))
    np.testing.assert_array_equal(_numpy(mask), keep)


class _Wrapper(keras.layers.Layer):
    """A custom layer calling a Dense and a Gumbel layer, with no `build`:
    Keras builds it by tracing `call` with an unknown batch size."""

    def __init__(self, gumbel, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(5)
        self.gumbel = gumbel

    def call(self, inputs, training=None):
        return self.gumbel(self.dense(inputs), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (5,)


@layer_classes
def test_inside_a_custom_layer_built_by_tracing(cls):
    """Keras traces the wrapper's `call` to build it, with a symbolic batch
    size on JAX: the Gumbel layer must trace too (no "unbuilt state"
    warning), so that the Dense is built with the model."""
    wrapper = _Wrapper(cls(seed=0, temperature=0.5, inference_mode="soft"))
    inputs = keras.Input((4,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.Model(inputs, wrapper(inputs))
    unbuilt = [str(w.message) for w in caught
               if "unbuilt state" in str(w.message)]
    assert not unbuilt, unbuilt[0]
    assert wrapper.dense.built
    assert len(model.trainable_weights) == 2
    x = _logits((8, 4))
    y = model.predict(x, verbose=0)
    kernel, bias = (_numpy(w) for w in wrapper.dense.weights)
    np.testing.assert_allclose(y, _expected_soft(cls, x @ kernel + bias, 0.5),
                               atol=1e-6)


# --------------------------------------------------------------------------
# Arguments. (Bad ones: tests/test_bad_input.py.)
# --------------------------------------------------------------------------


@layer_classes
@pytest.mark.parametrize("value", [2, np.float32(0.25), np.float64(3.0)],
                         ids=repr)
def test_numeric_temperature_types(cls, value):
    layer = cls(temperature=value)
    assert layer.temperature == pytest.approx(float(value))
    layer.temperature = value
    assert layer.temperature == pytest.approx(float(value))


@TEMPERATURE_KINDS
def test_bad_temperature_assignment_keeps_the_temperature(
        cls, learn_temperature):
    layer = cls(temperature=0.5, learn_temperature=learn_temperature)
    with pytest.raises(ValueError, match="`temperature`"):
        layer.temperature = -1.0
    assert layer.temperature == pytest.approx(0.5)


@keras.saving.register_keras_serializable(package="keras_gumbel_tests")
class _TemperedSoftmaxSampler(keras_gumbel.layers.GumbelLayer):
    """A new layer on the base class: it only says which op it calls."""

    def sample(self, inputs, temperature):
        return keras_gumbel.ops.tempered_softmax(inputs, temperature)


def test_a_subclass_only_says_which_op_it_calls():
    layer = _TemperedSoftmaxSampler(temperature=0.5, seed=0)
    x = _logits((4, 5))
    np.testing.assert_allclose(as_float64(layer(x, training=True)),
                               _expected_soft(GumbelSoftmax, x, 0.5),
                               atol=1e-6)
    layer.temperature = 2.0
    np.testing.assert_allclose(as_float64(layer(x)),
                               _expected_soft(GumbelSoftmax, x, 2.0),
                               atol=1e-6)
    outputs = layer(keras.Input((5,)))
    assert tuple(outputs.shape) == (None, 5)
    clone = _TemperedSoftmaxSampler.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((5,)), layer])
    assert keras_gumbel.find_gumbel_layers(model) == [layer]


# --------------------------------------------------------------------------
# Distribution and the annealing callback.
# --------------------------------------------------------------------------


@pytest.mark.slow
@tf_only  # tf.distribute (JAX's DataParallel: tests/test_training.py)
@layer_classes
def test_mirrored_strategy_annealing_reaches_every_replica(cls):
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        gumbel = cls(seed=0)
        model, _ = _make_model("functional", gumbel)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    # 64 examples in batches of 16: 4 steps an epoch, 8 in all. The
    # temperature changes every 3 steps; the last change is at step 6, so
    # the value after fit is unambiguous (steps 6, 7 and 8 share it).
    callback = keras_gumbel.TemperatureAnnealing(
        rate=0.2, update_every=3, minimum=0.01)
    x, y = _regression_data(64)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    step = int(_numpy(model.optimizer.iterations))
    assert step == 8
    expected = callback.temperature_at(step)
    assert expected == pytest.approx(math.exp(-1.2))

    per_replica = strategy.run(gumbel.temperature_tensor)
    values = [float(v) for v in
              strategy.experimental_local_results(per_replica)]
    assert len(values) == 2
    assert values == pytest.approx([expected] * 2, rel=1e-6)
    assert gumbel.temperature == pytest.approx(expected, rel=1e-6)
