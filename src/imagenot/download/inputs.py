"""Reading and checking the hand-off from mining: `selected.parquet`, `classes.tsv` and the mine folder.

The url policy lives here because it is a property of the input: a corpus is untrusted unless the user
declares it local, and a `file://` url in an untrusted corpus could read any file the user can read.

Mining may hand on provenance: columns `corpus_<name>` (corpus columns the user asked to keep, e.g.
`corpus_similarity`) travel into each sample's json, and the schema metadata key `imagenot.provenance` (JSON:
corpus, schema, safety rule, filters, kept columns, encoder, threshold) goes into the card. Files without
them still work.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenot.errors import InputError
from imagenot.fileio import read_json
from imagenot.wordnet.classes import ClassRow, read_classes

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("source_id", "url", "caption", "wnid", "label")
SPLITS = ("train", "val")
CORPUS_PREFIX = "corpus_"
PROVENANCE_KEY = b"imagenot.provenance"


@dataclass
class Selection:
    """The rows to materialise, in file order; `row_id` is the position in selected.parquet."""

    table: pa.Table  # row_id, source_id, url, caption, wnid, label, lemma, similarity, split (null if absent)
    classes: list[ClassRow]
    matches_path: Path
    classes_path: Path
    mine_info: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None  # selected.parquet's `imagenot.provenance` metadata
    corpus: pa.Table | None = None  # the kept `corpus_*` columns (prefix removed), one row per row
    duplicates: dict[int, int] = field(default_factory=dict)  # row -> earlier row with the same source_id

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def corpus_values(self) -> list[dict[str, Any]] | None:
        """Per row, the kept corpus columns as JSON-ready values (NaN and infinities become null)."""
        if self.corpus is None or not self.corpus.num_columns:
            return None
        rows = self.corpus.to_pylist()
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in rows]


def read_selection(matches: str | Path, classes: str | Path | None = None) -> Selection:
    """Read selected.parquet and its classes.tsv, checking the schema and that labels agree with wnids."""
    matches_path = Path(matches)
    if not matches_path.is_file():
        raise InputError("no such file (expected selected.parquet from `imagenot mine`)", matches_path)
    classes_path = Path(classes) if classes else matches_path.parent / "classes.tsv"
    if not classes_path.is_file():
        raise InputError("no classes.tsv (pass --classes, or keep it next to selected.parquet)", classes_path)
    try:
        table = pq.read_table(matches_path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable parquet file: {exc}", matches_path) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}", matches_path
        )
    n = table.num_rows
    cols: dict[str, pa.Array] = {"row_id": pa.array(range(n), pa.int64())}
    for name in ("source_id", "url", "caption", "wnid"):
        cols[name] = pc.cast(table[name], pa.string()).combine_chunks()
    cols["label"] = pc.cast(table["label"], pa.int32()).combine_chunks()
    cols["lemma"] = (pc.cast(table["lemma"], pa.string()).combine_chunks() if "lemma" in table.column_names
                     else pa.nulls(n, pa.string()))
    cols["similarity"] = (pc.cast(table["similarity"], pa.float32()).combine_chunks()
                          if "similarity" in table.column_names else pa.nulls(n, pa.float32()))
    cols["split"] = (pc.cast(table["split"], pa.string()).combine_chunks() if "split" in table.column_names
                     else pa.nulls(n, pa.string()))
    out = pa.table(cols)
    class_rows = read_classes(classes_path)
    _check_labels(out, class_rows, matches_path, classes_path)
    bad_splits = sorted({s for s in out["split"].to_pylist() if s is not None and s not in SPLITS})
    if bad_splits:
        raise InputError(f"split values must be 'train' or 'val', found {bad_splits}", matches_path)
    kept = [c for c in table.column_names if c.startswith(CORPUS_PREFIX) and len(c) > len(CORPUS_PREFIX)]
    corpus = (pa.table({c[len(CORPUS_PREFIX):]: json_safe(table[c].combine_chunks(), c, matches_path)
                        for c in kept}) if kept else None)
    duplicates = repeated_source_ids(out["source_id"].to_pylist())
    if duplicates:
        first_dup = min(duplicates)
        log.warning("%s: %d row(s) repeat the source_id of an earlier row (first: row %d repeats row %d, %r): "
                    "each source is downloaded once; the repeats are listed in removed.parquet as "
                    "duplicate_source_id", matches_path, len(duplicates), first_dup, duplicates[first_dup],
                    out["source_id"][first_dup].as_py())
    return Selection(out, class_rows, matches_path, classes_path, read_mine_info(matches_path.parent),
                     provenance=read_provenance(table.schema, matches_path), corpus=corpus, duplicates=duplicates)


def _json_type(t: pa.DataType) -> pa.DataType | None:
    """The Arrow type a kept corpus column is cast to so that its values are JSON (they go into each
    sample's json and samples.parquet): dates and times as ISO text, decimals as floats, binary as UTF-8
    text, dictionaries decoded; None for a type with no JSON form."""
    if pa.types.is_dictionary(t):
        return _json_type(t.value_type)
    if pa.types.is_null(t) or pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        return t
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t)):
        return pa.string()  # UTF-8 text stored as bytes; other bytes are refused (the cast fails)
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return pa.string()
    if pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = _json_type(t.value_type)
        return pa.list_(inner) if inner is not None else None
    if pa.types.is_struct(t):
        fields = [(f.name, _json_type(f.type)) for f in t]
        return pa.struct(fields) if all(ft is not None for _, ft in fields) else None
    return None


def json_safe(col: pa.Array, name: str, path: Path) -> pa.Array:
    """A kept `corpus_*` column in a form every sample's json can hold, or an error naming the column and its
    type, raised while reading the selection: before anything is fetched, not after every image was."""
    target = _json_type(col.type)
    how = ("; drop it from `imagenot mine --keep-columns` (or from selected.parquet), or convert it to text "
           "first")
    if target is None:
        raise InputError(f"kept corpus column {name!r} holds {col.type}, which a sample's json cannot hold{how}",
                         path)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if col.type == target:
        return col
    try:
        return col.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"kept corpus column {name!r} holds {col.type} values with no JSON form ({exc}){how}",
                         path) from None


def repeated_source_ids(source_ids: list[str | None]) -> dict[int, int]:
    """Rows whose source_id already appeared (-> the first row with it); empty ids are never repeats."""
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for i, sid in enumerate(source_ids):
        if not sid:
            continue
        j = first.setdefault(sid, i)
        if j != i:
            repeats[i] = j
    return repeats


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


def read_mine_info(folder: Path) -> dict[str, Any]:
    """What the card should say about corpus, encoder and thresholds: the mine folder's config and stats."""
    info: dict[str, Any] = {}
    for name in ("config.json", "mine_stats.json", "selection.json"):
        path = folder / name
        if path.is_file():
            try:
                info[name.removesuffix(".json")] = read_json(path)
            except ValueError as exc:
                log.warning("ignoring unreadable %s: %s", path, exc)
    return info


def scheme_of(url: str | None) -> str:
    if not url:
        return ""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def check_urls(table: pa.Table, allow_local: bool, path: Path) -> Counter[str]:
    """Refuse the whole run if any url could read local files without the user's consent.

    Returns the count of urls per scheme. Rows with an empty url are kept and later counted as `missing_url`.
    """
    schemes = Counter(scheme_of(u) for u in table["url"].to_pylist())
    urls = table["url"].to_pylist()
    local = schemes.get("file", 0)
    if local and not allow_local:
        example = next(u for u in urls if scheme_of(u) == "file")
        raise InputError(
            f"{local} row(s) have file:// urls (first: {example}); a corpus may be untrusted, so local files "
            "are read only when you declare the corpus local with --allow-local",
            path,
        )
    other = {s: c for s, c in schemes.items() if s not in ("http", "https", "file", "")}
    if other:
        example = next(u for u in urls if scheme_of(u) in other)
        raise InputError(
            f"unsupported url scheme(s) {dict(other)} (first: {example}); only http, https and, with "
            "--allow-local, file urls are fetched",
            path,
        )
    bare = sum(1 for u in urls if u and scheme_of(u) == "")
    if bare:
        example = next(u for u in urls if u and scheme_of(u) == "")
        raise InputError(
            f"{bare} url(s) without a scheme (first: {example!r}); write local files as file:///abs/path "
            "and pass --allow-local",
            path,
        )
    return schemes
