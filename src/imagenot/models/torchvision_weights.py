"""torchvision's weights enums: which weights a model has, the transforms and numbers they publish.

Everything here is offline (the numbers are in the enums); only loading a model's weights downloads (through
torchvision's own API, into $TORCH_HOME/hub/checkpoints/, checking the published hash), and that load is
forced to `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from imagenot.models.state_dicts import WeightsError
from imagenot.runtime import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

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


@functools.cache
def transform_defaults(model: str, weights: Any = None) -> TransformDefaults:
    """Evaluation and training sizes, interpolation and normalisation for `model` (offline).

    From `weights` (a torchvision weights enum member) or the model's study weights; a model without
    torchvision weights gets its registry input size for every size, bilinear, and ImageNet statistics.
    Computed once per (model, weights) in a process: a run's plan, model builder and evaluation share it.
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


def weights_enum_member(model: str, name: str | None) -> Any:
    """The torchvision weights of `model` named `name` (`IMAGENET1K_V1`, `DEFAULT`, or the enum's full
    `ResNet152_Weights.IMAGENET1K_V1`); a clear error listing the model's weights otherwise."""
    enum = torchvision_weights_enum(model)
    if enum is None:
        raise WeightsError(f"model {model!r} has no torchvision weights (it is not a torchvision architecture); "
                           "use scratch, run:DIR or file:PATH")
    if name is None:
        return study_weights(model)
    key = name.split(".")[-1]
    if "." in name and name.split(".")[0] != enum.__name__:
        raise WeightsError(f"{name} are weights of another architecture; {model} has "
                           f"{', '.join(f'{enum.__name__}.{w.name}' for w in enum)}")
    if key == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[key]
    except KeyError:
        raise WeightsError(f"{model} has no torchvision weights {key!r}; known: "
                           f"{', '.join(w.name for w in enum)} (and DEFAULT = {enum.DEFAULT.name})") from None


def resolve_torchvision(model: str, value: str | None) -> Any:
    """The weights a `torchvision[:<model>.<WEIGHTS>]` spec names for registry model `model`."""
    if value is None:
        return weights_enum_member(model, None)
    arch, sep, name = value.partition(".")
    if not sep:
        arch, name = value, ""
    enum = torchvision_weights_enum(model)
    if enum is not None and arch == enum.__name__:  # torchvision:ResNet152_Weights.IMAGENET1K_V1
        arch = model
    if arch != model:
        raise WeightsError(f"torchvision:{value} are weights for {arch!r}, but the model is {model!r}; use "
                           f"torchvision:{model}.<WEIGHTS> ({', '.join(_weight_names(model))})")
    return weights_enum_member(model, name or None)


def _weight_names(model: str) -> list[str]:
    enum = torchvision_weights_enum(model)
    return [w.name for w in enum] if enum is not None else []


def published_metrics(model: str, weights: str | None = None) -> dict[str, Any]:
    """torchvision's published ImageNet-1K numbers for `model`'s weights (offline: they are in the enum)."""
    w = weights_enum_member(model, weights)
    metrics = w.meta.get("_metrics", {}).get("ImageNet-1K")
    if not metrics or "acc@1" not in metrics:
        raise WeightsError(f"{type(w).__name__}.{w.name} publishes no ImageNet-1K accuracy")
    return {
        "weights": f"{type(w).__name__}.{w.name}",
        "dataset": "imagenet-1k",
        "top1": float(metrics["acc@1"]),
        "top5": float(metrics["acc@5"]) if "acc@5" in metrics else None,
        "num_classes": len(w.meta.get("categories") or []) or 1000,
        "val_images": 50000,
        "params": w.meta.get("num_params"),
        "gflops": w.meta.get("_ops"),
        "file_size_mb": w.meta.get("_file_size"),
        "url": w.url,
        "recipe": w.meta.get("recipe"),
    }


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Force `torch.load(weights_only=True)` inside the block, also for loads we do not call ourselves.

    torchvision's builders load published weights through torch.hub.load_state_dict_from_url, whose default is
    weights_only=False; its files are plain state_dicts, so forcing the safe loader changes nothing for them
    and refuses any file in the cache that carries code.
    """
    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    old = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def cached_weights_path(w: Any) -> Path:
    """Where torchvision keeps (or will keep) the file of weights `w`: $TORCH_HOME/hub/checkpoints/<name>."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)


def published_hash_ok(path: Path, sha256: str) -> bool | None:
    import torch.hub

    m = torch.hub.HASH_REGEX.search(path.name)
    return sha256.startswith(m.group(1)) if m and m.group(1) else None
