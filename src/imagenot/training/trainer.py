"""The trainer: one loop for a laptop CPU, a GPU, and torchrun on a cluster.

`train(cfg)` is four steps over one `RunState` (torchvision's references/classification/train.py and
nanoGPT are the models):

* `setup` resolves and checks everything it can before the first step (names, recipe, input plan, numerics,
  run directory, dataset, image sizes, checkpoint), then builds the model, optimizer, schedule, EMA and feeds;
  the numerics (precision, channels_last, grouped convolutions in fp32: imagenot.training.precision) are
  written into config.json as resolved, like the thread count, so `--config` replays them;
* `restore` puts a checkpoint's state back (weights, optimizer, schedule, scaler, EMA, loader position, RNGs);
* `train_one_epoch` runs the optimizer steps of one epoch (from a mid-epoch position after a resume),
  checkpointing every N steps;
* `evaluate_epoch` measures the (EMA) model on the validation split, each image counted once across
  processes; the final one also writes `predictions.parquet` (one row per image, gathered on rank 0);
* `finish` writes result.json.

What the model sees is the run's `InputPlan` (imagenot.training.inputs): the batched in-memory pipeline for
small-input variants, torchvision's per-sample transforms for full-size models, one normalisation for every
data path (`normalization`: ImageNet's for full-size models, the training split's own for the small-input
variants, the pretrained weights' when fine-tuning). The resolved plan and recipe are written to config.json
as its `resolved` field (recomputed, never read, when the file is given back with --config). Checkpoints hold the loader
position and every RNG state, so `resume=True` after a kill finishes with the same numbers as an
uninterrupted run (in memory: bitwise mid-epoch; streamed shards: see imagenot.data.wds_stream).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from imagenot import rundir, runtime
from imagenot.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, trainer_checkpoint
from imagenot.config import ConfigError, to_dict, to_record
from imagenot.errors import ImagenotError, disk_full_is_an_error
from imagenot.fileio import environment, write_text
from imagenot.lock import output_lock
from imagenot.progress import Progress
from imagenot.training.config import ROLES, TrainConfig, dataset_display_name
from imagenot.training.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    destroy,
    gather_objects,
    init_distributed,
)
from imagenot.training.evaluation import (
    EvalResult,
    Normalize,
    autocast_for,
    evaluate,
    evaluate_batches,
    logits_of,
    model_channels,
)
from imagenot.training.inputs import (
    InputPlan,
    TrainFeed,
    default_workers,
    eval_batches,
    resolve_normalization,
    resolve_plan,
)
from imagenot.training.optim import build_ema, build_optimizer, build_scheduler, set_dropout
from imagenot.training.precision import Numerics, numerics_record, prepare_model, resolve_numerics
from imagenot.training.recipes import Recipe, get_recipe

if TYPE_CHECKING:
    from imagenot.models.weights import WeightsInfo

log = logging.getLogger(__name__)

__all__ = ["ROLES", "EvalResult", "TrainConfig", "dataset_display_name", "evaluate", "train"]


# ------------------------------------------------------------------------------------------------ state


@dataclass
class _Data:
    train: Any
    val: Any
    classes: list[str]
    num_classes: int


@dataclass
class RunState:
    """Everything one run holds while it trains; the step functions below read and advance it."""

    cfg: TrainConfig
    dist: DistInfo
    run_dir: Path
    recipe: Recipe
    plan: InputPlan
    epochs: int
    global_batch: int
    family: str | None
    year: int | None
    config_dict: dict[str, Any]
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    numerics: Numerics | None = None
    fp32_modules: int = 0
    mem_format: torch.memory_format = torch.contiguous_format
    data: _Data | None = None
    model: nn.Module | None = None
    fwd: Any = None
    prep: nn.Module | None = None
    optimizer: Any = None
    scheduler: Any = None
    ema: Any = None
    scaler: Any = None
    criterion: Any = None
    mix: Any = None
    feed: TrainFeed | None = None
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    transfer_meta: dict[str, Any] = field(default_factory=dict)
    weights: WeightsInfo | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    workers: int = 0
    n_params: int = 0
    flops: int | None = None
    # progress
    epoch: int = 0
    step_in_epoch: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_before: float = 0.0
    session_start: float = 0.0
    final_eval: EvalResult | None = None
    train_time: float = 0.0
    trained_images: int = 0
    lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # the run folder's, on rank 0

    @property
    def rank_batch(self) -> int:
        return self.global_batch // self.dist.world_size

    @property
    def steps_per_epoch(self) -> int:
        assert self.feed is not None
        return self.feed.steps_per_epoch

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.session_start


# ------------------------------------------------------------------------------------------------ train


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
    state = _plan(cfg)
    state.dist = init_distributed(dev0)
    # Process-wide torch settings a run changes are put back, so a zoo or a test session is not affected.
    settings = runtime.torch_settings()
    settings.__enter__()
    try:
        finished = setup(state)
        if finished is not None:
            return finished
        try:
            for epoch in range(state.epoch, state.epochs):
                train_one_epoch(state, epoch)
                last = epoch + 1 == state.epochs
                due = last or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0)
                val = evaluate_epoch(state, final=last) if due else None
                end_epoch(state, epoch, val)
        except Diverged as div:
            return finish_diverged(state, div)
        return finish(state)
    finally:
        state.lock.close()
        if state.feed is not None:
            state.feed.close()
        settings.__exit__(None, None, None)
        destroy(state.dist)


def run_record(cfg: TrainConfig) -> dict[str, Any]:
    """The config.json `cfg` writes (resolved recipe and input plan included), without running anything:
    what a zoo compares a finished run with (`imagenot.rundir.fingerprint`)."""
    return _plan(cfg).config_dict


def _plan(cfg: TrainConfig) -> RunState:
    """Names, recipe and input plan, checked before any process group, file or dataset is touched."""
    from imagenot.models import model_info

    info = model_info(cfg.model)  # unknown names raise here, listing the known ones
    recipe = get_recipe(cfg.recipe_name, cfg.model, info.family or "", cfg.recipe_overrides)
    plan = resolve_plan(cfg, recipe, cfg.model)
    epochs = cfg.epochs or recipe.epochs
    global_batch = cfg.batch_size or recipe.batch_size
    config_dict = to_record(cfg)  # absolute paths: the file replays from any directory
    # the thread count changes CPU results: record the one this run uses, so a replay uses it too
    config_dict.update(resume=False, force=False, threads=cfg.threads or torch.get_num_threads())
    resolved = {"input": plan.to_dict(), "recipe": to_dict(recipe), "epochs": epochs, "batch_size": global_batch}
    if (cfg.init or "").startswith("run:"):
        # a run started from another run is another experiment when that run was retrained with other settings
        resolved["init_fingerprint"] = rundir.recorded_fingerprint(cfg.init.partition(":")[2])
    config_dict["resolved"] = json.loads(json.dumps(resolved))
    return RunState(cfg=cfg, dist=DistInfo(), run_dir=Path(cfg.out), recipe=recipe, plan=plan, epochs=epochs,
                    global_batch=global_batch, family=info.family, year=info.year, config_dict=config_dict)


def setup(state: RunState) -> dict[str, Any] | None:
    """Check the run directory, load data, build the model and everything around it; restore a checkpoint.

    Returns the result of an already finished run instead (nothing is retrained).
    """
    cfg, dist = state.cfg, state.dist
    resolve_run_numerics(state)
    # Rank 0 decides about the run directory (it may clear it with --force); the others follow. It first takes
    # the folder's lock (one writer per run folder): a refusal reaches every rank, so none waits for it.
    decision: Any = None
    if dist.is_main:
        try:
            state.lock.enter_context(output_lock(state.run_dir))
            decision = rundir.check_existing(state.run_dir, state.config_dict, resume=cfg.resume, force=cfg.force)
        except ImagenotError as exc:
            decision = exc
    decision = broadcast_object(decision, dist)
    if isinstance(decision, Exception):
        raise decision
    if decision == "finished":
        log.info("%s is finished (result.json present); not retraining (use --force to retrain)", state.run_dir)
        return rundir.read_result(state.run_dir)

    if state.global_batch % dist.world_size:
        raise ImagenotError(f"batch size {state.global_batch} is not divisible by the {dist.world_size} "
                            "processes; --batch-size is the global batch over all processes")
    runtime.set_threads(cfg.threads)
    runtime.set_determinism(cfg.deterministic, state.device)
    if state.plan.gpu_decode and state.device.type != "cuda":
        log.warning("gpu_decode on %s: images are decoded by the CPU decoder in the main process", state.device)
    state.workers = cfg.workers if cfg.workers is not None else default_workers(dist)

    state.data = _load_data(cfg, state.plan)
    ckpt = None
    expect = {"model": cfg.model, "num_classes": state.data.num_classes, "dataset": cfg.dataset, "seed": cfg.seed}
    if decision == "resume":
        ckpt = load_checkpoint(rundir.checkpoint_path(state.run_dir), expect=expect)
        if ckpt["meta"].get("world_size") != dist.world_size:
            log.warning("resuming a %s-process run with %s processes: the data order is the same, RNG streams "
                        "for dropout are not", ckpt["meta"].get("world_size"), dist.world_size)

    torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model, state.weights = _build_model(cfg, state.data.num_classes, state.plan.image_size)
    state.transfer_meta = _transfer_meta(cfg, state.weights)
    set_dropout(model, state.recipe.dropout)
    norm = state.transfer_meta.get("normalization")  # the starting weights', when they record it
    state.mean, state.std = resolve_normalization(state.plan.normalization, cfg.model, state.data.train,
                                                  (norm["mean"], norm["std"]) if norm else None)
    state.prep = Normalize(state.mean, state.std, model_channels(model)).to(state.device)
    model.to(state.device)
    state.fp32_modules = prepare_model(model, state.numerics)
    state.model = model
    from imagenot.models import count_params

    state.n_params = int(count_params(model))
    state.flops = _flops(cfg.model, state.plan.image_size, state.data.num_classes)

    state.feed = TrainFeed(state.plan, state.data.train, rank_batch=state.rank_batch,
                           global_batch=state.global_batch, seed=cfg.seed, recipe=state.recipe, dist=dist,
                           device=state.device, workers=state.workers, shuffle_buffer=cfg.shuffle_buffer,
                           mean=state.mean)
    if state.steps_per_epoch == 0:
        raise ImagenotError(f"dataset {cfg.dataset}: the train split has {len(state.data.train)} images, fewer "
                            f"than one batch of {state.global_batch}; lower --batch-size or use more data")
    recipe = state.recipe
    state.optimizer = build_optimizer(model, recipe, recipe.scaled_lr(state.global_batch))
    state.scheduler = build_scheduler(state.optimizer, recipe, state.steps_per_epoch, state.epochs)
    state.ema = build_ema(model, recipe, state.global_batch, state.epochs)
    state.scaler = torch.amp.GradScaler(state.device.type, enabled=state.precision == "fp16")
    state.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    state.mix = _batch_mix(state.plan, state.data.num_classes)
    state.meta = {**expect, "world_size": dist.world_size, "image_size": state.plan.image_size,
                  "family": state.family, "init": cfg.init, "finetune_mode": cfg.finetune_mode}
    if ckpt is not None:
        restore(state, ckpt)
    else:
        torch.manual_seed(cfg.seed * 1000 + dist.rank)  # dropout streams differ per rank

    net: nn.Module = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[state.device.index] if state.device.type == "cuda" else None)
    state.fwd = torch.compile(net) if cfg.compile else net
    if dist.is_main:
        _write_start_files(state)
    state.session_start = time.perf_counter()
    return None


def resolve_run_numerics(state: RunState) -> None:
    """Device, precision, memory format and fp32 layers of the run, resolved before the run directory is
    checked. config.json keeps what was asked for (`precision: auto` resolves the same on the same machine, so
    a replay runs the same numerics) and records the resolution under `resolved.numerics`, which is not part of
    the run's identity (rundir.fingerprint): "auto" trained on a GPU node is the same experiment for a zoo
    that checks it on a CPU login node."""
    cfg = state.cfg
    state.device = runtime.resolve_device(cfg.device, state.dist.local_rank)
    numerics = resolve_numerics(state.device, cfg.precision, cfg.channels_last, cfg.fp32_grouped_convs)
    state.numerics, state.precision, state.mem_format = numerics, numerics.precision, numerics.memory_format
    state.config_dict.setdefault("resolved", {})["numerics"] = {
        "precision": numerics.precision, "channels_last": numerics.channels_last,
        "fp32_grouped_convs": numerics.fp32_grouped_convs}
    log.info("%s: %s%s%s (%s)", cfg.model, numerics.precision, ", channels_last" if numerics.channels_last else "",
             ", grouped convolutions in fp32" if numerics.fp32_grouped_convs else "", numerics.why)


def restore(state: RunState, ckpt: dict[str, Any]) -> None:
    """Put a checkpoint's state back: weights, optimizer, schedule, scaler, EMA, position, history, RNGs."""
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        state.scaler.load_state_dict(ckpt["scaler"])
    if state.ema is not None and ckpt.get("ema") is not None:
        state.ema.load_state_dict(ckpt["ema"])
    state.epoch, state.step_in_epoch = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
    state.loss_sum, state.seen = float(ckpt["epoch_loss_sum"]), int(ckpt["epoch_seen"])
    state.history = list(ckpt["history"])
    state.elapsed_before = float(ckpt["elapsed_s"])
    rngs = ckpt["rng"]
    if len(rngs) == state.dist.world_size:
        set_rng_state(rngs[state.dist.rank])
    log.info("resuming %s at epoch %d, step %d of %d", state.run_dir, state.epoch + 1, state.step_in_epoch,
             state.steps_per_epoch)


