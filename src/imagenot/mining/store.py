"""The embedding store: every caption and query embedding an encoder ever computed, keyed by a hash of the text.

Encoding is the whole cost of mining at LAION scale (hundreds of captions per second per CPU core against
hundreds of thousands matched), so a text is encoded once per encoder, ever: a rerun with a new threshold,
a re-selection, added shards, a second pass over a pool, a rerun after a kill and identical captions in
different shards all read the stored vector.

Layout (a file contract, docs/architecture.md): one folder per encoder identity (model weights, pooling,
backend, quantisation, precision: anything that changes a vector), `<store>/<identity>/`, holding
`meta.json` (the vector size and the encoder's description) and immutable part files
`part-<host>-<pid>-<uuid>.npy`: a numpy structured array of (`h`: the 16-byte BLAKE2b digest of the UTF-8
text, `v`: the float32 vector). A writer buffers what it encodes and writes it as a new part file at the end
of each shard (or every `flush_rows` vectors), to a hidden temporary name that is fsynced and renamed: a part
file is either whole or absent, never rewritten, and no two writers ever write the same file, so any number
of processes on any number of nodes may share one store, also on a network file system (no locks: SQLite's
locking is not safe over NFS). A writer killed at any moment loses its unflushed buffer only (at most the shard
in flight, which its rerun redoes anyway) and leaves at most a hidden `.part-*.tmp` file that readers ignore.
Readers build an in-memory index (digest -> part file, row) from the part files, memory-mapped, and look for
new part files of other writers whenever a text is not found. The same text written by two writers is stored
twice and read from the first file indexed: both copies hold the same vector for the same identity.

Stores of earlier versions (`<store>/<identity>.sqlite`, one SQLite database per identity) are migrated once
into a part file `part-sqlite-migration.npy`, with a log line; the SQLite file is then no longer read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imagenot.errors import ImagenotError
from imagenot.fileio import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

LAYOUT = "imagenot-embedding-store/2"
PART_GLOB = "part-*.npy"
MIGRATED_PART = "part-sqlite-migration.npy"
FLUSH_ROWS = 50_000  # a writer's buffer is written as a part file at least this often


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def part_dtype(dim: int) -> np.dtype:
    return np.dtype([("h", "V16"), ("v", "<f4", (dim,))])


class EmbeddingStore:
    """Text -> embedding for one encoder identity, in `<folder>/<identity>/part-*.npy`."""

    def __init__(self, folder: str | Path, identity: str, dim: int, describe: dict[str, Any] | None = None,
                 flush_rows: int = FLUSH_ROWS) -> None:
        self.folder = Path(folder)
        self.identity = identity
        self.dim = int(dim)
        self.flush_rows = int(flush_rows)
        self.path = self.folder / identity
        self.path.mkdir(parents=True, exist_ok=True)
        self._check_meta(describe or {})
        self._dtype = part_dtype(self.dim)
        self._parts: list[Path] = []  # opened (memory-mapped) per lookup: thousands of parts, no open files
        self._part_names: set[str] = set()
        self._index: dict[bytes, tuple[int, int]] = {}
        self._pending: dict[bytes, np.ndarray] = {}
        self._migrate_sqlite()
        self.refresh()
        self.reads = 0
        self.hits = 0
        self.writes = 0
        self.parts_written = 0

    # -- layout ------------------------------------------------------------------------------------------
    def _check_meta(self, describe: dict[str, Any]) -> None:
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            write_json(meta_path, {"layout": LAYOUT, "dim": self.dim, "encoder": describe})  # same for every writer
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError) as exc:
            raise ImagenotError(f"embedding store {meta_path} is not readable ({exc}); remove the folder to start "
                                "afresh (it only saves encoding time)") from exc
        if int(meta.get("dim", -1)) != self.dim:
            raise ImagenotError(f"embedding store {self.path} holds {meta.get('dim')}-d vectors, the encoder gives "
                                f"{self.dim}-d: not the same encoder; remove the folder or choose another store")

    def _migrate_sqlite(self) -> None:
        """Copy an earlier version's `<identity>.sqlite` into one part file, once."""
        old = self.folder / f"{self.identity}.sqlite"
        target = self.path / MIGRATED_PART
        if not old.is_file() or target.is_file():
            return
        try:
            db = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT h, v FROM emb").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            log.warning("embedding store %s: cannot read the old SQLite store %s (%s); not migrated", self.path,
                        old, exc)
            return
        arr = np.zeros(len(rows), self._dtype)
        for i, (h, v) in enumerate(rows):
            arr[i] = (bytes(h), np.frombuffer(v, dtype=np.float32))
        self._write_part(arr, target)
        log.warning("embedding store: migrated %d vectors from %s into %s; the SQLite file is no longer read and "
                    "may be removed", len(rows), old, target)

    def _write_part(self, arr: np.ndarray, path: Path) -> None:
        with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)

    def refresh(self) -> int:
        """Index part files written since the last look (by this or any other writer); returns how many."""
        new = sorted(p for p in self.path.glob(PART_GLOB) if p.name not in self._part_names)
        for p in new:
            self._part_names.add(p.name)
            try:
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
                raw = np.ascontiguousarray(arr["h"]).tobytes()
            except (OSError, ValueError) as exc:  # renamed into place whole, so only damage from outside
                log.warning("embedding store: part file %s is not readable (%s); skipped", p, exc)
                continue
            if arr.dtype != self._dtype:
                raise ImagenotError(f"embedding store part {p} holds {arr.dtype}, expected {self._dtype}")
            del arr
            self._add_part(p, raw)
        return len(new)

    def _add_part(self, path: Path, raw_keys: bytes) -> None:
        k = len(self._parts)
        self._parts.append(path)
        self._part_names.add(path.name)
        for row in range(len(raw_keys) // 16):
            self._index.setdefault(raw_keys[16 * row: 16 * row + 16], (k, row))

    # -- pickling (reopened, not copied, in another process) -------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "identity": self.identity, "dim": self.dim,
                "flush_rows": self.flush_rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"], state["identity"], state["dim"],  # type: ignore[misc]
                      flush_rows=state.get("flush_rows", FLUSH_ROWS))

    def __len__(self) -> int:
        """Distinct texts stored (written part files and this writer's buffer)."""
        return len(self._index) + sum(1 for k in self._pending if k not in self._index)

    # -- reading and writing ---------------------------------------------------------------------------------
    def _lookup(self, keys: list[bytes], out: np.ndarray, found: np.ndarray) -> None:
        by_part: dict[int, tuple[list[int], list[int]]] = {}
        for i, k in enumerate(keys):
            if found[i]:
                continue
            hit = self._index.get(k)
            if hit is not None:
                where, rows = by_part.setdefault(hit[0], ([], []))
                where.append(i)
                rows.append(hit[1])
                found[i] = True
            elif k in self._pending:
                out[i] = self._pending[k]
                found[i] = True
        for part, (where, rows) in by_part.items():
            arr = np.load(self._parts[part], mmap_mode="r", allow_pickle=False)
            out[where] = arr["v"][np.asarray(rows)]
            del arr

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors): vectors[i] is the stored embedding of texts[i] where found[i]."""
        keys = [text_key(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        self._lookup(keys, out, found)
        if not found.all() and self.refresh():  # another writer may have stored them meanwhile
            self._lookup(keys, out, found)
        self.reads += len(texts)
        self.hits += int(found.sum())
        return found, out

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Buffer a batch; it becomes a part file at the next `flush` (at the latest after `flush_rows`)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(f"expected {(len(texts), self.dim)} vectors, got {vectors.shape}")
        for t, v in zip(texts, vectors):
            k = text_key(t)
            if k not in self._index:
                self._pending.setdefault(k, v.copy())
        if len(self._pending) >= self.flush_rows:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffer as a new immutable part file (atomically); after it returns the vectors survive any
        kill. Returns the file, or None when there was nothing to write."""
        if not self._pending:
            return None
        arr = np.zeros(len(self._pending), self._dtype)
        raw = b"".join(self._pending)
        arr["h"] = np.frombuffer(raw, dtype="V16")
        arr["v"] = np.stack(list(self._pending.values()))
        name = f"part-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}.npy"
        path = self.path / name
        self._write_part(arr, path)
        self.writes += len(arr)
        self.parts_written += 1
        self._pending.clear()
        self._add_part(path, raw)
        return path

    def close(self) -> None:
        self.flush()
