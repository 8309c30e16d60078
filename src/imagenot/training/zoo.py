"""The zoo: every model x dataset x seed of a study (and its fine-tunes), run or printed for a cluster.

A plan is data (yaml/json or flags), so the whole study is one file a reader can audit. Run directories:

    <out>/<dataset>/<model>/seed<k>                              pretraining (role from the plan)
    <out>/transfer/<target>/<mode>/from-<dataset>/<model>/seed<k>   fine-tune of that run (role transfer)

`run_zoo` skips finished runs (result.json present), resumes unfinished ones from their checkpoint, and trains
the rest in plan order: all pretraining first, then the fine-tunes. `commands(plan, "torchrun"|"slurm")`
prints what is left as torchrun command lines or a Slurm array script, one array task per pretraining run
followed by its fine-tunes, each rerunnable after preemption (`--resume`).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagenot import rundir
from imagenot.config import ConfigError, from_dict, load_mapping, to_dict
from imagenot.errors import ImagenotError
from imagenot.fileio import write_json
from imagenot.training.trainer import ROLES, TrainConfig, dataset_display_name, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZooDataset:
    spec: str
    role: str | None = None  # reference | contrast (| None)
    name: str | None = None  # directory and result name; None: derived from the spec
    options: dict[str, Any] = field(default_factory=dict)  # dataset entry options (imagenot datasets)
    epochs: int | None = None  # None: the plan's (small datasets may need more passes for the same steps)


@dataclass(frozen=True)
class ZooTransfer:
    spec: str
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    modes: tuple[str, ...] = ("full",)
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None
    limit: int | None = None
    recipe_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ZooPlan:
    out: str = "runs"
    models: tuple[str, ...] = ()
    datasets: tuple[ZooDataset, ...] = ()
    seeds: tuple[int, ...] = (0,)
    recipe: str = "uniform"
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None
    limit: int | None = None
    transfer: tuple[ZooTransfer, ...] = ()
    # Pretraining dataset names whose runs are fine-tuned; empty: all of them.
    transfer_from: tuple[str, ...] = ()
    device: str = "auto"
    threads: int | None = None
    # Input side of every pretraining run (TrainConfig fields of the same names; see `imagenot train --help`).
    pipeline: str = "auto"
    normalization: str = "auto"
    workers: int | None = None
    gpu_decode: bool = False
    deterministic: bool = False
    checkpoint_every_steps: int = 0
    progress: bool = True
    # For printed commands: processes per node (GPUs), extra #SBATCH options such as {"partition": "gpu"}.
    nproc_per_node: int = 1
    slurm: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One run of the plan; `after` is the pretraining run a fine-tune starts from."""

    kind: str  # train | finetune
    run_dir: Path
    config: TrainConfig
    after: Path | None = None
    mode: str = "full"
    transfer: ZooTransfer | None = None


def _normalise_plan_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(data)
    for key, cls_key in (("datasets", "spec"), ("transfer", "spec")):
        items = data.get(key)
        if items is None:
            continue
        if isinstance(items, str | Mapping):
            items = [items]
        data[key] = [{cls_key: it} if isinstance(it, str) else dict(it) for it in items]
    for key in ("models", "seeds", "transfer_from"):
        if isinstance(data.get(key), int | str):
            data[key] = [data[key]] if isinstance(data[key], int) else data[key]
    return data


def plan_from_mapping(data: Mapping[str, Any]) -> ZooPlan:
    plan = from_dict(ZooPlan, _normalise_plan_mapping(data))
    validate_plan(plan)
    return plan


