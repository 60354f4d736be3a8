"""The benchmark scripts still run against the library (speed is not tested).

`benchmarks/bench_sampling.py` and `benchmarks/bench_backends.py` are run by
hand on a quiet machine; these tests run their sections once on a tiny
shape, so that a change to the library that breaks a contender shows here
rather than at the next benchmark run, and check that each contender
computes what it claims (`bench_backends.py` checks every contender's output
itself before timing it, on every backend it runs on). `bias_table.py` and
`topk_bias.py` are checked against their exact gradients.

The whole suite leaves this module out on JAX and PyTorch (conftest.py);
run by name there, the tests of the TensorFlow scripts are skipped and those
of `bench_backends.py` run (its quick runs are subprocesses, one per
backend, whichever backend runs the tests).
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="a TensorFlow script (bench_sampling.py, bias_table.py, "
    "topk_bias.py): run on the TensorFlow backend")


def _load_script(name):
    """benchmarks/`name`.py as a module."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _central_differences(f, x, h=1e-6):
    """The gradient of scalar `f` at array `x` by central differences."""
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        numeric[i] = (f(x + step) - f(x - step)) / (2 * h)
    return numeric


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("tensorflow_probability")
    return _load_script("bench_sampling")


TINY_SHAPE = (4, 3, 5)


@tensorflow_only
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


@tensorflow_only
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


@tensorflow_only
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
    return _load_script("bias_table")


@tensorflow_only
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

    numeric = _central_differences(expectation, theta)
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
    return _load_script("topk_bias")


@tensorflow_only
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

    numeric = _central_differences(expectation, theta)
    np.testing.assert_allclose(exact, numeric, rtol=0,
                               atol=1e-6 * np.abs(exact).max())


@tensorflow_only
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


