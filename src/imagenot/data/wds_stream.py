"""Webdataset shards read sequentially: the training input of large `wds:` datasets.

Random access into tar shards turns a training epoch into millions of seeks; reading whole shards in order is
what keeps a GPU fed from network or spinning storage. `ShardStream` is an IterableDataset built on
webdataset's own pieces (`tarfile_to_samples` to read shards, `shuffle` for the sample buffer):

* each epoch shuffles the shard list with a seed of (seed, epoch) (webdataset's shard shuffle), splits it by
  process (rank r of W takes every W-th shard, webdataset's split_by_node) and by DataLoader worker
  (split_by_worker); with fewer shards than readers every reader reads all shards and keeps every
  readers-th sample instead;
* each reader mixes samples through a shuffle buffer seeded by (seed, epoch, reader) and cycles over its
  shards until its share of the epoch is done, so every process yields exactly `steps_per_epoch` batches
  (no DDP rank waits for another) and each sample is seen about once per epoch (the buffer lets the start
  of a reader's next pass mix into the end of this one, and unequal shards make some readers wrap early);
* each sample's augmentation is seeded by (seed, epoch, reader, sample number), and every sample is
  repeated `repeats` times with different draws (repeated augmentation).

Exactness: the stream of an epoch is a function of (seed, epoch, rank, world size, number of workers) (the
DataLoader takes batches from its workers round-robin, and after a skip the workers' roles rotate to match), so
resuming at an epoch boundary gives the batches an uninterrupted run gets; resuming mid-epoch (`set_epoch(e,
skip)`) re-reads the skipped batches' bytes without decoding them and is exact as well, provided the run
resumes with the same number of processes and loader workers (otherwise the shard split differs and the
rest of the run sees a differently ordered, equally random stream).

Items are `(image, label, -1, seed)` like `imagenot.data.samples.SampleDataset`'s (index -1: a stream does
not number its samples), so the same `collate` and device decode apply.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from imagenot.data.readers.files import WDS_IMAGE_KEYS, decode_image
from imagenot.data.samples import mix_seed
from imagenot.data.transforms import apply_seeded
from imagenot.errors import InputError

log = logging.getLogger(__name__)


class ShardStream(IterableDataset):
    def __init__(
        self,
        shards: list[str],
        samples: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
        *,
        batch_size: int,
        steps_per_epoch: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 2000,
        repeats: int = 1,
        channels: int = 3,
        keep_keys: frozenset[str] | None = None,
        decode: bool = True,
    ) -> None:
        if not shards:
            raise InputError("no shards to stream")
        self.shards = [str(s) for s in shards]
        self.samples = int(samples)
        self.transform = transform
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle_buffer = int(shuffle_buffer)
        self.repeats = max(1, int(repeats))
        self.channels = int(channels)
        self.keep_keys = keep_keys
        self.decode = decode
        # (epoch, batches to skip): shared memory, so persistent workers see the main process's set_epoch.
        self._state = torch.zeros(2, dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self._state[0] = int(epoch)
        self._state[1] = int(skip_batches)

    def _reader(self) -> tuple[int, int]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return worker, workers

    def _my_shards(self, epoch: int, cycle: int, worker: int, workers: int) -> tuple[list[str], int, int]:
        """(shards this reader reads in this cycle, sample stride, sample offset)."""
        order = list(self.shards)
        random.Random(mix_seed(self.seed, 31337, epoch, cycle)).shuffle(order)
        mine = order[self.rank::self.world_size]
        if len(order) >= self.world_size and len(mine) >= workers:
            return mine[worker::workers], 1, 0
        readers = self.world_size * workers
        return order, readers, self.rank * workers + worker

    def _raw(self, epoch: int, worker: int, workers: int) -> Iterator[dict[str, Any]]:
        import webdataset as wds

        cycle = 0
        while True:
            shards, stride, offset = self._my_shards(epoch, cycle, worker, workers)
            urls = [{"url": s} for s in shards]
            n = 0
            for sample in wds.tarfile_to_samples()(iter(urls)):
                if self.keep_keys is not None and sample.get("__key__") not in self.keep_keys:
                    continue
                if n % stride == offset:
                    yield sample
                n += 1
            cycle += 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, int, int]]:
        import webdataset as wds

        epoch, skip = int(self._state[0]), int(self._state[1])
        loader_worker, workers = self._reader()
        # DataLoader asks its workers round-robin from worker 0: after skipping `skip` batches, its worker w
        # must produce what reader (w + skip) % workers produces in an uninterrupted epoch.
        worker = (loader_worker + skip) % workers
        reader = self.rank * workers + worker
        # This reader's batches are the rank's batches worker, worker + workers, ...: how many it owes and
        # how many of them lie before `skip` (read, not decoded, when resuming mid-epoch).
        owed = len(range(worker, self.steps_per_epoch, workers))
        skipped = len(range(worker, min(skip, self.steps_per_epoch), workers))
        todo = owed * self.batch_size
        drop = skipped * self.batch_size
        rng = random.Random(mix_seed(self.seed, 4099, epoch, reader))
        stream = wds.shuffle(self.shuffle_buffer, min(self.shuffle_buffer, 100), rng=rng)(
            self._raw(epoch, worker, workers))
        count = 0
        for sample in stream:
            for _ in range(self.repeats):
                if count >= todo:
                    return
                seed = mix_seed(self.seed, 7919, epoch, reader, count)
                count += 1
                if count <= drop:
                    continue
                yield self._item(sample, seed)

    def _item(self, sample: dict[str, Any], seed: int) -> tuple[torch.Tensor, int, int, int]:
        data = next((sample[k] for k in WDS_IMAGE_KEYS if k in sample), None)
        where = f"{sample.get('__url__')}:{sample.get('__key__')}"
        if data is None or "cls" not in sample:
            raise InputError("sample lacks an image (jpg/png) or a cls member", path=where)
        label = int(bytes(sample["cls"]).decode().strip())
        if not self.decode:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), label, -1, seed
        image = decode_image(bytes(data), self.channels, source=where)
        if self.transform is not None:
            image = apply_seeded(self.transform, image, seed)
        return image.contiguous(), label, -1, seed
