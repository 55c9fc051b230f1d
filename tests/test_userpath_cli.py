"""The user's path on the command line (issue 10): train on a folder of images into a preset,
export and evaluate the preset, int8 phone defaults and --tolerance, reconstruct one image per class."""

import json

import numpy as np
import pytest
from PIL import Image

import aezoo
from aezoo import cli, datasets
from aezoo.artifact_card import read_card
from aezoo.demo import embedded_samples
from aezoo.plotting import one_per_class


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """64 digits as a user has them: dark on white, 56x56 PNG files."""
    folder = tmp_path_factory.mktemp("my_digits")
    digits = embedded_samples()["mnist"]
    for i, d in enumerate(np.concatenate([digits, digits[:, :, ::-1]])):
        Image.fromarray(255 - (d[..., 0] * 255).astype(np.uint8)).resize((56, 56)).save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def preset(photos, tmp_path_factory):
    """`aezoo train conv_mnist --data FOLDER` (one epoch), its output and its run directory."""
    run_dir = tmp_path_factory.mktemp("runs") / "my_digits"
    code = cli.main(["train", "conv_mnist", "--data", str(photos), "--epochs", "1", "--output-dir", str(run_dir),
                     "--set", "batch_size=16"])
    assert code == 0
    return run_dir


def test_train_on_your_images_and_stop_on_a_finished_run(preset, photos, capsys):
    assert aezoo.presets.is_preset(preset / "preset")
    card = aezoo.presets.read_metadata(preset / "preset")["card"]
    assert card["training"]["init"] == "pretrained" and "64 image files" in card["trained_on"]
    code, out, err = _run(capsys, "train", "conv_mnist", "--data", photos, "--epochs", "1", "--output-dir", preset,
                          "--set", "batch_size=16")
    assert code == 2 and "finished run" in err and out == ""
    history = (preset / "history.csv").read_text().strip().splitlines()
    assert len(history) == 2               # header + one epoch: nothing appended by the refused re-run


def test_export_a_preset_with_phone_defaults(preset, tmp_path, capsys):
    target = tmp_path / "my.tflite"
    code, out, err = _run(capsys, "export", preset / "preset", "--format", "tflite", "--quantize", "int8",
                          "--tolerance", "0.5", "--output", target)
    assert code == 0, err
    report = _last_json(out)
    assert report["batch_size"] == 1 and report["int8_io"] is True           # what a phone wants, by default
    assert report["tolerance"] == 0.5 and report["passed"]
    assert "held-out samples" in report["verify_data"]["source"]      # the images the preset kept of its data
    card = read_card(target)
    assert card["preset"].endswith("preset") and card["artifact"]["batch"] == 1
    assert card["signatures"]["reconstruct"]["inputs"][0]["dtype"] == "int8"
    code, out, err = _run(capsys, "export", preset / "preset", "--format", "tflite", "--quantize", "int8",
                          "--dynamic-batch", "--float-io", "--tolerance", "0.5", "--output", tmp_path / "b.tflite")
    assert code == 0, err
    report = _last_json(out)
    assert report["batch_size"] is None and report["int8_io"] is False
    code, _, err = _run(capsys, "export", preset / "preset", "--format", "onnx", "--dynamic-batch",
                        "--output", tmp_path / "c.onnx")
    assert code == 2 and "TFLite settings" in err


def test_evaluate_a_preset_on_your_images(preset, photos, capsys):
    code, out, err = _run(capsys, "evaluate", preset / "preset", "--data", photos, "--json", "--no-pca", "--limit", "32")
    assert code == 0, err
    report = json.loads(out)
    assert report["name"] == "conv_mnist" and report["data"]["examples"] == 32
    assert "64 image files" in report["data"]["source"] and "inverted" in report["data"]["source"]
    assert report["preset"].endswith("preset") and report["metrics"]["mse"] < 0.1
    code, out, err = _run(capsys, "evaluate", preset / "preset", "--json", "--no-pca")
    assert code == 0, err
    assert "held-out samples" in json.loads(out)["data"]["source"]


def test_zoo_int8_export_defaults_and_verification(tmp_path, capsys):
    code, out, err = _run(capsys, "export", "conv_mnist", "--format", "tflite", "--quantize", "int8", "--part",
                          "encoder", "--output", tmp_path / "e.tflite")
    assert code == 0, err
    report = _last_json(out)
    assert report["batch_size"] == 1 and report["int8_io"] is True
    assert report["verify_data"] == {"source": "mnist_5k:test[:256]", "count": 256}
    assert report["tolerance"] == 0.03


def test_zoo_int16x8_export_defaults(tmp_path, capsys):
    """int16x8 calibrates on the entry's training images like int8, with a phone's batch of 1 and float I/O."""
    code, out, err = _run(capsys, "export", "conv_mnist", "--version", "1", "--format", "tflite", "--quantize",
                          "int16x8", "--output", tmp_path / "a.tflite")
    assert code == 0, err
    report = _last_json(out)
    assert report["quantize"] == "int16x8" and report["passed"]
    assert report["batch_size"] == 1 and report["int8_io"] is False and report["representative_count"] == 512
    assert report["verify_data"] == {"source": "mnist_5k:test[:256]", "count": 256}
    assert report["inputs"]["images"]["dtype"] == "float32"
    assert read_card(tmp_path / "a.tflite")["artifact"]["quantize"] == "int16x8"


def test_reconstruct_shows_every_class_and_names_the_weights(tmp_path, capsys, monkeypatch):
    import aezoo.plotting

    shown = {}

    def fake_save_grid(rows, path, row_labels=None, title=None, cols=None):
        shown.update(rows=rows, title=title)
        return path

    monkeypatch.setattr(aezoo.plotting, "save_grid", fake_save_grid)
    code, _, err = _run(capsys, "reconstruct", "conv_mnist", "--n", "10", "--output", tmp_path / "r.png")
    assert code == 0, err
    x, y = datasets.load_numpy("mnist_5k", "test")
    np.testing.assert_array_equal(shown["rows"][0], x[one_per_class(y, 10)])
    assert sorted(y[one_per_class(y, 10)]) == list(range(10))        # not 10 zeros
    newest = aezoo.weights.published_versions("conv_mnist")[-1]
    assert shown["title"].startswith(f"conv_mnist v{newest} (pretrained)") and "one image per class" in shown["title"]
    weights = tmp_path / "mine.weights.h5"
    aezoo.load("conv_mnist").save_weights(str(weights))
    code, _, err = _run(capsys, "reconstruct", "conv_mnist", "--weights", weights, "--output", tmp_path / "w.png")
    assert code == 0, err
    assert "mine.weights.h5" in shown["title"]


def test_reconstruct_a_preset_shows_its_own_images(preset, tmp_path, capsys, monkeypatch):
    import aezoo.plotting

    shown = {}
    monkeypatch.setattr(aezoo.plotting, "save_grid",
                        lambda rows, path, row_labels=None, title=None, cols=None: shown.update(rows=rows, title=title))
    code, _, err = _run(capsys, "reconstruct", preset / "preset", "--n", "4", "--output", tmp_path / "p.png")
    assert code == 0, err
    assert shown["title"].startswith(f"preset {preset / 'preset'}") and "held-out images" in shown["title"]
    np.testing.assert_allclose(shown["rows"][0], aezoo.presets.samples(preset / "preset")[:4])
