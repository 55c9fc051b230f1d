"""Dimensionality reduction: 2-d embeddings from the codes, beside PCA-2 on pixels.

    aezoo bench embed [NAME[:VERSION] ...]

Protocol (`PROTOCOL`): the entries used for dimensionality reduction (their
`uses` say so). Their latent is wider than 2, and no new model is trained:
the 2-d embedding is the first two principal components of the codes
(posterior means for VAEs), PCA fitted on the train split's codes. Scores:

- k-NN accuracy (k=5, Euclidean) in the 2-d embedding: reference = the full
  train split, queries = the full test split;
- trustworthiness (`sklearn.manifold.trustworthiness`, 5 neighbours) of the
  2-d embedding against the pixels, on a fixed random subset of 2,000 test
  images (seed 0; mnist_5k: all 1,000) since it needs all pairwise distances;
  also of the full codes (latent_dim), to show what the 2-d view loses.

Baseline, same run: PCA-2 on the pixels (fitted on train). Figures: a scatter
of the same test subset coloured by class, per entry and for PCA-2
(``pretrained/tasks/embed_NAME_vV.png``, ``embed_pca2_DATASET.png``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aezoo import tasks

TASK = "embed"
K = 5
TRUST_IMAGES = 2000
QUICK = {"train": 2000, "test": 400, "trust": 300}
PROTOCOL = (
    "Entries used for dimensionality reduction; their latent is wider than 2, so the 2-d embedding is the first two "
    "principal components of the codes (PCA fitted on the train split's codes; nothing new is trained). k-NN "
    "accuracy (k=5) in 2-d with the full train split as reference and the full test split as queries; "
    "trustworthiness (scikit-learn, 5 neighbours) against the pixels on a fixed random subset of 2,000 test images "
    "(mnist_5k: all 1,000), for the 2-d embedding and for the full codes. Baseline, same run: PCA-2 on the pixels."
)
ANCHORS: list = []


def applies_to(entry: dict) -> bool:
    """Entries whose `uses` include dimensionality reduction."""
    return "dimensionality reduction" in entry.get("uses", [])


def to_2d(z_train, others, seed: int = 0):
    """2-d coordinates: the codes themselves when 2-d, else their first two principal components (fitted on train).

    Returns:
        (train 2-d, [each of `others` in 2-d], method description).
    """
    from sklearn.decomposition import PCA

    z_train = np.asarray(z_train, dtype="float64").reshape(len(z_train), -1)
    if z_train.shape[1] == 2:
        return z_train, [np.asarray(o, dtype="float64").reshape(len(o), -1) for o in others], "the codes (2-d)"
    pca = PCA(n_components=2, random_state=seed).fit(z_train)
    return (pca.transform(z_train), [pca.transform(np.asarray(o, dtype="float64").reshape(len(o), -1)) for o in others],
            f"first 2 principal components of the {z_train.shape[1]}-d codes")


def trust(x_high, x_low, k: int = K) -> float:
    """sklearn.manifold.trustworthiness of `x_low` as an embedding of `x_high` (flattened)."""
    from sklearn.manifold import trustworthiness

    flat = lambda a: np.asarray(a, dtype="float64").reshape(len(a), -1)  # noqa: E731
    return float(trustworthiness(flat(x_high), flat(x_low), n_neighbors=int(k)))


def knn_2d(e_train, y_train, e_test, y_test, k: int = K) -> float:
    """Test accuracy of k-NN in the embedding."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=int(k)).fit(e_train, y_train).score(e_test, y_test))


