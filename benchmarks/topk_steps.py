"""How many Newton steps `ops.gumbel_topk`'s threshold takes.

`gumbel_topk` finds the threshold `c` of `sigmoid((logits + g - c) / tau)`
by safeguarded Newton steps run until every row sums to k within 64
float epsilons times k (`keras_gumbel.ops._THRESHOLD_TOLERANCE`). With one
temperature per row they start from the root of a small stand-in problem
(the k + 1 largest entries, the rest as n copies of one entry); with a
temperature per element, from the middle of the bracket. This script
counts the steps of each loop, eagerly (where `_backend.while_loop` runs
in Python, counted here by wrapping it), for standard normal logits of
shape (rows, classes), and gives for each (k, tau):

- `stand-in steps`: the steps on the small problem (each costs k + 2
  entries per row);
- `whole-row steps`: the steps over the whole rows after it, each a pass
  of a sigmoid and two sums over the logits' size (the loop evaluates the
  sum once more than it steps);
- `from the bracket's middle`: the whole-row steps of the same draw with
  the temperature given per element (the same value), where no stand-in
  is solved;
- `max |sum - k| / k`: the worst row of the result.

Every step count is the largest over the rows: a loop runs until its last
row has converged.

Run:
    python benchmarks/topk_steps.py [--rows 8192] [--classes 1000]
        [--markdown FILE]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# keras_gumbel from this checkout, whichever is installed.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_gumbel import _backend  # noqa: E402
from keras_gumbel import ops  # noqa: E402

KS = (10, 100)
TEMPERATURES = (0.01, 0.1, 0.5, 1.0, 2.0, 10.0)


def counted_steps(fn):
    """Runs `fn()` with `_backend.while_loop` counting the steps of each
    loop; returns `fn`'s result and the list of step counts, in order."""
    counts = []
    original = _backend.while_loop

    def counting(cond, body, loop_vars, maximum_iterations):
        def counted_body(*state):
            counts[-1] += 1
            return body(*state)

        counts.append(0)
        return original(cond, counted_body, loop_vars, maximum_iterations)

    _backend.while_loop = counting
    try:
        return fn(), counts
    finally:
        _backend.while_loop = original


def measure(rows, classes, ks=KS, temperatures=TEMPERATURES, seed=0):
    """One dict per (k, tau): the step counts and the worst row's sum."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, classes)).astype("float32")
    results = []
    for k in ks:
        for tau in temperatures:
            y, (small, whole) = counted_steps(
                lambda: ops.gumbel_topk(x, k, tau, seed=seed + 1))
            per_element = np.full(x.shape, tau, "float32")
            y_mid, (middle,) = counted_steps(
                lambda: ops.gumbel_topk(x, k, per_element, seed=seed + 1))
            sums = np.concatenate([
                keras.ops.convert_to_numpy(v).sum(axis=-1)
                for v in (y, y_mid)])
            results.append({
                "k": k, "tau": tau, "stand-in": small, "whole": whole,
                "middle": middle,
                "error": float(np.max(np.abs(sums - k)) / k)})
    return results


def markdown(results, rows, classes):
    lines = [f"Logits: standard normal, shape ({rows}, {classes}); Keras "
             f"{keras.__version__}, backend {keras.backend.backend()}.", "",
             "| k | tau | stand-in steps | whole-row steps | from the "
             "bracket's middle | max abs(sum - k) / k |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['k']} | {r['tau']:g} | {r['stand-in']} | "
                     f"{r['whole']} | {r['middle']} | {r['error']:.1e} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args()
    text = markdown(measure(args.rows, args.classes), args.rows,
                    args.classes)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
