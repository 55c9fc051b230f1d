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


def test_predict_and_call_validate_like_reconstruct(model):
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), model.reconstruct(x), atol=1e-6)
    np.testing.assert_allclose(model.predict(list(x), verbose=0), model.reconstruct(x), atol=1e-6)  # a list works
    with pytest.raises(InputError, match=r"lacks the batch axis.*x\[None\]"):
        model.predict(x[0], verbose=0)
    with pytest.raises(InputError, match="empty batch"):
        model.predict(np.zeros((0, 28, 28, 1), "float32"), verbose=0)
    bad = x.copy()
    bad[0, 3, 3, 0] = np.nan
    for call in (lambda v: model.predict(v, verbose=0), lambda v: model(v)):
        with pytest.raises(InputError, match="NaN"):
            call(bad)
        with pytest.raises(InputError, match="0..255: divide by 255"):
            call(x * 255)
    with pytest.raises(InputError, match="not numeric"):
        model.predict(np.array([["a"]], dtype=object), verbose=0)


def test_inference_runs_in_batches_with_the_same_results(model):
    x = np.random.default_rng(1).random((10, 28, 28, 1)).astype("float32")
    whole = {f: np.asarray(getattr(model, f)(x)) for f in ("encode", "reconstruct", "anomaly_score")}
    seen = []
    encoder = model.encoder

    class Spy:
        def __call__(self, batch, training=False):
            seen.append(int(np.shape(batch)[0]))
            return encoder(batch, training=training)

    model.inference_batch = 4
    model.encoder = Spy()
    try:
        for f in whole:
            seen.clear()
            np.testing.assert_allclose(np.asarray(getattr(model, f)(x)), whole[f], rtol=1e-5, atol=1e-6)
            assert seen == [4, 4, 2], (f, seen)
    finally:
        model.encoder = encoder
        model.inference_batch = type(model).inference_batch


def test_vae_counts_must_be_whole_numbers():
    vae = aezoo.build("vae_mnist", hidden=[8], latent_dim=2)
    for n in (2.7, 0, -1, "2", True):
        with pytest.raises(InputError, match="whole number n >= 1"):
            vae.sample(n)
    assert np.asarray(vae.sample(2.0, seed=0)).shape == (2, 28, 28, 1)
    with pytest.raises(InputError, match="whole number of steps >= 2; got 2.5"):
        vae.interpolate(np.zeros((28, 28, 1), "float32"), np.zeros((28, 28, 1), "float32"), steps=2.5)


def test_evaluate_limit_zero_is_a_clear_error():
    for limit in (0, -1, 1.5):
        with pytest.raises(InputError, match="limit must be an integer >= 1"):
            aezoo.evaluate("dense_mnist", pretrained=False, limit=limit, progress=False)
