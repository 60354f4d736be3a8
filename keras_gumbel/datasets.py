"""MNIST-like data for the experiments of Jang, Gu, Poole (ICLR 2017).

Loading:

- `load_mnist(source="auto", data_dir=None, validation_size=10000,
  tfds_data_dir=None, flatten=True, download=False)` returns an `MnistData`:
  `name` (which data it is and where it came from, e.g. ``"mnist (tfds:
  ~/tensorflow_datasets/mnist/3.0.1)"`` or ``"fashion_mnist (idx:
  /usr/share/datasets/fashion-mnist)"``), `x_train, y_train, x_valid, y_valid,
  x_test, y_test`, and `dataset`, `source`, `location` (the parts of `name`).
- Images are float32 in [0, 1] (the bytes divided by 255). With
  `flatten=True` (the default, what the paper's MLP models take) they have
  shape `(n, 784)`, row-major (pixel `28 * row + column`); with
  `flatten=False`, `(n, 28, 28)`. Labels are int64 of shape `(n,)`.
- Splits, as in the paper: train is the first 50,000 of the 60,000 training
  images, validation the last 10,000 of them (`validation_size`; 0 gives
  empty validation arrays), test the 10,000 test images.
- `read_idx(path)` reads one IDX file (the format MNIST and Fashion-MNIST
  ship in), gzipped or not, and checks its header against its size.

Where the data comes from (`source`):

- ``"tfds"``: `tfds.load("mnist", ...)` from tensorflow-datasets, from
  `tfds_data_dir` (None: TFDS's default, `$TFDS_DATA_DIR` or
  `~/tensorflow_datasets`). Unless `download=True`, nothing is downloaded:
  when the data is not prepared there, this fails at once with
  `DataUnavailableError`.
- ``"idx"``: the four IDX files (`train-images-idx3-ubyte.gz`,
  `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
  `t10k-labels-idx1-ubyte.gz`; the un-gzipped names, and the
  `train-images.idx3-ubyte` spelling, are accepted too) from the first folder
  of: `data_dir`; the environment variable `KERAS_GUMBEL_DATA_DIR`;
  `DEBIAN_FASHION_MNIST_DIR` = `/usr/share/datasets/fashion-mnist`, where
  Debian's and Ubuntu's `apt-get install dataset-fashion-mnist` puts
  Fashion-MNIST. The first of these that is set is the one read: a folder
  named by the user that lacks the files is an error, not skipped.
- ``"auto"`` (default): an explicit `data_dir` is read as ``"idx"`` (naming a
  folder asks for it). Otherwise TFDS's mnist if it is prepared (or can be
  downloaded, with `download=True`), else ``"idx"`` from
  `KERAS_GUMBEL_DATA_DIR` or the Debian folder.

An IDX folder's data is named `fashion_mnist` when its path contains
"fashion", `mnist` otherwise: the files do not say which data they hold, so
check `name` (it includes the folder). When no source has data,
`DataUnavailableError` says what was tried and how to get data. A file that
is there but malformed (truncated, wrong magic number, wrong image size,
image and label counts that differ) is a `ValueError` naming the file.

Binarization, as the paper uses it:

- `binarize_fixed(x, seed=0)`: one stochastic binarization drawn once (each
  pixel is 1 with probability its intensity), deterministic for a seed; for
  the structured-output and VAE experiments. `MnistData.binarized(seed)`
  binarizes the three splits with independent draws.
- `dynamic_binarize(x, seed)`: the same with TensorFlow's stateless ops for a
  seed tensor of shape `(2,)`; a `tf.data` map function.
  `dynamic_binarized_dataset(x, y=None, batch_size=100, seed=0)` builds a
  `tf.data.Dataset` that draws fresh pixels on every pass (epoch), the
  sequence of passes reproducible for a seed; for the semi-supervised
  experiment.

Helpers: `split_halves(x)` (upper rows 0-13 and lower rows 14-27, 392 pixels
each, for the structured-output experiment) and `labelled_subset(y,
per_class=10, seed=0)` (indices of a class-balanced labelled subset: 100
labels for the semi-supervised experiment).

tensorflow-datasets is imported only when the TFDS source is tried.
"""

import contextlib
import dataclasses
import gzip
import logging
import numbers
import os

import numpy as np
import tensorflow as tf

