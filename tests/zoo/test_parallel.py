"""Zoo runs side by side: the schedule (longest first, dependencies kept) and results equal to serial runs."""

from __future__ import annotations

import json

import pytest

from imagenot.config import ConfigError
from imagenot.errors import ImagenotError
from imagenot.zoo import plan_from_mapping, run_zoo
from imagenot.zoo.parallel import resolve_parallel, task_for
from imagenot.zoo.run import jobs
from imagenot.zoo.schedule import Scheduler, Task, order

PLAN = {
    "models": ["alexnet_s32", "resnet_s32"],
    "datasets": [{"spec": "synthetic", "name": "synth", "role": "reference", "options": {"num_classes": 4}}],
    "seeds": [0], "epochs": 2, "batch_size": 16, "image_size": 16, "limit": 64, "progress": False,
    "deterministic": True,
    "transfer": [{"spec": "synthetic", "name": "target", "options": {"num_classes": 3, "seed": 5},
                  "modes": ["full"], "epochs": 1, "batch_size": 16, "limit": 48}],
    "transfer_from": ["synth"],
}


def test_longest_first_and_a_fine_tune_after_its_pretraining():
    tasks = [Task("small", 1.0), Task("big", 10.0), Task("mid", 5.0), Task("ft-small", 8.0, after="small")]
    # small + its fine-tune (9) outrank mid (5): the chain waiting behind a run counts
    assert order(tasks) == ["big", "small", "ft-small", "mid"]
    sched = Scheduler(tasks)
    assert sched.take() == "big" and sched.take() == "small" and sched.take() == "mid"
    assert sched.take() is None  # the fine-tune waits for "small", still running
    sched.done("big")
    assert sched.take() is None
    sched.done("small")
    assert sched.take() == "ft-small" and sched.unstarted == 0
    # a dependency outside the tasks (a pretraining run finished earlier) does not block
    assert Scheduler([Task("ft", 1.0, after="finished-elsewhere")]).take() == "ft"


def test_runs_are_ordered_by_the_images_they_pass_over(tmp_path):
    """A reference of 6,000 images for 2 epochs outranks a contrast of 600 for 6: the count comes from the
    dataset card (before, an unknown size counted as one image and the contrast's epochs decided)."""
    for name, n in (("ref", 6000), ("con", 600)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "dataset.json").write_text(json.dumps({"splits": {"train": {"count": n, "shards": []},
                                                                         "val": {"count": 50, "shards": []}}}))
    plan = plan_from_mapping({
        "models": ["alexnet_s32", "resnet_s32"], "epochs": 2, "out": str(tmp_path / "runs"),
        "datasets": [{"spec": f"wds:{tmp_path / 'con'}", "name": "con", "role": "contrast", "epochs": 6},
                     {"spec": f"wds:{tmp_path / 'ref'}", "name": "ref", "role": "reference"}]})
    tasks = [task_for(j) for j in jobs(plan)]
    ranked = [t.key.relative_to(tmp_path / "runs").parts[0] for t in sorted(tasks, key=lambda t: -t.cost)]
    assert ranked == ["ref", "ref", "con", "con"]
    by_key = {t.key.relative_to(tmp_path / "runs").parts[:2]: t.cost for t in tasks}
    assert by_key[("ref", "resnet_s32")] / by_key[("con", "resnet_s32")] == pytest.approx(6000 * 2 / (600 * 6))


def test_parallel_resolves_from_cores_runs_and_the_plan():
    plan = plan_from_mapping({**PLAN, "device": "cpu"})
    two = resolve_parallel(plan, runnable=4, cores=2)
    assert (two.processes, two.threads) == (2, 1) and two.why.startswith("parallel auto")
    last = resolve_parallel(plan, runnable=1, cores=2)  # one run left: alone, still on one thread
    assert (last.processes, last.threads) == (1, 1)
    assert resolve_parallel(plan, runnable=4, cores=1).processes == 1
    serial = resolve_parallel(plan_from_mapping({**PLAN, "device": "cpu", "parallel": 1}), 4, cores=2)
    assert (serial.processes, serial.threads) == (1, None)  # one after another as before: torch's threads
    threads2 = resolve_parallel(plan_from_mapping({**PLAN, "device": "cpu", "threads": 2}), 4, cores=4)
    assert (threads2.processes, threads2.threads) == (2, 2)
    assert resolve_parallel(plan_from_mapping({**PLAN, "device": "cpu", "parallel": "3"}), 2, cores=8).processes == 2
    assert resolve_parallel(plan_from_mapping({**PLAN, "device": "cuda"}), 4, cores=8).processes == 1
    with pytest.raises(ConfigError, match="parallel"):
        plan_from_mapping({**PLAN, "parallel": "many"})


