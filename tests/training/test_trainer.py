"""The trainer end to end on small real runs: run-dir files, skip of finished runs, and bad input."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from imagenot import rundir
from imagenot.cli import main
from imagenot.errors import ImagenotError
from imagenot.training.trainer import train
from tests.training.training_helpers import quick_config

RESULT_KEYS = {"model", "family", "year", "dataset", "role", "pretrain_dataset", "pretrain_run", "pretrain_top1",
               "seed", "top1", "top5", "epochs", "wall_time_s", "params", "flops", "environment"}
METRIC_KEYS = {"epoch", "step", "train_loss", "val_loss", "top1", "top5", "lr", "images_per_s", "time_s"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "resnet"
    cfg = quick_config(out, model="resnet_s32", epochs=3, role="reference",
                       recipe_overrides={"ema_decay": 0.9})
    return cfg, train(cfg)


def test_run_dir_holds_the_contracted_files(finished_run):
    cfg, result = finished_run
    out = rundir.Path(cfg.out)
    assert RESULT_KEYS <= set(result)
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["model"] == "resnet_s32" and on_disk["family"] == "ResNet" and on_disk["role"] == "reference"
    assert on_disk["dataset"] == "synthetic" and on_disk["epochs"] == 3 and on_disk["seed"] == 0
    assert 0 <= on_disk["top1"] <= on_disk["top5"] <= 100
    assert on_disk["params"] > 0 and on_disk["flops"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(METRIC_KEYS <= set(r) for r in rows)
    assert rows[-1]["step"] == result["steps"]
    # 4 learnable classes: the loss falls and accuracy beats chance (25%) after 3 short epochs.
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert result["top1"] > 40
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "resnet_s32" and config["resume"] is False
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == config and "packages" in manifest["environment"]
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["step_in_epoch"] == 0 and ckpt["ema"] is not None
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "history"}


def test_finished_run_is_not_retrained(finished_run):
    cfg, result = finished_run
    path = rundir.result_path(cfg.out)
    before = path.stat().st_mtime_ns
    again = train(cfg)
    assert again == json.loads(path.read_text()) and path.stat().st_mtime_ns == before
    assert again["top1"] == result["top1"]


def test_cli_trains_and_refuses_another_models_dir(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "resnet_s32", "--dataset", "synthetic", "--data-opt", "num_classes=3",
            "--image-size", "16", "--epochs", "1", "--batch-size", "16", "--limit", "96", "--out", str(out),
            "--no-progress", "--threads", "1"]
    assert main(args) == 0
    assert "resnet_s32 on synthetic: top-1" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["dataset_options"] == {"num_classes": 3} and config["limit"] == 96
    # The same dir for another model is refused, naming what differs.
    other = [a if a != "resnet_s32" else "alexnet_s32" for a in args]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "holds another run" in err and "alexnet_s32" in err
    # Rerunning from config.json finds the finished run.
    assert main(["train", "--config", str(out / "config.json")]) == 0


def _no_training_happened(out):
    return not (out / "checkpoints").exists() and not (out / "result.json").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "resnet9000"}, "unknown model 'resnet9000'; known: .*alexnet"),
        ({"dataset": "imagenet-21k"}, "unknown dataset 'imagenet-21k'; known: .*synthetic"),
        ({"dataset_options": {"num_classes": 1}}, "only 1 class"),
        ({"dataset_options": {"num_classes": 4, "n": 0}}, "empty"),
        ({"model": "convnext_s32", "image_size": 8}, "at least 16x16"),
        ({"recipe": "fancy"}, "unknown recipe 'fancy'"),
        ({"batch_size": 512}, "fewer than one batch of 512"),
    ],
)
def test_bad_input_fails_before_training(tmp_path, changes, message):
    out = tmp_path / "run"
    with pytest.raises(ImagenotError, match=message):
        train(quick_config(out, **changes))
    assert _no_training_happened(out)


@pytest.fixture(scope="module")
def unfinished_template(tmp_path_factory):
    """A run dir as a killed run leaves it: config.json and a checkpoint, no result.json."""
    out = tmp_path_factory.mktemp("unfinished") / "run"
    train(quick_config(out, epochs=1))
    rundir.result_path(out).unlink()
    return out


@pytest.fixture
def unfinished(tmp_path, unfinished_template):
    out = tmp_path / "run"
    shutil.copytree(unfinished_template, out)
    return quick_config(out, epochs=1), out


def test_unfinished_run_needs_resume_or_force(unfinished):
    cfg, out = unfinished
    with pytest.raises(ImagenotError, match="pass --resume to continue it or --force"):
        train(cfg)
    result = train(quick_config(out, epochs=1, force=True))
    assert result["epochs"] == 1


@pytest.mark.parametrize("kind", ["garbage", "foreign", "pickle", "other-model"])
def test_bad_checkpoint_on_resume_is_an_error_naming_the_file(unfinished, kind):
    cfg, out = unfinished
    ckpt = out / "checkpoints" / "last.pt"
    if kind == "garbage":
        ckpt.write_bytes(os.urandom(256))
        message = "not a readable imagenot checkpoint"
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
        message = "not an imagenot checkpoint"
    elif kind == "pickle":
        torch.save({"format": "imagenot-checkpoint", "payload": ImagenotError("x")}, ckpt)
        message = "not a trusted checkpoint"
    else:
        data = torch.load(ckpt, weights_only=True)
        data["meta"]["model"] = "resnet_s32"
        torch.save(data, ckpt)
        message = "checkpoint is for model='resnet_s32'"
    before = ckpt.read_bytes()
    with pytest.raises(ImagenotError, match=message) as info:
        train(quick_config(out, epochs=1, resume=True))
    assert str(ckpt) in str(info.value) and "weights_only=False" not in str(info.value)
    assert ckpt.read_bytes() == before and not rundir.result_path(out).exists()


def test_eval_every_skips_evaluations_but_never_the_last(tmp_path):
    result = train(quick_config(tmp_path / "run", epochs=3, eval_every=2))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["top1"] is None for r in rows] == [True, False, False]  # epochs 1 (skipped), 2 (every 2nd), 3 (last)
    assert result["top1"] == rows[-1]["top1"] and (tmp_path / "run" / "predictions.parquet").is_file()
