"""Sequential webdataset shards: exact batch counts per process, deterministic epochs, exact mid-epoch skips."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.utils.data import DataLoader

from imagenot.data import get_dataset
from imagenot.data.samples import collate
from imagenot.data.streaming import fit_square
from imagenot.data.wds_stream import ShardStream
from tests.training.training_helpers import write_wds


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = write_wds(tmp_path_factory.mktemp("wds") / "ds", {"train": 40, "val": 4}, shard_size=10)
    ds = get_dataset(f"wds:{root}", "train", in_memory=False)
    return sorted(set(ds.records.files)), ds


def _epoch(files, epoch, skip=0, rank=0, world=1, workers=2, batch=4, steps=4, repeats=1):
    stream = ShardStream(files, 40, partial(fit_square, size=8), batch_size=batch, steps_per_epoch=steps, seed=3,
                         rank=rank, world_size=world, shuffle_buffer=8, repeats=repeats)
    stream.set_epoch(epoch, skip)
    dl = DataLoader(stream, batch_size=batch, num_workers=workers, collate_fn=collate)
    return [(x, y) for x, y, _, _ in dl]


def test_every_process_gets_exactly_its_batches_and_epochs_replay(shards):
    files, _ = shards
    a = _epoch(files, 0)
    assert len(a) == 4 and all(x.shape == (4, 3, 8, 8) for x, _ in a)
    b = _epoch(files, 0)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    c = _epoch(files, 1)
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))  # a new shard and sample order
    for rank in range(2):  # 2 processes x 2 workers over 4 shards: one shard per reader, same batch count
        assert len(_epoch(files, 0, rank=rank, world=2, steps=2)) == 2


def test_resuming_mid_epoch_yields_the_rest_of_the_epoch(shards):
    files, _ = shards
    full = _epoch(files, 2, steps=5)
    for skip in (1, 2, 3):
        rest = _epoch(files, 2, skip=skip, steps=5)
        assert len(rest) == 5 - skip
        assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(full[skip:], rest))


def test_repeats_and_fewer_shards_than_readers(shards):
    files, ds = shards
    rep = _epoch(files, 0, repeats=2, workers=1)
    assert len(rep) == 4
    labels = torch.cat([y for _, y in rep])
    assert torch.equal(labels[0::2], labels[1::2])  # each sample twice in a row, augmented apart
    one = _epoch(files[:1], 0, workers=2, steps=2)  # 1 shard, 2 readers: every other sample each
    assert len(one) == 2
    keep = frozenset(ds.records.keys[:12])
    # (no shuffle buffer here: the buffer mixes the start of a reader's next pass into the end of this one)
    stream = ShardStream(files, 12, partial(fit_square, size=8), batch_size=4, steps_per_epoch=3, seed=0,
                         keep_keys=keep, shuffle_buffer=1)
    got = torch.cat([y for _, y, _, _ in DataLoader(stream, batch_size=4, collate_fn=collate)])
    assert sorted(got.tolist()) == sorted(ds.labels[:12].tolist())  # exactly the kept samples
