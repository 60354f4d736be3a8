"""Small helpers shared by the test modules (imported as `_helpers`), one
per purpose.

The suite runs on the Keras backend that `KERAS_BACKEND` selects
(TensorFlow by default). Tests written with these helpers (`tensor`,
`as_float64`, `value_and_grads`, `compiled`) run on every backend; tests
that need TensorFlow itself (TensorFlow Probability as the reference,
`tf.function` retracing, `tf.distribute`) are marked `tf_only`.
"""

import keras
import numpy as np
import pytest

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


BACKEND = keras.backend.backend()

tf_only = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="needs TensorFlow itself (a TensorFlow-only reference or API)")


def tensor(x, dtype=None):
    """`x` as a tensor of the backend (`dtype` defaults to `x`'s own)."""
    if dtype is None and isinstance(x, (np.ndarray, np.generic)):
        dtype = str(x.dtype)
    return keras.ops.convert_to_tensor(x, dtype=dtype)


def as_float64(x):
    """Any float tensor or array (bfloat16 included) as a float64 array."""
    if isinstance(x, (np.ndarray, np.generic, float, int, list, tuple)):
        return np.asarray(x, dtype=np.float64)
    if keras.backend.standardize_dtype(x.dtype) != "float64":
        x = keras.ops.cast(x, "float32")
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def value_and_grads(fn, *args):
    """`(fn(*args), [d sum(fn(*args)) / d arg for each arg])` on the current
    backend, by its own autodiff (`tf.GradientTape`, `jax.grad`,
    `torch.autograd`): the gradients the estimators hand-write are what each
    backend's users would see. `args` are arrays or tensors (converted with
    their dtype); a gradient the backend reports as absent is returned as
    None (JAX has no None: zeros). The value and the gradients are backend
    tensors.
    """
    value, grads, _ = value_and_grads_with_variables(fn, (), *args)
    return value, grads


def compiled(fn, jit_compile=True):
    """`fn` compiled as the backend compiles a training step: XLA on
    TensorFlow (`tf.function`, with `jit_compile`), `jax.jit` on JAX; PyTorch
    trains eagerly, so there it is `fn` itself."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


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


def _jax_x64():
    import jax

    return bool(jax.config.jax_enable_x64)


# Whether the backend computes in float64: JAX does not unless its x64 mode
# is on (it is off by default), and then turns float64 inputs into float32.
HAS_FLOAT64 = BACKEND != "jax" or _jax_x64()

needs_float64 = pytest.mark.skipif(
    not HAS_FLOAT64,
    reason="needs float64, which JAX computes only with x64 enabled "
           "(off by default: float64 inputs become float32)")


def dtype_of(x):
    """The standardized dtype name of a tensor, e.g. "float32"."""
    return keras.backend.standardize_dtype(x.dtype)


def value_and_grads_with_variables(fn, variables, *args):
    """`value_and_grads`, also w.r.t. the Keras variables `fn` reads.

    Returns `(fn(*args), arg_grads, variable_grads)`, the gradients of
    sum(fn(*args)), None where absent. Each variable's gradient is taken as
    that backend's training takes it: a tape watching the variables
    (TensorFlow), autograd to the variables' own tensors (PyTorch),
    `jax.grad` of their values passed in through `keras.StatelessScope`
    (JAX, as Keras's JAX trainer does).
    """
    n = len(args)
    variables = list(variables)
    args = [tensor(a) for a in args]
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def total(*xs):
            if variables:
                mapping = list(zip(variables, xs[n:]))
                with keras.StatelessScope(state_mapping=mapping):
                    value = fn(*xs[:n])
            else:
                value = fn(*xs[:n])
            return jnp.sum(value.astype(jnp.float32)), value

        sources = args + [v.value for v in variables]
        grads, value = jax.grad(total, argnums=tuple(range(len(sources))),
                                has_aux=True)(*sources)
        return value, list(grads[:n]), list(grads[n:])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            for a in args:
                tape.watch(a)
            value = fn(*args)
            total = tf.reduce_sum(tf.cast(value, tf.float64))
        grads = tape.gradient(total, args + variables)
        return value, grads[:n], grads[n:]
    if BACKEND == "torch":
        import torch

        args = [a.detach().clone().requires_grad_(True) for a in args]
        value = fn(*args)
        total = value.double().sum()
        sources = args + [v.value for v in variables]
        if total.requires_grad:
            grads = torch.autograd.grad(total, sources, allow_unused=True)
        else:  # a value that depends on none of them (e.g. an argmax)
            grads = [None] * len(sources)
        return value.detach(), list(grads[:n]), list(grads[n:])
    raise NotImplementedError(BACKEND)
