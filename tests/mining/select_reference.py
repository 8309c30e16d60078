"""The selection as it was before issue 24 (whole matches table in memory), kept as the reference rule.

tests/mining/test_select_equivalence.py checks that the bounded-memory selection returns exactly these rows.
Only the default class choice ("most") existed then.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenot.errors import ImagenotError, InputError
from imagenot.mining.config import SelectionParams
from imagenot.mining.resolve import MATCH_SCHEMA, above
from imagenot.mining.selected import CORPUS_PREFIX, SELECTED_SCHEMA
from imagenot.wordnet.classes import ClassRow, make_unique_lemmas


def read_matches(matches_dir: Path) -> tuple[pa.Table, int]:
    """Every match in shard-name order, one row per (source_id, url): the one with the best similarity.

    Returns (table, duplicates removed). Kept corpus columns (`corpus_*`) come along."""
    files = sorted(matches_dir.glob("*.parquet"))
    if not files:
        raise InputError("no matches/*.parquet (run `imagenot mine` first)", matches_dir)
    tables = []
    for f in files:
        try:
            t = pq.read_table(f)
            extra = [c for c in t.column_names if c.startswith(CORPUS_PREFIX)]
            base = t.select(MATCH_SCHEMA.names).cast(MATCH_SCHEMA)
            for c in extra:
                base = base.append_column(c, t[c])
            tables.append(base.replace_schema_metadata(None))
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise InputError(f"unreadable matches file: {exc}", f) from None
    return best_per_source(pa.concat_tables(tables, promote_options="permissive"))


def best_per_source(table: pa.Table) -> tuple[pa.Table, int]:
    """One row per (source_id, url), the most similar one (ties and --no-embed: the first in shard order).

    The same image appears in several shards or rows of a corpus; deduplicating before scoring (the first copy
    wins) could lose a copy above the threshold behind one below it, so this runs after scoring."""
    n = table.num_rows
    if n < 2:
        return table, 0
    pos = pa.array(np.arange(n, dtype=np.int64))
    sim = pc.fill_null(table["similarity"].cast(pa.float64()), -np.inf)  # no similarity: after any similarity
    keyed = pa.table({"s": pc.fill_null(table["source_id"], ""), "u": pc.fill_null(table["url"], ""), "sim": sim,
                      "pos": pos})
    order = pc.sort_indices(keyed, sort_keys=[("s", "ascending"), ("u", "ascending"), ("sim", "descending"),
                                              ("pos", "ascending")])
    s = keyed["s"].take(order)
    u = keyed["u"].take(order)
    new = pc.or_(pc.not_equal(s.slice(1), s.slice(0, n - 1)), pc.not_equal(u.slice(1), u.slice(0, n - 1)))
    first = np.concatenate([[True], pc.fill_null(new, True).to_numpy(zero_copy_only=False)])
    keep = np.sort(order.to_numpy()[first])
    dups = n - len(keep)
    return (table.take(pa.array(keep)) if dups else table), dups


def _ranks(kept: pa.Table, params: SelectionParams) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's place in one sort by similarity (highest first, ties by source_id) and whether it has a
    similarity; None for the random cap. One sort of all rows, not one per class (1000 takes cost 0.5 s)."""
    if params.cap != "top" or kept.num_rows == 0:
        return None
    keyed = pa.table({"sim": pc.fill_null(kept["similarity"].cast(pa.float64()), -np.inf),
                      "sid": pc.fill_null(kept["source_id"], "")})
    order = pc.sort_indices(keyed, sort_keys=[("sim", "descending"), ("sid", "ascending")]).to_numpy()
    rank = np.empty(kept.num_rows, dtype=np.int64)
    rank[order] = np.arange(kept.num_rows)
    return rank, kept["similarity"].is_valid().to_numpy(zero_copy_only=False)


def _priority(members: np.ndarray, ranks: tuple[np.ndarray, np.ndarray] | None, params: SelectionParams,
              wnid: str) -> np.ndarray:
    """A class's rows in the order the cap takes them: highest similarity first (ties by source_id), or a
    seeded permutation (random cap, or a class without similarities)."""
    if ranks is not None and ranks[1][members].any():
        return members[np.argsort(ranks[0][members], kind="stable")]
    rng = np.random.default_rng([params.seed, int(wnid[1:]) if wnid[1:].isdigit() else 0])
    return members[rng.permutation(len(members))]


def reference_select(
    matches: pa.Table,
    classes: list[ClassRow],
    params: SelectionParams,
    threshold: float | None,
) -> tuple[list[ClassRow], pa.Table, dict[str, Any]]:
    """Choose classes and rows; returns (final classes reindexed, selected rows, a report)."""
    params.check()
    kept = above(matches, threshold)
    counts = Counter(kept["wnid"].to_pylist())
    by_wnid = {c.wnid: c for c in classes}
    eligible = sorted((w for w in counts if w in by_wnid and counts[w] >= params.min_matches_per_class),
                      key=lambda w: (-counts[w], by_wnid[w].index))
    chosen = eligible[: params.num_classes] if params.num_classes else eligible
    # Keep the mined order for labels (stable across reruns with different N), lemmas unique within the set.
    final = make_unique_lemmas(sorted((by_wnid[w] for w in chosen), key=lambda c: c.index))
    if len(final) != len(chosen):
        raise ImagenotError("internal: a chosen class lost all its lemmas to another chosen class")
    # Group rows by class once (a filter per class would cost classes x rows), then one take for all.
    kept = kept.combine_chunks()
    codes = pc.index_in(kept["wnid"], value_set=pa.array([c.wnid for c in final], pa.string()))
    codes_np = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False)
    order_all = np.argsort(codes_np, kind="stable")
    bounds = np.searchsorted(codes_np[order_all], np.arange(len(final) + 1) - 0.5)
    ranks = _ranks(kept, params)
    take: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    splits: list[str] = []
    per_class: dict[str, dict[str, Any]] = {}
    for k, cls in enumerate(final):
        members = order_all[bounds[k]: bounds[k + 1]]
        order = _priority(members, ranks, params, cls.wnid)
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
        for c in kept.column_names:
            if c.startswith(CORPUS_PREFIX):
                selected = selected.append_column(c, sel[c])
    else:
        selected = SELECTED_SCHEMA.empty_table()
        for c in kept.column_names:
            if c.startswith(CORPUS_PREFIX):
                selected = selected.append_column(c, pa.nulls(0, kept.schema.field(c).type))
    scored = matches.num_rows > 0 and matches["similarity"].null_count < matches.num_rows
    report = {
        "threshold": threshold,
        "threshold_applied": threshold is not None and scored,
        "scored": scored,
        "params": params.__dict__,
        "matches": matches.num_rows,
        "above_threshold": kept.num_rows,
        "classes_with_matches": len(counts),
        "classes_eligible": len(eligible),
        "classes": len(final),
        "rows": selected.num_rows,
        "per_class": per_class,
        "dropped_below_min": sorted(w for w in counts if counts[w] < params.min_matches_per_class),
    }
    return final, selected, report