def load_plan(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ZooPlan:
    data = load_mapping(path)
    data.pop("_meta", None)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return plan_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def validate_plan(plan: ZooPlan) -> None:
    """Every name in the plan exists and every model takes the plan's image size, before anything runs."""
    from imagenot.models import check_input_size, model_info
    from imagenot.training.recipes import get_recipe

    if not plan.models:
        raise ConfigError("the zoo plan names no models")
    if not plan.datasets:
        raise ConfigError("the zoo plan names no datasets")
    if not plan.seeds:
        raise ConfigError("the zoo plan names no seeds")
    for m in plan.models:
        info = model_info(m)
        size = plan.image_size or getattr(info, "input_size", None)
        if size is not None:
            check_input_size(m, int(size))
        get_recipe(plan.recipe, m, getattr(info, "family", ""), plan.recipe_overrides)
    names = [d.name or dataset_display_name(d.spec) for d in plan.datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"two plan datasets share a name ({names}); give them distinct 'name's")
    for d in plan.datasets:
        if d.role not in ROLES or d.role == "transfer":
            raise ConfigError(f"dataset {d.spec}: role {d.role!r} not one of reference, contrast")
    for t in plan.transfer:
        for mode in t.modes:
            if mode not in ("full", "linear"):
                raise ConfigError(f"transfer {t.spec}: mode {mode!r} not one of full, linear")
    unknown = set(plan.transfer_from) - set(names)
    if unknown:
        raise ConfigError(f"transfer_from names unknown datasets {sorted(unknown)}; plan datasets: {names}")


def run_dir_for(plan: ZooPlan, dataset: ZooDataset, model: str, seed: int) -> Path:
    return Path(plan.out) / (dataset.name or dataset_display_name(dataset.spec)) / model / f"seed{seed}"


def transfer_dir_for(plan: ZooPlan, t: ZooTransfer, mode: str, dataset: ZooDataset, model: str,
                     seed: int) -> Path:
    target = t.name or dataset_display_name(t.spec)
    source = dataset.name or dataset_display_name(dataset.spec)
    return Path(plan.out) / "transfer" / target / mode / f"from-{source}" / model / f"seed{seed}"


def jobs(plan: ZooPlan) -> list[Job]:
    """Every run of the plan in order: pretraining runs, then fine-tunes."""
    out: list[Job] = []
    pre: list[tuple[ZooDataset, str, int, Path]] = []
    for ds in plan.datasets:
        for model in plan.models:
            for seed in plan.seeds:
                run = run_dir_for(plan, ds, model, seed)
                cfg = TrainConfig(
                    model=model, dataset=ds.spec, out=str(run), recipe=plan.recipe,
                    recipe_overrides=dict(plan.recipe_overrides), epochs=ds.epochs or plan.epochs,
                    batch_size=plan.batch_size, seed=seed, image_size=plan.image_size, limit=plan.limit,
                    dataset_options=dict(ds.options), role=ds.role, dataset_name=ds.name or dataset_display_name(ds.spec), device=plan.device,
                    deterministic=plan.deterministic, checkpoint_every_steps=plan.checkpoint_every_steps,
                    threads=plan.threads, progress=plan.progress, resume=True, pipeline=plan.pipeline,
                    normalization=plan.normalization, workers=plan.workers, gpu_decode=plan.gpu_decode,
                )
                out.append(Job("train", run, cfg))
                pre.append((ds, model, seed, run))
    sources = set(plan.transfer_from)
    for t in plan.transfer:
        for mode in t.modes:
            for ds, model, seed, run in pre:
                if sources and (ds.name or dataset_display_name(ds.spec)) not in sources:
                    continue
                dest = transfer_dir_for(plan, t, mode, ds, model, seed)
                cfg = TrainConfig(
                    model=model, dataset=t.spec, out=str(dest),
                    recipe="finetune-linear" if mode == "linear" else "finetune",
                    recipe_overrides=dict(t.recipe_overrides), epochs=t.epochs, batch_size=t.batch_size,
                    seed=seed, image_size=t.image_size or plan.image_size, limit=t.limit,
                    dataset_options=dict(t.options), role="transfer",
                    dataset_name=t.name or dataset_display_name(t.spec), device=plan.device,
                    deterministic=plan.deterministic, checkpoint_every_steps=plan.checkpoint_every_steps,
                    threads=plan.threads, progress=plan.progress, resume=True, pretrain_run=str(run),
                    finetune_mode=mode,
                )
                out.append(Job("finetune", dest, cfg, after=run, mode=mode, transfer=t))
    return out


def run_zoo(plan: ZooPlan) -> list[dict[str, Any]]:
    """Run every unfinished run of `plan` in order; returns every run's result (with its `run_dir`)."""
    validate_plan(plan)
    all_jobs = jobs(plan)
    Path(plan.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(plan.out) / "zoo.json", to_dict(plan))
    done = sum(rundir.is_finished(j.run_dir) for j in all_jobs)
    log.info("zoo: %d runs, %d finished, %d to run", len(all_jobs), done, len(all_jobs) - done)
    results = []
    from tqdm.auto import tqdm

    for job in tqdm(all_jobs, desc="zoo", disable=not plan.progress, unit="run"):
        if rundir.is_finished(job.run_dir):
            result = rundir.read_result(job.run_dir)
        else:
            log.info("zoo: %s %s on %s seed %d -> %s", job.kind, job.config.model, job.config.dataset,
                     job.config.seed, job.run_dir)
            result = train(job.config)
        results.append({**result, "run_dir": str(job.run_dir)})
    return results


# ------------------------------------------------------------------------------------ cluster commands


def _option_argv(cfg: TrainConfig) -> list[str]:
    import json

    out = []
    for key, value in cfg.dataset_options.items():
        out += ["--data-opt", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return out


def _train_argv(cfg: TrainConfig) -> list[str]:
    argv = ["train", "--model", cfg.model, "--dataset", cfg.dataset, "--out", cfg.out, "--recipe", cfg.recipe,
            "--seed", str(cfg.seed)]
    for flag, value in (("--epochs", cfg.epochs), ("--batch-size", cfg.batch_size),
                        ("--image-size", cfg.image_size), ("--limit", cfg.limit), ("--role", cfg.role),
                        ("--dataset-name", cfg.dataset_name), ("--workers", cfg.workers)):
        if value is not None:
            argv += [flag, str(value)]
    for flag, value in (("--pipeline", cfg.pipeline), ("--normalization", cfg.normalization)):
        if value != "auto":
            argv += [flag, value]
    if cfg.gpu_decode:
        argv.append("--gpu-decode")
    return argv + _option_argv(cfg)


def _finetune_argv(cfg: TrainConfig) -> list[str]:
    argv = ["finetune", "--checkpoint", str(cfg.pretrain_run), "--dataset", cfg.dataset, "--out", cfg.out,
            "--mode", cfg.finetune_mode]
    for flag, value in (("--epochs", cfg.epochs), ("--batch-size", cfg.batch_size),
                        ("--image-size", cfg.image_size), ("--limit", cfg.limit),
                        ("--dataset-name", cfg.dataset_name)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + _option_argv(cfg)


def _command(job: Job, plan: ZooPlan) -> str:
    argv = _train_argv(job.config) if job.kind == "train" else _finetune_argv(job.config)
    if job.config.recipe_overrides:
        raise ImagenotError("recipe_overrides cannot be passed on the command line; run the zoo with --plan "
                            "on the cluster instead of printed commands")
    launcher = ["torchrun", "--standalone", f"--nproc_per_node={plan.nproc_per_node}", "-m", "imagenot"]
    return shlex.join([*launcher, *argv, "--resume"])


def commands(plan: ZooPlan, style: str) -> str:
    """The unfinished runs as torchrun command lines or a Slurm array script (text to print)."""
    validate_plan(plan)
    all_jobs = jobs(plan)
    left = [j for j in all_jobs if not rundir.is_finished(j.run_dir)]
    header = f"# imagenot zoo: {len(all_jobs)} runs, {len(all_jobs) - len(left)} finished, {len(left)} left"
    if style == "torchrun":
        lines = [header, "# fine-tunes must run after the pretraining run they name (--checkpoint)"]
        lines += [_command(j, plan) for j in left]
        return "\n".join(lines) + "\n"
    if style != "slurm":
        raise ConfigError(f"unknown command style {style!r}; known: torchrun, slurm")
    # One array task per pretraining run, chained with its fine-tunes.
    tasks: dict[Path, list[str]] = {}
    for j in all_jobs:
        key = j.run_dir if j.kind == "train" else j.after
        assert key is not None
        if not rundir.is_finished(j.run_dir):
            tasks.setdefault(key, []).append(_command(j, plan))
    lines = ["#!/bin/bash", header, "#SBATCH --job-name=imagenot-zoo"]
    if tasks:
        lines.append(f"#SBATCH --array=0-{len(tasks) - 1}")
    lines += ["#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
              f"#SBATCH --output={Path(plan.out) / 'slurm-%A_%a.out'}"]
    if plan.nproc_per_node > 1 or plan.device == "cuda":
        lines.append(f"#SBATCH --gpus-per-node={plan.nproc_per_node}")
    for key, value in plan.slurm.items():
        lines.append(f"#SBATCH --{key}={value}")
    lines += ["set -euo pipefail", "TASKS=("]
    lines += ["  " + shlex.quote(" && ".join(cmds)) for cmds in tasks.values()]
    lines += [")", 'eval "${TASKS[$SLURM_ARRAY_TASK_ID]}"']
    return "\n".join(lines) + "\n"
