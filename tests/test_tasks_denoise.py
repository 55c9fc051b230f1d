"""aezoo.tasks.denoise: fixed-seed noise, pooled PSNR, classical denoisers tuned on validation."""

import numpy as np
import pytest

from aezoo import tasks
from aezoo.errors import InputError
from aezoo.tasks import denoise
from tests.conftest import make_images


class Identity:
    """A "denoiser" that returns its input."""

    def __call__(self, x, training=False):
        return x


def test_noise_is_what_the_protocol_says():
    x = np.full((20, 28, 28, 1), 0.5, "float32")
    g = denoise.add_noise(x, "gaussian", 0.1, 0)
    assert np.std(g - x) == pytest.approx(0.1, rel=0.02)
    assert denoise.add_noise(np.zeros((2, 8)), "gaussian", 0.4, 0).min() == 0.0  # clipped to [0, 1]
    sp = denoise.add_noise(x, "salt_and_pepper", 0.1, 0)
    assert np.mean(sp != x) == pytest.approx(0.1, abs=0.01)
    assert np.mean(sp == 0) == pytest.approx(np.mean(sp == 1), abs=0.01)
    m = denoise.add_noise(x, "masking", 0.25, 0)
    assert set(np.unique(m)) == {0.0, 0.5} and np.mean(m == 0) == pytest.approx(0.25, abs=0.01)
    np.testing.assert_array_equal(denoise.add_noise(x, "masking", 0.25, 0), m)  # fixed seed, same draw
    assert not np.array_equal(denoise.add_noise(x, "masking", 0.25, 1), m)
    with pytest.raises(InputError):
        denoise.add_noise(x, "speckle", 0.1, 0)


def test_identity_denoiser_scores_the_noisy_psnr():
    x = make_images(40)
    scores = denoise.evaluate_model(Identity(), x, seed=3)
    noisy = denoise.noisy_sets(x, 3, "test")
    for key in denoise.NOISES:
        assert scores[key]["psnr"] == pytest.approx(tasks.psnr_pooled(x, noisy[key]), abs=1e-9)
        assert scores[key]["ssim"] == pytest.approx(tasks.ssim_mean(x, noisy[key]), abs=1e-6)
    assert scores["gaussian_0.1"]["psnr"] > scores["gaussian_0.2"]["psnr"] > scores["gaussian_0.4"]["psnr"]


def test_classical_denoisers_and_tuning():
    clean = make_images(12)
    noisy = denoise.add_noise(clean, "gaussian", 0.2, 0)
    for method in denoise.GRIDS:
        out = denoise.classical(method, noisy, denoise.GRIDS[method][1])
        assert out.shape == noisy.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
    best, scores = denoise.tune("gaussian_filter", clean, noisy)
    assert scores[best] == max(scores.values()) and best > denoise.GRIDS["gaussian_filter"][0]
    assert scores[best] > tasks.psnr_pooled(clean, noisy) + 3  # smooth blobs: filtering helps a lot
    # the median filter removes an isolated salt pixel exactly
    flat = np.full((1, 9, 9, 1), 0.3, "float32")
    salted = flat.copy()
    salted[0, 4, 4, 0] = 1.0
    np.testing.assert_allclose(denoise.classical("median", salted, 3), flat, atol=1e-6)
    with pytest.raises(InputError):
        denoise.classical("bm3d", noisy, 1)


def test_run_on_small_data_and_table(monkeypatch):
    import aezoo

    aezoo.register("tiny_denoise", "dense", {"input_shape": [28, 28, 1], "latent_dim": 2, "hidden": [4]},
                   recipe={"dataset": "mnist_5k", "loss": "mse"}, overwrite=True)
    model = aezoo.load("tiny_denoise", pretrained=False)
    data = {"mnist_5k": {"test": (make_images(30, seed=1), np.zeros(30)),
                         "validation": (make_images(20, seed=2), np.zeros(20))}}
    result = denoise.run(models={"tiny_denoise": model}, data=data, methods=["gaussian_filter", "median"],
                         progress=False)
    entry = result["entries"]["tiny_denoise"]
    assert entry["version"] == 1 and entry["test_images"] == 30 and set(entry["noises"]) == set(denoise.NOISES)
    base = result["baselines"]["mnist_5k"]
    assert set(base) == {"noisy", "gaussian_filter", "median", "images"}
    assert entry["noisy"] == base["noisy"]
    text = denoise.table(tasks.merge({}, result))
    assert "| tiny_denoise v1 |" in text and "noisy input" in text and "25.36 (published)" in text
    card = denoise.card_summary(entry)
    assert card["psnr_db"]["gaussian_0.2"] == round(entry["noises"]["gaussian_0.2"]["psnr"], 2)
