"""The zoo's runs: every job of a plan, run here in order or printed as cluster commands.

Run directories (one per job; `imagenot runs OUT` lists them):

    <out>/<dataset>/<model>/seed<k>                                 trained from scratch (role from the plan)
    <out>/<dataset>/<model>/published                               torchvision's published accuracies
    <out>/<dataset>/<model>/eval                                    the entry's weights evaluated on its data
    <out>/transfer/<target>/<mode>/from-<dataset>/<model>/seed<k>   fine-tune (role transfer)

`run_zoo` skips finished runs (result.json present), resumes unfinished ones from their checkpoint, and runs
the rest in plan order: pretraining, evaluations and published records first, then the fine-tunes; or, where
`parallel` says so (on CPU by default), side by side in single-threaded processes, longest first, each
fine-tune after its pretraining run (imagenot.zoo.parallel).
A finished run counts as this plan's only when its fingerprint (`imagenot.rundir.fingerprint`) is the one the
plan's resolved config for that run has. When a run folder holds a run made with other settings (the recipe,
epochs or data changed since), the zoo refuses before running anything and names what differs, rather than
rerunning: a researcher who edited a plan by mistake should not lose days of finished runs, and one who meant
it says so with `--force` (those runs are rerun) or gives the new settings their own `out`. Runs written
before fingerprints existed are reused with a warning that their settings could not be compared. The fine-tunes
of a pretraining run that diverged are skipped with a warning.
`commands(plan, "torchrun"|"slurm")` prints what is left: torchrun command lines, or a Slurm array script with
one array task per pretraining run followed by its fine-tunes, each rerunnable after preemption (--resume).
Every printed command carries every setting of its run (generated from the run's config), so the cluster
runs exactly what `run_zoo` would.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagenot import escape, rundir, safepath
from imagenot.config import ConfigError, to_record
from imagenot.evaluation.config import EvaluateConfig, evaluation_record
from imagenot.fileio import write_json
from imagenot.lock import locks_output
from imagenot.progress import Progress
from imagenot.training.config import TrainConfig
from imagenot.zoo.argv import forced, job_argv
from imagenot.zoo.plan import ZooDataset, ZooPlan, ZooTransfer, model_init, validate_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One run of the plan. `kind`: train, evaluate, published or finetune; `after` is the run a fine-tune
    starts from (None when it starts from published weights)."""

    kind: str
    run_dir: Path
    config: TrainConfig | EvaluateConfig
    after: Path | None = None


def run_dir_for(plan: ZooPlan, dataset: ZooDataset, model: str, seed: int) -> Path:
    """`<out>/<dataset>/<model>/<seedK|eval|published>`; names from the plan must be folder names
    (`safepath.component`), so no plan can place a run outside its `out`."""
    base = (Path(plan.out) / safepath.component(dataset.display_name, "plan dataset name")
            / safepath.component(model, "plan model name"))
    return base / {"train": f"seed{seed}", "evaluate": "eval", "published": "published"}[dataset.kind]


def transfer_dir_for(plan: ZooPlan, t: ZooTransfer, mode: str, dataset: ZooDataset, model: str,
                     seed: int) -> Path:
    return (Path(plan.out) / "transfer" / safepath.component(t.display_name, "plan transfer name")
            / safepath.component(mode, "fine-tuning mode")
            / safepath.component(f"from-{dataset.display_name}", "plan dataset name")
            / safepath.component(model, "plan model name") / f"seed{seed}")


def _pretraining_job(plan: ZooPlan, ds: ZooDataset, model: str, seed: int) -> Job:
    run = run_dir_for(plan, ds, model, seed)
    if ds.kind == "published":
        cfg = EvaluateConfig(model=model, init=model_init(model, ds.init), out=str(run), published=True,
                             role=ds.role or "reference", dataset_name=ds.display_name)
        return Job("published", run, cfg)
    if ds.kind == "evaluate":
        cfg = EvaluateConfig(model=model, init=model_init(model, ds.init), dataset=ds.spec, out=str(run),
                             role=ds.role, dataset_name=ds.display_name, limit=plan.limit,
                             dataset_options=dict(ds.options), device=plan.device, workers=plan.workers,
                             threads=plan.threads, precision=plan.precision)
        return Job("evaluate", run, cfg)
    cfg = TrainConfig(
        model=model, dataset=ds.spec or "", out=str(run), recipe=plan.recipe,
        recipe_overrides=dict(plan.recipe_overrides), epochs=ds.epochs or plan.epochs, batch_size=plan.batch_size,
        seed=seed, image_size=plan.image_size, limit=plan.limit, dataset_options=dict(ds.options), role=ds.role,
        dataset_name=ds.display_name, device=plan.device, deterministic=plan.deterministic,
        checkpoint_every_steps=plan.checkpoint_every_steps, threads=plan.threads, progress=plan.progress,
        resume=True, precision=plan.precision, pipeline=plan.pipeline, normalization=plan.normalization, workers=plan.workers,
        gpu_decode=plan.gpu_decode, eval_every=plan.eval_every,
    )
    return Job("train", run, cfg)


