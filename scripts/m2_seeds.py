"""Notebook 3's M2 training, repeated over model seeds, for chosen estimators.

    python scripts/m2_seeds.py --seeds 0 1 2 --estimators gumbel st

The set-up is notebook 3's at full scale (the same 100 labels, chosen with
seed 0; 2000 steps of 100 unlabelled + 100 labelled images; alpha = 1;
temperature annealed as there; XLA off); only the model's seed (weights,
Gumbel and Gaussian noise) changes. It prints one JSON line per run (test and
validation accuracy, seconds) and, with `--output`, writes them all to a
file. It asks whether a difference between estimators in the notebook's
table is larger than the spread over seeds. Needs MNIST-like data, as the
notebooks do (`keras_gumbel.datasets.load_mnist`).
"""

import argparse
import json
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_gumbel  # noqa: E402
from keras_gumbel import datasets  # noqa: E402
from keras_gumbel.experiments import report  # noqa: E402
from keras_gumbel.experiments import semisupervised as ss  # noqa: E402

# fit() warns that it cannot shuffle a tf.data.Dataset: ours shuffles itself.
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")

DATA_SEED = 0
STEPS, EVAL_EVERY, BATCH = 2000, 250, 100


def run(data, labelled, fixed, seed, estimator):
    """One run. `labelled`: indices of the labels; `fixed`: the validation
    and test images binarized once (`data.binarized`), shared by the runs."""
    x_labelled = data.x_train[labelled]
    y_labelled = data.y_train[labelled]
    train_ds = ss.semi_supervised_dataset(
        data.x_train, x_labelled, y_labelled, batch_size=BATCH,
        seed=DATA_SEED)
    model = ss.build_m2(10, 32, estimator=estimator, alpha=1.0, seed=seed,
                        jit_compile=False)
    callbacks = []
    if model.sampler is not None:
        callbacks.append(keras_gumbel.TemperatureAnnealing(
            initial=1.0, rate=3e-5, minimum=0.5, update_every=2000))
    with report.Timer() as timer:
        history = model.fit(
            train_ds.repeat(), steps_per_epoch=EVAL_EVERY,
            epochs=STEPS // EVAL_EVERY,
            validation_data=(fixed.x_valid, data.y_valid),
            validation_batch_size=1000, callbacks=callbacks, verbose=0)
    return {
        "seed": seed, "estimator": estimator,
        "test_accuracy": ss.accuracy(model, fixed.x_test, data.y_test),
        "val_accuracy": [float(v) for v in history.history["val_accuracy"]],
        "seconds": timer.seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--estimators", nargs="+", default=["gumbel", "st"],
                        choices=list(ss.ESTIMATORS))
    parser.add_argument("--output", help="write the runs to this JSON file")
    args = parser.parse_args()
    data = datasets.load_mnist()
    labelled = datasets.labelled_subset(
        data.y_train, per_class=10, seed=DATA_SEED)
    fixed = data.binarized(seed=DATA_SEED)
    runs = []
    started = time.time()
    for seed in args.seeds:
        for estimator in args.estimators:
            runs.append(run(data, labelled, fixed, seed, estimator))
            print(json.dumps(runs[-1]), flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"data": data.name, "machine":
                       report.machine_description(), "runs": runs,
                       "seconds": time.time() - started}, f, indent=1)


if __name__ == "__main__":
    main()
