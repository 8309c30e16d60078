"""Evaluate any weights on a dataset split with the model's own evaluation transforms, into a run folder.

The transforms belong to the weights: torchvision's weights carry their resize, centre crop, interpolation
and normalisation (ResNet-50 IMAGENET1K_V1 resizes to 256, V2 to 232; EfficientNet V2 L normalises with 0.5),
a run's checkpoint carries the normalisation it trained with. Full-size models are evaluated per sample
(decode, resize, centre crop in DataLoader workers), small-input variants on the batched in-memory pipeline at
their input size. Everything is checked (weights spec, dataset, run folder) before anything is written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from imagenot import rundir, runtime
from imagenot.errors import ImagenotError
from imagenot.evaluation.config import EvaluateConfig, evaluation_record
from imagenot.fileio import environment
from imagenot.lock import locks_output

log = logging.getLogger(__name__)


def _eval_transform(cfg: EvaluateConfig, source: Any) -> Any:
    """The weights' own evaluation transform for full-size models (None: the batched pipeline)."""
    from imagenot.data.transforms import EvalTransform
    from imagenot.models import model_info
    from imagenot.models.weights import transform_defaults

    if not model_info(cfg.model).full_size:
        return None
    if source.kind == "run":  # the run's own evaluation transform (it may have trained at another size)
        ev = (source.summary().get("input") or {}).get("eval")
        if isinstance(ev, dict) and ev.get("resize") and ev.get("crop"):
            return EvalTransform(int(ev["resize"]), int(ev["crop"]), str(ev.get("interpolation") or "bilinear"))
    d = transform_defaults(cfg.model, source.torchvision)
    return EvalTransform(d.val_resize, d.val_crop, d.interpolation)


def _run_input_size(source: Any) -> int | None:
    """The input size a `run:` source trained at (None for other sources: their model's own)."""
    if source.kind != "run":
        return None
    summary = source.summary()
    size = summary.get("train_crop_size") or summary.get("image_size")
    return int(size) if size else None


def _load_split(cfg: EvaluateConfig, transform: Any, size: int) -> Any:
    from imagenot.data import get_dataset, validate

    opts = dict(cfg.dataset_options)
    if transform is None:
        opts.setdefault("image_size", size)
    else:
        opts["stored_size"] = True  # the transform needs stored images (in memory as stored with in_memory)
    ds = get_dataset(str(cfg.dataset), cfg.split, limit=cfg.limit, **opts)
    validate(ds, what=f"{cfg.dataset} ({cfg.split} split)")
    return ds


def _align_to_weights(cfg: EvaluateConfig, source: Any, ds: Any) -> int:
    """The head size to evaluate with, relabelling `ds` in place to the weights' class order when that order
    is known: a run's own classes, or ImageNet-1K's for a 1000-class head (torchvision's class index is the
    sorted wnid order, timm's synset list), so an ImageFolder of ImageNet, or a subset of its classes, is
    scored against the right outputs. Otherwise the classes must match in number (and are taken in order)."""
    import torch

    from imagenot.models.weights import head_classes
    from imagenot.wordnet.references import reference_wnids

    k, names = head_classes(cfg.model, source)
    classes = list(ds.classes)
    if names is None and k == 1000:
        names = tuple(reference_wnids("imagenet-1k"))
    if names is not None and all(c in names for c in classes):
        order = {c: i for i, c in enumerate(names)}
        ds.labels = torch.tensor([order[c] for c in classes], dtype=torch.int64)[ds.labels]
        ds.classes = list(names)
        if classes != list(names):
            log.info("%s: %d classes mapped to the weights' %d-class order", cfg.dataset, len(classes), len(names))
        return len(names)
    if names is not None and k == len(classes):
        # Same count, other classes: taken in order, every output would be scored against another class.
        foreign = [c for c in classes if c not in names]
        hint = "name the class folders by wnid (n01440764, ...), or " if k == 1000 else ""
        raise ImagenotError(
            f"{cfg.init} predicts the classes {_preview(names)}, but {cfg.dataset} has the classes "
            f"{_preview(classes)}: {len(foreign)} of its {len(classes)} classes (e.g. {', '.join(foreign[:3])}) "
            "are not among the weights' classes, so the same number of classes does not make the outputs "
            f"mean them; {hint}fine-tune the weights on these classes (imagenot finetune)")
    if k is not None and k == len(classes):
        log.warning("%s records no class list: its %d outputs are taken to be %s's classes in their order",
                    cfg.init, k, cfg.dataset)
    if k is not None and k != len(classes):
        what = "not ImageNet-1K wnids" if k == 1000 else "not the weights' classes"
        raise ImagenotError(f"{cfg.init} predicts {k} classes, but {cfg.dataset} has {len(classes)} classes that "
                            f"are {what}; name the class folders by wnid (n01440764, ...) or fine-tune the "
                            "weights on these classes (imagenot finetune)")
    return len(classes)


