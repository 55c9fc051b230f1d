"""Bad input gets a clear error that says what was expected."""

import numpy as np
import pytest

import aezoo
from aezoo.errors import InputError


@pytest.fixture(scope="module")
def model():
    return aezoo.load("conv_mnist", pretrained=False)


def test_wrong_shape_and_channels(model):
    with pytest.raises(InputError, match=r"expected float32 images of shape \(batch, 28, 28, 1\).*1 channel"):
        model.reconstruct(np.zeros((2, 32, 32, 3), "float32"))
    with pytest.raises(InputError, match="1 channel"):
        model.encode(np.zeros((2, 28, 28, 3), "float32"))
    with pytest.raises(InputError, match=r"lacks the batch axis.*x\[None\]"):
        model.reconstruct(np.zeros((28, 28, 1), "float32"))
    with pytest.raises(InputError, match="expected"):
        model(np.zeros((2, 32, 32, 3), "float32"))  # plain Keras call is checked too


def test_integer_pixels(model):
    with pytest.raises(InputError, match=r"integer dtype uint8.*/ 255"):
        model.reconstruct(np.zeros((2, 28, 28, 1), "uint8"))
    with pytest.raises(InputError, match="0..255"):
        model.anomaly_score(np.full((2, 28, 28, 1), 255.0, "float32"))


def test_nan_and_empty(model):
    x = np.zeros((2, 28, 28, 1), "float32")
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        model.encode(x)
    with pytest.raises(InputError, match="empty batch"):
        model.reconstruct(np.zeros((0, 28, 28, 1), "float32"))


def test_bad_latents(model):
    with pytest.raises(InputError, match=r"expected \(batch, 32\)"):
        model.decode(np.zeros((2, 16), "float32"))
