"""Run a zoo recipe: `aezoo train NAME` / `aezoo.train(NAME)`.

A run directory holds everything a run makes:

    run.json             what the run was started with (name, version, recipe,
                         config, data): a re-run must ask for the same
    NAME.weights.h5      final weights (written to a temp file, then renamed)
    train_metrics.json   recipe, overrides, data, per-epoch history, versions
    best.weights.h5      best validation loss so far (ModelCheckpoint)
    history.csv          per-epoch losses (CSVLogger)
    logs/                TensorBoard logs (`tensorboard --logdir RUN/logs`)
    backup/              BackupAndRestore state: a killed run resumes here
    epoch_seconds.json   wall seconds of each finished epoch, kept across a
                         resume (train_metrics.json "seconds" counts them all)

Re-running `train` into a run directory resumes a killed run when it asks for
exactly what `run.json` records; a different entry, recipe, config or data is
refused (`RunDirError`, which says what differs), and so is a finished run.

`train` runs in stages: `plan` (entry, recipe and overrides -> what to train),
`claim_run_dir`, `load_data`, `build_model` (under the scale-out strategy),
`make_callbacks`, fit, `finish` (weights and train_metrics.json).

Scale-out uses the backends' own engines (see README "Training at scale"):
`strategy="mirrored"` (tf.distribute.MirroredStrategy, all local GPUs) or
`"multi_worker"` (tf.distribute.MultiWorkerMirroredStrategy, TF_CONFIG) on
TensorFlow; `"data_parallel"` (keras.distribution.DataParallel over all
devices) on JAX. With multi_worker, only the chief (task 0) writes the run
directory; the other workers write theirs to `RUN/worker-N/`.

Keras and TensorFlow are imported when training starts, not with this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from aezoo import _io, datasets, recipes
from aezoo.errors import AezooError, BackendError, InputError, RecipeError
from aezoo.registry import get_entry

STRATEGIES = {"tensorflow": ("none", "mirrored", "multi_worker"), "jax": ("none", "data_parallel")}
ALL_STRATEGIES = ("none", "mirrored", "multi_worker", "data_parallel")

WARMUP_START_FACTOR = 0.1        # cosine warm-up starts at learning_rate * this
ADAMW_DEFAULT_WEIGHT_DECAY = 1e-4  # AdamW when the recipe's weight_decay is null
SGD_MOMENTUM = 0.9
SHUFFLE_BUFFER = 60_000          # images in the tf.data shuffle of a user's Dataset (arrays use epoch_batches)
RUN_FILE = "run.json"

# One record and one atomic writer for the whole package (aezoo._io); the names
# stay importable from here.
versions = _io.versions
write_text = _io.write_text
write_json = _io.write_json
save_weights_atomic = _io.save_weights


class RunDirError(AezooError):
    """A run directory that belongs to another run, or to a finished one."""


@dataclasses.dataclass
class Plan:
    """What a training run will do: the entry, its family class, the recipe
    after overrides and the model config it implies."""

    name: str
    version: int
    family: str
    family_class: type
    recipe: dict
    config: dict
    overrides: dict
    config_overrides: dict

    @property
    def input_shape(self) -> tuple:
        """The images' shape: the config's, else the family's default."""
        if "input_shape" in self.config:
            return tuple(self.config["input_shape"])
        import inspect

        return tuple(inspect.signature(self.family_class.__init__).parameters["input_shape"].default)

    def record(self, data_info: dict) -> dict:
        """What run.json keeps, to recognise a re-run of the same run."""
        return {"name": self.name, "version": self.version, "family": self.family, "recipe": self.recipe,
                "config": self.config, "config_overrides": self.config_overrides, "data": data_info}


