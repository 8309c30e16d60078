"""`--data-opt in_memory=true` with the per-sample (full-size) pipeline is the same experiment as streaming:
the transforms get the stored images (not squares centre-cropped at load), so RandomResizedCrop and the
resize/centre-crop evaluation see the same pixels either way; in memory, no file is read after loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagenot.data.transforms import apply_seeded
from imagenot.training import setup as run_setup
from imagenot.training.config import TrainConfig


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path_factory.mktemp("cache")))


def _tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        for c in ("a", "b"):
            for i in range(n):
                size = (40 + 12 * i, 28 + 5 * i)  # not square, not the same size: a crop would lose pixels
                path = root / split / c / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return root


def _load(root: Path, tmp_path: Path, **options: object):
    cfg = TrainConfig(model="resnet18", dataset=f"imagefolder:{root}", dataset_options=dict(options),
                      out=str(tmp_path / "run"), epochs=1)
    state = run_setup.plan_run(cfg)
    assert state.plan.pipeline == "per_sample"
    return state.plan, run_setup.load_data(cfg, state.plan)


@pytest.mark.parametrize("options", [{"in_memory": True}, {"in_memory": True, "image_size": 24}])
def test_in_memory_and_streamed_give_the_transforms_the_same_images(options: dict, tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    plan, streamed = _load(root, tmp_path)
    _, memory = _load(root, tmp_path, **options)
    for split, tf in (("train", plan.train.build()), ("val", plan.eval.build())):
        a, b = getattr(streamed, split), getattr(memory, split)
        assert a.sample_keys() == b.sample_keys() and torch.equal(a.labels, b.labels)
        for i in range(len(a)):
            original = a.original(i)
            assert original.shape[-2:] != (original.shape[-1], original.shape[-1])  # stored, not squared
            assert torch.equal(b.original(i), original)
            assert torch.equal(apply_seeded(tf, b.original(i), 7 + i), apply_seeded(tf, original, 7 + i))
    kept = [memory.train.original(i) for i in range(len(memory.train))]
    for p in root.rglob("*.png"):  # held in memory: nothing is read from the files any more
        p.unlink()
    assert all(torch.equal(memory.train.original(i), k) for i, k in enumerate(kept))
