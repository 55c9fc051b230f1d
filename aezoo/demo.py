"""The README's main job: pretrained zoo models on embedded real images, offline.

`aezoo demo` loads each model's pretrained weights (bundled with the package),
runs it on 32 embedded test images of its own dataset (Fashion-MNIST test
images 0-31, or 32 digits of the mnist_5k test split), and shows:
reconstructions, denoising at the recipe's noise, VAE samples, and how well the
per-image anomaly score tells its own dataset from the other (AUROC). It writes
one PNG and prints a table.
"""

import numpy as np

from aezoo import _io

DEFAULT_MODELS = ("conv_fashion_mnist", "denoising_fashion_mnist", "conv_vae_fashion_mnist", "conv_mnist")
SAMPLE_KEYS = {"fashion_mnist": "fashion_mnist", "mnist_5k": "mnist", "mnist": "mnist"}


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
    import aezoo
    from aezoo.evaluation import image_metrics
    from aezoo.models import DenoisingAutoencoder, VariationalAutoencoder
    from aezoo.plotting import save_grid
    from aezoo.weights import manifest

    samples = embedded_samples()
    names = list(model_names or DEFAULT_MODELS)
    rows, labels, table = [], [], []
    shown_originals = set()
    for name in names:
        dataset = aezoo.get_entry(name)["recipe"]["dataset"]
        key = SAMPLE_KEYS[dataset]
        other = "mnist" if key == "fashion_mnist" else "fashion_mnist"
        x = samples[key]
        model = aezoo.load(name)
        if key not in shown_originals:
            rows.append(x[:n_show])
            labels.append(f"{key} test")
            shown_originals.add(key)
        line = {"model": name, "images": f"{len(x)} {key} test"}
        if isinstance(model, DenoisingAutoencoder):
            noisy = np.asarray(model.corrupt(x, seed=0))
            denoised = np.asarray(model.denoise(noisy))
            rows += [noisy[:n_show], denoised[:n_show]]
            labels += [f"+{model.noise} {model.noise_level}", "denoised"]
            m = image_metrics(x, denoised)
            line["psnr_noisy"] = image_metrics(x, noisy)["psnr"]
        else:
            recon = np.asarray(model.reconstruct(x))
            rows.append(recon[:n_show])
            labels.append(name.replace("_fashion_mnist", "").replace("_mnist", "") + " recon")
            m = image_metrics(x, recon)
        line.update(mse=m["mse"], psnr=m["psnr"], ssim=m["ssim"])
        scores_in = np.asarray(model.anomaly_score(x))
        scores_out = np.asarray(model.anomaly_score(samples[other]))
        line["anomaly_auroc"] = auroc(scores_in, scores_out)
        line["card_mse"] = (manifest().get(name, {}).get("metrics") or {}).get("mse")
        if isinstance(model, VariationalAutoencoder):
            rows.append(np.asarray(model.sample(n_show, seed=0)))
            labels.append("VAE samples")
        table.append(line)

    path = save_grid(rows, output, row_labels=labels, title="aezoo demo: pretrained models on embedded test images")
    print(f"{'model':26s} {'MSE':>8s} {'PSNR dB':>8s} {'SSIM':>6s} {'card MSE':>9s} {'anomaly AUROC':>14s}")
    for t in table:
        card = f"{t['card_mse']:.5f}" if t["card_mse"] is not None else "-"
        extra = f"   (noisy input PSNR {t['psnr_noisy']:.2f} dB)" if "psnr_noisy" in t else ""
        print(f"{t['model']:26s} {t['mse']:8.5f} {t['psnr']:8.2f} {t['ssim']:6.3f} {card:>9s} {t['anomaly_auroc']:14.3f}{extra}")
    print("MSE/PSNR/SSIM on the 32 embedded test images (denoisers: of the denoised noisy images);")
    print("card MSE: clean reconstruction MSE on the full test split, from the manifest;")
    print("anomaly AUROC: how well the reconstruction error tells these images from the other dataset's.")
    print(f"wrote {path}")
    return table
