"""A zoo plan: every model x dataset x seed of a study, and its fine-tunes, as one auditable file.

    models: [alexnet, vgg19, resnet152, ...]
    datasets:
      - {source: published, name: imagenet}                 # torchvision's published IMAGENET1K_V1 numbers
      - {spec: "wds:/data/imagenot", name: imagenot, role: contrast}     # trained from scratch
      - {spec: "imagefolder:/data/imagenet", init: torchvision, name: imagenet-eval}   # evaluate weights
    transfer:
      - {spec: "cifar10:/data/cifar10", modes: [full]}       # fine-tune from every dataset above

A dataset entry's `source` says how its runs come about: `train` (from scratch on `spec`, the default),
`evaluate` (evaluate `init` weights on `spec`; implied by giving `init`), `published` (record torchvision's
published accuracies, no data). Fine-tunes start from each entry's runs: a trained run's checkpoint, or for
published and evaluated entries the torchvision weights themselves, so a study can pair ImageNet-pretrained
(published weights) with ImageNot-pretrained (trained here) transfer without training on ImageNet.

This module is light (no torch): the `zoo` CLI is generated from `ZooPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from imagenot.config import ConfigError, from_dict, load_mapping, option
from imagenot.runtime import Precision
from imagenot.spec import Spec
from imagenot.training.config import dataset_display_name

SOURCES = ("train", "evaluate", "published")


@dataclass(frozen=True)
class ZooDataset:
    spec: str | None = option(None, help="dataset spec (imagenot datasets); not needed for source published",
                              path="spec")
    role: Literal["reference", "contrast"] | None = option(None, help="the dataset's role in the study")
    name: str | None = option(None, help="directory and result name (default: from the spec; 'imagenet-1k' "
                              "for published)")
    source: Literal["train", "evaluate", "published"] | None = option(
        None, help="train (from scratch), evaluate (the init weights), published (torchvision's numbers); "
        "default: evaluate when init is given, else train")
    init: str | None = option(None, help="weights to evaluate (torchvision, torchvision:<model>.<WEIGHTS>); "
                              "for source published the weights whose numbers are recorded (default: torchvision)")
    options: dict[str, Any] = option(default_factory=dict, help="dataset entry options (imagenot datasets)")
    epochs: int | None = option(None, help="epochs on this dataset (default: the plan's)")
    seeds: tuple[int, ...] = option((), help="training seeds on this dataset (default: the plan's); e.g. more "
                                    "seeds where the validation set is small and training is cheap")

    @property
    def kind(self) -> str:
        if self.source:
            return self.source
        return "evaluate" if self.init else "train"

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "published":
            return "imagenet-1k"
        return dataset_display_name(self.spec or "")


@dataclass(frozen=True)
class ZooTransfer:
    spec: str = option("", help="transfer target dataset spec, e.g. cifar10:PATH", path="spec")
    name: str | None = option(None, help="directory and result name (default: from the spec)")
    options: dict[str, Any] = option(default_factory=dict, help="dataset entry options")
    modes: tuple[Literal["full", "linear"], ...] = option(("full",), help="full fine-tuning and/or linear probes")
    epochs: int | None = option(None, help="fine-tuning epochs (default: the finetune recipe's)")
    batch_size: int | None = option(None, help="fine-tuning batch size (default: the recipe's)")
    image_size: int | None = option(None, help="input size (default: the plan's)")
    limit: int | None = option(None, help="at most this many images per split")
    recipe_overrides: dict[str, Any] = option(default_factory=dict, help="changes to the finetune recipe")

    @property
    def display_name(self) -> str:
        return self.name or dataset_display_name(self.spec)


@dataclass(frozen=True)
class ZooPlan:
    out: str = option("runs", help="zoo output folder: OUT/DATASET/MODEL/seedK, OUT/transfer/...", path="dir")
    models: tuple[str, ...] = option((), help="registry model names (imagenot models)")
    datasets: tuple[ZooDataset, ...] = option((), cli=False, help="the plan's datasets (see the module docstring); "
                                              "on the command line --datasets/--roles/--names")
    seeds: tuple[int, ...] = option((0,), flag="--seed", help="training seeds of every run")
    recipe: str = option("uniform", help="training recipe: uniform (one for every model) or torchvision")
    recipe_overrides: dict[str, Any] = option(default_factory=dict, flag="--set",
                                              help="change a recipe field for every pretraining run (repeatable)")
    epochs: int | None = option(None, help="pretraining epochs (default: the recipe's)")
    batch_size: int | None = option(None, help="global batch size (default: the recipe's)")
    image_size: int | None = option(None, help="input size of every run (default: each model's)")
    limit: int | None = option(None, help="at most this many images per split (quick runs; default: all)")
    transfer: tuple[ZooTransfer, ...] = option((), cli=False, help="transfer targets (--transfer on the command "
                                               "line)")
    transfer_from: tuple[str, ...] = option((), help="plan dataset names whose runs are fine-tuned (default: all)")
    device: str = option("auto", help="auto, cpu or cuda")
    threads: int | None = option(None, help="torch CPU threads per run (default: torch's choice; 1 when runs "
                                 "go side by side)")
    parallel: str = option("auto", help="runs side by side, one process each: auto (on CPU with 2 cores or more "
                           "and 2 runs or more left: one single-threaded process per core, longest run first; on "
                           "a GPU one run at a time) or a number (1: one after another)")
    precision: Precision = option(
        "auto", help="precision of every run (imagenot train --help): auto is bf16 with channels_last where the "
                     "hardware computes bf16 natively, fp32 elsewhere")
    pipeline: Literal["auto", "batched", "per_sample"] = option("auto", help="input pipeline of every run "
                                                                "(imagenot train --help)")
    normalization: Literal["auto", "imagenet", "dataset", "0.5"] = option(
        "auto", help="normalisation of every run (imagenot train --help)")
    workers: int | None = option(None, help="DataLoader workers per process (default: from the CPU count)")
    gpu_decode: bool = option(False, help="decode JPEGs on the GPU")
    deterministic: bool = option(False, help="deterministic algorithms in every run")
    eval_every: int = option(1, help="evaluate every N epochs in every training run (0: only the last epoch, "
                             "which is always evaluated)")
    checkpoint_every_steps: int = option(0, flag="--checkpoint-every", help="also checkpoint every N steps")
    progress: bool = option(True, cli=False, help="progress bars (the global --no-progress switches them off)")
    force: bool = option(False, help="rerun the runs whose folders hold a run with other settings than the plan's "
                         "(without it the zoo refuses to start and lists them)")
    nproc_per_node: int = option(1, help="processes (GPUs) per node in printed torchrun/Slurm commands")
    slurm: dict[str, Any] = option(default_factory=dict, flag="--slurm-opt",
                                   help="extra #SBATCH options of printed Slurm scripts, e.g. partition=gpu")


def normalise_plan_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A plan file's mapping as ZooPlan fields: a bare spec string becomes an entry, a scalar a list."""
    data = dict(data)
    for key in ("datasets", "transfer"):
        items = data.get(key)
        if items is None:
            continue
        if isinstance(items, str | Mapping):
            items = [items]
        data[key] = [{"spec": it} if isinstance(it, str) else dict(it) for it in items]
    for key in ("models", "seeds", "transfer_from"):
        if isinstance(data.get(key), int | str):
            data[key] = [data[key]] if isinstance(data[key], int) else data[key]
    return data