from keras_gumbel.ops import _check_positive_int, _invalid

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR",
    "DataUnavailableError",
    "MnistData",
    "read_idx",
    "load_mnist",
    "binarize_fixed",
    "dynamic_binarize",
    "dynamic_binarized_dataset",
    "split_halves",
    "labelled_subset",
]

# Where Debian's `dataset-fashion-mnist` package installs its files. Read when
# `load_mnist` runs (tests monkeypatch it).
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# Environment variable naming a folder of IDX files.
ENV_DATA_DIR = "KERAS_GUMBEL_DATA_DIR"

_SOURCES = ("auto", "tfds", "idx")
_IMAGE_SIZE = 28
_N_PIXELS = _IMAGE_SIZE * _IMAGE_SIZE

# The four files of an IDX folder: key -> accepted names, preferred first.
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX type codes (the third byte of the magic number). Only unsigned bytes
# are read; the others are named in the error.
_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}
_GZIP_MAGIC = b"\x1f\x8b"

_HOW_TO_GET_DATA = (
    "To get data, do one of:\n"
    "  - install Fashion-MNIST (the offline default) on Debian or Ubuntu: "
    "`sudo apt-get install dataset-fashion-mnist` (its files go to "
    f"{DEBIAN_FASHION_MNIST_DIR});\n"
    "  - pass `data_dir=` to `load_mnist` (or set the environment variable "
    f"{ENV_DATA_DIR}) to a folder holding MNIST's four IDX files: "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (gzipped or "
    "not; from https://yann.lecun.com/exdb/mnist/ or a mirror);\n"
    "  - prepare TFDS's mnist: on a machine with a network, run "
    "`python -c \"import tensorflow_datasets as tfds; "
    "tfds.builder('mnist').download_and_prepare()\"` and copy "
    "~/tensorflow_datasets/mnist here (or pass `tfds_data_dir=`), or call "
    "`load_mnist(download=True)` where there is a network."
)


class DataUnavailableError(RuntimeError):
    """No source of MNIST-like data is available; the message says how to get
    one."""


class _SourceUnavailable(Exception):
    """Internal: one source has no data (the message says why)."""


# --------------------------------------------------------------------------
# The container.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class MnistData:
    """The three splits of an MNIST-like dataset, and where it came from.

    Attributes:
        name: e.g. ``"mnist (tfds: /root/tensorflow_datasets/mnist/3.0.1)"``
            or ``"fashion_mnist (idx: /usr/share/datasets/fashion-mnist)"``.
        x_train, y_train, x_valid, y_valid, x_test, y_test: images (float32 in
            [0, 1], `(n, 784)` or `(n, 28, 28)`) and labels (int64, `(n,)`).
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        source: ``"tfds"`` or ``"idx"``.
        location: the folder read.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    dataset: str = ""
    source: str = ""
    location: str = ""

    def __repr__(self):
        def shape(a):
            return "x".join(map(str, a.shape))

        return (
            f"MnistData(name={self.name!r}, train={shape(self.x_train)}, "
            f"valid={shape(self.x_valid)}, test={shape(self.x_test)})"
        )

    def binarized(self, seed=0):
        """A copy with each split's images binarized once (`binarize_fixed`).

        The three splits get independent draws derived from `seed`, so the
        result is deterministic for a seed, but its training images are not
        `binarize_fixed(self.x_train, seed)`.
        """
        seed = _check_seed(seed)
        return dataclasses.replace(
            self,
            name=f"{self.name}, binarized (seed={seed})",
            x_train=binarize_fixed(self.x_train, seed=[seed, 0]),
            x_valid=binarize_fixed(self.x_valid, seed=[seed, 1]),
            x_test=binarize_fixed(self.x_test, seed=[seed, 2]),
        )


# --------------------------------------------------------------------------
# IDX files.
# --------------------------------------------------------------------------


def read_idx(path):
    """Reads an IDX file of unsigned bytes (gzipped or not) into an array.

    The format: a 4-byte magic number (two zero bytes, the type code 0x08 for
    unsigned bytes, the number of dimensions), one big-endian int32 per
    dimension, then the data in row-major order. MNIST's label files have
    magic number 0x00000801 (rank 1), its image files 0x00000803 (rank 3).
    Gzip is recognized by its own magic bytes, whatever the file's name.

    Args:
        path: the file (str or path-like).

    Returns:
        A writable uint8 numpy array of the shape the header gives.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a well-formed IDX file of unsigned bytes
            (the message names the file and what is wrong).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise _invalid("path", "a file path (str or path-like)", path)
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise ValueError(
                f"Cannot read IDX file {path}: its gzip data is corrupt or "
                f"truncated ({e})."
            ) from None
    if len(raw) < 4:
        raise ValueError(
            f"Cannot read IDX file {path}: it has {len(raw)} bytes, fewer "
            "than the 4 of the magic number (the file is truncated or empty)."
        )
    magic = int.from_bytes(raw[:4], "big")
    zeros, type_code, ndim = raw[:2], raw[2], raw[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"Cannot read IDX file {path}: wrong magic number 0x{magic:08X}. "
            "An IDX file starts with two zero bytes, a type code and the "
            "number of dimensions (0x00000801 for labels, 0x00000803 for "
            "images)."
        )
    if type_code != 0x08:
        raise ValueError(
            f"Cannot read IDX file {path}: its data type code is "
            f"0x{type_code:02X} ({_IDX_TYPES[type_code]}); only 0x08 "
            "(unsigned byte), the type of MNIST's files, is read."
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"Cannot read IDX file {path}: the file is truncated: its header "
            f"announces {ndim} dimensions ({header_size} header bytes) but "
            f"the file has {len(raw)} bytes."
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)
    )
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(raw) - header_size
    if found < expected:
        raise ValueError(
            f"Cannot read IDX file {path}: the file is truncated: its header "
            f"gives shape {shape} ({expected} bytes of data) but it holds "
            f"{found} bytes of data."
        )
    if found > expected:
        raise ValueError(
            f"Cannot read IDX file {path}: its header gives shape {shape} "
            f"({expected} bytes of data) but it holds {found} bytes of data "
            f"({found - expected} too many)."
        )
    return np.frombuffer(raw, np.uint8, count=expected,
                         offset=header_size).reshape(shape).copy()


