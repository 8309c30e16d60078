"""`imagenot download` and `imagenot export`: flags generated from DownloadConfig and ExportConfig.

Defaults < `--config DATASET/config.json` < flags; paths are made absolute, so a dataset folder's own
config.json reruns it from any directory.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

DOWNLOAD_EXAMPLES = (
    "imagenot download --matches mine/selected.parquet --out dataset --image-size 64",
    "imagenot download --matches mine/selected.parquet --out dataset --text-filter count --processes 8",
    "imagenot download --config dataset/config.json   # resume, or confirm a complete folder",
)
EXPORT_EXAMPLES = (
    "imagenot export --dataset dataset --out dataset-folders",
    "imagenot export --dataset dataset --out val-only --splits val --overwrite",
)


def register(subparsers: Any) -> None:
    from imagenot.cli_options import add_stage_parser
    from imagenot.download.config import DownloadConfig, ExportConfig

    p = add_stage_parser(
        subparsers, "download", DownloadConfig,
        help="fetch, clean, deduplicate, split and shard selected rows into a dataset folder",
        description="Materialise selected.parquet into webdataset shards (train-000000.tar, val-000000.tar, "
        "...) with per-shard stats, removed.parquet (every dropped row and why), dataset.json, README.md and "
        "contact_sheet.png. Rerunning the same command resumes, or does nothing when the folder is complete; "
        "a folder built from other inputs is refused unless --force. Ctrl-C exits with status 130: rerun the "
        "same command to resume.",
        examples=DOWNLOAD_EXAMPLES,
    )
    p.set_defaults(func=run_download_cli)
    e = add_stage_parser(
        subparsers, "export", ExportConfig,
        help="export a dataset folder (ImageFolder layout, labels in sorted folder order)",
        description="Write OUT/<split>/<NNN>_<wnid>_<name>/<key>.<ext> from a complete dataset folder, with "
        "class_folders.tsv (label, folder, wnid, name) and the dataset's classes.tsv. Sorted folder order is "
        "label order, so torchvision's ImageFolder gives the dataset's labels.",
        examples=EXPORT_EXAMPLES,
    )
    e.set_defaults(func=run_export_cli)


def run_download_cli(args: argparse.Namespace) -> int:
    from imagenot.cli_options import config_from_args
    from imagenot.download.config import DownloadConfig
    from imagenot.download.pipeline import run_download

    cfg = config_from_args(DownloadConfig, args)
    argv = sys.argv[1:]
    rest = argv[argv.index("download") + 1:] if "download" in argv else []
    command = "imagenot download " + " ".join(shlex.quote(a) for a in rest) if rest else None
    card = run_download(cfg, command=command)
    c = card["counts"]
    print(json.dumps({"out": cfg.out, "classes": card["num_classes"], "train": c["train"], "val": c["val"],
                      "removed": card["removed"]}))
    return 0


def run_export_cli(args: argparse.Namespace) -> int:
    from imagenot.cli_options import config_from_args
    from imagenot.download.config import ExportConfig
    from imagenot.download.export import run_export

    summary = run_export(config_from_args(ExportConfig, args))
    print(json.dumps({k: sum(v.values()) for k, v in summary["splits"].items()}))
    return 0
