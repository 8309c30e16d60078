"""Run identity in the zoo: a finished run is reused only when its fingerprint is the plan's for that run."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from imagenot import rundir
from imagenot.cli import main
from imagenot.zoo import commands, plan_from_mapping, run_zoo
from imagenot.zoo.run import ZooError

PLAN = {
    "models": ["alexnet_s32"],
    "datasets": [{"spec": "synthetic", "name": "ref", "role": "reference", "options": {"num_classes": 3}}],
    "seeds": [0], "epochs": 1, "batch_size": 16, "image_size": 16, "limit": 48, "threads": 1, "progress": False,
}


@pytest.fixture
def finished(tmp_path):
    """A zoo with one finished run, and that run's folder."""
    plan = plan_from_mapping({**PLAN, "out": str(tmp_path / "zoo")})
    [result] = run_zoo(plan)
    return tmp_path / "zoo", result


def test_results_record_a_fingerprint_that_ignores_how_a_run_is_run(finished):
    out, result = finished
    run = out / "ref" / "alexnet_s32" / "seed0"
    recorded = json.loads((run / "result.json").read_text())["fingerprint"]
    config = json.loads((run / "config.json").read_text())
    assert recorded == result["fingerprint"] == rundir.fingerprint(config)
    same = {**config, "threads": 7, "workers": 3, "progress": True, "out": "/elsewhere", "seed": 5, "resume": True}
    assert rundir.fingerprint(same) == recorded  # not what defines the experiment
    assert rundir.fingerprint({**config, "epochs": 2}) != recorded
    assert rundir.fingerprint({**config, "recipe_overrides": {"lr": 0.5}}) != recorded


def test_changed_recipe_is_refused_then_rerun_with_force(finished, caplog):
    out, first = finished
    run = out / "ref" / "alexnet_s32" / "seed0"
    changed = plan_from_mapping({**PLAN, "out": str(out), "recipe_overrides": {"label_smoothing": 0.3}})
    stamp = (run / "result.json").stat().st_mtime_ns
    with pytest.raises(ZooError, match="other settings") as err:
        run_zoo(changed)
    assert str(run) in str(err.value) and "label_smoothing" in str(err.value) and "--force" in str(err.value)
    with pytest.raises(ZooError, match="other settings"):
        commands(changed, "torchrun")  # a printed command would fail on that folder
    assert (run / "result.json").stat().st_mtime_ns == stamp  # nothing touched

    import dataclasses

    [again] = run_zoo(dataclasses.replace(changed, force=True))
    assert again["fingerprint"] != first["fingerprint"]
    assert again["recipe_params"]["label_smoothing"] == 0.3
    assert json.loads((run / "result.json").read_text())["fingerprint"] == again["fingerprint"]


def test_unchanged_plan_reuses_and_an_old_run_is_reused_with_a_warning(finished, caplog, tmp_path):
    out, first = finished
    run = out / "ref" / "alexnet_s32" / "seed0"
    stamp = (run / "result.json").stat().st_mtime_ns
    plan = plan_from_mapping({**PLAN, "out": str(out), "threads": 2, "workers": 0})  # not part of identity
    assert run_zoo(plan)[0]["top1"] == first["top1"]
    assert (run / "result.json").stat().st_mtime_ns == stamp
    old = json.loads((run / "result.json").read_text())
    del old["fingerprint"]  # written before fingerprints existed
    (run / "result.json").write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING, logger="imagenot.zoo.run"):
        run_zoo(plan)
    assert "no run fingerprint" in caplog.text and str(run) in caplog.text


