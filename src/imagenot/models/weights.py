"""Where a model's weights come from, and the input transforms that belong to them.

One notion for every stage (train, finetune, evaluate, zoo): an `init` spec says where the weights come from,

    scratch                            random initialisation (the registry's builder, weights=None)
    run:DIR                            a finished imagenot run (its checkpoint; EMA weights when it kept them)
    torchvision:<model>.<WEIGHTS>      torchvision's published weights, e.g. torchvision:resnet152.IMAGENET1K_V1
                                       (`DEFAULT` allowed; `torchvision` alone means the model's IMAGENET1K_V1),
                                       loaded through torchvision's own weights API, which downloads into
                                       $TORCH_HOME/hub/checkpoints/ and checks the published hash
    file:PATH                          a state_dict in .pth/.pt (torch.load weights_only=True) or .safetensors

and `build_model` returns the model together with a `WeightsInfo` that says what was loaded (identity,
sha256 of the file, the classes and normalisation the weights were trained with), which runs record in
result.json. A run resolves its spec once (`resolve_source`: a `WeightsSource` reads a source run's
result.json and checkpoint once for every step that needs them). Head replacement and freezing live beside it
(`imagenot.models.heads`).

This module is the init switch; what it switches between lives in modules of their own, whose public names
it re-exports: torchvision's weights enums, their transforms and published numbers
(`imagenot.models.torchvision_weights`: `transform_defaults(model)` gives a model's evaluation sizes,
interpolation and normalisation offline, from IMAGENET1K_V1 where it exists, as in the study), state-dict
files (`imagenot.models.state_dicts`), and a trainer checkpoint's layout (`imagenot.checkpoint`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenot.models.state_dicts import (
    STATE_SUFFIXES,
    WeightsError,
    first_line,
    head_size_in,
    load_state_into,
    read_state_dict,
)
from imagenot.models.torchvision_weights import (
    STUDY_WEIGHTS,
    TransformDefaults,
    cached_weights_path,
    published_hash_ok,
    published_metrics,
    resolve_torchvision,
    study_weights,
    torchvision_weights_enum,
    transform_defaults,
    weights_enum_member,
    weights_only_loads,
)
from imagenot.runtime import IMAGENET_MEAN, IMAGENET_STD
from imagenot.spec import Spec

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)

# The names other modules import from here (the init switch re-exports the pieces it is built from).
__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "INIT_KINDS", "STATE_SUFFIXES", "STUDY_WEIGHTS", "InitSpec", "TransformDefaults",
    "WeightsError", "WeightsInfo", "WeightsSource", "build_model", "cached_weights_path", "check_init",
    "head_classes", "load_state_into", "parse_init", "published_metrics", "read_state_dict", "resolve_source",
    "resolve_torchvision", "run_summary", "study_weights", "torchvision_weights_enum", "transform_defaults",
    "weights_enum_member",
]

INIT_KINDS = ("scratch", "run", "torchvision", "file")


@dataclass(frozen=True)
class InitSpec:
    """A parsed `init` spec (see the module docstring); `value` is the run dir, weights name or file path."""

    kind: str
    value: str | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value}"


def parse_init(spec: str | None) -> InitSpec:
    """`scratch` | `run:DIR` | `torchvision[:<model>.<WEIGHTS>]` | `file:PATH` -> InitSpec (no I/O)."""
    text = (spec or "scratch").strip()
    parsed = Spec.parse(text)
    kind = parsed.kind.lower()
    if kind not in INIT_KINDS:
        raise WeightsError(
            f"unknown weights source {text!r}; use scratch, run:DIR (a finished imagenot run), "
            "torchvision:<model>.<WEIGHTS> (e.g. torchvision:resnet152.IMAGENET1K_V1) or file:PATH (a state_dict)"
        )
    value = (parsed.arg or "").strip()
    if kind == "scratch":
        if value:
            raise WeightsError(f"'scratch' takes no argument (got {text!r})")
        return InitSpec("scratch")
    if kind in ("run", "file") and not value:
        raise WeightsError(f"{kind}: needs a path ({kind}:PATH)")
    if kind in ("run", "file"):
        value = str(Path(value).expanduser().resolve())
    return InitSpec(kind, value or None)


@dataclass(frozen=True)
class WeightsInfo:
    """What `build_model` loaded, as runs record it (result.json `weights`, manifest inputs).

    `num_classes` / `classes` describe the head the weights came with (before any replacement); `mean` and
    `std` the normalisation they were trained with (None when unknown: scratch, or a bare state_dict);
    `image_size` the input size they were trained or published for. `pretrain` holds provenance fields:
    for `run:` the run's dataset, top-1, seed and directory, for `torchvision:` the published metrics.
    """

    source: str
    kind: str
    identity: str | None = None
    sha256: str | None = None
    num_classes: int | None = None
    classes: tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    image_size: int | None = None
    pretrain: dict[str, Any] = field(default_factory=dict)
    head_replaced: tuple[str, ...] = ()
    frozen: bool = False
    hash_matches_published: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("classes", "mean", "std", "head_replaced"):
            if out[key] is not None:
                out[key] = list(out[key])
        if self.classes is not None and len(self.classes) > 20:
            out["classes"] = None  # the class list of a 1000-way head does not belong in every result.json
            out["classes_count"] = len(self.classes)
        return out


def _torchvision_model(model: str, w: Any, progress: bool) -> tuple[nn.Module, WeightsInfo]:
    import torchvision.models as tvm

    from imagenot.fileio import sha256_file
    from imagenot.models.info import entry

    builder = getattr(tvm, entry(model).info.torchvision_builder)
    try:
        with weights_only_loads():
            net = builder(weights=w, progress=progress)
    except Exception as exc:  # noqa: BLE001 - download, hash and unpickling errors all mean "cannot load"
        raise WeightsError(f"cannot load torchvision weights {type(w).__name__}.{w.name} for {model} "
                           f"(file {cached_weights_path(w)}): {first_line(exc)}") from exc
    if getattr(net, "AuxLogits", None) is not None:  # the registry's Inception has no auxiliary head
        net.aux_logits = False
        net.AuxLogits = None
    if hasattr(net, "aux1") and getattr(net, "aux_logits", False):  # GoogLeNet
        net.aux_logits = False
        net.aux1 = net.aux2 = None
    path = cached_weights_path(w)
    digest = sha256_file(path) if path.is_file() else None
    ok = published_hash_ok(path, digest) if digest else None
    if ok is False:
        log.warning("%s does not match the hash torchvision published for %s.%s: it is not the published file",
                    path, type(w).__name__, w.name)
    d = transform_defaults(model, w)
    categories = tuple(w.meta.get("categories") or ())
    metrics = w.meta.get("_metrics", {}).get("ImageNet-1K", {})
    info = WeightsInfo(
        source=f"torchvision:{model}.{w.name}", kind="torchvision", identity=f"{type(w).__name__}.{w.name}",
        sha256=digest, num_classes=len(categories) or None, classes=categories or None, mean=d.mean, std=d.std,
        image_size=d.val_crop, hash_matches_published=ok,
        pretrain={"pretrain_dataset": "imagenet-1k", "pretrain_top1": metrics.get("acc@1"),
                  "pretrain_weights": f"{type(w).__name__}.{w.name}"},
    )
    return net, info


def _file_model(model: str, path: str, input_size: int | None, num_classes: int) -> tuple[nn.Module, WeightsInfo]:
    from imagenot.fileio import sha256_file
    from imagenot.models.info import build

    state = read_state_dict(path)
    # the head size stored in the file; without one (another architecture) the key check below says why
    k = head_size_in(model, state, input_size) or num_classes
    net = build(model, k, input_size=input_size)
    state = {key: v for key, v in state.items() if not key.startswith("AuxLogits.")}
    load_state_into(net, state, path)
    return net, WeightsInfo(source=f"file:{path}", kind="file", identity=path, sha256=sha256_file(path),
                            num_classes=k, image_size=input_size)


def run_summary(run: str | Path) -> dict[str, Any]:
    """A finished run's result.json (only finished runs are a weights source)."""
    from imagenot import rundir

    run = Path(run)
    if not run.is_dir():
        raise WeightsError(f"run {run}: no such directory")
    if not rundir.is_finished(run):
        raise WeightsError(f"run {run} is not finished (no result.json); finish or resume it first")
    summary = rundir.read_result(run)
    note = rundir.diverged_note(summary)
    if note:
        raise WeightsError(f"run {run}: {note}; its weights are not a starting point")
    return summary


