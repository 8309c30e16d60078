"""From matches to the final dataset list: top-N classes with at least K images, capped, split train/val.

Reads `matches/*.parquet` (every match with its similarity) so the threshold and the selection can be redone
without re-mining. Randomness is seeded per class (`[seed, wnid offset]`), so a class's sample does not change
when other classes enter or leave the selection. About 30% of LAION urls no longer resolve, so `oversample`
keeps extra candidates: rows are written in priority order within each class and split, and the download
stage keeps the first ones that succeed.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenot.errors import ImagenotError, InputError
from imagenot.fileio import atomic_path, write_json
from imagenot.mining.resolve import MATCH_SCHEMA, above
from imagenot.wordnet.classes import ClassRow, make_unique_lemmas, write_classes

log = logging.getLogger(__name__)

CAPS = ("top", "random")
SELECTED_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("wnid", pa.string()),
    ("label", pa.int32()), ("lemma", pa.string()), ("similarity", pa.float32()), ("split", pa.string()),
])


@dataclass(frozen=True)
class SelectionParams:
    num_classes: int | None = None  # None: every class with at least min_per_class images
    min_per_class: int = 1
    max_per_class: int | None = None  # None: no cap
    cap: str = "top"
    seed: int = 0
    val_per_class: int = 0
    oversample: float = 1.0
    max_val_fraction: float = 0.5  # a small class keeps at least half its images for training

    def check(self) -> None:
        if self.cap not in CAPS:
            raise ImagenotError(f"unknown --cap {self.cap!r}; known: {', '.join(CAPS)}")
        if self.oversample < 1.0:
            raise ImagenotError(f"--oversample must be >= 1 (got {self.oversample})")
        if self.min_per_class < 1 or (self.num_classes is not None and self.num_classes < 1):
            raise ImagenotError("--min-per-class and --num-classes must be at least 1")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ImagenotError("--max-per-class must be at least 1")
        if self.val_per_class < 0 or not 0 <= self.max_val_fraction <= 1:
            raise ImagenotError("--val-per-class must be >= 0 and max_val_fraction in [0, 1]")


def read_matches(matches_dir: Path) -> tuple[pa.Table, int]:
    """Every match in shard-name order, first occurrence of each source_id kept; returns (table, duplicates)."""
    files = sorted(matches_dir.glob("*.parquet"))
    if not files:
        raise InputError("no matches/*.parquet (run `imagenot mine` first)", matches_dir)
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f).select(MATCH_SCHEMA.names).cast(MATCH_SCHEMA))
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise InputError(f"unreadable matches file: {exc}", f) from None
    return drop_repeated_ids(pa.concat_tables(tables).replace_schema_metadata(None))


def drop_repeated_ids(table: pa.Table, column: str = "source_id") -> tuple[pa.Table, int]:
    """Keep the first row of each id: an id seen in two shards is one image, counted once."""
    ids = table[column].to_pylist()
    seen: set[str] = set()
    keep = [i for i, s in enumerate(ids) if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]
    dups = len(ids) - len(keep)
    if dups:
        table = table.take(pa.array(keep, pa.int64()))
    return table, dups


class _Rows:
    """Stands in for a class's rows when only their number matters (random cap)."""

    def __init__(self, n: int) -> None:
        self.num_rows = n


def _priority(rows: pa.Table | _Rows, params: SelectionParams, wnid: str) -> np.ndarray:
    """Row order within a class: highest similarity first (ties by source_id), or a seeded permutation."""
    rng = np.random.default_rng([params.seed, int(wnid[1:]) if wnid[1:].isdigit() else 0])
    n = rows.num_rows
    if isinstance(rows, _Rows):
        return rng.permutation(n)
    sim = rows["similarity"]
    if params.cap == "top" and sim.null_count < n:
        s = pc.fill_null(sim, -np.inf).to_numpy(zero_copy_only=False)
        ids = np.array(rows["source_id"].to_pylist(), dtype=object)
        return np.array(sorted(range(n), key=lambda i: (-s[i], ids[i])), dtype=np.int64)
    return rng.permutation(n)


