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
result.json. Head replacement and freezing live beside it (`imagenot.models.heads`).

`transform_defaults(model)` gives a model's evaluation sizes (resize, centre crop), interpolation and
normalisation from its torchvision weights enum (IMAGENET1K_V1 where it exists, as in the study), which needs
no network: the numbers are in the enum.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from imagenot.errors import ImagenotError
from imagenot.spec import Spec

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STUDY_WEIGHTS = "IMAGENET1K_V1"


@dataclass(frozen=True)
class TransformDefaults:
    """A model's input transforms as torchvision's weights define them.

    `val_resize` is the shorter side images are resized to before the `val_crop` centre crop; `train_crop`
    is the RandomResizedCrop output size (the weights' crop size unless a recipe says otherwise, e.g.
    EfficientNet V2 L trains at 384 and evaluates at 480). `weights` names the enum member the numbers come
    from (None for models without published weights, whose sizes are their registry input size).
    """

    weights: str | None
    train_crop: int
    val_resize: int
    val_crop: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


def torchvision_weights_enum(model: str) -> Any:
    """The torchvision weights enum class of registry model `model`, or None (small-input variants)."""
    from imagenot.models.info import entry

    builder = entry(model).info.torchvision_builder
    if builder is None:
        return None
    from torchvision.models import get_model_weights

    try:
        return get_model_weights(builder)
    except (ValueError, KeyError):
        return None


def study_weights(model: str) -> Any:
    """The weights the study's numbers refer to: IMAGENET1K_V1 where it exists, else the enum's DEFAULT."""
    enum = torchvision_weights_enum(model)
    if enum is None:
        return None
    return getattr(enum, STUDY_WEIGHTS, None) or enum.DEFAULT