def _outcome(root):
    """Per run: result.json's accuracies and losses, and metrics.jsonl's losses per epoch."""
    out = {}
    for result in sorted(root.rglob("result.json")):
        r = json.loads(result.read_text())
        rows = [json.loads(x) for x in (result.parent / "metrics.jsonl").read_text().splitlines()]
        key = str(result.parent.relative_to(root))
        out[key] = ((r["top1"], r["top5"], r["val_loss"], r["train_loss"], r["precision"]),
                    [(x["train_loss"], x["val_loss"]) for x in rows])
    return out


@pytest.mark.slow
def test_side_by_side_gives_what_one_after_another_gives(tmp_path):
    serial = run_zoo(plan_from_mapping({**PLAN, "out": str(tmp_path / "serial"), "parallel": 1, "threads": 1}))
    side = run_zoo(plan_from_mapping({**PLAN, "out": str(tmp_path / "side"), "parallel": 2}))
    assert [r["model"] for r in side] == [r["model"] for r in serial]  # plan order either way
    a, b = _outcome(tmp_path / "serial"), _outcome(tmp_path / "side")
    assert len(a) == 4 and a == b
    meta = json.loads((tmp_path / "side" / "zoo.json").read_text())["_meta"]["parallel"]
    assert (meta["processes"], meta["threads"]) == (2, 1)
    config = json.loads((tmp_path / "side" / "synth" / "resnet_s32" / "seed0" / "config.json").read_text())
    assert config["threads"] == 1
    ft = tmp_path / "side" / "transfer" / "target" / "full" / "from-synth" / "resnet_s32" / "seed0"
    assert json.loads((ft / "result.json").read_text())["pretrain_run"] is not None
    # finished runs are kept: a second zoo retrains nothing
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "side").rglob("result.json")}
    run_zoo(plan_from_mapping({**PLAN, "out": str(tmp_path / "side"), "parallel": 2}))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "side").rglob("result.json")} == stamps


@pytest.mark.slow
def test_a_failing_run_stops_the_zoo_naming_it(tmp_path):
    plan = plan_from_mapping({**PLAN, "out": str(tmp_path / "zoo"), "parallel": 2, "transfer": [], "transfer_from": [],
                              "datasets": [{"spec": f"imagefolder:{tmp_path / 'missing'}", "name": "gone"}]})
    with pytest.raises(ImagenotError, match="zoo: run .*gone.* failed"):
        run_zoo(plan)


@pytest.mark.slow
@pytest.mark.parametrize("signame,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_stops_every_child_and_the_zoo_resumes(tmp_path, signame, code):
    import os
    import signal
    import subprocess

    from tests.training.training_helpers import imagenot_cmd, subprocess_env

    out = tmp_path / "zoo"
    cmd = [*imagenot_cmd(), "zoo", "--models", "alexnet_s32,resnet_s32", "--datasets", "synthetic", "--epochs", "3",
           "--batch-size", "16", "--image-size", "16", "--limit", "64", "--device", "cpu", "--parallel", "2",
           "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    pids = []
    for line in proc.stderr:
        if "zoo: started" in line:
            pids.append(int(line.split("(pid ")[1].split(")")[0]))
            if len(pids) == 2:
                break
    proc.send_signal(getattr(signal, signame))  # Ctrl-C, or a kill / a scheduler cancelling the job
    proc.stderr.read()
    assert proc.wait(timeout=60) == code and len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    done = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(out.rglob("result.json"))) == 2


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_fine_tunes_of_a_diverged_run_are_skipped_one_after_another_and_side_by_side(tmp_path, parallel):
    """A run whose loss became NaN is finished (recorded as diverged); its fine-tunes are not started,
    whether the zoo runs serially or side by side, and the zoo itself finishes."""
    plan = plan_from_mapping({**PLAN, "models": ["resnet_s32"], "recipe_overrides": {"lr": 1e12},
                              "out": str(tmp_path / "zoo"), "parallel": parallel})
    results = run_zoo(plan)
    pre = tmp_path / "zoo" / "synth" / "resnet_s32" / "seed0"
    assert json.loads((pre / "result.json").read_text())["status"] == "diverged"
    assert [r["run_dir"] for r in results] == [str(pre)]
    assert not list((tmp_path / "zoo").glob("transfer/**/result.json"))
