"""The trainer: one loop for a laptop CPU, a GPU, and torchrun on a cluster.

`train(cfg)` validates everything it can before the first step (names, dataset, image size, run directory,
checkpoint), then trains on in-memory uint8 batches (augmented in batches, converted to float on the device),
evaluates every epoch with each validation image counted exactly once across processes, and checkpoints
atomically every epoch and every N steps. The checkpoint holds the loader position and every RNG state, so
`resume=True` after a kill finishes with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imagenot import rundir
from imagenot.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from imagenot.config import ConfigError, to_dict
from imagenot.errors import ImagenotError
from imagenot.fileio import environment, sha256_file, write_json, write_manifest, write_text
from imagenot.training import batches as B
from imagenot.training.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    destroy,
    gather_objects,
    init_distributed,
)
from imagenot.training.optim import build_ema, build_optimizer, build_scheduler, set_dropout
from imagenot.training.recipes import Recipe, get_recipe

log = logging.getLogger(__name__)

ROLES = (None, "reference", "contrast", "transfer")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    model: str = ""
    dataset: str = ""
    out: str = ""
    recipe: str = "uniform"
    # Field changes applied on top of the recipe (after the override table), e.g. {"lr": 0.01}.
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # None: the recipe's
    batch_size: int | None = None  # global, over all processes; None: the recipe's
    seed: int = 0
    image_size: int | None = None  # None: the model's input size
    limit: int | None = None  # at most this many images per split (quick runs, tests)
    # Extra options of the dataset entry (imagenot.data.get_dataset), e.g. {"num_classes": 4} for synthetic.
    dataset_options: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    dataset_name: str | None = None  # the name in result.json; None: derived from the spec
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False
    deterministic: bool = False
    checkpoint_every_steps: int = 0  # 0: at the end of every epoch only
    log_every_steps: int = 25
    eval_batch_size: int | None = None
    threads: int | None = None
    progress: bool = True
    resume: bool = False
    force: bool = False
    # Fine-tuning (imagenot finetune): start from this finished run's weights with a new head.
    pretrain_run: str | None = None
    finetune_mode: str = "full"  # full | linear (only the new head trains)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"role {self.role!r} not one of reference, contrast, transfer")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} not one of {', '.join(PRECISIONS)}")
        if self.finetune_mode not in ("full", "linear"):
            raise ConfigError(f"finetune_mode {self.finetune_mode!r} not one of full, linear")
        for name in ("epochs", "batch_size", "image_size", "limit", "eval_batch_size", "threads"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")


def dataset_display_name(spec: str) -> str:
    """`wds:/data/imagenot-1k` -> `imagenot-1k`, `cifar10:/x` -> `cifar10`, `fashion-mnist` -> itself."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("wds", "imagefolder") and rest:
        return Path(rest.rstrip("/")).name or kind
    return kind


# --------------------------------------------------------------------------------------------- helpers


