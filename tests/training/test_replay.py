"""A run's config.json replays it exactly from any directory (absolute paths, the thread count recorded)."""

import json
from pathlib import Path

import pytest
import torch

from imagenot.cli import main


def test_config_json_reproduces_the_run_bit_for_bit_from_another_directory(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert main(["train", "--model", "resnet_s32", "--dataset", "synthetic", "--data-opt", "num_classes=3",
                 "--data-opt", "n=48", "--epochs", "2", "--batch-size", "16", "--image-size", "16",
                 "--out", "runs/a", "-q"]) == 0
    config = json.loads((first / "runs" / "a" / "config.json").read_text())
    assert config["out"] == str(first / "runs" / "a") and config["threads"] == torch.get_num_threads()
    monkeypatch.chdir(second)
    assert main(["train", "--config", str(first / "runs" / "a" / "config.json"), "--out", "b", "-q"]) == 0
    again = json.loads((second / "b" / "config.json").read_text())
    assert {**again, "out": None} == {**config, "out": None}
    a = torch.load(first / "runs" / "a" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(second / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["history"][-1]["top1"] == b["history"][-1]["top1"]
    assert (first / "runs" / "a" / "predictions.parquet").read_bytes() != b""  # both evaluated at the end
