"""`imagenot models`: one line per registry entry (name, family, year, input size, parameters)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the model registry (name, family, year, input, params)",
                              description="List registered models. Parameters are counted on the meta "
                              "device (no memory, no weights) for a 1000-class head unless --num-classes.")
    p.add_argument("--family", help="only this family (e.g. ResNet, ConvNeXt; case-insensitive)")
    p.add_argument("--small", action="store_true", help="only the small-input variants")
    p.add_argument("--full", action="store_true", help="only the full-size torchvision models")
    p.add_argument("--num-classes", type=int, default=1000, help="head size for the counts (default 1000)")
    p.add_argument("--flops", action="store_true", help="also count forward GFLOPs per image at the input size")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagenot.errors import ImagenotError
    from imagenot.models import families, list_models, model_info, param_count, params_and_flops

    full = True if args.full else (False if args.small else None)
    names = list_models(family=args.family, full_size=full)
    if not names:
        raise ImagenotError(f"no models of family {args.family!r}; families: {', '.join(families())}")
    header = f"{'name':<20} {'family':<13} {'year':>4} {'input':>5} {'min':>4} {'params':>9}"
    print(header + ("   GFLOPs" if args.flops else ""))
    for name in names:
        info = model_info(name)
        if args.flops:
            params, flops = params_and_flops(name, None, args.num_classes)
        else:
            params, flops = param_count(name, args.num_classes), 0
        line = (f"{name:<20} {info.family:<13} {info.year:>4} {info.input_size:>5} {info.min_input_size:>4} "
                f"{params / 1e6:>8.2f}M")
        if args.flops:
            line += f" {flops / 1e9:>8.3f}"
        print(line)
    return 0
