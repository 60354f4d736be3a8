"""Long training in practice: resuming, determinism, several devices and
workers, saving across backends, serving.

- `BackupAndRestore`: a `fit` interrupted part-way and resumed from the
  backup must end exactly (bit for bit) where the uninterrupted run with the
  same seeds ends: weights, optimizer state and step, the annealed
  temperature (and the temperature of every step after the resume), the
  learned temperature, and the noise generators' state.
- Determinism: with `keras.utils.set_random_seed` (and TensorFlow's op
  determinism, PyTorch's deterministic algorithms), two training runs (in
  one process, and in two processes) give bit-identical weights and
  samples. Op determinism is global and cannot be turned off, so it runs in
  subprocesses (`tests/_workers/determinism.py`), on this process's backend.
- JAX's `keras.distribution.DataParallel` over two host devices, in a
  worker process on JAX whatever this process's backend
  (`tests/_workers/data_parallel.py`).
- A `.keras` file saved on another backend (`tests/_workers/save_keras.py`)
  loads here and predicts the same modes and relaxations.
- `MultiWorkerMirroredStrategy` (TensorFlow): two worker processes on
  loopback ports (`tests/_workers/multiworker.py`) train the same model; the
  temperature is identical on both workers at every step and follows the
  schedule.
- Serving (TensorFlow): a model exported with `model.export` is loaded with
  `tf.saved_model.load` in a fresh process that never imports keras_gumbel
  (`tests/_workers/serve.py`).
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_gumbel
from _helpers import ALL_LAYERS
from _helpers import BACKEND
from _helpers import assert_valid_sample
from _helpers import regression_data
from _helpers import tf_only

WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "_workers")
TIMEOUT = 120  # seconds, for every subprocess


def _worker_env(**extra):
    """The environment of a worker subprocess: CPU only, quiet, no proxy
    for loopback addresses, and keras_gumbel importable from the checkout."""
    env = dict(os.environ)
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "grpc_proxy", "all_proxy", "ALL_PROXY"):
        env.pop(key, None)
    env.update(CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(extra)
    return env


def _run_workers(commands, timeout=TIMEOUT):
    """Runs `(argv, env)` pairs in parallel; kills all of them if one fails
    or the time runs out. Returns their outputs."""
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for argv, env in commands]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout)
            outputs.append(out)
            assert proc.returncode == 0, (
                f"{proc.args} exited with {proc.returncode}:\n{out[-5000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return outputs


# --------------------------------------------------------------------------
# BackupAndRestore.
# --------------------------------------------------------------------------


SEED = 1234
BATCH, STEPS_PER_EPOCH, EPOCHS = 8, 6, 4
# Interrupted in the third epoch (epoch 2) before its fourth batch: the last
# backup is the end of epoch 1 (step 12); the resumed fit redoes epoch 2.
INTERRUPT_EPOCH, INTERRUPT_BATCH = 2, 3
ANNEALING = dict(initial=1.0, rate=0.05, minimum=0.2, update_every=4)


class Interrupt(Exception):
    """Stands for a crash or a preemption."""


class InterruptOnce(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch = epoch, batch
        self._current_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self._current_epoch, batch) == (self.epoch, self.batch):
            raise Interrupt(f"interrupted at epoch {self.epoch}, "
                            f"batch {self.batch}")


class StepRecorder(keras.callbacks.Callback):
    """The temperature each step trains with, by global step."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.temperatures = {}

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.temperatures[step] = self.layer.temperature


