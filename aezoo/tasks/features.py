"""Feature extraction and pretraining: linear probe, k-NN, and few-label fine-tuning.

    aezoo bench features [NAME[:VERSION] ...]

Protocol (`PROTOCOL`):

- **Linear probe.** The codes (posterior means for VAEs) of the full train
  split, standardised (scikit-learn `StandardScaler`, fitted on train), feed a
  multinomial logistic regression (`LogisticRegression`, lbfgs, tolerance
  1e-3, at most 100 iterations per C, warm-started along the C grid); its inverse
  regularisation C is chosen from `C_GRID` by accuracy on the validation split;
  the model fitted on the full train split with that C is scored on the full
  test split.
- **k-NN.** `KNeighborsClassifier` (k=5, Euclidean, uniform votes) on the
  raw codes of the full train split, accuracy on the full test split.
- **Baselines**, same run, same classifiers: raw pixels (784 values), and PCA
  (scikit-learn, fitted on train) with as many components as the entry's
  latent size.
- **Few labels** (entries whose `uses` include feature extraction): 100 and
  1,000 labelled train images, class-balanced draws (10 / 100 per class;
  3 draws, fixed seeds). A linear head (a Normalization layer adapted on the
  labelled images' codes, then Dense(10)) on the pretrained encoder: first
  the head alone on the frozen codes, fitted to convergence as a logistic
  regression (scikit-learn lbfgs, C = `HEAD_C`; its weights are copied into
  the Dense layer); then the whole network fine-tuned from there
  (`FINETUNE_STEPS` Adam steps, lr 1e-4); against the same network (the
  entry's encoder architecture + the same head) trained from scratch on the
  same labels (`SCRATCH_STEPS` Adam steps, lr 1e-3). Batches of 64 (or all
  the labels when fewer), no augmentation, no early stopping and nothing
  tuned (no labelled validation data in this setting). Test accuracy on the
  full test split: mean and standard deviation over the 3 draws.
"""

from __future__ import annotations

import math

import numpy as np

from aezoo import tasks
from aezoo.errors import InputError

TASK = "features"
C_GRID = [0.01, 0.1, 1.0, 10.0]
MAX_ITER = 100
TOL = 1e-3
K = 5
LABELS = (100, 1000)
DRAWS = 3
HEAD_C = 1.0
FINETUNE_STEPS = 300
SCRATCH_STEPS = 300
BATCH = 64
QUICK = {"train": 2000, "validation": 500, "test": 500, "labels": (100,), "draws": 2, "finetune_steps": 10,
         "scratch_steps": 20}
PROTOCOL = (
    "Linear probe: multinomial logistic regression (scikit-learn, lbfgs, tol 1e-3, ≤ 100 iterations per C, "
    "warm-started along the C grid) on standardised codes of the full train split (Fashion-MNIST 55,000; mnist_5k "
    "3,500), C ∈ {0.01, 0.1, 1, 10} chosen on the validation split, accuracy on the full test split; k-NN: k=5, "
    "Euclidean, on the raw codes. Baselines, same classifiers: raw pixels and PCA with as many components as the "
    "latent size (fitted on train). Few labels (entries used for feature extraction): 100 and 1,000 class-balanced "
    "labelled train images, 3 draws; a linear head (codes standardised on the labelled images, then Dense(10)) on "
    "the pretrained encoder, first alone on the frozen codes (logistic regression to convergence, C=1), then "
    "everything fine-tuned (300 Adam steps, lr 1e-4), against the same network trained from scratch (300 steps, "
    "lr 1e-3); batch 64 (or all the "
    "labels when fewer); test accuracy on the full test split, mean ± std over the draws."
)
ANCHORS: list = []


def applies_to(entry: dict) -> bool:
    """Every entry has codes to probe; the few-label part runs for `uses` with feature extraction."""
    return True


def does_few_label(entry: dict) -> bool:
    """True for entries meant as feature extractors (their `uses` say so)."""
    return "feature extraction" in entry.get("uses", [])


# --------------------------------------------------------------------------- classifiers on fixed features


