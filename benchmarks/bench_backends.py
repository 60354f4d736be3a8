"""Speed of the estimators on each Keras backend, against that backend's floor.

What it measures, on the Keras backend `KERAS_BACKEND` names (one backend per
process; `--all` runs one process per installed backend, one after another,
and gathers one table):

Forward + backward of one sample on logits of shape (64, 128, 1000) at
temperature 0.5: the loss is `sum(y * w)`, `w` fixed random weights, and
each step returns the loss and its gradient with respect to the logits
together (`straight_through`'s gradient does not depend on the sample, so a
step returning the gradient alone would let a compiler drop the draw). Rows:

- `floor`: the backend's own `softmax(logits / tau)`, forward + backward
  (`tf.nn.softmax`, `jax.nn.softmax`, `torch.softmax`): a sample cannot
  cost less than the softmax inside it;
- `draw`: the backend's own uniform draw of the logits' shape, alone (no
  gradient): `tf.random.stateless_uniform` with Philox, as the library
  draws on TensorFlow; `jax.random.uniform`; `torch.rand`;
- `floor + draw`: the sum of the two, round by round: what a sampler costs
  on that backend before any work of its own. Every ratio in the table is
  to it;
- ours, from `keras_gumbel.ops`: `gumbel_softmax(hard=True)` (ST
  Gumbel-Softmax), `gumbel_softmax(hard=False)`, `straight_through`,
  `reinmax` and `gumbel_rao(num_samples=10)`;
- on JAX, `plain_jax_st`: ST Gumbel-Softmax written directly in JAX here
  (`jax.random.gumbel`, `jax.nn.softmax`, the hard one-hot with the
  `stop_gradient` trick), the way a JAX user would write it;
- `gumbel_topk(k, hard=True)` for k = 10 and k = 100 (the exact k-hot
  forward, the relaxed sample's gradient backward), each against its own
  floor, `floor: k softmaxes`: the backend's softmax applied k times, to
  k different inputs `logits / tau + j * v` (j = 0..k-1, `v` a fixed
  random vector over the classes, broadcast), summed, forward + backward.
  No compiler can merge softmaxes of different inputs into one, and the
  added `j * v` reads no tensor of the logits' shape, so the row is k
  softmaxes' work and little else: what any relaxation built of k
  softmaxes costs (Xie & Ermon's successive softmax, `gumbel_topk`'s
  relaxation before commit f6cae29; the sigmoid threshold that replaced it
  costs a fixed number of passes whatever k). The report gives
  `gumbel_topk` over that floor and over `gumbel_softmax(hard=True)`,
  paired by round (the target: at most 1.2x the floor). The floor of
  k = 100 keeps 100 softmaxes of the logits' size (3.3 GB at the default
  shape) and takes seconds per call: `--rows` leaves rows out, `--topk-k`
  changes the k's;
- beside them, `select: top_k(k)`: the backend's own top_k of the logits
  (values and indices), forward only: the selection an exact k-hot needs
  whatever the relaxation. `floor + draw + top_k(k)` (round by round)
  is then what any Gumbel-top-k sampler with a softmax-like relaxation
  costs before any work of its own; the report gives `gumbel_topk` over
  it too, and over one softmax (the issue's target for a relaxation not
  built of k softmaxes: 2x);
- on PyTorch, `torch.nn.functional.gumbel_softmax` with `hard=True` and
  `hard=False`; with `--torch-compile`, also `gumbel_softmax(hard=True)`
  under `torch.compile` (the forward compiled, the backward by AOTAutograd),
  timed against the eager floor. Off by default: with PyTorch 2.13 and
  Keras 3.15, Dynamo splits the op into 7 graphs (graph breaks at Keras's
  PyTorch `convert_to_tensor` of a NumPy array and its `ops.max`), so the
  row times mostly eager code, and compiling takes tens of seconds.

Modes: TensorFlow `tf.function` and `tf.function(jit_compile=True)` (`xla`);
JAX `jax.jit` of `jax.value_and_grad` (`jit`); PyTorch eager with
`torch.autograd.grad` (`eager`). Each backend uses its default threads.

Seeds: every step draws new noise on every call, as a layer's does in
training. TensorFlow and PyTorch: ours take a `keras.random.SeedGenerator`
(on TensorFlow its state is a variable that the traced function updates).
JAX: a `SeedGenerator` too, its state threaded functionally: the jitted step
takes the state as an argument, runs the op in a `keras.StatelessScope`
mapping the generator's state to it, and returns the advanced state, which
the next call receives (what Keras's JAX trainer does with a layer's
generator). An int seed would also do under `jax.jit` (XLA does not fold
its draw away: the compiled function still runs threefry, checked with JAX
0.10.2), but it gives the same noise on every call. The plain JAX contender and
the JAX draw thread a `jax.random` key the same way (one `split` a call);
the PyTorch draw uses one `torch.Generator`; `F.gumbel_softmax` the global
generator.

Timing: each contender is called twice first (tracing, compilation; the
outputs are checked then: a finite loss, a gradient of the logits' shape
whose entries sum to zero along the classes, as the softmax's Jacobian
makes every gradient here do). Then `--rounds` rounds, in each of which
every contender runs `--calls` calls in turn (interleaved, so that drift
in the machine's speed touches all alike), the outputs waited for after
the last call. The table gives the median ms per call with its quartiles
over rounds, and the ratio to floor + draw paired by round (each round's
time over the same round's floor + draw; median and quartiles).

The script imports `keras_gumbel` from the checkout it lives in (its repo
root goes first on `sys.path`), so a copy in another checkout times that
checkout's library.

`--quick` runs a tiny shape (100, 20, 10) with k = 2 and 4 for the
`gumbel_topk` rows (k is at most the number of classes).

`--rows` times only the rows it names (the row keys of `LABELS`, or
`topk` for `gumbel_topk`'s rows with `gumbel_softmax(hard=True)`, which
their ratios need); `floor` and `draw` are always timed (every ratio in the
main table is to their sum).

Run:
    KERAS_BACKEND=jax python benchmarks/bench_backends.py [--quick]
        [--markdown FILE] [--rows ROW ...] [--topk-k K ...]
    python benchmarks/bench_backends.py --all [--quick] [--markdown FILE]
"""

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# keras_gumbel from this checkout, whichever is installed.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import ops as gops  # noqa: E402

