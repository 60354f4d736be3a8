"""Tests of `keras_gumbel.TemperatureAnnealing` and `find_gumbel_layers`."""

import csv
import json
import math

import keras
import numpy as np
import pytest

from _helpers import ALL_LAYERS
from _helpers import BACKEND
from _helpers import CountTraces
from _helpers import regression_data
from keras_gumbel import GumbelSigmoid
from keras_gumbel import GumbelSoftmax
from keras_gumbel import STGumbel
from keras_gumbel import STGumbelSigmoid
from keras_gumbel import TemperatureAnnealing
from keras_gumbel import find_gumbel_layers


def _model(gumbel=None, learning_rate=0.1, **compile_kwargs):
    """Input(4) -> Dense(3) -> Gumbel layer -> Dense(1), compiled."""
    gumbel = gumbel if gumbel is not None else GumbelSoftmax(seed=0)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1)(gumbel(keras.layers.Dense(3)(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse",
                  **compile_kwargs)
    return model, gumbel


def _iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


# The `jit_compile` values of a compiled `fit`: XLA and the default on
# TensorFlow and JAX. PyTorch trains eagerly by default ("auto"), so nothing
# is traced there; its `jit_compile=True` (`torch.compile`) takes about a
# minute per model on a CPU and is left out.
JIT_COMPILE = [True, "auto"] if BACKEND != "torch" else ["auto"]


def _harmonic(step):
    """A schedule that changes at every step."""
    return 1.0 / (1.0 + step)


class _Recorder(keras.callbacks.Callback):
    """Records, at each batch, the optimizer step, the temperature the layer
    holds when the batch begins and the logged temperature when it ends.
    Put it after `TemperatureAnnealing` in the callback list."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.begins, self.ends = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begins.append((_iterations(self.model), self.layer.temperature))

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append((_iterations(self.model), logs["temperature"],
                          self.layer.temperature))


class _GumbelBlock(keras.layers.Layer):
    """A custom layer holding Gumbel layers in an attribute, a list, a dict
    and (the same layer again) a tuple."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3)
        self.gumbel = GumbelSigmoid(seed=1, name="block_gumbel")
        self.in_list = [STGumbelSigmoid(seed=2, name="block_list")]
        self.in_dict = {"st": STGumbel(seed=3, name="block_dict")}
        self.again = (self.gumbel,)

    def call(self, inputs):
        h = self.dense(inputs)
        return (self.gumbel(h) + self.in_list[0](h)
                + self.in_dict["st"](h))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (3,)


def _nested_model():
    """A Gumbel layer in an inner model, three in a custom layer."""
    inner_inputs = keras.Input((3,))
    inner_gumbel = GumbelSoftmax(seed=0, name="inner_gumbel")
    inner = keras.Model(inner_inputs, inner_gumbel(inner_inputs),
                        name="inner")
    block = _GumbelBlock(name="block")
    inputs = keras.Input((4,))
    h = inner(keras.layers.Dense(3)(inputs))
    outputs = keras.layers.Dense(1)(block(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    expected = [inner_gumbel, block.gumbel, block.in_list[0],
                block.in_dict["st"]]
    return model, expected


# --------------------------------------------------------------------------
# The schedule.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("step, expected", [
    (0, 1.0),
    (1, 1.0),
    (999, 1.0),
    (1000, 0.9704455335485082),   # exp(-0.03)
    (1999, 0.9704455335485082),
    (2500, 0.9417645335842487),   # exp(-0.06)
    (23999, 0.5015760690660556),  # exp(-0.69), just above the floor
    (24000, 0.5),                 # exp(-0.72) = 0.4868 < 0.5
    (10**6, 0.5),
])
def test_default_schedule(step, expected):
    callback = TemperatureAnnealing()
    assert callback.update_every == 1000
    assert callback.temperature_at(step) == pytest.approx(expected, rel=1e-12)
    assert isinstance(callback.temperature_at(step), float)


@pytest.mark.parametrize("step, expected", [
    (0, 2.0),
    (1, 2.0),
    (3, 1.6374615061559636),   # 2 exp(-0.1 * 2)
    (5, 1.3406400920712787),   # 2 exp(-0.1 * 4)
    (7, 1.0976232721880528),   # 2 exp(-0.1 * 6)
    (100, 0.2),                # 2 exp(-10) < 0.2
])
def test_custom_arguments(step, expected):
    callback = TemperatureAnnealing(initial=2.0, rate=0.1, minimum=0.2,
                                    update_every=2)
    assert callback.temperature_at(step) == pytest.approx(expected, rel=1e-12)


def test_zero_rate_is_constant():
    callback = TemperatureAnnealing(initial=0.8, rate=0, update_every=1)
    assert [callback.temperature_at(s) for s in (0, 1, 10**9)] == [0.8] * 3


def test_custom_schedule_updates_every_step_by_default():
    calls = []

    def schedule(step):
        calls.append(step)
        return 1.0 / (1.0 + step)

    callback = TemperatureAnnealing(schedule=schedule)
    assert callback.update_every == 1
    assert callback.temperature_at(5) == pytest.approx(1 / 6)
    assert callback.temperature_at(0) == 1.0
    assert calls == [5, 0]


def test_custom_schedule_with_update_every():
    calls = []

    def schedule(step):
        calls.append(step)
        return 3.0 - step / 10

    callback = TemperatureAnnealing(schedule=schedule, update_every=10)
    assert callback.temperature_at(15) == pytest.approx(2.0)
    assert callback.temperature_at(9) == pytest.approx(3.0)
    assert calls == [10, 0]  # called with t_k, not the step


def test_custom_schedule_ignores_built_in_arguments():
    callback = TemperatureAnnealing(initial=5.0, minimum=4.0, rate=1.0,
                                    schedule=lambda step: 0.1)
    assert callback.temperature_at(100) == pytest.approx(0.1)


def test_temperature_is_none_before_training():
    assert TemperatureAnnealing().temperature is None


# --------------------------------------------------------------------------
# Annealing inside fit.
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cls", [GumbelSigmoid, GumbelSoftmax],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("jit_compile", JIT_COMPILE)
def test_annealing_changes_the_compiled_training_loss(cls, jit_compile):
    # Zero logits: the sample is noise over tau, its L1 distance to 0.5
    # about 0 at tau=100 and about 0.5 at tau=0.01. The Dense keeps the
    # logits at zero (zero inputs, zero bias, learning rate 0) but gives the
    # optimizer a weight: without one, Keras never counts a step.
    shape = (8, 2) if cls is GumbelSoftmax else (8,)
    inputs = keras.Input(shape)
    counter = CountTraces()
    gumbel = cls(seed=0)
    logits = keras.layers.Dense(shape[-1])(inputs)
    model = keras.Model(inputs, gumbel(counter(logits)))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mae",
                  jit_compile=jit_compile)
    x = np.zeros((64,) + shape, "float32")
    y = np.full((64,) + shape, 0.5, "float32")
    traces = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: traces.append(counter.traces))
    callback = TemperatureAnnealing(
        schedule=lambda step: 100.0 if step < 2 else 0.01)
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0,
                        callbacks=[callback, record])
    losses = history.history["loss"]
    assert losses[0] < 0.05
    assert losses[1] > 0.4
    assert history.history["temperature"] == pytest.approx([100.0, 0.01])
    if BACKEND != "torch":  # PyTorch runs `call` eagerly at every step
        assert traces[0] == traces[1]  # no retracing for the new temperature
    assert gumbel.temperature == pytest.approx(0.01)


