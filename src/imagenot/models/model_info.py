"""What a model entry is: `ModelInfo`, the record every registered architecture carries, and its factory type.

A leaf module: `imagenot.models.full_size` and `imagenot.models.small` describe their entries with it and
`imagenot.models.info` (the registry) registers them, so no import runs back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

Factory = Callable[..., "nn.Module"]


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry.

    `input_size` is the square input side (px) the architecture is meant for; `min_input_size` the smallest
    side it accepts (smaller inputs raise in a pooling layer or a patch embedding). `full_size` is True for
    the torchvision architectures at their published size, False for the small-input variants.
    `torchvision_builder` names the `torchvision.models` builder used (None for small-input variants).
    `fixed_input` is True when the model is built for exactly one input size (ViT: its position embeddings),
    in which case `get_model(..., input_size=S)` builds it for S.
    """

    name: str
    family: str
    year: int
    input_size: int
    min_input_size: int
    full_size: bool
    torchvision_builder: str | None
    description: str
    fixed_input: bool = False
