"""Impossible accuracies, binary files and failures while writing: refused by name, nothing written or lost."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from imagenot.analysis import plots
from imagenot.analysis.comparison import analyze
from imagenot.analysis.report import write_report
from imagenot.cli import main

from .conftest import write_run

GOOD = "model,year,dataset,role,top1\n" + "".join(
    f"{m},{y},ref,reference,{r}\n{m},{y},con,contrast,{c}\n"
    for m, y, r, c in (("alexnet", 2012, 56.5, 30.1), ("vgg", 2014, 72.4, 38.0), ("resnet", 2015, 78.3, 40.2)))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    good = root / "good.csv"
    good.write_text(GOOD)
    out = root / "report"
    assert main(["report", "--results", str(good), "--out", str(out), "--n-boot", "200"]) == 0
    return out


@pytest.fixture
def old_report(tmp_path: Path, built_report: Path) -> Path:
    """A finished report that every failed rerun below must leave exactly as it was."""
    out = tmp_path / "report"
    shutil.copytree(built_report, out)
    return out


def _refused(argv: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = _snapshot(out) if out.exists() else None
    siblings = sorted(p.name for p in out.parent.iterdir())
    assert main([*argv, "--out", str(out), "--n-boot", "200"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imagenot report: error: ") and "Traceback" not in err
    assert (_snapshot(out) if out.exists() else None) == before  # the old report is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == siblings  # no temporary folder left
    return err


@pytest.mark.parametrize(("value", "message"), [
    ("150", r"bad.csv:7: top1 of resnet on con is 150.0, outside \[0, 100\] for a percent scale"),
    ("-3", r"bad.csv:7: top1 of resnet on con is -3.0, outside \[0, 100\]"),
    ("inf", r"bad.csv:7: column 'top1': expected a finite number, got 'inf'"),
    ("-Infinity", r"bad.csv:7: column 'top1': expected a finite number, got '-Infinity'"),
    ("NaN", r"bad.csv:7: column 'top1': expected a finite number, got 'NaN' \(leave the cell empty"),
    ("forty", r"bad.csv:7: column 'top1': expected a number, got 'forty'"),
])
def test_impossible_accuracies_in_a_csv_are_refused_with_the_row(
    tmp_path: Path, old_report: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD.replace("resnet,2015,con,contrast,40.2", f"resnet,2015,con,contrast,{value}"))
    err = _refused(["report", "--results", str(bad)], old_report, capsys)
    assert re.search(message, err), err
    assert not (tmp_path / "fresh").exists()
    assert main(["report", "--results", str(bad), "--out", str(tmp_path / "fresh")]) == 2
    assert not (tmp_path / "fresh").exists()  # nothing created for a refused input


def test_scales_are_checked_per_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frac = tmp_path / "frac.csv"
    frac.write_text("model,dataset,role,top1\na,ref,reference,0.5\nb,ref,reference,0.6\nc,ref,reference,0.7\n"
                    "a,con,contrast,0.2\nb,con,contrast,0.3\nc,con,contrast,-0.1\n")
    err = _refused(["report", "--results", str(frac)], tmp_path / "out", capsys)
    assert "frac.csv:7: top1 of c on con is -0.1, outside [0, 1] for a fraction scale" in err
    wide = tmp_path / "wide.csv"
    wide.write_text("model,year,in1k,ratio_to_a\na,2012,56.5,1.0\nb,2014,72.4,0\nc,2015,78.3,1.3\n")
    err = _refused(["report", "--results", str(wide), "--wide", "--reference-col", "in1k", "--contrast-col",
                    "ratio_to_a"], tmp_path / "out", capsys)
    assert "wide.csv:3: top1 of b on value (ratio to a) is 0.0: a ratio to a baseline must be above 0" in err


def test_binary_and_undecodable_files(tmp_path: Path, old_report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "plot.png"
    png.write_bytes((old_report / "plots" / "scatter.png").read_bytes())
    err = _refused(["report", "--results", str(png)], old_report, capsys)
    assert f"{png}: a binary file, not a CSV table" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("model,dataset,top1\nréseau,ref,70\n".encode("latin-1"))
    err = _refused(["report", "--results", str(latin)], old_report, capsys)
    assert f"{latin}: not a UTF-8 text CSV" in err


def test_infinite_accuracy_in_a_run_leaves_the_old_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    for m, y, r, c in (("alexnet", 2012, 56.5, 30.1), ("vgg", 2014, 72.4, 38.0), ("resnet", 2015, 78.3, 40.2)):
        write_run(runs, f"{m}-ref", model=m, year=y, dataset="ref", role="reference", top1=r)
        write_run(runs, f"{m}-con", model=m, year=y, dataset="con", role="contrast", top1=c)
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--n-boot", "200"]) == 0
    data = json.loads((runs / "vgg-con" / "result.json").read_text())
    data["top1"] = float("inf")
    (runs / "vgg-con" / "result.json").write_text(json.dumps(data))  # json writes Infinity
    err = _refused(["report", "--runs", str(runs)], out, capsys)
    assert f"{runs / 'vgg-con' / 'result.json'}: top1 of vgg on con is inf: not a finite number" in err
    data["top1"] = float("nan")  # a diverged run: left out with a note, as before
    (runs / "vgg-con" / "result.json").write_text(json.dumps(data))
    assert main(["report", "--runs", str(runs), "--out", str(out), "--n-boot", "200"]) == 0
    assert "vgg on con seed 0" in (out / "report.md").read_text()


def test_a_failure_while_writing_leaves_the_old_report(tmp_path: Path, old_report: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(old_report)
    rows = [{"model": m, "dataset": d, "role": r, "top1": v} for m, a, b in (("x", 50, 20), ("y", 60, 30),
                                                                               ("z", 70, 25))
            for d, r, v in (("ref", "reference", a), ("con", "contrast", b))]
    analysis = analyze(rows, n_boot=200)

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr(plots, "render_all", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(analysis, old_report)
    assert _snapshot(old_report) == before
    assert sorted(p.name for p in old_report.parent.iterdir() if p.name.startswith(".")) == []


def test_an_out_folder_that_is_not_a_report_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    err = _refused(["report", "--results", str(good)], home, capsys)
    assert "a folder that is not a report" in err
    assert (home / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--results", str(good), "--out", str(empty), "--n-boot", "200"]) == 0
    assert (empty / "report.html").is_file()
    assert oct((empty / "report.html").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert oct(empty.stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
