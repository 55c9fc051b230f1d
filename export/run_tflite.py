#!/usr/bin/env python3
"""Reconstruct images with an aezoo TFLite export: no TensorFlow, no aezoo.

Needs only ai-edge-litert, numpy and Pillow (or matplotlib) for the PNG.

    python export/run_tflite.py conv_mnist.tflite images.npy --png recon.png

IMAGES.npy: float32 (N, 28, 28, 1) (or (N, H, W) / the model's shape) with
values in [0, 1]. Without it, the 32 embedded sample images of the repo
(aezoo/samples/samples.npz, read as a file; `--sample mnist|fashion_mnist`). MODEL is a full-model export (`part="full"`: images in,
reconstructions out), any quantization; for int8 input/output tensors the
images are quantized and the outputs dequantized with the parameters stored
in the model. Writes a PNG grid (originals over reconstructions) and prints
one JSON line: {"model", "runtime", "images", "mse", "png", ...}.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


# The repo's embedded sample (read as a data file: aezoo itself is not imported).
SAMPLES = Path(__file__).resolve().parent.parent / "aezoo" / "samples" / "samples.npz"


def load_images(path, sample="mnist"):
    if path is None:  # the embedded sample: uint8 (32, 28, 28, 1) per dataset
        if not SAMPLES.exists():
            raise SystemExit(f"no embedded sample at {SAMPLES}; pass a .npy of images.")
        with np.load(SAMPLES, allow_pickle=False) as f:
            if sample not in f.files:
                raise SystemExit(f"{SAMPLES} has no {sample!r} images; it has {', '.join(f.files)}.")
            return f[sample].astype("float32") / 255.0
    x = np.load(path, allow_pickle=False)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) == 0:
        raise SystemExit(f"{path}: expected images (N, H, W, C); got shape {x.shape}.")
    if not np.issubdtype(x.dtype, np.floating):
        raise SystemExit(f"{path}: expected float pixels in [0, 1]; got dtype {x.dtype} (divide by 255).")
    x = x.astype("float32")
    if not np.isfinite(x).all() or x.min() < -0.5 or x.max() > 1.5:
        raise SystemExit(f"{path}: expected finite pixels in [0, 1]; got [{x.min():g}, {x.max():g}].")
    return x


def quantize(x, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype.kind not in "iu":
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(y, detail):
    if np.dtype(detail["dtype"]).kind not in "iu":
        return y.astype("float32")
    scale, zero_point = detail["quantization"]
    return (y.astype("float32") - zero_point) * scale


def reconstruct(model_path, x):
    interpreter = Interpreter(model_path=model_path)
    inputs = interpreter.get_input_details()
    if len(inputs) != 1 or list(inputs[0]["shape_signature"][1:]) != list(x.shape[1:]):
        shapes = [list(d["shape_signature"]) for d in inputs]
        raise SystemExit(
            f"{model_path}: takes inputs {shapes}, not images {list(x.shape[1:])}; "
            "this script needs a full-model export (part='full') for images of this shape."
        )
    (detail,) = inputs
    interpreter.resize_tensor_input(detail["index"], list(x.shape))  # the batch is dynamic
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], quantize(x, detail))
    interpreter.invoke()
    outputs = [d for d in interpreter.get_output_details() if list(d["shape"]) == list(x.shape)]
    if not outputs:
        raise SystemExit(f"{model_path}: no output has the images' shape {list(x.shape)}.")
    out = outputs[0]
    return dequantize(interpreter.get_tensor(out["index"]), out), np.dtype(detail["dtype"]).name


def grid(originals, reconstructions, columns=8, pad=2, scale=3):
    """Pairs of rows: originals over their reconstructions; float in [0, 1]."""
    n, h, w, c = originals.shape
    rows = -(-n // columns)
    canvas = np.ones((2 * rows * (h + pad) + pad, columns * (w + pad) + pad, c), "float32")
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = 2 * r * (h + pad) + pad, col * (w + pad) + pad
        canvas[top: top + h, left: left + w] = originals[i]
        canvas[top + h + pad: top + 2 * h + pad, left: left + w] = reconstructions[i]
    canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
    return (np.clip(canvas, 0, 1) * 255).round().astype("uint8")


def save_png(pixels, path):
    pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    try:
        from PIL import Image

        Image.fromarray(pixels).save(path)
    except ImportError:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.imsave(path, pixels, cmap="gray" if pixels.ndim == 2 else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a full-model .tflite export")
    parser.add_argument("images", nargs="?", default=None,
                        help=".npy of float32 images (N, 28, 28, 1) in [0, 1]; default: the embedded sample")
    parser.add_argument("--sample", default="mnist", choices=("mnist", "fashion_mnist"),
                        help="which embedded sample (32 test images) to use without IMAGES (default mnist)")
    parser.add_argument("--png", default="reconstructions.png", help="where to write the grid")
    parser.add_argument("--show", type=int, default=16, help="images in the grid (default 16)")
    args = parser.parse_args(argv)

    x = load_images(args.images, args.sample)
    recon, input_dtype = reconstruct(args.model, x)
    mse = float(np.mean(np.square(x - recon)))
    show = max(1, min(args.show, len(x)))
    save_png(grid(x[:show], recon[:show]), args.png)
    print(json.dumps({"model": args.model, "data": args.images or f"embedded:{args.sample}", "runtime": "ai_edge_litert", "images": int(len(x)),
                      "mse": mse, "input_dtype": input_dtype, "png": args.png}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
