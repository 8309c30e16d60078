"""Independent zoo runs side by side: one single-threaded process per core, longest first.

On this kind of machine (issue 23: 2 cores, AVX512-BF16) two single-threaded processes give about 1.9x one
thread, one process on two threads about 1.5x, and under load two threads fall far below one (OpenMP
barriers) while two processes do not. So on CPU with at least two cores, `parallel: auto` runs up to
`cores // threads` processes (each run on `threads`, 1 unless the plan says otherwise, also when one run is
left; the number is in each run's config.json, so a run alone with the same thread count, or resumed, gives
the same result). On a
GPU the zoo runs one run at a time as before (torchrun, `--print torchrun`, for more).

Each run is a process of its own, `python -m imagenot train|finetune|evaluate` with every setting of its config
as flags (the command `--print torchrun` shows; a fresh interpreter, not a fork of one running OpenMP threads
and not multiprocessing's spawn, which would re-import the caller's script); finished runs are skipped and
unfinished ones resume from their checkpoint (`--resume`) as in the serial zoo.
The order is `imagenot.zoo.schedule`'s; a fine-tune starts once its pretraining run has finished. Ctrl-C (or
any failure) stops every child; a failed run stops the zoo with its error once the others are stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from imagenot import rundir
from imagenot.errors import ImagenotError
from imagenot.zoo.argv import forced, job_argv
from imagenot.zoo.plan import ZooPlan
from imagenot.zoo.schedule import Scheduler, Task, job_cost

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
POLL_S = 0.2


@dataclasses.dataclass(frozen=True)
class Parallelism:
    """How many runs go side by side, with how many threads each, and why."""

    processes: int
    threads: int | None
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _on_gpu(device: str) -> bool:
    if device == "cuda":
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def resolve_parallel(plan: ZooPlan, runnable: int, cores: int | None = None) -> Parallelism:
    """The plan's `parallel` setting for `runnable` unfinished runs on this machine."""
    cores = usable_cores() if cores is None else cores
    if _on_gpu(plan.device):
        if plan.parallel not in ("auto", "1"):
            log.warning("zoo: parallel %s ignored on a GPU: one run at a time (--print torchrun for more)",
                        plan.parallel)
        return Parallelism(1, plan.threads, "GPU: one run at a time")
    if plan.parallel == "1" or (plan.parallel == "auto" and cores < 2):
        return Parallelism(1, plan.threads, f"parallel {plan.parallel}, {cores} core(s): one run at a time")
    # The thread count is fixed whatever number of runs is left, so that a run's result (CPU results depend
    # on it) does not depend on how many other runs it happened to share the machine with, or on a resume.
    per_run = plan.threads or 1
    wanted = max(cores // per_run, 1) if plan.parallel == "auto" else int(plan.parallel)
    n = max(min(wanted, runnable), 1)
    return Parallelism(n, per_run, f"parallel {plan.parallel}: {cores} cores, {runnable} run(s) left, "
                       f"{per_run} thread(s) per run")


def task_for(job: Any) -> Task:
    """A job as the scheduler sees it: its run directory, estimated cost and the run it waits for."""
    cfg = job.config
    training = job.kind in ("train", "finetune")
    epochs = getattr(cfg, "epochs", None) if training else 1
    if training and epochs is None:
        from imagenot.models import model_info
        from imagenot.training.recipes import get_recipe

        epochs = get_recipe(cfg.recipe_name, cfg.model, model_info(cfg.model).family or "",
                            cfg.recipe_overrides).epochs
    cost = 0.0 if job.kind == "published" else job_cost(
        cfg.model, getattr(cfg, "image_size", None), _images(cfg, "train" if training else "val"), epochs,
        training=training)
    return Task(key=job.run_dir, cost=cost, after=job.after)


def _images(cfg: Any, split: str) -> int | None:
    """The images a run passes over per epoch, from the dataset's header or card (None: unknown)."""
    from imagenot.training.inputs import split_images

    try:
        return split_images(cfg.dataset, split, getattr(cfg, "dataset_options", None), cfg.limit)
    except Exception:  # noqa: BLE001 - an estimate is never a reason to fail a zoo
        log.debug("no image count for %s", cfg.dataset, exc_info=True)
        return cfg.limit


def run_side_by_side(all_jobs: list[Any], par: Parallelism,
                     rerun: Collection[Path] = frozenset()) -> dict[Path, dict[str, Any]]:
    """Run the unfinished jobs (and those in `rerun`: finished with other settings, replaced with --force) in
    `par.processes` processes; returns every finished job's result by run directory. A run that diverged
    counts as finished (its record says so) and its fine-tunes are skipped, as in the serial zoo."""
    todo = [_forced(j) if j.run_dir in rerun else j for j in all_jobs
            if j.run_dir in rerun or not rundir.is_finished(j.run_dir)]
    by_dir = {j.run_dir: j for j in todo}
    sched = Scheduler([task_for(j) for j in todo])
    log.info("zoo: %d runs side by side in %d processes (%s); start order by estimated cost: %s", len(todo),
             par.processes, par.why, ", ".join(_short(k) for k in sched.ready()[:8]))
    running: dict[Path, subprocess.Popen] = {}
    skipped: set[Path] = set()
    previous = _stop_on_sigterm()
    try:
        while sched.unstarted or running:
            while len(running) < par.processes and (key := sched.take()) is not None:
                job = by_dir[key]  # type: ignore[index]
                if job.after is not None and (job.after in skipped or _diverged(job.after)):
                    log.warning("zoo: not fine-tuning %s: its pretraining run %s diverged", key, job.after)
                    skipped.add(key)  # type: ignore[arg-type]
                    sched.done(key)
                    continue
                # registered before it is announced: a Ctrl-C right after the "started" line still stops it
                running[key] = _start(job, par)  # type: ignore[index]
                log.info("zoo: started %s %s (pid %s) -> %s", job.kind, job.config.model, running[key].pid,
                         job.run_dir)
            if not running:
                if sched.unstarted:
                    raise ImagenotError("zoo: runs are waiting for a run that is not in the plan")
                break
            for key in [k for k, proc in running.items() if proc.poll() is not None]:
                _collect(running.pop(key), key)
                sched.done(key)
            time.sleep(POLL_S)
    finally:
        _stop(running)
        if previous is not _NOT_SET:
            signal.signal(signal.SIGTERM, previous)
    return {j.run_dir: rundir.read_result(j.run_dir) for j in all_jobs
            if j.run_dir not in skipped and rundir.is_finished(j.run_dir)}


_NOT_SET = object()


def _stop_on_sigterm() -> Any:
    """SIGTERM (`kill`, a scheduler cancelling the job) stops the children as Ctrl-C does, instead of leaving
    them running without their zoo; returns the handler to put back (or _NOT_SET off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return _NOT_SET

    def stop(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, stop)


def _forced(job: Any) -> Any:
    """`job` replacing the run with other settings in its folder (what the serial zoo's `rerun` does)."""
    log.info("zoo: %s holds a run with other settings; rerunning it (--force)", job.run_dir)
    return forced(job)


def _diverged(run_dir: Path) -> bool:
    return rundir.is_finished(run_dir) and bool(rundir.diverged_note(rundir.read_result(run_dir)))


def _short(run_dir: Path) -> str:
    return "/".join(Path(run_dir).parts[-3:])


def child_argv(job: Any) -> list[str]:
    """The command of one run: `imagenot <stage> ...`, every setting of its config as flags (as printed for
    torchrun), at this process's logging level and without progress bars (several runs share the terminal)."""
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    return [sys.executable, "-m", "imagenot", "--log-level", level, "--no-progress", *job_argv(job)]


def _start(job: Any, par: Parallelism) -> subprocess.Popen:
    env = dict(os.environ)
    if par.threads:
        env["OMP_NUM_THREADS"] = str(par.threads)  # the run sets torch's threads; this covers the rest
    # stdout (the run's one-line summary) stays quiet: the zoo's own output is its table; logs go to stderr
    return subprocess.Popen(child_argv(job), env=env, stdout=subprocess.DEVNULL)


def _collect(proc: subprocess.Popen, key: Path) -> None:
    """A finished child: its run is done, or the zoo stops with its exit status (its error is in the log)."""
    if rundir.is_finished(key) and _diverged(key):
        log.warning("zoo: %s (%s)", rundir.diverged_note(rundir.read_result(key)), key)
        return
    if proc.returncode == 0 and rundir.is_finished(key):
        top1 = rundir.read_result(key).get("top1")
        log.info("zoo: finished %s (top-1 %s)", key, "-" if top1 is None else f"{top1:.2f}")
        return
    raise ImagenotError(f"zoo: run {key} failed (exit status {proc.returncode}; its error is logged above); "
                        "finished runs are kept, rerun the zoo to resume")


def _stop(running: dict[Path, subprocess.Popen]) -> None:
    """Stop every child still running (Ctrl-C, or another run failed): SIGTERM, then SIGKILL."""
    for key, proc in running.items():
        if proc.poll() is None:
            log.warning("zoo: stopping %s (pid %s); it resumes from its checkpoint next time", key, proc.pid)
            proc.terminate()
    for proc in running.values():
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
