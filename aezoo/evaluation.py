"""Measure a model: `aezoo evaluate NAME` / `aezoo.evaluate(NAME)`.

On a dataset split (default: the recipe dataset's test split) it reports, per
image and averaged: MSE, BCE, PSNR and SSIM (tf.image, max value 1.0); always
beside a PCA baseline with the same number of components as the model's latent
size, fitted on the same dataset's train split. Denoisers also report PSNR on
inputs corrupted with the recipe's noise (fixed seed). VAEs also report the
ELBO and the IWAE negative log-likelihood with k samples (nats per image).
Those family metrics come from the family (`Autoencoder.evaluation_extras`).

Keras and TensorFlow are imported when an evaluation starts, not with this module.
"""

from __future__ import annotations

import datetime
import os

import numpy as np

from aezoo import datasets
from aezoo.errors import InputError
from aezoo.registry import get_entry, load

_EPS = 1e-7                 # clip of reconstructions for the BCE
METRICS_BATCH = 1000        # images per tf.image PSNR/SSIM call
SSIM_WINDOW = 11            # tf.image's default SSIM window, shrunk for smaller images


class PCA:
    """Principal component analysis via the eigendecomposition of the covariance."""

    def __init__(self, n_components):
        self.n_components = int(n_components)

    def fit(self, x):
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if self.n_components > min(flat.shape):
            raise InputError(f"PCA with {self.n_components} components needs at least that many examples and features; got {flat.shape}.")
        self.mean_ = flat.mean(axis=0)
        cov = np.cov(flat - self.mean_, rowvar=False)
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1][: self.n_components]
        self.components_ = vectors[:, order].T  # (k, features)
        self.explained_variance_ratio_ = values[order] / values.sum()
        return self

    def transform(self, x):
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return (flat - self.mean_) @ self.components_.T

    def inverse_transform(self, z, shape):
        return (np.asarray(z) @ self.components_ + self.mean_).reshape((-1,) + tuple(shape)).astype("float32")

    def reconstruct(self, x):
        return self.inverse_transform(self.transform(x), x.shape[1:])


