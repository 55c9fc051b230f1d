#!/usr/bin/env python3
"""Reconstruct images with an aezoo ONNX export: no TensorFlow, no aezoo.

Needs only onnxruntime, numpy and Pillow (or matplotlib) for the PNG.

    python export/run_onnx.py conv_mnist.onnx images.npy --png recon.png

IMAGES.npy: float32 (N, 28, 28, 1) (or (N, H, W) / the model's shape) with
values in [0, 1]. Without it, the 32 embedded sample images of the repo
(aezoo/samples/samples.npz, read as a file; `--sample mnist|fashion_mnist`). MODEL is a full-model export (`part="full"`: input
``images``, output ``reconstruction``; the batch is dynamic). Writes a PNG
grid (originals over reconstructions) and prints one JSON line:
{"model", "runtime", "images", "mse", "png", ...}.
"""

import json
import sys

import numpy as np
import onnxruntime

from consumer import card_line, grid, load_images, parse_args, read_card, save_png  # export/consumer.py


def reconstruct(model_path, x):
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1 or [d if isinstance(d, int) else None for d in inputs[0].shape[1:]] != list(x.shape[1:]):
        shapes = [i.shape for i in inputs]
        raise SystemExit(
            f"{model_path}: takes inputs {shapes}, not images {list(x.shape[1:])}; "
            "this script needs a full-model export (part='full') for images of this shape."
        )
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {inputs[0].name: x})))
    recon = outputs.get("reconstruction")
    if recon is None:
        recon = next((v for v in outputs.values() if v.shape == x.shape), None)
    if recon is None:
        raise SystemExit(f"{model_path}: no output has the images' shape {list(x.shape)}.")
    return recon.astype("float32")


def main(argv=None):
    args = parse_args(__doc__, ".onnx", argv)

    x = load_images(args.images, args.sample)
    recon = reconstruct(args.model, x)
    mse = float(np.mean(np.square(x - recon)))
    show = max(1, min(args.show, len(x)))
    save_png(grid(x[:show], recon[:show]), args.png)
    print(json.dumps({"model": args.model, "data": args.images or f"embedded:{args.sample}", "runtime": "onnxruntime " + onnxruntime.__version__,
                      "images": int(len(x)), "mse": mse, "png": args.png,
                      "card": card_line(read_card(args.model))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
