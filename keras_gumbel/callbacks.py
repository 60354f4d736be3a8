"""`TemperatureAnnealing`: the paper's temperature schedule as a callback."""

import math

import keras

from keras_gumbel import _checks
from keras_gumbel.layers import GumbelLayer

__all__ = ["TemperatureAnnealing", "find_gumbel_layers"]


def find_gumbel_layers(model):
    """Every Gumbel layer in `model`, nested models and layers included.

    Walks `.layers` of models and the attributes of custom layers (lists,
    tuples and dicts of layers too), each layer once, in a stable order.
    """
    found, seen = [], set()

    def visit(obj):
        if isinstance(obj, (list, tuple)):
            for item in obj:
                visit(item)
            return
        if isinstance(obj, dict):
            for item in obj.values():
                visit(item)
            return
        if not isinstance(obj, keras.layers.Layer) or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, GumbelLayer):
            found.append(obj)
        children = list(getattr(obj, "layers", None) or [])
        children += [
            value for key, value in vars(obj).items()
            if not key.startswith("_inbound") and not key.startswith(
                "_outbound")
        ]
        for child in children:
            visit(child)

    visit(model)
    return found


@keras.saving.register_keras_serializable(package="keras_gumbel")
class TemperatureAnnealing(keras.callbacks.Callback):
    """Anneals the temperature of Gumbel layers during `fit`.

    By default it follows the schedule of Jang et al. (2017):

        tau(t) = max(minimum, initial * exp(-rate * t_k)),
        t_k = update_every * floor(t / update_every),

    `t` the global training step, read from the optimizer's iteration counter:
    right with `steps_per_execution > 1`, in a second `fit`, and after
    resuming from a checkpoint. The defaults are those of the authors'
    notebook (1.0, 3e-5, 0.5, every 1000 steps). Any `schedule(step) -> float`
    can be given instead; it is called with `t_k`.

    Before each batch the callback computes the temperature for the current
    step and assigns it to each layer's temperature variable when it changed;
    a compiled `fit` (also with XLA) reads the new value without retracing.
    The value a batch was trained with is written to `logs["temperature"]` at
    the end of each batch and epoch, so `History`, `CSVLogger` and
    `TensorBoard` record it (list this callback before `CSVLogger` and
    `TensorBoard` in `callbacks=[...]`: Keras calls them in that order).
    At the end of training the layers are set to the schedule's value at the
    final step, where the next `fit` starts.

    Args:
        initial: the temperature at step 0, a positive float.
        rate: the decay rate `r`, a float >= 0.
        minimum: the floor of the schedule, a positive float.
        update_every: the temperature changes every `update_every` steps.
            Defaults to 1000 for the built-in schedule and 1 with `schedule`.
        schedule: optional callable `schedule(step) -> float`, replacing the
            built-in formula (then `initial`, `rate` and `minimum` are not
            used). Its values must be positive and finite.
        layers: optional list of the layers to drive. By default every Gumbel
            layer of the model whose temperature is not learned
            (`learn_temperature=False`), found at the start of training.
        verbose: 0 is silent, 1 prints each change of temperature.

    Example:

    ```python
    model.fit(x, y, epochs=10,
              callbacks=[keras_gumbel.TemperatureAnnealing(rate=1e-4)])
    ```

    References:
        Jang, Gu, Poole. Categorical Reparameterization with Gumbel-Softmax.
        ICLR 2017 (the schedule, Section 4).
    """

    def __init__(
        self,
        initial=1.0,
        rate=3e-5,
        minimum=0.5,
        update_every=None,
        schedule=None,
        layers=None,
        verbose=0,
    ):
        super().__init__()
        self.initial = _checks.scalar_temperature(initial, "initial")
        self.minimum = _checks.scalar_temperature(minimum, "minimum")
        self.rate = _checks.non_negative_float(rate, "rate")
        if schedule is not None and not callable(schedule):
            raise _checks.invalid(
                "schedule", "a callable `schedule(step) -> float`", schedule)
        self.schedule = schedule
        if update_every is None:
            update_every = 1 if schedule is not None else 1000
        self.update_every = _checks.positive_int(
            update_every, "update_every")
        if layers is not None:
            if not isinstance(layers, (list, tuple)):
                raise _checks.invalid(
                    "layers", "a list of keras_gumbel layers", layers)
            layers = list(layers)
            for layer in layers:
                if not isinstance(layer, GumbelLayer):
                    raise _checks.invalid(
                        "layers", "a list of keras_gumbel layers", layer)
                if layer.learn_temperature:
                    raise ValueError(
                        "Invalid value received for argument `layers`. "
                        "Expected layers with a fixed temperature; "
                        f"layer `{layer.name}` learns its temperature "
                        "(learn_temperature=True) and cannot be annealed.")
        self.layers = layers
        self.verbose = _checks.one_of(verbose, "verbose", (0, 1, 2))
        self._driven = []
        self._current = None

    def get_config(self):
        """The constructor's arguments, `layers` excepted (they belong to a
        model); a `schedule` is serialized with
        `keras.saving.serialize_keras_object` (register it to reload it)."""
        schedule = self.schedule
        if schedule is not None:
            schedule = keras.saving.serialize_keras_object(schedule)
        return {
            "initial": self.initial,
            "rate": self.rate,
            "minimum": self.minimum,
            "update_every": self.update_every,
            "schedule": schedule,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("schedule") is not None:
            config["schedule"] = keras.saving.deserialize_keras_object(
                config["schedule"])
        return cls(**config)

    def temperature_at(self, step):
        """The scheduled temperature at global step `step` (a Python float)."""
        step = _checks.non_negative_int(step, "step")
        t_k = self.update_every * (step // self.update_every)
        if self.schedule is not None:
            value = self.schedule(t_k)
            try:
                return _checks.scalar_temperature(
                    float(value), "schedule(step)")
            except (TypeError, ValueError):
                raise ValueError(
                    "Invalid value returned by `schedule`. Expected a "
                    f"positive, finite float. Received: schedule({t_k})="
                    f"{value!r}") from None
        return max(self.minimum, self.initial * math.exp(-self.rate * t_k))

    @property
    def temperature(self):
        """The temperature last assigned, or None before training."""
        return self._current

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _apply(self, step):
        value = self.temperature_at(step)
        if value != self._current:
            for layer in self._driven:
                layer.temperature = value
            if self.verbose:
                print(f"\nStep {step}: TemperatureAnnealing setting the "
                      f"temperature to {value:.6g}.")
            self._current = value

    def on_train_begin(self, logs=None):
        if self.layers is not None:
            self._driven = list(self.layers)
        else:
            self._driven = [
                layer for layer in find_gumbel_layers(self.model)
                if not layer.learn_temperature
            ]
        if not self._driven:
            raise ValueError(
                "TemperatureAnnealing found no Gumbel layer with a fixed "
                f"temperature in model `{self.model.name}`. Add one, or pass "
                "the layers to drive with `layers=[...]`.")
        self._current = None
        self._apply(self._step())

    def on_train_batch_begin(self, batch, logs=None):
        self._apply(self._step())

    def on_train_end(self, logs=None):
        # Leave the layers at the schedule's value for the step reached, the
        # value the next `fit` (or a resumed one) starts from.
        self._apply(self._step())

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs["temperature"] = float(self._current)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["temperature"] = float(self._current)
