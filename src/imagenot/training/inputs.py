"""What a run feeds its model: the input plan (which pipeline, which transforms) and the batch feeds.

Two pipelines, chosen per model (`TrainConfig.pipeline`, "auto" by default):

* `batched` (small-input variants, small datasets): images are resized once at load time, kept as uint8
  (in memory, or decoded on demand), and cropped with padding and flipped for the whole batch in one gather
  on a background thread. Fast on a laptop CPU, where per-sample work dominates a small model's step.
* `per_sample` (every full-size model): each image is decoded at its own size and transformed in DataLoader
  workers the way torchvision's references do (RandomResizedCrop + flip + auto-augment + RandomErasing for
  training, Resize + CenterCrop for evaluation, sizes and interpolation from the model's torchvision weights
  and the recipe), then MixUp/CutMix mix the batch on the device.

Either way a batch reaches the device as uint8 and the trainer normalises it there, in one place, with one
mean/std for every data path. Three ways of reading: `memory` (an in-memory uint8 dataset), `random`
(files or tar byte ranges by index, in DataLoader workers; also how every evaluation reads) and
`sequential` (webdataset shards streamed in order, `imagenot.data.wds_stream`). `gpu_decode` decodes JPEGs
on the GPU (torchvision.io.decode_jpeg) and applies the per-sample transforms there, for machines whose CPUs
cannot keep up.

Every augmentation draw is a function of (seed, epoch, position), so a feed restarted at (epoch, step)
yields exactly the batches an uninterrupted run sees (sequential shards: see wds_stream for the condition).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from imagenot.config import ConfigError
from imagenot.data.loader import private_generator
from imagenot.data.transforms import EvalTransform, TrainTransform, erase_fill
from imagenot.errors import InputError
from imagenot.training import batches
from imagenot.training.distributed import DistInfo
from imagenot.training.recipes import Recipe

log = logging.getLogger(__name__)

PIPELINES = ("batched", "per_sample")
PREFETCH_BATCHES = 4  # per DataLoader worker


@dataclass(frozen=True)
class InputPlan:
    """The resolved input side of a run (written to config.json as `resolved.input`).

    `image_size` is the side the model is built for (the batched input, or the per-sample training crop);
    `eval_size` the side it is evaluated at.
    """

    pipeline: str
    image_size: int
    eval_size: int
    train: TrainTransform | None
    eval: EvalTransform | None
    augment: str | None
    crop_padding: int | None
    normalization: str
    mixup_alpha: float
    cutmix_alpha: float
    ra_reps: int
    wds_read: str
    gpu_decode: bool
    transforms_from: str | None  # the torchvision weights the default sizes come from

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["train"] is not None:
            out["train"].pop("erase_value", None)  # the normalisation mean, known once the data are
        return out


def resolve_plan(cfg: Any, recipe: Recipe, model: str) -> InputPlan:
    """The input plan of `cfg` (a TrainConfig) for `model`, checked before anything is loaded or built.

    Sizes: the model's torchvision weights (`transform_defaults`) < the recipe row < `--image-size` (which
    sets both crops and scales the resize like the weights do) < sizes the user set with `--set`.
    """
    from imagenot.models import check_input_size, model_info
    from imagenot.models.weights import transform_defaults

    info = model_info(model)
    pipeline = cfg.pipeline if cfg.pipeline != "auto" else ("per_sample" if info.full_size else "batched")
    normalization = cfg.normalization
    if normalization == "auto":
        normalization = "pretrained" if not cfg.from_scratch else default_normalization(model)
    common = dict(normalization=normalization, mixup_alpha=recipe.mixup_alpha,
                  cutmix_alpha=recipe.cutmix_alpha, ra_reps=recipe.ra_reps, wds_read=cfg.wds_read,
                  gpu_decode=cfg.gpu_decode)
    if pipeline == "batched":
        per_sample_only = [f for f in ("auto_augment", "random_erase") if getattr(recipe, f)]
        if per_sample_only:
            raise ConfigError(f"model {model}: recipe {recipe.name} asks for {', '.join(per_sample_only)}, which "
                              "only the per_sample pipeline applies; pass --pipeline per_sample or drop them")
        if cfg.gpu_decode:
            raise ConfigError("--gpu-decode needs the per_sample pipeline (the batched one decodes once, at load)")
        size = int(cfg.image_size or info.input_size)
        check_input_size(model, size)
        return InputPlan("batched", size, size, None, None, recipe.augment, recipe.crop_padding,
                         transforms_from=None, **common)
    d = transform_defaults(model)
    train_crop = recipe.train_crop_size or d.train_crop
    val_resize = recipe.val_resize_size or d.val_resize
    val_crop = recipe.val_crop_size or d.val_crop
    if cfg.image_size:
        train_crop = val_crop = int(cfg.image_size)
        val_resize = int(round(cfg.image_size * d.val_resize / d.val_crop))
        user = cfg.recipe_overrides or {}
        train_crop = int(user.get("train_crop_size") or train_crop)
        val_resize = int(user.get("val_resize_size") or val_resize)
        val_crop = int(user.get("val_crop_size") or val_crop)
    if val_crop > val_resize:
        raise InputError(f"model {model}: the evaluation crop ({val_crop} px) is larger than the resized image "
                         f"({val_resize} px shorter side); raise val_resize_size or lower val_crop_size")
    check_input_size(model, train_crop)
    check_input_size(model, val_crop)
    if info.fixed_input and train_crop != val_crop:
        raise InputError(f"model {model} is built for one input size, but trains at {train_crop} px and "
                         f"evaluates at {val_crop} px; set train_crop_size and val_crop_size equal")
    train_tf = TrainTransform(
        crop=train_crop, interpolation=recipe.train_interpolation or "bilinear", auto_augment=recipe.auto_augment,
        ra_magnitude=recipe.ra_magnitude, augmix_severity=recipe.augmix_severity,
        random_erase=recipe.random_erase,
    )
    eval_tf = EvalTransform(val_resize, val_crop, recipe.val_interpolation or d.interpolation)
    return InputPlan("per_sample", train_crop, val_crop, train_tf, eval_tf, None, None,
                     transforms_from=d.weights, **common)


def eval_transform_for(model: str, recipe: Recipe | None = None, image_size: int | None = None) -> EvalTransform:
    """A full-size model's evaluation transform: its torchvision weights' sizes (or the recipe's, or
    `image_size` for both crops with the resize scaled alike)."""
    from imagenot.models.weights import transform_defaults

    d = transform_defaults(model)
    r = recipe or Recipe()
    resize, crop = r.val_resize_size or d.val_resize, r.val_crop_size or d.val_crop
    if image_size:
        resize, crop = int(round(image_size * d.val_resize / d.val_crop)), int(image_size)
    return EvalTransform(resize, crop, r.val_interpolation or d.interpolation)


def default_normalization(model: str) -> str:
    """ImageNet's statistics for full-size models (as torchvision trains them); the training split's own for
    the small-input variants, whose data (gray Fashion-MNIST, clip art on white) are far from ImageNet's."""
    from imagenot.models import model_info

    return "imagenet" if model_info(model).full_size else "dataset"


