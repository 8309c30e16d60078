"""IDX files (the MNIST family's format), as Debian's dataset-fashion-mnist installs them.

The format is a 4-byte magic (0, 0, type code, number of dimensions), big-endian int32 dimension sizes, then
the raw array; reading it with numpy is a header parse and one `frombuffer`.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np

from imagenot.errors import InputError

log = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a numpy array of its declared shape."""
    path = Path(path)
    if not path.is_file():
        raise InputError("IDX file not found", path=path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip data: {exc}", path=path) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise InputError("not an IDX file (bad magic number)", path=path)
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    if len(raw) - header < count * dtype.itemsize:
        raise InputError(f"truncated IDX file: header says {dims}, data has {len(raw) - header} bytes", path=path)
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


def _find(root: Path, prefix: str, kind: str) -> Path:
    for name in (f"{prefix}-{kind}.gz", f"{prefix}-{kind}"):
        if (root / name).is_file():
            return root / name
    raise InputError(f"missing {prefix}-{kind}(.gz)", path=root)


def read_idx_pair(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 1, H, W] uint8 and labels [N] int64 from `<prefix>-images-idx3-ubyte(.gz)` + labels."""
    images = read_idx(_find(root, prefix, "images-idx3-ubyte"))
    labels = read_idx(_find(root, prefix, "labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise InputError(f"IDX images {images.shape} and labels {labels.shape} do not match", path=root)
    return np.ascontiguousarray(images[:, None].astype(np.uint8)), labels.astype(np.int64)


def load_fashion_mnist(root: str | Path | None, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    root = Path(root) if root else FASHION_MNIST_DIR
    if not root.is_dir():
        raise InputError("Fashion-MNIST folder not found (install Debian's dataset-fashion-mnist, or pass "
                         "fashion-mnist:PATH to a folder of the four idx files)", path=root)
    images, labels = read_idx_pair(root, "train" if split == "train" else "t10k")
    return images, labels, list(FASHION_MNIST_CLASSES)


def count_idx_records(root: str | Path | None, prefix: str) -> int:
    """How many records `<prefix>-labels-idx1-ubyte(.gz)` holds, from its header (the labels file is small)."""
    root = Path(root) if root else FASHION_MNIST_DIR
    return int(read_idx(_find(root, prefix, "labels-idx1-ubyte")).shape[0])
