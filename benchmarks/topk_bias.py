"""Which relaxation of the Gumbel-top-k k-hot: bias against the exact gradient.

The problem (small enough to enumerate): choose k = 3 of K = 8 classes
without replacement, S ~ Plackett-Luce(theta) (the top 3 of theta + g, g
Gumbel noise), theta ~ N(0, 1) fixed by the seed, and a loss of the k-hot b
of S,

    f(b) = || b W - t ||^2,   W (8, 3), t (3,).

The exact gradient of E[f(b)] w.r.t. theta sums over the 8 * 7 * 6 = 336
ordered sequences s in float64: P(s) = prod_j softmax(theta over the classes
not yet chosen)[s_j], and by the score function

    d E / d theta = sum_s P(s) f(s) sum_j (e_{s_j} - p_j(s)),

p_j(s) the softmax over the classes left before step j (0 on the chosen).

Each estimator's gradient is drawn N times (N independent rows of one batch,
each with its own noise; all estimators at one temperature see the same
noise) and averaged. Each relaxation comes relaxed (f evaluated at the
relaxed sample: the gradient of another objective, as `gumbel_softmax
(soft)` in bias_table.py) and straight-through (`ST`: f at the exact k-hot
of top-k(r), r = theta + g, and the relaxed sample's gradient). Both
relaxations are written here in TensorFlow, so that the table does not
change with the library's choice:

- `successive softmax` (Xie & Ermon 2019): y = q_1 + ... + q_k, q_j =
  softmax(z_j), z_1 = r / tau, z_{j+1} = z_j + log(1 - q_j) / tau; its
  gradient written out in reverse over the k steps (0 / 0 taken as 0 where
  q_j = 1 exactly, as autodiff would not);
- `sigmoid threshold`: a [0, 1]-bounded alternative, y_i = sigmoid((r_i -
  c) / tau), the threshold c of each row set by bisection so that sum_i
  y_i = k; its gradient by implicit differentiation (with s_i = y_i (1 -
  y_i): dL/dr_i = (s_i / tau) (dL/dy_i - sum_j s_j dL/dy_j / sum_j s_j));
- `ops.gumbel_topk`: the library's op (`hard=False`, `hard=True`), whichever
  relaxation it implements when the script runs (it should match one of the
  two above to within the noise).

The table gives, per estimator and temperature (as bias_table.py):

- `cosine`: cosine between the mean gradient and the exact one;
- `rel. bias`: ||mean - exact|| / ||exact||;
- `noise`: the Monte Carlo error that rel. bias carries, sqrt(tr Cov / N) /
  ||exact|| (a rel. bias of that size is no evidence of bias);
- `rel. RMSE`: the error of one draw, sqrt(E ||g - exact||^2) / ||exact||.

A second table gives, for each relaxed sample, its largest entry over the N
rows and the fractions of rows with an entry above 1 (by more than 1e-5,
float32 rounding left out) and above 1.1. The successive softmax is not
bounded by 1: where two noisy logits are close (each softmax's removal of
the chosen mass, log(1 - q_j) / tau, takes more than that mass out at a
temperature below 1, and the next softmax gives it back to the other),
and where one logit dominates at a temperature above 1 (the removal takes
out less, and the next softmax picks the same class again).

Run: python benchmarks/topk_bias.py [--draws N] [--seed S] [--chunk C]
"""

import argparse
import itertools
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gumbel import ops  # noqa: E402

# The statistics are bias_table.py's, beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bias_table  # noqa: E402

CLASSES, K, DIMS = 8, 3, 3
TEMPERATURES = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
BISECTION_STEPS = 60
ABOVE_ONE = 1e-5  # what counts as an entry above 1 (float32 rounding)
BATCH = 100  # the conclusion's error of a mean over a batch of draws


