"""What the report must not put together: seeds made with other settings, other class counts under one dataset
name, a table naming a column twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagenot.analysis.comparison import analyze
from imagenot.analysis.results import collect_results, read_results_csv
from imagenot.cli import main
from imagenot.errors import InputError
from tests.analysis.conftest import write_zoo


def _patch(run: Path, **fields: object) -> None:
    path = run / "result.json"
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


def _fingerprint_all(root: Path, value: str = "f" * 16) -> None:
    for path in root.rglob("result.json"):
        _patch(path.parent, fingerprint=value)


def test_seeds_with_different_fingerprints_are_not_averaged(tmp_path: Path) -> None:
    root = write_zoo(tmp_path / "runs", transfer=False)
    _fingerprint_all(root)
    analyze(collect_results([root]))  # one experiment per model and dataset: fine
    _patch(root / "train" / "vgg_s-clipart-2", fingerprint="0123456789abcdef")  # trained with another recipe
    with pytest.raises(InputError) as err:
        analyze(collect_results([root]))
    message = str(err.value)
    assert "vgg_s on clipart" in message and "0123456789abcdef" in message and "f" * 16 in message
    assert "vgg_s-clipart-2" in message and "not averaged" in message
    (root / "train" / "vgg_s-clipart-0" / "config.json").write_text(json.dumps({"model": "vgg_s", "epochs": 3,
                                                                             "seed": 0, "threads": 1}))
    (root / "train" / "vgg_s-clipart-2" / "config.json").write_text(json.dumps({"model": "vgg_s", "epochs": 5,
                                                                             "seed": 2, "threads": 4}))
    with pytest.raises(InputError, match=r"settings that differ: epochs 3 vs 5\)"):
        analyze(collect_results([root]))  # the seed and the thread count are not the difference


def test_runs_without_fingerprints_are_averaged_with_a_note(tmp_path: Path) -> None:
    root = write_zoo(tmp_path / "runs", transfer=False)
    notes = analyze(collect_results([root])).notes
    assert any("without a run fingerprint" in n and "vgg_s on clipart" in n for n in notes)
    _fingerprint_all(root)
    assert not any("run fingerprint" in n for n in analyze(collect_results([root])).notes)


def test_mixed_class_counts_under_one_dataset_name_are_refused(tmp_path: Path) -> None:
    root = write_zoo(tmp_path / "runs", seeds=(0,), transfer=False)
    for path in root.rglob("result.json"):
        _patch(path.parent, num_classes=10)
    analyze(collect_results([root]))
    _patch(root / "train" / "resnet_s-clipart-0", num_classes=100)  # another task under the name 'clipart'
    with pytest.raises(InputError, match=r"dataset clipart holds runs with different class counts") as err:
        analyze(collect_results([root]))
    assert "10 classes" in str(err.value) and "100 classes" in str(err.value)
    assert "resnet_s-clipart-0" in str(err.value)


def test_a_csv_naming_top1_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "results.csv"
    table.write_text("model,dataset,role,top1,top1\nvgg,a,reference,70,10\nvgg,b,contrast,50,60\n")
    with pytest.raises(InputError, match=r"results.csv:1: the header names a column more than once") as err:
        read_results_csv(table)
    assert "'top1' in columns 4, 5" in str(err.value)
    assert main(["report", "--results", str(table), "--out", str(tmp_path / "rep")]) == 2
    assert "more than once" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_an_old_diverged_run_at_chance_is_not_ranked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs written before result.json had a status: a NaN loss with a chance-level top-1 is a divergence."""
    root = write_zoo(tmp_path / "runs", seeds=(0,), transfer=False)
    assert "vgg_s" in analyze(collect_results([root])).main.models
    run = root / "train" / "vgg_s-clipart-0"
    data = json.loads((run / "result.json").read_text())
    data.update(top1=10.0, train_loss=float("nan"), val_loss=float("nan"), num_classes=10)
    (run / "result.json").write_text(json.dumps(data))  # json writes NaN as the trainer did
    analysis = analyze(collect_results([root]))
    assert any("diverged" in n and "vgg_s on clipart" in n for n in analysis.notes)
    assert "vgg_s" not in analysis.main.models
    assert main(["runs", str(root)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "vgg_s-clipart-0" in x)
    assert "diverged" in line and "left out of reports" in line
