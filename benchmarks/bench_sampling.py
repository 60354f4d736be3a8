"""Speed of the Gumbel-Softmax sampling op, side by side with its peers.

What it measures (issue 4), all on the machine it runs on:

1. Forward + backward of one sample, per call, on a small shape
   (100, 20, 10) and a large one (64, 128, 1000), eagerly, in `tf.function`
   and under XLA (`jit_compile=True`), for:
   - `floor`: `tf.nn.softmax(logits / tau)` forward + backward (a sample
     cannot cost less than the softmax inside it);
   - `ours`: `keras_gumbel.ops.gumbel_softmax`; `ours_st`: with `hard=True`;
   - `tfp`: `tfp.distributions.RelaxedOneHotCategorical(...).sample()`;
   - `torch`: `torch.nn.functional.gumbel_softmax` (CPU), when installed;
   - `draw`: the uniform draw alone, as `ours` makes it (no gradient);
     floor + draw is what a sampler on TensorFlow's random ops costs before
     any work of its own;
   - `ours_xla_draw`: an experiment, not in the library: `ours` with the
     uniform drawn by an XLA-compiled function (XLA's Philox).
   The loss is `sum(y * w)`, `w` fixed random weights, and the gradient is
   taken with respect to the logits. Each contender runs `--calls` times per
   round, the contenders interleaved, for `--rounds` rounds; the table shows
   the median time per call and its ratio to the floor in the same mode.
2. Peak memory of forward + backward on the large shape, `ours` against the
   floor, in `tf.function`: each in a fresh subprocess, the growth of the
   process's peak resident memory (VmHWM, reset through
   /proc/self/clear_refs once the inputs exist; Linux only) during three
   calls.
3. One training step of a VAE (784-512-256 -> 20x10 categorical ->
   256-512-784, batch 100) with `GumbelSoftmax` against the same model with a
   plain softmax in its place, under Keras's default compile settings
   (`jit_compile="auto"`, XLA on with TensorFlow) and with XLA off; and the
   same with `STGumbel`. Ratios are paired: each round's time over the
   softmax model's in the same round, median and quartiles over rounds.
4. The estimators beyond Gumbel-Softmax (issue 10): `straight_through`,
   `reinmax` and `gumbel_rao` with K = 1, 10, 100 draws, each as a ratio to
   `gumbel_softmax(hard=True)` (`st_gs`) in the same run, on both shapes, in
   `tf.function` and under XLA; forward + backward (the loss and the
   gradient returned together: `straight_through`'s gradient does not
   depend on the sample, so a step returning only the gradient would let
   the graph optimizer drop the draw) and forward only (the loss). K = 100
   is left out where its K noise tensors would pass 400 MB. microsoft's
   `reinmax` package (PyTorch), when installed, in the same table.
(The semi-supervised speed-up of one sample over the sum over k classes is
measured where the M2 model is built: notebook 3.)

Run: python benchmarks/bench_sampling.py [--quick] [--markdown FILE]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import ops as gops  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "notebooks"))
import paper  # noqa: E402  (machine_description)

SHAPES = {"small": (100, 20, 10), "large": (64, 128, 1000)}
TAU = 0.5


def machine():
    return (f"{paper.machine_description()}; Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}")


# -- the contenders -------------------------------------------------------


def tf_contenders(shape):
    """name -> (callable building one fwd+bwd, uses_tf)."""
    import tensorflow_probability as tfp

    rng = np.random.default_rng(0)
    x = tf.Variable(rng.standard_normal(size=shape, dtype=np.float32))
    w = tf.constant(rng.standard_normal(size=shape, dtype=np.float32))
    seed_gen = keras.random.SeedGenerator(0)
    tfp_seed = tf.Variable([0, 0], dtype=tf.int32)

    def floor():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.softmax(x / TAU) * w)
        return tape.gradient(loss, x)

    def ours(hard):
        def fn():
            with tf.GradientTape() as tape:
                y = gops.gumbel_softmax(x, TAU, hard=hard, seed=seed_gen)
                loss = tf.reduce_sum(y * w)
            return tape.gradient(loss, x)
        return fn

    def tfp_sampler():
        tfp_seed.assign_add([0, 1])
        with tf.GradientTape() as tape:
            dist = tfp.distributions.RelaxedOneHotCategorical(TAU, logits=x)
            loss = tf.reduce_sum(dist.sample(seed=tfp_seed) * w)
        return tape.gradient(loss, x)

    def seed_pair():
        # As `ours` derives its stateless seed from its `SeedGenerator`.
        return keras.random.randint((2,), 0, 2**31 - 1, seed=seed_gen)

    def draw():
        # The uniform draw alone, as `ours` makes it (Philox by name). The
        # draw and the softmax each keep every core busy, so floor + draw is
        # what a sampler on TensorFlow's random ops costs before any work of
        # its own.
        return tf.random.stateless_uniform(
            shape, seed=seed_pair(), minval=TINY, maxval=1.0, alg="philox")

    def ours_xla_draw():
        # An experiment, not in the library: the same sample with the
        # uniform drawn by an XLA-compiled function (XLA's Philox), the rest
        # left to TensorFlow's kernels.
        with tf.GradientTape() as tape:
            u = _xla_uniform(tf.shape(x), seed_pair())
            y = keras_gumbel.ops.tempered_softmax(
                x - tf.math.log(-tf.math.log(u)), TAU)
            loss = tf.reduce_sum(y * w)
        return tape.gradient(loss, x)

    return {"floor": floor, "ours": ours(False), "ours_st": ours(True),
            "tfp": tfp_sampler, "draw": draw, "ours_xla_draw": ours_xla_draw}


TINY = float(np.finfo(np.float32).tiny)


@tf.function(jit_compile=True)
def _xla_uniform(shape, seed):
    return tf.random.stateless_uniform(
        shape, seed=seed, minval=TINY, maxval=1.0, alg="philox")


def _torch_inputs(shape):
    """Logits (requiring a gradient) and loss weights, as PyTorch tensors."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, requires_grad=True)
    return x, torch.randn(shape, generator=gen)


