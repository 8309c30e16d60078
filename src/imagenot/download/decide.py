"""The global decisions of a download, made over every selected row once all shards are fetched and cleaned.

In order: the text-in-image filter (with `text_filter=drop`), exact and near duplicates within the dataset and
against references, the train/val split with per-class caps and the class minimum, and the new class indices
(kept classes, renumbered 0..K-1 in their original order). Every row that does not reach the dataset ends with
exactly one reason, which `removed_table` lists. These steps read fingerprints only, never images, so a rerun
with other split or dedup settings costs seconds.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from imagenot.download.clean import FETCH_REASONS
from imagenot.download.config import DownloadConfig
from imagenot.download.dedup import Candidate, Reference, dedup
from imagenot.download.matches import Selection
from imagenot.download.splits import ClassSplit, assign_splits
from imagenot.errors import ImagenotError
from imagenot.wordnet.classes import ClassRow

log = logging.getLogger(__name__)

DUPLICATE_SOURCE_ID = "duplicate_source_id"
TEXT_IN_IMAGE = "text_in_image"


def stage_of(reason: str) -> str:
    """Which step removed a row, for removed.parquet's `stage` column."""
    if reason == DUPLICATE_SOURCE_ID:
        return "input"
    if reason == TEXT_IN_IMAGE:
        return "text"
    return "fetch" if reason in FETCH_REASONS else "decode"


@dataclass
class Decision:
    """What happens to every selected row (lists are per row id)."""

    reasons: list[str | None]  # fetch, decode, input or text reason; None for rows that reached dedup
    messages: list[str | None]
    dedup_of: dict[int, tuple[str, str, int]]  # row -> (reason, duplicate of, distance)
    dedup_counts: Counter[str]
    split_of: list[str | None]
    class_report: dict[int, ClassSplit]
    capped: set[int]
    caps: dict[str, Any]
    kept_labels: list[int]  # original labels of the kept classes, in order
    new_index: dict[int, int]  # original label -> label in the dataset
    final_classes: list[ClassRow]

    @property
    def kept(self) -> list[bool]:
        return [r is None and i not in self.dedup_of for i, r in enumerate(self.reasons)]


def resolve_caps(cfg: DownloadConfig, mine_info: dict[str, Any]) -> dict[str, Any]:
    """Per-class caps: explicit settings win; else the selection's own (max_per_class, val_per_class)."""
    params = (mine_info.get("selection") or {}).get("params") or {}
    total, val = params.get("max_per_class"), params.get("val_per_class") or 0
    train_cap = (total - val) if total else None
    val_cap = val if val else None
    source = "selection.json" if params else None
    if cfg.max_train_per_class is not None:
        train_cap, source = (None if cfg.max_train_per_class < 0 else cfg.max_train_per_class), "config"
    if cfg.max_val_per_class is not None:
        val_cap, source = (None if cfg.max_val_per_class < 0 else cfg.max_val_per_class), "config"
    return {"train": train_cap, "val": val_cap, "source": source}


