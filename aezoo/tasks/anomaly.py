"""Anomaly detection with aezoo autoencoders: `AnomalyDetector`, and the
"anomaly" task (issue 8) with its two protocols.

    >>> import aezoo
    >>> model = aezoo.load("conv_fashion_mnist")
    >>> det = aezoo.AnomalyDetector(model, score="auto")
    >>> det.fit(normal_images, fpr=0.01)      # held-out images of the normal kind
    >>> det.score(x)                          # higher = more anomalous
    >>> det.predict(x)                        # bool: score > det.threshold
    >>> det.save("conv_fashion_mnist.anomaly.json")
    >>> det = aezoo.AnomalyDetector.load("conv_fashion_mnist.anomaly.json", model=model)

Scores (`SCORES`; higher = more anomalous):

- ``mse``: mean squared reconstruction error over pixels.
- ``ssim``: 1 - SSIM(image, reconstruction): `tf.image.ssim`'s definition (peak 1,
  11x11 Gaussian window, sigma 1.5; a smaller window on images under 11 px),
  computed in keras.ops (tested equal to `tf.image.ssim`).
- ``latent_mahalanobis``: squared Mahalanobis distance of the code
  (`encode(x)`; a VAE's posterior mean) to a Gaussian fitted on the codes of
  normal images, with the Ledoit-Wolf shrinkage covariance (scikit-learn).
- ``latent_knn``: mean distance of the code to its `knn_k` nearest codes of
  normal images (the reference bank; at most `max_reference` codes, a seeded
  random subset), measured after whitening with the same Ledoit-Wolf Gaussian
  (``knn_metric="mahalanobis"``, the default) or plainly (``"euclidean"``).
- ``elbo`` (VAEs): the negative ELBO in nats, -E_q[log p(x|z)] + KL(q(z|x) || p(z)),
  the expectation over `samples` draws of the noise that are fixed when the
  detector is made (common random numbers): the score is a deterministic
  function of the image, in Keras and in every exported artifact.
- ``iwae`` (VAEs): the negative importance-weighted bound (Burda et al. 2016)
  on log p(x) with the same `samples` draws.

Calibration (`fit`): scores that need fitting (the latent ones) fit their
Gaussian / reference bank on one part of the normal images (or on
`fit_images`), and the threshold is set on the others: with n calibration
scores sorted ascending, the threshold is the k-th smallest, k =
ceil((n + 1) (1 - fpr)) (the split-conformal quantile). For a new normal image
exchangeable with the calibration ones, P(score > threshold) = 1 - k / (n + 1)
for continuous scores, which is <= fpr and > fpr - 1/(n + 1); so `fit` needs
n >= (1 - fpr) / fpr calibration images (99 for fpr = 0.01).

Saving: `save(path)` writes JSON (no pickle): the score, its options, the
fitted arrays as lists of float32 values (exact round trip), the threshold,
and the model's identity (zoo name, version, family, shapes). Keep it beside
the model's weights, e.g. ``NAME.weights.h5`` and ``NAME.anomaly.json``
(`detector_path(weights_path)` gives that name), and load both:
``AnomalyDetector.load(detector_path(w), model=aezoo.load(NAME, weights=w))``.
With `model=None`, `load` loads the zoo entry named in the file.

Export: `graph_fn()` is the detector as one deterministic function of the
images (keras.ops only; TFLite builtin ops, ONNX standard ops), returning
``score`` and ``is_anomaly`` (score > threshold, the threshold baked in).
`aezoo.export.export(model, path, detector=det)` adds it as the ``detect``
signature (SavedModel, TFLite) or as the ``score`` / ``is_anomaly`` outputs
(ONNX, next to the reconstruction) and verifies it against `score`/`predict`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from aezoo.errors import AezooError, InputError

TASK = "anomaly"
SCORES = ("mse", "ssim", "latent_mahalanobis", "latent_knn", "elbo", "iwae")
FITTED_SCORES = ("latent_mahalanobis", "latent_knn")   # need a density fitted on normal codes
VAE_SCORES = ("elbo", "iwae")
KNN_METRICS = ("mahalanobis", "euclidean")
FORMAT = "aezoo.AnomalyDetector"
FORMAT_VERSION = 1
MIN_FIT = 10                 # normal images needed to fit a latent density
DEFAULT_FALLBACK_SCORE = "mse"
DETECTOR_SUFFIX = ".anomaly.json"


class DetectorError(AezooError):
    """An anomaly detector used the wrong way (unknown score, not fitted, too few images, ...)."""


# --------------------------------------------------------------------------- metrics


def auroc(normal_scores: ArrayLike, anomaly_scores: ArrayLike) -> float:
    """Area under the ROC curve with anomalies as the positive class.

    The probability that a random anomaly scores higher than a random normal
    image (ties count one half); scikit-learn's `roc_auc_score`.

    Args:
        normal_scores: scores of normal images, shape (n,).
        anomaly_scores: scores of anomalies, shape (m,).

    Returns:
        AUROC in [0, 1] (0.5 = chance, 1 = every anomaly above every normal image).

    Example:
        >>> auroc([0.1, 0.2], [0.3, 0.4])
        1.0
    """
    from sklearn.metrics import roc_auc_score

    normal, anomal = _score_arrays(normal_scores, anomaly_scores)
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomal))]
    return float(roc_auc_score(y, np.r_[normal, anomal]))


def fpr_at_tpr(normal_scores: ArrayLike, anomaly_scores: ArrayLike, tpr: float = 0.95) -> float:
    """False-positive rate at a true-positive rate (FPR95 for tpr=0.95), anomalies positive.

    The fraction of normal images flagged when the threshold is the highest
    one that still flags at least `tpr` of the anomalies (the convention of
    Hendrycks et al. 2019, "Deep anomaly detection with outlier exposure").

    Args:
        normal_scores: scores of normal images.
        anomaly_scores: scores of anomalies.
        tpr: the true-positive rate, in (0, 1].

    Returns:
        FPR in [0, 1] (lower is better).

    Example:
        >>> fpr_at_tpr(np.arange(100), np.arange(50, 150))   # 95th anomaly from the top scores 55
        0.45
    """
    from sklearn.metrics import roc_curve

    normal, anomal = _score_arrays(normal_scores, anomaly_scores)
    if not 0 < float(tpr) <= 1:
        raise InputError(f"tpr must be in (0, 1]; got {tpr}.")
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomal))]
    fprs, tprs, _ = roc_curve(y, np.r_[normal, anomal], drop_intermediate=False)
    return float(fprs[np.searchsorted(tprs, float(tpr) - 1e-12, side="left")])


def _score_arrays(normal, anomal):
    normal = np.asarray(normal, dtype="float64").ravel()
    anomal = np.asarray(anomal, dtype="float64").ravel()
    if not len(normal) or not len(anomal):
        raise InputError(f"need scores of both kinds; got {len(normal)} normal and {len(anomal)} anomalous.")
    if not (np.isfinite(normal).all() and np.isfinite(anomal).all()):
        raise InputError("scores contain NaN or infinity.")
    return normal, anomal


def conformal_rank(n: int, fpr: float) -> int:
    """The rank k (1-based) of the calibration score used as threshold: ceil((n + 1)(1 - fpr)).

    Raises DetectorError when n is too small for `fpr` (k > n).
    """
    k = math.ceil((n + 1) * (1.0 - fpr) - 1e-9)
    if k > n:
        raise DetectorError(
            f"too few normal images to calibrate fpr={fpr:g}: {n} calibration images, but the (1 - fpr) "
            f"quantile needs at least {min_calibration(fpr)}. Pass more normal images or a larger fpr."
        )
    return max(k, 1)


def min_calibration(fpr: float) -> int:
    """The fewest calibration images that `fit` accepts for `fpr`: ceil((1 - fpr) / fpr)."""
    return max(1, math.ceil((1.0 - fpr) / fpr - 1e-9))


# --------------------------------------------------------------------------- the detector


def _is_vae(model):
    """A model with a Gaussian posterior and a likelihood (the VAE family's interface)."""
    return all(callable(getattr(model, a, None)) for a in ("posterior_params", "reconstruction_nll", "kl_divergence"))


def _has_reconstruction(model):
    return (callable(getattr(model, "infer", None)) or getattr(model, "network", None) is not None
            or getattr(model, "decoder", None) is not None)


def available_scores(model: Any) -> list[str]:
    """The scores that `model` supports, in `SCORES` order.

    Args:
        model: an aezoo autoencoder.

    Returns:
        A list of score names: every family has mse, ssim and the latent
        scores; VAEs also elbo and iwae.

    Example:
        >>> available_scores(aezoo.load("vae_mnist"))
        ['mse', 'ssim', 'latent_mahalanobis', 'latent_knn', 'elbo', 'iwae']
    """
    out = []
    for name in SCORES:
        if name in VAE_SCORES and not _is_vae(model):
            continue
        if name in ("mse", "ssim") and not _has_reconstruction(model):
            continue
        out.append(name)
    return out


def _check_model(model):
    from aezoo.models.base import Autoencoder

    if not isinstance(model, Autoencoder):
        raise DetectorError(
            f"AnomalyDetector takes an aezoo autoencoder (e.g. aezoo.load(name)); got {type(model).__name__}."
        )
    return model


def _tasks_file():
    from importlib import resources

    try:
        return resources.files("aezoo.pretrained").joinpath("tasks", "anomaly.json")
    except (ModuleNotFoundError, TypeError):
        return None


def _read_results():
    path = _tasks_file()
    try:
        return json.loads(path.read_text()) if path is not None and path.is_file() else {}
    except (OSError, ValueError):
        return {}


def default_score(model: Any, results: dict | None = None) -> tuple[str, str]:
    """The score `score="auto"` picks for `model`, and where that choice comes from.

    In order: the zoo entry's measured default (pretrained/tasks/anomaly.json,
    protocol 2, chosen on validation splits), else the family's default from
    the one-class protocol (chosen on the validation split), else "mse".

    Args:
        model: an aezoo autoencoder (a zoo model carries `name` and `zoo_version`).
        results: the task results dict (default: the bundled file).

    Returns:
        (score name, source description).

    Example:
        >>> default_score(aezoo.load("conv_mnist"))
        ('latent_mahalanobis', 'pretrained/tasks/anomaly.json: conv_mnist v1 (protocol 2, validation)')
    """
    results = _read_results() if results is None else results
    available = available_scores(model)
    name, version = getattr(model, "name", None), getattr(model, "zoo_version", None)
    entry = results.get(name) if isinstance(results.get(name), dict) else None
    if entry and version is not None and isinstance(entry.get(str(version)), dict):
        choice = entry[str(version)].get("default_score")
        if choice in available:
            return choice, f"pretrained/tasks/anomaly.json: {name} v{version} (protocol 2, validation)"
    family = getattr(model, "family", None)
    oneclass = (results.get("oneclass") or {}).get("families", {}).get(family, {})
    choice = oneclass.get("default_score")
    if choice in available:
        return choice, f"pretrained/tasks/anomaly.json: one-class protocol, family {family} (validation)"
    return DEFAULT_FALLBACK_SCORE, "no measured default for this model: mse"


def _closure(fn):
    def call(*args):
        return fn(*args)

    return call


def _as_float(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise DetectorError(f"{what} must be a number; got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise DetectorError(f"{what} must be finite; got {value}.")
    return value


def _positive_int(value, what, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise DetectorError(f"{what} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


class AnomalyDetector:
    """An anomaly detector on top of an aezoo autoencoder: a score and a calibrated threshold.

    Args:
        model: an aezoo autoencoder (any family).
        score: one of `SCORES`, or "auto" (the score measured best for this
            model, see `default_score`). `available_scores(model)` lists the
            ones this model has.
        batch_size: images per forward pass in `score` (memory stays flat).
        knn_k: neighbours for "latent_knn".
        knn_metric: "mahalanobis" (whiten codes with the fitted Ledoit-Wolf
            Gaussian first) or "euclidean", for "latent_knn".
        max_reference: at most this many normal codes are kept as the
            "latent_knn" reference bank (a seeded random subset).
        samples: noise draws for "elbo" / "iwae" (fixed at construction).
        seed: seed of those draws, of the fit/calibration split and of the
            reference subset.

    Attributes:
        score_name: the score in use (after resolving "auto").
        threshold: the calibrated threshold (None before `fit`).
        fpr: the false-positive rate `fit` was asked for.

    Example:
        >>> det = AnomalyDetector(aezoo.load("conv_mnist"), score="latent_mahalanobis")
        >>> det.fit(x_val, fpr=0.01).predict(x_test)
    """

    def __init__(self, model: Any, score: str = "auto", *, batch_size: int = 256, knn_k: int = 5,
                 knn_metric: str = "mahalanobis", max_reference: int = 4096, samples: int = 8, seed: int = 0):
        self.model = _check_model(model)
        available = available_scores(model)
        self.auto_source = None
        if score == "auto":
            score, self.auto_source = default_score(model)
        if score not in SCORES:
            raise DetectorError(f"unknown score {score!r}; expected 'auto' or one of {', '.join(SCORES)}.")
        if score not in available:
            raise DetectorError(
                f"score {score!r} is not available for {type(model).__name__} ({getattr(model, 'family', '?')} "
                f"family); it has {', '.join(available)}."
                + (" elbo and iwae need a VAE." if score in VAE_SCORES else "")
            )
        if knn_metric not in KNN_METRICS:
            raise DetectorError(f"unknown knn_metric {knn_metric!r}; expected one of {', '.join(KNN_METRICS)}.")
        self.score_name = score
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.knn_k = _positive_int(knn_k, "knn_k")
        self.knn_metric = knn_metric
        self.max_reference = _positive_int(max_reference, "max_reference", minimum=self.knn_k)
        self.samples = _positive_int(samples, "samples")
        self.seed = _positive_int(seed, "seed", minimum=0)
        self.state = {}
        if score in VAE_SCORES:
            rng = np.random.default_rng(self.seed)
            self.state["eps"] = rng.standard_normal((self.samples, model.latent_dim)).astype("float32")
        self.threshold = None
        self.fpr = None
        self.calibration = None
        self._compiled = None
        self._cache = None      # protocol runs share model outputs between detectors (see _cached_part)

    # -- options and state --------------------------------------------------
    def options(self) -> dict:
        """The constructor options (JSON-ready)."""
        return {"batch_size": self.batch_size, "knn_k": self.knn_k, "knn_metric": self.knn_metric,
                "max_reference": self.max_reference, "samples": self.samples, "seed": self.seed}

    @property
    def needs_fit(self) -> bool:
        """True for the scores that fit a density on normal codes."""
        return self.score_name in FITTED_SCORES

    @property
    def fitted(self) -> bool:
        return self.threshold is not None

    def __repr__(self):
        state = f"threshold={self.threshold:.6g}, fpr={self.fpr:g}" if self.fitted else "not fitted"
        return f"AnomalyDetector({getattr(self.model, 'name', '?')}, score={self.score_name!r}, {state})"

    # -- the computation (keras.ops; the same graph in Keras and in exports) --
    def _images(self, x, what="images"):
        from aezoo.models.base import validate_images

        return validate_images(x, self.model.image_shape, what=what)

    def _codes(self, x):
        """The latent code: a VAE's posterior mean, else the encoder's output
        (a U-Net denoiser's: its average-pooled deepest feature map)."""
        model = self.model
        if _is_vae(model):
            return model.posterior_params(x)[0]
        return model.encoder(x, training=False)

    def _reconstruction(self, x):
        """The deterministic reconstruction (the family's `infer` hook where it has one)."""
        model = self.model
        if callable(getattr(model, "infer", None)):
            return model.infer(x)
        if getattr(model, "network", None) is not None:      # a U-Net denoiser: no latent vector
            return model.network(x, training=False)
        return model.decoder(self._codes(x), training=False)

    def _ssim(self, x, recon):
        """1 - SSIM per image: tf.image.ssim's computation (Gaussian window, k1 0.01, k2 0.03, peak 1,
        VALID filtering, mean over positions and channels) written in keras.ops, so that it runs on
        every backend and exports to TFLite builtins and ONNX (tf.image.ssim's own graph has ops
        that tf2onnx cannot convert)."""
        from keras import ops

        h, w, channels = self.model.image_shape
        size = min(11, int(h), int(w))
        coords = np.arange(size, dtype="float64") - (size - 1) / 2.0
        g = np.exp(-0.5 * coords ** 2 / 1.5 ** 2)
        window = np.outer(g, g) / np.outer(g, g).sum()
        kernel = ops.convert_to_tensor(np.tile(window[:, :, None, None], (1, 1, channels, 1)).astype("float32"))

        def blur(t):
            return ops.depthwise_conv(t, kernel, strides=1, padding="valid")

        c1, c2 = 0.01 ** 2, 0.03 ** 2
        mean_x, mean_y = blur(x), blur(recon)
        num0 = 2.0 * mean_x * mean_y
        den0 = ops.square(mean_x) + ops.square(mean_y)
        luminance = (num0 + c1) / (den0 + c1)
        num1 = 2.0 * blur(x * recon)
        den1 = blur(ops.square(x) + ops.square(recon))
        structure = (num1 - num0 + c2) / (den1 - den0 + c2)
        return 1.0 - ops.mean(luminance * structure, axis=(1, 2, 3))

    def _vae_scores(self, x, stats):
        from keras import ops

        model = self.model
        latent = model.latent_dim
        mean, log_var = stats[:, :latent], stats[:, latent:]
        std = ops.exp(0.5 * log_var)
        eps = self.state["eps"]
        k = int(eps.shape[0])
        # K-major stacks of rank <= 4 (TFLite-friendly): rows k*B .. (k+1)*B - 1 use draw k
        z = ops.concatenate([mean + std * ops.convert_to_tensor(eps[i][None]) for i in range(k)], axis=0)
        tiled = ops.concatenate([x] * k, axis=0)
        nll = ops.reshape(model.reconstruction_nll(tiled, model.decoder(z, training=False)), (k, -1))
        if self.score_name == "elbo":
            return ops.mean(nll, axis=0) + model.kl_divergence(mean, log_var)
        log_2pi = math.log(2 * math.pi)
        log_prior = -0.5 * ops.sum(ops.square(z), axis=-1) - 0.5 * latent * log_2pi
        eps_sq = np.sum(np.square(eps.astype("float64")), axis=-1).astype("float32")      # (k,)
        log_q = (ops.convert_to_tensor(-0.5 * eps_sq[:, None]) - 0.5 * ops.sum(log_var, axis=-1)[None]
                 - 0.5 * latent * log_2pi)
        log_w = -nll + ops.reshape(log_prior, (k, -1)) - log_q
        top = ops.max(log_w, axis=0)
        log_mean_w = top + ops.log(ops.mean(ops.exp(log_w - top[None]), axis=0))
        return -log_mean_w

    def _latent_scores(self, codes):
        from keras import ops

        center = ops.convert_to_tensor(self.state["mean"])
        whitener = ops.convert_to_tensor(self.state["whitener"])
        white = ops.matmul(codes - center[None], whitener)
        if self.score_name == "latent_mahalanobis":
            return ops.sum(ops.square(white), axis=-1)
        points = white if self.knn_metric == "mahalanobis" else codes
        bank = self.state["reference"]
        bank_sq = np.sum(np.square(bank.astype("float64")), axis=1).astype("float32")
        d2 = (ops.sum(ops.square(points), axis=-1, keepdims=True)
              - 2.0 * ops.matmul(points, ops.convert_to_tensor(bank.T.copy()))
              + ops.convert_to_tensor(bank_sq[None]))
        nearest, _ = ops.top_k(-d2, k=min(self.knn_k, len(bank)))
        return ops.mean(ops.sqrt(ops.maximum(-nearest, 0.0)), axis=-1)

    # A score is a model part (one forward pass) followed by a finish: the
    # protocol runs compute each part once per image set and share it between
    # detectors (`_cache`); `score` and the exported graph run both at once.
    def _part_name(self):
        if self.score_name in FITTED_SCORES:
            return "codes"
        if self.score_name in VAE_SCORES:
            return "stats"
        return "reconstruction"

    def _part(self, x):
        part = self._part_name()
        if part == "codes":
            return self._codes(x)
        if part == "stats":
            mean, log_var = self.model.posterior_params(x)
            from keras import ops

            return ops.concatenate([mean, log_var], axis=-1)
        return self._reconstruction(x)

    def _finish(self, x, part):
        from keras import ops

        name = self.score_name
        if name in FITTED_SCORES:
            return self._latent_scores(part)
        if name in VAE_SCORES:
            return self._vae_scores(x, part)
        if name == "mse":
            axes = tuple(range(1, len(self.model.image_shape) + 1))
            return ops.mean(ops.square(x - part), axis=axes)
        return self._ssim(x, part)

    def _score_graph(self, x):
        """Scores of a batch `x` (a tensor, (batch, *input_shape)) as a tensor (batch,)."""
        if self.needs_fit and self.state.get("whitener") is None:
            raise DetectorError(f"score {self.score_name!r} needs fit(normal_images) first: it fits a density "
                                "on the codes of normal images.")
        return self._finish(x, self._part(x))

    def graph_fn(self) -> Callable:
        """The fitted detector as one function: images -> {"score", "is_anomaly"}.

        Built from keras.ops, deterministic,
        with the threshold and the fitted arrays as constants: what exports
        put in their ``detect`` signature. `images` is float32
        (batch, *input_shape); ``score`` is float32 (batch,), ``is_anomaly``
        bool (batch,), score > threshold.

        Returns:
            A function of one tensor.

        Example:
            >>> fn = det.graph_fn()
            >>> fn(tf.constant(x))["is_anomaly"]
        """
        from keras import ops

        self._require_fit("graph_fn")
        threshold = np.float32(self.threshold)

        def detect(images):
            score = self._score_graph(images)
            return {"score": score, "is_anomaly": ops.greater(score, threshold)}

        return detect

    def export_functions(self) -> dict:
        """The ``detect`` signature for `aezoo.deploy.export(..., extra_functions=...)`.

        Returns:
            {"detect": (graph_fn(), {"images": input_shape})}.

        Example:
            >>> aezoo.export(model, "m/1", extra_functions=det.export_functions())   # SavedModel + detect
        """
        return {"detect": (self.graph_fn(), {"images": tuple(self.model.image_shape)})}

    def export(self, path: str | os.PathLike, format: str = "savedmodel", **kwargs) -> dict:
        """Export the model with this detector baked in, verified against `score`/`predict`.

        A SavedModel gets a ``detect`` signature beside the model's own ones; a
        TFLite or ONNX file holds ``detect`` alone (``part="detect"``): input
        ``images``, outputs ``score`` (float32) and ``is_anomaly`` (bool,
        score > the threshold baked in). The export's own verification compares
        the artifact with the Keras graph; this method then checks the
        artifact's ``detect`` against `score` and `predict` on the verification
        images and adds the figures to the report (``detector``).

        Args:
            path: the SavedModel directory or the .tflite / .onnx file.
            format: "savedmodel", "tflite" or "onnx".
            **kwargs: passed to `aezoo.deploy.export` (e.g. verify_data=,
                overwrite=, quantize= for TFLite).

        Returns:
            The export report, with "detector": {"score", "threshold",
            "max_abs_score_diff", "prediction_mismatches"}.

        Example:
            >>> det.export("conv_mnist_detect.tflite", format="tflite", verify_data=x_test[:256])
        """
        from aezoo import deploy

        self._require_fit("export")
        if format != "savedmodel":
            kwargs.setdefault("part", "detect")
        report = deploy.export(self.model, path, format=format, detector=self, **kwargs)
        x, _ = deploy.verification_data(self.model, kwargs.get("verify_data"))
        got = _run_artifact(report["path"], format, x)
        want = self.score(x)
        report["detector"] = {
            "score": self.score_name, "threshold": self.threshold, "images": int(len(x)),
            "max_abs_score_diff": float(np.max(np.abs(got["score"].astype("float64") - want))),
            "prediction_mismatches": int(np.sum(got["is_anomaly"].astype(bool) != (want > np.float32(self.threshold)))),
        }
        return report

    def _compiled_fn(self, which):
        """The TF-compiled (tf.function) `_score_graph` ("fused"), `_part` or `_finish`."""
        import keras

        if self._compiled is None:
            self._compiled = {}
        if which not in self._compiled:
            fn = {"fused": self._score_graph, "part": self._part, "finish": self._finish}[which]
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                images = tf.TensorSpec((None,) + tuple(self.model.image_shape), tf.float32)
                signature = [images]
                if which == "finish":
                    part = self._part_name()
                    shape = {"codes": (None, self.model.latent_dim), "stats": (None, 2 * self.model.latent_dim),
                             "reconstruction": (None,) + tuple(self.model.image_shape)}[part]
                    signature.append(tf.TensorSpec(shape, tf.float32))
                # a fresh closure per detector: TF counts retracing per Python function
                fn = tf.function(_closure(fn), input_signature=signature)
            self._compiled[which] = fn
        return self._compiled[which]

    def _batches(self, fn, *arrays):
        from keras import ops

        parts = []
        for i in range(0, len(arrays[0]), self.batch_size):
            parts.append(ops.convert_to_numpy(fn(*[ops.convert_to_tensor(a[i: i + self.batch_size]) for a in arrays])))
        return np.concatenate(parts)

    def _cached_part(self, x, part=None):
        """The model part of images `x` (numpy), from the shared cache when there is one."""
        part = part or self._part_name()
        compute = (lambda: self._batches(self._compiled_fn("part"), x)) if part == self._part_name() else \
            (lambda: self._batches(lambda t: self._codes(t), x))
        cache = getattr(self, "_cache", None)
        if cache is None:
            return compute()
        key = (id(x), x.shape, part)
        hit = cache.get(key)
        if hit is None or hit[0] is not x:
            hit = cache[key] = (x, compute())
        return hit[1]

    def _raw_scores(self, x):
        if getattr(self, "_cache", None) is None:
            return self._batches(self._compiled_fn("fused"), x).astype("float32")
        return self._batches(self._compiled_fn("finish"), x, self._cached_part(x)).astype("float32")

    # -- the API -------------------------------------------------------------
    def score(self, x: ArrayLike) -> np.ndarray:
        """Anomaly scores of images `x`: float32 (N,), higher = more anomalous.

        Args:
            x: float32 images (N, *input_shape) in [0, 1]; scored in batches of
                `batch_size`, so memory stays flat for large N.

        Returns:
            numpy float32 array (N,).

        Raises:
            InputError: wrong shape, dtype or range.
            DetectorError: a latent score before `fit`.

        Example:
            >>> det.score(x_test[:4])
            array([0.012, 0.031, 0.009, 0.2], dtype=float32)
        """
        if self.needs_fit and "whitener" not in self.state:
            raise DetectorError(f"score {self.score_name!r} needs fit(normal_images) first: it fits a density "
                                "on the codes of normal images.")
        if getattr(self, "_cache", None) is not None:       # protocol runs: whole arrays, shared model outputs
            return self._raw_scores(self._images(x))
        arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        if arr.ndim != len(self.model.image_shape) + 1 or len(arr) == 0:
            self._images(arr)                               # raises the shape / empty-batch error
        # checked and converted one batch at a time: memory stays flat (e.g. a memory-mapped array)
        out = np.empty(len(arr), dtype="float32")
        for i in range(0, len(arr), self.batch_size):
            out[i: i + self.batch_size] = self._raw_scores(self._images(arr[i: i + self.batch_size]))
        return out

    def predict(self, x: ArrayLike) -> np.ndarray:
        """True for images scored above the threshold (anomalous).

        Args:
            x: float32 images (N, *input_shape) in [0, 1].

        Returns:
            numpy bool array (N,).

        Raises:
            DetectorError: before `fit`.

        Example:
            >>> det.predict(x_test).mean()    # fraction flagged
        """
        self._require_fit("predict")
        return self.score(x) > np.float32(self.threshold)

    def _require_fit(self, what):
        if not self.fitted:
            raise DetectorError(f"{what}() needs a threshold: call fit(normal_images, fpr=...) first.")

    def _fit_density(self, x):
        from sklearn.covariance import LedoitWolf

        codes = self._codes_numpy(x).astype("float64")
        lw = LedoitWolf().fit(codes)
        precision = np.linalg.inv(lw.covariance_)
        precision = 0.5 * (precision + precision.T)
        whitener = np.linalg.cholesky(precision)          # precision = L L^T: d^T P d = |d L|^2
        state = {"mean": lw.location_.astype("float32"), "whitener": whitener.astype("float32"),
                 "shrinkage": np.float32(lw.shrinkage_)}
        if self.score_name == "latent_knn":
            rng = np.random.default_rng(self.seed + 1)
            keep = np.sort(rng.permutation(len(codes))[: self.max_reference])
            bank = codes[keep]
            if self.knn_metric == "mahalanobis":
                bank = (bank - lw.location_) @ whitener
            state["reference"] = bank.astype("float32")
        return state

    def _codes_numpy(self, x):
        return self._cached_part(x, "codes")

    def fit(self, normal_images: ArrayLike, fpr: float = 0.01, *, fit_images: ArrayLike | None = None,
            calibration_fraction: float = 0.5) -> AnomalyDetector:
        """Fit what the score needs on normal images and set the threshold for `fpr`.

        Latent scores fit their Gaussian (and reference bank) on a seeded random
        `1 - calibration_fraction` of `normal_images` (or on all of
        `fit_images`, e.g. a sample of the training split, when given) and
        calibrate on the rest; the other scores calibrate on all of
        `normal_images`. The threshold is the ceil((n + 1)(1 - fpr))-th
        smallest of the n calibration scores (see the module docstring).

        Args:
            normal_images: held-out images of the normal kind, float32
                (N, *input_shape) in [0, 1].
            fpr: the false-positive rate to calibrate for, in (0, 1).
            fit_images: images to fit the latent density on instead of a part
                of `normal_images`.
            calibration_fraction: the part of `normal_images` used for
                calibration when the score fits a density and `fit_images` is None.

        Returns:
            self.

        Raises:
            DetectorError: fpr outside (0, 1), too few images.
            InputError: images of the wrong shape, dtype or range.

        Example:
            >>> det = AnomalyDetector(model, "latent_mahalanobis").fit(x_val, fpr=0.05)
            >>> det.threshold
        """
        fpr = _as_float(fpr, "fpr")
        if not 0.0 < fpr < 1.0:
            raise DetectorError(f"fpr must be in (0, 1) (e.g. 0.01 for 1% false alarms); got {fpr}.")
        fraction = _as_float(calibration_fraction, "calibration_fraction")
        if not 0.0 < fraction < 1.0:
            raise DetectorError(f"calibration_fraction must be in (0, 1); got {fraction}.")
        x = self._images(normal_images, "normal_images")
        n_fit = 0
        if self.needs_fit:
            if fit_images is None:
                n_cal = int(round(len(x) * fraction))
                order = np.random.default_rng(self.seed).permutation(len(x))
                fit_x, x = x[np.sort(order[n_cal:])], x[np.sort(order[:n_cal])]
            else:
                fit_x = self._images(fit_images, "fit_images")
            need_fit = max(MIN_FIT, self.knn_k + 1 if self.score_name == "latent_knn" else MIN_FIT)
            if len(fit_x) < need_fit:
                raise DetectorError(
                    f"too few normal images to fit {self.score_name!r}: {len(fit_x)} for the density, need at "
                    f"least {need_fit} (plus {min_calibration(fpr)} to calibrate fpr={fpr:g})."
                )
            conformal_rank(len(x), fpr)            # fail before the work
            self.state.update(self._fit_density(fit_x))
            self._compiled = None
            n_fit = len(fit_x)
        k = conformal_rank(len(x), fpr)
        scores = np.sort(self._raw_scores(x))
        self.threshold = float(scores[k - 1])
        self.fpr = fpr
        self.calibration = {"n_calibration": int(len(x)), "n_fit": int(n_fit), "rank": int(k),
                            # P(a new normal score > threshold) for continuous, exchangeable scores
                            "expected_fpr": 1.0 - k / (len(x) + 1)}
        return self

    # -- saving --------------------------------------------------------------
    def to_dict(self) -> dict:
        """The detector as a JSON-ready dict (what `save` writes)."""
        model = self.model
        state = {}
        for key, value in self.state.items():
            arr = np.asarray(value, dtype="float32")
            state[key] = {"shape": list(arr.shape), "values": [float(v) for v in arr.ravel()]}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "score": self.score_name,
            "options": self.options(),
            "threshold": self.threshold,
            "fpr": self.fpr,
            "calibration": self.calibration,
            "auto_source": self.auto_source,
            "model": {"name": getattr(model, "name", None), "version": getattr(model, "zoo_version", None),
                      "family": getattr(model, "family", None), "input_shape": list(model.image_shape),
                      "latent_dim": int(model.latent_dim)},
            "state": state,
        }

    def save(self, path: str | os.PathLike) -> str:
        """Write the detector as JSON (atomically: a temp file, then rename).

        Args:
            path: the .json file, e.g. `detector_path(weights_path)`.

        Returns:
            The path written.

        Example:
            >>> det.save("runs/conv_mnist/conv_mnist.anomaly.json")
        """
        return _write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, model: Any = None) -> AnomalyDetector:
        """Rebuild a detector from `to_dict` output (see `load`)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DetectorError(f"not an aezoo anomaly detector (expected format {FORMAT!r}).")
        if data.get("format_version") != FORMAT_VERSION:
            raise DetectorError(f"anomaly detector format version {data.get('format_version')!r} is not "
                                f"supported (this aezoo reads {FORMAT_VERSION}).")
        info = data["model"]
        if model is None:
            import aezoo

            if not info.get("name"):
                raise DetectorError("the detector does not name a zoo model: pass model=.")
            model = aezoo.load(info["name"], version=info.get("version"))
        _check_model(model)
        mine = {"family": getattr(model, "family", None), "input_shape": list(model.image_shape),
                "latent_dim": int(model.latent_dim)}
        theirs = {k: info.get(k) for k in mine}
        if mine != theirs:
            raise DetectorError(f"this detector was fitted for a model with {theirs}; the model given has {mine}.")
        det = cls(model, data["score"], **data["options"])
        det.auto_source = data.get("auto_source")
        det.state = {k: np.asarray(v["values"], dtype="float32").reshape(v["shape"])
                     for k, v in data["state"].items()}
        det.threshold = None if data["threshold"] is None else float(data["threshold"])
        det.fpr = data["fpr"]
        det.calibration = data.get("calibration")
        return det

    @classmethod
    def load(cls, path: str | os.PathLike, model: Any = None) -> AnomalyDetector:
        """Read a detector written by `save`.

        Args:
            path: the JSON file.
            model: the autoencoder it belongs to; None loads the zoo entry
                (name and version) recorded in the file.

        Returns:
            An AnomalyDetector with the same scores, threshold and predictions.

        Raises:
            DetectorError: not a detector file, or a model that does not fit it.

        Example:
            >>> det = AnomalyDetector.load("conv_mnist.anomaly.json", model=aezoo.load("conv_mnist"))
        """
        try:
            with open(os.fspath(path)) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise DetectorError(f"cannot read anomaly detector {path}: {e}") from e
        return cls.from_dict(data, model=model)


def _run_artifact(path, format, x):
    """Run an exported ``detect`` signature on images `x` with the artifact's own runtime."""
    from aezoo import deploy

    run = deploy._RUNNERS[format](path)
    return deploy._chunked(run, "detect", images=x)


def _write_json_atomic(path, data):
    """Write JSON to `path` atomically (a temp file beside it, then rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def detector_path(weights_path: str | os.PathLike) -> str:
    """Where a model's detector lives beside its weights: NAME.weights.h5 -> NAME.anomaly.json.

    Example:
        >>> detector_path("runs/conv_mnist/conv_mnist.weights.h5")
        'runs/conv_mnist/conv_mnist.anomaly.json'
    """
    path = os.fspath(weights_path)
    for suffix in (".weights.h5", ".h5", ".keras"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + DETECTOR_SUFFIX
    return path + DETECTOR_SUFFIX


# =========================================================================== the task

PROTOCOL = (
    "Scores (higher = more anomalous): mse and ssim (1 - SSIM) of the reconstruction; latent_mahalanobis "
    "(squared Mahalanobis distance of the code to a Ledoit-Wolf Gaussian fitted on normal codes) and latent_knn "
    "(mean distance to the 5 nearest normal codes after whitening with that Gaussian; a seeded bank of at most "
    "4,096 codes); for VAEs elbo and iwae (negative ELBO / IWAE bound in nats, 8 noise draws fixed per detector). "
    "AUROC with anomalies as positives; FPR95 = the fraction of normal test images flagged when 95% of the "
    "anomalies are. Defaults are chosen on validation splits only, never on test. "
    "Protocol 2 (out-of-distribution, every published entry, one version per row): the entry's own test split is "
    "normal and the other dataset's test split anomalous -- Fashion-MNIST test (10,000) vs the mnist_5k digits "
    "(test split, 1,000), and mnist_5k test vs Fashion-MNIST test. Latent densities are fitted on the entry's "
    "training split (a fixed random subset of 10,000 images for Fashion-MNIST, all 3,500 for mnist_5k), "
    "thresholds calibrated on its validation split at fpr 0.05 (the test FPR at that threshold is recorded as a "
    "check). The entry's default score (score='auto') has the best AUROC on the validation splits (its own "
    "validation split vs the other dataset's). Baselines in the same run, on raw pixels fitted on the same "
    "training images: PCA reconstruction error (as many components as the entry's latent) and kNN distance "
    "(k = 5, a seeded bank of 4,096 images). "
    "Protocol 1 (one-class Fashion-MNIST, Golan & El-Yaniv 2018; Ruff et al. 2018): for each class c and family, "
    "a model is trained with aezoo's trainer from the recipe in aezoo/tasks/oneclass.json on the class-c images "
    "of the train split (the first 55,000 training images: about 5,500 per class; no augmentation), with the "
    "class-c validation images as validation data; latent densities are fitted on the class-c training images "
    "and thresholds calibrated on the class-c validation images; AUROC on the full 10,000-image test split with "
    "class c normal and the other 9 anomalous, per class and the mean over classes. A family's default score has "
    "the best mean validation AUROC (class c vs the other 4,500 validation images). Pixel baselines in the same "
    "run, fitted on the class-c training images: PCA-32 reconstruction error and kNN distance. Seeds: recipe "
    "1234, detector 0."
)

ANCHORS = [
    {"method": "conv AE (reconstruction error)", "value": 0.82, "metric": "one-class Fashion-MNIST mean AUROC",
     "source": "Liznerski et al., Explainable Deep One-Class Classification (FCDD), ICLR 2021, Table 1",
     "differences": "figure as quoted in issue 8 (not re-checked against the paper here); they train on all "
                    "6,000 training images of the class (we: the ~5,500 of our 55,000-image train split) and "
                    "preprocess with global contrast normalisation (we: pixels / 255); their AE is their own "
                    "architecture"},
    {"method": "Deep SVDD", "value": 0.928, "metric": "one-class Fashion-MNIST mean AUROC",
     "source": "Bergman & Hoshen, Classification-Based Anomaly Detection for General Data (GOAD), ICLR 2020, Table 2",
     "differences": "figure as quoted in issue 8 (0.93; not re-checked here); 6,000 training images per class; "
                    "global contrast normalisation; a one-class objective, not an autoencoder"},
    {"method": "GEOM", "value": 0.935, "metric": "one-class Fashion-MNIST mean AUROC",
     "source": "Bergman & Hoshen, GOAD, ICLR 2020, Table 2 (GEOM: Golan & El-Yaniv, NeurIPS 2018)",
     "differences": "figure as quoted in issue 8; 6,000 training images per class; trained on 72 geometric "
                    "transformations of every image (a form of augmentation; we use none); a classifier, not an "
                    "autoencoder"},
    {"method": "GOAD", "value": 0.941, "metric": "one-class Fashion-MNIST mean AUROC",
     "source": "Bergman & Hoshen, GOAD, ICLR 2020, Table 2",
     "differences": "figure as quoted in issue 8; 6,000 training images per class; geometric transformations "
                    "(augmentation; we use none); a classifier, not an autoencoder"},
]

OOD_PAIRS = {"fashion_mnist": "mnist_5k", "mnist_5k": "fashion_mnist"}
OOD_FIT_LIMIT = 10000
CALIBRATION_FPR = 0.05
BASELINE_KNN_K = 5


def applies_to(entry: dict) -> bool:
    """True for zoo entries that list "anomaly detection" among their uses (and train on a dataset with a pair).

    Args:
        entry: `aezoo.get_entry(name)`.

    Returns:
        bool.

    Example:
        >>> applies_to(aezoo.get_entry("conv_mnist"))
        True
    """
    return "anomaly detection" in entry.get("uses", []) and entry["recipe"]["dataset"] in OOD_PAIRS


def _progress(iterable, progress, desc, total=None):
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def _split_name(item):
    """"name" or "name:version" -> (name, version or None)."""
    if ":" in item:
        name, version = item.split(":", 1)
        return name, int(version.lstrip("v"))
    return item, None


def _cpu_seconds():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _baseline_scores(fit, xs, components, seed=0):
    """Pixel baselines fitted on `fit` (N, H, W, C): {name: [scores of each array in xs]}."""
    from sklearn.decomposition import PCA

    flat = fit.reshape(len(fit), -1).astype("float64")
    pca = PCA(n_components=min(components, len(flat) - 1), random_state=seed).fit(flat)
    rng = np.random.default_rng(seed + 1)
    bank = flat[np.sort(rng.permutation(len(flat))[:4096])].astype("float32")
    bank_sq = np.sum(np.square(bank), axis=1)
    out = {"pca_reconstruction": [], "pixel_knn": []}
    for x in xs:
        f = x.reshape(len(x), -1).astype("float64")
        out["pca_reconstruction"].append(np.mean(np.square(f - pca.inverse_transform(pca.transform(f))), axis=1))
        dists = []
        for i in range(0, len(f), 1024):
            q = f[i: i + 1024].astype("float32")
            d2 = np.sum(np.square(q), axis=1)[:, None] - 2 * q @ bank.T + bank_sq[None]
            near = np.partition(d2, BASELINE_KNN_K - 1, axis=1)[:, :BASELINE_KNN_K]
            dists.append(np.mean(np.sqrt(np.maximum(near, 0)), axis=1))
        out["pixel_knn"].append(np.concatenate(dists))
    return out


def _metrics(normal, anomalous):
    return {"auroc": round(auroc(normal, anomalous), 4), "fpr95": round(fpr_at_tpr(normal, anomalous), 4)}


# -- protocol 2: out-of-distribution ------------------------------------------


def _ood_data(dataset, quick, data=None):
    """The image sets of protocol 2 for an entry trained on `dataset` (`data`: {dataset: {split: (x, y)}}
    to use instead of the files, for tests). Quick: fixed random subsets of 64 (128 to fit)."""
    from aezoo.tasks import load_split

    other = OOD_PAIRS[dataset]
    limit = 64 if quick else None
    return {
        "fit": load_split(dataset, "train", data, limit=128 if quick else OOD_FIT_LIMIT)[0],
        "val_normal": load_split(dataset, "validation", data, limit)[0],
        "val_anomalous": load_split(other, "validation", data, limit)[0],
        "test_normal": load_split(dataset, "test", data, limit)[0],
        "test_anomalous": load_split(other, "test", data, limit)[0],
        "names": {"normal": f"{dataset}:test", "anomalous": f"{other}:test"},
    }


def evaluate_ood(model: Any, data: dict, scores: list[str] | None = None, seed: int = 0, fpr: float = CALIBRATION_FPR,
                 samples: int = 8) -> dict:
    """Protocol 2 for one model on prepared data (see `PROTOCOL`).

    Args:
        model: an aezoo autoencoder.
        data: dict with "fit", "val_normal", "val_anomalous", "test_normal",
            "test_anomalous" image arrays.
        scores: the scores to measure (default: all `available_scores(model)`).
        seed: detector seed.
        fpr: calibration FPR for the reported threshold check.
        samples: noise draws for elbo/iwae.

    Returns:
        {"scores": {score: {"auroc", "fpr95", "val_auroc", "val_fpr95",
        "threshold", "test_fpr_at_threshold", "seconds"}}, "default_score", ...}.

    Example:
        >>> evaluate_ood(aezoo.load("conv_mnist"), _ood_data("mnist_5k", quick=True))["default_score"]
    """
    import time

    out, cache = {}, {}
    for name in scores or available_scores(model):
        started = time.time()
        det = AnomalyDetector(model, name, seed=seed, samples=samples)
        det._cache = cache      # one forward pass per image set and model part, shared by the scores
        det.fit(data["val_normal"], fpr=fpr, fit_images=data["fit"] if det.needs_fit else None)
        s = {k: det.score(data[k]) for k in ("val_normal", "val_anomalous", "test_normal", "test_anomalous")}
        val = _metrics(s["val_normal"], s["val_anomalous"])
        out[name] = {**_metrics(s["test_normal"], s["test_anomalous"]),
                     "val_auroc": val["auroc"], "val_fpr95": val["fpr95"],
                     "threshold": det.threshold,
                     "test_fpr_at_threshold": round(float(np.mean(s["test_normal"] > np.float32(det.threshold))), 4),
                     "seconds": round(time.time() - started, 1)}
    best = select_default({k: v["val_auroc"] for k, v in out.items()})
    return {"scores": out, "default_score": best, "default_auroc": out[best]["auroc"],
            "default_fpr95": out[best]["fpr95"], "selected_on": "validation AUROC"}


def select_default(validation_auroc: dict[str, float]) -> str:
    """The default score: the best validation AUROC (ties: the earlier score in `SCORES`).

    Args:
        validation_auroc: {score: AUROC on the validation split} (never test figures).

    Returns:
        The score name.

    Example:
        >>> select_default({"mse": 0.91, "latent_knn": 0.93})
        'latent_knn'
    """
    return max(validation_auroc, key=lambda k: (validation_auroc[k], -SCORES.index(k)))


def run_ood(models: dict | None = None, names: list[str] | None = None, *, quick: bool = False, seed: int = 0,
            progress: bool = True, scores: list[str] | None = None, data: dict | None = None) -> dict:
    """Protocol 2 over zoo entries (see `run`; `data` replaces the dataset files, for tests)."""
    import aezoo

    items = []  # (name, version, model or None)
    for key, model in (models or {}).items():
        name, version = _split_name(key)
        items.append((name, getattr(model, "zoo_version", None) or version, model))
    given = {name for name, _, _ in items}
    for item in names or ([] if models else _published_items()):
        name, version = _split_name(item)
        if name in given:
            continue
        entry = aezoo.get_entry(name, version)
        if applies_to(entry):
            items.append((name, entry["version"], None))
    seen = [name for name, _, _ in items]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise DetectorError(f"results hold one version per entry and run: measure {', '.join(twice)} one version "
                            "per call (e.g. names=['conv_mnist:1'], then names=['conv_mnist:2']).")
    entries, baselines, cache = {}, {}, {}
    for name, version, model in _progress(items, progress, "anomaly (ood)"):
        entry = aezoo.get_entry(name, version)
        if model is None:
            model = aezoo.load(name, version=entry["version"])
        dataset = entry["recipe"]["dataset"]
        if dataset not in cache:
            cache[dataset] = _ood_data(dataset, quick, data)
        data_sets = cache[dataset]
        result = evaluate_ood(model, data_sets, scores=scores, seed=seed)
        result.update(version=entry["version"], dataset=dataset, normal=data_sets["names"]["normal"],
                      anomalous=data_sets["names"]["anomalous"], family=getattr(model, "family", None),
                      latent_dim=int(model.latent_dim))
        entries[name] = result
        for components in {int(model.latent_dim)}:
            bkey = f"{dataset}/pca{components}"
            if bkey in baselines:
                continue
            b = _baseline_scores(data_sets["fit"], [data_sets[k] for k in ("val_normal", "val_anomalous",
                                                                               "test_normal", "test_anomalous")],
                                 components, seed)
            for method, (vn, va, tn, ta) in b.items():
                label = f"{method} ({components} components)" if method == "pca_reconstruction" else method
                baselines.setdefault(dataset, {})[label] = {**_metrics(tn, ta), "val_auroc": _metrics(vn, va)["auroc"]}
            baselines[bkey] = True
    baselines = {k: v for k, v in baselines.items() if not k.count("/")}
    return {"task": TASK, "protocol": PROTOCOL, "entries": entries, "baselines": baselines, "anchors": ANCHORS,
            "settings": {"ood": {"quick": bool(quick), "seed": seed, "calibration_fpr": CALIBRATION_FPR,
                                 "fit_limit": 128 if quick else OOD_FIT_LIMIT, "max_reference": 4096, "knn_k": 5,
                                 "knn_metric": "mahalanobis", "samples": 8, "baseline_knn_k": BASELINE_KNN_K}}}


def _published_items():
    """Every published (name, version) of the zoo as "name:version" strings."""
    import aezoo
    from aezoo import weights

    out = []
    for name in aezoo.list_models():
        for version in weights.published_versions(name):
            out.append(f"{name}:{version}")
    return out


# -- protocol 1: one-class Fashion-MNIST ---------------------------------------

ONECLASS_FILE = "oneclass.json"
ONECLASS_CLASSES = tuple(range(10))


def oneclass_recipes() -> dict:
    """The one-class recipes (aezoo/tasks/oneclass.json): family -> {"config", "recipe", "detector"}.

    Example:
        >>> oneclass_recipes()["families"]["conv"]["recipe"]["epochs"]
    """
    from importlib import resources

    return json.loads(resources.files("aezoo").joinpath("tasks", ONECLASS_FILE).read_text())


def _oneclass_data(cls, quick, data=None):
    """Protocol 1's image sets for normal class `cls` (`data`: {"fashion_mnist": {split: (x, y)}} instead of
    the files, for tests). Quick: 256 training images, 240 validation and 120 test images, half normal."""
    from aezoo.tasks import load_split

    xtr, ytr = load_split("fashion_mnist", "train", data)
    xva, yva = load_split("fashion_mnist", "validation", data)
    xte, yte = load_split("fashion_mnist", "test", data)
    out = {"train": xtr[ytr == cls], "val_normal": xva[yva == cls], "val": xva, "val_labels": yva,
           "test": xte, "test_labels": yte}
    if quick:  # a few images of each kind, for tests and smoke runs
        rng = np.random.default_rng(0)

        def pick(y, n):
            normal, other = np.flatnonzero(y == cls), np.flatnonzero(y != cls)
            return np.sort(np.r_[normal[:n], rng.choice(other, min(n, len(other)), replace=False)])

        keep_v, keep_t = pick(yva, 120), pick(yte, 60)
        out.update(train=out["train"][:256], val=xva[keep_v], val_labels=yva[keep_v], test=xte[keep_t],
                   test_labels=yte[keep_t], val_normal=xva[keep_v][yva[keep_v] == cls])
    return out


def train_oneclass(family: str, cls: int, spec: dict, output_dir: str | os.PathLike, quick: bool = False,
                   data: dict | None = None, verbose: int = 0) -> tuple[Any, dict]:
    """Train one family's one-class model on class `cls` with aezoo's trainer.

    The recipe is registered as the zoo entry "oneclass_FAMILY" (this
    process only) and trained with `aezoo.train(..., data=class-cls train
    images, validation_data=class-cls validation images)`.

    Args:
        family: "dense", "conv", "denoising" or "vae".
        cls: the normal class, 0-9.
        spec: the family's recipe from oneclass.json ({"config", "recipe", ...}).
        output_dir: the run directory.
        quick: 1 epoch (tests).
        data: from `_oneclass_data` (loaded when None).
        verbose: Keras fit verbosity.

    Returns:
        (model, summary with "seconds" and "cpu_seconds").

    Example:
        >>> model, summary = train_oneclass("conv", 0, oneclass_recipes()["families"]["conv"], "runs/oc/conv_0")
    """
    import time

    import aezoo

    data = data or _oneclass_data(cls, quick)
    name = f"oneclass_{family}"
    aezoo.register(name, family, spec["config"], spec["recipe"], overwrite=True, uses=["anomaly detection"],
                   description=f"one-class Fashion-MNIST recipe for the {family} family")
    finished = Path(output_dir) / "train_metrics.json"
    if finished.is_file() and (Path(output_dir) / f"{name}.weights.h5").is_file():
        # trained before the process was stopped, not yet scored: score those weights (a finished
        # run directory is never trained again); the CPU time of that run was not recorded
        from aezoo.weights import load_into

        run = json.loads(finished.read_text())
        model = load_into(aezoo.build(name), Path(output_dir) / f"{name}.weights.h5")
        return model, {"seconds": run.get("seconds"), "cpu_seconds": None, "epochs": run["epochs_run"],
                       "train_images": int(len(data["train"])), "final": run.get("final"), "resumed": True}
    cpu, wall = _cpu_seconds(), time.time()
    model, summary = aezoo.train(name, output_dir=str(output_dir), data=data["train"],
                                 validation_data=data["val_normal"], epochs=1 if quick else None, verbose=verbose)
    summary = {"seconds": round(time.time() - wall, 1), "cpu_seconds": round(_cpu_seconds() - cpu, 1),
               "epochs": summary["epochs_run"], "train_images": int(len(data["train"])),
               "final": summary.get("final")}
    return model, summary


def evaluate_oneclass(model: Any, cls: int, data: dict, scores: list[str] | None = None, seed: int = 0,
                      detector_options: dict | None = None) -> dict:
    """AUROC of each score for one trained one-class model (see `PROTOCOL`).

    Returns:
        {score: {"val_auroc", "test_auroc", "threshold", "test_fpr_at_threshold"}}.
    """
    out, cache = {}, {}
    for name in scores or available_scores(model):
        det = AnomalyDetector(model, name, seed=seed, **(detector_options or {}))
        det._cache = cache
        det.fit(data["val_normal"], fpr=CALIBRATION_FPR, fit_images=data["train"] if det.needs_fit else None)
        sv, st = det.score(data["val"]), det.score(data["test"])
        nv, nt = data["val_labels"] == cls, data["test_labels"] == cls
        out[name] = {"val_auroc": round(auroc(sv[nv], sv[~nv]), 4), "test_auroc": round(auroc(st[nt], st[~nt]), 4),
                     "threshold": det.threshold,
                     "test_fpr_at_threshold": round(float(np.mean(st[nt] > np.float32(det.threshold))), 4)}
    return out


def run_oneclass(families: list[str] | None = None, classes: list[int] | None = None, *, quick: bool = False,
                 seed: int = 0, progress: bool = True, output_dir: str | os.PathLike | None = None,
                 recipes: dict | None = None, data: dict | None = None) -> dict:
    """Protocol 1: train and measure every family on every class (see `PROTOCOL`).

    Args:
        families: which families (default: every one in oneclass.json).
        classes: which normal classes (default 0-9).
        quick: tiny data and 1 epoch (tests, smoke runs).
        seed: detector seed.
        progress: tqdm progress bars.
        output_dir: where the run directories go (default: a temporary directory, removed after);
            each finished (family, class) leaves FAMILY_CLASS.result.json there, and a
            later run with the same recipe reuses it (an interrupted run resumes).
        recipes: the recipes dict (default: `oneclass_recipes()`).

    Returns:
        {"families": {family: {"classes": {c: {...}}, "mean": {score: test mean AUROC},
        "val_mean": {...}, "default_score", "default_mean_auroc", "seconds", "cpu_seconds", "epochs", ...}},
        "baselines": {method: {"classes", "mean", "val_mean"}}, "classes"}.

    Example:
        >>> run_oneclass(["conv"], [0], quick=True)["families"]["conv"]["mean"]
    """
    import shutil
    import tempfile
    from pathlib import Path

    recipes = recipes or oneclass_recipes()
    families = list(families or recipes["families"])
    classes = [int(c) for c in (classes if classes is not None else ONECLASS_CLASSES)]
    unknown = [f for f in families if f not in recipes["families"]]
    if unknown:
        raise DetectorError(f"no one-class recipe for {unknown}; oneclass.json has {sorted(recipes['families'])}.")
    temporary = output_dir is None
    root = Path(tempfile.mkdtemp(prefix="aezoo-oneclass-") if temporary else output_dir)
    results = {"families": {}, "baselines": {}, "classes": classes}
    try:
        for cls in _progress(classes, progress, "one-class"):
            sets = _oneclass_data(cls, quick, data)
            b = _baseline_scores(sets["train"], [sets["val"], sets["test"]], 32, seed)
            nv, nt = sets["val_labels"] == cls, sets["test_labels"] == cls
            for method, (sv, st) in b.items():
                slot = results["baselines"].setdefault(method, {"classes": {}})
                slot["classes"][str(cls)] = {"val_auroc": round(auroc(sv[nv], sv[~nv]), 4),
                                             "test_auroc": round(auroc(st[nt], st[~nt]), 4)}
            for family in families:
                spec = recipes["families"][family]
                done = root / f"{family}_{cls}.result.json"     # resume: a finished (family, class) is kept
                record = json.loads(done.read_text()) if done.is_file() else None
                if record is None or record.get("spec") != spec or record.get("quick") != bool(quick):
                    model, summary = train_oneclass(family, cls, spec, root / f"{family}_{cls}", quick=quick,
                                                    data=sets)
                    scores = evaluate_oneclass(model, cls, sets, seed=seed, detector_options=spec.get("detector"))
                    record = {"spec": spec, "quick": bool(quick), "result": {"scores": scores, **summary}}
                    _write_json_atomic(done, record)
                    import keras

                    keras.backend.clear_session()
                slot = results["families"].setdefault(family, {"classes": {}})
                slot["classes"][str(cls)] = record["result"]
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return summarize_oneclass(results, recipes)


def _of_models(slot, per_family):
    """' for N of 10 models' when some models' CPU time was not recorded (scored after a restart)."""
    n = slot.get("cpu_seconds_models", per_family)
    return "" if n == per_family else f" for {n} of {per_family} models"


def summarize_oneclass(results: dict, recipes: dict) -> dict:
    """Means over classes, each family's default score (best validation mean) and the best family.

    Args:
        results: {"families": {family: {"classes": {c: {"scores": {score: {"val_auroc", "test_auroc"}},
            "seconds", "cpu_seconds", "epochs"}}}}, "baselines": {method: {"classes": ...}}, "classes"}.
        recipes: the one-class recipes (copied into each family's summary).

    Returns:
        `results`, completed in place.

    Example:
        >>> summarize_oneclass(results, oneclass_recipes())["best_family"]
    """
    for family, slot in results["families"].items():
        per = slot["classes"]
        names = list(next(iter(per.values()))["scores"])
        slot["mean"] = {s: round(float(np.mean([c["scores"][s]["test_auroc"] for c in per.values()])), 4)
                        for s in names}
        slot["val_mean"] = {s: round(float(np.mean([c["scores"][s]["val_auroc"] for c in per.values()])), 4)
                            for s in names}
        slot["default_score"] = select_default(slot["val_mean"])
        slot["default_mean_auroc"] = slot["mean"][slot["default_score"]]
        slot["seconds"] = round(sum(c["seconds"] for c in per.values()), 1)
        measured = [c["cpu_seconds"] for c in per.values() if c.get("cpu_seconds") is not None]
        slot["cpu_seconds"] = round(sum(measured), 1)  # a model scored after a restart has no CPU time
        slot["cpu_seconds_models"] = len(measured)
        slot["epochs"] = next(iter(per.values()))["epochs"]
        slot["recipe"] = recipes["families"][family]
    for slot in results["baselines"].values():
        slot["mean"] = round(float(np.mean([c["test_auroc"] for c in slot["classes"].values()])), 4)
        slot["val_mean"] = round(float(np.mean([c["val_auroc"] for c in slot["classes"].values()])), 4)
    if results["families"]:
        fams = results["families"]
        best = max(fams, key=lambda f: fams[f]["val_mean"][fams[f]["default_score"]])
        results["best_family"] = {"family": best, "score": fams[best]["default_score"],
                                  "mean_auroc": fams[best]["default_mean_auroc"],
                                  "selected_on": "validation mean AUROC"}
    return results


# -- the task interface (aezoo/tasks contract) -----------------------------------

PROTOCOLS = ("ood", "oneclass")


def run(models: dict | None = None, names: list[str] | None = None, *, quick: bool = False, seed: int = 0,
        progress: bool = True, protocol: str = "ood", **options) -> dict:
    """Run the anomaly task; returns JSON-ready results (see `PROTOCOL`).

    Args:
        models: {"name" or "name:version": model} to measure (protocol "ood").
        names: zoo names, optionally "name:version" (protocol "ood"); default:
            every published version of every entry the task applies to.
        quick: a small, fast variant (64 images per set, 1 training epoch) for tests.
        seed: detector seed.
        progress: tqdm progress bars.
        protocol: "ood" (protocol 2, pretrained entries) or "oneclass"
            (protocol 1: trains 10 models per family; options: families,
            classes, output_dir).

    Returns:
        {"task", "protocol", "entries", "baselines", "anchors", "settings"}
        (+ "oneclass" for protocol "oneclass").

    Example:
        >>> results = run(names=["conv_mnist:1"])
        >>> results["entries"]["conv_mnist"]["default_score"]
    """
    if protocol not in PROTOCOLS:
        raise DetectorError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}.")
    if protocol == "ood":
        unknown = set(options) - {"scores", "data"}
        if unknown:
            raise DetectorError(f"protocol 'ood' takes the options scores=, data=; got {sorted(unknown)}.")
        return run_ood(models, names, quick=quick, seed=seed, progress=progress, **options)
    unknown = set(options) - {"families", "classes", "output_dir", "recipes", "data"}
    if unknown:
        raise DetectorError(f"protocol 'oneclass' takes families=, classes=, output_dir=; got {sorted(unknown)}.")
    oneclass = run_oneclass(quick=quick, seed=seed, progress=progress, **options)
    return {"task": TASK, "protocol": PROTOCOL, "entries": {}, "baselines": {"oneclass": oneclass["baselines"]},
            "anchors": ANCHORS, "oneclass": oneclass,
            "settings": {"oneclass": {"quick": bool(quick), "seed": seed, "calibration_fpr": CALIBRATION_FPR,
                                      "classes": oneclass["classes"], "baseline_knn_k": BASELINE_KNN_K,
                                      "baseline_pca_components": 32}}}


def _entry_rows(results):
    """(name, version, result) for a run() result or the merged file layout (NAME -> {VERSION: result})."""
    rows = []
    if "entries" in results:
        for key, r in results["entries"].items():
            rows.append((_split_name(key)[0], r.get("version"), r))
    else:
        for name, versions in results.items():
            if not isinstance(versions, dict) or name in ("baselines", "anchors", "oneclass", "settings"):
                continue
            for version, r in versions.items():
                if isinstance(r, dict) and "scores" in r:
                    rows.append((name, int(version), r))
    return sorted(rows, key=lambda t: (t[2].get("dataset", ""), t[0], t[1] or 0))


def _fmt(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def table(results: dict) -> str:
    """Markdown tables: protocol 2 per entry (AUROC and FPR95 per score, the default
    marked) and the pixel baselines; protocol 1 per family beside the baselines and the
    published anchors (cited, with the protocol differences).

    Args:
        results: a `run` result, or pretrained/tasks/anomaly.json.

    Returns:
        Markdown text.

    Example:
        >>> print(table(run(names=["conv_mnist:1"])))
    """
    lines = []
    rows = _entry_rows(results)
    if rows:
        lines += ["**Out-of-distribution (protocol 2)**: test AUROC (FPR at 95% TPR in brackets) per score; "
                  "**bold** = the entry's default score (`score=\"auto\"`), chosen on the validation splits.", "",
                  "| entry | normal → anomalies | " + " | ".join(SCORES) + " |",
                  "|---|---|" + "---|" * len(SCORES)]
        for name, version, r in rows:
            cells = []
            for s in SCORES:
                m = r["scores"].get(s)
                cell = "—" if m is None else f"{m['auroc']:.3f} ({m['fpr95']:.2f})"
                cells.append(f"**{cell}**" if s == r.get("default_score") else cell)
            pair = f"{r.get('normal', '?').split(':')[0]} → {r.get('anomalous', '?').split(':')[0]}"
            lines.append(f"| `{name}` v{version} | {pair} | " + " | ".join(cells) + " |")
        base = {d: m for d, m in (results.get("baselines") or {}).items() if d in OOD_PAIRS and isinstance(m, dict)}
        if base:
            lines += ["", "Baselines on raw pixels, same images (fitted on the same training images):", "",
                      "| normal → anomalies | method | AUROC | FPR95 |", "|---|---|---|---|"]
            for dataset, methods in sorted(base.items()):
                for method, m in sorted(methods.items()):
                    lines.append(f"| {dataset} → {OOD_PAIRS[dataset]} | {method} | {m['auroc']:.3f} | "
                                 f"{m['fpr95']:.2f} |")
        lines.append("")
    oneclass = results.get("oneclass")
    if oneclass and oneclass.get("families"):
        from aezoo.datasets import INFO

        fams, base = oneclass["families"], oneclass.get("baselines") or {}
        lines += ["**One-class Fashion-MNIST (protocol 1)**: mean test AUROC over the 10 classes (one model per "
                  "class), each family at its default score (chosen on the validation split), beside pixel "
                  "baselines from the same run and published figures (not re-run here).", "",
                  "| method | mean AUROC | score | epochs | train time, 10 models: s (CPU s) |",
                  "|---|---|---|---|---|"]
        for family, slot in fams.items():
            lines.append(f"| aezoo {family} AE (one-class recipe) | {slot['default_mean_auroc']:.3f} | "
                         f"{slot['default_score']} | {slot['epochs']} | {slot['seconds']:.0f} "
                         f"({slot['cpu_seconds']:.0f}{_of_models(slot, per_family=len(slot['classes']))}) |")
        for method, slot in base.items():
            lines.append(f"| baseline: {method} on pixels | {slot['mean']:.3f} | — | — | — |")
        for a in ANCHORS:
            lines.append(f"| published: {a['method']} ({a['source']}) | {a['value']:.3f} | — | — | — |")
        lines += ["", "Every score (mean test AUROC; **bold** = the default):", "",
                  "| family | " + " | ".join(SCORES) + " |", "|---|" + "---|" * len(SCORES)]
        for family, slot in fams.items():
            cells = []
            for s in SCORES:
                v = slot["mean"].get(s)
                cell = "—" if v is None else f"{v:.3f}"
                cells.append(f"**{cell}**" if s == slot["default_score"] else cell)
            lines.append(f"| {family} | " + " | ".join(cells) + " |")
        lines += ["", "Per class (test AUROC at each family's default score):", "",
                  "| normal class | " + " | ".join(f"{f} ({fams[f]['default_score']})" for f in fams)
                  + "".join(f" | pixels: {m}" for m in base) + " |",
                  "|---|" + "---|" * (len(fams) + len(base))]
        for c in oneclass["classes"]:
            cells = [_fmt(fams[f]["classes"][str(c)]["scores"][fams[f]["default_score"]]["test_auroc"]) for f in fams]
            cells += [_fmt(b["classes"][str(c)]["test_auroc"]) for b in base.values()]
            lines.append(f"| {c} {INFO['fashion_mnist']['classes'][c]} | " + " | ".join(cells) + " |")
        lines += ["", "Protocol differences from the published figures:", ""]
        for a in ANCHORS:
            lines.append(f"- {a['method']} ({a['value']:.3f}; {a['source']}): {a['differences']}.")
        lines += ["", "Protocol 1 is Fashion-MNIST only: mnist_5k has about 350 training digits per class, where "
                  "the protocol trains on a class's 6,000. Reproduce it with `aezoo bench anomaly --protocol oneclass "
                  "--output-dir DIR` (trains the 40 models; a stopped run resumes from DIR); protocol 2 with "
                  "`aezoo bench anomaly`.", ""]
    return "\n".join(lines)


def card_summary(entry_result: dict) -> dict:
    """The headline numbers for an entry's card: its default score, AUROC and FPR95 (protocol 2).

    Example:
        >>> card_summary(results["entries"]["conv_mnist"])
        {'default_score': 'mse', 'auroc': 0.999, 'fpr95': 0.002, 'normal': 'mnist_5k:test', ...}
    """
    s = entry_result["default_score"]
    m = entry_result["scores"][s]
    return {"default_score": s, "auroc": m["auroc"], "fpr95": m["fpr95"],
            "normal": entry_result.get("normal"), "anomalous": entry_result.get("anomalous"),
            "selected_on": entry_result.get("selected_on", "validation AUROC")}


def figures(results: dict, directory: str | os.PathLike) -> list:
    """PNGs beside the results JSON: per-class one-class AUROC bars (protocol 1) and a
    heat map of the OOD AUROC of every entry and score (protocol 2).

    Args:
        results: the merged task file (or a `run` result).
        directory: where to write them.

    Returns:
        The paths written.

    Example:
        >>> figures(json.load(open("pretrained/tasks/anomaly.json")), "pretrained/tasks")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aezoo.tasks import save_figure

    written = []
    oneclass = results.get("oneclass")
    if oneclass and oneclass.get("families"):
        from aezoo.datasets import INFO

        fams, base = oneclass["families"], oneclass.get("baselines") or {}
        series = [(f"{f} AE ({s['default_score']}): mean {s['default_mean_auroc']:.3f}",
                   [s["classes"][str(c)]["scores"][s["default_score"]]["test_auroc"] for c in oneclass["classes"]])
                  for f, s in fams.items()]
        series += [(f"pixels, {m}: mean {b['mean']:.3f}", [b["classes"][str(c)]["test_auroc"]
                                                          for c in oneclass["classes"]]) for m, b in base.items()]
        fig, ax = plt.subplots(figsize=(12, 4.5))
        width = 0.8 / len(series)
        xs = np.arange(len(oneclass["classes"]))
        for i, (label, values) in enumerate(series):
            ax.bar(xs + (i - (len(series) - 1) / 2) * width, values, width, label=label,
                   hatch="//" if label.startswith("pixels") else None, alpha=0.9)
        for a, style in zip(ANCHORS, (":", "--", "-.", "-")):
            ax.axhline(a["value"], color="gray", linestyle=style, linewidth=1, label=f"{a['method']} (published mean)")
        ax.set_xticks(xs, [INFO["fashion_mnist"]["classes"][c] for c in oneclass["classes"]], rotation=20)
        ax.set_ylim(0.5, 1.0)
        ax.set_ylabel("test AUROC (class normal vs the other 9)")
        ax.set_title("One-class Fashion-MNIST: one model per class and family (aezoo bench anomaly, protocol 1)")
        ax.legend(fontsize=7, ncol=2, loc="lower left")
        fig.tight_layout()
        written.append(save_figure(fig, os.path.join(directory, "anomaly_oneclass.png")))
        plt.close(fig)
    rows = _entry_rows(results)
    if rows:
        grid = np.full((len(rows), len(SCORES)), np.nan)
        for i, (_, _, r) in enumerate(rows):
            for j, s in enumerate(SCORES):
                if s in r["scores"]:
                    grid[i, j] = r["scores"][s]["auroc"]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
        image = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
        for i, (_, _, r) in enumerate(rows):
            for j, s in enumerate(SCORES):
                if np.isfinite(grid[i, j]):
                    bold = "bold" if s == r.get("default_score") else "normal"
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8, fontweight=bold)
        ax.set_xticks(range(len(SCORES)), SCORES, rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), [f"{n} v{v} ({r.get('normal', '?').split(':')[0]} vs "
                                         f"{r.get('anomalous', '?').split(':')[0]})" for n, v, r in rows], fontsize=8)
        ax.set_title("OOD AUROC on test (bold: the entry's default score, chosen on validation)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.03)
        fig.tight_layout()
        written.append(save_figure(fig, os.path.join(directory, "anomaly_ood.png")))
        plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> dict:
    """`python -m aezoo.tasks.anomaly`: run a protocol through `aezoo.tasks.bench` (merged into
    pretrained/tasks/anomaly.json, figures beside it) and print its table.

    Example:
        python -m aezoo.tasks.anomaly                                  # protocol 2, every published entry
        python -m aezoo.tasks.anomaly conv_mnist:1 vae_mnist:1
        python -m aezoo.tasks.anomaly --protocol oneclass --output-dir runs/oneclass   # trains 40 models
    """
    import argparse

    from aezoo import tasks

    parser = argparse.ArgumentParser(prog="python -m aezoo.tasks.anomaly", description=main.__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="NAME or NAME:VERSION (protocol ood; default: every published)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ood")
    parser.add_argument("--families", nargs="*", help="oneclass: families (default: all in oneclass.json)")
    parser.add_argument("--classes", nargs="*", type=int, help="oneclass: normal classes (default 0-9)")
    parser.add_argument("--output-dir", help="oneclass: run directories (kept; an interrupted run resumes)")
    parser.add_argument("--output", help="the JSON file to merge into (default pretrained/tasks/anomaly.json)")
    parser.add_argument("--quick", action="store_true", help="the small, fast variant (not written by default)")
    args = parser.parse_args(argv)
    options = {}
    if args.protocol == "oneclass":
        options.update(protocol="oneclass", families=args.families, classes=args.classes, output_dir=args.output_dir)
    if args.protocol == "ood":
        names = args.names or None
    else:  # the one-class protocol trains its own models: bench needs some entry to resolve, it is not used
        names = [_published_items()[0]]
    result = tasks.bench(TASK, names, quick=args.quick, output=args.output, **options)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
