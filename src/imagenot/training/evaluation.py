"""Evaluation as a library function: any model, any dataset split, the model's eval transforms, no run needed.

    from imagenot.data import get_dataset
    from imagenot.data.transforms import EvalTransform
    from imagenot.training.evaluation import evaluate

    val = get_dataset("imagefolder:/data/imagenot", "val", in_memory=False)
    res = evaluate(model, val, "cuda", transform=EvalTransform(resize=256, crop=224), batch_size=256,
                   mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), precision="bf16", workers=8)
    res.top1, res.top5, res.loss, res.count          # percent, percent, mean cross-entropy, images
    res.write_predictions(run_dir / "predictions.parquet", dataset="imagenot", split="val")

`transform=None` takes the images as the dataset holds them (an in-memory split already at the model's
input size, the batched pipeline); an `EvalTransform` decodes each image at its own size and resizes and
centre-crops it in `workers` DataLoader processes (`imagenot.training.inputs.eval_transform_for(model)` gives
a model's torchvision sizes). Under torchrun every process calls it with the same arguments; each evaluates
every world_size-th image, the metrics are summed over all processes, and the per-image predictions are
gathered once, on rank 0 (`EvalResult.index` etc. are None on the other ranks). Rows are indexed by the
image's position in the split and keyed by the sample's id, so two evaluations of the same split line up
whatever the number of processes or the order of evaluation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imagenot.errors import ImagenotError
from imagenot.runtime import IMAGENET_MEAN, IMAGENET_STD
from imagenot.training.distributed import DistInfo, all_reduce_sum, gather_to_main
from imagenot.training.precision import Numerics, autocast_for, prepare_model

__all__ = ["EvalResult", "Normalize", "autocast_for", "evaluate", "evaluate_batches", "logits_of", "model_channels"]

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Aggregate metrics (every rank) and per-image predictions (rank 0; sorted by split index)."""

    loss: float
    top1: float
    top5: float
    count: int
    index: np.ndarray | None = None  # int64 [n]
    labels: np.ndarray | None = None  # int64 [n]
    top5_pred: np.ndarray | None = None  # int32 [n, k], best first
    p_label: np.ndarray | None = None  # float32 [n]
    keys: list[str] | None = None

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5, "count": self.count}

    def write_predictions(self, path: str | Path, *, dataset: str, split: str = "val",
                          num_classes: int | None = None, extra: dict[str, Any] | None = None) -> Path:
        """The `predictions.parquet` contract (imagenot.predictions), atomically."""
        from imagenot.predictions import write_predictions

        if self.index is None or self.keys is None:
            raise ValueError("no per-image predictions here (kept on rank 0 only, and only when asked)")
        meta = {"dataset": dataset, "split": split, "num_classes": num_classes, **(extra or {})}
        return write_predictions(path, index=self.index, keys=self.keys, labels=self.labels, top5=self.top5_pred,
                                 p_label=self.p_label, meta=meta)


