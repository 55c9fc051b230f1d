"""Compression: quantized latent codes as an image codec, beside JPEG, PNG and quantized PCA.

    aezoo bench compress [NAME[:VERSION] ...]

Protocol (`PROTOCOL`): the full test split of the entry's dataset.

- **Codes.** Each latent dimension is quantized uniformly to `bits` bits
  (`BITS`) over its range on the train split (per-dimension min and max of
  the train codes; test codes outside are clipped), then dequantized to the
  level's value and decoded. Rate: the fixed-length code, latent_dim × bits / 8
  bytes per image, and, as an estimate of what an entropy coder would reach,
  the cross-entropy of the test symbols under each dimension's symbol
  histogram on the train split (add-one smoothed), summed over dimensions
  (``entropy_bytes``; no coder is run, so this is an estimate of the rate).
  The float32 code (4 bytes per dimension) is the unquantized reference.
- **Distortion.** PSNR of the MSE pooled over the split (peak 1).
- **Baselines**, same run: JPEG (Pillow, grayscale, `JPEG_QUALITIES`,
  ``optimize=True``; bytes = the whole file, headers included, since a single
  28x28 image has to carry them), PNG (Pillow, ``optimize=True``, lossless),
  and PCA (scikit-learn, fitted on train) with `PCA_COMPONENTS` components
  quantized the same way as the codes.

`figures` draws the rate-distortion plane per dataset
(``pretrained/tasks/compress_DATASET.png``).
"""

from __future__ import annotations

import io

import numpy as np

from aezoo import tasks
from aezoo.errors import InputError

TASK = "compress"
BITS = (8, 6, 4, 3, 2)
JPEG_QUALITIES = (5, 10, 25, 50, 75, 90, 95)
PCA_COMPONENTS = (8, 16, 32, 64)
QUICK = {"train": 2000, "test": 300}
PROTOCOL = (
    "Test split of each entry's dataset (Fashion-MNIST 10,000 images; mnist_5k 1,000). Codes quantized uniformly "
    "per dimension to 8, 6, 4, 3 and 2 bits over the dimension's min–max range on the train split (clipped "
    "outside), dequantized and decoded; rate = latent_dim × bits / 8 bytes per image (fixed-length code), and in "
    "brackets an entropy-coding estimate: the cross-entropy of the test symbols under each dimension's train "
    "histogram (add-one smoothed). Distortion: PSNR of the pooled MSE. Baselines, same run: JPEG (Pillow, "
    "grayscale, optimize=True; bytes = the whole file, headers included), PNG (lossless) and PCA (fitted on "
    "train) with 8/16/32/64 components quantized the same way."
)
ANCHORS: list = []


def applies_to(entry: dict) -> bool:
    """Entries whose `uses` include compression (the vector-bottleneck autoencoders)."""
    return "compression" in entry.get("uses", [])


# --------------------------------------------------------------------------- quantization


def fit_ranges(z_train):
    """Per-dimension (lo, hi) of the train codes (a degenerate dimension gets a tiny width)."""
    z = np.asarray(z_train, dtype="float64")
    lo, hi = z.min(axis=0), z.max(axis=0)
    return lo, np.where(hi > lo, hi, lo + 1e-12)


def quantize(z, lo, hi, bits: int) -> np.ndarray:
    """Integer symbols in [0, 2**bits - 1]: uniform levels over [lo, hi] per dimension, clipped outside.

    Example:
        >>> quantize(np.array([[0.0], [0.5], [1.0]]), np.zeros(1), np.ones(1), 1)[:, 0]
        array([0, 0, 1])
    """
    if not 1 <= int(bits) <= 16:
        raise InputError(f"bits must be 1..16; got {bits}.")
    levels = 2 ** int(bits) - 1
    z = np.clip(np.asarray(z, dtype="float64"), lo, hi)
    return np.rint((z - lo) / (hi - lo) * levels).astype(np.int64)


