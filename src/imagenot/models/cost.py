"""Parameter counts and FLOPs per image, computed on the meta device so that listing the zoo costs no memory.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` over one forward pass of a single image
(multiply-add = 2 FLOPs, the counter's convention), and cached per (model, input size, channels, classes):
a 600M-parameter ViT then costs a fraction of a second to describe and nothing the second time.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flops_per_image(model: nn.Module, input_size: int, in_chans: int = 3) -> int:
    """Forward FLOPs for one `in_chans x input_size x input_size` image (on the model's device, eval mode).

    Pass a model built on the meta device (`params_and_flops` does) to count without allocating anything.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        _one_image_forward(model, input_size, in_chans)
    return int(counter.get_total_flops())


def _one_image_forward(model: nn.Module, input_size: int, in_chans: int) -> None:
    """One eval-mode, no-grad forward pass of a zero image on the model's device; the model's mode restored."""
    import torch

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, input_size, input_size, device=device))
    finally:
        model.train(was_training)


@cache
def params_and_flops(name: str, input_size: int | None = None, num_classes: int = 1000,
                     in_chans: int = 3) -> tuple[int, int]:
    """(parameters, forward FLOPs per image) of registry entry `name`, built on the meta device. Cached:
    counting a ViT-B or an EfficientNet-B7 takes seconds, and a zoo or report asks for the same ones again."""
    import torch

    from imagenot.models.info import build, entry

    size = entry(name).info.input_size if input_size is None else input_size
    with torch.device("meta"):
        model = build(name, num_classes, input_size=size)
    return count_params(model), flops_per_image(model, size, in_chans)


def activations_per_image(model: nn.Module, input_size: int, in_chans: int = 3) -> int:
    """Output elements of every leaf module for one image: the memory traffic that FLOPs do not count, and
    what makes a depthwise or densely connected net slow per FLOP (build the model on the meta device)."""
    import torch

    total = [0]

    def count(module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and next(module.children(), None) is None:
            total[0] += output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    try:
        _one_image_forward(model, input_size, in_chans)
    finally:
        for h in hooks:
            h.remove()
    return total[0]


# FLOPs one activation element costs in training time: fitted on the six `_s32` models at 32 px on a 2-core
# CPU (bf16, one thread per run: time = 1.1e-6 s x (FLOPs + 332 x activations), within 20% for each, where
# FLOPs alone are off by up to 78% and put EfficientNet, the slowest but one, last).
ACTIVATION_FLOPS = 332.0


@cache
def training_cost(name: str, input_size: int | None = None) -> float:
    """Relative cost of one training image of registry entry `name` (FLOPs plus ACTIVATION_FLOPS per
    activation element), for ordering runs; counted on the meta device and cached."""
    import torch

    from imagenot.models.info import build, entry

    size = entry(name).info.input_size if input_size is None else input_size
    with torch.device("meta"):
        model = build(name, 1000, input_size=size)
    return float(flops_per_image(model, size)) + ACTIVATION_FLOPS * activations_per_image(model, size)


@cache
def params_for(name: str, num_classes: int = 1000, input_size: int | None = None) -> int:
    """Parameters of registry entry `name`: from `param_table` (exact for any head size), else (a ViT built
    for another input size) counted on the meta device."""
    from imagenot.models.info import build, entry
    from imagenot.models.param_table import PARAMS

    info = entry(name).info
    if name in PARAMS and (input_size is None or input_size == info.input_size or not info.fixed_input):
        base, per_class = PARAMS[name]
        return base + (num_classes - 1000) * per_class
    import torch

    with torch.device("meta"):
        model = build(name, num_classes, input_size=input_size)
    return count_params(model)
