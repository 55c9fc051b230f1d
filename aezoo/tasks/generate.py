"""Generation (VAEs): Fréchet distance and precision/recall in a small classifier's feature space.

    aezoo bench generate [NAME[:VERSION] ...]
    python -m aezoo.tasks.generate train-classifier fashion_mnist   # retrain the feature classifier

Protocol (`PROTOCOL`): for each VAE entry, `n` samples (n = the size of the
dataset's validation split: Fashion-MNIST 5,000, mnist_5k 500): prior draws
z ~ N(0, I) (numpy, fixed seed) decoded to the Bernoulli mean image (not
binarized). They are compared with `n` real test images (a fixed random
subset, seed 0) in the 128-d penultimate-layer features of a small CNN
classifier trained on the dataset's train split (`CLASSIFIER_RECIPE`, weights
bundled in ``pretrained/tasks/`` with their sha256 and test accuracy in
``classifiers.json``; loaded offline and hash-checked):

- Fréchet distance (FD) between Gaussians fitted to the two feature sets
  (Heusel et al. 2017's FID formula, in this classifier's space; not
  comparable with Inception FIDs);
- precision and recall (Kynkäänniemi et al., NeurIPS 2019): k-NN balls
  (k=3) around each real (generated) feature; precision = the share of
  generated samples inside some real ball, recall = the share of real images
  inside some generated ball.

Baselines, same run and same n: held-out real images (the validation split:
the floor a perfect generator would reach), and a PCA-Gaussian sampler (PCA
with as many components as the VAE's latent, fitted on train; coefficients
drawn from N(0, the components' variances), decoded and clipped to [0, 1]).
A sample grid PNG per entry (``pretrained/tasks/generate_NAME_vV.png``).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np

from aezoo import tasks
from aezoo.errors import InputError, WeightsError

TASK = "generate"
K = 3
CLASSIFIER_RECIPE = {
    "fashion_mnist": {"epochs": 10, "batch_size": 128, "learning_rate": 1e-3, "seed": 1234},
    "mnist_5k": {"epochs": 40, "batch_size": 64, "learning_rate": 1e-3, "seed": 1234},
}
CLASSIFIERS_FILE = "classifiers.json"
QUICK = {"n": 300, "train": 2000}
PROTOCOL = (
    "Each VAE draws n prior samples (numpy, fixed seed; the decoder's mean image), n = the validation split's size "
    "(Fashion-MNIST 5,000; mnist_5k 500), compared with n real test images (fixed random subset) in the 128-d "
    "penultimate features of a small CNN classifier trained on the train split by the recipe in "
    "aezoo/tasks/generate.py (test accuracy stated below). Fréchet distance (FID's formula in this feature space, "
    "not comparable with Inception FIDs) and precision/recall (Kynkäänniemi et al. 2019, k=3). Baselines, same n: "
    "held-out real images (the validation split: the floor) and a PCA-Gaussian sampler with as many components as "
    "the VAE's latent."
)
ANCHORS: list = []


def applies_to(entry: dict) -> bool:
    """The VAEs (the generative family)."""
    return entry["family"] == "vae"


# --------------------------------------------------------------------------- the feature classifier


def build_classifier(input_shape=(28, 28, 1), classes: int = 10):
    """The feature classifier: 2 conv + max-pool stages, Dense(128) features, dropout, Dense(classes) logits."""
    import keras

    inputs = keras.Input(tuple(input_shape))
    h = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    h = keras.layers.MaxPooling2D(name="pool1")(h)
    h = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    features = keras.layers.Dense(128, activation="relu", name="features")(h)
    h = keras.layers.Dropout(0.3, name="dropout")(features)
    logits = keras.layers.Dense(classes, name="logits")(h)
    return keras.Model(inputs, logits, name="feature_classifier")


def _classifiers_path(directory=None) -> Path:
    return Path(directory or tasks.tasks_dir()) / CLASSIFIERS_FILE


def train_classifier(dataset: str = "fashion_mnist", directory=None, progress: bool = True, data=None,
                     recipe: dict | None = None) -> dict:
    """Train the feature classifier of `dataset` by its recipe, bundle its weights, record its accuracy.

    Writes ``DIRECTORY/classifier_DATASET.weights.h5`` and its record (sha256,
    bytes, recipe, validation and test accuracy) into ``classifiers.json``.

    Args:
        dataset: "fashion_mnist" or "mnist_5k".
        directory: where to write (default ``pretrained/tasks``).
        data: {dataset: {split: (x, y)}} instead of the files (tests).
        recipe: override `CLASSIFIER_RECIPE[dataset]`.

    Returns:
        The record.

    Example:
        >>> train_classifier("mnist_5k")["test_accuracy"]
    """
    import keras

    from aezoo import _io
    from aezoo.weights import sha256

    if recipe is None and dataset not in CLASSIFIER_RECIPE:
        raise InputError(f"no classifier recipe for {dataset!r}; expected one of {', '.join(CLASSIFIER_RECIPE)}.")
    recipe = {**CLASSIFIER_RECIPE.get(dataset, {}), **(recipe or {})}
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (tasks.load_split(dataset, s, data) for s in ("train", "validation", "test"))
    keras.utils.set_random_seed(recipe["seed"])
    net = build_classifier(x_tr.shape[1:], int(max(y_tr.max(), y_te.max())) + 1)
    net.compile(keras.optimizers.Adam(recipe["learning_rate"]),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    started = datetime.datetime.now(datetime.timezone.utc)
    net.fit(x_tr, y_tr, batch_size=recipe["batch_size"], epochs=recipe["epochs"], verbose=2 if progress else 0,
            shuffle=True)
    seconds = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    directory = Path(directory or tasks.tasks_dir())
    directory.mkdir(parents=True, exist_ok=True)
    file = f"classifier_{dataset}.weights.h5"
    bare = build_classifier(x_tr.shape[1:], net.output_shape[-1])  # uncompiled: no optimizer state in the file
    bare.set_weights(net.get_weights())
    _io.save_weights(bare, directory / file)

    record = {
        "file": file, "sha256": sha256(directory / file), "bytes": (directory / file).stat().st_size,
        "architecture": "conv32(3x3, relu) - maxpool - conv64(3x3, relu) - maxpool - dense128(relu) [features] - "
                        "dropout 0.3 - dense(classes)",
        "recipe": {**recipe, "optimizer": "adam", "loss": "sparse categorical cross-entropy", "data": f"{dataset} train split"},
        "train_images": int(len(x_tr)), "train_seconds": round(seconds, 1),
        "validation_accuracy": float(net.evaluate(x_va, y_va, verbose=0)[1]),
        "test_accuracy": float(net.evaluate(x_te, y_te, verbose=0)[1]),
        "versions": tasks.versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "command": f"python -m aezoo.tasks.generate train-classifier {dataset}",
    }
    path = _classifiers_path(directory)
    records = json.loads(path.read_text()) if path.is_file() else {}
    records[dataset] = record
    tasks.write_json(path, dict(sorted(records.items())))
    return record


def classifier_record(dataset: str, directory=None) -> dict:
    """The bundled classifier's record (file, sha256, accuracy, recipe)."""
    path = _classifiers_path(directory)
    records = json.loads(path.read_text()) if path.is_file() else {}
    if dataset not in records:
        raise WeightsError(f"no feature classifier for {dataset!r} in {path}; train one with: "
                           f"python -m aezoo.tasks.generate train-classifier {dataset}")
    return records[dataset]


