"""`imagenot download` and `imagenot export`.

Every flag defaults to None so that `--config DATASET/config.json` can supply it and an explicit flag still
wins (defaults < config file < flags).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

_DOWNLOAD_FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("--matches", {"help": "selected.parquet from `imagenot mine`"}),
    ("--classes", {"help": "classes.tsv (default: next to --matches)"}),
    ("--out", {"help": "dataset folder to create or complete"}),
    ("--name", {"help": "dataset name in the card (default: folder name)"}),
    ("--image-size", {"type": int, "help": "shorter side in px after resizing (default 64)"}),
    ("--encode-format", {"choices": ["jpg", "png"], "help": "image format in the shards (default jpg)"}),
    ("--encode-quality", {"type": int, "help": "jpg quality (default 95)"}),
    ("--processes", {"type": int, "help": "fetch/clean processes (default 1)"}),
    ("--threads", {"type": int, "help": "download threads per process (default 16)"}),
    ("--timeout", {"type": int, "help": "seconds per request (default 10)"}),
    ("--retries", {"type": int, "help": "extra tries per failed url (default 1)"}),
    ("--distributor", {"choices": ["multiprocessing", "pyspark", "ray"],
                       "help": "img2dataset distributor (pyspark or ray on clusters)"}),
    ("--fetcher", {"choices": ["auto", "img2dataset", "direct"],
                   "help": "auto (default): direct reads when every url is file://, else img2dataset"}),
    ("--fetch-shard-size", {"type": int, "help": "rows per fetch shard, the unit of resuming (default 1000)"}),
    ("--shard-size", {"type": int, "help": "samples per output tar (default 5000)"}),
    ("--min-image-size", {"type": int, "help": "drop images whose shorter side is below this (default 10)"}),
    ("--max-image-pixels", {"type": int, "help": "refuse larger images as decompression bombs"}),
    ("--max-aspect-ratio", {"type": float, "help": "drop images more elongated than this (default 10)"}),
    ("--near-dup-distance", {"type": int,
                             "help": "Hamming distance of 64-bit phashes for near duplicates (default 4; -1 off)"}),
    ("--seed", {"type": int, "help": "split and shuffle seed (default 0)"}),
    ("--val-fraction", {"type": float, "help": "val share for rows without a split (default 0.1)"}),
    ("--min-per-class", {"type": int, "help": "images a class needs after download (default 10)"}),
    ("--min-val-per-class", {"type": int, "help": "val images a class needs (default 1)"}),
    ("--max-train-per-class", {"type": int,
                               "help": "keep the first N surviving train rows per class (default: from "
                               "selection.json; -1: no cap)"}),
    ("--max-val-per-class", {"type": int, "help": "the same for val (default: from selection.json)"}),
    ("--sheet-per-class", {"type": int, "help": "contact sheet columns (default 8)"}),
    ("--sheet-max-classes", {"type": int, "help": "contact sheet rows (default 40)"}),
]


def _add_bool(p: argparse.ArgumentParser, name: str, help_on: str, off: str | None = None,
              help_off: str | None = None) -> None:
    dest = name.lstrip("-").replace("-", "_")
    p.add_argument(name, dest=dest, action="store_const", const=True, default=None, help=help_on)
    if off:
        p.add_argument(off, dest=dest, action="store_const", const=False, help=help_off)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "download",
        help="fetch, clean, deduplicate, split and shard selected rows into a dataset folder",
        description="Materialise selected.parquet into webdataset shards (train-%%06d.tar, val-%%06d.tar) "
        "with per-shard stats, removed.parquet (every dropped row and why), dataset.json, README.md and "
        "contact_sheet.png. Rerunning the same command resumes, or does nothing when the folder is complete.",
    )
    p.add_argument("--config", help="config file (json/yaml), e.g. a dataset folder's config.json")
    for flag, kw in _DOWNLOAD_FLAGS:
        p.add_argument(flag, default=None, **kw)
    _add_bool(p, "--allow-local", "accept file:// urls: only for a corpus you declare local")
    _add_bool(p, "--keep-raw", "keep the original fetched bytes after cleaning")
    _add_bool(p, "--dedup", "remove duplicates within the dataset (default)", "--no-dedup",
              "keep duplicates within the dataset")
    _add_bool(p, "--keep-small-classes", "keep classes below the minimum (flagged in the card)")
    p.add_argument("--against", action="append", default=None, metavar="DATASET",
                   help="contamination check: a dataset folder, an ImageFolder tree or a registry name "
                   "(repeatable)")
    p.set_defaults(func=run_download_cli)

    e = subparsers.add_parser("export", help="export a dataset folder (ImageFolder layout)",
                              description="Write OUT/<split>/<wnid>/<key>.<ext> from a dataset folder.")
    e.add_argument("--dataset", required=True, help="dataset folder made by `imagenot download`")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--format", default="folder", choices=["folder"], help="layout (default folder)")
    e.add_argument("--splits", default=None, help="comma-separated splits (default train,val)")
    e.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    e.set_defaults(func=run_export_cli)


def run_download_cli(args: argparse.Namespace) -> int:
    from imagenot.config import resolve
    from imagenot.download.config import DownloadConfig
    from imagenot.download.pipeline import run_download

    keys = [f.lstrip("-").replace("-", "_") for f, _ in _DOWNLOAD_FLAGS]
    keys += ["allow_local", "keep_raw", "dedup", "keep_small_classes", "against"]
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if "against" in overrides:
        overrides["against"] = tuple(overrides["against"])
    cfg = resolve(DownloadConfig, config_file=args.config, overrides=overrides)
    argv = sys.argv[1:]
    rest = argv[argv.index("download") + 1:] if "download" in argv else []
    command = "imagenot download " + " ".join(shlex.quote(a) for a in rest) if rest else None
    card = run_download(cfg, command=command)
    c = card["counts"]
    print(json.dumps({"out": cfg.out, "classes": card["num_classes"], "train": c["train"], "val": c["val"],
                      "removed": card["removed"]}))
    return 0


def run_export_cli(args: argparse.Namespace) -> int:
    from imagenot.download.config import ExportConfig
    from imagenot.download.export import run_export

    splits = tuple(s for s in (args.splits or "train,val").split(",") if s)
    summary = run_export(ExportConfig(dataset=args.dataset, out=args.out, format=args.format, splits=splits,
                                      overwrite=args.overwrite))
    print(json.dumps({k: sum(v.values()) for k, v in summary["splits"].items()}))
    return 0
