"""Datasets as uint8 tensors in memory: the form that makes batched augmentation cheap.

A small image dataset (Fashion-MNIST is 47 MB as uint8) fits in memory many times over, and keeping it as
one `[N, C, H, W]` uint8 tensor means a training batch is one index operation instead of N PIL decodes;
resizing happens once at load time, never per step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from imagenot.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class ImageDataset:
    """One split of a dataset, fully in memory.

    `images`: uint8 `[N, C, H, W]` (C = 1 or 3, H = W); `labels`: int64 `[N]` in `0..num_classes-1`;
    `classes[i]` is the wnid or name of label i; `name` is the registry spec it came from; `split` is
    "train" or "val". `meta` holds reader-specific provenance (paths, the dataset card).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str = "train"
    meta: dict[str, Any] = field(default_factory=dict)
    # Sample ids (file path relative to the split folder, webdataset key); None: `#<index>` (array sources).
    keys: list[str] | None = None

    streaming = False

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be int64 [{self.images.shape[0]}], got {self.labels.dtype} "
                             f"{tuple(self.labels.shape)}")
        if self.keys is not None and len(self.keys) != self.images.shape[0]:
            raise ValueError(f"keys must have one entry per image ({self.images.shape[0]}), got {len(self.keys)}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images and int64 labels at `indices` (one gather each)."""
        return self.images[indices], self.labels[indices]

    def original(self, index: int) -> torch.Tensor:
        """The image as stored (uint8 [C, H, W]), for per-sample transforms."""
        return self.images[int(index)]

    def sample_keys(self) -> list[str]:
        """The id of every sample (the predictions file's `key` column)."""
        return list(self.keys) if self.keys is not None else [f"#{i}" for i in range(len(self))]

    def subset(self, indices: torch.Tensor | np.ndarray | list[int]) -> ImageDataset:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        keys = [self.keys[int(i)] for i in idx] if self.keys is not None else None
        return ImageDataset(self.images[idx], self.labels[idx], list(self.classes), self.name, self.split,
                            dict(self.meta), keys)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def channel_stats(self, max_images: int = 10000) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units (imagenot.data.stats: chunked, no float copy)."""
        from imagenot.data.stats import channel_stats

        return channel_stats(self, max_images, channels=self.channels)


def validate(dataset: Any, min_classes: int = 2, what: str | None = None) -> None:
    """Raise `InputError` for data no classifier can be trained or evaluated on.

    Catches, before any training: an empty split, a dataset whose split holds fewer than `min_classes`
    distinct labels (a one-class dataset trains to 100% and means nothing), and labels outside
    `0..num_classes-1` (a class list that does not match the shards).
    """
    where = what or f"{dataset.name} ({dataset.split})"
    n = len(dataset)
    if n == 0:
        raise InputError(f"dataset {where} is empty: no images in this split")
    labels = dataset.labels
    if int(labels.min()) < 0 or int(labels.max()) >= dataset.num_classes:
        raise InputError(f"dataset {where} has labels outside 0..{dataset.num_classes - 1} "
                         f"(min {int(labels.min())}, max {int(labels.max())}): its class list does not match")
    present = int((torch.bincount(labels, minlength=dataset.num_classes) > 0).sum())
    if present < min_classes:
        raise InputError(f"dataset {where} has images of only {present} class(es); a classifier needs at "
                         f"least {min_classes}")


# -- load-time transforms ----------------------------------------------------------------------------------
def resize_center_crop(images: torch.Tensor, size: int, batch: int = 1024) -> torch.Tensor:
    """Resize the shorter side to `size` (antialiased bilinear) and centre-crop to `size` x `size`.

    Runs once at load time on uint8 `[N, C, H, W]` in chunks into one preallocated output, so memory stays the
    input plus the output plus a chunk.
    """
    from torchvision.transforms.v2 import functional as F

    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = images.new_empty((images.shape[0], images.shape[1], size, size))
    for start in range(0, images.shape[0], batch):
        chunk = F.resize(images[start:start + batch], [size], antialias=True)
        out[start:start + batch] = F.center_crop(chunk, [size, size])
    return out


def convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Gray -> RGB by repetition, RGB -> gray by ITU-R 601 luma; None keeps the native channels."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 3 and images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and images.shape[1] == 3:
        from torchvision.transforms.v2 import functional as F

        return F.rgb_to_grayscale(images)
    raise InputError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")


def subsample_indices(labels: np.ndarray, limit: int | None, limit_per_class: int | None,
                      seed: int) -> np.ndarray | None:
    """Indices of a seeded random subsample (sorted, so order stays the source order), or None for all.

    `limit_per_class` takes at most that many per class; `limit` then takes a class-stratified total
    (each class in proportion to its share, rounding handed out by largest remainder), so a few thousand
    Fashion-MNIST images keep all ten classes balanced.
    """
    if limit is None and limit_per_class is None:
        return None
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    per_class = {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    if limit_per_class is not None:
        per_class = {c: idx[:limit_per_class] for c, idx in per_class.items()}
    total = sum(len(v) for v in per_class.values())
    if limit is not None and limit < total:
        classes = sorted(per_class)
        sizes = np.array([len(per_class[c]) for c in classes], dtype=np.float64)
        quota = sizes * limit / total
        take = np.floor(quota).astype(int)
        rest = limit - int(take.sum())
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:rest]] += 1
        per_class = {c: per_class[c][:k] for c, k in zip(classes, take)}
    chosen = np.concatenate([v for v in per_class.values()]) if per_class else np.zeros(0, dtype=np.int64)
    return np.sort(chosen).astype(np.int64)
