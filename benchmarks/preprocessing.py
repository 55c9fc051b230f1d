#!/usr/bin/env python3
"""What preprocessing buys on images that are not in the dataset's own form.

For a pretrained entry, takes N test images of its dataset and makes the kinds
of input a user brings (uint8, inverted polarity, the object filling the frame,
the object at half size off centre, 0..16 values, a phone-like photo: dark ink or product on a grey, noisy
background in a larger off-centre frame). Each is fed two ways:

- naive: scaled by its dtype (uint8 / 255), resized to 28x28 if needed, as a
  user who skipped preprocessing would;
- preprocessed: `aezoo.preprocess(name, x)`.

Also how many images the input check flags (`model.preprocess` warns with it: the
reconstruction MSE above the entry's threshold, 1% of validation images above it).

Prints JSON: per variant, the reconstruction MSE against the clean test images
(what the model should have seen), naive and preprocessed, and their ratio to
the clean images' own reconstruction MSE; and how many images the input check
(`model.preprocess`) flags.

    python benchmarks/preprocessing.py conv_mnist conv_fashion_mnist [--n 500]
"""

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def variants(x, seed=0):
    """name -> (images as a user has them, naive [0, 1] 28x28 version)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = len(x)
    x2 = x[..., 0]
    out = {"clean": (x, x), "uint8": ((x * 255).round().astype(np.uint8), x)}
    out["inverted"] = ((255 - (x * 255).round()).astype(np.uint8), 1.0 - x)
    out["range_0_16"] = ((x * 16).round(), np.clip((x * 16).round() / 255.0, 0, 1))  # naive: "divide by 255"
    filled = []
    for img in x2:
        rows, cols = np.flatnonzero(img.max(1) > 0.05), np.flatnonzero(img.max(0) > 0.05)
        crop = img[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
        s = 28 / max(crop.shape)
        h, w = max(1, round(crop.shape[0] * s)), max(1, round(crop.shape[1] * s))
        big = np.asarray(Image.fromarray(crop.astype("float32"), "F").resize((w, h), Image.Resampling.BILINEAR))
        canvas = np.zeros((28, 28), "float32")
        canvas[(28 - h) // 2: (28 - h) // 2 + h, (28 - w) // 2: (28 - w) // 2 + w] = big
        filled.append(np.clip(canvas, 0, 1))
    filled = np.stack(filled)[..., None]
    out["fills_frame"] = ((filled * 255).round().astype(np.uint8), filled)
    small = []
    for img in x2:  # the object at half size, off centre: a frame with wide margins
        half = np.asarray(Image.fromarray(img.astype("float32"), "F").resize((14, 14), Image.Resampling.BILINEAR))
        top, left = rng.integers(0, 14, 2)
        canvas = np.zeros((28, 28), "float32")
        canvas[top: top + 14, left: left + 14] = np.clip(half, 0, 1)
        small.append(canvas)
    small = np.stack(small)[..., None]
    out["small_off_centre"] = ((small * 255).round().astype(np.uint8), small)
    photos, naive = [], []
    for img in x2:
        size = 64
        paper = 0.8 + 0.03 * rng.standard_normal((size, size))
        s = int(rng.integers(30, 44))
        digit = np.asarray(Image.fromarray(img.astype("float32"), "F").resize((s, s), Image.Resampling.BILINEAR))
        top, left = rng.integers(0, size - s, 2)
        ink = np.zeros((size, size), "float32")
        ink[top: top + s, left: left + s] = np.clip(digit, 0, 1)
        photo = np.clip(paper - 0.65 * ink, 0, 1)
        u8 = (photo * 255).round().astype(np.uint8)
        photos.append(u8)
        naive.append(np.asarray(Image.fromarray(u8).resize((28, 28), Image.Resampling.BILINEAR)) / 255.0)
    out["photo_64px"] = (np.stack(photos), np.stack(naive)[..., None].astype("float32"))
    return out


def measure(name, n, seed=0):
    import aezoo
    from aezoo import datasets
    from aezoo.preprocessing import stored_check

    model = aezoo.load(name)
    dataset = aezoo.get_entry(name)["recipe"]["dataset"]
    x, _ = datasets.load_numpy(dataset, "test", limit=n)
    mse = lambda a: float(np.mean((np.asarray(model.predict(a, verbose=0, batch_size=256)) - x) ** 2))  # noqa: E731
    clean = mse(x)
    rows = {}
    for variant, (raw, naive) in variants(x, seed).items():
        started = time.perf_counter()
        prep = aezoo.preprocess(name, raw)
        seconds = time.perf_counter() - started
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check = stored_check(model)   # the entry's threshold (aezoo/input_checks.json)
            naive_flags = len(check(naive, warn=False)["flagged"]) if check else None
            prep_flags = len(check(prep, warn=False)["flagged"]) if check else None
        rows[variant] = {"naive_mse": mse(naive), "preprocessed_mse": mse(prep),
                         "naive_ratio": mse(naive) / clean, "preprocessed_ratio": mse(prep) / clean,
                         "flagged_naive": naive_flags, "flagged_preprocessed": prep_flags,
                         "preprocess_ms_per_image": 1000 * seconds / len(x)}
        del caught
    return {"entry": name, "dataset": f"{dataset} test[:{len(x)}]", "clean_mse": clean,
            "check": check.to_dict() if check else None, "variants": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["conv_mnist", "conv_fashion_mnist"])
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args(argv)
    results = [measure(name, args.n) for name in args.names]
    print(json.dumps({"benchmark": "preprocessing", "n": args.n, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
