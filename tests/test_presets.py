"""Presets (aezoo.save / aezoo.load(DIR)) and training on your own images (aezoo/finetune.py)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import aezoo
from aezoo import presets
from aezoo.demo import embedded_samples
from aezoo.errors import AezooError, InputError
from aezoo.presets import PresetError


@pytest.fixture(scope="module")
def digits():
    return embedded_samples()["mnist"]


def _tiny(name="tiny_vae"):
    return aezoo.VariationalAutoencoder((28, 28, 1), latent_dim=4, body="dense", hidden=(16,), name=name)


def test_save_and_load_round_trip(tmp_path, digits):
    model = aezoo.load("conv_vae_mnist")
    newest = aezoo.weights.published_versions("conv_vae_mnist")[-1]
    path = presets.save(model, tmp_path / "p", sample_images=digits[:20], card={"trained_on": "the zoo's weights"})
    assert sorted(os.listdir(path)) == ["config.json", "metadata.json", "model.weights.h5", "samples.npz"]
    config = json.loads((path / "config.json").read_text())
    assert config["class_name"] == "VariationalAutoencoder" and config["config"]["latent_dim"] == 16
    meta = json.loads((path / "metadata.json").read_text())
    assert {"keras_version", "aezoo_version", "parameter_count", "date_saved", "card"} <= set(meta)
    assert meta["parameter_count"] == model.count_params()
    assert meta["card"]["base"] == {"entry": "conv_vae_mnist", "version": newest, "dataset": "mnist_5k"}
    assert meta["card"]["preprocessing"]["framing"] == "mass_centred" and meta["samples"]["count"] == 20
    again = presets.load(path)
    assert type(again) is type(model) and again.preset_card["trained_on"] == "the zoo's weights"
    assert again.zoo_entry == {"name": "conv_vae_mnist", "version": newest, "dataset": "mnist_5k"}   # where it came from
    np.testing.assert_array_equal(np.asarray(again.encode(digits)), np.asarray(model.encode(digits)))
    np.testing.assert_allclose(presets.samples(path), digits[:20], atol=1 / 255)
    assert presets.is_preset(path) and not presets.is_preset(tmp_path) and not presets.is_preset("conv_mnist")
    for file in path.iterdir():     # JSON, HDF5 and npz: nothing pickled
        assert b"pickle" not in file.read_bytes()[:64]


def test_save_refuses_to_clobber(tmp_path, digits):
    model = _tiny()
    path = presets.save(model, tmp_path / "p")
    with pytest.raises(PresetError, match="already exists"):
        presets.save(model, path)
    presets.save(model, path, overwrite=True)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(PresetError, match="not an aezoo preset"):
        presets.save(model, other, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(InputError, match="aezoo autoencoder"):
        presets.save(model.encoder, tmp_path / "enc")
    with pytest.raises(InputError, match="sample_images"):
        presets.save(model, tmp_path / "bad", sample_images=digits[:, :14])
    assert not (tmp_path / "bad").exists() and not (tmp_path / "enc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "p"]   # no work directories left


def test_load_errors(tmp_path):
    with pytest.raises(PresetError, match="does not exist"):
        presets.load(tmp_path / "missing")
    path = presets.save(_tiny(), tmp_path / "p")
    (path / "model.weights.h5").unlink()
    with pytest.raises(PresetError, match="lacks model.weights.h5"):
        presets.load(path)
    path = presets.save(_tiny(), tmp_path / "q")
    (path / "config.json").write_text(json.dumps({"class_name": "Nope", "config": {}}))
    with pytest.raises(PresetError, match="not an aezoo model config"):
        presets.load(path)
    assert issubclass(PresetError, AezooError)


def test_aezoo_load_reads_a_preset_directory(tmp_path, digits):
    model = _tiny()
    path = presets.save(model, tmp_path / "my_model")
    again = aezoo.load(str(path))
    np.testing.assert_array_equal(np.asarray(again.encode(digits[:4])), np.asarray(model.encode(digits[:4])))
    assert aezoo.save is not None


def test_train_on_a_folder_of_images_writes_a_preset(tmp_path, digits):
    from aezoo.finetune import train_on_images
    from aezoo.training import RunDirError

    folder = tmp_path / "my_digits"
    folder.mkdir()
    for i, d in enumerate(np.concatenate([digits] * 2)):   # 64 photos: dark ink on white, 56 px
        Image.fromarray(255 - (d[..., 0] * 255).astype(np.uint8)).resize((56, 56)).save(folder / f"{i:02d}.png")
    out = tmp_path / "run"
    model, summary = train_on_images("conv_mnist", folder, output_dir=out, epochs=1, verbose=0,
                                     overrides={"batch_size": 16})
    assert summary["init"] == "pretrained" and summary["data"]["train"] == 58 and summary["data"]["held_out"] == 6
    assert summary["preprocessing"]["inverted"] == list(range(64))
    preset = presets.load(summary["preset"])
    card = preset.preset_card
    assert "my_digits" in card["trained_on"] and card["training"]["init"] == "pretrained"
    assert card["base"]["entry"] == "conv_mnist" and card["base"]["dataset"] is None
    assert "input_check_note" in card             # 6 held-out images are too few for a 1% threshold
    np.testing.assert_allclose(np.asarray(preset.reconstruct(digits[:4])), np.asarray(model.reconstruct(digits[:4])),
                               atol=1e-6)
    # fine-tuned from the pretrained weights: one epoch on 58 images keeps it close to them
    pretrained = aezoo.load("conv_mnist")
    mse = lambda m: float(np.mean((np.asarray(m.reconstruct(digits)) - digits) ** 2))  # noqa: E731
    assert mse(preset) < 3 * mse(pretrained) < 0.1
    with pytest.raises(RunDirError, match="finished run"):
        train_on_images("conv_mnist", folder, output_dir=out, epochs=1, verbose=0, overrides={"batch_size": 16})
    with pytest.raises(InputError, match="init"):
        train_on_images("conv_mnist", folder, init="warm")
