"""From matches to the final dataset list: top-N classes with at least K images, capped, split train/val.

Reads `matches/*.parquet` (every match with its similarity) so the threshold and the selection can be redone
without re-mining. Randomness is seeded per class (`[seed, wnid offset]`), so a class's sample does not change
when other classes enter or leave the selection. About 30% of LAION urls no longer resolve, so `oversample`
keeps extra candidates: rows are written in priority order within each class and split, and the download
stage keeps the first ones that succeed.
The rows never sit in memory all at once: `select_folder` asks `select_engine.MatchQuery` (DuckDB within a
memory limit, spilling to disk) for per-class counts, decides the classes, caps, seeded orders and val
positions here class by class, and streams the chosen rows into selected.parquet (docs/scaling.md).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagenot.errors import ImagenotError
from imagenot.fileio import write_json
from imagenot.mining.config import DEFAULT_MEMORY_MB, SelectionParams
from imagenot.mining.select_engine import MatchQuery, PartFile
from imagenot.mining.selected import SELECTED_SCHEMA, write_selected
from imagenot.wordnet.classes import ClassRow, make_unique_lemmas, write_classes

log = logging.getLogger(__name__)


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


def _class_seed(wnid: str) -> int:
    return int(wnid[1:]) if wnid[1:].isdigit() else 0


def choose_classes(counts: dict[str, int], classes: list[ClassRow], params: SelectionParams) -> tuple[list[str],
                                                                                                   list[ClassRow]]:
    """(eligible wnids, final classes): the classes with at least K rows, then the N with the most rows
    (ties: mined order) or a seeded random draw of N among them (`class_choice`); labels follow mined order."""
    by_wnid = {c.wnid: c for c in classes}
    eligible = sorted((w for w in counts if w in by_wnid and counts[w] >= params.min_matches_per_class),
                      key=lambda w: (-counts[w], by_wnid[w].index))
    chosen = eligible[: params.num_classes] if params.num_classes else eligible
    if params.class_choice == "random" and params.num_classes and len(eligible) > params.num_classes:
        pool = sorted(eligible, key=lambda w: by_wnid[w].index)
        rng = np.random.default_rng([params.seed, 2])
        chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=params.num_classes, replace=False))]
    # Keep the mined order for labels (stable across reruns with different N), lemmas unique within the set.
    final = make_unique_lemmas(sorted((by_wnid[w] for w in chosen), key=lambda c: c.index))
    if len(final) != len(chosen):
        raise ImagenotError("internal: a chosen class lost all its lemmas to another chosen class")
    if params.num_classes and len(final) < params.num_classes:
        log.warning("only %d classes have at least %d images (asked for %d)", len(final), params.min_matches_per_class,
                    params.num_classes)
    return eligible, final


PLAN_SCHEMA = pa.schema([("wnid", pa.string()), ("label", pa.int32()), ("n_sel", pa.int64()),
                         ("ranked", pa.bool_())])
PERM_SCHEMA = pa.schema([("label", pa.int32()), ("member", pa.int64()), ("prio", pa.int64())])
VAL_SCHEMA = pa.schema([("label", pa.int32()), ("prio", pa.int64())])


def _plan_class(cls: ClassRow, available: int, with_sim: int, params: SelectionParams,
                perm: PartFile, val: PartFile) -> tuple[int, int, bool]:
    """One class's (selected, val, ranked), and its seeded parts: the cap takes the most similar rows (ties by
    source_id, then shard order) or, for the random cap and a class without similarities, a seeded
    permutation of its rows in shard order; the val split is a seeded draw of positions in that order."""
    n_sel = available
    if params.max_per_class:
        n_sel = min(n_sel, math.ceil(params.max_per_class * params.oversample))
    ranked = params.cap == "top" and with_sim > 0
    if not ranked:
        rng = np.random.default_rng([params.seed, _class_seed(cls.wnid)])
        members = rng.permutation(available)[:n_sel]
        perm.add(pa.table({"label": pa.array(np.full(n_sel, cls.index, dtype=np.int32)),
                           "member": pa.array(members.astype(np.int64)),
                           "prio": pa.array(np.arange(n_sel, dtype=np.int64))}))
    n_val = min(math.ceil(params.val_per_class * params.oversample), int(n_sel * params.max_val_fraction))
    rng = np.random.default_rng([params.seed, 1, _class_seed(cls.wnid)])
    val_pos = np.sort(rng.choice(n_sel, size=n_val, replace=False)).astype(np.int64)
    val.add(pa.table({"label": pa.array(np.full(n_val, cls.index, dtype=np.int32)), "prio": pa.array(val_pos)}))
    return n_sel, n_val, ranked


def _select(query: MatchQuery, classes: list[ClassRow], params: SelectionParams, threshold: float | None,
            work_dir: Path) -> tuple[list[ClassRow], Iterator[pa.RecordBatch], pa.Schema, dict[str, Any]]:
    """The selection over one MatchQuery: (final classes, the chosen rows as batches, their schema, report)."""
    params.check()
    totals = query.totals(threshold)
    if params.cap == "top" and params.max_per_class and totals.above and \
            not any(s for _, s in totals.per_class.values()):
        log.warning("--cap top without similarities (--no-embed): the cap keeps a seeded random sample")
    counts = {w: n for w, (n, _) in totals.per_class.items()}
    eligible, final = choose_classes(counts, classes, params)
    plan_table, per_class, perm_path, val_path = _plan_classes(final, totals.per_class, params, work_dir)
    batches = query.chosen_rows(plan_table, perm_path, val_path)
    schema = pa.schema([*SELECTED_SCHEMA, *query.corpus_fields])
    report = {
        "threshold": threshold,
        "threshold_applied": threshold is not None and totals.scored,
        "scored": totals.scored,
        "params": params.__dict__,
        "matches": totals.matches,
        "above_threshold": totals.above,
        "classes_with_matches": len(counts),
        "classes_eligible": len(eligible),
        "classes": len(final),
        "rows": sum(c["selected"] for c in per_class.values()),
        "per_class": per_class,
        "dropped_below_min": sorted(w for w in counts if counts[w] < params.min_matches_per_class),
        "duplicate_ids": totals.duplicates,
    }
    return final, batches, schema, report


def _plan_classes(final: list[ClassRow], per_wnid: dict[str, tuple[int, int]], params: SelectionParams,
                  work_dir: Path) -> tuple[pa.Table, dict[str, dict[str, Any]], Path | None, Path | None]:
    """Each final class's plan (PLAN_SCHEMA), its report entry, and the seeded parts (permutations, val
    positions) written to `work_dir` for the query's final ordered read."""
    perm = PartFile(work_dir / "perm.parquet", PERM_SCHEMA)
    val = PartFile(work_dir / "val.parquet", VAL_SCHEMA)
    plan: list[tuple[str, int, int, bool]] = []
    per_class: dict[str, dict[str, Any]] = {}
    for cls in final:
        available, with_sim = per_wnid[cls.wnid]
        n_sel, n_val, ranked = _plan_class(cls, available, with_sim, params, perm, val)
        plan.append((cls.wnid, cls.index, n_sel, ranked))
        per_class[cls.wnid] = {"label": cls.index, "name": cls.name, "available": available,
                               "selected": n_sel, "train": n_sel - n_val, "val": n_val}
    plan_table = pa.Table.from_pylist([dict(zip(PLAN_SCHEMA.names, p)) for p in plan], schema=PLAN_SCHEMA)
    return plan_table, per_class, perm.close(), val.close()


