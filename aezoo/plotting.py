"""PNG grids with matplotlib: reconstructions and samples."""

import textwrap
from pathlib import Path

import numpy as np

from aezoo import _io


def save_grid(rows, path, row_labels=None, title=None, cols=None):
    """Save image rows (each (n, H, W, C) in [0, 1]) as one PNG grid.

    The PNG is written to a temp file, then renamed into place (mode from the umask).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [np.clip(np.asarray(r, dtype="float32"), 0, 1) for r in rows]
    cols = cols or max(len(r) for r in rows)
    # row labels read horizontally at the left (wrapped), with room made for them
    labels = [textwrap.fill(str(label), 16) for label in row_labels] if row_labels else None
    margin = 0.07 * max(len(line) for label in labels for line in label.splitlines()) if labels else 0.0
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9 + margin, len(rows) * 0.95 + (0.4 if title else 0)),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j in range(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                img = row[j]
                if img.shape[-1] == 1:
                    ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(img)
            if j == 0 and labels:
                ax.set_ylabel(labels[i], fontsize=8, rotation=0, ha="right", va="center", labelpad=4)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    try:
        with _io.atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


def one_per_class(labels, n):
    """Indices of `n` images taking the classes in turn: the first image of each class,
    then the second of each, ... (a split stored in class order shows every class).

    Example:
        >>> one_per_class([0, 0, 1, 1, 2], 4)
        array([0, 2, 4, 1])
    """
    labels = np.asarray(labels)
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked, k = [], 0
    while len(picked) < n and any(k < len(p) for p in per_class):
        picked += [int(p[k]) for p in per_class if k < len(p)][: n - len(picked)]
        k += 1
    return np.asarray(picked, dtype=np.int64)


def tile(images, cols):
    """Split (n, H, W, C) into rows of `cols` images for `save_grid`."""
    return [images[i: i + cols] for i in range(0, len(images), cols)]
