"""Everything decided about a corpus before any output exists: its shards and parts, its schema (named or
recognised), the columns to read and the filters' columns, and the provenance record of what was applied.

`imagenot mine` checks all of it first so that a mistake (a missing column, an unknown layout, a corpus
without a safety column, an unreadable corpus) leaves no output folder behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.errors import InputError
from imagenot.fileio import sha256_file
from imagenot.mining.config import MineConfig
from imagenot.mining.corpus import (
    Columns,
    Shard,
    check_caption_type,
    list_shards,
    read_batches,
    shard_columns,
    split_shards,
)
from imagenot.mining.schemas import COLUMN_FLAGS, ResolvedSchema, builtin_schema, resolve_schema
from imagenot.mining.selected import corpus_column
from imagenot.spec import Spec

log = logging.getLogger(__name__)

OPENCLIPART = "openclipart"
ICONIFY = "iconify"
BUILTIN_CORPORA = (OPENCLIPART, ICONIFY)
ICONIFY_KEEP = ("icon_set", "license", "license_url")
"""iconify columns always carried into matches, selected.parquet and each sample's json (as corpus_<name>):
an icon's set, licence (SPDX id) and licence url, what attribution needs."""
"""Corpora imagenot converts itself into OUT/corpus/<name>.parquet; `a+b` mines several of them together."""


def builtin_parts(corpus: str) -> list[tuple[str, str | None]] | None:
    """(name, optional source folder) of each built-in corpus in `corpus`, or None if it is not built in.

    `openclipart`, `iconify`, `openclipart:SVG_DIR`, `iconify:PACKAGE_DIR`, `openclipart+iconify`."""
    parts: list[tuple[str, str | None]] = []
    for item in corpus.split("+"):
        spec = Spec.parse(item)
        if spec.kind not in BUILTIN_CORPORA:
            return None
        parts.append((spec.kind, spec.arg))
    names = [n for n, _ in parts]
    return parts if len(set(names)) == len(names) else None


def is_openclipart(corpus: str) -> bool:
    return Spec.parse(corpus).kind == OPENCLIPART


def is_builtin(corpus: str) -> bool:
    return builtin_parts(corpus) is not None


def _source(name: str, where: str | None) -> str:
    """The folder a built-in corpus is converted from (recorded in the parquet's metadata)."""
    if name == OPENCLIPART:
        from imagenot.mining.openclipart import SVG_ROOT

        return str(Path(where) if where else SVG_ROOT)
    from imagenot.mining.iconify import PACKAGE_ROOT

    return str(Path(where) if where else PACKAGE_ROOT)


def _converted_from(path: Path) -> str | None:
    from imagenot.mining.openclipart import SOURCE_KEY

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None  # unreadable: converted again
    value = meta.get(SOURCE_KEY)
    return value.decode() if value else None


def _prepare_openclipart(where: str | None, path: Path) -> None:
    from imagenot.mining.openclipart import PNG_ROOT, SVG_ROOT, write_openclipart_corpus

    svg_root = Path(where) if where else SVG_ROOT
    png_root = svg_root.parent / "png" if svg_root != SVG_ROOT else PNG_ROOT
    if not svg_root.is_dir():
        raise InputError("no Open Clip Art SVG folder (Debian: apt-get install openclipart-svg "
                         "openclipart-png)", svg_root)
    write_openclipart_corpus(path, svg_root, png_root)


def _prepare_iconify(where: str | None, path: Path) -> None:
    from imagenot.mining.iconify import PACKAGE_ROOT, write_iconify_corpus

    write_iconify_corpus(path, Path(where) if where else PACKAGE_ROOT)


