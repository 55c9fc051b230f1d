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
    assert info["family"] == "vae" and info["config"]["body"] == "resnet" and info["version"] == 2   # the newest
    assert main(["info", "conv_vae_mnist", "--version", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["body"] == "conv"


@pytest.mark.parametrize("args, message", [
    (["info", "conv_mnst"], "Did you mean conv_mnist"),
    (["info", "./weights/conv_mnist.weights.h5"], "looks like a path"),
    (["train", "conv_mnist", "--set", "epochs=zero"], "epochs must be an integer"),
    (["train", "conv_mnist", "--set", "lr"], "KEY=VALUE"),
    (["sample", "conv_mnist", "--no-pretrained"], "does not generate images"),
    (["bench", "denoise", "--protocol", "oneclass"], "go with `aezoo bench anomaly` and no names"),
    (["bench", "anomaly", "conv_mnist", "--protocol", "oneclass"], "go with `aezoo bench anomaly` and no names"),
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


# -- fast and quiet ------------------------------------------------------------------------------

LIGHT_PROBE = """
import json, sys
from aezoo.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:  # --help and argparse errors exit through argparse
    code = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax"))
print("PROBE" + json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["list", "--family", "vae"], ["info", "conv_mnist"],
                                  ["--help"], ["list", "--help"], ["list", "--family", "nope"], ["frobnicate"],
                                  ["info", "conv_mnst"], ["results"], ["reconstruct", "conv_mnist", "--n", "-3"],
                                  ["evaluate", "conv_mnist", "--limit", "0"]])
def test_light_commands_and_argument_errors_import_no_tensorflow(args):
    result = subprocess.run([sys.executable, "-c", LIGHT_PROBE, *args], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "AEZOO_OFFLINE": "1"})
    line = next(l for l in result.stdout.splitlines() if l.startswith("PROBE"))
    probe = json.loads(line[len("PROBE"):])
    assert probe["heavy"] == [], probe
    assert "Traceback" not in result.stderr
    if args[0] in ("frobnicate",) or "nope" in args or "-3" in args or "0" in args or "conv_mnst" in args:
        assert probe["code"] == 2 and result.stderr.strip(), result.stderr


def test_negative_and_zero_counts_are_refused(capsys):
    for args, message in ((["reconstruct", "conv_mnist", "--n", "-3"], "--n: expected a whole number >= 1, got -3"),
                          (["evaluate", "conv_mnist", "--limit", "0"], "--limit: expected a whole number >= 1, got 0"),
                          (["train", "conv_mnist", "--epochs", "-1"], "--epochs: expected a whole number >= 1")):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_list_into_a_closed_pipe_is_quiet():
    result = subprocess.run(f"'{sys.executable}' -m aezoo list | head -1", shell=True, capture_output=True,
                            text=True, timeout=120, env={**__import__("os").environ, "AEZOO_OFFLINE": "1"})
    assert len(result.stdout.splitlines()) == 1
    assert "BrokenPipeError" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_heavy_commands_print_no_tensorflow_log_lines(tmp_path):
    """TensorFlow's C++ start-up lines (I0000 ... port.cc, cudart_stub.cc, cpu_feature_guard.cc, cuInit) are
    printed before TF_CPP_MIN_LOG_LEVEL is read; the CLI keeps them off stderr."""
    out = tmp_path / "s.png"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("TF_CPP", "ABSL"))}
    result = subprocess.run([sys.executable, "-m", "aezoo", "sample", "vae_mnist", "--no-pretrained", "--n", "4",
                             "--output", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    # `info --params` builds the model (Keras): quiet too
    result = subprocess.run([sys.executable, "-m", "aezoo", "info", "dense_mnist", "--params"], capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout)["params"] > 0
