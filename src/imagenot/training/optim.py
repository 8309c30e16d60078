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
    """Trainable parameters in three decay groups: weights, normalisation parameters, biases.

    torchvision's train.py splits the same way (`--norm-weight-decay`, `--bias-weight-decay`, each defaulting
    to `--wd`). Decaying the scale of a normalisation layer or a bias only shrinks what the next layer undoes,
    so the `uniform` recipe, like most modern ones, leaves them undecayed. One-dimensional parameters outside
    norm layers that are not biases (a layer scale, a class token of shape [D]) count as norm parameters.
    """
    groups: dict[str, list[nn.Parameter]] = {"weights": [], "norm": [], "bias": []}
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if is_norm:
                groups["norm"].append(p)
            elif pname.endswith("bias"):
                groups["bias"].append(p)
            elif p.ndim <= 1:
                groups["norm"].append(p)
            else:
                groups["weights"].append(p)
    decay = {
        "weights": recipe.weight_decay,
        "norm": recipe.weight_decay if recipe.norm_weight_decay is None else recipe.norm_weight_decay,
        "bias": recipe.weight_decay if recipe.bias_weight_decay is None else recipe.bias_weight_decay,
    }
    return [{"params": ps, "weight_decay": decay[name], "name": name} for name, ps in groups.items() if ps]


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
    optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LambdaLR over the recipe's epoch-based schedule; its state (steps taken) is checkpointed.

    Optimizer step s of the run sits at epoch position s / steps_per_epoch; a recipe with
    `lr_update="epoch"` holds the lr constant within each epoch, as train.py does.
    """
    spe = max(int(steps_per_epoch), 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: recipe.lr_factor(step / spe, epochs))


def build_ema(
    model: nn.Module, recipe: Recipe, global_batch: int, epochs: int
) -> torch.optim.swa_utils.AveragedModel | None:
    """EMA of weights and buffers (torch's AveragedModel) with train.py's decay adjustment, or None.

    The trainer updates it every `recipe.ema_steps` optimizer steps and, as train.py does, restarts the
    average (a copy of the model) at each update during warm-up.
    """
    if recipe.ema_decay is None:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = recipe.ema_update_decay(global_batch, epochs)
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


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: object | None = None,
                   scaler: torch.amp.GradScaler | None = None, clip_grad_norm: float | None = None,
                   parameters: object | None = None) -> None:
    """One optimizer step from a loss: gradients cleared, backward (scaled for fp16), optional clipping, the
    step and the lr schedule's step. The trainer and the audit's dataset classifier both take it, so a model
    trained anywhere in imagenot is stepped the same way."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        if clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    if scheduler is not None:
        scheduler.step()
