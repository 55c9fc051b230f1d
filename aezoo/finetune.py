"""Train or fine-tune a zoo entry on your own images, and keep the result as a preset.

    $ aezoo train conv_mnist --data my_digits/ --epochs 5 --output-dir runs/my_digits
    # -> runs/my_digits/ (the run) and runs/my_digits/preset/ (aezoo.load / export / evaluate read it)

    >>> from aezoo.finetune import train_on_images
    >>> model, summary = train_on_images("conv_mnist", "my_digits/", epochs=5)
    >>> summary["preset"]
    'runs/conv_mnist-my_digits/preset'

`data` is a ``.npy``, a ``.npz``, a folder of PNG/JPEG files, or images in
memory; every image goes through the entry's preprocessor
(`aezoo.preprocessing`: range, polarity, background, framing), so a folder of
phone photos of digits on paper is fine. A seeded `validation_fraction` of the
images is held out: it is the run's validation data, it calibrates the
preset's input check (the anomaly threshold that `model.preprocess` warns
with; when there are at least `MIN_CHECK_IMAGES`), and up to 512 of them are
kept in the preset for export verification and evaluation.

By default training starts from the entry's pretrained weights (fine-tuning)
when it has some; ``init="scratch"`` starts from a fresh initialisation. The
recipe (optimizer, schedule, loss, seed, ...) is the entry's, with your
overrides. A killed run resumes when re-run the same way; a finished one is
refused (`aezoo.training.RunDirError`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from aezoo.errors import InputError

INITS = ("pretrained", "scratch", "auto")
MIN_CHECK_IMAGES = 99        # held-out images needed for a 1% input-check threshold (conformal)
PRESET_SUBDIR = "preset"

__all__ = ["train_on_images", "split_images", "INITS"]


def split_images(x: np.ndarray, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation): a seeded random `validation_fraction` held out (none with fewer than 10 images).

    Example:
        >>> tr, va = split_images(np.zeros((100, 28, 28, 1), "float32"), 0.1, seed=0)
        >>> len(tr), len(va)
        (90, 10)
    """
    if not 0 <= validation_fraction < 1:
        raise InputError(f"validation_fraction must be in [0, 1); got {validation_fraction!r}.")
    n = len(x)
    n_val = int(round(n * validation_fraction)) if n >= 10 else 0
    order = np.random.default_rng(seed).permutation(n)
    return x[np.sort(order[n_val:])], x[np.sort(order[:n_val])]


def _start_from(path):
    """A Keras callback that loads the starting weights when training begins (before
    BackupAndRestore, which overrides them when a killed run resumes)."""
    import keras

    class StartFrom(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            with warnings.catch_warnings():   # the file has no optimizer state: nothing to restore there
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                self.model.load_weights(str(path))

    return StartFrom()


def train_on_images(name: str, data: Any, *, output_dir: str | os.PathLike | None = None, epochs: int | None = None,
                    batch_size: int | None = None, overrides: dict | None = None, version: int | None = None,
                    init: str = "auto", validation_fraction: float = 0.1, seed: int = 0, verbose: str | int = "auto",
                    preprocess_options: dict | None = None):
    """Train zoo entry `name`'s recipe on your images and save the result as a preset.

    Args:
        name: a zoo name (its config, recipe and preprocessor).
        data: a path (``.npy``, ``.npz``, a folder of images, an image) or images
            (anything `aezoo.preprocess` takes).
        output_dir: the run directory (default ``runs/NAME-<data name>``); the
            preset goes to ``OUTPUT_DIR/preset``.
        epochs, batch_size, overrides, version: as for `aezoo.train`.
        init: "pretrained" (fine-tune the entry's published weights), "scratch",
            or "auto" (pretrained when the entry has weights).
        validation_fraction: the share of images held out (seeded by `seed`).
        seed: seed of the hold-out split.
        verbose: Keras `fit` verbosity.
        preprocess_options: `Preprocessor.__call__` options (value_range=, polarity=, framing=).

    Returns:
        (model, summary): the trained model (with its input check) and the run's
        summary plus ``preset``, ``data`` and ``preprocessing`` fields.

    Raises:
        InputError: unreadable data or a bad option; RunDirError: a finished run
        in `output_dir`.

    Example:
        >>> model, summary = train_on_images("conv_mnist", "my_digits/", epochs=3)
        >>> aezoo.load(summary["preset"]).reconstruct(x)
    """
    from aezoo import presets, registry, training, weights
    from aezoo.inputs import calibrate, for_entry
    from aezoo.preprocessing import read_images

    if init not in INITS:
        raise InputError(f"init must be one of {', '.join(INITS)}; got {init!r}.")
    version = registry.check_version(name, version)
    prep = for_entry(name, version)
    label = (Path(os.fspath(data)).expanduser().name or "data") if isinstance(data, (str, os.PathLike)) else "data"
    out = Path(output_dir or Path("runs") / f"{name}-{label}")
    if (out / "train_metrics.json").exists() and (out / f"{name}.weights.h5").exists():   # say so before any work
        raise training.RunDirError(f"{out} holds a finished run of {name} (its weights and train_metrics.json); "
                                   "nothing to resume. Pass another output directory to train again.")
    if isinstance(data, (str, os.PathLike)):
        raw, what = read_images(data)
    else:
        raw, what = data, "images given in memory"
    x = prep(raw, **(preprocess_options or {}))
    prep_report = dict(prep.last_report)
    x_train, x_val = split_images(x, validation_fraction, seed)
    if not len(x_train):
        raise InputError(f"{what}: no images left to train on.")
    has_weights = weights.record(name, version) is not None
    if init == "pretrained" and not has_weights:
        raise InputError(f"{name!r} v{version} has no pretrained weights to fine-tune; use init='scratch'.")
    start = weights.resolve(name, version) if (init == "pretrained" or (init == "auto" and has_weights)) else None
    model, summary = training.train(
        name, output_dir=out, epochs=epochs, batch_size=batch_size, overrides=overrides, data=x_train,
        validation_data=x_val if len(x_val) else None, version=version, verbose=verbose,
        callbacks=[_start_from(start)] if start is not None else None)
    model.zoo_entry = {"name": name, "version": version, "dataset": None}   # your data, not the zoo's
    trained_on = (f"{what}: {len(x_train)} images for training, {len(x_val)} held out (seed {seed}), "
                  f"through the {prep.config.name} preprocessor")
    if len(x_val) >= MIN_CHECK_IMAGES:
        calibrate(model, x_val, f"the {len(x_val)} held-out images of {what}")   # attached to the model
        check_note = None
    else:
        check_note = (f"no input check: {len(x_val)} held-out images, {MIN_CHECK_IMAGES} needed for a 1% threshold")
    card = {"trained_on": trained_on,
            "training": {"init": "pretrained" if start is not None else "scratch", "run_dir": str(out),
                         "epochs_run": summary.get("epochs_run"), "final": summary.get("final"),
                         "recipe": summary.get("recipe")},
            "preprocessing_report": prep_report}
    if check_note:
        card["input_check_note"] = check_note
    preset = presets.save(model, out / PRESET_SUBDIR, overwrite=True, card=card,
                          sample_images=x_val if len(x_val) else None)
    model.preset_path = str(preset)
    summary = {**summary, "preset": str(preset), "data": {"source": what, "train": len(x_train),
                                                           "held_out": len(x_val), "seed": seed},
               "init": card["training"]["init"], "preprocessing": prep_report}
    return model, summary
