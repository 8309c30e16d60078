"""Image-text corpora as streams of Arrow record batches: parquet, csv, tsv and jsonl shards (and .gz).

LAION-scale metadata arrives as many shards of millions of rows, with column names that differ between
LAION, Re-LAION and DataComp. A shard is read in batches so memory stays bounded whatever its size, only the
four columns mining needs are read, and a bad row costs that row, not the shard (counted, never silent).
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
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from imagenot.errors import InputError

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "tsv", "jsonl")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".json": "jsonl"}
CSV_BLOCK_BYTES = 64 << 20  # a csv row must fit in one block; LAION captions with megabytes of text exist


class MissingColumnsError(InputError):
    """The corpus lacks a required column: a setting to fix, not a damaged shard."""


@dataclass(frozen=True)
class Columns:
    """Corpus column names; `id` and `nsfw` may be absent from a corpus (empty string: never read)."""

    text: str = "TEXT"
    url: str = "URL"
    id: str = "SAMPLE_ID"
    nsfw: str = "NSFW"

    def required(self) -> list[str]:
        return [self.text, self.url]

    def optional(self) -> list[str]:
        return [c for c in (self.id, self.nsfw) if c]


@dataclass(frozen=True)
class Shard:
    path: str
    name: str  # output file stem, unique within the corpus
    format: str

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
        paths = sorted(str(x) for x in p.rglob("*") if x.is_file() and shard_format(str(x), forced_format))
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


def _parquet_batches(shard: Shard, columns: Columns, batch_rows: int) -> Iterator[RawBatch]:
    pf = pq.ParquetFile(shard.path)
    present, _ = _missing(list(pf.schema_arrow.names), columns, shard.path)
    start = 0
    for rb in pf.iter_batches(batch_size=batch_rows, columns=present, use_threads=False):
        yield RawBatch(pa.Table.from_batches([rb]), start)
        start += rb.num_rows


def _csv_batches(shard: Shard, columns: Columns, batch_rows: int) -> Iterator[RawBatch]:
    header = _csv_header(shard)
    present, _ = _missing(header, columns, shard.path)
    bad = [0]

    def on_invalid(row: Any) -> str:
        bad[0] += 1
        return "skip"

    tsv = shard.format == "tsv"
    parse = pacsv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                               newlines_in_values=not tsv, invalid_row_handler=on_invalid)
    types = {c: pa.string() for c in present}
    types[columns.text] = pa.binary()  # validated later, so one bad caption does not fail the block
    convert = pacsv.ConvertOptions(column_types=types, include_columns=present, strings_can_be_null=True,
                                   quoted_strings_can_be_null=False)
    reader = pacsv.open_csv(shard.path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES,
                                                                       use_threads=False),
                            parse_options=parse, convert_options=convert)
    start = 0
    for rb in reader:
        for off in range(0, rb.num_rows, batch_rows):
            part = rb.slice(off, batch_rows)
            malformed, bad[0] = bad[0], 0
            yield RawBatch(pa.Table.from_batches([part]), start, malformed=malformed)
            start += part.num_rows
    if bad[0]:
        yield RawBatch(pa.table({c: pa.array([], pa.string()) for c in present}), start, malformed=bad[0])


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