def prepare_corpus(cfg: MineConfig, out: Path) -> tuple[str, bool, dict[str, str]]:
    """(shard spec, local, inputs to hash): a built-in corpus (`openclipart`, `iconify`, both joined by `+`)
    is first written as parquet under OUT/corpus, reused when it is already there."""
    parts = builtin_parts(cfg.corpus)
    if parts is None:
        return cfg.corpus, cfg.allow_local, {}
    inputs: dict[str, str] = {}
    paths = []
    for name, where in parts:
        path = out / "corpus" / f"{name}.parquet"
        if path.is_file() and _converted_from(path) == _source(name, where):
            log.info("reusing %s", path)
        else:
            if path.is_file():
                log.info("%s was converted from another folder than %s: converting again", path,
                         _source(name, where))
            (_prepare_openclipart if name == OPENCLIPART else _prepare_iconify)(where, path)
        paths.append(path)
        inputs["corpus" if len(parts) == 1 else f"corpus:{name}"] = sha256_file(path)
    spec = str(paths[0]) if len(paths) == 1 else str(out / "corpus" / "*.parquet")
    return spec, True, inputs


def materialise_selected(mine_dir: Path, corpus: str, selected: Path) -> None:
    """Write the files a built-in corpus keeps only for selected rows (the iconify SVGs) before download;
    `selected` is the selection's selected.parquet (only its source ids are read)."""
    parts = builtin_parts(corpus) or []
    if any(name == ICONIFY for name, _ in parts):
        from imagenot.mining.iconify import materialise_selected as write_svgs

        path = mine_dir / "corpus" / f"{ICONIFY}.parquet"
        if not path.is_file():
            raise InputError("the iconify corpus conversion is missing; rerun `imagenot mine`", path)
        ids = pq.read_table(selected, columns=["source_id"])["source_id"].to_pylist()
        write_svgs(path, [i for i in ids if i])


def _first_readable_columns(shards: list[Shard]) -> tuple[Shard, list[str], Any]:
    """The first shard whose header can be read, its columns and an Arrow schema (parquet) or None."""
    errors = []
    for shard in shards:
        try:
            cols = shard_columns(shard)
        except Exception as exc:  # noqa: BLE001 - a damaged shard is reported with the others, later
            errors.append(f"{shard.path}: {type(exc).__name__}: {exc}")
            continue
        arrow = pq.read_schema(shard.path) if shard.format == "parquet" else None
        return shard, cols, arrow
    raise InputError("no shard could be read: " + "; ".join(errors[:5]))


def _numeric_probe(shard: Shard, arrow_schema: Any) -> Callable[[str], bool]:
    """Whether a column holds numbers: its Arrow type (parquet) or its first values (csv, jsonl)."""
    def is_numeric(col: str) -> bool:
        if arrow_schema is not None:
            t = arrow_schema.field(col).type
            return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        for raw in read_batches(shard, Columns(text=col, url=col, id="", safety=""), 1024):
            values = [v for v in raw.table[col].to_pylist() if v not in (None, "")]
            if values:
                vals = [v.decode() if isinstance(v, bytes) else v for v in values]
                return all(isinstance(v, (int, float)) or _is_number(v) for v in vals)
        return False
    return is_numeric


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class CorpusPlan:
    """Everything decided about the corpus before any output exists."""

    shards: list[Shard]
    resolved: ResolvedSchema
    columns: Columns
    keep: tuple[str, ...]


