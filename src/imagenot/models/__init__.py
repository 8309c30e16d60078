"""Model registry: the study's architectures at full size (torchvision) and small-input variants for CPUs.

Public API (stable; other stages rely on it)::

    from imagenot.models import get_model, list_models, model_info, check_input_size
    from imagenot.models import count_params, flops_per_image, params_and_flops, families

    model = get_model("resnet_s32", num_classes=10)              # nn.Module, random init (weights=None)
    model = get_model("vit_b_16", 100, input_size=64)             # ViT built for 64 px inputs
    info = model_info("resnet152")   # ModelInfo(name, family, year, input_size, min_input_size,
                                     #           full_size, torchvision_builder, description, fixed_input)
    check_input_size("inception_v3", 28)  # raises InputSizeError (an ImagenotError): needs >= 75 px
    n = count_params(model); f = flops_per_image(model, 32)       # f: forward FLOPs for one image
    params, flops = params_and_flops("convnext_large", 224, num_classes=1000)  # meta device, cached

Names (`list_models()`; `list_models(full_size=False)` for the small ones):

* full size, via `torchvision.models.<name>(weights=None, num_classes=...)`: alexnet, vgg11/13/16/19 (+_bn),
  googlenet, inception_v3 (aux_logits=False), resnet18/34/50/101/152, densenet121/161/169/201,
  mobilenet_v2, mobilenet_v3_small/large, efficientnet_b0..b7, efficientnet_v2_s/m/l,
  vit_b_16/b_32/l_16/l_32/h_14, convnext_tiny/small/base/large. The paper's nine are `STUDY_MODELS`.
* small-input variants of the six seed families, `<family>_s32` (32 px) and `<family>_s64` (64 px):
  alexnet_s32, vgg_s32, resnet_s32, densenet_s32, efficientnet_s32, convnext_s32 and the _s64 ones
  (see `imagenot.models.small` for what each keeps of its family).

Step times of the small variants: `python -m imagenot.models.bench` (one SGD step of a batch of 128).

`get_model` raises `imagenot.registry.UnknownNameError` (listing the known names) for an unknown name and
`InputSizeError` when `input_size` is below the model's `min_input_size`. Every model takes 3-channel input
(gray data is expanded by the data pipeline) and returns logits `[B, num_classes]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagenot.models.cost import count_params, flops_per_image, params_and_flops, params_for
from imagenot.models.full_size import STUDY_MODELS
from imagenot.models.info import InputSizeError, all_entries, build, check_input_size, entry
from imagenot.models.model_info import ModelInfo

if TYPE_CHECKING:
    import torch.nn as nn

SEED_FAMILIES = ("AlexNet", "VGG", "ResNet", "DenseNet", "EfficientNet", "ConvNeXt")


def get_model(name: str, num_classes: int, input_size: int | None = None, **kwargs: Any) -> nn.Module:
    """Build registry model `name` with a `num_classes`-way head, randomly initialised.

    `input_size` (default: the entry's `input_size`) is checked against `min_input_size`; ViTs are built for
    it. Extra keyword arguments go to the builder (e.g. `dropout=0.2`, `stochastic_depth_prob=0.1`).
    """
    return build(name, num_classes, input_size=input_size, **kwargs)


def list_models(family: str | None = None, full_size: bool | None = None) -> list[str]:
    """Registered names, sorted; optionally only one family (case-insensitive) or only full/small models."""
    out = []
    for e in all_entries():
        if family is not None and e.info.family.lower() != family.lower():
            continue
        if full_size is not None and e.info.full_size != full_size:
            continue
        out.append(e.info.name)
    return out


def model_info(name: str) -> ModelInfo:
    """The entry's `ModelInfo`; raises `UnknownNameError` listing the known names."""
    return entry(name).info


def families() -> list[str]:
    return sorted({e.info.family for e in all_entries()})


__all__ = [
    "SEED_FAMILIES",
    "STUDY_MODELS",
    "InputSizeError",
    "ModelInfo",
    "check_input_size",
    "count_params",
    "families",
    "flops_per_image",
    "get_model",
    "list_models",
    "model_info",
    "params_for",
    "params_and_flops",
]
