"""Exact and near-duplicate detection, within a dataset and against reference datasets.

Exact duplicates share the hash of their decoded RGB pixels; near duplicates have 64-bit perceptual hashes
(imagehash.phash) within a Hamming distance. Near-duplicate search uses multi-index hashing: split the 64
bits into d+1 blocks; by pigeonhole two hashes within distance d agree exactly on at least one block, so
only hashes sharing a block value are compared, which keeps the search near-linear instead of quadratic.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


def _blocks(bits: int, d: int) -> list[tuple[int, int]]:
    """(shift, mask) of d+1 nearly equal blocks of a 64-bit hash."""
    n = d + 1
    sizes = [64 // n + (1 if i < 64 % n else 0) for i in range(n)]
    out, shift = [], 0
    for s in sizes:
        out.append((shift, (1 << s) - 1))
        shift += s
    return out


class HammingIndex:
    """Find stored 64-bit hashes within distance `d` of a query."""

    def __init__(self, d: int) -> None:
        if d < 0 or d > 63:
            raise ValueError(f"Hamming distance must be in 0..63, got {d}")
        self.d = d
        self.blocks = _blocks(64, d)
        self.tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in self.blocks]
        self.values: list[int] = []
        self.ids: list[object] = []

    def add(self, value: int, ident: object) -> None:
        pos = len(self.values)
        self.values.append(value)
        self.ids.append(ident)
        for (shift, mask), table in zip(self.blocks, self.tables):
            table[(value >> shift) & mask].append(pos)

    def nearest(self, value: int) -> tuple[object, int] | None:
        """The closest stored id within distance d (first added on ties), or None."""
        best: tuple[int, int] | None = None
        seen: set[int] = set()
        for (shift, mask), table in zip(self.blocks, self.tables):
            for pos in table.get((value >> shift) & mask, ()):
                if pos in seen:
                    continue
                seen.add(pos)
                dist = (self.values[pos] ^ value).bit_count()
                if dist <= self.d and (best is None or (dist, pos) < best):
                    best = (dist, pos)
        if best is None:
            return None
        return self.ids[best[1]], best[0]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Candidate:
    row_id: int
    pixel_sha256: str
    phash: str  # 16 hex digits
    priority: tuple  # smaller is kept first (e.g. (-similarity, row_id))


@dataclass(frozen=True)
class Removal:
    row_id: int
    reason: str  # duplicate_exact | duplicate_near | contamination_exact | contamination_near
    duplicate_of: str
    distance: int


@dataclass
class Reference:
    """Fingerprints of a reference dataset's images, identified as '<name>:<split>:<index>'."""

    name: str
    exact: dict[str, str]
    near: list[tuple[int, str]]


def dedup(
    candidates: Sequence[Candidate],
    near_distance: int,
    references: Iterable[Reference] = (),
    within: bool = True,
) -> list[Removal]:
    """Which rows to remove. Contamination (a reference match) is checked first and wins over a duplicate:
    for the card, an image that is in the reference matters more than a second copy inside the dataset.
    Within the dataset the highest-priority copy is kept (highest similarity, then first row)."""
    removals: list[Removal] = []
    removed: set[int] = set()
    refs = list(references)
    if refs:
        exact: dict[str, str] = {}
        index = HammingIndex(near_distance) if near_distance >= 0 else None
        for ref in refs:
            for h, ident in ref.exact.items():
                exact.setdefault(h, ident)
            if index is not None:
                for value, ident in ref.near:
                    index.add(value, ident)
        for c in candidates:
            if c.pixel_sha256 in exact:
                removals.append(Removal(c.row_id, "contamination_exact", exact[c.pixel_sha256], 0))
                removed.add(c.row_id)
            elif index is not None:
                hit = index.nearest(int(c.phash, 16))
                if hit is not None:
                    removals.append(Removal(c.row_id, "contamination_near", str(hit[0]), hit[1]))
                    removed.add(c.row_id)
    if not within:
        return removals
    kept_exact: dict[str, int] = {}
    kept_near = HammingIndex(near_distance) if near_distance >= 0 else None
    for c in sorted((c for c in candidates if c.row_id not in removed), key=lambda c: c.priority):
        first = kept_exact.get(c.pixel_sha256)
        if first is not None:
            removals.append(Removal(c.row_id, "duplicate_exact", str(first), 0))
            continue
        value = int(c.phash, 16)
        if kept_near is not None:
            hit = kept_near.nearest(value)
            if hit is not None:
                removals.append(Removal(c.row_id, "duplicate_near", str(hit[0]), hit[1]))
                continue
            kept_near.add(value, c.row_id)
        kept_exact[c.pixel_sha256] = c.row_id
    return removals
