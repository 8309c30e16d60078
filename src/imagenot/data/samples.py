"""Random-access per-sample reading: (index, seed) -> transformed uint8 image, in DataLoader workers.

`SampleDataset` wraps any dataset of the registry that can give one image at its own size (`original(i)`:
an in-memory `ImageDataset` or a file-backed `StreamingDataset`) and applies a per-sample transform seeded by
the item's seed. `SeededBatches` is the DataLoader batch sampler: it turns a `BatchLoader`'s batches of the
current epoch into lists of (index, seed) items, the seed a function of (seed, epoch, global position), so
that the images a rank receives, and their augmentation, depend neither on worker scheduling nor on the
number of processes. `decode=False` hands the encoded bytes through instead, for decoding on the GPU.

Items come back as `(image, label, index, seed)` and `collate` stacks them into
`(uint8 [B, C, S, S] or a list of encoded tensors, int64 labels, int64 indices, int64 seeds)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from imagenot.data.transforms import apply_seeded, to_channels

log = logging.getLogger(__name__)


def mix_seed(*parts: int) -> int:
    """A stable 63-bit seed from integers (FNV-1a style), so nearby positions get unrelated seeds."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


class SampleDataset(Dataset):
    """Map-style view of `source` whose items are `(index, seed)` pairs (see module docstring)."""

    def __init__(self, source: Any, transform: Callable[[torch.Tensor], torch.Tensor] | None,
                 channels: int = 3, decode: bool = True) -> None:
        if decode and not hasattr(source, "original"):
            raise TypeError(f"{type(source).__name__} cannot give single images")
        if not decode and not hasattr(source, "encoded"):
            raise TypeError(f"{type(source).__name__} holds no encoded images to decode on the device")
        self.source = source
        self.transform = transform
        self.channels = int(channels)
        self.decode = decode
        self.labels = source.labels

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, int, int, int]:
        index, seed = int(item[0]), int(item[1])
        label = int(self.labels[index])
        if not self.decode:
            data = self.source.encoded(index)
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), label, index, seed
        image = to_channels(self.source.original(index), self.channels)
        if self.transform is not None:
            image = apply_seeded(self.transform, image, seed)
        return image.contiguous(), label, index, seed


class SeededBatches:
    """A DataLoader batch sampler over a `BatchLoader`: this epoch's batches from `first` on, as items.

    Lives in the main process (DataLoader sends its items to the workers), so `set_epoch` reaches persistent
    workers without any shared state.
    """

    def __init__(self, loader: Any, seed: int, salt: int = 0) -> None:
        self.loader = loader
        self.seed = int(seed)
        self.salt = int(salt)
        self.epoch = 0
        self.first = 0

    def set_epoch(self, epoch: int, first: int = 0) -> None:
        self.epoch, self.first = int(epoch), int(first)
        self.loader.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for idx, pos in self.loader.batches_with_positions()[self.first:]:
            yield [(int(i), mix_seed(self.seed, self.salt, self.epoch, int(p))) for i, p in zip(idx, pos)]

    def __len__(self) -> int:
        return max(len(self.loader) - self.first, 0)


def collate(items: list[tuple[torch.Tensor, int, int, int]]) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels, index, seeds = zip(*items)
    decoded = images[0].ndim == 3
    x = torch.stack(images) if decoded else list(images)
    return (x, torch.tensor(labels, dtype=torch.int64), torch.tensor(index, dtype=torch.int64),
            torch.tensor(seeds, dtype=torch.int64))


def decode_on_device(encoded: list[torch.Tensor], seeds: torch.Tensor, transform: Callable | None,
                     device: torch.device, channels: int = 3) -> torch.Tensor:
    """Decode a batch of encoded images on `device` (JPEGs with nvjpeg on CUDA), then transform each.

    JPEGs are decoded together (`torchvision.io.decode_jpeg` on a list); other formats fall back to the
    CPU decoder. The transform runs per image on the device with the same seeded draws as in a worker.
    """
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    from imagenot.data.orientation import exif_orientation, orient

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    is_jpeg = [len(e) > 2 and int(e[0]) == 0xFF and int(e[1]) == 0xD8 for e in encoded]
    out: list[torch.Tensor | None] = [None] * len(encoded)
    jpegs = [i for i, j in enumerate(is_jpeg) if j]
    if jpegs:
        decoded = decode_jpeg([encoded[i] for i in jpegs], mode=mode, device=device)
        for i, img in zip(jpegs, decoded):  # nvjpeg cannot apply EXIF orientation: done here
            out[i] = orient(img, exif_orientation(encoded[i][:65536].numpy().tobytes()))
    for i, j in enumerate(is_jpeg):
        if not j:
            img = decode_image(encoded[i], mode=mode)
            out[i] = orient(img, exif_orientation(encoded[i][:65536].numpy().tobytes())).to(device)
    images = []
    for img, seed in zip(out, seeds.tolist()):
        assert img is not None
        images.append(apply_seeded(transform, img, seed) if transform is not None else img)
    return torch.stack(images)
