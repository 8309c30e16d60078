"""One shard -> its candidate matches and the count of every row it dropped and why.

This is the CPU-bound part of mining and the unit both engines distribute: it reads a shard in batches,
drops unusable rows (counted by reason), runs the lemma automaton and keeps, per matched caption, the classes it
hit. Everything it needs travels in one picklable `ScanContext`, so a worker process or a Ray task can run it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagenot.mining.corpus import Columns, MissingColumnsError, Shard, read_batches
from imagenot.mining.matcher import LemmaMatcher
from imagenot.mining.normalize import check_captions
from imagenot.mining.schemas import SafetyRule
from imagenot.mining.selected import corpus_column

log = logging.getLogger(__name__)

MULTI_POLICIES = ("drop", "best")
COUNTERS = (
    "rows_read", "malformed_rows", "null_captions", "empty_captions", "non_string_captions", "invalid_utf8",
    "oversized_captions", "safety_dropped", "watermark_dropped", "small_image_dropped", "null_urls", "url_refused",
    "unmatched", "multi_class_dropped", "multi_class_candidates", "candidates",
)

CANDIDATE_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()),
    ("classes", pa.list_(pa.int32())), ("lemmas", pa.list_(pa.int32())),
])


@dataclass(frozen=True)
class ScanContext:
    matcher: LemmaMatcher
    columns: Columns
    safety: SafetyRule = SafetyRule("NSFW", "categorical", keep_values=("UNLIKELY",))
    allow_local: bool = False  # keep file:// urls (a corpus the user declared local)
    max_caption_bytes: int = 65536
    batch_rows: int = 65536
    keep_multi: bool = False  # keep captions hitting several classes (--multi best, pool pass 1)
    watermark_max: float | None = None  # drop rows whose watermark score is >= this (missing score: kept)
    min_image_size: int | None = None  # drop rows whose metadata width or height is below this (missing: kept)


@dataclass
class ShardScan:
    shard: Shard
    candidates: pa.Table  # CANDIDATE_SCHEMA
    stats: dict[str, int]
    seconds: float
    error: str | None = None  # the shard could not be read; candidates are empty


def _url_mask(url: pa.Array, allow_local: bool) -> tuple[pa.Array, pa.Array]:
    """(present, allowed): a url is present when non-empty; allowed when http(s), or file:// if local."""
    present = pc.fill_null(pc.greater(pc.utf8_length(url), 0), False)
    allowed = pc.or_(pc.starts_with(url, "http://", ignore_case=True),
                     pc.starts_with(url, "https://", ignore_case=True))
    if allow_local:
        allowed = pc.or_(allowed, pc.starts_with(url, "file://", ignore_case=True))
    return present, pc.fill_null(allowed, False)


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def as_float(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A metadata column as float64; text that is not a number (csv, jsonl) becomes null."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_decimal(col.type):
        return col.cast(pa.float64())
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.float64())
    text = col.cast(pa.string())
    try:
        return text.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values: list[float | None] = []
        for v in text.to_pylist():
            try:
                values.append(float(v) if v is not None else None)
            except ValueError:
                values.append(None)
        return pa.array(values, pa.float64())


def _drop(keep: pa.Array, good: pa.Array, stats: Counter[str], counter: str) -> pa.Array:
    good = pc.fill_null(good, False)
    if isinstance(good, pa.ChunkedArray):
        good = good.combine_chunks()
    stats[counter] += _count(pc.and_not(keep, good))
    return pc.and_(keep, good)


def metadata_filters(table: pa.Table, keep: pa.Array, ctx: ScanContext, stats: Counter[str]) -> pa.Array:
    """Safety, watermark and image-size filters from the corpus's own metadata (before any download)."""
    cols, rule = ctx.columns, ctx.safety
    if rule.column is not None:
        if rule.column not in table.column_names:
            keep = _drop(keep, pa.array([False] * table.num_rows), stats, "safety_dropped")
        elif rule.kind == "score":
            keep = _drop(keep, pc.less(as_float(table[rule.column]), rule.max), stats, "safety_dropped")
        else:
            value = table[rule.column].cast(pa.string())
            keep = _drop(keep, pc.is_in(value, value_set=pa.array(list(rule.keep_values), pa.string())), stats,
                         "safety_dropped")
    if ctx.watermark_max is not None and cols.watermark and cols.watermark in table.column_names:
        score = as_float(table[cols.watermark])
        keep = _drop(keep, pc.or_kleene(pc.is_null(score), pc.less(score, ctx.watermark_max)), stats,
                     "watermark_dropped")
    if ctx.min_image_size is not None:
        for c in (cols.width, cols.height):
            if c and c in table.column_names:
                size = as_float(table[c])
                keep = _drop(keep, pc.or_kleene(pc.is_null(size), pc.greater_equal(size, ctx.min_image_size)),
                             stats, "small_image_dropped")
    return keep


