"""Batched augmentation of uint8 image batches on any device: random crop with padding, horizontal flip,
gray -> RGB, resize to the model's input, float conversion and normalisation, in a few tensor ops.

Why batched: per-sample PIL transforms in DataLoader workers dominate the step time of small models on a CPU;
one gather over a uint8 batch does the same crop for 128 images in about a millisecond.
Why parameters are drawn separately (`sample`) from applying them (`apply`): under DDP every process can
draw the parameters of the whole global batch from one seeded generator and apply its own slice, so each
image is augmented the same way whatever the number of processes. Draws are made on the CPU generator and
moved to the batch's device, so they are the same on CPU and GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class AugmentParams:
    """Per-image draws: crop offsets `dy`, `dx` in `0..2*padding` and `flip` (bool), each `[B]` on the CPU."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor

    def __len__(self) -> int:
        return int(self.flip.shape[0])

    def select(self, index: torch.Tensor | slice) -> AugmentParams:
        """The draws of a part of the batch (e.g. `params.select(slice(rank, None, world_size))`)."""
        return AugmentParams(self.dy[index], self.dx[index], self.flip[index])


def sample_params(n: int, generator: torch.Generator, padding: int = 4, flip: bool = True) -> AugmentParams:
    """Draw crop offsets and flips for `n` images from `generator` (a CPU torch.Generator)."""
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    fl = (torch.rand(n, generator=generator) < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    return AugmentParams(dy, dx, fl)


def crop_flip(x: torch.Tensor, params: AugmentParams, padding: int = 4) -> torch.Tensor:
    """Random crop (zero padding, like torchvision's RandomCrop(padding=p)) and flip of a [B, C, H, W] batch.

    One pad and one gather: row and column indices per image select the crop window from the padded batch.
    Works on any dtype and device; returns the same dtype.
    """
    b, c, h, w = x.shape
    if b == 0:
        return x
    dev = x.device
    out = x
    if padding > 0:
        xp = F.pad(x, (padding, padding, padding, padding))
        rows = params.dy.to(dev)[:, None] + torch.arange(h, device=dev)[None]  # [B, H]
        cols = params.dx.to(dev)[:, None] + torch.arange(w, device=dev)[None]  # [B, W]
        bidx = torch.arange(b, device=dev)[:, None, None]
        out = xp[bidx, :, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
        out = out.permute(0, 3, 1, 2)
    if bool(params.flip.any()):
        mask = params.flip.to(dev)[:, None, None, None]
        out = torch.where(mask, out.flip(-1), out)
    return out.contiguous()


def to_float_normalized(x: torch.Tensor, size: int | None = None, channels: int | None = 3,
                        mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 normalised, with gray expanded to `channels` and resized to `size`.

    The evaluation transform (no randomness). Resizing is bilinear, antialiased when shrinking.
    """
    y = x.to(torch.float32).div_(255.0)
    if channels is not None and y.shape[1] != channels:
        if y.shape[1] == 1:
            y = y.expand(-1, channels, -1, -1)
        elif channels == 1:
            y = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3])
        else:
            raise ValueError(f"cannot turn {y.shape[1]}-channel images into {channels} channels")
    if size is not None and (y.shape[-1] != size or y.shape[-2] != size) and y.shape[0] > 0:
        shrink = size < y.shape[-1]
        y = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    c = y.shape[1]
    m = torch.as_tensor(_per_channel(mean, c, "mean"), dtype=y.dtype, device=y.device)
    s = torch.as_tensor(_per_channel(std, c, "std"), dtype=y.dtype, device=y.device)
    return (y - m.view(1, c, 1, 1)) / s.view(1, c, 1, 1)


def _per_channel(values: Sequence[float], c: int, what: str) -> list[float]:
    values = [float(v) for v in values]
    if len(values) == 1:
        return values * c
    if len(values) >= c:
        return values[:c]  # e.g. RGB statistics for a batch kept gray (channels=None)
    raise ValueError(f"{what} has {len(values)} values for {c} channels")


def augment(x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True,
            size: int | None = None, channels: int | None = 3, mean: Sequence[float] = DEFAULT_MEAN,
            std: Sequence[float] = DEFAULT_STD) -> torch.Tensor:
    """The training transform: crop with padding + flip (on uint8), then `to_float_normalized`."""
    params = sample_params(int(x.shape[0]), generator, padding, flip)
    return to_float_normalized(crop_flip(x, params, padding), size, channels, mean, std)


@dataclass(frozen=True)
class BatchAugment:
    """The training and evaluation transforms with their settings bound.

    `aug(x, gen)` augments a uint8 batch; `aug.sample(n, gen)` + `aug.apply(x, params)` split the draws from
    their application (DDP); `aug.eval(x)` is the deterministic evaluation transform.
    """

    padding: int = 4
    flip: bool = True
    size: int | None = None
    channels: int | None = 3
    mean: tuple[float, ...] = DEFAULT_MEAN
    std: tuple[float, ...] = DEFAULT_STD

    def sample(self, n: int, generator: torch.Generator) -> AugmentParams:
        return sample_params(n, generator, self.padding, self.flip)

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        return to_float_normalized(crop_flip(x, params, self.padding), self.size, self.channels, self.mean,
                                   self.std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.sample(int(x.shape[0]), generator))

    def eval(self, x: torch.Tensor) -> torch.Tensor:
        return to_float_normalized(x, self.size, self.channels, self.mean, self.std)
