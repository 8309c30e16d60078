"""Fine-tuning starting weights (a finished run, torchvision's published weights, a state_dict) on a transfer
target: the study's CIFAR-10 step.

Library API: `finetune(TrainConfig(init=..., dataset=..., out=...)) -> result dict`, `finetune_config(cfg)`
(the config with the fine-tune defaults filled in). Head surgery lives in `imagenot.models.heads`, weight
sources in `imagenot.models.weights`. Imported lazily so that `imagenot.transfer.cli` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"finetune": "finetuning", "finetune_config": "finetuning"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.transfer.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
