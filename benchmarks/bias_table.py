"""Bias of each gradient estimator against the exact gradient, by enumeration.

The problem (small enough to enumerate, as in ReinMax's repository): four
categorical latents of eight classes each, D_i ~ Categorical(softmax(theta_i)),
and a loss that couples them,

    f(D) = || sum_i D_i W_i - t ||^2,   W_i (8, 3), t (3,)

(the latents each pick a row of their W_i; the rows' sum should be t). The
exact gradient of E[f(D)] w.r.t. theta sums over the 8^4 = 4096 outcomes in
float64:

    d E / d theta_i = sum_D P(D) f(D) (D_i - p_i).

Each estimator's gradient is drawn N times (N independent rows of one batch,
each with its own sample) and averaged. The table gives, per estimator and
temperature:

- `cosine`: cosine between the mean gradient and the exact one;
- `rel. bias`: ||mean - exact|| / ||exact||;
- `noise`: the Monte Carlo error that rel. bias carries, sqrt(tr Cov / N) /
  ||exact|| (a rel. bias of that size is no evidence of bias);
- `rel. RMSE`: the error of one draw, sqrt(E ||g - exact||^2) / ||exact||.

`gumbel_softmax` (soft) evaluates f at the relaxed sample: the gradient of
another objective, shown for reference.

Run: python benchmarks/bias_table.py [--draws N] [--seed S]
"""

import argparse
import itertools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gumbel import ops  # noqa: E402

LATENTS, CLASSES, DIMS = 4, 8, 3
TEMPERATURES = (0.5, 1.0, 2.0)


def problem(seed=0):
    """theta (4, 8), W (4, 8, 3) and t (3,), fixed by `seed`."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(LATENTS, CLASSES))
    weights = rng.normal(size=(LATENTS, CLASSES, DIMS))
    target = rng.normal(size=DIMS)
    return theta, weights, target


def loss_np(choices, weights, target):
    """f for outcomes given as class indices, shape (..., LATENTS)."""
    picked = sum(weights[i][choices[..., i]] for i in range(LATENTS))
    return np.sum((picked - target) ** 2, axis=-1)


def exact_gradient(theta, weights, target):
    """d E[f(D)] / d theta, summing over every outcome, in float64."""
    p = np.exp(theta - theta.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    choices = np.array(list(itertools.product(range(CLASSES),
                                              repeat=LATENTS)))
    prob = np.prod(p[np.arange(LATENTS), choices], axis=1)
    weighted = prob * loss_np(choices, weights, target)
    one_hot = np.eye(CLASSES)[choices]  # (outcomes, latents, classes)
    return np.einsum("o,olk->lk", weighted, one_hot - p[None])


def estimators():
    """name -> fn(logits, temperature, seed) drawing one sample per row."""
    return {
        "gumbel_softmax (soft)": lambda x, t, s: ops.gumbel_softmax(
            x, t, seed=s),
        "gumbel_softmax(hard=True)": lambda x, t, s: ops.gumbel_softmax(
            x, t, hard=True, seed=s),
        "straight_through": lambda x, t, s: ops.straight_through(
            x, t, seed=s),
        "reinmax": lambda x, t, s: ops.reinmax(x, t, seed=s),
        "gumbel_rao K=10": lambda x, t, s: ops.gumbel_rao(
            x, t, num_samples=10, seed=s),
        "gumbel_rao K=100": lambda x, t, s: ops.gumbel_rao(
            x, t, num_samples=100, seed=s),
    }


def draw_gradients(fn, theta, weights, target, temperature, draws, seed,
                   chunk=4000):
    """`draws` gradient estimates of E[f] w.r.t. theta, (draws, 4, 8)."""
    w = tf.constant(weights, tf.float32)
    t = tf.constant(target, tf.float32)
    out = []
    for start in range(0, draws, chunk):
        n = min(chunk, draws - start)
        x = tf.Variable(np.tile(theta[None], (n, 1, 1)), dtype=tf.float32)
        with tf.GradientTape() as tape:
            d = fn(x, temperature, seed + start)
            picked = tf.einsum("nlk,lkd->nd", d, w)
            loss = tf.reduce_sum(tf.square(picked - t))
        out.append(tape.gradient(loss, x).numpy().astype(np.float64))
    return np.concatenate(out)


def gradient_stats(g, exact):
    """cosine, rel_bias, noise and rel_rmse (as the docstring defines them)
    of gradient draws `g`, shape (draws, d), against `exact`, shape (d,)."""
    norm = np.linalg.norm(exact)
    mean = g.mean(axis=0)
    return {
        "cosine": float(mean @ exact / (np.linalg.norm(mean) * norm)),
        "rel_bias": float(np.linalg.norm(mean - exact) / norm),
        "noise": float(np.sqrt(g.var(axis=0).sum() / len(g)) / norm),
        "rel_rmse": float(np.sqrt(np.mean(np.sum((g - exact) ** 2,
                                                 axis=1))) / norm),
    }


def table(draws=20000, seed=0):
    theta, weights, target = problem(seed)
    exact = exact_gradient(theta, weights, target).ravel()
    rows = []
    for temperature in TEMPERATURES:
        for name, fn in estimators().items():
            g = draw_gradients(fn, theta, weights, target, temperature,
                               draws, seed=1000 * seed + 17).reshape(
                                   draws, -1)
            rows.append({"estimator": name, "temperature": temperature,
                         **gradient_stats(g, exact)})
    return rows


def stats_table(rows):
    """The markdown lines of a table of `gradient_stats` rows."""
    lines = ["| estimator | tau | cosine | rel. bias | noise | rel. RMSE |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['estimator']} | {r['temperature']:g} | {r['cosine']:.3f} "
            f"| {r['rel_bias']:.3f} | {r['noise']:.3f} "
            f"| {r['rel_rmse']:.2f} |")
    return lines


def markdown(rows, draws):
    return "\n".join([
        f"4 latents x 8 classes, f(D) = ||sum_i D_i W_i - t||^2; mean of "
        f"{draws} draws against the exact gradient (4096 outcomes).",
        ""] + stats_table(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = table(args.draws, args.seed)
    print(markdown(rows, args.draws))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
