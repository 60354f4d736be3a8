"""keras_gumbel: Gumbel-Softmax and straight-through Gumbel layers for Keras 3.

Public names:

- `GumbelSoftmax`, `STGumbel`: categorical layers (soft, straight-through).
- `GumbelSigmoid`, `STGumbelSigmoid`: binary layers (soft, straight-through).
- `StraightThrough`, `ReinMax`, `GumbelRao` and their binary counterparts
  `StraightThroughSigmoid`, `ReinMaxSigmoid`, `GumbelRaoSigmoid`: exact
  samples with other gradient estimators.
- `GumbelTopK`: k of the classes without replacement (Gumbel-top-k,
  relaxed by a sigmoid threshold summing to k; straight-through with
  `hard=True`).
- `TemperatureAnnealing`: the temperature schedule as a callback.
- `keras_gumbel.ops`: the math (noise, samples, estimators, KL terms).
- `keras_gumbel.score_function`: REINFORCE, NVIL, DARN and MuProp, the
  pieces of a `train_step` for score-function estimators.
"""

import os as _os

try:
    import keras as _keras  # noqa: F401  (Keras imports its backend here)
except ImportError as _error:
    _backend_name = _os.environ.get(
        "KERAS_BACKEND", "set in ~/.keras/keras.json, TensorFlow by default")
    raise ImportError(
        "keras_gumbel needs Keras 3 with one of its backends installed: "
        f"importing Keras on its backend ({_backend_name}) failed with "
        f"{type(_error).__name__}: {_error}. Install the backend you use "
        "with keras_gumbel's extras: pip install 'keras_gumbel[tensorflow]', "
        "'keras_gumbel[jax]' or 'keras_gumbel[torch]' (from a checkout: "
        "pip install '.[jax]'), and set KERAS_BACKEND to tensorflow, jax or "
        "torch to match.") from _error

from keras_gumbel import ops  # noqa: E402
from keras_gumbel import score_function  # noqa: E402
from keras_gumbel.callbacks import TemperatureAnnealing  # noqa: E402
from keras_gumbel.callbacks import find_gumbel_layers  # noqa: E402
from keras_gumbel.layers import GumbelRao  # noqa: E402
from keras_gumbel.layers import GumbelRaoSigmoid  # noqa: E402
from keras_gumbel.layers import GumbelSigmoid  # noqa: E402
from keras_gumbel.layers import GumbelSoftmax  # noqa: E402
from keras_gumbel.layers import GumbelTopK  # noqa: E402
from keras_gumbel.layers import ReinMax  # noqa: E402
from keras_gumbel.layers import ReinMaxSigmoid  # noqa: E402
from keras_gumbel.layers import STGumbel  # noqa: E402
from keras_gumbel.layers import STGumbelSigmoid  # noqa: E402
from keras_gumbel.layers import StraightThrough  # noqa: E402
from keras_gumbel.layers import StraightThroughSigmoid  # noqa: E402
from keras_gumbel.version import __version__  # noqa: E402

__all__ = [
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
    "TemperatureAnnealing",
    "find_gumbel_layers",
    "ops",
    "score_function",
    "__version__",
]
