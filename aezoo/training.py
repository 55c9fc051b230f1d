"""Run a zoo recipe: `aezoo train NAME` / `aezoo.train(NAME)`.

A run directory holds everything a run makes:

    NAME.weights.h5      final weights (written to a temp file, then renamed)
    train_metrics.json   recipe, overrides, data, per-epoch history, versions
    best.weights.h5      best validation loss so far (ModelCheckpoint)
    history.csv          per-epoch losses (CSVLogger)
    logs/                TensorBoard logs (`tensorboard --logdir RUN/logs`)
    backup/              BackupAndRestore state: a killed run resumes here

Scale-out uses the backends' own engines (see README "Training at scale"):
`strategy="mirrored"` (tf.distribute.MirroredStrategy, all local GPUs) or
`"multi_worker"` (tf.distribute.MultiWorkerMirroredStrategy, TF_CONFIG) on
TensorFlow; `"data_parallel"` (keras.distribution.DataParallel over all
devices) on JAX.
"""

import datetime
import math
import time
from pathlib import Path

import numpy as np
import keras

from aezoo import _io, datasets, recipes
from aezoo.errors import BackendError, InputError, RecipeError
from aezoo.registry import FAMILIES, get_entry

STRATEGIES = {"tensorflow": ("none", "mirrored", "multi_worker"), "jax": ("none", "data_parallel")}


# One record and one atomic writer for the whole package (aezoo._io); the names
# stay importable from here.
versions = _io.versions
write_text = _io.write_text
write_json = _io.write_json
save_weights_atomic = _io.save_weights


def make_optimizer(recipe, steps_per_epoch):
    opt, sched = recipe["optimizer"], recipe["schedule"]
    lr = float(opt["learning_rate"])
    total = max(1, recipe["epochs"] * steps_per_epoch)
    if sched["name"] == "cosine":
        warmup = min(sched["warmup_epochs"] * steps_per_epoch, total - 1)
        if warmup > 0:
            lr = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=lr / 10, decay_steps=total - warmup, alpha=sched["alpha"],
                warmup_target=lr, warmup_steps=warmup)
        else:
            lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total, alpha=sched["alpha"])
    kwargs = {"learning_rate": lr}
    if opt.get("clipnorm"):
        kwargs["clipnorm"] = float(opt["clipnorm"])
    if opt["name"] == "adam":
        return keras.optimizers.Adam(**kwargs)
    if opt["name"] == "adamw":
        return keras.optimizers.AdamW(weight_decay=float(opt.get("weight_decay") or 1e-4), **kwargs)
    return keras.optimizers.SGD(momentum=0.9, **kwargs)


def make_loss(recipe):
    return {"mse": keras.losses.MeanSquaredError(), "bce": keras.losses.BinaryCrossentropy(),
            "elbo": None}[recipe["loss"]]


