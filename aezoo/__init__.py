"""aezoo: the autoencoder model zoo for Keras 3.

    >>> import aezoo
    >>> aezoo.list_models()
    >>> model = aezoo.load("conv_mnist")
    >>> z = model.encode(images)            # float32 (N, 28, 28, 1) in [0, 1]
"""

__version__ = "0.1.0"

from aezoo import datasets, recipes
from aezoo.errors import (AezooError, BackendError, DatasetError, InputError, RecipeError,
                          UnknownModelError, WeightsError)
from aezoo.models import (Autoencoder, ConvAutoencoder, DenseAutoencoder, DenoisingAutoencoder,
                          VariationalAutoencoder)
from aezoo.registry import build, get_entry, info, list_models, load, register


def train(*args, **kwargs):
    """See `aezoo.training.train`."""
    from aezoo.training import train as _train

    return _train(*args, **kwargs)


def evaluate(*args, **kwargs):
    """See `aezoo.evaluation.evaluate`."""
    from aezoo.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
