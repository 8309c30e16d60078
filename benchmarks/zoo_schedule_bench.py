"""The zoo's start order, measured on a finished zoo: how long would its runs have taken side by side under
the old cost estimate and under today's?

Reads every finished run below RUNS (result.json: its measured `wall_time_s`, model, images, epochs; a fine-tune
waits for its pretraining run) and replays the zoo's list scheduler (`imagenot.zoo.schedule.Scheduler`, N
processes, each run taking the time it took) with two cost estimates per run:

* baseline: forward FLOPs per image x `limit` (None, i.e. every split without a limit: one image) x epochs,
  the estimate before issue 23's scheduling fix;
* today: `imagenot.zoo.parallel.task_for` (`models.cost.training_cost`: FLOPs plus activation traffic, x the
  images the dataset's header or card counts, x epochs).

Prints the makespan of each, the lower bound (total run time / N) and the ratio baseline / today. The run
times are the ones measured in that zoo (two processes side by side on the demo's machine), so this replays
the order, not the machine.

    python benchmarks/zoo_schedule_bench.py demo-out/runs
"""

from __future__ import annotations

import argparse
import heapq
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from imagenot import rundir  # noqa: E402
from imagenot.zoo.schedule import Scheduler, Task  # noqa: E402


def finished_runs(root: Path) -> list[tuple[Path, dict, dict]]:
    """(run folder, result.json, config.json) of every finished run below `root`."""
    out = []
    for result in sorted(root.rglob(rundir.RESULT)):
        record = rundir.read_result(result.parent)
        if record.get("status") == "finished" and record.get("wall_time_s") is not None:
            out.append((result.parent, record, rundir.read_config(result.parent)))
    return out


def baseline_task(run_dir: Path, record: dict, config: dict, after: Path | None) -> Task:
    from imagenot.models import params_and_flops

    flops = float(params_and_flops(record["model"], record.get("image_size"))[1])
    images = config.get("limit") or 1
    return Task(run_dir, flops * images * (record.get("epochs") or 1) * 3.0, after)


def today_task(run_dir: Path, record: dict, config: dict, after: Path | None) -> Task:
    from types import SimpleNamespace

    from imagenot.zoo.parallel import task_for

    cfg = SimpleNamespace(model=record["model"], image_size=config.get("image_size"), limit=config.get("limit"),
                          dataset=config["dataset"], dataset_options=config.get("dataset_options") or {},
                          epochs=record.get("epochs"), recipe_name=config.get("recipe"),
                          recipe_overrides=config.get("recipe_overrides") or {})
    job = SimpleNamespace(config=cfg, kind="finetune" if after else "train", run_dir=run_dir, after=after)
    return task_for(job)


def makespan(tasks: list[Task], seconds: dict[Path, float], processes: int) -> float:
    sched = Scheduler(tasks)
    clock, running = 0.0, []
    while sched.unstarted or running:
        while len(running) < processes and (key := sched.take()) is not None:
            heapq.heappush(running, (clock + seconds[key], str(key), key))
        clock, _, key = heapq.heappop(running)
        sched.done(key)
    return clock


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", help="a finished zoo's output folder (the demo's: demo-out/runs)")
    p.add_argument("--processes", type=int, default=2, help="runs side by side (the demo on 2 cores: 2)")
    args = p.parse_args()
    runs = finished_runs(Path(args.runs))
    if not runs:
        print(f"no finished runs below {args.runs}", file=sys.stderr)
        return 1
    seconds = {d: float(r["wall_time_s"]) for d, r, _ in runs}
    dirs = {d.resolve() for d, _, _ in runs}
    afters = {}
    for d, r, _ in runs:
        source = r.get("pretrain_run")
        afters[d] = Path(source) if source and Path(source).resolve() in dirs else None
    results = {}
    for name, make in (("baseline (FLOPs x limit x epochs)", baseline_task),
                       ("today (training_cost x counted images x epochs)", today_task)):
        tasks = [make(d, r, c, afters[d]) for d, r, c in runs]
        results[name] = makespan(tasks, seconds, args.processes)
    bound = sum(seconds.values()) / args.processes
    print(f"{len(runs)} finished runs below {args.runs}, {sum(seconds.values()):.0f} s of run time, "
          f"{args.processes} side by side; lower bound {bound:.0f} s")
    for name, span in results.items():
        print(f"  {name}: {span:.0f} s ({span / bound:.2f}x the bound)")
    base, today = results.values()
    print(f"zoo wall time baseline / today: {base / today:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
