"""Tests of `keras_gumbel.datasets`: IDX files, the loader, binarization.

Every test writes its own tiny IDX files into `tmp_path`; none needs a
network, TFDS's data or Debian's `dataset-fashion-mnist` (one optional test
reads the real Fashion-MNIST when it is installed, and is skipped otherwise).
TFDS is made to find nothing by pointing `tfds_data_dir` at an empty folder,
and Debian's folder is monkeypatched to a missing one.

Statistical checks allow 5 standard errors (a two-sided false-alarm rate of
~6e-7 for a CLT-normal mean); the seeds are fixed, so they are deterministic.
"""

import gzip
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_gumbel import datasets

N_SE = 5.0
N_TRAIN, N_TEST, N_VALID = 12, 6, 2
REAL_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --------------------------------------------------------------------------
# Helpers and fixtures.
# --------------------------------------------------------------------------


def idx_bytes(array, type_code=0x08):
    """An IDX file's bytes for a uint8 array (the writer under test's twin)."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def scaled(images):
    """uint8 -> float32 in [0, 1], the loader's convention."""
    return images.astype(np.float32) / np.float32(255)


def write_file(path, data, gz):
    path = str(path) + (".gz" if gz else "")
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return path


def tiny_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (N_TRAIN, 28, 28), np.uint8),
        "train_labels": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (N_TEST, 28, 28), np.uint8),
        "test_labels": (np.arange(N_TEST) % 10).astype(np.uint8),
    }


def write_idx_folder(folder, arrays, gz=True, names=FILES):
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, array in arrays.items():
        paths[key] = write_file(folder / names[key], idx_bytes(array), gz)
    return paths


@pytest.fixture(autouse=True)
def _no_real_sources(monkeypatch, tmp_path):
    """No test sees the user's env var or Debian's folder unless it says so."""
    monkeypatch.delenv(datasets.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR",
                        str(tmp_path / "no-debian-package"))


@pytest.fixture
def empty_tfds(tmp_path):
    path = tmp_path / "tfds-empty"
    path.mkdir()
    return str(path)


@pytest.fixture
def tiny(tmp_path):
    arrays = tiny_arrays()
    folder = tmp_path / "tiny-mnist"
    write_idx_folder(folder, arrays)
    return str(folder), arrays


# --------------------------------------------------------------------------
# read_idx.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_read_idx_round_trip(tmp_path, gz):
    arrays = tiny_arrays()
    for key in ("train_images", "train_labels"):
        path = write_file(tmp_path / FILES[key], idx_bytes(arrays[key]), gz)
        got = datasets.read_idx(path)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])
        got[...] = 0  # writable, a copy


def test_read_idx_recognizes_gzip_by_content(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    path = tmp_path / "labels-without-gz-suffix"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(datasets.read_idx(path), labels)


def _bad_idx(tmp_path, kind):
    """Writes one malformed file; returns its path and a regex of the
    reason."""
    images = tiny_arrays()["train_images"]
    good = idx_bytes(images)
    if kind == "truncated":
        return write_file(tmp_path / "a", good[:-5], False), "truncated"
    if kind == "truncated_header":
        return write_file(tmp_path / "a", good[:9], False), "truncated"
    if kind == "truncated_gzip":
        data = gzip.compress(good)
        path = tmp_path / "a.gz"
        path.write_bytes(data[: len(data) // 2])
        return str(path), "gzip"
    if kind == "extra_bytes":
        return write_file(tmp_path / "a", good + b"\0", False), "too many"
    if kind == "wrong_magic":
        return (write_file(tmp_path / "a", b"\x12\x34" + good[2:], True),
                "magic number 0x12340803")
    if kind == "wrong_dtype":
        return (write_file(tmp_path / "a", idx_bytes(images, 0x0D), True),
                r"type code is 0x0D \(float\)")
    if kind == "empty":
        return write_file(tmp_path / "a", b"", False), "fewer than the 4"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "truncated", "truncated_header", "truncated_gzip", "extra_bytes",
    "wrong_magic", "wrong_dtype", "empty"])
def test_read_idx_bad_file(tmp_path, kind):
    path, reason = _bad_idx(tmp_path, kind)
    with pytest.raises(ValueError, match=reason) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------
# load_mnist from IDX folders.
# --------------------------------------------------------------------------


def test_load_from_data_dir(tiny, monkeypatch):
    folder, arrays = tiny
    # An explicit data_dir is read as IDX: TFDS is not consulted.
    monkeypatch.setattr(datasets, "_load_tfds", _fail("TFDS was consulted"))
    data = datasets.load_mnist(data_dir=folder, validation_size=N_VALID)
    split = N_TRAIN - N_VALID
    assert data.name == f"mnist (idx: {folder})"
    assert (data.dataset, data.source, data.location) == (
        "mnist", "idx", folder)
    assert data.x_train.shape == (split, 784)
    assert data.x_valid.shape == (N_VALID, 784)
    assert data.x_test.shape == (N_TEST, 784)
    assert [len(data.y_train), len(data.y_valid), len(data.y_test)] == [
        split, N_VALID, N_TEST]
    for x in (data.x_train, data.x_valid, data.x_test):
        assert x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
    for y in (data.y_train, data.y_valid, data.y_test):
        assert y.dtype == np.int64
    # Train is the first images, validation the last, in order: disjoint and
    # together the whole training file.
    images = scaled(arrays["train_images"]).reshape(N_TRAIN, 784)
    np.testing.assert_array_equal(data.x_train, images[:split])
    np.testing.assert_array_equal(data.x_valid, images[split:])
    np.testing.assert_array_equal(
        np.concatenate([data.y_train, data.y_valid]), arrays["train_labels"])
    np.testing.assert_array_equal(
        data.x_test, scaled(arrays["test_images"]).reshape(N_TEST, 784))
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])
    rows = {r.tobytes() for r in data.x_train}
    assert not rows & {r.tobytes() for r in data.x_valid}


