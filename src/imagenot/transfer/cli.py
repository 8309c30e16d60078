"""`imagenot finetune`: fine-tune a finished run on a transfer target (torch imported only when run)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from imagenot.training.cli import _add_common

    p = subparsers.add_parser(
        "finetune", help="fine-tune a trained run on a transfer target (a run directory, role transfer)",
        description="Load a finished run's checkpoint (weights_only), replace its classifier head for the "
                    "target's classes, and train with the finetune recipe (finetune-linear with --mode "
                    "linear, where only the head trains). The new run records pretrain_run, "
                    "pretrain_dataset and pretrain_top1 in result.json.",
    )
    p.add_argument("--checkpoint", help="the pretrained run directory")
    p.add_argument("--dataset", help="target dataset spec, e.g. cifar10:PATH, animal-mnist")
    p.add_argument("--out", help="new run directory")
    p.add_argument("--mode", choices=["full", "linear"], help="full (default) or linear (head only)")
    p.add_argument("--model", help="must match the pretrained run's model (default: taken from it)")
    p.add_argument("--recipe", help="default: finetune (full) or finetune-linear (linear)")
    p.add_argument("--seed", type=int, help="default: the pretrained run's seed")
    _add_common(p)
    p.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    from imagenot.config import load_mapping, resolve
    from imagenot.training.cli import _merge_options, parse_set
    from imagenot.transfer.finetuning import FinetuneConfig, finetune

    overrides = {
        k: getattr(args, k, None)
        for k in ("checkpoint", "dataset", "out", "mode", "model", "recipe", "seed", "epochs", "batch_size",
                  "image_size", "limit", "dataset_name", "device", "precision", "compile", "deterministic",
                  "checkpoint_every_steps", "threads", "progress", "resume", "force")
    }
    sets = parse_set(args.set)
    if sets:
        base = dict(load_mapping(args.config).get("recipe_overrides") or {}) if args.config else {}
        overrides["recipe_overrides"] = {**base, **sets}
    _merge_options(args, overrides)
    cfg = resolve(FinetuneConfig, config_file=args.config, overrides=overrides)
    result = finetune(cfg)
    print(f"{result['model']} from {result['pretrain_dataset']} (top-1 {result['pretrain_top1']:.2f}%) on "
          f"{result['dataset']}: top-1 {result['top1']:.2f}% ({result['finetune_mode']}) -> {cfg.out}")
    return 0
