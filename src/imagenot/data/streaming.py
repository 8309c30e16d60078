"""Datasets too large for memory: decoded on demand (in DataLoader workers) to fixed-size uint8 tensors.

A `StreamingDataset` has the same surface as `ImageDataset` except `images`: `labels`, `classes`, `name`,
`split`, `num_classes`, `channels`, `image_size`, `get_batch(indices)`. `BatchLoader` reads it through a
torch DataLoader with workers, so the training loop sees the same (uint8 [B, C, S, S], int64 [B]) batches
either way.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from imagenot.data.readers.files import RecordSet, decode_image

log = logging.getLogger(__name__)


def fit_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to `size` (antialiased) and centre-crop to a square, uint8 in and out."""
    from torchvision.transforms.v2 import functional as F

    h, w = int(img.shape[-2]), int(img.shape[-1])
    if h != size or w != size:
        if min(h, w) != size:
            img = F.resize(img, [size], antialias=True)
        img = F.center_crop(img, [size, size])
    return img


class StreamingDataset(Dataset):
    """Records decoded one by one; `ds[i]` is (uint8 [C, S, S], label)."""

    streaming = True

    def __init__(self, records: RecordSet, image_size: int, channels: int, name: str, split: str,
                 meta: dict[str, Any] | None = None) -> None:
        self.records = records
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.name = name
        self.split = split
        self.classes = list(records.classes)
        self.labels = torch.from_numpy(np.asarray(records.labels, dtype=np.int64))
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return len(self.records)

    def preloaded(self) -> StreamingDataset:
        """This dataset with its files' bytes in memory: the same images (decoded at their stored size by
        `original`) without reading a file again; the per-sample pipeline's `in_memory=true`."""
        return StreamingDataset(self.records.preload(), self.image_size, self.channels, self.name, self.split,
                                {**self.meta, "in_memory": "encoded"})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return fit_square(self.original(index), self.image_size), int(self.labels[index])

    def original(self, index: int) -> torch.Tensor:
        """The decoded image at its own size (uint8 [C, H, W]), for per-sample transforms."""
        return decode_image(self.records.read_bytes(index), self.channels, source=self.records.source(index))

    def encoded(self, index: int) -> bytes:
        """The sample's encoded bytes (for decoding on the GPU)."""
        return self.records.read_bytes(index)

    def sample_keys(self) -> list[str]:
        """The id of every sample (webdataset key, or image path relative to the split folder)."""
        return list(self.records.keys)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = [int(i) for i in indices]
        images = torch.stack([self[i][0] for i in idx]) if idx else torch.zeros(
            (0, self.channels, self.image_size, self.image_size), dtype=torch.uint8)
        return images, self.labels[torch.as_tensor(idx, dtype=torch.int64)]

    def estimated_bytes(self) -> int:
        return len(self) * self.channels * self.image_size**2
