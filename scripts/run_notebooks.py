"""Executes the notebooks headless and gathers their results.

    python scripts/run_notebooks.py                # full scale, saved in place
    python scripts/run_notebooks.py --quick --output-dir /tmp/nb  # quick

Full scale: each notebook in `notebooks/` is executed top to bottom and saved
with its outputs in place; the tables they write to `notebooks/results/` are
gathered into `notebooks/results.md`. `--quick` sets `KERAS_GUMBEL_QUICK=1`
(a few steps each) and must be given an `--output-dir`, so that a quick run
never overwrites the committed full-scale notebooks or results.
"""

import argparse
import glob
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")


# TensorFlow's C++ start-up lines (no GPU here, oneDNN notices) are printed
# before any Python setting can silence them; they are dropped from the saved
# notebooks' stderr so that readers see the notebooks' own output.
_TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\])")


def _drop_tf_noise(nb):
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get(
                    "name") == "stderr":
                lines = out["text"].splitlines(keepends=True)
                out["text"] = "".join(
                    ln for ln in lines if not _TF_NOISE.match(ln))
                if not out["text"].strip():
                    continue
            kept.append(out)
        cell["outputs"] = kept


def execute(path, output_path, timeout):
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(path)}})
    try:
        client.execute()
    finally:
        _drop_tf_noise(nb)
        nbformat.write(nb, output_path)


def gather(results_dir, output):
    sys.path.insert(0, NOTEBOOKS)
    import paper

    records = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        with open(path) as f:
            records.append(json.load(f))
    text = ["# Results of the notebooks", "",
            "Written by `scripts/run_notebooks.py` from "
            "`notebooks/results/*.json`. The tables of the paper's "
            "experiments stand beside its numbers (Jang, Gu, Poole, ICLR "
            "2017), which were obtained on MNIST with far longer training; "
            "notebook 4's experiment (Abid et al. 2019) has no column from "
            "the paper.", ""]
    text += [paper.render(r) for r in records]
    with open(output, "w") as f:
        f.write("\n".join(text))
    return output


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*",
                        help="notebook files (default: notebooks/*.ipynb)")
    parser.add_argument("--quick", action="store_true",
                        help="run the quick version (KERAS_GUMBEL_QUICK=1)")
    parser.add_argument("--output-dir",
                        help="write executed notebooks and results here")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="seconds per cell")
    args = parser.parse_args()
    if args.quick and not args.output_dir:
        parser.error("--quick needs --output-dir (quick runs must not "
                     "overwrite the committed notebooks)")
    paths = args.notebooks or sorted(
        glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
    if not paths:
        parser.error("no notebooks found")
    out_dir = os.path.abspath(args.output_dir) if args.output_dir else None
    results_dir = os.path.join(out_dir or NOTEBOOKS, "results")
    os.makedirs(results_dir, exist_ok=True)
    os.environ["KERAS_GUMBEL_QUICK"] = "1" if args.quick else "0"
    os.environ["KERAS_GUMBEL_RESULTS_DIR"] = results_dir
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [NOTEBOOKS, ROOT, os.environ.get("PYTHONPATH")]))
    failed = []
    for path in paths:
        path = os.path.abspath(path)
        target = os.path.join(out_dir, os.path.basename(path)) if out_dir \
            else path
        start = time.perf_counter()
        print(f"running {os.path.relpath(path, ROOT)} ...", flush=True)
        try:
            execute(path, target, args.timeout)
            status = "ok"
        except Exception as error:  # report every notebook, then fail
            failed.append(path)
            status = f"FAILED: {type(error).__name__}: {str(error)[-2000:]}"
        print(f"  {status} ({time.perf_counter() - start:.0f} s) -> "
              f"{target}", flush=True)
    table = gather(results_dir, os.path.join(out_dir or NOTEBOOKS,
                                             "results.md"))
    print(f"results: {table}")
    if failed:
        sys.exit(f"{len(failed)} notebook(s) failed: {failed}")


if __name__ == "__main__":
    main()