@dataclass
class WeightsSource:
    """An `init` spec resolved once for a run: a torchvision spec's enum member, a run's result.json (read
    once, when first asked) and its checkpoint (loaded at most once), shared by every step that needs them
    (checking the spec, the evaluation transform and size, the head's classes, building the model)."""

    model: str
    spec: InitSpec
    torchvision: Any = None
    _summary: dict[str, Any] | None = field(default=None, repr=False)
    _checkpoint: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def summary(self) -> dict[str, Any]:
        """The source run's result.json (`run_summary`: only a finished, not diverged run is a source)."""
        if self._summary is None:
            self._summary = run_summary(self.spec.value or "")
        return self._summary

    def checkpoint(self) -> dict[str, Any]:
        """The source run's checkpoint, checked to be for this model."""
        if self._checkpoint is None:
            from imagenot import rundir
            from imagenot.checkpoint import load_checkpoint

            self._checkpoint = load_checkpoint(rundir.checkpoint_path(self.spec.value or ""),
                                               expect={"model": self.model})
        return self._checkpoint


def resolve_source(model: str, init: str | InitSpec | WeightsSource | None) -> WeightsSource:
    """`init` for `model` as a WeightsSource (parsed, torchvision weights looked up; files read lazily)."""
    if isinstance(init, WeightsSource):
        return init
    spec = init if isinstance(init, InitSpec) else parse_init(init)
    tv = resolve_torchvision(model, spec.value) if spec.kind == "torchvision" else None
    return WeightsSource(model, spec, tv)


