"""Numerics: bf16 autocast on CPUs that compute it natively, grouped convolutions kept in fp32, all recorded."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from imagenot.models import get_model
from imagenot.training import precision as P
from imagenot.training.trainer import train
from tests.training.training_helpers import quick_config

NATIVE, WHY = P.cpu_bf16_support()
needs_bf16 = pytest.mark.skipif(not NATIVE, reason=f"no native bf16 on this CPU: {WHY}")


def test_auto_resolves_from_the_cpu_and_explicit_choices_win(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: (True, "the CPU has AVX512-BF16"))
    auto = P.resolve_numerics("cpu")
    assert (auto.precision, auto.channels_last, auto.fp32_grouped_convs) == ("bf16", True, True)
    assert "AVX512-BF16" in auto.why
    assert P.resolve_numerics("cpu", "bf16", fp32_grouped_convs=False).fp32_grouped_convs is False
    fp32 = P.resolve_numerics("cpu", "fp32")
    assert (fp32.precision, fp32.channels_last, fp32.fp32_grouped_convs) == ("fp32", False, False)
    cuda = P.resolve_numerics("cuda")  # no CUDA needed to resolve: cuDNN has no grouped-conv gap
    assert (cuda.precision, cuda.channels_last, cuda.fp32_grouped_convs) == ("bf16", True, False)
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: (False, "the CPU has neither AVX512-BF16 nor AMX"))
    assert P.resolve_numerics("cpu").precision == "fp32"
    assert P.resolve_numerics("cpu", "bf16").precision == "bf16"  # asked for: emulated, but honoured


def test_cpuinfo_flags_are_the_fallback(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512vl\n")
    assert P._cpuinfo_bf16(str(path)) == (True, f"the CPU has AVX512-BF16 ({path})")
    path.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert P._cpuinfo_bf16(str(path))[0] is False
    assert P._cpuinfo_bf16(str(tmp_path / "missing"))[0] is False


def _record(seen: dict, name: str, m: nn.Conv2d, inputs: tuple, out: torch.Tensor) -> None:
    """(grouped, output dtype, whether the output is the fp32 convolution of the float32 input)."""
    with torch.autocast("cpu", enabled=False):
        fp32 = m._conv_forward(inputs[0].float(), m.weight, m.bias)
    seen[name] = (m.groups > 1, out.dtype, out.dtype == torch.float32 and torch.equal(out, fp32))


def _conv_dtypes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[bool, torch.dtype, bool]]:
    """name -> (grouped, output dtype, computed in fp32) of every convolution in one autocast forward pass."""
    seen: dict[str, tuple[bool, torch.dtype, bool]] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: _record(seen, name, m, i, o))
             for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["efficientnet_s32", "convnext_s32"])
def test_grouped_convs_run_in_fp32_inside_bf16_autocast(name):
    torch.manual_seed(0)
    model = get_model(name, 10)
    keys = list(model.state_dict())
    kept = P.prepare_model(model, P.Numerics("bf16", channels_last=True, fp32_grouped_convs=True))
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    seen = _conv_dtypes(model, x)
    grouped = {k: v for k, v in seen.items() if v[0]}
    assert kept == len(grouped) > 0
    assert all(dtype == torch.float32 and exact for _, dtype, exact in grouped.values())
    assert all(dtype == torch.bfloat16 for g, dtype, _ in seen.values() if not g)
    assert list(model.state_dict()) == keys  # checkpoints unchanged
    assert P.prepare_model(model, P.Numerics("bf16", True, True)) == kept  # preparing twice changes nothing
    ema = copy.deepcopy(model)  # the EMA's copy keeps the exception
    assert {k: v for k, v in _conv_dtypes(ema, x).items() if v[0]} == grouped

    plain = get_model(name, 10)
    assert P.prepare_model(plain, P.Numerics("bf16", True, fp32_grouped_convs=False)) == 0
    assert all(dtype == torch.bfloat16 for _, dtype, _ in _conv_dtypes(plain, x).values())


def test_fp32_modules_compute_what_the_plain_module_computes():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    x = torch.randn(2, 8, 6, 6)
    want = conv(x)
    assert P.keep_fp32(conv) == 1 and isinstance(conv, nn.Conv2d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = conv(x.bfloat16())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, conv._conv_forward(x.bfloat16().float(), conv.weight, conv.bias))
    assert torch.allclose(got, want, atol=0.05)


@needs_bf16
@pytest.mark.slow
def test_bf16_run_matches_fp32_accuracy_and_records_its_numerics(tmp_path):
    """convnext_s32 (5 depthwise convolutions) for 3 epochs on 320 noisy 32-px images of 8 classes: the bf16
    path's top-1 is within 5 points of fp32's (320 validation images: 5 points are 16 images; measured: 74.7
    fp32, 75.0 bf16)."""
    common = dict(model="convnext_s32", image_size=32, epochs=3, batch_size=32, recipe_overrides={"lr": 0.01},
                  dataset_options={"num_classes": 8, "size": 32, "n": 320, "noise": 1.2}, deterministic=False)
    fp32 = train(quick_config(tmp_path / "fp32", precision="fp32", **common))
    bf16 = train(quick_config(tmp_path / "auto", **common))
    assert fp32["top1"] > 50 and abs(bf16["top1"] - fp32["top1"]) <= 5.0
    assert fp32["numerics"] == {"precision": "fp32", "channels_last": False, "fp32_grouped_convs": False,
                                "why": "precision fp32 requested", "fp32_modules": 0, "fp32_reason": None}
    num = bf16["numerics"]
    assert (bf16["precision"], num["channels_last"], num["fp32_grouped_convs"], num["fp32_modules"]) == (
        "bf16", True, True, 5)
    assert num["why"].startswith("auto: the CPU has") and "groups > 1" in num["fp32_reason"]
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["precision"] == "auto"  # what was asked for (the run's identity); what it resolved to:
    assert config["resolved"]["numerics"] == {"precision": "bf16", "channels_last": True, "fp32_grouped_convs": True}


@needs_bf16
def test_config_json_replays_the_resolved_bf16_run_exactly(tmp_path):
    from imagenot.cli import main

    first = train(quick_config(tmp_path / "a", model="resnet_s32", epochs=1))
    assert first["precision"] == "bf16"
    assert main(["train", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b"),
                 "-q"]) == 0
    again = json.loads((tmp_path / "b" / "result.json").read_text())
    assert (again["precision"], again["top1"], again["val_loss"], again["train_loss"]) == (
        "bf16", first["top1"], first["val_loss"], first["train_loss"])
