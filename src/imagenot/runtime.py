"""Run plumbing every stage shares: the device, the precision vocabulary, torch's thread count and
determinism, and the fixed normalisations.

One vocabulary for precision in every config and record: `fp32`, `bf16`, `fp16` and `auto` (which a stage
resolves for its device: imagenot.training.precision for training and evaluation, the encoder's own rule in
mining). Older records written with torch's dtype names (`float32`, `bfloat16`, `float16`) are still read:
`canonical_precision` maps them, `torch_dtype_name` goes the other way for code that names a torch dtype.

Process-wide torch settings a run changes (threads, deterministic algorithms) are put back when it ends
(`torch_settings`), so a zoo running many runs in one process, or a test session, is not affected by one.
torch is imported lazily: the foundation is imported by stages (the analysis) that never load it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from imagenot.errors import ImagenotError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
# Names older records (and torch) use for the same precisions.
PRECISION_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

# The fixed normalisations (mean, std) a run can choose by name; ImageNet's is torchvision's.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "0.5": ((0.5,) * 3, (0.5,) * 3)}


def canonical_precision(name: str) -> str:
    """`name` in the one vocabulary (`float32` read from an older record is `fp32`); unknown names are an
    error listing the known ones."""
    value = PRECISION_ALIASES.get(name, name)
    if value not in PRECISIONS:
        raise ImagenotError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    return value


def torch_dtype_name(precision: str) -> str:
    """The torch dtype name (`float32`, `bfloat16`, `float16`) of a resolved precision."""
    value = canonical_precision(precision)
    if value == "auto":
        raise ValueError("precision 'auto' has no dtype until it is resolved for a device")
    return _TORCH_DTYPES[value]


def default_device() -> str:
    """`cuda` when a CUDA device is present, else `cpu`: what `auto` (or no device) means everywhere."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None, local_rank: int | None = None) -> torch.device:
    """The torch device `name` (auto/None, cpu, cuda, cuda:N, ...) means here; CUDA asked for on a machine
    without it is an error. `local_rank`: the process's GPU under torchrun, for a bare `cuda`."""
    import torch

    if not name or name == "auto":
        name = default_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ImagenotError("device cuda requested but no CUDA device is available")
    if name == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank)
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """Use `threads` torch CPU threads (None or 0: torch's choice, left as it is)."""
    import torch

    if threads:
        torch.set_num_threads(threads)


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic algorithms (warn-only on CUDA, where some kernels have none) and no cuDNN autotuning;
    otherwise cuDNN's benchmark mode on CUDA, the fastest kernels for fixed input sizes."""
    import torch

    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


@contextlib.contextmanager
def torch_settings(threads: int | None = None) -> Iterator[None]:
    """Put torch's thread count and deterministic-algorithms flag back when the block ends, after setting
    `threads` (if given) for it."""
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    before = torch.get_num_threads()
    try:
        set_threads(threads)
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