def train_one_epoch(state: RunState, epoch: int) -> None:
    """The optimizer steps of `epoch`, from the restored position when the run resumes inside it."""
    cfg, recipe, model = state.cfg, state.recipe, state.model
    _set_train_mode(model, cfg.finetune_mode)
    first = state.step_in_epoch if epoch == state.epoch else 0
    if epoch != state.epoch:
        state.loss_sum, state.seen = 0.0, 0
    state.epoch, state.step_in_epoch = epoch, first
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
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        if recipe.clip_grad_norm is not None:
            state.scaler.unscale_(state.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad_norm)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        global_step = epoch * spe + step + 1
        if state.ema is not None and global_step % recipe.ema_steps == 0:
            state.ema.update_parameters(model)
            if epoch < warm:
                state.ema.n_averaged.fill_(0)  # train.py: the average restarts during warm-up
        loss_acc += loss.detach().to(torch.float64) * state.rank_batch
        state.seen += state.rank_batch
        state.step_in_epoch = step + 1
        if (step + 1) % cfg.log_every_steps == 0 or step + 1 == spe:
            running = float(loss_acc + state.loss_sum) / max(state.seen, 1)
            check_finite(state, running, epoch, step + 1, "train")
            bar.update(step + 1 - bar.n)
            bar.set_postfix(f"loss {running:.4f}, lr {state.scheduler.get_last_lr()[0]:.2e}")
        if cfg.checkpoint_every_steps and global_step % cfg.checkpoint_every_steps == 0 and step + 1 < spe:
            state.loss_sum += float(loss_acc)
            loss_acc.zero_()
            save(state)
    state.loss_sum += float(loss_acc)
    state.train_time = time.perf_counter() - t0
    state.trained_images = (spe - first) * state.global_batch
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
        state.final_eval = result
        if state.dist.is_main:
            _write_predictions(state, result)
    return result


