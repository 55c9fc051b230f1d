"""Your own models as presets: a directory that `aezoo.load` reads like a zoo name.

    >>> model, summary = aezoo.train("conv_mnist", data=my_images, epochs=5)
    >>> aezoo.save(model, "my_digits_model")          # a keras-hub-style preset directory
    >>> model = aezoo.load("my_digits_model")         # the same model, weights and card
    $ aezoo export my_digits_model --format tflite --quantize int8 --output my.tflite
    $ aezoo evaluate my_digits_model --data my_test_images/

The layout follows keras-hub's presets:

=====================  ==========================================================
file                   what it holds
=====================  ==========================================================
``config.json``        the model, `keras.saving.serialize_keras_object` (class
                       ``aezoo>ConvAutoencoder`` etc. and its config)
``model.weights.h5``   the weights (Keras 3 ``.weights.h5``)
``metadata.json``      keras-hub's fields (``keras_version``, ``parameter_count``,
                       ``date_saved``) plus ``aezoo_version`` and the card: the zoo
                       entry it comes from, what it was trained on, its recipe and
                       metrics, its preprocessing and its input check (threshold)
``samples.npz``        optional: up to `MAX_SAMPLES` held-out images (uint8), which
                       export verification, evaluation and the input check use
                       when nothing else is given
=====================  ==========================================================

Everything is JSON or HDF5 weights: no pickle. The directory is written next to
its final place and renamed into it, so it is complete or absent.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from aezoo import _io
from aezoo.errors import AezooError, InputError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
SAMPLES_FILE = "samples.npz"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)
MAX_SAMPLES = 512

__all__ = ["save", "load", "is_preset", "read_metadata", "samples", "PresetError"]


class PresetError(AezooError):
    """A preset directory that is missing, incomplete or not an aezoo model."""


def is_preset(path: Any) -> bool:
    """True when `path` is a directory holding a preset's three files.

    Example:
        >>> is_preset("my_digits_model"), is_preset("conv_mnist")
        (True, False)
    """
    try:
        p = Path(os.fspath(path))
    except TypeError:
        return False
    return p.is_dir() and all((p / f).is_file() for f in PRESET_FILES)


def _card(model, card: dict | None) -> dict:
    from aezoo.preprocessing import for_model

    entry = dict(getattr(model, "zoo_entry", None) or {})
    out = {
        "name": getattr(model, "name", None),
        "family": getattr(model, "family", None),
        "input_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "base": {"entry": entry.get("name"), "version": entry.get("version"), "dataset": entry.get("dataset")},
        "preprocessing": for_model(model).config.to_dict(),
    }
    if isinstance(getattr(model, "input_check_config", None), dict):   # a preset's own (aezoo.inputs.calibrate)
        out["input_check"] = model.input_check_config
    previous = getattr(model, "preset_card", None) or {}
    for key in ("trained_on", "recipe", "metrics", "training"):
        if key in previous:
            out[key] = previous[key]
    out.update(card or {})
    return out


def save(model, directory: str | os.PathLike, *, overwrite: bool = False, card: dict | None = None,
         sample_images: np.ndarray | None = None) -> Path:
    """Write `model` as a preset directory: config.json, model.weights.h5, metadata.json.

    Args:
        model: an aezoo autoencoder (any family; a zoo model or your own).
        directory: the preset directory to create.
        overwrite: replace an existing preset there (only a preset: any other
            directory is refused).
        card: more card fields, e.g. {"trained_on": "...", "metrics": {...}}.
        sample_images: held-out images (float32 (N, H, W, C) in [0, 1]) to keep as
            ``samples.npz`` (uint8, at most `MAX_SAMPLES`), for verification and evaluation.

    Returns:
        The directory.

    Raises:
        PresetError: `directory` exists (without overwrite, or it is not a preset).
        InputError: `model` is not an aezoo autoencoder, or bad sample images.

    Example:
        >>> aezoo.save(model, "presets/my_conv")
        PosixPath('presets/my_conv')
    """
    import keras

    from aezoo._io import AEZOO_VERSION as __version__
    from aezoo.models.base import Autoencoder, validate_images

    if not isinstance(model, Autoencoder):
        raise InputError(f"aezoo.save takes an aezoo autoencoder; got {type(model).__name__} "
                         "(for any Keras model use model.save('file.keras')).")
    target = Path(os.fspath(directory)).expanduser().absolute()
    if target.exists():
        if not overwrite:
            raise PresetError(f"{target} already exists; pass overwrite=True to replace it.")
        if not is_preset(target):
            raise PresetError(f"{target} exists and is not an aezoo preset; it will not be replaced. "
                              "Choose another directory.")
    samples_u8 = None
    if sample_images is not None:
        x = validate_images(sample_images, model.image_shape, what="sample_images")[:MAX_SAMPLES]
        samples_u8 = np.round(x * 255).astype(np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    _io.remove_stale(target.parent)
    work = Path(_io.make_work_dir(target.parent, target.name))
    try:
        staged = work / target.name
        staged.mkdir()
        config = keras.saving.serialize_keras_object(model)
        _io.write_json(staged / CONFIG_FILE, config)
        model.save_weights(str(staged / WEIGHTS_FILE))
        metadata = {
            "keras_version": keras.__version__,
            "aezoo_version": __version__,
            "parameter_count": int(model.count_params()),
            "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "card": _card(model, card),
        }
        if samples_u8 is not None:
            np.savez_compressed(staged / SAMPLES_FILE, images=samples_u8)
            metadata["samples"] = {"file": SAMPLES_FILE, "count": int(len(samples_u8)), "dtype": "uint8"}
        _io.write_json(staged / METADATA_FILE, metadata)
        _io.install(staged, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def read_metadata(directory: str | os.PathLike) -> dict:
    """A preset's metadata.json (keras-hub's fields and the aezoo card)."""
    path = Path(os.fspath(directory)).expanduser()
    _check(path)
    try:
        return json.loads((path / METADATA_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PresetError(f"{path / METADATA_FILE} is unreadable: {e}") from None


def _check(path: Path) -> None:
    if not path.is_dir():
        raise PresetError(f"{path} is not a preset directory (it does not exist)." if not path.exists()
                          else f"{path} is not a directory; a preset is a directory made by aezoo.save.")
    missing = [f for f in PRESET_FILES if not (path / f).is_file()]
    if missing:
        raise PresetError(f"{path} is not a complete preset: it lacks {', '.join(missing)} "
                          f"(a preset holds {', '.join(PRESET_FILES)}; aezoo.save writes them).")


def samples(directory: str | os.PathLike) -> np.ndarray | None:
    """The preset's held-out sample images as float32 (N, H, W, C) in [0, 1], or None."""
    path = Path(os.fspath(directory)).expanduser() / SAMPLES_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return f["images"].astype("float32") / 255.0


