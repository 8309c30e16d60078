"""mine's summary, histograms and quantiles as they were before issue 24's follow-up (every match in one Arrow
table), kept as the reference: tests/mining/test_mine_summary.py checks that the bounded-memory path (DuckDB
counts, binned histograms, exact quantiles from sorted positions) writes the same numbers and the same files.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagenot import escape
from imagenot.fileio import atomic_path
from imagenot.mining.resolve import above


def reference_summary(matches: pa.Table, dups: int, names: dict[str, str],
                      threshold: float | None) -> dict[str, Any]:
    """The part of the old `summarize` that read the matches table (after `best_per_source`)."""
    per_class: dict[str, dict[str, Any]] = {}
    below = 0
    if matches.num_rows:
        kept = above(matches, threshold)
        below = matches.num_rows - kept.num_rows
        all_counts = _value_counts(matches["wnid"])
        kept_counts = _value_counts(kept["wnid"])
        for wnid, n in sorted(all_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            per_class[wnid] = {"name": names.get(wnid, ""), "matched": n, "above_threshold": kept_counts.get(wnid, 0)}
    return {"duplicate_ids": dups, "below_threshold": below, "classes_with_matches": len(per_class),
            "per_class": per_class}


def reference_pool_counts(matches: pa.Table) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """The old `pool.pool_counts`, over the pool matches above the threshold (`above`), not deduplicated."""
    per_class: Counter[str] = Counter()
    lemmas: dict[str, Counter[str]] = defaultdict(Counter)
    for wnid, lemma in zip(matches["wnid"].to_pylist(), matches["lemma"].to_pylist()):
        per_class[wnid] += 1
        lemmas[wnid][lemma] += 1
    return per_class, lemmas


def _value_counts(col: pa.ChunkedArray) -> dict[str, int]:
    vc = pc.value_counts(col)
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))


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