def test_load_unflattened_and_no_validation(tiny):
    folder, arrays = tiny
    data = datasets.load_mnist(source="idx", data_dir=folder,
                               validation_size=0, flatten=False)
    assert data.x_train.shape == (N_TRAIN, 28, 28)
    assert data.x_valid.shape == (0, 28, 28) and data.y_valid.shape == (0,)
    np.testing.assert_array_equal(
        data.x_train, scaled(arrays["train_images"]))
    assert "train=12x28x28" in repr(data)


@pytest.mark.parametrize("names", ["plain", "dotted"])
def test_load_uncompressed_names(tmp_path, names):
    arrays = tiny_arrays()
    spelled = FILES if names == "plain" else {
        k: v.replace("-idx", ".idx") for k, v in FILES.items()}
    folder = tmp_path / "fashion-raw"
    write_idx_folder(folder, arrays, gz=False, names=spelled)
    data = datasets.load_mnist(data_dir=folder, validation_size=N_VALID)
    assert data.name == f"fashion_mnist (idx: {folder})"
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])


def test_load_from_env_var(tiny, monkeypatch, empty_tfds):
    folder, arrays = tiny
    monkeypatch.setenv(datasets.ENV_DATA_DIR, folder)
    data = datasets.load_mnist(validation_size=N_VALID,
                               tfds_data_dir=empty_tfds)
    assert data.source == "idx" and data.location == folder
    assert folder in data.name
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])


def test_load_from_debian_default(tmp_path, monkeypatch, empty_tfds):
    folder = tmp_path / "datasets" / "fashion-mnist"
    write_idx_folder(folder, tiny_arrays())
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", str(folder))
    data = datasets.load_mnist(validation_size=N_VALID,
                               tfds_data_dir=empty_tfds)
    assert data.name == f"fashion_mnist (idx: {folder})"


@pytest.mark.parametrize("kind", [
    "truncated", "truncated_gzip", "wrong_magic", "wrong_dtype"])
def test_load_bad_file_names_it(tmp_path, kind):
    folder = tmp_path / "bad"
    write_idx_folder(folder, tiny_arrays())
    bad, reason = _bad_idx(tmp_path, kind)
    target = folder / (FILES["test_images"] + ".gz")
    os.replace(bad, target)
    with pytest.raises(ValueError, match=reason) as info:
        datasets.load_mnist(data_dir=folder, validation_size=N_VALID)
    assert str(target) in str(info.value)


def test_load_mismatched_counts(tmp_path):
    arrays = tiny_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    paths = write_idx_folder(tmp_path / "bad", arrays)
    with pytest.raises(ValueError, match="12 images but 11 labels") as info:
        datasets.load_mnist(data_dir=tmp_path / "bad", validation_size=2)
    assert paths["train_images"] in str(info.value)
    assert paths["train_labels"] in str(info.value)


