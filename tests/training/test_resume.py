"""A run killed with SIGKILL mid-epoch and resumed ends exactly where an uninterrupted run ends: in memory
(the batched pipeline) and streamed from webdataset shards (the per-sample pipeline)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import torch

from imagenot.training.trainer import TrainConfig, train
from tests.training.training_helpers import imagenot_cmd, quick_config, subprocess_env, write_wds

# efficientnet_s32 has batch norm, dropout and stochastic depth: the resumed run must restore buffers and the
# RNG stream, not just weights.
MODEL, EPOCHS, EVERY = "efficientnet_s32", 2, 3
VOLATILE = {"images_per_s", "time_s"}


def _cli_args(out):
    return [*imagenot_cmd(), "train", "--model", MODEL, "--dataset", "synthetic", "--data-opt", "num_classes=4",
            "--image-size", "16", "--epochs", str(EPOCHS), "--batch-size", "16", "--seed", "0", "--threads", "1",
            "--deterministic", "--checkpoint-every", str(EVERY), "--no-progress", "--out", str(out)]


def _metrics(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    reference = tmp_path / "uninterrupted"
    ref = train(quick_config(reference, model=MODEL, epochs=EPOCHS, checkpoint_every_steps=EVERY))

    out = tmp_path / "killed"
    ckpt = out / "checkpoints" / "last.pt"
    proc = subprocess.Popen(_cli_args(out), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not ckpt.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "no step checkpoint appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(ckpt, weights_only=True)
    assert not (out / "result.json").exists()
    assert state["step_in_epoch"] > 0, "the kill was meant to land mid-epoch, after a step checkpoint"
    killed_at = (state["epoch"], state["step_in_epoch"])

    done = subprocess.run([*_cli_args(out), "--resume"], env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    for key in ("top1", "top5", "val_loss", "train_loss", "steps"):
        assert result[key] == ref[key], (key, killed_at)
    assert _metrics(out) == _metrics(reference)
    a = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name  # bitwise, BN buffers included


def _wds_args(data, out):
    return [*imagenot_cmd(), "train", "--model", MODEL, "--dataset", f"wds:{data}", "--pipeline", "per_sample",
            "--image-size", "16", "--epochs", "2", "--batch-size", "8", "--seed", "0", "--threads", "1",
            "--workers", "2", "--shuffle-buffer", "16", "--deterministic", "--checkpoint-every", "2",
            "--no-progress", "--set", "auto_augment=ta_wide", "--set", "mixup_alpha=0.2", "--set",
            "cutmix_alpha=1.0", "--set", "ra_reps=2", "--out", str(out)]


def test_streamed_wds_run_resumes_after_sigkill_exactly(tmp_path):
    """Sequential shards (shard shuffle, shuffle buffer, 2 workers), per-sample augmentation, MixUp/CutMix and
    repeated augmentation: resumed mid-epoch with the same workers and processes, the run ends bitwise where an
    uninterrupted one ends (the stream of an epoch is a function of seed, epoch, rank and worker)."""
    data = write_wds(tmp_path / "wds", {"train": 30, "val": 9}, shard_size=10)
    reference = tmp_path / "uninterrupted"
    train(TrainConfig(model=MODEL, dataset=f"wds:{data}", pipeline="per_sample", image_size=16, epochs=2,
                      batch_size=8, seed=0, threads=1, workers=2, shuffle_buffer=16, deterministic=True,
                      checkpoint_every_steps=2, progress=False, out=str(reference),
                      recipe_overrides={"auto_augment": "ta_wide", "mixup_alpha": 0.2, "cutmix_alpha": 1.0,
                                        "ra_reps": 2}))
    config = json.loads((reference / "config.json").read_text())
    assert config["resolved"]["input"]["pipeline"] == "per_sample"
    assert json.loads((reference / "result.json").read_text())["input"]["read"] == "sequential"

    out = tmp_path / "killed"
    ckpt = out / "checkpoints" / "last.pt"
    proc = subprocess.Popen(_wds_args(data, out), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while not ckpt.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "no step checkpoint appeared"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its loader workers
    proc.wait()
    state = torch.load(ckpt, weights_only=True)
    assert not (out / "result.json").exists()
    assert state["step_in_epoch"] > 0, "the kill was meant to land mid-epoch, after a step checkpoint"

    done = subprocess.run([*_wds_args(data, out), "--resume"], env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _metrics(out) == _metrics(reference)
    a = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert (out / "predictions.parquet").read_bytes() == (reference / "predictions.parquet").read_bytes()
