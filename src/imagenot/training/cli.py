"""`imagenot train` and `imagenot zoo` (argument parsing only; torch is imported when a command runs)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """`--set lr=0.01 --set schedule=step` -> recipe field changes (values read as YAML scalars)."""
    import yaml

    from imagenot.config import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="global batch size over all processes (default: recipe's)")
    p.add_argument("--image-size", type=int, help="input side in px (default: the model's input size)")
    p.add_argument("--limit", type=int, help="at most this many images per split (quick runs)")
    p.add_argument("--dataset-name", help="name recorded in result.json (default: derived from the spec)")
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE",
                   help="dataset entry option (repeatable), e.g. num_classes=4 for synthetic")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="change a recipe field (repeatable)")
    p.add_argument("--device", help="auto (default), cpu, cuda")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="auto: bf16 on CUDA")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic algorithms (bitwise-reproducible resume on CPU)")
    p.add_argument("--checkpoint-every", dest="checkpoint_every_steps", type=int,
                   help="also checkpoint every N optimizer steps (default: every epoch only)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the run dir's last checkpoint (starts fresh only if there is none)")
    p.add_argument("--force", action="store_true", default=None, help="replace an existing run in --out")
    p.add_argument("--config", help="a config.json/yaml to start from (flags override it)")


def _add_inputs(p: argparse.ArgumentParser) -> None:
    """The input-pipeline flags of `imagenot train` (TrainConfig fields of the same names)."""
    g = p.add_argument_group("input pipeline")
    g.add_argument("--pipeline", choices=["auto", "batched", "per_sample"],
                   help="batched: load-time resize, batched crop/flip (small-input variants); per_sample: "
                        "torchvision's decode-time RandomResizedCrop etc. (full-size models); auto (default) "
                        "picks by model")
    g.add_argument("--normalization", choices=["auto", "imagenet", "dataset", "0.5"],
                   help="one mean/std for every data path; auto (default): the pretrained weights' when "
                        "fine-tuning, else ImageNet's for full-size models and the train split's statistics "
                        "(dataset, one pass) for small-input variants")
    g.add_argument("--workers", type=int,
                   help="DataLoader worker processes per process (default: CPUs / local processes, max 8)")
    g.add_argument("--wds-read", choices=["auto", "sequential", "random"],
                   help="streamed wds shards: sequential (shard shuffle + sample shuffle buffer; default) or "
                        "random access")
    g.add_argument("--shuffle-buffer", type=int, help="samples per reader's shuffle buffer (default 2000)")
    g.add_argument("--gpu-decode", action="store_true", default=None,
                   help="decode JPEGs and apply the per-sample transforms on the GPU")
    g.add_argument("--eval-batch-size", type=int,
                   help="evaluation batch per process (default: the training batch; >= 256 when batched)")
    g.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                   help="channels_last memory format (default: on CUDA)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train one model on one dataset (a run directory)",
        description="Train a registry model on a registry dataset into a run directory (config.json, "
                    "manifest.json, metrics.jsonl, checkpoints/last.pt, result.json). Under torchrun, "
                    "each process runs this same command.",
    )
    p.add_argument("--model", help="registry model name (imagenot models)")
    p.add_argument("--dataset", help="dataset spec (imagenot datasets), e.g. fashion-mnist, wds:PATH")
    p.add_argument("--recipe", help="uniform (default), torchvision, finetune, finetune-linear")
    p.add_argument("--seed", type=int)
    p.add_argument("--role", choices=["reference", "contrast", "transfer"], help="the dataset's role")
    p.add_argument("--out", help="run directory")
    _add_common(p)
    _add_inputs(p)
    p.set_defaults(func=run_train)

    z = subparsers.add_parser(
        "zoo", help="train every model x dataset x seed of a plan (or print cluster commands)",
        description="Run a study: every model on every dataset for every seed (and fine-tunes on transfer "
                    "targets), skipping finished runs and resuming unfinished ones. Run directories: "
                    "OUT/DATASET/MODEL/seedK and OUT/transfer/TARGET/MODE/from-DATASET/MODEL/seedK.",
    )
    z.add_argument("--plan", help="plan file (yaml or json); flags below override its fields")
    z.add_argument("--models", help="comma-separated model names")
    z.add_argument("--datasets", help="comma-separated dataset specs")
    z.add_argument("--roles", help="comma-separated roles, one per dataset (reference, contrast)")
    z.add_argument("--names", help="comma-separated dataset names, one per dataset")
    z.add_argument("--seeds", help="comma-separated seeds (default 0)")
    z.add_argument("--recipe")
    z.add_argument("--out", help="zoo output folder")
    z.add_argument("--epochs", type=int)
    z.add_argument("--batch-size", type=int)
    z.add_argument("--image-size", type=int)
    z.add_argument("--limit", type=int)
    z.add_argument("--transfer", help="comma-separated transfer target specs (fine-tune every run on them)")
    z.add_argument("--transfer-modes", help="full, linear or full,linear (default full)")
    z.add_argument("--transfer-epochs", type=int)
    z.add_argument("--device")
    z.add_argument("--threads", type=int)
    z.add_argument("--nproc-per-node", type=int, help="processes (GPUs) per node in printed commands")
    z.add_argument("--print", dest="print_style", choices=["torchrun", "slurm"],
                   help="print the commands of the unfinished runs instead of running them")
    z.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    z.set_defaults(func=run_zoo_cli)


def train_config_from_args(args: argparse.Namespace):  # -> TrainConfig
    from imagenot.config import resolve
    from imagenot.training.trainer import TrainConfig

    overrides = {
        k: getattr(args, k, None)
        for k in ("model", "dataset", "recipe", "seed", "role", "out", "epochs", "batch_size", "image_size",
                  "limit", "dataset_name", "device", "precision", "compile", "deterministic",
                  "checkpoint_every_steps", "threads", "progress", "resume", "force", "pipeline",
                  "normalization", "workers", "wds_read", "shuffle_buffer", "gpu_decode", "eval_batch_size",
                  "channels_last")
    }
    sets = parse_set(args.set)
    if sets:
        base = {}
        if args.config:
            from imagenot.config import load_mapping

            base = dict(load_mapping(args.config).get("recipe_overrides") or {})
        overrides["recipe_overrides"] = {**base, **sets}
    _merge_options(args, overrides)
    return resolve(TrainConfig, config_file=args.config, overrides=overrides)


def _merge_options(args: argparse.Namespace, overrides: dict[str, Any]) -> None:
    """--data-opt KEY=VALUE flags on top of the config file's dataset_options."""
    opts = parse_set(args.data_opt)
    if opts:
        base = {}
        if args.config:
            from imagenot.config import load_mapping

            base = dict(load_mapping(args.config).get("dataset_options") or {})
        overrides["dataset_options"] = {**base, **opts}


