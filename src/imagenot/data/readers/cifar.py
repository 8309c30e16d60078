"""CIFAR-10 in torchvision's python format (`cifar-10-batches-py/`), read with the restricted unpickler.

torchvision's `CIFAR10` unpickles with plain `pickle` and insists on the md5 sums of the official archive;
we accept any folder in that format (so tests can write small ones) and never execute pickle code. With
`download=True` the official archive is fetched through torchvision first (for users with a network).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from imagenot.data.unpickle import restricted_load_file
from imagenot.errors import InputError

log = logging.getLogger(__name__)

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
FOLDER = "cifar-10-batches-py"


def _batches_dir(root: Path) -> Path:
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if (root / "batches.meta").is_file():
        return root
    raise InputError(f"no CIFAR-10 data: expected {FOLDER}/ (or batches.meta) here; pass download=True to "
                     "fetch it with torchvision", path=root)


def _text(x: object) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _get(d: dict, key: str) -> object:
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise KeyError(key)


def load_cifar10(root: str | Path, split: str, download: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    root = Path(root).expanduser()
    if download:
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=split == "train", download=True)
    if not root.is_dir():
        raise InputError("CIFAR-10 folder not found", path=root)
    folder = _batches_dir(root)
    meta = restricted_load_file(folder / "batches.meta", encoding="bytes") if (folder / "batches.meta").is_file() \
        else None
    classes = [_text(c) for c in _get(meta, "label_names")] if isinstance(meta, dict) else [str(i) for i in range(10)]
    images, labels = [], []
    for name in TRAIN_BATCHES if split == "train" else TEST_BATCHES:
        path = folder / name
        if not path.is_file():
            raise InputError(f"missing CIFAR-10 batch {name}", path=folder)
        batch = restricted_load_file(path, encoding="bytes")
        try:
            data = np.asarray(_get(batch, "data"), dtype=np.uint8)
            lab = np.asarray(_get(batch, "labels") if _has(batch, "labels") else _get(batch, "fine_labels"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a CIFAR batch (no data/labels): {exc}", path=path) from exc
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != lab.shape[0]:
            raise InputError(f"bad CIFAR batch shapes: data {data.shape}, labels {lab.shape}", path=path)
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab.astype(np.int64))
    return np.concatenate(images), np.concatenate(labels), classes


def _has(d: dict, key: str) -> bool:
    return key in d or key.encode() in d
