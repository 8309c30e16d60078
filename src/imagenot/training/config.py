"""The run configuration of `imagenot train` (and `finetune`, and every run of a zoo).

A light module (standard library, imagenot.config and the torch-free imagenot.runtime) so that the CLI is generated from it without
importing torch. A run's `config.json` is this dataclass resolved, with absolute paths and the thread count
actually used, so `imagenot train --config RUN/config.json` replays it from any directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from imagenot.config import ConfigError, check_choices, option
from imagenot.runtime import Precision
from imagenot.spec import dataset_display_name  # noqa: F401 - re-exported: training's name for it

ROLES = (None, "reference", "contrast", "transfer")


@dataclass(frozen=True)
class TrainConfig:
    model: str = option("", help="registry model name (imagenot models)", group="run")
    dataset: str = option("", help="dataset spec (imagenot datasets), e.g. fashion-mnist, imagefolder:PATH, "
                          "wds:PATH", path="spec", group="run")
    out: str = option("", help="run directory (config.json, checkpoints, metrics.jsonl, result.json, "
                      "predictions.parquet)", path="dir", group="run")
    init: str = option("scratch", help="where the starting weights come from: scratch, run:DIR (a finished run), "
                       "torchvision:<model>.<WEIGHTS> (e.g. torchvision:resnet50.IMAGENET1K_V1) or file:PATH "
                       "(a state_dict); anything but scratch gets a new head for the dataset's classes",
                       path="spec", group="run")
    seed: int = option(0, help="seed of weights, data order and augmentation", group="run")
    role: Literal["reference", "contrast", "transfer"] | None = option(
        None, help="the dataset's role in the study (default: none)", group="run")
    dataset_name: str | None = option(None, help="the dataset name in result.json (default: from the spec)",
                                      group="run")
    pretrain_name: str | None = option(None, help="fine-tuning: the name recorded as pretrain_dataset (default: "
                                       "the weights' own, e.g. the run's dataset or imagenet-1k)", group="run")
    recipe: str | None = option(None, help="uniform (one recipe for every model), uniform-small (the same for "
                                "small-input models on small data: the demo's), torchvision (the references' "
                                "per-model recipes), finetune, finetune-linear (default: uniform from scratch, "
                                "finetune / finetune-linear from weights)", group="recipe")
    recipe_overrides: dict[str, Any] = option(
        default_factory=dict, flag="--set", help="change a recipe field (repeatable), e.g. --set lr=0.01 "
        "--set schedule=step", group="recipe")
    epochs: int | None = option(None, help="epochs (default: the recipe's)", group="recipe")
    batch_size: int | None = option(None, help="global batch size over all processes (default: the recipe's)",
                                    group="recipe")
    finetune_mode: Literal["full", "linear"] = option(
        "full", help="from weights: train everything (full) or only the new head (linear probe)", group="recipe")
    image_size: int | None = option(
        None, help="model input side in px; per-sample pipeline: both crops (the resize scales with them); "
                   "default: the model's input size / its torchvision weights' sizes", group="data")
    limit: int | None = option(None, help="at most this many images per split, class-stratified (quick runs; "
                               "default: all)", group="data")
    dataset_options: dict[str, Any] = option(
        default_factory=dict, flag="--data-opt", help="dataset entry option (repeatable), e.g. num_classes=4 "
        "for synthetic, limit_per_class=300", group="data")
    pipeline: Literal["auto", "batched", "per_sample"] = option(
        "auto", help="input pipeline: batched (load-time resize, batched crop/flip; small-input variants), "
                     "per_sample (torchvision's decode-time transforms; full-size models); auto picks by model",
        group="input pipeline")
    normalization: Literal["auto", "imagenet", "dataset", "0.5"] = option(
        "auto", help="one mean/std for every data path: imagenet, dataset (statistics of the train split, one "
                     "streaming pass), 0.5; auto: the pretrained weights' when fine-tuning, else imagenet for "
                     "full-size models and dataset for the small-input variants", group="input pipeline")
    workers: int | None = option(None, help="DataLoader worker processes per process (default: CPUs / local "
                                            "processes, at most 8)", group="input pipeline")
    wds_read: Literal["auto", "sequential", "random"] = option(
        "auto", help="how streamed wds shards are read for training: sequential (shard shuffle, a sample "
                     "shuffle buffer; auto) or random access by index", group="input pipeline")
    shuffle_buffer: int = option(2000, help="samples in each reader's shuffle buffer (sequential shards)",
                                 group="input pipeline")
    gpu_decode: bool = option(False, help="decode JPEGs on the GPU (torchvision.io.decode_jpeg) and transform "
                                          "them there, when CPUs cannot keep up (per_sample pipeline)",
                              group="input pipeline")
    eval_batch_size: int | None = option(
        None, help="evaluation batch per process (default: the training batch; at least 256 on the batched "
                   "pipeline)", group="input pipeline")
    device: str = option("auto", help="auto (CUDA if available), cpu, cuda", group="hardware")
    precision: Precision = option(
        "auto", help="auto: bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX), else fp32; "
                     "config.json records the precision used", group="hardware")
    channels_last: bool | None = option(None, help="channels_last memory format (default: on CUDA, and on CPU "
                                        "under bf16/fp16)", group="hardware")
    fp32_grouped_convs: bool | None = option(
        None, help="under bf16/fp16 autocast, run convolutions with groups > 1 (depthwise included) in fp32: "
                   "oneDNN's bf16 grouped-convolution backward is slower than fp32 (default: on CPU, off on "
                   "CUDA)", group="hardware")
    compile: bool = option(False, help="torch.compile the model", group="hardware")
    deterministic: bool = option(False, help="deterministic algorithms (bitwise-reproducible resume on CPU)",
                                 group="hardware")
    threads: int | None = option(None, help="torch CPU threads; config.json records the number used, since it "
                                 "changes CPU results (default: torch's choice)", group="hardware")
    eval_every: int = option(1, help="evaluate on the validation split every N epochs (0: only after the last "
                             "epoch, which is always evaluated); a large validation split evaluated every epoch "
                             "can cost as much as training", group="checkpoints")
    checkpoint_every_steps: int = option(0, flag="--checkpoint-every", help="also checkpoint every N optimizer "
                                         "steps (0: at the end of every epoch only)", group="checkpoints")
    log_every_steps: int = option(25, help="progress-bar update interval in steps", group="checkpoints")
    resume: bool = option(False, help="continue from the run directory's checkpoint", group="checkpoints")
    force: bool = option(False, help="replace an existing run in --out", group="checkpoints")
    progress: bool = option(True, help="progress bars (the global --no-progress switches them off)", cli=False)
    resolved: dict[str, Any] = option(
        default_factory=dict, cli=False,
        help="written by the trainer into config.json: the input pipeline, transforms, recipe, epochs and batch "
             "the run resolved to (informative; recomputed, never read, when a config is given)")

    def __post_init__(self) -> None:
        check_choices(self)  # role, finetune_mode, pipeline, normalization, wds_read, precision
        for name in ("epochs", "batch_size", "image_size", "limit", "eval_batch_size", "threads", "shuffle_buffer"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, got {self.workers}")
        if self.eval_every < 0:
            raise ConfigError(f"eval_every must be 0 (last epoch only) or more, got {self.eval_every}")
        if self.finetune_mode == "linear" and self.from_scratch:
            raise ConfigError("a linear probe (finetune_mode linear) needs pretrained weights: give --init")

    @property
    def from_scratch(self) -> bool:
        return (self.init or "scratch").strip().lower() == "scratch"

    @property
    def recipe_name(self) -> str:
        """The recipe the run uses: the one named, else uniform from scratch and finetune(-linear) from weights."""
        if self.recipe:
            return self.recipe
        if self.from_scratch:
            return "uniform"
        return "finetune-linear" if self.finetune_mode == "linear" else "finetune"

