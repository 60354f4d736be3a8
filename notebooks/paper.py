"""What the notebooks need besides their models: data, bounds, figures, tables.

Not part of the installed library (`keras_gumbel/` holds only what a user's
own model uses). The notebooks import it as `import paper` (they run in this
folder); `scripts/` and `tests/` put this folder on `sys.path` first.

- Scale: `QUICK` (the environment variable `KERAS_GUMBEL_QUICK=1` asks for
  the quick version, a few steps of everything) and `scale(full, quick)`.
- Data: `load_mnist()` (TFDS's mnist when prepared, else MNIST-format IDX
  files: `KERAS_GUMBEL_DATA_DIR`, or Debian's Fashion-MNIST), `binarize`,
  `binarized_dataset` (fresh pixels every pass), `split_halves`,
  `join_halves`, `labelled_subset`.
- Bounds: `bernoulli_log_likelihood`, `importance_weighted_nll` (the
  m-sample bound, given a function that returns log importance weights),
  `mean_and_error`.
- Figures and reports: `tile_images`, `Timer`, `save_results` (writes
  `results/<name>.json` and returns the markdown table).
"""

import gzip
import json
import math
import os
import platform
import time
import types

import numpy as np
import tensorflow as tf

QUICK = os.environ.get("KERAS_GUMBEL_QUICK", "0").strip().lower() not in (
    "", "0", "false", "no")
DATA_DIR_ENV = "KERAS_GUMBEL_DATA_DIR"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
HALF = 392  # pixels in the upper (rows 0-13) and lower (rows 14-27) halves


def scale(full, quick):
    """`full` at full scale, `quick` in the quick version."""
    return quick if QUICK else full


# --------------------------------------------------------------------------
# Data.
# --------------------------------------------------------------------------


def read_idx(path):
    """An IDX file of unsigned bytes (gzipped or not) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = raw[0:2], raw[2], raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big")
                  for i in range(ndim))
    if zero != b"\0\0" or dtype != 0x08 or len(raw) != 4 + 4 * ndim + (
            math.prod(shape)):
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_folder(folder):
    def read(stem):
        for name in (stem + ".gz", stem):
            if os.path.exists(os.path.join(folder, name)):
                return read_idx(os.path.join(folder, name))
        raise FileNotFoundError(
            f"{folder} has no {stem}[.gz]. Install Debian's "
            "`dataset-fashion-mnist`, or set KERAS_GUMBEL_DATA_DIR to a "
            "folder with MNIST's four IDX files.")

    return (read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte"),
            read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte"))


def load_mnist(validation_size=10_000):
    """The paper's splits of MNIST, or of an MNIST-format dataset.

    `tfds.load("mnist")` first, when TensorFlow Datasets is installed and has
    it prepared (nothing is downloaded); else the IDX files in
    `$KERAS_GUMBEL_DATA_DIR`, else Debian's Fashion-MNIST.

    Returns:
        A namespace: `x_train, y_train` (the first `60000 - validation_size`
        training images), `x_valid, y_valid` (the rest), `x_test, y_test`;
        images float32 in [0, 1] of shape `(n, 784)`, labels int64; `dataset`
        (`"mnist"` or `"fashion_mnist"`) and `name` (it and where it came
        from).
    """
    try:
        import tensorflow_datasets as tfds

        train, test = tfds.as_numpy(tfds.load(
            "mnist", split=["train", "test"], batch_size=-1,
            as_supervised=True, download=False))
        (x, y), (x_test, y_test) = train, test
        dataset, name = "mnist", "mnist (tfds)"
    except Exception:  # not installed, or mnist not prepared: IDX files
        folder = os.environ.get(DATA_DIR_ENV) or DEBIAN_FASHION_MNIST
        x, y, x_test, y_test = _idx_folder(folder)
        dataset = "fashion_mnist" if "fashion" in folder.lower() else "mnist"
        name = f"{dataset} (idx: {folder})"

    def images(a):
        return (np.asarray(a, np.float32) / 255.0).reshape(len(a), -1)

    split = len(x) - validation_size
    return types.SimpleNamespace(
        x_train=images(x[:split]), y_train=np.asarray(y[:split], np.int64),
        x_valid=images(x[split:]), y_valid=np.asarray(y[split:], np.int64),
        x_test=images(x_test), y_test=np.asarray(y_test, np.int64),
        dataset=dataset, name=name)


def binarize(x, seed):
    """Each pixel 1 with probability its intensity, drawn once for `seed`."""
    u = np.random.default_rng(seed).random(np.shape(x), dtype=np.float32)
    return (u < x).astype(np.float32)


def binarized_dataset(x, y=None, batch_size=100, seed=0,
                      drop_remainder=False):
    """Batches of `x` (and `y`) with fresh Bernoulli pixels on every pass.

    Shuffled on every pass; each batch draws its pixels with a stateless
    seed from `tf.data.Dataset.random(seed + 1)`, so the sequence of passes
    is the same for the same seed.
    """
    ds = tf.data.Dataset.from_tensor_slices(
        (x, y) if y is not None else (x,))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    seeds = tf.data.Dataset.random(
        seed=seed + 1, rerandomize_each_iteration=True).batch(2)

    def draw(batch, s):
        images = batch[0]
        u = tf.random.stateless_uniform(tf.shape(images), seed=s)
        pixels = tf.cast(u < images, images.dtype)
        return (pixels, batch[1]) if y is not None else pixels

    return tf.data.Dataset.zip((ds, seeds)).map(draw).prefetch(
        tf.data.AUTOTUNE)


def split_halves(x):
    """Flat images `(n, 784)` -> upper `(n, 392)` and lower `(n, 392)`."""
    return x[..., :HALF], x[..., HALF:]


def join_halves(upper, lower):
    """Upper and lower halves (broadcast) -> images `(..., 28, 28)`."""
    upper, lower = np.broadcast_arrays(np.asarray(upper), np.asarray(lower))
    return np.concatenate([upper, lower], -1).reshape(upper.shape[:-1]
                                                      + (28, 28))


def labelled_subset(y, per_class=10, seed=0):
    """Sorted indices of `per_class` examples of each class, drawn for seed."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([
        rng.choice(np.flatnonzero(y == c), per_class, replace=False)
        for c in np.unique(y)]))


