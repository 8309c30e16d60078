"""`imagenot download` and `imagenot export`.

Every flag defaults to None so that `--config DATASET/config.json` can supply it and an explicit flag still
wins (defaults < config file < flags). Help texts and defaults come from the config fields' metadata.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import typing
from typing import Any

from imagenot.download.config import DownloadConfig, ExportConfig

_FIELDS = {f.name: f for f in dataclasses.fields(DownloadConfig)}
_BOOLS = ("allow_local", "keep_raw", "force", "keep_small_classes")
_DOWNLOAD_EXAMPLES = """examples:
  imagenot download --matches mine/selected.parquet --out dataset --image-size 64
  imagenot download --matches mine/selected.parquet --out dataset --text-filter count --processes 8
  imagenot download --config dataset/config.json   # resume, or confirm a complete folder"""
_EXPORT_EXAMPLES = """examples:
  imagenot export --dataset dataset --out dataset-folders
  imagenot export --dataset dataset --out val-only --splits val --overwrite"""


def _help(name: str, cls: type = DownloadConfig) -> str:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    text = f.metadata["help"]
    if default in (None, "", ()) or "default" in text:
        return text
    shown = ",".join(default) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})"


def _kwargs(name: str) -> dict[str, Any]:
    hint = typing.get_type_hints(DownloadConfig)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0] if typing.get_origin(hint) is not typing.Literal else hint
    if typing.get_origin(base) is typing.Literal:
        return {"choices": list(typing.get_args(base))}
    if base in (int, float):
        return {"type": base}
    return {}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "download",
        help="fetch, clean, deduplicate, split and shard selected rows into a dataset folder",
        description="Materialise selected.parquet into webdataset shards (train-000000.tar, val-000000.tar, ...) "
        "with per-shard stats, removed.parquet (every dropped row and why), dataset.json, README.md and "
        "contact_sheet.png. Rerunning the same command resumes, or does nothing when the folder is complete. "
        "Ctrl-C exits with status 130; rerun the same command to resume.",
        epilog=_DOWNLOAD_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="config file (json/yaml), e.g. a dataset folder's config.json")
    for name in _FIELDS:
        if name in _BOOLS or name in ("dedup", "against"):
            continue
        p.add_argument("--" + name.replace("_", "-"), default=None, help=_help(name), **_kwargs(name))
    for name in _BOOLS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, action="store_const", const=True, default=None,
                       help=_help(name))
    p.add_argument("--dedup", dest="dedup", action="store_const", const=True, default=None, help=_help("dedup"))
    p.add_argument("--no-dedup", dest="dedup", action="store_const", const=False,
                   help="keep duplicates within the dataset")
    p.add_argument("--against", action="append", default=None, metavar="DATASET", help=_help("against"))
    p.set_defaults(func=run_download_cli)

    e = subparsers.add_parser(
        "export", help="export a dataset folder (ImageFolder layout, labels in sorted folder order)",
        description="Write OUT/<split>/<NNN>_<wnid>_<name>/<key>.<ext> from a complete dataset folder, with "
        "class_folders.tsv (label, folder, wnid, name) and the dataset's classes.tsv.",
        epilog=_EXPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--dataset", required=True, help=_help("dataset", ExportConfig))
    e.add_argument("--out", required=True, help=_help("out", ExportConfig))
    e.add_argument("--format", default="folder", choices=["folder"], help=_help("format", ExportConfig))
    e.add_argument("--splits", default=None, help="comma-separated " + _help("splits", ExportConfig))
    e.add_argument("--overwrite", action="store_true", help=_help("overwrite", ExportConfig))
    e.set_defaults(func=run_export_cli)


def run_download_cli(args: argparse.Namespace) -> int:
    from imagenot.config import resolve
    from imagenot.download.pipeline import run_download

    overrides = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
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
    from imagenot.download.export import run_export

    splits = tuple(s for s in (args.splits or "train,val").split(",") if s)
    summary = run_export(ExportConfig(dataset=args.dataset, out=args.out, format=args.format, splits=splits,
                                      overwrite=args.overwrite))
    print(json.dumps({k: sum(v.values()) for k, v in summary["splits"].items()}))
    return 0