@tensorflow_only
def test_topk_bias_successive_softmax_gradient_matches_autodiff(topk_bias):
    # The hand-written backward against TensorFlow's autodiff of the same
    # forward (float64, no softmax reaching 1); where one does reach 1 (a
    # small temperature), the gradient stays finite where autodiff's is
    # NaN. The hard sample is the k-hot of the top k, same gradient.
    rng = np.random.default_rng(4)
    r = tf.constant(rng.normal(size=(5, 8)) * 2.0)
    w = tf.constant(rng.normal(size=(5, 8)))
    for tau in (0.3, 1.0, 2.0):
        grads = []
        for hard in (False, True):
            with tf.GradientTape() as tape:
                tape.watch(r)
                y = topk_bias.successive_softmax(r, tau, 3, hard)
                loss = tf.reduce_sum(y * w)
            grads.append(tape.gradient(loss, r).numpy())
            np.testing.assert_allclose(tf.reduce_sum(y, -1).numpy(), 3.0,
                                       atol=1e-12)
        np.testing.assert_array_equal(y.numpy(), topk_bias._khot(r, 3))
        np.testing.assert_array_equal(grads[0], grads[1])
        with tf.GradientTape() as tape:
            tape.watch(r)
            z, qs = r / tau, []
            for j in range(3):
                qs.append(tf.nn.softmax(z))
                z = z + tf.math.log1p(-qs[-1]) / tau
            loss = tf.reduce_sum(tf.add_n(qs) * w)
        np.testing.assert_allclose(grads[0], tape.gradient(loss, r).numpy(),
                                   rtol=0, atol=1e-12)
    far = tf.constant([[30.0, 0.0, -1.0, 2.0, -3.0, 0.5, 1.0, -2.0]],
                      tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(far)
        loss = tf.reduce_sum(topk_bias.successive_softmax(
            far, 0.05, 3, False) * w[:1])
        z, qs = far / 0.05, []
        for j in range(3):
            qs.append(tf.nn.softmax(z))
            z = z + tf.math.log1p(-qs[-1]) / 0.05
        autodiff_loss = tf.reduce_sum(tf.add_n(qs) * w[:1])
    assert np.all(np.isfinite(tape.gradient(loss, far).numpy()))
    assert np.any(np.isnan(tape.gradient(autodiff_loss, far).numpy()))


@tensorflow_only
def test_topk_bias_quick_run_reports_every_row(topk_bias):
    rows, bounds = topk_bias.table(draws=60, chunk=30)
    assert len(rows) == len(topk_bias.TEMPERATURES) * len(
        topk_bias.estimators())
    for r in rows:
        assert -1.0 <= r["cosine"] <= 1.0 and r["rel_bias"] >= 0.0
        assert r["noise"] > 0.0 and r["rel_rmse"] > 0.0
    relaxed = [n for n in topk_bias.estimators() if n.endswith("relaxed")]
    assert len(relaxed) == 3 and len(bounds) == 3 * len(
        topk_bias.TEMPERATURES)
    for b in bounds:
        # Non-negative, summing to k = 3: no entry above 3; the sigmoid
        # threshold's none above 1.
        assert 0.0 < b["max_entry"] <= 3.0 + 1e-5
        if b["estimator"].startswith("sigmoid threshold"):
            assert b["max_entry"] <= 1.0
        assert 0.0 <= b["above_1_1"] <= b["above_one"] <= 1.0
    report = topk_bias.markdown(rows, bounds, 60)
    for name in topk_bias.estimators():
        for tau in topk_bias.TEMPERATURES:
            assert f"| {name} | {tau:g} |" in report
    assert "Conclusion data:" in report


# -- topk_steps.py ------------------------------------------------------------


def test_topk_steps_counts_each_loop_and_restores_the_backend():
    topk_steps = _load_script("topk_steps")
    from keras_gumbel import _backend
    from keras_gumbel import ops

    original = _backend.while_loop
    results = topk_steps.measure(64, 50, ks=(3,), temperatures=(0.1, 2.0))
    assert _backend.while_loop is original
    assert [(r["k"], r["tau"]) for r in results] == [(3, 0.1), (3, 2.0)]
    for r in results:
        for key in ("stand-in", "whole", "middle"):
            assert 0 <= r[key] <= ops._THRESHOLD_MAX_STEPS, (key, r)
        # From the bracket's middle the whole rows take steps; the result
        # sums to k to the loop's tolerance.
        assert r["middle"] >= 1, r
        assert r["error"] <= 1e-5, r
    assert "| 3 | 0.1 |" in topk_steps.markdown(results, 64, 50)


# -- bench_backends.py --------------------------------------------------------


@pytest.fixture(scope="module")
def bench_backends():
    return _load_script("bench_backends")


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


def test_bench_backends_topk_rows_against_their_floor(bench_backends):
    # Made-up times: gumbel_topk's rows follow the others, each k's floor
    # first, then its top_k; its ratios to its floor, to
    # gumbel_softmax(hard=True), to one softmax and to floor + draw +
    # top_k are paired by round, and the target line says whether 1.2x is
    # met.
    times = {"floor": [1.0, 1.0, 1.0], "draw": [1.0, 1.0, 1.0],
             "st_gs": [2.0, 2.0, 2.0],
             "topk_100": [30.0, 40.0, 60.0],
             "topk_floor_100": [20.0, 40.0, 40.0],
             "topk_select_100": [3.0, 8.0, 10.0],
             "topk_10": [3.0, 3.0, 3.0], "topk_floor_10": [3.0, 2.0, 3.0],
             "topk_select_10": [1.0, 1.0, 1.0]}
    rows = bench_backends.summarize("torch", "eager", times)
    assert [r["op"] for r in rows] == [
        "floor", "draw", "floor+draw", "st_gs", "topk_floor_10",
        "topk_select_10", "topk_10", "topk_floor_100", "topk_select_100",
        "topk_100"]
    lines = bench_backends.target_lines(rows, quick=False)
    assert lines == [
        "- torch eager: gumbel_topk(k=10) within 1.2x of 10 softmaxes: "
        "1.00x (quartiles 1.00-1.25): met.",
        "- torch eager: gumbel_topk(k=100) within 1.2x of 100 softmaxes: "
        "1.50x (quartiles 1.25-1.50): missed."]
    topk = bench_backends.topk_table(rows)
    # k = 100: over floor + draw + top_k, the rounds give 30/5, 40/10 and
    # 60/12: median 5.00x, quartiles 4.50-5.50.
    assert ("| torch | eager | 100 | 40000.0 | 40000.0 | 8000.0 | "
            "1.50x (1.25-1.50) | 20.00x (17.50-25.00) | "
            "40.00x (35.00-50.00) | 5.00x (4.50-5.50) |") in topk
    assert ("| torch | eager | 10 | 3000.0 | 3000.0 | 1000.0 | "
            "1.00x (1.00-1.25) | 1.50x (1.50-1.50) | 3.00x (3.00-3.00) | "
            "1.00x (1.00-1.00) |") in topk
    table = bench_backends.table(rows)
    assert "| torch | eager | floor: 10 softmaxes fwd+bwd | 3000.00 " in table
    assert "| torch | eager | select: top_k(10) fwd | 1000.00 " in table
    assert "| torch | eager | gumbel_topk(k=100, hard=True) | 40000.00 " in (
        table)


# Rows every backend's table has, and each backend's own (mode, label);
# --quick times gumbel_topk with k = 2 and 4.
COMMON_ROWS = ("floor: softmax fwd+bwd", "draw: uniform", "floor + draw",
               "gumbel_softmax(hard=True)", "gumbel_softmax(hard=False)",
               "straight_through", "reinmax", "gumbel_rao(num_samples=10)",
               "floor: 2 softmaxes fwd+bwd", "select: top_k(2) fwd",
               "gumbel_topk(k=2, hard=True)",
               "floor: 4 softmaxes fwd+bwd", "select: top_k(4) fwd",
               "gumbel_topk(k=4, hard=True)")
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
        for k in (2, 4):
            assert f"| {backend} | {mode} | {k} | " in text, (mode, k)
            assert (f"- {backend} {mode}: gumbel_topk(k={k}) within 1.2x "
                    f"of {k} softmaxes: ") in text, (mode, k)
    assert "### gumbel_topk(hard=True) against k softmaxes" in text
    assert f"KERAS_BACKEND={backend} python benchmarks/bench_backends.py" in (
        text)
    assert "(logits (4, 3, 5), temperature 0.5;" in text
    if backend != "tensorflow":
        assert "Against the issue's targets" in text