def _find_idx_file(folder, stem):
    """The path of `stem` in `folder` under an accepted name, or None."""
    # "train-images-idx3-ubyte" -> "train-images.idx3-ubyte" too.
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _idx_paths(folder):
    """The four files in `folder`, or `_SourceUnavailable` saying what's
    missing."""
    if not os.path.isdir(folder):
        raise _SourceUnavailable(f"{folder} is not a folder")
    paths, missing = {}, []
    for key, stem in _IDX_FILES.items():
        path = _find_idx_file(folder, stem)
        if path is None:
            missing.append(stem + "[.gz]")
        paths[key] = path
    if missing:
        raise _SourceUnavailable(
            f"{folder} lacks {', '.join(missing)}")
    return paths


def _read_images_and_labels(images_path, labels_path):
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (_IMAGE_SIZE, _IMAGE_SIZE):
        raise ValueError(
            f"Cannot use IDX file {images_path}: expected images of "
            f"{_IMAGE_SIZE}x{_IMAGE_SIZE} pixels, shape (n, {_IMAGE_SIZE}, "
            f"{_IMAGE_SIZE}) (magic number 0x00000803); got shape "
            f"{images.shape}."
        )
    if labels.ndim != 1:
        raise ValueError(
            f"Cannot use IDX file {labels_path}: expected labels of shape "
            f"(n,) (magic number 0x00000801); got shape {labels.shape}."
        )
    if len(images) != len(labels):
        raise ValueError(
            f"IDX files {images_path} and {labels_path} do not match: "
            f"{len(images)} images but {len(labels)} labels."
        )
    return images, labels


def _dataset_name_of_folder(folder):
    return "fashion_mnist" if "fashion" in folder.lower() else "mnist"


def _load_idx_folder(folder):
    paths = _idx_paths(folder)
    x_train, y_train = _read_images_and_labels(
        paths["train_images"], paths["train_labels"])
    x_test, y_test = _read_images_and_labels(
        paths["test_images"], paths["test_labels"])
    return (_dataset_name_of_folder(folder), folder,
            x_train, y_train, x_test, y_test)


