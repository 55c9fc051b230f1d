"""Task benchmarks: what the zoo's models are good for, measured beside baselines.

    aezoo bench denoise                      # every published entry the task applies to
    aezoo bench features conv_mnist:1        # one entry at one version
    aezoo bench compress --quick             # a small, fast variant (not written by default)
    make results                             # README "Tasks" tables + task headlines on the cards

One module per task (`TASKS`, imported lazily). Every module has `TASK`,
`PROTOCOL` (a paragraph), `ANCHORS` (published results with their source and
every protocol difference), `applies_to(entry)`, `run(models=None, names=None,
*, quick=False, seed=0, progress=True, **options)`, `table(results)` and
`card_summary(entry_result)`.

`bench(task, names)` runs a task and merges the result into
``pretrained/tasks/TASK.json`` (atomically): one key per entry,
``NAME -> {"VERSION": result}``, beside the keys ``task``, ``protocol``,
``anchors``, ``baselines`` (merged key by key, so a run over some entries keeps
the other datasets' baselines), ``settings``, ``machine``, ``versions`` and
``date``. Names are ``NAME`` (the newest published version) or
``NAME:VERSION``, so every version is measured the same way.

`tasks_block()` renders the README section from those files and
`write_cards()` puts each entry's headline numbers into its card
(``pretrained/manifest.json -> [NAME][VERSION]["tasks"][TASK]``); both run
from `aezoo.cards.update_readme` (``make results``).

Example:
    >>> import aezoo.tasks
    >>> result = aezoo.tasks.bench("embed", ["conv_mnist:1"])
    >>> result["conv_mnist"]["1"]["knn_accuracy"]
"""

from __future__ import annotations

import copy
import datetime
import importlib
import inspect
import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from aezoo.errors import InputError
from aezoo.registry import parse_spec  # noqa: F401  (NAME[:VERSION], part of this module's API)

TASKS = {
    "anomaly": "aezoo.tasks.anomaly",
    "denoise": "aezoo.tasks.denoise",
    "features": "aezoo.tasks.features",
    "compress": "aezoo.tasks.compress",
    "generate": "aezoo.tasks.generate",
    "embed": "aezoo.tasks.embed",
}
TASK_TITLES = {
    "anomaly": "Anomaly detection",
    "denoise": "Denoising",
    "features": "Feature extraction and pretraining",
    "compress": "Compression (rate–distortion)",
    "generate": "Generation (VAEs)",
    "embed": "Dimensionality reduction (2-d embeddings)",
}
RESERVED = ("task", "protocol", "anchors", "baselines", "settings", "machine", "versions", "date", "entries",
            "command", "figures")
TASKS_START, TASKS_END = "<!-- tasks:start -->", "<!-- tasks:end -->"
TASKS_DIR = None  # None: aezoo._io.pretrained_dir() / "tasks" (a test may point it elsewhere)


# --------------------------------------------------------------------------- modules and names


def module(task: str):
    """The module of `task` (imported on first use).

    Args:
        task: one of `TASKS`.

    Returns:
        The imported module.

    Example:
        >>> module("denoise").TASK
        'denoise'
    """
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}.")
    return importlib.import_module(TASKS[task])


def resolve(names: Iterable[str] | None = None, models: dict | None = None,
            applies_to=None, published_only: bool = True) -> list[dict]:
    """What a task run measures: one dict per entry, checked before any work.

    Args:
        names: ``NAME`` or ``NAME:VERSION`` strings; None with no `models`:
            every published entry (at its default version) that `applies_to`.
        models: name -> a model to measure as that entry (e.g. just trained);
            its version is ``model.zoo_version`` when set, else the default.
        applies_to: the task's `applies_to(entry)`: picks the entries when
            no name is given; a named entry it rejects is an error.
        published_only: named entries must have published weights (unless a
            model is given for them).

    Returns:
        A list of {"name", "version", "entry", "model" (or None: load lazily)}.

    Example:
        >>> [s["version"] for s in resolve(["conv_mnist:1"])]
        [1]
    """
    from aezoo import registry, weights

    models = dict(models or {})
    specs = []
    if names is None and not models:
        for name in sorted(weights.records()):
            try:
                entry = registry.get_entry(name)
            except InputError:  # a manifest record without a registry entry: not measurable
                continue
            if applies_to is None or applies_to(entry):
                specs.append({"name": name, "version": entry["version"], "entry": entry, "model": None})
        return specs
    seen = set()
    for spec in list(names or []) + [n for n in models if n not in {parse_spec(s)[0] for s in names or []}]:
        name, version = parse_spec(spec)
        if name in RESERVED:
            raise InputError(f"{name!r} is a reserved key of the task files; rename the entry.")
        model = models.get(name)
        if version is None and model is not None and getattr(model, "zoo_version", None) is not None:
            version = model.zoo_version
        version = registry.check_version(name, version)
        if (name, version) in seen:
            continue
        seen.add((name, version))
        if model is None and published_only and weights.record(name, version) is None:
            published = weights.published_versions(name)
            raise InputError(
                f"{name} version {version} has no published weights to measure"
                + (f"; published: {', '.join(f'{name}:{v}' for v in published)}." if published else ".")
            )
        entry = registry.get_entry(name, version)
        if applies_to is not None and not applies_to(entry):
            raise InputError(f"this task does not apply to {name} (family {entry['family']}, uses: "
                             f"{', '.join(entry.get('uses', [])) or 'none'}); run it without names to measure "
                             "every entry it applies to.")
        specs.append({"name": name, "version": version, "entry": entry, "model": model})
    return specs