def torch_contender(shape):
    try:
        import torch.nn.functional as F
    except ImportError:
        return None
    x, w = _torch_inputs(shape)

    def fn():
        x.grad = None
        y = F.gumbel_softmax(x, tau=TAU, dim=-1)
        (y * w).sum().backward()
        return x.grad

    return fn


def wrap(fn, mode):
    if mode == "eager":
        return fn
    return tf.function(fn, jit_compile=(mode == "xla"))


def time_calls(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    if hasattr(out, "numpy"):
        out.numpy()
    return (time.perf_counter() - start) / calls


def interleaved_medians(fns, rounds, calls):
    """Median seconds per call of each function, over `rounds` rounds in
    which every function is timed once in turn, after two warm-up calls
    (tracing, compilation)."""
    for fn in fns.values():
        time_calls(fn, 2)
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(time_calls(fn, calls))
    return {name: float(np.median(t)) for name, t in times.items()}


def bench_ops(rounds, calls_for, modes, shapes=None):
    rows = []
    for shape_name, shape in (shapes or SHAPES).items():
        calls = calls_for[shape_name]
        for mode in modes:
            fns = {name: wrap(fn, mode)
                   for name, fn in tf_contenders(shape).items()}
            # PyTorch has no graph mode here: it is listed in each mode's
            # table, timed eagerly, as a user would run it.
            torch_fn = torch_contender(shape)
            if torch_fn is not None:
                fns["torch"] = torch_fn
            medians = interleaved_medians(fns, rounds, calls)
            for name, median in medians.items():
                rows.append({
                    "shape": shape_name, "dims": tuple(shape), "mode": mode,
                    "op": name,
                    "ms": median * 1e3,
                    "ratio": median / medians["floor"],
                })
            print(f"{shape_name:5s} {mode:11s} " + "  ".join(
                f"{n}={m * 1e3:.2f}ms" for n, m in medians.items()),
                flush=True)
    return rows


# -- estimators ------------------------------------------------------------

ESTIMATORS = ("st_gs", "straight_through", "reinmax", "gumbel_rao_k1",
              "gumbel_rao_k10", "gumbel_rao_k100")
# Gumbel-Rao's gradient holds K noise tensors of the logits' size: K = 100
# is timed only where they fit in this many elements (400 MB of float32).
MAX_RAO_ELEMENTS = 10**8


def estimator_contenders(shape, forward_only=False):
    """name -> a step drawing one sample of `shape`: the loss `sum(y * w)`
    and its gradient w.r.t. the logits together, or the loss alone."""
    rng = np.random.default_rng(0)
    x = tf.Variable(rng.standard_normal(size=shape, dtype=np.float32))
    w = tf.constant(rng.standard_normal(size=shape, dtype=np.float32))
    seed_gen = keras.random.SeedGenerator(0)
    draws = {
        "st_gs": lambda: gops.gumbel_softmax(x, TAU, hard=True,
                                             seed=seed_gen),
        "straight_through": lambda: gops.straight_through(x, TAU,
                                                          seed=seed_gen),
        "reinmax": lambda: gops.reinmax(x, TAU, seed=seed_gen),
    }
    for k in (1, 10, 100):
        if k * int(np.prod(shape)) <= MAX_RAO_ELEMENTS:
            draws[f"gumbel_rao_k{k}"] = (
                lambda k=k: gops.gumbel_rao(x, TAU, num_samples=k,
                                            seed=seed_gen))

    def step(draw):
        def fn():
            if forward_only:
                return tf.reduce_sum(draw() * w)
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(draw() * w)
            return loss, tape.gradient(loss, x)
        return fn

    return {name: step(draw) for name, draw in draws.items()}


def torch_reinmax_contender(shape, forward_only=False):
    """microsoft's `reinmax` package (PyTorch, CPU), when installed: the
    same step, eagerly. It refuses temperatures below 1, so it runs at 1
    (the time does not depend on the temperature)."""
    try:
        import torch
        from reinmax import reinmax
    except ImportError:
        return None
    x, w = _torch_inputs(shape)

    def fn():
        if forward_only:
            with torch.no_grad():
                return (reinmax(x, 1.0)[0] * w).sum()
        x.grad = None
        loss = (reinmax(x, 1.0)[0] * w).sum()
        loss.backward()
        return loss, x.grad

    return fn


def bench_estimators(rounds, calls_for, modes, shapes=None):
    rows = []
    for shape_name, shape in (shapes or SHAPES).items():
        calls = calls_for[shape_name]
        for mode in modes:
            for which in ("fwd+bwd", "fwd"):
                fns = {name: wrap(fn, mode) for name, fn in
                       estimator_contenders(shape, which == "fwd").items()}
                torch_fn = torch_reinmax_contender(shape, which == "fwd")
                if torch_fn is not None:
                    fns["torch_reinmax"] = torch_fn
                medians = interleaved_medians(fns, rounds, calls)
                for name, median in medians.items():
                    rows.append({
                        "shape": shape_name, "dims": tuple(shape),
                        "mode": mode, "pass": which, "op": name,
                        "ms": median * 1e3,
                        "ratio": median / medians["st_gs"],
                    })
                print(f"{shape_name:5s} {mode:11s} {which:7s} " + "  ".join(
                    f"{n}={m * 1e3:.2f}ms" for n, m in medians.items()),
                    flush=True)
    return rows


def estimator_markdown(rows):
    lines = ["### Estimators: straight-through, ReinMax, Gumbel-Rao (median "
             "ms per call; ratio to `gumbel_softmax(hard=True)` in the same "
             "run)", "",
             "| shape | mode | pass | st_gs | straight_through | reinmax | "
             "gumbel_rao K=1 | K=10 | K=100 | reinmax (PyTorch, eager) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["shape"], r["mode"], r["pass"])
                              for r in rows))
    for shape, mode, which in keys:
        cells = {r["op"]: r for r in rows if (r["shape"], r["mode"],
                                              r["pass"]) == (shape, mode,
                                                             which)}
        dims = next(iter(cells.values()))["dims"]

        def cell(name):
            if name not in cells:
                return "n/a"
            r = cells[name]
            if name == "st_gs":
                return f"{r['ms']:.2f}"
            return f"{r['ms']:.2f} ({r['ratio']:.2f}x)"

        lines.append(f"| {shape} {dims} | {mode} | {which} | "
                     + " | ".join(cell(n) for n in ESTIMATORS
                                  + ("torch_reinmax",)) + " |")
    lines += ["", "`fwd+bwd` returns the loss and its gradient together; "
              "`fwd` the loss alone (a forward pass, as in `predict`). "
              "n/a: K = 100 noise tensors of the large shape would take "
              "3.3 GB; the PyTorch `reinmax` package where it is not "
              "installed."]
    return "\n".join(lines) + "\n"