def linear_probe(f_train, y_train, f_val, y_val, f_test, y_test, c_grid=None, max_iter: int = MAX_ITER,
                 tol: float = TOL) -> dict:
    """Standardise, fit on train for each C, choose C on validation, report that model's test accuracy.

    The C grid is walked upwards with warm starts (lbfgs, tolerance `tol`, at
    most `max_iter` iterations per C): a model for each C, fitted on the full
    train features; the test split is only scored, never used to choose.

    Args:
        f_train, f_val, f_test: features (N, D) of the three splits.
        y_train, y_val, y_test: integer labels.
        c_grid: inverse regularisation strengths to try (default `C_GRID`).

    Returns:
        {"accuracy": test accuracy at the chosen C, "C": the chosen C,
        "validation": {C: accuracy}, "iterations": {C: lbfgs iterations}}.

    Example:
        >>> linear_probe(f, y, f_v, y_v, f_t, y_t)["accuracy"]
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.asarray(f_train, dtype="float64"))
    a, b, c = (scaler.transform(np.asarray(f, dtype="float64")) for f in (f_train, f_val, f_test))
    clf = LogisticRegression(max_iter=max_iter, tol=tol, warm_start=True)
    scores, tests, iterations = {}, {}, {}
    for C in sorted(C_GRID if c_grid is None else c_grid):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the iterations are recorded instead
            clf.set_params(C=C).fit(a, y_train)
        scores[C], tests[C], iterations[C] = float(clf.score(b, y_val)), float(clf.score(c, y_test)), int(clf.n_iter_[0])
    best = max(scores, key=scores.get)
    return {"accuracy": tests[best], "C": best, "validation": {str(k): v for k, v in scores.items()},
            "iterations": {str(k): v for k, v in iterations.items()}}


def knn_accuracy(f_train, y_train, f_test, y_test, k: int = K) -> float:
    """Test accuracy of a k-NN classifier (Euclidean, uniform votes) on the features as they are."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k).fit(np.asarray(f_train, dtype="float32"), y_train)
    return float(clf.score(np.asarray(f_test, dtype="float32"), y_test))


def pca_features(x_train, others, components: int, seed: int = 0):
    """PCA (scikit-learn, fitted on the train images) coordinates of train and of each of `others`."""
    from sklearn.decomposition import PCA

    flat = lambda x: np.asarray(x, dtype="float32").reshape(len(x), -1)  # noqa: E731
    pca = PCA(n_components=int(components), random_state=seed).fit(flat(x_train))
    return pca.transform(flat(x_train)), [pca.transform(flat(x)) for x in others]


# --------------------------------------------------------------------------- few labels


def balanced_draw(y, n: int, seed) -> np.ndarray:
    """Indices of `n` examples with n / classes of each class, drawn without replacement.

    Args:
        y: integer labels.
        n: how many (a multiple of the number of classes).
        seed: anything `np.random.default_rng` takes.

    Returns:
        Sorted int64 indices into `y`.
    """
    y = np.asarray(y)
    classes = np.unique(y)
    if n % len(classes):
        raise InputError(f"a balanced draw of {n} labels needs a multiple of {len(classes)} classes.")
    per = n // len(classes)
    rng = np.random.default_rng(seed)
    picks = []
    for c in classes:
        pool = np.flatnonzero(y == c)
        if len(pool) < per:
            raise InputError(f"class {c} has {len(pool)} examples; a draw of {n} needs {per} per class.")
        picks.append(rng.choice(pool, size=per, replace=False))
    return np.sort(np.concatenate(picks))


def _head(latent_dim: int, classes: int, codes=None):
    """Codes -> Normalization (adapted on `codes`, then fixed) -> Dense(classes) logits."""
    import keras

    inputs = keras.Input((latent_dim,))
    norm = keras.layers.Normalization(name="head_norm")
    if codes is not None:
        norm.adapt(np.asarray(codes, dtype="float32"))
    return keras.Model(inputs, keras.layers.Dense(classes, name="head")(norm(inputs)))


