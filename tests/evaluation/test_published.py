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


def test_report_over_published_runs_reproduces_the_papers_agreement(tmp_path: Path, shared_reference: Path):
    """The nine real `evaluate --published` folders as the ImageNet side, the paper's ImageNot ratios to
    AlexNet as the other: the ranking is the same (Kendall tau 1), as the paper reports."""
    rows = list(csv.DictReader(open(shared_reference / "paper_results.csv")))
    for row in rows:
        model = row["torchvision_builder"]
        assert main(["evaluate", "--model", model, "--published", "--out", str(tmp_path / "imagenet" / model),
                     "-q"]) == 0
        ratio = tmp_path / "imagenot" / model
        ratio.mkdir(parents=True)
        (ratio / "result.json").write_text(json.dumps({
            "model": model, "year": int(row["year"]), "dataset": "imagenot_ratio_to_alexnet", "role": "contrast",
            "top1": float(row["imagenot_ratio_to_alexnet"]), "seed": None}))
    out = tmp_path / "report"
    assert main(["report", "--runs", str(tmp_path / "imagenet"), str(tmp_path / "imagenot"), "--out", str(out),
                 "--n-boot", "300", "-q"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["main"]["rank"]["kendall_tau"] == pytest.approx(1.0)
    assert stats["main"]["order"]["discordant"] == 0 and len(stats["main"]["models"]) == 9
    assert stats["datasets"]["imagenet-1k"]["source"] == "published"
