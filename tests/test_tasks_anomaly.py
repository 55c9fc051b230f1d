"""The anomaly task: metrics with known answers, the detector's calibration,
its scores against their definitions, save/load, errors, and the protocols on
small data. Tiny untrained models keep it fast."""

import json
import math

import numpy as np
import pytest
import keras

from conftest import make_images
from aezoo.errors import InputError
from aezoo.models import DenseAutoencoder, VariationalAutoencoder
from aezoo.tasks import anomaly
from aezoo.tasks.anomaly import AnomalyDetector, DetectorError, auroc, fpr_at_tpr


@pytest.fixture(scope="module")
def dense():
    keras.utils.set_random_seed(0)
    return DenseAutoencoder((28, 28, 1), latent_dim=4, hidden=(16,), name="tiny_dense")


@pytest.fixture(scope="module")
def vae():
    keras.utils.set_random_seed(1)
    return VariationalAutoencoder((28, 28, 1), latent_dim=3, body="dense", hidden=(16,), name="tiny_vae")


@pytest.fixture(scope="module")
def normal():
    return make_images(400, seed=0)


# -- metrics ----------------------------------------------------------------------


def test_auroc_known_answers():
    assert auroc([0.1, 0.2, 0.3], [0.4, 0.5]) == 1.0            # separable
    assert auroc([0.4, 0.5], [0.1, 0.2, 0.3]) == 0.0            # separable the wrong way
    assert auroc([1, 2], [1, 2]) == 0.5                          # identical: chance
    assert auroc([0, 2], [1, 3]) == 0.75                         # 3 of 4 pairs ordered


def test_fpr_at_95_tpr_known_answer():
    normal, anomalous = np.arange(100.0), np.arange(50.0, 150.0)
    # flagging 95 of the 100 anomalies needs threshold 55: normals 55..99 (45 of 100) are flagged too
    assert fpr_at_tpr(normal, anomalous) == pytest.approx(0.45)
    assert fpr_at_tpr(normal, anomalous, tpr=0.5) == 0.0         # threshold 100: no normal above
    assert fpr_at_tpr([0.0, 1.0], [2.0, 3.0]) == 0.0             # separable


def test_metric_errors():
    with pytest.raises(InputError, match="both kinds"):
        auroc([], [1.0])
    with pytest.raises(InputError, match="NaN"):
        auroc([np.nan], [1.0])


# -- the detector: separable case, calibration -------------------------------------


@pytest.mark.parametrize("score", ["mse", "latent_mahalanobis", "latent_knn"])
def test_separable_case_gives_auroc_1(dense, normal, score):
    det = AnomalyDetector(dense, score).fit(normal, fpr=0.05)
    held_out = make_images(100, seed=1)
    anomalies = np.ones((20, 28, 28, 1), "float32")               # blank white images: far from every blob
    assert auroc(det.score(held_out), det.score(anomalies)) == 1.0
    assert det.predict(anomalies).all()


def test_threshold_is_the_conformal_quantile(dense, normal):
    det = AnomalyDetector(dense, "mse").fit(normal, fpr=0.1)
    n = len(normal)
    k = math.ceil((n + 1) * 0.9)                                  # 361 of 400
    assert det.calibration["rank"] == k
    assert det.threshold == float(np.sort(det.score(normal))[k - 1])
    assert det.calibration["expected_fpr"] == pytest.approx(1 - k / (n + 1))
    assert np.mean(det.predict(normal)) == pytest.approx((n - k) / n)   # continuous scores: no ties


@pytest.mark.parametrize("score", ["mse", "latent_mahalanobis"])
def test_threshold_hits_its_fpr_on_held_out_data(dense, score):
    # 1,000 calibration images at fpr 0.05: the realized FPR on fresh normal data has
    # mean 1 - k/(n+1) = 0.05 and standard deviation about sqrt(0.05 * 0.95 / 1000) = 0.007;
    # the tolerance is 0.02 (about 3 standard deviations).
    fit = make_images(1000, seed=10) if score != "mse" else None
    det = AnomalyDetector(dense, score).fit(make_images(999, seed=11), fpr=0.05, fit_images=fit)
    held_out = make_images(20000, seed=12)
    assert abs(det.predict(held_out).mean() - 0.05) <= 0.02


