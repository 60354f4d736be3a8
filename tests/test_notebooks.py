"""Runs every notebook in its quick version (KERAS_GUMBEL_QUICK=1).

Each notebook is executed headless by `scripts/run_notebooks.py --quick` in a
temporary folder; the test fails on any cell error, and checks that the
notebook wrote its results table.
"""

import concurrent.futures
import glob
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


@pytest.fixture(scope="module")
def data_available():
    """The notebooks need MNIST-like data: TFDS's, a folder named by
    KERAS_GUMBEL_DATA_DIR, or Debian's Fashion-MNIST (scripts/test.sh
    installs it where apt is available)."""
    sys.path.insert(0, os.path.join(ROOT, "notebooks"))
    import paper

    try:
        paper.load_mnist()
    except FileNotFoundError as error:
        pytest.skip(f"no MNIST-like data here: {error}")


# The quick runs are mostly single-threaded (tracing, small steps): two at
# a time on CI's 2 cores take about two thirds of their time one after
# another (measured: notebooks 1 and 2 together in 107 s, about 90 s each
# alone).
PARALLEL_RUNS = 2


def _quick_run(notebook, output_dir):
    """The finished process, or the timeout that stopped it (reported by
    that notebook's test alone)."""
    try:
        return subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts",
                                          "run_notebooks.py"),
             "--quick", "--output-dir", str(output_dir), "--timeout", "600",
             notebook],
            capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as timeout:
        return timeout


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory, data_available):
    """The quick run of every notebook this session selected, `PARALLEL_RUNS`
    at a time: notebook -> (CompletedProcess, output folder)."""
    pytest.importorskip("nbclient")
    selected = [item.callspec.params["notebook"]
                for item in request.session.items
                if item.originalname == "test_notebook_runs_in_quick_version"
                and hasattr(item, "callspec")]
    # By name, reversed: here that puts the longest (3) first, 0 last.
    selected.sort(reverse=True)
    folders = {nb: tmp_path_factory.mktemp(
        os.path.splitext(os.path.basename(nb))[0]) for nb in selected}
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {nb: pool.submit(_quick_run, nb, folders[nb])
                   for nb in selected}
    return {nb: (futures[nb].result(), folders[nb]) for nb in selected}


@pytest.mark.slow
@pytest.mark.parametrize(
    "notebook", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs_in_quick_version(notebook, quick_runs):
    result, output_dir = quick_runs[notebook]
    assert not isinstance(result, subprocess.TimeoutExpired), str(result)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[
        -5000:]
    stem = os.path.splitext(os.path.basename(notebook))[0]
    with open(output_dir / "results" / f"{stem}.json") as f:
        record = json.load(f)
    assert record["quick"] is True
    assert record["rows"], "the notebook saved an empty results table"


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


PAPER_NOTEBOOKS = [p for p in NOTEBOOKS
                   if not os.path.basename(p).startswith("0")]


@pytest.mark.parametrize("notebook", PAPER_NOTEBOOKS,
                         ids=[os.path.basename(p) for p in PAPER_NOTEBOOKS])
def test_notebook_assembles_its_models_in_view(notebook):
    """Each experiment's models are built in the notebook's own cells, with
    the functional API and a keras_gumbel layer, not imported from a
    module."""
    with open(notebook) as f:
        cells = json.load(f)["cells"]
    code = "\n".join("".join(c["source"]) for c in cells
                     if c["cell_type"] == "code")
    assert "keras.Input(" in code
    assert "keras.Model(" in code or "(keras.Model):" in code
    # A keras_gumbel layer class, called there or picked from a table of
    # estimators and then called.
    assert re.search(r"keras_gumbel\.(GumbelSoftmax|STGumbel|GumbelSigmoid|"
                     r"STGumbelSigmoid|StraightThrough|ReinMax|GumbelRao)"
                     r"(Sigmoid)?\b", code)
    assert "keras_gumbel.experiments" not in code
    assert not re.search(r"from keras_gumbel import .*(datasets|bounds)",
                         code)