def _finetune_job(plan: ZooPlan, t: ZooTransfer, mode: str, ds: ZooDataset, model: str, seed: int,
                  source: Job) -> Job:
    """A fine-tune of `source`'s weights: the trained run's checkpoint, or the entry's torchvision weights."""
    init = f"run:{source.run_dir}" if source.kind == "train" else model_init(model, source.config.init)
    dest = transfer_dir_for(plan, t, mode, ds, model, seed)
    cfg = TrainConfig(
        model=model, dataset=t.spec, out=str(dest), init=init, finetune_mode=mode,  # type: ignore[arg-type]
        recipe_overrides=dict(t.recipe_overrides), epochs=t.epochs, batch_size=t.batch_size, seed=seed,
        image_size=t.image_size or plan.image_size, limit=t.limit, dataset_options=dict(t.options),
        role="transfer", dataset_name=t.display_name, pretrain_name=ds.display_name, device=plan.device,
        deterministic=plan.deterministic, checkpoint_every_steps=plan.checkpoint_every_steps, threads=plan.threads,
        progress=plan.progress, resume=True, workers=plan.workers, gpu_decode=plan.gpu_decode,
        eval_every=plan.eval_every, precision=plan.precision,
    )
    return Job("finetune", dest, cfg, after=source.run_dir if source.kind == "train" else None)


def jobs(plan: ZooPlan) -> list[Job]:
    """Every run of the plan in order: pretraining / evaluation / published runs, then fine-tunes.

    A published or evaluated entry has one run per model (the weights are fixed); its fine-tunes still run
    for every seed, since the new head and the data order are seeded.
    """
    out: list[Job] = []
    pre: list[tuple[ZooDataset, str, int, Job]] = []
    for ds in plan.datasets:
        for model in plan.models:
            own = tuple(ds.seeds) or plan.seeds
            for seed in (own if ds.kind == "train" else own[:1]):
                job = _pretraining_job(plan, ds, model, seed)
                out.append(job)
                for s in (own if ds.kind != "train" else (seed,)):
                    pre.append((ds, model, s, job))
    sources = set(plan.transfer_from)
    for t in plan.transfer:
        for mode in t.modes:
            for ds, model, seed, job in pre:
                if sources and ds.display_name not in sources:
                    continue
                out.append(_finetune_job(plan, t, mode, ds, model, seed, job))
    return out


def job_record(job: Job) -> dict[str, Any]:
    """The config.json the job's run writes (resolved, as the run itself would): its identity."""
    if isinstance(job.config, EvaluateConfig):
        return evaluation_record(job.config)
    from imagenot.training.trainer import run_record

    return run_record(job.config)


def changed_runs(all_jobs: list[Job]) -> list[tuple[Job, str]]:
    """Jobs whose folder holds a run (finished or not) made with other settings than the plan's, with what
    differs. A finished run is compared by fingerprint; one written before fingerprints existed has an unknown
    identity: it is reused, with a warning that says so."""
    changed = []
    for job in all_jobs:
        if not rundir.is_finished(job.run_dir) and not (job.run_dir / rundir.CONFIG).is_file():
            continue
        record = job_record(job)
        stored = rundir.recorded_fingerprint(job.run_dir)
        if stored is None:
            log.warning("zoo: %s has no run fingerprint (written by an older imagenot): its settings cannot be "
                        "compared with the plan's; reusing it as it is", job.run_dir)
            continue
        if stored != rundir.fingerprint(record):
            changed.append((job, rundir.config_difference(job.run_dir, record) or "its recorded fingerprint "
                            f"{stored} is not the plan's {rundir.fingerprint(record)}"))
        elif job.after is not None and job.after in {j.run_dir for j, _ in changed}:
            changed.append((job, f"fine-tuned from {job.after}, which is rerun"))
    return changed


def _refuse_changed(changed: list[tuple[Job, str]], remedy: str) -> None:
    if not changed:
        return
    shown = "; ".join(f"{job.run_dir} ({what})" for job, what in changed[:5])
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    raise ZooError(f"{len(changed)} run folder(s) of this plan hold runs made with other settings, which the "
                   f"zoo would otherwise report as this plan's: {shown}{more}. {remedy}")


class ZooError(ConfigError):
    """A plan that does not fit the runs already in its output folder."""


