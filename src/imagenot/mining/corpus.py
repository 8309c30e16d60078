"""Image-text corpora as streams of Arrow record batches: parquet, csv, tsv and jsonl shards (and .gz).

LAION-scale metadata arrives as many shards of millions of rows, with column names that differ between
LAION, DataComp and COYO (`schemas.py` names them). A shard is read in batches so memory stays bounded whatever
its size, only the columns mining needs are read, and a bad row costs that row, not the shard (counted, never
silent).
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.errors import InputError
from imagenot.mining.normalize import plain_text_type

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "tsv", "jsonl")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".json": "jsonl"}
CSV_BLOCK_BYTES = 64 << 20  # a csv row must fit in one block; LAION captions with megabytes of text exist


class MissingColumnsError(InputError):
    """The corpus lacks a required column: a setting to fix, not a damaged shard."""


@dataclass(frozen=True)
class Columns:
    """Corpus column names mining reads; every one but text and url may be absent (empty string: not read).

    `keep` are corpus columns carried into the matches as `corpus_<name>` (`--keep-columns`)."""

    text: str = "TEXT"
    url: str = "URL"
    id: str = "SAMPLE_ID"
    safety: str = "NSFW"
    width: str = ""
    height: str = ""
    watermark: str = ""
    keep: tuple[str, ...] = ()

    def required(self) -> list[str]:
        return [self.text, self.url]

    def optional(self) -> list[str]:
        out: list[str] = []
        for c in (self.id, self.safety, self.width, self.height, self.watermark, *self.keep):
            if c and c not in out and c not in (self.text, self.url):
                out.append(c)
        return out


@dataclass(frozen=True)
class Shard:
    """A corpus file, or a run of row groups of a large parquet file (`row_groups`, `row_start`)."""

    path: str
    name: str  # output file stem, unique within the corpus
    format: str
    row_groups: tuple[int, ...] | None = None  # None: the whole file
    row_start: int = 0  # the first row of this part within the file (for `<shard>:<row>` ids)
    file_name: str | None = None  # the whole file's name, for a part

    @property
    def id_name(self) -> str:
        """The name in fallback source ids `<name>:<row>`: the file's, so ids do not depend on parts."""
        return self.file_name or self.name

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)


@dataclass
class RawBatch:
    """A batch of rows with the corpus' own column names, plus row-level problems the reader met."""

    table: pa.Table
    row_start: int  # index of the batch's first row within its shard
    malformed: int = 0  # rows the parser could not read at all (not in `table`)
    invalid_utf8: int = 0  # rows dropped by the reader because they were not UTF-8 (jsonl)
    non_string: int = 0  # captions the reader already nulled because they were not strings (jsonl)


def shard_format(path: str, forced: str | None = None) -> str | None:
    if forced:
        return forced
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _SUFFIXES.get(os.path.splitext(name)[1])


def _stem(rel: str) -> str:
    name = rel[:-3] if rel.lower().endswith(".gz") else rel
    base, ext = os.path.splitext(name)
    if ext.lower() in _SUFFIXES:
        name = base
    return name.replace(os.sep, "__").replace("/", "__")


def list_shards(spec: str, forced_format: str | None = None) -> list[Shard]:
    """Shards of a corpus given as a file, a directory (searched recursively) or a glob, in sorted order."""
    if forced_format and forced_format not in FORMATS:
        raise InputError(f"unknown corpus format {forced_format!r}; known: {', '.join(FORMATS)}")
    p = Path(spec)
    if p.is_file():
        paths, root = [str(p)], str(p.parent)
    elif p.is_dir():
        paths, skipped = [], []
        for x in sorted(p.rglob("*")):
            if not x.is_file():
                continue
            if any(part.startswith(".") for part in x.relative_to(p).parts):
                skipped.append(f"{x} (hidden)")
            elif shard_format(str(x), forced_format) is None:
                skipped.append(f"{x} (not {'/'.join(FORMATS)})")
            else:
                paths.append(str(x))
        if skipped:
            log.warning("%s: skipped %d file(s) that are not corpus shards: %s%s", spec, len(skipped),
                        ", ".join(skipped[:5]), ", ..." if len(skipped) > 5 else "")
        root = str(p)
    else:
        paths = sorted(x for x in glob.glob(spec, recursive=True) if os.path.isfile(x))
        root = os.path.commonpath([os.path.dirname(x) for x in paths]) if paths else ""
        if not paths:
            raise InputError("no such file, directory or matching glob", spec)
    shards = []
    seen: dict[str, int] = {}
    for path in paths:
        fmt = shard_format(path, forced_format)
        if fmt is None:
            raise InputError(f"unknown shard format (expected one of {', '.join(_SUFFIXES)}, optionally .gz; "
                             "or pass --format)", path)
        name = _stem(os.path.relpath(path, root) if root else os.path.basename(path))
        if name in seen:
            seen[name] += 1
            name = f"{name}-{seen[name]}"
        else:
            seen[name] = 0
        shards.append(Shard(path, name, fmt))
    if not shards:
        raise InputError(f"no shards found (looked for {', '.join(sorted(set(_SUFFIXES)))} files)", spec)
    return shards


