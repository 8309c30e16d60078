"""Issue 25 (unsafe): model and dataset names from run folders reach report.md, report.html, the CSVs and
the plots; there they must stay text (no HTML, no spreadsheet formula, no mathtext, no broken table)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from imagenot.analysis.results import read_results_csv
from imagenot.cli import main

from .conftest import write_run

MODELS = ["=HYPERLINK(\"http://evil\",\"x\")", "<img src=x onerror=alert(1)>", "pipe|name", "$x_1^$",
          "-1+2", "@cmd", "plain_s", "<script>alert(1)</script>"]
TOP1 = [(80.0, 40.0), (84.0, 44.0), (88.0, 47.0), (89.0, 46.0), (90.0, 50.0), (91.0, 52.0), (86.0, 49.0),
        (87.0, 45.0)]


def _runs(root: Path) -> Path:
    for i, (model, (ref, con)) in enumerate(zip(MODELS, TOP1)):
        for seed, off in enumerate((-0.3, 0.2)):
            common = {"model": model, "family": f"fam{i}", "year": 2010 + i, "seed": seed}
            write_run(root, f"m{i}-ref-{seed}", dataset="<b>ref</b>", role="reference", top1=ref + off, **common)
            write_run(root, f"m{i}-con-{seed}", dataset="con|trast", role="contrast", top1=con + off, **common)
    return root


def test_report_outputs_show_hostile_names_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _runs(tmp_path / "runs")
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--n-boot", "200", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "<img" not in md and "<b>" not in md
    assert "&lt;img src=x onerror=alert(1)>" in md and "pipe&#124;name" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table and all(line.count(" | ") == table[0].count(" | ") for line in table[:2])
    html = (out / "report.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # inert text
    for name in ("results.csv", "models.csv", "pairs.csv"):
        with open(out / name, newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        formulas = [c for c in cells if c.startswith(("=", "+", "@")) or (c.startswith("-") and not _number(c))]
        assert not formulas, (name, formulas)
        if name != "pairs.csv":  # pairs need per-image predictions, which these runs do not have
            assert any(c == "'" + MODELS[0] for c in cells), name
    back = {r["model"] for r in read_results_csv(out / "results.csv")}
    assert back == set(MODELS)  # the project's own reader reads back what was written
    assert {r["dataset"] for r in read_results_csv(out / "results.csv")} == {"<b>ref</b>", "con|trast"}
    assert sorted(p.name for p in (out / "plots").glob("*.png"))  # drawn despite "$x_1^$"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_report_never_replaces_its_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _runs(tmp_path / "runs")
    run = runs / "m0-ref-0"
    for folder in (run, runs):  # run and zoo folders with a manifest.json look like an earlier report
        (folder / "manifest.json").write_text("{}")
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    for out in (run, runs):
        rc = main(["report", "--runs", str(runs), "--n-boot", "200", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and "contains the input" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before


def test_runs_csv_neutralises_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _runs(tmp_path / "runs")
    assert main(["runs", str(runs), "--csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert {r["model"] for r in rows} == {m if m[0] not in "=-+@" else "'" + m for m in MODELS}
    assert all(_number(r["top1"]) for r in rows)


def test_report_links_cannot_become_script_urls() -> None:
    from imagenot.analysis.blocks import Link, Links, render_html, render_markdown

    blocks = [Links("see", (Link("card", "javascript:alert(1)/README.md"), Link("x", 'a b"><script>/c.md')))]
    html = render_html(blocks, "t")
    assert 'href="javascript:' not in html and "<script" not in html
    assert 'href="javascript%3Aalert%281%29/README.md"' in html  # a relative path, as the link always meant
    md = render_markdown(blocks, Path("."))
    assert "](javascript:" not in md and "<script" not in md


def test_runs_table_shows_control_characters_as_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "r0", model="evil\x1b]0;pwned\x07\nr9  forged-model", dataset="ds\rX", role="reference",
              top1=50.0)
    write_run(runs, "r1", model="plain", dataset="ds", role="reference", top1=40.0)
    assert main(["runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 4  # header, two runs, the count: no forged row
    assert "evil\\x1b]0;pwned\\x07\\nr9  forged-model" in lines[1] and "ds\\rX" in lines[1]
