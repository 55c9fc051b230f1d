"""Every family: builds from config, trains with falling loss, saves and
reloads to identical outputs, and keeps its interface."""

import numpy as np
import pytest
import keras

from aezoo.models import FAMILIES, ConvAutoencoder, DenoisingAutoencoder, VariationalAutoencoder

SMALL = {
    "dense": dict(latent_dim=8, hidden=[64]),
    "conv": dict(latent_dim=8, filters=[8, 16]),
    "denoising": dict(latent_dim=8, body="conv", body_config={"filters": [8, 16]}, noise_level=0.2, seed=1),
    "vae": dict(latent_dim=4, hidden=[64], seed=1),
    "conv_vae": dict(latent_dim=4, encoder_type="conv", filters=[8, 16], seed=1),
}


def make(kind):
    family = "vae" if kind == "conv_vae" else kind
    return FAMILIES[family](input_shape=(28, 28, 1), **SMALL[kind])


@pytest.mark.parametrize("kind", list(SMALL))
def test_family_trains_saves_and_reloads(kind, images, tmp_path):
    keras.utils.set_random_seed(0)
    model = make(kind)
    # builds from its own config
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    model.compile(keras.optimizers.Adam(3e-3), loss=None if "vae" in kind else "mse")
    before = model.evaluate(images, images, verbose=0, batch_size=64)
    history = model.fit(images, epochs=4, batch_size=32, verbose=0)
    after = model.evaluate(images, images, verbose=0, batch_size=64)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses
    assert after < before
    x = images[:8]
    expected = np.asarray(model.reconstruct(x))
    assert expected.shape == x.shape and 0 <= expected.min() and expected.max() <= 1

    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(reloaded) is type(model)
    np.testing.assert_array_equal(np.asarray(reloaded.reconstruct(x)), expected)

    model.save_weights(tmp_path / "m.weights.h5")
    fresh = type(model).from_config(model.get_config())
    assert not np.allclose(np.asarray(fresh.reconstruct(x)), expected)
    fresh.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(np.asarray(fresh.reconstruct(x)), expected)


@pytest.mark.parametrize("kind", list(SMALL))
def test_interface(kind, images):
    model = make(kind)
    x = images[:5]
    z = np.asarray(model.encode(x))
    assert z.shape == (5, model.latent_dim)
    assert np.asarray(model.decode(z)).shape == x.shape
    # encoder and decoder work on their own (feature extraction)
    features = np.asarray(model.encoder.predict(x, verbose=0))
    assert features.shape[0] == 5
    scores = np.asarray(model.anomaly_score(x))
    assert scores.shape == (5,) and (scores >= 0).all()
    recon = np.asarray(model.reconstruct(x))
    np.testing.assert_allclose(scores, ((recon - x) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5, atol=1e-7)


def test_anomaly_score_ranks_outliers(images):
    keras.utils.set_random_seed(0)
    model = make("conv")
    model.compile(keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(images, epochs=8, batch_size=32, verbose=0)
    noise = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    assert np.asarray(model.anomaly_score(noise)).mean() > 2 * np.asarray(model.anomaly_score(images[:16])).mean()


def test_conv_takes_any_divisible_shape():
    model = ConvAutoencoder((32, 48, 3), latent_dim=16, filters=[8, 16, 32])
    x = np.random.default_rng(0).random((2, 32, 48, 3)).astype("float32")
    assert np.asarray(model.reconstruct(x)).shape == (2, 32, 48, 3)
    assert model.latent_dim * 10 < 32 * 48 * 3  # a real bottleneck
    with pytest.raises(ValueError, match="divisible by the total stride 8"):
        ConvAutoencoder((28, 28, 1), latent_dim=8, filters=[8, 16, 32])


def test_denoising_corrupts_only_in_training(images):
    model = make("denoising")
    x = images[:4]
    a = np.asarray(model(x, training=False))
    b = np.asarray(model(x, training=False))
    np.testing.assert_array_equal(a, b)
    c = np.asarray(model(x, training=True))
    assert not np.allclose(a, c)
    noisy = np.asarray(model.corrupt(x, seed=3))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not np.allclose(noisy, x)
    assert np.asarray(model.denoise(noisy)).shape == x.shape


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_and_pepper"])
def test_noise_kinds(noise, images):
    model = DenoisingAutoencoder((28, 28, 1), 8, body="dense", body_config={"hidden": [16]}, noise=noise,
                                 noise_level=0.3)
    x = images[:8]
    noisy = np.asarray(model.corrupt(x, seed=0))
    changed = (noisy != x).mean()
    assert 0.1 < changed <= 1.0
    if noise == "masking":
        assert set(np.unique(noisy[noisy != x])) <= {0.0}
    if noise == "salt_and_pepper":
        assert set(np.unique(noisy[noisy != x])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="expected one of gaussian, masking, salt_and_pepper"):
        DenoisingAutoencoder(noise="speckle")


def test_vae_generation_and_probability(images):
    keras.utils.set_random_seed(0)
    vae = make("vae")
    vae.compile(keras.optimizers.Adam(3e-3))
    history = vae.fit(images, epochs=3, batch_size=32, verbose=0)
    assert {"reconstruction_loss", "kl_loss", "loss"} <= set(history.history)
    assert np.asarray(vae.sample(6, seed=1)).shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(np.asarray(vae.sample(3, seed=1)), np.asarray(vae.sample(3, seed=1)))
    path = np.asarray(vae.interpolate(images[0], images[1], steps=5))
    assert path.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(path[0], np.asarray(vae.decode(vae.encode(images[:1])))[0], atol=1e-5)
    # encode is the posterior mean; the posterior is a TFP distribution
    q = vae.posterior(images[:4])
    np.testing.assert_allclose(np.asarray(q.mean()), np.asarray(vae.encode(images[:4])), atol=1e-6)
    assert q.event_shape == (vae.latent_dim,)
    p = vae.likelihood(vae.encode(images[:2]))
    assert p.log_prob(images[:2]).shape == (2,)
    # IWAE with more samples is a tighter bound than the ELBO (on average)
    x = images[:32]
    elbo = np.asarray(vae.elbo(x, seed=0)).mean()
    ll1 = np.asarray(vae.log_likelihood(x, k=1, seed=0)).mean()
    ll64 = np.asarray(vae.log_likelihood(x, k=64, seed=0)).mean()
    assert ll64 >= ll1 - 1e-3
    assert ll64 >= elbo - 1.0
    assert np.isfinite(ll64) and ll64 < 0


def test_vae_beta_and_gaussian_likelihood(images):
    vae = VariationalAutoencoder((28, 28, 1), 4, hidden=[32], likelihood="gaussian", beta=0.5, seed=0)
    vae.compile("adam")
    hist = vae.fit(images[:64], epochs=2, batch_size=32, verbose=0).history
    np.testing.assert_allclose(hist["loss"][-1], hist["reconstruction_loss"][-1] + 0.5 * hist["kl_loss"][-1],
                               rtol=1e-3)
    with pytest.raises(ValueError, match="likelihood"):
        VariationalAutoencoder(likelihood="poisson")
