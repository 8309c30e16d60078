"""The end of a run: result.json of a finished run (`finish`) or of one that diverged (`finish_diverged`),
through the run record (imagenot.rundir)."""

from __future__ import annotations

import logging
from typing import Any

from imagenot import rundir
from imagenot.config import to_dict
from imagenot.fileio import environment
from imagenot.training.config import dataset_display_name
from imagenot.training.distributed import barrier
from imagenot.training.loop import Diverged, evaluate_epoch
from imagenot.training.precision import numerics_record
from imagenot.training.state import RunState

log = logging.getLogger(__name__)


def finish(state: RunState) -> dict[str, Any]:
    """result.json (and predictions.parquet if a resumed run had already finished its last epoch)."""
    if state.pos.final_eval is None and not rundir.predictions_path(state.run_dir).is_file():
        evaluate_epoch(state, final=True)  # killed between the last checkpoint and result.json
    if state.dist.is_main:  # stopped (a full disk, a kill) between the last checkpoint and its metrics line
        rundir.write_metrics(state.run_dir, state.pos.history)
    result = _result(state, state.pos.history[-1] if state.pos.history else {})
    if state.dist.is_main:
        rundir.write_result(state.run_dir, result)
    barrier(state.dist)
    return result


def finish_diverged(state: RunState, div: Diverged) -> dict[str, Any]:
    """result.json of a run that diverged: status 'diverged', no accuracies, where and how it diverged.

    It counts as finished (a rerun or a zoo does not train it again; --force does), the report leaves it out
    with a word, and its weights are refused as a starting point."""
    log.error("%s on %s diverged (%s): stopped; recorded in %s as diverged, without accuracies (lower the "
              "learning rate, or check the data)", state.cfg.model, dataset_display_name(state.cfg.dataset), div,
              rundir.result_path(state.run_dir))
    result = _result(state, {"train_loss": div.loss if div.which == "train" else None})
    result.update(status="diverged", top1=None, top5=None, val_loss=None, predictions=None,
                  diverged={"epoch": div.epoch, "step": div.step, "loss": str(div.loss), "which": div.which})
    if state.dist.is_main:
        rundir.predictions_path(state.run_dir).unlink(missing_ok=True)
        rundir.write_result(state.run_dir, result)
    barrier(state.dist)
    return result


def _result(state: RunState, last: dict[str, Any]) -> dict[str, Any]:
    """The result.json record of the run's current state (`last`: the metrics row it reports)."""
    cfg, data = state.cfg, state.data
    return rundir.result_record(
        model=cfg.model, family=state.family, year=state.year,
        dataset=cfg.dataset_name or dataset_display_name(cfg.dataset), dataset_spec=cfg.dataset, role=cfg.role,
        source="trained", init=cfg.init,
        weights=state.weights.to_dict() if state.weights is not None and not cfg.from_scratch else None,
        pretrain_dataset=state.transfer_meta.get("pretrain_dataset"),
        pretrain_run=state.transfer_meta.get("pretrain_run"),
        pretrain_top1=state.transfer_meta.get("pretrain_top1"),
        finetune_mode=None if cfg.from_scratch else cfg.finetune_mode, seed=cfg.seed,
        fingerprint=rundir.fingerprint(state.config_dict), status="finished", top1=last.get("top1"),
        top5=last.get("top5"), val_loss=last.get("val_loss"), train_loss=last.get("train_loss"),
        epochs=state.epochs, steps=state.steps_per_epoch * state.epochs, wall_time_s=state.elapsed(),
        params=state.n_params, flops=state.flops, image_size=state.plan.eval_size,
        train_crop_size=state.plan.image_size, num_classes=data.num_classes, train_images=len(data.train),
        val_images=len(data.val), batch_size=state.global_batch, recipe=state.recipe.name,
        recipe_params=to_dict(state.recipe), input=state.input_summary(),
        normalization={"mean": state.mean, "std": state.std}, predictions=rundir.PREDICTIONS,
        world_size=state.dist.world_size, device=str(state.device.type), precision=state.precision,
        numerics=numerics_record(state.numerics, state.fp32_modules),
        environment=environment(device=str(state.device)))
