"""The benchmark scripts still run against the library (speed is not tested).

`benchmarks/bench_sampling.py` and `benchmarks/bench_backends.py` are run by
hand on a quiet machine; these tests run their sections once on a tiny
shape, so that a change to the library that breaks a contender shows here
rather than at the next benchmark run, and check that each contender
computes what it claims (`bench_backends.py` checks every contender's output
itself before timing it, on every backend it runs on).
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("tensorflow_probability")
    spec = importlib.util.spec_from_file_location(
        "bench_sampling", os.path.join(ROOT, "benchmarks", "bench_sampling.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY_SHAPE = (4, 3, 5)


def test_contenders_compute_gradients_of_the_logits_shape(bench):
    fns = bench.tf_contenders(TINY_SHAPE)
    for name, fn in fns.items():
        out = tf.function(fn)()
        assert tuple(out.shape) == TINY_SHAPE, name
        assert np.all(np.isfinite(out.numpy())), name
    # The uniform draw lies in [tiny, 1); every gradient is that of a loss
    # sum(y * w) through a softmax along the last axis, so it sums to zero
    # over the classes (the softmax's Jacobian annihilates constants).
    u = fns["draw"]().numpy()
    assert u.min() >= np.finfo(np.float32).tiny and u.max() < 1.0
    for name in ("floor", "ours", "ours_st", "tfp", "ours_xla_draw"):
        grad = fns[name]().numpy()
        np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-5,
                                   err_msg=name)


def test_op_section_runs_and_reports_every_contender(bench):
    rows = bench.bench_ops(
        rounds=1, calls_for={"tiny": 1}, modes=["tf.function"],
        shapes={"tiny": TINY_SHAPE})
    ops = {r["op"] for r in rows}
    expected = {"floor", "ours", "ours_st", "tfp", "draw", "ours_xla_draw"}
    assert expected <= ops
    floor = [r for r in rows if r["op"] == "floor"][0]
    assert floor["ratio"] == 1.0 and floor["ms"] > 0
    report = bench.markdown(rows, [], [], "header")
    assert f"| tiny {TINY_SHAPE} | tf.function |" in report
    assert "### Where the time goes" in report


@pytest.mark.slow
def test_estimator_section_runs_and_reports_every_estimator(bench):
    # Each step returns the loss (forward only) or the loss and the
    # gradient of the logits' shape; the report has a row per shape, mode
    # and pass, with K = 100 left out where its noise would not fit.
    for forward_only in (False, True):
        for name, fn in bench.estimator_contenders(
                TINY_SHAPE, forward_only).items():
            out = tf.function(fn)()
            if forward_only:
                assert out.shape == (), name
            else:
                loss, grad = out
                assert tuple(grad.shape) == TINY_SHAPE, name
                assert np.all(np.isfinite(grad.numpy())), name
    rows = bench.bench_estimators(
        rounds=1, calls_for={"tiny": 1}, modes=["tf.function"],
        shapes={"tiny": TINY_SHAPE})
    assert set(bench.ESTIMATORS) <= {r["op"] for r in rows}
    assert {r["pass"] for r in rows} == {"fwd+bwd", "fwd"}
    report = bench.estimator_markdown(rows)
    assert f"| tiny {TINY_SHAPE} | tf.function | fwd+bwd |" in report
    large = bench.estimator_contenders(bench.SHAPES["large"])
    assert "gumbel_rao_k100" not in large and "gumbel_rao_k10" in large


@pytest.fixture(scope="module")
def bias_table():
    spec = importlib.util.spec_from_file_location(
        "bias_table", os.path.join(ROOT, "benchmarks", "bias_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bias_table_exact_gradient_and_report(bias_table):
    # The exact gradient (a sum over the 4096 outcomes) against central
    # finite differences of the enumerated expectation (step 1e-6 in
    # float64: error ~1e-9, checked to 1e-6 of the largest entry); then
    # the table on a few draws.
    import itertools

    theta, weights, target = bias_table.problem(0)
    exact = bias_table.exact_gradient(theta, weights, target)
    choices = np.array(list(itertools.product(range(8), repeat=4)))

    def expectation(th):
        p = np.exp(th - th.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        prob = np.prod(p[np.arange(4), choices], axis=1)
        return prob @ bias_table.loss_np(choices, weights, target)

    h = 1e-6
    numeric = np.zeros_like(theta)
    for i, k in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[i, k] = h
        numeric[i, k] = (expectation(theta + step)
                         - expectation(theta - step)) / (2 * h)
    np.testing.assert_allclose(exact, numeric, rtol=0,
                               atol=1e-6 * np.abs(exact).max())
    rows = bias_table.table(draws=50)
    assert len(rows) == len(bias_table.TEMPERATURES) * len(
        bias_table.estimators())
    for r in rows:
        assert -1.0 <= r["cosine"] <= 1.0 and r["rel_bias"] >= 0.0
    assert "| reinmax | 1 |" in bias_table.markdown(rows, 50)


@pytest.fixture(scope="module")
def topk_bias():
    spec = importlib.util.spec_from_file_location(
        "topk_bias", os.path.join(ROOT, "benchmarks", "topk_bias.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_topk_bias_exact_gradient_matches_finite_differences(topk_bias):
    # The exact gradient (score function over the 336 ordered sequences)
    # against central finite differences of the expectation, enumerated
    # here on its own: each sequence's probability a product of softmaxes
    # over the classes left (step 1e-6 in float64).
    import itertools

    theta, weights, target = topk_bias.problem(0)
    exact = topk_bias.exact_gradient(theta, weights, target)

    def expectation(th):
        total = 0.0
        for seq in itertools.permutations(range(8), 3):
            prob, left = 1.0, list(range(8))
            for c in seq:
                prob *= np.exp(th[c]) / np.exp(th[left]).sum()
                left.remove(c)
            khot = np.zeros(8)
            khot[list(seq)] = 1.0
            total += prob * np.sum((khot @ weights - target) ** 2)
        return total

    h = 1e-6
    numeric = np.array([
        (expectation(theta + h * e) - expectation(theta - h * e)) / (2 * h)
        for e in np.eye(8)])
    np.testing.assert_allclose(exact, numeric, rtol=0,
                               atol=1e-6 * np.abs(exact).max())


def test_topk_bias_sigmoid_threshold_sums_to_k_with_implicit_gradient(
        topk_bias):
    # In float64: the relaxed sample lies in [0, 1] and sums to k; its
    # hand-written gradient (implicit differentiation through the
    # threshold) matches central differences of sum(y * w); the hard one is
    # the k-hot of the top k with the same gradient.
    rng = np.random.default_rng(3)
    r = tf.constant(rng.normal(size=(4, 8)) * 2.0)
    w = tf.constant(rng.normal(size=(4, 8)))
    tau = 0.5
    for hard in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(r)
            y = topk_bias.sigmoid_threshold(r, tau, 3, hard)
            loss = tf.reduce_sum(y * w)
        grad = tape.gradient(loss, r).numpy()
        np.testing.assert_allclose(tf.reduce_sum(y, -1).numpy(), 3.0,
                                   atol=1e-9)
        if hard:
            top = np.argsort(-r.numpy(), axis=-1)[:, :3]
            expected = np.zeros((4, 8))
            np.put_along_axis(expected, top, 1.0, axis=-1)
            np.testing.assert_array_equal(y.numpy(), expected)
            np.testing.assert_allclose(grad, soft_grad, atol=1e-12)
            continue
        assert y.numpy().min() >= 0.0 and y.numpy().max() <= 1.0
        soft_grad = grad
        h = 1e-6
        numeric = np.zeros((4, 8))
        for i in range(8):
            step = np.zeros((4, 8))
            step[:, i] = h
            up = topk_bias.sigmoid_threshold(r + step, tau, 3, False)
            down = topk_bias.sigmoid_threshold(r - step, tau, 3, False)
            # Rows are independent: one step per column in every row.
            numeric[:, i] = tf.reduce_sum((up - down) * w, -1).numpy() / (
                2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-6)


def test_topk_bias_quick_run_reports_every_row(topk_bias):
    rows, bounds = topk_bias.table(draws=60, chunk=30)
    assert len(rows) == len(topk_bias.TEMPERATURES) * len(
        topk_bias.estimators())
    for r in rows:
        assert -1.0 <= r["cosine"] <= 1.0 and r["rel_bias"] >= 0.0
        assert r["noise"] > 0.0 and r["rel_rmse"] > 0.0
    assert [b["temperature"] for b in bounds] == list(
        topk_bias.TEMPERATURES)
    for b in bounds:
        # Non-negative, summing to k = 3: no entry above 3.
        assert 0.0 < b["max_entry"] <= 3.0 + 1e-5
        assert 0.0 <= b["above_1_1"] <= b["above_one"] <= 1.0
    report = topk_bias.markdown(rows, bounds, 60)
    for name in topk_bias.estimators():
        for tau in topk_bias.TEMPERATURES:
            assert f"| {name} | {tau:g} |" in report
    assert "Conclusion data:" in report


# -- bench_backends.py --------------------------------------------------------


@pytest.fixture(scope="module")
def bench_backends():
    spec = importlib.util.spec_from_file_location(
        "bench_backends",
        os.path.join(ROOT, "benchmarks", "bench_backends.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_backends_ratios_are_paired_by_round(bench_backends):
    # Made-up times (seconds per call, 3 rounds): each ratio is the round's
    # time over the same round's floor + draw, and the targets compare two
    # contenders round by round.
    times = {"floor": [1.0, 2.0, 1.0], "draw": [1.0, 2.0, 3.0],
             "st_gs": [2.0, 4.0, 8.0], "plain_jax_st": [2.0, 4.0, 4.0]}
    rows = bench_backends.summarize("jax", "jit", times)
    by = {r["op"]: r for r in rows}
    assert [r["op"] for r in rows] == ["floor", "draw", "floor+draw",
                                       "st_gs", "plain_jax_st"]
    assert by["floor+draw"]["ms"] == 4000.0 and by["floor+draw"]["ratio"] == 1
    assert by["st_gs"]["ratio"] == 1.0 and by["st_gs"]["ratio_q3"] == 1.5
    assert by["st_gs"]["ms"] == 4000.0 and by["st_gs"]["rounds"] == 3
    lines = bench_backends.target_lines(rows, quick=False)
    assert len(lines) == 2
    assert "1.00x" in lines[0] and lines[0].endswith("met.")
    assert "= 1.00x (quartiles 1.00-1.50)" in lines[1]
    table = bench_backends.table(rows)
    assert "| jax | jit | gumbel_softmax(hard=True) | 4000.00 " in table


# Rows every backend's table has, and each backend's own (mode, label).
COMMON_ROWS = ("floor: softmax fwd+bwd", "draw: uniform", "floor + draw",
               "gumbel_softmax(hard=True)", "gumbel_softmax(hard=False)",
               "straight_through", "reinmax", "gumbel_rao(num_samples=10)")
BACKEND_ROWS = {
    "tensorflow": {"tf.function": (), "xla": ()},
    "jax": {"jit": ("plain JAX ST Gumbel-Softmax (hard)",)},
    "torch": {"eager": ("F.gumbel_softmax(hard=True)",
                        "F.gumbel_softmax(hard=False)")},
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(BACKEND_ROWS))
def test_bench_backends_quick_run_reports_every_row(backend, tmp_path):
    # The script on each installed backend, in a subprocess (the backend is
    # chosen when Keras is imported), one round on a tiny shape.
    if importlib.util.find_spec(backend) is None:  # not imported here
        pytest.skip(f"{backend} is not installed")
    report = tmp_path / "table.md"
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_backends.py"),
         "--quick", "--rounds", "1", "--shape", "4", "3", "5",
         "--markdown", str(report)],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    text = report.read_text()
    for mode, extra in BACKEND_ROWS[backend].items():
        for label in COMMON_ROWS + extra:
            assert f"| {backend} | {mode} | {label} | " in text, (mode, label)
    assert f"KERAS_BACKEND={backend} python benchmarks/bench_backends.py" in (
        text)
    assert "(logits (4, 3, 5), temperature 0.5;" in text
    if backend != "tensorflow":
        assert "Against the issue's targets" in text