# -- memory ------------------------------------------------------------------


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(which):
    """Runs fwd+bwd on the large shape in tf.function; prints KiB.

    Linux only: the peak resident set (VmHWM) is reset through
    /proc/self/clear_refs after the inputs exist and the function is traced,
    so the peak that follows is that of the calls alone (importing
    TensorFlow peaks higher than any of them).
    """
    shape = SHAPES["large"]
    fns = tf_contenders(shape)
    fn = tf.function(fns[which]) if which != "baseline" else None
    if fn is not None:
        fn.get_concrete_function()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    if fn is not None:
        for _ in range(3):
            fn().numpy()
    peak = _status_kib("VmHWM")
    print(json.dumps({"base": base, "peak": peak}))


def bench_memory():
    results = {}
    for which in ("baseline", "floor", "ours", "ours_st"):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", which],
            capture_output=True, text=True, check=True)
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = []
    for which in ("floor", "ours", "ours_st"):
        grow = results[which]["peak"] - results[which]["base"]
        rows.append({"op": which, "MiB": grow / 1024})
        print(f"memory {which}: +{grow / 1024:.0f} MiB", flush=True)
    return rows


# -- VAE training step -----------------------------------------------------


def vae(kind, jit_compile, seed=0):
    """The notebooks' categorical VAE; `kind` is the latent layer."""
    keras.utils.set_random_seed(seed)
    x = keras.Input(shape=(784,))
    h = keras.layers.Dense(512, activation="relu")(x)
    h = keras.layers.Dense(256, activation="relu")(h)
    logits = keras.layers.Reshape((20, 10))(keras.layers.Dense(200)(h))
    if kind == "softmax":
        z = keras.layers.Softmax(axis=-1)(logits)
    elif kind == "gumbel":
        z = keras_gumbel.GumbelSoftmax(temperature=TAU, seed=seed)(logits)
    else:
        z = keras_gumbel.STGumbel(temperature=TAU, seed=seed)(logits)
    h = keras.layers.Dense(256, activation="relu")(keras.layers.Flatten()(z))
    h = keras.layers.Dense(512, activation="relu")(h)
    out = keras.layers.Dense(784)(h)
    model = keras.Model(x, out)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        jit_compile=jit_compile)
    return model


