"""`imagenot datasets`: list the dataset registry's entries (and optionally inspect one spec)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("datasets", help="list the dataset entries (specs for --dataset)",
                              description="List dataset specs; with --show SPEC, load it and print its splits.")
    p.add_argument("--show", metavar="SPEC", help="load SPEC and print per-split counts, classes and image size")
    p.add_argument("--image-size", type=int, default=None, help="with --show: resize to this size")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagenot.data import get_dataset, list_datasets

    if not args.show:
        entries = list_datasets()
        width = max(len(n) for n, _ in entries)
        for name, desc in entries:
            print(f"{name:<{width}}  {desc}")
        return 0
    for split in ("train", "val"):
        ds = get_dataset(args.show, split, image_size=args.image_size)
        shape = "streaming" if getattr(ds, "streaming", False) else "x".join(str(s) for s in ds.images.shape[1:])
        print(f"{split}: {len(ds)} images, {ds.num_classes} classes, {shape}, "
              f"per class {ds.labels.bincount(minlength=ds.num_classes).tolist()}")
    print("classes: " + ", ".join(ds.classes))
    return 0
