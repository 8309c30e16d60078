"""`imagenot demo --quick` end to end: every stage on the embedded data, then a resumed rerun."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagenot.demo.config import PRESETS, DemoConfig
from imagenot.demo.run import stage_keys

NEEDED = [Path("/usr/share/openclipart/svg"), Path("/usr/share/datasets/fashion-mnist")]
REPO = Path(__file__).resolve().parents[2]


def test_stage_keys_change_only_downstream():
    base = stage_keys(DemoConfig())
    later = stage_keys(DemoConfig(epochs=7))
    assert [base[k] == later[k] for k in ("classes", "mine", "download", "zoo", "audit", "report")] == [
        True, True, True, False, False, False]
    earlier = stage_keys(DemoConfig(num_classes=5))
    assert earlier["classes"] == base["classes"] and earlier["mine"] != base["mine"]
    assert earlier["report"] != base["report"]


def test_corpus_choice_reruns_mining_and_after():
    """`corpus`: iconify (the default: enough classes to rank six models), openclipart (the quick preset's), or
    both; a change reruns mine onwards, as does the class choice."""
    base = stage_keys(DemoConfig())
    assert DemoConfig().corpus == "iconify" and PRESETS["quick"]["corpus"] == "openclipart"
    for corpus in ("openclipart", "openclipart+iconify"):
        other = stage_keys(DemoConfig(corpus=corpus))
        assert other["classes"] == base["classes"] and other["mine"] != base["mine"]
        assert other["download"] != base["download"]
    most = stage_keys(DemoConfig(class_choice="most"))
    assert most["classes"] == base["classes"] and most["mine"] != base["mine"]


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "-1"], "demo settings must be positive: epochs=-1"),
    (["--threshold", "1.5"], "is not a cosine similarity"),
    (["--min-per-class", "50", "--max-per-class", "10"], "exceeds max_per_class"),
    (["--models", "resnet9"], "unknown model"),
])
def test_bad_demo_settings_are_refused_before_any_stage(tmp_path: Path, capsys, argv: list[str], message: str):
    from imagenot.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(not all(p.exists() for p in NEEDED), reason="Debian demo data not installed")
def test_demo_quick_end_to_end_and_resume(tmp_path: Path):
    out = tmp_path / "demo"
    exe = [sys.executable, "-m", "imagenot", "demo", "--quick", "--out", str(out)]
    first = subprocess.run(exe, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    for stage in ("classes", "mine", "download", "zoo", "audit", "report", "summary"):
        assert f"[demo] {stage}:" in first.stdout

    report = out / "report"
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html and "Kendall tau" in html
    assert (report / "plots" / "scatter.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(report / "results.csv")))
    models = set(PRESETS["quick"].get("models", DemoConfig().models))
    roles = {(r["model"], r["role"], r["dataset"]) for r in rows}
    assert {m for m, role, _ in roles if role == "reference"} == models
    assert {m for m, role, _ in roles if role == "contrast"} == models
    transfer = [r for r in rows if r["role"] == "transfer"]
    assert len(transfer) == 2 * len(models)
    assert {r["pretrain_dataset"] for r in transfer} == {"fashion-mnist", "clipart-not"}
    assert all(0 <= float(r["top1"]) <= 100 for r in rows)

    card = json.loads((out / "clipart-not" / "dataset.json").read_text())
    classes = [c["wnid"] for c in card["classes"]]
    assert len(classes) >= 2
    from imagenot.wordnet.references import FASHION_MNIST_WNIDS

    assert not set(classes) & set(FASHION_MNIST_WNIDS)
    stats = json.loads((report / "stats.json").read_text())
    assert sorted(stats["main"]["models"]) == sorted(models)
    assert -1 <= stats["main"]["rank"]["kendall_tau"] <= 1

    # a rerun resumes: every stage is skipped and nothing is retrained
    mtime = (report / "results.csv").stat().st_mtime
    second = subprocess.run(exe, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("already done, skipped") == 7
    assert (report / "results.csv").stat().st_mtime == mtime

    # a lost report is rebuilt from the finished runs without retraining
    shutil.rmtree(report)
    third = subprocess.run(exe, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and (report / "report.html").exists()
    assert third.stdout.count("already done, skipped") == 5  # report and the summary of it are rebuilt
    summary = (out / "summary.md").read_text()
    assert summary.startswith("<!-- demo-summary:begin") and "| resnet_s32 |" in summary
    assert (out / "audit" / "audit.json").is_file() and "How unlike is the contrast?" in (report / "report.md").read_text()

    # the README's demo section is this summary, copied between the markers; nothing else changes
    import importlib.util

    from imagenot.demo.summary import BEGIN, END

    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    update_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_readme)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{BEGIN}\nold numbers\n{END}\n\nafter\n")
    assert update_readme.update(out, readme, tmp_path / "docs") == 0
    text = readme.read_text()
    assert text.startswith("intro\n\n") and text.endswith("\n\nafter\n") and "old numbers" not in text
    assert summary.strip() in text
    assert (tmp_path / "docs" / "demo_scatter.png").read_bytes() == (report / "plots" / "scatter.png").read_bytes()


def test_readme_demo_section_is_a_generated_summary():
    """The committed README carries a demo summary (not a placeholder) for the default demo's models."""
    from imagenot.demo.summary import BEGIN, END

    text = (REPO / "README.md").read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert "One run of `imagenot demo`" in block
    for model in DemoConfig().models:
        assert f"| {model} |" in block
    assert (REPO / "docs" / "demo_scatter.png").stat().st_size > 10_000