def scatter(points, labels, path, title: str, class_names=None):
    """A 2-d scatter PNG coloured by class (atomic write)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7, vmin=-0.5, vmax=9.5)
    handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(c)), markersize=5) for c in range(10)]
    ax.legend(handles, class_names or [str(c) for c in range(10)], fontsize=6, loc="best", markerscale=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    tasks.save_figure(fig, path)
    plt.close(fig)
    return path


def run(models=None, names=None, *, quick: bool = False, seed: int = 0, progress: bool = True, data=None,
        figures_dir=None, trust_images: int = TRUST_IMAGES) -> dict:
    """Run the embedding protocol (see the module docstring) on zoo entries.

    Args:
        models: name -> model to measure (default: load each named entry).
        names: ``NAME[:VERSION]`` strings (default: every published entry used for dimensionality reduction).
        quick: 2,000 train / 400 test images, trustworthiness on 300 (smoke runs).
        seed: PCA's random state.
        data: {dataset: {split: (x, y)}} instead of the dataset files (tests).
        figures_dir: write the scatter PNGs here (None: no figures).
        trust_images: test images for trustworthiness.

    Returns:
        {"task", "protocol", "entries", "baselines" (per dataset), "anchors", "settings"}.

    Example:
        >>> run(names=["conv_mnist:1"])["entries"]["conv_mnist"]["trustworthiness"]
    """
    from aezoo import datasets as ds

    specs = tasks.resolve(names, models, applies_to=applies_to)
    q = QUICK if quick else {}
    trust_images = q.get("trust", trust_images)
    result = {"task": TASK, "protocol": PROTOCOL, "entries": {}, "baselines": {}, "anchors": ANCHORS,
              "settings": {"seed": seed, "quick": quick, "k": K, "trust_neighbors": K, "trust_images": trust_images}}
    by_dataset: dict = {}
    for spec in specs:
        by_dataset.setdefault(tasks.dataset_of(spec), []).append(spec)
    bar = tasks.progress_bar(len(specs) + len(by_dataset), "embed", progress)
    for dataset, group in by_dataset.items():
        (x_tr, y_tr), (x_te, y_te) = (tasks.load_split(dataset, s, data, q.get(s)) for s in ("train", "test"))
        keep = np.sort(np.random.default_rng(0).choice(len(x_te), size=min(trust_images, len(x_te)), replace=False))
        classes = ds.INFO.get(dataset, {}).get("classes")
        p_tr, (p_te,), _ = to_2d(x_tr, [x_te], seed)
        base = {"images": {"train": int(len(x_tr)), "test": int(len(x_te)), "trust": int(len(keep))},
                "pca2_pixels": {"knn_accuracy": knn_2d(p_tr, y_tr, p_te, y_te),
                                "trustworthiness": trust(x_te[keep], p_te[keep])}}
        if figures_dir is not None:
            name = f"embed_pca2_{dataset}.png"
            scatter(p_te[keep], y_te[keep], Path(figures_dir) / name,
                    f"PCA-2 of the pixels, {dataset} test ({len(keep)} images)", classes)
            base["pca2_pixels"]["figure"] = name
        result["baselines"][dataset] = base
        bar.update()
        for spec in group:
            bar.set_postfix_str(spec["name"])
            model = tasks.load_model(spec)
            z_tr, z_te = tasks.encode(model, x_tr), tasks.encode(model, x_te)
            e_tr, (e_te,), method = to_2d(z_tr, [z_te], seed)
            r = {"version": spec["version"], "dataset": dataset, "latent_dim": int(model.latent_dim),
                 "method": method,
                 "knn_accuracy": knn_2d(e_tr, y_tr, e_te, y_te),
                 "trustworthiness": trust(x_te[keep], e_te[keep]),
                 "code_trustworthiness": trust(x_te[keep], z_te[keep]),
                 "pca2_knn_accuracy": base["pca2_pixels"]["knn_accuracy"],
                 "pca2_trustworthiness": base["pca2_pixels"]["trustworthiness"]}
            if figures_dir is not None:
                name = f"embed_{spec['name']}_v{spec['version']}.png"
                scatter(e_te[keep], y_te[keep], Path(figures_dir) / name,
                        f"{tasks.label(spec['name'], spec['version'])}: {method}, {dataset} test ({len(keep)} images)",
                        classes)
                r["figure"] = name
            result["entries"][spec["name"]] = r
            bar.update()
            del model
    bar.close()
    return result


def table(results: dict) -> str:
    """Markdown per dataset: 2-d k-NN accuracy and trustworthiness, beside PCA-2 on pixels."""
    rows_by_dataset: dict = {}
    for name, version, r in tasks.entries(results):
        rows_by_dataset.setdefault(r["dataset"], []).append((name, version, r))
    out = []
    for dataset in sorted(set(rows_by_dataset) | set(results.get("baselines") or {})):
        base = (results.get("baselines") or {}).get(dataset, {})
        im = base.get("images", {})
        lines = [f"**{dataset}** (k-NN: {im.get('train', '?'):,} train → {im.get('test', '?'):,} test; "
                 f"trustworthiness on {im.get('trust', '?'):,} test images):", "",
                 "| embedding | 2-d k-NN accuracy % | 2-d trustworthiness | trustworthiness of the full codes | scatter |",
                 "|---|---|---|---|---|"]
        if "pca2_pixels" in base:
            p = base["pca2_pixels"]
            fig = f"[png](pretrained/tasks/{p['figure']})" if p.get("figure") else ""
            lines.append(f"| PCA-2 of the pixels | {100 * p['knn_accuracy']:.1f} | {p['trustworthiness']:.3f} | — | {fig} |")
        for name, version, r in sorted(rows_by_dataset.get(dataset, [])):
            fig = f"[png](pretrained/tasks/{r['figure']})" if r.get("figure") else ""
            lines.append(f"| {tasks.label(name, version)} ({r['latent_dim']}-d → PCA-2) | {100 * r['knn_accuracy']:.1f} | "
                         f"{r['trustworthiness']:.3f} | {r['code_trustworthiness']:.3f} | {fig} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def card_summary(entry_result: dict) -> dict:
    """Headline numbers for the card: 2-d k-NN accuracy and trustworthiness beside PCA-2 on pixels."""
    r = entry_result
    return {"method": r["method"], "knn_accuracy_2d": round(r["knn_accuracy"], 4),
            "trustworthiness_2d": round(r["trustworthiness"], 4),
            "pca2_knn_accuracy": round(r["pca2_knn_accuracy"], 4),
            "pca2_trustworthiness": round(r["pca2_trustworthiness"], 4)}
