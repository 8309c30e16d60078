"""Dataset specs (`name` or `name:ARG`) -> datasets, with the options every entry shares.

Common options (all optional; `None` means unset; prefix one with a split, `train.limit_per_class=300`, to
apply it to that split only):
  image_size       resize the shorter side and centre-crop once at load time (default: native size; for
                   image files the shorter side of the first image, for `wds:` the card's image_size)
  channels         1 or 3 (gray <-> RGB conversion at load time; default native: 1 for the MNISTs)
  limit            at most this many images, class-stratified, seeded
  limit_per_class  at most this many images per class, seeded
  seed             subsampling seed (default 0)
  cache            keep decoded arrays of image files under $IMAGENOT_CACHE/datasets (default True)
  in_memory        True / False / None (auto: files stream when they would take more than max_memory_mb)
  stored_size      image files keep their stored size (no resize or crop at load: what the per-sample
                   pipeline's transforms need, which sets it); in_memory=true then holds the encoded files
                   in memory, so both give the transforms the same pixels
  max_memory_mb    threshold for the automatic choice (default 4096)
  num_workers      decoding processes for image files (default: 2, 0 for small sets)
"""

from __future__ import annotations

import logging
from typing import Any

from imagenot.data.dataset import ImageDataset
from imagenot.data.loading import DatasetEntry
from imagenot.data.streaming import StreamingDataset
from imagenot.errors import InputError
from imagenot.registry import Registry
from imagenot.spec import Spec

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
COMMON_OPTIONS = ("image_size", "channels", "limit", "limit_per_class", "seed", "cache", "in_memory",
                  "max_memory_mb", "num_workers", "stored_size")

DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register(entry: DatasetEntry) -> None:
    """Add a dataset entry (the built-in ones are `imagenot.data.entries.ENTRIES`)."""
    _ensure_loaded()
    DATASETS.register(entry.name, entry)


def parse_spec(spec: str) -> tuple[str, str | None]:
    parsed = Spec.parse(spec)
    return parsed.kind, parsed.arg


def get_dataset(spec: str, split: str = "train", **options: Any) -> ImageDataset | StreamingDataset:
    """Load split `split` ("train" or "val") of dataset `spec`; see the module docstring for options."""
    _ensure_loaded()
    name, arg = parse_spec(spec)
    entry = DATASETS.get(name)
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} for dataset {spec!r}; splits are 'train' and 'val'")
    opts = split_options(options, split)
    allowed = set(COMMON_OPTIONS) | set(entry.options)
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for dataset {name!r}; known: "
                         f"{', '.join(sorted(allowed))}")
    if entry.arg_required and not arg:
        raise InputError(f"dataset {name!r} needs an argument: {name}:{entry.arg}")
    if arg is not None and entry.arg is None:
        raise InputError(f"dataset {name!r} takes no argument (got {spec!r})")
    if "channels" in opts and int(opts["channels"]) not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {opts['channels']}")
    if "image_size" in opts and int(opts["image_size"]) < 1:
        raise InputError(f"image_size must be positive, got {opts['image_size']}")
    ds = entry.load(arg, split, opts)
    ds.name = spec
    return ds


def count_images(spec: str, split: str = "train", **options: Any) -> int | None:
    """How many images split `split` of `spec` yields with these options (limit, limit_per_class), without
    loading it; None where the entry cannot tell cheaply. Estimates for scheduling, never for training."""
    _ensure_loaded()
    name, arg = parse_spec(spec)
    entry = DATASETS.get(name)
    opts = split_options(options, split)
    counted = entry.count(arg, split, opts) if entry.count else None
    if counted is None:
        return None
    images, classes = counted
    if opts.get("limit_per_class") is not None and classes:
        images = min(images, int(opts["limit_per_class"]) * classes)
    if opts.get("limit") is not None:
        images = min(images, int(opts["limit"]))
    return images


def split_options(options: dict[str, Any], split: str) -> dict[str, Any]:
    """The options that apply to `split`: unprefixed ones, and `<split>.<option>` ones (which win), so that
    `train.limit_per_class=300` subsamples the training split and leaves the whole test set for validation."""
    out: dict[str, Any] = {}
    prefixed: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        head, dot, rest = key.partition(".")
        if not dot:
            out[key] = value
        elif head not in SPLITS or not rest:
            raise InputError(f"dataset option {key!r}: a prefix must be a split ({', '.join(SPLITS)}), e.g. "
                             "train.limit_per_class=300")
        elif head == split:
            prefixed[rest] = value
    return {**out, **prefixed}


def list_datasets() -> list[tuple[str, str]]:
    """(name, description) of every entry, with `:ARG` in the name where the entry takes one."""
    _ensure_loaded()
    out = []
    for name, e in DATASETS.items():
        shown = f"{name}:{e.arg}" if e.arg and e.arg_required else (f"{name}[:{e.arg}]" if e.arg else name)
        out.append((shown, e.description))
    return out


_LOADED = False


def _ensure_loaded() -> None:
    """Register the built-in entries on first use (lazily: they import the readers)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from imagenot.data.entries import ENTRIES

        for entry in ENTRIES:
            DATASETS.register(entry.name, entry)
