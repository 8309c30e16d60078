"""Image files as random-access records: class folders (`imagefolder:PATH`) and webdataset shards (`wds:PATH`).

Both become a `RecordSet`: per sample its label and where its encoded bytes lie (a file, or an offset and
length inside a tar shard). Knowing labels before decoding lets us subsample per class without decoding what
we drop; byte ranges make tar shards randomly accessible, so the in-memory path and the streaming path see
the same samples in the same order and a seeded permutation or a rank's shard means the same everywhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagenot.errors import InputError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
WDS_IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
_WDS_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset's key/extension split


@dataclass
class RecordSet:
    """Where each sample's encoded image lies. `sizes[i] == -1` means the whole file `files[file_ids[i]]`."""

    files: list[str]
    file_ids: np.ndarray  # int32 [N]
    offsets: np.ndarray  # int64 [N]
    sizes: np.ndarray  # int64 [N]
    labels: np.ndarray  # int64 [N]
    keys: list[str]
    classes: list[str]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, idx: np.ndarray | None) -> RecordSet:
        if idx is None:
            return self
        return RecordSet(self.files, self.file_ids[idx], self.offsets[idx], self.sizes[idx], self.labels[idx],
                         [self.keys[i] for i in idx], self.classes, self.meta)

    def source(self, i: int) -> str:
        """Where sample `i` lives, for messages: the file, or `shard.tar:key`."""
        path = self.files[int(self.file_ids[i])]
        return path if int(self.sizes[i]) < 0 else f"{path}:{self.keys[i]}"

    def read_bytes(self, i: int) -> bytes:
        path = self.files[int(self.file_ids[i])]
        size = int(self.sizes[i])
        with open(path, "rb") as fh:
            if size < 0:
                return fh.read()
            fh.seek(int(self.offsets[i]))
            return fh.read(size)


def fingerprint_files(paths: list[Path], extra: Any = None) -> str:
    """A cheap identity for a set of files (names, sizes, mtimes) to key the decoded-array cache."""
    h = hashlib.sha256()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def decode_image(data: bytes, channels: int, source: str = "") -> torch.Tensor:
    """Decode to uint8 [C, H, W] with C = `channels` (torchvision's decoders; PIL for other formats)."""
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as tv_decode

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    try:
        return tv_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
    except (RuntimeError, ValueError):
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"cannot decode image: {exc}", path=source or None) from exc
        t = torch.from_numpy(arr.copy())
        return t.permute(2, 0, 1) if t.ndim == 3 else t[None]


