"""`finetune()`: a pretrained run + a target dataset -> a transfer run, through the ordinary trainer.

Fine-tuning is training with three differences: the weights come from a finished run, the head is new, and
the recipe is the short, low-lr `finetune` one (`finetune-linear` for a linear probe). Everything else
(checkpoints, resume, DDP, metrics, result.json) is the trainer's, so a transfer run is as reproducible and
resumable as a pretraining run. The run directory's `config.json` is a TrainConfig: `imagenot train --config
RUN/config.json` reruns it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from imagenot.config import ConfigError
from imagenot.training.trainer import TrainConfig, train
from imagenot.transfer.pretrained import pretrain_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    checkpoint: str = ""  # the pretrained run directory
    dataset: str = ""
    out: str = ""
    mode: str = "full"  # full | linear
    model: str | None = None  # None: the pretrained run's; given, it must match it
    recipe: str | None = None  # None: finetune (full) or finetune-linear (linear)
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None  # None: the pretrained run's input size
    seed: int | None = None  # None: the pretrained run's seed
    limit: int | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    dataset_name: str | None = None
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    deterministic: bool = False
    checkpoint_every_steps: int = 0
    threads: int | None = None
    progress: bool = True
    resume: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("full", "linear"):
            raise ConfigError(f"mode {self.mode!r} not one of full, linear")


def finetune_train_config(cfg: FinetuneConfig) -> TrainConfig:
    """The TrainConfig a fine-tune runs as (reads the pretrained run's result.json for its defaults)."""
    if not cfg.checkpoint or not cfg.dataset or not cfg.out:
        raise ConfigError("finetune needs checkpoint (a pretrained run directory), dataset and out")
    summary = pretrain_summary(cfg.checkpoint)
    model = cfg.model or summary.get("model")
    if cfg.model and cfg.model != summary.get("model"):
        from imagenot.errors import ImagenotError

        raise ImagenotError(
            f"--model {cfg.model} does not match the pretrained run {cfg.checkpoint}, which trained "
            f"{summary.get('model')}"
        )
    recipe = cfg.recipe or ("finetune-linear" if cfg.mode == "linear" else "finetune")
    return TrainConfig(
        model=str(model), dataset=cfg.dataset, out=cfg.out, recipe=recipe,
        recipe_overrides=dict(cfg.recipe_overrides), epochs=cfg.epochs, batch_size=cfg.batch_size,
        seed=cfg.seed if cfg.seed is not None else int(summary.get("seed") or 0),
        image_size=cfg.image_size or summary.get("image_size"), limit=cfg.limit,
        dataset_options=dict(cfg.dataset_options), role="transfer",
        dataset_name=cfg.dataset_name, device=cfg.device, precision=cfg.precision, compile=cfg.compile,
        deterministic=cfg.deterministic, checkpoint_every_steps=cfg.checkpoint_every_steps,
        threads=cfg.threads, progress=cfg.progress, resume=cfg.resume, force=cfg.force,
        pretrain_run=str(cfg.checkpoint), finetune_mode=cfg.mode,
    )


def finetune(cfg: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune `cfg.checkpoint` on `cfg.dataset`; returns the transfer run's result.json."""
    return train(finetune_train_config(cfg))
