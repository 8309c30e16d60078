"""Run plumbing (imagenot.runtime): one precision vocabulary, the device, threads and determinism put back."""

import pytest
import torch

from imagenot import runtime
from imagenot.errors import ImagenotError


def test_precision_vocabulary_accepts_older_names():
    assert [runtime.canonical_precision(p) for p in ("float32", "bfloat16", "float16", "bf16", "auto")] == [
        "fp32", "bf16", "fp16", "bf16", "auto"]
    assert runtime.torch_dtype_name("bf16") == "bfloat16" and runtime.torch_dtype_name("float16") == "float16"
    with pytest.raises(ImagenotError, match="fp32, bf16, fp16"):
        runtime.canonical_precision("half")
    with pytest.raises(ValueError):
        runtime.torch_dtype_name("auto")


def test_an_older_mine_config_reads_back_in_the_one_vocabulary():
    from imagenot.config import from_dict
    from imagenot.mining.config import MineConfig

    assert from_dict(MineConfig, {"precision": "bfloat16"}).precision == "bf16"
    assert from_dict(MineConfig, {"precision": "fp16"}).precision == "fp16"


def test_device_resolution():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device("auto").type == runtime.default_device() == runtime.resolve_device(None).type
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ImagenotError, match="no CUDA device"):
                runtime.resolve_device(name, local_rank=0)


def test_torch_settings_are_put_back():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with runtime.torch_settings(threads=threads + 1):
        assert torch.get_num_threads() == threads + 1
        runtime.set_determinism(not deterministic, torch.device("cpu"))
        assert torch.are_deterministic_algorithms_enabled() != deterministic
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
