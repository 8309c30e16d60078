"""The whole model registry: small variants train a step, full-size models run forward+backward at their
smallest input; sizes, heads, parameter counts, FLOPs and error messages."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

from imagenot.errors import ImagenotError
from imagenot.models import (
    STUDY_MODELS,
    InputSizeError,
    check_input_size,
    count_params,
    flops_per_image,
    get_model,
    list_models,
    model_info,
    params_and_flops,
    params_for,
)
from imagenot.models.info import MIN_IMAGE_SIDE
from imagenot.models.param_table import PARAMS
from imagenot.registry import UnknownNameError

SMALL = list_models(full_size=False)
FULL = list_models(full_size=True)
# Building (random init of) these takes several seconds each on 2 cores; run them with -m slow.
# (measured under load on 2 cores: vit_h_14 17 s, vit_l_16 7 s, vit_l_32 6 s; all others 0.1-12 s)
SLOW = {"vit_h_14", "vit_l_16", "vit_l_32"}


def _last_linear(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@pytest.mark.parametrize("name", SMALL)
def test_small_variant_trains_one_step(name):
    torch.manual_seed(0)
    info = model_info(name)
    model = get_model(name, num_classes=7)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(8, 3, info.input_size, info.input_size)
    y = torch.arange(8) % 7
    out = model(x)
    assert out.shape == (8, 7)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    no_grad = [n for n, p in model.named_parameters()
               if p.grad is None or not bool(torch.isfinite(p.grad).all()) or float(p.grad.abs().sum()) == 0]
    assert not no_grad, f"parameters without a usable gradient: {no_grad}"
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    # ConvNeXt's layer scale starts at 1e-6, so a first step moves some of its block weights by less than
    # float32 resolution; every tensor has a gradient (above) and nearly all move
    assert changed >= 0.9 * len(before), f"{len(before) - changed} of {len(before)} parameter tensors did not move"
    assert 0.08e6 < count_params(model) < 0.4e6  # the demo's CPU budget (docs/benchmarks.md: the widths)
    assert count_params(model) == params_for(name, num_classes=7)  # the table is exact
    assert not info.full_size and info.torchvision_builder is None
    # also accepts its smallest input
    model.eval()
    assert model(torch.randn(2, 3, info.min_input_size, info.min_input_size)).shape == (2, 7)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FULL])
def test_full_size_forward_backward_at_min_input(name):
    torch.manual_seed(0)
    info = model_info(name)
    size = info.min_input_size
    model = get_model(name, num_classes=5, input_size=size)
    head = _last_linear(model)
    assert head.out_features == 5
    assert count_params(model) == params_for(name, num_classes=5, input_size=size)  # the table is exact
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 5)
    out.logsumexp(1).sum().backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None  # the gradient reached the stem


@pytest.mark.parametrize("name", [n for n in FULL if model_info(n).min_input_size > MIN_IMAGE_SIDE and
                                  not model_info(n).fixed_input])
def test_min_input_size_is_tight(name):
    """One pixel less than min_input_size fails (checked on the meta device: shapes only, no compute)."""
    size = model_info(name).min_input_size - 1
    with torch.device("meta"):
        model = get_model(name, 3, input_size=model_info(name).min_input_size)
        model.eval()
        with pytest.raises((RuntimeError, ValueError)):
            model(torch.zeros(2, 3, size, size))


def test_param_table_matches_torchvision_on_meta():
    """The forward/backward test checks the table for every model it builds; this covers the slow ones."""
    from imagenot.models.info import build

    for name in sorted(SLOW):
        with torch.device("meta"):
            model = build(name, 10)
        assert count_params(model) == params_for(name, 10), name
    assert set(PARAMS) == set(FULL) | set(SMALL)


def test_registry_contents():
    assert set(STUDY_MODELS) <= set(FULL)
    for fam in ("alexnet", "vgg", "resnet", "densenet", "efficientnet", "convnext"):
        assert {f"{fam}_s32", f"{fam}_s64"} <= set(SMALL)
    assert model_info("inception_v3").min_input_size == 75 and model_info("inception_v3").input_size == 299
    assert model_info("alexnet").year == 2012 and model_info("convnext_large").year == 2022
    assert model_info("efficientnet_v2_l").year == 2021 and model_info("efficientnet_b0").year == 2019
    assert list_models(family="convnext") == ["convnext_base", "convnext_large", "convnext_s32", "convnext_s64",
                                              "convnext_small", "convnext_tiny"]


def test_errors():
    with pytest.raises(UnknownNameError, match="unknown model 'resnet9'; known: .*resnet18.*vgg_s32"):
        get_model("resnet9", 10)
    with pytest.raises(InputSizeError, match="at least 75x75 px.*got 28x28"):
        check_input_size("inception_v3", 28)
    with pytest.raises(InputSizeError, match="alexnet_s32"):
        get_model("alexnet", 10, input_size=32)  # torchvision's AlexNet fails on 32 px; the error says what fits
    with pytest.raises(InputSizeError, match="divisible by its patch size 16"):
        check_input_size("vit_b_16", 40)
    with pytest.raises(ImagenotError):
        get_model("resnet_s32", 0)
    assert check_input_size("resnet50", 28).family == "ResNet"


def test_vit_is_built_for_the_requested_size():
    model = get_model("vit_b_32", 4, input_size=64)
    assert model.image_size == 64
    assert params_for("vit_b_32", 4, input_size=64) == count_params(model)


def test_activations_and_training_cost_rank_depthwise_nets_as_slow_as_they_are():
    """The zoo orders runs by training_cost: FLOPs alone put efficientnet_s32 (the slowest but one on CPU)
    below alexnet_s32 (the fastest); counting activation traffic puts the cheap-per-FLOP nets where they run."""
    from imagenot.models.cost import activations_per_image, training_cost

    lin = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    assert activations_per_image(lin, 8) == 4 * 64 + 4 * 64 + 4 * 64 + 5  # conv, relu, flatten, linear outputs
    assert lin.training  # mode restored, hooks removed
    assert not any(m._forward_hooks for m in lin.modules())
    assert params_and_flops("efficientnet_s32", 32)[1] < params_and_flops("alexnet_s32", 32)[1]
    assert training_cost("efficientnet_s32", 32) > 2 * training_cost("alexnet_s32", 32)
    assert training_cost("resnet_s32", 64) > 3.5 * training_cost("resnet_s32", 32)


def test_flops():
    # torchvision documents 1.81 GMACs for resnet18 at 224 px; the counter counts 2 FLOPs per MAC
    _, flops = params_and_flops("resnet18", 224, 1000)
    assert abs(flops / 2 / 1.81e9 - 1) < 0.03
    model = get_model("resnet_s32", 10)
    assert flops_per_image(model, 32) == params_and_flops("resnet_s32", 32, 10)[1]
    assert flops_per_image(model, 64) > 3.5 * flops_per_image(model, 32)


def test_cli_lists_models(capsys):
    from imagenot.cli import main

    assert main(["models", "--family", "densenet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["name", "family", "year", "input", "min", "params"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(rows) == {"densenet121", "densenet161", "densenet169", "densenet201", "densenet_s32",
                         "densenet_s64"}
    assert rows["densenet161"][1:5] == ["DenseNet", "2016", "224", "29"] and rows["densenet161"][5] == "28.68M"
    assert main(["models", "--family", "nonesuch"]) == 2


@pytest.mark.parametrize("name, size, advice", [
    ("resnet_s32", 1, "Use --image-size 8 or more"),
    ("vgg_s32", 20, r"got 20x20\. Resize the data \(--image-size 32 or more\)\.$"),  # no VGG takes 20 px
    ("vgg_s64", 40, "Resize the data (--image-size 64) or use vgg_s32."),
    ("inception_v3", 28, r"Resize the data \(--image-size 75 or more\)"),
])
def test_too_small_inputs_get_advice_that_works(name: str, size: int, advice: str):
    from imagenot.models import check_input_size

    with pytest.raises(InputSizeError) as err:
        check_input_size(name, size)
    assert re.search(advice, str(err.value)) or advice in str(err.value)


def test_models_csv_and_table_keep_hostile_names_inert(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    from imagenot.cli import main
    from imagenot.models import cli as models_cli

    row = {"name": "=HYPERLINK(\"http://x\")", "family": "fam\x1b[2J\nforged", "year": 2020, "input_size": 32,
           "min_input_size": 32, "full_size": 224, "params": 1e6, "gflops": None, "weights": None,
           "published_top1": None}
    monkeypatch.setattr(models_cli, "model_rows", lambda cfg: [row])
    assert main(["models", "--format", "csv"]) == 0
    cells = list(csv.DictReader(capsys.readouterr().out.splitlines()))[0]
    assert cells["name"] == "'" + row["name"] and cells["params"] == "1000000.0"
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and len(out.splitlines()) == 2 and "fam\\x1b[2J\\nforged" in out
