"""Recipes: presets, per-family torchvision recipes, the override table, schedules and decay groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imagenot.config import ConfigError
from imagenot.models import get_model, list_models, model_info
from imagenot.training.optim import build_ema, build_optimizer, param_groups, set_dropout
from imagenot.training.recipes import OVERRIDES, Recipe, get_recipe


def test_uniform_is_the_same_for_every_model():
    recipes = {get_recipe("uniform", m, model_info(m).family) for m in list_models()}
    assert len(recipes) == 1


@pytest.mark.parametrize(
    ("model", "optimizer", "lr"),
    [("resnet50", "sgd", 0.1), ("alexnet", "sgd", 0.01), ("vgg16", "sgd", 0.01), ("densenet121", "sgd", 0.1),
     ("convnext_tiny", "adamw", 1e-3), ("vit_b_16", "adamw", 3e-3), ("mobilenet_v3_large", "rmsprop", 0.064),
     ("mobilenet_v2", "sgd", 0.045), ("efficientnet_v2_s", "sgd", 0.5), ("resnet_s32", "sgd", 0.1)],
)
def test_torchvision_recipes_follow_the_reference_readme(model, optimizer, lr):
    r = get_recipe("torchvision", model, model_info(model).family)
    assert (r.optimizer, r.lr) == (optimizer, lr)


def test_torchvision_schedules_differ_by_family():
    resnet = get_recipe("torchvision", "resnet50", "ResNet")
    convnext = get_recipe("torchvision", "convnext_tiny", "ConvNeXt")
    assert resnet.schedule == "step" and resnet.warmup_fraction == 0
    assert convnext.schedule == "cosine" and convnext.warmup_fraction > 0 and convnext.label_smoothing == 0.1
    assert convnext.ema_decay is not None and convnext.norm_weight_decay == 0.0


def test_override_table_is_the_only_per_model_exception():
    # mobilenet_v2 and mobilenet_v3 share a family but the table gives v2 its own optimizer.
    v2 = get_recipe("torchvision", "mobilenet_v2", "MobileNet")
    v3 = get_recipe("torchvision", "mobilenet_v3_small", "MobileNet")
    assert v2.optimizer != v3.optimizer
    assert any(pattern == "mobilenet_v2*" for _, pattern, _ in OVERRIDES)


def test_user_overrides_and_unknown_names():
    assert get_recipe("uniform", "resnet_s32", "ResNet", {"lr": 0.5}).lr == 0.5
    with pytest.raises(ConfigError, match="known: uniform, torchvision"):
        get_recipe("fancy")
    with pytest.raises(ConfigError, match="unknown key"):
        get_recipe("uniform", overrides={"learning_rate": 1})
    with pytest.raises(ConfigError, match="optimizer"):
        Recipe(optimizer="lion")


def test_warmup_then_cosine_and_step_schedules():
    r = Recipe(warmup_fraction=0.1, warmup_start_factor=0.0, final_lr_factor=0.0)
    factors = [r.lr_factor(s, 100) for s in range(100)]
    assert factors[0] == 0.0 and factors[10] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(factors[:10], factors[1:11]))  # warm-up rises
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))  # cosine falls
    assert factors[55] == pytest.approx(0.5, abs=0.02)
    s = Recipe(schedule="step", warmup_fraction=0.0, step_milestones=(0.5,), step_gamma=0.1)
    assert s.lr_factor(49, 100) == 1.0 and s.lr_factor(50, 100) == pytest.approx(0.1)


def test_lr_scales_with_the_global_batch():
    assert Recipe(lr=0.1, reference_batch_size=256, lr_scaling="linear").scaled_lr(512) == pytest.approx(0.2)
    assert Recipe(lr=0.1, reference_batch_size=256, lr_scaling="sqrt").scaled_lr(64) == pytest.approx(0.05)
    assert Recipe(lr=0.1, lr_scaling="none").scaled_lr(1) == 0.1


def test_norms_and_biases_get_no_weight_decay():
    model = get_model("resnet_s32", 10)
    recipe = Recipe(weight_decay=0.05, norm_weight_decay=0.0)
    groups = param_groups(model, recipe)
    decayed = {id(p) for p in groups[0]["params"]}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert id(m.weight) not in decayed and id(m.bias) not in decayed
        if isinstance(m, nn.Conv2d | nn.Linear):
            assert id(m.weight) in decayed
    assert groups[1]["weight_decay"] == 0.0
    n_all = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for g in groups for p in g["params"]) == n_all
    opt = build_optimizer(model, recipe, lr=1e-3)
    assert isinstance(opt, torch.optim.AdamW)


def test_ema_and_dropout_switches():
    model = get_model("alexnet_s32", 10)
    assert build_ema(model, Recipe()) is None
    ema = build_ema(model, Recipe(ema_decay=0.5))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)  # first update copies
    for p in model.parameters():
        p.data.add_(1.0)
    ema.update_parameters(model)
    w_model = next(model.parameters())
    w_ema = next(ema.module.parameters())
    assert torch.allclose(w_ema, w_model - 0.5)
    assert set_dropout(model, 0.0) == 2
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, nn.Dropout))