def load(directory: str | os.PathLike):
    """Load a preset directory written by `save` (also what `aezoo.load(DIR)` does).

    Returns:
        The model with its weights; `model.preset_card` holds the card,
        `model.preset_path` the directory; its preprocessing and input check
        come back with it (`model.preprocess`).

    Raises:
        PresetError: not a preset, or a config that is not an aezoo model.
        WeightsError: weights that do not fit the config.

    Example:
        >>> model = aezoo.load("presets/my_conv")
        >>> model.preset_card["trained_on"]
    """
    import keras

    import aezoo.models  # noqa: F401  (registers the families with Keras)
    from aezoo.models.base import Autoencoder
    from aezoo.weights import load_into

    path = Path(os.fspath(directory)).expanduser()
    metadata = read_metadata(path)
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        model = keras.saving.deserialize_keras_object(config)
    except Exception as e:  # a foreign or edited config
        raise PresetError(f"{path / CONFIG_FILE} is not an aezoo model config ({type(e).__name__}: {e}).") from None
    if not isinstance(model, Autoencoder):
        raise PresetError(f"{path / CONFIG_FILE} describes a {type(model).__name__}, not an aezoo autoencoder.")
    load_into(model, path / WEIGHTS_FILE)
    card = metadata.get("card") or {}
    base = card.get("base") or {}
    model.zoo_entry = {"name": base.get("entry"), "version": base.get("version"), "dataset": base.get("dataset")}
    model.zoo_version = base.get("version")
    model.preset_card = card
    model.preset_path = str(path.absolute())
    model.weights_source = f"preset {path.absolute()}"
    if isinstance(card.get("preprocessing"), dict):
        model.preprocessing_config = card["preprocessing"]
    if isinstance(card.get("input_check"), dict):
        model.input_check_config = card["input_check"]
    return model
