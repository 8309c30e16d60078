"""The study's architectures at full size, built by torchvision's own builders with `weights=None`.

Every torchvision size of the study's families is registered (the nine architectures of the paper's final
version are `alexnet, vgg19, inception_v3, resnet152, densenet161, mobilenet_v3_large, efficientnet_v2_l,
vit_b_16, convnext_large`). `min_input_size` was measured by building each model and shrinking the input
until a layer failed (see tests/models/test_models.py, which re-checks it on the meta device).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from imagenot.models.model_info import Factory, ModelInfo

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)

# name, family, year, meant-for input size, smallest accepted input size
_TABLE: list[tuple[str, str, int, int, int]] = [
    ("alexnet", "AlexNet", 2012, 224, 63),
    *[(f"vgg{d}{bn}", "VGG", 2014, 224, 32) for d in (11, 13, 16, 19) for bn in ("", "_bn")],
    ("googlenet", "Inception", 2014, 224, 15),
    ("inception_v3", "Inception", 2015, 299, 75),
    *[(f"resnet{d}", "ResNet", 2015, 224, 1) for d in (18, 34, 50, 101, 152)],
    *[(f"densenet{d}", "DenseNet", 2016, 224, 29) for d in (121, 161, 169, 201)],
    ("mobilenet_v2", "MobileNet", 2018, 224, 1),
    ("mobilenet_v3_small", "MobileNet", 2019, 224, 1),
    ("mobilenet_v3_large", "MobileNet", 2019, 224, 1),
    ("efficientnet_b0", "EfficientNet", 2019, 224, 1),
    ("efficientnet_b1", "EfficientNet", 2019, 240, 1),
    ("efficientnet_b2", "EfficientNet", 2019, 260, 1),
    ("efficientnet_b3", "EfficientNet", 2019, 300, 1),
    ("efficientnet_b4", "EfficientNet", 2019, 380, 1),
    ("efficientnet_b5", "EfficientNet", 2019, 456, 1),
    ("efficientnet_b6", "EfficientNet", 2019, 528, 1),
    ("efficientnet_b7", "EfficientNet", 2019, 600, 1),
    ("efficientnet_v2_s", "EfficientNet", 2021, 384, 1),
    ("efficientnet_v2_m", "EfficientNet", 2021, 480, 1),
    ("efficientnet_v2_l", "EfficientNet", 2021, 480, 1),
    ("vit_b_16", "ViT", 2020, 224, 16),
    ("vit_b_32", "ViT", 2020, 224, 32),
    ("vit_l_16", "ViT", 2020, 224, 16),
    ("vit_l_32", "ViT", 2020, 224, 32),
    ("vit_h_14", "ViT", 2020, 224, 14),
    *[(f"convnext_{s}", "ConvNeXt", 2022, 224, 32) for s in ("tiny", "small", "base", "large")],
]

STUDY_MODELS = (
    "alexnet",
    "vgg19",
    "inception_v3",
    "resnet152",
    "densenet161",
    "mobilenet_v3_large",
    "efficientnet_v2_l",
    "vit_b_16",
    "convnext_large",
)


def _build(builder_name: str, num_classes: int, input_size: int, **kwargs: Any) -> nn.Module:
    import torchvision.models as tvm

    builder = getattr(tvm, builder_name)
    options: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if builder_name in ("inception_v3", "googlenet"):
        # Auxiliary heads only matter for the published training recipe and make the output a tuple.
        options.update(aux_logits=False, init_weights=True)
    if builder_name.startswith("vit_"):
        options["image_size"] = input_size  # position embeddings are sized for one input
    options.update(kwargs)
    return builder(**options)


def _describe(name: str) -> str:
    study = " (study architecture)" if name in STUDY_MODELS else ""
    return f"torchvision.models.{name}(weights=None){study}"


def _entry(name: str, family: str, year: int, size: int, smallest: int) -> tuple[ModelInfo, Factory]:
    info = ModelInfo(name=name, family=family, year=year, input_size=size, min_input_size=smallest, full_size=True,
                     torchvision_builder=name, description=_describe(name), fixed_input=name.startswith("vit_"))
    return info, partial(_build, name)


ENTRIES: tuple[tuple[ModelInfo, Factory], ...] = tuple(_entry(*row) for row in _TABLE)
"""(info, factory) of every full-size architecture; `imagenot.models.info` registers them."""