def run_train(args: argparse.Namespace) -> int:
    from imagenot.training.trainer import train

    cfg = train_config_from_args(args)
    result = train(cfg)
    print(f"{result['model']} on {result['dataset']}: top-1 {result['top1']:.2f}%, top-5 {result['top5']:.2f}% "
          f"({result['epochs']} epochs, {result['wall_time_s']:.0f} s) -> {cfg.out}")
    return 0


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def zoo_plan_from_args(args: argparse.Namespace):  # -> ZooPlan
    from imagenot.config import ConfigError, load_mapping
    from imagenot.training.zoo import plan_from_mapping

    data: dict[str, Any] = {}
    if args.plan:
        data = load_mapping(args.plan)
        data.pop("_meta", None)
    specs = _split(args.datasets)
    if specs is not None:
        roles = _split(args.roles) or [None] * len(specs)
        names = _split(args.names) or [None] * len(specs)
        if len(roles) != len(specs) or len(names) != len(specs):
            raise ConfigError("--roles and --names need one entry per --datasets entry")
        data["datasets"] = [{"spec": s, "role": r, "name": n} for s, r, n in zip(specs, roles, names)]
    elif args.roles:
        raise ConfigError("--roles needs --datasets")
    targets = _split(args.transfer)
    if targets is not None:
        modes = _split(args.transfer_modes) or ["full"]
        data["transfer"] = [{"spec": t, "modes": modes, "epochs": args.transfer_epochs} for t in targets]
    flat = {
        "models": _split(args.models), "seeds": _split(args.seeds), "recipe": args.recipe, "out": args.out,
        "epochs": args.epochs, "batch_size": args.batch_size, "image_size": args.image_size,
        "limit": args.limit, "device": args.device, "threads": args.threads,
        "nproc_per_node": args.nproc_per_node, "progress": args.progress,
    }
    data.update({k: v for k, v in flat.items() if v is not None})
    try:
        return plan_from_mapping(data)
    except ConfigError as exc:
        where = f"{args.plan}: " if args.plan else ""
        raise ConfigError(f"{where}{exc}") from exc


def run_zoo_cli(args: argparse.Namespace) -> int:
    from imagenot.training.zoo import commands, run_zoo

    plan = zoo_plan_from_args(args)
    if args.print_style:
        sys.stdout.write(commands(plan, args.print_style))
        return 0
    results = run_zoo(plan)
    for r in results:
        print(f"{r['model']:<24} {r['dataset']:<20} seed {r['seed']:<3} top-1 {r['top1']:6.2f}%  {r['run_dir']}")
    return 0
