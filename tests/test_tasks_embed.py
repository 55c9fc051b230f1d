"""aezoo.tasks.embed: 2-d views of codes, trustworthiness and k-NN with known answers."""

import numpy as np
import pytest

from aezoo.tasks import embed


def test_trustworthiness_of_an_isometry_is_one_and_of_a_shuffle_is_low():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    rotation = np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]])
    assert embed.trust(x, x @ rotation.T + 5) == pytest.approx(1.0)
    assert embed.trust(x, rng.permutation(x)) < 0.7


def test_trustworthiness_uses_the_protocols_five_neighbours():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 6))
    low = x[:, :2] + rng.normal(scale=0.3, size=(150, 2))
    assert embed.trust(x, low) == pytest.approx(trustworthiness(x, low, n_neighbors=5))
    assert abs(trustworthiness(x, low, n_neighbors=1) - trustworthiness(x, low, n_neighbors=5)) > 0.005


def test_to_2d_keeps_planar_codes_and_2d_codes():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(300, 2)) * [3, 1]
    codes = np.c_[plane, np.zeros(300)] @ np.linalg.qr(rng.normal(size=(3, 3)))[0]  # a plane in 3-d, rotated
    e_train, (e_other,), method = embed.to_2d(codes, [codes[:50]])
    assert "principal components" in method and e_train.shape == (300, 2)
    assert embed.trust(codes, e_train) == pytest.approx(1.0)  # projecting onto the plane loses nothing
    np.testing.assert_allclose(e_other, e_train[:50])
    same, (_,), method = embed.to_2d(plane, [plane])
    np.testing.assert_array_equal(same, plane)
    assert method == "the codes (2-d)"


def test_knn_2d_separable():
    y = np.arange(100) % 2
    e = np.c_[y * 10.0, np.random.default_rng(0).normal(size=100)]
    assert embed.knn_2d(e, y, e, y) == 1.0


def test_scatter_png(tmp_path):
    path = embed.scatter(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10, tmp_path / "s.png",
                         "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
