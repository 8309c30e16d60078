"""The embedding store: every caption and query embedding an encoder ever computed, keyed by a hash of the text.

Encoding is the whole cost of mining at LAION scale (hundreds of captions per second per CPU core against
hundreds of thousands matched), so a text is encoded once per encoder, ever: a rerun with a new threshold,
a re-selection, added shards, a second pass over a pool, a rerun after a kill and identical captions in
different shards all read the stored vector. One SQLite database per encoder identity (model weights, pooling,
backend, quantisation, precision: anything that changes a vector), a `WITHOUT ROWID` table from a 16-byte
BLAKE2b digest of the UTF-8 text to the float32 vector. SQLite's write-ahead log makes each committed batch
durable and a write killed half-way invisible, so SIGKILL at any moment loses at most the batch in flight
(tests/mining/test_store.py kills a writer mid-transaction). Several processes on one machine may share a
store; on a network filesystem give each node its own (SQLite's locking needs a local filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imagenot.errors import ImagenotError, full_disk_cause

log = logging.getLogger(__name__)

_CHUNK = 900  # parameters per IN (...) query, well under SQLite's limit


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingStore:
    """Text -> embedding for one encoder identity, in `<folder>/<identity>.sqlite`."""

    def __init__(self, folder: str | Path, identity: str, dim: int, describe: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.identity = identity
        self.dim = int(dim)
        self.path = self.folder / f"{identity}.sqlite"
        try:
            self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process (WAL)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (h BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            row = self._db.execute("SELECT v FROM meta WHERE k = 'dim'").fetchone()
            if row is None:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('dim', ?)", (str(self.dim),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('encoder', ?)",
                                 (json.dumps(describe or {}, sort_keys=True),))
                self._db.execute("COMMIT")
            elif int(row[0]) != self.dim:
                raise ImagenotError(f"embedding store {self.path} holds {row[0]}-d vectors, the encoder gives "
                                    f"{self.dim}-d: not the same encoder; remove the file or choose another store")
        except sqlite3.DatabaseError as exc:
            self._full_disk(exc)
            raise ImagenotError(f"embedding store {self.path} is not readable ({exc}); remove it to start afresh "
                                "(it only saves encoding time)") from exc
        self.reads = 0
        self.hits = 0
        self.writes = 0

    def __getstate__(self) -> dict[str, Any]:  # reopened, not pickled, in another process
        return {"folder": str(self.folder), "identity": self.identity, "dim": self.dim}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"], state["identity"], state["dim"])  # type: ignore[misc]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors): vectors[i] is the stored embedding of texts[i] where found[i]."""
        keys = [text_key(t) for t in texts]
        where = {k: i for i, k in enumerate(keys)}
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start: start + _CHUNK]
            q = f"SELECT h, v FROM emb WHERE h IN ({','.join('?' * len(chunk))})"
            for h, v in self._db.execute(q, chunk):
                i = where[bytes(h)]
                out[i] = np.frombuffer(v, dtype=np.float32)
                found[i] = True
        self.reads += len(texts)
        self.hits += int(found.sum())
        return found, out

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store a batch in one transaction: after it returns the batch survives any kill."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(f"expected {(len(texts), self.dim)} vectors, got {vectors.shape}")
        rows = [(text_key(t), vectors[i].tobytes()) for i, t in enumerate(texts)]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO emb VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._full_disk(exc)
            raise
        self.writes += len(rows)

    def _full_disk(self, exc: BaseException) -> None:
        """sqlite says "database or disk is full" (or "disk I/O error" on a full device) without an errno:
        made the OSError ENOSPC naming the store, which every stage reports as a full disk (exit 1), never as
        a broken store to delete."""
        if isinstance(exc, sqlite3.Error) and full_disk_cause(exc, self.folder) is not None:
            raise OSError(errno.ENOSPC, f"no space left to grow the embedding store ({exc})", str(self.path)) from exc

    def close(self) -> None:
        self._db.close()