def plan_from_mapping(data: Mapping[str, Any]) -> ZooPlan:
    plan = from_dict(ZooPlan, normalise_plan_mapping(data))
    validate_plan(plan)
    return plan


def load_plan(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ZooPlan:
    data = load_mapping(path)
    data.pop("_meta", None)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return plan_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def validate_plan(plan: ZooPlan) -> None:
    """Every name, source and weights spec exists and every model takes the plan's image size, before
    anything runs (a typo found after three days of training is three days lost)."""
    from imagenot.models import check_input_size, model_info
    from imagenot.models.weights import check_init, published_metrics
    from imagenot.training.recipes import get_recipe

    if not plan.models:
        raise ConfigError("the zoo plan names no models")
    if not plan.datasets:
        raise ConfigError("the zoo plan names no datasets")
    if not plan.seeds:
        raise ConfigError("the zoo plan names no seeds")
    _check_names(plan)
    _no_repeats(plan.models, "models")
    _no_repeats(plan.seeds, "seeds")
    for d in plan.datasets:
        _no_repeats(d.seeds, f"seeds of dataset {d.display_name}")
    for t in plan.transfer:
        _no_repeats(t.modes, f"modes of transfer target {t.display_name}")
    if plan.parallel != "auto" and not (plan.parallel.isdigit() and int(plan.parallel) >= 1):
        raise ConfigError(f"parallel {plan.parallel!r}: give auto or a number of processes (1 or more)")
    for d in plan.datasets:
        if d.kind not in SOURCES:
            raise ConfigError(f"dataset {d.display_name}: source {d.kind!r} not one of {', '.join(SOURCES)}")
        if d.kind != "published" and not d.spec:
            raise ConfigError(f"dataset {d.display_name}: source {d.kind} needs a spec")
        if d.kind == "train" and d.init:
            raise ConfigError(f"dataset {d.display_name}: training from init weights is a fine-tune; put the "
                              "target under transfer, or use source evaluate")
    for m in plan.models:
        info = model_info(m)
        size = plan.image_size or info.input_size
        check_input_size(m, int(size))
        get_recipe(plan.recipe, m, info.family, plan.recipe_overrides)
        for d in plan.datasets:
            if d.kind == "published":
                published_metrics(m, published_weights_name(m, d.init))
            elif d.kind == "evaluate":
                check_init(m, model_init(m, d.init))
    names = [d.display_name for d in plan.datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"two plan datasets share a name ({names}); give them distinct 'name's")
    unknown = set(plan.transfer_from) - set(names)
    if unknown:
        raise ConfigError(f"transfer_from names unknown datasets {sorted(unknown)}; plan datasets: {names}")
    for t in plan.transfer:
        if not t.spec:
            raise ConfigError("a transfer entry needs a spec")
    targets = [t.display_name for t in plan.transfer]
    if len(set(targets)) != len(targets):
        raise ConfigError(f"two transfer targets share a name ({targets}); give them distinct 'name's")


def _no_repeats(values: tuple[Any, ...], what: str) -> None:
    """A value listed twice would run (or count) twice: two runs of one seed averaged as two replicates."""
    repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
    if repeated:
        raise ConfigError(f"the plan's {what} list {', '.join(map(str, repeated))} more than once "
                          f"({', '.join(map(str, values))}); list each once")


def _check_names(plan: ZooPlan) -> None:
    """Plan names become run folders under `out`: each must be one folder name (`safepath.component`)."""
    from imagenot import safepath

    for m in plan.models:
        safepath.component(m, "plan model name")
    for d in plan.datasets:
        safepath.component(d.display_name, "plan dataset name")
    for t in plan.transfer:
        safepath.component(t.display_name, "plan transfer name")


def model_init(model: str, init: str | None) -> str:
    """An entry's weights for one model of the plan: `torchvision` (the study's IMAGENET1K_V1) and
    `torchvision:IMAGENET1K_V2` name weights for every model; a full `torchvision:<model>.<W>` or a
    `file:`/`run:` spec is taken as it is."""
    if not init or init == "torchvision":
        return "torchvision"
    spec = Spec.parse(init)
    if spec.kind == "torchvision" and spec.arg and "." not in spec.arg:
        return str(spec.with_arg(f"{model}.{spec.arg}"))
    return init


def published_weights_name(model: str, init: str | None) -> str | None:
    """The weights name (IMAGENET1K_V1, ...) of a published entry, None for the study's."""
    spec = model_init(model, init)
    return spec.partition(".")[2] or None if spec != "torchvision" else None
