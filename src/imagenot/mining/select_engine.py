"""The selection's and mine's summary's heavy lifting out of core: DuckDB over the matches, with a memory limit
and a spill folder.

LAION-2B-en x the 1000 ImageNot classes gives about 3.8e8 matches (docs/scaling.md); holding them in one Arrow
table costs about 0.45 GB per million rows. Here every step that touches all rows (deduplication by
(source_id, url), the threshold, the per-class counts, the per-class rank under the cap, the final ordered
read of the chosen rows) is a DuckDB query whose working memory is capped by `memory_mb` and which spills to
`work_dir` beyond it; Python only sees per-class numbers and the chosen rows, one record batch at a time.
`mine` asks the same session for its summary (counts per class before and after the threshold, per (class,
lemma) for the pool pass) and for what its histograms and quantiles need (streamed similarities, the sorted
values at given positions).
The rule itself (what is a duplicate, the order of the cap, the seeded draws) lives in
`imagenot.mining.selection`; this module only answers its questions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.errors import ImagenotError, InputError
from imagenot.mining.resolve import MATCH_SCHEMA
from imagenot.mining.selected import corpus_fields

log = logging.getLogger(__name__)

BATCH_ROWS = 8192  # rows per record batch handed back to Python
# Freed memory goes back to the system soon, and table writes buffer little: DuckDB's defaults (128 MB per
# thread kept, 512 MB before a bulk flush, 1.2 GB of row-group write buffer) sit outside memory_limit.
_ALLOCATOR = {"allocator_flush_threshold": "16MB", "allocator_bulk_deallocation_flush_threshold": "64MB",
              "write_buffer_row_group_memory_limit": "64MB", "allocator_background_threads": "true"}
ClassCounts = dict[str, tuple[int, int]]  # wnid -> (rows above the threshold, of which with a similarity)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def matches_files(matches_dir: Path) -> tuple[list[Path], list[pa.Field]]:
    """The matches shards in shard-name order and the kept corpus columns (`corpus_*`) any of them carries.

    Every file's footer is read up front so an unreadable or foreign file is a clear error, not a query
    failure halfway through."""
    files = sorted(matches_dir.glob("*.parquet"))
    if not files:
        raise InputError("no matches/*.parquet (run `imagenot mine` first)", matches_dir)
    extra: list[pa.Schema] = []
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"unreadable matches file: {exc}", f) from None
        missing = [n for n in MATCH_SCHEMA.names if n not in schema.names]
        if missing:
            raise InputError(f"unreadable matches file: no column {', '.join(missing)}", f)
        extra.append(pa.schema(corpus_fields(schema)))
    unified = pa.unify_schemas(extra, promote_options="permissive")
    return files, [unified.field(n) for n in unified.names]


@dataclass(frozen=True)
class Totals:
    """What the whole set of matches says, before any class is chosen."""

    raw: int  # match rows in the shards
    matches: int  # after deduplication by (source_id, url)
    scored: bool  # some match has a similarity (not --no-embed)
    above: int  # after the threshold (all rows when unscored or no threshold)
    per_class: ClassCounts

    @property
    def duplicates(self) -> int:
        return self.raw - self.matches


@dataclass(frozen=True)
class ClassMatches:
    """One class's deduplicated matches, before the threshold (mine's summary and histograms)."""

    wnid: str
    matched: int
    scored: int  # of which with a similarity
    first: tuple[int, int]  # (shard index, row) of its first match


class MatchQuery:
    """A DuckDB session over one matches folder (or a small in-memory table), deduplicated and thresholded.

    Use as a context manager; the database and its spill files live in `work_dir` and go with it."""

    def __init__(self, source: Path | pa.Table, work_dir: Path, memory_mb: int, threads: int | None = None) -> None:
        import duckdb

        self.work_dir, self.memory_mb = work_dir, memory_mb
        self._totals: tuple[float | None, Totals] | None = None
        self._error: type[Exception] = duckdb.Error
        config: dict[str, str | int | bool] = {
            "memory_limit": f"{memory_mb}MB", "temp_directory": str(work_dir / "spill"),
            "preserve_insertion_order": False}
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(str(work_dir / "select.duckdb"), config=config)
        self.con.execute("SET enable_progress_bar = false")
        for name, value in _ALLOCATOR.items():
            self.con.execute(f"SET {name} = '{value}'")
        if isinstance(source, pa.Table):
            self.corpus_fields = corpus_fields(source.schema)
            self._src = source.append_column("frow", pa.array(np.arange(source.num_rows, dtype=np.int64)))
            self.con.register("src", self._src)
            rel, fidx, frow = "src", "0", "frow"
        else:
            files, self.corpus_fields = matches_files(source)
            names = ", ".join(_literal(str(f)) for f in files)
            self.con.execute("CREATE TEMP TABLE files AS SELECT unnest([" + names + "]) AS filename, "
                             "CAST(unnest(range(" + str(len(files)) + ")) AS INTEGER) AS fidx")
            rel = ("(SELECT * FROM read_parquet([" + names + "], union_by_name=true, filename=true, "
                   "file_row_number=true) JOIN files USING (filename))")
            fidx, frow = "fidx", "file_row_number"
        corpus = "".join(f", {_ident(f.name)}" for f in self.corpus_fields)
        self.con.execute(
            f"CREATE TEMP VIEW raw AS SELECT source_id, url, caption, wnid, lemma, "
            f"CAST(similarity AS FLOAT) AS similarity{corpus}, {fidx} AS fidx, {frow} AS frow FROM {rel}")

    def __enter__(self) -> MatchQuery:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.con.close()

    def totals(self, threshold: float | None) -> Totals:
        """Deduplicate (spilled), apply the threshold, count per class; done once per session (mine's summary
        and its selection share it), so a second call must ask for the same threshold.

        Of the copies of one (source_id, url) the most similar wins (no similarity: after any similarity),
        ties by shard order then row."""
        if self._totals is not None:
            if self._totals[0] != threshold:
                raise ImagenotError(f"internal: matches counted at threshold {self._totals[0]}, asked {threshold}")
            return self._totals[1]
        totals = self._count(threshold)
        self._totals = (threshold, totals)
        return totals

    def _count(self, threshold: float | None) -> Totals:
        # Only the keys seen twice need a choice: count per key (a fixed-size state, spilled with the hash
        # table), then rank the copies of those keys alone. A `min` over a struct per key kept a sort-key blob
        # per group outside DuckDB's memory limit (1.9 GB peak RSS at 20M rows).
        key = "coalesce(source_id, '') AS s, coalesce(url, '') AS u"
        self._sql(f"CREATE TABLE dup AS SELECT {key} FROM raw GROUP BY ALL HAVING count(*) > 1")
        cols = "fidx, frow, wnid, similarity, coalesce(source_id, '') AS sid"
        self._sql(
            f"CREATE TABLE k AS SELECT {cols} FROM (SELECT *, {key} FROM raw) r ANTI JOIN dup USING (s, u) "
            f"UNION ALL SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY s, u ORDER BY "
            f"similarity DESC NULLS LAST, fidx, frow) AS copy FROM (SELECT *, {key} FROM raw) r SEMI JOIN dup "
            "USING (s, u)) WHERE copy = 1")
        raw = self._one("SELECT count(*) FROM raw")
        matches, with_sim = self.con.execute("SELECT count(*), count(similarity) FROM k").fetchone() or (0, 0)
        scored = with_sim > 0
        cond = _above(threshold, scored)
        self.con.execute(f"CREATE TEMP VIEW kept AS SELECT * FROM k WHERE {cond}")
        per_class = {w: (int(n), int(s)) for w, n, s in self.con.execute(
            "SELECT wnid, count(*), count(similarity) FROM kept GROUP BY wnid").fetchall()}
        return Totals(raw, int(matches), scored, sum(n for n, _ in per_class.values()), per_class)

    def class_matches(self) -> list[ClassMatches]:
        """Per class over the deduplicated matches (after `totals`): rows, rows with a similarity, and where the
        class first appears (shard, row), which orders classes of equal size as a pass over the shards would."""
        rows = self._fetch("SELECT wnid, count(*), count(similarity), min({'f': fidx, 'r': frow}) FROM k "
                           "WHERE wnid IS NOT NULL GROUP BY wnid")
        return [ClassMatches(w, int(n), int(s), (int(first["f"]), int(first["r"]))) for w, n, s, first in rows]

    def lemma_counts(self, threshold: float | None) -> list[tuple[str, str, int]]:
        """(wnid, lemma, rows) of the matches as written (no deduplication: the pool pass counts every match)
        above the threshold (every row when there is none or no row has a similarity), in order of each
        pair's first (shard, row): the order in which a pass over the shards would first count it."""
        scored = self._one("SELECT count(similarity) FROM raw") > 0
        cond = _above(threshold, scored)
        rows = self._fetch(f"SELECT wnid, lemma, count(*), min({{'f': fidx, 'r': frow}}) AS first FROM raw "
                           f"WHERE {cond} GROUP BY wnid, lemma")
        rows.sort(key=lambda r: (r[3]["f"], r[3]["r"]))
        return [(w, lemma, int(n)) for w, lemma, n, _ in rows]

    def min_similarity(self) -> float | None:
        """The lowest similarity of the deduplicated matches (after `totals`), None when none has one."""
        rows = self._fetch("SELECT min(similarity) FROM k")
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def similarities(self, batch_rows: int = 65536) -> Iterator[pa.RecordBatch]:
        """(wnid, similarity) of every deduplicated match with a similarity (after `totals`), in batches."""
        try:
            yield from self.con.sql("SELECT wnid, similarity FROM k WHERE similarity IS NOT NULL").to_arrow_reader(
                batch_rows)
        except self._error as exc:
            raise _failed(exc, self.memory_mb) from exc

    def similarities_at(self, wanted: pa.Table) -> pa.Table:
        """The similarities at the asked positions (wanted: wnid, i) of each class's similarities in ascending
        order (after `totals`): a sort per class that spills, not every value of a class in memory, so exact
        quantiles cost only the rows around each quantile. Returns wnid, i, similarity."""
        self.con.register("wanted", wanted)
        try:
            return self.con.sql(
                "SELECT wnid, i, similarity FROM (SELECT wnid, similarity, row_number() OVER (PARTITION BY wnid "
                "ORDER BY similarity) - 1 AS i FROM k WHERE similarity IS NOT NULL) SEMI JOIN wanted USING (wnid, i)"
            ).to_arrow_table()
        except self._error as exc:
            raise _failed(exc, self.memory_mb) from exc
        finally:
            self.con.unregister("wanted")

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql).fetchall()
        except self._error as exc:
            raise _failed(exc, self.memory_mb) from exc

    def _one(self, sql: str) -> int:
        row = self.con.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def chosen_rows(self, plan: pa.Table, perm: Path | None, val: Path | None,
                    batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The chosen rows in output order, as record batches of the selected.parquet columns.

        `plan` has one row per chosen class: wnid, label, n_sel, ranked (order by similarity, else by the
        `perm` file's seeded order of the class's rows in shard order). `perm` (label, member, prio) and `val`
        (label, prio) are parquet files the caller wrote class by class; rows come class by class (label
        order), train before val, each in priority order."""
        self.con.register("plan", plan)
        perm_rel = f"read_parquet({_literal(str(perm))})" if perm else \
            "(SELECT 0::INTEGER AS label, 0::BIGINT AS member, 0::BIGINT AS prio WHERE FALSE)"
        val_rel = f"read_parquet({_literal(str(val))})" if val else \
            "(SELECT 0::INTEGER AS label, 0::BIGINT AS prio WHERE FALSE)"
        self._sql(
            "CREATE TABLE s AS "
            "SELECT fidx, frow, label, prio FROM (SELECT k.fidx, k.frow, p.label, p.n_sel, row_number() OVER ("
            "PARTITION BY p.label ORDER BY k.similarity DESC NULLS LAST, k.sid, k.fidx, k.frow) - 1 AS prio "
            "FROM kept k JOIN plan p USING (wnid) WHERE p.ranked) WHERE prio < n_sel "
            "UNION ALL "
            "SELECT q.fidx, q.frow, q.label, pm.prio FROM (SELECT k.fidx, k.frow, p.label, row_number() OVER ("
            "PARTITION BY p.label ORDER BY k.fidx, k.frow) - 1 AS member FROM kept k JOIN plan p USING (wnid) "
            f"WHERE NOT p.ranked) q JOIN {perm_rel} pm ON pm.label = q.label AND pm.member = q.member")
        # The payload (urls, captions) joins the chosen keys into a table on disk first, then one external
        # sort puts it in output order: joining and sorting in one query held more than the memory limit.
        corpus = "".join(f", r.{_ident(f.name)}" for f in self.corpus_fields)
        self._sql(
            "CREATE TABLE o AS SELECT r.source_id, r.url, r.caption, r.wnid, s.label, r.lemma, r.similarity, "
            f"v.prio IS NOT NULL AS is_val, s.prio{corpus} FROM raw r JOIN s ON r.fidx = s.fidx AND "
            f"r.frow = s.frow LEFT JOIN {val_rel} v ON v.label = s.label AND v.prio = s.prio")
        kept_cols = "".join(f", {_ident(f.name)}" for f in self.corpus_fields)
        try:
            # small batches: DuckDB converts a few ahead, outside its memory limit
            yield from self.con.sql(
                "SELECT source_id, url, caption, wnid, label, lemma, similarity, "
                f"CASE WHEN is_val THEN 'val' ELSE 'train' END AS split{kept_cols} FROM o "
                "ORDER BY label, is_val, prio").to_arrow_reader(batch_rows)
        except self._error as exc:
            raise _failed(exc, self.memory_mb) from exc

    def _sql(self, sql: str) -> None:
        try:
            self.con.execute(sql)
        except self._error as exc:
            raise _failed(exc, self.memory_mb) from exc


def _above(threshold: float | None, scored: bool) -> str:
    """The threshold as a SQL condition: strictly above it (a null similarity is not), or every row when
    there is no threshold or no match has a similarity (--no-embed), as `resolve.above` reads it."""
    return f"CAST(similarity AS DOUBLE) > {float(threshold)!r}" if threshold is not None and scored else "TRUE"


def _failed(exc: Exception, memory_mb: int) -> ImagenotError:
    """DuckDB's own error (out of memory, out of disk) as one the CLI prints without a traceback."""
    return ImagenotError(f"the selection query failed within --selection-memory-mb {memory_mb}: "
                         f"{str(exc).splitlines()[0]} (raise --selection-memory-mb, or give "
                         "--selection-temp-dir a disk with more room)")


class PartFile:
    """A helper table the caller fills class by class (seeded orders, validation positions), written as parquet
    so DuckDB reads it from disk: Python holds one class's part at a time."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self._writer: pq.ParquetWriter | None = None

    def add(self, part: pa.Table) -> None:
        if part.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        self._writer.write_table(part.cast(self.schema))

    def close(self) -> Path | None:
        """The file, or None when nothing was added."""
        if self._writer is None:
            return None
        self._writer.close()
        return self.path
