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

import json
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from consumer import card_line, grid, load_images, parse_args, read_card, save_png  # export/consumer.py


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
    fixed = int(detail["shape_signature"][0])  # -1: a dynamic batch; else the model's fixed batch
    batch = len(x) if fixed < 0 else fixed
    interpreter.resize_tensor_input(detail["index"], [batch] + list(x.shape[1:]))
    interpreter.allocate_tensors()
    outputs = [d for d in interpreter.get_output_details() if list(d["shape"][1:]) == list(x.shape[1:])]
    if not outputs:
        raise SystemExit(f"{model_path}: no output has the images' shape {list(x.shape[1:])}.")
    out, parts = outputs[0], []
    for i in range(0, len(x), batch):  # one call, or one per fixed-size batch (the last one padded)
        chunk = x[i: i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        interpreter.set_tensor(detail["index"], quantize(chunk, detail))
        interpreter.invoke()
        parts.append(dequantize(interpreter.get_tensor(out["index"]), out)[: batch - pad])
    return np.concatenate(parts), np.dtype(detail["dtype"]).name


def main(argv=None):
    args = parse_args(__doc__, ".tflite", argv)

    x = load_images(args.images, args.sample)
    recon, input_dtype = reconstruct(args.model, x)
    mse = float(np.mean(np.square(x - recon)))
    show = max(1, min(args.show, len(x)))
    save_png(grid(x[:show], recon[:show]), args.png)
    print(json.dumps({"model": args.model, "data": args.images or f"embedded:{args.sample}", "runtime": "ai_edge_litert", "images": int(len(x)),
                      "mse": mse, "input_dtype": input_dtype, "png": args.png,
                      "card": card_line(read_card(args.model))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