SHAPE = (64, 128, 1000)
QUICK_SHAPE = (100, 20, 10)
TAU = 0.5
RAO_K = 10
TOPK_KS = (10, 100)
QUICK_TOPK_KS = (2, 4)
TOPK_TARGET = 1.2  # gumbel_topk within 1.2x of its k softmaxes
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax",
                   "torch": "torch"}

# Row keys in the order of the table, and their labels.
LABELS = {
    "floor": "floor: softmax fwd+bwd",
    "draw": "draw: uniform",
    "floor+draw": "floor + draw",
    "st_gs": "gumbel_softmax(hard=True)",
    "gs": "gumbel_softmax(hard=False)",
    "straight_through": "straight_through",
    "reinmax": "reinmax",
    "gumbel_rao": f"gumbel_rao(num_samples={RAO_K})",
    "plain_jax_st": "plain JAX ST Gumbel-Softmax (hard)",
    "torch_gs_hard": "F.gumbel_softmax(hard=True)",
    "torch_gs_soft": "F.gumbel_softmax(hard=False)",
    "st_gs_compiled": "gumbel_softmax(hard=True), torch.compile",
}
OURS = {
    "st_gs": lambda x, seed: gops.gumbel_softmax(x, TAU, hard=True,
                                                 seed=seed),
    "gs": lambda x, seed: gops.gumbel_softmax(x, TAU, hard=False,
                                              seed=seed),
    "straight_through": lambda x, seed: gops.straight_through(
        x, TAU, seed=seed),
    "reinmax": lambda x, seed: gops.reinmax(x, TAU, seed=seed),
    "gumbel_rao": lambda x, seed: gops.gumbel_rao(
        x, TAU, num_samples=RAO_K, seed=seed),
}
TINY = float(np.finfo(np.float32).tiny)


def topk_op(k):
    return lambda x, seed: gops.gumbel_topk(x, k, TAU, hard=True, seed=seed)


def topk_keys(ks):
    """The row keys of `gumbel_topk`, its floor and its top_k, for each k."""
    keys = []
    for k in ks:
        keys += [f"topk_floor_{k}", f"topk_select_{k}", f"topk_{k}"]
    return keys


TOPK_PREFIXES = ("topk_floor_", "topk_select_", "topk_")


def topk_k(name):
    """k of a `gumbel_topk` row key, or None for another row."""
    for prefix in TOPK_PREFIXES:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return int(name[len(prefix):])
    return None


def label(name):
    k = topk_k(name)
    if k is None:
        return LABELS.get(name, name)
    if name.startswith("topk_floor_"):
        return f"floor: {k} softmaxes fwd+bwd"
    if name.startswith("topk_select_"):
        return f"select: top_k({k}) fwd"
    return f"gumbel_topk(k={k}, hard=True)"


