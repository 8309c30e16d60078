"""Model entries: what each registered architecture is, and the sizes it is meant for and accepts.

The registry keeps one `ModelInfo` per name next to its factory, so that listing the zoo, planning runs and
checking a dataset's image size never has to build a model.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagenot.errors import ImagenotError
from imagenot.models.model_info import Factory, ModelInfo
from imagenot.registry import Registry

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    factory: Factory


class InputSizeError(ImagenotError, ValueError):
    """An image size the model cannot take (raised before any training starts)."""


_REGISTRY: Registry[_Entry] = Registry("model")

MIN_IMAGE_SIDE = 8
"""No model is offered inputs below 8 px, whatever its layers accept: such images carry no class structure,
and torch's antialiased resize fails on 1 px outputs with an internal assert instead of an error."""


def register(info: ModelInfo, factory: Factory) -> None:
    """Add an entry; `factory(num_classes, input_size=..., **kwargs)` must build the model.

    `min_input_size` is raised to MIN_IMAGE_SIDE where the measured limit of the layers is lower. The built-in
    entries are `full_size.ENTRIES` and `small.ENTRIES`, registered on first use.
    """
    if info.min_input_size < MIN_IMAGE_SIDE:
        info = dataclasses.replace(info, min_input_size=MIN_IMAGE_SIDE)
    _REGISTRY.register(info.name, _Entry(info, factory))


def entry(name: str) -> _Entry:
    _ensure_loaded()
    return _REGISTRY.get(name)


def all_entries() -> list[_Entry]:
    _ensure_loaded()
    return [e for _, e in _REGISTRY.items()]


_LOADED = False


def _ensure_loaded() -> None:
    """Register the built-in entries on first use (lazily, so `imagenot.models.info` itself stays light)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from imagenot.models import full_size, small

    for info, factory in (*full_size.ENTRIES, *small.ENTRIES):
        register(info, factory)


def check_input_size(name: str, size: int) -> ModelInfo:
    """Raise `InputSizeError` if `name` cannot take square inputs of side `size`; return its info.

    The trainer calls this before building anything, so that a dataset of 28 px images and a model that
    needs 75 px fail with a message instead of a shape error deep in a forward pass.
    """
    info = entry(name).info
    if size < info.min_input_size:
        raise InputSizeError(
            f"model {name!r} needs inputs of at least {info.min_input_size}x{info.min_input_size} px "
            f"(meant for {info.input_size} px); got {size}x{size}. " + _size_advice(info, size)
        )
    if info.fixed_input and size % _patch_size(info) != 0:
        raise InputSizeError(
            f"model {name!r} needs an input side divisible by its patch size {_patch_size(info)}; got {size}"
        )
    return info


def _size_advice(info: ModelInfo, size: int) -> str:
    if size < MIN_IMAGE_SIDE:
        return f"Use --image-size {MIN_IMAGE_SIDE} or more."
    others = _small_names_for(info.family, size, info.name)
    if others:
        return f"Resize the data (--image-size {info.min_input_size}) or use {', '.join(others)}."
    return f"Resize the data (--image-size {info.min_input_size} or more)."


def _patch_size(info: ModelInfo) -> int:
    return info.min_input_size


def _small_names_for(family: str, size: int, exclude: str) -> list[str]:
    """Small-input variants of `family` that accept `size` px (never the model that was refused)."""
    return [e.info.name for e in all_entries() if e.info.family == family and not e.info.full_size
            and e.info.name != exclude and e.info.min_input_size <= size]


def build(name: str, num_classes: int, input_size: int | None = None, **kwargs: Any) -> nn.Module:
    e = entry(name)
    if num_classes < 1:
        raise ImagenotError(f"num_classes must be positive, got {num_classes}")
    size = e.info.input_size if input_size is None else int(input_size)
    check_input_size(name, size)
    return e.factory(num_classes, input_size=size, **kwargs)
