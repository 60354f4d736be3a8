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
        "ReinMaxSigmoid", "GumbelRaoSigmoid", "GumbelTopK",
        "TemperatureAnnealing",
        "find_gumbel_layers", "ops", "score_function", "__version__"])
    for name in keras_gumbel.__all__:
        assert hasattr(keras_gumbel, name), name


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("keras").backend.backend() != "tensorflow",
    reason="the TensorFlow user's install")
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
             for name in ("__init__.py", "_checks.py", "_backend.py", "ops.py",
                          "layers.py",
                          "callbacks.py", "score_function.py")]
    found = {os.path.basename(p): _private_reach_ins(p) for p in paths}
    assert found == {os.path.basename(p): [] for p in paths}


def _run(code, **env):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
               **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=os.path.dirname(PACKAGE_DIR),
        env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_imports_and_trains_without_tensorflow(backend):
    # A JAX or PyTorch user need not install TensorFlow: with TensorFlow
    # (and TFP, TFDS) unimportable, the package imports, and a functional
    # model with a straight-through layer trains with annealing.
    pytest.importorskip(backend)
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tensorflow_probability',\n"
        "             'tensorflow_datasets'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np, keras, keras_gumbel\n"
        "inputs = keras.Input((4,))\n"
        "logits = keras.layers.Dense(3)(inputs)\n"
        "z = keras_gumbel.STGumbel(seed=0)(logits)\n"
        "model = keras.Model(inputs, keras.layers.Dense(1)(z))\n"
        "model.compile('adam', 'mse')\n"
        "x = np.random.default_rng(0).normal(size=(32, 4)).astype('f4')\n"
        "anneal = keras_gumbel.TemperatureAnnealing(\n"
        "    initial=1.0, minimum=0.5, rate=0.5, update_every=1)\n"
        "model.fit(x, x[:, :1], epochs=2, batch_size=8, verbose=0,\n"
        "          callbacks=[anneal])\n"
        "print(keras.backend.backend(), model.layers[2].temperature)\n")
    result = _run(code, KERAS_BACKEND=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    name, temperature = result.stdout.split()
    assert name == backend
    assert float(temperature) < 1.0


@pytest.mark.slow
def test_missing_backend_is_named_with_the_install_command():
    # Keras's backend cannot be imported (here: TensorFlow, the default):
    # the error says so and how to install one.
    code = ("import sys\n"
            "sys.modules['tensorflow'] = None\n"
            "import keras_gumbel\n")
    result = _run(code, KERAS_BACKEND="tensorflow")
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: keras_gumbel needs Keras 3"), (
        message)
    assert "(tensorflow)" in message
    assert "keras_gumbel[jax]" in message and "KERAS_BACKEND" in message
