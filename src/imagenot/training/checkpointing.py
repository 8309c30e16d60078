"""Checkpointing a run: `save` writes its position (imagenot.checkpoint owns the layout), `restore` puts a
checkpoint's state back, so a resumed run finishes with the numbers of an uninterrupted one."""

from __future__ import annotations

import logging
from typing import Any

from imagenot import rundir
from imagenot.checkpoint import rng_state, save_checkpoint, set_rng_state, trainer_checkpoint
from imagenot.training.distributed import gather_objects
from imagenot.training.state import RunState

log = logging.getLogger(__name__)


def save(state: RunState) -> None:
    """Checkpoint the current position (every rank's RNG state gathered; rank 0 writes)."""
    rngs = gather_objects(rng_state(), state.dist)
    if not state.dist.is_main:
        return
    save_checkpoint(rundir.checkpoint_path(state.run_dir), trainer_checkpoint(
        meta=state.meta, model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
        scheduler=state.scheduler.state_dict(),
        scaler=state.scaler.state_dict() if state.scaler.is_enabled() else None,
        ema=state.ema.state_dict() if state.ema is not None else None, epoch=state.pos.epoch,
        step_in_epoch=state.pos.step_in_epoch, epoch_loss_sum=state.pos.loss_sum, epoch_seen=state.pos.seen,
        history=state.pos.history, elapsed_s=state.elapsed(), rng=rngs, mean=state.mean, std=state.std,
        classes=state.data.classes))


def restore(state: RunState, ckpt: dict[str, Any]) -> None:
    """Put a checkpoint's state back: weights, optimizer, schedule, scaler, EMA, position, history, RNGs."""
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        state.scaler.load_state_dict(ckpt["scaler"])
    if state.ema is not None and ckpt.get("ema") is not None:
        state.ema.load_state_dict(ckpt["ema"])
    state.pos.epoch, state.pos.step_in_epoch = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
    state.pos.loss_sum, state.pos.seen = float(ckpt["epoch_loss_sum"]), int(ckpt["epoch_seen"])
    state.pos.history = list(ckpt["history"])
    state.pos.elapsed_before = float(ckpt["elapsed_s"])
    rngs = ckpt["rng"]
    if len(rngs) == state.dist.world_size:
        set_rng_state(rngs[state.dist.rank])
    log.info("resuming %s at epoch %d, step %d of %d", state.run_dir, state.pos.epoch + 1, state.pos.step_in_epoch,
             state.steps_per_epoch)