# --------------------------------------------------------------------------
# TFDS.
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_absl():
    # TFDS logs a warning for every folder it finds without data.
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _load_tfds(tfds_data_dir, download):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise _SourceUnavailable(
            f"tensorflow_datasets cannot be imported ({e})") from None
    with _quiet_absl():
        try:
            builder = tfds.builder("mnist", data_dir=tfds_data_dir)
            location = str(builder.data_dir)
            prepared = builder.is_prepared()
        except Exception as e:  # noqa: BLE001 - any failure: no TFDS data.
            raise _SourceUnavailable(
                f"TFDS cannot make mnist's builder ({type(e).__name__}: {e})"
            ) from None
        if not prepared and not download:
            raise _SourceUnavailable(
                f"TFDS's mnist is not prepared in {location} and "
                "download=False")

        def load():
            return tfds.as_numpy(tfds.load(
                "mnist", split=["train", "test"], as_supervised=True,
                batch_size=-1, download=download, data_dir=tfds_data_dir))

        if prepared:
            # The data is there: a failure to read it is an error to see.
            splits = load()
        else:
            try:
                splits = load()
            except Exception as e:  # noqa: BLE001 - e.g. no network.
                raise _SourceUnavailable(
                    f"TFDS could not download and prepare mnist in "
                    f"{location} ({type(e).__name__}: {e})") from None
    (x_train, y_train), (x_test, y_test) = splits
    x_train = np.asarray(x_train).reshape(-1, _IMAGE_SIZE, _IMAGE_SIZE)
    x_test = np.asarray(x_test).reshape(-1, _IMAGE_SIZE, _IMAGE_SIZE)
    return "mnist", location, x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------
# The loader.
# --------------------------------------------------------------------------


def _check_seed(seed):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(
            seed, numbers.Integral) or seed < 0:
        raise _invalid("seed", "a non-negative integer", seed)
    return int(seed)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise _invalid(name, "a bool", value)
    return bool(value)


def _optional_dir(value, name):
    if value is None:
        return None
    try:
        return os.fspath(value)
    except TypeError:
        raise _invalid(name, "None or a path to a folder", value) from None


def load_mnist(source="auto", data_dir=None, validation_size=10000,
               tfds_data_dir=None, flatten=True, download=False):
    """Loads MNIST (or an MNIST-like IDX dataset) as train/valid/test arrays.

    Splits: train is the first `60000 - validation_size` training images,
    validation the last `validation_size` of them (the paper's 50,000 /
    10,000), test the 10,000 test images. Images are float32 in [0, 1],
    `(n, 784)` with `flatten=True` (row-major) or `(n, 28, 28)`; labels are
    int64. `name` on the result says which data was read, from where.

    Args:
        source: ``"auto"``, ``"tfds"`` or ``"idx"`` (see the module's
            docstring). ``"auto"`` reads an explicit `data_dir`; otherwise
            TFDS's mnist when prepared, else the IDX folder of
            `KERAS_GUMBEL_DATA_DIR` or Debian's Fashion-MNIST.
        data_dir: a folder of the four IDX files. Not with ``"tfds"``.
        validation_size: how many of the last training images form the
            validation split, in `[0, number of training images)`.
        tfds_data_dir: TFDS's data folder; None is TFDS's default.
        flatten: images of shape `(n, 784)` (True) or `(n, 28, 28)`.
        download: let TFDS download mnist when it is not prepared (needs a
            network). When False, nothing is downloaded.

    Returns:
        An `MnistData`.

    Raises:
        DataUnavailableError: no source has data; the message says what was
            tried and how to get data.
        ValueError: an invalid argument, or an IDX file that is malformed.
    """
    if not isinstance(source, str) or source not in _SOURCES:
        raise _invalid("source", f"one of {_SOURCES}", source)
    data_dir = _optional_dir(data_dir, "data_dir")
    tfds_data_dir = _optional_dir(tfds_data_dir, "tfds_data_dir")
    if isinstance(validation_size, (bool, np.bool_)) or not isinstance(
            validation_size, numbers.Integral) or validation_size < 0:
        raise _invalid("validation_size", "a non-negative integer",
                       validation_size)
    validation_size = int(validation_size)
    flatten = _check_bool(flatten, "flatten")
    download = _check_bool(download, "download")
    if source == "tfds" and data_dir is not None:
        raise _invalid(
            "data_dir", "None when source='tfds' (`data_dir` is a folder of "
            "IDX files; TFDS's folder is `tfds_data_dir`)", data_dir)

    tried = []
    loaded = None
    if source == "tfds" or (source == "auto" and data_dir is None):
        try:
            loaded = _load_tfds(tfds_data_dir, download)
            kind = "tfds"
        except _SourceUnavailable as e:
            tried.append(f"tfds: {e}")
    if loaded is None and source != "tfds":
        if data_dir is not None:
            folder, origin = data_dir, "data_dir"
        elif os.environ.get(ENV_DATA_DIR):
            folder, origin = os.environ[ENV_DATA_DIR], ENV_DATA_DIR
        else:
            folder, origin = DEBIAN_FASHION_MNIST_DIR, "Debian's default"
        try:
            loaded = _load_idx_folder(folder)
            kind = "idx"
        except _SourceUnavailable as e:
            tried.append(f"idx ({origin}): {e}")
    if loaded is None:
        raise DataUnavailableError(
            f"No MNIST data for load_mnist(source={source!r}). Tried:\n"
            + "".join(f"  - {t}\n" for t in tried) + _HOW_TO_GET_DATA)

    dataset, location, x_train, y_train, x_test, y_test = loaded
    n_train = len(x_train)
    if validation_size >= n_train:
        raise ValueError(
            "Invalid value received for argument `validation_size`. Expected "
            f"an integer in [0, {n_train}) (the data has {n_train} training "
            f"images). Received: validation_size={validation_size}")

    def images(x):
        x = x.astype(np.float32)
        x /= np.float32(255.0)
        return x.reshape(len(x), -1) if flatten else x

    def labels(y):
        return np.asarray(y, np.int64)

    split = n_train - validation_size
    return MnistData(
        name=f"{dataset} ({kind}: {location})",
        x_train=images(x_train[:split]),
        y_train=labels(y_train[:split]),
        x_valid=images(x_train[split:]),
        y_valid=labels(y_train[split:]),
        x_test=images(x_test),
        y_test=labels(y_test),
        dataset=dataset,
        source=kind,
        location=location,
    )