def problem(seed=0):
    """theta (8,), W (8, 3) and t (3,), fixed by `seed`."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=CLASSES)
    weights = rng.normal(size=(CLASSES, DIMS))
    target = rng.normal(size=DIMS)
    return theta, weights, target


def loss_np(khot, weights, target):
    """f for k-hots (or relaxed k-hots) of shape (..., CLASSES)."""
    return np.sum((khot @ weights - target) ** 2, axis=-1)


def sequences():
    """Every ordered choice of K distinct classes, (336, K)."""
    return np.array(list(itertools.permutations(range(CLASSES), K)))


def exact_gradient(theta, weights, target):
    """d E[f(k-hot(S))] / d theta, S ~ Plackett-Luce(theta), summing over
    the 336 ordered sequences in float64 (score function, closed form)."""
    seqs = sequences()
    n = len(seqs)
    e = np.exp(theta - theta.max())
    left = np.ones((n, CLASSES))  # the classes not yet chosen
    log_prob = np.zeros(n)
    score = np.zeros((n, CLASSES))  # d log P(s) / d theta
    for j in range(K):
        p = left * e
        p /= p.sum(axis=1, keepdims=True)
        chosen = seqs[:, j]
        log_prob += np.log(p[np.arange(n), chosen])
        score += np.eye(CLASSES)[chosen] - p
        left[np.arange(n), chosen] = 0.0
    khot = np.eye(CLASSES)[seqs].sum(axis=1)
    weighted = np.exp(log_prob) * loss_np(khot, weights, target)
    return weighted @ score


# -- the relaxations ----------------------------------------------------------


def _khot(r, k):
    """The exact k-hot of the top k of `r` along the last axis."""
    index = tf.math.top_k(r, k).indices
    return tf.reduce_sum(tf.one_hot(index, r.shape[-1], dtype=r.dtype),
                         axis=-2)


def successive_softmax(r, tau, k, hard):
    """Xie & Ermon's relaxed k-hot of `r` (rows along the last axis), or
    with `hard` the exact k-hot of top-k(r); the gradient that of the
    relaxed one, written out in reverse over the k softmaxes: with a the
    gradient reaching z_{j+1}, softmax j receives dL/dy - a / (tau (1 -
    q_j)) (0 where q_j = 1: a is 0 there) and its vector-Jacobian product
    is added to a; dL/dr = a / tau at the end."""

    @tf.custom_gradient
    def fn(r):
        z = r / tau
        qs = []
        for j in range(k):
            q = tf.nn.softmax(z, axis=-1)
            qs.append(q)
            if j < k - 1:
                z = z + tf.math.log1p(-q) / tau
        y = _khot(r, k) if hard else tf.add_n(qs)

        def grad(dy):
            a = tf.zeros_like(dy)
            for q in reversed(qs):
                g = dy - tf.math.divide_no_nan(a, tau * (1.0 - q))
                a = a + q * (g - tf.reduce_sum(q * g, axis=-1,
                                               keepdims=True))
            return a / tau

        return tf.identity(y), grad

    return fn(r)


def _threshold(r, tau, k):
    """c per row with sum_i sigmoid((r_i - c) / tau) = k, by bisection (the
    sum falls as c rises) from [min r - 30 tau, max r + 30 tau]."""
    low = tf.reduce_min(r, axis=-1, keepdims=True) - 30.0 * tau
    high = tf.reduce_max(r, axis=-1, keepdims=True) + 30.0 * tau
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (low + high)
        total = tf.reduce_sum(tf.sigmoid((r - mid) / tau), axis=-1,
                              keepdims=True)
        above = total > k  # c too low
        low = tf.where(above, mid, low)
        high = tf.where(above, high, mid)
    return 0.5 * (low + high)


def sigmoid_threshold(r, tau, k, hard):
    """The [0, 1]-bounded relaxed k-hot of `r` (rows along the last axis),
    or with `hard` the exact k-hot of top-k(r); the gradient w.r.t. `r` by
    implicit differentiation of the relaxed one."""

    @tf.custom_gradient
    def fn(r):
        x = (r - _threshold(r, tau, k)) / tau
        y = tf.sigmoid(x)
        s = y * tf.sigmoid(-x)  # y (1 - y), accurate where y is near 1
        if hard:
            y = _khot(r, k)

        def grad(dy):
            mean = tf.math.divide_no_nan(
                tf.reduce_sum(s * dy, axis=-1, keepdims=True),
                tf.reduce_sum(s, axis=-1, keepdims=True))
            return s / tau * (dy - mean)

        return tf.identity(y), grad

    return fn(r)


def estimators():
    """name -> fn(logits, temperature, seed), one sample per row; all draw
    the Gumbel noise `ops.gumbel_topk` draws for the same seed
    (`ops.sample_gumbel`'s)."""

    def ours(relaxation, hard):
        def fn(x, tau, seed):
            g = ops.sample_gumbel(tuple(x.shape), seed=seed)
            return relaxation(x + g, tau, K, hard)
        return fn

    return {
        "successive softmax, relaxed": ours(successive_softmax, False),
        "successive softmax, ST": ours(successive_softmax, True),
        "sigmoid threshold, relaxed": ours(sigmoid_threshold, False),
        "sigmoid threshold, ST": ours(sigmoid_threshold, True),
        "ops.gumbel_topk, relaxed": lambda x, tau, s: ops.gumbel_topk(
            x, K, tau, hard=False, seed=s),
        "ops.gumbel_topk, ST": lambda x, tau, s: ops.gumbel_topk(
            x, K, tau, hard=True, seed=s),
    }


def draw_gradients(fn, theta, weights, target, temperature, draws, seed,
                   chunk=20000):
    """`draws` gradient estimates of E[f] w.r.t. theta, (draws, 8), and the
    samples, (draws, 8)."""
    w = tf.constant(weights, tf.float32)
    t = tf.constant(target, tf.float32)
    grads, samples = [], []
    for start in range(0, draws, chunk):
        n = min(chunk, draws - start)
        x = tf.Variable(np.tile(theta[None], (n, 1)), dtype=tf.float32)
        with tf.GradientTape() as tape:
            y = fn(x, temperature, seed + start)
            loss = tf.reduce_sum(tf.square(tf.matmul(y, w) - t))
        grads.append(tape.gradient(loss, x).numpy().astype(np.float64))
        samples.append(y.numpy())
    return np.concatenate(grads), np.concatenate(samples)


def table(draws=100000, seed=0, chunk=20000):
    """The bias rows (estimator x temperature) and, per relaxed estimator
    and temperature, the sample's largest entry and the shares of rows with
    an entry above 1 and above 1.1."""
    theta, weights, target = problem(seed)
    exact = exact_gradient(theta, weights, target)
    norm = np.linalg.norm(exact)
    rows, bounds = [], []
    for temperature in TEMPERATURES:
        for name, fn in estimators().items():
            g, y = draw_gradients(fn, theta, weights, target, temperature,
                                  draws, seed=1000 * seed + 17, chunk=chunk)
            assert np.all(np.isfinite(g)), (name, temperature)
            rows.append({
                "estimator": name, "temperature": temperature,
                **bias_table.gradient_stats(g, exact),
                # in units of ||exact||
                "mean": (g.mean(axis=0) / norm).tolist(),
                # the largest gradient entry of one draw (heavy tails)
                "largest": float(np.abs(g).max()),
                "exact_largest": float(np.abs(exact).max()),
            })
            if name.endswith(", relaxed"):
                bounds.append({
                    "estimator": name,
                    "temperature": temperature,
                    "max_entry": float(y.max()),
                    "above_one": float(np.mean(
                        y.max(axis=1) > 1.0 + ABOVE_ONE)),
                    "above_1_1": float(np.mean(y.max(axis=1) > 1.1)),
                })
    return rows, bounds


def conclusions(rows):
    """Per temperature, the lower-bias estimator of each pair (relaxed,
    straight-through), and whether the gap exceeds 3 noise levels; per
    estimator, the temperature of least bias, and that of the least error
    of a mean of `BATCH` draws."""
    by = {(r["estimator"], r["temperature"]): r for r in rows}
    lines = []
    for kind in ("relaxed", "ST"):
        a, b = f"successive softmax, {kind}", f"sigmoid threshold, {kind}"
        for tau in TEMPERATURES:
            ra, rb = by[(a, tau)], by[(b, tau)]
            better = a if ra["rel_bias"] < rb["rel_bias"] else b
            gap = abs(ra["rel_bias"] - rb["rel_bias"])
            noise = max(ra["noise"], rb["noise"])
            lines.append(
                f"- {kind}, tau {tau:g}: rel. bias {ra['rel_bias']:.3f} "
                f"(successive softmax) vs {rb['rel_bias']:.3f} (sigmoid "
                f"threshold); rel. RMSE {ra['rel_rmse']:.2f} vs "
                f"{rb['rel_rmse']:.2f}; lower bias: {better}"
                + ("" if gap > 3 * noise else
                   " (gap within 3 noise levels)") + ".")
    for kind in ("relaxed", "ST"):
        lib = f"ops.gumbel_topk, {kind}"
        for ref in ("successive softmax", "sigmoid threshold"):
            gaps = [np.linalg.norm(np.subtract(
                by[(lib, tau)]["mean"], by[(f"{ref}, {kind}", tau)]["mean"]))
                for tau in TEMPERATURES]
            lines.append(
                f"- {lib} against {ref}, {kind}: ||mean difference|| / "
                f"||exact|| at most {max(gaps):.3f} over the temperatures.")
    for name in estimators():
        mine = [r for r in rows if r["estimator"] == name]
        r = min(mine, key=lambda r: r["rel_bias"])
        b = min(mine, key=lambda r: batch_error(r, BATCH))
        lines.append(
            f"- {name}: least biased at tau {r['temperature']:g} (rel. bias "
            f"{r['rel_bias']:.3f}, cosine {r['cosine']:.3f}); smallest "
            f"error of a mean of {BATCH} draws at tau {b['temperature']:g} "
            f"({batch_error(b, BATCH):.3f}).")
    return lines


def batch_error(row, batch):
    """The relative error of a mean of `batch` draws, sqrt(bias^2 +
    (RMSE^2 - bias^2) / batch): a training step's gradient averaged over
    a batch."""
    bias2 = row["rel_bias"] ** 2
    return float(np.sqrt(bias2 + max(row["rel_rmse"] ** 2 - bias2, 0.0)
                         / batch))


def markdown(rows, bounds, draws):
    lines = [
        f"k = {K} of K = {CLASSES} classes, f(b) = ||b W - t||^2; mean of "
        f"{draws} draws against the exact gradient (336 ordered sequences).",
        "",
    ] + bias_table.stats_table(rows)
    lines += [
        "",
        "Relaxed samples: largest entry over the draws, and the shares of "
        f"rows with an entry above 1 (+{ABOVE_ONE:g}) and above 1.1.",
        "",
        "| relaxed sample | tau | largest entry | rows with an entry > 1 "
        "| rows with an entry > 1.1 |",
        "|---|---|---|---|---|",
    ]
    for b in bounds:
        lines.append(f"| {b['estimator']} | {b['temperature']:g} "
                     f"| {b['max_entry']:.4f} "
                     f"| {100 * b['above_one']:.2f} % "
                     f"| {100 * b['above_1_1']:.2f} % |")
    lines += ["", "The largest gradient entry of one draw (the exact "
              f"gradient's largest: {max(r['exact_largest'] for r in rows):.3g}"
              "):", "", "| estimator | " + " | ".join(
                  f"tau {t:g}" for t in TEMPERATURES) + " |",
              "|---|" + "---|" * len(TEMPERATURES)]
    for name in dict.fromkeys(r["estimator"] for r in rows):
        lines.append(f"| {name} | " + " | ".join(
            f"{r['largest']:.3g}" for r in rows
            if r["estimator"] == name) + " |")
    lines += ["", "Conclusion data:", ""] + conclusions(rows)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=20000,
                        help="rows per batch (each batch has its own seed: "
                        "the noise depends on it)")
    args = parser.parse_args()
    start = time.perf_counter()
    rows, bounds = table(args.draws, args.seed, args.chunk)
    print(markdown(rows, bounds, args.draws))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