def plan_corpus(cfg: MineConfig, spec: str) -> CorpusPlan:
    """List shards, recognise the schema, check the filters' columns: every input error before any output."""
    shards = list_shards(spec, cfg.format)
    first, found, arrow = _first_readable_columns(shards)
    overrides = {k: getattr(cfg, k) for k in COLUMN_FLAGS}
    parts = builtin_parts(cfg.corpus)
    builtin = builtin_schema([n for n, _ in parts]) if parts else None
    resolved = resolve_schema(found, first.path, schema=cfg.schema, overrides=overrides, keep_nsfw=cfg.keep_nsfw,
                              safety_max=cfg.safety_max, safety_keep=cfg.safety_keep,
                              is_numeric=_numeric_probe(first, arrow), builtin=builtin)
    sch = resolved.schema
    how = "recognised from the columns of " + first.path if resolved.detected else "as named"
    log.info("corpus schema %s (%s); safety: %s", sch.name, how, resolved.safety.describe())
    if cfg.watermark_max is not None and sch.watermark is None:
        raise InputError(f"--watermark-max needs a watermark column; schema {sch.name} has none in "
                         f"{', '.join(found)} (map one with --watermark-col)", first.path)
    if cfg.min_image_size is not None and (sch.width is None or sch.height is None):
        raise InputError(f"--min-image-size needs width and height columns; schema {sch.name} has none in "
                         f"{', '.join(found)} (map them with --width-col, --height-col)", first.path)
    missing = [c for c in cfg.keep_columns if c not in found]
    if missing:
        raise InputError(f"--keep-columns: no column(s) {', '.join(missing)}; found {', '.join(found)}",
                         first.path)
    check_caption_type(arrow, sch.caption, first.path)
    keep = tuple(cfg.keep_columns)
    if sch.faces is not None and sch.faces not in keep:  # DataComp's face boxes: download blurs them
        keep = (*keep, sch.faces)
    if parts and any(name == ICONIFY for name, _ in parts):  # attribution travels with every icon
        keep += tuple(c for c in ICONIFY_KEEP if c not in keep)
    columns = Columns(text=sch.caption, url=sch.url, id=sch.id or "", safety=resolved.safety.column or "",
                      width=sch.width or "", height=sch.height or "", watermark=sch.watermark or "", keep=keep)
    return CorpusPlan(split_shards(shards, cfg.part_rows), resolved, columns, keep)


def provenance(cfg: MineConfig, plan: CorpusPlan, counters: dict[str, int], local: bool,
               threshold: float | None) -> dict[str, Any]:
    """What selected.parquet, mine_stats.json and the dataset card say about where the rows come from."""
    sch, cols = plan.resolved.schema, plan.columns
    filters: dict[str, dict[str, Any]] = {
        "caption": {"rule": f"non-empty UTF-8 text of at most {cfg.max_caption_bytes} bytes",
                    "dropped": sum(counters.get(k, 0) for k in ("null_captions", "empty_captions",
                                                                "non_string_captions", "invalid_utf8",
                                                                "oversized_captions", "malformed_rows"))},
        "url": {"rule": "http(s) urls" + (" and file:// (corpus declared local)" if local else ""),
                "dropped": counters.get("null_urls", 0) + counters.get("url_refused", 0)},
    }
    if cfg.watermark_max is not None:
        filters["watermark"] = {"rule": f"{cols.watermark} < {cfg.watermark_max:g} (missing score kept)",
                                "dropped": counters.get("watermark_dropped", 0)}
    if cfg.min_image_size is not None:
        filters["min_image_size"] = {"rule": f"{cols.width} >= {cfg.min_image_size} and {cols.height} >= "
                                     f"{cfg.min_image_size} (missing size kept)",
                                     "dropped": counters.get("small_image_dropped", 0)}
    named: dict[str, Any] = {}
    if sch.candidates:  # auto could not tell the corpus: say so wherever the schema is recorded
        named = {"schema_candidates": list(sch.candidates),
                 "schema_note": f"{sch.description}; the columns cannot tell {' / '.join(sch.candidates)} apart "
                 "(name the corpus with --schema to record it exactly)"}
    return {
        "corpus": cfg.corpus,
        "schema": sch.name,
        "schema_detected": plan.resolved.detected,
        **named,
        "columns": {k: v for k, v in sch.fields().items() if v is not None},
        "safety": plan.resolved.safety.provenance(counters.get("safety_dropped", 0)),
        "filters": filters,
        "kept_columns": [corpus_column(c) for c in plan.keep],
        "encoder": cfg.encoder if cfg.embed else None,
        "threshold": threshold,
    }
