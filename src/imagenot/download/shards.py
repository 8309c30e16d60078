"""Writing the dataset's webdataset shards (`train-%06d.tar`, `val-%06d.tar`).

Each sample: `__key__`, the image (`jpg` or `png`, shorter side = image_size), `cls` (class index as
decimal text) and `json` (wnid, caption, url, similarity, source_id, plus lemma, fingerprints and original
size). Tar members get a fixed mtime and owner, so the same samples always give byte-identical shards and
the content hashes in the card can be checked by anyone who rebuilds the dataset.

Dataset folders are read in one place, `imagenot.data.readers.files` (`wds_card`, `wds_shards`,
`wds_classes`, `wds_records`), which also checks that a folder is complete; the export and the dataset
registry both go through it.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imagenot.fileio import sha256_file, write_json

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
        with open(tmp, "rb") as fh:  # on disk before it is named: a power cut leaves no empty shard
            os.fsync(fh.fileno())
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
