"""The zoo: a plan's runs (pretraining, then fine-tunes), skipping finished ones, and printed cluster commands."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from imagenot.cli import main
from imagenot.config import ConfigError
from imagenot.zoo import commands, load_plan, run_zoo

PLAN = {
    "models": ["alexnet_s32", "resnet_s32"],
    "datasets": [{"spec": "synthetic", "name": "synth-ref", "role": "reference", "options": {"num_classes": 4}}],
    "seeds": [0],
    "epochs": 1,
    "batch_size": 16,
    "image_size": 16,
    "limit": 96,
    "threads": 1,
    "progress": False,
    "transfer": [{"spec": "synthetic", "name": "target", "options": {"num_classes": 3, "seed": 5},
                  "modes": ["linear"], "epochs": 1}],
}


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({**PLAN, "out": str(tmp_path / "zoo")}))
    return path


def test_zoo_runs_chains_and_skips_finished(plan_file, tmp_path, capsys):
    plan = load_plan(plan_file)
    text = commands(plan, "torchrun")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert "4 runs, 0 finished, 4 left" in text and len(lines) == 4
    first = shlex.split(lines[0])
    assert first[:5] == ["torchrun", "--standalone", "--nproc_per_node=1", "-m", "imagenot"]
    assert first[5] == "train" and "--resume" in first and "num_classes=4" in first
    assert shlex.split(lines[-1])[5] == "finetune"

    results = run_zoo(plan)
    zoo = tmp_path / "zoo"
    dirs = sorted(r["run_dir"] for r in results)
    assert dirs == sorted(str(p) for p in [
        zoo / "synth-ref" / "alexnet_s32" / "seed0", zoo / "synth-ref" / "resnet_s32" / "seed0",
        zoo / "transfer" / "target" / "linear" / "from-synth-ref" / "alexnet_s32" / "seed0",
        zoo / "transfer" / "target" / "linear" / "from-synth-ref" / "resnet_s32" / "seed0"])
    roles = {r["run_dir"]: (r["role"], r["dataset"], r["pretrain_dataset"]) for r in results}
    assert roles[str(zoo / "synth-ref" / "alexnet_s32" / "seed0")] == ("reference", "synth-ref", None)
    assert roles[dirs[-1]] == ("transfer", "target", "synth-ref")
    assert json.loads((zoo / "zoo.json").read_text())["models"] == PLAN["models"]

    stamps = {d: (tmp_path / d / "result.json").stat().st_mtime_ns for d in dirs}
    assert main(["zoo", "--config", str(plan_file)]) == 0  # everything finished: nothing retrained
    assert {d: (tmp_path / d / "result.json").stat().st_mtime_ns for d in dirs} == stamps
    assert "top-1" in capsys.readouterr().out
    assert "0 left" in commands(plan, "torchrun")


def test_slurm_script_has_one_task_per_pretraining_run(plan_file, capsys):
    assert main(["zoo", "--config", str(plan_file), "--seed", "0,1", "--print", "slurm",
                 "--nproc-per-node", "4"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash")
    assert "#SBATCH --array=0-3" in script and "#SBATCH --gpus-per-node=4" in script
    tasks = script.split("TASKS=(")[1].split(")\n")[0].strip().splitlines()
    assert len(tasks) == 4
    for task in tasks:
        chained = shlex.split(task)[0].split(" && ")
        assert len(chained) == 2 and " train " in chained[0] and " finetune " in chained[1]
        assert "--nproc_per_node=4" in chained[0]


def test_zoo_flags_and_plan_errors(tmp_path, capsys):
    out = tmp_path / "z"
    assert main(["zoo", "--models", "vgg_s32", "--datasets", "fashion-mnist,wds:/data/contrast",
                 "--roles", "reference,contrast", "--out", str(out), "--print", "torchrun"]) == 0
    text = capsys.readouterr().out
    assert f"{out}/fashion-mnist/vgg_s32/seed0" in text and f"{out}/contrast/vgg_s32/seed0" in text
    assert "--role contrast" in text
    with pytest.raises(ConfigError, match="unknown key"):
        load_plan(_write(tmp_path, {"models": ["vgg_s32"], "datasets": ["synthetic"], "modles": 1}))
    assert main(["zoo", "--models", "nope_s32", "--datasets", "synthetic", "--print", "torchrun"]) == 2
    assert "unknown model 'nope_s32'" in capsys.readouterr().err
    assert main(["zoo", "--models", "convnext_s32", "--datasets", "synthetic", "--image-size", "8",
                 "--print", "torchrun"]) == 2
    assert "at least 16x16" in capsys.readouterr().err


def _write(tmp_path, data):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_dataset_can_have_its_own_seeds(tmp_path):
    from imagenot.zoo import jobs, plan_from_mapping

    plan = plan_from_mapping({**PLAN, "out": str(tmp_path), "datasets": [
        {"spec": "synthetic", "name": "ref", "role": "reference"},
        {"spec": "synthetic", "name": "con", "role": "contrast", "seeds": [0, 1, 2]}]})
    runs = {j.run_dir.relative_to(tmp_path).as_posix() for j in jobs(plan)}
    trained = {r for r in runs if not r.startswith("transfer/")}
    assert trained == {f"{d}/{m}/seed{s}" for m in PLAN["models"] for d, seeds in (("ref", [0]), ("con", [0, 1, 2]))
                       for s in seeds}
    assert sum(r.startswith("transfer/target/linear/from-con/") for r in runs) == 6  # every contrast seed
