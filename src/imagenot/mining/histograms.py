"""Similarity histograms, overall and per class, to choose a threshold by eye.

A good threshold sits in the valley between the mass of off-topic captions (a lemma used in another sense,
a keyword list) and the on-topic ones; where a class has no valley its captions are mostly one or the other.
Per-class panels are drawn for the classes with the most matches, 25 to a page, so 1000 classes cost 40 PNGs
rather than 1000 files.

Nothing here holds the matches: the plots are drawn from per-class counts on fixed bins, added batch by batch
as DuckDB streams the deduplicated similarities (`select_engine.MatchQuery`), and the quantiles are exact,
read from each class's sorted similarities at the two positions around each quantile (DuckDB sorts and
spills) and interpolated as numpy's default (linear) `np.quantile` does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagenot import escape
from imagenot.fileio import atomic_path, write_json
from imagenot.mining.select_engine import ClassMatches, MatchQuery

log = logging.getLogger(__name__)


def _save(fig: object, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")  # type: ignore[attr-defined]


QUANTILES = (0.1, 0.5, 0.9)
BINS = 48


def bin_edges(lowest: float) -> np.ndarray:
    """The bins of every panel: 48 from -0.2 (or the lowest similarity, when lower) to 1.0."""
    return np.linspace(min(-0.2, lowest), 1.0, BINS + 1)


class SimilarityBins:
    """Per-class counts of similarities on fixed bins, added batch by batch.

    A value falls in bin i when edges[i] <= value < edges[i + 1], the last bin closed on the right, and values
    outside the edges are not counted (np.histogram's rule, so a panel drawn from these counts is the one
    `ax.hist` draws from the values); `totals` counts every value, as the panel titles do."""

    def __init__(self, wnids: Sequence[str], edges: np.ndarray) -> None:
        self.wnids, self.edges = list(wnids), edges
        self._lookup = pa.array(self.wnids, pa.string())
        self.counts = np.zeros((len(self.wnids) + 1, len(edges) - 1), dtype=np.int64)  # last row: other wnids
        self.totals = np.zeros(len(self.wnids) + 1, dtype=np.int64)

    def add(self, wnid: pa.Array | pa.ChunkedArray, similarity: pa.Array | pa.ChunkedArray) -> None:
        """Count one batch of (wnid, similarity) pairs, similarities not null."""
        other = len(self.wnids)
        cls = pc.fill_null(pc.index_in(wnid, value_set=self._lookup), other).to_numpy(zero_copy_only=False)
        sims = np.asarray(similarity.to_numpy(zero_copy_only=False))
        nbins = self.counts.shape[1]
        b = np.searchsorted(self.edges, sims, side="right") - 1
        b[sims == self.edges[-1]] = nbins - 1
        inside = (b >= 0) & (b < nbins)
        flat = cls[inside].astype(np.int64) * nbins + b[inside]
        self.counts += np.bincount(flat, minlength=self.counts.size).reshape(self.counts.shape)
        self.totals += np.bincount(cls, minlength=len(self.totals))


def write_histograms(query: MatchQuery, classes: list[ClassMatches], names: dict[str, str],
                     threshold: float | None, out_dir: Path, max_classes: int = 100) -> list[Path]:
    """histograms/overall.png, classes-NNN.png (the `max_classes` classes with the most matches, ties in
    order of first appearance) and quantiles.json from an open MatchQuery (after `totals`)."""
    lowest = query.min_similarity()
    written: list[Path] = []
    if lowest is not None:
        bins = SimilarityBins([c.wnid for c in classes], bin_edges(lowest))
        for batch in query.similarities():
            bins.add(batch.column(0), batch.column(1))
        top = [c.wnid for c in sorted(classes, key=lambda c: (-c.matched, c.first))[:max_classes]]
        written = plot_histograms(bins, top, names, threshold, out_dir)
    write_json(out_dir / "quantiles.json", similarity_quantiles(query, classes, names))
    return written


def _positions(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For n sorted values: the positions below and above each quantile and the weight of the upper one, as
    np.quantile's linear method computes them."""
    virtual = (n - 1) * np.asarray(QUANTILES, dtype=np.float64)
    lo = np.floor(virtual)
    return lo.astype(np.int64), np.minimum(lo + 1, n - 1).astype(np.int64), virtual - lo


