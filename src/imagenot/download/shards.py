"""Writing and reading the dataset's webdataset shards (`train-%06d.tar`, `val-%06d.tar`).

Each sample: `__key__`, the image (`jpg` or `png`, shorter side = image_size), `cls` (class index as
decimal text) and `json` (wnid, caption, url, similarity, source_id, plus lemma, fingerprints and original
size). Tar members get a fixed mtime and owner, so the same samples always give byte-identical shards and
the content hashes in the card can be checked by anyone who rebuilds the dataset.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from imagenot.errors import InputError
from imagenot.fileio import read_json, sha256_file, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val")


def shard_pattern(split: str) -> str:
    return f"{split}-%06d.tar"


def write_split_shards(
    out_dir: Path,
    split: str,
    samples: Iterable[dict[str, Any]],
    *,
    shard_size: int,
    stats_dir: Path,
    encode_format: str,
) -> list[dict[str, Any]]:
    """Write one split's shards into `out_dir` (each shard is written under a temporary name and renamed
    when complete) and a stats file per shard; return the shard list for the card."""
    import webdataset as wds  # imports torch: keep it out of module import time

    tmp_dir = out_dir / "_work" / f"shards-{split}.tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for stale in tmp_dir.glob("*.tar"):
        stale.unlink()
    shards: list[dict[str, Any]] = []
    labels_of: dict[str, Counter[int]] = {}
    current: Counter[int] = Counter()

    def finished(path: str) -> None:
        # ShardWriter calls this when a shard is closed, before the next sample is counted
        labels_of[path] = current.copy()
        current.clear()

    with wds.ShardWriter(str(tmp_dir / shard_pattern(split)), maxcount=shard_size, maxsize=float(1 << 40),
                         post=finished, verbose=0, mtime=0.0, user="imagenot", group="imagenot") as sink:
        for s in samples:
            sink.write({
                "__key__": s["key"],
                encode_format: s["image"],
                "cls": str(int(s["label"])).encode(),
                "json": json.dumps(s["meta"], ensure_ascii=False).encode("utf-8"),
            })
            current[int(s["label"])] += 1
    for old in out_dir.glob(f"{split}-*.tar"):
        old.unlink()
    for stale in stats_dir.glob(f"{split}-*.json"):
        stale.unlink()
    stats_dir.mkdir(parents=True, exist_ok=True)
    for tmp in sorted(tmp_dir.glob("*.tar")):
        labels = labels_of.get(str(tmp), Counter())
        if not labels:  # ShardWriter opens a first shard even for an empty split
            tmp.unlink()
            continue
        final = out_dir / tmp.name
        os.replace(tmp, final)
        info = {
            "file": final.name,
            "samples": sum(labels.values()),
            "bytes": final.stat().st_size,
            "sha256": sha256_file(final),
        }
        write_json(stats_dir / f"{final.stem}.json",
                   {**info, "split": split, "per_class": {str(k): v for k, v in sorted(labels.items())}})
        shards.append(info)
    tmp_dir.rmdir()
    return shards


def _card(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / "dataset.json"
    if not path.is_file():
        raise InputError("not a dataset folder made by `imagenot download` (no dataset.json)", dataset_dir)
    return read_json(path)


def shard_paths(dataset_dir: str | Path, split: str) -> list[Path]:
    dataset_dir = Path(dataset_dir)
    card = _card(dataset_dir)
    splits = card.get("splits", {})
    if split not in splits:
        raise InputError(f"no split {split!r}; known: {', '.join(splits)}", dataset_dir / "dataset.json")
    return [dataset_dir / s["file"] for s in splits[split]["shards"]]


def iter_samples(dataset_dir: str | Path, split: str, decode: bool = True) -> Iterator[dict[str, Any]]:
    """Samples of one split in shard order: key, label (int), meta (dict), image (RGB PIL image, or the
    encoded bytes with decode=False), ext."""
    import webdataset as wds

    paths = shard_paths(dataset_dir, split)
    if not paths:
        return
    ds = wds.WebDataset([str(p) for p in paths], shardshuffle=False, empty_check=False)
    for sample in ds:
        ext = "jpg" if "jpg" in sample else "png"
        data = sample[ext]
        image: Any = data
        if decode:
            import io

            with Image.open(io.BytesIO(data)) as im:
                image = im.convert("RGB")
        yield {
            "key": sample["__key__"],
            "label": int(sample["cls"].decode()),
            "meta": json.loads(sample["json"].decode("utf-8")),
            "image": image,
            "ext": ext,
        }


def load_split_arrays(dataset_dir: str | Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A split in memory: images uint8 [N, 3, size, size] (centre crop of the shorter side), labels int64.

    For the data registry's `wds:PATH` entry; the crop is the centre crop that training-time resizing
    would make, done once.
    """
    images: list[np.ndarray] = []
    labels: list[int] = []
    for s in iter_samples(dataset_dir, split):
        im = ImageOps.fit(s["image"], (size, size), Image.Resampling.BICUBIC, centering=(0.5, 0.5))
        images.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
        labels.append(s["label"])
    if not images:
        return np.zeros((0, 3, size, size), np.uint8), np.zeros((0,), np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def class_names(dataset_dir: str | Path) -> list[str]:
    """Class names by label (the card's order)."""
    return [c["name"] for c in _card(Path(dataset_dir))["classes"]]
