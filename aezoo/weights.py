"""Pretrained weights: the manifest, lookup and verification.

(Minimal version: bundled files only. Download/cache come with the weights issue.)
"""

import hashlib
import json
from importlib import resources
from pathlib import Path

from aezoo.errors import WeightsError


def manifest():
    """name -> record, from pretrained/manifest.json (package data)."""
    return json.loads(resources.files("aezoo.pretrained").joinpath("manifest.json").read_text())


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name):
    record = manifest().get(name)
    if record is None:
        raise WeightsError(
            f"no pretrained weights for {name!r} yet; use aezoo.load({name!r}, pretrained=False) "
            f"for a fresh model, or train them with: aezoo train {name}"
        )
    path = Path(str(resources.files("aezoo.pretrained").joinpath(record["file"])))
    actual = sha256(path)
    if actual != record["sha256"]:
        raise WeightsError(f"{path}: sha256 {actual} does not match the expected {record['sha256']}.")
    return path


def fetch_user_file(path_or_url):
    path = Path(path_or_url)
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist.")
    return path


def load_into(model, path):
    try:
        model.load_weights(str(path))
    except Exception as e:
        raise WeightsError(f"cannot load {path} into {model.name}: {e}") from e
    return model
