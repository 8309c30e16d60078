"""The run directory: its layout, and the checks that keep one directory one run.

    RUN_DIR/config.json          resolved TrainConfig (rerun with --config)
    RUN_DIR/manifest.json        config, environment, input hashes
    RUN_DIR/metrics.jsonl        one line per finished epoch
    RUN_DIR/checkpoints/last.pt  newest checkpoint (every epoch and every N steps)
    RUN_DIR/predictions.parquet  per-image predictions of the final evaluation (imagenot.predictions)
    RUN_DIR/result.json          written last: its presence means the run is finished

This module owns the run record: `start_run` writes config.json and manifest.json when a run starts,
`result_record` builds result.json (the same leading fields, in the same order, for a trained, an evaluated
and a published run) and `write_result` writes it last; `read_config` and `read_result` read them back for
every stage (the analysis, which may import no other stage, included).

A directory that already holds another run (another model, dataset, seed or recipe) is refused rather than
overwritten, and an unfinished run is only continued when asked (`--resume`) or replaced when asked
(`--force`): the expensive mistake is a silent fresh start over hours of training.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from imagenot import safepath
from imagenot.errors import ImagenotError
from imagenot.fileio import json_digest, read_json, write_json, write_manifest, write_text

log = logging.getLogger(__name__)

CONFIG = "config.json"
MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"
CHECKPOINT = "checkpoints/last.pt"
PREDICTIONS = "predictions.parquet"

# Config keys that do not change what is trained (how often to log, whether to resume, ...).
NON_IDENTITY_KEYS = frozenset(
    {"out", "resume", "force", "progress", "threads", "log_every_steps", "checkpoint_every_steps", "device",
     "compile", "eval_batch_size", "eval_every", "workers", "fingerprint"}
)


class RunDirError(ImagenotError):
    """A run directory that holds something other than the requested run."""


def result_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RESULT


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def predictions_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / PREDICTIONS


def is_finished(run_dir: str | Path) -> bool:
    return result_path(run_dir).is_file()


def is_run_dir(path: str | Path) -> bool:
    """Whether `path` is a run directory (train, finetune, evaluate, published), finished or not.

    Other stages' folders also hold a config.json (a dataset, a mine, an audit, a report): a run is told by
    its own files, a result.json (even an unreadable one: that run failed), a checkpoint, or a config.json
    of a run config (a model, and the data or weights it runs on; an audit's names a model but neither)."""
    path = Path(path)
    if result_path(path).is_file() or checkpoint_path(path).is_file():
        return True
    try:
        config = read_config(path)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model" in config and ("init" in config or "dataset" in config)


# result.json's fields in the order every run writes them; a source's own fields follow (`result_record`).
RESULT_KEYS = (
    "model", "family", "year", "dataset", "dataset_spec", "split", "role", "source", "init", "weights",
    "pretrain_dataset", "pretrain_run", "pretrain_top1", "finetune_mode", "seed", "fingerprint", "status",
    "top1", "top5", "val_loss", "train_loss", "epochs", "steps", "wall_time_s", "params", "flops",
    "image_size", "train_crop_size", "num_classes", "train_images", "val_images", "batch_size", "recipe",
    "recipe_params", "input", "normalization", "predictions", "published", "world_size", "device",
    "precision", "numerics", "environment",
)
# Fields every result.json has (a reader may rely on them; None where a source has no value).
RESULT_REQUIRED = ("model", "family", "year", "dataset", "dataset_spec", "role", "source", "init", "weights",
                   "seed", "top1", "top5", "epochs", "wall_time_s", "params", "flops", "image_size",
                   "num_classes", "val_images", "train_images", "environment")


def result_record(**fields: Any) -> dict[str, Any]:
    """A run's result.json record (trained, evaluated or published): RESULT_REQUIRED must be given, the
    known fields are put in RESULT_KEYS order, a source's other fields follow. `precision` is written in
    the one vocabulary (imagenot.runtime)."""
    missing = [k for k in RESULT_REQUIRED if k not in fields]
    if missing:
        raise TypeError(f"result_record: missing field(s) {', '.join(missing)}")
    if isinstance(fields.get("precision"), str):
        from imagenot.runtime import canonical_precision

        fields["precision"] = canonical_precision(fields["precision"])
    known = {k: fields.pop(k) for k in RESULT_KEYS if k in fields}
    return {**known, **fields}


def write_result(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """Write result.json, atomically, last of a run's files: its presence means the run is finished."""
    path = result_path(run_dir)
    write_json(path, result)
    return path


def start_run(run_dir: str | Path, config: dict[str, Any], inputs: dict[str, str] | None = None,
              **manifest: Any) -> None:
    """Write a starting run's config.json (what `--config` replays) and manifest.json (config, environment,
    input hashes and `manifest`'s fields), creating the folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG, config)
    write_manifest(run_dir, config, inputs, **manifest)


def write_metrics(run_dir: str | Path, history: list[dict[str, Any]]) -> Path:
    """Write metrics.jsonl (one line per finished epoch), atomically, whole: the history a checkpoint holds."""
    path = Path(run_dir) / METRICS
    write_text(path, "".join(json.dumps(row) + "\n" for row in history))
    return path


def read_config(run_dir: str | Path) -> Any:
    """A run's config.json as written (OSError / ValueError as `read_json` raises them: callers decide)."""
    return read_json(Path(run_dir) / CONFIG)


def read_result(run_dir: str | Path) -> dict[str, Any]:
    path = result_path(run_dir)
    try:
        return read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read run result: {exc}") from exc


def is_diverged(result: dict[str, Any]) -> bool:
    """Whether a run's result.json records a divergence: status 'diverged', or (runs written before that
    status existed) a NaN or infinite final train or validation loss, whose accuracy is chance, not a result."""
    if result.get("status") == "diverged":
        return True
    losses = (result.get("train_loss"), result.get("val_loss"))
    return any(isinstance(v, float) and not math.isfinite(v) for v in losses)


def diverged_note(result: dict[str, Any]) -> str | None:
    """A sentence on a run that diverged (`is_diverged`), None for any other run."""
    if not is_diverged(result):
        return None
    where = result.get("diverged") or {}
    if where:
        how = (f"{where.get('which', '?')} loss {where.get('loss', '?')} at epoch {where.get('epoch', '?')}, "
               f"step {where.get('step', '?')}")
    else:
        how = f"final train loss {result.get('train_loss')}, validation loss {result.get('val_loss')}"
    return (f"{result.get('model')} on {result.get('dataset')} diverged ({how}): it has no accuracy and is left "
            "out of reports; lower the learning rate (--set lr=...) and rerun with --force")


def identity(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS}


# Beyond NON_IDENTITY_KEYS, the fingerprint leaves out the seed: runs that differ only in their seed are
# replicates of one experiment, which the report averages (the seed is in the run's path and result).
FINGERPRINT_EXCLUDED = NON_IDENTITY_KEYS | {"seed"}


def fingerprint(config: dict[str, Any]) -> str:
    """The run's identity as a short digest of its resolved config (config.json, or what a zoo plan would
    write there): model, data and its options, recipe and its resolved values, epochs, batch, sizes,
    precision, init weights, roles and names. Not in it: FINGERPRINT_EXCLUDED (where the run lives, how it
    is run and logged, its seed). A starting run (`init` run:DIR) counts by its own fingerprint (the trainer
    records it as `resolved.init_fingerprint`), not its path: the path holds the pretraining seed, so the
    fine-tunes of every pretraining seed share a fingerprint, and one retrained with other settings does not."""
    ident = {k: v for k, v in config.items() if k not in FINGERPRINT_EXCLUDED}
    resolved = ident.get("resolved")
    if isinstance(resolved, dict) and "numerics" in resolved:  # what this machine made of the request: not it
        ident["resolved"] = {k: v for k, v in resolved.items() if k != "numerics"}
    init = ident.get("init")
    if isinstance(init, str) and init.startswith("run:"):
        ident["init"] = "run"
    return json_digest(ident, 16)


def recorded_fingerprint(run_dir: str | Path) -> str | None:
    """The fingerprint of the run in `run_dir`: result.json's for a finished run (None when it was written
    before fingerprints existed: an unknown identity, which callers say), config.json's for an unfinished one
    (None when there is none)."""
    run_dir = Path(run_dir)
    if is_finished(run_dir):
        with contextlib.suppress(RunDirError):
            value = read_result(run_dir).get("fingerprint")
            return value if isinstance(value, str) and value else None
        return None
    with contextlib.suppress(OSError, ValueError):
        config = read_config(run_dir)
        if isinstance(config, dict):
            return fingerprint(config)
    return None


def config_difference(run_dir: str | Path, config: dict[str, Any], limit: int = 6) -> str | None:
    """What differs between the run recorded in `run_dir` and `config` ("key: old there, new here"), None
    when they are the same run or nothing is recorded to compare with."""
    try:
        old = read_config(run_dir)
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return "its config.json is not a JSON object"
    diff = _differences(identity(old), identity(config))
    if not diff:
        return None
    return ", ".join(f"{k}: {a!r} there, {b!r} here" for k, a, b in diff[:limit])


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key, old, new) of every differing key; nested mappings (the resolved recipe) by their inner keys."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", a, b))
    return out