def _resolve_device(name: str, info_local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ImagenotError("device cuda requested but no CUDA device is available")
        return torch.device("cuda", info_local_rank)
    return torch.device(name)


def _logits(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Main logits and, for Inception-style models in training mode, the auxiliary logits."""
    if isinstance(output, torch.Tensor):
        return output, None
    main = getattr(output, "logits", None)
    aux = getattr(output, "aux_logits", None)
    if main is None:
        main, aux = output[0], (output[1] if len(output) > 1 else None)
    return main, aux


class _Prep(nn.Module):
    """uint8 [b,C,H,W] -> normalised float on the device; grey images repeated to the model's channels."""

    def __init__(self, mean: list[float], std: list[float], channels: int) -> None:
        super().__init__()
        m = torch.tensor(mean, dtype=torch.float32)
        s = torch.tensor(std, dtype=torch.float32)
        if m.numel() == 1 and channels > 1:
            m, s = m.repeat(channels), s.repeat(channels)
        self.register_buffer("scale", (1.0 / (255.0 * s)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", (m / s).view(1, -1, 1, 1), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return x.to(torch.float32).mul_(self.scale).sub_(self.shift)


def _model_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def _set_train_mode(model: nn.Module, finetune_mode: str) -> None:
    model.train()
    if finetune_mode == "linear":
        # A linear probe keeps the frozen features fixed: batch-norm statistics and dropout included.
        from imagenot.models.heads import find_head

        model.eval()
        find_head(model)[1].train()


@dataclass
class _Data:
    train: Any
    val: Any
    classes: list[str]
    num_classes: int
    image_size: int


def _load_data(cfg: TrainConfig, image_size: int, min_size: int) -> _Data:
    """Both splits, checked before any model is built: non-empty, two classes or more, big enough images."""
    from imagenot.data import get_dataset, validate

    splits = {}
    for split in ("train", "val"):
        ds = get_dataset(cfg.dataset, split, image_size=image_size, limit=cfg.limit, **cfg.dataset_options)
        validate(ds, what=f"{cfg.dataset} ({split} split)")
        size = int(ds.image_size)
        if size < min_size:
            raise ImagenotError(
                f"dataset {cfg.dataset}: {split} images are {size}x{size} px, smaller than the {min_size} px "
                f"model {cfg.model} accepts; pass --image-size {min_size} or more, or pick a small-input model"
            )
        splits[split] = ds
    train, val = splits["train"], splits["val"]
    if train.num_classes != val.num_classes or int(train.image_size) != int(val.image_size):
        raise ImagenotError(f"dataset {cfg.dataset}: train and val splits differ in classes or image size")
    return _Data(train=train, val=val, classes=list(train.classes), num_classes=int(train.num_classes),
                 image_size=int(train.image_size))


def _build_model(
    cfg: TrainConfig, num_classes: int, image_size: int, load_pretrained: bool
) -> tuple[nn.Module, dict]:
    if cfg.pretrain_run:
        from imagenot.transfer.pretrained import build_transfer_model

        return build_transfer_model(cfg.model, cfg.pretrain_run, num_classes, cfg.finetune_mode,
                                    image_size=image_size, load_weights=load_pretrained)
    return build_registry_model(cfg.model, num_classes, image_size), {}


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


def _info_field(info: Any, name: str, default: Any = None) -> Any:
    if isinstance(info, dict):
        return info.get(name, default)
    return getattr(info, name, default)


# ------------------------------------------------------------------------------------------------ train


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume, or return the finished result of) the run `cfg` describes; returns result.json.

    Under torchrun every process calls this with the same config; rank 0 writes the files.
    """
    if not cfg.model or not cfg.dataset or not cfg.out:
        raise ConfigError("train needs model, dataset and out")
    from imagenot.models import check_input_size, model_info

    info_model = model_info(cfg.model)  # unknown names raise here, listing the known ones
    family = _info_field(info_model, "family")
    year = _info_field(info_model, "year")
    image_size = cfg.image_size or int(_info_field(info_model, "input_size", 224))
    min_size = int(_info_field(info_model, "min_input_size", image_size) or image_size)
    check_input_size(cfg.model, image_size)
    recipe = get_recipe(cfg.recipe, cfg.model, family or "", cfg.recipe_overrides)
    epochs = cfg.epochs or recipe.epochs
    global_batch = cfg.batch_size or recipe.batch_size

    dev0 = "cuda" if (cfg.device == "auto" and torch.cuda.is_available()) or cfg.device == "cuda" else "cpu"
    dist_info = init_distributed(dev0)
    # Process-wide torch settings a run changes are put back, so a zoo or a test session is not affected.
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    try:
        return _train(cfg, dist_info, recipe, epochs, global_batch, image_size, min_size, family, year)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        destroy(dist_info)


def _train(
    cfg: TrainConfig, dist_info: DistInfo, recipe: Recipe, epochs: int, global_batch: int, image_size: int,
    min_size: int, family: str | None, year: int | None,
) -> dict[str, Any]:
    from imagenot.models import count_params

    run_dir = Path(cfg.out)
    config_dict = to_dict(cfg)
    config_dict.update(resume=False, force=False)
    # Rank 0 decides about the run directory (it may clear it with --force); the others follow.
    decision: Any = None
    if dist_info.is_main:
        try:
            decision = rundir.check_existing(run_dir, config_dict, resume=cfg.resume, force=cfg.force)
        except ImagenotError as exc:
            decision = exc
    decision = broadcast_object(decision, dist_info)
    if isinstance(decision, Exception):
        raise decision
    if decision == "finished":
        log.info("%s is finished (result.json present); not retraining (use --force to retrain)", run_dir)
        return rundir.read_result(run_dir)

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _resolve_device(cfg.device, dist_info.local_rank)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"

    data = _load_data(cfg, image_size, min_size)

    ckpt = None
    ckpt_path = rundir.checkpoint_path(run_dir)
    expect = {"model": cfg.model, "num_classes": data.num_classes, "dataset": cfg.dataset, "seed": cfg.seed}
    if decision == "resume":
        ckpt = load_checkpoint(ckpt_path, expect=expect)
        if ckpt["meta"].get("world_size") != dist_info.world_size:
            log.warning("resuming a %s-process run with %s processes: the data order is the same, "
                        "RNG streams for dropout are not", ckpt["meta"].get("world_size"), dist_info.world_size)

    torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model, transfer_meta = _build_model(cfg, data.num_classes, image_size, load_pretrained=ckpt is None)
    set_dropout(model, recipe.dropout)
    # Normalise with the training data's own channel statistics (streamed data: the registry's 0.5/0.5).
    if hasattr(data.train, "channel_stats"):
        mean, std = data.train.channel_stats()
    else:
        mean, std = [0.5] * int(data.train.channels), [0.5] * int(data.train.channels)
    prep = _Prep(mean, std, _model_channels(model)).to(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    n_params = int(count_params(model))
    flops = _flops(cfg.model, image_size, data.num_classes)

    rank_batch = global_batch // dist_info.world_size
    from imagenot.data import BatchLoader

    if global_batch % dist_info.world_size:
        raise ImagenotError(f"batch size {global_batch} is not divisible by the {dist_info.world_size} "
                            "processes; --batch-size is the global batch over all processes")
    loader = BatchLoader(data.train, rank_batch, shuffle=True, seed=cfg.seed, drop_last=True,
                         rank=dist_info.rank, world_size=dist_info.world_size)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ImagenotError(f"dataset {cfg.dataset}: the train split has {len(data.train)} images, fewer than "
                            f"one batch of {global_batch}; lower --batch-size or use more data")
    total_steps = steps_per_epoch * epochs
    peak_lr = recipe.scaled_lr(global_batch)
    optimizer = build_optimizer(model, recipe, peak_lr)
    scheduler = build_scheduler(optimizer, recipe, total_steps)
    ema = build_ema(model, recipe)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    start_epoch, start_step = 0, 0
    epoch_loss_sum, epoch_seen = 0.0, 0
    history: list[dict[str, Any]] = []
    elapsed_before = 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.load_state_dict(ckpt["ema"])
        start_epoch, start_step = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        epoch_loss_sum, epoch_seen = float(ckpt["epoch_loss_sum"]), int(ckpt["epoch_seen"])
        history = list(ckpt["history"])
        elapsed_before = float(ckpt["elapsed_s"])
        rngs = ckpt["rng"]
        if len(rngs) == dist_info.world_size:
            set_rng_state(rngs[dist_info.rank])
        log.info("resuming %s at epoch %d, step %d of %d", run_dir, start_epoch + 1, start_step,
                 steps_per_epoch)
    else:
        torch.manual_seed(cfg.seed * 1000 + dist_info.rank)  # dropout streams differ per rank

    net: nn.Module = model
    if dist_info.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    fwd: Any = torch.compile(net) if cfg.compile else net

    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / rundir.CONFIG, config_dict)
        inputs = {}
        for split, ds in (("train", data.train), ("val", data.val)):
            fingerprint = getattr(ds, "meta", {}).get("fingerprint")
            if fingerprint:
                inputs[f"dataset_{split}"] = fingerprint
        if cfg.pretrain_run:
            pre_ckpt = rundir.checkpoint_path(cfg.pretrain_run)
            if pre_ckpt.is_file():
                inputs["pretrain_checkpoint"] = sha256_file(pre_ckpt)
        write_manifest(run_dir, config_dict, inputs, recipe=to_dict(recipe), device=str(device),
                       world_size=dist_info.world_size, image_size=image_size)

    meta = {**expect, "world_size": dist_info.world_size, "image_size": image_size,
            "family": family, "pretrain_run": cfg.pretrain_run, "finetune_mode": cfg.finetune_mode}

    def checkpoint(epoch: int, step_in_epoch: int, loss_sum: float, seen: int, elapsed: float) -> None:
        rngs = gather_objects(rng_state(), dist_info)
        if not dist_info.is_main:
            return
        state = {
            "meta": meta,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "ema": ema.state_dict() if ema is not None else None,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "epoch_loss_sum": loss_sum,
            "epoch_seen": seen,
            "history": history,
            "elapsed_s": elapsed,
            "rng": rngs,
            "normalization": {"mean": mean, "std": std},
            "classes": data.classes,
        }
        save_checkpoint(ckpt_path, state)

    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
        if precision in ("bf16", "fp16") else contextlib.nullcontext()
    )
    mem_format = torch.channels_last if channels_last else torch.contiguous_format
    from tqdm.auto import tqdm

    pin = device.type == "cuda"
    session_start = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        epoch_start = time.perf_counter()
        loader.set_epoch(epoch)
        _set_train_mode(model, cfg.finetune_mode)
        first = start_step if epoch == start_epoch else 0
        if epoch != start_epoch:
            epoch_loss_sum, epoch_seen = 0.0, 0
        # Summed where the loss lives: reading it back (a device sync) happens only every log_every_steps.
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        bar = tqdm(total=steps_per_epoch, initial=first, desc=f"{cfg.model} epoch {epoch + 1}/{epochs}",
                   disable=not (cfg.progress and dist_info.is_main), leave=False, mininterval=1.0,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        prefetch = B.Prefetcher(_prepared_batches(loader, first, epoch, cfg.seed, recipe, dist_info, pin))
        try:
            for step, xb, yb in prefetch:
                y = yb.to(device, non_blocking=True)
                x = prep(xb.to(device, non_blocking=True)).contiguous(memory_format=mem_format)
                with autocast:
                    main, aux = _logits(fwd(x))
                    loss = criterion(main, y)
                    if aux is not None:
                        loss = loss + 0.4 * criterion(aux, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if recipe.clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                global_step = epoch * steps_per_epoch + step + 1
                if ema is not None and global_step % recipe.ema_every_steps == 0:
                    ema.update_parameters(model)
                loss_acc += loss.detach().to(torch.float64) * rank_batch
                epoch_seen += rank_batch
                if not bar.disable and ((step + 1) % cfg.log_every_steps == 0 or step + 1 == steps_per_epoch):
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(loss=f"{float(loss_acc + epoch_loss_sum) / max(epoch_seen, 1):.4f}",
                                    lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
                if (cfg.checkpoint_every_steps and global_step % cfg.checkpoint_every_steps == 0
                        and step + 1 < steps_per_epoch):
                    epoch_loss_sum += float(loss_acc)
                    loss_acc.zero_()
                    checkpoint(epoch, step + 1, epoch_loss_sum, epoch_seen,
                               elapsed_before + time.perf_counter() - session_start)
        finally:
            prefetch.close()
        train_time = time.perf_counter() - t0
        bar.close()
        epoch_loss_sum += float(loss_acc)
        totals = all_reduce_sum(torch.tensor([epoch_loss_sum, float(epoch_seen)], dtype=torch.float64),
                                dist_info)
        train_loss = float(totals[0] / max(totals[1], 1.0))
        val = evaluate(ema.module if ema is not None else model, prep, data.val, device, dist_info, autocast,
                       cfg.eval_batch_size or max(rank_batch, 256), mem_format)
        trained_images = (steps_per_epoch - first) * global_batch
        row = {
            "epoch": epoch + 1,
            "step": (epoch + 1) * steps_per_epoch,
            "train_loss": train_loss,
            "val_loss": val["loss"],
            "top1": val["top1"],
            "top5": val["top5"],
            "val_images": val["count"],
            "lr": float(scheduler.get_last_lr()[0]),
            "images_per_s": trained_images / train_time if train_time > 0 else None,
            "time_s": time.perf_counter() - epoch_start,
        }
        if not all(math.isfinite(v) for v in (train_loss, val["loss"])):
            log.warning("%s epoch %d: non-finite loss (train %s, val %s)", cfg.model, epoch + 1, train_loss,
                        val["loss"])
        history.append(row)
        log.info("%s %s epoch %d/%d: train_loss %.4f val_loss %.4f top1 %.2f top5 %.2f (%.0f img/s)",
                 cfg.model, dataset_display_name(cfg.dataset), epoch + 1, epochs, train_loss, val["loss"],
                 val["top1"], val["top5"], row["images_per_s"] or 0.0)
        checkpoint(epoch + 1, 0, 0.0, 0, elapsed_before + time.perf_counter() - session_start)
        if dist_info.is_main:
            write_text(run_dir / rundir.METRICS, "".join(_json_line(r) for r in history))
        epoch_loss_sum, epoch_seen = 0.0, 0

    wall = elapsed_before + time.perf_counter() - session_start
    last = history[-1] if history else {}
    result = {
        "model": cfg.model,
        "family": family,
        "year": year,
        "dataset": cfg.dataset_name or dataset_display_name(cfg.dataset),
        "dataset_spec": cfg.dataset,
        "role": cfg.role,
        "pretrain_dataset": transfer_meta.get("pretrain_dataset"),
        "pretrain_run": transfer_meta.get("pretrain_run"),
        "pretrain_top1": transfer_meta.get("pretrain_top1"),
        "finetune_mode": cfg.finetune_mode if cfg.pretrain_run else None,
        "seed": cfg.seed,
        "top1": last.get("top1"),
        "top5": last.get("top5"),
        "val_loss": last.get("val_loss"),
        "train_loss": last.get("train_loss"),
        "epochs": epochs,
        "steps": total_steps,
        "wall_time_s": wall,
        "params": n_params,
        "flops": flops,
        "image_size": image_size,
        "num_classes": data.num_classes,
        "train_images": len(data.train),
        "val_images": len(data.val),
        "batch_size": global_batch,
        "recipe": recipe.name,
        "recipe_params": to_dict(recipe),
        "world_size": dist_info.world_size,
        "device": str(device.type),
        "precision": precision,
        "environment": environment(device=str(device)),
    }
    if dist_info.is_main:
        write_json(rundir.result_path(run_dir), result)
    barrier(dist_info)
    return result


def _prepared_batches(loader: Any, first: int, epoch: int, seed: int, recipe: Recipe, dist_info: DistInfo,
                      pin: bool) -> Any:
    """(step, augmented uint8 batch, labels) for this rank from batch `first` of `epoch` on."""
    for step, (xb, yb) in enumerate(B.iterate_from(loader, first), start=first):
        x = B.augment_batch(xb, recipe.augment, recipe.crop_padding, B.generator(seed, 104729, epoch, step),
                            dist_info.rank, dist_info.world_size)
        yield step, (x.pin_memory() if pin else x), yb


def _json_line(row: dict[str, Any]) -> str:
    import json

    return json.dumps(row) + "\n"


@torch.no_grad()
def evaluate(
    model: nn.Module, prep: nn.Module, ds: Any, device: torch.device, dist_info: DistInfo,
    autocast: Any = None, batch_size: int = 256, mem_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, float]:
    """Loss, top-1 and top-5 (percent) over the whole split; each image counted once across ranks."""
    from imagenot.data import BatchLoader

    was_training = model.training
    model.eval()
    loader = BatchLoader(ds, batch_size, shuffle=False, drop_last=False, rank=dist_info.rank,
                         world_size=dist_info.world_size, even=False)
    sums = torch.zeros(4, dtype=torch.float64)  # loss sum, top1 correct, top5 correct, count
    crit = nn.CrossEntropyLoss(reduction="sum")
    ctx = autocast if autocast is not None else contextlib.nullcontext()
    for xb, yb in B.iterate_from(loader):
        x = prep(xb.to(device)).contiguous(memory_format=mem_format)
        y = yb.to(device)
        with ctx:
            out, _ = _logits(model(x))
        out = out.float()
        k = min(5, out.shape[1])
        hit = out.topk(k, dim=1).indices.eq(y[:, None])
        part = torch.stack([crit(out, y), hit[:, 0].sum(), hit.any(dim=1).sum(),
                            torch.tensor(y.numel(), device=out.device)]).double().cpu()
        sums += part
    sums = all_reduce_sum(sums, dist_info)
    n = max(float(sums[3]), 1.0)
    model.train(was_training)
    return {"loss": float(sums[0]) / n, "top1": 100.0 * float(sums[1]) / n, "top5": 100.0 * float(sums[2]) / n,
            "count": int(sums[3])}