def test_latent_score_splits_fit_and_calibration(dense, normal):
    det = AnomalyDetector(dense, "latent_mahalanobis").fit(normal, fpr=0.05, calibration_fraction=0.25)
    assert det.calibration["n_calibration"] == 100 and det.calibration["n_fit"] == 300


# -- the scores against their definitions -------------------------------------------


def _codes(model, x):
    return keras.ops.convert_to_numpy(model.encoder(x, training=False))


def test_mahalanobis_is_the_ledoit_wolf_distance(dense, normal):
    from sklearn.covariance import LedoitWolf

    fit, x = normal[:300], make_images(50, seed=4)
    det = AnomalyDetector(dense, "latent_mahalanobis").fit(normal[300:], fpr=0.05, fit_images=fit)
    lw = LedoitWolf().fit(_codes(dense, fit).astype("float64"))
    assert lw.shrinkage_ > 0
    want = lw.mahalanobis(_codes(dense, x).astype("float64"))   # squared distances
    np.testing.assert_allclose(det.score(x), want, rtol=2e-3)


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_knn_is_the_mean_distance_to_the_nearest_codes(dense, normal, metric):
    from sklearn.covariance import LedoitWolf
    from sklearn.neighbors import NearestNeighbors

    fit, x = normal[:300], make_images(50, seed=4)
    det = AnomalyDetector(dense, "latent_knn", knn_k=3, knn_metric=metric, max_reference=1000)
    det.fit(normal[300:], fpr=0.05, fit_images=fit)
    bank, query = _codes(dense, fit).astype("float64"), _codes(dense, x).astype("float64")
    if metric == "mahalanobis":
        lw = LedoitWolf().fit(bank)
        white = np.linalg.cholesky(np.linalg.inv(lw.covariance_))
        bank, query = (bank - lw.location_) @ white, (query - lw.location_) @ white
    distances, _ = NearestNeighbors(n_neighbors=3).fit(bank).kneighbors(query)
    np.testing.assert_allclose(det.score(x), distances.mean(axis=1), rtol=2e-3, atol=1e-4)


def test_knn_reference_bank_is_capped(dense, normal):
    det = AnomalyDetector(dense, "latent_knn", max_reference=50).fit(normal, fpr=0.05)
    assert det.state["reference"].shape == (50, 4)


def test_elbo_and_iwae_match_their_definitions(vae, normal):
    x = make_images(8, seed=5)
    elbo = AnomalyDetector(vae, "elbo", samples=4).fit(normal, fpr=0.05)
    iwae = AnomalyDetector(vae, "iwae", samples=4).fit(normal, fpr=0.05)
    eps = elbo.state["eps"]
    mean, log_var = (keras.ops.convert_to_numpy(t) for t in vae.posterior_params(x))
    z = mean[None] + np.exp(0.5 * log_var)[None] * eps[:, None]                    # (4, 8, 3)
    recon = keras.ops.convert_to_numpy(vae.decoder(z.reshape(-1, 3)))
    nll = keras.ops.convert_to_numpy(vae.reconstruction_nll(np.concatenate([x] * 4), recon)).reshape(4, 8)
    kl = keras.ops.convert_to_numpy(vae.kl_divergence(mean, log_var))
    np.testing.assert_allclose(elbo.score(x), nll.mean(0) + kl, rtol=1e-4)
    log_p = -0.5 * (z ** 2).sum(-1) - 1.5 * np.log(2 * np.pi)
    log_q = -0.5 * (eps ** 2).sum(-1)[:, None] - 0.5 * log_var.sum(-1)[None] - 1.5 * np.log(2 * np.pi)
    log_w = -nll + log_p - log_q
    want = -(np.log(np.mean(np.exp(log_w - log_w.max(0)), axis=0)) + log_w.max(0))
    np.testing.assert_allclose(iwae.score(x), want, rtol=1e-4)
    assert (iwae.score(x) <= elbo.score(x) + 1e-3).all()          # the IWAE bound is the tighter one