def is_topk_op(name):
    """Whether `name` is a `gumbel_topk` row (not its floor or top_k)."""
    return topk_k(name) is not None and not name.startswith(
        ("topk_floor_", "topk_select_"))


def offsets(shape):
    """`v`, the fixed vector over the classes that makes the k inputs of
    the floor of k softmaxes differ (`logits / tau + j * v`)."""
    rng = np.random.default_rng(1)
    return 0.01 * rng.standard_normal(size=shape[-1]).astype(np.float32)


def inputs(shape):
    """The logits and the loss weights, as float32 NumPy arrays."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(size=shape, dtype=np.float32),
            rng.standard_normal(size=shape, dtype=np.float32))


# -- TensorFlow ---------------------------------------------------------------


def tensorflow_contenders(shape, mode, ks=()):
    """name -> step; each step a `tf.function` (with XLA for "xla")."""
    import tensorflow as tf

    x_np, w_np = inputs(shape)
    x = tf.Variable(x_np)
    w = tf.constant(w_np)
    v = tf.constant(offsets(shape))
    seed_gen = keras.random.SeedGenerator(0)

    def loss_and_grad(sample):
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(sample() * w)
            return loss, tape.gradient(loss, x)
        return step

    steps = {
        "floor": loss_and_grad(lambda: tf.nn.softmax(x / TAU)),
        # As the library draws: a stateless seed pair from the generator,
        # Philox by name.
        "draw": lambda: tf.random.stateless_uniform(
            shape, seed=keras.random.randint(
                (2,), 0, 2**31 - 1, dtype="int32", seed=seed_gen),
            minval=TINY, maxval=1.0, alg="philox"),
    }
    for name, op in OURS.items():
        steps[name] = loss_and_grad(lambda op=op: op(x, seed_gen))
    for k in ks:
        steps[f"topk_floor_{k}"] = loss_and_grad(lambda k=k: tf.add_n(
            [tf.nn.softmax(x / TAU + j * v) for j in range(k)]))
        steps[f"topk_select_{k}"] = lambda k=k: tf.math.top_k(x, k)
        steps[f"topk_{k}"] = loss_and_grad(
            lambda k=k: topk_op(k)(x, seed_gen))
    return {name: tf.function(fn, jit_compile=(mode == "xla"))
            for name, fn in steps.items()}


# -- JAX ----------------------------------------------------------------------


def jax_contenders(shape, mode, ks=()):
    """name -> step; each step calls a `jax.jit` function with the logits,
    the weights and its seed state as arguments, and keeps the state it
    returns for the next call."""
    import jax
    import jax.numpy as jnp

    x_np, w_np = inputs(shape)
    x, w = jnp.asarray(x_np), jnp.asarray(w_np)
    v = jnp.asarray(offsets(shape))

    def threaded(fn, state):
        """A step calling jitted `fn(x, w, state) -> (out, new_state)`."""
        jitted = jax.jit(fn)
        box = [state]

        def step():
            out, box[0] = jitted(x, w, box[0])
            return out
        return step

    def floor(x, w, key):
        def loss_fn(x):
            return jnp.sum(jax.nn.softmax(x / TAU, axis=-1) * w)
        return jax.value_and_grad(loss_fn)(x), key

    def floor_k(k):
        def fn(x, w, key):
            def loss_fn(x):
                z = x / TAU
                y = sum(jax.nn.softmax(z + j * v, axis=-1)
                        for j in range(k))
                return jnp.sum(y * w)
            return jax.value_and_grad(loss_fn)(x), key
        return fn

    def select(k):
        def fn(x, w, key):
            return jax.lax.top_k(x, k), key
        return fn

    def draw(x, w, key):
        key, sub = jax.random.split(key)
        return jax.random.uniform(sub, shape, jnp.float32, minval=TINY,
                                  maxval=1.0), key

    def plain_jax_st(x, w, key):
        # Straight-through Gumbel-Softmax as a JAX user writes it.
        key, sub = jax.random.split(key)

        def loss_fn(x):
            g = jax.random.gumbel(sub, x.shape, x.dtype)
            soft = jax.nn.softmax((x + g) / TAU, axis=-1)
            hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), x.shape[-1],
                                  dtype=soft.dtype)
            y = hard - jax.lax.stop_gradient(soft) + soft
            return jnp.sum(y * w)
        return jax.value_and_grad(loss_fn)(x), key

    def ours(op, seed_gen):
        def fn(x, w, seed_state):
            def loss_fn(x):
                with keras.StatelessScope(
                        state_mapping=[(seed_gen.state, seed_state)]) as scope:
                    y = op(x, seed_gen)
                    new_state = scope.get_current_value(seed_gen.state)
                return jnp.sum(y * w), new_state
            (loss, new_state), grad = jax.value_and_grad(
                loss_fn, has_aux=True)(x)
            return (loss, grad), new_state
        return fn

    key = jax.random.key(0)
    steps = {"floor": threaded(floor, key), "draw": threaded(draw, key)}
    for name, op in OURS.items():
        seed_gen = keras.random.SeedGenerator(0)
        steps[name] = threaded(ours(op, seed_gen), seed_gen.state.value)
    steps["plain_jax_st"] = threaded(plain_jax_st, key)
    for k in ks:
        steps[f"topk_floor_{k}"] = threaded(floor_k(k), key)
        steps[f"topk_select_{k}"] = threaded(select(k), key)
        seed_gen = keras.random.SeedGenerator(0)
        steps[f"topk_{k}"] = threaded(ours(topk_op(k), seed_gen),
                                      seed_gen.state.value)
    return steps


# -- PyTorch ------------------------------------------------------------------


def torch_contenders(shape, mode, compile_ours=False, ks=()):
    """name -> step, eagerly, with `torch.autograd.grad`."""
    import torch
    import torch.nn.functional as F

    x_np, w_np = inputs(shape)
    # On the device Keras puts tensors on.
    x = keras.ops.convert_to_tensor(x_np).detach().clone().requires_grad_(True)
    w = keras.ops.convert_to_tensor(w_np)
    v = keras.ops.convert_to_tensor(offsets(shape))
    generator = torch.Generator(device=x.device).manual_seed(0)

    def floor_k(x, k):
        z = x / TAU
        y = torch.softmax(z, dim=-1)
        for j in range(1, k):
            y = y + torch.softmax(z + j * v, dim=-1)
        return y

    def loss_and_grad(sample):
        def step():
            loss = (sample(x) * w).sum()
            (grad,) = torch.autograd.grad(loss, x)
            return loss.detach(), grad
        return step

    steps = {
        "floor": loss_and_grad(lambda x: torch.softmax(x / TAU, dim=-1)),
        "draw": lambda: torch.rand(shape, generator=generator,
                                   device=x.device),
    }
    for name, op in OURS.items():
        seed_gen = keras.random.SeedGenerator(0)
        steps[name] = loss_and_grad(
            lambda x, op=op, seed_gen=seed_gen: op(x, seed_gen))
    steps["torch_gs_hard"] = loss_and_grad(
        lambda x: F.gumbel_softmax(x, tau=TAU, hard=True))
    steps["torch_gs_soft"] = loss_and_grad(
        lambda x: F.gumbel_softmax(x, tau=TAU, hard=False))
    if compile_ours:
        seed_gen = keras.random.SeedGenerator(0)
        compiled = torch.compile(
            lambda x: gops.gumbel_softmax(x, TAU, hard=True, seed=seed_gen))
        steps["st_gs_compiled"] = loss_and_grad(compiled)
    for k in ks:
        steps[f"topk_floor_{k}"] = loss_and_grad(
            lambda x, k=k: floor_k(x, k))
        steps[f"topk_select_{k}"] = lambda k=k: torch.topk(
            x.detach(), k, dim=-1)
        seed_gen = keras.random.SeedGenerator(0)
        steps[f"topk_{k}"] = loss_and_grad(
            lambda x, k=k, seed_gen=seed_gen: topk_op(k)(x, seed_gen))
    return steps


# -- timing -------------------------------------------------------------------


MODES = {"tensorflow": ("tf.function", "xla"), "jax": ("jit",),
         "torch": ("eager",)}


def contenders(backend, shape, mode, torch_compile=False, ks=(),
               rows=None):
    """The steps of one (backend, mode); with `rows`, only those (and the
    floor and the draw)."""
    if backend == "tensorflow":
        steps = tensorflow_contenders(shape, mode, ks)
    elif backend == "jax":
        steps = jax_contenders(shape, mode, ks)
    elif backend == "torch":
        steps = torch_contenders(shape, mode, torch_compile, ks)
    else:
        steps = None
    if steps is not None:
        if rows is None:
            return steps
        keep = {"floor", "draw"} | set(rows)
        return {name: fn for name, fn in steps.items() if name in keep}
    raise SystemExit(f"bench_backends.py: no contenders for Keras backend "
                     f"{backend!r}; use tensorflow, jax or torch")


def wait(out):
    """Waits until `out` is computed (without copying it back)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jax.block_until_ready(out)
    elif backend == "torch":
        import torch

        tensors = out if isinstance(out, tuple) else (out,)
        if any(t.device.type == "cuda" for t in tensors):
            torch.cuda.synchronize()
    elif backend == "tensorflow":
        # A `tf.function` call returns once it has run (TensorFlow executes
        # synchronously by default); reading the loss, or one number of the
        # draw, makes sure.
        first = out[0] if isinstance(out, tuple) else out
        first[(0,) * len(first.shape)].numpy()


