"""Independent zoo runs side by side: one single-threaded process per core, longest first.

On this kind of machine (issue 23: 2 cores, AVX512-BF16) two single-threaded processes give about 1.9x one
thread, one process on two threads about 1.5x, and under load two threads fall far below one (OpenMP
barriers) while two processes do not. So on CPU with at least two cores, `parallel: auto` runs up to
`cores // threads` processes (each run on `threads`, 1 unless the plan says otherwise, also when one run is
left; the number is in each run's config.json, so a run alone with the same thread count, or resumed, gives
the same result). On a
GPU the zoo runs one run at a time as before (torchrun, `--print torchrun`, for more).

Each run is a spawned process (a fork of a process that has started OpenMP threads can hang) that calls
`run_job`; finished runs are skipped and unfinished ones resume from their checkpoint as in the serial zoo.
The order is `imagenot.zoo.schedule`'s; a fine-tune starts once its pretraining run has finished. Ctrl-C (or
any failure) stops every child; a failed run stops the zoo with its error once the others are stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from imagenot import rundir
from imagenot.errors import ImagenotError
from imagenot.zoo.plan import ZooPlan
from imagenot.zoo.schedule import Scheduler, Task, job_cost

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


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
        cfg.model, getattr(cfg, "image_size", None), cfg.limit, epochs, training=training)
    return Task(key=job.run_dir, cost=cost, after=job.after)


def run_side_by_side(all_jobs: list[Any], par: Parallelism) -> dict[Path, dict[str, Any]]:
    """Run the unfinished jobs in `par.processes` processes; returns every job's result by run directory."""
    todo = [j for j in all_jobs if not rundir.is_finished(j.run_dir)]
    by_dir = {j.run_dir: j for j in todo}
    sched = Scheduler([task_for(j) for j in todo])
    log.info("zoo: %d runs side by side in %d processes (%s); start order by estimated cost: %s", len(todo),
             par.processes, par.why, ", ".join(_short(k) for k in sched.ready()[:8]))
    ctx = multiprocessing.get_context("spawn")
    running: dict[Any, tuple[Any, Connection, Path]] = {}
    try:
        while sched.unstarted or running:
            while len(running) < par.processes and (key := sched.take()) is not None:
                proc, conn = _start(ctx, by_dir[key])  # type: ignore[index]
                running[proc.sentinel] = (proc, conn, key)  # type: ignore[assignment]
            if not running:
                raise ImagenotError("zoo: runs are waiting for a run that is not in the plan")
            for sentinel in wait(list(running)):
                proc, conn, key = running.pop(sentinel)
                _collect(proc, conn, key)
                sched.done(key)
    finally:
        _stop(running.values())
    return {j.run_dir: rundir.read_result(j.run_dir) for j in all_jobs if rundir.is_finished(j.run_dir)}


def _short(run_dir: Path) -> str:
    return "/".join(Path(run_dir).parts[-3:])


def _start(ctx: Any, job: Any) -> tuple[Any, Connection]:
    job = dataclasses.replace(job, config=dataclasses.replace(job.config, progress=False))
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(job, send, logging.getLogger().getEffectiveLevel()),
                       name=f"zoo-{_short(job.run_dir)}", daemon=True)
    proc.start()
    send.close()
    log.info("zoo: started %s %s (pid %s) -> %s", job.kind, job.config.model, proc.pid, job.run_dir)
    return proc, recv


def _collect(proc: Any, conn: Connection, key: Path) -> None:
    """Join a finished child; raise its error (or its exit status) if it failed."""
    proc.join()
    message = conn.recv() if conn.poll() else None
    conn.close()
    if proc.exitcode == 0 and message == "ok":
        log.info("zoo: finished %s", key)
        return
    detail = message if isinstance(message, str) and message != "ok" else f"exit status {proc.exitcode}"
    raise ImagenotError(f"zoo: run {key} failed: {detail}; finished runs are kept, rerun the zoo to resume")


def _stop(children: Any) -> None:
    """Stop every child still running (Ctrl-C, or another run failed): SIGTERM, then SIGKILL."""
    children = list(children)
    for proc, _, key in children:
        if proc.is_alive():
            log.warning("zoo: stopping %s (pid %s); it resumes from its checkpoint next time", key, proc.pid)
            proc.terminate()
    for proc, conn, _ in children:
        proc.join(STOP_TIMEOUT_S)
        if proc.is_alive():
            proc.kill()
            proc.join()
        conn.close()


def child_main(job: Any, conn: Connection, level: int) -> None:
    """One run in its own process: log with the run's name, report "ok" or the error to the zoo."""
    from imagenot.zoo.run import run_job

    logging.basicConfig(level=level, stream=sys.stderr, datefmt="%H:%M:%S",
                        format=f"%(asctime)s %(levelname)s [{job.config.model}] %(name)s: %(message)s")
    try:
        run_job(job)
    except KeyboardInterrupt:
        conn.close()
        sys.exit(130)
    except ImagenotError as exc:
        conn.send(str(exc))
        conn.close()
        sys.exit(2)
    except BaseException as exc:
        log.exception("run %s failed", job.run_dir)
        conn.send(f"{type(exc).__name__}: {exc}")
        conn.close()
        raise
    conn.send("ok")
    conn.close()
