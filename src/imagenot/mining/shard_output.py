"""`matches/<shard>.parquet`: written atomically, carrying its own stats and a fingerprint for resume.

The shard's counters live in the parquet footer, so a finished shard is one file that is either complete or
absent: a rerun skips it (same fingerprint) and still reports its stats, and a crash can never leave a stats
file that disagrees with its matches. The fingerprint covers everything that changes a shard's matches (the
classes, the match rule, the encoder, the input file's size and mtime), so changing any of them redoes the
shard instead of silently reusing stale rows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.fileio import atomic_path, json_digest
from imagenot.mining.corpus import Shard

log = logging.getLogger(__name__)

STATS_KEY = b"imagenot.shard_stats"
FINGERPRINT_KEY = b"imagenot.fingerprint"


def shard_fingerprint(pass_fingerprint: str, shard: Shard) -> str:
    st = os.stat(shard.path)
    return json_digest([pass_fingerprint, os.path.abspath(shard.path), st.st_size, st.st_mtime_ns,
                        list(shard.row_groups) if shard.row_groups is not None else None], 32)


def matches_path(out_dir: Path, shard: Shard) -> Path:
    return out_dir / f"{shard.name}.parquet"


def write_matches(path: Path, table: pa.Table, stats: dict[str, Any], fp: str) -> None:
    meta = dict(table.schema.metadata or {})
    meta[STATS_KEY] = json.dumps(stats).encode()
    meta[FINGERPRINT_KEY] = fp.encode()
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")


def finished_stats(path: Path, fp: str) -> dict[str, Any] | None:
    """The stats of a finished shard with this fingerprint, or None if it must be (re)done."""
    if not path.is_file():
        return None
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        log.warning("redoing %s: unreadable (%s)", path, exc)
        return None
    if meta.get(FINGERPRINT_KEY, b"").decode() != fp:
        log.info("redoing %s: inputs or settings changed since it was written", path.name)
        return None
    try:
        return json.loads(meta[STATS_KEY])
    except (KeyError, ValueError):
        return None
