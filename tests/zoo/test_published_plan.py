"""The cheapest faithful study plan: a published reference side (torchvision's numbers), a contrast side
trained from scratch, and transfer fine-tuned from both, run to a report. Random weights saved where
torchvision caches its downloads stand in for the published files (no network)."""

import json
import shlex
from pathlib import Path

import pytest
import torch
import torchvision

from imagenot.analysis.config import ReportConfig
from imagenot.analysis.pipeline import run_report
from imagenot.models import weights as W
from imagenot.zoo import commands, plan_from_mapping, run_zoo

MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small"]


@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for i, name in enumerate(MODELS):
        torch.manual_seed(i)
        path = W.cached_weights_path(W.resolve_torchvision(name, None))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(getattr(torchvision.models, name)().state_dict(), path)
    return tmp_path / "torch-home"


def _plan(out: Path) -> dict:
    return {
        "out": str(out), "models": MODELS, "seeds": [0], "epochs": 1, "batch_size": 16, "image_size": 32,
        "threads": 1, "progress": False, "workers": 0,
        "datasets": [
            {"source": "published", "name": "imagenet"},
            {"spec": "synthetic", "name": "contrast", "role": "contrast", "options": {"num_classes": 4, "n": 96}},
        ],
        "transfer": [{"spec": "synthetic", "name": "target", "options": {"num_classes": 3, "seed": 5, "n": 60},
                      "modes": ["full"], "epochs": 1, "batch_size": 16}],
    }


def test_published_reference_and_trained_contrast_run_to_a_report(torch_home: Path, tmp_path: Path):
    plan = plan_from_mapping(_plan(tmp_path / "zoo"))
    printed = commands(plan, "torchrun")
    lines = [shlex.split(line) for line in printed.splitlines() if not line.startswith("#")]
    assert len(lines) == 3 + 3 + 6
    published = [a for a in lines if "--published" in a]
    assert len(published) == 3 and all(a[:4] == ["python", "-m", "imagenot", "evaluate"] for a in published)
    from_weights = [a for a in lines if "finetune" in a and a[a.index("--init") + 1] == "torchvision"]
    assert len(from_weights) == 3 and all("--pretrain-name" in a for a in from_weights)

    results = run_zoo(plan)
    by_dir = {Path(r["run_dir"]).relative_to(tmp_path / "zoo").as_posix(): r for r in results}
    for model in MODELS:
        pub = by_dir[f"imagenet/{model}/published"]
        assert pub["source"] == "published" and pub["top1"] == W.published_metrics(model)["top1"]
        ft = by_dir[f"transfer/target/full/from-imagenet/{model}/seed0"]
        assert ft["pretrain_dataset"] == "imagenet" and ft["init"] == "torchvision"
        assert ft["weights"]["identity"].endswith("IMAGENET1K_V1") and ft["role"] == "transfer"
        own = by_dir[f"transfer/target/full/from-contrast/{model}/seed0"]
        assert own["pretrain_dataset"] == "contrast" and own["init"].startswith("run:")
    report = tmp_path / "report"
    paths = run_report(ReportConfig(runs=(str(tmp_path / "zoo"),), out=str(report), n_boot=200))
    stats = json.loads(Path(paths["stats"]).read_text())
    assert sorted(stats["main"]["models"]) == sorted(MODELS)
    assert stats["reference"] == "imagenet" and stats["contrast"] == "contrast"
    assert [t["target"] for t in stats["transfer"]] == ["target"]
    assert "published" in (report / "report.md").read_text()
    # a rerun finds everything finished and trains nothing
    stamps = {d: (tmp_path / "zoo" / d / "result.json").stat().st_mtime_ns for d in by_dir}
    run_zoo(plan)
    assert {d: (tmp_path / "zoo" / d / "result.json").stat().st_mtime_ns for d in by_dir} == stamps
