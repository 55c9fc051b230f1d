"""The README's main job: pretrained zoo models on embedded real images, offline.

`aezoo demo` loads each model's pretrained weights (bundled with the package),
runs it on 32 embedded test images of its own dataset (Fashion-MNIST test
images 0-31, or 32 digits of the mnist_5k test split), and shows:
reconstructions, denoising at the recipe's noise, VAE samples, and how well the
per-image anomaly score tells its own dataset from the other (AUROC). It writes
one PNG and prints a table.
"""

import numpy as np

from aezoo import _io, datasets

DEFAULT_MODELS = ("conv_fashion_mnist", "denoising_fashion_mnist", "conv_vae_fashion_mnist", "conv_mnist")


def sample_key(dataset):
    """The embedded sample that shows `dataset` (`aezoo.datasets.INFO[dataset]["sample"]`)."""
    return datasets.INFO[dataset]["sample"]


def __getattr__(name):
    if name == "SAMPLE_KEYS":  # the old table, now derived from aezoo.datasets.INFO
        return {d: info["sample"] for d, info in datasets.INFO.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def embedded_samples():
    """{"fashion_mnist": (32, 28, 28, 1) float32, "mnist": ...} in [0, 1]."""
    with _io.package_file("samples", "samples.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        return {k: data[k].astype("float32").reshape(-1, 28, 28, 1) / 255.0 for k in ("fashion_mnist", "mnist")}


def auroc(inlier_scores, outlier_scores):
    """Probability that an outlier scores higher than an inlier (ties count 1/2)."""
    a, b = np.asarray(inlier_scores)[:, None], np.asarray(outlier_scores)[None, :]
    return float((b > a).mean() + 0.5 * (b == a).mean())


def run(output="aezoo_demo.png", model_names=None, n_show=12):
    """Load each model (pretrained, offline), show what it does on the embedded
    test images of its own dataset, print a table and write one PNG.

    Returns:
        One dict per model: model, images, mse, psnr, ssim (of its output
        against the clean images), card_mse, anomaly_auroc (own dataset's
        images against the other's), and psnr_input when the model's input
        is not the clean image (denoisers).
    """
    import aezoo
    from aezoo.evaluation import image_metrics
    from aezoo.plotting import save_grid
    from aezoo.weights import manifest

    samples = embedded_samples()
    names = list(model_names or DEFAULT_MODELS)
    rows, labels, table = [], [], []
    shown_originals = set()
    for name in names:
        key = sample_key(aezoo.get_entry(name)["recipe"]["dataset"])
        other = next(k for k in samples if k != key)
        x = samples[key]
        model = aezoo.load(name)
        if key not in shown_originals:
            rows.append(x[:n_show])
            labels.append(f"{key} test")
            shown_originals.add(key)
        line = {"model": name, "images": f"{len(x)} {key} test"}
        *fed, (out_label, out) = model.showcase(x, seed=0)
        short = name.replace("_fashion_mnist", "").replace("_mnist", "")
        for label, images in fed:
            rows.append(images[:n_show])
            labels.append(label)
        rows.append(out[:n_show])
        labels.append(f"{short} {out_label}" if not fed else out_label)
        m = image_metrics(x, out)
        if fed:
            line["psnr_input"] = image_metrics(x, fed[-1][1])["psnr"]
            line["input"] = fed[-1][0]
        line.update(mse=m["mse"], psnr=m["psnr"], ssim=m["ssim"])
        scores_in = np.asarray(model.anomaly_score(x))
        scores_out = np.asarray(model.anomaly_score(samples[other]))
        line["anomaly_auroc"] = auroc(scores_in, scores_out)
        card = manifest().get(name, {})
        line["card_mse"] = (card.get("metrics") or {}).get("mse")
        ood = (card.get("tasks") or {}).get("anomaly") or {}
        line["card_anomaly"] = {"auroc": ood["auroc"], "score": ood["default_score"]} if "auroc" in ood else None
        if model.generates:
            rows.append(np.asarray(model.sample(n_show, seed=0)))
            labels.append(f"{short} samples")
        table.append(line)

    path = save_grid(rows, output, row_labels=labels, title="aezoo demo: pretrained models on embedded test images")
    print(f"{'model':26s} {'MSE':>8s} {'PSNR dB':>8s} {'SSIM':>6s} {'card MSE':>9s} {'anomaly AUROC':>14s} "
          f"{'card AUROC (score)':>26s}")
    for t in table:
        card = f"{t['card_mse']:.5f}" if t["card_mse"] is not None else "-"
        ood = t.get("card_anomaly")
        ood = f"{ood['auroc']:.3f} ({ood['score']})" if ood else "-"
        extra = f"   (input {t['input']}: PSNR {t['psnr_input']:.2f} dB)" if "psnr_input" in t else ""
        print(f"{t['model']:26s} {t['mse']:8.5f} {t['psnr']:8.2f} {t['ssim']:6.3f} {card:>9s} {t['anomaly_auroc']:14.3f} "
              f"{ood:>26s}{extra}")
    print("MSE/PSNR/SSIM on the 32 embedded test images (denoisers: of the denoised noisy images);")
    print("card MSE: clean reconstruction MSE on the full test split, from the manifest;")
    print("anomaly AUROC: how well the reconstruction error tells these images from the other dataset's;")
    print("card AUROC: the same question on the full test splits with the entry's own default score, chosen on")
    print("validation (aezoo bench anomaly; reconstruction error is a poor score for a U-Net denoiser).")
    print(f"wrote {path}")
    return table
