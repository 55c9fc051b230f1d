"""Training recipes as data: validation and overrides.

A recipe is a plain dict (stored in the registry next to the model config):

    dataset        a name from aezoo.datasets ("fashion_mnist", "mnist_5k", ...)
    preprocessing  "scale_0_1" (uint8 / 255)
    optimizer      {"name": "adam"|"adamw"|"sgd", "learning_rate", "weight_decay", "clipnorm"}
    schedule       {"name": "cosine"|"constant", "warmup_epochs", "alpha"}
    epochs, batch_size, seed
    loss           "mse" | "bce" | "elbo": each family says which it takes
                   (`Autoencoder.allowed_losses`; VAEs train on "elbo")
    corruption     null, or {"noise": ..., "level": ...}: families that take
                   input corruption (denoisers); their model's noise comes from here
    kl_warmup_epochs  epochs of linear KL warm-up (0 = none), for VAEs

A key in FAMILY_KEYS is only set away from its default for a family that
lists it in `recipe_options`; the family checks its own keys (`check_recipe`).

Overrides are "dotted.key=value" strings (value parsed as JSON, else a string):
``epochs=3``, ``optimizer.learning_rate=3e-4``, ``corruption.level=0.3``.
"""

import copy
import json

from aezoo.errors import RecipeError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")
LOSSES = ("mse", "bce", "elbo")
PREPROCESSING = ("scale_0_1",)
FAMILY_KEYS = ("corruption", "kl_warmup_epochs")  # keys that only some families use

DEFAULT = {
    "dataset": "fashion_mnist",
    "preprocessing": "scale_0_1",
    "optimizer": {"name": "adam", "learning_rate": 1e-3, "weight_decay": None, "clipnorm": None},
    "schedule": {"name": "cosine", "warmup_epochs": 1, "alpha": 0.01},
    "epochs": 20,
    "batch_size": 128,
    "seed": 1234,
    "loss": "mse",
    "corruption": None,
    "kl_warmup_epochs": 0,
}


def _keys(d, prefix=""):
    out = []
    for k, v in d.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out.extend(_keys(v, prefix + k + "."))
    return out


def _number(recipe, path, kind, low=None, high=None, allow_none=False):
    node = recipe
    for part in path.split("."):
        node = node[part]
    if node is None and allow_none:
        return
    ok = isinstance(node, (int, float)) and not isinstance(node, bool)
    if kind is int:
        ok = ok and float(node).is_integer()
    if not ok or (low is not None and node < low) or (high is not None and node > high):
        rng = f" in [{low}, {high if high is not None else 'inf'}]" if low is not None else ""
        raise RecipeError(f"recipe {path} must be {'an integer' if kind is int else 'a number'}{rng}; got {node!r}.")


