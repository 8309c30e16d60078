"""Run results in the long `results.csv` format: collected from run directories, read from CSV (long or wide).

Everything downstream works on plain dict rows with exactly the `RESULT_COLUMNS` keys (plus an optional
`origin`, "file:line" or a result.json path, used only to point error messages at the offending input), so the
demo and user scripts can build rows themselves without pandas.

`source` says where a number comes from: "trained" (a run of this tool; the default) or "published" (a
model's published weights, e.g. torchvision's ImageNet acc@1, written by `imagenot evaluate --published`).
`n_val` (validation images), `chance` (100 / classes, in percent), `epochs` and `train_images` say what a
number rests on; the report prints them next to the accuracies.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from imagenot import escape, rundir
from imagenot.errors import InputError
from imagenot.fileio import atomic_open

log = logging.getLogger(__name__)

RESULT_COLUMNS: tuple[str, ...] = (
    "model", "family", "year", "dataset", "role", "pretrain_dataset", "seed",
    "top1", "top5", "epochs", "params", "flops", "run_dir",
    "n_val", "chance", "train_images", "source", "weights", "dataset_spec", "fingerprint",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("model", "dataset", "top1")
ROLES: tuple[str, ...] = ("reference", "contrast", "transfer")
SOURCES: tuple[str, ...] = ("trained", "published")

_INT_COLUMNS = ("year", "seed", "epochs", "params", "n_val", "train_images")
_FLOAT_COLUMNS = ("top1", "top5", "flops", "chance")
_STR_COLUMNS = ("model", "family", "dataset", "role", "pretrain_dataset", "run_dir", "source", "weights",
                "dataset_spec", "fingerprint")
_MISSING = {"", "none", "null", "na", "n/a"}
# result.json names for the same facts (the trainer's keys); the CSV uses the column names
_ALIASES = {"n_val": "val_images"}

Row = dict[str, Any]


def _parse_float(value: Any, column: str, origin: str | None) -> float | None:
    """A number from JSON (NaN allowed: a diverged run) or from text (finite only: 'nan' or 'inf' typed
    into a CSV is a mistake to point at, not a result)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.lower() in _MISSING:
        return None
    try:
        number = float(text)
    except ValueError as exc:
        raise InputError(f"column {column!r}: expected a number, got {text!r}", path=origin) from exc
    if not math.isfinite(number):
        raise InputError(f"column {column!r}: expected a finite number, got {text!r} (leave the cell empty "
                         "for a run without a result)", path=origin)
    return number


def _parse_int(value: Any, column: str, origin: str | None) -> int | None:
    number = _parse_float(value, column, origin)
    if number is None or math.isnan(number):
        return None
    if number != int(number):
        raise InputError(f"column {column!r}: expected an integer, got {value!r}", path=origin)
    return int(number)


def _get(mapping: Mapping[str, Any], column: str) -> Any:
    value = mapping.get(column)
    if value is None and column in _ALIASES:
        value = mapping.get(_ALIASES[column])
    if column == "weights" and isinstance(value, Mapping):
        # `imagenot evaluate` records what it loaded as a mapping (source, kind, identity, sha256)
        value = value.get("identity") or value.get("source")
    return value


def normalize_row(mapping: Mapping[str, Any], origin: str | None = None) -> Row:
    """Type one result (from CSV text or result.json) into the canonical row; unknown keys are ignored.

    A missing or NaN `top1` is kept as NaN here: `analyze` reports such runs instead of silently dropping
    them, because a diverged run is itself a finding. `chance` comes from `num_classes` when not given.
    """
    missing = [c for c in REQUIRED_COLUMNS if mapping.get(c) in (None, "")]
    if missing and any(c != "top1" for c in missing):
        raise InputError(f"missing value(s) for {', '.join(missing)}", path=origin)
    row: Row = {}
    for col in _STR_COLUMNS:
        value = _get(mapping, col)
        text = None if value is None else str(value).strip()
        row[col] = None if text is None or text.lower() in _MISSING else text
    for col in _INT_COLUMNS:
        row[col] = _parse_int(_get(mapping, col), col, origin)
    for col in _FLOAT_COLUMNS:
        row[col] = _parse_float(_get(mapping, col), col, origin)
    if row["top1"] is None:
        row["top1"] = math.nan
    if row["chance"] is None:
        classes = _parse_int(mapping.get("num_classes"), "num_classes", origin)
        if classes:
            row["chance"] = 100.0 / classes
    if row["role"] is not None:
        role = row["role"].lower()
        if role not in ROLES:
            raise InputError(f"unknown role {row['role']!r}; known: {', '.join(ROLES)} (or empty)", path=origin)
        row["role"] = role
    if row["role"] is None and row["pretrain_dataset"] is not None:
        row["role"] = "transfer"
    source = (row["source"] or "trained").lower()
    if source not in SOURCES:
        raise InputError(f"unknown source {row['source']!r}; known: {', '.join(SOURCES)} (or empty)", path=origin)
    row["source"] = source
    row["origin"] = origin
    if rundir.is_diverged(dict(mapping)):  # a run whose loss became NaN: its accuracy is chance, not a result
        row["status"] = "diverged"
    return row


