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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagenot import datacard, safepath
from imagenot.errors import InputError
from imagenot.fileio import sha256_file, write_json

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
    blobs: list[bytes] | None = None  # every sample's bytes, read once (`preload`): no file is opened again

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, idx: np.ndarray | None) -> RecordSet:
        if idx is None:
            return self
        return RecordSet(self.files, self.file_ids[idx], self.offsets[idx], self.sizes[idx], self.labels[idx],
                         [self.keys[i] for i in idx], self.classes, self.meta,
                         [self.blobs[i] for i in idx] if self.blobs is not None else None)

    def encoded_bytes(self) -> int:
        """The encoded size of every sample (whole files stat'ed), for memory estimates."""
        return int(sum(os.path.getsize(self.files[int(f)]) if int(s) < 0 else int(s)
                       for f, s in zip(self.file_ids, self.sizes)))

    def preload(self) -> RecordSet:
        """The same records with every sample's encoded bytes in memory: the stored images, exactly."""
        if self.blobs is not None:
            return self
        return RecordSet(self.files, self.file_ids, self.offsets, self.sizes, self.labels, self.keys, self.classes,
                         self.meta, [self.read_bytes(i) for i in range(len(self))])

    def source(self, i: int) -> str:
        """Where sample `i` lives, for messages: the file, or `shard.tar:key`."""
        path = self.files[int(self.file_ids[i])]
        return path if int(self.sizes[i]) < 0 else f"{path}:{self.keys[i]}"

    def read_bytes(self, i: int) -> bytes:
        if self.blobs is not None:
            return self.blobs[i]
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
    """Decode to uint8 [C, H, W] with C = `channels` (torchvision's decoders; PIL for other formats), turned
    as the image displays (its EXIF orientation applied: `imagenot.data.orientation`)."""
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as tv_decode

    from imagenot.data.orientation import exif_orientation, orient, upright

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    try:
        decoded = tv_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
        return orient(decoded, exif_orientation(data)).contiguous()
    except (RuntimeError, ValueError):
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(upright(im).convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
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


def _image_files(cdir: Path) -> list[Path]:
    return sorted(p for p in cdir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _refuse_empty_classes(folders: list[Path], where: Path) -> None:
    """A class folder without an image file would be a class no image has (a label the model can never see,
    one more class in its head, chance figures off): refused, as torchvision's ImageFolder does."""
    empty = [c.name for c in folders if not any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                                                for p in c.rglob("*"))]
    if empty:
        shown = ", ".join(repr(n) for n in empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise InputError(f"class folder(s) {shown} hold no image file ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                         "add images or remove the folder(s)", path=where)


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
        _refuse_empty_classes(_class_dirs(train_dir), train_dir)
        classes = [p.name for p in _class_dirs(train_dir)]
        folder = train_dir if split == "train" else _split_dir(root, "val")
        if folder is None:
            raise InputError("no val/ (or validation/, test/) folder beside train/", path=root)
        split_mode = "folders"
    else:
        _refuse_empty_classes(_class_dirs(root), root)
        classes = [p.name for p in _class_dirs(root)]
        folder = root
        split_mode = f"seeded {val_fraction:g} val fraction (seed {seed})"
    if not classes:
        raise InputError("no class folders (expected <class>/<image> files)", path=root)
    if train_dir is not None and folder is not train_dir:
        _refuse_empty_classes(_class_dirs(folder), folder)
    index = {c: i for i, c in enumerate(classes)}
    paths: list[Path] = []
    labels: list[int] = []
    for cdir in _class_dirs(folder):
        if cdir.name not in index:
            raise InputError(f"class folder {cdir.name!r} is not a class of the training split", path=cdir)
        files = _image_files(cdir)
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
# A dataset folder is usable only when it is complete: its card (dataset.json, written last by `imagenot
# download`) exists and every shard the card lists is present with the size, sha256 and sample count the card
# records. Anything else (a killed download, a deleted or truncated tar) is an error naming what is missing,
# unless the caller asks for `allow_incomplete` (then a warning, and only the intact shards are read).
#
# Hashing every shard at every load would cost minutes at ImageNet scale, so presence and size are checked
# always and the sha256 (which pins the sample count the writer recorded) only when a shard is not in the
# folder's verification cache `.verified.json` with the same size, mtime and recorded hash. `imagenot
# download` seeds that cache with the hashes it has just computed. `verify="full"` re-hashes everything;
# `verify="size"` never hashes (read-only folders too large to hash). A folder that cannot be written just
# re-verifies next time.
WDS_VERIFY = ("auto", "full", "size")
VERIFIED_CACHE = ".verified.json"
_INCOMPLETE_HINT = ("rerun the `imagenot download` command that made it (its rerun_command is in "
                    "dataset.json), or pass --data-opt allow_incomplete=true to load what is there")


def wds_card(root: Path, allow_incomplete: bool = False) -> dict[str, Any]:
    """The folder's card; no card means an unfinished folder: refused unless `allow_incomplete` ({} then)."""
    if not root.is_dir():
        raise InputError("dataset folder not found", path=root)
    path = datacard.card_path(root)
    if not path.is_file():
        if allow_incomplete:
            log.warning("%s: no dataset.json (an unfinished download?): loading its shards anyway, as asked "
                        "(allow_incomplete)", root)
            return {}
        raise InputError("no dataset.json, so this is not a complete dataset folder (`imagenot download` "
                         f"writes the card last); {_INCOMPLETE_HINT}", path=root)
    return datacard.read_card(root)


def wds_shards(root: Path, split: str, card: dict[str, Any] | None = None, *, allow_incomplete: bool = False,
               verify: str = "auto") -> list[Path]:
    """The split's shards as the card lists them, each checked against the card (see above).

    Without a card (only with `allow_incomplete`): `<split>-*.tar` in name order.
    """
    if verify not in WDS_VERIFY:
        raise InputError(f"verify must be one of {', '.join(WDS_VERIFY)}, got {verify!r}")
    if card is None:
        card = wds_card(root, allow_incomplete)
    splits = card.get("splits")
    if not card or not isinstance(splits, dict):
        if card:
            raise InputError("dataset.json has no 'splits' (not written by `imagenot download`?)", path=root)
        shards = sorted(root.glob(f"{split}-*.tar"))
        if not shards and not any(root.glob("*.tar")):
            raise InputError("no webdataset shards (train-*.tar / val-*.tar) in this folder", path=root)
        return shards
    if split not in splits:
        raise InputError(f"no split {split!r}; known: {', '.join(splits)}", path=root / "dataset.json")
    listed = [s if isinstance(s, dict) else {"file": str(s)} for s in splits[split].get("shards", [])]
    for entry in listed:  # a card may list only files inside its own folder
        safepath.inside(root, str(entry.get("file", "")), f"{split} shard listed in dataset.json")
    problems = _check_shards(root, listed, verify)
    if problems:
        summary = "; ".join(msg for _, msg in problems[:5]) + ("; ..." if len(problems) > 5 else "")
        what = f"{len(problems)} of {len(listed)} {split} shard(s) listed in dataset.json"
        if not allow_incomplete:
            raise InputError(f"incomplete dataset folder: {what} are missing or differ from it ({summary}); "
                             f"{_INCOMPLETE_HINT}", path=root)
        log.warning("%s: %s are missing or differ from it (%s): loading the %d intact one(s), as asked "
                    "(allow_incomplete)", root, what, summary, len(listed) - len(problems))
    bad = {name for name, _ in problems}
    return [root / s["file"] for s in listed if s["file"] not in bad]


def _check_shards(root: Path, listed: list[dict[str, Any]], verify: str) -> list[tuple[str, str]]:
    """(file, what is wrong) for each listed shard that is missing or does not match the card."""
    cache_path = root / VERIFIED_CACHE
    cache = _read_verified(cache_path)
    changed = False
    problems: list[tuple[str, str]] = []
    for entry in listed:
        name = entry["file"]
        path = root / name
        try:
            st = path.stat()
        except OSError:
            problems.append((name, f"{name} is missing"))
            continue
        want_bytes, want_sha, want_n = entry.get("bytes"), entry.get("sha256"), entry.get("samples")
        if want_bytes is not None and st.st_size != int(want_bytes):
            problems.append((name, f"{name} has {st.st_size} bytes, dataset.json says {want_bytes} (truncated "
                                   "or replaced)"))
            continue
        if verify == "size" or (want_sha is None and want_n is None):
            continue
        known = cache.get(name)
        stamp = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": want_sha, "samples": want_n}
        if verify == "auto" and known == stamp:
            continue
        # a matching sha256 means the bytes the writer counted: the count is checked only without a hash
        try:
            sha = sha256_file(path) if want_sha is not None else None
            n = int(want_n) if sha is not None and want_n is not None else count_samples(path)
        except (InputError, OSError) as exc:
            problems.append((name, f"{name} cannot be read ({exc.__cause__ or exc})"))
            continue
        if want_sha is not None and sha != want_sha:
            problems.append((name, f"{name} differs from the sha256 in dataset.json (corrupt or replaced)"))
        elif want_n is not None and n != int(want_n):
            problems.append((name, f"{name} holds {n} samples, dataset.json says {want_n}"))
        else:
            cache[name] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha, "samples": n}
            changed = True
    if changed:
        _write_verified(cache_path, cache)
    return problems


def count_samples(path: Path) -> int:
    """Samples (distinct keys) in a webdataset tar, from its headers (tarfile seeks past member data)."""
    keys: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                match = _WDS_KEY.match(m.name) if m.isfile() else None
                if match:
                    keys.add(match.group(1))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"cannot read tar shard: {exc}", path=path) from exc
    return len(keys)


def _read_verified(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    shards = data.get("shards") if isinstance(data, dict) else None
    return dict(shards) if isinstance(shards, dict) else {}


def _write_verified(path: Path, shards: dict[str, Any]) -> None:
    try:
        write_json(path, {"format": 1, "shards": dict(sorted(shards.items()))})
    except OSError as exc:  # a read-only dataset folder: verify again next time
        log.debug("cannot write %s (%s): shards will be verified again at the next load", path, exc)


def wds_record_verified(root: Path, shards: list[dict[str, Any]]) -> None:
    """Seed the verification cache for shards whose sha256 and sample count the writer has just computed
    (`imagenot download`), so that the first load does not hash them again."""
    cache = _read_verified(root / VERIFIED_CACHE)
    for s in shards:
        st = (root / s["file"]).stat()
        cache[s["file"]] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": s["sha256"],
                            "samples": s["samples"]}
    _write_verified(root / VERIFIED_CACHE, cache)


def wds_classes(root: Path, card: dict[str, Any]) -> list[str]:
    """Class ids by label: classes.tsv's wnids (the contract), else the card's class list; the two must agree
    when both exist (a label means one class everywhere)."""
    tsv = root / "classes.tsv"
    listed = card.get("classes")
    from_card = ([c.get("wnid") or c.get("name") if isinstance(c, dict) else str(c) for c in listed]
                 if isinstance(listed, list) else [])
    if tsv.is_file():
        from imagenot.wordnet.classes import read_classes

        rows = sorted(read_classes(tsv), key=lambda r: r.index)
        classes = [r.wnid or r.name for r in rows]
        if from_card and from_card != classes:
            diff = next((i for i, (a, b) in enumerate(zip(classes, from_card)) if a != b),
                        min(len(classes), len(from_card)))
            raise InputError(f"classes.tsv and dataset.json disagree on the classes ({len(classes)} vs "
                             f"{len(from_card)}; first difference at label {diff})", path=root)
        return classes
    if from_card:
        return from_card
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


def iter_wds_samples(root: Path, split: str, *, allow_incomplete: bool = False) -> Iterator[dict[str, Any]]:
    """Every sample of a complete dataset folder's split, in shard order, images left encoded.

    Yields `{"key", "label" (int), "meta" (the json member, a dict), "image" (bytes), "ext"}`; for readers
    that need the captions and provenance of each sample (the audit), not only pixels and labels.
    """
    card = wds_card(root, allow_incomplete=allow_incomplete)
    for shard in wds_shards(root, split, card, allow_incomplete=allow_incomplete):
        try:
            with tarfile.open(shard, "r:") as tar:
                current: str | None = None
                parts: dict[str, bytes] = {}
                for m in tar:
                    match = _WDS_KEY.match(m.name) if m.isfile() else None
                    if not match:
                        continue
                    key, ext = match.group(1), match.group(2).lower()
                    if key != current and current is not None:
                        yield _wds_sample(current, parts, shard)
                        parts = {}
                    current = key
                    fh = tar.extractfile(m)
                    parts[ext] = fh.read() if fh else b""
                if current is not None:
                    yield _wds_sample(current, parts, shard)
        except (tarfile.TarError, OSError) as exc:
            raise InputError(f"cannot read tar shard: {exc}", path=shard) from exc


def _wds_sample(key: str, parts: dict[str, bytes], shard: Path) -> dict[str, Any]:
    ext = next((e for e in WDS_IMAGE_KEYS if e in parts), None)
    if ext is None or "cls" not in parts:
        raise InputError(f"sample {key!r} lacks an image (jpg/png) or a cls member", path=shard)
    try:
        label = int(parts["cls"].decode().strip())
        meta = json.loads(parts["json"].decode("utf-8")) if "json" in parts else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"sample {key!r}: unreadable cls or json member ({exc})", path=shard) from exc
    return {"key": key, "label": label, "meta": meta, "image": parts[ext], "ext": ext}


def env_cache_dir() -> Path:
    return Path(os.environ.get("IMAGENOT_CACHE") or Path.home() / ".cache" / "imagenot")
