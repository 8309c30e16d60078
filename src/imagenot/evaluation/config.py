"""The `imagenot evaluate` configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from imagenot.config import ConfigError, option


@dataclass(frozen=True)
class EvaluateConfig:
    model: str = option("", help="registry model name (imagenot models)")
    init: str = option("torchvision", help="where the weights come from: torchvision[:<model>.<WEIGHTS>] "
                       "(default: the model's IMAGENET1K_V1), run:DIR, file:PATH", path="spec")
    dataset: str | None = option(None, help="dataset spec to evaluate on (imagenot datasets), e.g. "
                                 "imagefolder:/data/imagenet (default: none; required unless --published)",
                                 path="spec")
    out: str = option("", help="run directory to write (config.json, manifest.json, result.json, "
                      "predictions.parquet)", path="dir")
    published: bool = option(False, help="record torchvision's published ImageNet-1K acc@1/acc@5 of the "
                             "weights instead of evaluating (offline, no data)")
    split: Literal["val", "train"] = option("val", help="which split to evaluate")
    role: Literal["reference", "contrast", "transfer"] | None = option(
        None, help="the dataset's role in a study (default: reference with --published, else none)")
    dataset_name: str | None = option(None, help="name recorded in result.json (default: derived from the "
                                      "spec; imagenet-1k with --published)")
    batch_size: int = option(256, help="evaluation batch size")
    limit: int | None = option(None, help="at most this many images (quick checks; default: the whole split)")
    dataset_options: dict[str, Any] = option(default_factory=dict, flag="--data-opt",
                                             help="dataset entry option (repeatable), e.g. val_fraction=0.2")
    device: str = option("auto", help="auto (cuda when present), cpu or cuda")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option("auto", help="auto: bf16 autocast on CUDA")
    workers: int | None = option(None, help="DataLoader workers for decoding (default: from the CPU count)")
    threads: int | None = option(None, help="torch CPU threads (default: torch's choice)")
    force: bool = option(False, help="replace an existing evaluation in --out")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")
