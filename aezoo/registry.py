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

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import operator
from typing import Iterator

from aezoo import _io, recipes
from aezoo.errors import InputError, UnknownModelError, WeightsError


class Zoo:
    """The zoo's entries: zoo.json (read on first use) plus what `register` adds.

    The module's verbs use the current zoo (`current()`); `use(zoo)` swaps in
    another one for a block, so tests and applications can register entries
    without leaking them (`with registry.use(registry.current().copy()): ...`).

    Example:
        >>> sandbox = registry.current().copy()
        >>> with registry.use(sandbox):
        ...     aezoo.register("mine", "dense", {"latent_dim": 8})
        >>> "mine" in aezoo.list_models()
        False
    """

    def __init__(self, entries: dict | None = None):
        self._entries = None if entries is None else dict(entries)

    @property
    def entries(self) -> dict:
        """name -> entry (family, uses, versions)."""
        if self._entries is None:
            self._entries = json.loads(_io.package_file("zoo.json").read_text())
        return self._entries

    def copy(self) -> "Zoo":
        """An independent zoo with the same entries (registering in one leaves the other alone)."""
        return Zoo(copy.deepcopy(self.entries))

    def reset(self) -> None:
        """Forget registered entries: back to zoo.json."""
        self._entries = None


_CURRENT = Zoo()


def parse_spec(spec: str) -> tuple[str, int | None]:
    """Split ``"NAME[:VERSION]"`` into the name and the version (None: the default).

    Args:
        spec: e.g. "conv_mnist", "conv_mnist:1" or "conv_mnist:v2".

    Returns:
        (name, version or None).

    Example:
        >>> parse_spec("conv_mnist:2")
        ('conv_mnist', 2)
    """
    if not isinstance(spec, str) or not spec:
        raise InputError(f"an entry is NAME or NAME:VERSION (e.g. conv_mnist:1); got {spec!r}.")
    name, sep, version = spec.partition(":")
    if not sep:
        return name, None
    digits = version[1:] if version[:1] in ("v", "V") else version
    if not digits.isdigit() or int(digits) < 1:
        raise InputError(f"{spec!r}: the version after ':' is a positive integer (e.g. {name}:1); got {version!r}.")
    return name, int(digits)


def current() -> Zoo:
    """The zoo the module's verbs use."""
    return _CURRENT


@contextlib.contextmanager
def use(zoo: Zoo) -> Iterator[Zoo]:
    """Make `zoo` the current zoo inside the block (then restore the previous one)."""
    global _CURRENT
    previous, _CURRENT = _CURRENT, zoo
    try:
        yield zoo
    finally:
        _CURRENT = previous


def _zoo():
    return _CURRENT.entries


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


def raw_version(name: str, version: int) -> dict:
    """A copy of zoo.json's record of `name` at `version` as written (description,
    config, recipe, goals)."""
    return copy.deepcopy(_raw_entry(name)["versions"][str(check_version(name, version))])


def versions(name: str) -> list[int]:
    """The versions of entry `name` defined in the registry, oldest first.

    Example:
        >>> aezoo.registry.versions("conv_fashion_mnist")
        [1, 2]
    """
    return sorted(int(v) for v in _raw_entry(name)["versions"])


def default_version(name: str) -> int:
    """The version `load(name)` uses: the newest one with published weights,
    else the newest defined one."""
    from aezoo import weights as weights_lib

    defined = versions(name)
    published = [v for v in weights_lib.published_versions(name) if v in defined]
    return max(published) if published else max(defined)


def check_version(name: str, version: int | str | None) -> int:
    """`version` as an int that entry `name` defines (None: the default; "v2" and "2" read as 2).

    Raises:
        UnknownModelError: a version the entry does not define.
    """
    if version is None:
        return default_version(name)
    defined = versions(name)
    if isinstance(version, bool) or not isinstance(version, (int, str)) or not str(version).lstrip("v").isdigit() \
            or int(str(version).lstrip("v")) not in defined:
        raise UnknownModelError(
            f"{name!r} has no version {version!r}; its versions are {', '.join(map(str, defined))}."
        )
    return int(str(version).lstrip("v"))


