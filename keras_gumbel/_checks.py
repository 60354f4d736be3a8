"""Argument checks shared by ops, layers and callbacks (private).

Every check raises a `ValueError` in Keras's wording, naming the argument,
saying what was expected and showing what was received:

    Invalid value received for argument `x`. Expected ... Received: x=...

`tests/test_bad_input.py` holds the table of bad arguments and the error each
gives, once per public entry point.
"""

import math
import numbers

import keras
import numpy as np

from keras_gumbel import _backend

# Temperatures outside this range are rejected: below it, logits / tau
# overflows float32 (to inf, then NaN in the softmax) for logits as small as
# 1e18; above it the float32 variables of the layers cannot hold the value
# much further (float32 ends at 3.4e38).
MIN_TEMPERATURE = 1e-20
MAX_TEMPERATURE = 1e20
_TEMPERATURE_RANGE = f"[{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}]"
_TEMPERATURE_EXPECTED = f"a positive, finite float in {_TEMPERATURE_RANGE}"


def invalid(name, expected, received):
    """The `ValueError` for argument `name`: what was expected, received."""
    if isinstance(received, np.generic):
        received = received.item()
    return ValueError(
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}={received!r}"
    )


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not _is_bool(value)


# --------------------------------------------------------------------------
# Plain Python arguments.
# --------------------------------------------------------------------------


def boolean(value, name):
    """`value` as a `bool`; numbers and strings are rejected."""
    if not _is_bool(value):
        raise invalid(name, "a bool", value)
    return bool(value)


def positive_int(value, name):
    """`value` as an `int` >= 1."""
    if not _is_int(value) or value < 1:
        raise invalid(name, "a positive integer", value)
    return int(value)


def non_negative_int(value, name):
    """`value` as an `int` >= 0."""
    if not _is_int(value) or value < 0:
        raise invalid(name, "an integer >= 0", value)
    return int(value)


def non_negative_float(value, name):
    """`value` as a finite `float` >= 0."""
    if (not isinstance(value, numbers.Real) or _is_bool(value)
            or not math.isfinite(value) or value < 0):
        raise invalid(name, "a finite float >= 0", value)
    return float(value)


def one_of(value, name, choices):
    """`value`, which must be one of `choices` (a tuple of strings or
    numbers). Only a string or a number is compared: an array or a tensor
    gets this error, not its own "truth value is ambiguous" one."""
    if not (isinstance(value, (str, numbers.Number)) and value in choices):
        raise invalid(name, f"one of {choices}", value)
    return value


def axis(value, rank=None):
    """An integer axis; with a known `rank`, in range and made non-negative."""
    if not _is_int(value):
        raise invalid("axis", "an integer", value)
    value = int(value)
    if rank is not None and not -rank <= value < rank:
        raise invalid(
            "axis", f"an integer in [-{rank}, {rank}) for an input of rank "
            f"{rank}", value)
    if rank is not None and value < 0:
        value += rank
    return value


def seed(value):
    """A seed for `keras.random`: None, an int or a `SeedGenerator`."""
    if value is None or isinstance(value, keras.random.SeedGenerator):
        return value
    if not _is_int(value):
        raise invalid(
            "seed", "None, an integer or a `keras.random.SeedGenerator`",
            value)
    return int(value)


def layer_seed(value):
    """The seed of a layer's `SeedGenerator`: None or an int."""
    if value is not None and not _is_int(value):
        raise invalid("seed", "None or an integer", value)
    return None if value is None else int(value)


def shape(value):
    """A shape: a sequence of non-negative ints, or a 1-D integer tensor."""
    if keras.ops.is_tensor(value) or isinstance(value, keras.Variable):
        dtype = keras.backend.standardize_dtype(value.dtype)
        if "int" in dtype and _backend.rank(value) == 1:
            if _backend.is_tensorflow():
                return value
            return tuple(int(d) for d in keras.ops.convert_to_numpy(value))
        raise invalid("shape", "a 1-D integer tensor or a tuple of "
                      "non-negative integers", value)
    if isinstance(value, (list, tuple)) and all(
            _is_int(d) and d >= 0 for d in value):
        return tuple(int(d) for d in value)
    raise invalid("shape", "a tuple of non-negative integers", value)


