"""Reading and checking the hand-off from mining: `selected.parquet`, `classes.tsv` and the mine folder.

The file itself is `imagenot.mining.selected`'s (its columns, the `corpus_` prefix, the provenance record);
this module adds what download needs on top: row ids, the kept corpus columns in a form each sample's json
can hold, repeated source ids, the mine folder's config and stats, and the url policy.

The url policy lives here because it is a property of the input: a corpus is untrusted unless the user
declares it local, and a `file://` url in an untrusted corpus could read any file the user can read.

Mining may hand on provenance: the kept corpus columns (`corpus_<name>`, e.g. `corpus_similarity`) travel
into each sample's json, and the provenance record (JSON: corpus, schema, safety rule, filters, kept columns,
encoder, threshold) goes into the card. Files without them still work.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from imagenot.errors import InputError
from imagenot.fileio import read_json
from imagenot.mining.selected import corpus_column, read_selected
from imagenot.wordnet.classes import ClassRow

log = logging.getLogger(__name__)


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
    selected = read_selected(matches_path, classes_path)
    n = selected.table.num_rows
    out = selected.table.add_column(0, "row_id", pa.array(range(n), pa.int64()))
    corpus = (pa.table({name: json_safe(col, corpus_column(name), matches_path)
                        for name, col in selected.corpus.items()}) if selected.corpus else None)
    duplicates = repeated_source_ids(out["source_id"].to_pylist())
    if duplicates:
        first_dup = min(duplicates)
        log.warning("%s: %d row(s) repeat the source_id of an earlier row (first: row %d repeats row %d, %r): "
                    "each source is downloaded once; the repeats are listed in removed.parquet as "
                    "duplicate_source_id", matches_path, len(duplicates), first_dup, duplicates[first_dup],
                    out["source_id"][first_dup].as_py())
    return Selection(out, selected.classes, matches_path, classes_path, read_mine_info(matches_path.parent),
                     provenance=selected.provenance, corpus=corpus, duplicates=duplicates)


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