# -- imagefolder -------------------------------------------------------------------------------------------
def _split_dir(root: Path, split: str) -> Path | None:
    names = {"train": ("train", "training"), "val": ("val", "valid", "validation", "test")}[split]
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def imagefolder_files(root: Path, split: str, val_fraction: float = 0.2, seed: int = 0
                      ) -> tuple[list[Path], np.ndarray, list[str], dict[str, Any]]:
    """Image paths, labels and class names of one split of an ImageFolder tree.

    `root/train/<class>/*` and `root/val/<class>/*` when those exist; otherwise `root/<class>/*` is split
    per class with a seeded `val_fraction`. Class order is the sorted folder names of the training split.
    """
    if not root.is_dir():
        raise InputError("image folder not found", path=root)
    train_dir = _split_dir(root, "train")
    if train_dir is not None:
        classes = [p.name for p in _class_dirs(train_dir)]
        folder = train_dir if split == "train" else _split_dir(root, "val")
        if folder is None:
            raise InputError("no val/ (or validation/, test/) folder beside train/", path=root)
        split_mode = "folders"
    else:
        classes = [p.name for p in _class_dirs(root)]
        folder = root
        split_mode = f"seeded {val_fraction:g} val fraction (seed {seed})"
    if not classes:
        raise InputError("no class folders (expected <class>/<image> files)", path=root)
    index = {c: i for i, c in enumerate(classes)}
    paths: list[Path] = []
    labels: list[int] = []
    for cdir in _class_dirs(folder):
        if cdir.name not in index:
            raise InputError(f"class folder {cdir.name!r} is not a class of the training split", path=cdir)
        files = sorted(p for p in cdir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        paths.extend(files)
        labels.extend([index[cdir.name]] * len(files))
    lab = np.asarray(labels, dtype=np.int64)
    if train_dir is None and len(lab):
        rng = np.random.default_rng(seed)
        is_val = np.zeros(len(lab), dtype=bool)
        for c in np.unique(lab):
            idx = rng.permutation(np.flatnonzero(lab == c))
            is_val[idx[: int(round(len(idx) * val_fraction))]] = True
        keep = np.flatnonzero(is_val if split == "val" else ~is_val)
        paths = [paths[i] for i in keep]
        lab = lab[keep]
    return paths, lab, classes, {"root": str(root), "split_mode": split_mode, "split_dir": str(folder)}


def imagefolder_records(paths: list[Path], labels: np.ndarray, classes: list[str],
                        meta: dict[str, Any]) -> RecordSet:
    """Whole-file records; a sample's key is its path relative to the split folder (`class/name.jpg`)."""
    n = len(paths)
    base = Path(meta["split_dir"]) if meta.get("split_dir") else None
    keys = [p.relative_to(base).as_posix() if base is not None else str(p) for p in paths]
    return RecordSet([str(p) for p in paths], np.arange(n, dtype=np.int32), np.zeros(n, dtype=np.int64),
                     np.full(n, -1, dtype=np.int64), labels, keys, classes, meta)


# -- webdataset shards -------------------------------------------------------------------------------------
def wds_card(root: Path) -> dict[str, Any]:
    path = root / "dataset.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"bad JSON: {exc}", path=path, line=exc.lineno) from exc


def wds_shards(root: Path, split: str) -> list[Path]:
    """The split's shards: the card's list when there is a card, else `<split>-*.tar` in name order."""
    if not root.is_dir():
        raise InputError("dataset folder not found", path=root)
    card = wds_card(root)
    splits = card.get("splits")
    if isinstance(splits, dict) and splits:
        if split not in splits:
            raise InputError(f"no split {split!r}; known: {', '.join(splits)}", path=root / "dataset.json")
        shards = [root / (s["file"] if isinstance(s, dict) else s) for s in splits[split].get("shards", [])]
        missing = [p for p in shards if not p.is_file()]
        if missing:
            raise InputError(f"shard listed in dataset.json is missing: {missing[0].name}", path=root)
        return shards
    shards = sorted(root.glob(f"{split}-*.tar"))
    if not shards and not any(root.glob("*.tar")):
        raise InputError("no webdataset shards (train-*.tar / val-*.tar) in this folder", path=root)
    return shards


def wds_classes(root: Path, card: dict[str, Any]) -> list[str]:
    """Class ids by label: classes.tsv's wnids (the contract), else the card's class list."""
    tsv = root / "classes.tsv"
    if tsv.is_file():
        from imagenot.wordnet.classes import read_classes

        rows = sorted(read_classes(tsv), key=lambda r: r.index)
        return [r.wnid or r.name for r in rows]
    classes = card.get("classes")
    if isinstance(classes, list) and classes:
        return [c.get("wnid") or c.get("name") if isinstance(c, dict) else str(c) for c in classes]
    raise InputError("no classes.tsv (and no class list in dataset.json)", path=root)


def index_tar(path: Path) -> list[tuple[str, int, int, int]]:
    """(key, image offset, image size, label) per sample of one webdataset shard, from tar headers only
    (plus the tiny `cls` members)."""
    samples: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                match = _WDS_KEY.match(m.name)
                if not match:
                    continue
                key, ext = match.group(1), match.group(2).lower()
                if key not in samples:
                    samples[key] = {}
                    order.append(key)
                s = samples[key]
                if ext in WDS_IMAGE_KEYS and "img" not in s:
                    s["img"] = (m.offset_data, m.size)
                elif ext == "cls":
                    fh = tar.extractfile(m)
                    s["cls"] = fh.read().decode().strip() if fh else ""
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"cannot read tar shard: {exc}", path=path) from exc
    out = []
    for key in order:
        s = samples[key]
        if "img" not in s or "cls" not in s:
            raise InputError(f"sample {key!r} lacks an image (jpg/png) or a cls member", path=path)
        try:
            label = int(s["cls"])
        except ValueError:
            raise InputError(f"sample {key!r}: cls {s['cls']!r} is not an integer", path=path) from None
        out.append((key, s["img"][0], s["img"][1], label))
    return out


def wds_records(root: Path, split: str, shards: list[Path], classes: list[str], card: dict[str, Any]) -> RecordSet:
    files, fids, offs, sizes, labels, keys = [], [], [], [], [], []
    from tqdm import tqdm

    for fid, shard in enumerate(tqdm(shards, desc=f"index {root.name}/{split}", unit="shard", leave=False,
                                     disable=len(shards) < 8)):
        files.append(str(shard))
        for key, off, size, label in index_tar(shard):
            fids.append(fid)
            offs.append(off)
            sizes.append(size)
            labels.append(label)
            keys.append(key)
    return RecordSet(files, np.asarray(fids, dtype=np.int32), np.asarray(offs, dtype=np.int64),
                     np.asarray(sizes, dtype=np.int64), np.asarray(labels, dtype=np.int64), keys, classes,
                     {"root": str(root), "card_image_size": card.get("image_size")})


def env_cache_dir() -> Path:
    return Path(os.environ.get("IMAGENOT_CACHE") or Path.home() / ".cache" / "imagenot")