def _classification_defaults() -> dict[str, Any]:
    """torchvision's ImageClassification preset defaults (resize 256, bilinear, ImageNet mean/std)."""
    from torchvision.transforms._presets import ImageClassification

    params = inspect.signature(ImageClassification).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def transform_defaults(model: str, weights: Any = None) -> TransformDefaults:
    """Evaluation and training sizes, interpolation and normalisation for `model` (offline).

    From `weights` (a torchvision weights enum member) or the model's study weights; a model without
    torchvision weights gets its registry input size for every size, bilinear, and ImageNet statistics.
    """
    from imagenot.models.info import entry

    info = entry(model).info
    w = weights if weights is not None else study_weights(model)
    if w is None:
        size = int(info.input_size)
        return TransformDefaults(None, size, size, size, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
    base = _classification_defaults()
    kw = {**base, **dict(getattr(w.transforms, "keywords", {}) or {})}
    interp = kw.get("interpolation")
    interp_name = str(getattr(interp, "value", interp) or "bilinear")
    crop = int(kw["crop_size"])
    return TransformDefaults(
        weights=f"{type(w).__name__}.{w.name}",
        train_crop=crop,
        val_resize=int(kw.get("resize_size") or crop),
        val_crop=crop,
        interpolation=interp_name,
        mean=tuple(float(v) for v in kw.get("mean", IMAGENET_MEAN)),
        std=tuple(float(v) for v in kw.get("std", IMAGENET_STD)),
    )


# ----------------------------------------------------------------------------------------- weight sources

INIT_KINDS = ("scratch", "run", "torchvision", "file")
STATE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


class WeightsError(ImagenotError):
    """Weights that cannot be used: unknown, for another architecture, unreadable or not a state_dict."""


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


def weights_enum_member(model: str, name: str | None) -> Any:
    """The torchvision weights of `model` named `name` (`IMAGENET1K_V1`, `DEFAULT`, or the enum's full
    `ResNet152_Weights.IMAGENET1K_V1`); a clear error listing the model's weights otherwise."""
    enum = torchvision_weights_enum(model)
    if enum is None:
        raise WeightsError(f"model {model!r} has no torchvision weights (it is not a torchvision architecture); "
                           "use scratch, run:DIR or file:PATH")
    if name is None:
        return study_weights(model)
    key = name.split(".")[-1]
    if "." in name and name.split(".")[0] != enum.__name__:
        raise WeightsError(f"{name} are weights of another architecture; {model} has "
                           f"{', '.join(f'{enum.__name__}.{w.name}' for w in enum)}")
    if key == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[key]
    except KeyError:
        raise WeightsError(f"{model} has no torchvision weights {key!r}; known: "
                           f"{', '.join(w.name for w in enum)} (and DEFAULT = {enum.DEFAULT.name})") from None


def resolve_torchvision(model: str, value: str | None) -> Any:
    """The weights a `torchvision[:<model>.<WEIGHTS>]` spec names for registry model `model`."""
    if value is None:
        return weights_enum_member(model, None)
    arch, sep, name = value.partition(".")
    if not sep:
        arch, name = value, ""
    enum = torchvision_weights_enum(model)
    if enum is not None and arch == enum.__name__:  # torchvision:ResNet152_Weights.IMAGENET1K_V1
        arch = model
    if arch != model:
        raise WeightsError(f"torchvision:{value} are weights for {arch!r}, but the model is {model!r}; use "
                           f"torchvision:{model}.<WEIGHTS> ({', '.join(_weight_names(model))})")
    return weights_enum_member(model, name or None)


def _weight_names(model: str) -> list[str]:
    enum = torchvision_weights_enum(model)
    return [w.name for w in enum] if enum is not None else []


def published_metrics(model: str, weights: str | None = None) -> dict[str, Any]:
    """torchvision's published ImageNet-1K numbers for `model`'s weights (offline: they are in the enum)."""
    w = weights_enum_member(model, weights)
    metrics = w.meta.get("_metrics", {}).get("ImageNet-1K")
    if not metrics or "acc@1" not in metrics:
        raise WeightsError(f"{type(w).__name__}.{w.name} publishes no ImageNet-1K accuracy")
    return {
        "weights": f"{type(w).__name__}.{w.name}",
        "dataset": "imagenet-1k",
        "top1": float(metrics["acc@1"]),
        "top5": float(metrics["acc@5"]) if "acc@5" in metrics else None,
        "num_classes": len(w.meta.get("categories") or []) or 1000,
        "val_images": 50000,
        "params": w.meta.get("num_params"),
        "gflops": w.meta.get("_ops"),
        "file_size_mb": w.meta.get("_file_size"),
        "url": w.url,
        "recipe": w.meta.get("recipe"),
    }


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Force `torch.load(weights_only=True)` inside the block, also for loads we do not call ourselves.

    torchvision's builders load published weights through torch.hub.load_state_dict_from_url, whose default is
    weights_only=False; its files are plain state_dicts, so forcing the safe loader changes nothing for them
    and refuses any file in the cache that carries code.
    """
    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    old = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def cached_weights_path(w: Any) -> Path:
    """Where torchvision keeps (or will keep) the file of weights `w`: $TORCH_HOME/hub/checkpoints/<name>."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)


def _published_hash_ok(path: Path, sha256: str) -> bool | None:
    import torch.hub

    m = torch.hub.HASH_REGEX.search(path.name)
    return sha256.startswith(m.group(1)) if m and m.group(1) else None


def _torchvision_model(model: str, w: Any, progress: bool) -> tuple[nn.Module, WeightsInfo]:
    import torchvision.models as tvm

    from imagenot.fileio import sha256_file
    from imagenot.models.info import entry

    builder = getattr(tvm, entry(model).info.torchvision_builder)
    try:
        with _weights_only_loads():
            net = builder(weights=w, progress=progress)
    except Exception as exc:  # noqa: BLE001 - download, hash and unpickling errors all mean "cannot load"
        raise WeightsError(f"cannot load torchvision weights {type(w).__name__}.{w.name} for {model} "
                           f"(file {cached_weights_path(w)}): {_first_line(exc)}") from exc
    if getattr(net, "AuxLogits", None) is not None:  # the registry's Inception has no auxiliary head
        net.aux_logits = False
        net.AuxLogits = None
    if hasattr(net, "aux1") and getattr(net, "aux_logits", False):  # GoogLeNet
        net.aux_logits = False
        net.aux1 = net.aux2 = None
    path = cached_weights_path(w)
    digest = sha256_file(path) if path.is_file() else None
    ok = _published_hash_ok(path, digest) if digest else None
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A state_dict from .safetensors or a torch file (weights_only=True), unwrapping common containers.

    Accepted: a plain {name: tensor} mapping, {"state_dict": ...} / {"model": ...} wrappers, and imagenot's
    own checkpoints (their EMA weights when present). A file whose pickle carries code is refused without
    running it.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise WeightsError(f"{path}: not a readable safetensors file: {_first_line(exc)}") from exc
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad or unsafe files
        from imagenot.checkpoint import safe_load_reason

        raise WeightsError(
            f"{path}: not a trusted weights file: torch's safe loader cannot read it ({safe_load_reason(exc)}). "
            "imagenot loads plain tensors only; a file that needs full unpickling could run arbitrary code and is "
            "never loaded. Save the model's state_dict() (torch.save(model.state_dict(), f)) or use safetensors."
        ) from exc
    if isinstance(data, dict) and data.get("format") == "imagenot-checkpoint":
        return _checkpoint_weights(data)
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict) and len(data) <= 8:
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path}: not a state_dict (expected a mapping of parameter names to tensors, got "
                           f"{type(data).__name__})")
    return dict(data)