def bench_vae(rounds, steps):
    data = (np.random.default_rng(0).random((100, 784)) < 0.3).astype(
        "float32")
    rows = []
    for jit in ("auto", False):
        models = {kind: vae(kind, jit) for kind in ("softmax", "gumbel", "st")}
        for model in models.values():
            for _ in range(3):
                model.train_on_batch(data, data)
        times = {kind: [] for kind in models}
        for _ in range(rounds):
            for kind, model in models.items():
                start = time.perf_counter()
                for _ in range(steps):
                    model.train_on_batch(data, data)
                times[kind].append((time.perf_counter() - start) / steps)
        medians = {k: float(np.median(v)) for k, v in times.items()}
        for kind, median in medians.items():
            # Paired: each round's time over the softmax model's in the same
            # round, so that drift in the machine's speed cancels.
            ratios = np.array(times[kind]) / np.array(times["softmax"])
            rows.append({"jit_compile": str(jit), "latent": kind,
                         "ms": median * 1e3,
                         "ratio": float(np.median(ratios)),
                         "ratio_q1": float(np.percentile(ratios, 25)),
                         "ratio_q3": float(np.percentile(ratios, 75))})
        print(f"vae jit_compile={jit}: " + "  ".join(
            f"{k}={m * 1e3:.2f}ms" for k, m in medians.items()), flush=True)
    return rows


# -- report ----------------------------------------------------------------