def make_optimizer(recipe: dict, steps_per_epoch: int):
    """The recipe's optimizer with its learning-rate schedule (cosine with
    linear warm-up from `WARMUP_START_FACTOR` x the rate, or constant)."""
    import keras

    opt, sched = recipe["optimizer"], recipe["schedule"]
    lr = float(opt["learning_rate"])
    total = max(1, recipe["epochs"] * steps_per_epoch)
    if sched["name"] == "cosine":
        warmup = min(sched["warmup_epochs"] * steps_per_epoch, total - 1)
        if warmup > 0:
            lr = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=lr * WARMUP_START_FACTOR, decay_steps=total - warmup, alpha=sched["alpha"],
                warmup_target=lr, warmup_steps=warmup)
        else:
            lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total, alpha=sched["alpha"])
    kwargs = {"learning_rate": lr}
    if opt.get("clipnorm"):
        kwargs["clipnorm"] = float(opt["clipnorm"])
    if opt["name"] == "adam":
        return keras.optimizers.Adam(**kwargs)
    if opt["name"] == "adamw":
        return keras.optimizers.AdamW(weight_decay=float(opt.get("weight_decay") or ADAMW_DEFAULT_WEIGHT_DECAY),
                                      **kwargs)
    return keras.optimizers.SGD(momentum=SGD_MOMENTUM, **kwargs)


def _strategy_scope(strategy):
    """(context manager, replicas) for the chosen scale-out engine."""
    import keras

    backend = keras.backend.backend()
    strategy = strategy or "none"
    allowed = STRATEGIES.get(backend, ("none",))
    if strategy not in allowed:
        raise BackendError(f"strategy {strategy!r} is not available on the {backend} backend; choose one of {allowed}.")
    if strategy == "none":
        return contextlib.nullcontext(), 1
    if strategy == "data_parallel":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), len(devices)
    import tensorflow as tf

    s = tf.distribute.MirroredStrategy() if strategy == "mirrored" else tf.distribute.MultiWorkerMirroredStrategy()
    return s.scope(), s.num_replicas_in_sync