def _run_model(model: str, source: WeightsSource, input_size: int | None) -> tuple[nn.Module, WeightsInfo]:
    from imagenot import rundir
    from imagenot.checkpoint import (
        checkpoint_classes,
        checkpoint_image_size,
        checkpoint_normalization,
        checkpoint_num_classes,
        checkpoint_weights,
    )
    from imagenot.fileio import sha256_file
    from imagenot.models.info import build

    run = source.spec.value or ""
    summary = source.summary()
    if summary.get("model") != model:
        raise WeightsError(f"run {run} trained {summary.get('model')!r}, not {model!r}; use it with "
                           f"--model {summary.get('model')} (or omit --model)")
    path = rundir.checkpoint_path(run)
    ckpt = source.checkpoint()
    k = checkpoint_num_classes(ckpt)
    trained_size = checkpoint_image_size(ckpt)
    net = build(model, k, input_size=input_size or trained_size)
    load_state_into(net, checkpoint_weights(ckpt), str(path))
    mean, std = checkpoint_normalization(ckpt)
    return net, WeightsInfo(
        source=f"run:{run}", kind="run", identity=str(run), sha256=sha256_file(path), num_classes=k,
        classes=checkpoint_classes(ckpt), mean=mean, std=std, image_size=trained_size,
        pretrain={"pretrain_run": str(run), "pretrain_dataset": summary.get("dataset"),
                  "pretrain_top1": summary.get("top1"), "pretrain_seed": summary.get("seed")},
    )