class NoiseStateBackup(keras.callbacks.Callback):
    """Backs up and restores the layers' noise generator states next to a
    `BackupAndRestore` (at the end of each epoch, and when training begins).
    Used to show that, with the noise state restored, nothing else is lost.
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.path = os.path.join(backup_dir, "noise_state.json")

    def _generators(self):
        return [layer.seed_generator
                for layer in keras_gumbel.find_gumbel_layers(self.model)]

    def on_train_begin(self, logs=None):
        if os.path.exists(self.path):
            with open(self.path) as f:
                states = json.load(f)
            for generator, state in zip(self._generators(), states):
                generator.state.assign(np.asarray(state, "int64"))

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "w") as f:
            json.dump([keras.ops.convert_to_numpy(g.state).tolist()
                       for g in self._generators()], f)


def _resume_data():
    return regression_data(BATCH * STEPS_PER_EPOCH, features=6)


def _resume_model():
    """A model with an annealed GumbelSoftmax (seeded), a learned-temperature
    GumbelSigmoid (seed=None: its noise seed comes from the global seed)
    and Adam (which has state of its own)."""
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((6,))
    logits = keras.layers.Reshape((2, 4))(
        keras.layers.Dense(8, name="categorical_logits")(inputs))
    annealed = keras_gumbel.GumbelSoftmax(seed=7, name="annealed")
    learned = keras_gumbel.GumbelSigmoid(
        temperature=0.7, learn_temperature=True, name="learned")
    features = keras.layers.Concatenate()([
        keras.layers.Flatten()(annealed(logits)),
        learned(keras.layers.Dense(3, name="binary_logits")(inputs))])
    model = keras.Model(
        inputs, keras.layers.Dense(1, name="head")(features))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


def _fit(model, backup_dir, extra_callbacks=(), noise_state=False):
    x, y = _resume_data()
    recorder = StepRecorder(model.get_layer("annealed"))
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir)]
    if noise_state:
        callbacks.append(NoiseStateBackup(backup_dir))
    callbacks += [keras_gumbel.TemperatureAnnealing(**ANNEALING), recorder,
                  *extra_callbacks]
    # shuffle=False keeps the test independent of the order Keras gives a
    # redone epoch, which BackupAndRestore does not back up. (After
    # `set_random_seed`, Keras 3.15 gives every epoch the same order, so
    # shuffle=True resumes exactly too; that is Keras's doing, not ours.)
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
              verbose=0, callbacks=callbacks)
    return recorder.temperatures


def _state(model):
    """Everything a resumed run must have restored, by name."""
    state = {f"{layer.name}/{v.name}": keras.ops.convert_to_numpy(v)
             for layer in model.layers for v in layer.variables}
    assert len(state) == len(model.variables)
    state.update({f"optimizer/{v.name}": keras.ops.convert_to_numpy(v)
                  for v in model.optimizer.variables})
    state["step"] = int(keras.ops.convert_to_numpy(
        model.optimizer.iterations))
    state["annealed temperature"] = model.get_layer("annealed").temperature
    state["learned temperature"] = model.get_layer("learned").temperature
    return state


def _assert_resume_is_exact(tmp_path, noise_state):
    # The uninterrupted run.
    reference = _resume_model()
    reference_temperatures = _fit(reference, str(tmp_path / "reference"),
                                  noise_state=noise_state)
    expected = _state(reference)
    assert expected["step"] == EPOCHS * STEPS_PER_EPOCH

    # The interrupted run, then a fresh model (as a new process would build
    # it, with the same seeds) resumed from the backup.
    backup = str(tmp_path / "backup")
    interrupted = _resume_model()
    with pytest.raises(Interrupt):
        _fit(interrupted, backup, noise_state=noise_state,
             extra_callbacks=[InterruptOnce(INTERRUPT_EPOCH,
                                            INTERRUPT_BATCH)])
    step = int(keras.ops.convert_to_numpy(interrupted.optimizer.iterations))
    assert step == INTERRUPT_EPOCH * STEPS_PER_EPOCH + INTERRUPT_BATCH
    assert os.path.exists(os.path.join(backup, "latest.weights.h5"))
    resumed = _resume_model()
    resumed_temperatures = _fit(resumed, backup, noise_state=noise_state)
    got = _state(resumed)

    # The resumed fit started from the backup (step 12), not from scratch,
    # and trained each later step with the uninterrupted run's temperature.
    first = INTERRUPT_EPOCH * STEPS_PER_EPOCH
    assert sorted(resumed_temperatures) == list(
        range(first, EPOCHS * STEPS_PER_EPOCH))
    assert resumed_temperatures == {
        step: reference_temperatures[step] for step in resumed_temperatures}
    assert got["annealed temperature"] == expected["annealed temperature"]
    assert got["annealed temperature"] == pytest.approx(
        keras_gumbel.TemperatureAnnealing(**ANNEALING).temperature_at(
            EPOCHS * STEPS_PER_EPOCH), rel=1e-6)
    assert got["step"] == expected["step"]

    assert sorted(got) == sorted(expected)
    noise = [name for name in expected
             if name.endswith("seed_generator_state")
             and not np.array_equal(got[name], expected[name])]
    assert not noise, (
        "the noise generators' state was not restored (Keras saves a "
        "layer's weights, not its SeedGenerator's state), so the resumed "
        f"run draws other noise: {noise}, "
        + ", ".join(f"{got[n].tolist()} instead of {expected[n].tolist()}"
                    for n in noise))
    differ = [name for name in expected
              if not np.array_equal(got[name], expected[name])]
    assert not differ, (
        "the resumed run does not end where the uninterrupted run does; "
        f"these differ: {differ}")


@pytest.mark.slow
def test_backup_and_restore_resumes_exactly(tmp_path):
    _assert_resume_is_exact(tmp_path, noise_state=False)


@pytest.mark.slow
def test_backup_and_restore_resumes_exactly_with_noise_state(tmp_path):
    """The same with the noise generators' state backed up next to the
    weights (`NoiseStateBackup`): isolates what plain `BackupAndRestore`
    loses (the state of the layers' `SeedGenerator`s, which Keras does not
    save with the weights) from everything it keeps."""
    _assert_resume_is_exact(tmp_path, noise_state=True)


# --------------------------------------------------------------------------
# Serving in a fresh process.
# --------------------------------------------------------------------------


def _serving_model(inference_mode):
    """One head per layer class, each at temperature 0.5."""
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((6,))
    categorical = keras.layers.Reshape((3, 4))(
        keras.layers.Dense(12)(inputs))
    binary = keras.layers.Dense(5)(inputs)
    outputs = []
    for i, cls in enumerate(ALL_LAYERS):
        layer = cls(seed=i, inference_mode=inference_mode)
        layer.temperature = 0.5
        outputs.append(layer(categorical if i < 2 else binary))
    return keras.Model(inputs, outputs)


def _load_served(path, calls):
    served = np.load(path)
    return [[served[f"call{i}_{j}"] for j in range(len(ALL_LAYERS))]
            for i in range(calls)]


@pytest.mark.slow
@tf_only  # a TensorFlow SavedModel, served by `tf.saved_model.load`
def test_exported_model_serves_in_a_fresh_process(tmp_path):
    x = np.random.default_rng(0).standard_normal((32, 6)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    expected = {}
    argv = [sys.executable, os.path.join(WORKERS, "serve.py"),
            str(tmp_path / "x.npy"), "3"]
    for mode in ["mode", "soft", "sample"]:
        model = _serving_model(mode)
        if mode != "sample":
            expected[mode] = [np.asarray(y) for y in
                              model.predict(x, verbose=0)]
        model.export(str(tmp_path / mode), verbose=False)
        argv += [str(tmp_path / mode), str(tmp_path / f"{mode}.npz")]
    (output,) = _run_workers([(argv, _worker_env())])
    assert "served without keras_gumbel" in output

    for mode in ["mode", "soft"]:  # deterministic, as in this process
        calls = _load_served(tmp_path / f"{mode}.npz", 3)
        for call in calls:
            for got, want in zip(call, expected[mode]):
                np.testing.assert_array_equal(got, want)
    for cls, y in zip(ALL_LAYERS, expected["mode"]):
        if cls in (keras_gumbel.GumbelSoftmax, keras_gumbel.STGumbel):
            assert np.all(y.sum(axis=-1) == 1)  # one-hot of the argmax
        else:
            assert set(np.unique(y)) <= {0.0, 1.0}

    calls = _load_served(tmp_path / "sample.npz", 3)  # new noise each call
    for j, cls in enumerate(ALL_LAYERS):
        for call in calls:
            assert call[j].shape == expected["mode"][j].shape
            assert_valid_sample(cls, call[j])
        assert not np.array_equal(calls[0][j], calls[1][j]), cls.__name__
        assert not np.array_equal(calls[1][j], calls[2][j]), cls.__name__


# --------------------------------------------------------------------------
# Determinism.
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_training_is_deterministic(tmp_path):
    """Two processes, two runs each: all four bit-identical."""
    script = os.path.join(WORKERS, "determinism.py")
    outs = [str(tmp_path / f"process{p}.npz") for p in range(2)]
    _run_workers([([sys.executable, script, out], _worker_env())
                  for out in outs])
    runs = []
    for out in outs:
        saved = np.load(out)
        for r in range(2):
            prefix = f"r{r}_"
            runs.append({k[len(prefix):]: saved[k] for k in saved.files
                         if k.startswith(prefix)})
    first = runs[0]
    assert len(first) > 8
    # They are samples: successive draws differ.
    assert not np.array_equal(first["train0"], first["train1"])
    assert not np.array_equal(first["op0"], first["op1"])
    assert len(set(first["temperatures"].tolist())) > 1  # annealed
    for i, other in enumerate(runs[1:], 1):
        assert sorted(other) == sorted(first)
        differ = [k for k in first if not np.array_equal(
            other[k], first[k])]
        assert not differ, f"run {i} differs from run 0 in {differ}"


# --------------------------------------------------------------------------
# MultiWorkerMirroredStrategy.
# --------------------------------------------------------------------------


def _free_loopback_ports(n):
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
@tf_only  # tf.distribute
def test_multi_worker_mirrored_strategy(tmp_path):
    ports = _free_loopback_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    script = os.path.join(WORKERS, "multiworker.py")
    outs = [str(tmp_path / f"worker{i}.json") for i in range(2)]
    commands = []
    for i, out in enumerate(outs):
        tf_config = {"cluster": cluster, "task": {"type": "worker",
                                                  "index": i}}
        commands.append(([sys.executable, script, out],
                         _worker_env(TF_CONFIG=json.dumps(tf_config))))
    _run_workers(commands)
    results = []
    for out in outs:
        with open(out) as f:
            results.append(json.load(f))

    first, second = results
    assert [r["task"] for r in results] == [0, 1]
    assert first["replicas"] == 2  # one replica on each worker, in sync
    steps = [r["step"] for r in first["records"]]
    assert steps == list(range(8))
    # The temperature at every step: the same on both workers, the
    # schedule's value, and the value logged for the step.
    assert first["records"] == second["records"]
    temperatures = [r["temperature"] for r in first["records"]]
    assert temperatures == pytest.approx(first["expected"], rel=1e-6)
    assert [r["logged"] for r in first["records"]] == first["expected"]
    assert len(set(temperatures)) == 4  # it changed at steps 2, 4 and 6
    for result in results:
        assert result["final_step"] == 8
        assert result["final_temperature"] == pytest.approx(
            result["expected_final_temperature"], rel=1e-6)
    # One model, trained in sync: identical weights (temperatures and the
    # learned temperature included) and losses on both workers.
    assert first["weights_sha256"] == second["weights_sha256"]
    assert first["learned_temperature"] == second["learned_temperature"]
    assert first["learned_temperature"] != 1.0  # it was trained
    assert first["loss"] == second["loss"]


# --------------------------------------------------------------------------
# JAX: DataParallel over two devices.
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_jax_data_parallel_fit(tmp_path):
    """`keras.distribution.DataParallel` over two host devices (a worker
    process on JAX, whatever this process's backend): the model with an
    annealed and a learned temperature trains, and the annealed temperature
    follows the schedule."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    out = tmp_path / "data_parallel.json"
    env = _worker_env(
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2")
    _run_workers([([sys.executable, os.path.join(WORKERS, "data_parallel.py"),
                    str(out)], env)])
    with open(out) as f:
        result = json.load(f)
    assert result["jax_devices"] == 2
    assert result["distribution_devices"] == 2
    assert result["variable_devices"] == [2]  # each variable on both
    losses = result["losses"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert all(result["weights_changed"])
    # 128 examples in batches of 16, 5 epochs: 40 steps; the temperature
    # changes every 4.
    assert result["step"] == 40
    schedule = keras_gumbel.TemperatureAnnealing(
        initial=1.0, rate=0.05, minimum=0.1, update_every=4)
    assert result["logged_temperatures"] == pytest.approx(
        [schedule.temperature_at(s) for s in (4, 12, 20, 28, 36)])
    assert result["expected_temperature"] == pytest.approx(
        schedule.temperature_at(40))
    assert result["temperature"] == pytest.approx(
        result["expected_temperature"], rel=1e-6)
    assert result["temperature"] < 0.2  # annealed from 1.0
    assert result["learned_temperature"] != pytest.approx(0.7)  # learned


# --------------------------------------------------------------------------
# A .keras file across backends.
# --------------------------------------------------------------------------


def _other_backend():
    """Another Keras backend than this process's that can be imported."""
    for name in ("jax", "torch", "tensorflow"):
        if name != BACKEND and importlib.util.find_spec(name) is not None:
            return name
    pytest.skip("no other Keras backend is installed")


@pytest.mark.slow
def test_keras_file_saved_on_another_backend_loads(tmp_path):
    """A model saved on another backend (in a worker process) loads here
    without custom objects and predicts what it predicted there: the modes
    exactly, the soft relaxation to float32 rounding. (Samples are not
    compared: the noise streams differ between backends.)"""
    other = _other_backend()
    x = np.random.default_rng(0).standard_normal((32, 6)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    _run_workers([([sys.executable, os.path.join(WORKERS, "save_keras.py"),
                    str(tmp_path / "x.npy"), str(tmp_path)],
                   _worker_env(KERAS_BACKEND=other))])
    expected = np.load(tmp_path / "expected.npz")
    assert str(expected["backend"]) == other

    loaded = keras.models.load_model(tmp_path / "model.keras")

    layers = keras_gumbel.find_gumbel_layers(loaded)
    assert [layer.name for layer in layers] == expected["names"].tolist()
    assert len(layers) == 12  # the 11 layer classes, and a soft head
    assert [layer.temperature for layer in layers] == pytest.approx(
        expected["temperatures"].tolist(), rel=1e-6)
    assert len(set(expected["temperatures"].tolist())) == 2  # trained
    states = [keras.ops.convert_to_numpy(layer.seed_generator.state)
              for layer in layers]
    np.testing.assert_array_equal(np.asarray(states, "int64"),
                                  expected["states"])
    outputs = dict(zip(loaded.output_names, loaded.predict(x, verbose=0)))
    assert sorted(outputs) == sorted(layer.name for layer in layers)
    for layer in layers:
        y, want = outputs[layer.name], expected[f"y_{layer.name}"]
        assert y.shape == want.shape
        if layer.inference_mode == "mode":
            np.testing.assert_array_equal(y, want, err_msg=layer.name)
        else:
            np.testing.assert_allclose(y, want, atol=1e-6,
                                       err_msg=layer.name)
    assert {layer.inference_mode for layer in layers} == {"mode", "soft"}
