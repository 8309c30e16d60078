"""Optimizer, lr schedule and EMA built from a `Recipe`.

Kept apart from the loop so that the fine-tuning stage (which trains only some parameters) and the trainer
build them the same way.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from imagenot.training.recipes import Recipe

log = logging.getLogger(__name__)

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def param_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """Split trainable parameters into decayed weights and undecayed norm weights and biases.

    Decaying the scale of a normalisation layer or a bias only shrinks what the next layer undoes; the
    torchvision recipes since 2021 (`--norm-weight-decay 0`) and most modern ones leave them out. One-
    dimensional parameters that are not in a norm layer (ViT class token, positional embeddings, layer scale)
    count as norm-like too, as in timm.
    """
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if is_norm or pname.endswith("bias") or p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": recipe.weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": recipe.norm_weight_decay})
    return groups


def build_optimizer(model: nn.Module, recipe: Recipe, lr: float) -> torch.optim.Optimizer:
    groups = param_groups(model, recipe)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    if recipe.optimizer == "adamw":
        b1, b2 = recipe.betas
        return torch.optim.AdamW(groups, lr=lr, betas=(b1, b2))
    return torch.optim.RMSprop(
        groups, lr=lr, momentum=recipe.momentum, alpha=recipe.rmsprop_alpha, eps=recipe.rmsprop_eps
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule; its state (`last_epoch` = steps taken) goes into every checkpoint."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: recipe.lr_factor(step, total_steps))


def build_ema(model: nn.Module, recipe: Recipe) -> torch.optim.swa_utils.AveragedModel | None:
    """Exponential moving average of weights and buffers (torch's AveragedModel), or None when off."""
    if recipe.ema_decay is None:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = recipe.ema_decay ** recipe.ema_every_steps
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def set_dropout(model: nn.Module, p: float | None) -> int:
    """Set every dropout layer's probability (recipes may switch dropout off); returns how many changed."""
    if p is None:
        return 0
    n = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = p
            n += 1
    return n
