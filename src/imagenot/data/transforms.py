"""Per-sample transforms at decode time, torchvision's ImageNet presets on uint8 tensors.

Full-size models are trained the way torchvision's references train them: each decoded image, at its
original size, goes through RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) and a horizontal flip, then the
recipe's auto-augment policy and RandomErasing; evaluation is Resize (shorter side) + CenterCrop. These run in
DataLoader workers on uint8 `[C, H, W]` tensors (torchvision.transforms.v2), so a batch crosses to the device
as uint8 and is converted and normalised there once (the trainer's single normalisation step), whatever the
data path. RandomErasing therefore fills with the normalisation mean in uint8, which normalises to 0, the
value torchvision's post-normalisation erasing writes.

Why seeded per sample (`apply_seeded`): a sample's augmentation is then a function of (seed, epoch,
position) alone, not of which worker process drew it or when, so resuming mid-epoch, changing the number of
workers or processes, and reading the same images from memory or from files all give identical batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)


def interpolation_mode(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    try:
        return InterpolationMode(name)
    except ValueError:
        raise ValueError(f"unknown interpolation {name!r}; known: bilinear, bicubic, nearest") from None


@dataclass(frozen=True)
class TrainTransform:
    """RandomResizedCrop + flip (+ auto-augment, + RandomErasing) on a uint8 image; output `[C, crop, crop]`."""

    crop: int
    interpolation: str = "bilinear"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    auto_augment: str | None = None
    ra_magnitude: int = 9
    augmix_severity: int = 3
    random_erase: float = 0.0
    erase_value: tuple[int, ...] = (0, 0, 0)

    def build(self) -> Callable[[torch.Tensor], torch.Tensor]:
        from torchvision.transforms import v2

        interp = interpolation_mode(self.interpolation)
        steps: list[Any] = [v2.RandomResizedCrop(self.crop, scale=self.scale, ratio=self.ratio,
                                                 interpolation=interp, antialias=True)]
        if self.hflip > 0:
            steps.append(v2.RandomHorizontalFlip(self.hflip))
        if self.auto_augment is not None:
            steps.append(auto_augment(self.auto_augment, interp, self.ra_magnitude, self.augmix_severity))
        if self.random_erase > 0:
            steps.append(v2.RandomErasing(p=self.random_erase, value=list(self.erase_value)))
        return v2.Compose(steps)


@dataclass(frozen=True)
class EvalTransform:
    """Resize of the shorter side to `resize`, then CenterCrop to `crop` (torchvision's eval preset)."""

    resize: int
    crop: int
    interpolation: str = "bilinear"

    def build(self) -> Callable[[torch.Tensor], torch.Tensor]:
        from torchvision.transforms import v2

        return v2.Compose([
            v2.Resize(self.resize, interpolation=interpolation_mode(self.interpolation), antialias=True),
            v2.CenterCrop(self.crop),
        ])


def auto_augment(policy: str, interpolation: Any, ra_magnitude: int = 9, augmix_severity: int = 3) -> Any:
    """The torchvision v2 transform for a policy name as train.py's `--auto-augment` spells it."""
    from torchvision.transforms import v2

    if policy == "ra":
        return v2.RandAugment(interpolation=interpolation, magnitude=ra_magnitude)
    if policy == "ta_wide":
        return v2.TrivialAugmentWide(interpolation=interpolation)
    if policy == "augmix":
        return v2.AugMix(interpolation=interpolation, severity=augmix_severity)
    try:
        return v2.AutoAugment(v2.AutoAugmentPolicy(policy), interpolation=interpolation)
    except ValueError:
        raise ValueError(f"unknown auto-augment policy {policy!r}; known: ta_wide, ra, augmix, imagenet, cifar10, "
                         "svhn") from None


def erase_fill(mean: Sequence[float]) -> tuple[int, ...]:
    """uint8 fill whose normalised value is (within 1/255) 0: the normalisation mean."""
    return tuple(int(round(255 * float(m))) for m in mean)


def apply_seeded(transform: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, seed: int) -> torch.Tensor:
    """`transform(image)` with torch's CPU generator seeded by `seed`, restoring its state afterwards.

    torchvision's v2 transforms draw their parameters from the default CPU generator; seeding only that one
    (not CUDA's) keeps the draws a function of `seed` and leaves every other random stream untouched.
    """
    gen = torch.random.default_generator
    state = gen.get_state()
    try:
        gen.manual_seed(int(seed) & 0x7FFFFFFFFFFFFFFF)
        return transform(image)
    finally:
        gen.set_state(state)


def to_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 `[C, H, W]` with `channels` channels (gray repeated to RGB, RGB to luma)."""
    if image.shape[0] == channels:
        return image
    if image.shape[0] == 1 and channels == 3:
        return image.expand(3, -1, -1)
    if image.shape[0] == 3 and channels == 1:
        from torchvision.transforms.v2 import functional as F

        return F.rgb_to_grayscale(image)
    raise ValueError(f"cannot turn a {image.shape[0]}-channel image into {channels} channels")
