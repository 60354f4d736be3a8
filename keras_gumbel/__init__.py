"""keras_gumbel: Gumbel-Softmax and straight-through Gumbel layers for Keras 3.

Public names:

- `GumbelSoftmax`, `STGumbel`: categorical layers (soft, straight-through).
- `GumbelSigmoid`, `STGumbelSigmoid`: binary layers (soft, straight-through).
- `TemperatureAnnealing`: the temperature schedule as a callback.
- `keras_gumbel.ops`: the math (noise, samples, KL terms).
"""

from keras_gumbel import ops
from keras_gumbel.callbacks import TemperatureAnnealing
from keras_gumbel.callbacks import find_gumbel_layers
from keras_gumbel.layers import GumbelSigmoid
from keras_gumbel.layers import GumbelSoftmax
from keras_gumbel.layers import STGumbel
from keras_gumbel.layers import STGumbelSigmoid
from keras_gumbel.version import __version__

__all__ = [
    "GumbelSoftmax",
    "STGumbel",
    "GumbelSigmoid",
    "STGumbelSigmoid",
    "TemperatureAnnealing",
    "find_gumbel_layers",
    "ops",
    "__version__",
]
