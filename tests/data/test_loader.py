"""BatchLoader sharding and determinism, batched augmentation against torchvision's own transforms."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from imagenot.data import (
    BatchAugment,
    BatchLoader,
    augment,
    crop_flip,
    get_dataset,
    sample_params,
    to_float_normalized,
)
from imagenot.data.augmentation import AugmentParams


class _Ids:
    """A dataset whose images encode their own index, to check which samples a batch holds."""

    streaming = False

    def __init__(self, n: int) -> None:
        self.labels = torch.arange(n) % 3
        self.images = torch.arange(n).view(n, 1, 1, 1).to(torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def get_batch(self, idx):
        return self.images[idx], self.labels[idx]


@pytest.mark.parametrize("n", [1, 7, 10, 103])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_eval_sharding_covers_every_index_once(n, world):
    ds = _Ids(n)
    seen = []
    for rank in range(world):
        loader = BatchLoader(ds, batch_size=4, shuffle=False, rank=rank, world_size=world)
        for xb, _ in loader:
            seen.extend(xb.view(-1).tolist())
    assert sorted(seen) == list(range(n))


@pytest.mark.parametrize("n,world,batch", [(103, 2, 8), (100, 4, 5), (50, 3, 4)])
def test_train_sharding_disjoint_equal_and_same_global_batches(n, world, batch):
    ds = _Ids(n)
    per_rank = []
    for rank in range(world):
        loader = BatchLoader(ds, batch_size=batch, shuffle=True, seed=5, rank=rank, world_size=world)
        loader.set_epoch(3)
        per_rank.append([xb.view(-1) for xb, _ in loader])
    flat = [torch.cat(b) for b in per_rank]
    assert len({len(f) for f in flat}) == 1  # equal size
    union = torch.cat(flat)
    assert len(set(union.tolist())) == len(union)  # disjoint
    single = BatchLoader(ds, batch_size=batch * world, shuffle=True, seed=5)
    single.set_epoch(3)
    for k, (xb, _) in enumerate(single):
        if k >= len(per_rank[0]):
            break
        together = torch.cat([per_rank[r][k] for r in range(world)])
        assert sorted(together.tolist()) == sorted(xb.view(-1).tolist())


def test_even_padding_marks_repeats():
    ds = _Ids(10)
    got, real = [], []
    for rank in range(3):
        loader = BatchLoader(ds, batch_size=2, shuffle=False, drop_last=False, even=True, rank=rank, world_size=3)
        idx, pad = loader.indices(), loader.padded_mask()
        assert len(idx) == 4
        got.extend(idx.tolist())
        real.extend(idx[~pad].tolist())
    assert len(got) == 12 and sorted(real) == list(range(10))


def test_epochs_and_seeds_are_deterministic():
    ds = _Ids(50)
    a, b = BatchLoader(ds, 8, seed=1), BatchLoader(ds, 8, seed=1)
    assert torch.equal(a.indices(), b.indices())
    first = a.indices().clone()
    a.set_epoch(1)
    assert not torch.equal(first, a.indices())
    assert not torch.equal(first, BatchLoader(ds, 8, seed=2).indices())
    assert len(a) == 6 and len(BatchLoader(ds, 8, shuffle=False)) == 7


def test_streaming_loader_matches_in_memory(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path / "cache"))
    for c in range(2):
        for i in range(6):
            (tmp_path / "f" / f"c{c}").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (10, 12), (40 * i, 100 * c, 7)).save(tmp_path / "f" / f"c{c}" / f"{i}.png")
    mem = get_dataset(f"imagefolder:{tmp_path / 'f'}", "train", val_fraction=0.0, image_size=8)
    stream = get_dataset(f"imagefolder:{tmp_path / 'f'}", "train", val_fraction=0.0, image_size=8,
                         in_memory=False)
    la = BatchLoader(mem, 5, seed=3)
    lb = BatchLoader(stream, 5, seed=3, num_workers=1)
    for (xa, ya), (xb, yb) in zip(la, lb, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


# -- augmentation --------------------------------------------------------------------------------------------
def test_crop_flip_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 12, 10), dtype=torch.uint8, generator=g)
    params = sample_params(16, g, padding=3)
    out = crop_flip(x, params, padding=3)
    for i in range(16):
        ref = TF.pad(x[i], [3, 3, 3, 3], fill=0)
        ref = TF.crop(ref, int(params.dy[i]), int(params.dx[i]), 12, 10)
        if params.flip[i]:
            ref = TF.horizontal_flip(ref)
        assert torch.equal(out[i], ref)
    assert params.flip.any() and not params.flip.all()
    centre = AugmentParams(torch.full((16,), 3), torch.full((16,), 3), torch.zeros(16, dtype=torch.bool))
    assert torch.equal(crop_flip(x, centre, padding=3), x)


def test_augment_is_seeded_and_slices_like_the_whole():
    x = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    a = augment(x, torch.Generator().manual_seed(7), size=32)
    b = augment(x, torch.Generator().manual_seed(7), size=32)
    c = augment(x, torch.Generator().manual_seed(8), size=32)
    assert a.shape == (32, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    aug = BatchAugment(size=32)
    params = aug.sample(32, torch.Generator().manual_seed(7))
    assert torch.equal(aug.apply(x, params), a)
    part = slice(1, None, 4)  # rank 1 of 4
    assert torch.equal(aug.apply(x[part], params.select(part)), a[part])


def test_to_float_normalized():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 4, 4)
    y = to_float_normalized(x, size=8, channels=3)
    assert y.shape == (2, 3, 8, 8)
    assert torch.allclose(y[0], torch.full_like(y[0], -1.0)) and torch.allclose(y[1], torch.ones_like(y[1]))
    z = to_float_normalized(x, channels=None, mean=(0.0,), std=(1.0,))
    assert z.shape == (2, 1, 4, 4) and float(z.max()) == 1.0
    eval_aug = BatchAugment(size=8).eval(x)
    assert torch.equal(eval_aug, y)