def decide(sel: Selection, table: pa.Table, cfg: DownloadConfig, references: list[Reference]) -> Decision:
    """`table`: the cleaned fingerprints of every row, in row order (see pipeline._gather)."""
    reasons = table["reason"].to_pylist()
    messages = table["message"].to_pylist()
    if cfg.text_filter == "drop":
        for i, term in enumerate(table["text_match"].to_pylist()):
            if reasons[i] is None and term is not None:
                reasons[i], messages[i] = TEXT_IN_IMAGE, f"the image's recognised text contains {term!r}"

    sim = sel.table["similarity"].to_pylist()
    hashes = table["pixel_sha256"].to_pylist()
    phashes = table["phash"].to_pylist()
    candidates = [Candidate(i, hashes[i], phashes[i], (-(sim[i] if sim[i] is not None else 0.0), i))
                  for i in range(sel.num_rows) if reasons[i] is None]
    removals = dedup(candidates, cfg.near_dup_distance, references, within=cfg.dedup) if (
        cfg.dedup or references) else []
    source_ids = sel.table["source_id"].to_pylist()
    dedup_of: dict[int, tuple[str, str, int]] = {}
    for r in removals:
        other = r.duplicate_of
        if r.reason.startswith("duplicate"):
            other = source_ids[int(other)] or f"row {other}"
        dedup_of[r.row_id] = (r.reason, other, r.distance)
    kept = [reasons[i] is None and i not in dedup_of for i in range(sel.num_rows)]

    # a repeated source id is not another selected image: the split plan counts distinct rows only
    labels = sel.table["label"].to_pylist()
    given = sel.table["split"].to_pylist()
    distinct = [i for i in range(sel.num_rows) if i not in sel.duplicates]
    caps = resolve_caps(cfg, sel.mine_info)
    sub_split, class_report, sub_capped = assign_splits(
        [labels[i] for i in distinct], [given[i] for i in distinct], [kept[i] for i in distinct], seed=cfg.seed,
        val_fraction=cfg.val_fraction, min_per_class=cfg.min_images_per_class,
        min_val_per_class=cfg.min_val_per_class, keep_small=cfg.keep_small_classes, train_cap=caps["train"],
        val_cap=caps["val"])
    split_of: list[str | None] = [None] * sel.num_rows
    for j, i in enumerate(distinct):
        split_of[i] = sub_split[j]
    capped = {distinct[j] for j in sub_capped}
    classes_by_label = {c.index: c for c in sel.classes}
    kept_labels = [lab for lab in sorted(classes_by_label)
                   if lab in class_report and class_report[lab].status != "dropped"]
    if not kept_labels:
        raise ImagenotError(
            f"no class has {cfg.min_images_per_class} images after download (selected {sel.num_rows} rows, "
            f"{sum(kept)} usable); see the stats/ folder of {cfg.out} for failure reasons, or lower "
            "--min-images-per-class")
    new_index = {lab: i for i, lab in enumerate(kept_labels)}
    final_classes = [ClassRow(new_index[lab], c.wnid, c.name, c.lemmas, c.definition, c.query, c.lexname)
                     for lab, c in ((lab, classes_by_label[lab]) for lab in kept_labels)]
    return Decision(reasons, messages, dedup_of, Counter(r.reason for r in removals), split_of, class_report,
                    capped, caps, kept_labels, new_index, final_classes)


def removed_table(sel: Selection, d: Decision) -> pa.Table:
    """removed.parquet: every selected row that is not in the dataset, with its one reason."""
    labels = sel.table["label"].to_pylist()
    out: dict[str, list[Any]] = defaultdict(list)
    for i in range(sel.num_rows):
        stage = reason = msg = other = None
        dist = None
        if d.reasons[i] is not None:
            reason, msg = d.reasons[i], d.messages[i]
            stage = stage_of(reason)
            if reason == DUPLICATE_SOURCE_ID:
                other = f"row {sel.duplicates[i]}"
        elif i in d.dedup_of:
            reason, other, dist = d.dedup_of[i]
            stage = "contamination" if reason.startswith("contamination") else "dedup"
        elif i in d.capped:
            stage, reason = "cap", "over_cap"
            msg = "the class already has its share of higher-priority images"
        elif d.split_of[i] is None:
            stage, reason = "class", "class_below_minimum"
            rep = d.class_report[labels[i]]
            msg = f"class kept {rep.survived} images ({rep.val} val)"
        else:
            continue
        out["row_id"].append(i)
        out["stage"].append(stage)
        out["reason"].append(reason)
        out["message"].append(msg)
        out["duplicate_of"].append(other)
        out["distance"].append(dist)
    idx = pa.array(out["row_id"], pa.int64())
    base = sel.table.take(idx).select(["row_id", "source_id", "url", "wnid", "label", "split"])
    return (base.append_column("stage", pa.array(out["stage"], pa.string()))
            .append_column("reason", pa.array(out["reason"], pa.string()))
            .append_column("message", pa.array(out["message"], pa.string()))
            .append_column("duplicate_of", pa.array(out["duplicate_of"], pa.string()))
            .append_column("distance", pa.array(out["distance"], pa.int32())))
