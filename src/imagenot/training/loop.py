"""The training loop's steps: one epoch of optimizer steps, an evaluation, the end of an epoch (metrics row,
checkpoint), and the divergence check that stops a run whose loss is no longer finite."""

from __future__ import annotations

import logging
import math
import time

import torch
from torch import nn

from imagenot import rundir
from imagenot.progress import Progress
from imagenot.training.checkpointing import save
from imagenot.training.config import dataset_display_name
from imagenot.training.distributed import all_reduce_sum
from imagenot.training.evaluation import EvalResult, autocast_for, evaluate_batches, logits_of
from imagenot.training.inputs import eval_batches
from imagenot.training.optim import optimizer_step
from imagenot.training.state import RunState

log = logging.getLogger(__name__)


def train_one_epoch(state: RunState, epoch: int) -> None:
    """The optimizer steps of `epoch`, from the restored position when the run resumes inside it."""
    cfg, recipe, model = state.cfg, state.recipe, state.model
    _set_train_mode(model, cfg.finetune_mode)
    first = state.pos.step_in_epoch if epoch == state.pos.epoch else 0
    if epoch != state.pos.epoch:
        state.pos.loss_sum, state.pos.seen = 0.0, 0
    state.pos.epoch, state.pos.step_in_epoch = epoch, first
    spe, device = state.steps_per_epoch, state.device
    autocast = autocast_for(device, state.precision)
    warm = recipe.warmup_length(state.epochs)
    # Summed where the loss lives: reading it back (a device sync) happens only every log_every_steps.
    loss_acc = torch.zeros((), dtype=torch.float64, device=device)
    # a bar on a terminal, a rate line every 30 s in a log (a Slurm job's epoch is hours long)
    bar = Progress(spe, initial=first, desc=f"{cfg.model} epoch {epoch + 1}/{state.epochs}", unit="step",
                   enabled=cfg.progress and state.dist.is_main, logger=log)
    t0 = time.perf_counter()
    for step, xb, yb in state.feed.epoch(epoch, first):
        y = yb.to(device, non_blocking=True)
        x = state.prep(xb.to(device, non_blocking=True))
        if state.mix is not None:
            x, y = _mixed(state, x, y, epoch, step)
        x = x.contiguous(memory_format=state.mem_format)
        with autocast:
            main, aux = logits_of(state.fwd(x))
            loss = state.criterion(main, y)
            if aux is not None:
                loss = loss + 0.4 * state.criterion(aux, y)
        optimizer_step(loss, state.optimizer, state.scheduler, state.scaler, recipe.clip_grad_norm,
                       model.parameters())
        global_step = epoch * spe + step + 1
        if state.ema is not None and global_step % recipe.ema_steps == 0:
            state.ema.update_parameters(model)
            if epoch < warm:
                state.ema.n_averaged.fill_(0)  # train.py: the average restarts during warm-up
        loss_acc += loss.detach().to(torch.float64) * state.rank_batch
        state.pos.seen += state.rank_batch
        state.pos.step_in_epoch = step + 1
        if (step + 1) % cfg.log_every_steps == 0 or step + 1 == spe:
            running = float(loss_acc + state.pos.loss_sum) / max(state.pos.seen, 1)
            check_finite(state, running, epoch, step + 1, "train")
            bar.update(step + 1 - bar.n)
            bar.set_postfix(f"loss {running:.4f}, lr {state.scheduler.get_last_lr()[0]:.2e}")
        if cfg.checkpoint_every_steps and global_step % cfg.checkpoint_every_steps == 0 and step + 1 < spe:
            state.pos.loss_sum += float(loss_acc)
            loss_acc.zero_()
            save(state)
    state.pos.loss_sum += float(loss_acc)
    state.pos.train_time = time.perf_counter() - t0
    state.pos.trained_images = (spe - first) * state.global_batch
    bar.close()


def evaluate_epoch(state: RunState, final: bool = False) -> EvalResult:
    """The (EMA) model on the validation split; the final evaluation keeps per-image predictions."""
    model = state.ema.module if state.ema is not None else state.model
    batches = eval_batches(state.data.val, state.plan.eval, batch_size=_eval_batch(state), dist=state.dist,
                           device=state.device, workers=state.workers, gpu_decode=state.plan.gpu_decode)
    keys = state.data.val.sample_keys() if final and state.dist.is_main else None
    result = evaluate_batches(model, batches, state.prep, state.device, state.dist,
                              autocast=autocast_for(state.device, state.precision), mem_format=state.mem_format,
                              keys=keys, predictions=final)
    if final:
        state.pos.final_eval = result
        if state.dist.is_main:
            _write_predictions(state, result)
    return result