def scan_batch(table: pa.Table, row_start: int, shard_name: str, ctx: ScanContext,
               stats: Counter[str]) -> pa.Table:
    """Filter and match one batch; returns its candidate rows (CANDIDATE_SCHEMA + kept corpus columns)."""
    cols = ctx.columns
    n = table.num_rows
    stats["rows_read"] += n
    check = check_captions(table[cols.text], ctx.max_caption_bytes)
    stats["empty_captions"] += check.empty
    stats["non_string_captions"] += check.non_string
    stats["invalid_utf8"] += check.invalid_utf8
    stats["oversized_captions"] += check.oversized
    stats["null_captions"] += check.null
    keep = check.text.is_valid()
    keep = metadata_filters(table, keep, ctx, stats)
    url = table[cols.url].cast(pa.string())
    if isinstance(url, pa.ChunkedArray):
        url = url.combine_chunks()
    present, allowed = _url_mask(url, ctx.allow_local)
    stats["null_urls"] += _count(pc.and_not(keep, present))
    keep = pc.and_(keep, present)
    stats["url_refused"] += _count(pc.and_not(keep, allowed))
    keep = pc.and_(keep, allowed)
    text = pc.if_else(keep, check.text, pa.scalar(None, pa.string()))
    hits = ctx.matcher.match(text)
    eligible = _count(keep)
    if len(hits) == 0:
        stats["unmatched"] += eligible
        return CANDIDATE_SCHEMA.empty_table()
    rows, first, per_row = np.unique(hits.row, return_index=True, return_counts=True)
    multi = per_row > 1
    stats["unmatched"] += eligible - len(rows)
    if ctx.keep_multi:
        stats["multi_class_candidates"] += int(multi.sum())
        sel_rows, sel_first, sel_count = rows, first, per_row
    else:
        stats["multi_class_dropped"] += int(multi.sum())
        sel_rows, sel_first, sel_count = rows[~multi], first[~multi], per_row[~multi]
    if len(sel_rows) == 0:
        return CANDIDATE_SCHEMA.empty_table()
    take = np.repeat(sel_first, sel_count) + (np.arange(sel_count.sum()) - np.repeat(np.cumsum(sel_count) - sel_count,
                                                                                       sel_count))
    offsets = pa.array(np.concatenate([[0], np.cumsum(sel_count)]).astype(np.int32))
    classes = pa.ListArray.from_arrays(offsets, pa.array(hits.cls[take], pa.int32()))
    lemmas = pa.ListArray.from_arrays(offsets, pa.array(hits.lemma[take], pa.int32()))
    idx = pa.array(sel_rows)
    fallback = [f"{shard_name}:{row_start + int(r)}" for r in sel_rows]
    if cols.id and cols.id in table.column_names:
        ids = table[cols.id].take(idx).cast(pa.string())
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        ids = pc.coalesce(ids, pa.array(fallback, pa.string()))
    else:
        ids = pa.array(fallback, pa.string())
    out = pa.table([ids, url.take(idx), check.text.take(idx), classes, lemmas], schema=CANDIDATE_SCHEMA)
    for c in cols.keep:
        out = out.append_column(corpus_column(c), table[c].take(idx) if c in table.column_names
                                else pa.nulls(len(idx)))
    return out


def scan_shard(shard: Shard, ctx: ScanContext) -> ShardScan:
    """Scan a whole shard. A shard that cannot be read yields an error and no rows: never half a shard."""
    t0 = time.perf_counter()
    stats: Counter[str] = Counter()
    parts: list[pa.Table] = []
    try:
        for raw in read_batches(shard, ctx.columns, ctx.batch_rows):
            stats["malformed_rows"] += raw.malformed
            stats["invalid_utf8"] += raw.invalid_utf8
            stats["rows_read"] += raw.malformed + raw.invalid_utf8
            stats["non_string_captions"] += raw.non_string
            stats["null_captions"] -= raw.non_string  # the reader nulled them; count them once, as non-string
            if raw.table.num_rows:
                parts.append(scan_batch(raw.table, raw.row_start, shard.id_name, ctx, stats))
    except MissingColumnsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure (truncated file, bad gzip, bad parquet) ends this shard only
        log.warning("unreadable shard %s: %s: %s", shard.path, type(exc).__name__, exc)
        return ShardScan(shard, CANDIDATE_SCHEMA.empty_table(), {}, time.perf_counter() - t0,
                         error=f"{type(exc).__name__}: {exc}")
    parts = [p for p in parts if p.num_rows]
    table = pa.concat_tables(parts, promote_options="permissive") if parts else CANDIDATE_SCHEMA.empty_table()
    stats["candidates"] += table.num_rows
    out = {k: int(stats.get(k, 0)) for k in COUNTERS}
    return ShardScan(shard, table, out, time.perf_counter() - t0)
