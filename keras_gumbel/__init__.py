"""keras_gumbel: Gumbel-Softmax and straight-through Gumbel layers for Keras 3.

Public names:

- `GumbelSoftmax`, `STGumbel`: categorical layers (soft, straight-through).
- `GumbelSigmoid`, `STGumbelSigmoid`: binary layers (soft, straight-through).
- `StraightThrough`, `ReinMax`, `GumbelRao` and their binary counterparts
  `StraightThroughSigmoid`, `ReinMaxSigmoid`, `GumbelRaoSigmoid`: exact
  samples with other gradient estimators.
- `TemperatureAnnealing`: the temperature schedule as a callback.
- `keras_gumbel.ops`: the math (noise, samples, estimators, KL terms).
- `keras_gumbel.score_function`: REINFORCE, NVIL, DARN and MuProp, the
  pieces of a `train_step` for score-function estimators.
"""

from keras_gumbel import ops
from keras_gumbel import score_function
from keras_gumbel.callbacks import TemperatureAnnealing
from keras_gumbel.callbacks import find_gumbel_layers
from keras_gumbel.layers import GumbelRao
from keras_gumbel.layers import GumbelRaoSigmoid
from keras_gumbel.layers import GumbelSigmoid
from keras_gumbel.layers import GumbelSoftmax
from keras_gumbel.layers import ReinMax
from keras_gumbel.layers import ReinMaxSigmoid
from keras_gumbel.layers import STGumbel
from keras_gumbel.layers import STGumbelSigmoid
from keras_gumbel.layers import StraightThrough
from keras_gumbel.layers import StraightThroughSigmoid
from keras_gumbel.version import __version__

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
    "TemperatureAnnealing",
    "find_gumbel_layers",
    "ops",
    "score_function",
    "__version__",
]