def end_epoch(state: RunState, epoch: int, val: EvalResult | None) -> None:
    """Metrics row, log line and the end-of-epoch checkpoint (`val` None: an epoch without evaluation)."""
    totals = all_reduce_sum(torch.tensor([state.pos.loss_sum, float(state.pos.seen)], dtype=torch.float64), state.dist)
    train_loss = float(totals[0] / max(totals[1], 1.0))
    train_time = state.pos.train_time
    row = {
        "epoch": epoch + 1,
        "step": (epoch + 1) * state.steps_per_epoch,
        "train_loss": train_loss,
        "val_loss": val.loss if val else None,
        "top1": val.top1 if val else None,
        "top5": val.top5 if val else None,
        "val_images": val.count if val else None,
        "lr": float(state.scheduler.get_last_lr()[0]),
        "images_per_s": state.pos.trained_images / train_time if train_time > 0 else None,
        "time_s": train_time,
    }
    check_finite(state, train_loss, epoch, state.steps_per_epoch, "train")
    if val is not None:
        check_finite(state, val.loss, epoch, state.steps_per_epoch, "validation")
    state.pos.history.append(row)
    scores = f"val_loss {val.loss:.4f} top1 {val.top1:.2f} top5 {val.top5:.2f}" if val else "(not evaluated)"
    log.info("%s %s epoch %d/%d: train_loss %.4f %s (%.0f img/s)", state.cfg.model,
             dataset_display_name(state.cfg.dataset), epoch + 1, state.epochs, train_loss, scores,
             row["images_per_s"] or 0.0)
    state.pos.epoch, state.pos.step_in_epoch, state.pos.loss_sum, state.pos.seen = epoch + 1, 0, 0.0, 0
    save(state)
    if state.dist.is_main:
        rundir.write_metrics(state.run_dir, state.pos.history)


class Diverged(Exception):  # noqa: N818 - an event the loop stops on, not an error the user made
    """The loss became NaN or infinite: the run stops and is recorded as diverged."""

    def __init__(self, epoch: int, step: int, loss: float, which: str) -> None:
        super().__init__(f"{which} loss {loss} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss, self.which = epoch, step, loss, which


def check_finite(state: RunState, loss: float, epoch: int, step: int, which: str) -> None:
    """Stop the run when `loss` is NaN or infinite on any process (every rank stops at the same step).

    Checked where the loss is read back anyway (log points, epoch ends), so it costs no extra device sync; a
    diverged run's weights are NaN, and evaluating them would put a model at chance into the ranking."""
    bad = 0.0 if math.isfinite(loss) else 1.0
    if state.dist.enabled:
        bad = float(all_reduce_sum(torch.tensor([bad], dtype=torch.float64, device=state.device), state.dist)[0])
    if bad:
        raise Diverged(epoch + 1, step, loss, which)


def _set_train_mode(model: nn.Module, finetune_mode: str) -> None:
    model.train()
    if finetune_mode == "linear":
        # A linear probe keeps the frozen features fixed: batch-norm statistics and dropout included.
        from imagenot.models.heads import find_head

        model.eval()
        find_head(model)[1].train()


def _mixed(state: RunState, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix a normalised batch; the draws are seeded by (seed, epoch, step, rank), so resumes replay them."""
    from imagenot.data.samples import mix_seed
    from imagenot.data.transforms import apply_seeded

    seed = mix_seed(state.cfg.seed, 52711, epoch, step, state.dist.rank)
    return apply_seeded(lambda pair: state.mix(*pair), (x, y), seed)


def _eval_batch(state: RunState) -> int:
    if state.cfg.eval_batch_size:
        return int(state.cfg.eval_batch_size)
    return state.rank_batch if state.plan.pipeline == "per_sample" else max(state.rank_batch, 256)


def _write_predictions(state: RunState, result: EvalResult) -> None:
    cfg = state.cfg
    result.write_predictions(rundir.predictions_path(state.run_dir),
                             dataset=cfg.dataset_name or dataset_display_name(cfg.dataset), split="val",
                             num_classes=state.data.num_classes,
                             extra={"model": cfg.model, "seed": cfg.seed, "dataset_spec": cfg.dataset})