def image_metrics(x, recon, batch_size=METRICS_BATCH):
    """Mean per-image MSE, BCE, PSNR (dB) and SSIM of `recon` against `x`."""
    import tensorflow as tf

    x = np.asarray(x, dtype="float32")
    recon = np.clip(np.asarray(recon, dtype="float32"), 0.0, 1.0)
    axes = tuple(range(1, x.ndim))
    mse = np.mean((x - recon) ** 2, axis=axes)
    p = np.clip(recon, _EPS, 1 - _EPS)
    bce = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p), axis=axes)
    psnr, ssim = [], []
    filter_size = min(SSIM_WINDOW, *x.shape[1:3])
    for i in range(0, len(x), batch_size):
        a, b = tf.constant(x[i: i + batch_size]), tf.constant(recon[i: i + batch_size])
        psnr.append(tf.image.psnr(a, b, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(a, b, max_val=1.0, filter_size=filter_size).numpy())
    return {"mse": float(mse.mean()), "bce": float(bce.mean()),
            "psnr": float(np.concatenate(psnr).mean()), "ssim": float(np.concatenate(ssim).mean())}


def _predict(model, x, batch_size):
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def evaluate(name: str, split: str = "test", pretrained: bool = True, weights: str | os.PathLike | None = None,
             model=None, data=None, data_dir: str | os.PathLike | None = None, limit: int | None = None,
             batch_size: int = 256, iwae_k: int = 64, pca: bool | int = True, seed: int = 0, progress: bool = True,
             version: int | None = None) -> dict:
    """Evaluate zoo entry `name` (its pretrained weights by default).

    Args:
        name: a zoo name; gives the dataset and the recipe.
        split: "train", "validation" or "test".
        pretrained, weights: which weights (see `aezoo.load`).
        model: evaluate this model instead of loading `name` (e.g. just trained).
        data: your own images instead of the dataset split.
        data_dir: where the dataset files are (see `aezoo.datasets`).
        limit: only the first `limit` images (an integer >= 1).
        batch_size: images per prediction batch.
        iwae_k: importance samples for the VAE log-likelihood (0 to skip).
        pca: also fit and score the PCA baseline: True for as many components
            as the latent size, an int for that many (e.g. 64 to ask whether a
            16-d model beats a 64-component PCA), False for none.
        seed: seed of the noise (denoisers) and of the samples (VAEs).
        progress: show a progress bar.
        version: which version of the entry (default: the newest published).

    Returns:
        A JSON-ready dict; see `format_report` for a table.

    Example:
        >>> report = aezoo.evaluate("conv_mnist", limit=500)
        >>> report["metrics"]["mse"], report["ratio_to_pca"]["mse"]
    """
    from aezoo.models import Autoencoder

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise InputError(f"limit must be an integer >= 1 (images to evaluate); got {limit!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    if isinstance(iwae_k, bool) or not isinstance(iwae_k, (int, np.integer)) or iwae_k < 0:
        raise InputError(f"iwae_k must be an integer >= 0 (0 skips the IWAE NLL); got {iwae_k!r}.")
    entry = get_entry(name, version)
    recipe = entry["recipe"]
    if model is None:
        model = load(name, pretrained=pretrained, weights=weights, version=entry["version"])
    elif not isinstance(model, Autoencoder):
        raise InputError(f"model must be an aezoo Autoencoder; got {type(model).__name__}.")
    if data is None:
        x, _ = datasets.load_numpy(recipe["dataset"], split, data_dir=data_dir, limit=limit)
        data_desc = {"dataset": recipe["dataset"], "split": split, "source": datasets.source(recipe["dataset"], data_dir)}
    else:
        x = datasets.from_array(data, model.image_shape)
        x = x[: int(limit)] if limit else x
        data_desc = {"dataset": "user data", "split": None}
    data_desc["examples"] = int(len(x))

    steps = ["reconstruct"] + (["pca"] if pca else []) + ["family metrics"]
    bar = _progress(steps, progress, name)
    report = {"name": name, "version": entry["version"], "family": entry["family"],
              "weights": _weights_desc(name, pretrained, weights, model),
              "data": data_desc, "latent_dim": model.latent_dim, "params": int(model.count_params())}
    report["metrics"] = image_metrics(x, _predict(model, x, batch_size))
    bar.update()
    baseline = None
    if pca:
        components = model.latent_dim if pca is True else int(pca)
        x_fit, _ = datasets.load_numpy(recipe["dataset"], "train", data_dir=data_dir)
        baseline = PCA(components).fit(x_fit)
        report["pca"] = {"components": components, "fit_on": f"{recipe['dataset']} train",
                         **image_metrics(x, baseline.reconstruct(x))}
        report["ratio_to_pca"] = {"mse": report["metrics"]["mse"] / report["pca"]["mse"],
                                  "bce": report["metrics"]["bce"] / report["pca"]["bce"]}
        bar.update()
    report.update(model.evaluation_extras(x, metrics=image_metrics,
                                          predict=lambda images: _predict(model, images, batch_size),
                                          baseline=baseline, seed=seed, batch_size=batch_size, iwae_k=iwae_k))
    bar.update()
    bar.close()
    report["versions"] = _versions()
    report["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return report


def _progress(steps, enabled, name):
    from tqdm.auto import tqdm

    return tqdm(total=len(steps), desc=f"evaluate {name}", unit="step", disable=not enabled, leave=False)


def _weights_desc(name, pretrained, weights, model):
    if weights is not None:
        return str(weights)
    return "pretrained" if pretrained else "as given"


def _versions():
    from aezoo._io import versions

    return versions()


def format_report(report):
    """A plain-text table of an `evaluate` report."""
    pca_label = f"PCA-{report['pca']['components']}" if "pca" in report else ""
    rows = [("metric", "model", pca_label, f"model/{pca_label}" if pca_label else "")]
    for key, label in (("mse", "MSE"), ("bce", "BCE"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        model_v = report["metrics"][key]
        pca_v = report.get("pca", {}).get(key)
        ratio = f"{model_v / pca_v:.3f}" if pca_v else ""
        rows.append((label, f"{model_v:.5g}", f"{pca_v:.5g}" if pca_v is not None else "", ratio))
    d = report["data"]
    head = (f"{report['name']} on {d['dataset']} {d.get('split') or ''} ({d['examples']} images), "
            f"latent {report['latent_dim']}, PCA with {report.get('pca', {}).get('components', '-')} components")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    from aezoo.models import FAMILIES

    family = FAMILIES.get(report.get("family"))
    if family is not None:
        lines += family.format_extras(report)
    return "\n".join(lines)