def load_classifier(dataset: str, directory=None):
    """The bundled feature classifier of `dataset`, hash-checked, as an image -> 128-d features model (offline)."""
    import keras

    from aezoo.weights import sha256

    record = classifier_record(dataset, directory)
    path = Path(directory or tasks.tasks_dir()) / record["file"]
    if not path.is_file():
        raise WeightsError(f"the feature classifier {path} is missing; retrain it with: {record['command']}")
    if sha256(path) != record["sha256"]:
        raise WeightsError(f"{path}: sha256 does not match {CLASSIFIERS_FILE}; retrain it with: {record['command']}")
    net = build_classifier()
    net.load_weights(str(path))
    return keras.Model(net.input, net.get_layer("features").output)


def features(extractor, x, batch_size: int = 1000) -> np.ndarray:
    """Feature vectors (float64) of images `x`."""
    return np.concatenate([np.asarray(extractor(x[i: i + batch_size], training=False), dtype="float64")
                           for i in range(0, len(x), batch_size)])


# --------------------------------------------------------------------------- metrics


def frechet_distance(f1, f2) -> float:
    """||μ1 - μ2||² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½) between Gaussians fitted to two feature sets.

    Example:
        >>> frechet_distance(f, f)   # ≈ 0
    """
    f1, f2 = np.asarray(f1, dtype="float64"), np.asarray(f2, dtype="float64")
    # a feature that is constant over both sets (a dead ReLU unit) adds exactly 0 to every term; dropping it
    # keeps the covariances from being singular for no reason
    alive = (f1.std(axis=0) > 0) | (f2.std(axis=0) > 0) | (f1.mean(axis=0) != f2.mean(axis=0))
    f1, f2 = f1[:, alive], f2[:, alive]
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    # Tr((Σ1 Σ2)^½) = Σ sqrt(eigenvalues of Σ1^½ Σ2 Σ1^½), a symmetric PSD matrix: eigh is exact and stable where
    # scipy.linalg.sqrtm of the (non-symmetric, often singular) product warns and loses digits
    values, vectors = np.linalg.eigh(s1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(max(0.0, np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross))


def _kth_radius(f, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)  # the first neighbour is the point itself
    return distances[:, k]


def _coverage(manifold, radii, queries, chunk: int = 1000) -> float:
    """Share of `queries` inside at least one ball (center in `manifold`, radius `radii`)."""
    from sklearn.metrics import pairwise_distances

    inside = 0
    for i in range(0, len(queries), chunk):
        d = pairwise_distances(queries[i: i + chunk], manifold)
        inside += int(np.any(d <= radii[None, :], axis=1).sum())
    return inside / len(queries)


def precision_recall(real, fake, k: int = K) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls.

    Returns:
        {"precision": share of fake inside the real manifold, "recall": share of real inside the fake one}.
    """
    real, fake = np.asarray(real, dtype="float64"), np.asarray(fake, dtype="float64")
    return {"precision": _coverage(real, _kth_radius(real, k), fake),
            "recall": _coverage(fake, _kth_radius(fake, k), real)}


def compare(extractor_or_features, real_features, images=None) -> dict:
    """FD, precision and recall of a set of images (or their features) against the real features."""
    f = extractor_or_features if images is None else features(extractor_or_features, images)
    return {"fd": frechet_distance(real_features, f), **precision_recall(real_features, f)}


# --------------------------------------------------------------------------- samplers


def vae_samples(model, n: int, seed: int = 0) -> np.ndarray:
    """`n` prior samples of a VAE: z ~ N(0, I) from numpy (fixed seed), decoded to the mean image."""
    z = np.random.default_rng([seed, 7]).standard_normal((int(n), model.latent_dim)).astype("float32")
    return tasks.decode(model, z)


def pca_gaussian_samples(x_train, n: int, components: int, seed: int = 0) -> np.ndarray:
    """`n` images from a Gaussian in the PCA space (PCA fitted on `x_train`): N(0, explained variances), clipped."""
    from sklearn.decomposition import PCA

    flat = np.asarray(x_train, dtype="float32").reshape(len(x_train), -1)
    pca = PCA(n_components=int(components), random_state=seed).fit(flat)
    c = np.random.default_rng([seed, 11]).standard_normal((int(n), int(components))) * np.sqrt(pca.explained_variance_)
    return np.clip(pca.inverse_transform(c), 0, 1).reshape((int(n),) + x_train.shape[1:]).astype("float32")


def sample_grid(images, path, title: str):
    """An 8x8 grid PNG of the first 64 images."""
    from aezoo.plotting import save_grid, tile

    return save_grid(tile(np.asarray(images[:64]), 8), path, title=title)


# --------------------------------------------------------------------------- the protocol


def run(models=None, names=None, *, quick: bool = False, seed: int = 0, progress: bool = True, data=None,
        figures_dir=None, classifiers_dir=None) -> dict:
    """Run the generation protocol (see the module docstring) on VAE entries.

    Args:
        models: name -> model to measure (default: load each named entry).
        names: ``NAME[:VERSION]`` strings (default: every published VAE).
        quick: n = 300, PCA fitted on 2,000 train images (smoke runs).
        seed: seed of the prior draws and of the PCA sampler.
        data: {dataset: {split: (x, y)}} instead of the dataset files (tests).
        figures_dir: write the sample grids here (None: no figures).
        classifiers_dir: where the feature classifiers are (default ``pretrained/tasks``).

    Returns:
        {"task", "protocol", "entries", "baselines" (per dataset), "anchors", "settings"}.

    Example:
        >>> run(names=["vae_mnist:1"])["entries"]["vae_mnist"]["fd"]
    """
    specs = tasks.resolve(names, models, applies_to=applies_to)
    q = QUICK if quick else {}
    result = {"task": TASK, "protocol": PROTOCOL, "entries": {}, "baselines": {}, "anchors": ANCHORS,
              "settings": {"seed": seed, "quick": quick, "k": K, "samples": "prior, decoder mean image"}}
    by_dataset: dict = {}
    for spec in specs:
        by_dataset.setdefault(tasks.dataset_of(spec), []).append(spec)
    bar = tasks.progress_bar(len(specs) + len(by_dataset), "generate", progress)
    for dataset, group in by_dataset.items():
        extractor = load_classifier(dataset, classifiers_dir)
        record = classifier_record(dataset, classifiers_dir)
        x_va, _ = tasks.load_split(dataset, "validation", data)
        n = int(q.get("n", len(x_va)))
        x_va = x_va[np.sort(np.random.default_rng(0).choice(len(x_va), size=n, replace=False))] if n < len(x_va) else x_va
        x_te, _ = tasks.load_split(dataset, "test", data, n)
        x_tr, _ = tasks.load_split(dataset, "train", data, q.get("train"))
        real = features(extractor, x_te)
        base = {"n": n, "reference": f"{n} test images (fixed random subset)",
                "classifier": {k: record[k] for k in ("file", "sha256", "test_accuracy", "validation_accuracy",
                                                      "architecture", "recipe", "command") if k in record},
                "real_heldout": {**compare(extractor, real, x_va), "source": f"{n:,} validation images"},
                "pca_gaussian": {}}
        for k in sorted({s["entry"]["config"]["latent_dim"] for s in group}):
            samples = pca_gaussian_samples(x_tr, n, k, seed)
            base["pca_gaussian"][str(k)] = compare(extractor, real, samples)
            if figures_dir is not None:
                name = f"generate_pca{k}_{dataset}.png"
                sample_grid(samples, Path(figures_dir) / name, f"PCA-{k} Gaussian sampler ({dataset})")
                base["pca_gaussian"][str(k)]["figure"] = name
        result["baselines"][dataset] = base
        bar.update()
        for spec in group:
            bar.set_postfix_str(spec["name"])
            model = tasks.load_model(spec)
            samples = vae_samples(model, n, seed)
            r = {"version": spec["version"], "dataset": dataset, "latent_dim": int(model.latent_dim), "n": n,
                 **compare(extractor, real, samples),
                 "pca_gaussian": base["pca_gaussian"][str(model.latent_dim)],
                 "real_heldout": {k: base["real_heldout"][k] for k in ("fd", "precision", "recall")},
                 "classifier_test_accuracy": record["test_accuracy"]}
            r["pca_gaussian"] = {k: v for k, v in r["pca_gaussian"].items() if k != "figure"}
            if figures_dir is not None:
                name = f"generate_{spec['name']}_v{spec['version']}.png"
                sample_grid(samples, Path(figures_dir) / name,
                            f"{tasks.label(spec['name'], spec['version'])}: 64 prior samples (decoder mean)")
                r["figure"] = name
            result["entries"][spec["name"]] = r
            bar.update()
            del model
    bar.close()
    return result


# --------------------------------------------------------------------------- tables and cards


def table(results: dict) -> str:
    """Markdown per dataset: FD, precision, recall of each VAE beside held-out real images and PCA-Gaussian."""
    rows_by_dataset: dict = {}
    for name, version, r in tasks.entries(results):
        rows_by_dataset.setdefault(r["dataset"], []).append((name, version, r))
    out = []
    for dataset in sorted(set(rows_by_dataset) | set(results.get("baselines") or {})):
        base = (results.get("baselines") or {}).get(dataset, {})
        clf = base.get("classifier", {})
        lines = [f"**{dataset}** (n = {base.get('n', '?'):,} per set; features: the bundled classifier, "
                 f"test accuracy {100 * clf.get('test_accuracy', float('nan')):.2f}%; FD lower is better, "
                 "precision/recall higher):", "",
                 "| images | FD | precision | recall | samples |", "|---|---|---|---|---|"]
        if "real_heldout" in base:
            p = base["real_heldout"]
            lines.append(f"| held-out real ({p.get('source', 'validation')}; the floor) | {p['fd']:.2f} | "
                         f"{p['precision']:.3f} | {p['recall']:.3f} | |")
        for k in sorted(base.get("pca_gaussian", {}), key=int):
            p = base["pca_gaussian"][k]
            fig = f"[png](pretrained/tasks/{p['figure']})" if p.get("figure") else ""
            lines.append(f"| PCA-{k} Gaussian sampler | {p['fd']:.2f} | {p['precision']:.3f} | {p['recall']:.3f} | {fig} |")
        for name, version, r in sorted(rows_by_dataset.get(dataset, [])):
            fig = f"[png](pretrained/tasks/{r['figure']})" if r.get("figure") else ""
            lines.append(f"| {tasks.label(name, version)} ({r['latent_dim']}-d prior) | {r['fd']:.2f} | "
                         f"{r['precision']:.3f} | {r['recall']:.3f} | {fig} |")
        out.append("\n".join(lines))
    return ("\n\n".join(out) + "\n\nNo published anchor: FDs in this classifier's feature space are not comparable "
            "with Inception-feature FIDs reported elsewhere. Retrain the classifier with "
            "`python -m aezoo.tasks.generate train-classifier DATASET`.")


def card_summary(entry_result: dict) -> dict:
    """Headline numbers for the card: FD, precision, recall beside the held-out floor and PCA-Gaussian."""
    r = entry_result
    rnd = lambda d: {k: round(d[k], 4) for k in ("fd", "precision", "recall")}  # noqa: E731
    return {**rnd(r), "n": r["n"], "real_heldout": rnd(r["real_heldout"]), "pca_gaussian": rnd(r["pca_gaussian"]),
            "classifier_test_accuracy": round(r["classifier_test_accuracy"], 4)}


def main(argv=None) -> int:
    """``python -m aezoo.tasks.generate train-classifier DATASET [--directory DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aezoo.tasks.generate",
                                     description="Train the feature classifier of the generation task.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("train-classifier", help="train, bundle and record the feature classifier of DATASET")
    s.add_argument("dataset", choices=sorted(CLASSIFIER_RECIPE))
    s.add_argument("--directory", help="where to write (default pretrained/tasks)")
    args = parser.parse_args(argv)
    record = train_classifier(args.dataset, args.directory)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
