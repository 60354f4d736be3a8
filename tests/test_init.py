"""Tests of the package itself: what `import keras_gumbel` needs and gives."""

import ast
import os
import subprocess
import sys

import pytest

import keras_gumbel

PACKAGE_DIR = os.path.dirname(os.path.abspath(keras_gumbel.__file__))


def test_public_names():
    assert sorted(keras_gumbel.__all__) == sorted([
        "GumbelSoftmax", "STGumbel", "GumbelSigmoid", "STGumbelSigmoid",
        "StraightThrough", "ReinMax", "GumbelRao", "StraightThroughSigmoid",
        "ReinMaxSigmoid", "GumbelRaoSigmoid", "TemperatureAnnealing",
        "find_gumbel_layers", "ops", "score_function", "__version__"])
    for name in keras_gumbel.__all__:
        assert hasattr(keras_gumbel, name), name


@pytest.mark.slow
def test_import_needs_only_tensorflow_and_keras():
    # setup.cfg installs tensorflow and keras only: the package must import
    # (and sample) where TFP and TFDS cannot be imported. `None` in
    # `sys.modules` makes their import raise ImportError.
    code = (
        "import sys\n"
        "for name in ('tensorflow_probability', 'tensorflow_datasets'):\n"
        "    sys.modules[name] = None\n"
        "import keras_gumbel\n"
        "import numpy as np\n"
        "x = np.zeros((2, 3), 'float32')\n"
        "y = keras_gumbel.GumbelSoftmax(seed=0)(x)\n"
        "assert abs(float(y.numpy().sum()) - 2.0) < 1e-5\n"
        "print('imported')\n")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=os.path.dirname(PACKAGE_DIR),
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout


def _private_reach_ins(path):
    """`module._name` attributes and `from module import _name` imports of
    another keras_gumbel module's underscore names, in the file at `path`."""
    tree = ast.parse(open(path).read(), path)
    modules = set()  # local names bound to keras_gumbel modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (
                node.module or "").startswith("keras_gumbel"):
            for alias in node.names:
                if node.module == "keras_gumbel":
                    modules.add(alias.asname or alias.name)
                elif (alias.name.startswith("_")
                      and not alias.name.startswith("__")):
                    found.append(f"from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    # Private modules (`_checks`) may be imported; their public names used.
    paths = [os.path.join(PACKAGE_DIR, name)
             for name in ("__init__.py", "_checks.py", "ops.py", "layers.py",
                          "callbacks.py", "score_function.py")]
    found = {os.path.basename(p): _private_reach_ins(p) for p in paths}
    assert found == {os.path.basename(p): [] for p in paths}


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_another_backend_gets_an_error_naming_it(backend, monkeypatch):
    # Until the library runs on every backend, Keras on JAX or PyTorch gets
    # an error that names the backend at the first layer, op or
    # score-function piece, instead of one about the type of a tracer.
    import keras
    import numpy as np

    from keras_gumbel import score_function as sf

    x = np.zeros((2, 3), "float32")
    calls = {
        "STGumbel": lambda: keras_gumbel.STGumbel(),
        "GumbelSigmoid": lambda: keras_gumbel.GumbelSigmoid(),
        "ops.gumbel_softmax": lambda: keras_gumbel.ops.gumbel_softmax(x),
        "ops.reinmax": lambda: keras_gumbel.ops.reinmax(x),
        "ops.sample_gumbel": lambda: keras_gumbel.ops.sample_gumbel((2, 3)),
        "score_function.sample_categorical": lambda: sf.sample_categorical(x),
        "score_function": lambda: sf.darn_learning_signal(
            lambda z: z, x),
        "score_function.surrogate_loss": lambda: sf.surrogate_loss(
            x[:, 0], x[:, 0]),
        "score_function.VarianceReduction": lambda: sf.VarianceReduction(),
    }
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    for name, call in calls.items():
        with pytest.raises(NotImplementedError) as error:
            call()
        message = str(error.value)
        assert f"`keras_gumbel.{name}`" in message, (name, message)
        assert f"Received: Keras backend '{backend}'" in message, message
        assert "KERAS_BACKEND=tensorflow" in message
