"""Keras layers around `keras_gumbel.ops`.

Each layer holds its temperature in a variable (so a compiled `fit` sees every
new value without retracing), draws its noise from a
`keras.random.SeedGenerator` made once (new noise on every call, the same noise
for two layers made with the same seed), and chooses what to return at
inference with `inference_mode`. The math is in `keras_gumbel.ops`: a layer
says which op it calls, and `GumbelLayer` does the rest.
"""

import math

import keras

from keras_gumbel import _checks
from keras_gumbel import ops

__all__ = [
    "GumbelLayer",
    "GumbelSoftmax",
    "STGumbel",
    "GumbelSigmoid",
    "STGumbelSigmoid",
    "StraightThrough",
    "ReinMax",
    "GumbelRao",
    "StraightThroughSigmoid",
    "ReinMaxSigmoid",
    "GumbelRaoSigmoid",
    "GumbelTopK",
]

INFERENCE_MODES = ("sample", "mode", "soft")


class GumbelLayer(keras.layers.Layer):
    """Base class of the Gumbel layers: temperature, seed, inference mode.

    A subclass says which op draws its sample (`sample`), and which give the
    most likely outcome (`mode`) and the noiseless relaxation (`soft`);
    `_CategoricalLayer` and `_BinaryLayer` below provide `mode` and `soft`,
    so that a new categorical layer only writes `sample`:

    ```python
    class MyLayer(_CategoricalLayer):
        def sample(self, inputs, temperature):
            return ops.my_op(inputs, temperature, axis=self.axis,
                             seed=self.seed_generator)
    ```

    `TemperatureAnnealing` and `find_gumbel_layers` drive every instance.
    A subclass whose forward value does not use the temperature
    (straight-through) sets `forward_uses_temperature = False`: it then
    refuses `learn_temperature=True`.
    """

    forward_uses_temperature = True

    def __init__(
        self,
        temperature=1.0,
        seed=None,
        learn_temperature=False,
        inference_mode="sample",
        **kwargs,
    ):
        super().__init__(**kwargs)
        temperature = _checks.scalar_temperature(
            temperature, expected="a positive float (the layer holds one "
            "scalar temperature; pass per-example temperatures to "
            "`keras_gumbel.ops` instead)")
        seed = _checks.layer_seed(seed)
        learn_temperature = _checks.boolean(
            learn_temperature, "learn_temperature")
        if learn_temperature and not self.forward_uses_temperature:
            raise _checks.invalid(
                "learn_temperature",
                f"False for `{type(self).__name__}`: its forward value is an "
                "exact sample that does not depend on the temperature, which "
                "only shapes the straight-through gradient, so a learned "
                "temperature would follow the gradient of a value the model "
                "never uses. Learn the temperature of the soft layer "
                "(`GumbelSoftmax`, `GumbelSigmoid`, "
                "`GumbelTopK(hard=False)`), or anneal this one with "
                "`TemperatureAnnealing`", learn_temperature)
        self.inference_mode = _checks.one_of(
            inference_mode, "inference_mode", INFERENCE_MODES)
        self.initial_temperature = temperature
        self.seed = seed
        self.learn_temperature = learn_temperature
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
        value = keras.ops.convert_to_tensor(self._temperature_variable.value)
        if self.learn_temperature:
            value = keras.ops.exp(value)
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
        value = _checks.scalar_temperature(value)
        if self.learn_temperature:
            self._temperature_variable.assign(math.log(value))
        else:
            self._temperature_variable.assign(value)

    # -- what a subclass provides ----------------------------------------

    def sample(self, inputs, temperature):
        """Draws a sample from the logits `inputs`: the op of the layer."""
        raise NotImplementedError

    def mode(self, inputs):
        """The most likely outcome (`inference_mode="mode"`)."""
        raise NotImplementedError

    def soft(self, inputs, temperature):
        """The noiseless relaxation (`inference_mode="soft"`)."""
        raise NotImplementedError

    # -- calling ---------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        # Keras would fail on these before `call` with a message that does
        # not say what was expected.
        if (inputs is None or isinstance(inputs, (dict, str, bytes))
                or _checks.is_text(inputs)):
            _checks.layer_inputs(inputs, self.name)
        return super().__call__(inputs, *args, **kwargs)

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
        _checks.layer_inputs(inputs, self.name)
        if training or self.inference_mode == "sample":
            return self.sample(inputs, self.temperature_tensor())
        if self.inference_mode == "mode":
            return self.mode(inputs)
        return self.soft(inputs, self.temperature_tensor())

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, training=None):
        # Symbolic inputs (keras.Input) never reach `call`: check them here.
        _checks.layer_inputs(inputs, self.name)
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


