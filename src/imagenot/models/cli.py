"""`imagenot models`: one line per registry entry (name, family, year, input size, parameters, weights)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.config import option


@dataclass(frozen=True)
class ModelsConfig:
    family: str | None = option(None, help="only this family, e.g. ResNet, ConvNeXt (case-insensitive; "
                                "default: every family)")
    size: Literal["all", "small", "full"] = option("all", help="small-input variants, full-size torchvision "
                                                   "models, or all")
    num_classes: int = option(1000, help="head size for the parameter counts")
    flops: bool = option(False, help="also count forward GFLOPs per image at the input size (meta device)")
    format: Literal["table", "json", "csv"] = option("table", help="output format")


EXAMPLES = (
    "imagenot models --size small              # the CPU-scale variants the demo trains",
    "imagenot models --family ResNet --flops   # every ResNet with its GFLOPs at 224 px",
    "imagenot models --format json > models.json",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_stage_parser(
        subparsers, "models", ModelsConfig, help="list the model registry (name, family, year, input, params)",
        description="List registered models with the input size they are meant for, the smallest they accept, "
        "their parameters (counted on the meta device: no memory, no weights) and the torchvision weights the "
        "study's numbers refer to (IMAGENET1K_V1, published ImageNet-1K top-1).",
        examples=EXAMPLES,
    )
    p.set_defaults(func=run)


def model_rows(cfg: ModelsConfig) -> list[dict[str, object]]:
    from imagenot.errors import ImagenotError
    from imagenot.models import families, list_models, model_info, params_and_flops, params_for
    from imagenot.models.weights import published_metrics, study_weights

    full = {"all": None, "small": False, "full": True}[cfg.size]
    names = list_models(family=cfg.family, full_size=full)
    if not names:
        raise ImagenotError(f"no models of family {cfg.family!r}; families: {', '.join(families())}")
    rows = []
    for name in names:
        info = model_info(name)
        if cfg.flops:
            params, flops = params_and_flops(name, None, cfg.num_classes)
        else:
            params, flops = params_for(name, cfg.num_classes), None
        weights = study_weights(name)
        top1 = None
        if weights is not None and weights.meta.get("_metrics", {}).get("ImageNet-1K"):
            top1 = published_metrics(name, weights.name)["top1"]
        rows.append({
            "name": name, "family": info.family, "year": info.year, "input_size": info.input_size,
            "min_input_size": info.min_input_size, "full_size": info.full_size, "params": params,
            "gflops": None if flops is None else flops / 1e9,
            "weights": f"{type(weights).__name__}.{weights.name}" if weights is not None else None,
            "published_top1": top1,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    import csv
    import json
    import sys

    from imagenot import escape

    cfg = config_from_args(ModelsConfig, args)
    rows = model_rows(cfg)
    if cfg.format == "json":
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if cfg.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: escape.csv_cell(v) for k, v in r.items()} for r in rows)
        return 0
    header = f"{'name':<20} {'family':<13} {'year':>4} {'input':>5} {'min':>4} {'params':>9}"
    header += "   GFLOPs" if cfg.flops else ""
    print(header + "  published top-1")
    for r in rows:
        line = (f"{escape.term(r['name']):<20} {escape.term(r['family']):<13} {r['year']:>4} {r['input_size']:>5} {r['min_input_size']:>4} "
                f"{r['params'] / 1e6:>8.2f}M")
        if cfg.flops:
            line += f" {r['gflops']:>8.3f}"
        line += f"  {r['published_top1']:.3f} ({r['weights']})" if r["published_top1"] is not None else "  -"
        print(line)
    return 0