def float_dtype(value, name="dtype"):
    """`value` as the name of a floating-point dtype, e.g. "float32"."""
    try:
        dtype = keras.backend.standardize_dtype(value)
    except (TypeError, ValueError, AttributeError):
        raise invalid(name, "a floating-point dtype", value) from None
    if not _is_float_name(dtype):
        raise invalid(name, "a floating-point dtype", dtype)
    return dtype


def _is_float_name(dtype):
    return dtype.startswith("float") or dtype.startswith("bfloat")


# --------------------------------------------------------------------------
# Temperatures.
# --------------------------------------------------------------------------


def temperature_value(value, name="temperature"):
    """Validates a concrete temperature: a positive, finite number or array.

    Values must lie in `[MIN_TEMPERATURE, MAX_TEMPERATURE]` = [1e-20, 1e20].
    Returns the value as a Python float when it is a scalar number.
    """
    if _is_bool(value):
        raise invalid(name, "a positive float", value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not (math.isfinite(number)
                and MIN_TEMPERATURE <= number <= MAX_TEMPERATURE):
            raise invalid(name, _TEMPERATURE_EXPECTED, value)
        return number
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise invalid(name, "a positive float or a float tensor",
                      value) from None
    if not (np.issubdtype(array.dtype, np.floating)
            or np.issubdtype(array.dtype, np.integer)):
        raise invalid(
            name, "a positive float or a float tensor of positive values",
            value)
    array = array.astype("float64")
    if not np.all(np.isfinite(array) & (array >= MIN_TEMPERATURE)
                  & (array <= MAX_TEMPERATURE)):
        raise invalid(
            name, f"positive, finite values in {_TEMPERATURE_RANGE}", value)
    return value


def scalar_temperature(value, name="temperature", expected=None):
    """A temperature that must be one number, as a Python float.

    0-d arrays and scalar tensors count as numbers. `expected` replaces the
    default "a positive float" in the message for a non-scalar.
    """
    if (hasattr(value, "dtype") and not isinstance(value, numbers.Real)
            and len(getattr(value, "shape", ())) == 0):
        # A 0-d array, scalar tensor or variable: its number.
        value = keras.ops.convert_to_numpy(value)[()]
    value = temperature_value(value, name)
    if not isinstance(value, float):
        raise invalid(name, expected or "a positive float", value)
    return value


def _is_symbolic(x):
    return isinstance(x, keras.KerasTensor)


def temperature_tensor(temperature, dtype):
    """Converts `temperature` to a tensor of `dtype`, validating its values.

    Python numbers and concrete (eager) tensors are checked now (a
    `ValueError`); traced tensors inside a `tf.function` get a run-time
    assertion, which XLA drops; traced JAX and compiled PyTorch tensors are
    not checked.
    """
    if _is_symbolic(temperature):
        raise invalid(
            "temperature", "a float or a tensor, not a symbolic Keras "
            "tensor", temperature)
    if isinstance(temperature, (numbers.Real, np.ndarray, np.generic)):
        temperature_value(temperature)
        return keras.ops.convert_to_tensor(
            np.asarray(temperature, dtype=dtype))
    if isinstance(temperature, keras.Variable):
        temperature = temperature.value
    if temperature is None:
        raise invalid("temperature", "a positive float or a float tensor",
                      temperature)
    try:
        tau = keras.ops.convert_to_tensor(temperature)
    except (TypeError, ValueError, RuntimeError):
        raise invalid("temperature", "a positive float or a float tensor",
                      temperature) from None
    tau_dtype = keras.backend.standardize_dtype(tau.dtype)
    if tau_dtype == "bool" or not (_is_float_name(tau_dtype)
                                   or "int" in tau_dtype):
        raise invalid("temperature", "a float tensor", temperature)
    tau = keras.ops.cast(tau, dtype)
    if _backend.is_concrete(tau):
        temperature_value(keras.ops.convert_to_numpy(tau))
        return tau
    return _backend.assert_in_range(
        tau, MIN_TEMPERATURE, MAX_TEMPERATURE,
        "Invalid value received for argument `temperature`: expected "
        f"positive, finite values in {_TEMPERATURE_RANGE}.")


def temperature_shape(tau, x):
    """Checks that `tau` broadcast against the logits `x` has `x`'s shape.

    A temperature of larger rank, or with a dimension where the logits have
    1, would broadcast the *output* to a larger shape and compute the softmax
    along the wrong axis. Checked on the static shapes; where a dimension is
    unknown when traced, a run-time assertion takes over (XLA needs static
    shapes, so there the static check always decides).
    """
    tau_shape, x_shape = _static_shape(tau), _static_shape(x)
    expected = (
        "a scalar, or a tensor whose broadcast with the logits has the "
        f"logits' shape {_shape_text(x_shape)} (rank <= the logits' rank, "
        "and each dimension 1 or the logits' dimension)")
    if tau_shape == ():
        return tau
    decided = tau_shape is not None and x_shape is not None
    if decided:
        if len(tau_shape) > len(x_shape):
            raise _bad_temperature_shape(expected, tau_shape)
        for t, d in zip(reversed(tau_shape), reversed(x_shape)):
            if t == 1:
                continue
            if t is None or d is None:
                decided = False
            elif t != d:
                raise _bad_temperature_shape(expected, tau_shape)
    if decided or not _backend.is_tensorflow():
        return tau
    return _backend.assert_broadcasts_to(
        tau, x,
        "Invalid value received for argument `temperature`: expected a "
        "temperature whose broadcast with the logits has the shape of the "
        "logits. Received: temperature with shape", "and logits with shape")


def _static_shape(x):
    """The static shape of tensor `x` as a tuple (None for unknown
    dimensions: None, or a JAX symbolic dimension when Keras traces a
    layer's `call` with an unknown batch size), or None where its rank is
    unknown (traced TensorFlow)."""
    if _backend.rank(x) is None:
        return None
    return tuple(int(d) if _is_int(d) else None for d in x.shape)


def _shape_text(shape):
    if shape is None:
        return "(unknown)"
    return str(tuple(shape))


def _bad_temperature_shape(expected, tau_shape):
    return ValueError(
        "Invalid value received for argument `temperature`. Expected "
        f"{expected}. Received: temperature with shape "
        f"{_shape_text(tau_shape)}")


# --------------------------------------------------------------------------
# Logits.
# --------------------------------------------------------------------------


# The layer that calls each estimator op, for the message below.
_ESTIMATOR_LAYERS = {
    "straight_through": "StraightThrough",
    "reinmax": "ReinMax",
    "gumbel_rao": "GumbelRao",
    "straight_through_sigmoid": "StraightThroughSigmoid",
    "reinmax_sigmoid": "ReinMaxSigmoid",
    "gumbel_rao_sigmoid": "GumbelRaoSigmoid",
    "gumbel_topk": "GumbelTopK",
    "tempered_topk": "GumbelTopK",
    "topk_mode": "GumbelTopK",
}


def not_keras_tensor(x, name, func):
    """Raises if `x` is a symbolic Keras tensor, pointing to the layers."""
    if _is_symbolic(x) and func.startswith("score_function."):
        raise ValueError(
            f"`keras_gumbel.{func}` works on tensors and cannot take "
            f"a symbolic Keras input. Received: {name}={x}. Call it on "
            "tensors, in a `train_step` (see the README's score-function "
            "example).")
    if _is_symbolic(x) and func in _ESTIMATOR_LAYERS:
        raise ValueError(
            f"`keras_gumbel.ops.{func}` works on tensors and cannot "
            f"take a symbolic Keras input. Received: {name}={x}. In a "
            "functional model, use its layer instead: "
            f"`keras_gumbel.{_ESTIMATOR_LAYERS[func]}`."
        )
    if _is_symbolic(x):
        raise ValueError(
            f"`keras_gumbel.ops.{func}` works on tensors and cannot "
            f"take a symbolic Keras input. Received: {name}={x}. In a "
            "functional model, use the layers instead: "
            "`keras_gumbel.GumbelSoftmax`, `STGumbel`, `GumbelSigmoid` or "
            "`STGumbelSigmoid`."
        )


def logits_tensor(logits, func):
    """`logits` as a floating-point tensor of rank >= 1."""
    not_keras_tensor(logits, "logits", func)
    if isinstance(logits, keras.Variable):
        logits = logits.value
    if logits is None or isinstance(logits, (str, bytes, dict)):
        raise invalid("logits", "a float tensor", logits)
    if is_text(logits):
        raise ValueError(
            "Invalid value received for argument `logits`. Expected a "
            "floating-point tensor of unnormalized log-probabilities. "
            "Received: logits with dtype=string")
    try:
        x = keras.ops.convert_to_tensor(logits)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            "Invalid value received for argument `logits`. Expected a float "
            "tensor (or something `keras.ops.convert_to_tensor` turns into "
            f"one, with a rectangular shape). Received: logits of type "
            f"{type(logits).__name__}") from None
    dtype = keras.backend.standardize_dtype(x.dtype)
    if not _is_float_name(dtype):
        raise ValueError(
            "Invalid value received for argument `logits`. Expected a "
            "floating-point tensor of unnormalized log-probabilities. "
            f"Received: logits with dtype={dtype}"
        )
    if _backend.rank(x) == 0:
        raise ValueError(
            "Invalid value received for argument `logits`. Expected a tensor "
            "of rank >= 1 (the classes along `axis`). Received: logits with "
            "shape=()"
        )
    return x