@contextlib.contextmanager
def _multi_worker_logs(strategy):
    """Keras 3.15's TensorFlow trainer reduces every per-replica log with
    strategy.reduce("MEAN", v, axis=0) when several workers run
    MultiWorkerMirroredStrategy, which fails for the scalar logs ("Invalid
    reduction dimension 0 for input with 0 dimensions";
    tensorflow/tensorflow#72388). While aezoo fits with `multi_worker`, scalar
    logs are averaged over the replicas instead (axis=None), which is what that
    reduction means for them; everything else is left to Keras."""
    if strategy != "multi_worker":
        yield
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy_, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy_):
            def reduce(v):
                scalar = getattr(v, "shape", None) is not None and v.shape.rank == 0
                return strategy_.reduce("MEAN", v, axis=None if scalar else 0)

            return tf_trainer.tree.map_structure(reduce, values)
        return original(values, strategy_, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original


def _worker_index(strategy):
    """This process's task index in a multi-worker run (0 = the chief; 0 otherwise)."""
    if strategy != "multi_worker":
        return 0
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    except json.JSONDecodeError:
        raise BackendError("TF_CONFIG is not valid JSON; see the TensorFlow multi-worker docs.") from None
    return 0 if task.get("type", "worker") == "chief" else int(task.get("index", 0))


def _as_images(data, input_shape, what):
    """Users' arrays or a tf.data.Dataset of images (or of (images, ...))."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, tuple):
            data = data.map(lambda *parts: parts[0])
            spec = data.element_spec
        shape = tuple(spec.shape)
        if shape[-len(input_shape):] != tuple(input_shape) or spec.dtype != tf.float32:
            raise InputError(
                f"{what} yields {spec.dtype.name} tensors of shape {shape}; expected float32 images "
                f"of shape {tuple(input_shape)} (batched or not) in [0, 1]."
            )
        return data.unbatch() if len(shape) == len(input_shape) + 1 else data, None
    x = datasets.from_array(data, input_shape)
    return x, len(x)


# --------------------------------------------------------------------------- stages


def plan(name: str, version: int | None = None, epochs: int | None = None, batch_size: int | None = None,
         overrides: dict | None = None, config_overrides: dict | None = None) -> Plan:
    """Stage 1: the entry, its recipe with the overrides, and the model config the recipe implies."""
    from aezoo.registry import _families

    entry = get_entry(name, version)
    family = entry["family"]
    cls = _families()[family]
    overrides = dict(overrides or {})
    for key, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value is not None:
            overrides[key] = value
    recipe = recipes.apply_overrides(entry["recipe"], overrides, family)
    if config_overrides is not None and not isinstance(config_overrides, dict):
        raise InputError(f"config_overrides is a dict of model settings, e.g. {{'latent_dim': 16}}; "
                         f"got {config_overrides!r}.")
    config = cls.config_for_recipe({**entry["config"], **(config_overrides or {})}, recipe)
    return Plan(name, entry["version"], family, cls, recipe, config, overrides, dict(config_overrides or {}))


def claim_run_dir(out: Path, record: dict) -> bool:
    """Stage 2: make `out` this run's directory. Returns True when it resumes
    a killed run with the same settings.

    Raises:
        RunDirError: `out` holds another entry's run, the same entry with
            other settings (e.g. another --epochs), or a finished run.
    """
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / RUN_FILE
    if not run_file.exists():
        foreign = sorted(p.name for p in out.glob("*.weights.h5")
                         if p.name not in ("best.weights.h5", f"{record['name']}.weights.h5"))
        if foreign:
            raise RunDirError(f"{out} holds another model's run ({', '.join(foreign)}); pass another output "
                              f"directory for {record['name']}.")
        if (out / "train_metrics.json").exists():
            raise RunDirError(f"{out} holds a finished run (train_metrics.json); pass another output directory "
                              f"for {record['name']}.")
        _io.write_json(run_file, record)
        return False
    try:
        before = json.loads(run_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunDirError(f"{run_file} is unreadable ({e}); pass another output directory.") from None
    if before.get("name") != record["name"]:
        raise RunDirError(f"{out} is the run directory of {before.get('name')!r}, not {record['name']!r}; "
                          "pass another output directory.")
    changed = [k for k in ("version", "recipe", "config", "config_overrides", "data")
               if json.loads(_io.to_json(before.get(k))) != json.loads(_io.to_json(record[k]))]
    if changed:
        details = _differences(before, record)
        raise RunDirError(
            f"{out} holds a run of {record['name']} started with other settings ({details}). A killed run "
            f"resumes only with the settings it started with; to train with new ones, pass another output "
            f"directory (or delete {out})."
        )
    if (out / f"{record['name']}.weights.h5").exists() and (out / "train_metrics.json").exists():
        raise RunDirError(f"{out} holds a finished run of {record['name']} (its weights and train_metrics.json); "
                          "nothing to resume. Pass another output directory to train again.")
    return True


def _differences(before, after, prefix=""):
    """'recipe.epochs: 5 -> 3, ...' for the leaves that differ."""
    out = []
    for key in sorted(set(before) | set(after)):
        if key not in ("version", "recipe", "config", "config_overrides", "data") and not prefix:
            continue
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b, f"{prefix}{key}.")
            if inner:
                out.append(inner)
        elif json.loads(_io.to_json(a)) != json.loads(_io.to_json(b)):
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return ", ".join(out)


def load_data(p: Plan, data=None, validation_data=None, data_dir=None, limit=None):
    """Stage 3: (train, validation or None, number of training images, data description).

    `train` and `validation` are numpy arrays of images, or (for a user's
    tf.data.Dataset) datasets of single images."""
    input_shape = p.input_shape
    if data is None:
        dataset = p.recipe["dataset"]
        x_train, _ = datasets.load_numpy(dataset, "train", data_dir=data_dir, limit=limit)
        x_val, _ = datasets.load_numpy(dataset, "validation", data_dir=data_dir, limit=limit)
        info = {"dataset": dataset, "train_split": "train", "validation_split": "validation",
                "train_examples": len(x_train), "validation_examples": len(x_val),
                "source": datasets.source(dataset, data_dir)}
        return x_train, x_val, len(x_train), info
    train, n_train = _as_images(data, input_shape, "data")
    if limit is not None:
        train = train[: int(limit)] if isinstance(train, np.ndarray) else train.take(int(limit))
        n_train = min(n_train, int(limit)) if n_train else None
    val = _as_images(validation_data, input_shape, "validation_data")[0] if validation_data is not None else None
    if n_train is None:
        n_train = int(train.reduce(0, lambda c, _: c + 1))
    if n_train == 0:
        raise InputError("data has no images; pass at least one.")
    return train, val, n_train, {"dataset": "user data", "train_examples": n_train}


def epoch_batches(x: np.ndarray, batch_size: int, seed: int, epochs: int, start_epoch: int = 0):
    """The training batches of epochs `start_epoch`..`epochs - 1` as one tf.data.Dataset.

    Each epoch is a permutation of the images drawn with numpy from `seed`, cut
    into batches (the last one may be short). The order is fixed before tf.data
    sees it, so every worker of a multi-worker run agrees on it (tf.data's
    distribution rewrite changes what a seeded `shuffle` yields), each global
    batch is split between the replicas, and a run resumed at epoch k goes on
    with epoch k's permutation.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(len(x)) for _ in range(epochs)])[start_epoch:].astype(np.int64)
    images = tf.constant(x)
    return (tf.data.Dataset.from_tensor_slices(order)
            .flat_map(lambda perm: tf.data.Dataset.from_tensor_slices(perm).batch(batch_size))
            .map(lambda i: tf.gather(images, i), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def _resume_epoch(out: Path) -> int:
    """The epoch a BackupAndRestore backup in `out` resumes at (0: none)."""
    try:
        return int(json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def build_model(p: Plan, scope, steps_per_epoch: int):
    """Stage 4: the model, compiled with the recipe's optimizer and the family's loss, under `scope`."""
    with scope:
        model = p.family_class(name=p.name, **p.config)
        model.compile(optimizer=make_optimizer(p.recipe, steps_per_epoch), loss=model.loss_for(p.recipe["loss"]))
    return model


EPOCH_SECONDS = "epoch_seconds.json"


def epoch_seconds(out: Path, start_epoch: int) -> list:
    """Wall seconds of the epochs an earlier process of this run finished
    (`out`/epoch_seconds.json, written by `EpochClock`), up to `start_epoch`."""
    try:
        seconds = json.loads((out / EPOCH_SECONDS).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(seconds, list) or not all(isinstance(s, (int, float)) for s in seconds):
        return []
    return [float(s) for s in seconds[:start_epoch]]


def epoch_clock(out: Path, start_epoch: int):
    """A callback that keeps every finished epoch's wall seconds in `out`/epoch_seconds.json,
    across a resume: a resumed run's card then records the time of all its epochs,
    not only the last process's."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = epoch_seconds(out, start_epoch)
            self.started = None

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            del self.seconds[epoch:]
            self.seconds.append(round(time.time() - self.started, 1))
            _io.write_json(out / EPOCH_SECONDS, self.seconds)

    return EpochClock()


def make_callbacks(model, p: Plan, out: Path, monitor: str, extra=None, start_epoch: int = 0) -> list:
    """Stage 5: resume state, the family's own callbacks, checkpoints, logs, the epoch clock."""
    import keras

    callbacks = list(extra or []) + [
        epoch_clock(out, start_epoch),
        keras.callbacks.BackupAndRestore(backup_dir=str(out / "backup")),
        *model.training_callbacks(p.recipe),
        keras.callbacks.ModelCheckpoint(str(out / "best.weights.h5"), monitor=monitor,
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if keras.backend.backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
    return callbacks


def finish(model, p: Plan, out: Path, history, data_info: dict, strategy: str, replicas: int,
           seconds: float, earlier_seconds: float = 0.0) -> dict:
    """Stage 6: the final weights and train_metrics.json; returns the summary.
    `seconds`: this process's training; `earlier_seconds`: the epochs that
    earlier processes of a resumed run finished (both count in "seconds")."""
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items() if k != "learning_rate"}
    if any(not np.isfinite(v) for v in hist.get("loss", [])):
        raise RecipeError(f"training {p.name} diverged (loss became NaN); lower optimizer.learning_rate.")
    weights_path = out / f"{p.name}.weights.h5"
    _io.save_weights(model, weights_path)
    summary = {
        "name": p.name,
        "version": p.version,
        "family": p.family,
        "config": p.config,
        "recipe": p.recipe,
        "overrides": p.overrides,
        "config_overrides": p.config_overrides,
        "data": data_info,
        "epochs_run": p.recipe["epochs"],  # fit returned: all epochs ran (some maybe before a resume)
        "epochs_this_process": len(hist.get("loss", [])),
        "strategy": strategy,
        "replicas": replicas,
        "seconds": round(seconds + earlier_seconds, 1),  # all epochs, a resumed run's earlier processes too
        "seconds_this_process": round(seconds, 1),
        "final": {k: v[-1] for k, v in hist.items() if v},
        "history": hist,
        "params": int(model.count_params()),
        "versions": _io.versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights": str(weights_path),
    }
    _io.write_json(out / "train_metrics.json", summary)
    return summary


def train(name: str, output_dir: str | os.PathLike | None = None, epochs: int | None = None,
          batch_size: int | None = None, overrides: dict | None = None, data: Any = None,
          validation_data: Any = None, data_dir: str | os.PathLike | None = None, limit: int | None = None,
          strategy: str | None = None, verbose: str | int = "auto", config_overrides: dict | None = None,
          callbacks: list | None = None, version: int | None = None):
    """Train zoo entry `name` with its recipe; returns (model, summary dict).

    Args:
        name: a zoo name (its recipe and config come from the registry).
        output_dir: the run directory (default runs/NAME). Re-running in the
            same directory with the same settings resumes a killed run
            (BackupAndRestore); other settings or a finished run are refused.
        epochs, batch_size: shortcuts for those recipe overrides.
        overrides: {"dotted.key": value} recipe overrides (see aezoo.recipes),
            e.g. {"optimizer.learning_rate": 3e-4} or {"schedule": "constant"}.
        data, validation_data: your own images (arrays or tf.data) instead of
            the recipe's dataset.
        data_dir: where the recipe's dataset files are (see aezoo.datasets).
        limit: use only the first `limit` training (and validation) images (>= 1).
        strategy: "none", "mirrored", "multi_worker" (TF) or "data_parallel" (JAX).
        verbose: Keras `fit` verbosity.
        config_overrides: change the architecture (e.g. {"latent_dim": 16}).
        callbacks: extra Keras callbacks.
        version: which version's config and recipe (default: the newest
            published; see `aezoo.registry.versions`).

    Returns:
        (model, summary): the trained model and what train_metrics.json holds.

    Raises:
        RecipeError: a bad override, a bad limit, or a diverged run.
        RunDirError: `output_dir` holds another run or a finished one.

    Example:
        >>> model, summary = aezoo.train("conv_mnist", epochs=2)
        >>> summary["weights"]
        'runs/conv_mnist/conv_mnist.weights.h5'
    """
    import keras

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise RecipeError(f"limit must be an integer >= 1; got {limit!r}.")
    strategy = strategy or "none"
    if strategy not in ALL_STRATEGIES:
        raise BackendError(f"unknown strategy {strategy!r}; expected one of {', '.join(ALL_STRATEGIES)}.")
    p = plan(name, version, epochs, batch_size, overrides, config_overrides)
    scope, replicas = _strategy_scope(strategy)  # first: multi-worker collectives start before other TF ops
    keras.utils.set_random_seed(p.recipe["seed"])
    train, val, n_train, data_info = load_data(p, data, validation_data, data_dir, limit)
    out = Path(output_dir or Path("runs") / name)
    worker = _worker_index(strategy)
    if worker:  # only the chief writes the run directory
        out = out / f"worker-{worker}"
    claim_run_dir(out, p.record(data_info))

    import tensorflow as tf

    bs, seed, epochs = p.recipe["batch_size"], p.recipe["seed"], p.recipe["epochs"]
    steps = max(1, math.ceil(n_train / bs))
    if isinstance(train, np.ndarray):  # arrays: a fixed order per epoch (see epoch_batches)
        train_ds = epoch_batches(train, bs, seed, epochs, start_epoch=min(_resume_epoch(out), epochs))
        steps_per_epoch = steps
    else:  # a user's tf.data.Dataset of unknown length: shuffle it in tf.data
        train_ds = train.shuffle(min(n_train, SHUFFLE_BUFFER), seed=seed).batch(bs).prefetch(tf.data.AUTOTUNE)
        steps_per_epoch = None
    model = build_model(p, scope, steps)
    val_ds = None
    if val is not None:  # what validation scores is the family's (a denoiser: noisy -> clean)
        if isinstance(val, np.ndarray):
            val_ds = tf.data.Dataset.from_tensor_slices(model.scored_pairs(val, seed)).batch(bs)
        else:
            val_ds = val.batch(bs).map(lambda b: model.scored_pairs(b, seed))
        val_ds = val_ds.prefetch(tf.data.AUTOTUNE)
    monitor = "val_loss" if val_ds is not None else "loss"
    start_epoch = min(_resume_epoch(out), epochs)
    earlier = sum(epoch_seconds(out, start_epoch))
    started = time.time()
    with _multi_worker_logs(strategy):
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                            shuffle=False, callbacks=make_callbacks(model, p, out, monitor, callbacks, start_epoch),
                            verbose=verbose)
    summary = finish(model, p, out, history, data_info, strategy, replicas, time.time() - started, earlier)
    return model, summary