def markdown(op_rows, mem_rows, vae_rows, header):
    lines = [header, ""]
    lines += ["### Forward + backward of one sample (median ms per call; "
              "ratio to the softmax floor in the same mode)", "",
              "| shape | mode | floor | ours | ours_st | tfp | torch |",
              "|---|---|---|---|---|---|---|"]
    # In the order measured: shapes, then modes.
    keys = list(dict.fromkeys((r["shape"], r["mode"]) for r in op_rows))
    dims = {r["shape"]: r["dims"] for r in op_rows}
    for shape, mode in keys:
        cells = {r["op"]: r for r in op_rows
                 if r["shape"] == shape and r["mode"] == mode}

        def cell(name):
            if name not in cells:
                return "n/a"
            r = cells[name]
            return f"{r['ms']:.2f} ({r['ratio']:.2f}x)"

        lines.append(f"| {shape} {dims[shape]} | {mode} | "
                     + " | ".join(cell(n) for n in (
                         "floor", "ours", "ours_st", "tfp", "torch")) + " |")
    if any(r["op"] == "torch" for r in op_rows):
        lines += ["", "torch runs eagerly in every row (it has no graph "
                  "mode here); its column repeats across modes."]
    if any(r["op"] == "draw" for r in op_rows):
        lines += ["", "### Where the time goes (median ms per call; ratio to "
                  "the floor)", "",
                  "`draw`: the uniform draw alone, as `ours` makes it. "
                  "`floor + draw`: what a sampler on TensorFlow's random ops "
                  "costs before any work of its own (both keep every core "
                  "busy, so their times add). `ours_xla_draw`: an experiment, "
                  "not in the library: `ours` with the uniform drawn by an "
                  "XLA-compiled function inside the `tf.function`.", "",
                  "| shape | mode | floor | draw | floor + draw | ours | "
                  "ours_xla_draw |", "|---|---|---|---|---|---|---|"]
        for shape, mode in keys:
            cells = {r["op"]: r for r in op_rows
                     if r["shape"] == shape and r["mode"] == mode}
            if "draw" not in cells:
                continue
            floor_ms = cells["floor"]["ms"]
            bound = floor_ms + cells["draw"]["ms"]
            lines.append(
                f"| {shape} | {mode} | {floor_ms:.2f} | "
                + " | ".join(f"{ms:.2f} ({ms / floor_ms:.2f}x)" for ms in (
                    cells["draw"]["ms"], bound, cells["ours"]["ms"],
                    cells["ours_xla_draw"]["ms"])) + " |")
    if mem_rows:
        lines += ["", "### Peak memory, forward + backward, large shape, "
                  "tf.function (growth of peak RSS)", "",
                  "| op | MiB |", "|---|---|"]
        lines += [f"| {r['op']} | {r['MiB']:.0f} |" for r in mem_rows]
    if vae_rows:
        lines += ["", "### VAE training step, batch 100 (median ms per "
                  "step; ratio to the plain-softmax model)", "",
                  "| jit_compile | softmax | GumbelSoftmax | STGumbel |",
                  "|---|---|---|---|"]
        for jit in ("auto", "False"):
            cells = {r["latent"]: r for r in vae_rows
                     if r["jit_compile"] == jit}

            def vae_cell(k):
                r = cells[k]
                if k == "softmax":
                    return f"{r['ms']:.2f}"
                return (f"{r['ms']:.2f} ({r['ratio']:.3f}x; quartiles "
                        f"{r['ratio_q1']:.3f}-{r['ratio_q3']:.3f})")

            lines.append(f"| {jit} | " + " | ".join(
                vae_cell(k) for k in ("softmax", "gumbel", "st")) + " |")
        lines += ["", "Ratios are medians over rounds of each round's time "
                  "over the softmax model's in the same round."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="few rounds: checks the script runs, not speed")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--markdown", help="write the tables to this file")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["ops", "memory", "vae", "estimators"])
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child)
        return
    rounds = 2 if args.quick else args.rounds
    calls = ({"small": 2, "large": 1} if args.quick
             else {"small": 50, "large": 3})
    command = " ".join(["python", "benchmarks/bench_sampling.py"]
                       + sys.argv[1:])
    header = (f"Machine: {machine()}. Command: `{command}`; {rounds} "
              f"interleaved rounds, medians.")
    print(header, flush=True)
    op_rows = mem_rows = vae_rows = []
    if "ops" not in args.skip:
        op_rows = bench_ops(rounds, calls, ["eager", "tf.function", "xla"])
    if "memory" not in args.skip:
        mem_rows = bench_memory()
    if "vae" not in args.skip:
        vae_rows = bench_vae(rounds, 2 if args.quick else 20)
    report = markdown(op_rows, mem_rows, vae_rows, header)
    if "estimators" not in args.skip:
        report += "\n" + estimator_markdown(bench_estimators(
            rounds, calls, ["tf.function", "xla"]))
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
