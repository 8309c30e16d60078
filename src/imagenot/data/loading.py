"""What every dataset entry shares: the entry record and the finishing steps from arrays or file records.

Kept apart from `imagenot.data.registry` (which looks entries up) and `imagenot.data.entries` (which defines
them) so that the entries import what they build with, and the registry imports the entries, with no import
running back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagenot.data.dataset import ImageDataset, convert_channels, resize_center_crop, subsample_indices
from imagenot.data.readers.files import RecordSet, env_cache_dir, fingerprint_files
from imagenot.data.streaming import StreamingDataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: `load(arg, split, opts)` builds split `split` of `name[:arg]`."""

    name: str
    description: str
    arg: str | None  # what ARG in `name:ARG` is ("PATH"), None if the entry takes none
    arg_required: bool
    options: tuple[str, ...]  # entry-specific options
    load: Callable[..., ImageDataset | StreamingDataset]
    # (images, classes) of split `split` of `name[:arg]` before any subsampling, cheaply (headers, the dataset
    # card), without decoding it; None where only loading would tell. Schedulers order runs by it.
    count: Callable[[str | None, str, dict[str, Any]], tuple[int, int] | None] | None = None


def from_arrays(images: np.ndarray, labels: np.ndarray, classes: list[str], split: str, opts: dict[str, Any],
                meta: dict[str, Any] | None = None) -> ImageDataset:
    """Subsample, resize and convert in-memory arrays into an `ImageDataset` (name set by get_dataset)."""
    idx = subsample_indices(labels, opts.get("limit"), opts.get("limit_per_class"), int(opts.get("seed", 0)))
    if idx is not None:
        images, labels = images[idx], labels[idx]
    x = torch.from_numpy(np.ascontiguousarray(images))
    if "image_size" in opts:
        x = resize_center_crop(x, int(opts["image_size"]))
    x = convert_channels(x, opts.get("channels"))
    return ImageDataset(x.contiguous(), torch.from_numpy(np.asarray(labels, dtype=np.int64)), list(classes), "",
                        split, dict(meta or {}))


def from_records(records: RecordSet, split: str, opts: dict[str, Any], default_size: int | None,
                 fingerprint: str, kind: str) -> ImageDataset | StreamingDataset:
    """Subsample file records, then decode them into memory (cached) or wrap them for streaming."""
    idx = subsample_indices(records.labels, opts.get("limit"), opts.get("limit_per_class"),
                            int(opts.get("seed", 0)))
    records = records.select(idx)
    channels = int(opts.get("channels", 3))
    size = int(opts.get("image_size") or default_size or _first_image_size(records, channels))
    meta = dict(records.meta)
    meta.update(image_size=size, fingerprint=fingerprint, subsampled=idx is not None)
    stream = StreamingDataset(records, size, channels, "", split, meta)
    in_memory = opts.get("in_memory")
    if opts.get("stored_size"):  # never decoded into a square array: streamed, or its files' bytes in memory
        if in_memory:
            log.info("%s/%s: %d image files held in memory as stored (%.0f MB encoded)", kind, split,
                     len(stream), stream.records.encoded_bytes() / 2**20)
            return stream.preloaded()
        return stream
    if in_memory is None:
        in_memory = stream.estimated_bytes() <= float(opts.get("max_memory_mb", 4096)) * 2**20
    if not in_memory:
        log.info("%s/%s: %d images stream from files (%.0f MB decoded)", kind, split, len(stream),
                 stream.estimated_bytes() / 2**20)
        return stream
    cache_path = None
    if opts.get("cache", True):
        key = fingerprint_files([], {"fp": fingerprint, "split": split, "size": size, "channels": channels,
                                     "limit": opts.get("limit"), "lpc": opts.get("limit_per_class"),
                                     "seed": opts.get("seed", 0), "n": len(records), "v": 2})  # 2: EXIF-upright
        cache_path = env_cache_dir() / "datasets" / f"{kind}-{split}-{key[:24]}.npz"
        if cache_path.is_file():
            try:
                with np.load(cache_path, allow_pickle=False) as z:
                    images, labels = z["images"], z["labels"]
                if images.shape[0] == len(records):
                    log.info("%s/%s: decoded arrays from cache %s", kind, split, cache_path)
                    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), list(records.classes),
                                        "", split, meta, list(records.keys))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable cache %s: %s", cache_path, exc)
    images_t, labels_t = decode_all(stream, int(opts.get("num_workers", 2 if len(stream) > 2000 else 0)))
    if cache_path is not None:
        from imagenot.fileio import atomic_path

        try:
            with atomic_path(cache_path, suffix=".tmp.npz") as tmp:
                np.savez(tmp, images=images_t.numpy(), labels=labels_t.numpy())
        except OSError as exc:
            log.warning("could not write dataset cache %s: %s", cache_path, exc)
    return ImageDataset(images_t, labels_t, list(records.classes), "", split, meta, list(records.keys))


def decode_all(stream: StreamingDataset, num_workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every record once (DataLoader workers when asked), into one uint8 tensor."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    n = len(stream)
    images = torch.empty((n, stream.channels, stream.image_size, stream.image_size), dtype=torch.uint8)
    if n == 0:
        return images, stream.labels.clone()
    loader = DataLoader(stream, batch_size=256, shuffle=False, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(0))
    pos = 0
    for xb, _ in tqdm(loader, desc=f"decode {stream.split}", unit="batch", leave=False, disable=n < 5000):
        images[pos:pos + len(xb)] = xb
        pos += len(xb)
    return images, stream.labels.clone()


def _first_image_size(records: RecordSet, channels: int) -> int:
    from imagenot.data.readers.files import decode_image

    if len(records) == 0:
        return 1
    img = decode_image(records.read_bytes(0), channels, records.source(0))
    return int(min(img.shape[-2:]))


def path_arg(arg: str | None) -> Path:
    """The PATH of `name:PATH` (the working folder when absent), with `~` expanded."""
    return Path(arg).expanduser() if arg else Path(".")