def similarity_quantiles(query: MatchQuery, classes: list[ClassMatches],
                         names: dict[str, str]) -> list[dict[str, object]]:
    """Per class with similarities (wnid order): count and the 10%, 50% and 90% quantiles of its deduplicated
    similarities, exact: np.quantile's linear interpolation between the two sorted values around each."""
    scored = sorted((c for c in classes if c.scored), key=lambda c: c.wnid)
    if not scored:
        return []
    where = {c.wnid: _positions(c.scored) for c in scored}
    wnids = [w for w, (lo, hi, _) in where.items() for _ in range(2 * len(lo))]
    idx = [int(i) for lo, hi, _ in where.values() for i in (*lo, *hi)]
    got = query.similarities_at(pa.table({"wnid": pa.array(wnids, pa.string()), "i": pa.array(idx, pa.int64())}))
    value = dict(zip(zip(got["wnid"].to_pylist(), got["i"].to_pylist()), got["similarity"].to_pylist()))
    out: list[dict[str, object]] = []
    for c in scored:
        lo, hi, gamma = where[c.wnid]
        q = [float(np.quantile(np.array([value[c.wnid, a], value[c.wnid, b]], dtype=np.float32), g))
             for a, b, g in zip(lo.tolist(), hi.tolist(), gamma.tolist())]
        out.append({"wnid": c.wnid, "name": names.get(c.wnid, ""), "matches": c.scored,
                    "q10": round(q[0], 4), "median": round(q[1], 4), "q90": round(q[2], 4)})
    return out


def plot_histograms(bins: SimilarityBins, top: Sequence[str], names: dict[str, str], threshold: float | None,
                    out_dir: Path, per_page: int = 25) -> list[Path]:
    """Write `overall.png` and `classes-NNN.png` pages (one panel per class of `top`) from binned counts;
    returns the files written (none without similarity). Each panel is `ax.hist` of the bins' left edges
    weighted by their counts: the same bars as `ax.hist` of the values."""
    if not bins.totals.sum():
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    edges = bins.edges
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(edges[:-1], bins=edges, weights=bins.counts.sum(axis=0), color="#4477aa")
    if threshold is not None:
        ax.axvline(threshold, color="#cc3311", ls="--", label=f"threshold {threshold:g}")
        ax.legend()
    ax.set_xlabel("cosine similarity of caption and class query")
    ax.set_ylabel("matched captions")
    ax.set_title(f"all classes ({int(bins.totals.sum())} matches)")
    fig.tight_layout()
    _save(fig, out_dir / "overall.png")
    plt.close(fig)
    written.append(out_dir / "overall.png")
    row = {w: i for i, w in enumerate(bins.wnids)}
    for page, start in enumerate(range(0, len(top), per_page), start=1):
        chunk = top[start: start + per_page]
        cols = 5
        rows = (len(chunk) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
        # fixed ticks and a fixed layout: tight_layout and tick search cost most of a page's time
        fig.subplots_adjust(left=0.04, right=0.99, bottom=0.06, top=0.93, wspace=0.25, hspace=0.55)
        xticks = [t for t in (-0.2, 0.2, 0.6, 1.0) if t >= edges[0]]
        for ax, wnid in zip(axes.flat, chunk):
            i = row[wnid]
            counts, _, _ = ax.hist(edges[:-1], bins=edges, weights=bins.counts[i], color="#4477aa")
            if threshold is not None:
                ax.axvline(threshold, color="#cc3311", ls="--")
            ax.set_title(escape.mpl(f"{names.get(wnid, wnid)[:22]} ({int(bins.totals[i])})"), fontsize=8)
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