class _CategoricalLayer(GumbelLayer):
    """A Gumbel layer over classes along `axis`: one-hot mode, softmax."""

    def __init__(self, temperature=1.0, axis=-1, seed=None,
                 learn_temperature=False, inference_mode="sample", **kwargs):
        super().__init__(
            temperature=temperature,
            seed=seed,
            learn_temperature=learn_temperature,
            inference_mode=inference_mode,
            **kwargs,
        )
        self.axis = _checks.axis(axis)

    def build(self, input_shape):
        _checks.layer_input_rank(input_shape, self.name)
        _checks.axis(self.axis, len(input_shape))
        self.built = True

    def mode(self, inputs):
        return ops.softmax_mode(inputs, axis=self.axis)

    def soft(self, inputs, temperature):
        return ops.tempered_softmax(inputs, temperature, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class _BinaryLayer(GumbelLayer):
    """A Gumbel layer of independent binary units: `logits > 0`, sigmoid."""

    def build(self, input_shape):
        _checks.layer_input_rank(input_shape, self.name)
        self.built = True

    def mode(self, inputs):
        return ops.sigmoid_mode(inputs)

    def soft(self, inputs, temperature):
        return ops.tempered_sigmoid(inputs, temperature)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelSoftmax(_CategoricalLayer):
    """Samples the Gumbel-Softmax (Concrete) distribution.

    In training it returns `softmax((logits + g) / temperature)` along
    `axis`, `g` standard Gumbel noise: a point on the simplex that is
    differentiable in the logits and the temperature, and tends to a one-hot
    categorical sample as the temperature goes to 0. At inference
    (`training=False`: `predict`, `evaluate`, a plain call) it returns what
    `inference_mode` says.

    Args:
        temperature: the initial temperature, a positive float. Annealed by
            `keras_gumbel.TemperatureAnnealing`, or set with
            `layer.temperature = value`.
        axis: the axis of the classes.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws new noise; two
            layers with the same seed draw the same noise.
        learn_temperature: whether the temperature is a trainable weight
            (learned as its logarithm, so it stays positive).
        inference_mode: what the layer returns when not training:
            `"sample"` (default) draws as in training, `"mode"` the most
            likely outcome (one-hot of the logits' argmax), `"soft"` the
            noiseless relaxation `softmax(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits of any rank >= 1, the classes along `axis`,
            e.g. `(batch, latents, classes)`. Logits, not probabilities;
            `-inf` masks a class.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype.
        Under mixed precision the noise and the softmax run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> h = keras.layers.Dense(200)(inputs)
    >>> logits = keras.layers.Reshape((20, 10))(h)
    >>> z = GumbelSoftmax(temperature=1.0, seed=0)(logits)
    >>> model = keras.Model(inputs, z)

    References:
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
        - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous
          Relaxation of Discrete Random Variables. ICLR 2017.
    """

    def sample(self, inputs, temperature):
        return ops.gumbel_softmax(inputs, temperature, axis=self.axis,
                                  seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class STGumbel(_CategoricalLayer):
    """Straight-through Gumbel-Softmax: one-hot forward, soft backward.

    In training it returns the exact one-hot of `argmax(logits + g)` along
    `axis` (a sample of the categorical distribution with probabilities
    `softmax(logits)`), while the gradient is that of the soft sample
    `softmax((logits + g) / temperature)` drawn with the same noise. The
    temperature only shapes the gradient, so it cannot be learned. At
    inference (`training=False`: `predict`, `evaluate`, a plain call) it
    returns what `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient's relaxation, a
            positive float. Annealed by `keras_gumbel.TemperatureAnnealing`,
            or set with `layer.temperature = value`.
        axis: the axis of the classes.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws new noise; two
            layers with the same seed draw the same noise.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) a one-hot sample as in training, `"mode"`
            the most likely outcome (one-hot of the logits' argmax), `"soft"`
            the noiseless relaxation `softmax(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits of any rank >= 1, the classes along `axis`,
            e.g. `(batch, classes)`. Logits, not probabilities; `-inf` masks
            a class.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1, one 1 along `axis`, when sampling.

    Example:

    >>> inputs = keras.Input(shape=(16,))
    >>> action = STGumbel(seed=0)(keras.layers.Dense(4)(inputs))
    >>> model = keras.Model(inputs, action)

    References:
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017 (the straight-through estimator,
          Section 2.2).
        - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous
          Relaxation of Discrete Random Variables. ICLR 2017.
    """

    forward_uses_temperature = False

    def sample(self, inputs, temperature):
        return ops.gumbel_softmax(inputs, temperature, hard=True,
                                  axis=self.axis, seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelSigmoid(_BinaryLayer):
    """Samples relaxed Bernoulli variables (binary Concrete).

    In training it returns `sigmoid((logits + l) / temperature)` element by
    element, `l` standard logistic noise: each element a relaxed sample of a
    Bernoulli variable with `P(1) = sigmoid(logits)`, differentiable in the
    logits and the temperature. At inference (`training=False`: `predict`,
    `evaluate`, a plain call) it returns what `inference_mode` says.

    Args:
        temperature: the initial temperature, a positive float. Annealed by
            `keras_gumbel.TemperatureAnnealing`, or set with
            `layer.temperature = value`.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws new noise; two
            layers with the same seed draw the same noise.
        learn_temperature: whether the temperature is a trainable weight
            (learned as its logarithm, so it stays positive).
        inference_mode: what the layer returns when not training:
            `"sample"` (default) draws as in training, `"mode"` the most
            likely outcome (`logits > 0` as 0/1), `"soft"` the noiseless
            relaxation `sigmoid(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float log-odds of any rank >= 1, each element one binary
            variable, e.g. `(batch, units)`. `+inf` and `-inf` give 1 and 0.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype.
        Under mixed precision the noise and the sigmoid run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> z = GumbelSigmoid(seed=0)(keras.layers.Dense(200)(inputs))
    >>> model = keras.Model(inputs, z)

    References:
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
        - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous
          Relaxation of Discrete Random Variables. ICLR 2017 (the binary
          Concrete, Section 3.4).
    """

    def sample(self, inputs, temperature):
        return ops.gumbel_sigmoid(inputs, temperature,
                                  seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class STGumbelSigmoid(_BinaryLayer):
    """Straight-through Bernoulli: 0/1 forward, relaxed gradient backward.

    In training it returns exactly 0 or 1 (`logits + l > 0`, a Bernoulli
    sample with `P(1) = sigmoid(logits)`), while the gradient is that of the
    relaxed sample `sigmoid((logits + l) / temperature)` with the same noise.
    The temperature only shapes the gradient, so it cannot be learned. At
    inference (`training=False`: `predict`, `evaluate`, a plain call) it
    returns what `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient's relaxation, a
            positive float. Annealed by `keras_gumbel.TemperatureAnnealing`,
            or set with `layer.temperature = value`.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws new noise; two
            layers with the same seed draw the same noise.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) 0/1 samples as in training, `"mode"` the
            most likely outcome (`logits > 0` as 0/1), `"soft"` the noiseless
            relaxation `sigmoid(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float log-odds of any rank >= 1, each element one binary
            variable, e.g. `(batch, units)`. `+inf` and `-inf` give 1 and 0.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1 when sampling.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> bits = STGumbelSigmoid(seed=0)(keras.layers.Dense(64)(inputs))
    >>> model = keras.Model(inputs, bits)

    References:
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
        - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous
          Relaxation of Discrete Random Variables. ICLR 2017.
    """

    forward_uses_temperature = False

    def sample(self, inputs, temperature):
        return ops.gumbel_sigmoid(inputs, temperature, hard=True,
                                  seed=self.seed_generator)


# --------------------------------------------------------------------------
# Exact samples with other gradient estimators: the same forward value as
# the straight-through Gumbel layers, other gradients (`keras_gumbel.ops`).
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_gumbel")
class StraightThrough(_CategoricalLayer):
    """Straight-through categorical sample: one-hot forward, softmax backward.

    In training it returns an exact one-hot sample of the categorical
    distribution with probabilities `softmax(logits)` along `axis` (the
    sample `STGumbel` draws with the same seed), while the gradient is that
    of the noiseless `softmax(logits / temperature)`, whatever the sample
    (Bengio et al. 2013). With the temperature annealed downward by
    `TemperatureAnnealing` (the slope `1 / temperature` rising) it is the
    slope-annealed straight-through estimator (Chung et al. 2016). The
    temperature only shapes the gradient, so it cannot be learned. At
    inference (`training=False`: `predict`, `evaluate`, a plain call) it
    returns what `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient's softmax, a
            positive float. Annealed by `keras_gumbel.TemperatureAnnealing`,
            or set with `layer.temperature = value`.
        axis: the axis of the classes.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws a new sample; two
            layers with the same seed draw the same samples.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) a one-hot sample as in training, `"mode"`
            the most likely outcome (one-hot of the logits' argmax), `"soft"`
            the noiseless relaxation `softmax(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits of any rank >= 1, the classes along `axis`,
            e.g. `(batch, classes)`. Logits, not probabilities; `-inf`
            masks a class.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1, one 1 along `axis`, when sampling. Under mixed
        precision the noise and the gradient run in float32.

    Example:

    >>> inputs = keras.Input(shape=(16,))
    >>> action = StraightThrough(seed=0)(keras.layers.Dense(4)(inputs))
    >>> model = keras.Model(inputs, action)

    References:
        - Bengio, Leonard, Courville. Estimating or Propagating Gradients
          Through Stochastic Neurons for Conditional Computation. 2013.
        - Chung, Ahn, Bengio. Hierarchical Multiscale Recurrent Neural
          Networks. ICLR 2017 (slope annealing).
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017 (the comparison, Section 4).
    """

    forward_uses_temperature = False

    def sample(self, inputs, temperature):
        return ops.straight_through(inputs, temperature, axis=self.axis,
                                    seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class ReinMax(_CategoricalLayer):
    """ReinMax: one-hot sample forward, a second-order gradient backward.

    In training it returns an exact one-hot sample of the categorical
    distribution with probabilities `softmax(logits)` along `axis` (the
    sample `STGumbel` draws with the same seed), while the gradient is
    ReinMax's (Liu et al. 2023), `2 J(pi)^T g - J(p)^T g / 2` with
    `p = softmax(logits)`, `pi = (softmax(logits / temperature) + D) / 2`,
    D the sample and `J(q)^T g = q * (g - <q, g>)`: a second-order
    (Heun's method) estimate, where straight-through is a first-order one.
    Its authors recommend `temperature >= 1`; lower values are accepted,
    so that an annealing schedule may pass below 1. The temperature only
    shapes the gradient, so it cannot be learned. At inference
    (`training=False`: `predict`, `evaluate`, a plain call) it returns what
    `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient, a positive
            float (`>= 1` recommended). Annealed by
            `keras_gumbel.TemperatureAnnealing`, or set with
            `layer.temperature = value`.
        axis: the axis of the classes.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws a new sample; two
            layers with the same seed draw the same samples.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) a one-hot sample as in training, `"mode"`
            the most likely outcome (one-hot of the logits' argmax), `"soft"`
            the noiseless relaxation `softmax(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits of any rank >= 1, the classes along `axis`,
            e.g. `(batch, latents, classes)`. Logits, not probabilities;
            `-inf` masks a class.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1, one 1 along `axis`, when sampling. Under mixed
        precision the noise and the gradient run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> h = keras.layers.Dense(200)(inputs)
    >>> logits = keras.layers.Reshape((20, 10))(h)
    >>> z = ReinMax(temperature=1.0, seed=0)(logits)
    >>> model = keras.Model(inputs, z)

    References:
        - Liu, Chen, Gao, Xu, Wang, Gao. Bridging Discrete and
          Backpropagation: Straight-Through and Beyond. NeurIPS 2023.
          https://arxiv.org/abs/2304.08612
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
    """

    forward_uses_temperature = False

    def sample(self, inputs, temperature):
        return ops.reinmax(inputs, temperature, axis=self.axis,
                           seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelRao(_CategoricalLayer):
    """Gumbel-Rao: one-hot sample forward, a Rao-Blackwellized ST gradient.

    In training it returns the exact one-hot sample `STGumbel` draws with
    the same seed (a sample of the categorical distribution with
    probabilities `softmax(logits)` along `axis`), while the gradient is the
    straight-through Gumbel-Softmax gradient averaged over `num_samples`
    Gumbel noise vectors drawn given that sample (Paulus et al. 2021): the
    same expectation as `STGumbel`'s gradient, a lower variance. One of the
    K is the forward pass's own noise; the other K - 1 are drawn only for
    the gradient (at K = 1 the layer is `STGumbel`): at inference the layer
    costs what `STGumbel` costs, in training about K times more memory and
    time in its backward pass. The temperature only shapes the gradient,
    so it cannot be learned. At inference (`training=False`: `predict`,
    `evaluate`, a plain call) it returns what `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient's relaxation, a
            positive float. Annealed by `keras_gumbel.TemperatureAnnealing`,
            or set with `layer.temperature = value`.
        num_samples: a positive integer, the number K of conditional noise
            vectors the gradient averages over. The authors' experiments
            use 10 to 1000; K = 1 gives `STGumbel`'s gradient in
            distribution.
        axis: the axis of the classes.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws a new sample; two
            layers with the same seed draw the same samples and gradients.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) a one-hot sample as in training, `"mode"`
            the most likely outcome (one-hot of the logits' argmax), `"soft"`
            the noiseless relaxation `softmax(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits of any rank >= 1, the classes along `axis`,
            e.g. `(batch, latents, classes)`. Logits, not probabilities;
            `-inf` masks a class.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1, one 1 along `axis`, when sampling. Under mixed
        precision the noise and the gradient run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> h = keras.layers.Dense(200)(inputs)
    >>> logits = keras.layers.Reshape((20, 10))(h)
    >>> z = GumbelRao(num_samples=10, temperature=0.5, seed=0)(logits)
    >>> model = keras.Model(inputs, z)

    References:
        - Paulus, Maddison, Krause. Rao-Blackwellizing the
          Straight-Through Gumbel-Softmax Gradient Estimator. ICLR 2021.
          https://arxiv.org/abs/2010.04838
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
        - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous
          Relaxation of Discrete Random Variables. ICLR 2017.
    """

    forward_uses_temperature = False

    def __init__(self, temperature=1.0, num_samples=10, axis=-1, seed=None,
                 learn_temperature=False, inference_mode="sample", **kwargs):
        super().__init__(
            temperature=temperature,
            axis=axis,
            seed=seed,
            learn_temperature=learn_temperature,
            inference_mode=inference_mode,
            **kwargs,
        )
        self.num_samples = _checks.positive_int(num_samples, "num_samples")

    def sample(self, inputs, temperature):
        return ops.gumbel_rao(inputs, temperature,
                              num_samples=self.num_samples, axis=self.axis,
                              seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples}


@keras.saving.register_keras_serializable(package="keras_gumbel")
class StraightThroughSigmoid(_BinaryLayer):
    """Straight-through Bernoulli: 0/1 forward, sigmoid gradient backward.

    In training it returns exactly 0 or 1, a Bernoulli sample with
    `P(1) = sigmoid(logits)` (the sample `STGumbelSigmoid` draws with the
    same seed), while the gradient is that of the noiseless
    `sigmoid(logits / temperature)`, whatever the sample: `StraightThrough`
    over the two classes with logits `(0, logits)`. The temperature only
    shapes the gradient, so it cannot be learned. At inference
    (`training=False`: `predict`, `evaluate`, a plain call) it returns what
    `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient's sigmoid, a
            positive float. Annealed by `keras_gumbel.TemperatureAnnealing`,
            or set with `layer.temperature = value`.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws a new sample; two
            layers with the same seed draw the same samples.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) 0/1 samples as in training, `"mode"` the
            most likely outcome (`logits > 0` as 0/1), `"soft"` the noiseless
            relaxation `sigmoid(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float log-odds of any rank >= 1, each element one binary
            variable, e.g. `(batch, units)`. `+inf` and `-inf` give 1 and 0.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1 when sampling. Under mixed precision the noise and
        the gradient run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> bits = StraightThroughSigmoid(seed=0)(keras.layers.Dense(64)(inputs))
    >>> model = keras.Model(inputs, bits)

    References:
        - Bengio, Leonard, Courville. Estimating or Propagating Gradients
          Through Stochastic Neurons for Conditional Computation. 2013.
        - Jang, Gu, Poole. Categorical Reparameterization with
          Gumbel-Softmax. ICLR 2017.
    """

    forward_uses_temperature = False

    def sample(self, inputs, temperature):
        return ops.straight_through_sigmoid(inputs, temperature,
                                            seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class ReinMaxSigmoid(_BinaryLayer):
    """ReinMax for Bernoulli units: 0/1 forward, ReinMax's gradient backward.

    In training it returns exactly 0 or 1, a Bernoulli sample with
    `P(1) = sigmoid(logits)` (the sample `STGumbelSigmoid` draws with the
    same seed), while the gradient is `ReinMax`'s over the two classes with
    logits `(0, logits)`: `(2 pi (1 - pi) - s (1 - s) / 2) g` with
    `s = sigmoid(logits)`, `pi = (sigmoid(logits / temperature) + b) / 2`
    and b the sample. Its authors recommend `temperature >= 1`. The
    temperature only shapes the gradient, so it cannot be learned. At
    inference (`training=False`: `predict`, `evaluate`, a plain call) it
    returns what `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient, a positive
            float (`>= 1` recommended). Annealed by
            `keras_gumbel.TemperatureAnnealing`, or set with
            `layer.temperature = value`.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws a new sample; two
            layers with the same seed draw the same samples.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) 0/1 samples as in training, `"mode"` the
            most likely outcome (`logits > 0` as 0/1), `"soft"` the noiseless
            relaxation `sigmoid(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float log-odds of any rank >= 1, each element one binary
            variable, e.g. `(batch, units)`. `+inf` and `-inf` give 1 and 0.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1 when sampling. Under mixed precision the noise and
        the gradient run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> bits = ReinMaxSigmoid(seed=0)(keras.layers.Dense(200)(inputs))
    >>> model = keras.Model(inputs, bits)

    References:
        - Liu, Chen, Gao, Xu, Wang, Gao. Bridging Discrete and
          Backpropagation: Straight-Through and Beyond. NeurIPS 2023.
          https://arxiv.org/abs/2304.08612
    """

    forward_uses_temperature = False

    def sample(self, inputs, temperature):
        return ops.reinmax_sigmoid(inputs, temperature,
                                   seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelRaoSigmoid(_BinaryLayer):
    """Gumbel-Rao for Bernoulli units: 0/1 forward, Rao-Blackwellized ST back.

    In training it returns exactly 0 or 1, the sample `STGumbelSigmoid`
    draws with the same seed (`P(1) = sigmoid(logits)`), while the gradient
    is `STGumbelSigmoid`'s averaged over `num_samples` logistic noise draws
    given the sample (`GumbelRao` over the two classes with logits
    `(0, logits)`): the same expectation, a lower variance. The K draws are
    made only for the gradient. The temperature only shapes the gradient, so
    it cannot be learned. At inference (`training=False`: `predict`,
    `evaluate`, a plain call) it returns what `inference_mode` says.

    Args:
        temperature: the initial temperature of the gradient's relaxation, a
            positive float. Annealed by `keras_gumbel.TemperatureAnnealing`,
            or set with `layer.temperature = value`.
        num_samples: a positive integer, the number K of conditional noise
            draws the gradient averages over.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws a new sample; two
            layers with the same seed draw the same samples and gradients.
        learn_temperature: must be False (the default): the forward value
            does not depend on the temperature. `True` raises a
            `ValueError`.
        inference_mode: what the layer returns when not training:
            `"sample"` (default) 0/1 samples as in training, `"mode"` the
            most likely outcome (`logits > 0` as 0/1), `"soft"` the noiseless
            relaxation `sigmoid(logits / temperature)`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float log-odds of any rank >= 1, each element one binary
            variable, e.g. `(batch, units)`. `+inf` and `-inf` give 1 and 0.
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype:
        exactly 0 or 1 when sampling. Under mixed precision the noise and
        the gradient run in float32.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> bits = GumbelRaoSigmoid(seed=0)(keras.layers.Dense(200)(inputs))
    >>> model = keras.Model(inputs, bits)

    References:
        - Paulus, Maddison, Krause. Rao-Blackwellizing the
          Straight-Through Gumbel-Softmax Gradient Estimator. ICLR 2021.
          https://arxiv.org/abs/2010.04838
        - Maddison, Mnih, Teh. The Concrete Distribution: A Continuous
          Relaxation of Discrete Random Variables. ICLR 2017.
    """

    forward_uses_temperature = False

    def __init__(self, temperature=1.0, num_samples=10, seed=None,
                 learn_temperature=False, inference_mode="sample", **kwargs):
        super().__init__(
            temperature=temperature,
            seed=seed,
            learn_temperature=learn_temperature,
            inference_mode=inference_mode,
            **kwargs,
        )
        self.num_samples = _checks.positive_int(num_samples, "num_samples")

    def sample(self, inputs, temperature):
        return ops.gumbel_rao_sigmoid(inputs, temperature,
                                      num_samples=self.num_samples,
                                      seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples}


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelTopK(_CategoricalLayer):
    """Chooses k of the classes without replacement, relaxed (Gumbel-top-k).

    In training it returns `ops.gumbel_topk`: with `hard=False` the relaxed
    k-hot `sigmoid((logits + g - c) / temperature)`, in [0, 1] and summing
    to `k` along `axis` (the threshold `c` set per row), differentiable in
    the logits and the temperature, tending to a k-hot sample of k classes
    drawn without replacement from `softmax(logits)` as the temperature
    goes to 0; with `hard=True` that
    exact k-hot (k ones along `axis`), with the relaxed sample's gradient
    (straight-through; the temperature then only shapes the gradient and
    cannot be learned). At inference (`training=False`: `predict`,
    `evaluate`, a plain call) it returns what `inference_mode` says.

    Args:
        k: the number of classes to choose, a positive integer at most the
            number of classes along `axis`.
        temperature: the initial temperature, a positive float. Annealed by
            `keras_gumbel.TemperatureAnnealing`, or set with
            `layer.temperature = value`.
        hard: whether to return exact k-hot samples (straight-through).
        axis: the axis of the classes.
        seed: `None` or an integer: the seed of the layer's
            `keras.random.SeedGenerator`. Each call draws new noise; two
            layers with the same seed draw the same noise.
        learn_temperature: whether the temperature is a trainable weight
            (only with `hard=False`).
        inference_mode: what the layer returns when not training:
            `"sample"` (default) draws as in training, `"mode"` the most
            likely outcome (the k-hot of the k largest logits), `"soft"` the
            noiseless relaxation (`ops.tempered_topk`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float logits of any rank >= 1, the classes along `axis`,
            e.g. `(batch, features)`. Logits, not probabilities; `-inf`
            masks a class (never chosen; each row needs at least `k` finite
            logits).
        training: Python bool; `fit` sets it. In training the layer always
            samples; otherwise `inference_mode` decides.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype.
        Under mixed precision the noise and the threshold run in float32.

    Example (choose 5 of 64 features per example):

    >>> inputs = keras.Input(shape=(64,))
    >>> scores = keras.layers.Dense(64)(inputs)
    >>> mask = GumbelTopK(k=5, hard=True, seed=0)(scores)
    >>> model = keras.Model(inputs, keras.layers.Multiply()([inputs, mask]))

    References:
        - Kool, van Hoof, Welling. Stochastic Beams and Where to Find
          Them: The Gumbel-Top-k Trick for Sampling Sequences Without
          Replacement. ICML 2019.
        - Amos, Koltun, Kolter. The Limited Multi-Label Projection Layer.
          2019.
    """

    def __init__(self, k, temperature=1.0, hard=False, axis=-1, seed=None,
                 learn_temperature=False, inference_mode="sample", **kwargs):
        # Read by the base class's checks: a hard sample does not use the
        # temperature in its forward value.
        self._hard = _checks.boolean(hard, "hard")
        self._k = _checks.positive_int(k, "k")
        super().__init__(
            temperature=temperature,
            axis=axis,
            seed=seed,
            learn_temperature=learn_temperature,
            inference_mode=inference_mode,
            **kwargs,
        )

    @property
    def k(self):
        """The number of classes chosen."""
        return self._k

    @property
    def hard(self):
        """Whether the layer returns exact k-hot samples."""
        return self._hard

    @property
    def forward_uses_temperature(self):
        return not self._hard

    def build(self, input_shape):
        super().build(input_shape)
        _checks.classes_at_least(
            self.k, input_shape[self.axis],
            f"axis {self.axis} of the input of layer '{self.name}'")

    def sample(self, inputs, temperature):
        return ops.gumbel_topk(inputs, self.k, temperature, hard=self.hard,
                               axis=self.axis, seed=self.seed_generator)

    def mode(self, inputs):
        return ops.topk_mode(inputs, self.k, axis=self.axis)

    def soft(self, inputs, temperature):
        return ops.tempered_topk(inputs, self.k, temperature, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "hard": self.hard}
