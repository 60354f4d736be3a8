"""The benchmark script still runs against the library (speed is not tested).

`benchmarks/bench_sampling.py` is run by hand on a quiet machine; these tests
run its op section once on a tiny shape, so that a change to the library that
breaks a contender shows here rather than at the next benchmark run, and
check that each contender computes what it claims.
"""

import importlib.util
import os

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
