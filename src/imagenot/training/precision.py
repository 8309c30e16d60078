"""A run's numerics, resolved in one place for training and evaluation: precision, memory format, fp32 layers.

`precision: auto` means bf16 autocast with channels_last where the hardware computes bf16 natively: on CUDA,
and on CPUs with AVX512-BF16 or AMX (detected once, by `cpu_bf16_support`; torch's CPU capability checks,
/proc/cpuinfo as a fallback). Elsewhere it means fp32: emulated bf16 is slower than fp32.

One exception inside the autocast region: oneDNN's bf16 backward of grouped and depthwise convolutions
(groups > 1) is about 9x slower than its fp32 one (measured on an AVX512-BF16 EPYC, issue 23), so on CPU those
convolutions run in fp32 (`fp32_grouped_convs`, on by default on CPU, off on CUDA where cuDNN has no such gap;
`--no-fp32-grouped-convs` turns it off). They are found in the model, not listed per model: `prepare_model`
gives each such module a subclass of its own class whose forward leaves autocast and casts its input to
float32. The module keeps its parameters, state_dict keys and repr, so checkpoints are unchanged, the EMA's
deep copy keeps the behaviour, and a model prepared twice is prepared once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

FP32_REASON = ("convolutions with groups > 1 run in fp32 inside the bf16 autocast region: oneDNN's bf16 "
               "grouped/depthwise convolution backward is several times slower than fp32 on CPU")


@dataclass(frozen=True)
class Numerics:
    """What a run computes in: `precision` (fp32, bf16, fp16), memory format, and the fp32 exception."""

    precision: str
    channels_last: bool
    fp32_grouped_convs: bool
    why: str = ""

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device) -> Any:
        """The autocast context of this precision on `device` (a no-op context for fp32)."""
        return autocast_for(device, self.precision)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def cpu_bf16_support() -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, which feature says so or why not); detected once."""
    checks = (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported"))
    try:
        for name, fn in checks:
            if getattr(torch.cpu, fn)():
                return True, f"the CPU has {name}"
        return False, "the CPU has neither AVX512-BF16 nor AMX"
    except (AttributeError, RuntimeError):  # an older torch: read the kernel's flags instead
        return _cpuinfo_bf16()


def _cpuinfo_bf16(path: str = "/proc/cpuinfo") -> tuple[bool, str]:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return False, f"cannot read {path} to detect bf16 support"
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    for name, flag in (("AMX", "amx_bf16"), ("AVX512-BF16", "avx512_bf16")):
        if flag in flags:
            return True, f"the CPU has {name} ({path})"
    return False, f"the CPU has neither AVX512-BF16 nor AMX ({path})"


def resolve_numerics(device: torch.device | str, precision: str = "auto", channels_last: bool | None = None,
                     fp32_grouped_convs: bool | None = None) -> Numerics:
    """The numerics of a run on `device`; None and `auto` are decided here and nowhere else."""
    device = torch.device(device)
    why = f"precision {precision} requested"
    if precision == "auto":
        if device.type == "cuda":
            precision, why = "bf16", "auto: bf16 on CUDA"
        elif device.type == "cpu":
            native, detail = cpu_bf16_support()
            precision, why = ("bf16" if native else "fp32"), f"auto: {detail}"
        else:
            precision, why = "fp32", f"auto: fp32 on {device.type}"
    low = precision in ("bf16", "fp16")
    if channels_last is None:
        channels_last = device.type == "cuda" or (device.type == "cpu" and low)
    if fp32_grouped_convs is None:
        fp32_grouped_convs = device.type == "cpu"
    return Numerics(precision=precision, channels_last=bool(channels_last),
                    fp32_grouped_convs=bool(fp32_grouped_convs and low), why=why)


def autocast_for(device: torch.device, precision: str) -> Any:
    """torch.autocast for bf16/fp16 on `device`, a no-op context for fp32."""
    if precision in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------------ fp32 layers


class Fp32Forward:
    """Mixed into a module's own class: its forward runs outside autocast, on a float32 input."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.Conv2d's own argument name
        with torch.autocast(input.device.type, enabled=False):
            return super().forward(input.float())  # type: ignore[misc]


@functools.cache
def _fp32_class(cls: type[nn.Module]) -> type[nn.Module]:
    return type(cls.__name__, (Fp32Forward, cls), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})


def is_grouped_conv(module: nn.Module) -> bool:
    """A convolution with groups > 1 (depthwise included), the layers bf16 makes slower on CPU."""
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1


def keep_fp32(model: nn.Module, predicate: Any = is_grouped_conv) -> int:
    """Make every module of `model` that `predicate` selects run in fp32 under autocast; returns how many."""
    count = 0
    for module in model.modules():
        if not predicate(module):
            continue
        if not isinstance(module, Fp32Forward):
            module.__class__ = _fp32_class(type(module))
        count += 1
    return count


def prepare_model(model: nn.Module, numerics: Numerics) -> int:
    """Apply `numerics` to a model in place (memory format, fp32 layers); returns the modules kept in fp32."""
    if numerics.channels_last:
        model.to(memory_format=torch.channels_last)
    if not numerics.fp32_grouped_convs:
        return 0
    kept = keep_fp32(model)
    if kept:
        log.info("%d grouped convolution(s) kept in fp32 under %s autocast", kept, numerics.precision)
    return kept


def numerics_record(numerics: Numerics, fp32_modules: int) -> dict[str, Any]:
    """The numerics as result.json and config.json's `resolved` record them."""
    return {**numerics.to_dict(), "fp32_modules": fp32_modules,
            "fp32_reason": FP32_REASON if fp32_modules else None}
