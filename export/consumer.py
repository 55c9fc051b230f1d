"""What the standalone consumers share: images in, a PNG grid out.

numpy only (PIL or matplotlib for the PNG): no TensorFlow, no aezoo, so a
phone-like or serving runtime needs nothing else.
"""

import argparse
from pathlib import Path

import numpy as np

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
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file; expected a .npy of images (N, H, W, C).") from None
    except (ValueError, OSError, EOFError):  # not .npy, an object array (needs pickle), truncated
        raise SystemExit(f"{path}: not a .npy array of numbers (not a .npy file, truncated, or an object array, "
                         "which this script never unpickles); expected float32 images (N, H, W, C) in [0, 1] "
                         "saved with numpy.save.") from None
    if not isinstance(x, np.ndarray):  # an .npz archive
        names = ", ".join(x.files)
        x.close()
        raise SystemExit(f"{path}: an .npz archive ({names}); save one array of images with numpy.save.")
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise SystemExit(f"{path}: dtype {x.dtype} is not numeric; expected float32 images in [0, 1].")
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


def read_card(model_path):
    """The card an aezoo export carries (JSON: entry, version, inputs and outputs in index order,
    quantization, preprocessing), or None: a .tflite's flatbuffer metadata "aezoo_card" (read with
    the schema ai-edge-litert ships), an .onnx's metadata_props (onnxruntime). No TensorFlow, no aezoo."""
    import json

    path = str(model_path)
    if path.endswith(".tflite"):
        from ai_edge_litert import schema_py_generated as schema

        with open(path, "rb") as f:
            model = schema.Model.GetRootAs(f.read(), 0)
        for i in range(model.MetadataLength()):
            meta = model.Metadata(i)
            if meta.Name() == b"aezoo_card":
                return json.loads(model.Buffers(meta.Buffer()).DataAsNumpy().tobytes().decode("utf-8"))
        return None
    if path.endswith(".onnx"):
        import onnxruntime

        metadata = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).get_modelmeta()
        text = metadata.custom_metadata_map.get("aezoo_card")
        return json.loads(text) if text else None
    return None


def card_line(card):
    """What the JSON line says about the model: entry, version and artifact, from its card."""
    if not card:
        return None
    return {"entry": card.get("entry"), "version": card.get("version"), "artifact": card.get("artifact")}


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


def parse_args(doc, extension, argv=None):
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("model", help=f"a full-model {extension} export")
    parser.add_argument("images", nargs="?", default=None,
                        help=".npy of float32 images (N, 28, 28, 1) in [0, 1]; default: the embedded sample")
    parser.add_argument("--sample", default="mnist", choices=("mnist", "fashion_mnist"),
                        help="which embedded sample (32 test images) to use without IMAGES (default mnist)")
    parser.add_argument("--png", default="reconstructions.png", help="where to write the grid")
    parser.add_argument("--show", type=int, default=16, help="images in the grid (default 16)")
    return parser.parse_args(argv)
