"""Recipes: the torchvision table against the README commands it quotes, schedules in epochs, decay groups, EMA."""

from __future__ import annotations

import argparse
import math
import shlex
import string

import pytest
import torch
from torch import nn

from imagenot.config import ConfigError
from imagenot.models import STUDY_MODELS, get_model, list_models, model_info
from imagenot.training.optim import build_ema, build_optimizer, build_scheduler, param_groups, set_dropout
from imagenot.training.recipes import OVERRIDES, TORCHVISION_DEFAULTS, Recipe, get_recipe, override_for


def readme_parser() -> argparse.ArgumentParser:
    """torchvision references/classification/train.py's flags that recipes state, with train.py's defaults
    (and the README's table of defaults: 8 GPUs of batch 32, 90 epochs, lr 0.1, wd 1e-4, StepLR 30 x 0.1)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--nproc_per_node", type=int, default=8)
    p.add_argument("--model")
    p.add_argument("-b", "--batch-size", "--batch_size", dest="batch_size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--opt", default="sgd")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", "--weight-decay", dest="weight_decay", type=float, default=1e-4)
    p.add_argument("--norm-weight-decay", type=float, default=None)
    p.add_argument("--bias-weight-decay", type=float, default=None)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--mixup-alpha", type=float, default=0.0)
    p.add_argument("--cutmix-alpha", type=float, default=0.0)
    p.add_argument("--lr-scheduler", default="steplr")
    p.add_argument("--lr-warmup-epochs", type=int, default=0)
    p.add_argument("--lr-warmup-method", default="constant")
    p.add_argument("--lr-warmup-decay", type=float, default=0.01)
    p.add_argument("--lr-step-size", type=int, default=30)
    p.add_argument("--lr-gamma", type=float, default=0.1)
    p.add_argument("--auto-augment", default=None)
    p.add_argument("--ra-magnitude", type=int, default=9)
    p.add_argument("--augmix-severity", type=int, default=3)
    p.add_argument("--random-erase", type=float, default=0.0)
    p.add_argument("--model-ema", action="store_true")
    p.add_argument("--model-ema-steps", type=int, default=32)
    p.add_argument("--model-ema-decay", type=float, default=0.99998)
    p.add_argument("--ra-sampler", action="store_true")
    p.add_argument("--ra-reps", type=int, default=3)
    p.add_argument("--clip-grad-norm", type=float, default=None)
    p.add_argument("--interpolation", default=None)
    p.add_argument("--train-crop-size", type=int, default=None)
    p.add_argument("--val-resize-size", type=int, default=None)
    p.add_argument("--val-crop-size", type=int, default=None)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--test-only", action="store_true")
    p.add_argument("--weights", default=None)
    return p


SCHEDULERS = {"steplr": "step", "cosineannealinglr": "cosine", "exponentiallr": "exponential"}


def expected_from_command(command: str, substitute: dict[str, str], model: str) -> dict:
    """The Recipe fields a README command states (sizes it does not state: None, the weights decide)."""
    text = string.Template(command).safe_substitute({"MODEL": model, **substitute})
    argv = [a for a in shlex.split(text) if a not in ("torchrun", "train.py")]
    a, unknown = readme_parser().parse_known_args(argv)
    assert not unknown, f"flags the test does not know: {unknown}"
    assert a.model in (None, model)
    global_batch = a.batch_size * a.nproc_per_node
    if a.lr_warmup_epochs:
        assert a.lr_warmup_method == "linear"
    return {
        "optimizer": a.opt, "lr": a.lr, "batch_size": global_batch, "reference_batch_size": global_batch,
        "lr_scaling": "linear", "epochs": a.epochs, "momentum": a.momentum, "weight_decay": a.weight_decay,
        "norm_weight_decay": a.norm_weight_decay, "bias_weight_decay": a.bias_weight_decay,
        "label_smoothing": a.label_smoothing, "mixup_alpha": a.mixup_alpha, "cutmix_alpha": a.cutmix_alpha,
        "schedule": SCHEDULERS[a.lr_scheduler], "lr_update": "epoch", "warmup_epochs": float(a.lr_warmup_epochs),
        "warmup_start_factor": a.lr_warmup_decay, "lr_step_size": a.lr_step_size, "lr_gamma": a.lr_gamma,
        "auto_augment": a.auto_augment, "ra_magnitude": a.ra_magnitude, "augmix_severity": a.augmix_severity,
        "random_erase": a.random_erase, "ema_decay": a.model_ema_decay if a.model_ema else None,
        "ema_steps": a.model_ema_steps, "ra_reps": a.ra_reps if a.ra_sampler else 1,
        "clip_grad_norm": a.clip_grad_norm, "train_interpolation": a.interpolation,
        "val_interpolation": a.interpolation, "train_crop_size": a.train_crop_size,
        "val_resize_size": a.val_resize_size, "val_crop_size": a.val_crop_size,
    }


def _covered_models():
    for row in OVERRIDES:
        for glob in row.models:
            yield row, glob


@pytest.mark.parametrize(("row", "model"), list(_covered_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_table_rows_match_the_readme_commands_they_quote(row, model):
    expected = expected_from_command(row.source, dict(row.substitute), model)
    weights_sizes = {}
    for name in row.from_weights:
        weights_sizes[name] = expected.pop(name)  # the README says: take it from the weights entry
    recipe = get_recipe("torchvision", model, model_info(model).family)
    for key, want in expected.items():
        assert getattr(recipe, key) == pytest.approx(want) if isinstance(want, float) else getattr(recipe, key) == want, key
    for name in row.from_weights:
        assert getattr(recipe, name) is None
    if model in STUDY_MODELS:
        from imagenot.models.weights import transform_defaults

        d = transform_defaults(model)
        for name, value in weights_sizes.items():  # for the study model the command and its weights agree
            assert value == {"val_resize_size": d.val_resize, "val_crop_size": d.val_crop}[name]
    assert recipe.source == row.source


def test_every_study_model_has_a_row_and_the_defaults_are_the_readme_table():
    for m in STUDY_MODELS:
        assert override_for("torchvision", m, model_info(m).family) is not None, m
    defaults = expected_from_command(TORCHVISION_DEFAULTS.source.split(": ", 1)[1], {}, "x")
    for key, want in defaults.items():
        assert getattr(TORCHVISION_DEFAULTS, key) == want, key


@pytest.mark.parametrize(
    ("model", "optimizer", "lr", "epochs"),
    [("resnet152", "sgd", 0.1, 90), ("alexnet", "sgd", 0.01, 90), ("vgg19", "sgd", 0.01, 90),
     ("vgg19_bn", "sgd", 0.1, 90), ("densenet161", "sgd", 0.1, 90), ("convnext_large", "adamw", 1e-3, 600),
     ("vit_b_16", "adamw", 3e-3, 300), ("mobilenet_v3_large", "rmsprop", 0.064, 600),
     ("mobilenet_v2", "sgd", 0.045, 300), ("efficientnet_v2_l", "sgd", 0.5, 600),
     # small-input variants take the row of their family's study model
     ("resnet_s32", "sgd", 0.1, 90), ("alexnet_s32", "sgd", 0.01, 90), ("convnext_s32", "adamw", 1e-3, 600)],
)
def test_torchvision_recipe_per_model(model, optimizer, lr, epochs):
    r = get_recipe("torchvision", model, model_info(model).family)
    assert (r.optimizer, r.lr, r.epochs) == (optimizer, lr, epochs)


def test_uniform_is_the_same_for_every_model():
    recipes = {get_recipe("uniform", m, model_info(m).family) for m in list_models()}
    assert len(recipes) == 1


def test_uniform_small_is_one_recipe_with_a_long_warm_up_and_a_linear_decay_to_zero():
    recipes = {get_recipe("uniform-small", m, model_info(m).family) for m in list_models()}
    assert len(recipes) == 1
    r = recipes.pop()
    assert (r.optimizer, r.schedule, r.augment, r.final_lr_factor) == ("adamw", "linear", "flip", 0.0)
    assert r.scaled_lr(128) == pytest.approx(4e-3)
    epochs = 8  # warm-up: a quarter of the run, linearly from 1% of the peak
    assert r.lr_factor(0.0, epochs) == pytest.approx(0.01)
    assert r.lr_factor(1.0, epochs) == pytest.approx(0.01 + 0.99 * 0.5)
    assert r.lr_factor(2.0, epochs) == pytest.approx(1.0)
    assert r.lr_factor(5.0, epochs) == pytest.approx(0.5)  # halfway through the decay
    assert r.lr_factor(8.0, epochs) == pytest.approx(0.0)  # exactly 0 at the end


def test_user_overrides_and_bad_recipes():
    assert get_recipe("uniform", "resnet_s32", "ResNet", {"lr": 0.5}).lr == 0.5
    with pytest.raises(ConfigError, match="known: uniform, uniform-small, torchvision"):
        get_recipe("fancy")
    with pytest.raises(ConfigError, match="unknown key"):
        get_recipe("uniform", overrides={"learning_rate": 1})
    with pytest.raises(ConfigError, match="optimizer"):
        Recipe(optimizer="lion")
    with pytest.raises(ConfigError, match="auto_augment"):
        get_recipe("uniform", overrides={"auto_augment": "autoaug9000"})
    with pytest.raises(ConfigError, match="larger than the resized image"):
        get_recipe("uniform", overrides={"val_resize_size": 200, "val_crop_size": 224})


def test_schedules_follow_epochs_not_fractions_of_the_run():
    r = get_recipe("torchvision", "resnet152", "ResNet")  # StepLR every 30 of 90 epochs, per epoch
    assert [r.lr_factor(e, 90) for e in (0, 29.99, 30, 59, 60, 89)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    assert r.lr_factor(30, 9) == pytest.approx(0.1)  # a 9-epoch run never reaches epoch 30: still 30 epochs
    assert r.lr_factor(8, 9) == 1.0
    # ConvNeXt: 5 linear warm-up epochs from 0.01, then cosine over the remaining 595, once per epoch.
    c = get_recipe("torchvision", "convnext_large", "ConvNeXt")
    assert c.lr_factor(0, 600) == pytest.approx(0.01) and c.lr_factor(0.9, 600) == pytest.approx(0.01)
    assert c.lr_factor(1, 600) == pytest.approx(0.01 + 0.99 / 5)
    assert c.lr_factor(5, 600) == pytest.approx(1.0)
    assert c.lr_factor(5 + 595 / 2, 600) == pytest.approx(0.5 * (1 + math.cos(math.pi * 297 / 595)))
    # The uniform recipe warms up over 5% of the run and decays smoothly per step.
    u = Recipe(warmup_fraction=0.1, warmup_start_factor=0.0, final_lr_factor=0.0)
    factors = [u.lr_factor(s / 10, 10) for s in range(100)]
    assert factors[0] == 0.0 and factors[10] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(factors[:10], factors[1:11]))
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[55] == pytest.approx(0.5, abs=0.02)


def test_scheduler_steps_the_lr_once_per_epoch_for_torchvision_rows():
    model = nn.Linear(2, 2)
    r = get_recipe("torchvision", "mobilenet_v3_large", "MobileNet")  # StepLR 2 epochs, gamma 0.973
    opt = build_optimizer(model, r, 1.0)
    sched = build_scheduler(opt, r, steps_per_epoch=3, epochs=600)
    lrs = []
    for _ in range(15):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0] * 6 + [0.973] * 6 + [0.973**2] * 3)


def test_lr_scales_with_the_global_batch():
    assert Recipe(lr=0.1, reference_batch_size=256, lr_scaling="linear").scaled_lr(512) == pytest.approx(0.2)
    assert Recipe(lr=0.1, reference_batch_size=256, lr_scaling="sqrt").scaled_lr(64) == pytest.approx(0.05)
    assert Recipe(lr=0.1, lr_scaling="none").scaled_lr(1) == 0.1


def test_decay_groups_uniform_and_torchvision():
    model = get_model("resnet_s32", 10)
    groups = {g["name"]: g for g in param_groups(model, Recipe(weight_decay=0.05))}
    decayed = {id(p) for p in groups["weights"]["params"]}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert id(m.weight) not in decayed and id(m.bias) not in decayed
        if isinstance(m, nn.Conv2d | nn.Linear):
            assert id(m.weight) in decayed
    assert groups["norm"]["weight_decay"] == 0.0 and groups["bias"]["weight_decay"] == 0.0
    n_all = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for g in groups.values() for p in g["params"]) == n_all
    # torchvision's train.py: norm and bias decay default to --wd; ConvNeXt's --norm-weight-decay 0 only norms.
    tv = {g["name"]: g["weight_decay"] for g in param_groups(model, get_recipe("torchvision", "resnet152"))}
    assert tv == {"weights": 1e-4, "norm": 1e-4, "bias": 1e-4}
    cx = {g["name"]: g["weight_decay"] for g in param_groups(get_model("convnext_s32", 4),
                                                              get_recipe("torchvision", "convnext_large"))}
    assert cx == {"weights": 0.05, "norm": 0.0, "bias": 0.05}
    assert isinstance(build_optimizer(model, Recipe(), lr=1e-3), torch.optim.AdamW)


def test_ema_follows_train_py_adjustment():
    r = Recipe(ema_decay=0.99998, ema_steps=32)
    # train.py: alpha = min(1, (1 - decay) * world * batch_per_gpu * steps / epochs)
    assert r.ema_update_decay(global_batch=1024, epochs=600) == pytest.approx(1 - 0.00002 * 1024 * 32 / 600)
    assert r.ema_update_decay(global_batch=16, epochs=1) == pytest.approx(1 - 0.00002 * 16 * 32)
    model = get_model("alexnet_s32", 10)
    assert build_ema(model, Recipe(), 16, 1) is None
    ema = build_ema(model, Recipe(ema_decay=1 - 0.5 / (16 * 32)), global_batch=16, epochs=1)  # update decay 0.5
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)  # the first update copies
    for p in model.parameters():
        p.data.add_(1.0)
    ema.update_parameters(model)
    assert torch.allclose(next(ema.module.parameters()), next(model.parameters()) - 0.5)
    assert set_dropout(model, 0.0) == 2
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, nn.Dropout))
