"""Small helpers shared by the test modules (imported as `_helpers`), one
per purpose."""

import keras
import numpy as np
import tensorflow as tf

from keras_gumbel import GumbelSigmoid
from keras_gumbel import GumbelSoftmax
from keras_gumbel import STGumbel
from keras_gumbel import STGumbelSigmoid

ALL_LAYERS = [GumbelSoftmax, STGumbel, GumbelSigmoid, STGumbelSigmoid]
CATEGORICAL = [GumbelSoftmax, STGumbel]
STRAIGHT_THROUGH = [STGumbel, STGumbelSigmoid]
# The layers whose temperature can be learned: the straight-through layers'
# forward value does not use the temperature.
SOFT_LAYERS = [GumbelSoftmax, GumbelSigmoid]


class CountTraces(keras.layers.Layer):
    """Identity layer counting how often its `call` runs in Python: once per
    trace in a compiled function, so a retrace shows up as a new count."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.traces = 0

    def call(self, inputs):
        self.traces += 1
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def as_float64(x):
    """Any float tensor or array (bfloat16 included) as a float64 array."""
    return tf.cast(x, tf.float64).numpy()


def random_logits(shape, seed=0, scale=2.0):
    """Fixed-seed normal logits of standard deviation `scale`, float64."""
    return np.random.default_rng(seed).normal(size=shape) * scale


def regression_data(n, features=4, seed=0):
    """Fixed-seed standard normal inputs `(n, features)` and targets
    `(n, 1)`, float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    y = rng.standard_normal((n, 1)).astype("float32")
    return x, y


def assert_valid_sample(cls, y, axis=-1, atol=1e-5, hard=None):
    """`y` is a sample of what layer class `cls` draws: finite, in [0, 1],
    summing to 1 along `axis` (categorical, within `atol`), and exactly 0 or
    1 when `hard` (by default: when `cls` is straight-through)."""
    y = as_float64(y)
    assert np.all(np.isfinite(y))
    assert np.all((y >= 0) & (y <= 1))
    if cls in CATEGORICAL:
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, atol=atol)
    if cls in STRAIGHT_THROUGH if hard is None else hard:
        assert set(np.unique(y)) <= {0.0, 1.0}