# --------------------------------------------------------------------------
# Bounds.
# --------------------------------------------------------------------------


def bernoulli_log_likelihood(x, logits):
    """`log p(x)` of binary `x` under Bernoulli log-odds, summed: `(batch,)`."""
    return -tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), -1)


def mean_and_error(values):
    """The mean of `values` and its standard error."""
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(
        values.std(ddof=1) / math.sqrt(len(values)))


def importance_weighted_nll(log_weights, inputs, m, batch=10):
    """The m-sample bound `-log (1/m) sum_i w_i` for each example.

    `log_weights` is a function of a batch in which each example is repeated
    `m` times (example-major: row `j * m + i` is sample `i` of example `j`);
    it draws one sample per row and returns the log importance weight of
    each row, e.g. `log p(x|z) + log p(z) - log q(z|x)`. `batch` examples
    (`batch * m` rows) go through it at a time, so memory stays bounded.

    Args:
        log_weights: a function of a tuple of tensors `(batch * m, ...)` to
            `(batch * m,)`; it is traced once with `tf.function`.
        inputs: a tuple of numpy arrays with the same first dimension.
        m: samples per example.
        batch: examples per call.

    Returns:
        A float64 numpy array `(n,)`: the bound per example, in nats.
    """
    inputs = tuple(np.asarray(a, np.float32) for a in inputs)

    @tf.function(reduce_retracing=True)
    def bound(*xs):
        repeated = [tf.repeat(a, m, axis=0) for a in xs]
        log_w = tf.reshape(log_weights(*repeated), (-1, m))
        return math.log(m) - tf.reduce_logsumexp(log_w, axis=1)

    return np.concatenate([
        bound(*(a[s:s + batch] for a in inputs)).numpy()
        for s in range(0, len(inputs[0]), batch)]).astype(np.float64)


# --------------------------------------------------------------------------
# Figures, timers, results.
# --------------------------------------------------------------------------


def tile_images(images, columns, size=28, pad=1, fill=0.5):
    """Flat images as one grid image for `imshow`, row-major, grey gaps."""
    images = np.asarray(images, np.float32).reshape(-1, size, size)
    rows, step = -(-len(images) // columns), size + pad
    grid = np.full((rows * step - pad, columns * step - pad), fill,
                   np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * step:r * step + size, c * step:c * step + size] = image
    return grid


class Timer:
    """`with Timer() as t: ...`; then `t.seconds`."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False


def machine_description():
    """CPU model and core count, for the tables' captions."""
    cpu = platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            models = [ln.split(":", 1)[1].strip() for ln in f
                      if ln.startswith("model name")]
        cpu = models[0] if models else cpu
    return f"{cpu}, {os.cpu_count()} cores"


def _fmt(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def markdown_table(rows, columns=("metric", "ours", "paper", "note")):
    """A markdown table of `rows` (dicts), one column per key in `columns`."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def render(record):
    """The markdown of one saved record."""
    lines = [f"### {record['title']}", "",
             f"Data: {record['dataset']}; "
             f"{'quick version' if record['quick'] else 'full scale'}; "
             f"machine: {record['machine']}.", "",
             markdown_table(record["rows"])]
    lines += [""] + [f"- {n}" for n in record["notes"]] if record[
        "notes"] else []
    return "\n".join(lines) + "\n"


def save_results(name, title, rows, dataset, notes=()):
    """Writes `<dir>/<name>.json` and returns the table as markdown.

    `rows` are dicts with `metric`, `ours`, `paper` (None where the paper has
    no number) and `note`. The folder is `$KERAS_GUMBEL_RESULTS_DIR`, else
    `results/` beside the notebook; `scripts/run_notebooks.py` gathers the
    files into `results.md`.
    """
    directory = os.environ.get("KERAS_GUMBEL_RESULTS_DIR") or "results"
    os.makedirs(directory, exist_ok=True)
    record = {"name": name, "title": title, "dataset": dataset,
              "quick": QUICK, "machine": machine_description(),
              "rows": rows, "notes": list(notes)}
    with open(os.path.join(directory, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1, default=float)
    return render(record)
