"""Preprocessing: turn your images into what a zoo entry was trained on.

Like torchvision's ``weights.transforms()`` or a keras-hub preprocessor, every
zoo entry has a preprocessor, kept as data in ``aezoo/preprocessing.json``
(which entry wants which; an entry not listed uses its dataset's):

    >>> import aezoo
    >>> x = aezoo.preprocess("conv_mnist", ["digit.png", "photo.jpg"])   # (2, 28, 28, 1) float32 in [0, 1]
    >>> model = aezoo.load("conv_mnist")
    >>> x = model.preprocess(uint8_images)       # the same, and warns about images unlike the training data
    >>> aezoo.inputs.for_entry("conv_mnist").config
    PreprocessConfig(size=(28, 28), channels=1, polarity='light_on_dark', ...)

What goes in: numpy arrays (uint8, uint16, bool, floats in [0, 1], 0..255 or
other ranges; one image (H, W) / (H, W, C) or a batch (N, H, W) / (N, H, W, C);
an array of 3 dimensions whose last one is 1, 3 or 4 is one image with channels),
PIL images, paths of image files (PNG, JPEG, anything Pillow reads), or a list
of any of these (each image may have its own size). What comes out: float32
(N, H, W, C) in [0, 1] at the entry's size, ready for `model.reconstruct`.

The steps, in order (`Preprocessor.__call__`):

1. **Range**: uint8 / uint16 / bool by their dtype; other numbers by the smallest
   of `KNOWN_MAXIMA` (1, 16, 255, 4095, 65535) that holds the data's maximum (so
   scikit-learn's 0..16 digits become [0, 1]), [-1, 1] when negative values
   appear; or what ``value_range=(lo, hi)`` says, or ``"minmax"`` (per image).
2. **Channels**: colour to grey with the ITU-R 601 luma weights (Pillow's "L"), or
   grey repeated for colour models; an alpha channel is dropped.
3. **Polarity**: the zoo's images are light objects on black. An image whose
   border (its outermost ring of pixels) has a median above `POLARITY_LEVEL`
   is dark-on-light (ink on paper, a product on a white background) and is
   inverted (``polarity="auto"``; ``"keep"`` or ``"invert"`` to decide yourself).
4. **Background**: a grey background is subtracted: with b the border's median
   plus 3 robust standard deviations (1.4826 x its median absolute deviation:
   the paper's grain goes too; at most the median), x -> clip((x - b) / (1 - b),
   0, 1). The datasets' black borders give b = 0: nothing changes. With ``stretch`` (both zoo
   preprocessors) each image is then divided by its maximum, as nearly every
   dataset image already reaches 1.
5. **Framing**, as the entry's dataset was made:
   ``mass_centred`` (the digit entries, MNIST): the object (pixels above
   `OBJECT_LEVEL`) is cropped, resized to fit a 20x20 box keeping its aspect
   ratio (antialiased), and pasted into 28x28 so that its centre of mass falls
   on the centre (14, 14) of the field; ``fit`` (Fashion-MNIST): the object is
   cropped, its longest edge resized to 28, and centred; ``resize``: the whole
   image resized to the model's size. Objects already at the box size are not
   resampled, so the datasets' own images pass through unchanged.

Exported artifacts can carry steps 1, 3, 4 and a plain resize as graph ops
(`Preprocessor.graph_fn`, `aezoo.export(..., preprocess=True)`); framing by the
object's box and centre of mass is data-dependent cropping that TFLite's builtin
ops cannot express, so the artifact's card (`Preprocessor.describe`) tells the
app to do it (``preprocessing.app_steps``).

Inputs unlike the training data: `Autoencoder.preprocess` scores the
preprocessed images with the model's anomaly score (`model.anomaly_score`, the
reconstruction MSE: the detector score "mse") and warns (`UnusualInputWarning`)
when more of them score above the model's threshold than ordinary images would
(binomial tail probability <= `WARN_P`): a lone image above it is enough. The
threshold is data: for a zoo entry's pretrained weights, ``aezoo/input_checks.json``
(``python -m aezoo.inputs build``: an `aezoo.AnomalyDetector` calibrated on the
entry's validation split at 1% false positives); for a preset, its card (calibrated
on the held-out part of its training images). `aezoo.inputs.calibrate` makes one
for any model and images.

This module imports nothing of aezoo but `_io` and `errors` (the models use it);
what needs the registry or the anomaly detector is in `aezoo.inputs`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aezoo import _io
from aezoo.errors import InputError

KNOWN_MAXIMA = (1.0, 16.0, 255.0, 4095.0, 65535.0)
POLARITY_LEVEL = 0.5      # border median above this: dark object on a light background -> invert
OBJECT_LEVEL = 0.2        # pixels above this (after background and stretch) are the object; its faint edge joins it
NOISE_SIGMAS = 3.0        # the background level is the border median + this many robust standard deviations
MAD_TO_SIGMA = 1.4826     # median absolute deviation -> standard deviation (Gaussian)
EDGE_LEVEL = 5 / 255      # the object's faint edge: pixels above this next to it
BOX_SLACK = 2             # an object within this many pixels under the box size is not resampled
LUMA = (0.299, 0.587, 0.114)   # ITU-R 601-2, as Pillow's convert("L")
FRAMINGS = ("mass_centred", "fit", "resize")
POLARITIES = ("light_on_dark", "dark_on_light", "keep")
BACKGROUNDS = ("subtract", "keep")
CHECK_FPR = 0.01          # the input check's threshold: 1% of validation images score above it
CHECK_COUNT = 1000        # validation images it is calibrated on (at most)
WARN_P = 0.01             # warn when P(this many flagged | ordinary images) <= WARN_P
DATA_FILE = "preprocessing.json"
CHECKS_FILE = "input_checks.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

__all__ = ["PreprocessConfig", "Preprocessor", "UnusualInputWarning", "InputCheck", "config_for", "for_model",
           "read_images", "guess_range", "stored_check", "preprocess_for_model", "config_data", "check_data"]


class UnusualInputWarning(UserWarning):
    """Images that score as anomalies for the model: they look unlike its training data."""


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """What an entry's images look like (one row of ``aezoo/preprocessing.json``).

    Args:
        size: (height, width) the model takes.
        channels: 1 (grey) or 3 (colour).
        polarity: "light_on_dark" (the zoo's datasets), "dark_on_light", or "keep" (never invert).
        background: "subtract" (a grey background becomes black) or "keep".
        framing: "mass_centred", "fit" or "resize" (see the module docstring).
        box: the object box size for "mass_centred" (20 for MNIST) and "fit".
        stretch: after the background, scale each image so its brightest pixel is 1
            (the datasets' images nearly all reach 1; faint ink or a dim product do not).
        source: where the recipe comes from (paper, section).
        name: the preprocessor's name in the data file ("generic" for a model of no entry).
    """

    size: tuple[int, int] = (28, 28)
    channels: int = 1
    polarity: str = "light_on_dark"
    background: str = "subtract"
    framing: str = "resize"
    box: int | None = None
    stretch: bool = False
    source: str = ""
    name: str = "generic"

    def __post_init__(self):
        size = tuple(int(s) for s in self.size)
        if len(size) != 2 or min(size) < 1:
            raise InputError(f"preprocessor size is (height, width) in pixels; got {self.size!r}.")
        object.__setattr__(self, "size", size)
        if int(self.channels) not in (1, 3):
            raise InputError(f"preprocessor channels must be 1 or 3; got {self.channels!r}.")
        for what, value, allowed in (("polarity", self.polarity, POLARITIES), ("background", self.background,
                                     BACKGROUNDS), ("framing", self.framing, FRAMINGS)):
            if value not in allowed:
                raise InputError(f"preprocessor {what} {value!r} is unknown; expected one of {', '.join(allowed)}.")
        if self.framing != "resize":
            box = int(self.box or min(size))
            if not 1 <= box <= min(size):
                raise InputError(f"preprocessor box {self.box!r} must fit in the size {size}.")
            object.__setattr__(self, "box", box)

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        out = dataclasses.asdict(self)
        out["size"] = list(self.size)
        return out


# --------------------------------------------------------------------------- the data


@functools.lru_cache(maxsize=1)
def config_data() -> dict:
    """The parsed ``aezoo/preprocessing.json``: preprocessors, datasets, entries."""
    return json.loads(_io.package_file(DATA_FILE).read_text())


def _named(name: str, data: dict) -> PreprocessConfig:
    spec = dict(data["preprocessors"][name])
    spec["size"] = tuple(spec["size"])
    return PreprocessConfig(**spec, name=name)


def config_for(name: str | None, dataset: str | None, input_shape) -> "Preprocessor":
    """The preprocessor that ``preprocessing.json`` names for entry `name` (else for its
    `dataset`), sized to `input_shape`; a generic one when neither is listed.

    `aezoo.inputs.for_entry(name)` looks the entry up in the registry and calls this.

    Example:
        >>> config_for("conv_mnist", "mnist_5k", (28, 28, 1)).config.framing
        'mass_centred'
    """
    data = config_data()
    key = data["entries"].get(name or "") or data["datasets"].get(dataset or "")
    shape = tuple(input_shape)
    if key is None:
        return Preprocessor(_generic(shape), entry=name)
    config = _named(key, data)
    if tuple(config.size) != tuple(shape[:2]) or config.channels != shape[-1]:
        config = dataclasses.replace(config, size=tuple(shape[:2]), channels=int(shape[-1]),
                                     box=min(config.box or shape[0], *shape[:2]))
    return Preprocessor(config, entry=name)


def _generic(shape) -> PreprocessConfig:
    return PreprocessConfig(size=tuple(shape[:2]), channels=int(shape[-1]) if len(shape) == 3 else 1,
                            framing="resize", name="generic")


def for_model(model) -> "Preprocessor":
    """The preprocessor of `model`: its preset's (`aezoo.save`), its zoo entry's
    (`model.zoo_entry`, set by `aezoo.load`), or a generic one (range, channels,
    polarity, background, resize) sized to its input.

    Example:
        >>> for_model(aezoo.load("conv_fashion_mnist")).config.framing
        'fit'
    """
    entry = getattr(model, "zoo_entry", None) or {}
    stored = getattr(model, "preprocessing_config", None)
    if isinstance(stored, dict):
        spec = {k: v for k, v in stored.items() if k in {f.name for f in dataclasses.fields(PreprocessConfig)}}
        return Preprocessor(PreprocessConfig(**spec), entry=entry.get("name"), version=entry.get("version"))
    prep = config_for(entry.get("name"), entry.get("dataset"), tuple(model.image_shape))
    prep.version = entry.get("version")
    return prep


# --------------------------------------------------------------------------- reading images


def _from_pil(img) -> np.ndarray:
    """A PIL image as an array: uint8 (H, W) or (H, W, 3); 16-bit as uint16; float modes as float32."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.uint16)
    if mode in ("I", "F"):
        return np.asarray(img, dtype=np.float32)
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("L", "RGB"):
        return np.asarray(img)
    if mode in ("LA", "La"):
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))


