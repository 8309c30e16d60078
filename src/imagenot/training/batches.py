"""Batches for the trainer, as a pure function of (seed, epoch, step): resumable mid-epoch, DDP-exact.

Order and sharding are `imagenot.data.BatchLoader`'s: rank r of W takes every W-th position of the epoch's
permutation, so the union of the ranks' k-th batches is the k-th batch of one process with the global batch
size. Augmentation draws are made for the whole global batch from a generator seeded by (seed, epoch, step)
and sliced the same way, so W processes augment every image as one process does. Resuming at (epoch, step)
therefore needs no iterator state: the remaining batches are recomputed and the first `step` skipped
without reading them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


def _mix(*parts: int) -> int:
    """A stable 63-bit seed from integers (FNV-1a style), so nearby (epoch, step) pairs get unrelated seeds."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p & 0xFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(_mix(*parts))


def iterate_from(loader: Any, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`loader`'s batches of the current epoch from batch `start` on, without reading the skipped ones."""
    batches = loader.batches()[start:]
    ds = loader.dataset
    if not getattr(ds, "streaming", False):
        for idx in batches:
            yield ds.get_batch(idx)
        return
    from torch.utils.data import DataLoader

    workers = getattr(loader, "num_workers", 2)
    from imagenot.data.loader import private_generator

    dl = DataLoader(ds, batch_sampler=[b.tolist() for b in batches], num_workers=workers,
                    generator=private_generator(),
                    persistent_workers=False)
    for xb, yb in dl:
        yield xb, yb.to(torch.int64)


def augment_batch(x: torch.Tensor, mode: str, padding: int, gen: torch.Generator, rank: int,
                  world_size: int) -> torch.Tensor:
    """Crop-with-padding and flip (the data registry's batched ops) with draws for the global batch."""
    if mode == "none":
        return x
    from imagenot.data import crop_flip, sample_params

    pad = padding if mode == "crop_flip" else 0
    params = sample_params(int(x.shape[0]) * world_size, gen, padding=pad, flip=True)
    return crop_flip(x, params.select(slice(rank, None, world_size)), pad)


class Prefetcher:
    """Prepare the next batches (gather, crop, flip, pin) in a background thread while the model computes.

    Torch ops release the GIL, so the input work of step t+1 overlaps the forward/backward of step t, as a
    DataLoader's workers do, without processes or per-sample Python. The batches and their augmentation draws
    are functions of (seed, epoch, step), so timing cannot change what is trained.
    """

    _DONE = object()

    def __init__(self, produce: Iterator[Any], depth: int = 2) -> None:
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), daemon=True,
                                        name="imagenot-prefetch")
        self._thread.start()

    def _run(self, produce: Iterator[Any]) -> None:
        # One intra-op thread here (OpenMP's setting is per calling thread): the batch work is small, and a
        # second thread team spinning beside the model's would take cores from the model step.
        torch.set_num_threads(1)
        try:
            for item in produce:
                if self._stop.is_set():
                    return
                self._queue.put(item)
            self._queue.put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            self._queue.put(exc)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except Exception:  # noqa: BLE001 - queue.Empty: the producer is finishing
                pass
            self._thread.join(timeout=0.05)