def end_epoch(state: RunState, epoch: int, val: EvalResult | None) -> None:
    """Metrics row, log line and the end-of-epoch checkpoint (`val` None: an epoch without evaluation)."""
    totals = all_reduce_sum(torch.tensor([state.loss_sum, float(state.seen)], dtype=torch.float64), state.dist)
    train_loss = float(totals[0] / max(totals[1], 1.0))
    train_time = state.train_time
    row = {
        "epoch": epoch + 1,
        "step": (epoch + 1) * state.steps_per_epoch,
        "train_loss": train_loss,
        "val_loss": val.loss if val else None,
        "top1": val.top1 if val else None,
        "top5": val.top5 if val else None,
        "val_images": val.count if val else None,
        "lr": float(state.scheduler.get_last_lr()[0]),
        "images_per_s": state.trained_images / train_time if train_time > 0 else None,
        "time_s": train_time,
    }
    check_finite(state, train_loss, epoch, state.steps_per_epoch, "train")
    if val is not None:
        check_finite(state, val.loss, epoch, state.steps_per_epoch, "validation")
    state.history.append(row)
    scores = f"val_loss {val.loss:.4f} top1 {val.top1:.2f} top5 {val.top5:.2f}" if val else "(not evaluated)"
    log.info("%s %s epoch %d/%d: train_loss %.4f %s (%.0f img/s)", state.cfg.model,
             dataset_display_name(state.cfg.dataset), epoch + 1, state.epochs, train_loss, scores,
             row["images_per_s"] or 0.0)
    state.epoch, state.step_in_epoch, state.loss_sum, state.seen = epoch + 1, 0, 0.0, 0
    save(state)
    if state.dist.is_main:
        write_text(state.run_dir / rundir.METRICS, "".join(json.dumps(r) + "\n" for r in state.history))


