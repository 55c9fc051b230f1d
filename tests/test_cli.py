"""The CLI: a thin shell; bad requests print one line and exit non-zero."""

import json
import subprocess
import sys

import pytest

from aezoo.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "aezoo", *args], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_list_and_info(capsys):
    assert main(["list", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)
    assert "conv_mnist" in names
    assert main(["info", "conv_vae_mnist"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "vae" and info["config"].get("body", info["config"].get("encoder_type")) == "conv"


@pytest.mark.parametrize("args, message", [
    (["info", "conv_mnst"], "Did you mean conv_mnist"),
    (["info", "./weights/conv_mnist.weights.h5"], "looks like a path"),
    (["train", "conv_mnist", "--set", "epochs=zero"], "epochs must be an integer"),
    (["train", "conv_mnist", "--set", "lr"], "KEY=VALUE"),
    (["sample", "conv_mnist", "--no-pretrained"], "not a VAE"),
])
def test_errors_are_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aezoo: error:") and message in err[0], err


def test_subprocess_error_has_no_traceback():
    result = run_cli("info", "resnet50")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "aezoo: error: unknown model 'resnet50'" in result.stderr


def test_pictures_and_evaluate(tmp_path, capsys):
    out = tmp_path / "r.png"
    assert main(["reconstruct", "denoising_mnist", "--no-pretrained", "--n", "6", "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "s.png"
    assert main(["sample", "vae_mnist", "--no-pretrained", "--n", "16", "--output", str(out)]) == 0
    assert out.stat().st_size > 1000
    capsys.readouterr()
    report = tmp_path / "e.json"
    assert main(["evaluate", "dense_mnist", "--no-pretrained", "--limit", "32", "--output", str(report)]) == 0
    assert "PCA with 32 components" in capsys.readouterr().out
    assert json.loads(report.read_text())["data"]["examples"] == 32
