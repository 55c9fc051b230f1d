"""Measure a model: `aezoo evaluate NAME` / `aezoo.evaluate(NAME)`.

On a dataset split (default: the recipe dataset's test split) it reports, per
image and averaged: MSE, BCE, PSNR and SSIM (tf.image, max value 1.0); always
beside a PCA baseline with the same number of components as the model's latent
size, fitted on the same dataset's train split. Denoisers also report PSNR on
inputs corrupted with the recipe's noise (fixed seed). VAEs also report the
ELBO and the IWAE negative log-likelihood with k samples (nats per image).
"""

import datetime

import numpy as np
import keras

from aezoo import datasets
from aezoo.errors import InputError
from aezoo.models import Autoencoder, DenoisingAutoencoder, VariationalAutoencoder
from aezoo.registry import get_entry, load

_EPS = 1e-7


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


def image_metrics(x, recon, batch_size=1000):
    """Mean per-image MSE, BCE, PSNR (dB) and SSIM of `recon` against `x`."""
    import tensorflow as tf

    x = np.asarray(x, dtype="float32")
    recon = np.clip(np.asarray(recon, dtype="float32"), 0.0, 1.0)
    axes = tuple(range(1, x.ndim))
    mse = np.mean((x - recon) ** 2, axis=axes)
    p = np.clip(recon, _EPS, 1 - _EPS)
    bce = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p), axis=axes)
    psnr, ssim = [], []
    filter_size = min(11, *x.shape[1:3])  # tf.image's default 11x11 window, smaller for tiny images
    for i in range(0, len(x), batch_size):
        a, b = tf.constant(x[i: i + batch_size]), tf.constant(recon[i: i + batch_size])
        psnr.append(tf.image.psnr(a, b, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(a, b, max_val=1.0, filter_size=filter_size).numpy())
    return {"mse": float(mse.mean()), "bce": float(bce.mean()),
            "psnr": float(np.concatenate(psnr).mean()), "ssim": float(np.concatenate(ssim).mean())}


def _predict(model, x, batch_size):
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def evaluate(name, split="test", pretrained=True, weights=None, model=None, data=None, data_dir=None,
             limit=None, batch_size=256, iwae_k=64, pca=True, seed=0, progress=True, version=None):
    """Evaluate zoo entry `name` (its pretrained weights by default).

    Args:
        name: a zoo name; gives the dataset and the recipe's noise.
        split: "train", "validation" or "test".
        pretrained, weights: which weights (see `aezoo.load`).
        model: evaluate this model instead of loading `name` (e.g. just trained).
        data: your own images instead of the dataset split.
        limit: only the first `limit` images of the split.
        iwae_k: importance samples for the VAE log-likelihood (0 to skip).
        pca: also fit and score the PCA baseline: True for as many components
            as the latent size, an int for that many (e.g. 64 to ask whether a
            16-d model beats a 64-component PCA), False for none.
        version: which version of the entry (default: the newest published).

    Returns:
        A JSON-ready dict; see `format_report` for a table.

    Example:
        >>> report = aezoo.evaluate("conv_mnist", limit=500)
        >>> report["metrics"]["mse"], report["ratio_to_pca"]["mse"]
    """
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

    steps = ["reconstruct"] + (["pca"] if pca else []) + (["denoise"] if isinstance(model, DenoisingAutoencoder) else [])
    if isinstance(model, VariationalAutoencoder):
        steps += ["elbo"] + (["iwae"] if iwae_k else [])
    bar = _progress(steps, progress, name)

    report = {"name": name, "version": entry["version"], "family": entry["family"], "weights": _weights_desc(name, pretrained, weights, model),
              "data": data_desc, "latent_dim": model.latent_dim, "params": int(model.count_params())}
    recon = _predict(model, x, batch_size)
    report["metrics"] = image_metrics(x, recon)
    bar.update()
    if pca:
        components = model.latent_dim if pca is True else int(pca)
        x_fit, _ = datasets.load_numpy(recipe["dataset"], "train", data_dir=data_dir)
        baseline = PCA(components).fit(x_fit)
        report["pca"] = {"components": components, "fit_on": f"{recipe['dataset']} train",
                         **image_metrics(x, baseline.reconstruct(x))}
        report["ratio_to_pca"] = {"mse": report["metrics"]["mse"] / report["pca"]["mse"],
                                  "bce": report["metrics"]["bce"] / report["pca"]["bce"]}
        bar.update()
    if isinstance(model, DenoisingAutoencoder):
        noise = recipe.get("corruption") or {"noise": model.noise, "level": model.noise_level}
        noisy = np.asarray(model.corrupt(x, seed=seed))
        denoised = _predict(model, noisy, batch_size)
        report["denoising"] = {"noise": noise["noise"], "level": noise["level"], "seed": seed,
                               "psnr_noisy": image_metrics(x, noisy)["psnr"],
                               **{f"{k}_denoised": v for k, v in image_metrics(x, denoised).items()}}
        if pca:
            report["denoising"]["psnr_pca"] = image_metrics(x, baseline.reconstruct(noisy))["psnr"]
        bar.update()
    if isinstance(model, VariationalAutoencoder):
        elbo = np.concatenate([np.asarray(model.elbo(x[i: i + batch_size], seed=seed + i))
                               for i in range(0, len(x), batch_size)])
        report["vae"] = {"elbo": float(elbo.mean()), "likelihood": model.likelihood_name}
        bar.update()
        if iwae_k:
            if keras.backend.backend() == "tensorflow":
                chunk = max(1, 4096 // int(iwae_k))
                ll = np.concatenate([np.asarray(model.log_likelihood(x[i: i + chunk], k=iwae_k, seed=seed + i))
                                     for i in range(0, len(x), chunk)])
                report["vae"].update(iwae_k=int(iwae_k), nll=float(-ll.mean()))
            else:
                report["vae"]["nll"] = None
                report["vae"]["note"] = "IWAE NLL uses tensorflow-probability: run with KERAS_BACKEND=tensorflow"
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
    if "denoising" in report:
        dn = report["denoising"]
        lines.append(f"denoising ({dn['noise']} {dn['level']}): PSNR noisy {dn['psnr_noisy']:.2f} dB -> "
                     f"denoised {dn['psnr_denoised']:.2f} dB" +
                     (f" (PCA {dn['psnr_pca']:.2f} dB)" if "psnr_pca" in dn else ""))
    if "vae" in report:
        v = report["vae"]
        line = f"VAE: ELBO {v['elbo']:.2f} nats"
        if v.get("nll") is not None:
            line += f", IWAE NLL (k={v['iwae_k']}) {v['nll']:.2f} nats"
        elif v.get("note"):
            line += f" ({v['note']})"
        lines.append(line)
    return "\n".join(lines)