class KLWarmup(keras.callbacks.Callback):
    """Linear KL warm-up for VAEs (Bowman et al. 2016; Sonderby et al. 2016):
    in epoch e (from 0) of a `epochs`-epoch warm-up the KL term is weighted by
    (e + 1) / (epochs + 1), then by 1. The weight is a Python float on the model
    (`kl_scale`), so the train function is rebuilt when it changes (once per
    warm-up epoch); it is derived from the epoch index, so a resumed run
    continues the schedule where it stopped."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        scale = min(1.0, (epoch + 1) / (self.epochs + 1))
        if scale != self.model.kl_scale:
            self.model.kl_scale = scale
            self.model.make_train_function(force=True)

    def on_train_end(self, logs=None):
        self.model.kl_scale = 1.0


def _strategy_scope(strategy):
    """A context manager for the chosen scale-out engine."""
    import contextlib

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
    return tf.data.Dataset.from_tensor_slices(x), len(x)


def train(name, output_dir=None, epochs=None, batch_size=None, overrides=None, data=None,
          validation_data=None, data_dir=None, limit=None, strategy=None, verbose="auto",
          config_overrides=None, callbacks=None, version=None):
    """Train zoo entry `name` with its recipe; returns (model, summary dict).

    Args:
        name: a zoo name (its recipe and config come from the registry).
        output_dir: the run directory (default runs/NAME). Re-running in the
            same directory resumes an interrupted run (BackupAndRestore).
        epochs, batch_size: shortcuts for those recipe overrides.
        overrides: {"dotted.key": value} recipe overrides (see aezoo.recipes).
        data, validation_data: your own images (arrays or tf.data) instead of
            the recipe's dataset.
        data_dir: where the recipe's dataset files are (see aezoo.datasets).
        limit: use only the first `limit` training (and validation) images.
        strategy: "none", "mirrored", "multi_worker" (TF) or "data_parallel" (JAX).
        config_overrides: change the architecture (e.g. {"latent_dim": 16}).
        callbacks: extra Keras callbacks.
        version: which version's config and recipe (default: the newest
            published; see `aezoo.registry.versions`).

    Example:
        >>> model, summary = aezoo.train("conv_mnist", epochs=2)
        >>> summary["weights"]
        'runs/conv_mnist/conv_mnist.weights.h5'
    """
    import tensorflow as tf

    entry = get_entry(name, version)
    family = entry["family"]
    overrides = dict(overrides or {})
    if epochs is not None:
        overrides["epochs"] = epochs
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    recipe = recipes.apply_overrides(entry["recipe"], overrides, family)
    config = {**entry["config"], **(config_overrides or {})}
    if family == "denoising" and recipe["corruption"]:
        config.update(noise=recipe["corruption"]["noise"], noise_level=recipe["corruption"]["level"])
    if limit is not None and int(limit) < 1:
        raise RecipeError(f"limit must be >= 1; got {limit}.")
    out = Path(output_dir or Path("runs") / name)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(recipe["seed"])

    input_shape = tuple(config["input_shape"])
    data_info = {"dataset": recipe["dataset"]}
    if data is None:
        x_train, _ = datasets.load_numpy(recipe["dataset"], "train", data_dir=data_dir, limit=limit)
        x_val, _ = datasets.load_numpy(recipe["dataset"], "validation", data_dir=data_dir, limit=limit)
        train_ds, n_train = tf.data.Dataset.from_tensor_slices(x_train), len(x_train)
        val_ds = tf.data.Dataset.from_tensor_slices(x_val)
        data_info.update(train_split="train", validation_split="validation", train_examples=n_train,
                         validation_examples=len(x_val), source=datasets.source(recipe["dataset"], data_dir))
    else:
        data_info = {"dataset": "user data"}
        train_ds, n_train = _as_images(data, input_shape, "data")
        if limit is not None:
            train_ds = train_ds.take(int(limit))
            n_train = min(n_train, int(limit)) if n_train else None
        val_ds = _as_images(validation_data, input_shape, "validation_data")[0] if validation_data is not None else None
        if n_train is None:
            n_train = int(train_ds.reduce(0, lambda c, _: c + 1))
        data_info["train_examples"] = n_train

    scope, replicas = _strategy_scope(strategy)
    bs = recipe["batch_size"]
    steps = max(1, math.ceil(n_train / bs))
    train_ds = train_ds.shuffle(min(n_train, 60000), seed=recipe["seed"]).batch(bs).prefetch(tf.data.AUTOTUNE)
    if val_ds is not None:
        val_ds = val_ds.batch(bs).prefetch(tf.data.AUTOTUNE)

    with scope:
        model = FAMILIES[family](name=name, **config)
        model.compile(optimizer=make_optimizer(recipe, steps), loss=make_loss(recipe))

    monitor = "val_loss" if val_ds is not None else "loss"
    callbacks = list(callbacks or []) + [
        keras.callbacks.BackupAndRestore(backup_dir=str(out / "backup")),
        *([KLWarmup(recipe["kl_warmup_epochs"])] if recipe.get("kl_warmup_epochs") else []),
        keras.callbacks.ModelCheckpoint(str(out / "best.weights.h5"), monitor=monitor,
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if keras.backend.backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
    started = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=recipe["epochs"],
                        callbacks=callbacks, verbose=verbose)
    seconds = time.time() - started
    if any(not np.isfinite(v) for v in history.history.get("loss", [])):
        raise RecipeError(f"training {name} diverged (loss became NaN); lower optimizer.learning_rate.")

    weights_path = out / f"{name}.weights.h5"
    save_weights_atomic(model, weights_path)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items() if k != "learning_rate"}
    summary = {
        "name": name,
        "version": entry["version"],
        "family": family,
        "config": config,
        "recipe": recipe,
        "overrides": overrides,
        "config_overrides": dict(config_overrides or {}),
        "data": data_info,
        "epochs_run": recipe["epochs"],  # fit returned: all epochs ran (some maybe before a resume)
        "epochs_this_process": len(hist.get("loss", [])),
        "strategy": strategy or "none",
        "replicas": replicas,
        "seconds": round(seconds, 1),
        "final": {k: v[-1] for k, v in hist.items() if v},
        "history": hist,
        "params": int(model.count_params()),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights": str(weights_path),
    }
    write_json(out / "train_metrics.json", summary)
    return model, summary