def test_cli_zoo_names_the_changed_run_with_exit_2(finished, tmp_path, capsys):
    out, _ = finished
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, "out": str(out), "epochs": 2}))
    assert main(["zoo", "--config", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "seed0" in err and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("models: [alexnet_s32]\ndatasets: [synthetic]\nepochs: 1\nseeds: [0]\nepochs: 3\n",
     r"plan.yaml: line 5: key 'epochs' is given twice \(first on line 3\)"),
    ("models: [alexnet_s32]\ndatasets:\n  - spec: synthetic\n    role: reference\n    role: contrast\n",
     r"plan.yaml: line 5: key 'role' is given twice \(first on line 4\)"),
    ("models: [alexnet_s32]\ndatasets: [synthetic]\nseeds: [0, 1, 0]\n", r"seeds list 0 more than once"),
    ("models: [alexnet_s32, alexnet_s32]\ndatasets: [synthetic]\n", r"models list alexnet_s32 more than once"),
    ("models: [alexnet_s32]\ndatasets:\n  - {spec: synthetic, seeds: [2, 2]}\n",
     r"seeds of dataset synthetic list 2 more than once"),
])
def test_plan_repeats_are_errors_naming_key_and_line(tmp_path, capsys, text, message):
    from imagenot.config import ConfigError
    from imagenot.zoo import load_plan

    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_plan(path)
    assert main(["zoo", "--config", str(path), "--print", "torchrun"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_json_config_with_a_repeated_key_is_an_error(tmp_path):
    from imagenot.config import ConfigError, load_mapping

    path = tmp_path / "config.json"
    path.write_text('{"model": "alexnet_s32", "epochs": 1, "epochs": 5}')
    with pytest.raises(ConfigError, match="key 'epochs' is given twice"):
        load_mapping(path)


def test_fine_tunes_of_a_rerun_pretraining_run_are_rerun_too(tmp_path):
    import dataclasses

    transfer = [{"spec": "synthetic", "name": "target", "options": {"num_classes": 2, "seed": 5},
                 "modes": ["linear"], "epochs": 1, "limit": 32, "batch_size": 16}]
    first = run_zoo(plan_from_mapping({**PLAN, "out": str(tmp_path / "zoo"), "transfer": transfer}))
    tuned = next(r for r in first if r["role"] == "transfer")
    pre = next(r for r in first if r["role"] != "transfer")
    run = tmp_path / "zoo" / "transfer" / "target" / "linear" / "from-ref" / "alexnet_s32" / "seed0"
    assert json.loads((run / "config.json").read_text())["resolved"]["init_fingerprint"] == pre["fingerprint"]
    changed = plan_from_mapping({**PLAN, "out": str(tmp_path / "zoo"), "transfer": transfer, "epochs": 2})
    with pytest.raises(ZooError, match="2 run folder") as err:
        run_zoo(changed)
    assert "fine-tuned from" in str(err.value) and str(run) in str(err.value)
    again = run_zoo(dataclasses.replace(changed, force=True))
    retuned = next(r for r in again if r["role"] == "transfer")
    repre = next(r for r in again if r["role"] != "transfer")
    assert repre["epochs"] == 2 and repre["fingerprint"] != pre["fingerprint"]
    assert retuned["fingerprint"] != tuned["fingerprint"]  # trained from the new weights, not reused
    assert json.loads((run / "config.json").read_text())["resolved"]["init_fingerprint"] == repre["fingerprint"]


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_a_changed_published_record_is_replaced_with_force(tmp_path, parallel):
    """Evaluations and published records have no checkpoint to resume: --force replaces them all the same,
    serially and side by side."""
    base = {"models": ["alexnet", "resnet18"], "seeds": [0], "progress": False, "out": str(tmp_path / "zoo"),
            "parallel": parallel}
    run_zoo(plan_from_mapping({**base, "datasets": [{"source": "published", "name": "imagenet",
                                                     "role": "reference"}]}))
    changed = {**base, "datasets": [{"source": "published", "name": "imagenet", "role": "contrast"}]}
    with pytest.raises(ZooError, match="other settings"):
        run_zoo(plan_from_mapping(changed))
    results = run_zoo(plan_from_mapping({**changed, "force": True}))
    assert sorted(r["role"] for r in results) == ["contrast", "contrast"]
    record = json.loads((tmp_path / "zoo" / "imagenet" / "alexnet" / "published" / "result.json").read_text())
    assert record["role"] == "contrast"


def test_the_identity_keeps_the_requested_precision_not_what_a_machine_resolved(finished):
    """config.json keeps the numerics asked for and records what the device resolved under
    `resolved.numerics`; only the request is the run's identity, so a run trained on a GPU node matches its
    plan checked on a CPU login node."""
    from imagenot.training.trainer import run_record
    from imagenot.zoo.run import job_record, jobs

    out, result = finished
    config = json.loads((out / "ref" / "alexnet_s32" / "seed0" / "config.json").read_text())
    assert config["precision"] == "auto" and config["resolved"]["numerics"]["precision"] in ("bf16", "fp32")
    on_a_gpu = {**config, "resolved": {**config["resolved"], "numerics": {
        "precision": "bf16", "channels_last": True, "fp32_grouped_convs": False}}}
    assert rundir.fingerprint(on_a_gpu) == result["fingerprint"]
    [job] = jobs(plan_from_mapping({**PLAN, "out": str(out)}))
    assert run_record(job.config)["precision"] == "auto"  # nothing resolved for a plan: no device needed
    assert rundir.fingerprint(job_record(job)) == result["fingerprint"]
    assert rundir.fingerprint({**config, "precision": "fp32"}) != result["fingerprint"]  # another request
