"""Likely label errors of the contrast dataset by confident learning, from a trained run's held-out predictions.

Confident learning (Northcutt et al., cleanlab's `find_label_issues`) needs out-of-sample predicted
probabilities: the run never trained on its validation split, so evaluating the run's model there gives
them. The model is rebuilt from the registry and loaded from the run's checkpoint with weights_only=True
(its EMA weights when it kept EMA, as those are what its reported accuracy measured), and the validation
images are normalised exactly as the trainer did (the checkpoint's mean and std over [0, 1]).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagenot import rundir
from imagenot.audit.config import AuditConfig, absolute_spec
from imagenot.audit.dataset_meta import sample_keys
from imagenot.errors import ImagenotError, InputError
from imagenot.progress import Progress
from imagenot.stats import accuracy_interval

log = logging.getLogger(__name__)


@dataclass
class ContrastRun:
    path: Path
    config: dict[str, Any]
    result: dict[str, Any]
    checkpoint: dict[str, Any]


def _same_spec(a: str, b: str) -> bool:
    return absolute_spec(a) == absolute_spec(b)


def load_contrast_run(run_dir: str | Path, contrast: str, contrast_classes: list[str] | None) -> ContrastRun:
    """Read and check a finished run on `contrast`: refused (InputError) when it trained on another dataset,
    is unfinished, or its checkpoint's classes are not the dataset's."""
    from imagenot.checkpoint import load_checkpoint

    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise InputError("contrast run: no such directory", path)
    cfg_path = path / rundir.CONFIG
    if not cfg_path.is_file():
        raise InputError("contrast run: no config.json (not a run directory of `imagenot train`)", path)
    if not rundir.is_finished(path):
        raise InputError("contrast run is not finished (no result.json); finish or resume it first", path)
    try:
        config = rundir.read_config(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable run config: {exc}", cfg_path) from exc
    result = rundir.read_result(path)
    diverged = rundir.diverged_note(result)
    if diverged:  # its predictions would be chance, and every image a "label issue"
        raise InputError(f"contrast run: {diverged}", path)
    spec = config.get("dataset") or result.get("dataset_spec") or ""
    if not _same_spec(spec, contrast):
        raise InputError(f"contrast run trained on {spec!r}, not on the contrast dataset {contrast!r}", path)
    if config.get("pretrain_run"):
        raise InputError("contrast run is a fine-tune (pretrain_run set); give a run trained from scratch", path)
    ckpt = load_checkpoint(rundir.checkpoint_path(path), expect={"model": config.get("model")})
    classes = ckpt.get("classes")
    if contrast_classes is not None and classes is not None and list(classes) != list(contrast_classes):
        raise InputError(f"contrast run's checkpoint has {len(classes)} classes that are not the contrast "
                         f"dataset's {len(contrast_classes)} (same order); was the dataset rebuilt?", path)
    return ContrastRun(path, config, result, ckpt)


def predicted_probabilities(run: ContrastRun, contrast: str, eval_batch_size: int, enabled: bool = True
                            ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Softmax probabilities `[N, K]` of the run's model on the contrast's validation split, its labels, and
    the sample keys (file datasets; None for array datasets)."""
    import torch

    from imagenot.data import get_dataset, to_float_normalized
    from imagenot.models import get_model

    meta = run.checkpoint.get("meta", {})
    num_classes = int(meta.get("num_classes") or run.result.get("num_classes"))
    image_size = int(meta.get("image_size") or run.result.get("image_size"))
    options = dict(run.config.get("dataset_options") or {})
    ds = get_dataset(contrast, "val", image_size=image_size, **options)
    if len(ds) == 0:
        raise InputError(f"dataset {contrast}: the val split is empty; no out-of-sample predictions to check")
    if ds.num_classes != num_classes:
        raise InputError(f"contrast run has {num_classes} classes, dataset {contrast} has {ds.num_classes}",
                         run.path)
    model = get_model(str(meta.get("model") or run.config["model"]), num_classes, input_size=image_size)
    state = run.checkpoint["model"]
    if run.checkpoint.get("ema") is not None:
        prefix = "module."
        state = {k[len(prefix):]: v for k, v in run.checkpoint["ema"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ImagenotError(f"{rundir.checkpoint_path(run.path)}: weights do not fit "
                            f"{meta.get('model')}: {str(exc).splitlines()[0]}") from exc
    model.eval()
    norm = run.checkpoint.get("normalization") or {"mean": [0.5], "std": [0.5]}
    channels = next((m.in_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)), 3)
    keys = sample_keys(contrast, "val", image_size=image_size, **options)
    probs = []
    with torch.no_grad(), Progress(len(ds), desc="contrast run on val", unit="img", enabled=enabled,
                                   logger=log) as bar:
        for start in range(0, len(ds), eval_batch_size):
            idx = torch.arange(start, min(start + eval_batch_size, len(ds)))
            xb, _ = ds.get_batch(idx)
            x = to_float_normalized(xb, size=None, channels=channels, mean=norm["mean"], std=norm["std"])
            out = model(x)
            logits = out if isinstance(out, torch.Tensor) else getattr(out, "logits", out[0])
            probs.append(torch.softmax(logits.float(), dim=1))
            bar.update(len(idx))
    return torch.cat(probs).numpy().astype(np.float64), ds.labels.numpy().astype(np.int64), keys


def find_issues(labels: np.ndarray, probs: np.ndarray, filter_by: str) -> np.ndarray:
    """Indices of likely label errors, most confident first (cleanlab's self-confidence ranking)."""
    from cleanlab.filter import find_label_issues

    try:
        return np.asarray(find_label_issues(labels, probs, filter_by=filter_by,
                                            return_indices_ranked_by="self_confidence", n_jobs=1),
                          dtype=np.int64)
    except ValueError as exc:
        raise ImagenotError(f"confident learning failed on {len(labels)} validation images: {exc}") from exc


def label_issues(run: ContrastRun, contrast: str, class_names: list[str], cfg: AuditConfig,
                 captions: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The `label_issues` part of the label-level section: counts per class and the top examples."""
    probs, labels, keys = predicted_probabilities(run, contrast, cfg.eval_batch_size, cfg.progress)
    ranked = find_issues(labels, probs, cfg.filter_by)
    pred = probs.argmax(1)
    k = probs.shape[1]
    checked = np.bincount(labels, minlength=k)
    flagged = np.bincount(labels[ranked], minlength=k) if len(ranked) else np.zeros(k, dtype=np.int64)
    examples = []
    for i in ranked[: cfg.issue_examples]:
        key = keys[i] if keys else None
        examples.append({
            "index": int(i), "key": key, "given": int(labels[i]), "given_name": class_names[labels[i]],
            "predicted": int(pred[i]), "predicted_name": class_names[pred[i]],
            "given_probability": float(probs[i, labels[i]]), "predicted_probability": float(probs[i, pred[i]]),
            "caption": (captions or {}).get(key) if key else None,
        })
    return {
        "run": str(run.path), "model": run.config.get("model"), "run_top1": run.result.get("top1"),
        "split": "val", "checked": int(len(labels)), "count": int(len(ranked)),
        "share": float(len(ranked) / len(labels)), "filter_by": cfg.filter_by,
        "accuracy_on_checked": float((pred == labels).mean()),
        "accuracy_interval": accuracy_interval(int((pred == labels).sum()), int(len(labels)), cfg.confidence),
        "chance": 1.0 / k,
        "ranking": "probability of the given label, lowest first (cleanlab self_confidence)",
        "per_class": [{"index": c, "name": class_names[c], "checked": int(checked[c]), "issues": int(flagged[c])}
                      for c in range(k)],
        "examples": examples,
    }
