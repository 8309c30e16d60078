"""Reading and writing results: long CSV, wide tables, run directories, and the errors for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from imagenot.analysis.results import (
    RESULT_COLUMNS,
    collect_results,
    read_results_csv,
    read_wide_csv,
    write_results_csv,
)
from imagenot.errors import InputError

from .conftest import write_run


def test_collect_results_recursive_and_once_per_run(zoo_dir: Path) -> None:
    rows = collect_results([zoo_dir, zoo_dir / "train"])  # overlapping folders: each run read once
    assert len(rows) == 6 * 3 * 4
    assert set(rows[0]) == set(RESULT_COLUMNS) | {"origin"}
    transfer = [r for r in rows if r["role"] == "transfer"]
    assert len(transfer) == 36 and {r["pretrain_dataset"] for r in transfer} == {"fashion", "clipart"}
    one = next(r for r in rows if r["model"] == "vgg_s" and r["dataset"] == "fashion" and r["seed"] == 1)
    assert one["top1"] == pytest.approx(84.1) and one["year"] == 2014 and one["params"] == 1000
    assert Path(one["run_dir"]).name == "vgg_s-fashion-1"


def test_collect_results_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no result.json"):
        collect_results([tmp_path])
    with pytest.raises(InputError, match="no such file"):
        collect_results([tmp_path / "missing"])
    run = tmp_path / "bad"
    run.mkdir()
    (run / "result.json").write_text(json.dumps({"model": "m", "top1": 3.0}))
    with pytest.raises(InputError, match=r"bad/result.json.*missing key\(s\) dataset; keys found: model, top1"):
        collect_results([tmp_path])
    (run / "result.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable result.json"):
        collect_results([tmp_path])


def test_null_accuracy_and_role_inference(tmp_path: Path) -> None:
    write_run(tmp_path, "a", model="m", dataset="d", top1=None)
    write_run(tmp_path, "b", model="m", dataset="t", pretrain_dataset="d", top1=50.0)
    rows = sorted(collect_results([tmp_path]), key=lambda r: r["dataset"])
    assert math.isnan(rows[0]["top1"]) and rows[0]["role"] is None
    assert rows[1]["role"] == "transfer"  # a run with a pretraining dataset is a transfer run


def test_results_csv_roundtrip(zoo_dir: Path, tmp_path: Path) -> None:
    rows = collect_results([zoo_dir])
    path = write_results_csv(tmp_path / "out" / "results.csv", rows)
    assert path.read_text().splitlines()[0] == ",".join(RESULT_COLUMNS)
    back = read_results_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(rows, back):
        assert {k: a[k] for k in RESULT_COLUMNS} == {k: b[k] for k in RESULT_COLUMNS}
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary file left behind


def test_results_csv_missing_columns_named(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("model,accuracy\nresnet,70\n")
    with pytest.raises(InputError) as err:
        read_results_csv(path)
    message = str(err.value)
    assert "missing column(s) dataset, top1" in message and "columns found: model, accuracy" in message
    assert str(path) in message


def test_results_csv_bad_values_point_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("model,dataset,top1,seed\nresnet,a,70,0\nvgg,a,seventy,0\n")
    with pytest.raises(InputError, match=r"r.csv:3: column 'top1': expected a number, got 'seventy'"):
        read_results_csv(path)
    path.write_text("model,dataset,top1,role\nresnet,a,70,baseline\n")
    with pytest.raises(InputError, match=r"r.csv:2: unknown role 'baseline'"):
        read_results_csv(path)
    path.write_text("model,dataset,top1,seed\nresnet,a,70,1.5\n")
    with pytest.raises(InputError, match="expected an integer"):
        read_results_csv(path)
    path.write_text("model,dataset,top1\nresnet,a,\nvgg,a,none\n")
    rows = read_results_csv(path)
    assert all(math.isnan(r["top1"]) for r in rows)  # an empty cell: a run without a result (noted later)
    for text in ("NaN", "inf", "-Infinity"):
        path.write_text(f"model,dataset,top1\nresnet,a,70\nvgg,a,{text}\n")
        with pytest.raises(InputError, match=rf"r.csv:3: column 'top1': expected a finite number, got '{text}'"):
            read_results_csv(path)


def test_wide_table_to_long_rows(paper_csv: Path) -> None:
    rows = read_wide_csv(paper_csv, model_col="model", reference_col="imagenet_top1",
                         contrast_col="imagenot_ratio_to_alexnet")
    assert len(rows) == 18
    alex = [r for r in rows if r["model"] == "AlexNet"]
    assert {(r["dataset"], r["role"], r["top1"]) for r in alex} == {
        ("imagenet_top1", "reference", 56.522), ("imagenot_ratio_to_alexnet", "contrast", 1.0)}
    assert all(r["year"] == 2012 for r in alex)  # 'year' used without being named
    named = read_wide_csv(paper_csv, reference_col="imagenet_top1", contrast_col="imagenot_ratio_to_alexnet",
                          reference_name="ImageNet", contrast_name="ImageNot (ratio)")
    assert {r["dataset"] for r in named} == {"ImageNet", "ImageNot (ratio)"}


def test_wide_table_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("name,in1k,other\nalexnet,56.5,30\n")
    with pytest.raises(InputError, match="missing column.s. model, contrast; columns found: name, in1k, other"):
        read_wide_csv(path, reference_col="in1k", contrast_col="contrast")
    with pytest.raises(InputError, match="missing column.s. published"):
        read_wide_csv(path, model_col="name", reference_col="in1k", contrast_col="other", year_col="published")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_wide_csv(empty, reference_col="a", contrast_col="b")