@pytest.mark.parametrize("key, shape, reason", [
    ("train_images", (N_TRAIN, 27, 28), "28x28 pixels"),
    ("train_images", (N_TRAIN, 784), "28x28 pixels"),
    ("test_labels", (N_TEST, 1), r"labels of shape \(n,\)"),
])
def test_load_wrong_dims(tmp_path, key, shape, reason):
    arrays = tiny_arrays()
    arrays[key] = np.zeros(shape, np.uint8)
    paths = write_idx_folder(tmp_path / "bad", arrays)
    with pytest.raises(ValueError, match=reason) as info:
        datasets.load_mnist(data_dir=tmp_path / "bad", validation_size=2)
    assert paths[key] in str(info.value)


# --------------------------------------------------------------------------
# No data; TFDS.
# --------------------------------------------------------------------------


def _fail(message):
    def fail(*args, **kwargs):
        raise AssertionError(message)
    return fail


def _assert_how_to(message):
    assert "apt-get install dataset-fashion-mnist" in message
    assert "data_dir=" in message
    assert datasets.ENV_DATA_DIR in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "download_and_prepare" in message


def test_no_source_available(empty_tfds):
    with pytest.raises(datasets.DataUnavailableError) as info:
        datasets.load_mnist(tfds_data_dir=empty_tfds)
    message = str(info.value)
    _assert_how_to(message)
    assert "tfds: TFDS's mnist is not prepared in " + empty_tfds in message
    assert datasets.DEBIAN_FASHION_MNIST_DIR + " is not a folder" in message
    assert isinstance(info.value, RuntimeError)