def save(state: RunState) -> None:
    """Checkpoint the current position (every rank's RNG state gathered; rank 0 writes)."""
    rngs = gather_objects(rng_state(), state.dist)
    if not state.dist.is_main:
        return
    save_checkpoint(rundir.checkpoint_path(state.run_dir), trainer_checkpoint(
        meta=state.meta, model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
        scheduler=state.scheduler.state_dict(),
        scaler=state.scaler.state_dict() if state.scaler.is_enabled() else None,
        ema=state.ema.state_dict() if state.ema is not None else None, epoch=state.epoch,
        step_in_epoch=state.step_in_epoch, epoch_loss_sum=state.loss_sum, epoch_seen=state.seen,
        history=state.history, elapsed_s=state.elapsed(), rng=rngs, mean=state.mean, std=state.std,
        classes=state.data.classes))


def finish(state: RunState) -> dict[str, Any]:
    """result.json (and predictions.parquet if a resumed run had already finished its last epoch)."""
    if state.final_eval is None and not rundir.predictions_path(state.run_dir).is_file():
        evaluate_epoch(state, final=True)  # killed between the last checkpoint and result.json
    if state.dist.is_main:  # stopped (a full disk, a kill) between the last checkpoint and its metrics line
        write_text(state.run_dir / rundir.METRICS, "".join(json.dumps(r) + "\n" for r in state.history))
    result = _result(state, state.history[-1] if state.history else {})
    if state.dist.is_main:
        rundir.write_result(state.run_dir, result)
    barrier(state.dist)
    return result


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
        recipe_params=to_dict(state.recipe), input=_input_summary(state),
        normalization={"mean": state.mean, "std": state.std}, predictions=rundir.PREDICTIONS,
        world_size=state.dist.world_size, device=str(state.device.type), precision=state.precision,
        numerics=numerics_record(state.numerics, state.fp32_modules),
        environment=environment(device=str(state.device)))


