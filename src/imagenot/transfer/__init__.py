"""Fine-tuning pretrained zoo runs on a transfer target (the study's CIFAR-10 step).

Library API: `finetune(FinetuneConfig) -> result dict`; `heads.find_head / replace_head / freeze_except`.
Imported lazily so that `imagenot.transfer.cli` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"FinetuneConfig": "finetuning", "finetune": "finetuning", "finetune_train_config": "finetuning"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.transfer.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
