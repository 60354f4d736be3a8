"""The notebooks' helper module, `notebooks/paper.py` (not installed).

Data on tiny IDX files made here; the m-sample bound against exact
enumeration on a model small enough to sum over every code.
"""

import gzip
import itertools
import json
import math
import os
import struct
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gumbel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "notebooks"))
import paper  # noqa: E402


def write_idx(path, array, compress):
    header = b"\0\0\x08" + bytes([array.ndim]) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path):
    """A tiny MNIST-format folder: 12 training and 4 test images whose
    pixels all equal 20 * label, so images and labels can be matched."""
    rng = np.random.default_rng(0)
    for stem, n, compress in (("train", 12, True), ("t10k", 4, False)):
        labels = rng.integers(0, 10, n)
        images = np.repeat(20 * labels, 28 * 28).reshape(n, 28, 28)
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte"
                  f"{'.gz' if compress else ''}", images, compress)
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte"
                  f"{'.gz' if compress else ''}", labels, compress)
    return tmp_path


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    path = str(tmp_path / ("a.gz" if compress else "a"))
    write_idx(path, array, compress)
    np.testing.assert_array_equal(paper.read_idx(path), array)


def test_read_idx_names_a_truncated_file(tmp_path):
    path = str(tmp_path / "bad")
    write_idx(path, np.zeros((2, 3)), compress=False)
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="bad: not an IDX file"):
        paper.read_idx(path)


def test_load_mnist_reads_the_idx_folder(idx_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # no TFDS
    monkeypatch.setenv("KERAS_GUMBEL_DATA_DIR", str(idx_folder))
    data = paper.load_mnist(validation_size=5)
    assert data.x_train.shape == (7, 784) and data.x_valid.shape == (5, 784)
    assert data.x_test.shape == (4, 784) and data.x_train.dtype == np.float32
    assert data.dataset == "mnist" and str(idx_folder) in data.name
    for x, y in ((data.x_train, data.y_train), (data.x_valid, data.y_valid),
                 (data.x_test, data.y_test)):
        np.testing.assert_allclose(x, np.repeat(20 * y / 255.0, 784).reshape(
            -1, 784), rtol=1e-6)


def test_load_mnist_names_the_folder_without_files(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    monkeypatch.setenv("KERAS_GUMBEL_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError,
                       match=f"{tmp_path} has no train-images-idx3-ubyte"):
        paper.load_mnist()


def test_binarize_draws_each_pixel_with_its_intensity():
    x = np.tile(np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32), (20_000, 1))
    b = paper.binarize(x, seed=[0, 1])
    np.testing.assert_array_equal(b, paper.binarize(x, seed=[0, 1]))
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert b[:, 0].max() == 0.0 and b[:, 4].min() == 1.0
    # Binomial standard error at n = 20000 is at most 0.0036: 5 of them.
    np.testing.assert_allclose(b.mean(0), x[0], atol=0.018)


def test_binarized_dataset_draws_fresh_pixels_each_pass_and_keeps_labels():
    labels = np.arange(8) % 2
    x = np.repeat(np.where(labels == 1, 0.999, 0.001), 784).reshape(8, 784)
    x = x.astype(np.float32)
    ds = paper.binarized_dataset(x, labels, batch_size=4, seed=3)
    first = [(a.numpy(), b.numpy()) for a, b in ds]
    second = [(a.numpy(), b.numpy()) for a, b in ds]
    again = [(a.numpy(), b.numpy()) for a, b in paper.binarized_dataset(
        x, labels, batch_size=4, seed=3)]
    for (images, y), (images2, _), (images3, _) in zip(first, second, again):
        # Labels stay with their images: label-1 images are nearly all 1s.
        np.testing.assert_array_equal(images.mean(1) > 0.5, y == 1)
        np.testing.assert_array_equal(images, images3)  # same seed
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, second))
    unlabelled = next(iter(paper.binarized_dataset(x, batch_size=8, seed=0)))
    assert unlabelled.shape == (8, 784)