# ------------------------------------------------------------------------------------------------ helpers


def _set_train_mode(model: nn.Module, finetune_mode: str) -> None:
    model.train()
    if finetune_mode == "linear":
        # A linear probe keeps the frozen features fixed: batch-norm statistics and dropout included.
        from imagenot.models.heads import find_head

        model.eval()
        find_head(model)[1].train()


def _load_data(cfg: TrainConfig, plan: InputPlan) -> _Data:
    """Both splits, checked before any model is built: non-empty, two classes or more, big enough images.

    The batched pipeline loads images resized to the model's input once; the per-sample one keeps them at
    their own size (file datasets stream from disk, arrays stay as they are) for its decode-time transforms.
    """
    from imagenot.data import get_dataset, validate

    splits = {}
    for split in ("train", "val"):
        opts = dict(cfg.dataset_options)
        if plan.pipeline == "batched":
            opts.setdefault("image_size", plan.image_size)
        else:  # images at their stored size for the transforms (in memory as stored with in_memory=true)
            opts["stored_size"] = True
        ds = get_dataset(cfg.dataset, split, limit=cfg.limit, **opts)
        validate(ds, what=f"{cfg.dataset} ({split} split)")
        if plan.pipeline == "batched" and int(ds.image_size) < plan.image_size:
            raise ImagenotError(
                f"dataset {cfg.dataset}: {split} images are {ds.image_size}x{ds.image_size} px, smaller than the "
                f"{plan.image_size} px model {cfg.model} takes; pass --image-size, or pick a small-input model")
        splits[split] = ds
    train_ds, val = splits["train"], splits["val"]
    if train_ds.num_classes != val.num_classes:
        raise ImagenotError(f"dataset {cfg.dataset}: train and val splits differ in classes")
    if plan.pipeline == "batched" and int(train_ds.image_size) != int(val.image_size):
        raise ImagenotError(f"dataset {cfg.dataset}: train and val splits differ in image size")
    return _Data(train=train_ds, val=val, classes=list(train_ds.classes), num_classes=int(train_ds.num_classes))