def _classifier(model, head):
    """Input image -> the model's encoder (codes; posterior means for VAEs) -> `head`."""
    import keras

    inputs = keras.Input(model.image_shape)
    return keras.Model(inputs, head(model.code(model.encoder(inputs))))


def _fit(net, x, y, steps: int, lr: float, seed: int, batch: int = BATCH):
    import keras
    import tensorflow as tf

    batch = min(batch, len(x))
    ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
          .repeat().batch(batch))
    net.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    net.fit(ds, steps_per_epoch=int(steps), epochs=1, verbose=0, shuffle=False)  # ds is shuffled
    return net


def _fit_head(head, codes, y, C: float = HEAD_C):
    """Fit the head's Dense layer as a logistic regression (lbfgs, to convergence) on the normalised codes."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(head.get_layer("head_norm")(np.asarray(codes, dtype="float32")), dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=2000).fit(z, y)
    dense = head.get_layer("head")
    kernel, bias = (np.zeros(w.shape, dtype="float32") for w in dense.get_weights())
    kernel[:, clf.classes_] = clf.coef_.T
    bias[clf.classes_] = clf.intercept_
    dense.set_weights([kernel, bias])
    return head


def _accuracy(net, x, y, batch_size: int = 1000) -> float:
    logits = np.concatenate([np.asarray(net(x[i: i + batch_size], training=False))
                             for i in range(0, len(x), batch_size)])
    return float(np.mean(np.argmax(logits, axis=1) == y))


def few_label(pretrained, fresh_fn, x_train, y_train, x_test, y_test, labels=LABELS, draws: int = DRAWS,
              seed: int = 0, head_c: float = HEAD_C, finetune_steps: int = FINETUNE_STEPS,
              scratch_steps: int = SCRATCH_STEPS, progress=None) -> dict:
    """Frozen-head, fine-tuned and from-scratch test accuracies with few labels.

    Args:
        pretrained: the pretrained autoencoder (its encoder weights are
            restored after every draw).
        fresh_fn: seed -> the same architecture, freshly initialised.
        x_train, y_train: where the labelled draws come from.
        x_test, y_test: the test split.
        labels: label counts to try.
        draws: balanced draws per count.
        seed: base seed of the draws and the training.

    Returns:
        {str(n): {"frozen"|"finetuned"|"scratch": {"mean", "std", "runs": [...]}}}.
    """
    import keras

    classes = int(np.max(y_train)) + 1
    start = [w.copy() for w in pretrained.encoder.get_weights()]
    codes_test = tasks.encode(pretrained, x_test)
    out = {}
    for n in labels:
        runs = {"frozen": [], "finetuned": [], "scratch": []}
        for d in range(draws):
            idx = balanced_draw(y_train, n, [seed, n, d])
            xs, ys = x_train[idx], y_train[idx]
            run_seed = seed * 100_000 + n * 10 + d
            # 1. the head alone on the frozen encoder's codes, to convergence (= training it behind a frozen encoder)
            pretrained.encoder.set_weights(start)
            keras.utils.set_random_seed(run_seed)
            codes = tasks.encode(pretrained, xs)
            head = _head(pretrained.latent_dim, classes, codes)
            _fit_head(head, codes, ys, head_c)
            runs["frozen"].append(_accuracy(head, codes_test, y_test))
            # 2. the whole network fine-tuned from there (the head's normalisation stays fixed)
            pretrained.encoder.trainable = True
            net = _classifier(pretrained, head)
            _fit(net, xs, ys, finetune_steps, 1e-4, run_seed)
            runs["finetuned"].append(_accuracy(net, x_test, y_test))
            # 3. the same network from scratch (its head normalised on its initial codes, the same way)
            keras.utils.set_random_seed(run_seed)
            fresh = fresh_fn(run_seed)
            scratch = _classifier(fresh, _head(fresh.latent_dim, classes, tasks.encode(fresh, xs)))
            _fit(scratch, xs, ys, scratch_steps, 1e-3, run_seed)
            runs["scratch"].append(_accuracy(scratch, x_test, y_test))
            if progress is not None:
                progress.update()
        out[str(n)] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": v} for k, v in runs.items()}
    pretrained.encoder.set_weights(start)
    return out


# --------------------------------------------------------------------------- the protocol


def run(models=None, names=None, *, quick: bool = False, seed: int = 0, progress: bool = True, data=None,
        few_labels: bool = True) -> dict:
    """Run the feature protocol (see the module docstring) on zoo entries.

    Args:
        models: name -> model to measure (default: load each named entry).
        names: ``NAME[:VERSION]`` strings (default: every published entry).
        quick: 2,000 train / 500 validation / 500 test images, 100 labels,
            2 draws, a few steps (smoke runs; not the protocol).
        seed: seed of the label draws and of the training.
        data: {dataset: {split: (x, y)}} instead of the dataset files (tests).
        few_labels: also run the few-label part where it applies.

    Returns:
        {"task", "protocol", "entries", "baselines" (per dataset), "anchors", "settings"}.

    Example:
        >>> run(names=["conv_mnist:1"])["entries"]["conv_mnist"]["probe"]["accuracy"]
    """
    specs = tasks.resolve(names, models, applies_to=applies_to)
    q = QUICK if quick else {}
    labels, draws = q.get("labels", LABELS), q.get("draws", DRAWS)
    steps = {k: q.get(k, v) for k, v in (("finetune_steps", FINETUNE_STEPS), ("scratch_steps", SCRATCH_STEPS))}
    result = {"task": TASK, "protocol": PROTOCOL, "entries": {}, "baselines": {}, "anchors": ANCHORS,
              "settings": {"seed": seed, "quick": quick, "C_grid": C_GRID, "k": K, "labels": list(labels),
                           "draws": draws, "batch": BATCH, "head_C": HEAD_C, **steps}}
    by_dataset: dict = {}
    for spec in specs:
        by_dataset.setdefault(tasks.dataset_of(spec), []).append(spec)
    few = [s for s in specs if few_labels and does_few_label(s["entry"])]
    bar = tasks.progress_bar(2 * len(specs) + len(few) * len(labels) * draws + len(by_dataset), "features",
                             progress)
    for dataset, group in by_dataset.items():
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (tasks.load_split(dataset, s, data, q.get(s))
                                                  for s in ("train", "validation", "test"))
        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        base = {"images": {"train": int(len(x_tr)), "validation": int(len(x_va)), "test": int(len(x_te))},
                "pixels": {"dim": int(flat(x_tr).shape[1]),
                           "probe": linear_probe(flat(x_tr), y_tr, flat(x_va), y_va, flat(x_te), y_te),
                           "knn_accuracy": knn_accuracy(flat(x_tr), y_tr, flat(x_te), y_te)},
                "pca": {}}
        bar.update()
        for k in sorted({s["entry"]["config"]["latent_dim"] for s in group}):
            p_tr, (p_va, p_te) = pca_features(x_tr, [x_va, x_te], k, seed)
            base["pca"][str(k)] = {"probe": linear_probe(p_tr, y_tr, p_va, y_va, p_te, y_te),
                                   "knn_accuracy": knn_accuracy(p_tr, y_tr, p_te, y_te)}
        result["baselines"][dataset] = base
        for spec in group:
            bar.set_postfix_str(spec["name"])
            model = tasks.load_model(spec)
            z_tr, z_va, z_te = (tasks.encode(model, x) for x in (x_tr, x_va, x_te))
            pca = base["pca"].get(str(model.latent_dim), {})
            r = {"version": spec["version"], "dataset": dataset, "family": spec["entry"]["family"],
                 "latent_dim": int(model.latent_dim),
                 "probe": linear_probe(z_tr, y_tr, z_va, y_va, z_te, y_te),
                 "knn_accuracy": knn_accuracy(z_tr, y_tr, z_te, y_te),
                 "pca_probe_accuracy": (pca.get("probe") or {}).get("accuracy"),
                 "pca_knn_accuracy": pca.get("knn_accuracy"),
                 "pixels_probe_accuracy": base["pixels"]["probe"]["accuracy"]}
            bar.update(2)
            if spec in few:
                config = {**model.get_config(), "name": f"{spec['name']}_scratch"}
                fresh = lambda _seed, cls=type(model), config=config: cls.from_config(dict(config))  # noqa: E731
                r["few_labels"] = few_label(model, fresh, x_tr, y_tr, x_te, y_te, labels=labels, draws=draws,
                                            seed=seed, progress=bar, **steps)
            result["entries"][spec["name"]] = r
            del model
    bar.close()
    return result


# --------------------------------------------------------------------------- tables and cards


def _pct(v):
    return tasks.fmt(None if v is None else 100 * v, ".1f")


def _ms(d):
    return f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f}"


def table(results: dict) -> str:
    """Markdown: probe and k-NN accuracy beside pixels and PCA; few-label accuracy beside scratch."""
    rows_by_dataset: dict = {}
    for name, version, r in tasks.entries(results):
        rows_by_dataset.setdefault(r["dataset"], []).append((name, version, r))
    out = []
    for dataset in sorted(set(rows_by_dataset) | set(results.get("baselines") or {})):
        base = (results.get("baselines") or {}).get(dataset, {})
        im = base.get("images", {})
        lines = [f"**{dataset}** (probe trained on {im.get('train', '?'):,} train images, C chosen on "
                 f"{im.get('validation', '?'):,} validation images, accuracy % on {im.get('test', '?'):,} test "
                 "images):", "",
                 "| features | dim | linear probe (C) | k-NN (k=5) |", "|---|---|---|---|"]
        if "pixels" in base:
            p = base["pixels"]
            lines.append(f"| raw pixels | {p['dim']} | {_pct(p['probe']['accuracy'])} ({p['probe']['C']:g}) | "
                         f"{_pct(p['knn_accuracy'])} |")
        for k in sorted(base.get("pca", {}), key=int):
            p = base["pca"][k]
            lines.append(f"| PCA-{k} | {k} | {_pct(p['probe']['accuracy'])} ({p['probe']['C']:g}) | "
                         f"{_pct(p['knn_accuracy'])} |")
        for name, version, r in sorted(rows_by_dataset.get(dataset, [])):
            lines.append(f"| {tasks.label(name, version)} | {r['latent_dim']} | {_pct(r['probe']['accuracy'])} "
                         f"({r['probe']['C']:g}) | {_pct(r['knn_accuracy'])} |")
        few = [(n, v, r) for n, v, r in sorted(rows_by_dataset.get(dataset, [])) if r.get("few_labels")]
        if few:
            counts = sorted({c for _, _, r in few for c in r["few_labels"]}, key=int)
            lines += ["", f"Few labels on {dataset} (test accuracy %, mean ± std over "
                      f"{len(next(iter(few[0][2]['few_labels'].values()))['frozen']['runs'])} balanced draws):", "",
                      "| encoder | labels | frozen + linear head | fine-tuned | same network from scratch |",
                      "|---|---|---|---|---|"]
            for name, version, r in few:
                for c in counts:
                    f = r["few_labels"].get(c)
                    if f:
                        lines.append(f"| {tasks.label(name, version)} | {int(c):,} | {_ms(f['frozen'])} | "
                                     f"{_ms(f['finetuned'])} | {_ms(f['scratch'])} |")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n\nNo published anchor is quoted here: the baselines above are computed in the same run."


def card_summary(entry_result: dict) -> dict:
    """Headline numbers for the card: probe and k-NN accuracy beside PCA and pixels; few-label means."""
    r = entry_result
    out = {"linear_probe_accuracy": round(r["probe"]["accuracy"], 4),
           "pca_linear_probe_accuracy": None if r.get("pca_probe_accuracy") is None else round(r["pca_probe_accuracy"], 4),
           "pixels_linear_probe_accuracy": round(r["pixels_probe_accuracy"], 4),
           "knn_accuracy": round(r["knn_accuracy"], 4)}
    for n, f in (r.get("few_labels") or {}).items():
        out[f"labels_{n}"] = {k: round(f[k]["mean"], 4) for k in ("frozen", "finetuned", "scratch")}
    return out
