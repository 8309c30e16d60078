"""Two CPU processes under torchrun (gloo) train to the loss curve of one process with the same global batch,
and write the same predictions.parquet rows.

convnext_s32 has no batch norm (LayerNorm only) and no dropout, so with the global-batch sharding and the
global-batch augmentation draws the two runs compute the same gradients up to float summation order; the
stated tolerance is a relative 1e-5 on every logged loss (measured: about 1e-7). Evaluating the same weights
with 1 and with 2 processes (each rank every second image, gathered on rank 0) gives identical rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imagenot.predictions import read_predictions
from imagenot.training.trainer import train
from tests.training.training_helpers import quick_config, subprocess_env

REL_TOL = 1e-5
# 201 images per split: the val split does not divide by 2, so sharded evaluation must count 101 + 100.
OPTIONS = {"num_classes": 4, "n": 201}


def test_torchrun_two_processes_match_one(tmp_path):
    single = tmp_path / "single"
    # fp32: the tolerances below are fp32's (the bf16 path is tested in test_precision)
    ref = train(quick_config(single, model="convnext_s32", batch_size=32, dataset_options=OPTIONS, precision="fp32"))

    ddp = tmp_path / "ddp"
    cfg = dict(model="convnext_s32", dataset="synthetic", dataset_options=OPTIONS, out=str(ddp), epochs=2,
               batch_size=32, image_size=16, seed=0, threads=1, progress=False, deterministic=True,
               precision="fp32")
    config_file = tmp_path / "ddp.json"
    config_file.write_text(json.dumps(cfg))
    cmd = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m", "imagenot", "train",
           "--config", str(config_file)]
    done = subprocess.run([sys.executable, *cmd], env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    result = json.loads((ddp / "result.json").read_text())
    assert result["world_size"] == 2 and ref["world_size"] == 1
    rows_1 = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    rows_2 = [json.loads(x) for x in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert len(rows_1) == len(rows_2) == 2
    for a, b in zip(rows_1, rows_2):
        assert a["step"] == b["step"]
        assert b["val_images"] == a["val_images"] == 201  # every val image once, none twice
        for key in ("train_loss", "val_loss"):
            assert b[key] == pytest.approx(a[key], rel=REL_TOL), key
        assert b["top1"] == pytest.approx(a["top1"], abs=100 / 201 + 1e-9)  # at most one near-tie flips
        assert b["lr"] == a["lr"]
    w1 = torch.load(single / "checkpoints" / "last.pt", weights_only=True)["model"]
    w2 = torch.load(ddp / "checkpoints" / "last.pt", weights_only=True)["model"]
    worst = max(float((w1[k] - w2[k]).abs().max() / (w1[k].abs().max() + 1e-12)) for k in w1)
    assert worst < 1e-4

    # Each run's final evaluation: the same images under the same ids, predictions equal up to the weights'
    # float differences (at most one near-tie flips).
    (p1, m1), (p2, m2) = read_predictions(single / "predictions.parquet"), read_predictions(ddp / "predictions.parquet")
    assert m1["split_digest"] == m2["split_digest"] and m1["n"] == m2["n"] == 201
    for col in ("index", "key", "label"):
        assert p1.column(col).to_pylist() == p2.column(col).to_pylist()
    assert p1.column("index").to_pylist() == list(range(201)) and p1.column("key")[0].as_py() == "#0"
    flips = sum(a != b for a, b in zip(p1.column("correct").to_pylist(), p2.column("correct").to_pylist()))
    assert flips <= 1
    assert max(abs(a - b) for a, b in zip(p1.column("p_label").to_pylist(), p2.column("p_label").to_pylist())) < 1e-3

    # The same weights evaluated by 1 process (here) and by 2 (under torchrun): identical rows.
    from tests.training.ddp_eval_script import main as evaluate_run

    one, two = tmp_path / "eval1.parquet", tmp_path / "eval2.parquet"
    evaluate_run(str(single), str(one))
    cmd = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           str(Path(__file__).with_name("ddp_eval_script.py")), str(single), str(two)]
    done = subprocess.run([sys.executable, *cmd], env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (t1, meta1), (t2, meta2) = read_predictions(one), read_predictions(two)
    assert t1.equals(t2) and meta1["split_digest"] == meta2["split_digest"]
    assert t1.column("correct").to_pylist() == p1.column("correct").to_pylist()
