"""`scripts/m2_seeds.py` runs (in a few steps) and reports what it claims."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "m2_seeds.py")


@pytest.fixture(scope="module")
def m2_seeds():
    spec = importlib.util.spec_from_file_location("m2_seeds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data():
    from keras_gumbel import datasets

    try:
        return datasets.load_mnist()
    except datasets.DataUnavailableError as error:
        pytest.skip(f"no MNIST-like data here: {error}")


def test_run_reports_accuracies_per_validation_point(m2_seeds, data,
                                                     monkeypatch):
    from keras_gumbel import datasets

    monkeypatch.setattr(m2_seeds, "STEPS", 4)
    monkeypatch.setattr(m2_seeds, "EVAL_EVERY", 2)
    monkeypatch.setattr(m2_seeds, "BATCH", 8)
    labelled = datasets.labelled_subset(data.y_train, per_class=10, seed=0)
    row = m2_seeds.run(data, labelled, data.binarized(seed=0), seed=3,
                       estimator="st")
    assert row["seed"] == 3 and row["estimator"] == "st"
    assert len(row["val_accuracy"]) == 2
    assert all(0.0 <= a <= 1.0 for a in row["val_accuracy"])
    assert 0.0 <= row["test_accuracy"] <= 1.0
    assert row["seconds"] > 0
    json.dumps(row)  # what the script prints


def test_rejects_an_unknown_estimator():
    result = subprocess.run(
        [sys.executable, SCRIPT, "--estimators", "reinforce"],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'reinforce'" in result.stderr
