"""aezoo: the autoencoder model zoo for Keras 3.

    >>> import aezoo
    >>> aezoo.list_models()
    >>> model = aezoo.load("conv_mnist")
    >>> z = model.encode(images)            # float32 (N, 28, 28, 1) in [0, 1]
    >>> aezoo.train("conv_mnist", epochs=2)
    >>> aezoo.evaluate("conv_mnist", limit=500)
    >>> aezoo.export(model, "conv_mnist.tflite", format="tflite")

Importing aezoo is light: Keras and TensorFlow are imported by the verbs that
need them (building, training, evaluating, exporting), and by the model
classes (`aezoo.ConvAutoencoder`, ...), which load on first use.
"""

from aezoo._io import AEZOO_VERSION as __version__
from aezoo.errors import (AezooError, BackendError, DatasetError, ExportError, InputError, RecipeError,
                          UnknownModelError, WeightsError)
from aezoo.registry import build, get_entry, info, list_models, load, register

# name -> module that defines it: imported on first use (PEP 562), so that
# `import aezoo` (and the CLI's `aezoo list`) stays free of numpy, Keras and
# TensorFlow. `aezoo.train`, `aezoo.evaluate` and `aezoo.export` are the real
# functions (their signatures and docstrings show in help()).
_LAZY = {
    "train": "aezoo.training",
    "evaluate": "aezoo.evaluation",
    "export": "aezoo.deploy",
    "Autoencoder": "aezoo.models",
    "ConvAutoencoder": "aezoo.models",
    "DenseAutoencoder": "aezoo.models",
    "DenoisingAutoencoder": "aezoo.models",
    "VariationalAutoencoder": "aezoo.models",
    "FAMILIES": "aezoo.models",
    "register_family": "aezoo.models",
    "save": "aezoo.presets",
    "preprocess": "aezoo.inputs",
    "AnomalyDetector": "aezoo.tasks.anomaly",
}
_SUBMODULES = ("datasets", "recipes", "registry", "weights", "models", "training", "evaluation", "deploy", "cards",
               "benchmark", "demo", "plotting", "errors", "presets", "preprocessing", "inputs", "artifact_card",
               "finetune")

__all__ = ["AezooError", "BackendError", "DatasetError", "ExportError", "InputError", "RecipeError",
           "UnknownModelError", "WeightsError", "build", "get_entry", "info", "list_models", "load", "register",
           *_LAZY]


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"aezoo.{name}")
    raise AttributeError(f"module 'aezoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
