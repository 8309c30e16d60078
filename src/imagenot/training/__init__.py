"""Recipes, the trainer, its input pipeline, evaluation and DDP.

Library API: `train(TrainConfig) -> result dict`, `evaluate(model, dataset, device, ...) -> EvalResult` (any
model on any split, see imagenot.training.evaluation), `get_recipe(name, model, family)`,
`resolve_plan(cfg, recipe, model)`
(which input pipeline and transforms a run uses). Names are imported lazily so that `imagenot.training.cli`
(and `imagenot --help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPE_NAMES": "recipes", "Recipe": "recipes", "get_recipe": "recipes",
    "TrainConfig": "config", "train": "trainer", "dataset_display_name": "config", "evaluate": "evaluation", "EvalResult": "evaluation",
    "InputPlan": "inputs", "resolve_plan": "inputs", "eval_transform_for": "inputs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.training.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