def _open(path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file {path} does not exist." if not path.exists() else f"{path} is not a file.")
    try:
        with Image.open(path) as img:
            img.load()
            return _from_pil(img)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{path} is not an image Pillow can read ({e}); expected PNG, JPEG, ...") from None


def read_images(source: str | os.PathLike) -> tuple[list[np.ndarray] | np.ndarray, str]:
    """Images from a file or a folder, for training, evaluation and export calibration.

    Args:
        source: a ``.npy`` array; a ``.npz`` with an ``x``, ``images``, ``x_train``
            or only array; an image file; or a folder of image files (PNG, JPEG, ...;
            sorted by name, not recursive).

    Returns:
        (images, description): an array (``.npy``/``.npz``) or a list of arrays,
        raw (not yet preprocessed), and what was read.

    Raises:
        InputError: a missing path, an empty folder, an unreadable file.

    Example:
        >>> images, what = read_images("my_digits/")
        >>> x = aezoo.preprocess("conv_mnist", images)
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist; expected a .npy, a .npz or a folder of PNG/JPEG images.")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path} has no image files ({', '.join(IMAGE_SUFFIXES)}).")
        return [_open(p) for p in files], f"{path}/ ({len(files)} image files)"
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise InputError(f"{path}: not a plain numeric .npy ({e}).") from None
        return arr, f"{path} {tuple(arr.shape)} {arr.dtype}"
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                keys = list(f.files)
                key = next((k for k in ("x", "images", "x_train") if k in keys), keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise InputError(f"{path} holds arrays {keys}; name the images 'x' or 'images'.")
                arr = f[key]
        except ValueError as e:
            raise InputError(f"{path}: not a plain numeric .npz ({e}).") from None
        return arr, f"{path}[{key}] {tuple(arr.shape)} {arr.dtype}"
    if suffix in IMAGE_SUFFIXES:
        return [_open(path)], str(path)
    raise InputError(f"{path}: expected a .npy, a .npz, an image file or a folder of images; got {suffix!r}.")


def _to_images(x) -> list[np.ndarray]:
    """Anything we accept -> a list of numeric arrays (H, W) or (H, W, C), or one stacked array."""
    if isinstance(x, (str, os.PathLike)):
        if Path(x).is_dir() or Path(x).suffix.lower() in (".npy", ".npz"):
            x = read_images(x)[0]
            return _to_images(x)
        return [_open(x)]
    if type(x).__module__.startswith("PIL.") and hasattr(x, "mode"):
        return [_from_pil(x)]
    if isinstance(x, (list, tuple)):
        if not x:
            raise InputError("no images: got an empty list.")
        if all(isinstance(i, (str, os.PathLike)) or hasattr(i, "mode") or isinstance(i, np.ndarray) for i in x) \
                and not all(isinstance(i, np.ndarray) and i.shape == np.shape(x[0]) for i in x):
            out = []
            for item in x:
                out.extend(_to_images(item))
            return out
    arr = x if isinstance(x, np.ndarray) else np.asarray(_concrete(x))
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"images must be numeric arrays, PIL images or paths; got dtype {arr.dtype}.")
    if arr.ndim == 2:
        return [arr]
    if arr.ndim == 3:
        return [arr] if arr.shape[-1] in (1, 3, 4) else list(arr)
    if arr.ndim == 4:
        if arr.shape[0] == 0:
            raise InputError(f"an empty batch of images (shape {arr.shape}).")
        return list(arr)
    raise InputError(f"images have shape {arr.shape}; expected (H, W), (H, W, C), (N, H, W) or (N, H, W, C).")


def _concrete(x):
    try:
        from keras import ops

        return ops.convert_to_numpy(x)
    except Exception:
        return x


def guess_range(arr: np.ndarray) -> tuple[float, float]:
    """The value range `arr`'s pixels were stored in (step 1 of the module docstring).

    Example:
        >>> guess_range(np.array([0, 7, 16.0]))     # scikit-learn's 8x8 digits
        (0.0, 16.0)
    """
    arr = np.asarray(arr)
    if arr.dtype == bool:
        return 0.0, 1.0
    if arr.dtype in (np.uint8, np.uint16):
        return 0.0, float(np.iinfo(arr.dtype).max)
    if arr.size == 0:
        return 0.0, 1.0
    finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0:
        if lo >= -1.0 - 1e-6 and hi <= 1.0 + 1e-6:
            return -1.0, 1.0
        return lo, hi
    for top in KNOWN_MAXIMA:
        if hi <= top * (1 + 1e-6):
            return 0.0, top
    return 0.0, hi


def _border(img2d: np.ndarray) -> np.ndarray:
    if min(img2d.shape) < 3:
        return img2d.ravel()
    return np.concatenate([img2d[0], img2d[-1], img2d[1:-1, 0], img2d[1:-1, -1]])


def background_level(border: np.ndarray) -> float:
    """The background level of an image from its border ring: the median plus
    `NOISE_SIGMAS` robust standard deviations (1.4826 x the median absolute
    deviation), so that the paper's grain goes with the background; the noise
    term is at most the median itself (an object touching the border inflates
    the deviation, not the median).

    Example:
        >>> background_level(np.zeros(108))          # the datasets' black borders
        0.0
    """
    border = np.asarray(border, dtype="float64")
    median = float(np.median(border))
    mad = float(np.median(np.abs(border - median)))
    return min(1.0, median + min(median, NOISE_SIGMAS * MAD_TO_SIGMA * mad))


def _grow_box(grey: np.ndarray, top: int, bottom: int, left: int, right: int) -> tuple[int, int, int, int]:
    """Widen the object's box (found at `OBJECT_LEVEL`) over its faint, antialiased
    edge: while the row or column just outside it has a pixel above `EDGE_LEVEL`
    (5/255: above JPEG ringing on black), take it in. The datasets' own images keep
    their box and position; a speck of grain beyond a gap of background does not count."""
    h, w = grey.shape
    grown = True
    while grown:
        grown = False
        if top > 0 and grey[top - 1, left: right + 1].max() > EDGE_LEVEL:
            top, grown = top - 1, True
        if bottom < h - 1 and grey[bottom + 1, left: right + 1].max() > EDGE_LEVEL:
            bottom, grown = bottom + 1, True
        if left > 0 and grey[top: bottom + 1, left - 1].max() > EDGE_LEVEL:
            left, grown = left - 1, True
        if right < w - 1 and grey[top: bottom + 1, right + 1].max() > EDGE_LEVEL:
            right, grown = right + 1, True
    return top, bottom, left, right


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear, antialiased when shrinking (Pillow), per channel; float32 (h, w, C)."""
    from PIL import Image

    if img.shape[:2] == (height, width):
        return img.astype("float32", copy=False)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), mode="F")
                        .resize((int(width), int(height)), Image.Resampling.BILINEAR)) for c in range(img.shape[-1])]
    return np.stack(chans, axis=-1).astype("float32")


