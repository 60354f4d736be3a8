"""The notebooks' quick/full switch and results tables.

- `QUICK_ENV = "KERAS_GUMBEL_QUICK"`: set to `1` to run every notebook in its
  quick version (a few steps each; what the tests run). Unset or `0`: full
  scale.
- `RESULTS_ENV = "KERAS_GUMBEL_RESULTS_DIR"`: where `save_results` writes;
  defaults to `results/` beside the notebook (the current directory).

Each notebook ends with `save_results(...)`, which writes
`<dir>/<name>.json` and returns the markdown table it shows;
`scripts/run_notebooks.py` gathers the JSON files into `results.md`.
"""

import json
import math
import os
import platform
import time

QUICK_ENV = "KERAS_GUMBEL_QUICK"
RESULTS_ENV = "KERAS_GUMBEL_RESULTS_DIR"

__all__ = ["is_quick", "scale", "Timer", "save_results", "markdown_table",
           "machine_description", "QUICK_ENV", "RESULTS_ENV"]


def is_quick():
    """Whether `KERAS_GUMBEL_QUICK` asks for the quick version."""
    value = os.environ.get(QUICK_ENV, "0").strip().lower()
    return value not in ("", "0", "false", "no")


def scale(full, quick):
    """`full` at full scale, `quick` in the quick version."""
    return quick if is_quick() else full


class Timer:
    """`with Timer() as t: ...`; then `t.seconds`."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = None
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False


def machine_description():
    """CPU model and core count, for the tables' captions."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def _fmt(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def markdown_table(rows, columns=("metric", "ours", "paper", "note")):
    """A markdown table of `rows` (dicts), one column per key in `columns`."""
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(
            _fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def save_results(name, title, rows, dataset, notes=()):
    """Writes the notebook's results and returns them as markdown.

    Args:
        name: file stem, e.g. `"2_vae"`.
        title: a heading for the table.
        rows: dicts with keys `metric`, `ours`, `paper` (None where the paper
            has no number) and optionally `note`.
        dataset: what produced `ours`, e.g. the loader's `.name`.
        notes: extra lines shown under the table (set-up, training length).
    """
    for row in rows:
        if "metric" not in row or "ours" not in row:
            raise ValueError(
                "Invalid value received for argument `rows`. Expected dicts "
                f"with keys 'metric' and 'ours'. Received: {row!r}")
    directory = os.environ.get(RESULTS_ENV) or "results"
    os.makedirs(directory, exist_ok=True)
    record = {
        "name": name,
        "title": title,
        "dataset": dataset,
        "quick": is_quick(),
        "machine": machine_description(),
        "rows": rows,
        "notes": list(notes),
    }
    with open(os.path.join(directory, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1, default=float)
    return render(record)


def render(record):
    """The markdown of one saved record."""
    scale_word = "quick version" if record["quick"] else "full scale"
    lines = [f"### {record['title']}", "",
             f"Data: {record['dataset']}; {scale_word}; machine: "
             f"{record['machine']}.", "",
             markdown_table(record["rows"])]
    if record["notes"]:
        lines += [""] + [f"- {n}" for n in record["notes"]]
    return "\n".join(lines) + "\n"
