"""The audit's PNG plots (matplotlib, Agg backend, each written atomically)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imagenot import escape
from imagenot.fileio import atomic_path

log = logging.getLogger(__name__)

REF_COLOUR, CON_COLOUR = "#4477aa", "#cc6677"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def lexnames(path: Path, reference: Mapping[str, int], contrast: Mapping[str, int]) -> str:
    """Share of each class set per WordNet lexicographer file, side by side (counts on the bars)."""
    plt = _plt()
    names = sorted(set(reference) | set(contrast), key=lambda k: -(reference.get(k, 0) + contrast.get(k, 0)))
    nr, nc = max(sum(reference.values()), 1), max(sum(contrast.values()), 1)
    ypos = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(names) + 1.2))
    for off, counts, total, colour, label in ((-0.2, reference, nr, REF_COLOUR, "reference"),
                                              (0.2, contrast, nc, CON_COLOUR, "contrast")):
        vals = [100.0 * counts.get(k, 0) / total for k in names]
        bars = ax.barh(ypos + off, vals, height=0.4, color=colour, label=f"{label} ({total} classes)")
        for b, k in zip(bars, names):
            if counts.get(k, 0):
                ax.text(b.get_width() + 0.5, b.get_y() + b.get_height() / 2, str(counts[k]), va="center",
                        fontsize=7)
    ax.set_yticks(ypos, escape.mpl_all(names))
    ax.invert_yaxis()
    ax.set_xlabel("share of the class set (%)")
    ax.set_title("WordNet lexicographer files of the two class sets")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def path_distances(path: Path, histogram: Mapping[str, int], mean: float | None) -> str:
    plt = _plt()
    ks = sorted(int(k) for k in histogram)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(ks, [histogram[str(k)] for k in ks], color=CON_COLOUR)
    if mean is not None:
        ax.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("WordNet shortest-path distance to the nearest reference class (edges)")
    ax.set_ylabel("contrast classes")
    ax.set_xticks(ks)
    ax.set_title("How far each contrast class lies from the reference")
    return _save(fig, path)


def _grid(images: Any, cols: int, rows: int) -> np.ndarray:
    x = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    n, _, h, w = x.shape
    grid = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = x[i].transpose(1, 2, 0)
    return grid


def image_samples(path: Path, reference: Any, contrast: Any, labels: Sequence[str], seed: int = 0,
                  per_side: int = 24) -> str:
    """A few drawn images of each side at the common size the classifier sees."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(2, 1, figsize=(8, 3.4))
    for ax, imgs, label in zip(axes, (reference, contrast), labels):
        pick = np.sort(rng.choice(len(imgs), size=min(per_side, len(imgs)), replace=False))
        ax.imshow(_grid(imgs[pick], cols=12, rows=2), interpolation="nearest")
        ax.set_title(escape.mpl(f"{label} (as the classifier sees them)"), fontsize=9)
        ax.axis("off")
    return _save(fig, path)


def statistic_histograms(path: Path, features: Mapping[str, np.ndarray], y: np.ndarray) -> str:
    plt = _plt()
    names = list(features)
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        v = features[name]
        lo, hi = float(np.min(v)), float(np.max(v))
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
        ax.hist(v[y == 0], bins=bins, alpha=0.6, color=REF_COLOUR, label="reference", density=True)
        ax.hist(v[y == 1], bins=bins, alpha=0.6, color=CON_COLOUR, label="contrast", density=True)
        ax.set_title(escape.mpl(name), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Per-image statistics of the two samples (densities)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def statistic_accuracy(path: Path, per: Mapping[str, Mapping[str, Any]], clf: Mapping[str, Any]) -> str:
    """Held-out accuracy of each one-statistic classifier, with intervals, against the CNN and chance."""
    plt = _plt()
    names = sorted(per, key=lambda k: -per[k]["accuracy"])
    acc = np.array([per[k]["accuracy"] for k in names]) * 100
    err = np.array([[per[k]["accuracy"] - per[k]["ci_low"], per[k]["ci_high"] - per[k]["accuracy"]]
                    for k in names]).T * 100
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.4))
    ypos = np.arange(len(names))
    ax.barh(ypos, acc, xerr=err, color=CON_COLOUR, capsize=3)
    ax.axvline(50, color="grey", linestyle=":", label="chance (50%)")
    ax.axvline(clf["accuracy"] * 100, color="black", linestyle="--",
               label=escape.mpl(f"{clf['model']} on the pixels ({clf['accuracy'] * 100:.1f}%)"))
    ax.axvspan(clf["ci_low"] * 100, clf["ci_high"] * 100, color="black", alpha=0.08)
    ax.set_yticks(ypos, escape.mpl_all(names))
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("held-out accuracy at telling the datasets apart (%)")
    ax.set_title("Which dataset? One statistic at a time (logistic regression)")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def similarity(path: Path, per_class: Sequence[tuple[str, Sequence[float]]], threshold: float | None) -> str:
    """Caption-query similarity: one box per class (up to 60 classes, sorted by median), else the spread of
    per-class medians, beside the distribution over all images."""
    plt = _plt()
    per_class = [(n, v) for n, v in per_class if len(v)]
    every = np.concatenate([np.asarray(v, dtype=np.float64) for _, v in per_class]) if per_class else np.zeros(0)
    boxes = len(per_class) <= 60
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.22 * len(per_class) + 1.5) if boxes else 3.5),
                                   gridspec_kw={"width_ratios": [1, 1.6]})
    ax0.hist(every, bins=40, color=CON_COLOUR)
    ax0.set_xlabel("caption-query cosine similarity")
    ax0.set_ylabel("images")
    ax0.set_title(f"all images (n={len(every)})", fontsize=9)
    ordered = sorted(per_class, key=lambda nv: float(np.median(nv[1])))
    if boxes:
        ax1.boxplot([np.asarray(v) for _, v in ordered], vert=False, widths=0.6, showfliers=True,
                    flierprops={"markersize": 2})
        ax1.set_yticks(np.arange(1, len(ordered) + 1), escape.mpl_all(n for n, _ in ordered), fontsize=7)
        ax1.set_xlabel("caption-query cosine similarity")
        ax1.set_title("per class (sorted by median)", fontsize=9)
    else:
        ax1.hist([float(np.median(v)) for _, v in ordered], bins=40, color=CON_COLOUR)
        ax1.set_xlabel("per-class median similarity")
        ax1.set_ylabel("classes")
        ax1.set_title(f"per-class medians ({len(ordered)} classes)", fontsize=9)
    if threshold is not None:
        for ax in (ax0, ax1):
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax0.legend([f"mining threshold {threshold:g}"], fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def label_issues(path: Path, names: Sequence[str], issues: Sequence[int], checked: Sequence[int]) -> str:
    plt = _plt()
    order = sorted(range(len(names)), key=lambda i: (-issues[i], names[i]))[:60]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(order) + 1.4))
    ypos = np.arange(len(order))
    ax.barh(ypos, [checked[i] for i in order], color="#dddddd", label="validation images checked")
    ax.barh(ypos, [issues[i] for i in order], color=CON_COLOUR, label="likely label errors")
    ax.set_yticks(ypos, escape.mpl_all(names[i] for i in order), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.set_title("Likely label errors per class (confident learning)")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)
