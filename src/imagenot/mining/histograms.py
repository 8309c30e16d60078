"""Similarity histograms, overall and per class, to choose a threshold by eye.

A good threshold sits in the valley between the mass of off-topic captions (a lemma used in another sense,
a keyword list) and the on-topic ones; where a class has no valley its captions are mostly one or the other.
Per-class panels are drawn for the classes with the most matches, 25 to a page, so 1000 classes cost 40 PNGs
rather than 1000 files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagenot import escape
from imagenot.fileio import atomic_path

log = logging.getLogger(__name__)


def _save(fig: object, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")  # type: ignore[attr-defined]


def similarity_quantiles(matches: pa.Table, names: dict[str, str]) -> list[dict[str, object]]:
    """Per class: count and similarity quantiles (for a table next to the plots)."""
    out = []
    for wnid in sorted(set(matches["wnid"].to_pylist())):
        s = matches.filter(pc.equal(matches["wnid"], wnid))["similarity"].drop_null().to_numpy()
        if len(s) == 0:
            continue
        q = np.quantile(s, [0.1, 0.5, 0.9])
        out.append({"wnid": wnid, "name": names.get(wnid, ""), "matches": int(len(s)),
                    "q10": round(float(q[0]), 4), "median": round(float(q[1]), 4), "q90": round(float(q[2]), 4)})
    return out


def plot_histograms(matches: pa.Table, names: dict[str, str], threshold: float | None, out_dir: Path,
                    max_classes: int = 100, per_page: int = 25) -> list[Path]:
    """Write `overall.png` and `classes-NNN.png` pages; returns the files written (none without similarity)."""
    sims = matches["similarity"].drop_null()
    if len(sims) == 0:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    values = sims.to_numpy()
    bins = np.linspace(min(-0.2, float(values.min())), 1.0, 49)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=bins, color="#4477aa")
    if threshold is not None:
        ax.axvline(threshold, color="#cc3311", ls="--", label=f"threshold {threshold:g}")
        ax.legend()
    ax.set_xlabel("cosine similarity of caption and class query")
    ax.set_ylabel("matched captions")
    ax.set_title(f"all classes ({len(values)} matches)")
    fig.tight_layout()
    _save(fig, out_dir / "overall.png")
    plt.close(fig)
    written.append(out_dir / "overall.png")
    wnids = matches["wnid"].to_pylist()
    from collections import Counter

    top: Sequence[str] = [w for w, _ in Counter(wnids).most_common(max_classes)]
    wnid_arr = matches["wnid"]
    for page, start in enumerate(range(0, len(top), per_page), start=1):
        chunk = top[start: start + per_page]
        cols = 5
        rows = (len(chunk) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
        # fixed ticks and a fixed layout: tight_layout and tick search cost most of a page's time
        fig.subplots_adjust(left=0.04, right=0.99, bottom=0.06, top=0.93, wspace=0.25, hspace=0.55)
        xticks = [t for t in (-0.2, 0.2, 0.6, 1.0) if t >= bins[0]]
        for ax, wnid in zip(axes.flat, chunk):
            s = matches.filter(pc.equal(wnid_arr, wnid))["similarity"].drop_null().to_numpy()
            counts, _, _ = ax.hist(s, bins=bins, color="#4477aa")
            if threshold is not None:
                ax.axvline(threshold, color="#cc3311", ls="--")
            ax.set_title(escape.mpl(f"{names.get(wnid, wnid)[:22]} ({len(s)})"), fontsize=8)
            ax.set_xticks(xticks)
            ymax = max(1, int(counts.max()))
            ax.set_yticks([0, ymax])
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(chunk):]:
            ax.axis("off")
        path = out_dir / f"classes-{page:03d}.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written