def check(name, out, shape, upstream):
    """A step's output: the uniform draw in [0, 1), or a finite loss and a
    finite gradient of the logits' shape summing to zero along the classes
    (every sample here goes through a softmax's Jacobian), to float32
    rounding: `upstream` bounds the gradient coming into the softmax,
    max |w| / tau."""
    if name == "draw":
        u = keras.ops.convert_to_numpy(out)
        assert u.shape == tuple(shape), (name, u.shape)
        assert u.min() >= 0.0 and u.max() < 1.0, name
        return
    if name.startswith("topk_select_"):
        values, index = (keras.ops.convert_to_numpy(t) for t in out)
        want = tuple(shape[:-1]) + (topk_k(name),)
        assert values.shape == want and index.shape == want, name
        assert np.all(np.diff(values, axis=-1) <= 0), name
        return
    loss, grad = (keras.ops.convert_to_numpy(t) for t in out)
    assert loss.shape == () and np.isfinite(loss), (name, loss)
    assert grad.shape == tuple(shape), (name, grad.shape)
    assert np.all(np.isfinite(grad)), name
    row_sums = np.abs(grad.sum(axis=-1))
    eps = float(np.finfo(np.float32).eps)
    assert np.all(row_sums <= 10 * eps * shape[-1] * upstream), (
        name, float(row_sums.max()))


