"""Keras layers around `keras_gumbel.ops`.

Each layer holds its temperature in a variable (so a compiled `fit` sees every
new value without retracing), draws its noise from a
`keras.random.SeedGenerator` made once (new noise on every call, the same noise
for two layers made with the same seed), and chooses what to return at
inference with `inference_mode`. The math is in `keras_gumbel.ops`.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_gumbel import ops as gops

__all__ = ["GumbelSoftmax", "STGumbel", "GumbelSigmoid", "STGumbelSigmoid"]

INFERENCE_MODES = ("sample", "mode", "soft")


class _GumbelLayer(keras.layers.Layer):
    """The temperature, seed and inference mode shared by the four layers."""

    _hard = False

    def __init__(
        self,
        temperature=1.0,
        seed=None,
        learn_temperature=False,
        inference_mode="sample",
        **kwargs,
    ):
        super().__init__(**kwargs)
        temperature = gops.check_temperature_value(temperature)
        if not isinstance(temperature, float):
            raise gops._invalid(
                "temperature", "a positive float (the layer holds one scalar "
                "temperature; pass per-example temperatures to "
                "`keras_gumbel.ops` instead)", temperature)
        if seed is not None and (
                isinstance(seed, bool) or not isinstance(seed, int)):
            raise gops._invalid("seed", "None or an integer", seed)
        if not isinstance(learn_temperature, (bool, np.bool_)):
            raise gops._invalid(
                "learn_temperature", "a bool", learn_temperature)
        if inference_mode not in INFERENCE_MODES:
            raise gops._invalid(
                "inference_mode", f"one of {INFERENCE_MODES}", inference_mode)
        self.initial_temperature = temperature
        self.seed = seed
        self.learn_temperature = bool(learn_temperature)
        self.inference_mode = inference_mode
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The temperature lives in a float32 variable that mixed precision
        # does not cast (autocast=False): the ops compute in float32 anyway.
        # A learned temperature is kept positive by learning its logarithm.
        if self.learn_temperature:
            self._temperature_variable = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(math.log(temperature)),
                dtype="float32",
                trainable=True,
                autocast=False,
                name="log_temperature",
            )
        else:
            self._temperature_variable = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(temperature),
                dtype="float32",
                trainable=False,
                autocast=False,
                name="temperature",
            )

    # -- temperature -----------------------------------------------------

    @property
    def temperature_variable(self):
        """The variable behind the temperature: `temperature`, or
        `log_temperature` when it is learned."""
        return self._temperature_variable

    def temperature_tensor(self):
        """The current temperature as a float32 scalar tensor (traceable)."""
        value = tf.convert_to_tensor(self._temperature_variable.value)
        if self.learn_temperature:
            value = tf.math.exp(value)
        return value

    @property
    def temperature(self):
        """The current temperature, a Python float.

        Setting it (`layer.temperature = 0.5`) assigns the variable; the
        value is validated. `TemperatureAnnealing` does this for you.
        """
        return float(keras.ops.convert_to_numpy(self.temperature_tensor()))

    @temperature.setter
    def temperature(self, value):
        if not isinstance(value, (bool, np.bool_)) and np.ndim(value) == 0:
            try:  # 0-d arrays and scalar tensors count as numbers
                value = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):
                pass
        value = gops.check_temperature_value(value)
        if not isinstance(value, float):
            raise gops._invalid("temperature", "a positive float", value)
        if self.learn_temperature:
            self._temperature_variable.assign(math.log(value))
        else:
            self._temperature_variable.assign(value)

    # -- calling ---------------------------------------------------------

    def _check_input(self, inputs):
        if not hasattr(inputs, "dtype") or not hasattr(inputs, "shape"):
            raise ValueError(
                f"Invalid input received by layer `{self.name}`. Expected a "
                "float tensor of logits as `inputs`. Received: inputs of type "
                f"{type(inputs).__name__}")
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if dtype == "bool" or not (dtype.startswith("float")
                                   or dtype.startswith("bfloat")):
            raise ValueError(
                f"Invalid input received by layer `{self.name}`. Expected "
                "floating-point logits (unnormalized log-probabilities). "
                f"Received: inputs with dtype={dtype}")
        if len(inputs.shape) == 0:
            raise ValueError(
                f"Invalid input received by layer `{self.name}`. Expected a "
                "tensor of rank >= 1. Received: inputs with shape=()")

    def __call__(self, inputs, *args, **kwargs):
        # Keras would fail on these before `call` with a message that does
        # not say what was expected.
        if inputs is None or isinstance(inputs, (dict, str, bytes)):
            raise ValueError(
                f"Invalid input received by layer `{self.name}`. Expected a "
                "float tensor of logits as `inputs`. Received: inputs of type "
                f"{type(inputs).__name__}")
        return super().__call__(inputs, *args, **kwargs)

    def _sample(self, inputs):
        raise NotImplementedError

    def _mode(self, inputs):
        raise NotImplementedError

    def _soft(self, inputs, tau):
        raise NotImplementedError

    def _check_values(self, inputs):
        raise NotImplementedError

    def save_own_variables(self, store):
        """Saves the temperature variable and the noise generator's state.

        Keras saves a layer's weights but not its `SeedGenerator`'s state;
        without it, a training run resumed from a checkpoint (e.g. by
        `keras.callbacks.BackupAndRestore`) would draw its noise from the
        start of the sequence again.
        """
        super().save_own_variables(store)
        store["seed_generator_state"] = keras.ops.convert_to_numpy(
            self.seed_generator.state.value)

    def load_own_variables(self, store):
        """Loads what `save_own_variables` saved (older files: weights)."""
        keys = set(store.keys())
        weights = self._trainable_variables + self._non_trainable_variables
        for i, variable in enumerate(weights):
            if str(i) not in keys:
                raise ValueError(
                    f"Layer '{self.name}' expected {len(weights)} "
                    f"variables, but the file has {sorted(keys)}.")
            variable.assign(store[str(i)])
        if "seed_generator_state" in keys:
            self.seed_generator.state.assign(
                store["seed_generator_state"])

    def call(self, inputs, training=None):
        """Draws a sample in training; `inference_mode` decides otherwise.

        Args:
            inputs: float logits (unnormalized log-probabilities).
            training: in training (`fit`, or `training=True`) the layer
                always draws a sample. Otherwise it returns what
                `inference_mode` says: `"sample"` a sample, `"mode"` the most
                likely outcome, `"soft"` the noiseless relaxation.
        """
        self._check_input(inputs)
        if training or self.inference_mode == "sample":
            self._check_values(inputs)
            return self._sample(inputs)
        if self.inference_mode == "mode":
            return self._mode(inputs)
        return self._soft(inputs, self.temperature_tensor())

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, training=None):
        # Symbolic inputs (keras.Input) never reach `call`: check them here.
        self._check_input(inputs)
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = {
            "temperature": self.initial_temperature,
            "seed": self.seed,
            "learn_temperature": self.learn_temperature,
            "inference_mode": self.inference_mode,
        }
        base_config = super().get_config()
        return {**base_config, **config}


class _CategoricalLayer(_GumbelLayer):
    def __init__(self, temperature=1.0, axis=-1, seed=None,
                 learn_temperature=False, inference_mode="sample", **kwargs):
        super().__init__(
            temperature=temperature,
            seed=seed,
            learn_temperature=learn_temperature,
            inference_mode=inference_mode,
            **kwargs,
        )
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, int):
            raise gops._invalid("axis", "an integer", axis)
        self.axis = axis

    def build(self, input_shape):
        rank = len(input_shape)
        if rank == 0:
            raise ValueError(
                f"Invalid input received by layer `{self.name}`. Expected a "
                "tensor of rank >= 1. Received: input_shape=()")
        gops._normalize_axis(self.axis, rank)
        self.built = True

    def _axis(self, inputs):
        return gops._normalize_axis(self.axis, len(inputs.shape))

    def _check_values(self, inputs):
        gops.check_logit_values(inputs, self._axis(inputs))

    def _sample(self, inputs):
        return gops._gumbel_softmax(
            inputs, self.temperature_tensor(), self._hard, self._axis(inputs),
            self.seed_generator, validate=False)

    def _mode(self, inputs):
        return gops.softmax_mode(inputs, axis=self._axis(inputs))

    def _soft(self, inputs, tau):
        return gops.tempered_softmax(inputs, tau, axis=self._axis(inputs))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class _BinaryLayer(_GumbelLayer):
    def _check_values(self, inputs):
        gops.check_logit_values(inputs, allow_plus_inf=True)

    def build(self, input_shape):
        if len(input_shape) == 0:
            raise ValueError(
                f"Invalid input received by layer `{self.name}`. Expected a "
                "tensor of rank >= 1. Received: input_shape=()")
        self.built = True

    def _sample(self, inputs):
        return gops._gumbel_sigmoid(
            inputs, self.temperature_tensor(), self._hard,
            self.seed_generator, validate=False)

    def _mode(self, inputs):
        return gops.sigmoid_mode(inputs)

    def _soft(self, inputs, tau):
        return gops.tempered_sigmoid(inputs, tau)


_COMMON_ARGS = """
    Args:
        temperature: the initial temperature, a positive float. Annealed by
            `keras_gumbel.TemperatureAnnealing`, or set with
            `layer.temperature = value`.{axis}
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws new noise; two
            layers with the same seed draw the same noise.
        learn_temperature: whether the temperature is a trainable weight
            (learned as its logarithm, so it stays positive).
        inference_mode: what the layer returns when not training:
            `"sample"` (default) draws as in training, `"mode"` the most
            likely outcome{mode}, `"soft"` the noiseless relaxation{soft}.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits{shape}. Logits, not probabilities.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype.
        Under mixed precision the noise and the softmax run in float32.

    References:
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
        - Maddison, Mnih, Teh. The Concrete Distribution. ICLR 2017.
