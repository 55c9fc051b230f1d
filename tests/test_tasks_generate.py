"""aezoo.tasks.generate: Fréchet distance, precision/recall, samplers, the hash-checked feature classifier."""

import numpy as np
import pytest

from aezoo.errors import WeightsError
from aezoo.tasks import generate
from tests.conftest import make_images


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2000, 5))
    assert generate.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([3.0, 0, 0, 0, 4.0])
    assert generate.frechet_distance(f, f + shift) == pytest.approx(25.0, rel=1e-6)  # same covariance: ||Δμ||²
    dead = np.c_[f, np.zeros(len(f))]  # a unit that never fires changes nothing
    assert generate.frechet_distance(dead, dead + np.r_[shift, 0]) == pytest.approx(25.0, rel=1e-6)
    # N(m, S) vs N(2m, 4S): ||m||² + tr(S + 4S - 2 (4S²)^½) = ||m||² + tr(S)
    expected = np.sum(f.mean(axis=0) ** 2) + np.trace(np.cov(f, rowvar=False))
    assert generate.frechet_distance(f, 2 * f) == pytest.approx(expected, rel=1e-6)


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 4))
    assert generate.precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}
    assert generate.precision_recall(real, real + 100) == {"precision": 0.0, "recall": 0.0}
    collapsed = np.repeat(real[:1], 300, axis=0)  # mode collapse: precise, no recall
    pr = generate.precision_recall(real, collapsed)
    assert pr["precision"] == 1.0 and pr["recall"] < 0.05


def test_pca_gaussian_sampler():
    x = make_images(100)
    s = generate.pca_gaussian_samples(x, 7, 4, seed=0)
    assert s.shape == (7, 28, 28, 1) and 0 <= s.min() <= s.max() <= 1
    np.testing.assert_array_equal(s, generate.pca_gaussian_samples(x, 7, 4, seed=0))


def test_classifier_is_trained_recorded_and_hash_checked(tmp_path):
    y = np.arange(60) % 10
    data = {"mnist_5k": {s: (make_images(60, seed=i), y) for i, s in enumerate(("train", "validation", "test"))}}
    record = generate.train_classifier("mnist_5k", tmp_path, progress=False, data=data,
                                       recipe={"epochs": 1, "batch_size": 30})
    assert 0 <= record["test_accuracy"] <= 1 and record["file"] == "classifier_mnist_5k.weights.h5"
    assert generate.classifier_record("mnist_5k", tmp_path)["sha256"] == record["sha256"]
    extractor = generate.load_classifier("mnist_5k", tmp_path)
    assert generate.features(extractor, make_images(3)).shape == (3, 128)
    with open(tmp_path / record["file"], "r+b") as f:
        f.seek(-10, 2)
        f.write(b"corrupted!")
    with pytest.raises(WeightsError, match="sha256"):
        generate.load_classifier("mnist_5k", tmp_path)
    with pytest.raises(WeightsError, match="train-classifier fashion_mnist"):
        generate.load_classifier("fashion_mnist", tmp_path)
