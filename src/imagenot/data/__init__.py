"""Dataset registry, in-memory uint8 datasets, deterministic sharded batches and batched augmentation.

Public API (stable; the trainer and other stages rely on it)::

    from imagenot.data import get_dataset, list_datasets, validate, BatchLoader, BatchAugment
    from imagenot.data import augment, to_float_normalized, sample_params, crop_flip

    ds = get_dataset("fashion-mnist", "train", image_size=32, limit=3000, seed=0)
    ds.images   # uint8 [N, C, H, W] (C=1 for the MNISTs unless channels=3), H = W = image_size
    ds.labels   # int64 [N];  ds.classes: list[str] (names or wnids);  ds.num_classes;  ds.name;  ds.split
    validate(ds)                 # InputError: empty split, fewer than 2 classes present, labels out of range

    loader = BatchLoader(ds, batch_size=128, shuffle=True, seed=0, rank=0, world_size=1)
    for epoch in range(E):
        loader.set_epoch(epoch)
        for xb, yb in loader:    # xb uint8 [B, C, H, W] (CPU), yb int64 [B]
            x = augment(xb.to(device), generator, padding=4, size=model_input, channels=3)  # float32
    x_eval = to_float_normalized(xb.to(device), size=model_input, channels=3)

    aug = BatchAugment(padding=4, flip=True, size=32, channels=3)   # or bind the settings once
    params = aug.sample(global_batch, gen); x = aug.apply(xb, params.select(slice(rank, None, world)))

Specs (`list_datasets()`, `imagenot datasets`): `fashion-mnist`, `animal-mnist`, `cifar10:PATH`,
`imagefolder:PATH`, `wds:PATH` (a folder made by `imagenot download`), `synthetic`. Splits are "train" and
"val" (Fashion-MNIST's and CIFAR-10's test sets are "val"). Options: see `imagenot.data.registry`.
Image files (imagefolder, wds) are decoded once and cached under $IMAGENOT_CACHE/datasets (default
~/.cache/imagenot); beyond `max_memory_mb` (or with `in_memory=False`) they come back as a
`StreamingDataset` (no `.images`; same labels/classes/get_batch), which `BatchLoader` reads with DataLoader
workers. Every dataset gives `ds.original(i)` (one image at its stored size, for per-sample transforms) and
`ds.sample_keys()` (ids: the file path relative to the split folder, the webdataset key, `#<index>` for
arrays). Per-sample transforms (torchvision's presets on uint8): `imagenot.data.transforms`; random-access
per-sample reading: `imagenot.data.samples`; sequential webdataset shards: `imagenot.data.wds_stream`;
channel statistics in one streaming pass: `imagenot.data.stats.channel_stats(ds)`. Normalisation is the
trainer's (one mean/std for every data path: ImageNet's for full-size models, the data's own for small ones).
Pickled sources (CIFAR-10, animal-mnist) are read with `imagenot.data.unpickle.RestrictedUnpickler`, which
only rebuilds numpy arrays.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported lazily so that `imagenot.data.cli` (and `imagenot --help`) does not import torch.
_EXPORTS = {
    "AugmentParams": "augmentation", "BatchAugment": "augmentation", "augment": "augmentation",
    "crop_flip": "augmentation", "sample_params": "augmentation", "to_float_normalized": "augmentation",
    "ImageDataset": "dataset", "validate": "dataset",
    "BatchLoader": "loader",
    "get_dataset": "registry", "count_images": "registry", "list_datasets": "registry", "parse_spec": "registry",
    "StreamingDataset": "streaming",
    "TrainTransform": "transforms", "EvalTransform": "transforms",
    "SampleDataset": "samples", "ShardStream": "wds_stream", "channel_stats": "stats",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'imagenot.data' has no attribute {name!r}")