def head_classes(model: str, init: str | InitSpec | WeightsSource | None
                 ) -> tuple[int | None, tuple[str, ...] | None]:
    """(class count, class ids in head order) of the head `init` comes with, without building the model;
    ids are known for runs (their checkpoint's classes), None otherwise; (None, None) from scratch."""
    source = resolve_source(model, init)
    if source.kind == "torchvision":
        return len(source.torchvision.meta.get("categories") or []) or None, None
    if source.kind == "file":
        return head_size_in(model, read_state_dict(source.spec.value or ""), None), None
    if source.kind == "run":
        from imagenot.checkpoint import checkpoint_classes, checkpoint_num_classes

        ckpt = source.checkpoint()
        return checkpoint_num_classes(ckpt), checkpoint_classes(ckpt)
    return None, None


def check_init(model: str, init: str | InitSpec | WeightsSource | None) -> InitSpec:
    """Validate an init spec for `model` without loading weights (zoo plans call this before running)."""
    source = resolve_source(model, init)
    spec = source.spec
    if spec.kind == "file" and not Path(spec.value or "").is_file():
        raise WeightsError(f"file:{spec.value}: no such weights file")
    if spec.kind == "run" and Path(spec.value or "").is_dir():
        summary = source.summary()
        if summary.get("model") != model:
            raise WeightsError(f"run {spec.value} trained {summary.get('model')!r}, not {model!r}")
    return spec


def build_model(
    name: str,
    num_classes: int,
    *,
    init: str | InitSpec | WeightsSource | None = "scratch",
    input_size: int | None = None,
    replace_head: bool | None = None,
    freeze: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, WeightsInfo]:
    """Registry model `name` with its weights from `init` and a `num_classes`-way head.

    `replace_head`: True always gives a new, freshly initialised head (fine-tuning on a new task); False keeps
    the loaded head, which must then have `num_classes` outputs (evaluating published weights on their own
    classes); None replaces it only when the class counts differ. `freeze` leaves only the head trainable
    (a linear probe). Fixed-size models (ViT) take the input size of their weights.
    """
    from imagenot.models import heads
    from imagenot.models.info import build, entry

    source = resolve_source(name, init)
    spec = source.spec
    entry(name)  # unknown model names fail here, listing the known ones
    if spec.kind == "scratch":
        net = build(name, num_classes, input_size=input_size)
        info = WeightsInfo(source="scratch", kind="scratch", num_classes=num_classes, image_size=input_size)
        if freeze:
            raise WeightsError("freezing the features of a randomly initialised model trains a random projection; "
                               "give pretrained weights (--init) for a linear probe")
        return net, info
    if spec.kind == "torchvision":
        w = source.torchvision
        fixed = entry(name).info.fixed_input
        size = transform_defaults(name, w).val_crop
        if fixed and input_size and int(input_size) != size:
            raise WeightsError(f"{name} weights {w.name} are for {size} px inputs (position embeddings); got "
                               f"--image-size {input_size}")
        net, info = _torchvision_model(name, w, progress)
    elif spec.kind == "file":
        net, info = _file_model(name, spec.value or "", input_size, num_classes)
    else:
        net, info = _run_model(name, source, input_size)
    loaded = info.num_classes
    if replace_head is False and loaded is not None and loaded != num_classes:
        raise WeightsError(f"{info.source} has a {loaded}-class head but the data has {num_classes} classes; "
                           "fine-tune it (imagenot finetune) to evaluate on these classes")
    replaced: list[str] = []
    if replace_head or (replace_head is None and loaded != num_classes):
        replaced = heads.replace_head(net, num_classes)
    if freeze:
        n = heads.freeze_except(net, replaced or [heads.find_head(net)[0]])
        log.info("linear probe: %d trainable parameters", n)
    return net, dataclasses.replace(info, head_replaced=tuple(replaced), frozen=bool(freeze))