def run_job(job: Job, rerun: bool = False) -> dict[str, Any]:
    """Run one job (or read its result when it is finished); `rerun` replaces a run made with other
    settings."""
    if rerun:
        job = forced(job)
        log.info("zoo: %s holds a run with other settings; rerunning it (--force)", job.run_dir)
    elif rundir.is_finished(job.run_dir):
        return rundir.read_result(job.run_dir)
    log.info("zoo: %s %s -> %s", job.kind, job.config.model, job.run_dir)
    if job.kind == "published":
        from imagenot.evaluation.published import write_published_run

        return write_published_run(job.config)  # type: ignore[arg-type]
    if job.kind == "evaluate":
        from imagenot.evaluation.run import evaluate_weights

        return evaluate_weights(job.config)  # type: ignore[arg-type]
    from imagenot.training.trainer import train

    return train(job.config)  # type: ignore[arg-type]


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def run_zoo(plan: ZooPlan) -> list[dict[str, Any]]:
    """Run every unfinished run of `plan` (side by side where `parallel` says so, else in plan order);
    returns every run's result (with its `run_dir`), in plan order."""
    from imagenot.zoo.parallel import resolve_parallel, run_side_by_side

    validate_plan(plan)
    all_jobs = jobs(plan)
    changed = changed_runs(all_jobs)
    if not plan.force:
        _refuse_changed(changed, "Use another out for the new settings, or --force to rerun those runs.")
    rerun = {job.run_dir for job, _ in changed}
    done = sum(rundir.is_finished(j.run_dir) and j.run_dir not in rerun for j in all_jobs)
    left = [j for j in all_jobs if j.kind != "published" and (j.run_dir in rerun or not rundir.is_finished(j.run_dir))]
    par = resolve_parallel(plan, runnable=len(left))
    if par.threads != plan.threads:  # threads are not part of a run's fingerprint
        plan = dataclasses.replace(plan, threads=par.threads)
        all_jobs = jobs(plan)
    Path(plan.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(plan.out) / "zoo.json", {**to_record(plan), "_meta": {"parallel": par.to_dict()}})
    log.info("zoo: %d runs, %d finished, %d to run; %d at a time (%s)", len(all_jobs), done,
             len(all_jobs) - done, par.processes, par.why)
    if par.processes > 1:
        finished = run_side_by_side(all_jobs, par, rerun=rerun)
        return [{**finished[j.run_dir], "run_dir": str(j.run_dir)} for j in all_jobs if j.run_dir in finished]
    results = []
    with Progress(len(all_jobs), desc="zoo", unit="run", enabled=plan.progress, interval=0.0, logger=log) as bar:
        diverged: set[Path] = set()
        for job in all_jobs:
            if job.after is not None and job.after in diverged:
                log.warning("zoo: not fine-tuning %s: its pretraining run %s diverged", job.run_dir, job.after)
                bar.update()
                continue
            result = run_job(job, rerun=job.run_dir in rerun)
            note = rundir.diverged_note(result)
            if note:
                log.warning("zoo: %s (%s)", note, job.run_dir)
                diverged.add(job.run_dir)
            results.append({**result, "run_dir": str(job.run_dir)})
            bar.update()
    return results


# ------------------------------------------------------------------------------------ cluster commands


def _command(job: Job, plan: ZooPlan) -> str:
    argv = job_argv(job)
    if job.kind == "published":  # a record of published numbers: no process group, no GPU
        return escape.shell_join(["python", "-m", "imagenot", *argv])
    launcher = ["torchrun", "--standalone", f"--nproc_per_node={plan.nproc_per_node}", "-m", "imagenot"]
    return escape.shell_join([*launcher, *argv])


def commands(plan: ZooPlan, style: str) -> str:
    """The unfinished runs as torchrun command lines or a Slurm array script (text to print)."""
    validate_plan(plan)
    all_jobs = jobs(plan)
    _refuse_changed(changed_runs(all_jobs), "A printed command would fail on them: remove those folders, use "
                    "another out, or rerun them here with `imagenot zoo --force`.")
    left = [j for j in all_jobs if not rundir.is_finished(j.run_dir)]
    header = f"# imagenot zoo: {len(all_jobs)} runs, {len(all_jobs) - len(left)} finished, {len(left)} left"
    if style == "torchrun":
        lines = [header, "# fine-tunes must run after the pretraining run they name (--init run:...)"]
        lines += [_command(j, plan) for j in left]
        return "\n".join(lines) + "\n"
    if style != "slurm":
        raise ConfigError(f"unknown command style {style!r}; known: torchrun, slurm")
    # One array task per pretraining run, chained with its fine-tunes; fine-tunes of published weights
    # depend on nothing and are tasks of their own.
    tasks: dict[Path, list[str]] = {}
    for j in all_jobs:
        key = j.after if j.kind == "finetune" and j.after is not None else j.run_dir
        if not rundir.is_finished(j.run_dir):
            tasks.setdefault(key, []).append(_command(j, plan))
    lines = ["#!/bin/bash", header, "#SBATCH --job-name=imagenot-zoo"]
    if tasks:
        lines.append(f"#SBATCH --array=0-{len(tasks) - 1}")
    lines += ["#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
              escape.slurm_option("output", Path(plan.out) / "slurm-%A_%a.out")]
    if plan.nproc_per_node > 1 or plan.device == "cuda":
        lines.append(f"#SBATCH --gpus-per-node={plan.nproc_per_node}")
    lines += [escape.slurm_option(key, value) for key, value in plan.slurm.items()]
    lines += ["set -euo pipefail", "TASKS=("]
    lines += ["  " + shlex.quote(" && ".join(cmds)) for cmds in tasks.values()]
    lines += [")", 'eval "${TASKS[$SLURM_ARRAY_TASK_ID]}"']
    return "\n".join(lines) + "\n"
