"""The run record (imagenot.rundir): one builder and writer of result.json, config.json and manifest.json."""

import json
from pathlib import Path

import pytest

from imagenot import rundir


def _fields(**changes):
    base = dict(model="m", family="f", year=2020, dataset="d", dataset_spec="synthetic", role=None,
                source="evaluated", init="scratch", weights=None, seed=None, top1=50.0, top5=90.0, epochs=None,
                wall_time_s=1.0, params=10, flops=20, image_size=32, num_classes=4, val_images=8,
                train_images=None, environment={})
    base.update(changes)
    return base


def test_result_record_orders_known_fields_and_keeps_a_sources_own():
    shuffled = dict(reversed(list(_fields(extra_field=1, split="val", precision="bfloat16").items())))
    record = rundir.result_record(**shuffled)
    keys = list(record)
    known = [k for k in keys if k in rundir.RESULT_KEYS]
    assert known == sorted(known, key=rundir.RESULT_KEYS.index)
    assert keys[-1] == "extra_field"  # not a known field: after them
    assert record["precision"] == "bf16"  # an older name written in the one vocabulary


def test_result_record_refuses_a_record_without_a_required_field():
    fields = _fields()
    del fields["top1"]
    with pytest.raises(TypeError, match="top1"):
        rundir.result_record(**fields)


def test_start_run_and_write_result_read_back(tmp_path: Path):
    run = tmp_path / "run"
    config = {"model": "m", "dataset": "synthetic", "seed": 0}
    rundir.start_run(run, config, {"dataset_val": "abc"}, source="evaluated")
    assert rundir.read_config(run) == config and rundir.is_run_dir(run) and not rundir.is_finished(run)
    manifest = json.loads((run / rundir.MANIFEST).read_text())
    assert manifest["inputs"] == {"dataset_val": "abc"} and manifest["source"] == "evaluated"
    result = rundir.result_record(**_fields())
    assert rundir.write_result(run, result) == rundir.result_path(run)
    assert rundir.is_finished(run) and rundir.read_result(run) == result


def test_read_config_raises_for_the_caller_to_decide(tmp_path: Path):
    with pytest.raises(OSError):
        rundir.read_config(tmp_path)
    (tmp_path / rundir.CONFIG).write_text("{not json")
    with pytest.raises(ValueError):
        rundir.read_config(tmp_path)