def test_scores_do_not_depend_on_the_batch_size(vae, normal):
    x = make_images(40, seed=6)
    for score in ("mse", "ssim", "elbo"):
        a = AnomalyDetector(vae, score, batch_size=7).fit(normal, fpr=0.05).score(x)
        b = AnomalyDetector(vae, score, batch_size=256).fit(normal, fpr=0.05).score(x)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_scores_a_memory_mapped_array_batch_by_batch(tmp_path, dense, normal):
    det = AnomalyDetector(dense, "mse", batch_size=64).fit(normal, fpr=0.05)
    x = make_images(300, seed=17)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    np.testing.assert_array_equal(det.score(mapped), det.score(x))
    bad = x.copy()
    bad[250] = np.nan                                      # in the last batch: still found
    with pytest.raises(InputError, match="NaN"):
        det.score(bad)


def test_ssim_score_is_one_minus_tf_ssim(dense, normal):
    import tensorflow as tf

    x = make_images(5, seed=7)
    det = AnomalyDetector(dense, "ssim").fit(normal, fpr=0.05)
    recon = dense.reconstruct(x)
    want = 1 - tf.image.ssim(tf.constant(x), recon, max_val=1.0).numpy()
    np.testing.assert_allclose(det.score(x), want, rtol=1e-5, atol=1e-6)


# -- the graph and its exports ----------------------------------------------------------


def test_graph_fn_agrees_with_score_and_predict(vae, normal):
    x = np.concatenate([make_images(20, seed=13), 1 - make_images(10, seed=14)])
    for score in ("ssim", "latent_knn", "elbo"):
        det = AnomalyDetector(vae, score, samples=2).fit(normal, fpr=0.1)
        out = det.graph_fn()(keras.ops.convert_to_tensor(x))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out["score"]), det.score(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["is_anomaly"]), det.predict(x))


@pytest.mark.parametrize("fmt, score", [("savedmodel", "latent_knn"), ("tflite", "ssim"), ("onnx", "iwae")])
def test_exported_detect_signature_agrees_with_the_detector(tmp_path, vae, normal, fmt, score):
    det = AnomalyDetector(vae, score, samples=2).fit(normal, fpr=0.1)
    x = np.concatenate([make_images(40, seed=15), 1 - make_images(20, seed=16)])
    report = det.export(tmp_path / f"detector.{fmt}", format=fmt, verify_data=x)
    assert report["passed"]
    assert report["detector"]["prediction_mismatches"] == 0
    assert report["detector"]["max_abs_score_diff"] <= 1e-4 * max(1.0, float(np.abs(det.score(x)).max()))
    assert 0 < det.predict(x).sum() < len(x)          # both outcomes occur: the comparison means something
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(tmp_path / "detector.savedmodel"))
        assert "detect" in loaded.signatures and "reconstruct" in loaded.signatures


# -- save / load ----------------------------------------------------------------------


@pytest.mark.parametrize("score", ["latent_knn", "latent_mahalanobis", "iwae", "ssim"])
def test_save_load_round_trips(tmp_path, vae, normal, score):
    det = AnomalyDetector(vae, score, samples=3).fit(normal, fpr=0.02)
    path = det.save(tmp_path / "vae.anomaly.json")
    text = open(path).read()
    assert json.loads(text)["format"] == "aezoo.AnomalyDetector"
    again = AnomalyDetector.load(path, model=vae)
    x = np.concatenate([make_images(30, seed=8), 1 - make_images(10, seed=9)])
    assert again.threshold == det.threshold and again.score_name == score
    np.testing.assert_array_equal(again.score(x), det.score(x))
    np.testing.assert_array_equal(again.predict(x), det.predict(x))
    for key, value in det.state.items():
        np.testing.assert_array_equal(again.state[key], value)


def test_detector_path_sits_beside_the_weights():
    assert anomaly.detector_path("runs/a/conv_mnist.weights.h5") == "runs/a/conv_mnist.anomaly.json"


def test_load_checks_the_model(tmp_path, dense, vae, normal):
    path = AnomalyDetector(dense, "mse").fit(normal, fpr=0.05).save(tmp_path / "d.json")
    with pytest.raises(DetectorError, match="fitted for a model"):
        AnomalyDetector.load(path, model=vae)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(DetectorError, match="not an aezoo anomaly detector"):
        AnomalyDetector.load(tmp_path / "bad.json", model=dense)


# -- errors ---------------------------------------------------------------------------


