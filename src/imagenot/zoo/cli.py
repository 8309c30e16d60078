"""`imagenot zoo`: every run of a study plan, run here or printed as torchrun / Slurm commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from imagenot.cli_options import add_stage_parser
from imagenot.zoo.plan import ZooPlan

EXAMPLES = (
    "imagenot zoo --config study.yaml                 # run what is left of the plan",
    "imagenot zoo --config study.yaml --print slurm > zoo.sbatch   # or print it for a cluster",
    "imagenot zoo --models resnet_s32,vgg_s32 --datasets fashion-mnist,wds:clipart-not "
    "--roles reference,contrast --seed 0,1,2 --out runs",
)


def _dataset_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("datasets and transfer targets on the command line (a plan file can say more)")
    g.add_argument("--datasets", dest="cli_datasets", default=None, metavar="SPEC,...",
                   help="comma-separated dataset specs, trained from scratch (replace the plan's datasets)")
    g.add_argument("--roles", default=None, metavar="ROLE,...",
                   help="one role per --datasets entry: reference or contrast")
    g.add_argument("--names", default=None, metavar="NAME,...", help="one name per --datasets entry")
    g.add_argument("--transfer", dest="cli_transfer", default=None, metavar="SPEC,...",
                   help="comma-separated transfer targets: every run is fine-tuned on each")
    g.add_argument("--transfer-modes", default=None, metavar="MODE,...", help="full, linear or full,linear "
                   "(default: full)")
    g.add_argument("--transfer-epochs", type=int, default=None, metavar="N",
                   help="fine-tuning epochs (default: the finetune recipe's)")
    p.add_argument("--print", dest="print_style", choices=["torchrun", "slurm"], default=None,
                   help="print the commands of the unfinished runs instead of running them")


def register(subparsers: Any) -> None:
    p = add_stage_parser(
        subparsers, "zoo", ZooPlan,
        help="run every model x dataset x seed of a plan (or print cluster commands)",
        description="Run a study: every model on every dataset of the plan for every seed (trained from scratch, "
        "evaluated from weights, or torchvision's published numbers), then fine-tunes on transfer targets, "
        "skipping finished runs and resuming unfinished ones. --config takes the plan file (yaml or json); "
        "flags override its fields. Run directories: OUT/DATASET/MODEL/seedK (or /published, /eval) and "
        "OUT/transfer/TARGET/MODE/from-DATASET/MODEL/seedK.",
        examples=EXAMPLES, extra=_dataset_flags,
    )
    p.set_defaults(func=run_zoo_cli)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def zoo_plan_from_args(args: argparse.Namespace) -> ZooPlan:
    """defaults < the plan file (--config) < flags < --datasets/--transfer; paths relative to here."""
    from imagenot.cli_options import overrides_from_args
    from imagenot.config import ConfigError, absolute_paths, load_mapping
    from imagenot.zoo.plan import normalise_plan_mapping, plan_from_mapping

    config = getattr(args, "config", None)
    data: dict[str, Any] = {}
    if config:
        data = normalise_plan_mapping(load_mapping(config))
        data.pop("_meta", None)
    for key, value in overrides_from_args(ZooPlan, args).items():
        data[key] = {**dict(data.get(key) or {}), **value} if isinstance(value, dict) else value
    specs = _split(args.cli_datasets)
    if specs is not None:
        roles = _split(args.roles) or [None] * len(specs)
        names = _split(args.names) or [None] * len(specs)
        if len(roles) != len(specs) or len(names) != len(specs):
            raise ConfigError("--roles and --names need one entry per --datasets entry")
        data["datasets"] = [{"spec": s, "role": r, "name": n} for s, r, n in zip(specs, roles, names)]
    elif args.roles or args.names:
        raise ConfigError("--roles and --names need --datasets")
    targets = _split(args.cli_transfer)
    if targets is not None:
        modes = _split(args.transfer_modes) or ["full"]
        data["transfer"] = [{"spec": t, "modes": modes, "epochs": args.transfer_epochs} for t in targets]
    if not data:
        raise ConfigError("give a plan (--config PLAN.yaml) or --models and --datasets")
    try:
        return plan_from_mapping(absolute_paths(ZooPlan, data))
    except ConfigError as exc:
        raise ConfigError(f"{config}: {exc}" if config else str(exc)) from exc


def run_zoo_cli(args: argparse.Namespace) -> int:
    from imagenot.zoo.run import commands, run_zoo

    plan = zoo_plan_from_args(args)
    if args.print_style:
        sys.stdout.write(commands(plan, args.print_style))
        return 0
    results = run_zoo(plan)
    for r in results:
        top1 = r.get("top1")
        shown = f"{top1:6.2f}%" if isinstance(top1, int | float) else "     -"
        seed = r.get("seed")
        print(f"{r['model']:<24} {r['dataset']:<20} seed {'-' if seed is None else seed!s:<3} top-1 {shown}  "
              f"{r['run_dir']}")
    return 0