def test_empty_data_dir_lists_missing_files(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")  # one present
    with pytest.raises(datasets.DataUnavailableError) as info:
        datasets.load_mnist(source="idx", data_dir=folder)
    message = str(info.value)
    _assert_how_to(message)
    assert f"idx (data_dir): {folder} lacks train-labels-idx1-ubyte[.gz]" \
        in message
    assert "lacks train-images" not in message


def test_env_var_folder_without_files_is_an_error(tmp_path, monkeypatch,
                                                  empty_tfds):
    # A folder the user named is not skipped in favour of Debian's.
    debian = tmp_path / "debian"
    write_idx_folder(debian, tiny_arrays())
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", str(debian))
    monkeypatch.setenv(datasets.ENV_DATA_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(datasets.DataUnavailableError,
                       match="KERAS_GUMBEL_DATA_DIR"):
        datasets.load_mnist(tfds_data_dir=empty_tfds)


@pytest.mark.parametrize("download", [False, True])
def test_tfds_source_with_empty_dir(empty_tfds, monkeypatch, download):
    """Fails fast without downloading; download=True does try (and here,
    with the download stubbed out, fails as it does offline)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    calls = []

    def no_network(self, *args, **kwargs):
        calls.append(self.name)
        raise ConnectionError("stub: no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        no_network)
    start = time.perf_counter()
    with pytest.raises(datasets.DataUnavailableError) as info:
        datasets.load_mnist(source="tfds", tfds_data_dir=empty_tfds,
                            download=download)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    _assert_how_to(message)
    assert "idx" not in message.split("To get data")[0]  # TFDS only
    if download:
        assert calls == ["mnist"]
        assert "stub: no network" in message
    else:
        assert calls == []
        assert "not prepared" in message and "download=False" in message
        assert elapsed < 10.0
        assert os.listdir(empty_tfds) == []


def test_tfds_source_when_prepared(monkeypatch, tiny):
    """The TFDS path's conversion, with `tfds` stubbed: no data needed."""
    tfds = pytest.importorskip("tensorflow_datasets")
    folder, _ = tiny  # also present, to show TFDS comes first in "auto"
    monkeypatch.setenv(datasets.ENV_DATA_DIR, folder)
    rng = np.random.default_rng(1)
    train = (rng.integers(0, 256, (N_TRAIN, 28, 28, 1), np.uint8),
             np.arange(N_TRAIN, dtype=np.int64) % 10)
    test = (rng.integers(0, 256, (N_TEST, 28, 28, 1), np.uint8),
            np.arange(N_TEST, dtype=np.int64) % 10)

    class Builder:
        data_dir = "/fake/tfds/mnist/3.0.1"

        def is_prepared(self):
            return True

    loads = []

    def load(name, **kwargs):
        loads.append((name, kwargs))
        # tfds.load(batch_size=-1) returns whole splits as tensors.
        return tf.nest.map_structure(tf.constant, [train, test])

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: Builder())
    monkeypatch.setattr(tfds, "load", load)
    data = datasets.load_mnist(validation_size=N_VALID, flatten=False)
    assert data.name == "mnist (tfds: /fake/tfds/mnist/3.0.1)"
    assert data.source == "tfds"
    assert loads[0][0] == "mnist" and loads[0][1]["download"] is False
    np.testing.assert_array_equal(
        data.x_valid, scaled(train[0][-N_VALID:, :, :, 0]))
    assert data.x_test.shape == (N_TEST, 28, 28)
    assert data.y_train.dtype == np.int64


# --------------------------------------------------------------------------
# Arguments.
# --------------------------------------------------------------------------


def test_invalid_source():
    expected = ("Invalid value received for argument `source`. Expected one "
                "of ('auto', 'tfds', 'idx'). Received: source='x'")
    with pytest.raises(ValueError, match=re.escape(expected)):
        datasets.load_mnist(source="x")


@pytest.mark.parametrize("kwargs, argument", [
    ({"validation_size": -1}, "validation_size"),
    ({"validation_size": True}, "validation_size"),
    ({"validation_size": N_TRAIN}, "validation_size"),
    ({"flatten": 1}, "flatten"),
    ({"source": "tfds", "data_dir": "/x"}, "data_dir"),
])
def test_invalid_arguments(tiny, kwargs, argument):
    folder, _ = tiny
    kwargs.setdefault("data_dir", folder)
    with pytest.raises(ValueError, match=re.escape(
            f"Invalid value received for argument `{argument}`")):
        datasets.load_mnist(**kwargs)


# --------------------------------------------------------------------------
# Binarization.
# --------------------------------------------------------------------------


def _intensities(shape, seed=0):
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    x[:, :5] = 0.0  # exact 0 and 1 must stay as they are
    x[:, 5:10] = 1.0
    return x


def _assert_mean_within_se(b, x):
    # The count of ones is a sum of independent Bernoulli(x_i): its standard
    # error is sqrt(sum x_i (1 - x_i)).
    x = np.asarray(x, np.float64)
    se = np.sqrt(np.sum(x * (1 - x))) / x.size
    assert abs(float(np.mean(b)) - x.mean()) <= N_SE * se


def test_binarize_fixed():
    x = _intensities((500, 784))
    b = datasets.binarize_fixed(x, seed=3)
    assert b.dtype == np.float32 and b.shape == x.shape
    assert set(np.unique(b)) <= {0.0, 1.0}
    np.testing.assert_array_equal(b, datasets.binarize_fixed(x, seed=3))
    assert (b != datasets.binarize_fixed(x, seed=4)).any()
    assert (b[:, :5] == 0).all() and (b[:, 5:10] == 1).all()
    _assert_mean_within_se(b, x)


def test_binarize_fixed_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        datasets.binarize_fixed(np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match="floating-point"):
        datasets.binarize_fixed(np.zeros((2, 3), np.uint8))


def test_mnist_data_binarized(tiny):
    data = datasets.load_mnist(data_dir=tiny[0], validation_size=N_VALID)
    b = data.binarized(seed=0)
    assert set(np.unique(b.x_train)) <= {0.0, 1.0}
    np.testing.assert_array_equal(b.x_test, data.binarized(0).x_test)
    np.testing.assert_array_equal(b.y_train, data.y_train)
    # The splits get independent draws: equal images binarize differently.
    same = datasets.MnistData("same", data.x_test, data.y_test, data.x_test,
                              data.y_test, data.x_test, data.y_test)
    sb = same.binarized(0)
    assert (sb.x_train != sb.x_test).any()


def test_dynamic_binarize_map_function():
    x = tf.constant(_intensities((4, 784)))
    seed = tf.constant([1, 2], tf.int64)
    b = datasets.dynamic_binarize(x, seed)
    assert b.dtype == tf.float32 and b.shape == x.shape
    assert set(np.unique(b.numpy())) <= {0.0, 1.0}
    np.testing.assert_array_equal(b, datasets.dynamic_binarize(x, seed))
    assert (b.numpy() != datasets.dynamic_binarize(x, [1, 3]).numpy()).any()
    with pytest.raises(ValueError, match="floating-point"):
        datasets.dynamic_binarize(tf.zeros((2, 2), tf.int32), seed)


def _epochs(ds, n=2):
    return [[[t.numpy() for t in tf.nest.flatten(e)] for e in ds]
            for _ in range(n)]


def test_dynamic_binarized_dataset():
    n, half = 64, 392
    # Upper half: exactly 0/1, encoding the label (deterministic under
    # binarization); lower half: intensity 0.5 (random).
    labels = np.arange(n) % 10
    x = np.full((n, 784), 0.5, np.float32)
    x[:, :half] = (np.arange(half) % 10 == labels[:, None])
    ds = datasets.dynamic_binarized_dataset(x, labels, batch_size=16, seed=7)
    first, second = _epochs(ds)
    again = _epochs(datasets.dynamic_binarized_dataset(
        x, labels, batch_size=16, seed=7))
    other = _epochs(datasets.dynamic_binarized_dataset(
        x, labels, batch_size=16, seed=8), 1)[0]

    def stack(epoch):
        return (np.concatenate([b[0] for b in epoch]),
                np.concatenate([b[1] for b in epoch]))

    xs1, ys1 = stack(first)
    xs2, ys2 = stack(second)
    assert xs1.shape == (n, 784) and xs1.dtype == np.float32
    assert set(np.unique(xs1)) <= {0.0, 1.0}
    # Labels stay with their images, every example once per epoch.
    for xs, ys in ((xs1, ys1), (xs2, ys2)):
        np.testing.assert_array_equal(
            xs[:, :half], np.arange(half) % 10 == ys[:, None])
        assert sorted(ys) == sorted(labels)
    # Fresh pixels each epoch, reproducible for the seed, seed-dependent.
    assert (xs1[:, half:] != xs2[:, half:]).mean() > 0.3
    for got, want in zip(again, (first, second)):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    assert (stack(other)[0] != xs1).any()
    _assert_mean_within_se(xs1[:, half:], x[:, half:])

    unlabelled = datasets.dynamic_binarized_dataset(
        x, batch_size=10, seed=0, shuffle=False, drop_remainder=True)
    shapes = [tuple(b.shape) for b in unlabelled]
    assert shapes == [(10, 784)] * (n // 10)


# --------------------------------------------------------------------------
# Experiment helpers.
# --------------------------------------------------------------------------


def test_split_halves():
    rows = np.repeat(np.arange(28, dtype=np.float32)[:, None], 28, axis=1)
    images = np.stack([rows, rows + 100])
    upper, lower = datasets.split_halves(images)
    assert upper.shape == lower.shape == (2, 14, 28)
    assert upper[0].max() == 13 and lower[0].min() == 14
    np.testing.assert_array_equal(np.concatenate([upper, lower], -2), images)

    flat = images.reshape(2, 784)
    fu, fl = datasets.split_halves(flat)
    assert fu.shape == fl.shape == (2, 392)
    np.testing.assert_array_equal(fu, upper.reshape(2, 392))
    np.testing.assert_array_equal(np.concatenate([fu, fl], -1), flat)

    tu, tl = datasets.split_halves(tf.constant(flat))
    np.testing.assert_array_equal(tf.concat([tu, tl], -1).numpy(), flat)
    with pytest.raises(ValueError, match="shape"):
        datasets.split_halves(np.zeros((2, 100)))


def test_labelled_subset():
    y = np.random.default_rng(0).integers(0, 10, 1000)
    idx = datasets.labelled_subset(y, per_class=10, seed=0)
    assert idx.shape == (100,) and idx.dtype == np.int64
    assert len(np.unique(idx)) == 100
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10),
                                  [10] * 10)
    np.testing.assert_array_equal(idx, datasets.labelled_subset(y, 10, 0))
    assert (idx != datasets.labelled_subset(y, 10, 1)).any()
    assert len(datasets.labelled_subset(y, per_class=3)) == 30
    with pytest.raises(ValueError, match="per_class"):
        datasets.labelled_subset(np.array([0, 0, 1]), per_class=2)


# --------------------------------------------------------------------------
# Import cost; the real files.
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_import_does_not_import_tfds():
    code = ("import sys, keras_gumbel.datasets; "
            "sys.exit('tensorflow_datasets' in sys.modules)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.skipif(not os.path.isdir(REAL_DIR),
                    reason=f"{REAL_DIR} missing (apt-get install "
                    "dataset-fashion-mnist)")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", REAL_DIR)
    data = datasets.load_mnist(source="idx")
    assert data.name == f"fashion_mnist (idx: {REAL_DIR})"
    assert [len(data.x_train), len(data.x_valid), len(data.x_test)] == [
        50000, 10000, 10000]
    assert data.x_train.shape[1:] == (784,)
    assert set(np.unique(data.y_test)) == set(range(10))
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
