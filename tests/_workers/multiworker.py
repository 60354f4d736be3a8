"""One worker of a two-worker `MultiWorkerMirroredStrategy` run.

Started by `tests/test_training.py` with `TF_CONFIG` naming two workers on
loopback ports. Usage: `multiworker.py OUT.json`. Builds a small categorical
autoencoder with an annealed `GumbelSoftmax` and a learned-temperature
`GumbelSigmoid` under `strategy.scope()`, fits it with
`TemperatureAnnealing`, records at every batch the optimizer step and the
temperature this worker's layer holds, and writes the records, the final
temperatures and a digest of the final weights to `OUT.json`.

Two workarounds for Keras 3 (3.15) under this strategy, both with public
APIs (see the README's "Scaling out"):

- the dataset yields the inputs alone, not `(x, y)` pairs, and the loss is
  added with `add_loss`: `fit` reduces a first batch across the workers to
  build the model, and `MultiWorkerMirroredStrategy.reduce` fails on a
  tuple ("Attempt to convert a value (PerReplica...) to a Tensor",
  keras-team/keras#20585);
- `train_step` returns its logs with shape `(1,)`: `fit` reduces each log
  with `strategy.reduce("MEAN", value, axis=0)` across the workers, which
  fails on the scalars the default `train_step` returns ("Invalid reduction
  dimension 0 for input with 0 dimensions").
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# The strategy must exist before TensorFlow runs anything else.
strategy = tf.distribute.MultiWorkerMirroredStrategy(
    communication_options=tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation
        .RING))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

PIXELS = 8
GLOBAL_BATCH = 16
STEPS_PER_EPOCH = 4
EPOCHS = 2
# The temperature changes every 2 steps: at steps 0, 2, 4 and 6.
ANNEALING = dict(initial=1.0, rate=0.25, minimum=0.05, update_every=2)


class MultiWorkerModel(keras.Model):
    """Returns the logs with shape (1,), which `fit` can reduce across
    workers."""

    def train_step(self, data):
        logs = super().train_step(data)
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}


class ReconstructionLoss(keras.layers.Layer):
    """Adds the Bernoulli negative log-likelihood of `x` given the logits."""

    def call(self, x, logits):
        self.add_loss(tf.reduce_mean(tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(x, logits), axis=-1)))
        return logits


class Recorder(keras.callbacks.Callback):
    """Records, at every batch, the step and the temperature the layer holds
    when the batch starts (after `TemperatureAnnealing` set it), and the
    value logged for the batch when it ends."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.records = []

    def on_train_batch_begin(self, batch, logs=None):
        self.records.append({
            "step": int(self.model.optimizer.iterations.numpy()),
            "temperature": self.layer.temperature,
        })

    def on_train_batch_end(self, batch, logs=None):
        self.records[-1]["logged"] = float(logs["temperature"])


def build_model():
    inputs = keras.Input((PIXELS,))
    logits = keras.layers.Reshape((3, 4))(keras.layers.Dense(12)(inputs))
    annealed = keras_gumbel.GumbelSoftmax(seed=0, name="annealed")
    learned = keras_gumbel.GumbelSigmoid(
        seed=1, learn_temperature=True, name="learned")
    features = keras.layers.Concatenate()([
        keras.layers.Flatten()(annealed(logits)),
        learned(keras.layers.Dense(4)(inputs))])
    x_logits = ReconstructionLoss()(
        inputs, keras.layers.Dense(PIXELS)(features))
    model = MultiWorkerModel(inputs, x_logits)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def main(out_path):
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = (rng.random((GLOBAL_BATCH * STEPS_PER_EPOCH, PIXELS)) < 0.5).astype(
        "float32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    dataset = (tf.data.Dataset.from_tensor_slices(x).batch(GLOBAL_BATCH)
               .repeat().with_options(options))

    with strategy.scope():
        model = build_model()
    annealed = model.get_layer("annealed")
    annealing = keras_gumbel.TemperatureAnnealing(**ANNEALING)
    recorder = Recorder(annealed)
    history = model.fit(
        dataset, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
        callbacks=[annealing, recorder], verbose=0)

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.asarray(weight.numpy()).tobytes())
    result = {
        "task": task,
        "replicas": strategy.num_replicas_in_sync,
        "records": recorder.records,
        "expected": [annealing.temperature_at(r["step"])
                     for r in recorder.records],
        "final_step": int(model.optimizer.iterations.numpy()),
        "final_temperature": annealed.temperature,
        "expected_final_temperature": annealing.temperature_at(
            EPOCHS * STEPS_PER_EPOCH),
        "learned_temperature": model.get_layer("learned").temperature,
        "loss": history.history["loss"],
        "weights_sha256": digest.hexdigest(),
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
