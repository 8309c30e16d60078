"""Label level of a contrast dataset made by `imagenot download`: how well do the captions support the labels?

Labels there come from caption text alone (a lemma match and a similarity threshold, after LAIONet), so the
audit asks, per class: how similar are the captions to the class query (the distribution the threshold cut),
and how often does a caption also name another class of the set. The second question uses the project's
own caption matcher (`imagenot.mining.matcher.LemmaMatcher`, LAIONet's rule by default), so "names a class"
means exactly what it meant when the dataset was mined; a caption naming its own class only is what the
LAIONet rule guarantees, and anything else is worth a look (relaxed matching, or lemmas that changed).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from imagenot import datacard
from imagenot.audit.dataset_meta import SampleTable
from imagenot.wordnet.classes import ClassRow, read_classes

log = logging.getLogger(__name__)

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def dataset_classes(root: Path) -> list[ClassRow]:
    return sorted(read_classes(root / "classes.tsv"), key=lambda r: r.index)


def mining_threshold(root: Path) -> float | None:
    """The similarity threshold the dataset's card records (None when it records none)."""
    return datacard.similarity_threshold(datacard.read_card(root))


def _quantiles(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    qs = np.quantile(values, QUANTILES)
    return {f"q{int(round(q * 100)):02d}": float(v) for q, v in zip(QUANTILES, qs)} | {"mean": float(values.mean())}


def caption_hits(captions: list[str | None], classes: list[ClassRow], mode: str) -> list[set[int]]:
    """Per caption, the classes (label positions) whose lemmas it names under the matcher's rule."""
    import pyarrow as pa

    from imagenot.mining.matcher import LemmaMatcher

    matcher = LemmaMatcher([c.lemmas for c in classes], mode=mode)
    hits = matcher.match(pa.array(captions, type=pa.string()))
    out: list[set[int]] = [set() for _ in captions]
    for row, cls in zip(hits.row.tolist(), hits.cls.tolist()):
        out[row].add(int(cls))
    return out


def label_level(table: SampleTable, classes: list[ClassRow], mode: str) -> dict[str, Any]:
    """Per-class similarity quantiles and caption overlaps; the label-level section minus label issues."""
    labels = np.asarray(table.columns["label"], dtype=np.int64)
    sims = np.asarray([np.nan if s is None else float(s) for s in table.columns["similarity"]], dtype=np.float64)
    captions = table.columns["caption"]
    have_captions = sum(1 for c in captions if c)
    hits = caption_hits(list(captions), classes, mode) if have_captions else [set() for _ in captions]
    per_class = []
    other_named = np.zeros(len(labels), dtype=bool)
    own_named = np.zeros(len(labels), dtype=bool)
    for i, (lab, h) in enumerate(zip(labels.tolist(), hits)):
        other_named[i] = bool(h - {lab})
        own_named[i] = lab in h
    splits = np.asarray(table.columns["split"])
    for c in classes:
        mask = labels == c.index
        s = sims[mask]
        s = s[~np.isnan(s)]
        co = Counter(o for i in np.flatnonzero(mask) for o in hits[i] if o != c.index)
        n = int(mask.sum())
        per_class.append({
            "index": c.index, "wnid": c.wnid, "name": c.name, "lemmas": list(c.lemmas), "images": n,
            "train": int((mask & (splits == "train")).sum()), "val": int((mask & (splits == "val")).sum()),
            "similarity": _quantiles(s),
            "names_other_class": int(other_named[mask].sum()),
            "names_other_class_share": float(other_named[mask].mean()) if n else None,
            "names_own_class_share": float(own_named[mask].mean()) if n else None,
            "other_classes_named": [{"index": o, "name": classes[o].name, "images": k}
                                    for o, k in co.most_common(5)],
        })
    valid = sims[~np.isnan(sims)]
    n = len(labels)
    return {
        "images": n,
        "with_caption": have_captions,
        "with_similarity": int(len(valid)),
        "match_mode": mode,
        "similarity": _quantiles(valid),
        "names_other_class": int(other_named.sum()),
        "names_other_class_share": float(other_named.mean()) if n and have_captions else None,
        "names_own_class_share": float(own_named.mean()) if n and have_captions else None,
        "per_class": per_class,
    }


def label_summary(section: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("median_similarity", "multi_lemma_share", "label_issues", "label_issues_checked")
    if section is None:
        return dict.fromkeys(keys)
    issues = section.get("label_issues")
    sim = section.get("similarity")
    return {
        "median_similarity": sim["q50"] if sim else None,
        "multi_lemma_share": section.get("names_other_class_share"),
        "label_issues": issues["count"] if issues else None,
        "label_issues_checked": issues["checked"] if issues else None,
    }
