"""What one run holds while it trains (`RunState`): the step functions of setup, loop, checkpointing and
finish read and advance it."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from imagenot.training.config import TrainConfig
from imagenot.training.distributed import DistInfo
from imagenot.training.evaluation import EvalResult
from imagenot.training.inputs import InputPlan, TrainFeed
from imagenot.training.precision import Numerics
from imagenot.training.recipes import Recipe

if TYPE_CHECKING:
    from imagenot.models.weights import WeightsInfo


@dataclass
class RunData:
    """The run's two splits, checked (imagenot.training.setup.load_data)."""

    train: Any
    val: Any
    classes: list[str]
    num_classes: int


@dataclass
class Position:
    """Where a run is: the loader position, the epoch's running loss and the metric history (what a
    checkpoint saves and `restore` puts back), and this session's timing."""

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


@dataclass
class RunState:
    """Everything one run holds while it trains: its plan (fixed before anything is touched), the parts set-up
    builds (imagenot.training.setup) and its position, which the loop advances and checkpoints hold."""

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
    numerics: Numerics | None = None
    fp32_modules: int = 0
    data: RunData | None = None
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
    pos: Position = field(default_factory=Position)
    lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # the run folder's, on rank 0

    @property
    def rank_batch(self) -> int:
        return self.global_batch // self.dist.world_size

    @property
    def steps_per_epoch(self) -> int:
        assert self.feed is not None
        return self.feed.steps_per_epoch

    @property
    def precision(self) -> str:
        return self.numerics.precision if self.numerics is not None else "fp32"

    @property
    def mem_format(self) -> torch.memory_format:
        return self.numerics.memory_format if self.numerics is not None else torch.contiguous_format

    def elapsed(self) -> float:
        return self.pos.elapsed_before + time.perf_counter() - self.pos.session_start

    def input_summary(self) -> dict[str, Any]:
        """The input side as manifest.json and result.json record it (plan, feed, normalisation values)."""
        return {**self.plan.to_dict(), **(self.feed.describe() if self.feed is not None else {}),
                "normalization_values": {"mean": self.mean, "std": self.std}}

    def close(self) -> None:
        """Release the run folder's lock and the feed's workers."""
        self.lock.close()
        if self.feed is not None:
            self.feed.close()
