"""The `imagenot evaluate` configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from imagenot.config import ConfigError, option, to_record
from imagenot.runtime import Precision


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
    precision: Precision = option(
        "auto", help="auto: bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX), else fp32")
    workers: int | None = option(None, help="DataLoader workers for decoding (default: from the CPU count)")
    threads: int | None = option(None, help="torch CPU threads (default: torch's choice)")
    force: bool = option(False, help="replace an existing evaluation in --out")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")


def evaluation_record(cfg: EvaluateConfig) -> dict[str, Any]:
    """The config.json an evaluation (or a published record) writes: paths absolute, `force` off, so a rerun
    with --force is the same run (and a zoo can compare it with `imagenot.rundir.fingerprint`).

    Weights from a run (`run:DIR`) are recorded by that run's fingerprint too (under `_meta`, which a replay
    with --config skips), so an evaluation of a run retrained since is another evaluation, not a finished one.
    """
    from imagenot import rundir
    from imagenot.spec import Spec

    record = {**to_record(cfg), "force": False}
    if (cfg.init or "").startswith("run:"):
        record["_meta"] = {"init_fingerprint": rundir.recorded_fingerprint(Spec.parse(cfg.init).arg or "")}
    return record
