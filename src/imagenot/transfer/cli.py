"""`imagenot finetune`: starting weights + a transfer target -> a run directory (torch imported only when run)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from imagenot import rundir
from imagenot.cli_options import add_stage_parser, config_from_args, overrides_from_args
from imagenot.config import load_mapping
from imagenot.training.config import TrainConfig

EXAMPLES = (
    "imagenot finetune --init run:runs/imagenot/resnet152/seed0 --dataset cifar10:/data/cifar10 "
    "--out runs/transfer/cifar10/full/from-imagenot/resnet152/seed0",
    "imagenot finetune --init torchvision:resnet152.IMAGENET1K_V1 --dataset cifar10:/data/cifar10 "
    "--out runs/transfer/cifar10/full/from-imagenet/resnet152/seed0",
    "imagenot finetune --init run:demo-out/runs/clipart-not/resnet_s32/seed0 --dataset animal-mnist "
    "--finetune-mode linear --out /tmp/probe",
)


def register(subparsers: Any) -> None:
    p = add_stage_parser(
        subparsers, "finetune", TrainConfig,
        help="fine-tune weights (a run, torchvision's, a state_dict) on a transfer target (role transfer)",
        description="Start from --init weights (run:DIR a finished run, its EMA weights when it kept them; "
        "torchvision:<model>.<WEIGHTS> the published ones; file:PATH a state_dict; all loaded with "
        "weights_only), give the model a new head for the target's classes, and train it with the finetune "
        "recipe (finetune-linear with --finetune-mode linear, where only the head trains). The same options as "
        "`imagenot train`; a run's model, seed and input size are taken from it unless given. result.json "
        "records the weights' identity and sha256, pretrain_dataset and pretrain_top1.",
        examples=EXAMPLES,
    )
    p.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    from imagenot.transfer.finetuning import finetune

    cfg = config_from_args(TrainConfig, args)
    given = set(overrides_from_args(TrainConfig, args))
    if getattr(args, "config", None):
        given |= set(load_mapping(args.config))
    result = finetune(cfg, given)
    note = rundir.diverged_note(result)
    if note:
        print(f"{note} -> {cfg.out}", file=sys.stderr)
        return 1
    pre = result.get("pretrain_top1")
    source = f"{result['pretrain_dataset']} (top-1 {pre:.2f}%)" if pre is not None else str(cfg.init)
    print(f"{result['model']} from {source} on {result['dataset']}: top-1 {result['top1']:.2f}% "
          f"({result['finetune_mode']}) -> {cfg.out}")
    return 0