def _missing(found: list[str], columns: Columns, path: str) -> tuple[list[str], list[str]]:
    missing = [c for c in columns.required() if c not in found]
    if missing:
        raise MissingColumnsError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(found) or '(none)'} "
            "(set --text-col / --url-col)", path)
    present = columns.required() + [c for c in columns.optional() if c in found]
    return present, [c for c in columns.optional() if c not in found]


def shard_columns(shard: Shard) -> list[str]:
    """The column names of a shard (reads only its header or footer)."""
    if shard.format == "parquet":
        return list(pq.ParquetFile(shard.path).schema_arrow.names)
    if shard.format in ("csv", "tsv"):
        return _csv_header(shard)
    for batch in _jsonl_batches(shard, 64):
        return list(batch.table.column_names)
    return []


def check_columns(shard: Shard, columns: Columns) -> list[str]:
    """Raise an error naming missing and found columns; return the optional columns the shard lacks."""
    return _missing(shard_columns(shard), columns, shard.path)[1]


def _csv_header(shard: Shard) -> list[str]:
    opener: Any = gzip.open if shard.path.lower().endswith(".gz") else open
    with opener(shard.path, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    if shard.format == "tsv":
        return first.split("\t")
    return next(csv.reader(io.StringIO(first)), [])


def split_shards(shards: list[Shard], part_rows: int) -> list[Shard]:
    """Large parquet files become parts of whole row groups of about `part_rows` rows, so that workers share
    one big file; the parts do not depend on the number of workers, so outputs are the same for any count."""
    out: list[Shard] = []
    for shard in shards:
        if shard.format != "parquet" or part_rows <= 0:
            out.append(shard)
            continue
        try:
            meta = pq.ParquetFile(shard.path).metadata
        except Exception:  # noqa: BLE001 - an unreadable file is reported by its scan, whole
            out.append(shard)
            continue
        if meta.num_rows <= part_rows or meta.num_row_groups < 2:
            out.append(shard)
            continue
        groups: list[int] = []
        rows = start = 0
        parts: list[tuple[tuple[int, ...], int]] = []
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= part_rows:
                parts.append((tuple(groups), start))
                start += rows
                groups, rows = [], 0
        if groups:
            parts.append((tuple(groups), start))
        for k, (gs, first) in enumerate(parts):
            out.append(Shard(shard.path, f"{shard.name}@{k:04d}", shard.format, gs, first, shard.name))
    return out


def read_batches(shard: Shard, columns: Columns, batch_rows: int = 65536) -> Iterator[RawBatch]:
    """Stream a shard's rows as batches holding the mining columns that exist in it."""
    if shard.format == "parquet":
        yield from _parquet_batches(shard, columns, batch_rows)
    elif shard.format in ("csv", "tsv"):
        yield from _csv_batches(shard, columns, batch_rows)
    elif shard.format == "jsonl":
        first = True
        for b in _jsonl_batches(shard, batch_rows, columns):
            if first and b.table.num_rows:
                _missing(b.table.column_names, columns, shard.path)
                first = False
            yield b
    else:
        raise InputError(f"unknown format {shard.format!r}", shard.path)


def check_caption_type(schema: pa.Schema | None, column: str, path: str) -> None:
    """A caption column that holds no text (numbers, lists, timestamps) is an error naming it and its type:
    every caption would be dropped as non-string and nothing would match. Text in any Arrow layout
    (dictionary-encoded, large, view) is read as text. `schema` None (csv, jsonl): checked per row instead."""
    if schema is None or column not in schema.names:
        return
    t = schema.field(column).type
    if plain_text_type(t) is None:
        raise InputError(f"caption column {column!r} holds {t}, not text; name the caption column with "
                         "--text-col", path)


def _parquet_batches(shard: Shard, columns: Columns, batch_rows: int) -> Iterator[RawBatch]:
    pf = pq.ParquetFile(shard.path)
    present, _ = _missing(list(pf.schema_arrow.names), columns, shard.path)
    check_caption_type(pf.schema_arrow, columns.text, shard.path)
    start = shard.row_start
    groups = list(shard.row_groups) if shard.row_groups is not None else None
    for rb in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=present, use_threads=False):
        yield RawBatch(pa.Table.from_batches([rb]), start)
        start += rb.num_rows