def _checkpoint_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The weights a run's accuracy was measured on: EMA when the run kept it (AveragedModel's `module.`)."""
    ema = ckpt.get("ema")
    if ema:
        prefix = "module."
        return {k[len(prefix):]: v for k, v in ema.items() if k.startswith(prefix)}
    return dict(ckpt["model"])


def _strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_state_into(model: nn.Module, state: dict[str, Any], source: str) -> None:
    """Load `state` strictly, with an error that lists what is missing, unexpected or mis-shaped."""
    state = _strip_prefix(_strip_prefix(state, "module."), "_orig_mod.")  # DDP / torch.compile wrappers
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{what}: {shown}")
        raise WeightsError(f"{source}: weights do not fit {type(model).__name__} ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)


def _head_classes(model_name: str, state: dict[str, Any], input_size: int | None) -> int | None:
    """The class count of the head stored in `state` (the registry architecture's head key)."""
    import torch

    from imagenot.models.heads import find_head
    from imagenot.models.info import build

    with torch.device("meta"):
        probe = build(model_name, 2, input_size=input_size)
    head_name, _ = find_head(probe)
    state = _strip_prefix(_strip_prefix(state, "module."), "_orig_mod.")
    weight = state.get(f"{head_name}.weight")
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def _file_model(model: str, path: str, input_size: int | None, num_classes: int) -> tuple[nn.Module, WeightsInfo]:
    from imagenot.fileio import sha256_file
    from imagenot.models.info import build

    state = read_state_dict(path)
    # the head size stored in the file; without one (another architecture) the key check below says why
    k = _head_classes(model, state, input_size) or num_classes
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


def _run_model(model: str, run: str, input_size: int | None) -> tuple[nn.Module, WeightsInfo]:
    from imagenot import rundir
    from imagenot.checkpoint import load_checkpoint
    from imagenot.fileio import sha256_file
    from imagenot.models.info import build

    summary = run_summary(run)
    if summary.get("model") != model:
        raise WeightsError(f"run {run} trained {summary.get('model')!r}, not {model!r}; use it with "
                           f"--model {summary.get('model')} (or omit --model)")
    path = rundir.checkpoint_path(run)
    ckpt = load_checkpoint(path, expect={"model": model})
    meta = ckpt.get("meta", {})
    k = int(meta["num_classes"])
    size = input_size or int(meta.get("image_size") or 0) or None
    net = build(model, k, input_size=size)
    load_state_into(net, _checkpoint_weights(ckpt), str(path))
    norm = ckpt.get("normalization") or {}
    classes = ckpt.get("classes")
    return net, WeightsInfo(
        source=f"run:{run}", kind="run", identity=str(run), sha256=sha256_file(path), num_classes=k,
        classes=tuple(classes) if classes else None,
        mean=tuple(norm["mean"]) if norm.get("mean") else None, std=tuple(norm["std"]) if norm.get("std") else None,
        image_size=int(meta.get("image_size") or 0) or None,
        pretrain={"pretrain_run": str(run), "pretrain_dataset": summary.get("dataset"),
                  "pretrain_top1": summary.get("top1"), "pretrain_seed": summary.get("seed")},
    )


def head_classes(model: str, init: str | InitSpec | None) -> tuple[int | None, tuple[str, ...] | None]:
    """(class count, class ids in head order) of the head `init` comes with, without building the model;
    ids are known for runs (their checkpoint's classes), None otherwise; (None, None) from scratch."""
    spec = init if isinstance(init, InitSpec) else parse_init(init)
    if spec.kind == "torchvision":
        w = resolve_torchvision(model, spec.value)
        return len(w.meta.get("categories") or []) or None, None
    if spec.kind == "file":
        return _head_classes(model, read_state_dict(spec.value or ""), None), None
    if spec.kind == "run":
        from imagenot import rundir
        from imagenot.checkpoint import load_checkpoint

        ckpt = load_checkpoint(rundir.checkpoint_path(spec.value or ""), expect={"model": model})
        classes = ckpt.get("classes")
        return int(ckpt["meta"]["num_classes"]), tuple(classes) if classes else None
    return None, None


def check_init(model: str, init: str | InitSpec | None) -> InitSpec:
    """Validate an init spec for `model` without loading weights (zoo plans call this before running)."""
    spec = init if isinstance(init, InitSpec) else parse_init(init)
    if spec.kind == "torchvision":
        resolve_torchvision(model, spec.value)
    elif spec.kind == "file" and not Path(spec.value or "").is_file():
        raise WeightsError(f"file:{spec.value}: no such weights file")
    elif spec.kind == "run" and Path(spec.value or "").is_dir():
        summary = run_summary(spec.value or "")
        if summary.get("model") != model:
            raise WeightsError(f"run {spec.value} trained {summary.get('model')!r}, not {model!r}")
    return spec


def build_model(
    name: str,
    num_classes: int,
    *,
    init: str | InitSpec | None = "scratch",
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

    spec = init if isinstance(init, InitSpec) else parse_init(init)
    entry(name)  # unknown model names fail here, listing the known ones
    if spec.kind == "scratch":
        net = build(name, num_classes, input_size=input_size)
        info = WeightsInfo(source="scratch", kind="scratch", num_classes=num_classes, image_size=input_size)
        if freeze:
            raise WeightsError("freezing the features of a randomly initialised model trains a random projection; "
                               "give pretrained weights (--init) for a linear probe")
        return net, info
    if spec.kind == "torchvision":
        w = resolve_torchvision(name, spec.value)
        fixed = entry(name).info.fixed_input
        size = transform_defaults(name, w).val_crop
        if fixed and input_size and int(input_size) != size:
            raise WeightsError(f"{name} weights {w.name} are for {size} px inputs (position embeddings); got "
                               f"--image-size {input_size}")
        net, info = _torchvision_model(name, w, progress)
    elif spec.kind == "file":
        net, info = _file_model(name, spec.value or "", input_size, num_classes)
    else:
        net, info = _run_model(name, spec.value or "", input_size)
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
