"""Published weights on the reference side (`imagenot evaluate --published`) against the paper's ImageNot ratios."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from imagenot.cli import main

from .conftest import write_run

WEIGHTS = {"alexnet": "AlexNet", "vgg19": "VGG19", "inception_v3": "Inception_V3", "resnet152": "ResNet152",
           "densenet161": "DenseNet161", "mobilenet_v3_large": "MobileNet_V3_Large",
           "efficientnet_v2_l": "EfficientNet_V2_L", "vit_b_16": "ViT_B_16", "convnext_large": "ConvNeXt_Large"}


def _published_runs(paper_csv: Path, root: Path) -> Path:
    with open(paper_csv, newline="") as fh:
        table = list(csv.DictReader(fh))
    for row in table:
        builder = row["torchvision_builder"]
        run = write_run(root / "evaluate", builder, model=row["model"], year=int(row["year"]), dataset="imagenet-1k",
                        role="reference", top1=float(row["imagenet_top1"]), top5=float(row["imagenet_top5"]),
                        val_images=50_000, num_classes=1000, source="published", epochs=None,
                        weights=f"{WEIGHTS[builder]}_Weights.IMAGENET1K_V1")
        assert not (run / "predictions.parquet").exists()
        write_run(root / "paper", builder, model=row["model"], year=int(row["year"]),
                  dataset="imagenot_ratio_to_alexnet", role="contrast", top1=float(row["imagenot_ratio_to_alexnet"]))
    return root


def test_published_reference_side(paper_csv: Path, tmp_path: Path) -> None:
    root = _published_runs(paper_csv, tmp_path / "runs")
    out = tmp_path / "report"
    assert main(["report", "--runs", str(root), "--out", str(out), "--n-boot", "300"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["reference"] == "imagenet-1k" and stats["main"]["rank"]["kendall_tau"] == pytest.approx(1.0)
    assert stats["datasets"]["imagenet-1k"]["source"] == "published"
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    published = [r for r in rows if r["source"] == "published"]
    assert len(published) == 9 and all(r["dataset"] == "imagenet-1k" for r in published)
    assert {r["source"] for r in rows if r["role"] == "contrast"} == {"trained"}  # no source key: trained
    resnet = next(r for r in published if r["model"] == "ResNet-152")
    assert resnet["weights"] == "ResNet152_Weights.IMAGENET1K_V1"
    assert (resnet["n_val"], float(resnet["chance"])) == ("50000", 0.1)
    md = (out / "report.md").read_text()
    assert ("The imagenet-1k side comes from published weights (AlexNet_Weights.IMAGENET1K_V1 and 8 more): their "
            "published accuracies, not models trained by this tool.") in md
    assert "| ResNet-152 | 2015 | 78.31 (published) |" in md
    assert "| imagenet-1k | reference | 50,000 | 1000 (0.1%) | — | — | published |" in md
    with open(out / "models.csv", newline="") as fh:
        models = {(m["dataset"], m["model"]): m for m in csv.DictReader(fh)}
    alex = models[("imagenet-1k", "AlexNet")]
    assert alex["method"] == "clopper-pearson from n_val" and alex["source"] == "published"
    assert float(alex["ci_low"]) < 56.522 < float(alex["ci_high"]) and float(alex["ci_high"]) - float(
        alex["ci_low"]) < 1.0  # 50,000 images: under a point wide
    assert models[("imagenot_ratio_to_alexnet", "AlexNet")]["ci_low"] == ""  # a ratio has no binomial interval