def resolve_normalization(mode: str, model: str, dataset: Any,
                          weights: tuple[Any, Any] | None = None, what: str | None = None
                          ) -> tuple[list[float], list[float]]:
    """The one mean/std of a run (training or evaluation): `pretrained` is the starting weights' own
    (`weights`: their (mean, std), None when they record none, then the model's default below); `dataset`
    the split's own channel statistics; otherwise a named one (imagenot.runtime.NORMALIZATIONS). `what`
    names the weights in a warning when the split's statistics stand in for theirs."""
    if mode == "pretrained":
        if weights is not None and weights[0] is not None and weights[1] is not None:
            return [float(v) for v in weights[0]], [float(v) for v in weights[1]]
        mode = default_normalization(model)
        if mode == "dataset" and what:
            log.warning("%s does not record the normalisation it was trained with; using the split's own channel "
                        "statistics", what)
    if mode == "dataset":
        from imagenot.data.stats import channel_stats

        return channel_stats(dataset)
    from imagenot.runtime import NORMALIZATIONS

    mean, std = NORMALIZATIONS[mode]
    return list(mean), list(std)


def default_workers(dist: DistInfo) -> int:
    """DataLoader workers per process: the CPUs of this node shared by its processes, at most 8."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size if dist.enabled else 1))
    return max(1, min(8, (os.cpu_count() or 1) // max(local, 1)))


def read_mode(ds: Any, wds_read: str) -> str:
    if not getattr(ds, "streaming", False) or getattr(ds, "meta", {}).get("in_memory") == "encoded":
        return "memory"  # decoded arrays, or (per-sample pipeline, in_memory=true) the stored files' bytes
    is_wds = str(getattr(ds, "name", "")).startswith("wds:")
    if wds_read == "sequential" and not is_wds:
        raise ConfigError(f"wds_read=sequential needs a wds: dataset, not {ds.name}")
    if is_wds and wds_read in ("auto", "sequential"):
        return "sequential"
    return "random"


class TrainFeed:
    """One rank's training batches: `epoch(e, first)` yields (step, uint8 x, int64 y) from batch `first` on.

    x is on the CPU (pinned when the device is CUDA) or, with GPU decoding, already on the device.
    """

    def __init__(self, plan: InputPlan, ds: Any, *, rank_batch: int, global_batch: int, seed: int,
                 recipe: Recipe, dist: DistInfo, device: torch.device, workers: int, shuffle_buffer: int,
                 mean: list[float]) -> None:
        from imagenot.data import BatchLoader

        self.plan, self.ds, self.recipe, self.dist, self.device = plan, ds, recipe, dist, device
        self.seed, self.rank_batch = int(seed), int(rank_batch)
        self.pin = device.type == "cuda"
        self.mode = read_mode(ds, plan.wds_read)
        self.workers = int(workers)
        self.transform = None
        if plan.train is not None:
            self.transform = dataclasses.replace(plan.train, erase_value=erase_fill(mean)).build()
        self._loader = None
        self._sampler = None
        self._stream = None
        if self.mode == "sequential":
            self.steps_per_epoch = len(ds) // global_batch
            self._stream = _shard_stream(ds, plan, self.transform, rank_batch, self.steps_per_epoch, seed, dist,
                                         shuffle_buffer)
            self._loader = self._dataloader(self._stream, batch_size=rank_batch)
        else:
            self._batches = BatchLoader(ds, rank_batch, shuffle=True, seed=seed, drop_last=True, rank=dist.rank,
                                        world_size=dist.world_size, num_workers=min(self.workers, 2),
                                        repeats=plan.ra_reps)
            self.steps_per_epoch = len(self._batches)
            if plan.pipeline == "per_sample":
                from imagenot.data.samples import SampleDataset, SeededBatches

                self._sampler = SeededBatches(self._batches, seed, salt=104723)
                sample_ds = SampleDataset(ds, self.transform, decode=not _device_decodes(plan, ds))
                self._loader = self._dataloader(sample_ds, batch_sampler=self._sampler)

    def _dataloader(self, dataset: Any, **kw: Any) -> Any:
        from torch.utils.data import DataLoader

        from imagenot.data.samples import collate

        extra = {"persistent_workers": True, "prefetch_factor": PREFETCH_BATCHES} if self.workers > 0 else {}
        pin = self.pin and not _device_decodes(self.plan, self.ds)
        return DataLoader(dataset, num_workers=self.workers, pin_memory=pin,
                          generator=private_generator(),
                          collate_fn=collate, **extra, **kw)

    def epoch(self, epoch: int, first: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        if self._loader is None:  # batched, from memory or by index: the prefetch thread prepares batches
            self._batches.set_epoch(epoch)
            prefetch = batches.Prefetcher(self._batched(batches.iterate_from(self._batches, first), first, epoch))
            try:
                yield from prefetch
            finally:
                prefetch.close()
            return
        if self._stream is not None:
            self._stream.set_epoch(epoch, first)
        else:
            self._sampler.set_epoch(epoch, first)
        raw = ((x, y) for x, y, _, _ in self._device_decoded(iter(self._loader)))
        if self.plan.pipeline == "batched":
            yield from self._batched(raw, first, epoch)
            return
        for step, (x, y) in enumerate(raw, start=first):
            if step >= self.steps_per_epoch:
                break
            yield step, x, y

    def _batched(self, raw: Iterator[tuple[torch.Tensor, torch.Tensor]], first: int,
                 epoch: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """Batched crop/flip with draws for the global batch, seeded by (seed, epoch, step)."""
        for step, (xb, yb) in enumerate(raw, start=first):
            if step >= self.steps_per_epoch:
                return
            x = batches.augment_batch(xb, self.plan.augment or "none", self.plan.crop_padding or 0,
                                batches.generator(self.seed, 104729, epoch, step), self.dist.rank, self.dist.world_size)
            yield step, (x.pin_memory() if self.pin else x), yb

    def _device_decoded(self, batches: Iterator[Any]) -> Iterator[Any]:
        if not self.plan.gpu_decode:
            yield from batches
            return
        from imagenot.data.samples import decode_on_device

        for x, y, idx, seeds in batches:
            if isinstance(x, list):  # encoded images (in-memory arrays arrive decoded)
                x = decode_on_device(x, seeds, self.transform, self.device)
            yield x, y, idx, seeds

    def describe(self) -> dict[str, Any]:
        return {"read": self.mode, "workers": self.workers, "steps_per_epoch": self.steps_per_epoch,
                "pin_memory": self.pin}

    def close(self) -> None:
        it = getattr(self._loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self._loader = None


def _device_decodes(plan: InputPlan, ds: Any) -> bool:
    """Whether images reach the main process encoded, to be decoded on the device (files only)."""
    return plan.gpu_decode and hasattr(ds, "encoded")


def _shard_stream(ds: Any, plan: InputPlan, transform: Any, rank_batch: int, steps: int, seed: int,
                  dist: DistInfo, shuffle_buffer: int) -> Any:
    """A ShardStream over the shards of a streamed wds dataset (only the selected keys, after --limit)."""
    import numpy as np

    from imagenot.data.streaming import fit_square
    from imagenot.data.wds_stream import ShardStream

    records = ds.records
    shards = [records.files[i] for i in sorted(set(np.asarray(records.file_ids).tolist()))]
    keep = frozenset(records.keys) if ds.meta.get("subsampled") else None
    if plan.pipeline == "batched":
        transform = partial(fit_square, size=int(ds.image_size))
    return ShardStream(shards, len(records), transform, batch_size=rank_batch, steps_per_epoch=steps, seed=seed,
                       rank=dist.rank, world_size=dist.world_size, shuffle_buffer=shuffle_buffer,
                       repeats=plan.ra_reps, channels=int(ds.channels), keep_keys=keep,
                       decode=not plan.gpu_decode)


def eval_batches(ds: Any, transform: EvalTransform | None, *, batch_size: int, dist: DistInfo,
                 device: torch.device, workers: int = 0, gpu_decode: bool = False
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(uint8 x, labels, split indices) of this rank's share of `ds` (every image once over all ranks).

    Without a transform the images are taken as the dataset holds them (the batched pipeline's fixed size);
    with one, each image is decoded at its own size and resized and centre-cropped in `workers` processes.
    """
    from imagenot.data import BatchLoader

    loader = BatchLoader(ds, batch_size, shuffle=False, drop_last=False, rank=dist.rank,
                         world_size=dist.world_size, even=False, num_workers=min(workers, 2))
    if transform is None:
        for xb, yb, idx in loader.iter_indexed():
            yield xb, yb, idx
        return
    from torch.utils.data import DataLoader

    from imagenot.data.samples import SampleDataset, SeededBatches, collate, decode_on_device

    tf = transform.build()
    on_device = gpu_decode and hasattr(ds, "encoded")
    sample_ds = SampleDataset(ds, tf, decode=not on_device)
    dl = DataLoader(sample_ds, batch_sampler=SeededBatches(loader, 0), num_workers=workers, collate_fn=collate,
                    generator=private_generator(), pin_memory=device.type == "cuda" and not on_device)
    for x, y, idx, seeds in dl:
        if on_device:
            x = decode_on_device(x, seeds, tf, device)
        yield x, y, idx


def split_images(spec: str, split: str, options: dict[str, Any] | None = None, limit: int | None = None) -> int | None:
    """How many images a run on split `split` of `spec` passes over per epoch, from the dataset's idx header or
    card without loading it (None: only loading would tell). For schedulers (the zoo's start order)."""
    from imagenot.data import count_images

    opts = dict(options or {})
    if limit is not None:
        opts["limit"] = limit
    return count_images(spec, split, **opts)