def logit_values(x, axis=None, allow_plus_inf=False, k=1):
    """Raises on NaN logits, and on `+inf` or all-masked rows, when eager.

    Inside a compiled function the values are not known when it is traced,
    and checking them at run time would cost a pass over the tensor in every
    training step: there, NaN in gives NaN out, as for any backend op.

    Args:
        x: the logits, a tensor.
        axis: the class axis for categorical logits (then a row must have a
            class that is not `-inf`), or None for binary logits.
        allow_plus_inf: whether `+inf` is valid (binary logits: P(1) = 1).
        k: the classes a row must have with a finite logit (a k-subset is
            drawn; a `ValueError` naming `k` where a row has fewer). Without
            any `-inf` (the minimum says so, read back with the other
            checks) every row has them all; only with masked classes are
            they counted (a pass of its own, and a second read).
    """
    if not _backend.is_concrete(x):
        return
    ops = keras.ops
    unmasked = ops.min(x) > -np.inf if k > 1 else None
    if not _backend.is_tensorflow():
        # PyTorch runs every training step eagerly, so this check runs in
        # each: one reduction (two for k > 1, the minimum over all), and
        # one value read back. A maximum is NaN where its row holds a NaN
        # (JAX and PyTorch propagate NaN), +inf where it holds +inf, -inf
        # where the row is all masked.
        top = ops.max(x, axis=axis)
        ok = ops.logical_not(ops.isnan(top))
        if not allow_plus_inf:
            ok = ops.logical_and(ok, top < np.inf)
        if axis is not None:
            ok = ops.logical_and(ok, top > -np.inf)
        ok = ops.all(ok)
        if unmasked is not None:
            ok = ops.logical_and(ok, unmasked)
        if bool(ops.convert_to_numpy(ok)):
            return
    # The checks in one read back from the device: "no NaN (and no +inf)"
    # is one comparison (NaN < inf is false), a row is all masked where its
    # maximum is -inf. Which of NaN and +inf it was is sorted out on failure.
    values_ok = (ops.all(ops.logical_not(ops.isnan(x))) if allow_plus_inf
                 else ops.all(x < np.inf))
    rows_ok = (ops.all(ops.max(x, axis=axis) > -np.inf)
               if axis is not None and _backend.rank(x)
               else ops.convert_to_tensor(True))
    if unmasked is None:
        unmasked = ops.convert_to_tensor(True)
    values_ok, rows_ok, unmasked = ops.convert_to_numpy(
        ops.stack([values_ok, rows_ok, unmasked]))
    if not values_ok and bool(ops.convert_to_numpy(ops.any(ops.isnan(x)))):
        raise ValueError(
            "Invalid value received for argument `logits`. Expected finite "
            "logits, or -inf to mask a class. Received: logits containing "
            "NaN")
    if not values_ok:
        raise ValueError(
            "Invalid value received for argument `logits`. Expected finite "
            "logits, or -inf to mask a class. Received: logits containing "
            "+inf. A logit of +inf makes its class certain: give it a large "
            "finite logit, or mask the other classes with -inf.")
    if not rows_ok:
        raise ValueError(
            "Invalid value received for argument `logits`. Expected at least "
            "one class per row with a finite logit. Received: logits with a "
            f"row whose classes along axis {axis} are all masked (-inf)")
    if unmasked:
        return
    fewest = int(ops.convert_to_numpy(
        ops.min(ops.sum(ops.cast(x > -np.inf, "int32"), axis=axis))))
    if fewest < k:
        raise invalid(
            "k", "a positive integer at most the number of classes with "
            f"a finite logit in every row (a row along axis {axis} has "
            f"{fewest}; -inf masks a class, which is never chosen)", k)