# --------------------------------------------------------------------------
# Binarization.
# --------------------------------------------------------------------------


def _check_intensities(x, name="x"):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected "
            "floating-point intensities in [0, 1]. Received: "
            f"{name} with dtype={x.dtype}")
    if x.size and not (np.all(x >= 0) and np.all(x <= 1)):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected "
            "intensities in [0, 1] (no NaN). Received: values in "
            f"[{np.nanmin(x)}, {np.nanmax(x)}]")
    return x


def binarize_fixed(x, seed=0):
    """One fixed stochastic binarization: pixel is 1 with probability `x`.

    Drawn once with numpy's `default_rng(seed)`: the same `x` and `seed`
    always give the same result. Use a different seed per split (or
    `MnistData.binarized`) so that the splits get independent draws.

    Args:
        x: intensities in [0, 1], any shape, floating point.
        seed: a non-negative int (or anything `np.random.default_rng`
            takes, e.g. a list of ints).

    Returns:
        A float32 array of `x`'s shape with values in {0, 1}.
    """
    x = _check_intensities(x)
    if isinstance(seed, (numbers.Integral, np.integer)):
        seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    u = rng.random(x.shape, dtype=np.float32)
    # u in [0, 1): P(u < p) = p, so 0 stays 0 and 1 stays 1.
    return (u < x).astype(np.float32)


def dynamic_binarize(x, seed):
    """Bernoulli pixels for a stateless seed: a `tf.data` map function.

    Each pixel is 1 with probability its intensity, drawn with
    `tf.random.stateless_uniform`: the same `x` and `seed` give the same
    result. Give a new seed for each batch and epoch to draw fresh pixels,
    as `dynamic_binarized_dataset` does.

    Args:
        x: a floating-point tensor of intensities in [0, 1] (not checked:
            values outside are clipped in effect).
        seed: an int32/int64 tensor of shape `(2,)`.

    Returns:
        A tensor of `x`'s shape and dtype with values in {0, 1}.
    """
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(
            "Invalid value received for argument `x`. Expected a "
            "floating-point tensor of intensities in [0, 1]. Received: x "
            f"with dtype={x.dtype.name}")
    u = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=x.dtype)
    return tf.cast(u < x, x.dtype)