def test_errors(dense, normal):
    with pytest.raises(DetectorError, match="unknown score 'psnr'"):
        AnomalyDetector(dense, "psnr")
    with pytest.raises(DetectorError, match="not available .* need a VAE"):
        AnomalyDetector(dense, "elbo")
    with pytest.raises(DetectorError, match="aezoo autoencoder"):
        AnomalyDetector("conv_mnist", "mse")
    det = AnomalyDetector(dense, "latent_mahalanobis")
    with pytest.raises(DetectorError, match="fit"):
        det.predict(normal[:2])
    with pytest.raises(DetectorError, match="fit"):
        det.score(normal[:2])
    with pytest.raises(DetectorError, match="fit"):
        AnomalyDetector(dense, "mse").predict(normal[:2])
    for fpr in (0, 1, -0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(DetectorError, match="fpr"):
            AnomalyDetector(dense, "mse").fit(normal, fpr=fpr)
    with pytest.raises(DetectorError, match="at least 99"):
        AnomalyDetector(dense, "mse").fit(normal[:50], fpr=0.01)
    with pytest.raises(DetectorError, match="too few normal images to fit"):
        AnomalyDetector(dense, "latent_knn").fit(normal[:110], fpr=0.05, fit_images=normal[:5])
    with pytest.raises(InputError, match="shape"):
        AnomalyDetector(dense, "mse").fit(np.zeros((200, 32, 32, 1), "float32"), fpr=0.05)
    with pytest.raises(InputError, match="batch axis"):
        AnomalyDetector(dense, "mse").fit(normal, fpr=0.05).score(normal[0])
    with pytest.raises(InputError, match="integer"):
        AnomalyDetector(dense, "mse").fit((normal * 255).astype("uint8"), fpr=0.05)


def test_default_score_comes_from_the_results(dense):
    dense.zoo_version = 2
    results = {"tiny_dense": {"2": {"default_score": "latent_knn"}},
               "oneclass": {"families": {"dense": {"default_score": "ssim"}}}}
    assert anomaly.default_score(dense, results)[0] == "latent_knn"
    assert anomaly.default_score(dense, {"oneclass": results["oneclass"]})[0] == "ssim"
    assert anomaly.default_score(dense, {})[0] == "mse"
    del dense.zoo_version


# -- the protocols on small data ---------------------------------------------------------


def _fake_datasets():
    """Stand-ins for the dataset files: "fashion_mnist" = smooth blobs labelled 0-9 with class 1 the
    bright inverted blobs; "mnist_5k" = inverted blobs (pixel-space separable from the blobs)."""
    sets = {}
    for dataset, sizes in (("fashion_mnist", (300, 200, 200)), ("mnist_5k", (150, 100, 100))):
        sets[dataset] = {}
        for i, (split, n) in enumerate(zip(("train", "validation", "test"), sizes)):
            x = make_images(n, seed=20 + i + (10 if dataset == "mnist_5k" else 0))
            y = np.arange(n) % 10
            if dataset == "mnist_5k":
                x = 1 - x
            else:
                x[y == 1] = 1 - x[y == 1]
            sets[dataset][split] = (x, y)
    return sets


def test_ood_protocol_quick_on_a_pretrained_entry(tmp_path):
    results = anomaly.run(names=["dense_mnist:1"], quick=True, progress=False, data=_fake_datasets(),
                          scores=["mse", "latent_mahalanobis"])
    entry = results["entries"]["dense_mnist"]
    assert entry["version"] == 1 and entry["normal"] == "mnist_5k:test" and entry["anomalous"] == "fashion_mnist:test"
    assert set(entry["scores"]) == {"mse", "latent_mahalanobis"}
    assert entry["default_score"] == max(entry["scores"], key=lambda s: entry["scores"][s]["val_auroc"])
    assert 0 <= entry["scores"]["mse"]["auroc"] <= 1
    # inverted blobs vs (mostly) blobs: the raw-pixel kNN baseline separates them completely
    base = results["baselines"]["mnist_5k"]
    assert set(base) == {"pixel_knn", "pca_reconstruction (32 components)"}
    assert base["pixel_knn"]["auroc"] > 0.85
    assert "`dense_mnist` v1" in anomaly.table(results)
    assert anomaly.card_summary(entry)["default_score"] == entry["default_score"]
    json.dumps(results)
    assert [p.name for p in map(__import__("pathlib").Path, anomaly.figures(results, tmp_path))] == ["anomaly_ood.png"]


def test_ood_protocol_one_version_per_name():
    with pytest.raises(DetectorError, match="one version"):
        anomaly.run(names=["dense_mnist:1", "dense_mnist:1"], models={}, quick=True, progress=False,
                    data=_fake_datasets())


def test_oneclass_protocol_quick(tmp_path, monkeypatch):
    recipes = anomaly.oneclass_recipes()
    dense = recipes["families"]["dense"]
    recipes["families"] = {"dense": {**dense, "config": {**dense["config"], "hidden": [16], "latent_dim": 4}}}
    run = dict(protocol="oneclass", classes=[1], quick=True, progress=False, recipes=recipes, data=_fake_datasets(),
               output_dir=tmp_path / "runs")
    results = anomaly.run(**run)
    slot = results["oneclass"]["families"]["dense"]
    assert slot["epochs"] == 1 and slot["classes"]["1"]["train_images"] == 30
    assert slot["default_score"] == max(slot["val_mean"], key=slot["val_mean"].get)
    # class 1 (inverted blobs) against blobs: separable in pixel space
    assert results["oneclass"]["baselines"]["pixel_knn"]["classes"]["1"]["test_auroc"] == 1.0
    assert "One-class Fashion-MNIST" in anomaly.table(results)
    json.dumps(results)
    # a second run with the same recipe resumes from the finished (family, class) records: no training
    monkeypatch.setattr(anomaly, "train_oneclass", lambda *a, **k: pytest.fail("retrained a finished class"))
    assert anomaly.run(**run)["oneclass"] == results["oneclass"]
    written = anomaly.figures(results, tmp_path)
    assert [p.name for p in map(__import__("pathlib").Path, written)] == ["anomaly_oneclass.png"]
    # stopped after training, before scoring: the finished run is scored, not refused nor retrained
    (tmp_path / "runs" / "dense_1.result.json").unlink()
    monkeypatch.undo()
    import aezoo

    monkeypatch.setattr(aezoo, "train", lambda *a, **k: pytest.fail("retrained a finished run"))
    again = anomaly.run(**run)["oneclass"]["families"]["dense"]
    assert again["classes"]["1"]["scores"] == slot["classes"]["1"]["scores"]
    assert again["classes"]["1"]["resumed"] and again["cpu_seconds_models"] == 0


def test_defaults_are_chosen_on_validation_never_on_test():
    assert anomaly.select_default({"mse": 0.80, "latent_knn": 0.90, "ssim": 0.90}) == "ssim"   # tie: earlier
    # per class: mse is better on validation, latent_knn on test -> the family default is mse
    record = lambda mse, knn: {"scores": {"mse": {"val_auroc": mse[0], "test_auroc": mse[1]},  # noqa: E731
                                          "latent_knn": {"val_auroc": knn[0], "test_auroc": knn[1]}},
                               "seconds": 1.0, "cpu_seconds": 2.0, "epochs": 3}
    results = {"families": {"conv": {"classes": {"0": record((0.9, 0.7), (0.8, 0.95)),
                                                 "1": record((0.8, 0.7), (0.7, 0.95))}},
                            "dense": {"classes": {"0": record((0.7, 0.99), (0.6, 0.99)),
                                                  "1": record((0.7, 0.99), (0.6, 0.99))}}},
               "baselines": {}, "classes": [0, 1]}
    out = anomaly.summarize_oneclass(results, {"families": {"conv": {}, "dense": {}}})
    conv = out["families"]["conv"]
    assert conv["default_score"] == "mse" and conv["default_mean_auroc"] == 0.7
    assert conv["val_mean"] == {"mse": 0.85, "latent_knn": 0.75} and conv["cpu_seconds"] == 4.0
    assert out["best_family"]["family"] == "conv"        # dense is better on test, conv on validation


def test_run_rejects_unknown_protocol_and_options():
    with pytest.raises(DetectorError, match="protocol"):
        anomaly.run(protocol="cifar")
    with pytest.raises(DetectorError, match="option"):
        anomaly.run(names=["dense_mnist"], quick=True, classes=[1])
