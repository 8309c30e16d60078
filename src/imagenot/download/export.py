"""Export a dataset folder to other layouts; today the ImageFolder tree torchvision and most tools read.

`OUT/<split>/<wnid>/<key>.<ext>`: class folders are named by wnid, so the export stays unambiguous when two
classes share a display name. Note that `torchvision.datasets.ImageFolder` numbers classes by sorted folder
name, not by the dataset's label order; `OUT/classes.tsv` keeps the dataset's order.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from imagenot.download.config import ExportConfig
from imagenot.download.shards import iter_samples
from imagenot.errors import ImagenotError, InputError
from imagenot.fileio import read_json, write_json

log = logging.getLogger(__name__)

FORMATS = ("folder",)


def run_export(cfg: ExportConfig) -> dict[str, Any]:
    if cfg.format not in FORMATS:
        raise ImagenotError(f"unknown export format {cfg.format!r}; known: {', '.join(FORMATS)}")
    if not cfg.dataset or not cfg.out:
        raise ImagenotError("--dataset and --out are required")
    src = Path(cfg.dataset)
    if not (src / "dataset.json").is_file():
        raise InputError("not a complete dataset folder (no dataset.json); run `imagenot download` first", src)
    card = read_json(src / "dataset.json")
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise ImagenotError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
    wnids = {c["index"]: c["wnid"] for c in card["classes"]}
    tmp = out.parent / f".{out.name}.export-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, Counter[str]] = {}
    for split in cfg.splits:
        if split not in card["splits"]:
            raise InputError(f"no split {split!r}; known: {', '.join(card['splits'])}", src / "dataset.json")
        counts[split] = Counter()
        total = card["splits"][split]["count"]
        for s in tqdm(iter_samples(src, split, decode=False), total=total, desc=f"export {split}",
                      unit="img", leave=False):
            wnid = wnids[s["label"]]
            folder = tmp / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{s['key']}.{s['ext']}").write_bytes(s["image"])
            counts[split][wnid] += 1
    shutil.copyfile(src / "classes.tsv", tmp / "classes.tsv")
    summary = {
        "format": cfg.format,
        "dataset": str(src),
        "dataset_name": card.get("name"),
        "splits": {k: dict(sorted(v.items())) for k, v in counts.items()},
    }
    write_json(tmp / "export.json", summary)
    # the whole tree appears at once: a reader never sees half an export
    if out.exists():
        old = out.parent / f".{out.name}.export-old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    log.info("exported %s to %s: %s", src, out, {k: sum(v.values()) for k, v in counts.items()})
    return summary
