"""`selected.parquet`, the hand-off from mining to download: its columns, the `corpus_` prefix of the corpus
columns mining kept, the provenance record in its schema metadata; written and read only here.

`imagenot mine` / `imagenot select` write it (`write_selected`, through `selection.write_selection`);
`imagenot download` reads it (`read_selected`, through `imagenot.download.matches`). Files written by hand or
by older versions may lack the optional columns (`lemma`, `similarity`, `split`), the kept corpus columns and
the provenance: they read as nulls / None.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenot.errors import ImagenotError, InputError
from imagenot.fileio import atomic_path
from imagenot.wordnet.classes import ClassRow, read_classes

log = logging.getLogger(__name__)

SELECTED_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("wnid", pa.string()),
    ("label", pa.int32()), ("lemma", pa.string()), ("similarity", pa.float32()), ("split", pa.string()),
])
REQUIRED_COLUMNS = ("source_id", "url", "caption", "wnid", "label")  # the others may be absent (nulls)
SPLITS = ("train", "val")
CORPUS_PREFIX = "corpus_"  # a kept corpus column X travels as corpus_X (never clashes with our own columns)
PROVENANCE_KEY = b"imagenot.provenance"  # schema metadata: corpus, schema, filters, encoder, threshold (JSON)
ROW_GROUP = 65536  # rows per row group


def corpus_column(name: str) -> str:
    """The column a kept corpus column `name` travels as, in matches/*.parquet and selected.parquet."""
    return CORPUS_PREFIX + name


def corpus_fields(schema: pa.Schema) -> list[pa.Field]:
    """The kept corpus columns of a matches or selected schema, in file order (prefix included)."""
    return [schema.field(n) for n in schema.names if n.startswith(CORPUS_PREFIX)]


def write_selected(path: Path, selected: pa.Table | Iterable[pa.RecordBatch], schema: pa.Schema | None = None,
                   provenance: dict[str, Any] | None = None) -> None:
    """Write selected.parquet (zstd, row groups of about ROW_GROUP rows, the provenance JSON under
    PROVENANCE_KEY); `selected` is a table or record batches of `schema`, written as they come and renamed into
    place only when complete."""
    if isinstance(selected, pa.Table):
        schema, batches = selected.schema, selected.to_batches()
    else:
        batches = selected
        if schema is None:
            raise ImagenotError("internal: write_selected needs the schema of its record batches")
    if provenance is not None:
        meta = dict(schema.metadata or {})
        meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
        schema = schema.with_metadata(meta)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        pending: list[pa.RecordBatch] = []
        for batch in batches:  # row groups of about ROW_GROUP rows, whatever the batches' size
            pending.append(batch.replace_schema_metadata(schema.metadata))
            if sum(len(b) for b in pending) >= ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))


@dataclass
class SelectedFile:
    """selected.parquet as read: the SELECTED_SCHEMA columns (absent optional ones as nulls), the classes,
    the kept corpus columns by their corpus name (prefix removed, as stored) and the provenance record."""

    table: pa.Table
    classes: list[ClassRow]
    corpus: dict[str, pa.Array] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None


def read_selected(path: Path, classes_path: Path) -> SelectedFile:
    """Read selected.parquet and its classes.tsv, checking the columns, that labels agree with wnids and the
    split values; errors name the file."""
    try:
        raw = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable parquet file: {exc}", path) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.column_names]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; found {', '.join(raw.column_names)}", path)
    table = pa.table({f.name: _column(raw, f) for f in SELECTED_SCHEMA})
    classes = read_classes(classes_path)
    _check_labels(table, classes, path, classes_path)
    bad_splits = sorted({s for s in table["split"].to_pylist() if s is not None and s not in SPLITS})
    if bad_splits:
        raise InputError(f"split values must be 'train' or 'val', found {bad_splits}", path)
    corpus = {c[len(CORPUS_PREFIX):]: raw[c].combine_chunks() for c in raw.column_names
              if c.startswith(CORPUS_PREFIX) and len(c) > len(CORPUS_PREFIX)}
    return SelectedFile(table, classes, corpus, read_provenance(raw.schema, path))


def _column(raw: pa.Table, f: pa.Field) -> pa.Array:
    """Column `f` of the file cast to its type, or nulls for an optional column the file lacks."""
    if f.name not in raw.column_names:
        return pa.nulls(raw.num_rows, f.type)
    return pc.cast(raw[f.name], f.type).combine_chunks()


def read_provenance(schema: pa.Schema, path: Path) -> dict[str, Any] | None:
    """Mining's provenance record from the parquet schema metadata, or None for files that have none."""
    raw = (schema.metadata or {}).get(PROVENANCE_KEY)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"schema metadata imagenot.provenance is not valid JSON: {exc}", path) from None
    if not isinstance(value, dict):
        raise InputError("schema metadata imagenot.provenance must be a JSON object", path)
    return value


def _check_labels(table: pa.Table, rows: list[ClassRow], matches_path: Path, classes_path: Path) -> None:
    wnids = [r.wnid for r in sorted(rows, key=lambda r: r.index)]
    if [r.index for r in rows] != list(range(len(rows))):
        raise InputError("class index must be 0..N-1 in file order", classes_path)
    labels = table["label"].to_pylist()
    row_wnids = table["wnid"].to_pylist()
    for i, (label, wnid) in enumerate(zip(labels, row_wnids)):
        if label is None or not 0 <= label < len(wnids):
            raise InputError(f"row {i}: label {label} outside 0..{len(wnids) - 1} of {classes_path}", matches_path)
        if wnids[label] != wnid:
            raise InputError(
                f"row {i}: label {label} is {wnids[label]} in {classes_path}, but the row says {wnid}",
                matches_path,
            )
