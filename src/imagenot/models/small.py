"""Small-input variants of the six seed families, for 32 px (`<family>_s32`) and 64 px (`<family>_s64`) inputs.

Why they exist: the full-size torchvision models downsample 32x before their head and cost 0.3-3 s per SGD
step of 64 images on 2 CPU cores, so a CPU-scale study (the embedded demo trains 6 families on 2 datasets plus
12 fine-tunings in minutes) needs versions that keep each family's defining design at a CPU budget. The widths
are set by the demo's plateau (SPEC section 6): at 0.4-1.0M parameters one Fashion-MNIST epoch of the six cost
330 CPU-seconds and 4x the epochs still added 2.6-3.9 points; at these widths (about half, the CIFAR ResNets'
16-32-64 and DenseNet-BC's growth 12) an image trains 1.9-2.7x faster (docs/benchmarks.md), so the demo trains 4
times as long:

| name | family trait kept | built from | params (10 classes) |
|---|---|---|---|
| `alexnet_s32/_s64` | large strided first kernel (5x5/2; 7x7/4 at 64 px), overlapping max-pooling, five ReLU convs without BN, 3-layer FC head with dropout | `torchvision.models.AlexNet.forward` over miniature parts | 0.24M |
| `vgg_s32/_s64` | VGG-11's configuration at an eighth of its width: only stacked 3x3 conv+BN and 2x2 max-pooling, FC head | `torchvision.models.vgg.make_layers(cfg)` + `VGG.forward` | 0.15M |
| `resnet_s32/_s64` | residual BasicBlocks with BN (1, 2, 2 blocks at widths 16-64), 3x3 stem, no max-pool | `torchvision.models.resnet.BasicBlock` | 0.17M |
| `densenet_s32/_s64` | DenseNet-BC: dense blocks (1, 2, 4, 6 layers, growth 12), bottlenecks, compressing transitions | `torchvision.models.DenseNet` with a 3x3 stem | 0.10M |
| `efficientnet_s32/_s64` | MBConv (expansion 4-6) with squeeze-excitation, SiLU, 3x3/5x5 depthwise | `torchvision.models.EfficientNet` + `MBConvConfig` | 0.15M |
| `convnext_s32/_s64` | patchify stem, depthwise 7x7, LayerNorm, 4x inverted bottleneck, GELU, layer scale | `torchvision.models.ConvNeXt` + `CNBlockConfig` | 0.27M |

The `_s64` versions reach the same body through a stem that downsamples once more (stride 2; AlexNet's first
conv 7x7/4; VGG one more 8-channel conv + pool stage; ConvNeXt a 4x4 patchify), so a 64 px run costs little
more than a 32 px one while still seeing the larger image. Every variant ends in global
pooling (or adaptive pooling before an FC head), so it accepts any input from `min_input_size` up; the
`input_size` is the size it was designed and measured for.
"""

from __future__ import annotations

import importlib
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from imagenot.models.model_info import Factory, ModelInfo

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)

# family, year, builder in small_nets, what it keeps, smallest accepted input for the 32 px / 64 px design
# (measured by shrinking the input until a layer fails; tests/models checks each one still runs)
_SMALL: list[tuple[str, int, str, str, tuple[int, int]]] = [
    ("AlexNet", 2012, "alexnet_small", "large strided first kernel, max-pooling, ReLU, FC head with dropout", (1, 1)),
    ("VGG", 2014, "vgg_small", "VGG-11 configuration at an eighth of its width: stacked 3x3 conv+BN, max-pooling",
     (32, 64)),
    ("ResNet", 2015, "resnet_small", "BasicBlock residual stages with BN, 3x3 stem without max-pool", (1, 1)),
    ("DenseNet", 2016, "densenet_small", "DenseNet-BC dense blocks and transitions, 3x3 stem", (16, 31)),
    ("EfficientNet", 2019, "efficientnet_small", "MBConv with squeeze-excitation and SiLU", (1, 1)),
    ("ConvNeXt", 2022, "convnext_small", "patchify stem, depthwise 7x7, LayerNorm, inverted bottleneck, GELU",
     (16, 32)),
]


def _factory(builder: str, design: int, num_classes: int, input_size: int, **kwargs: Any) -> nn.Module:
    nets = importlib.import_module("imagenot.models.small_nets")
    return getattr(nets, builder)(num_classes, design=design, **kwargs)


def _entry(family: str, year: int, builder: str, keeps: str, mins: tuple[int, int],
           design: int) -> tuple[ModelInfo, Factory]:
    info = ModelInfo(name=f"{family.lower()}_s{design}", family=family, year=year, input_size=design,
                     min_input_size=mins[0] if design == 32 else mins[1], full_size=False, torchvision_builder=None,
                     description=f"{family} for {design} px inputs: {keeps}")
    return info, partial(_factory, builder, design)


ENTRIES: tuple[tuple[ModelInfo, Factory], ...] = tuple(_entry(*row, design) for row in _SMALL for design in (32, 64))
"""(info, factory) of every small-input variant; `imagenot.models.info` registers them."""
