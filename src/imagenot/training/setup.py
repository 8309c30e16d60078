"""Setting a run up: its plan (names, recipe, input plan, checked before anything is touched), then the steps
of `setup` (numerics, run directory, runtime, data, model, optimisation, resume, wrapping, start files)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from imagenot import rundir, runtime
from imagenot.checkpoint import load_checkpoint
from imagenot.config import to_dict, to_record
from imagenot.errors import ImagenotError
from imagenot.lock import output_lock
from imagenot.spec import Spec
from imagenot.training.checkpointing import restore
from imagenot.training.config import TrainConfig
from imagenot.training.distributed import DistInfo, broadcast_object
from imagenot.training.evaluation import Normalize, model_channels
from imagenot.training.inputs import (
    InputPlan,
    TrainFeed,
    default_workers,
    resolve_normalization,
    resolve_plan,
)
from imagenot.training.optim import build_ema, build_optimizer, build_scheduler, set_dropout
from imagenot.training.precision import prepare_model, resolve_numerics
from imagenot.training.recipes import get_recipe
from imagenot.training.state import RunData, RunState

if TYPE_CHECKING:
    from imagenot.models.weights import WeightsInfo

log = logging.getLogger(__name__)


def run_record(cfg: TrainConfig) -> dict[str, Any]:
    """The config.json `cfg` writes (resolved recipe and input plan included), without running anything:
    what a zoo compares a finished run with (`imagenot.rundir.fingerprint`)."""
    return plan_run(cfg).config_dict


def plan_run(cfg: TrainConfig) -> RunState:
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
        resolved["init_fingerprint"] = rundir.recorded_fingerprint(Spec.parse(cfg.init).arg or "")
    config_dict["resolved"] = json.loads(json.dumps(resolved))
    return RunState(cfg=cfg, dist=DistInfo(), run_dir=Path(cfg.out), recipe=recipe, plan=plan, epochs=epochs,
                    global_batch=global_batch, family=info.family, year=info.year, config_dict=config_dict)


def setup(state: RunState) -> dict[str, Any] | None:
    """Check the run directory, load data, build the model and everything around it; restore a checkpoint.

    Returns the result of an already finished run instead (nothing is retrained).
    """
    resolve_run_numerics(state)
    decision = claim_run_dir(state)
    if decision == "finished":
        log.info("%s is finished (result.json present); not retraining (use --force to retrain)", state.run_dir)
        return rundir.read_result(state.run_dir)
    apply_runtime(state)
    state.data = load_data(state.cfg, state.plan)
    ckpt = resume_checkpoint(state) if decision == "resume" else None
    build_model_parts(state)
    build_optimization(state)
    if ckpt is not None:
        restore(state, ckpt)
    else:
        torch.manual_seed(state.cfg.seed * 1000 + state.dist.rank)  # dropout streams differ per rank
    wrap_model(state)
    if state.dist.is_main:
        _write_start_files(state)
    state.pos.session_start = time.perf_counter()
    return None


def claim_run_dir(state: RunState) -> str:
    """'fresh', 'resume' or 'finished' (rundir.check_existing). Rank 0 decides about the run directory (it may
    clear it with --force); the others follow. It first takes the folder's lock (one writer per run folder): a
    refusal reaches every rank, so none waits for it."""
    cfg, dist = state.cfg, state.dist
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
    return decision


def apply_runtime(state: RunState) -> None:
    """The batch split over processes, torch's threads and determinism, the loader workers."""
    cfg, dist = state.cfg, state.dist
    if state.global_batch % dist.world_size:
        raise ImagenotError(f"batch size {state.global_batch} is not divisible by the {dist.world_size} "
                            "processes; --batch-size is the global batch over all processes")
    runtime.set_threads(cfg.threads)
    runtime.set_determinism(cfg.deterministic, state.device)
    if state.plan.gpu_decode and state.device.type != "cuda":
        log.warning("gpu_decode on %s: images are decoded by the CPU decoder in the main process", state.device)
    state.workers = cfg.workers if cfg.workers is not None else default_workers(dist)


def checkpoint_meta(state: RunState) -> dict[str, Any]:
    """What a checkpoint of this run must be for (checked on resume): model, classes, dataset, seed."""
    cfg = state.cfg
    return {"model": cfg.model, "num_classes": state.data.num_classes, "dataset": cfg.dataset, "seed": cfg.seed}