def test_halves_round_trip():
    x = np.arange(2 * 784).reshape(2, 784)
    upper, lower = paper.split_halves(x)
    assert upper.shape == lower.shape == (2, 392)
    np.testing.assert_array_equal(paper.join_halves(upper, lower),
                                  x.reshape(2, 28, 28))
    # One given half above several lower halves (broadcast).
    assert paper.join_halves(upper[0], lower).shape == (2, 28, 28)


def test_labelled_subset_is_balanced_and_reproducible():
    y = np.repeat(np.arange(10), 30)
    picked = paper.labelled_subset(y, per_class=10, seed=4)
    np.testing.assert_array_equal(np.bincount(y[picked]), np.full(10, 10))
    assert len(set(picked)) == 100
    np.testing.assert_array_equal(
        picked, paper.labelled_subset(y, per_class=10, seed=4))


def test_bernoulli_log_likelihood_matches_tfp():
    tfd = pytest.importorskip("tensorflow_probability").distributions
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (5, 7)).astype(np.float32)
    x = (rng.random((5, 7)) < 0.5).astype(np.float32)
    expected = tf.reduce_sum(tfd.Bernoulli(logits=logits).log_prob(x), -1)
    np.testing.assert_allclose(paper.bernoulli_log_likelihood(x, logits),
                               expected, rtol=1e-5)


def test_mean_and_error():
    mean, error = paper.mean_and_error([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0
    assert error == pytest.approx(math.sqrt(14 / 3) / 2)


# A model small enough to enumerate: 3 binary latents z with a
# Bernoulli(0.5) prior, 4 binary pixels x ~ Bernoulli(sigmoid(W z + b)),
# and a factorized proposal q(z|x) = Bernoulli(sigmoid(V x + c)).
W = np.array([[2.0, -1.0, 0.5, 1.5], [-2.0, 1.0, 1.0, 0.0],
              [0.5, 0.5, -3.0, 1.0]], np.float32)
B = np.array([-0.5, 0.2, 0.1, -1.0], np.float32)
V = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0], [0.0, 0.5, 0.5],
              [-1.0, 0.2, 0.7]], np.float32)
C = np.array([0.1, -0.2, 0.3], np.float32)
X = np.array([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]], np.float32)


def exact(x):
    """-log p(x), -ELBO(x) under q, and the relative standard deviation of
    the weights w = p(x, z) / q(z|x) under q, by summing over the 8 codes."""
    codes = np.array(list(itertools.product([0, 1], repeat=3)), np.float32)
    log_px_z = paper.bernoulli_log_likelihood(
        np.broadcast_to(x, (8, 4)), codes @ W + B).numpy().astype(np.float64)
    log_pz = -3 * math.log(2)
    log_q = paper.bernoulli_log_likelihood(
        codes, np.broadcast_to(x @ V + C, (8, 3))).numpy().astype(np.float64)
    log_joint = log_px_z + log_pz
    neg_log_px = -np.logaddexp.reduce(log_joint)
    neg_elbo = -np.sum(np.exp(log_q) * (log_joint - log_q))
    relative_w = np.exp(log_joint - log_q + neg_log_px)  # w / p(x)
    relative_sd = math.sqrt(np.sum(np.exp(log_q) * (relative_w - 1) ** 2))
    return neg_log_px, neg_elbo, relative_sd


def log_weights_fn(seed):
    """log p(x|z) + log p(z) - log q(z|x), one z ~ q(z|x) per row."""
    gen = keras.random.SeedGenerator(seed)

    def log_weights(x):
        q_logits = x @ V + C
        z = keras_gumbel.ops.gumbel_sigmoid(q_logits, hard=True, seed=gen)
        return (paper.bernoulli_log_likelihood(x, z @ W + B)
                - 3 * math.log(2)
                - paper.bernoulli_log_likelihood(z, q_logits))

    return log_weights


