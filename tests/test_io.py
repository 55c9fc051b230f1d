"""aezoo._io: atomic writes that follow the umask, package data in a real
(non-editable) install, one AEZOO_OFFLINE parsing, one versions record,
stale temporary files."""

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from aezoo import _io, datasets, weights
from aezoo.errors import AezooError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    """Set the process umask for one test."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert _io.umask() == mask
    paths = [_io.write_text(tmp_path / "a.txt", "hi"), _io.write_json(tmp_path / "b.json", {"x": 1}),
             _io.copy_file(tmp_path / "a.txt", tmp_path / "c.txt")]
    with _io.open_temp(tmp_path / "d.bin") as f:
        f.write(b"data")
        _io.commit(f, tmp_path / "d.bin")
    paths.append(tmp_path / "d.bin")
    from aezoo.plotting import save_grid

    import numpy as np

    paths.append(save_grid([np.zeros((2, 4, 4, 1))], tmp_path / "e.png"))
    for p in paths:
        assert p.stat().st_mode & 0o777 == mode, p
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.txt", "d.bin", "e.png"]


def test_weights_files_follow_the_umask(tmp_path, umask):
    import aezoo

    umask(0o002)
    model = aezoo.DenseAutoencoder((4, 4, 1), latent_dim=2, hidden=[3])
    path = _io.save_weights(model, tmp_path / "m.weights.h5")
    assert path.stat().st_mode & 0o777 == 0o664
    assert [p.name for p in tmp_path.iterdir()] == ["m.weights.h5"]


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.json"
    _io.write_json(target, {"old": True})
    with pytest.raises(TypeError):
        _io.write_json(target, {"bad": object()})  # not serialisable: fails before anything is replaced
    with pytest.raises(RuntimeError):
        with _io.atomic_path(target) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == '{\n  "old": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), (" on ", True),
                                             ("0", False), ("false", False), ("no", False), ("", False),
                                             ("off", False)])
def test_offline_is_parsed_once_for_datasets_and_weights(monkeypatch, value, expected):
    monkeypatch.setenv("AEZOO_OFFLINE", value)
    assert _io.offline() is expected
    assert weights.offline() is expected
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {})
    datasets.cache_clear()
    if expected:  # datasets refuse the download exactly when the weights do
        with pytest.raises(datasets.DatasetError, match="not available offline"):
            datasets.load_numpy("fashion_mnist", "test")
    datasets.cache_clear()


def test_unclear_offline_value_is_an_error(monkeypatch):
    monkeypatch.setenv("AEZOO_OFFLINE", "maybe")
    with pytest.raises(AezooError, match="AEZOO_OFFLINE='maybe'.*expected one of 1, true"):
        _io.offline()


def test_one_versions_record():
    import keras

    record = _io.versions()
    assert record["keras"] == keras.__version__ and record["backend"] == keras.backend.backend()
    for key in ("python", "aezoo", "numpy", "tensorflow", "tf2onnx", "onnxruntime", "ai-edge-litert"):
        assert record[key], key
    from aezoo import evaluation, training

    assert training.versions() == record and evaluation._versions() == record


def test_stale_temporary_files_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    own = tmp_path / _io.temp_name("x.weights.h5", ".part")
    own.write_bytes(b"being written by this process")
    killed = tmp_path / _io.temp_name("y.weights.h5", ".part").replace(f"-{os.getpid()}.", f"-{dead.pid}.")
    killed.write_bytes(b"left by a killed process")
    work = tmp_path / _io.temp_name("m.tflite", ".work").replace(f"-{os.getpid()}.", f"-{dead.pid}.")
    work.mkdir()
    (work / "staged").write_bytes(b"x")
    legacy = tmp_path / ".z.weights.h5.abc123.part"  # aezoo 0.1's names: no pid, only age tells
    legacy.write_bytes(b"old")
    fresh_legacy = tmp_path / ".w.weights.h5.def456.part"
    fresh_legacy.write_bytes(b"new")
    old = time.time() - _io.STALE_AFTER_S - 10
    os.utime(legacy, (old, old))
    keep = tmp_path / "model.weights.h5"
    keep.write_bytes(b"a real file")
    removed = weights.clean_partial(tmp_path)
    assert sorted(p.name for p in removed) == sorted([killed.name, work.name, legacy.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([own.name, fresh_legacy.name, keep.name])


def test_package_data_in_a_non_editable_install(tmp_path):
    """Build a wheel of aezoo (pretrained JSON only, no weights, to stay small), unpack it as
    site-packages would, and run `aezoo results` from there, without the editable install."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "aezoo", src / "aezoo", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "pretrained").mkdir()
    for f in ("__init__.py", "manifest.json", "benchmark.json"):
        shutil.copy(REPO / "pretrained" / f, src / "pretrained" / f)
    for f in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)
    build = subprocess.run([sys.executable, "-c", "from setuptools import build_meta as b; "
                            "print(b.build_wheel('dist'))"], cwd=src, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = src / "dist" / build.stdout.strip().splitlines()[-1]
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    assert (site / "aezoo" / "pretrained" / "benchmark.json").is_file()
    # -S: no site module, so no editable-install finder; the venv's packages by path only
    deps = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *deps]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = ("import sys, aezoo, aezoo.pretrained; from aezoo.cli import main; "
            "print('FROM', aezoo.__file__, aezoo.pretrained.__file__); sys.exit(main(['results']))")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    where = next(line for line in out.stdout.splitlines() if line.startswith("FROM")).split()
    assert where[1].startswith(str(site)) and where[2].startswith(str(site))
    assert "No benchmark results yet" not in out.stdout
    assert "| conv_mnist |" in out.stdout and "throughput" in out.stdout