def resume_checkpoint(state: RunState) -> dict[str, Any]:
    """The run's own checkpoint, checked to be this run's."""
    ckpt = load_checkpoint(rundir.checkpoint_path(state.run_dir), expect=checkpoint_meta(state))
    if ckpt["meta"].get("world_size") != state.dist.world_size:
        log.warning("resuming a %s-process run with %s processes: the data order is the same, RNG streams "
                    "for dropout are not", ckpt["meta"].get("world_size"), state.dist.world_size)
    return ckpt


def build_model_parts(state: RunState) -> None:
    """The model from `init` (same initial weights on every rank), its normalisation and numerics, its size."""
    from imagenot.models import count_params

    cfg = state.cfg
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
    state.n_params = int(count_params(model))
    state.flops = _flops(cfg.model, state.plan.image_size, state.data.num_classes)


def build_optimization(state: RunState) -> None:
    """The training feed, optimizer, schedule, EMA, scaler, loss and batch mixing; the checkpoint meta."""
    cfg, recipe, model = state.cfg, state.recipe, state.model
    state.feed = TrainFeed(state.plan, state.data.train, rank_batch=state.rank_batch,
                           global_batch=state.global_batch, seed=cfg.seed, recipe=recipe, dist=state.dist,
                           device=state.device, workers=state.workers, shuffle_buffer=cfg.shuffle_buffer,
                           mean=state.mean)
    if state.steps_per_epoch == 0:
        raise ImagenotError(f"dataset {cfg.dataset}: the train split has {len(state.data.train)} images, fewer "
                            f"than one batch of {state.global_batch}; lower --batch-size or use more data")
    state.optimizer = build_optimizer(model, recipe, recipe.scaled_lr(state.global_batch))
    state.scheduler = build_scheduler(state.optimizer, recipe, state.steps_per_epoch, state.epochs)
    state.ema = build_ema(model, recipe, state.global_batch, state.epochs)
    state.scaler = torch.amp.GradScaler(state.device.type, enabled=state.precision == "fp16")
    state.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    state.mix = _batch_mix(state.plan, state.data.num_classes)
    state.meta = {**checkpoint_meta(state), "world_size": state.dist.world_size, "image_size": state.plan.image_size,
                  "family": state.family, "init": cfg.init, "finetune_mode": cfg.finetune_mode}


def wrap_model(state: RunState) -> None:
    """The forward the loop calls: the model, in DistributedDataParallel under torchrun, compiled if asked."""
    net: nn.Module = state.model
    if state.dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            state.model, device_ids=[state.device.index] if state.device.type == "cuda" else None)
    state.fwd = torch.compile(net) if state.cfg.compile else net


def resolve_run_numerics(state: RunState) -> None:
    """Device, precision, memory format and fp32 layers of the run, resolved before the run directory is
    checked. config.json keeps what was asked for (`precision: auto` resolves the same on the same machine, so
    a replay runs the same numerics) and records the resolution under `resolved.numerics`, which is not part of
    the run's identity (rundir.fingerprint): "auto" trained on a GPU node is the same experiment for a zoo
    that checks it on a CPU login node."""
    cfg = state.cfg
    state.device = runtime.resolve_device(cfg.device, state.dist.local_rank)
    numerics = resolve_numerics(state.device, cfg.precision, cfg.channels_last, cfg.fp32_grouped_convs)
    state.numerics = numerics
    state.config_dict.setdefault("resolved", {})["numerics"] = {
        "precision": numerics.precision, "channels_last": numerics.channels_last,
        "fp32_grouped_convs": numerics.fp32_grouped_convs}
    log.info("%s: %s%s%s (%s)", cfg.model, numerics.precision, ", channels_last" if numerics.channels_last else "",
             ", grouped convolutions in fp32" if numerics.fp32_grouped_convs else "", numerics.why)


def load_data(cfg: TrainConfig, plan: InputPlan) -> RunData:
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
    return RunData(train=train_ds, val=val, classes=list(train_ds.classes), num_classes=int(train_ds.num_classes))


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
                     input=state.input_summary())
