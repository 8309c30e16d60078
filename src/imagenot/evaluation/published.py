"""Published accuracies as a run: torchvision's IMAGENET1K_V1 numbers from the weights enum, offline.

The enum's `meta["_metrics"]["ImageNet-1K"]` holds exactly the acc@1 / acc@5 the study reports for ImageNet
(AlexNet 56.522, ..., ConvNeXt Large 84.414), so recording them needs neither the 150 GB of ImageNet nor the
weights file. The result is marked `source: published` so no reader mistakes it for a measurement of ours.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from imagenot import rundir
from imagenot.evaluation.config import EvaluateConfig, evaluation_record
from imagenot.fileio import environment
from imagenot.lock import locks_output

log = logging.getLogger(__name__)


def published_result(cfg: EvaluateConfig) -> dict[str, Any]:
    """The result.json of a published-accuracy run (raises WeightsError for weights without metrics)."""
    from imagenot.models import model_info, params_and_flops
    from imagenot.models.weights import parse_init, published_metrics, resolve_torchvision, transform_defaults

    info = model_info(cfg.model)
    spec = parse_init(cfg.init)
    if spec.kind != "torchvision":
        from imagenot.models.weights import WeightsError

        raise WeightsError(f"--published needs torchvision weights (--init torchvision[:<model>.<WEIGHTS>]), "
                           f"got {cfg.init!r}")
    w = resolve_torchvision(cfg.model, spec.value)
    metrics = published_metrics(cfg.model, w.name)
    size = transform_defaults(cfg.model, w).val_crop
    params, flops = params_and_flops(cfg.model, size, metrics["num_classes"])
    return rundir.result_record(
        model=cfg.model, family=info.family, year=info.year, dataset=cfg.dataset_name or metrics["dataset"],
        dataset_spec=None, role=cfg.role or "reference", source="published", weights=metrics["weights"],
        init=f"torchvision:{cfg.model}.{w.name}", seed=None, top1=metrics["top1"], top5=metrics["top5"],
        epochs=None, wall_time_s=0.0, params=int(params), flops=int(flops), image_size=size,
        num_classes=metrics["num_classes"], val_images=metrics["val_images"], train_images=None,
        published={k: metrics[k] for k in ("url", "recipe", "gflops", "file_size_mb")},
        environment=environment())


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def write_published_run(cfg: EvaluateConfig) -> dict[str, Any]:
    """Write the run folder (config.json, manifest.json, result.json); an existing other run is refused."""
    out = Path(cfg.out)
    result = published_result(cfg)  # every error happens before anything is written
    record = evaluation_record(cfg)
    result["fingerprint"] = rundir.fingerprint(record)
    decision = rundir.check_existing(out, record, resume=False, force=cfg.force)
    if decision == "finished":
        log.info("%s already holds this published result", out)
        return rundir.read_result(out)
    rundir.start_run(out, record, {}, source="published", weights=result["weights"])
    rundir.write_result(out, result)
    return result