def classes_at_least(k, classes, along):
    """Raises naming `k` where the number of `classes` (None: unknown) is
    below `k`; `along` says where they are ("axis 1")."""
    if classes is not None and k > classes:
        raise invalid(
            "k", f"a positive integer at most the number of classes along "
            f"{along} ({classes})", k)


def subset_size(k, x, axis, allow_plus_inf=False):
    """`k` as a positive int, at most the classes along `axis` of `x` when
    that number is known; and the logits' values checked as
    `logit_values` checks them, where they can be read now, with every row
    needing k classes with a finite logit (a masked class is never chosen,
    so a row with fewer has no k-subset to draw), in one read."""
    k = positive_int(k, "k")
    classes_at_least(k, x.shape[axis] if _backend.rank(x) is not None
                     else None, f"axis {axis}")
    logit_values(x, axis, allow_plus_inf, k)
    return k


def is_text(value):
    """Whether `value` is text data: a NumPy array of strings, or a (nested)
    list of strings. Only TensorFlow has string tensors; elsewhere the
    conversion fails inside the backend, so text is recognized first (the
    same message on every backend)."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "US"
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return isinstance(value, (str, bytes))


def layer_inputs(inputs, layer_name):
    """The inputs of a Gumbel layer: float logits of rank >= 1."""
    if isinstance(inputs, np.ndarray) and is_text(inputs):
        raise ValueError(
            f"Invalid input received by layer `{layer_name}`. Expected "
            "floating-point logits (unnormalized log-probabilities). "
            "Received: inputs with dtype=string")
    if (inputs is None or isinstance(inputs, (dict, str, bytes))
            or not hasattr(inputs, "dtype") or not hasattr(inputs, "shape")):
        raise ValueError(
            f"Invalid input received by layer `{layer_name}`. Expected a "
            "float tensor of logits as `inputs`. Received: inputs of type "
            f"{type(inputs).__name__}")
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if dtype == "bool" or not (dtype.startswith("float")
                               or dtype.startswith("bfloat")):
        raise ValueError(
            f"Invalid input received by layer `{layer_name}`. Expected "
            "floating-point logits (unnormalized log-probabilities). "
            f"Received: inputs with dtype={dtype}")
    if len(inputs.shape) == 0:
        raise ValueError(
            f"Invalid input received by layer `{layer_name}`. Expected a "
            "tensor of rank >= 1. Received: inputs with shape=()")


def layer_input_rank(input_shape, layer_name):
    """The input shape of a Gumbel layer: rank >= 1."""
    if len(input_shape) == 0:
        raise ValueError(
            f"Invalid input received by layer `{layer_name}`. Expected a "
            "tensor of rank >= 1. Received: input_shape=()")
