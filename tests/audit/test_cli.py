"""`imagenot audit` end to end: the files, the summary, reruns, and refusals that write nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagenot.cli import main
from imagenot.fileio import read_json

from .conftest import ALSO_NAMES

QUICK = ["--image-size", "16", "--samples-per-dataset", "40", "--epochs", "2", "--min-steps", "20",
         "--batch-size", "16", "--threads", "1", "--no-progress"]


@pytest.mark.slow
def test_full_audit_of_a_downloaded_contrast(contrast_wds: Path, contrast_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit"
    rc = main(["audit", "--reference", "synthetic", "--reference-classes", "fashion-mnist",
               "--contrast", f"wds:{contrast_wds}", "--contrast-run", str(contrast_run), "--out", str(out),
               "--sheet-per-class", "3", *QUICK])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "class level: 0 shared wnids" in printed and "likely label errors" in printed
    for name in ("audit.json", "audit.md", "config.json", "manifest.json", "contact_sheet.png",
                 "plots/lexnames.png", "plots/path_distance.png", "plots/image_samples.png",
                 "plots/image_statistics.png", "plots/statistic_accuracy.png", "plots/similarity.png",
                 "plots/label_issues.png"):
        assert (out / name).is_file(), name
    audit = read_json(out / "audit.json")
    s = audit["summary"]
    assert set(s) == {"class_level", "image_level", "label_level"}
    assert set(s["class_level"]) == {"wnid_overlap", "lemma_overlap", "ancestors", "descendants",
                                     "mean_path_distance"}
    assert set(s["image_level"]) == {"accuracy", "ci_low", "ci_high", "n_test", "model", "best_statistic",
                                     "best_statistic_accuracy"}
    assert set(s["label_level"]) == {"median_similarity", "multi_lemma_share", "label_issues",
                                     "label_issues_checked"}
    assert all(v is not None for level in s.values() for v in level.values()), s
    assert s["class_level"]["wnid_overlap"] == 0 and s["image_level"]["n_test"] == 24
    assert s["label_level"]["multi_lemma_share"] == pytest.approx(len(ALSO_NAMES) / 60)
    assert s["label_level"]["label_issues_checked"] == 15 and s["label_level"]["label_issues"] >= 2
    # the synthetic reference records no original sizes per file, but has one native size
    assert audit["image_level"]["reference"]["original_size_source"] == "native array size"
    assert audit["image_level"]["contrast"]["original_size_source"] == "samples' orig_width/orig_height"
    md = (out / "audit.md").read_text()
    acc = audit["image_level"]["classifier"]
    assert f"{100 * acc['accuracy']:.1f}% (95% CI {100 * acc['ci_low']:.1f}-{100 * acc['ci_high']:.1f}" in md
    assert "Likely label errors" in md and "contact_sheet.png" in md
    with Image.open(out / "contact_sheet.png") as im:
        assert im.width > 3 * 100 and im.height > 3 * 100
    cfg = read_json(out / "config.json")
    assert cfg["contrast"] == f"wds:{contrast_wds.resolve()}" and Path(cfg["out"]).is_absolute()
    manifest = read_json(out / "manifest.json")
    assert "contrast_run_checkpoint" in manifest["inputs"]

    # a rerun from config.json reuses every finished level and gives the same numbers
    assert main(["audit", "--config", str(out / "config.json")]) == 0
    again = read_json(out / "audit.json")
    assert again["reused_levels"] == ["class", "image", "label"] and again["summary"] == s
    # a changed image-level setting recomputes that level only
    assert main(["audit", "--config", str(out / "config.json"), "--seed", "1"]) == 0
    assert read_json(out / "audit.json")["reused_levels"] == ["class"]


def test_class_level_alone_from_class_sets(contrast_wds: Path, tmp_path: Path) -> None:
    out = tmp_path / "classes-only"
    rc = main(["audit", "--reference-classes", "fashion-mnist", "--contrast-classes",
               str(contrast_wds / "classes.tsv"), "--out", str(out)])
    assert rc == 0
    audit = read_json(out / "audit.json")
    assert audit["image_level"] is None and audit["label_level"] is None
    assert audit["summary"]["image_level"]["accuracy"] is None
    assert "no images" in audit["skipped"]["image"]
    assert audit["class_level"]["contrast"]["count"] == 3


def _refused(args: list[str], out: Path, capsys: pytest.CaptureFixture[str], match: str) -> None:
    rc = main(["audit", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert match in err and "Traceback" not in err
    assert not out.exists()


def test_bad_inputs_exit_2_and_write_nothing(contrast_wds: Path, contrast_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    _refused(["--reference", "fashion-mnistt", "--contrast", f"wds:{contrast_wds}"], out, capsys,
             "unknown reference dataset spec 'fashion-mnistt'")
    _refused(["--reference", "imagenet-1k", "--contrast", f"wds:{contrast_wds}"], out, capsys,
             "--reference-classes imagenet-1k")
    _refused(["--reference", "synthetic", "--contrast", "synthetic", "--contrast-run", str(contrast_run)], out,
             capsys, "trained on")
    _refused(["--reference", "synthetic", "--contrast", f"wds:{tmp_path / 'missing'}"], out, capsys,
             "not found")
    empty = tmp_path / "empty"
    for c in ("a", "b"):
        (empty / c).mkdir(parents=True)
    _refused(["--reference", "synthetic", "--contrast", f"imagefolder:{empty}", "--levels", "image"], out,
             capsys, "class folder(s) 'a', 'b' hold no image file")  # refused at load, like torchvision
    _refused(["--reference", "synthetic", "--contrast", "synthetic", "--model", "resnet_s33"], out, capsys,
             "unknown model 'resnet_s33'")
    _refused([], out, capsys, "nothing to compare")
    _refused(["--reference", "synthetic", "--contrast", "synthetic", "--levels", "pixels"], out, capsys,
             "not one of class, image, label")
    _refused(["--reference-classes", "fashion-mnist", "--contrast-classes", str(tmp_path / "nope.txt")], out,
             capsys, "unknown class set")


def test_help_shows_examples_and_imports_no_torch() -> None:
    code = ("import sys; from imagenot.cli import build_parser; p = build_parser(); "
            "print(int('torch' in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "0"
    res = subprocess.run([sys.executable, "-m", "imagenot", "audit", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.count("imagenot audit --") >= 2
    assert "--reference-classes imagenet-1k" in res.stdout and "--contrast-run" in res.stdout


def test_null_audit_of_one_dataset(tmp_path: Path) -> None:
    out = tmp_path / "null"
    assert main(["audit", "--reference", "synthetic", "--contrast", "synthetic", "--out", str(out),
                 "--levels", "image", *QUICK]) == 0
    audit = json.loads((out / "audit.json").read_text())
    s = audit["summary"]["image_level"]
    section = audit["image_level"]
    assert section["same_dataset"] and section["reference"]["drawn"] == section["contrast"]["drawn"] == 40
    assert s["ci_low"] <= 0.5 <= s["ci_high"], s
    assert np.isclose(section["chance"], 0.5)
    assert "disjoint random halves" in (out / "audit.md").read_text()


def test_every_config_field_has_a_flag_and_a_help_text() -> None:
    import argparse
    import dataclasses

    from imagenot.audit.config import AuditConfig
    from imagenot.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest for a in sub.choices["audit"]._actions}
    for f in dataclasses.fields(AuditConfig):
        assert len(f.metadata.get("help", "")) > 20, f.name
        assert (f.name in dests) == f.metadata.get("cli", True), f.name