"""

_CAT = dict(
    axis="\n        axis: the axis of the classes.",
    mode=" (one-hot of the logits' argmax)",
    soft=" `softmax(logits / temperature)`",
    shape=", any rank >= 1, the classes along `axis`, e.g. "
    "`(batch, latents, classes)`",
)
_BIN = dict(
    axis="",
    mode=" (`logits > 0` as 0/1)",
    soft=" `sigmoid(logits / temperature)`",
    shape=" (log-odds), any rank >= 1; each element is one binary variable",
)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelSoftmax(_CategoricalLayer):
    __doc__ = """Samples the Gumbel-Softmax (Concrete) distribution.

    In training it returns `softmax((logits + g) / temperature)` along
    `axis`, `g` standard Gumbel noise: a point on the simplex that is
    differentiable in the logits and the temperature, and tends to a one-hot
    categorical sample as the temperature goes to 0.
    """ + _COMMON_ARGS.format(**_CAT) + """
    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> logits = keras.layers.Reshape((20, 10))(keras.layers.Dense(200)(inputs))
    >>> z = GumbelSoftmax(temperature=1.0, seed=0)(logits)
    >>> model = keras.Model(inputs, z)
    """


@keras.saving.register_keras_serializable(package="keras_gumbel")
class STGumbel(_CategoricalLayer):
    __doc__ = """Straight-through Gumbel-Softmax: one-hot forward, soft backward.

    In training it returns the exact one-hot of
    `argmax(logits + g)` along `axis` (a sample of the categorical
    distribution with probabilities `softmax(logits)`), while the gradient is
    that of the soft sample `softmax((logits + g) / temperature)` drawn with
    the same noise. The temperature only shapes the gradient.
    """ + _COMMON_ARGS.format(**_CAT) + """
    Example:

    >>> inputs = keras.Input(shape=(16,))
    >>> action = STGumbel(seed=0)(keras.layers.Dense(4)(inputs))
    >>> model = keras.Model(inputs, action)
    """

    _hard = True


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelSigmoid(_BinaryLayer):
    __doc__ = """Samples relaxed Bernoulli variables (binary Concrete).

    In training it returns `sigmoid((logits + l) / temperature)` element by
    element, `l` standard logistic noise: each element a relaxed sample of a
    Bernoulli variable with `P(1) = sigmoid(logits)`.
    """ + _COMMON_ARGS.format(**_BIN) + """
    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> z = GumbelSigmoid(seed=0)(keras.layers.Dense(200)(inputs))
    >>> model = keras.Model(inputs, z)
    """


@keras.saving.register_keras_serializable(package="keras_gumbel")
class STGumbelSigmoid(_BinaryLayer):
    __doc__ = """Straight-through Bernoulli: 0/1 forward, relaxed gradient backward.

    In training it returns exactly 0 or 1 (`logits + l > 0`, a Bernoulli
    sample with `P(1) = sigmoid(logits)`), while the gradient is that of the
    relaxed sample `sigmoid((logits + l) / temperature)` with the same noise.
    """ + _COMMON_ARGS.format(**_BIN) + """
    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> bits = STGumbelSigmoid(seed=0)(keras.layers.Dense(64)(inputs))
    >>> model = keras.Model(inputs, bits)
    """

    _hard = True


GUMBEL_LAYERS = (GumbelSoftmax, STGumbel, GumbelSigmoid, STGumbelSigmoid)
