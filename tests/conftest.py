"""Shared fixtures. Tests never touch the network: AEZOO_OFFLINE=1 and a
private AEZOO_HOME for every test."""

import gzip
import os
import struct

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("AEZOO_OFFLINE", "1")
    monkeypatch.setenv("AEZOO_HOME", str(tmp_path / "aezoo_home"))
    monkeypatch.delenv("AEZOO_DATA_DIR", raising=False)
    monkeypatch.delenv("AEZOO_WEIGHTS_URL", raising=False)


@pytest.fixture(autouse=True)
def _private_zoo():
    """Every test registers into its own copy of the zoo: no entry leaks into the next test."""
    from aezoo import registry

    with registry.use(registry.current().copy()) as zoo:
        yield zoo


def write_idx(path, array):
    """Write a uint8 array in the IDX format (gzipped if path ends in .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def make_images(n, seed=0, size=28):
    """Smooth random blobs in [0, 1]: learnable structure, not white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    cx, cy = rng.uniform(0.25, 0.75, (2, n, 1, 1))
    r = rng.uniform(0.1, 0.3, (n, 1, 1))
    img = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2)))
    return img[..., None].astype("float32")


@pytest.fixture(scope="session")
def images():
    return make_images(256)


@pytest.fixture
def idx_dir(tmp_path):
    """Fashion-MNIST-format IDX files (gzipped): 5,400 train (400 train + 5,000 validation), 100 test."""
    d = tmp_path / "idx"
    d.mkdir()
    rng = np.random.default_rng(1)
    train = (make_images(5400, seed=2)[..., 0] * 255).astype(np.uint8)
    test = (make_images(100, seed=3)[..., 0] * 255).astype(np.uint8)
    write_idx(d / "train-images-idx3-ubyte.gz", train)
    write_idx(d / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, len(train)))
    write_idx(d / "t10k-images-idx3-ubyte.gz", test)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, len(test)))
    return d