def select(
    matches: pa.Table,
    classes: list[ClassRow],
    params: SelectionParams,
    threshold: float | None,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> tuple[list[ClassRow], pa.Table, dict[str, Any]]:
    """Choose classes and rows of matches already in memory (deduplicated or not; small inputs, tests);
    returns (final classes reindexed, selected rows, a report). The same rule as `select_folder`."""
    with tempfile.TemporaryDirectory(prefix="imagenot-select-") as tmp, \
            MatchQuery(matches, Path(tmp), memory_mb) as query:
        final, batches, schema, report = _select(query, classes, params, threshold, Path(tmp))
        selected = pa.Table.from_batches([_conform(b, schema) for b in batches], schema=schema)
    return final, selected, report


def select_folder(
    matches_dir: Path,
    classes: list[ClassRow],
    params: SelectionParams,
    threshold: float | None,
    out_dir: Path,
    provenance: dict[str, Any] | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
    temp_dir: Path | None = None,
    query: MatchQuery | None = None,
) -> tuple[list[ClassRow], dict[str, Any]]:
    """Select from a matches folder of any size into out_dir (selected.parquet, classes.tsv, selection.json),
    never holding the matches in memory: DuckDB works within `memory_mb` and spills to a folder in
    `temp_dir` (default: out_dir), removed afterwards; or within an open `query` over that folder (`mine`'s,
    already deduplicated). Returns (final classes, report)."""
    if query is not None:
        return _select_into(query, classes, params, threshold, out_dir, provenance)
    with open_matches(matches_dir, out_dir, memory_mb, temp_dir) as own:
        return _select_into(own, classes, params, threshold, out_dir, provenance)


@contextmanager
def open_matches(matches_dir: Path, out_dir: Path, memory_mb: int = DEFAULT_MEMORY_MB,
                 temp_dir: Path | None = None) -> Iterator[MatchQuery]:
    """A MatchQuery over a matches folder whose database and spill files live in a folder of `temp_dir`
    (default: out_dir), removed afterwards. `mine` opens one for its summary, histograms and selection, so
    the matches are deduplicated once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".select-", dir=temp_dir or out_dir) as tmp, \
            MatchQuery(matches_dir, Path(tmp), memory_mb) as query:
        yield query


def _select_into(query: MatchQuery, classes: list[ClassRow], params: SelectionParams, threshold: float | None,
                 out_dir: Path, provenance: dict[str, Any] | None) -> tuple[list[ClassRow], dict[str, Any]]:
    final, batches, schema, report = _select(query, classes, params, threshold, query.work_dir)
    write_selection(out_dir, final, (_conform(b, schema) for b in batches), report, provenance, schema)
    return final, report


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """DuckDB's types (int64 labels, its string flavour) as selected.parquet's."""
    return pa.RecordBatch.from_arrays([batch.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema)


def write_selection(out_dir: Path, final: list[ClassRow], selected: pa.Table | Iterable[pa.RecordBatch],
                    report: dict[str, Any], provenance: dict[str, Any] | None = None,
                    schema: pa.Schema | None = None) -> None:
    """selected.parquet (`imagenot.mining.selected.write_selected`: a table, or record batches of `schema`
    written as they come), classes.tsv and selection.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_selected(out_dir / "selected.parquet", selected, schema, provenance)
    write_classes(out_dir / "classes.tsv", final)
    write_json(out_dir / "selection.json", report)