def logits_of(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Main logits and, for Inception-style models in training mode, the auxiliary logits."""
    if isinstance(output, torch.Tensor):
        return output, None
    main = getattr(output, "logits", None)
    aux = getattr(output, "aux_logits", None)
    if main is None:
        main, aux = output[0], (output[1] if len(output) > 1 else None)
    return main, aux


class Normalize(nn.Module):
    """uint8 [b, C, H, W] -> normalised float on the device; gray images repeated to the model's channels.

    The one normalisation of every data path: batches stay uint8 until they are on the device.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels: int = 3) -> None:
        super().__init__()
        m = torch.tensor(list(mean), dtype=torch.float32)
        s = torch.tensor(list(std), dtype=torch.float32)
        if m.numel() == 1 and channels > 1:
            m, s = m.repeat(channels), s.repeat(channels)
        self.register_buffer("scale", (1.0 / (255.0 * s)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", (m / s).view(1, -1, 1, 1), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return x.to(torch.float32).mul_(self.scale).sub_(self.shift)


def model_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


@torch.no_grad()
def evaluate_batches(
    model: nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], prep: nn.Module,
    device: torch.device, dist: DistInfo, *, autocast: Any = None,
    mem_format: torch.memory_format = torch.contiguous_format, keys: Sequence[str] | None = None,
    predictions: bool = True,
) -> EvalResult:
    """The loop under `evaluate` (the trainer calls it with its own prepared pieces)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)  # loss sum, top1 correct, top5 correct, count
    crit = nn.CrossEntropyLoss(reduction="sum")
    ctx = autocast if autocast is not None else contextlib.nullcontext()
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for xb, yb, idx in batches:
        x = prep(xb.to(device, non_blocking=True)).contiguous(memory_format=mem_format)
        y = yb.to(device, non_blocking=True)
        with ctx:
            out, _ = logits_of(model(x))
        out = out.float()
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        hit = top.eq(y[:, None])
        sums += torch.stack([crit(out, y), hit[:, 0].sum(), hit.any(dim=1).sum(),
                             torch.tensor(y.numel(), device=out.device)]).double().cpu()
        if predictions:
            p = out.softmax(dim=1).gather(1, y[:, None])[:, 0]
            parts.append((idx.numpy().astype(np.int64), yb.numpy().astype(np.int64),
                          top.cpu().numpy().astype(np.int32), p.cpu().numpy().astype(np.float32)))
    model.train(was_training)
    sums = all_reduce_sum(sums, dist)
    n = max(float(sums[3]), 1.0)
    result = EvalResult(loss=float(sums[0]) / n, top1=100.0 * float(sums[1]) / n, top5=100.0 * float(sums[2]) / n,
                        count=int(sums[3]))
    if predictions:
        gathered = gather_to_main(_concat(parts), dist)
        if gathered is not None:
            index, labels, top5, p_label = (np.concatenate(c) for c in zip(*gathered))
            order = np.argsort(index, kind="stable")
            result.index, result.labels = index[order], labels[order]
            result.top5_pred, result.p_label = top5[order], p_label[order]
            if keys is not None:
                result.keys = [keys[int(i)] for i in result.index]
    return result


def _concat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    if not parts:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 5), np.int32), np.zeros(0, np.float32))
    width = max(p[2].shape[1] for p in parts)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(2)) + (
        np.concatenate([p[2] for p in parts]).reshape(-1, width),
        np.concatenate([p[3] for p in parts]),
    )


def check_finite_weights(model: nn.Module, what: str = "the model") -> None:
    """Raise ImagenotError naming the tensors of `model` (parameters and buffers) that are not finite."""
    bad = [name for name, t in (*model.named_parameters(), *model.named_buffers())
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        total = sum(1 for _ in model.parameters()) + sum(1 for _ in model.buffers())
        raise ImagenotError(f"{what}: {len(bad)} of {total} weight tensors hold NaN or infinite values (e.g. "
                            f"{', '.join(bad[:3])}): a diverged or corrupted model, which would score at chance. "
                            "Retrain it (a lower learning rate) or load other weights")


def evaluate(
    model: nn.Module, dataset: Any, device: str | torch.device = "cpu", *, transform: Any = None,
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
    batch_size: int = 256, dist: DistInfo | None = None, precision: str = "fp32", channels_last: bool = False,
    workers: int = 0, gpu_decode: bool = False, predictions: bool = True, fp32_grouped_convs: bool = False,
) -> EvalResult:
    """Loss, top-1/top-5 and per-image predictions of `model` on `dataset` (see the module docstring).

    Weights holding NaN or infinite values (a diverged or corrupt model) are refused: they score chance, and
    a chance-level number in a ranking is a wrong answer, not a result.

    `precision`, `channels_last` and `fp32_grouped_convs` are applied as given (imagenot.training.precision's
    `resolve_numerics` decides them for a device); the model is moved and prepared in place.
    """
    from imagenot.training.inputs import eval_batches

    check_finite_weights(model)
    device = torch.device(device)
    dist = dist or DistInfo()
    model = model.to(device)
    numerics = Numerics(precision, channels_last, fp32_grouped_convs and precision in ("bf16", "fp16"))
    prepare_model(model, numerics)
    mem_format = numerics.memory_format
    prep = Normalize(mean, std, model_channels(model)).to(device)
    batches = eval_batches(dataset, transform, batch_size=batch_size, dist=dist, device=device, workers=workers,
                           gpu_decode=gpu_decode)
    return evaluate_batches(model, batches, prep, device, dist, autocast=autocast_for(device, precision),
                            mem_format=mem_format, keys=dataset.sample_keys() if predictions else None,
                            predictions=predictions)
