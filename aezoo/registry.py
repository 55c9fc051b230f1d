"""The zoo: named entries (family + config + recipe) kept as data in zoo.json.

An entry has versions, like torchvision's weights enums (`V1`, `V2`): each
version is its own config, recipe and description, with its own pretrained
weights and card. `version=None` means the newest version that has published
weights (the newest defined one when none has); older versions stay loadable,
hash-checked, with `version=N`.

Example:
    >>> import aezoo
    >>> aezoo.list_models(family="vae")
    ['conv_vae_fashion_mnist', 'conv_vae_mnist', 'vae_fashion_mnist', 'vae_mnist']
    >>> model = aezoo.load("conv_mnist")                 # pretrained weights
    >>> fresh = aezoo.load("conv_mnist", pretrained=False, latent_dim=8)
    >>> v1 = aezoo.load("conv_mnist", version=1)        # the first published weights
"""

import copy
import difflib
import json

from aezoo import _io, recipes
from aezoo.errors import InputError, UnknownModelError
from aezoo.models import FAMILIES

_ZOO = None  # name -> entry, loaded lazily from zoo.json, plus users' entries


def _zoo():
    global _ZOO
    if _ZOO is None:
        _ZOO = json.loads(_io.package_file("zoo.json").read_text())
    return _ZOO


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise UnknownModelError(f"a model name is a non-empty string; got {name!r}.")
    if "/" in name or "\\" in name or name.endswith((".keras", ".h5", ".json")) or name.startswith("."):
        raise UnknownModelError(
            f"{name!r} looks like a path, not a zoo name. To load your own weights use "
            "aezoo.load(NAME, weights=PATH); for a .keras file use keras.saving.load_model(PATH). "
            f"Zoo names: {', '.join(list_models())}."
        )


def _raw_entry(name):
    _check_name(name)
    zoo = _zoo()
    if name not in zoo:
        close = difflib.get_close_matches(name, zoo, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(zoo))}.")
    return zoo[name]


def versions(name):
    """The versions of entry `name` defined in the registry, oldest first."""
    return sorted(int(v) for v in _raw_entry(name)["versions"])


def default_version(name):
    """The version `load(name)` uses: the newest one with published weights,
    else the newest defined one."""
    from aezoo import weights as weights_lib

    defined = versions(name)
    published = [v for v in weights_lib.published_versions(name) if v in defined]
    return max(published) if published else max(defined)


def check_version(name, version):
    """`version` as an int that entry `name` defines (None: the default)."""
    if version is None:
        return default_version(name)
    defined = versions(name)
    if isinstance(version, bool) or not isinstance(version, (int, str)) or not str(version).lstrip("v").isdigit() \
            or int(str(version).lstrip("v")) not in defined:
        raise UnknownModelError(
            f"{name!r} has no version {version!r}; its versions are {', '.join(map(str, defined))}."
        )
    return int(str(version).lstrip("v"))


def get_entry(name, version=None):
    """A copy of the registry entry `name` at `version` (default: `default_version`):
    family, uses, description, config, recipe, version, versions."""
    raw = _raw_entry(name)
    version = check_version(name, version)
    chosen = raw["versions"][str(version)]
    return copy.deepcopy({
        "family": raw["family"],
        "uses": raw.get("uses", []),
        "description": chosen.get("description", ""),
        "config": chosen["config"],
        "recipe": chosen["recipe"],
        "version": version,
        "versions": versions(name),
    })


def list_models(family=None, dataset=None):
    """Sorted zoo names, optionally only one family or one training dataset."""
    return sorted(
        n for n, e in _zoo().items()
        if (family is None or e["family"] == family)
        and (dataset is None or any(v["recipe"]["dataset"] == dataset for v in e["versions"].values()))
    )


def register(name, family, config, recipe=None, description="", uses=(), overwrite=False):
    """Add an entry to the zoo for this process (e.g. a user's own model).

    The config is checked by building the model once.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"a zoo name is letters, digits and underscores (e.g. 'my_conv'); got {name!r}.")
    if name in _zoo() and not overwrite:
        raise InputError(f"{name!r} is already registered; pass overwrite=True to replace it.")
    if family not in FAMILIES:
        raise InputError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}.")
    version = {
        "description": description,
        "config": dict(config),
        "recipe": recipes.validate(recipe or {"loss": "elbo" if family == "vae" else "mse"}, family),
    }
    FAMILIES[family](**version["config"])  # raises if the config is bad
    _zoo()[name] = {"family": family, "uses": list(uses), "versions": {"1": version}}
    return name


def build(name, version=None, **config_overrides):
    """A freshly initialised model for zoo entry `name` at `version` (config overrides allowed)."""
    entry = get_entry(name, version)
    config = {**entry["config"], **config_overrides}
    return FAMILIES[entry["family"]](name=name, **config)


def load(name, pretrained=True, weights=None, version=None, **config_overrides):
    """Build zoo model `name`, with weights.

    Args:
        name: a zoo name (see `list_models()`).
        pretrained: load the zoo's pretrained weights (hash-checked).
        weights: a path or URL of a `.weights.h5` file to load instead.
        version: which version of the entry (default: the newest published;
            see `versions(name)`), e.g. 1 for the first published weights.
        **config_overrides: change the architecture (then no pretrained weights).

    Raises:
        UnknownModelError: unknown name (the message lists close matches).
        WeightsError: no or corrupt pretrained weights.
    """
    from aezoo import weights as weights_lib

    version = check_version(name, version)
    model = build(name, version, **config_overrides)
    if weights is not None:
        weights_lib.load_into(model, weights_lib.fetch_user_file(weights))
    elif pretrained:
        if config_overrides:
            raise InputError(
                f"config overrides {sorted(config_overrides)} change the architecture, so the pretrained "
                f"weights of {name!r} do not fit; pass pretrained=False."
            )
        weights_lib.load_into(model, weights_lib.resolve(name, version))
    model.zoo_version = version
    return model


def info(name, version=None):
    """What the zoo knows about `name`: family, config, shapes, size, recipe,
    dataset, the manifest's metrics once pretrained weights exist, and every
    version with its metrics."""
    from aezoo import weights as weights_lib

    entry = get_entry(name, version)
    model = build(name, entry["version"])
    record = weights_lib.record(name, entry["version"])
    every = {}
    for v in entry["versions"]:
        r = weights_lib.record(name, v)
        every[str(v)] = {"description": get_entry(name, v)["description"], "pretrained": r is not None,
                         "metrics": (r or {}).get("metrics"), "file": (r or {}).get("file")}
    return {
        "name": name,
        "version": entry["version"],
        "family": entry["family"],
        "description": entry.get("description", ""),
        "uses": entry.get("uses", []),
        "config": entry["config"],
        "input_shape": list(model.image_shape),
        "latent_dim": model.latent_dim,
        "params": int(model.count_params()),
        "dataset": entry["recipe"]["dataset"],
        "recipe": entry["recipe"],
        "pretrained": record is not None,
        "metrics": (record or {}).get("metrics"),
        "weights": {k: record[k] for k in ("file", "sha256", "bytes") if k in record} if record else None,
        "export": (record or {}).get("export"),
        "tasks": (record or {}).get("tasks"),
        "versions": every,
    }
