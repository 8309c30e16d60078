"""Where a model's weights come from, and the input transforms that belong to them.

One notion for every stage (train, finetune, evaluate, zoo): an `init` spec says where the weights come from,

    scratch                            random initialisation (the registry's builder, weights=None)
    run:DIR                            a finished imagenot run (its checkpoint; EMA weights when it kept them)
    torchvision:<model>.<WEIGHTS>      torchvision's published weights, e.g. torchvision:resnet152.IMAGENET1K_V1
                                       (`DEFAULT` allowed; `torchvision` alone means the model's IMAGENET1K_V1),
                                       loaded through torchvision's own weights API, which downloads into
                                       $TORCH_HOME/hub/checkpoints/ and checks the published hash
    file:PATH                          a state_dict in .pth/.pt (torch.load weights_only=True) or .safetensors

and `build_model` returns the model together with a `WeightsInfo` that says what was loaded (identity,
sha256 of the file, the classes and normalisation the weights were trained with), which runs record in
result.json. Head replacement and freezing live beside it (`imagenot.models.heads`).

`transform_defaults(model)` gives a model's evaluation sizes (resize, centre crop), interpolation and
normalisation from its torchvision weights enum (IMAGENET1K_V1 where it exists, as in the study), which needs
no network: the numbers are in the enum.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STUDY_WEIGHTS = "IMAGENET1K_V1"


@dataclass(frozen=True)
class TransformDefaults:
    """A model's input transforms as torchvision's weights define them.

    `val_resize` is the shorter side images are resized to before the `val_crop` centre crop; `train_crop`
    is the RandomResizedCrop output size (the weights' crop size unless a recipe says otherwise, e.g.
    EfficientNet V2 L trains at 384 and evaluates at 480). `weights` names the enum member the numbers come
    from (None for models without published weights, whose sizes are their registry input size).
    """

    weights: str | None
    train_crop: int
    val_resize: int
    val_crop: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


def torchvision_weights_enum(model: str) -> Any:
    """The torchvision weights enum class of registry model `model`, or None (small-input variants)."""
    from imagenot.models.info import entry

    builder = entry(model).info.torchvision_builder
    if builder is None:
        return None
    from torchvision.models import get_model_weights

    try:
        return get_model_weights(builder)
    except (ValueError, KeyError):
        return None


def study_weights(model: str) -> Any:
    """The weights the study's numbers refer to: IMAGENET1K_V1 where it exists, else the enum's DEFAULT."""
    enum = torchvision_weights_enum(model)
    if enum is None:
        return None
    return getattr(enum, STUDY_WEIGHTS, None) or enum.DEFAULT


def _classification_defaults() -> dict[str, Any]:
    """torchvision's ImageClassification preset defaults (resize 256, bilinear, ImageNet mean/std)."""
    from torchvision.transforms._presets import ImageClassification

    params = inspect.signature(ImageClassification).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def transform_defaults(model: str, weights: Any = None) -> TransformDefaults:
    """Evaluation and training sizes, interpolation and normalisation for `model` (offline).

    From `weights` (a torchvision weights enum member) or the model's study weights; a model without
    torchvision weights gets its registry input size for every size, bilinear, and ImageNet statistics.
    """
    from imagenot.models.info import entry

    info = entry(model).info
    w = weights if weights is not None else study_weights(model)
    if w is None:
        size = int(info.input_size)
        return TransformDefaults(None, size, size, size, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
    base = _classification_defaults()
    kw = {**base, **dict(getattr(w.transforms, "keywords", {}) or {})}
    interp = kw.get("interpolation")
    interp_name = str(getattr(interp, "value", interp) or "bilinear")
    crop = int(kw["crop_size"])
    return TransformDefaults(
        weights=f"{type(w).__name__}.{w.name}",
        train_crop=crop,
        val_resize=int(kw.get("resize_size") or crop),
        val_crop=crop,
        interpolation=interp_name,
        mean=tuple(float(v) for v in kw.get("mean", IMAGENET_MEAN)),
        std=tuple(float(v) for v in kw.get("std", IMAGENET_STD)),
    )
