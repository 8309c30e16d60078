"""A learnable synthetic dataset for tests: each class is a fixed random smooth pattern, each image a shifted,
noisy, contrast-jittered copy of its class's pattern.

Why not pure noise: tests of the trainer need a loss that actually falls and accuracy above chance in a few
steps; why not a real dataset: tests must not depend on files. Train and val share the class patterns (drawn
from `seed`) but not the per-image draws.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def make_synthetic(split: str, num_classes: int = 10, size: int = 32, n: int | None = None,
                   channels: int = 3, seed: int = 0, noise: float = 0.35) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if n is None:
        n = 50 * num_classes if split == "train" else 10 * num_classes
    gen = torch.Generator().manual_seed(seed)
    # class patterns: low-frequency noise upsampled, so they survive crops, flips and resizing
    coarse = torch.rand(num_classes, channels, 4, 4, generator=gen)
    patterns = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    draw = torch.Generator().manual_seed(seed * 1000 + (1 if split == "train" else 2))
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=draw)]
    shift = torch.randint(-size // 8, size // 8 + 1, (n, 2), generator=draw)
    contrast = 0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=draw)
    images = patterns[labels] * contrast
    images = torch.stack([torch.roll(img, (int(s[0]), int(s[1])), dims=(1, 2)) for img, s in zip(images, shift)]) \
        if n else images
    images = images + noise * torch.randn(images.shape, generator=draw) * 0.5
    out = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return out.numpy(), labels.numpy().astype(np.int64), [f"class{i}" for i in range(num_classes)]
