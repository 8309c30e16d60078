"""Animal-MNIST (PyPI `animal-mnist`): 10,000 28x28 animal silhouettes in 10 classes, read without TensorFlow.

The package's own loader imports TensorFlow at module level; its data are two gzip pickles of numpy arrays
in the package folder, which we locate through `importlib.util.find_spec` (without importing the package)
and read with the restricted unpickler. The package has no train/val split: we make a seeded stratified
one (`val_fraction`, default 1/6, as MNIST's 60k/10k), the same on every machine.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from imagenot.data.unpickle import restricted_load_file
from imagenot.errors import InputError

log = logging.getLogger(__name__)

# Label order: as the package description lists them (alphabetical); checked by viewing 8 images per label.
ANIMAL_MNIST_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
_SPLIT_SEED = 20240404


def animal_mnist_dir() -> Path:
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("animal-mnist is not installed (pip install --no-deps animal-mnist)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"


def load_animal_mnist(root: str | Path | None, split: str,
                      val_fraction: float = 1 / 6) -> tuple[np.ndarray, np.ndarray, list[str]]:
    folder = Path(root) if root else animal_mnist_dir()
    data_path, label_path = folder / "animal_data_version_3.gz", folder / "animal_label_version_3.gz"
    for p in (data_path, label_path):
        if not p.is_file():
            raise InputError("animal-mnist data file missing", path=p)
    data = np.asarray(restricted_load_file(data_path))
    labels = np.asarray(restricted_load_file(label_path)).astype(np.int64).reshape(-1)
    if data.ndim == 3:
        data = data[:, None]
    if data.shape[0] != labels.shape[0]:
        raise InputError(f"animal-mnist images {data.shape} and labels {labels.shape} differ", path=folder)
    if data.dtype != np.uint8:
        scale = 255.0 if data.max() <= 1.0 else 1.0
        data = np.clip(data * scale, 0, 255).astype(np.uint8)
    rng = np.random.default_rng(_SPLIT_SEED)
    is_val = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        is_val[idx[: int(round(len(idx) * val_fraction))]] = True
    keep = is_val if split == "val" else ~is_val
    return np.ascontiguousarray(data[keep]), labels[keep], list(ANIMAL_MNIST_CLASSES)
