"""Shared fixtures: run directories written per the result.json contract, and the paper's reference table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

PAPER = Path("/work/shared/reference/paper_results.csv")

# model, family, year, reference top-1, contrast top-1, transfer top-1 pretrained on reference / on contrast
ZOO = [
    ("alexnet_s", "alexnet", 2012, 80.0, 40.0, 60.0, 50.0),
    ("vgg_s", "vgg", 2014, 84.0, 44.0, 64.0, 53.0),
    ("resnet_s", "resnet", 2015, 88.0, 47.0, 68.0, 57.0),
    ("densenet_s", "densenet", 2016, 89.0, 46.0, 69.0, 56.0),  # flips with resnet_s on the contrast
    ("efficientnet_s", "efficientnet", 2019, 90.0, 50.0, 71.0, 59.0),
    ("convnext_s", "convnext", 2022, 91.0, 52.0, 72.0, 61.0),
]
SEED_OFFSETS = (-0.4, 0.1, 0.3)  # per-seed deviations, so each model has a mean and a spread


def write_run(root: Path, name: str, **fields: object) -> Path:
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    result = {
        "model": None, "family": None, "year": None, "dataset": None, "role": None, "pretrain_dataset": None,
        "pretrain_run": None, "pretrain_top1": None, "seed": 0, "top1": None, "top5": None, "epochs": 3,
        "wall_time_s": 1.5, "params": 1000, "flops": 2.0e6, "environment": {"python": "3.11"},
    }
    result.update(fields)
    (run / "result.json").write_text(json.dumps(result), encoding="utf-8")
    (run / "metrics.jsonl").write_text("", encoding="utf-8")
    return run


def write_zoo(root: Path, seeds: tuple[int, ...] = (0, 1, 2), transfer: bool = True) -> Path:
    """A small study: 6 models x (fashion, clipart) x seeds, plus fine-tuning on 'animals' from each."""
    for model, family, year, ref, con, t_ref, t_con in ZOO:
        for s in seeds:
            off = SEED_OFFSETS[s % len(SEED_OFFSETS)]
            common = {"model": model, "family": family, "year": year, "seed": s}
            write_run(root / "train", f"{model}-fashion-{s}", dataset="fashion", role="reference",
                      top1=ref + off, top5=99.0, **common)
            write_run(root / "train", f"{model}-clipart-{s}", dataset="clipart", role="contrast",
                      top1=con + off, top5=80.0, **common)
            if transfer:
                write_run(root / "finetune", f"{model}-animals-from-fashion-{s}", dataset="animals",
                          role="transfer", pretrain_dataset="fashion", top1=t_ref + off, **common)
                write_run(root / "finetune", f"{model}-animals-from-clipart-{s}", dataset="animals",
                          role="transfer", pretrain_dataset="clipart", top1=t_con + off, **common)
    return root


@pytest.fixture
def zoo_dir(tmp_path: Path) -> Path:
    return write_zoo(tmp_path / "runs")


@pytest.fixture
def paper_csv() -> Path:
    if not PAPER.exists():
        pytest.skip(f"reference table {PAPER} is absent (shared reference data not mounted)")
    return PAPER


def write_predictions_file(run_dir: Path, correct: np.ndarray, *, n_classes: int = 10, seed: int = 0,
                           keys: list[str] | None = None, labels: np.ndarray | None = None) -> Path:
    """A predictions.parquet whose top-1 hits are exactly `correct` (labels and keys fixed per split)."""
    from imagenot.predictions import FILENAME, write_predictions

    n = correct.size
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes if labels is None else labels
    keys = keys if keys is not None else [f"img{i:05d}" for i in range(n)]
    top1 = np.where(correct, labels, (labels + 1) % n_classes)
    top5 = np.column_stack([top1] + [(top1 + k) % n_classes for k in range(1, 5)])
    return write_predictions(run_dir / FILENAME, index=np.arange(n), keys=keys, labels=labels, top5=top5,
                             p_label=rng.random(n).astype(np.float32), meta={"split": "val"})


def correct_vector(difficulty: np.ndarray, accuracy: float, rng: np.random.Generator, spread: float = 0.25
                   ) -> np.ndarray:
    """Exactly round(accuracy * n) hits, on the easiest images give or take per-run noise: models agree on
    most images, as real models do, so that paired tests have something to pair."""
    n = difficulty.size
    score = difficulty + spread * rng.normal(size=n)
    hits = np.zeros(n, dtype=bool)
    hits[np.argsort(score, kind="stable")[: int(round(accuracy * n))]] = True
    return hits


def write_zoo_with_predictions(root: Path, *, n_ref: int = 400, n_con: int = 300, seeds: tuple[int, ...] = (0,),
                               zoo: list[tuple] | None = None, seed: int = 0) -> Path:
    """Like `write_zoo` (no transfer) but every run also writes predictions.parquet and result.json carries
    val_images, num_classes, train_images and dataset_spec, as the trainer writes them."""
    rng = np.random.default_rng(seed)
    difficulty = {"fashion": rng.random(n_ref), "clipart": rng.random(n_con)}
    sizes = {"fashion": n_ref, "clipart": n_con}
    for model, family, year, ref, con, *_ in zoo or ZOO:
        for s in seeds:
            off = SEED_OFFSETS[s % len(SEED_OFFSETS)] if len(seeds) > 1 else 0.0
            for dataset, role, acc in (("fashion", "reference", ref), ("clipart", "contrast", con)):
                hits = correct_vector(difficulty[dataset], (acc + off) / 100.0, rng)
                run = write_run(root / "train", f"{model}-{dataset}-{s}", model=model, family=family, year=year,
                                seed=s, dataset=dataset, role=role, top1=100.0 * hits.mean(), top5=99.0,
                                val_images=sizes[dataset], num_classes=10, train_images=5 * sizes[dataset],
                                dataset_spec=f"wds:{root / 'datasets' / dataset}")
                write_predictions_file(run, hits)
    return root