def select(
    matches: pa.Table,
    classes: list[ClassRow],
    params: SelectionParams,
    threshold: float | None,
) -> tuple[list[ClassRow], pa.Table, dict[str, Any]]:
    """Choose classes and rows; returns (final classes reindexed, selected rows, a report)."""
    params.check()
    kept = above(matches, threshold)
    if params.cap == "top" and params.max_per_class and kept.num_rows and \
            kept["similarity"].null_count == kept.num_rows:
        log.warning("--cap top without similarities (--no-embed): the cap keeps a seeded random sample")
    counts = Counter(kept["wnid"].to_pylist())
    by_wnid = {c.wnid: c for c in classes}
    eligible = sorted((w for w in counts if w in by_wnid and counts[w] >= params.min_per_class),
                      key=lambda w: (-counts[w], by_wnid[w].index))
    chosen = eligible[: params.num_classes] if params.num_classes else eligible
    # Keep the mined order for labels (stable across reruns with different N), lemmas unique within the set.
    final = make_unique_lemmas(sorted((by_wnid[w] for w in chosen), key=lambda c: c.index))
    if len(final) != len(chosen):
        raise ImagenotError("internal: a chosen class lost all its lemmas to another chosen class")
    if params.num_classes and len(final) < params.num_classes:
        log.warning("only %d classes have at least %d images (asked for %d)", len(final), params.min_per_class,
                    params.num_classes)
    # Group rows by class once (a filter per class would cost classes x rows), then one take for all.
    kept = kept.combine_chunks()
    codes = pc.index_in(kept["wnid"], value_set=pa.array([c.wnid for c in final], pa.string()))
    codes_np = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False)
    order_all = np.argsort(codes_np, kind="stable")
    bounds = np.searchsorted(codes_np[order_all], np.arange(len(final) + 1) - 0.5)
    take: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    splits: list[str] = []
    per_class: dict[str, dict[str, Any]] = {}
    for k, cls in enumerate(final):
        members = order_all[bounds[k]: bounds[k + 1]]
        order = members[_priority(kept.take(pa.array(members)) if params.cap == "top" else _Rows(len(members)),
                                  params, cls.wnid)]
        n_sel = len(order)
        if params.max_per_class:
            n_sel = min(n_sel, math.ceil(params.max_per_class * params.oversample))
        order = order[:n_sel]
        n_val = min(math.ceil(params.val_per_class * params.oversample), int(n_sel * params.max_val_fraction))
        rng = np.random.default_rng([params.seed, 1, int(cls.wnid[1:]) if cls.wnid[1:].isdigit() else 0])
        val_pos = np.zeros(n_sel, dtype=bool)
        val_pos[rng.choice(n_sel, size=n_val, replace=False)] = True
        take.append(np.concatenate([order[~val_pos], order[val_pos]]))
        labels.append(np.full(n_sel, cls.index, dtype=np.int32))
        splits += ["train"] * (n_sel - n_val) + ["val"] * n_val
        per_class[cls.wnid] = {"label": cls.index, "name": cls.name, "available": counts[cls.wnid],
                               "selected": n_sel, "train": n_sel - n_val, "val": n_val}
    if take:
        sel = kept.take(pa.array(np.concatenate(take)))
        selected = pa.table({
            "source_id": sel["source_id"], "url": sel["url"], "caption": sel["caption"], "wnid": sel["wnid"],
            "label": pa.array(np.concatenate(labels)), "lemma": sel["lemma"], "similarity": sel["similarity"],
            "split": pa.array(splits, pa.string()),
        }, schema=SELECTED_SCHEMA)
    else:
        selected = SELECTED_SCHEMA.empty_table()
    report = {
        "threshold": threshold,
        "params": params.__dict__,
        "matches": matches.num_rows,
        "above_threshold": kept.num_rows,
        "classes_with_matches": len(counts),
        "classes_eligible": len(eligible),
        "classes": len(final),
        "rows": selected.num_rows,
        "per_class": per_class,
        "dropped_below_min": sorted(w for w in counts if counts[w] < params.min_per_class),
    }
    return final, selected, report


def write_selection(out_dir: Path, final: list[ClassRow], selected: pa.Table, report: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "selected.parquet") as tmp:
        pq.write_table(selected, tmp, compression="zstd")
    write_classes(out_dir / "classes.tsv", final)
    write_json(out_dir / "selection.json", report)