def _check_columns(found: Sequence[str], required: Iterable[str], path: Path) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; columns found: {', '.join(found) or '(none)'}", path=path
        )


def _read_csv(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            head = raw.read(8192)
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if b"\0" in head:
        raise InputError("a binary file, not a CSV table (it contains NUL bytes)", path=path)
    with fh:
        try:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            records = [(reader.line_num, rec) for rec in reader]
        except UnicodeDecodeError as exc:
            raise InputError(f"not a UTF-8 text CSV (undecodable byte at offset {exc.start} of a block); "
                             "is it a binary file?", path=path) from exc
        except csv.Error as exc:
            raise InputError(f"not a readable CSV: {exc}", path=path, line=reader.line_num) from exc
    if not header:
        raise InputError("empty file (no header)", path=path)
    repeated = [h for h in dict.fromkeys(header) if h and header.count(h) > 1]
    if repeated:
        where = "; ".join(f"{h!r} in columns {', '.join(str(i + 1) for i, x in enumerate(header) if x == h)}"
                          for h in repeated)
        raise InputError(f"the header names a column more than once ({where}): which one holds the values is "
                         "ambiguous; rename or remove the extra column", path=path, line=1)
    for line, rec in records:
        if any(str(v).strip() for v in rec.get(None) or []):  # type: ignore[call-overload]
            raise InputError(f"{len(header)} columns in the header but more values on this line", path=path,
                             line=line)
    return header, records


def read_results_csv(path: str | Path) -> list[Row]:
    """Read a long `results.csv`; only model, dataset and top1 are required, other columns default to empty."""
    path = Path(path)
    header, records = _read_csv(path)
    _check_columns(header, REQUIRED_COLUMNS, path)
    return [normalize_row({k: escape.csv_unescape(v) if isinstance(v, str) else v for k, v in rec.items()},
                          origin=f"{path}:{line}") for line, rec in records]


def read_wide_csv(
    path: str | Path,
    *,
    model_col: str = "model",
    reference_col: str,
    contrast_col: str,
    year_col: str | None = None,
    family_col: str | None = None,
    reference_name: str | None = None,
    contrast_name: str | None = None,
) -> list[Row]:
    """Turn a table with one accuracy column per dataset (e.g. a paper's results) into long rows.

    The dataset names default to the column names, so a column such as `imagenot_ratio_to_alexnet` keeps
    saying what it holds (and its 'ratio' is then detected as a relative scale by `analyze`). A `year`
    column is used when present even if not named, since publication order needs it.
    """
    path = Path(path)
    header, records = _read_csv(path)
    required = [model_col, reference_col, contrast_col]
    required += [c for c in (year_col, family_col) if c]
    _check_columns(header, required, path)
    if year_col is None and "year" in header:
        year_col = "year"
    if family_col is None and "family" in header:
        family_col = "family"
    rows: list[Row] = []
    for line, rec in records:
        for col, name, role in (
            (reference_col, reference_name or reference_col, "reference"),
            (contrast_col, contrast_name or contrast_col, "contrast"),
        ):
            rows.append(normalize_row({
                "model": rec.get(model_col),
                "family": rec.get(family_col) if family_col else None,
                "year": rec.get(year_col) if year_col else None,
                "dataset": name,
                "role": role,
                "top1": rec.get(col),
            }, origin=f"{path}:{line}"))
    return rows


def collect_results(run_dirs: Iterable[str | Path]) -> list[Row]:
    """Find every `result.json` under the given run directories (recursively) and read it as a row.

    A path may also be a result.json file itself. The same run reached through two overlapping folders is
    read once.
    """
    run_dirs = list(run_dirs)
    files: list[Path] = []
    for entry in run_dirs:
        entry = Path(entry)
        if entry.is_file():
            files.append(entry)
        elif entry.is_dir():
            files.extend(sorted(entry.rglob("result.json")))
        else:
            raise InputError("no such file or directory", path=entry)
    seen: set[Path] = set()
    rows: list[Row] = []
    for file in files:
        key = file.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"not a readable result.json: {exc}", path=file) from exc
        if not isinstance(data, dict):
            raise InputError("result.json must hold a JSON object", path=file)
        absent = [k for k in REQUIRED_COLUMNS if k not in data]
        if absent:
            raise InputError(
                f"missing key(s) {', '.join(absent)}; keys found: {', '.join(sorted(data)) or '(none)'}", path=file
            )
        data = dict(data)
        data.setdefault("run_dir", str(file.parent))
        rows.append(normalize_row(data, origin=str(file)))
    if not rows:
        raise InputError(f"no result.json found under {', '.join(str(d) for d in run_dirs)}")
    log.info("collected %d run results from %d folder(s)", len(rows), len(run_dirs))
    return rows


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return escape.csv_cell(value)  # names from data: never a spreadsheet formula
    return str(value)


def write_results_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows in the long format (atomic); extra keys such as `origin` are not written.

    A missing value is an empty cell, so the file reads back with `read_results_csv`.
    """
    path = Path(path)
    with atomic_open(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(RESULT_COLUMNS)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in RESULT_COLUMNS])
    return path