def dequantize(q, lo, hi, bits: int) -> np.ndarray:
    """The value of each symbol's level (float32)."""
    levels = 2 ** int(bits) - 1
    return (lo + np.asarray(q, dtype="float64") / levels * (hi - lo)).astype("float32")


def entropy_bytes(q_test, q_train, bits: int) -> float:
    """Mean bytes per image an ideal coder with per-dimension train histograms would spend.

    Each dimension's symbol probabilities are its train histogram, add-one
    smoothed; the cost of a test image is the sum over dimensions of
    -log2 p(symbol).
    """
    q_test, q_train = np.asarray(q_test), np.asarray(q_train)
    total = 0.0
    for d in range(q_train.shape[1]):
        counts = np.bincount(q_train[:, d], minlength=2 ** int(bits)).astype("float64") + 1.0
        total += float(-np.log2(counts / counts.sum())[q_test[:, d]].sum())
    return total / len(q_test) / 8.0


def rate_distortion(z_train, z_test, decode_fn, x_test, bits=BITS) -> dict:
    """bits -> {"bytes", "entropy_bytes", "psnr"} (and "32": the float32 code), for one encoder.

    Args:
        z_train, z_test: codes (N, D) of the train and test images.
        decode_fn: codes -> images.
        x_test: the test images.
        bits: bit depths to try.
    """
    dims = int(np.asarray(z_test).shape[1])
    out = {"32": {"bytes": 4.0 * dims, "psnr": tasks.psnr_pooled(x_test, decode_fn(z_test))}}
    lo, hi = fit_ranges(z_train)
    for b in bits:
        q_test, q_train = quantize(z_test, lo, hi, b), quantize(z_train, lo, hi, b)
        out[str(b)] = {"bytes": dims * b / 8.0, "entropy_bytes": entropy_bytes(q_test, q_train, b),
                       "psnr": tasks.psnr_pooled(x_test, decode_fn(dequantize(q_test, lo, hi, b)))}
    return out


# --------------------------------------------------------------------------- classical codecs


def _uint8(x):
    return np.rint(np.clip(np.asarray(x, dtype="float64"), 0, 1) * 255).astype(np.uint8)


def jpeg(x, quality: int) -> tuple:
    """Mean bytes per image and the decoded images of Pillow's JPEG at `quality` (grayscale, optimized)."""
    from PIL import Image

    sizes, decoded = [], []
    for im in _uint8(x)[..., 0]:
        buf = io.BytesIO()
        Image.fromarray(im, mode="L").save(buf, format="JPEG", quality=int(quality), optimize=True)
        sizes.append(buf.tell())
        buf.seek(0)
        decoded.append(np.asarray(Image.open(buf), dtype="float32") / 255.0)
    return float(np.mean(sizes)), np.stack(decoded)[..., None]


def png_bytes(x) -> float:
    """Mean bytes per image of Pillow's PNG (grayscale, optimized, lossless)."""
    from PIL import Image

    sizes = []
    for im in _uint8(x)[..., 0]:
        buf = io.BytesIO()
        Image.fromarray(im, mode="L").save(buf, format="PNG", optimize=True)
        sizes.append(buf.tell())
    return float(np.mean(sizes))


def baselines(x_train, x_test, components=PCA_COMPONENTS, qualities=JPEG_QUALITIES, bits=BITS, seed: int = 0) -> dict:
    """JPEG at each quality, PNG, and quantized PCA with each number of components on one dataset."""
    from sklearn.decomposition import PCA

    out = {"jpeg": {}, "png": {"bytes": png_bytes(x_test), "psnr": None, "lossless": True}, "pca": {}}
    for q in qualities:
        size, decoded = jpeg(x_test, q)
        out["jpeg"][str(q)] = {"bytes": size, "psnr": tasks.psnr_pooled(x_test, decoded)}
    out["jpeg_blank_bytes"] = jpeg(np.zeros((1,) + x_test.shape[1:], "float32"), 50)[0]
    flat = lambda x: np.asarray(x, dtype="float32").reshape(len(x), -1)  # noqa: E731
    shape = x_test.shape[1:]
    for k in components:
        pca = PCA(n_components=int(k), random_state=seed).fit(flat(x_train))
        decode_fn = lambda z, pca=pca: np.clip(pca.inverse_transform(z), 0, 1).reshape((-1,) + shape)  # noqa: E731
        out["pca"][str(k)] = rate_distortion(pca.transform(flat(x_train)), pca.transform(flat(x_test)), decode_fn,
                                             x_test, bits)
    return out


