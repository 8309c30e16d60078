"""Channel statistics of a dataset in one streaming pass, never holding a float copy of it.

Computed when a run normalises with `normalization="dataset"` (the default of the small-input variants, whose
datasets, gray Fashion-MNIST or clip art on white, are far from ImageNet's statistics). The pass reads an
evenly spaced sample of the training split through `get_batch` in chunks, the same images and the same
float64 sums for an in-memory split and for the same split streamed from files, so both normalise alike.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


class ChannelMoments:
    """Running per-channel sums of pixel values and their squares (float64)."""

    def __init__(self, channels: int) -> None:
        self.sum = torch.zeros(channels, dtype=torch.float64)
        self.sq = torch.zeros(channels, dtype=torch.float64)
        self.count = 0

    def add(self, images: torch.Tensor) -> None:
        """Add uint8 images `[C, H, W]` or `[B, C, H, W]`."""
        x = images if images.ndim == 4 else images[None]
        if x.shape[1] != self.sum.shape[0]:
            x = x.expand(-1, self.sum.shape[0], -1, -1) if x.shape[1] == 1 else x[:, : self.sum.shape[0]]
        v = x.to(torch.float64).div_(255.0)
        self.sum += v.sum(dim=(0, 2, 3))
        self.sq += v.square().sum(dim=(0, 2, 3))
        self.count += int(v.shape[0] * v.shape[2] * v.shape[3])

    def result(self) -> tuple[list[float], list[float]]:
        n = max(self.count, 1)
        mean = self.sum / n
        var = (self.sq / n - mean.square()).clamp_min(0)
        return mean.tolist(), var.sqrt().clamp_min(1e-3).tolist()


def channel_stats(ds: Any, max_images: int = 10000, channels: int = 3, chunk: int = 256
                  ) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units over an evenly spaced sample of at most `max_images`.

    Gray data get one value per requested channel, repeated.
    """
    step = max(1, len(ds) // max_images)
    picked = torch.arange(0, len(ds), step)
    acc = ChannelMoments(int(getattr(ds, "channels", channels)))
    for start in range(0, len(picked), chunk):
        acc.add(ds.get_batch(picked[start:start + chunk])[0])
    mean, std = acc.result()
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    log.info("dataset channel statistics: mean %s, std %s", [round(m, 4) for m in mean], [round(s, 4) for s in std])
    return [float(m) for m in mean], [float(s) for s in std]
