"""`finetune()`: starting weights + a target dataset -> a transfer run, through the ordinary trainer.

Fine-tuning is training with three differences: the weights come from somewhere (`init`: a finished run,
torchvision's published weights, a state_dict file; `imagenot.models.weights`), the head is new, and the
recipe is the short, low-lr `finetune` one (`finetune-linear` for a linear probe). Everything else
(checkpoints, resume, DDP, metrics, predictions, result.json) is the trainer's, so a transfer run is as
reproducible and resumable as a pretraining run, and its `config.json` is a TrainConfig that `imagenot train
--config RUN/config.json` replays.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from typing import Any

from imagenot.config import ConfigError
from imagenot.errors import ImagenotError
from imagenot.training.config import TrainConfig

log = logging.getLogger(__name__)

INHERITED = ("model", "seed", "image_size")
"""What a fine-tune of a finished run takes from it unless given: the architecture, the seed, the input size."""


def finetune_config(cfg: TrainConfig, given: Collection[str] = ()) -> TrainConfig:
    """`cfg` with the fine-tune defaults filled in: role transfer, and for `run:` weights the run's model,
    seed and input size unless they are in `given` (the fields the user set)."""
    from imagenot.models.weights import parse_init, run_summary

    if cfg.from_scratch:
        raise ConfigError("finetune needs starting weights: --init run:DIR, torchvision:<model>.<WEIGHTS> or "
                          "file:PATH")
    spec = parse_init(cfg.init)
    changes: dict[str, Any] = {}
    if cfg.role is None:
        changes["role"] = "transfer"
    if spec.kind == "run":
        summary = run_summary(spec.value or "")
        trained = summary.get("model")
        if cfg.model and cfg.model != trained:
            raise ImagenotError(f"--model {cfg.model} does not match the pretrained run {spec.value}, which "
                                f"trained {trained}")
        changes["model"] = trained
        if "seed" not in given and summary.get("seed") is not None:
            changes["seed"] = int(summary["seed"])
        size = summary.get("train_crop_size") or summary.get("image_size")
        if cfg.image_size is None and "image_size" not in given and size:
            changes["image_size"] = int(size)
    elif not cfg.model:
        arch = (spec.value or "").partition(".")[0] if spec.kind == "torchvision" else ""
        if not arch:
            raise ConfigError(f"--model is needed to fine-tune {spec}")
        changes["model"] = arch
    return dataclasses.replace(cfg, **changes) if changes else cfg


def finetune(cfg: TrainConfig, given: Collection[str] = ()) -> dict[str, Any]:
    """Fine-tune `cfg.init` on `cfg.dataset`; returns the transfer run's result.json."""
    from imagenot.training.trainer import train

    return train(finetune_config(cfg, given))