# --------------------------------------------------------------------------- the protocol


def run(models=None, names=None, *, quick: bool = False, seed: int = 0, progress: bool = True, data=None) -> dict:
    """Run the compression protocol (see the module docstring) on zoo entries.

    Args:
        models: name -> model to measure (default: load each named entry).
        names: ``NAME[:VERSION]`` strings (default: every published entry used for compression).
        quick: 2,000 train (for the ranges and PCA) and 300 test images (smoke runs).
        seed: PCA's random state.
        data: {dataset: {split: (x, y)}} instead of the dataset files (tests).

    Returns:
        {"task", "protocol", "entries", "baselines" (per dataset), "anchors", "settings"}.

    Example:
        >>> run(names=["conv_mnist:1"])["entries"]["conv_mnist"]["bits"]["8"]
    """
    specs = tasks.resolve(names, models, applies_to=applies_to)
    q = QUICK if quick else {}
    result = {"task": TASK, "protocol": PROTOCOL, "entries": {}, "baselines": {}, "anchors": ANCHORS,
              "settings": {"seed": seed, "quick": quick, "bits": list(BITS), "jpeg_qualities": list(JPEG_QUALITIES),
                           "pca_components": list(PCA_COMPONENTS), "ranges": "per-dimension min/max of the train codes"}}
    by_dataset: dict = {}
    for spec in specs:
        by_dataset.setdefault(tasks.dataset_of(spec), []).append(spec)
    bar = tasks.progress_bar(len(specs) + len(by_dataset), "compress", progress)
    for dataset, group in by_dataset.items():
        x_tr, _ = tasks.load_split(dataset, "train", data, q.get("train"))
        x_te, _ = tasks.load_split(dataset, "test", data, q.get("test"))
        base = baselines(x_tr, x_te, seed=seed)
        base["images"] = {"train": int(len(x_tr)), "test": int(len(x_te))}
        result["baselines"][dataset] = base
        bar.update()
        for spec in group:
            bar.set_postfix_str(spec["name"])
            model = tasks.load_model(spec)
            z_tr, z_te = tasks.encode(model, x_tr), tasks.encode(model, x_te)
            result["entries"][spec["name"]] = {
                "version": spec["version"], "dataset": dataset, "latent_dim": int(model.latent_dim),
                "test_images": int(len(x_te)),
                "bits": rate_distortion(z_tr, z_te, lambda z, m=model: tasks.decode(m, z), x_te),
                "pca_same_dims": base["pca"].get(str(model.latent_dim)),
            }
            bar.update()
            del model
    bar.close()
    return result


# --------------------------------------------------------------------------- tables, figures, cards


def _rd_cell(point):
    entropy = f" ({point['entropy_bytes']:.0f})" if "entropy_bytes" in point else ""
    return f"{point['psnr']:.2f} @ {point['bytes']:g} B{entropy}"