def _build_model(cfg: TrainConfig, num_classes: int, image_size: int) -> tuple[nn.Module, WeightsInfo]:
    """The model and its weights, from `cfg.init`: starting from weights means a new task, so a new head.

    Resuming builds it the same way (same head, same frozen parameters) and the checkpoint then replaces the
    weights.
    """
    from imagenot.models.weights import build_model

    return build_model(cfg.model, num_classes, init=cfg.init, input_size=image_size,
                       replace_head=not cfg.from_scratch, freeze=cfg.finetune_mode == "linear",
                       progress=cfg.progress)


def _transfer_meta(cfg: TrainConfig, weights: WeightsInfo) -> dict[str, Any]:
    """Provenance of the starting weights for result.json, and the normalisation they were trained with."""
    if cfg.from_scratch:
        return {}
    meta = dict(weights.pretrain)
    if cfg.pretrain_name:
        meta["pretrain_dataset"] = cfg.pretrain_name
    if weights.mean is not None and weights.std is not None:
        meta["normalization"] = {"mean": list(weights.mean), "std": list(weights.std)}
    return meta


def build_registry_model(name: str, num_classes: int, image_size: int) -> nn.Module:
    """The registry's model for this input size (fixed-size models such as ViT are built for it)."""
    from imagenot.models import get_model

    return get_model(name, num_classes, input_size=image_size)


def _flops(model_name: str, image_size: int, num_classes: int) -> int | None:
    """Forward FLOPs per image (the registry counts them on the meta device, without touching the model)."""
    from imagenot.models import params_and_flops

    try:
        return int(params_and_flops(model_name, image_size, num_classes)[1])
    except Exception:  # noqa: BLE001 - FLOPs are informative, never a reason to fail a run
        log.warning("could not count FLOPs of %s at %d px", model_name, image_size, exc_info=True)
        return None


def _batch_mix(plan: InputPlan, num_classes: int) -> Any:
    """torchvision.transforms.v2 MixUp / CutMix (one of the two per batch when both are on), or None."""
    from torchvision.transforms import v2

    mixes = []
    if plan.mixup_alpha > 0:
        mixes.append(v2.MixUp(alpha=plan.mixup_alpha, num_classes=num_classes))
    if plan.cutmix_alpha > 0:
        mixes.append(v2.CutMix(alpha=plan.cutmix_alpha, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


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


def _input_summary(state: RunState) -> dict[str, Any]:
    return {**state.plan.to_dict(), **(state.feed.describe() if state.feed is not None else {}),
            "normalization_values": {"mean": state.mean, "std": state.std}}


def _write_start_files(state: RunState) -> None:
    data = state.data
    inputs = {}
    for split, ds in (("train", data.train), ("val", data.val)):
        fingerprint = getattr(ds, "meta", {}).get("fingerprint")
        if fingerprint:
            inputs[f"dataset_{split}"] = fingerprint
    if state.weights is not None and state.weights.sha256:
        inputs["init_weights"] = state.weights.sha256
    rundir.start_run(state.run_dir, state.config_dict, inputs, recipe=to_dict(state.recipe),
                     device=str(state.device), world_size=state.dist.world_size, image_size=state.plan.image_size,
                     input=_input_summary(state))


def _write_predictions(state: RunState, result: EvalResult) -> None:
    cfg = state.cfg
    result.write_predictions(rundir.predictions_path(state.run_dir),
                             dataset=cfg.dataset_name or dataset_display_name(cfg.dataset), split="val",
                             num_classes=state.data.num_classes,
                             extra={"model": cfg.model, "seed": cfg.seed, "dataset_spec": cfg.dataset})
