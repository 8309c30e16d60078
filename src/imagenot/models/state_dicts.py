"""State-dict files: reading one safely (safetensors, or torch.load(weights_only=True)), and loading it into
a model strictly, with an error that says what does not fit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenot.errors import ImagenotError

if TYPE_CHECKING:
    import torch.nn as nn

log = logging.getLogger(__name__)

STATE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


class WeightsError(ImagenotError):
    """Weights that cannot be used: unknown, for another architecture, unreadable or not a state_dict."""


def first_line(exc: BaseException) -> str:
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
            raise WeightsError(f"{path}: not a readable safetensors file: {first_line(exc)}") from exc
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad or unsafe files
        from imagenot.checkpoint import safe_load_reason

        raise WeightsError(
            f"{path}: not a trusted weights file: torch's safe loader cannot read it ({safe_load_reason(exc)}). "
            "imagenot loads plain tensors only; a file that needs full unpickling could run arbitrary code and is "
            "never loaded. Save the model's state_dict() (torch.save(model.state_dict(), f)) or use safetensors."
        ) from exc
    from imagenot.checkpoint import checkpoint_weights, is_checkpoint

    if is_checkpoint(data):
        return checkpoint_weights(data)
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict) and len(data) <= 8:
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path}: not a state_dict (expected a mapping of parameter names to tensors, got "
                           f"{type(data).__name__})")
    return dict(data)


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


def head_size_in(model_name: str, state: dict[str, Any], input_size: int | None) -> int | None:
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
