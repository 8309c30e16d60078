"""`imagenot evaluate --published`: torchvision's published accuracies as run folders, offline."""

import csv
import json
from pathlib import Path

import pytest

from imagenot.cli import main


def test_published_runs_are_the_papers_imagenet_column(tmp_path: Path, shared_reference: Path):
    rows = list(csv.DictReader(open(shared_reference / "paper_results.csv")))
    for row in rows:
        model = row["torchvision_builder"]
        assert main(["evaluate", "--model", model, "--published", "--out", str(tmp_path / model), "-q"]) == 0
        result = json.loads((tmp_path / model / "result.json").read_text())
        assert result["top1"] == float(row["imagenet_top1"]) and result["top5"] == float(row["imagenet_top5"])
        assert (result["source"], result["role"], result["dataset"]) == ("published", "reference", "imagenet-1k")
        assert result["weights"].endswith("_Weights.IMAGENET1K_V1") and result["val_images"] == 50000
        assert result["year"] == int(row["year"])
        config = json.loads((tmp_path / model / "config.json").read_text())
        assert config["out"] == str(tmp_path / model) and config["published"] is True
    # a rerun of the same command is a no-op; another model into the same folder is refused
    before = (tmp_path / "alexnet" / "result.json").read_bytes()
    assert main(["evaluate", "--model", "alexnet", "--published", "--out", str(tmp_path / "alexnet")]) == 0
    assert (tmp_path / "alexnet" / "result.json").read_bytes() == before
    assert main(["evaluate", "--model", "vgg19", "--published", "--out", str(tmp_path / "alexnet")]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet_s32"], "has no torchvision weights"),
    (["--model", "resnet152", "--init", "torchvision:resnet152.IMAGENET1K_V9"], "known: IMAGENET1K_V1, IMAGENET1K_V2"),
    (["--model", "resnet152", "--init", "torchvision:resnet50.IMAGENET1K_V1"], "weights for 'resnet50'"),
    (["--model", "resnet152", "--init", "scratch"], "needs torchvision weights"),
    (["--model", "resnet9"], "unknown model 'resnet9'"),
])
def test_bad_published_requests_write_nothing(tmp_path: Path, capsys, argv: list[str], message: str):
    out = tmp_path / "run"
    assert main(["evaluate", *argv, "--published", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
