"""Small, fast run settings shared by the trainer tests: 4-class synthetic data at 16 px, tiny batches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imagenot.training.trainer import TrainConfig

SYNTH = {"num_classes": 4}


def quick_config(out: Path, model: str = "alexnet_s32", **changes) -> TrainConfig:
    base = dict(model=model, dataset="synthetic", dataset_options=dict(SYNTH), out=str(out), epochs=2,
                batch_size=16, image_size=16, seed=0, threads=1, progress=False, deterministic=True)
    base.update(changes)
    return TrainConfig(**base)


def imagenot_cmd() -> list[str]:
    return [sys.executable, "-m", "imagenot"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


