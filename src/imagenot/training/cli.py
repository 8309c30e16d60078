"""`imagenot train` (argument parsing only; torch is imported when the command runs)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from imagenot import rundir
from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.training.config import TrainConfig

log = logging.getLogger(__name__)

EXAMPLES = (
    "imagenot train --model resnet_s32 --dataset fashion-mnist --epochs 3 --out runs/fm/resnet_s32/seed0",
    "imagenot train --model resnet50 --dataset imagefolder:/data/imagenot --recipe torchvision "
    "--out runs/imagenot/resnet50/seed0     # torchvision's recipe and transforms",
    "torchrun --nproc_per_node=8 -m imagenot train --config runs/imagenot/resnet50/seed0/config.json --resume",
)


def register(subparsers: Any) -> None:
    p = add_stage_parser(
        subparsers, "train", TrainConfig, help="train one model on one dataset (a run directory)",
        description="Train a registry model on a registry dataset into a run directory (config.json, "
        "manifest.json, metrics.jsonl, checkpoints/last.pt, result.json, predictions.parquet). Full-size "
        "models get torchvision's per-sample transforms and evaluation sizes, small-input variants the "
        "batched in-memory pipeline. Under torchrun, each process runs this same command. --config "
        "RUN/config.json replays a run exactly, from any directory.",
        examples=EXAMPLES,
    )
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from imagenot.training.trainer import train

    cfg = config_from_args(TrainConfig, args)
    result = train(cfg)
    note = rundir.diverged_note(result)
    if note:
        print(f"{note} -> {cfg.out}", file=sys.stderr)
        return 1
    print(f"{result['model']} on {result['dataset']}: top-1 {result['top1']:.2f}%, top-5 {result['top5']:.2f}% "
          f"({result['epochs']} epochs, {result['wall_time_s']:.0f} s) -> {cfg.out}")
    return 0
