"""`imagenot runs DIR`: finished, partial and failed runs from the files a run directory holds."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from imagenot.cli import main


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def _metrics(run: Path, epochs: int, torn: bool = False) -> None:
    lines = [json.dumps({"epoch": e + 1, "top1": 40.0 + e, "time_s": 10.0 + e}) for e in range(epochs)]
    _write(run / "metrics.jsonl", "\n".join(lines) + ("\n{\"epoch\": " if torn else "\n"))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    done = root / "zoo" / "resnet_s32-clipart-0"
    _write(done / "config.json", {"model": "resnet_s32", "dataset": "wds:/data/clipart-not", "role": "contrast",
                                  "seed": 0, "epochs": 3})
    _metrics(done, 3)
    _write(done / "checkpoints" / "last.pt", "x")
    _write(done / "result.json", {"model": "resnet_s32", "dataset": "clipart-not", "role": "contrast", "seed": 0,
                                  "top1": 71.25, "epochs": 3, "wall_time_s": 95.0})
    part = root / "zoo" / "vgg_s32-fashion-1"
    _write(part / "config.json", {"model": "vgg_s32", "dataset": "fashion-mnist", "role": "reference", "seed": 1,
                                  "epochs": None})
    _write(part / "manifest.json", {"recipe": {"epochs": 5}})
    _metrics(part, 2, torn=True)
    _write(part / "checkpoints" / "last.pt", "x")
    _write(root / "zoo" / "alexnet_s32-fashion-0" / "config.json",
           {"model": "alexnet_s32", "dataset": "fashion-mnist", "role": "reference", "seed": 0, "epochs": 4})
    broken = root / "zoo" / "densenet_s32-fashion-0"
    _write(broken / "config.json", {"model": "densenet_s32", "dataset": "fashion-mnist", "seed": 0, "epochs": 4})
    _write(broken / "result.json", "{truncated")
    _write(root / "published" / "resnet152" / "result.json",
           {"model": "resnet152", "dataset": "imagenet-1k", "role": "reference", "seed": 0, "top1": 78.312,
            "source": "published", "weights": "ResNet152_Weights.IMAGENET1K_V1"})
    _write(root / "report" / "config.json", {"out": "report"})  # a report folder is not a run
    _write(root / "report" / "report.md", "# report")
    return root


def test_runs_table_csv_and_json(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "model", "dataset", "role", "seed", "status", "epochs", "top-1", "wall",
                                "note"]
    body = {line.split()[0]: line for line in lines[1:-1]}
    assert list(body) == ["published/resnet152", "zoo/alexnet_s32-fashion-0", "zoo/densenet_s32-fashion-0",
                          "zoo/resnet_s32-clipart-0", "zoo/vgg_s32-fashion-1"]
    assert body["zoo/resnet_s32-clipart-0"].split()[1:9] == ["resnet_s32", "clipart-not", "contrast", "0",
                                                            "finished", "3/3", "71.25", "95"]
    assert body["zoo/vgg_s32-fashion-1"].split()[5:7] == ["partial", "2/5"] and "resume with --resume" in body["zoo/vgg_s32-fashion-1"]
    assert "failed" in body["zoo/alexnet_s32-fashion-0"] and "no checkpoint and no result" in body[
        "zoo/alexnet_s32-fashion-0"]
    assert "failed" in body["zoo/densenet_s32-fashion-0"] and "result.json unreadable" in body[
        "zoo/densenet_s32-fashion-0"]
    assert lines[-1] == "5 run(s): 2 finished, 1 partial, 2 failed"

    assert main(["runs", str(runs), "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by_run = {r["run"]: r for r in table}
    assert by_run["zoo/vgg_s32-fashion-1"]["epochs_done"] == "2" and by_run["zoo/vgg_s32-fashion-1"][
        "epochs_total"] == "5"
    assert float(by_run["zoo/vgg_s32-fashion-1"]["wall_time_s"]) == 21.0  # the epochs it finished
    assert by_run["published/resnet152"]["source"] == "published" and by_run["published/resnet152"]["status"] == (
        "finished")
    assert by_run["zoo/alexnet_s32-fashion-0"]["dataset"] == "fashion-mnist"

    assert main(["runs", str(runs), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["status"] for d in data] == ["finished", "failed", "failed", "finished", "partial"]
    assert data[3]["top1"] == 71.25 and data[4]["top1"] is None


def test_runs_bad_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    assert main(["runs", str(tmp_path)]) == 0
    assert "no runs under" in capsys.readouterr().out


def test_dataset_mine_and_audit_folders_are_not_runs(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Folders of other stages hold a config.json too; `runs` lists only run folders, not them as failed."""
    _write(runs / "data" / "clipart-not" / "config.json", {"matches": "m.parquet", "classes": "c.tsv",
                                                            "out": "clipart-not", "seed": 0})
    _write(runs / "data" / "clipart-not" / "dataset.json", {"name": "clipart-not"})
    _write(runs / "mine" / "config.json", {"corpus": "laion", "classes": "c.tsv", "encoder": "mini", "out": "mine"})
    _write(runs / "mine" / "mine_stats.json", {})
    _write(runs / "audit" / "config.json", {"reference": "wds:a", "contrast": "wds:b", "model": "resnet_s32",
                                            "epochs": 2, "seed": 0})
    assert main(["runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "data/clipart-not" not in out and "mine" not in out.split("\n", 1)[1] and "audit" not in out
    assert out.splitlines()[-1] == "5 run(s): 2 finished, 1 partial, 2 failed"