def load_model(spec: dict):
    """The model of a `resolve` spec (loads the pretrained weights if none was given)."""
    if spec.get("model") is not None:
        return spec["model"]
    from aezoo import registry

    return registry.load(spec["name"], version=spec["version"])


def entries(results: dict) -> Iterator[tuple[str, str, dict]]:
    """(name, version, result) of every entry in a merged task file, sorted.

    An entry key holds a dict whose keys are all version numbers.

    Example:
        >>> list(entries({"conv_mnist": {"1": {"psnr": 20.0}}, "protocol": "..."}))
        [('conv_mnist', '1', {'psnr': 20.0})]
    """
    for name in sorted(results):
        value = results[name]
        if name in RESERVED or not isinstance(value, dict) or not value:
            continue
        if all(isinstance(v, str) and v.isdigit() for v in value):
            for version in sorted(value, key=int):
                if isinstance(value[version], dict):
                    yield name, version, value[version]


def label(name: str, version: str | int) -> str:
    """How tables name an entry at a version: ``name v1``."""
    return f"{name} v{version}"


# --------------------------------------------------------------------------- files


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (`aezoo._io.write_json`: temporary file beside it, then rename)."""
    from aezoo import _io

    return _io.write_json(path, data)


def save_figure(fig, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically (temporary file beside it, then rename)."""
    from aezoo import _io

    with _io.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)


def tasks_dir() -> Path:
    """Where task results live: ``pretrained/tasks`` (beside manifest.json; `TASKS_DIR` when set)."""
    from aezoo import _io

    return Path(TASKS_DIR) if TASKS_DIR is not None else _io.pretrained_dir() / "tasks"


def results_path(task: str) -> Path:
    """``pretrained/tasks/TASK.json``."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}.")
    return tasks_dir() / f"{task}.json"


def read_results(task: str, path: Path | None = None) -> dict:
    """The merged results of `task` ({} when none were written yet)."""
    path = Path(path) if path is not None else results_path(task)
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def deep_merge(old: Any, new: Any) -> Any:
    """`new` over `old`, recursively for dicts (new leaves win; old keys stay).

    Example:
        >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}})
        {'a': {'x': 1, 'y': 3}}
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    out = copy.deepcopy(old)
    for key, value in new.items():
        out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def merge(existing: dict, result: dict) -> dict:
    """Merge a `run` result into a task file's content.

    Entries go to ``existing[NAME][VERSION]`` (a measured version replaces its
    old result; other entries and versions stay); ``baselines`` and
    ``settings`` merge key by key; the other keys are replaced.

    Args:
        existing: the file's content ({} for a new file).
        result: what a task's `run` returned (with "entries").

    Returns:
        The new content (existing is not modified).
    """
    out = copy.deepcopy(existing)
    for key, value in result.items():
        if key == "entries":
            continue
        if key in ("baselines", "settings") and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    for name, value in (result.get("entries") or {}).items():
        if name in RESERVED:
            raise InputError(f"{name!r} is a reserved key of the task files.")
        version = str(value.get("version", 1))
        slot = out.get(name) if isinstance(out.get(name), dict) else {}
        slot[version] = copy.deepcopy(value)
        out[name] = dict(sorted(slot.items(), key=lambda kv: int(kv[0])))
    reserved = {k: out[k] for k in RESERVED if k in out}
    named = {k: out[k] for k in sorted(out) if k not in reserved}
    return {**reserved, **named}


def machine() -> dict:
    """The machine results were measured on (CPU, cores, system)."""
    from aezoo.benchmark import machine as _machine

    return _machine()


