"""Checkpoints that hold state dicts and plain values only, so `torch.load(weights_only=True)` reads them.

A checkpoint is the whole truth about a run in progress: weights, optimizer, schedule, scaler and EMA
states, every RNG state and the loader position (epoch and batches done in it), plus the metric history.
Resuming from it replays the rest of the run exactly; a file that is not such a checkpoint, or belongs to
another model, is refused by name instead of being silently replaced by a fresh start.

This module owns the layout (`trainer_checkpoint` builds the dict, the readers below take it apart): the
trainer writes it, and a run used as a weights source (imagenot.models.weights) reads its weights, head
size, classes and normalisation back through the same names.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagenot.errors import ImagenotError, nearly_full
from imagenot.fileio import atomic_path

log = logging.getLogger(__name__)

FORMAT = "imagenot-checkpoint"
VERSION = 1


class CheckpointError(ImagenotError):
    """A checkpoint that cannot be used: unreadable, not imagenot's, or for another model or dataset."""


# The keys of a trainer checkpoint (besides FORMAT / VERSION), in the order they are written.
TRAINER_KEYS = ("meta", "model", "optimizer", "scheduler", "scaler", "ema", "epoch", "step_in_epoch",
                "epoch_loss_sum", "epoch_seen", "history", "elapsed_s", "rng", "normalization", "classes")


def trainer_checkpoint(
    *, meta: dict[str, Any], model: dict[str, Any], optimizer: dict[str, Any], scheduler: dict[str, Any],
    scaler: dict[str, Any] | None, ema: dict[str, Any] | None, epoch: int, step_in_epoch: int,
    epoch_loss_sum: float, epoch_seen: int, history: list[dict[str, Any]], elapsed_s: float,
    rng: list[dict[str, Any]], mean: list[float], std: list[float], classes: list[str],
) -> dict[str, Any]:
    """The dict a trainer checkpoint holds (state dicts, loader position, RNG states of every rank, and the
    normalisation and classes a later reader of its weights needs); `save_checkpoint` writes it."""
    return {
        "meta": meta, "model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler,
        "ema": ema, "epoch": epoch, "step_in_epoch": step_in_epoch, "epoch_loss_sum": epoch_loss_sum,
        "epoch_seen": epoch_seen, "history": history, "elapsed_s": elapsed_s, "rng": rng,
        "normalization": {"mean": mean, "std": std}, "classes": classes,
    }


def is_checkpoint(data: Any) -> bool:
    """Whether a loaded file is an imagenot checkpoint (by its format marker)."""
    return isinstance(data, dict) and data.get("format") == FORMAT


def checkpoint_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The weights a run's accuracy was measured on: EMA when the run kept it (AveragedModel's `module.`)."""
    ema = ckpt.get("ema")
    if ema:
        prefix = "module."
        return {k[len(prefix):]: v for k, v in ema.items() if k.startswith(prefix)}
    return dict(ckpt["model"])


def checkpoint_num_classes(ckpt: dict[str, Any]) -> int:
    """The head size the checkpoint's model was built with."""
    return int(ckpt["meta"]["num_classes"])


def checkpoint_image_size(ckpt: dict[str, Any]) -> int | None:
    """The input size the run trained at (None when not recorded)."""
    return int(ckpt.get("meta", {}).get("image_size") or 0) or None


def checkpoint_classes(ckpt: dict[str, Any]) -> tuple[str, ...] | None:
    """The class ids in head order (None for checkpoints that do not record them)."""
    classes = ckpt.get("classes")
    return tuple(classes) if classes else None


def checkpoint_normalization(ckpt: dict[str, Any]) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """(mean, std) the run normalised its inputs with; (None, None) when not recorded."""
    norm = ckpt.get("normalization") or {}
    return (tuple(norm["mean"]) if norm.get("mean") else None, tuple(norm["std"]) if norm.get("std") else None)


def rng_state() -> dict[str, Any]:
    """This process's RNG states in weights_only-loadable form (tensors, ints, tuples)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), *np_state[2:]),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuple(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _to_tuple(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return tuple(_to_tuple(v) for v in x)
    return x


def is_unsafe_pickle_error(exc: BaseException) -> bool:
    """True when torch.load(weights_only=True) refused a file for holding code (not for being unreadable)."""
    text = str(exc)  # garbage bytes fail with "Unsupported operand"; code-carrying pickles name the global
    return "Unsupported global" in text or "Unsupported class" in text


def safe_load_reason(exc: BaseException) -> str:
    """Why torch's safe loader refused a file, without PyTorch's advice to retry with weights_only=False
    (which is exactly the unsafe load imagenot never does)."""
    import re

    text = str(exc)
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|Check the documentation|$)", text, re.S)
    if m:
        return " ".join(m.group(1).split())[:200]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write `state` (a temporary file renamed over `path`, so a kill never tears it).

    torch.save reports a full disk as a RuntimeError from its zip writer; it is turned into an OSError
    ENOSPC naming the path (the CLI's disk-full message), and the previous checkpoint stays in place.
    """
    import errno
    import shutil

    payload = {"format": FORMAT, "version": VERSION, **state}
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except RuntimeError as exc:
        # torch's messages vary ("file write failed", "unexpected pos N vs M" from write_end_of_file): the
        # free space decides (imagenot.errors.nearly_full, shared with the other writers without an errno)
        if nearly_full(path.parent):
            free = shutil.disk_usage(path.parent).free
            raise OSError(errno.ENOSPC, f"no space left to write checkpoint ({free} bytes free)", str(path)) from exc
        raise


def load_checkpoint(path: str | Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True and check it is imagenot's and matches `expect`.

    `expect` maps keys (`model`, `num_classes`, ...) to the values this run needs; a mismatch is an error
    naming the file, because resuming another model's state would silently train something else.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        if is_unsafe_pickle_error(exc):
            raise CheckpointError(
                f"{path}: not a trusted checkpoint: it holds objects other than tensors and plain values, and "
                "loading it with pickle could run arbitrary code, so imagenot refuses it. Only checkpoints "
                "written by imagenot (or plain state_dicts through --init file:) can be used."
            ) from exc
        raise CheckpointError(f"{path}: not a readable imagenot checkpoint ({safe_load_reason(exc)})") from exc
    if not is_checkpoint(data):
        raise CheckpointError(f"{path}: not an imagenot checkpoint (no '{FORMAT}' format marker)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')} not supported ({VERSION})")
    for key, want in (expect or {}).items():
        have = data.get("meta", {}).get(key)
        if have != want:
            raise CheckpointError(f"{path}: checkpoint is for {key}={have!r}, this run needs {key}={want!r}")
    return data
