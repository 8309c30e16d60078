"""The trainer: one loop for a laptop CPU, a GPU, and torchrun on a cluster.

`train(cfg)` is four steps over one `RunState` (imagenot.training.state; torchvision's
references/classification/train.py and nanoGPT are the models), each in a module of its own:

* `setup` (imagenot.training.setup) resolves and checks everything it can before the first step (names,
  recipe, input plan, numerics, run directory, dataset, image sizes, checkpoint), then builds the model,
  optimizer, schedule, EMA and feeds; the numerics (precision, channels_last, grouped convolutions in fp32:
  imagenot.training.precision) are written into config.json as resolved, like the thread count, so
  `--config` replays them;
* `restore` (imagenot.training.checkpointing, beside `save`) puts a checkpoint's state back (weights,
  optimizer, schedule, scaler, EMA, loader position, RNGs);
* `train_one_epoch` (imagenot.training.loop, with `evaluate_epoch` and `end_epoch`) runs the optimizer steps
  of one epoch (from a mid-epoch position after a resume), checkpointing every N steps;
* `evaluate_epoch` measures the (EMA) model on the validation split, each image counted once across
  processes; the final one also writes `predictions.parquet` (one row per image, gathered on rank 0);
* `finish` (imagenot.training.finish) writes result.json through the run record (imagenot.rundir).

What the model sees is the run's `InputPlan` (imagenot.training.inputs): the batched in-memory pipeline for
small-input variants, torchvision's per-sample transforms for full-size models, one normalisation for every
data path (`normalization`: ImageNet's for full-size models, the training split's own for the small-input
variants, the pretrained weights' when fine-tuning). The resolved plan and recipe are written to config.json
as its `resolved` field (recomputed when the file is given back with --config; part of the run's identity,
imagenot.rundir.fingerprint, except `resolved.numerics`). Checkpoints hold the loader
position and every RNG state, so `resume=True` after a kill finishes with the same numbers as an
uninterrupted run (in memory: bitwise mid-epoch; streamed shards: see imagenot.data.wds_stream).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from imagenot import runtime
from imagenot.config import ConfigError
from imagenot.errors import disk_full_is_an_error
from imagenot.training.checkpointing import restore, save
from imagenot.training.config import ROLES, TrainConfig, dataset_display_name
from imagenot.training.distributed import destroy, init_distributed
from imagenot.training.evaluation import EvalResult, evaluate
from imagenot.training.finish import finish, finish_diverged
from imagenot.training.loop import Diverged, check_finite, end_epoch, evaluate_epoch, train_one_epoch
from imagenot.training.setup import load_data, plan_run, resolve_run_numerics, run_record, setup
from imagenot.training.state import RunData, RunState

log = logging.getLogger(__name__)

__all__ = ["ROLES", "Diverged", "EvalResult", "RunData", "RunState", "TrainConfig", "check_finite",
           "dataset_display_name", "end_epoch", "evaluate", "evaluate_epoch", "finish", "finish_diverged",
           "load_data", "plan_run", "resolve_run_numerics", "restore", "run_record", "save", "setup", "train",
           "train_one_epoch"]


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume, or return the finished result of) the run `cfg` describes; returns result.json.
    A full disk is an error naming the run folder (exit 1); the rerun resumes from the last checkpoint."""
    with disk_full_is_an_error(cfg.out or ".", "rerun the same command with --resume"):
        return _train(cfg)


def _train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume, or return the finished result of) the run `cfg` describes; returns result.json.

    Under torchrun every process calls this with the same config; rank 0 writes the files.
    """
    if not cfg.model or not cfg.dataset or not cfg.out:
        raise ConfigError("train needs model, dataset and out")
    dev0 = "cuda" if (cfg.device == "auto" and torch.cuda.is_available()) or cfg.device == "cuda" else "cpu"
    state = plan_run(cfg)
    state.dist = init_distributed(dev0)
    try:
        # Process-wide torch settings a run changes are put back, so a zoo or a test session is not affected.
        with runtime.torch_settings():
            finished = setup(state)  # a finished run's result: nothing is retrained
            return finished if finished is not None else _run(state)
    finally:
        state.close()
        destroy(state.dist)


def _run(state: RunState) -> dict[str, Any]:
    """The epochs left (all of them, or those after a resumed position), then result.json."""
    cfg = state.cfg
    try:
        for epoch in range(state.pos.epoch, state.epochs):
            train_one_epoch(state, epoch)
            last = epoch + 1 == state.epochs
            due = last or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0)
            val = evaluate_epoch(state, final=last) if due else None
            end_epoch(state, epoch, val)
    except Diverged as div:
        return finish_diverged(state, div)
    return finish(state)