def time_calls(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    wait(out)
    return (time.perf_counter() - start) / calls


def interleaved_times(steps, shape, rounds, calls):
    """Seconds per call of each step in each round, the steps interleaved
    within every round, after two checked warm-up calls."""
    upstream = float(np.abs(inputs(shape)[1]).max()) / TAU
    for name, fn in steps.items():
        fn()
        # k softmaxes' gradients add up: k times the rounding.
        check(name, fn(), shape, upstream * (topk_k(name) or 1))
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            times[name].append(time_calls(fn, calls))
    return times


def summarize(backend, mode, times):
    """The rows of one (backend, mode): ms per call (median, quartiles) and
    the paired ratio to floor + draw (median, quartiles)."""
    times = dict(times)
    times["floor+draw"] = list(np.add(times["floor"], times["draw"]))
    bound = np.array(times["floor+draw"])
    order = [k for k in LABELS if k in times] + sorted(
        (k for k in times if topk_k(k) is not None),
        key=lambda k: (topk_k(k), [k.startswith(p)
                                   for p in TOPK_PREFIXES].index(True)))
    rows = []
    for name in order:
        t = np.array(times[name])
        ratios = t / bound
        rows.append({
            "backend": backend, "mode": mode, "op": name,
            "ms": float(np.median(t)) * 1e3,
            "ms_q1": float(np.percentile(t, 25)) * 1e3,
            "ms_q3": float(np.percentile(t, 75)) * 1e3,
            "ratio": float(np.median(ratios)),
            "ratio_q1": float(np.percentile(ratios, 25)),
            "ratio_q3": float(np.percentile(ratios, 75)),
            "rounds": len(t), "times": [float(v) for v in t],
        })
    return rows


def run_backend(shape, rounds, calls, torch_compile=False, modes=None,
                ks=(), rows_wanted=None):
    backend = keras.backend.backend()
    rows = []
    for mode in modes or MODES.get(backend, ("?",)):
        steps = contenders(backend, shape, mode, torch_compile, ks,
                           rows_wanted)
        times = interleaved_times(steps, shape, rounds, calls)
        mode_rows = summarize(backend, mode, times)
        rows += mode_rows
        print(f"{backend} {mode}: " + "  ".join(
            f"{r['op']}={r['ms']:.2f}ms" for r in mode_rows), flush=True)
    return rows


# -- targets ------------------------------------------------------------------


def paired(rows, backend, mode, a, b):
    """Median and quartiles over rounds of `a`'s time over `b`'s."""
    by = {r["op"]: r for r in rows
          if r["backend"] == backend and r["mode"] == mode}
    if a not in by or b not in by:
        return None
    ratios = np.array(by[a]["times"]) / np.array(by[b]["times"])
    return (float(np.median(ratios)), float(np.percentile(ratios, 25)),
            float(np.percentile(ratios, 75)))


# (backend, mode, ours, against, at most, what the issue asks)
TARGETS = [
    ("jax", "jit", "st_gs", "floor+draw", 1.15,
     "JAX: ST Gumbel-Softmax within 1.15x of floor + draw"),
    ("jax", "jit", "st_gs", "plain_jax_st", 1.05,
     "JAX: ST Gumbel-Softmax no slower than plain JAX (5 % tolerance)"),
    ("torch", "eager", "st_gs", "torch_gs_hard", 1.0,
     "PyTorch: ST Gumbel-Softmax at least as fast as "
     "F.gumbel_softmax(hard=True)"),
    ("torch", "eager", "gs", "torch_gs_soft", 1.0,
     "PyTorch: Gumbel-Softmax at least as fast as "
     "F.gumbel_softmax(hard=False)"),
]


def target_lines(rows, quick):
    lines = []
    for backend, mode, a, b, limit, what in TARGETS:
        got = paired(rows, backend, mode, a, b)
        if got is None:
            continue
        median, q1, q3 = got
        verdict = "met" if median <= limit else "missed"
        lines.append(f"- {what}: `{a}` / `{b}` = {median:.2f}x (quartiles "
                     f"{q1:.2f}-{q3:.2f}), at most {limit:.2f}x: {verdict}.")
    for r in rows:
        k = topk_k(r["op"])
        if not is_topk_op(r["op"]):
            continue
        got = paired(rows, r["backend"], r["mode"], r["op"],
                     f"topk_floor_{k}")
        if got is None:
            continue
        median, q1, q3 = got
        verdict = "met" if median <= TOPK_TARGET else "missed"
        lines.append(
            f"- {r['backend']} {r['mode']}: gumbel_topk(k={k}) within "
            f"{TOPK_TARGET:.1f}x of {k} softmaxes: {median:.2f}x (quartiles "
            f"{q1:.2f}-{q3:.2f}): {verdict}.")
    if lines and quick:
        lines.append("- (`--quick`: a tiny shape and few rounds; these "
                     "verdicts are not measurements.)")
    return lines


def topk_table(rows):
    """Per (backend, mode, k): gumbel_topk's ms, its floor's and its
    top_k's, and the paired ratios to the floor, to
    gumbel_softmax(hard=True), to one softmax and to floor + draw +
    top_k(k)."""
    lines = ["| backend | mode | k | gumbel_topk ms | floor: k softmaxes ms "
             "| top_k(k) ms | gumbel_topk / floor (median; quartiles) | "
             "gumbel_topk / gumbel_softmax(hard=True) (median; quartiles) | "
             "gumbel_topk / one softmax fwd+bwd (median; quartiles) | "
             "gumbel_topk / (floor + draw + top_k(k)) (median; quartiles) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r["backend"], r["mode"], r["op"]): r for r in rows}
    for r in rows:
        if not is_topk_op(r["op"]):
            continue
        k = topk_k(r["op"])
        cells = []
        for against in (f"topk_floor_{k}", "st_gs", "floor"):
            got = paired(rows, r["backend"], r["mode"], r["op"], against)
            cells.append("-" if got is None else
                         f"{got[0]:.2f}x ({got[1]:.2f}-{got[2]:.2f})")
        parts = [by.get((r["backend"], r["mode"], name))
                 for name in ("floor", "draw", f"topk_select_{k}")]
        if None in parts:
            cells.append("-")
        else:
            ratios = np.array(r["times"]) / np.sum(
                [part["times"] for part in parts], axis=0)
            cells.append(f"{np.median(ratios):.2f}x "
                         f"({np.percentile(ratios, 25):.2f}-"
                         f"{np.percentile(ratios, 75):.2f})")
        ms = [by.get((r["backend"], r["mode"], f"{prefix}{k}"))
              for prefix in ("topk_floor_", "topk_select_")]
        ms = ["-" if m is None else f"{m['ms']:.1f}" for m in ms]
        lines.append(f"| {r['backend']} | {r['mode']} | {k} | "
                     f"{r['ms']:.1f} | {ms[0]} | {ms[1]} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else None


# -- report -------------------------------------------------------------------


def _paper_machine_description():
    """`machine_description()` of notebooks/paper.py, run without importing
    paper.py (it imports TensorFlow, which JAX and PyTorch runs need not
    have): the function's source alone is executed."""
    path = os.path.join(ROOT, "notebooks", "paper.py")
    try:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        node = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                    and n.name == "machine_description")
    except (OSError, SyntaxError, StopIteration):
        return f"{platform.machine()}, {os.cpu_count()} cores"
    namespace = {"os": os, "platform": platform}
    exec(compile(ast.Module([node], []), path, "exec"), namespace)
    return namespace["machine_description"]()


def backend_version():
    backend = keras.backend.backend()
    names = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    try:
        module = __import__(BACKEND_MODULES[backend])
        return f"{names[backend]} {module.__version__}"
    except (KeyError, ImportError, AttributeError):
        return backend


def device_description():
    """Where the backend runs (its first device), e.g. "cpu"."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return str(jax.devices()[0].platform)
        if backend == "torch":
            return str(keras.ops.zeros(()).device)
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return "gpu" if gpus else "cpu"
    except Exception:  # noqa: BLE001 (a caption, not worth failing over)
        pass
    return "?"


def checkout_description():
    """Where keras_gumbel was imported from, and that checkout's commit."""
    where = os.path.dirname(os.path.dirname(os.path.abspath(
        keras_gumbel.__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--",
             "keras_gumbel"],
            capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    text = f"keras_gumbel from {where}"
    if commit:
        text += f" (commit {commit}{', library modified' if dirty else ''})"
    return text


def machine():
    return (f"{_paper_machine_description()}; Python "
            f"{platform.python_version()}, Keras {keras.__version__}")


def table(rows):
    lines = ["| backend | mode | contender | ms per call (median; quartiles)"
             " | ratio to floor + draw (median; quartiles) | rounds |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ms = f"{r['ms']:.2f} ({r['ms_q1']:.2f}-{r['ms_q3']:.2f})"
        ratio = (f"{r['ratio']:.2f}x ({r['ratio_q1']:.2f}-"
                 f"{r['ratio_q3']:.2f})")
        lines.append(f"| {r['backend']} | {r['mode']} | "
                     f"{label(r['op'])} | {ms} | {ratio} | "
                     f"{r['rounds']} |")
    return "\n".join(lines)


def markdown(header, rows, backend_lines, quick):
    shape = tuple(rows[0]["shape"]) if rows and "shape" in rows[0] else None
    lines = [header, ""]
    lines += backend_lines
    lines += ["", "### Forward + backward of one sample, per backend "
              f"(logits {shape}, temperature {TAU}; ms per call; ratios to "
              "the same backend's floor + draw, paired by round)", "",
              table(rows), "",
              "`floor`: the backend's softmax(logits / tau), forward + "
              "backward; `draw`: its uniform draw of the logits' shape; "
              "every other row returns the loss sum(y * w) and its gradient "
              "w.r.t. the logits. Ratios are medians over rounds of each "
              "round's time over the same round's floor + draw."]
    topk = topk_table(rows)
    if topk:
        lines += ["", "### gumbel_topk(hard=True) against k softmaxes "
                  "(ms per call, medians; ratios paired by round)", "",
                  topk, "",
                  "`floor: k softmaxes`: the backend's softmax of k "
                  "different inputs logits / tau + j * v (v a fixed vector "
                  "over the classes), summed, forward + backward: the work "
                  "of any relaxation made of k softmaxes. `top_k(k)`: the "
                  "backend's top_k of the logits, forward: the selection "
                  "an exact k-hot needs; floor + draw + top_k(k) is what a "
                  "Gumbel-top-k sampler with a softmax-like relaxation "
                  "costs before any work of its own."]
    targets = target_lines(rows, quick)
    if targets:
        lines += ["", "Against the issue's targets (ratios paired by round):",
                  ""] + targets
    return "\n".join(lines) + "\n"


def backend_line(args_text):
    return (f"- {keras.backend.backend()}: {backend_version()} on "
            f"{device_description()}; {checkout_description()}. Command: "
            f"`KERAS_BACKEND={keras.backend.backend()} python "
            f"benchmarks/bench_backends.py{args_text}`")


# -- driver -------------------------------------------------------------------


def installed_backends(names):
    import importlib.util

    return [b for b in names
            if importlib.util.find_spec(BACKEND_MODULES[b]) is not None]


def run_all(args, passthrough):
    """One subprocess per installed backend, one after another; returns
    their rows and caption lines."""
    rows, lines = [], []
    for backend in installed_backends(args.backends):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "rows.json")
            env = dict(os.environ, KERAS_BACKEND=backend)
            print(f"=== KERAS_BACKEND={backend} ===", flush=True)
            result = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--json", out]
                + passthrough, env=env)
            if result.returncode != 0 or not os.path.exists(out):
                lines.append(f"- {backend}: the run failed (exit status "
                             f"{result.returncode}); see its output.")
                continue
            with open(out) as f:
                record = json.load(f)
        rows += record["rows"]
        lines.append(record["line"])
    return rows, lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"shape {QUICK_SHAPE}, 3 rounds of 1 call: "
                        "checks the script runs, not speed")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 15; 3 with "
                        "--quick)")
    parser.add_argument("--calls", type=int, default=None,
                        help="calls per contender per round (default 3; 1 "
                        "with --quick)")
    parser.add_argument("--shape", type=int, nargs="+", default=None,
                        help=f"the logits' shape (default {SHAPE}; "
                        f"{QUICK_SHAPE} with --quick)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="on PyTorch, also time gumbel_softmax(hard=True)"
                        " under torch.compile")
    parser.add_argument("--all", action="store_true",
                        help="run every installed backend, one subprocess "
                        "each, and gather one table")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS),
                        choices=BACKENDS, help="with --all: which backends")
    parser.add_argument("--topk-k", type=int, nargs="+", default=None,
                        help=f"the k's of the gumbel_topk rows (default "
                        f"{' '.join(map(str, TOPK_KS))}; "
                        f"{' '.join(map(str, QUICK_TOPK_KS))} with --quick)")
    parser.add_argument("--rows", nargs="+", default=None,
                        help="time only these rows (keys of LABELS, or "
                        "'topk' for gumbel_topk's rows and "
                        "gumbel_softmax(hard=True)); floor and draw always")
    parser.add_argument("--markdown", help="write the report to this file")
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 15)
    calls = args.calls or (1 if args.quick else 3)
    shape = tuple(args.shape or (QUICK_SHAPE if args.quick else SHAPE))
    ks = tuple(args.topk_k or (QUICK_TOPK_KS if args.quick else TOPK_KS))
    if any(k < 1 or k > shape[-1] for k in ks):
        parser.error(f"--topk-k: each k must lie in 1..{shape[-1]} (the "
                     f"classes of shape {shape})")
    rows_wanted = None
    if args.rows is not None:
        rows_wanted = set()
        for name in args.rows:
            if name == "topk":
                rows_wanted |= {"st_gs", *topk_keys(ks)}
            elif name in LABELS or topk_k(name) in ks:
                rows_wanted.add(name)
                if is_topk_op(name):  # its ratios need its top_k
                    rows_wanted.add(f"topk_select_{topk_k(name)}")
            else:
                parser.error(f"--rows: unknown row {name!r}; rows: "
                             f"{', '.join(list(LABELS) + topk_keys(ks))}, "
                             "topk")
    # What the subprocesses of --all get, and what the caption shows.
    passthrough = (["--quick"] if args.quick else []) + [
        "--rounds", str(rounds), "--calls", str(calls),
        "--shape", *map(str, shape), "--topk-k", *map(str, ks)] + (
        ["--torch-compile"] if args.torch_compile else []) + (
        ["--rows", *args.rows] if args.rows else [])
    script = "benchmarks/bench_backends.py"
    argv_text = "".join(f" {a}" for a in sys.argv[1:])
    if args.all:
        command = f"python {script}{argv_text}"
        header = (f"Machine: {machine()}. Command: `{command}`; each "
                  f"backend in its own process, one after another; "
                  f"{rounds} interleaved rounds of {calls} calls, medians.")
        print(header, flush=True)
        rows, lines = run_all(args, passthrough)
    else:
        backend = keras.backend.backend()
        command = f"KERAS_BACKEND={backend} python {script}{argv_text}"
        header = (f"Machine: {machine()}. Command: `{command}`; {rounds} "
                  f"interleaved rounds of {calls} calls, medians.")
        if not args.json:
            print(header, flush=True)
        rows = run_backend(shape, rounds, calls, args.torch_compile,
                           ks=ks, rows_wanted=rows_wanted)
        for r in rows:
            r["shape"] = list(shape)
        lines = [backend_line(" " + " ".join(passthrough))]
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rows": rows, "line": lines[0]}, f)
            return
    report = markdown(header, rows, lines, args.quick)
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
