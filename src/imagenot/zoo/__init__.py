"""The zoo: a study's every run (train, evaluate, published, fine-tune), run in order or printed for a cluster.

Library API: `load_plan(path)`, `plan_from_mapping(data)`, `run_zoo(plan) -> list of result dicts`,
`commands(plan, "torchrun"|"slurm") -> str`, `jobs(plan)`. Names are imported lazily so that
`imagenot.zoo.cli` (and `imagenot --help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ZooDataset": "plan", "ZooPlan": "plan", "ZooTransfer": "plan", "load_plan": "plan",
    "plan_from_mapping": "plan", "validate_plan": "plan",
    "Job": "run", "commands": "run", "jobs": "run", "run_zoo": "run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.zoo.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