def _field(value: str, caption: bool) -> bytes | str | None:
    """A csv field: captions as bytes (UTF-8 is checked later, per row), other fields as text or null."""
    if caption:
        return value.encode("utf-8", "surrogateescape")
    if value == "":
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Lines:
    """Physical lines of a text file with their numbers, and a way to put lines back (to re-parse them)."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.number = 0  # number of the last line handed out
        self._back: list[tuple[int, str]] = []
        self.taken: list[tuple[int, str]] = []  # lines handed out since the last `mark()`

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            no, line = self._back.pop()
        else:
            raw = self._fh.readline()
            if not raw:
                raise StopIteration
            self.number += 1
            no, line = self.number, raw
        self.taken.append((no, line))
        return line

    def mark(self) -> None:
        self.taken = []

    def put_back(self, lines: list[tuple[int, str]]) -> None:
        self._back.extend(reversed(lines))


def _csv_batches(shard: Shard, columns: Columns, batch_rows: int) -> Iterator[RawBatch]:
    """csv/tsv through Python's csv module, record by record, so that nothing is lost silently.

    A record with the wrong number of fields is counted as malformed with a warning naming file:line, and
    when it spanned several physical lines (an unclosed quote swallows the lines after it) the lines after its
    first are parsed again as records of their own: every physical line ends up in exactly one record or in
    one malformed row, so a shard can never pass as complete with rows missing. A field value that is not
    UTF-8 keeps its row (its caption is counted as invalid UTF-8 later)."""
    header = _csv_header(shard)
    present, _ = _missing(header, columns, shard.path)
    pos = [header.index(c) for c in present]
    tsv = shard.format == "tsv"
    opener: Any = gzip.open if shard.path.lower().endswith(".gz") else open
    malformed = 0
    warned = 0
    rows: list[list[bytes | str | None]] = []
    start = 0
    csv.field_size_limit(max(csv.field_size_limit(), CSV_BLOCK_BYTES))

    def flush() -> RawBatch:
        cols = {c: pa.array([r[k] for r in rows], pa.binary() if c == columns.text else pa.string())
                for k, c in enumerate(present)}
        return RawBatch(pa.table(cols), start, malformed=malformed)

    def bad(line_no: int, why: str) -> None:
        nonlocal malformed, warned
        malformed += 1
        if warned < 20:
            log.warning("%s:%d: malformed %s row skipped (%s)", shard.path, line_no, shard.format, why)
        warned += 1

    with opener(shard.path, "rb") as fb:
        text = io.TextIOWrapper(fb, encoding="utf-8", errors="surrogateescape", newline="")
        lines = _Lines(text)
        next(lines)  # header
        lines.mark()
        while True:
            reader = csv.reader(lines, delimiter="\t" if tsv else ",",
                                quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=True)
            restart = False
            while True:
                try:
                    rec = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    taken = lines.taken
                    bad(taken[0][0] if taken else lines.number, str(exc))
                    lines.put_back(taken[1:])
                    lines.mark()
                    restart = True  # the reader's state is spent: a new one continues after the bad line
                    break
                taken = lines.taken
                lines.mark()
                if not rec or (len(rec) == 1 and not rec[0]):
                    continue
                if len(rec) != len(header):
                    bad(taken[0][0], f"{len(rec)} fields, expected {len(header)}"
                        + (f", spanning lines {taken[0][0]}-{taken[-1][0]}" if len(taken) > 1 else ""))
                    if len(taken) > 1:
                        lines.put_back(taken[1:])
                        restart = True
                        break
                    continue
                rows.append([_field(rec[k], c == columns.text) for k, c in zip(pos, present)])
                if len(rows) >= batch_rows:
                    yield flush()
                    start += len(rows)
                    rows, malformed = [], 0
            if not restart:
                break
    if warned > 20:
        log.warning("%s: %d malformed rows in all", shard.path, warned)
    if rows or malformed:
        yield flush()


def _jsonl_batches(shard: Shard, batch_rows: int, columns: Columns | None = None) -> Iterator[RawBatch]:
    """jsonl through Python: one malformed or non-UTF-8 line must not cost the other lines of the shard.

    Only the mining columns are kept (all keys when `columns` is None, to list a shard's columns). A caption
    that is not a JSON string becomes null and is counted in `non_string`; ids that are numbers become text.
    """
    opener: Any = gzip.open if shard.path.lower().endswith(".gz") else open
    wanted = None if columns is None else [columns.text, columns.url, *columns.optional()]
    rows: list[dict[str, Any]] = []
    malformed = invalid = 0
    start = 0
    names: dict[str, None] = {}

    def flush() -> RawBatch:
        non_string = 0
        cols: dict[str, pa.Array] = {}
        for n in names:
            values = [r.get(n) for r in rows]
            if columns is not None and n == columns.text:
                bad = sum(1 for v in values if v is not None and not isinstance(v, str))
                non_string += bad
                if bad:
                    values = [v if isinstance(v, str) else None for v in values]
            else:
                values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
            cols[n] = pa.array(values, pa.string())
        return RawBatch(pa.table(cols) if cols else pa.table({}), start, malformed=malformed,
                        invalid_utf8=invalid, non_string=non_string)

    with opener(shard.path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                invalid += 1
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                malformed += 1
                continue
            if not isinstance(obj, dict):
                malformed += 1
                continue
            for k in obj:
                if k not in names and (wanted is None or k in wanted):
                    names[k] = None
            rows.append(obj)
            if len(rows) >= batch_rows:
                yield flush()
                start += len(rows)
                rows, malformed, invalid = [], 0, 0
    if rows or malformed or invalid:
        yield flush()