@pytest.mark.slow
def test_temperature_follows_the_optimizer_step():
    model, gumbel = _model()
    callback = TemperatureAnnealing(schedule=_harmonic)
    recorder = _Recorder(gumbel)
    x, y = regression_data(64)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                        callbacks=[callback, recorder])
    assert _iterations(model) == 12
    # Step t is trained at temperature_at(t), set before the batch.
    assert [step for step, _ in recorder.begins] == list(range(12))
    for step, tau in recorder.begins:
        assert tau == pytest.approx(callback.temperature_at(step), rel=1e-6)
    # The batch logs report the temperature the batch was trained with.
    for step, logged, tau in recorder.ends:
        assert logged == pytest.approx(callback.temperature_at(step - 1))
        assert tau == pytest.approx(logged, rel=1e-6)
    # History holds the temperature of each epoch's last step (3, 7, 11).
    assert history.history["temperature"] == pytest.approx(
        [callback.temperature_at(s) for s in (3, 7, 11)])
    assert gumbel.temperature == pytest.approx(callback.temperature,
                                               rel=1e-6)


@pytest.mark.slow
def test_temperature_after_fit_is_the_schedule_at_the_final_step():
    model, gumbel = _model()
    # 8 steps; the temperature changes every 4: the last batch (step 7)
    # trains at exp(-0.4), and at the end the layer is set to the value of
    # step 8, exp(-0.8), where the next fit starts.
    callback = TemperatureAnnealing(rate=0.1, minimum=0.01, update_every=4)
    x, y = regression_data(64)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                        callbacks=[callback])
    step = _iterations(model)
    assert step == 8
    assert history.history["temperature"][-1] == pytest.approx(
        math.exp(-0.4))
    assert callback.temperature_at(step) == pytest.approx(math.exp(-0.8))
    assert callback.temperature == pytest.approx(
        callback.temperature_at(step))
    assert gumbel.temperature == pytest.approx(
        callback.temperature_at(step), rel=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND == "torch", reason="Keras's PyTorch trainer "
                    "requires steps_per_execution=1")
