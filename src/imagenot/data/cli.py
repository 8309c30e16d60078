"""`imagenot datasets`: list the dataset registry's entries (and optionally inspect one spec)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.config import option


@dataclass(frozen=True)
class DatasetsConfig:
    show: str | None = option(None, help="load this dataset spec and print per-split counts, classes and image "
                              "size (default: list the registry's entries)", metavar="SPEC", path="spec")
    image_size: int | None = option(None, help="with --show: resize to this size (default: the dataset's own)")
    options: dict[str, Any] = option(default_factory=dict, flag="--data-opt",
                                     help="with --show: a dataset entry option (repeatable), e.g. "
                                     "allow_incomplete=true for a wds folder")
    format: Literal["table", "json"] = option("table", help="output format")


EXAMPLES = (
    "imagenot datasets",
    "imagenot datasets --show wds:out/dataset",
    "imagenot datasets --show wds:out/dataset --data-opt allow_incomplete=true --format json",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_stage_parser(
        subparsers, "datasets", DatasetsConfig, help="list the dataset entries (specs for --dataset)",
        description="List dataset specs; with --show SPEC, load it and print its splits.", examples=EXAMPLES,
    )
    p.set_defaults(func=run)


def describe(cfg: DatasetsConfig) -> dict[str, Any]:
    """What `--show` prints, as data: per split the count, classes, image shape and per-class counts."""
    from imagenot.data import get_dataset

    options = dict(cfg.options)
    if cfg.image_size is not None:
        options["image_size"] = cfg.image_size
    out: dict[str, Any] = {"spec": cfg.show, "splits": {}}
    for split in ("train", "val"):
        ds = get_dataset(str(cfg.show), split, **options)
        streaming = bool(getattr(ds, "streaming", False))
        out["splits"][split] = {
            "images": len(ds), "classes": int(ds.num_classes), "streaming": streaming,
            "shape": None if streaming else list(ds.images.shape[1:]),
            "per_class": ds.labels.bincount(minlength=ds.num_classes).tolist(),
        }
        out["classes"] = list(ds.classes)
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from imagenot import escape
    from imagenot.data import list_datasets

    cfg = config_from_args(DatasetsConfig, args)
    if not cfg.show:
        entries = list_datasets()
        if cfg.format == "json":
            print(json.dumps([{"spec": n, "description": d} for n, d in entries], indent=2))
            return 0
        width = max(len(n) for n, _ in entries)
        for name, desc in entries:
            print(f"{name:<{width}}  {desc}")
        return 0
    info = describe(cfg)
    if cfg.format == "json":
        print(json.dumps(info, indent=2))
        return 0
    for split, s in info["splits"].items():
        shape = "streaming" if s["streaming"] else "x".join(str(v) for v in s["shape"])
        print(f"{split}: {s['images']} images, {s['classes']} classes, {shape}, per class {s['per_class']}")
    print("classes: " + ", ".join(escape.term(c) for c in info["classes"]))
    return 0
