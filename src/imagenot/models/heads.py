"""Generic classifier-head surgery for every family in the model registry.

Every torchvision classifier ends in an `nn.Linear` (AlexNet/VGG `classifier[6]`, ResNet `fc`, DenseNet
`classifier`, EfficientNet/MobileNet/ConvNeXt `classifier[-1]`, ViT `heads.head`), and so do the small-input
variants; the head is therefore found as the last `nn.Linear` registered, not by a per-family table that
would fall behind the registry. Inception's auxiliary classifier is replaced along with it.
"""

from __future__ import annotations

import logging

from torch import nn

from imagenot.errors import ImagenotError

log = logging.getLogger(__name__)


def find_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """(qualified name, module) of the classifier: the last nn.Linear in registration order."""
    found: tuple[str, nn.Linear] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (name, module)
    if found is None:
        raise ImagenotError(f"{type(model).__name__} has no nn.Linear classifier head to replace")
    return found


def _set_submodule(model: nn.Module, qualified: str, new: nn.Module) -> None:
    parent_name, _, child = qualified.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def replace_head(model: nn.Module, num_classes: int) -> list[str]:
    """Give `model` new, freshly initialised output layers for `num_classes`; returns their names."""
    head_name, head = find_head(model)
    old_classes = head.out_features
    replaced = []
    for name, module in list(model.named_modules()):
        is_aux = "aux" in name.lower() and isinstance(module, nn.Linear) and module.out_features == old_classes
        if name == head_name or is_aux:
            new = nn.Linear(module.in_features, num_classes, bias=module.bias is not None)
            new.to(device=module.weight.device, dtype=module.weight.dtype)
            _set_submodule(model, name, new)
            replaced.append(name)
    log.debug("replaced %s (%d -> %d classes)", replaced, old_classes, num_classes)
    return replaced


def freeze_except(model: nn.Module, trainable: list[str]) -> int:
    """Freeze every parameter outside the named modules; returns the number left trainable."""
    keep = {id(p) for name in trainable for p in model.get_submodule(name).parameters()}
    n = 0
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
        n += p.numel() if id(p) in keep else 0
    return n
