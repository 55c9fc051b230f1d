"""Every published entry: its bundled file matches the manifest's hash, loads,
and reproduces the manifest's metric on real images (the torchvision lesson:
load every entry). Fine-tuning a pretrained entry works in plain Keras."""

import keras
import numpy as np
import pytest

import aezoo
from aezoo import weights
from aezoo.demo import embedded_samples, sample_key

MANIFEST = weights.manifest()          # name -> its newest published version's card
RECORDS = weights.records()            # name -> {version -> card}: every published version
VERSIONS = sorted((name, int(v)) for name, versions in RECORDS.items() for v in versions)
REQUIRED = ("file", "sha256", "bytes", "family", "config", "dataset", "split", "recipe", "seed", "epochs_run",
            "metrics", "params", "versions", "date", "license", "sample_check")


@pytest.mark.parametrize("name,version", VERSIONS, ids=[f"{n}-v{v}" for n, v in VERSIONS])
def test_bundled_entry_loads_and_matches_its_card(name, version):
    """Every published version (v1 stays loadable beside v2): hash, size, config and a metric."""
    record = RECORDS[name][str(version)]
    assert set(REQUIRED) <= set(record)
    path = weights.resolve(name, version)
    assert weights.sha256(path) == record["sha256"] and path.stat().st_size == record["bytes"]
    model = aezoo.load(name, version=version)
    assert model.count_params() == record["params"]
    assert record["config"] == aezoo.get_entry(name, version)["config"]
    x = embedded_samples()[sample_key(record["dataset"])]
    mse = float(np.mean((np.asarray(model.predict(x, verbose=0)) - x) ** 2))
    assert mse == pytest.approx(record["sample_check"]["mse"], rel=1e-4)
    m = record["metrics"]
    assert m["ratio_to_pca_mse"] == pytest.approx(m["mse"] / m["pca_mse"])


def test_the_default_is_the_newest_published_version():
    for name, versions in RECORDS.items():
        newest = max(map(int, versions))
        assert MANIFEST[name]["version"] == newest
        assert weights.resolve(name) == weights.resolve(name, newest)


def test_every_registry_entry_is_published_from_its_own_recipe():
    assert set(MANIFEST) == set(aezoo.list_models())
    for name, version in VERSIONS:
        record, entry = RECORDS[name][str(version)], aezoo.get_entry(name, version)
        assert record["overrides"] == {} and record["recipe"] == entry["recipe"], (name, version)
        assert record["epochs_run"] == entry["recipe"]["epochs"], (name, version)


@pytest.mark.skipif("conv_mnist" not in MANIFEST, reason="conv_mnist weights not published")
def test_fine_tune_pretrained_encoder_frozen_on_new_data():
    """conv_mnist (digits) fine-tuned on real Fashion-MNIST images with its encoder frozen."""
    keras.utils.set_random_seed(0)
    model = aezoo.load("conv_mnist")
    x = embedded_samples()["fashion_mnist"]
    model.encoder.trainable = False
    model.compile(keras.optimizers.Adam(1e-3), loss="mse")
    frozen = [w.copy() for w in model.encoder.get_weights()]
    history = model.fit(x, x, epochs=15, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    for a, b in zip(frozen, model.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the pretrained encoder as a feature extractor
    features = model.encoder.predict(x, verbose=0)
    assert features.shape == (32, model.latent_dim) and np.isfinite(features).all()


@pytest.mark.skipif(not {"conv_mnist", "vae_mnist"} <= set(MANIFEST), reason="weights not published")
def test_demo_runs_offline(tmp_path, capsys):
    from aezoo.cli import main

    from aezoo import demo

    out = tmp_path / "demo.png"
    assert main(["demo", "--output", str(out), "--model", "conv_mnist", "--model", "vae_mnist"]) == 0
    text = capsys.readouterr().out
    assert "conv_mnist" in text and "anomaly AUROC" in text and out.read_bytes()[:4] == b"\x89PNG"
    # digits against Fashion-MNIST: a trained digit model tells them apart almost perfectly
    table = {row["model"]: row for row in demo.run(output=str(out), model_names=["conv_mnist"])}
    assert table["conv_mnist"]["anomaly_auroc"] > 0.95
    assert table["conv_mnist"]["mse"] < 0.02
    # beside it, the card's own answer on the full test splits, with the entry's default score
    card = MANIFEST["conv_mnist"]["tasks"]["anomaly"]
    assert table["conv_mnist"]["card_anomaly"] == {"auroc": card["auroc"], "score": card["default_score"]}
    assert "card AUROC (score)" in text


def test_verify_cli(capsys):
    from aezoo.cli import main

    assert main(["verify"]) == 0
    assert f"{len(VERSIONS)} verified, 0 failed" in capsys.readouterr().out


def test_auroc_is_the_rank_statistic():
    from aezoo.demo import auroc

    assert auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert auroc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert auroc([0.1, 0.3], [0.2, 0.4]) == 0.75
    assert auroc([0.2], [0.2]) == 0.5
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(0.7, size=40)
    assert auroc(a, b) == pytest.approx(roc_auc_score([0] * 50 + [1] * 40, np.concatenate([a, b])))