def get_entry(name: str, version: int | None = None) -> dict:
    """A copy of the registry entry `name` at `version` (default: `default_version`).

    Returns:
        {family, uses, description, config, recipe, version, versions}.

    Raises:
        UnknownModelError: an unknown name (with close matches) or version.

    Example:
        >>> aezoo.get_entry("conv_mnist")["recipe"]["dataset"]
        'mnist_5k'
    """
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


def _families():
    """The family classes (imports Keras: only the verbs that build models call this)."""
    from aezoo.models import FAMILIES

    return FAMILIES


def families() -> list[str]:
    """The families that zoo entries use, from the registry's data (no Keras import)."""
    return sorted({e["family"] for e in _zoo().values()})


def list_models(family: str | None = None, dataset: str | None = None) -> list[str]:
    """Sorted zoo names, optionally only one family or one training dataset.

    Example:
        >>> aezoo.list_models(family="vae", dataset="mnist_5k")
        ['conv_vae_mnist', 'vae_mnist']
    """
    return sorted(
        n for n, e in _zoo().items()
        if (family is None or e["family"] == family)
        and (dataset is None or any(v["recipe"]["dataset"] == dataset for v in e["versions"].values()))
    )


def register(name: str, family: str, config: dict, recipe: dict | None = None, description: str = "",
             uses=(), overwrite: bool = False) -> str:
    """Add an entry to the current zoo (for this process), e.g. your own model.

    The config is checked by building the model once. An entry with published
    pretrained weights cannot be overwritten (its weights would be loaded into
    the new, different model); register under another name.

    Args:
        name: letters, digits and underscores.
        family: a registered family (see `aezoo.models.FAMILIES`).
        config: the model's constructor arguments, e.g. {"latent_dim": 16}.
        recipe: a training recipe (see `aezoo.recipes`); default: the family's
            default loss and the recipe defaults.
        description, uses: shown by `info`.
        overwrite: replace an entry you registered before.

    Returns:
        `name`.

    Example:
        >>> aezoo.register("my_dense", "dense", {"input_shape": [28, 28, 1], "latent_dim": 8})
        >>> aezoo.load("my_dense", pretrained=False)
    """
    from aezoo import weights as weights_lib

    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"a zoo name is letters, digits and underscores (e.g. 'my_conv'); got {name!r}.")
    if name in _zoo() and not overwrite:
        raise InputError(f"{name!r} is already registered; pass overwrite=True to replace it.")
    if name in _zoo() and weights_lib.published_versions(name):
        raise InputError(
            f"{name!r} has published pretrained weights (versions "
            f"{', '.join(map(str, weights_lib.published_versions(name)))}); overwriting it would load them into a "
            "different model. Register your model under another name."
        )
    if not isinstance(config, dict):
        raise InputError(f"config is a dict of the model's settings, e.g. {{'latent_dim': 16}}; got {config!r}.")
    if recipe is not None and not isinstance(recipe, dict):
        raise InputError(f"recipe is a dict (see aezoo.recipes) or None; got {recipe!r}.")
    if isinstance(uses, str):
        uses = [uses]
    FAMILIES = _families()
    if family not in FAMILIES:
        raise InputError(f"unknown family {family!r}; expected one of {', '.join(sorted(FAMILIES))}.")
    cls = FAMILIES[family]
    version = {
        "description": str(description),
        "config": dict(config),
        "recipe": recipes.validate(recipe or {"loss": cls.default_loss}, family),
    }
    _construct(cls, name, cls.config_for_recipe(version["config"], version["recipe"]))  # raises if the config is bad
    _zoo()[name] = {"family": family, "uses": list(uses), "versions": {"1": version}}
    return name


def _construct(cls, name, config):
    """cls(name=name, **config), with a bad config reported as InputError."""
    try:
        return cls(name=name, **config)
    except InputError:
        raise
    except (TypeError, ValueError) as e:
        import inspect

        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
        raise InputError(f"bad config for {name!r} ({cls.__name__}): {e}. It takes {', '.join(accepted)}.") from None


def build(name: str, version: int | None = None, **config_overrides):
    """A freshly initialised model for zoo entry `name` at `version` (config overrides allowed).

    Example:
        >>> model = aezoo.build("conv_mnist", latent_dim=8)
    """
    entry = get_entry(name, version)
    cls = _families()[entry["family"]]
    config = {**cls.config_for_recipe(entry["config"], entry["recipe"]), **config_overrides}
    model = _construct(cls, name, config)
    # what the builder knows, for the verbs that need it later (e.g. export's verification images)
    model.zoo_entry = {"name": name, "version": entry["version"], "dataset": entry["recipe"]["dataset"]}
    return model


