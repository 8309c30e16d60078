"""The input side of a run: in-memory and streamed data give identical runs, batch mixing, bad input, memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imagenot import rundir
from imagenot.errors import ImagenotError
from imagenot.predictions import read_predictions
from imagenot.training.trainer import TrainConfig, train
from tests.training.training_helpers import quick_config, subprocess_env, write_image_folder

VOLATILE = {"images_per_s", "time_s"}


@pytest.fixture(scope="module")
def square_folder(tmp_path_factory):
    # Square images of one size, so that decoding them once into memory keeps every pixel.
    return write_image_folder(tmp_path_factory.mktemp("sq") / "data", {"train": 16, "val": 5},
                              sizes=((24, 24),))


def _run(out, folder, in_memory, **changes):
    opts = {"in_memory": in_memory, "cache": False}
    cfg = dict(model="resnet_s32", dataset=f"imagefolder:{folder}", dataset_options=opts, out=str(out), epochs=2,
               batch_size=8, seed=0, threads=1, progress=False, deterministic=True, workers=1)
    cfg.update(changes)
    result = train(TrainConfig(**cfg))
    rows = [{k: v for k, v in json.loads(line).items() if k not in VOLATILE}
            for line in (out / "metrics.jsonl").read_text().splitlines()]
    weights = torch.load(rundir.checkpoint_path(out), weights_only=True)["model"]
    return result, rows, weights, read_predictions(rundir.predictions_path(out))


@pytest.mark.parametrize("pipeline, extra", [
    ("batched", {"image_size": 16}),
    ("per_sample", {"image_size": 16, "recipe_overrides": {"auto_augment": "ta_wide", "mixup_alpha": 0.2}}),
])
def test_in_memory_and_streamed_data_give_identical_runs(tmp_path, square_folder, pipeline, extra):
    mem = _run(tmp_path / "mem", square_folder, True, pipeline=pipeline, **extra)
    stream = _run(tmp_path / "stream", square_folder, False, pipeline=pipeline, **extra)
    assert mem[0]["input"]["read"] == "memory" and stream[0]["input"]["read"] == "random"
    assert mem[0]["normalization"] == stream[0]["normalization"]
    assert mem[1] == stream[1]  # every epoch's losses and accuracies
    for name, tensor in mem[2].items():
        assert torch.equal(tensor, stream[2][name]), name
    (table_a, meta_a), (table_b, meta_b) = mem[3], stream[3]
    assert table_a.equals(table_b) and meta_a["split_digest"] == meta_b["split_digest"]
    keys = table_a.column("key").to_pylist()
    assert keys[0] == "c0/0000.png" and len(keys) == 15


def test_mixup_cutmix_targets_sum_to_one_and_replay():
    from imagenot.training.distributed import DistInfo
    from imagenot.training.inputs import InputPlan
    from imagenot.training.loop import _mixed
    from imagenot.training.setup import _batch_mix
    from imagenot.training.state import RunState

    plan = InputPlan("per_sample", 8, 8, None, None, None, None, "imagenet", 0.2, 1.0, 1, "auto", False, None)
    mix = _batch_mix(plan, num_classes=5)
    state = RunState(cfg=TrainConfig(model="m", dataset="d", out="o"), dist=DistInfo(), run_dir=None, recipe=None,
                     plan=plan, epochs=1, global_batch=6, family=None, year=None, config_dict={}, mix=mix)
    x = torch.rand(6, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    kinds = set()
    for step in range(12):
        xm, ym = _mixed(state, x, y, 0, step)
        assert ym.shape == (6, 5) and torch.allclose(ym.sum(1), torch.ones(6))
        rows = torch.arange(6)
        own, partner = ym[rows, y], ym[rows, y.roll(1)]  # v2.MixUp/CutMix mix each image with the previous one
        assert (own > 0).all() and torch.allclose(torch.where(y == y.roll(1), own, own + partner), torch.ones(6))
        again = _mixed(state, x, y, 0, step)
        assert torch.equal(again[0], xm) and torch.equal(again[1], ym)  # seeded by (seed, epoch, step, rank)
        pixels_from_own = ((xm - x).abs() < 1e-7).float().mean()
        kinds.add("cutmix" if pixels_from_own > 0.01 else "mixup")
    assert kinds == {"cutmix", "mixup"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"recipe_overrides": {"auto_augment": "autoaugment_v9"}}, "auto_augment: 'autoaugment_v9' is not one of ta_wide"),
    ({"model": "resnet18", "recipe_overrides": {"val_resize_size": 20, "val_crop_size": 32}},
     "larger than the resized image"),
    ({"model": "resnet18", "image_size": 32, "recipe_overrides": {"val_resize_size": 24}},
     "evaluation crop \\(32 px\\) is larger than the resized image"),
    ({"model": "inception_v3", "image_size": 64}, "inception_v3.*at least 75x75"),
    ({"model": "inception_v3", "recipe_overrides": {"train_crop_size": 64}}, "at least 75x75"),
    ({"recipe_overrides": {"auto_augment": "ta_wide"}}, "only the per_sample pipeline applies"),
    ({"model": "vit_b_16", "recipe_overrides": {"train_crop_size": 160}}, "built for one input size"),
    ({"gpu_decode": True}, "needs the per_sample pipeline"),
])
def test_bad_input_is_refused_before_training(tmp_path, changes, message):
    out = tmp_path / "run"
    with pytest.raises(ImagenotError, match=message):
        train(quick_config(out, **changes))
    assert not out.exists()


def test_cli_input_flags_reach_the_config():
    import argparse

    from imagenot.training import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--model", "resnet18", "--dataset", "synthetic", "--out", "o",
                              "--eval-batch-size", "32", "--workers", "3", "--pipeline", "per_sample",
                              "--normalization", "dataset", "--wds-read", "random", "--gpu-decode"])
    from imagenot.cli_options import config_from_args
    from imagenot.training.config import TrainConfig

    cfg = config_from_args(TrainConfig, args)
    assert cfg.out.endswith("/o") and Path(cfg.out).is_absolute()
    assert (cfg.eval_batch_size, cfg.workers, cfg.pipeline, cfg.normalization, cfg.wds_read, cfg.gpu_decode) == (
        32, 3, "per_sample", "dataset", "random", True)


MEMORY_PROBE = r"""
import resource, sys, torch
from imagenot.data.dataset import ImageDataset
from imagenot.data.stats import channel_stats

n = 2000
images = torch.randint(0, 256, (n, 3, 128, 128), dtype=torch.uint8)  # 98 MB of uint8
ds = ImageDataset(images, torch.arange(n) % 4, ["a", "b", "c", "d"], "probe")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mean, std = channel_stats(ds)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, images.numel() / 2**20, mean[0], std[0])
"""


def test_dataset_statistics_need_no_float_copy_of_the_data():
    """normalization=dataset: one pass in chunks; a float32 copy of this 98 MB dataset would need 390 MB."""
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], env=subprocess_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    grown_mb, data_mb, mean, std = (float(v) for v in done.stdout.split())
    assert grown_mb < 0.25 * data_mb, (grown_mb, data_mb)
    assert abs(mean - 0.5) < 0.01 and abs(std - 0.2887) < 0.01  # uniform bytes: 127.5/255, 1/sqrt(12)