def test_steps_per_execution_reads_the_optimizer_step():
    model, gumbel = _model(steps_per_execution=4)
    callback = TemperatureAnnealing(rate=0.1, minimum=0.01, update_every=6)
    recorder = _Recorder(gumbel)
    x, y = regression_data(64)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[callback, recorder])
    step = _iterations(model)
    assert step == 16
    # Batches begin every 4 steps, the counter running across epochs.
    assert [s for s, _ in recorder.begins] == [0, 4, 8, 12]
    for s, tau in recorder.begins:
        assert tau == pytest.approx(callback.temperature_at(s), rel=1e-6)
    # Steps 12 and 16 share t_k = 12: exp(-1.2), whatever the batch index.
    expected = callback.temperature_at(step)
    assert expected == pytest.approx(0.30119421191220214)
    assert gumbel.temperature == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("same_callback", [True, False])
def test_second_fit_continues_the_schedule(same_callback):
    model, gumbel = _model()
    x, y = regression_data(64)
    first = TemperatureAnnealing(schedule=_harmonic)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[first])
    assert _iterations(model) == 2
    second = first if same_callback else TemperatureAnnealing(
        schedule=_harmonic)
    recorder = _Recorder(gumbel)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0,
              callbacks=[second, recorder])
    assert recorder.begins[0][0] == 2
    assert recorder.begins[0][1] == pytest.approx(1 / 3)  # not 1.0
    assert recorder.begins[1] == (3, pytest.approx(1 / 4))
    assert _iterations(model) == 4


@pytest.mark.slow
def test_resuming_from_a_saved_model_continues_the_schedule(tmp_path):
    model, _ = _model()
    x, y = regression_data(64)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0,
              callbacks=[TemperatureAnnealing(schedule=_harmonic)])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    (gumbel,) = find_gumbel_layers(loaded)
    recorder = _Recorder(gumbel)
    loaded.fit(x, y, batch_size=32, epochs=1, verbose=0,
               callbacks=[TemperatureAnnealing(schedule=_harmonic), recorder])
    assert recorder.begins[0] == (2, pytest.approx(1 / 3))


@pytest.mark.slow
@pytest.mark.parametrize("cls", ALL_LAYERS, ids=lambda c: c.__name__)
def test_each_layer_class_is_driven(cls):
    model, gumbel = _model(cls(seed=0))
    callback = TemperatureAnnealing(schedule=lambda step: 0.25)
    x, y = regression_data(32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert gumbel.temperature == pytest.approx(0.25)


# --------------------------------------------------------------------------
# Finding and choosing the layers.
# --------------------------------------------------------------------------


def test_find_gumbel_layers_in_a_sequential_model():
    a, b = GumbelSoftmax(), GumbelSigmoid()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), a,
                              keras.layers.Dense(3), b])
    found = find_gumbel_layers(model)
    assert len(found) == 2
    assert found[0] is a and found[1] is b


def test_find_gumbel_layers_in_nested_models_and_custom_layers():
    model, expected = _nested_model()
    found = find_gumbel_layers(model)
    # Each once, though `block.gumbel` is also held in a tuple.
    assert len(found) == len(expected)
    assert {id(layer) for layer in found} == {id(layer) for layer in expected}
    assert [layer.name for layer in find_gumbel_layers(model)] == [
        layer.name for layer in found]  # a stable order


def test_find_gumbel_layers_in_a_wrapper():
    gumbel = STGumbel()
    inputs = keras.Input((2, 4))
    model = keras.Model(inputs, keras.layers.TimeDistributed(gumbel)(inputs))
    found = find_gumbel_layers(model)
    assert len(found) == 1 and found[0] is gumbel


def test_find_gumbel_layers_without_any():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert find_gumbel_layers(model) == []


@pytest.mark.slow
def test_nested_layers_are_driven():
    model, expected = _nested_model()
    callback = TemperatureAnnealing(schedule=_harmonic)
    x, y = regression_data(64)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    # Two steps; at the end the layers hold the schedule at step 2.
    assert callback.temperature == pytest.approx(_harmonic(2))
    for layer in expected:
        assert layer.temperature == pytest.approx(_harmonic(2)), layer.name