def _is_preset_dir(name) -> bool:
    """True for a directory path that is not a zoo name (then `load` reads it as a preset)."""
    import os

    try:
        path = os.fspath(name)
    except TypeError:
        return False
    return isinstance(path, str) and path not in _zoo() and os.path.isdir(path)


def load(name: str, pretrained: bool = True, weights=None, version: int | None = None, **config_overrides):
    """Build zoo model `name`, with weights; or load a preset directory (`aezoo.save`).

    Args:
        name: a zoo name (see `list_models()`), or a preset directory written by
            `aezoo.save` / ``aezoo train NAME --data PATH`` (config.json,
            model.weights.h5, metadata.json).
        pretrained: load the zoo's pretrained weights (hash-checked).
        weights: a path or URL of a `.weights.h5` file to load instead.
        version: which version of the entry (default: the newest published;
            see `versions(name)`), e.g. 1 for the first published weights.
        **config_overrides: change the architecture (then no pretrained weights).

    Returns:
        The model (an `aezoo.models.Autoencoder`), with `zoo_version` and `zoo_entry` set.

    Raises:
        UnknownModelError: unknown name (the message lists close matches).
        InputError: a bad config override.
        WeightsError: no or corrupt pretrained weights.

    Example:
        >>> model = aezoo.load("conv_mnist")
        >>> fresh = aezoo.load("conv_mnist", pretrained=False, latent_dim=8)
    """
    from aezoo import weights as weights_lib

    if _is_preset_dir(name):  # a directory written by aezoo.save (zoo names come first)
        from aezoo import presets

        if weights is not None or version is not None or config_overrides or not pretrained:
            raise InputError(f"{name} is a preset directory: it carries its own config and weights; load it "
                             "without weights=, version=, pretrained=False or config overrides.")
        return presets.load(name)
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
    # what the weights are, for the input check's stored threshold and the artifact cards
    model.weights_source = str(weights) if weights is not None else ("pretrained" if pretrained else "untrained")
    return model


def info(name: str, version: int | None = None, count_params: bool = False) -> dict:
    """What the zoo knows about `name`: family, config, shapes, size, recipe,
    dataset, the manifest's metrics once pretrained weights exist, and every
    version with its metrics.

    Read from the registry's data and the manifest, without Keras: `params`
    comes from the published record; for a version without published weights
    it is None unless `count_params=True` (which builds the model).

    Example:
        >>> aezoo.info("conv_mnist")["metrics"]["mse"]
    """
    from aezoo import weights as weights_lib

    entry = get_entry(name, version)
    record = weights_lib.record(name, entry["version"])
    every = {}
    for v in entry["versions"]:
        r = weights_lib.record(name, v)
        every[str(v)] = {"description": get_entry(name, v)["description"], "pretrained": r is not None,
                         "metrics": (r or {}).get("metrics"), "file": (r or {}).get("file")}
    config = entry["config"]
    params = (record or {}).get("params")
    if (count_params and params is None) or "input_shape" not in config or "latent_dim" not in config:
        model = build(name, entry["version"])  # the config leaves something to the class: ask the model
        if count_params and params is None:
            params = int(model.count_params())
        config = {**config, "input_shape": list(model.image_shape), "latent_dim": model.latent_dim}
    return {
        "name": name,
        "version": entry["version"],
        "family": entry["family"],
        "description": entry.get("description", ""),
        "uses": entry.get("uses", []),
        "config": entry["config"],
        "input_shape": list(config["input_shape"]),
        "latent_dim": int(config["latent_dim"]),
        "params": params,
        "dataset": entry["recipe"]["dataset"],
        "recipe": entry["recipe"],
        "pretrained": record is not None,
        "metrics": (record or {}).get("metrics"),
        "weights": {k: record[k] for k in ("file", "sha256", "bytes") if k in record} if record else None,
        "export": (record or {}).get("export"),
        "tasks": (record or {}).get("tasks"),
        "goals": goals(name, entry["version"]),
        "versions": every,
    }