def table(results: dict) -> str:
    """Markdown per dataset: PSNR at each bit depth for the entries and PCA; JPEG and PNG beside."""
    rows_by_dataset: dict = {}
    for name, version, r in tasks.entries(results):
        rows_by_dataset.setdefault(r["dataset"], []).append((name, version, r))
    depths = ["32"] + [str(b) for b in BITS]
    head = ("| codes | dims | " + " | ".join("float32" if d == "32" else f"{d}-bit" for d in depths) + " |\n"
            "|---|---|" + "---|" * len(depths))
    out = []
    for dataset in sorted(set(rows_by_dataset) | set(results.get("baselines") or {})):
        base = (results.get("baselines") or {}).get(dataset, {})
        im = base.get("images", {})
        lines = [f"**{dataset}** ({im.get('test', '?'):,} test images; cells: PSNR dB @ bytes per image, fixed-length "
                 "code (entropy-coded estimate)):", "", head]
        for name, version, r in sorted(rows_by_dataset.get(dataset, [])):
            lines.append(f"| {tasks.label(name, version)} | {r['latent_dim']} | "
                         + " | ".join(_rd_cell(r["bits"][d]) if d in r["bits"] else "—" for d in depths) + " |")
        for k in sorted(base.get("pca", {}), key=int):
            p = base["pca"][k]
            lines.append(f"| PCA-{k} | {k} | " + " | ".join(_rd_cell(p[d]) if d in p else "—" for d in depths) + " |")
        if base.get("jpeg"):
            lines += ["", "| codec | bytes per image | PSNR dB |", "|---|---|---|"]
            for qv in sorted(base["jpeg"], key=int):
                j = base["jpeg"][qv]
                lines.append(f"| JPEG q={qv} | {j['bytes']:.0f} | {j['psnr']:.2f} |")
            lines.append(f"| PNG (lossless) | {base['png']['bytes']:.0f} | ∞ |")
            lines.append(f"\nA blank 28×28 JPEG takes {base.get('jpeg_blank_bytes', 0):.0f} bytes: most of a small "
                         "JPEG file is headers and tables.")
        figure = f"compress_{dataset}.png"
        lines.append(f"\n![rate–distortion, {dataset}](pretrained/tasks/{figure})")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def figures(results: dict, directory) -> list:
    """Rate–distortion PNGs (bytes per image, log scale, against PSNR), one per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    rows_by_dataset: dict = {}
    for name, version, r in tasks.entries(results):
        rows_by_dataset.setdefault(r["dataset"], []).append((name, version, r))
    paths = []
    for dataset, base in sorted((results.get("baselines") or {}).items()):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, version, r in sorted(rows_by_dataset.get(dataset, [])):
            pts = sorted((p["bytes"], p["psnr"]) for d, p in r["bits"].items() if d != "32")
            ax.plot(*zip(*pts), "o-", label=f"{tasks.label(name, version)} ({r['latent_dim']}-d)")
        for k in sorted(base.get("pca", {}), key=int):
            pts = sorted((p["bytes"], p["psnr"]) for d, p in base["pca"][k].items() if d != "32")
            ax.plot(*zip(*pts), "s:", alpha=0.6, label=f"PCA-{k}")
        if base.get("jpeg"):
            pts = sorted((j["bytes"], j["psnr"]) for j in base["jpeg"].values())
            ax.plot(*zip(*pts), "^--", color="k", label="JPEG (q 5–95)")
            ax.axvline(base["png"]["bytes"], color="gray", lw=1)
            ax.text(base["png"]["bytes"], ax.get_ylim()[1], " PNG (lossless)", fontsize=7, va="top")
        ax.set_xscale("log")
        ax.set_xlabel("bytes per image (fixed-length code; JPEG/PNG whole files)")
        ax.set_ylabel("PSNR (dB, pooled MSE)")
        ax.set_title(f"Rate–distortion on {dataset} test (quantized codes: 2–8 bits per dimension)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        path = Path(directory) / f"compress_{dataset}.png"
        tasks.save_figure(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def card_summary(entry_result: dict) -> dict:
    """Headline numbers for the card: PSNR and bytes at 8 and 4 bits, beside PCA with as many dimensions."""
    r = entry_result
    pca = r.get("pca_same_dims") or {}
    out = {}
    for b in ("8", "4"):
        p = r["bits"][b]
        out[f"{b}bit"] = {"bytes": p["bytes"], "entropy_bytes": round(p["entropy_bytes"], 1),
                          "psnr": round(p["psnr"], 2),
                          "pca_psnr": round(pca[b]["psnr"], 2) if b in pca else None}
    out["float32_psnr"] = round(r["bits"]["32"]["psnr"], 2)
    return out