def validate(recipe, family=None):
    """Check a recipe dict; returns a complete copy (defaults filled in)."""
    from aezoo import datasets

    if not isinstance(recipe, dict):
        raise RecipeError(f"a recipe is a dict; got {type(recipe).__name__}.")
    unknown = set(recipe) - set(DEFAULT)
    if unknown:
        raise RecipeError(f"unknown recipe key(s) {sorted(unknown)}; expected {sorted(DEFAULT)}.")
    out = copy.deepcopy(DEFAULT)
    for k, v in recipe.items():
        if isinstance(DEFAULT[k], dict) and isinstance(v, str) and "name" in DEFAULT[k]:
            v = {"name": v}  # optimizer=sgd, schedule=constant: the name, with the default settings
        if isinstance(DEFAULT[k], dict) and not isinstance(v, dict):
            raise RecipeError(f"recipe {k} must be a name or a dict with keys {sorted(DEFAULT[k])} "
                              f"(e.g. {k}.name=...); got {v!r}.")
        if isinstance(DEFAULT[k], dict):
            bad = set(v) - set(DEFAULT[k])
            if bad:
                raise RecipeError(f"unknown key(s) {sorted(bad)} in recipe {k}; expected {sorted(DEFAULT[k])}.")
            out[k].update(copy.deepcopy(v))
        else:
            out[k] = copy.deepcopy(v)
    if out["dataset"] not in datasets.INFO:
        raise RecipeError(f"recipe dataset {out['dataset']!r} is unknown; expected one of {datasets.list_datasets()}.")
    if out["preprocessing"] not in PREPROCESSING:
        raise RecipeError(f"recipe preprocessing must be one of {PREPROCESSING}; got {out['preprocessing']!r}.")
    if out["optimizer"]["name"] not in OPTIMIZERS:
        raise RecipeError(f"recipe optimizer.name must be one of {OPTIMIZERS}; got {out['optimizer']['name']!r}.")
    if out["schedule"]["name"] not in SCHEDULES:
        raise RecipeError(f"recipe schedule.name must be one of {SCHEDULES}; got {out['schedule']['name']!r}.")
    if out["loss"] not in LOSSES:
        raise RecipeError(f"recipe loss must be one of {LOSSES}; got {out['loss']!r}.")
    _number(out, "optimizer.learning_rate", float, 0)
    _number(out, "optimizer.weight_decay", float, 0, allow_none=True)
    _number(out, "optimizer.clipnorm", float, 0, allow_none=True)
    _number(out, "schedule.warmup_epochs", int, 0)
    _number(out, "schedule.alpha", float, 0, 1)
    _number(out, "epochs", int, 1)
    _number(out, "batch_size", int, 1)
    _number(out, "seed", int, 0)
    _number(out, "kl_warmup_epochs", int, 0)
    if family is not None:
        _check_family(out, family)
    return out


def _check_family(recipe, family):
    """The family's part: its losses, its own keys, its own checks."""
    from aezoo.models import FAMILIES

    if family not in FAMILIES:
        raise RecipeError(f"unknown family {family!r}; expected one of {', '.join(sorted(FAMILIES))}.")
    cls = FAMILIES[family]
    if recipe["loss"] not in cls.allowed_losses:
        raise RecipeError(f"loss {recipe['loss']!r} does not fit family {family!r}: it trains on "
                          f"{', '.join(map(repr, cls.allowed_losses))}.")
    for key in FAMILY_KEYS:
        if key not in cls.recipe_options and recipe.get(key) != DEFAULT[key]:
            owners = sorted(name for name, c in FAMILIES.items() if key in c.recipe_options)
            raise RecipeError(f"recipe {key} applies to {' and '.join(owners) or 'no'} models, not {family!r}.")
    try:
        cls.check_recipe(recipe)
    except RecipeError:
        raise
    except ValueError as e:
        raise RecipeError(f"recipe: {e}") from None


def parse_overrides(items):
    """["epochs=3", "optimizer.learning_rate=3e-4"] -> {"epochs": 3, ...}."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise RecipeError(f"recipe override {item!r} is not KEY=VALUE (e.g. epochs=3, optimizer.learning_rate=3e-4).")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def apply_overrides(recipe, overrides, family=None):
    """A validated copy of `recipe` with {"dotted.key": value} overrides.

    A name for a dict-valued key sets its name: {"optimizer": "sgd"} is
    {"optimizer.name": "sgd"}, {"schedule": "constant"} is {"schedule.name": "constant"}.
    """
    out = copy.deepcopy(recipe)
    valid = _keys(DEFAULT) + ["corruption.noise", "corruption.level"]
    for key, value in (overrides or {}).items():
        if isinstance(DEFAULT.get(key), dict) and "name" in DEFAULT[key] and isinstance(value, str):
            key = f"{key}.name"  # optimizer=sgd means optimizer.name=sgd (the other settings stay)
        if key not in valid:
            raise RecipeError(f"unknown recipe key {key!r}; expected one of {', '.join(valid)}.")
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = copy.deepcopy(DEFAULT.get(part)) or {}  # e.g. corruption: None -> {}
            node = node[part]
        node[parts[-1]] = value
    return validate(out, family)
