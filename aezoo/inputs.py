"""Inputs by entry name, and the input checks' thresholds (what needs the registry or the detector).

    >>> import aezoo
    >>> x = aezoo.preprocess("conv_mnist", ["digit.png"])          # aezoo.inputs.preprocess
    >>> aezoo.inputs.for_entry("conv_fashion_mnist").config.framing
    'fit'
    >>> check = aezoo.inputs.calibrate(model, my_validation_images, "my validation images")
    >>> check(new_images)["flagged"]

    $ python -m aezoo.inputs build            # aezoo/input_checks.json for every published entry

`aezoo.preprocessing` does the image work and is imported by the models
(`Autoencoder.preprocess`); this module sits above the registry and
`aezoo.tasks.anomaly`, so nothing below imports it.

The stored input checks (``aezoo/input_checks.json``): for every published
entry and version, an `aezoo.AnomalyDetector` with the score "mse" (the
reconstruction MSE, `model.anomaly_score`) calibrated on the entry's
validation split (all of it: Fashion-MNIST 5,000 images, mnist_5k 500) at a
false-positive rate of `aezoo.preprocessing.CHECK_FPR` (1%), with the sha256
of the weights it was calibrated for. `model.preprocess` warns with it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any

import numpy as np

from aezoo import _io
from aezoo.preprocessing import CHECK_FPR, CHECKS_FILE, InputCheck, Preprocessor, config_for, conformal_threshold

__all__ = ["for_entry", "preprocess", "calibrate", "build", "CHECK_SCORE"]

CHECK_SCORE = "mse"   # what model.anomaly_score computes; the stored checks use it


def for_entry(name: str, version: int | None = None) -> Preprocessor:
    """The preprocessor of zoo entry `name` (the one ``preprocessing.json`` names for it,
    else its dataset's), sized to its input.

    Args:
        name: a zoo name.
        version: which version of the entry (default: `aezoo.load`'s).

    Returns:
        A `aezoo.preprocessing.Preprocessor`.

    Example:
        >>> for_entry("conv_mnist").config.framing
        'mass_centred'
    """
    from aezoo.registry import get_entry

    entry = get_entry(name, version)
    prep = config_for(name, entry["recipe"]["dataset"], tuple(entry["config"].get("input_shape", (28, 28, 1))))
    prep.version = entry["version"]
    return prep


def preprocess(name: str, x: Any, version: int | None = None, **options) -> np.ndarray:
    """Preprocess images `x` for zoo entry `name` (no model is loaded, no input check).

    Args:
        name: a zoo name.
        x: images: arrays, PIL images, paths, or a list of them (see `aezoo.preprocessing`).
        version: the entry's version (default: the newest published).
        **options: `Preprocessor.__call__` options (value_range=, polarity=, framing=).

    Returns:
        float32 (N, H, W, C) in [0, 1].

    Example:
        >>> aezoo.preprocess("conv_mnist", 255 - digits_uint8).shape
        (16, 28, 28, 1)
    """
    return for_entry(name, version)(x, **options)


def calibrate(model, images: np.ndarray, source: str, fpr: float = CHECK_FPR) -> InputCheck:
    """An input check for `model`, calibrated on ordinary `images` at false-positive rate `fpr`,
    and attached to the model (`model.preprocess` warns with it).

    The threshold is `aezoo.AnomalyDetector(model, score="mse").fit(images, fpr)`'s (a
    split-conformal quantile); where the detector refuses (too few images for `fpr`), the
    conformal quantile of the scores is used as it is.

    Args:
        model: an aezoo autoencoder.
        images: ordinary images (float32 (N, H, W, C) in [0, 1]) the model has not trained on.
        source: what they are, for the warnings and the card.
        fpr: the share of ordinary images that should be flagged.

    Returns:
        The `InputCheck` (`to_dict()` is what presets store).

    Example:
        >>> check = calibrate(model, x_val, "my validation images")
        >>> check.threshold
    """
    from aezoo.tasks.anomaly import AnomalyDetector, DetectorError

    try:
        detector = AnomalyDetector(model, score=CHECK_SCORE).fit(images, fpr=fpr)
        threshold = detector.threshold
    except DetectorError:
        threshold = conformal_threshold(np.asarray(model.anomaly_score(images)), fpr)
    check = InputCheck(lambda x: np.asarray(model.anomaly_score(x)), threshold, fpr, source, score=CHECK_SCORE)
    model._aezoo_input_check = check
    model.input_check_config = check.to_dict()
    return check


def build(names: list[str] | None = None, output=None, progress: bool = True) -> dict:
    """Calibrate the stored input check of every published entry and version (or of `names`)
    on its validation split, and merge them into ``aezoo/input_checks.json`` (or `output`).

    Returns:
        The whole file's contents.
    """
    import aezoo
    from aezoo import datasets, weights

    path = output or _io.package_file(CHECKS_FILE)
    try:
        data = json.loads(open(str(path)).read())
    except FileNotFoundError:
        data = {}
    entries = data.setdefault("entries", {})
    for name in names or aezoo.list_models():
        for version in weights.published_versions(name):
            record = weights.record(name, version)
            model = aezoo.load(name, version=version)
            dataset = aezoo.get_entry(name, version)["recipe"]["dataset"]
            x, _ = datasets.load_numpy(dataset, "validation")
            check = calibrate(model, x, f"{dataset} validation images ({len(x)})")
            entries.setdefault(name, {})[str(version)] = {**check.to_dict(), "weights_sha256": record["sha256"]}
            if progress:
                print(f"{name} v{version}: threshold {check.threshold:.6g} on {len(x)} {dataset} validation images",
                      file=sys.stderr)
    data.update({"doc": "Input-check thresholds (model.preprocess warns above them): aezoo.AnomalyDetector(model, "
                        "score='mse') fitted on each entry's validation split at fpr 0.01. Made by "
                        "`python -m aezoo.inputs build`.",
                 "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "versions": _io.versions()})
    data["entries"] = {n: dict(sorted(v.items())) for n, v in sorted(entries.items())}
    _io.write_json(str(path), data)
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aezoo.inputs", description="the stored input checks")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("build", help="calibrate every published entry's input check (aezoo/input_checks.json)")
    s.add_argument("names", nargs="*")
    s.add_argument("--output", help="another JSON file (default: the package's input_checks.json)")
    args = parser.parse_args(argv)
    data = build(args.names or None, output=args.output)
    print(json.dumps({n: {v: r["threshold"] for v, r in vs.items()} for n, vs in data["entries"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