def check_existing(run_dir: Path, config: dict[str, Any], *, resume: bool, force: bool) -> str:
    """Decide what to do with `run_dir`: 'fresh', 'resume' or 'finished'; raise if it holds another run.

    With `force`, an existing run directory is cleared (only the files a run writes), unless it is or
    holds the run's own data or weights, or is the working folder or above it (`safepath.check_removable`):
    a dataset folder has a config.json and manifest.json of its own.
    """
    if not run_dir.exists():
        return "fresh"
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a directory")
    cfg_path = run_dir / CONFIG
    if force:
        safepath.check_removable(run_dir, [safepath.spec_path(config.get(k)) for k in ("dataset", "init")
                                           if isinstance(config.get(k), str)])
        clear(run_dir)
        return "fresh"
    if cfg_path.is_file():
        try:
            read_json(cfg_path)
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{cfg_path}: unreadable run config ({exc}); use --force to start over") from exc
        shown = config_difference(run_dir, config)
        if shown:
            raise RunDirError(
                f"{run_dir} holds another run ({shown}); choose another --out, or --force to replace it"
            )
    if is_finished(run_dir):
        return "finished"
    if checkpoint_path(run_dir).is_file():
        if not resume:
            raise RunDirError(
                f"{run_dir} holds an unfinished run with a checkpoint; pass --resume to continue it "
                "or --force to start over"
            )
        return "resume"
    if cfg_path.is_file():
        # Started, but stopped before its first checkpoint: nothing to lose by starting it again.
        log.info("%s: no checkpoint yet; starting the run from the beginning", run_dir)
    return "fresh"


def clear(run_dir: Path) -> None:
    for name in (CONFIG, MANIFEST, METRICS, RESULT, PREDICTIONS):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