def versions() -> dict:
    """Library versions for the record."""
    import importlib.metadata as md

    from aezoo import _io

    out = dict(_io.versions())
    for package in ("scikit-learn", "scikit-image", "pillow", "scipy"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- running


def bench(task: str, names: list[str] | None = None, quick: bool = False, output: str | Path | None = None,
          write: bool | None = None, seed: int = 0, progress: bool = True, models: dict | None = None,
          **options) -> dict:
    """Run `task` on zoo entries and merge the result into its JSON file.

    Args:
        task: "anomaly", "denoise", "features", "compress", "generate" or "embed".
        names: ``NAME`` or ``NAME:VERSION`` strings (default: every published
            entry the task applies to, each at its newest published version).
        quick: the task's small, fast variant (for smoke runs; its numbers
            are not the protocol's).
        output: the JSON file to merge into (default ``pretrained/tasks/TASK.json``).
        write: merge into `output` (default: yes, except for quick runs
            without an explicit `output`, which never touch the bundled
            results); the task's figures (PNG) go beside it.
        seed: the task's seed (noise, label draws, samples).
        progress: tqdm progress bars.
        models: name -> model, to measure models that are not (yet) published.
        **options: passed to the task's `run`.

    Returns:
        The task's result: {"task", "protocol", "entries", "baselines", ...}
        plus "machine", "versions", "date" and "command".

    Example:
        >>> bench("compress", ["conv_mnist:1"])["entries"]["conv_mnist"]["bits"]["8"]["psnr"]
    """
    mod = module(task)
    specs = resolve(names, models, applies_to=mod.applies_to)  # unknown names fail before any work
    if not specs:
        raise InputError(f"no published entry to measure for task {task!r}.")
    call_models = {s["name"]: s["model"] for s in specs if s["model"] is not None}
    call_names = [f"{s['name']}:{s['version']}" for s in specs]
    if write is None:
        write = not quick or output is not None
    path = Path(output) if output is not None else results_path(task)
    if write and "figures_dir" in inspect.signature(mod.run).parameters:
        options.setdefault("figures_dir", path.parent)
    result = mod.run(models=call_models or None, names=call_names, quick=quick, seed=seed, progress=progress,
                     **options)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    command = f"aezoo bench {task} " + " ".join(call_names) + (" --quick" if quick else "") + \
        (f" --seed {seed}" if seed else "")
    result = {**result, "machine": machine(), "versions": versions(), "date": stamp, "command": command}
    for name, value in (result.get("entries") or {}).items():
        value.setdefault("date", stamp)
        value.setdefault("command", f"aezoo bench {task} {name}:{value.get('version')}" + (" --quick" if quick else ""))
    if write:
        merged = merge(read_results(task, path), result)
        if hasattr(mod, "figures"):
            merged["figures"] = sorted(str(Path(p).name) for p in mod.figures(merged, path.parent))
        write_json(path, merged)
    return result


# --------------------------------------------------------------------------- README and cards


def tasks_block(directory: Path | None = None) -> str:
    """The README "Tasks" section: every task's protocol and table, from the JSON files.

    Args:
        directory: where the task files are (default ``pretrained/tasks``).

    Returns:
        Markdown (no markers).
    """
    directory = Path(directory) if directory is not None else tasks_dir()
    parts = []
    for task in TASKS:
        path = directory / f"{task}.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        try:
            mod = module(task)
        except ImportError:
            continue
        parts.append(f"### {TASK_TITLES[task]}\n\n{results.get('protocol') or mod.PROTOCOL}\n\n"
                     f"{mod.table(results).rstrip()}\n\n"
                     f"Reproduce: `aezoo bench {task}` (written to `pretrained/tasks/{task}.json`"
                     + (f", measured {results['date'][:10]}" if results.get("date") else "") + ").")
    if not parts:
        return "No task results yet: run `aezoo bench TASK`."
    return "\n\n".join(parts)


def card_summaries(directory: Path | None = None) -> dict:
    """name -> version -> task -> headline numbers, from every task file."""
    directory = Path(directory) if directory is not None else tasks_dir()
    out: dict = {}
    for task in TASKS:
        path = directory / f"{task}.json"
        if not path.is_file():
            continue
        try:
            mod = module(task)
        except ImportError:
            continue
        results = json.loads(path.read_text())
        for name, version, result in entries(results):
            out.setdefault(name, {}).setdefault(version, {})[task] = {
                **mod.card_summary(result), "source": f"pretrained/tasks/{task}.json",
                "command": result.get("command", f"aezoo bench {task} {name}:{version}"),
            }
    return out


def write_cards(manifest_path: Path | None = None, directory: Path | None = None) -> list[tuple[str, str]]:
    """Put each entry's task headlines into its card: manifest[NAME][VERSION]["tasks"].

    Only published (name, version) records are touched; a record's "tasks"
    is replaced by what the task files say now. The file is only rewritten
    when something changed.

    Returns:
        The (name, version) pairs written.
    """
    manifest_path = Path(manifest_path) if manifest_path is not None else tasks_dir().parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    before = copy.deepcopy(manifest)
    summaries = card_summaries(directory)
    written = []
    for name, by_version in manifest.items():
        if not isinstance(by_version, dict) or "file" in by_version:  # a pre-versions record: leave it
            continue
        for version, record in by_version.items():
            tasks = (summaries.get(name) or {}).get(version)
            if tasks:
                record["tasks"] = tasks
                written.append((name, version))
            elif "tasks" in record:
                del record["tasks"]
    if manifest != before:  # a no-op when the cards already say what the task files say
        write_json(manifest_path, manifest)
    return written


def update_readme_text(text: str, path: str = "README.md", directory: Path | None = None) -> str:
    """`text` with its tasks block regenerated (the markers must be there)."""
    if TASKS_START not in text or TASKS_END not in text:
        raise InputError(f"{path} has no {TASKS_START} ... {TASKS_END} markers for the tasks tables.")
    before, rest = text.split(TASKS_START, 1)
    _, after = rest.split(TASKS_END, 1)
    return f"{before}{TASKS_START}\n{tasks_block(directory)}\n{TASKS_END}{after}"


# --------------------------------------------------------------------------- helpers shared by the task modules


def dataset_of(spec: dict) -> str:
    """The dataset an entry was trained on (its split defines the task data)."""
    return spec["entry"]["recipe"]["dataset"]


def load_split(dataset: str, split: str, data: dict | None = None, limit: int | None = None):
    """Images and labels of a split: from `data[dataset][split]` if given, else the dataset.

    Args:
        dataset: e.g. "fashion_mnist" or "mnist_5k".
        split: "train", "validation" or "test".
        data: {dataset: {split: (x, y)}} to use instead of the files (tests).
        limit: keep `limit` examples, a fixed random subset (seed 0) in the
            split's order (mnist_5k is stored class by class, so its first
            examples would all be zeros).

    Returns:
        (x float32 (N, 28, 28, 1) in [0, 1], y int64 (N,)).
    """
    import numpy as np

    from aezoo import datasets

    if data is not None and dataset in data and split in data[dataset]:
        x, y = data[dataset][split]
        x, y = np.asarray(x, dtype="float32"), np.asarray(y, dtype="int64")
    else:
        x, y = datasets.load_numpy(dataset, split)
    if limit is not None and int(limit) < len(x):
        keep = np.sort(np.random.default_rng(0).choice(len(x), size=int(limit), replace=False))
        x, y = x[keep], y[keep]
    return x, y


def encode(model, x, batch_size: int = 500):
    """Latent codes (posterior means for VAEs), float32 (N, latent_dim), in batches."""
    import numpy as np

    out = [np.asarray(model.code(model.encoder(x[i: i + batch_size], training=False)), dtype="float32")
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out).reshape(len(x), -1)


def reconstruct(model, x, batch_size: int = 500):
    """The model's output for `x` (decoded posterior mean for VAEs), clipped to [0, 1]."""
    import numpy as np

    out = [np.asarray(model(x[i: i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.clip(np.concatenate(out), 0.0, 1.0).astype("float32")


def decode(model, z, batch_size: int = 500):
    """Images from latent codes, clipped to [0, 1]."""
    import numpy as np

    z = np.asarray(z, dtype="float32")
    out = [np.asarray(model.decoder(z[i: i + batch_size], training=False)) for i in range(0, len(z), batch_size)]
    return np.clip(np.concatenate(out), 0.0, 1.0).astype("float32")


def psnr_pooled(x, y) -> float:
    """PSNR (dB, peak 1) of the MSE pooled over every pixel of every image.

    This is how Net-SURE reports PSNR; the mean of per-image PSNRs reads higher.

    Args:
        x, y: arrays of the same shape with values in [0, 1].

    Returns:
        10 log10(1 / MSE), or inf when x == y.

    Example:
        >>> psnr_pooled(np.zeros(4), np.full(4, 0.1))   # MSE 0.01
        20.0
    """
    import numpy as np

    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    if x.shape != y.shape:
        raise InputError(f"PSNR needs arrays of one shape; got {x.shape} and {y.shape}.")
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def ssim_mean(x, y, batch_size: int = 2000) -> float:
    """Mean SSIM (tf.image.ssim, peak 1, 11x11 Gaussian window) over the images."""
    import numpy as np
    import tensorflow as tf

    x, y = np.asarray(x, dtype="float32"), np.asarray(y, dtype="float32")
    filter_size = min(11, *x.shape[1:3])
    values = [tf.image.ssim(tf.constant(x[i: i + batch_size]), tf.constant(y[i: i + batch_size]), max_val=1.0,
                            filter_size=filter_size).numpy() for i in range(0, len(x), batch_size)]
    return float(np.concatenate(values).mean())


def fmt(value, spec: str = ".2f", missing: str = "—") -> str:
    """A number for a table cell (— when missing, ∞ for inf)."""
    if value is None:
        return missing
    if isinstance(value, float) and value == float("inf"):
        return "∞"
    return format(value, spec)


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar (disabled when `enabled` is False)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=False)
