"""Runs whose numbers would be silently wrong: a diverged run, NaN weights, weights for other classes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from imagenot import rundir
from imagenot.checkpoint import load_checkpoint, save_checkpoint
from imagenot.cli import main
from imagenot.models.weights import WeightsError, run_summary
from imagenot.training.trainer import train
from tests.training.training_helpers import quick_config, write_image_folder


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    out = tmp_path_factory.mktemp("div") / "run"
    return out, train(quick_config(out, epochs=3, recipe_overrides={"lr": 1e12}))


def test_a_diverged_run_stops_and_is_recorded_without_accuracies(diverged):
    out, result = diverged
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["status"] == result["status"] == "diverged"
    assert on_disk["top1"] is None and on_disk["top5"] is None  # never chance as if it were a result
    assert on_disk["diverged"]["epoch"] == 1 and on_disk["diverged"]["which"] == "train"
    assert on_disk["diverged"]["loss"] in ("nan", "inf", "-inf")
    assert not (out / "predictions.parquet").exists()
    assert not (out / "metrics.jsonl").exists()  # stopped inside its first epoch: no epoch row with NaN
    with pytest.raises(WeightsError, match="diverged"):
        run_summary(out)  # not a starting point for fine-tuning or evaluation


def test_diverged_run_is_named_by_the_cli_runs_and_the_report(diverged, tmp_path, capsys):
    out, _ = diverged
    assert main(["train", "--config", str(out / "config.json"), "--out", str(out), "-q"]) == 1
    assert "diverged" in capsys.readouterr().err
    assert main(["runs", str(out.parent)]) == 0
    listing = capsys.readouterr().out
    assert "diverged" in listing and "left out of reports" in listing

    from imagenot.analysis.comparison import analyze
    from imagenot.analysis.results import collect_results

    root = tmp_path / "study"
    shutil.copytree(out, root / "bad")
    bad = json.loads((root / "bad" / "result.json").read_text())
    bad.update(dataset="con", role="contrast", top1=25.0)  # even a number recorded with it is not ranked
    (root / "bad" / "result.json").write_text(json.dumps(bad))
    for i, (model, ref, con) in enumerate([("alexnet_s32", 60.0, 40.0), ("vgg_s32", 70, 50), ("resnet_s32", 80, 55)]):
        for ds, role, top1 in (("ref", "reference", ref), ("con", "contrast", con)):
            if model == "alexnet_s32" and ds == "con":
                continue  # the diverged run stands for it
            run = root / f"{model}-{ds}"
            run.mkdir(parents=True)
            (run / "result.json").write_text(json.dumps({"model": model, "dataset": ds, "role": role, "top1": top1,
                                                         "seed": 0, "year": 2012 + i}))
    analysis = analyze(collect_results([root]))
    assert any("diverged" in n and "alexnet_s32 on con" in n for n in analysis.notes)
    assert {"vgg_s32", "resnet_s32"} <= set(analysis.main.models)
    assert "alexnet_s32" not in analysis.main.models


def test_all_nan_weights_evaluate_to_an_error_not_chance(tmp_path, capsys):
    out = tmp_path / "run"
    train(quick_config(out, epochs=1))
    ckpt = load_checkpoint(rundir.checkpoint_path(out))
    for key in ("model", "ema"):
        if ckpt.get(key):
            ckpt[key] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                         for k, v in ckpt[key].items()}
    save_checkpoint(rundir.checkpoint_path(out), ckpt)
    code = main(["evaluate", "--model", "alexnet_s32", "--init", f"run:{out}", "--dataset", "synthetic",
                 "--data-opt", "num_classes=4", "--limit", "32", "--out", str(tmp_path / "eval"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "NaN or infinite" in err and f"run:{out}" in err
    assert not (tmp_path / "eval" / "result.json").exists()


def test_weights_for_other_classes_of_the_same_count_are_refused(tmp_path, capsys):
    data = write_image_folder(tmp_path / "data", {"train": 6, "val": 3})
    other = write_image_folder(tmp_path / "other", {"train": 6, "val": 3})
    for split in ("train", "val"):  # the same number of classes, other ones
        for k in range(3):
            (other / split / f"c{k}").rename(other / split / f"d{k}")
    run = tmp_path / "run"
    train(quick_config(run, dataset=f"imagefolder:{data}", dataset_options={}, epochs=1, batch_size=6))
    common = ["--model", "alexnet_s32", "--init", f"run:{run}", "--limit", "9", "-q"]
    assert main(["evaluate", *common, "--dataset", f"imagefolder:{data}", "--out", str(tmp_path / "same")]) == 0
    assert main(["evaluate", *common, "--dataset", f"imagefolder:{other}", "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert "[c0, c1, c2] (3)" in err and "[d0, d1, d2] (3)" in err and "not among the weights' classes" in err
    assert not (tmp_path / "ev").exists()


def test_evaluating_a_retrained_run_again_is_not_the_old_evaluation(tmp_path, capsys):
    run, ev = tmp_path / "run", tmp_path / "eval"
    train(quick_config(run, epochs=1))
    argv = ["evaluate", "--model", "alexnet_s32", "--init", f"run:{run}", "--dataset", "synthetic", "--data-opt",
            "num_classes=4", "--limit", "32", "--out", str(ev), "-q"]
    assert main(argv) == 0
    first = json.loads((ev / "result.json").read_text())
    assert main(argv) == 0 and json.loads((ev / "result.json").read_text()) == first  # same weights: reused
    train(quick_config(run, epochs=2, force=True))  # the run is retrained with other settings
    assert main(argv) == 2
    assert "init_fingerprint" in capsys.readouterr().err  # not the old evaluation reported as this one's
    assert main([*argv, "--force"]) == 0
    assert json.loads((ev / "result.json").read_text())["fingerprint"] != first["fingerprint"]
    assert main(["evaluate", "--config", str(ev / "config.json"), "--out", str(ev), "-q"]) == 0  # replays