def _preview(names: Any, n: int = 4) -> str:
    names = [str(c) for c in names]
    return f"[{', '.join(names[:n])}{', ...' if len(names) > n else ''}] ({len(names)})"


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def evaluate_weights(cfg: EvaluateConfig) -> dict[str, Any]:
    """Evaluate `cfg.init` on `cfg.dataset` (split `cfg.split`); write and return the run's result.json.

    The thread count is put back afterwards, so a zoo evaluating in-process leaves its other runs alone."""
    with runtime.torch_settings():
        return _evaluate_weights(cfg)


def _evaluate_weights(cfg: EvaluateConfig) -> dict[str, Any]:
    from imagenot.models import model_info, params_and_flops
    from imagenot.models.weights import build_model, check_init, resolve_source
    from imagenot.training.config import dataset_display_name
    from imagenot.training.evaluation import check_finite_weights, evaluate
    from imagenot.training.inputs import resolve_normalization
    from imagenot.training.precision import resolve_numerics

    t0 = time.perf_counter()
    if not cfg.dataset:
        raise ImagenotError("evaluate needs --dataset (or --published for torchvision's published accuracies)")
    minfo = model_info(cfg.model)
    source = resolve_source(cfg.model, cfg.init)  # resolved once: a source run's files are read once
    check_init(cfg.model, source)
    out = Path(cfg.out)
    record = evaluation_record(cfg)
    decision = rundir.check_existing(out, record, resume=False, force=cfg.force)
    if decision == "finished":
        log.info("%s already holds this evaluation", out)
        return rundir.read_result(out)
    runtime.set_threads(cfg.threads)
    device = runtime.resolve_device(cfg.device)
    numerics = resolve_numerics(device, cfg.precision)
    precision = numerics.precision
    transform = _eval_transform(cfg, source)
    size = _run_input_size(source)  # a run's weights are evaluated at the size they were trained at
    ds = _load_split(cfg, transform, int(size or minfo.input_size))
    num_classes = _align_to_weights(cfg, source, ds)
    model, info = build_model(cfg.model, num_classes, init=source, replace_head=False, input_size=size)
    mean, std = resolve_normalization("pretrained", cfg.model, ds, (info.mean, info.std), what=cfg.init)
    if cfg.workers is not None:
        workers = cfg.workers
    else:
        from imagenot.training.distributed import DistInfo
        from imagenot.training.inputs import default_workers

        workers = default_workers(DistInfo()) if transform is not None else 0
    check_finite_weights(model, cfg.init)
    res = evaluate(model, ds, device, transform=transform, mean=mean, std=std, batch_size=cfg.batch_size,
                   precision=precision, channels_last=numerics.channels_last, workers=workers,
                   fp32_grouped_convs=numerics.fp32_grouped_convs)
    crop = transform.crop if transform is not None else int(ds.image_size)
    name = cfg.dataset_name or dataset_display_name(cfg.dataset)
    params, flops = params_and_flops(cfg.model, crop, int(ds.num_classes))
    result = rundir.result_record(
        model=cfg.model, family=minfo.family, year=minfo.year, dataset=name, dataset_spec=cfg.dataset,
        split=cfg.split, role=cfg.role, source="evaluated", init=cfg.init, weights=info.to_dict(), seed=None,
        fingerprint=rundir.fingerprint(record), top1=res.top1, top5=res.top5, val_loss=res.loss, epochs=None,
        wall_time_s=time.perf_counter() - t0, params=int(params), flops=int(flops), image_size=crop,
        num_classes=int(ds.num_classes), val_images=res.count, train_images=None,
        input={"pipeline": "per_sample" if transform is not None else "batched",
               "eval": None if transform is None else {"resize": transform.resize, "crop": transform.crop,
                                                       "interpolation": transform.interpolation}},
        normalization={"mean": mean, "std": std}, predictions=rundir.PREDICTIONS, device=device.type,
        precision=precision, numerics=numerics.to_dict(), environment=environment(device=str(device)))
    inputs = {"init_weights": info.sha256} if info.sha256 else {}
    fingerprint = getattr(ds, "meta", {}).get("fingerprint")
    if fingerprint:
        inputs[f"dataset_{cfg.split}"] = fingerprint
    rundir.start_run(out, record, inputs, source="evaluated", weights=info.to_dict())
    res.write_predictions(rundir.predictions_path(out), dataset=name, split=cfg.split,
                          num_classes=int(ds.num_classes), extra={"model": cfg.model, "init": cfg.init})
    rundir.write_result(out, result)
    return result