def dynamic_binarized_dataset(x, y=None, batch_size=100, seed=0,
                              shuffle=True, drop_remainder=False):
    """A `tf.data.Dataset` of batches binarized anew on every pass.

    Each pass over the dataset (each Keras epoch) shuffles (when `shuffle`)
    and draws new Bernoulli pixels (`dynamic_binarize`, one stateless seed
    per batch, from `tf.data.Dataset.random(..., rerandomize_each_iteration=
    True)`). The sequence of passes is deterministic for `seed` (and TF's
    global seed, which `keras.utils.set_random_seed` sets): two datasets
    built alike give the same first pass, the same second pass, and so on.

    Args:
        x: intensities in [0, 1], e.g. `MnistData.x_train`.
        y: optional labels, `(n,)`; then elements are `(x_batch, y_batch)`,
            else `x_batch`.
        batch_size: a positive int.
        seed: a non-negative int.
        shuffle: reshuffle the examples on each pass.
        drop_remainder: drop the last, smaller batch.

    Returns:
        A `tf.data.Dataset` of float32 batches with values in {0, 1}.
    """
    x = _check_intensities(x).astype(np.float32, copy=False)
    seed = _check_seed(seed)
    batch_size = _check_positive_int(batch_size, "batch_size")
    shuffle = _check_bool(shuffle, "shuffle")
    drop_remainder = _check_bool(drop_remainder, "drop_remainder")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(
                "Invalid value received for argument `y`. Expected as many "
                f"labels as images ({len(x)}). Received: y with "
                f"shape={y.shape}")
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    # Two random int64 per batch: the stateless seed. A new sequence on each
    # pass, deterministic for the seed.
    seeds = tf.data.Dataset.random(
        seed=seed + 1, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))
    if y is not None:
        ds = ds.map(lambda xy, s: (dynamic_binarize(xy[0], s), xy[1]),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda xb, s: dynamic_binarize(xb, s),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------
# Helpers for the experiments.
# --------------------------------------------------------------------------


def split_halves(x):
    """Splits digits into the upper (rows 0-13) and lower (rows 14-27) half.

    Works on numpy arrays and tensors. Flat images `(..., 784)` give two
    `(..., 392)` halves (`concatenate(axis=-1)` recovers them); images
    `(..., 28, 28)` give two `(..., 14, 28)` halves (`axis=-2`).

    Returns:
        `(upper, lower)`.
    """
    shape = tuple(x.shape)
    half = _IMAGE_SIZE // 2
    if len(shape) >= 1 and shape[-1] == _N_PIXELS:
        return x[..., :half * _IMAGE_SIZE], x[..., half * _IMAGE_SIZE:]
    if len(shape) >= 2 and shape[-2:] == (_IMAGE_SIZE, _IMAGE_SIZE):
        return x[..., :half, :], x[..., half:, :]
    raise ValueError(
        "Invalid value received for argument `x`. Expected images of shape "
        f"(..., {_N_PIXELS}) or (..., {_IMAGE_SIZE}, {_IMAGE_SIZE}). "
        f"Received: x with shape={shape}")


def labelled_subset(y, per_class=10, seed=0):
    """Indices of a class-balanced labelled subset, for semi-supervised runs.

    Picks `per_class` examples of each class present in `y`, uniformly
    without replacement with `np.random.default_rng(seed)` (deterministic
    for a seed): the paper's 100 labels are `per_class=10` on MNIST.

    Args:
        y: integer labels of shape `(n,)`.
        per_class: a positive int.
        seed: a non-negative int.

    Returns:
        A sorted int64 array of `per_class * number of classes` indices.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "Invalid value received for argument `y`. Expected integer "
            f"labels of shape (n,). Received: y with shape={y.shape}, "
            f"dtype={y.dtype}")
    per_class = _check_positive_int(per_class, "per_class")
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y):
        candidates = np.flatnonzero(y == c)
        if len(candidates) < per_class:
            raise ValueError(
                f"Invalid value received for argument `per_class`. Expected "
                f"at most {len(candidates)}, the number of examples of class "
                f"{c}. Received: per_class={per_class}")
        picked.append(rng.choice(candidates, size=per_class, replace=False))
    if not picked:
        return np.zeros((0,), np.int64)
    return np.sort(np.concatenate(picked)).astype(np.int64)
