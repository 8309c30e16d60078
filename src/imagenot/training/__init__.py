"""Recipes, the trainer, checkpoints, DDP and zoo plans.

Library API: `train(TrainConfig) -> result dict`, `evaluate(model, dataset, device, ...) -> EvalResult` (any
model on any split, see imagenot.training.evaluation), `run_zoo(ZooPlan) -> list of result dicts`,
`commands(plan, "torchrun"|"slurm")`, `get_recipe(name, model, family)`, `resolve_plan(cfg, recipe, model)`
(which input pipeline and transforms a run uses). Names are imported lazily so that `imagenot.training.cli`
(and `imagenot --help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPE_NAMES": "recipes", "Recipe": "recipes", "get_recipe": "recipes",
    "TrainConfig": "trainer", "train": "trainer", "evaluate": "evaluation", "EvalResult": "evaluation",
    "InputPlan": "inputs", "resolve_plan": "inputs", "eval_transform_for": "inputs",
    "ZooDataset": "zoo", "ZooPlan": "zoo", "ZooTransfer": "zoo", "commands": "zoo", "load_plan": "zoo",
    "plan_from_mapping": "zoo", "run_zoo": "zoo",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.training.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