@pytest.mark.slow
def test_layers_argument_drives_only_those_layers():
    a = GumbelSoftmax(temperature=2.0, seed=0)
    b = GumbelSoftmax(temperature=2.0, seed=1)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(a(h) + b(h)))
    model.compile(optimizer="sgd", loss="mse")
    callback = TemperatureAnnealing(schedule=lambda step: 0.25, layers=[a])
    x, y = regression_data(32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert a.temperature == pytest.approx(0.25)
    assert b.temperature == pytest.approx(2.0)


@pytest.mark.slow
def test_learned_temperatures_are_skipped_by_default():
    fixed = GumbelSoftmax(temperature=2.0, seed=0)
    learned = GumbelSoftmax(temperature=2.0, seed=1, learn_temperature=True)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(fixed(h) + learned(h)))
    # A zero learning rate: the learned temperature can only move if the
    # callback writes it.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    callback = TemperatureAnnealing(schedule=lambda step: 0.25)
    x, y = regression_data(32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert fixed.temperature == pytest.approx(0.25)
    assert learned.temperature == pytest.approx(2.0)


# --------------------------------------------------------------------------
# Reporting.
# --------------------------------------------------------------------------


def _steps(step):
    return 1.0 if step < 2 else 0.5 if step < 5 else 0.25


@pytest.mark.slow
def test_verbose_prints_each_change(capsys):
    model, _ = _model()
    callback = TemperatureAnnealing(schedule=_steps, verbose=1)
    x, y = regression_data(64)
    capsys.readouterr()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    out = capsys.readouterr().out
    # The value set at the start of training, then each change.
    assert out.count("TemperatureAnnealing") == 3
    assert "Step 0: TemperatureAnnealing setting the temperature to 1." in out
    assert "Step 2: TemperatureAnnealing setting the temperature to 0.5." \
        in out
    assert "Step 5: TemperatureAnnealing setting the temperature to 0.25." \
        in out


@pytest.mark.slow
def test_silent_by_default(capsys):
    model, _ = _model()
    x, y = regression_data(64)
    capsys.readouterr()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[TemperatureAnnealing(schedule=_steps)])
    assert "TemperatureAnnealing" not in capsys.readouterr().out


@pytest.mark.slow
def test_csv_logger_records_the_temperature(tmp_path):
    model, _ = _model()
    path = tmp_path / "log.csv"
    callback = TemperatureAnnealing(schedule=_steps)
    x, y = regression_data(64)
    history = model.fit(
        x, y, batch_size=16, epochs=2, verbose=0,
        callbacks=[callback, keras.callbacks.CSVLogger(str(path))])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(row["temperature"]) for row in rows] == pytest.approx(
        [0.5, 0.25])  # steps 3 and 7
    assert history.history["temperature"] == pytest.approx([0.5, 0.25])


# --------------------------------------------------------------------------
# Arguments and config. (Bad ones: tests/test_bad_input.py.)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    dict(initial=2, minimum=1, rate=0),
    dict(update_every=np.int64(10), rate=np.float32(1e-3)),
    dict(initial=np.float64(0.9), verbose=2),
], ids=repr)
def test_accepted_numeric_types(kwargs):
    callback = TemperatureAnnealing(**kwargs)
    assert isinstance(callback.temperature_at(20), float)


@pytest.mark.slow
@pytest.mark.parametrize("value", [0.0, float("nan")], ids=repr)
def test_bad_schedule_value_at_fit(value):
    model, _ = _model()
    x, y = regression_data(32)
    callback = TemperatureAnnealing(
        schedule=lambda step: 1.0 if step < 1 else value)
    with pytest.raises(ValueError, match="`schedule`"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                  callbacks=[callback])


def test_config_round_trip():
    callback = TemperatureAnnealing(initial=2.0, rate=1e-3, minimum=0.1,
                                    update_every=50, verbose=1)
    config = callback.get_config()
    assert config == {"initial": 2.0, "rate": 1e-3, "minimum": 0.1,
                      "update_every": 50, "schedule": None, "verbose": 1}
    json.dumps(config)
    clone = TemperatureAnnealing.from_config(config)
    assert clone.get_config() == config
    for step in (0, 49, 50, 1234, 10**6):
        assert clone.temperature_at(step) == callback.temperature_at(step)


def test_default_config_round_trip():
    config = TemperatureAnnealing().get_config()
    assert config["update_every"] == 1000
    assert TemperatureAnnealing.from_config(config).get_config() == config


def test_serialize_round_trip_without_custom_objects():
    callback = TemperatureAnnealing(rate=1e-2, update_every=10)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(callback))
    assert isinstance(restored, TemperatureAnnealing)
    assert restored.get_config() == callback.get_config()