GOAL_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def _lookup(tree, path):
    """tree[path[0]][path[1]]...; None where a key is missing (not measured yet)."""
    for key in path:
        if not isinstance(tree, dict) or str(key) not in tree:
            return None
        tree = tree[str(key)]
    return tree


def _goal_reference(spec, record, table):
    """The number a relative goal is measured against: the same card, another
    entry's card ({entry, version}) or a task results file ({file} under pretrained/)."""
    where = spec["relative_to"]
    if "file" in where:
        path = _io.pretrained_dir() / where["file"]
        tree = json.loads(path.read_text()) if path.exists() else {}
    elif "entry" in where:
        tree = (table.get(where["entry"]) or {}).get(str(where["version"]))
    else:
        tree = record
    return _lookup(tree, where["path"])


def goals(name, version, manifest=None):
    """The goals that zoo.json sets for `name` at `version`, each checked
    against the card: [{measure, goal, target, measured, met, margin, source,
    tried}]. `margin` is signed in the measure's units: >= 0 when the goal is
    met, the shortfall when it is not; measured/met/margin are None until the
    card has the number (a task not run yet).

    A goal is data: {"measure", "path": card keys, "op": one of <=, <, >=, >,
    "value", optional "relative_to": {"path"} on the same card, {"entry",
    "version", "path"} or {"file" (under pretrained/), "path"}, optional
    "scale" for the reference (target = reference * scale + value), "source",
    "tried"}.
    """
    from aezoo.weights import records

    table = records() if manifest is None else manifest
    record = (table.get(name) or {}).get(str(version)) or {}
    specs = raw_version(name, version).get("goals", [])
    out = []
    for spec in specs:
        op = spec["op"]
        if op not in GOAL_OPS:
            raise InputError(f"zoo.json: goal {spec.get('measure')!r} of {name} v{version} has op {op!r}; "
                             f"expected one of {', '.join(GOAL_OPS)}.")
        reference = _goal_reference(spec, record, table) if "relative_to" in spec else None
        target = None
        if "relative_to" not in spec:
            target = float(spec["value"])
        elif reference is not None:
            target = float(reference) * float(spec.get("scale", 1.0)) + float(spec.get("value", 0.0))
        measured = _lookup(record, spec["path"])
        measured = None if measured is None else float(measured)
        met = margin = None
        if measured is not None and target is not None:
            met = bool(GOAL_OPS[op](measured, target))
            margin = measured - target if op.startswith(">") else target - measured
        text = f"{op} {spec['value']}" if "relative_to" not in spec else spec.get("goal", f"{op} reference")
        out.append({"measure": spec["measure"], "goal": text, "target": target, "reference": reference,
                    "measured": measured, "met": met, "margin": margin, "source": spec.get("source"),
                    "tried": spec.get("tried")})
    return out


def verify(names: list[str] | None = None) -> list[dict]:
    """Resolve, hash-check, build and load every published version of every
    manifest entry (or of `names`).

    Returns one dict per (entry, version): {name, version, file, path,
    sha256_ok, loaded, error}; failures are reported, not raised.

    Raises:
        UnknownModelError: a name in `names` that is neither a zoo entry nor in the manifest.

    Example:
        >>> [r["name"] for r in aezoo.registry.verify() if r["error"]]
        []
    """
    from aezoo import weights as weights_lib

    table = weights_lib.records()
    if names is not None:
        for n in names:
            if n not in table:
                _raw_entry(n)  # an unknown name says so (with close matches)
    names = list(table) if names is None else list(names)
    report = []
    for name, version in ((n, v) for n in names for v in (sorted(map(int, table.get(n) or {})) or [None])):
        row = {"name": name, "version": version, "file": (weights_lib.record(name, version) or {}).get("file"),
               "path": None, "sha256_ok": False, "loaded": False, "error": None}
        try:
            record_ = weights_lib._record(name, version)
            path = weights_lib.resolve(name, version)
            row["path"] = str(path)
            row["sha256_ok"] = weights_lib.sha256(path) == record_["sha256"]
            if not row["sha256_ok"]:
                raise WeightsError(f"{path}: sha256 does not match the manifest.")
            weights_lib.load_into(build(name, version), path)
            row["loaded"] = True
        except Exception as e:  # report every failure, keep going
            row["error"] = f"{type(e).__name__}: {e}"
        report.append(row)
    return report
