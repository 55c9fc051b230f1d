"""Datasets from files in the real formats; never a download."""

import numpy as np
import pytest

from aezoo import datasets
from aezoo.errors import DatasetError
from conftest import write_idx


def test_idx_directory(idx_dir):
    x, y = datasets.load_numpy("fashion_mnist", "train", data_dir=idx_dir)
    assert x.shape == (400, 28, 28, 1) and x.dtype == np.float32 and y.shape == (400,)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    xv, _ = datasets.load_numpy("fashion_mnist", "validation", data_dir=idx_dir)
    xt, _ = datasets.load_numpy("fashion_mnist", "test", data_dir=idx_dir)
    assert len(xv) == 5000 and len(xt) == 100
    raw = datasets.read_idx(idx_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal((xv[:, :, :, 0] * 255).round(), raw[-5000:])  # validation = last 5,000


def test_env_dir_and_tf_data(idx_dir, monkeypatch):
    monkeypatch.setenv("AEZOO_DATA_DIR", str(idx_dir))
    datasets.cache_clear()
    ds = datasets.load("mnist", "test", batch_size=32)
    batches = list(ds.as_numpy_iterator())
    assert [len(b) for b in batches] == [32, 32, 32, 4] and batches[0].shape[1:] == (28, 28, 1)
    assert datasets.source("mnist") == str(idx_dir)
    xy = next(iter(datasets.load("mnist", "test", with_labels=True, batch_size=4)))
    assert xy[1].shape == (4,)


def test_npz_in_keras_layout(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (5010, 28, 28), dtype=np.uint8), "y_train": np.zeros(5010, np.uint8),
              "x_test": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), "y_test": np.zeros(7, np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    x, _ = datasets.load_numpy("mnist", "train", data_dir=tmp_path)
    assert len(x) == 10


def test_truncated_and_bad_files(tmp_path):
    write_idx(tmp_path / "good.gz", np.zeros((3, 4, 4), np.uint8))
    data = (tmp_path / "good.gz").read_bytes()
    import gzip

    raw = gzip.decompress(data)
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        datasets.read_idx(tmp_path / "short")
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(DatasetError, match="bad magic"):
        datasets.read_idx(tmp_path / "junk")
    with pytest.raises(DatasetError, match="not found in"):
        datasets.load_numpy("fashion_mnist", "train", data_dir=tmp_path)


def test_mnist_5k_split_is_fixed_and_balanced():
    parts = {s: datasets.load_numpy("mnist_5k", s) for s in datasets.SPLITS}
    assert {s: len(x) for s, (x, _) in parts.items()} == {"train": 3500, "validation": 500, "test": 1000}
    for s, (_, y) in parts.items():
        assert set(np.bincount(y)) == {len(y) // 10}, s  # every class equally
    flat = {s: {x.tobytes() for x in parts[s][0][:200]} for s in parts}
    assert not flat["train"] & flat["test"]
    x2, _ = datasets.load_numpy("mnist_5k", "test")
    np.testing.assert_array_equal(parts["test"][0], x2)


def test_missing_dataset_offline_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {})
    datasets.cache_clear()
    with pytest.raises(DatasetError, match="not available offline.*apt-get install dataset-fashion-mnist"):
        datasets.load_numpy("fashion_mnist", "train")
    with pytest.raises(DatasetError, match="mnist_5k"):  # never substitutes mnist_5k for mnist
        datasets.load_numpy("mnist", "test")
    datasets.cache_clear()


def test_tfds_path_with_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("AEZOO_OFFLINE", "0")
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {})
    datasets.cache_clear()
    with tfds.testing.mock_data(num_examples=5020):
        x, y = datasets.load_numpy("fashion_mnist", "test")
        assert datasets.source("fashion_mnist") == "tfds"
    assert x.shape == (5020, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
    datasets.cache_clear()


@pytest.mark.parametrize("name, split, message", [("cifar10", "train", "unknown dataset"),
                                                  ("mnist_5k", "dev", "unknown split")])
def test_unknown_names(name, split, message):
    with pytest.raises(DatasetError, match=message):
        datasets.load_numpy(name, split)


def test_users_arrays_are_checked():
    x = datasets.from_array(np.zeros((3, 28, 28, 1)), (28, 28, 1))
    assert x.dtype == np.float32
    with pytest.raises(ValueError, match="integer dtype"):
        datasets.from_array(np.zeros((3, 28, 28, 1), np.uint8))


def test_tfds_download_path_imports(tmp_path):
    """The real download path (not mock_data) reads the builder's code path, which imports
    importlib_resources: a missing dependency fails there, before any network."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("fashion_mnist", data_dir=str(tmp_path))
    assert builder.code_path.exists() and str(builder.code_path).endswith(".py")


@pytest.mark.parametrize("limit", [0, -3, 2.5, True])
def test_bad_limits_are_refused(limit):
    with pytest.raises(DatasetError, match="limit must be a whole number >= 1"):
        datasets.load_numpy("mnist_5k", "test", limit=limit)


def test_cache_is_an_object_keyed_by_the_environment(idx_dir, monkeypatch):
    cache = datasets.DatasetCache(maxsize=2)
    monkeypatch.setattr(datasets, "CACHE", cache)
    datasets.load_numpy("mnist_5k", "test")
    monkeypatch.setenv("AEZOO_DATA_DIR", str(idx_dir))
    assert datasets.source("mnist") == str(idx_dir)
    assert len(cache) == 2
    monkeypatch.setenv("AEZOO_DATA_DIR", str(idx_dir / "elsewhere"))  # another environment: read again
    with pytest.raises(DatasetError):
        datasets.load_numpy("mnist", "test")
    snapshot = cache.copy()
    cache.clear()
    assert len(cache) == 0 and len(snapshot) == 2
