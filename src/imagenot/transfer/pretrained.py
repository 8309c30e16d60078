"""Load a finished zoo run as the starting point of a fine-tune.

The checkpoint is read with weights_only=True and must be imagenot's and of the same architecture as the
fine-tune asks for: fine-tuning a ResNet config from a VGG checkpoint is a mistake to report, not to guess
around. When the pretrain run used EMA, the EMA weights (those its reported accuracy was measured on) are
the ones transferred.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from imagenot import rundir
from imagenot.checkpoint import load_checkpoint
from imagenot.errors import ImagenotError
from imagenot.models.heads import freeze_except, replace_head

log = logging.getLogger(__name__)


def pretrain_summary(run: str | Path) -> dict[str, Any]:
    """The pretrain run's result.json; it must exist (only finished runs are transferred)."""
    run = Path(run)
    if not run.is_dir():
        raise ImagenotError(f"pretrain run {run}: no such directory")
    if not rundir.is_finished(run):
        raise ImagenotError(f"pretrain run {run} is not finished (no result.json); finish or resume it first")
    return rundir.read_result(run)


def build_transfer_model(
    model_name: str, run: str | Path, num_classes: int, mode: str, image_size: int | None = None,
    load_weights: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """The pretrained `model_name` from `run`, with a new head for `num_classes`, frozen for `mode`.

    `image_size` may differ from the pretraining size for models that pool adaptively; a fixed-size model
    (ViT) then fails to load its position embeddings, which is reported as an error naming the checkpoint.
    """
    from imagenot.training.trainer import build_registry_model

    run = Path(run)
    summary = pretrain_summary(run)
    if summary.get("model") != model_name:
        raise ImagenotError(
            f"pretrain run {run} trained {summary.get('model')!r}, not {model_name!r}; "
            f"fine-tune it as --model {summary.get('model')} (or omit --model)"
        )
    ckpt_path = rundir.checkpoint_path(run)
    ckpt = load_checkpoint(ckpt_path, expect={"model": model_name})
    pre_classes = int(ckpt["meta"]["num_classes"])
    model = build_registry_model(model_name, pre_classes, image_size or int(ckpt["meta"]["image_size"]))
    if load_weights:
        state = ckpt["model"]
        if ckpt.get("ema") is not None:
            prefix = "module."
            state = {k[len(prefix):]: v for k, v in ckpt["ema"].items() if k.startswith(prefix)}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ImagenotError(f"{ckpt_path}: weights do not fit {model_name}: {str(exc).splitlines()[0]}") from exc
    heads = replace_head(model, num_classes)
    if mode == "linear":
        n = freeze_except(model, heads)
        log.info("linear probe: %d trainable parameters in %s", n, heads)
    meta = {
        "pretrain_run": str(run),
        "pretrain_dataset": summary.get("dataset"),
        "pretrain_top1": summary.get("top1"),
        "pretrain_seed": summary.get("seed"),
    }
    return model, meta
