"""aezoo.tasks.features: linear probe and k-NN on known-answer features; balanced label draws; few-label runs."""

import numpy as np
import pytest

from aezoo.errors import InputError
from aezoo.tasks import features
from tests.conftest import make_images


def separable(n, dims=8, seed=0, classes=10):
    """Codes of `classes` well separated Gaussian clusters."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 10, (classes, dims))
    y = np.arange(n) % classes
    return centers[y] + rng.normal(0, 1, (n, dims)), y


def test_probe_on_separable_codes_is_accurate_and_chance_on_noise():
    (a, ya), (b, yb), (c, yc) = separable(500, seed=0), separable(200, seed=1), separable(300, seed=2)
    probe = features.linear_probe(a, ya, b, yb, c, yc)
    assert probe["accuracy"] >= 0.99 and probe["C"] in features.C_GRID
    assert set(probe["validation"]) == {str(C) for C in features.C_GRID}
    assert features.knn_accuracy(a, ya, c, yc) >= 0.99
    rng = np.random.default_rng(0)
    noise = features.linear_probe(rng.normal(size=(500, 8)), ya, rng.normal(size=(200, 8)), yb,
                                  rng.normal(size=(300, 8)), yc)
    assert noise["accuracy"] < 0.25  # 10 classes: chance is 0.1


def test_probe_chooses_c_on_validation_and_scores_the_test_split():
    (a, ya), (b, yb), (c, yc) = separable(500, seed=0), separable(200, seed=1), separable(300, seed=2)
    shuffled = np.random.default_rng(0).permutation(yc)  # test labels unrelated to the features
    probe = features.linear_probe(a, ya, b, yb, c, shuffled)
    assert min(probe["validation"].values()) >= 0.99 and probe["accuracy"] < 0.25


def test_probe_picks_the_c_with_the_best_validation_accuracy(monkeypatch):
    import sklearn.linear_model

    val = {0.01: 0.5, 0.1: 0.9, 1.0: 0.6, 10.0: 0.4}   # validation prefers C=0.1 ...
    test = {0.01: 0.95, 0.1: 0.7, 1.0: 0.8, 10.0: 0.99}  # ... the test split would prefer C=10

    class Scripted:
        def __init__(self, **kwargs):
            self.C, self.n_iter_ = None, [1]

        def set_params(self, C):
            self.C = C
            return self

        def fit(self, x, y):
            return self

        def score(self, x, y):
            return (val if len(x) == 200 else test)[self.C]

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", Scripted)
    (a, ya), (b, yb), (c, yc) = separable(500, seed=0), separable(200, seed=1), separable(300, seed=2)
    probe = features.linear_probe(a, ya, b, yb, c, yc)
    assert probe["C"] == 0.1 and probe["accuracy"] == 0.7


def test_balanced_draw():
    y = np.repeat(np.arange(10), 30)
    idx = features.balanced_draw(y, 100, 0)
    assert len(set(idx)) == 100 and np.all(np.bincount(y[idx]) == 10)
    np.testing.assert_array_equal(idx, features.balanced_draw(y, 100, 0))
    assert not np.array_equal(idx, features.balanced_draw(y, 100, 1))
    with pytest.raises(InputError, match="multiple"):
        features.balanced_draw(y, 105, 0)
    with pytest.raises(InputError, match="per class"):
        features.balanced_draw(y, 1000, 0)


def test_frozen_head_is_a_converged_logistic_regression():
    (a, ya), (c, yc) = separable(100, seed=0), separable(300, seed=2)
    head = features._fit_head(features._head(8, 10, a), a, ya)
    assert features._accuracy(head, c.astype("float32"), yc) >= 0.99


def test_few_label_runs_and_restores_the_encoder():
    import aezoo

    model = aezoo.DenseAutoencoder((28, 28, 1), latent_dim=4, hidden=[8])
    before = [w.copy() for w in model.encoder.get_weights()]
    x = make_images(60)
    y = np.arange(60) % 10
    fresh = lambda seed: aezoo.DenseAutoencoder((28, 28, 1), latent_dim=4, hidden=[8])  # noqa: E731
    out = features.few_label(model, fresh, x, y, x[:20], y[:20], labels=(20,), draws=1, finetune_steps=2,
                             scratch_steps=2)
    runs = out["20"]
    assert set(runs) == {"frozen", "finetuned", "scratch"}
    for r in runs.values():
        assert len(r["runs"]) == 1 and r["mean"] == pytest.approx(np.mean(r["runs"]))
        assert all(0 <= a <= 1 for a in r["runs"])
    for w0, w1 in zip(before, model.encoder.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_table_and_card():
    results = {"baselines": {"mnist_5k": {"images": {"train": 10, "validation": 5, "test": 5},
                                          "pixels": {"dim": 784, "probe": {"accuracy": 0.8, "C": 0.1},
                                                     "knn_accuracy": 0.7},
                                          "pca": {"4": {"probe": {"accuracy": 0.6, "C": 1.0}, "knn_accuracy": 0.5}}}},
               "e": {"1": {"version": 1, "dataset": "mnist_5k", "latent_dim": 4, "probe": {"accuracy": 0.9, "C": 1.0},
                           "knn_accuracy": 0.85, "pca_probe_accuracy": 0.6, "pca_knn_accuracy": 0.5,
                           "pixels_probe_accuracy": 0.8,
                           "few_labels": {"100": {k: {"mean": 0.5, "std": 0.01, "runs": [0.49, 0.51]}
                                                  for k in ("frozen", "finetuned", "scratch")}}}}}
    text = features.table(results)
    assert "| raw pixels | 784 | 80.0 (0.1) | 70.0 |" in text and "| PCA-4 | 4 | 60.0 (1) | 50.0 |" in text
    assert "| e v1 | 4 | 90.0 (1) | 85.0 |" in text and "| e v1 | 100 | 50.0 ± 1.0 |" in text
    card = features.card_summary(results["e"]["1"])
    assert card["linear_probe_accuracy"] == 0.9 and card["labels_100"]["scratch"] == 0.5