# --------------------------------------------------------------------------- the preprocessor


class Preprocessor:
    """Turn images into a zoo entry's input: range, channels, polarity, background, framing.

    Args:
        config: a `PreprocessConfig` (`aezoo.inputs.for_entry(name)` reads the entry's).
        entry, version: the zoo entry it belongs to (for messages and cards).

    Attributes:
        last_report: what the last call did (range used, images inverted, ...).

    Example:
        >>> prep = aezoo.inputs.for_entry("conv_mnist")
        >>> x = prep(["a.png", "b.jpg"])           # float32 (2, 28, 28, 1) in [0, 1]
        >>> prep.last_report["inverted"]
        [0, 1]
    """

    def __init__(self, config: PreprocessConfig, entry: str | None = None, version: int | None = None):
        self.config = config
        self.entry = entry
        self.version = version
        self.last_report: dict = {}

    def __repr__(self):
        return f"Preprocessor({self.config.name!r}, entry={self.entry!r}, framing={self.config.framing!r})"

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (*self.config.size, self.config.channels)

    # -- the steps (numpy, one image at a time) -------------------------------
    def _scale(self, img, value_range):
        if isinstance(value_range, str) and value_range == "minmax":
            lo, hi = float(np.min(img)), float(np.max(img))
        else:
            lo, hi = value_range
        img = img.astype("float32")
        if hi <= lo:
            return np.zeros_like(img)
        return np.clip((img - lo) / (hi - lo), 0.0, 1.0)

    def _channels(self, img):
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[-1] == 4:          # drop alpha
            img = img[..., :3]
        if img.shape[-1] == 2:          # grey + alpha
            img = img[..., :1]
        want = self.config.channels
        if img.shape[-1] == want:
            return img
        if want == 1:
            return np.tensordot(img, np.asarray(LUMA, dtype="float32"), axes=([-1], [0]))[..., None].astype("float32")
        return np.repeat(img, want, axis=-1)

    def _grey(self, img):
        return img[..., 0] if img.shape[-1] == 1 else np.tensordot(img, np.asarray(LUMA, "float32"), ([-1], [0]))

    def _frame(self, img, framing):
        h, w = self.config.size
        if framing == "resize":
            return _resize(img, h, w)
        grey = self._grey(img)
        rows = np.flatnonzero(grey.max(axis=1) > OBJECT_LEVEL)
        cols = np.flatnonzero(grey.max(axis=0) > OBJECT_LEVEL)
        if not len(rows):           # nothing there: a plain resize
            return _resize(img, h, w)
        top_0, bottom, left_0, right = _grow_box(grey, rows[0], rows[-1], cols[0], cols[-1])
        crop = img[top_0: bottom + 1, left_0: right + 1]
        box = self.config.box
        longest = max(crop.shape[:2])
        keep = img.shape[:2] == (h, w) and box - BOX_SLACK <= longest <= box   # in place and at size already
        if not box - BOX_SLACK <= longest <= box:
            scale = box / longest
            crop = _resize(crop, max(1, min(box, round(crop.shape[0] * scale))),
                           max(1, min(box, round(crop.shape[1] * scale))))
        ch, cw = crop.shape[:2]
        if ch > h or cw > w:
            crop = crop[:h, :w]
            ch, cw = crop.shape[:2]
        if framing == "mass_centred":
            g = self._grey(crop).astype("float64")
            total = g.sum()
            yy, xx = np.mgrid[0:ch, 0:cw]
            cy, cx = ((yy * g).sum() / total, (xx * g).sum() / total) if total > 0 else ((ch - 1) / 2, (cw - 1) / 2)
            top, left = int(round(h / 2 - cy)), int(round(w / 2 - cx))
        else:  # fit: the box in the middle (an odd margin puts its extra pixel above / left, as Fashion-MNIST)
            top, left = (h - ch + 1) // 2, (w - cw + 1) // 2
            if keep:  # an image already centred to within BOX_SLACK pixels stays where it is
                top = top_0 if abs((h - ch) - 2 * top_0) <= BOX_SLACK else top
                left = left_0 if abs((w - cw) - 2 * left_0) <= BOX_SLACK else left
        top, left = min(max(top, 0), h - ch), min(max(left, 0), w - cw)
        canvas = np.zeros((h, w, img.shape[-1]), dtype="float32")
        canvas[top: top + ch, left: left + cw] = crop
        return canvas

    def __call__(self, x: Any, value_range: str | Sequence[float] = "auto", polarity: str = "auto",
                 framing: str | None = None) -> np.ndarray:
        """Preprocess images (see the module docstring for what is accepted and done).

        Args:
            x: arrays, PIL images, paths, or a list of them.
            value_range: "auto", (lo, hi) of the input pixels, or "minmax" (each image's own).
            polarity: "auto" (detect dark-on-light from the border and invert), "keep" or "invert".
            framing: override the entry's framing ("mass_centred", "fit", "resize").

        Returns:
            float32 (N, H, W, C) in [0, 1] at the model's size.

        Raises:
            InputError: unreadable or non-numeric images, NaN pixels, a bad option.
        """
        framing = framing or self.config.framing
        if framing not in FRAMINGS:
            raise InputError(f"framing {framing!r} is unknown; expected one of {', '.join(FRAMINGS)}.")
        if polarity not in ("auto", "keep", "invert"):
            raise InputError(f"polarity {polarity!r} is unknown; expected 'auto', 'keep' or 'invert'.")
        if not (value_range in ("auto", "minmax") or (isinstance(value_range, (tuple, list)) and len(value_range) == 2
                                                     and value_range[1] > value_range[0])):
            raise InputError(f"value_range must be 'auto', 'minmax' or (lo, hi) with lo < hi; got {value_range!r}.")
        images = _to_images(x)
        stacked = all(isinstance(i, np.ndarray) for i in images) and len({(i.shape, i.dtype) for i in images}) == 1
        if value_range == "auto" and stacked:
            batch_range = guess_range(np.stack(images))
        out, inverted, ranges = [], [], []
        for i, img in enumerate(images):
            img = np.asarray(img)
            if np.issubdtype(img.dtype, np.floating) and not np.isfinite(img).all():
                raise InputError(f"image {i} contains NaN or infinite values; expected finite pixels.")
            rng = (batch_range if stacked else guess_range(img)) if value_range == "auto" else value_range
            ranges.append(rng if isinstance(rng, str) else tuple(float(v) for v in rng))
            img = self._channels(self._scale(img, rng))
            border = _border(self._grey(img))
            invert = polarity == "invert" or (
                polarity == "auto" and self.config.polarity != "keep"
                and (float(np.median(border)) > POLARITY_LEVEL) == (self.config.polarity == "light_on_dark"))
            if invert:
                img = 1.0 - img
                border = 1.0 - border
                inverted.append(i)
            if self.config.background == "subtract":
                bg = background_level(border)
                if 0 < bg < 1:
                    img = np.clip((img - bg) / (1.0 - bg), 0.0, 1.0)
            if self.config.stretch:
                top = float(img.max())
                if top > 0:
                    img = img / top
            out.append(self._frame(img, framing))
        result = np.stack(out).astype("float32")
        distinct = sorted({r if isinstance(r, str) else tuple(r) for r in ranges}, key=str)
        self.last_report = {"images": len(result), "value_range": [list(r) if not isinstance(r, str) else r
                                                                    for r in distinct],
                            "inverted": inverted, "framing": framing, "preprocessor": self.config.name}
        return result

    # -- exports -----------------------------------------------------------------
    def graph_fn(self, input_size: Sequence[int] | None = None, input_range: Sequence[float] = (0.0, 255.0)):
        """The steps that exports can run as graph ops: range, polarity, background, resize.

        Args:
            input_size: (height, width) of the artifact's input (default: the model's).
            input_range: (lo, hi) of the artifact's input pixels (default 0..255 as float32).

        Returns:
            A function of a float32 tensor (batch, height, width, channels) -> the model's
            input (batch, *size, channels) in [0, 1], in keras.ops (TFLite builtins).

        Example:
            >>> fn = aezoo.inputs.for_entry("conv_mnist").graph_fn()
            >>> fn(keras.ops.ones((1, 28, 28, 1)) * 255.0).shape
            (1, 28, 28, 1)
        """
        from keras import ops

        lo, hi = (float(v) for v in input_range)
        if not hi > lo:
            raise InputError(f"input_range must be (lo, hi) with lo < hi; got {input_range!r}.")
        size = tuple(int(s) for s in (input_size or self.config.size))
        config = self.config

        def border_median_of(ring):
            n = int(ring.shape[-1])
            ordered = ops.sort(ring, axis=-1)
            # numpy's median: the middle value, or the mean of the two middle values
            return (ordered[:, (n - 1) // 2] + ordered[:, n // 2]) * 0.5

        def border_median(grey):
            h, w = size
            ring = ops.concatenate([grey[:, 0, :], grey[:, h - 1, :], grey[:, 1:h - 1, 0], grey[:, 1:h - 1, w - 1]],
                                   axis=1)
            return border_median_of(ring)

        def background(grey):
            median = border_median(grey)
            h, w = size
            ring = ops.concatenate([grey[:, 0, :], grey[:, h - 1, :], grey[:, 1:h - 1, 0], grey[:, 1:h - 1, w - 1]],
                                   axis=1)
            mad = border_median_of(ops.abs(ring - median[:, None]))
            return ops.minimum(median + ops.minimum(median, NOISE_SIGMAS * MAD_TO_SIGMA * mad), 1.0)

        def preprocess_images(raw):
            x = ops.clip((ops.cast(raw, "float32") - lo) / (hi - lo), 0.0, 1.0)
            grey = x[..., 0] if config.channels == 1 else ops.sum(x * ops.convert_to_tensor(
                np.asarray(LUMA, "float32")), axis=-1)
            if config.polarity != "keep":
                median = border_median(grey)
                flip = ops.greater(median, POLARITY_LEVEL)
                if config.polarity == "dark_on_light":
                    flip = ops.logical_not(flip)
                flip4 = ops.reshape(flip, (-1, 1, 1, 1))
                x = ops.where(flip4, 1.0 - x, x)
                grey = ops.where(ops.reshape(flip, (-1, 1, 1)), 1.0 - grey, grey)
            if config.background == "subtract":
                bg = ops.reshape(background(grey), (-1, 1, 1, 1))
                x = ops.where(ops.logical_and(bg > 0.0, bg < 1.0), ops.clip((x - bg) / ops.maximum(1.0 - bg, 1e-6),
                                                                            0.0, 1.0), x)
            if config.stretch:
                top = ops.max(x, axis=(1, 2, 3), keepdims=True)
                x = ops.where(top > 0.0, x / ops.maximum(top, 1e-6), x)
            if size != tuple(config.size):
                x = ops.image.resize(x, config.size, interpolation="bilinear", antialias=False)
            return x

        return preprocess_images

    def describe(self, in_graph: bool = False, input_size: Sequence[int] | None = None,
                 input_range: Sequence[float] = (0.0, 255.0)) -> dict:
        """The preprocessing part of an artifact's card: the config, what the graph does, what the app must do.

        Args:
            in_graph: whether the artifact runs `graph_fn` in front of the model.
            input_size, input_range: as given to `graph_fn`.

        Returns:
            {"preprocessor", "config", "in_graph", "app_steps", "input"} (JSON-ready).
        """
        config = self.config
        graph_steps = [f"scale {list(input_range)} -> [0, 1]"]
        if config.polarity != "keep":
            graph_steps.append(f"invert when the border median is above {POLARITY_LEVEL} (dark object on light)")
        if config.background == "subtract":
            graph_steps.append(f"subtract the background b = m + min(m, {NOISE_SIGMAS:g} x {MAD_TO_SIGMA} x d), m the "
                               "border median, d the border's median absolute deviation: x -> clip((x - b) / (1 - b), "
                               "0, 1)")
        if config.stretch:
            graph_steps.append("divide by the image's maximum (its brightest pixel becomes 1)")
        size = list(input_size or config.size)
        if size != list(config.size):
            graph_steps.append(f"resize {size} -> {list(config.size)} (bilinear, no antialiasing)")
        framing = {
            "mass_centred": (f"crop the object (pixels above {OBJECT_LEVEL} after inversion), resize it to fit a "
                             f"{config.box}x{config.box} box keeping its aspect ratio (antialiased), paste it into "
                             f"{config.size[0]}x{config.size[1]} with its centre of mass at the centre "
                             f"({config.size[0] / 2:g}, {config.size[1] / 2:g})"),
            "fit": (f"crop the object (pixels above {OBJECT_LEVEL} after inversion), resize its longest edge to "
                    f"{config.box}, paste it in the middle of a {config.size[0]}x{config.size[1]} black field"),
            "resize": None,
        }[config.framing]
        app = []
        if not in_graph:
            app = ["convert to float32 in [0, 1]", *graph_steps[1:]]
        if framing:
            app.append(framing + " (data-dependent cropping: not expressible in TFLite builtin ops, so the app "
                                 "does it before feeding the model; aezoo.preprocess does it in Python)")
        return {"preprocessor": config.name, "config": config.to_dict(), "in_graph": graph_steps if in_graph else [],
                "app_steps": app,
                "input": {"size": size if in_graph else list(config.size), "channels": config.channels,
                          "range": list(input_range) if in_graph else [0.0, 1.0], "layout": "NHWC",
                          "dtype": "float32"}}


# --------------------------------------------------------------------------- the input check


class InputCheck:
    """Flags images that score as anomalies for a model (`UnusualInputWarning`).

    Args:
        score_fn: images -> per-image scores (higher = more unusual).
        threshold: the score above which an image is flagged.
        fpr: the share of ordinary images above `threshold` (calibration).
        source: what it was calibrated on (for messages and cards).
    """

    def __init__(self, score_fn, threshold: float, fpr: float, source: str, score: str = "mse"):
        self.score_fn = score_fn
        self.threshold = float(threshold)
        self.fpr = float(fpr)
        self.source = source
        self.score = score

    def to_dict(self) -> dict:
        return {"score": self.score, "threshold": self.threshold, "fpr": self.fpr, "source": self.source}

    def __call__(self, images: np.ndarray, warn: bool = True) -> dict:
        """Score `images`; warn (`UnusualInputWarning`) when too many are flagged.

        Returns:
            {"flagged": [indices], "scores": [...], "threshold", "p_value"}.
        """
        from scipy.stats import binom

        scores = np.asarray(self.score_fn(images), dtype="float64").ravel()
        flagged = np.flatnonzero(scores > self.threshold)
        p = float(binom.sf(len(flagged) - 1, len(scores), self.fpr)) if len(flagged) else 1.0
        result = {"flagged": flagged.tolist(), "scores": scores.tolist(), "threshold": self.threshold, "p_value": p}
        if warn and len(flagged) and p <= WARN_P:
            shown = ", ".join(map(str, flagged[:10])) + (", ..." if len(flagged) > 10 else "")
            warnings.warn(
                f"{len(flagged)} of {len(scores)} images (index {shown}) look unlike the training data: their "
                f"{self.score} anomaly score is above {self.threshold:.4g}, which only {self.fpr:.0%} of "
                f"{self.source} exceed (chance of this many among ordinary images: {p:.2g}). Check their "
                "framing, polarity and content; reconstructions of such images are poor.",
                UnusualInputWarning, stacklevel=3)
        return result


def conformal_threshold(scores: np.ndarray, fpr: float) -> float:
    """The k-th smallest of n calibration scores, k = ceil((n + 1)(1 - fpr)) (capped at n)."""
    scores = np.sort(np.asarray(scores, dtype="float64"))
    k = min(len(scores), max(1, math.ceil((len(scores) + 1) * (1 - fpr) - 1e-9)))
    return float(scores[k - 1])


@functools.lru_cache(maxsize=1)
def check_data() -> dict:
    """The parsed ``aezoo/input_checks.json``: entry -> version -> the stored input check
    (score, threshold, fpr, calibration, weights sha256), made by ``python -m aezoo.inputs build``."""
    try:
        return json.loads(_io.package_file(CHECKS_FILE).read_text())
    except FileNotFoundError:
        return {}


def stored_check(model) -> InputCheck | None:
    """The input check that `model` carries: its preset's (calibrated on the held-out part of its
    training images), or its zoo entry's from ``input_checks.json`` when it has the pretrained
    weights. Scores with `model.anomaly_score` (the reconstruction MSE, the detector score "mse");
    None when there is no stored threshold (e.g. your own weights: `aezoo.inputs.calibrate`).

    Example:
        >>> stored_check(aezoo.load("conv_mnist")).threshold
    """
    cached = getattr(model, "_aezoo_input_check", None)
    if cached is not None:
        return cached
    stored = getattr(model, "input_check_config", None)
    if not isinstance(stored, dict):
        entry = getattr(model, "zoo_entry", None) or {}
        if getattr(model, "weights_source", None) != "pretrained" or not entry.get("name"):
            return None
        stored = check_data().get("entries", {}).get(entry["name"], {}).get(str(entry.get("version")))
    if not isinstance(stored, dict) or stored.get("threshold") is None or stored.get("score", "mse") != "mse":
        return None
    check = InputCheck(lambda x: np.asarray(model.anomaly_score(x)), stored["threshold"],
                       float(stored.get("fpr", CHECK_FPR)), stored.get("source", "its calibration images"),
                       score="mse")
    model._aezoo_input_check = check
    return check


def preprocess_for_model(model, x: Any, check: bool = True, **options) -> np.ndarray:
    """`model.preprocess(x)`: the model's preprocessor, then its input check (a warning, never an error).

    Args:
        model: an aezoo autoencoder.
        x: images (see the module docstring).
        check: score the preprocessed images and warn about unusual ones (when the
            model carries a threshold: `stored_check`).
        **options: `Preprocessor.__call__` options.

    Returns:
        float32 (N, H, W, C) in [0, 1].
    """
    prep = for_model(model)
    images = prep(x, **options)
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise InputError(f"the preprocessor made images of shape {images.shape[1:]}, but {model.name!r} takes "
                         f"{tuple(model.image_shape)}.")
    if check:
        checker = stored_check(model)
        if checker is not None:
            checker(images)
    return images
