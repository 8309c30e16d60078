"""Deterministic, shardable batches of uint8 images: `BatchLoader`.

An in-memory dataset is batched by indexing its tensor (no workers, no per-sample Python); a streaming one
through a torch DataLoader whose workers decode exactly the indices of each batch. Either way the order is a
function of (seed, epoch, rank, world_size) only, like `DistributedSampler`:

* training (`drop_last=True`, the default with `shuffle=True`): the epoch's permutation is cut to a multiple
  of `world_size`, and rank r takes positions r, r+W, r+2W, ...: disjoint, equal-size parts. Batch k of
  rank r then holds positions [k*B*W, (k+1)*B*W) of the permutation, so the union over ranks of their k-th
  batches is exactly the k-th batch of a single process with batch size B*W (same global batches).
* evaluation (`shuffle=False, drop_last=False`, `even=False` by default): rank r takes positions r, r+W, ...
  of the identity order: every index exactly once across ranks, no duplicates, parts differ by at most one
  (sum correct counts across ranks; nothing to de-duplicate). `even=True` pads by wrapping around instead,
  as DistributedSampler does, when every rank needs the same number of batches; `padded_mask()` marks the
  repeats so they can be excluded.
* repeated augmentation (`repeats=k`, torchvision's RASampler): the epoch's permutation is cut to n/k images,
  each appearing k times in a row, so that the k copies of an image land on k different ranks (or, in one
  process, in the same batch) and are augmented differently; the epoch keeps its length n.

`positions()` gives each visited sample's position in the epoch's global order, the same whatever the
number of processes; per-sample augmentation seeds are derived from it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import torch

log = logging.getLogger(__name__)


def private_generator() -> torch.Generator:
    """A DataLoader's own generator: without one, creating an iterator draws from torch's global RNG, which
    shifts the dropout stream of a resumed run. Augmentation is seeded per sample, so its value is unused."""
    return torch.Generator().manual_seed(0)


class BatchLoader:
    """Batches `(uint8 [B, C, H, W], int64 [B])` of `dataset` for one rank; call `set_epoch(e)` each epoch."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool | None = None,
        rank: int = 0,
        world_size: int = 1,
        even: bool | None = None,
        num_workers: int = 2,
        repeats: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = shuffle if drop_last is None else drop_last
        self.even = self.drop_last if even is None else even
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.repeats = max(1, int(repeats))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> torch.Tensor:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g)
            if self.repeats > 1:
                order = order.repeat_interleave(self.repeats)[:n]
            return order
        return torch.arange(n)

    def _rank_positions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dataset indices of this rank in order, mask of wrapped-around padding, global positions)."""
        order = self._order()
        n, w = len(order), self.world_size
        padded = torch.zeros(n, dtype=torch.bool)
        if w > 1 or self.drop_last:
            if self.drop_last:
                keep = (n // w) * w
                order, padded = order[:keep], padded[:keep]
            elif self.even and n % w:
                extra = math.ceil(n / w) * w - n
                reps = order.repeat(math.ceil(extra / max(n, 1)))[:extra] if n else order[:0]
                order = torch.cat([order, reps])
                padded = torch.cat([padded, torch.ones(extra, dtype=torch.bool)])
        pos = torch.arange(len(order))
        return order[self.rank::w], padded[self.rank::w], pos[self.rank::w]

    def indices(self) -> torch.Tensor:
        """Dataset indices this rank visits this epoch, in order."""
        return self._rank_positions()[0]

    def padded_mask(self) -> torch.Tensor:
        """True where `indices()` repeats an index only to even out ranks (`even=True`, no drop_last)."""
        return self._rank_positions()[1]

    def positions(self) -> torch.Tensor:
        """Position of each of `indices()` in the epoch's global order (independent of the process count)."""
        return self._rank_positions()[2]

    def batches(self) -> list[torch.Tensor]:
        return [idx for idx, _ in self.batches_with_positions()]

    def batches_with_positions(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches as (dataset indices, global positions) pairs."""
        idx, _, pos = self._rank_positions()
        out = list(zip(torch.split(idx, self.batch_size), torch.split(pos, self.batch_size)))
        if self.drop_last and out and len(out[-1][0]) < self.batch_size:
            out.pop()
        return out

    def __len__(self) -> int:
        n = len(self.indices())
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for xb, yb, _ in self.iter_indexed():
            yield xb, yb

    def iter_indexed(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Like iteration, with the dataset indices of each batch as a third element."""
        batches = self.batches()
        if not getattr(self.dataset, "streaming", False):
            for idx in batches:
                xb, yb = self.dataset.get_batch(idx)
                yield xb, yb, idx
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(self.dataset, batch_sampler=[b.tolist() for b in batches],
                            num_workers=self.num_workers, persistent_workers=False, generator=private_generator())
        for idx, (xb, yb) in zip(batches, loader):
            yield xb, yb.to(torch.int64), idx
