"""`imagenot datasets`: list the dataset registry's entries (and optionally inspect one spec)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "datasets", help="list the dataset entries (specs for --dataset)",
        description="List dataset specs; with --show SPEC, load it and print its splits.",
        epilog="examples:\n  imagenot datasets\n  imagenot datasets --show wds:out/dataset\n"
               "  imagenot datasets --show wds:out/dataset --data-opt allow_incomplete=true",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--show", metavar="SPEC", help="load SPEC and print per-split counts, classes and image size")
    p.add_argument("--image-size", type=int, default=None, help="with --show: resize to this size")
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE",
                   help="with --show: a dataset entry option (repeatable), e.g. allow_incomplete=true for wds")
    p.set_defaults(func=run)


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings -> options, values read as YAML scalars (true, 3, 0.5, text)."""
    import yaml

    from imagenot.errors import InputError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--data-opt expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from imagenot.data import get_dataset, list_datasets

    if not args.show:
        entries = list_datasets()
        width = max(len(n) for n, _ in entries)
        for name, desc in entries:
            print(f"{name:<{width}}  {desc}")
        return 0
    options = parse_options(args.data_opt)
    if args.image_size is not None:
        options["image_size"] = args.image_size
    for split in ("train", "val"):
        ds = get_dataset(args.show, split, **options)
        shape = "streaming" if getattr(ds, "streaming", False) else "x".join(str(s) for s in ds.images.shape[1:])
        print(f"{split}: {len(ds)} images, {ds.num_classes} classes, {shape}, "
              f"per class {ds.labels.bincount(minlength=ds.num_classes).tolist()}")
    print("classes: " + ", ".join(ds.classes))
    return 0