def test_importance_weighted_nll_matches_enumeration():
    neg_log_px, neg_elbo, relative_sd = map(
        np.asarray, zip(*(exact(x) for x in X)))
    # m = 1 is the -ELBO in expectation: 4000 copies of each example.
    copies = 4000
    one = paper.importance_weighted_nll(
        log_weights_fn(0), (np.repeat(X, copies, axis=0),), m=1, batch=4000)
    one = one.reshape(len(X), copies)
    for k in range(len(X)):
        mean, error = paper.mean_and_error(one[k])
        # 5 standard errors: a false alarm about once in 1.7 million.
        assert abs(mean - neg_elbo[k]) < 5 * error, (k, mean, neg_elbo[k])
    # A large m approaches -log p(x) from above (Burda et al. 2016).
    # Its error is about sd(w) / (p(x) sqrt(m)) (the delta method): 5 of
    # those, and the bias (of order var / 2m, far smaller) is inside.
    m = 20_000
    many = paper.importance_weighted_nll(log_weights_fn(1), (X,), m=m,
                                         batch=1)
    np.testing.assert_array_less(np.abs(many - neg_log_px),
                                 5 * relative_sd / math.sqrt(m))
    # The test can tell the two apart: the gap is far above that error.
    assert np.all(neg_elbo - neg_log_px > 50 * relative_sd / math.sqrt(m))


def test_importance_weighted_nll_with_the_posterior_is_exact_for_any_m():
    # With q the exact posterior every weight equals p(x): the bound is
    # -log p(x) with no noise, whatever m and the batching.
    codes = np.array(list(itertools.product([0, 1], repeat=3)), np.float32)
    x = X[0]
    log_joint = paper.bernoulli_log_likelihood(
        np.broadcast_to(x, (8, 4)), codes @ W + B).numpy() - 3 * math.log(2)
    posterior = np.exp(log_joint - np.logaddexp.reduce(log_joint))
    gen = keras.random.SeedGenerator(5)

    def log_weights(x_rows):
        n = tf.shape(x_rows)[0]
        index = keras.random.categorical(
            tf.math.log(posterior[None].astype(np.float32)), n, seed=gen)[0]
        return tf.gather(log_joint - np.log(posterior), index)

    for m, batch in ((1, 1), (7, 2)):
        bound = paper.importance_weighted_nll(
            log_weights, (np.stack([x, x, x]),), m=m, batch=batch)
        np.testing.assert_allclose(bound, exact(x)[0], rtol=1e-5)


def test_tile_images_places_row_major_with_grey_gaps():
    images = np.stack([np.full(4, i, np.float32) for i in range(3)])
    grid = paper.tile_images(images, columns=2, size=2, pad=1, fill=0.5)
    assert grid.shape == (5, 5)
    np.testing.assert_array_equal(grid[:2, :2], 0)
    np.testing.assert_array_equal(grid[:2, 3:], 1)
    np.testing.assert_array_equal(grid[3:, :2], 2)
    assert grid[2, 0] == grid[4, 4] == 0.5  # gap and the empty cell


def test_save_results_writes_json_and_returns_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_GUMBEL_RESULTS_DIR", str(tmp_path))
    rows = [{"metric": "NLL", "ours": 133.04, "paper": 58.5, "note": "x"},
            {"metric": "speed", "ours": 12345.6, "paper": None}]
    table = paper.save_results("t", "Title", rows, "fashion", notes=["n1"])
    with open(tmp_path / "t.json") as f:
        record = json.load(f)
    assert record["rows"] == rows and record["dataset"] == "fashion"
    assert "| NLL | 133 | 58.5 | x |" in table
    assert "| speed | 12346 | — | — |" in table
    assert table.startswith("### Title") and "- n1" in table
    assert paper.render(record) == table
