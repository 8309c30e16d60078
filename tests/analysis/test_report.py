"""Reports and the `imagenot report` command on the paper's table and on run directories the test writes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from imagenot.analysis.comparison import analyze
from imagenot.analysis.report import write_report
from imagenot.analysis.results import read_wide_csv
from imagenot.cli import main

from .conftest import write_run


def _png_ok(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 600 and im.height > 300


def test_cli_wide_paper_table(paper_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paper"
    rc = main(["report", "--results", str(paper_csv), "--wide", "--model-col", "model",
               "--reference-col", "imagenet_top1", "--contrast-col", "imagenot_ratio_to_alexnet",
               "--n-boot", "500", "--out", str(out)])
    assert rc == 0
    assert "report.html" in capsys.readouterr().out
    for name in ("results.csv", "models.csv", "pairs.csv", "stats.json", "report.md", "report.html",
                 "config.json", "manifest.json"):
        assert (out / name).is_file(), name
    stats = json.loads((out / "stats.json").read_text())
    assert stats["main"]["rank"]["kendall_tau"] == pytest.approx(1.0)
    assert stats["main"]["rank"]["spearman_rho"] == pytest.approx(1.0)
    assert stats["main"]["fits"]["ratio"]["r2"] == pytest.approx(0.977, abs=0.005)
    md = (out / "report.md").read_text()
    # human names in paper-table mode; the verdict first, then the scatter, then the tables
    assert md.startswith("# Do model rankings survive the contrast? ImageNot (ratio to AlexNet) vs ImageNet "
                         "top-1 (%)\n\n**The ranking is identical from ImageNet top-1 (%) to ImageNot (ratio to "
                         "AlexNet): Kendall tau = 1.00 over 9 models (permutation p = 5.5e-06); no pair of models "
                         "flips (36 pairs).**\n\n![")
    assert "Kendall tau = 1.00 (p = 5.5e-06, permutation p, all 362,880 orders) over 9 models" in md
    assert "imagenot_ratio_to_alexnet" not in md.split("## Details")[0]
    r2 = stats["main"]["fits"]["ratio"]["r2"]
    assert f"R^2 = {r2:.3f}" in md and "(0 of 36 pairs flip)" in md
    assert "one run per model and dataset" in md  # the single-seed caveat is stated
    assert "No transfer runs" in md
    html = (out / "report.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 3 and all(src.startswith("data:image/png;base64,") for src in images)
    assert html.index('<figure class="lead">') < html.index("<table>")
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    for png in ("scatter", "bump", "relative"):
        _png_ok(out / "plots" / f"{png}.png")
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 18 and rows[0]["role"] == "reference"
    assert {r["dataset"] for r in rows} == {"ImageNet top-1 (%)", "ImageNot (ratio to AlexNet)"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert str(paper_csv) in manifest["inputs"] and len(manifest["inputs"][str(paper_csv)]) == 64


def test_cli_runs_with_transfer_and_rerun_from_config(zoo_dir: Path, tmp_path: Path) -> None:
    write_run(zoo_dir / "train", "vit-fashion-0", model="vit_s", family="vit", year=2020, dataset="fashion",
              role="reference", seed=0, top1=87.0)
    write_run(zoo_dir / "train", "vit-clipart-0", model="vit_s", family="vit", year=2020, dataset="clipart",
              role="contrast", seed=0, top1=None)
    out = tmp_path / "rep"
    assert main(["report", "--runs", str(zoo_dir / "train"), str(zoo_dir / "finetune"), "--out", str(out),
                 "--n-boot", "400", "--seed", "3"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["reference"] == "fashion" and stats["contrast"] == "clipart"
    assert stats["main"]["bootstrap"]["resample"] == "both"
    assert stats["main"]["only_x"] == ["vit_s"]
    (transfer,) = stats["transfer"]
    assert transfer["target"] == "animals" and len(transfer["models"]) == 6
    md = (out / "report.md").read_text()
    assert ("Kendall tau = 0.87 (p = 0.017, permutation p, all 720 orders) over 6 models: the ranking is largely "
            "preserved from fashion to clipart (1 of 15 pairs flips).") in md
    assert md.split("\n")[2] == ("**The ranking is largely preserved from fashion to clipart: Kendall tau = 0.87 "
                                 "over 6 models (permutation p = 0.017); 1 of 15 pairs flips, and without "
                                 "per-image predictions the report cannot test whether it is real.**")
    assert "Flipped pairs: densenet_s > resnet_s on fashion but the reverse on clipart." in md
    assert "## Transfer to animals" in md
    assert "vit_s on clipart seed 0" in md  # the NaN run is reported, not silently dropped
    assert "left out of the paired statistics: vit_s" in md
    assert "The evidence is weak" in md  # 6 models, wide intervals: said plainly
    assert (out / "plots" / "transfer_animals.png").is_file()
    _png_ok(out / "plots" / "transfer_animals.png")
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5  # scatter (also on logit axes), bump, relative, transfer
    assert (out / "plots" / "scatter_logit.png").is_file()
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 3 * 4 + 1 and sum(r["role"] == "transfer" for r in rows) == 36
    assert {r["pretrain_dataset"] for r in rows if r["role"] == "transfer"} == {"fashion", "clipart"}
    # rerun from the written config: same numbers
    again = tmp_path / "again"
    assert main(["report", "--config", str(out / "config.json"), "--out", str(again)]) == 0
    stats2 = json.loads((again / "stats.json").read_text())
    assert stats2["main"]["bootstrap"] == stats["main"]["bootstrap"]
    assert stats2["transfer"][0]["fits"] == transfer["fits"]


def test_cli_bad_input_exits_2_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,acc\nalexnet,50\n")
    assert main(["report", "--results", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "imagenot report: error:" in err and "missing column(s) model, dataset, top1" in err
    assert "columns found: name, acc" in err
    assert main(["report", "--out", str(tmp_path / "o")]) == 2
    assert "--runs" in capsys.readouterr().err
    assert main(["report", "--results", str(bad), "--wide", "--reference-col", "acc", "--out",
                 str(tmp_path / "o")]) == 2
    assert "--contrast-col" in capsys.readouterr().err
    assert not (tmp_path / "o" / "report.html").exists()


def test_report_for_two_models_says_too_few(tmp_path: Path) -> None:
    rows = [{"model": m, "dataset": d, "role": r, "top1": v, "year": y}
            for m, y, a, b in (("alexnet", 2012, 60.0, 30.0), ("resnet", 2015, 70.0, 28.0))
            for d, r, v in (("in", "reference", a), ("not", "contrast", b))]
    paths = write_report(analyze(rows, n_boot=200), tmp_path / "small")
    md = paths["report_md"].read_text()
    assert "Only 2 model(s) have results on both sides" in md
    assert "The two paired models flip their order." in md
    assert "The evidence is weak: only 2 paired model(s): no statistics" in md
    assert "Kendall tau =" not in md and "straight-line fit" not in md
    assert "plot_scatter" in paths and "plot_bump" in paths


def test_write_report_library_api(paper_csv: Path, tmp_path: Path) -> None:
    rows = read_wide_csv(paper_csv, reference_col="imagenet_top1", contrast_col="imagenot_ratio_to_alexnet",
                         reference_name="ImageNet", contrast_name="ImageNot ratio")
    analysis = analyze(rows, n_boot=300)
    paths = write_report(analysis, tmp_path / "lib", title="ImageNot, from the paper's figure")
    md = paths["report_md"].read_text()
    assert md.startswith("# ImageNot, from the paper's figure\n")
    assert "| EfficientNet V2 Large | 2021 | 85.81 | 1 | 1.506 | 1 |" in md  # the rank table
    assert set(paths) >= {"results", "stats", "report_md", "report_html", "manifest", "plot_scatter"}
    assert not list((tmp_path / "lib").rglob(".*.tmp"))


def test_cli_long_csv_without_roles(tmp_path: Path) -> None:
    """A hand-made long CSV: roles named on the command line, fractions declared, seeds resampled."""
    path = tmp_path / "mine.csv"
    lines = ["model,year,dataset,seed,top1"]
    for model, year, ref, con in (("lenet", 1998, 0.50, 0.20), ("alexnet", 2012, 0.60, 0.26),
                                  ("vgg", 2014, 0.70, 0.31), ("resnet", 2015, 0.80, 0.40)):
        for seed, off in ((0, -0.01), (1, 0.01)):
            lines += [f"{model},{year},small,{seed},{ref + off:.3f}", f"{model},{year},odd,{seed},{con + off:.3f}"]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    assert main(["report", "--results", str(path), "--reference", "small", "--contrast", "odd",
                 "--scale", "odd=fraction", "--bootstrap", "seeds", "--baseline", "LeNet", "--n-boot", "300",
                 "--out", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["baseline"] == "lenet"
    assert stats["scales"]["odd"] == {"scale": "fraction", "reason": "declared", "declared": "fraction"}
    assert stats["scales"]["small"]["reason"].startswith("detected")
    assert stats["main"]["x"]["vgg"]["mean"] == pytest.approx(70.0)  # fractions shown in percent
    assert stats["main"]["relative"]["y"]["resnet"] == pytest.approx(0.40 / 0.20)
    assert stats["main"]["bootstrap"]["resample"] == "seeds"
    md = (out / "report.md").read_text()
    assert "only 4 paired models" in md and "read as fractions" in md
    assert "In publication order, 3 of 3 step-to-step changes go in the same direction" in md


def test_human_column_names() -> None:
    from imagenot.analysis.labels import human_column_name

    assert human_column_name("imagenot_ratio_to_alexnet", ["AlexNet", "VGG-19"]) == "ImageNot (ratio to AlexNet)"
    assert human_column_name("imagenet_top1") == "ImageNet top-1 (%)"
    assert human_column_name("imagenet_top5") == "ImageNet top-5 (%)"
    assert human_column_name("cifar10_acc") == "CIFAR-10 accuracy"
    assert human_column_name("ratio_to_resnet_50", ["ResNet-50"]) == "value (ratio to ResNet-50)"
    assert human_column_name("ImageNet (mine)") == "ImageNet (mine)"  # already readable: kept


def test_report_leads_with_the_answer(tmp_path: Path) -> None:
    from .conftest import write_zoo_with_predictions

    root = write_zoo_with_predictions(tmp_path / "study", n_ref=300, n_con=200)
    clipart = root / "datasets" / "clipart"
    clipart.mkdir(parents=True)
    for name in ("README.md", "dataset.json", "contact_sheet.png"):
        (clipart / name).write_text("card")
    out = tmp_path / "out" / "report"
    assert main(["report", "--runs", str(root / "train"), "--out", str(out), "--n-boot", "300"]) == 0
    md = (out / "report.md").read_text()
    lines = md.split("\n")
    assert lines[0] == "# Do model rankings survive the contrast? clipart vs fashion"
    assert lines[2].startswith("**The ranking is largely preserved from fashion to clipart: Kendall tau = 0.87")
    assert lines[4].startswith("![clipart against fashion: one point per model, bars the 95% interval")
    top = md.split("## Which differences are real")[0]
    assert "detected" not in top and "Scales" not in top  # internals live in the details
    assert "read as percent (detected: values above 1)" in md.split("## Details")[1]
    # the table of datasets: n, chance, budget, and links to the card and contact sheet that exist
    row = next(line for line in lines if line.startswith("| clipart | contrast |"))
    assert row.startswith("| clipart | contrast | 200 | 10 (10.0%) | 3 | 1,000 | trained | [card](")
    hrefs = re.findall(r"\]\(([^)]+)\)", row)
    assert [(out / h).resolve() for h in hrefs] == [(clipart / "README.md").resolve(),
                                                    (clipart / "contact_sheet.png").resolve()]
    assert next(line for line in lines if line.startswith("| fashion | reference |")).endswith("|  |  |")
    html = (out / "report.html").read_text()
    assert html.index('<p class="verdict">') < html.index('<figure class="lead">') < html.index("<table>")
    assert '<a href="../../study/datasets/clipart/README.md">card</a>' in html
    with open(out / "results.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert (first["dataset"], first["n_val"], first["chance"], first["epochs"], first["train_images"]) == (
        "clipart", "200", "10.0", "3", "1000")
    assert (out / "plots" / "scatter_logit.png").is_file()


def test_config_json_replays_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "r.csv").write_text("model,year,dataset,role,top1\n" + "".join(
        f"{m},{y},a,reference,{r}\n{m},{y},b,contrast,{c}\n"
        for m, y, r, c in (("alexnet", 2012, 60, 30), ("vgg", 2014, 70, 36), ("resnet", 2015, 80, 41))))
    monkeypatch.chdir(work)
    assert main(["report", "--results", "r.csv", "--out", "rep", "--n-boot", "200"]) == 0
    config = json.loads((work / "rep" / "config.json").read_text())
    assert config["results"] == str(work / "r.csv") and config["out"] == str(work / "rep")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", "--config", str(work / "rep" / "config.json"), "--out", "again"]) == 0
    assert (json.loads((elsewhere / "again" / "stats.json").read_text())["main"]["rank"]
            == json.loads((work / "rep" / "stats.json").read_text())["main"]["rank"])
