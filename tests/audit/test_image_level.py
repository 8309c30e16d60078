"""Image level: the 'which dataset?' classifier finds a planted difference and stays at chance without one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagenot.audit.config import AuditConfig
from imagenot.audit.image_level import held_out_split
from imagenot.audit.image_stats import pixel_statistics, size_statistics
from imagenot.audit.pipeline import run_audit

from .conftest import synthetic_draw, write_imagefolder

FAST = dict(levels=("image",), image_size=16, samples_per_dataset=160, epochs=2, min_steps=30, batch_size=32,
            threads=1, progress=False)


def test_pixel_statistics_of_known_images() -> None:
    grey = np.full((1, 3, 8, 8), 128, np.uint8)
    halves = np.zeros((1, 3, 8, 8), np.uint8)
    halves[..., 4:] = 255
    red = np.zeros((1, 3, 8, 8), np.uint8)
    red[:, 0] = 255
    s = pixel_statistics(np.concatenate([grey, halves, red]))
    assert s["mean_red"] == pytest.approx([128 / 255, 0.5, 1.0])
    assert s["mean_green"] == pytest.approx([128 / 255, 0.5, 0.0])
    assert s["saturation"] == pytest.approx([0.0, 0.0, 1.0])
    assert s["brightness_std"] == pytest.approx([0.0, 0.5, 0.0], abs=1e-6)
    assert s["grey_entropy"] == pytest.approx([0.0, 1.0, 0.0])
    one = pixel_statistics(grey[:, :1])
    assert set(one) == {"mean_grey", "brightness_std", "grey_entropy"}
    sizes = size_statistics(np.array([[640, 480], [100, 200]]))
    assert sizes["original_shorter_side"].tolist() == [480, 100]
    assert sizes["original_aspect"] == pytest.approx([4 / 3, 0.5])


def test_held_out_split_is_disjoint_and_stratified() -> None:
    train, test = held_out_split(100, 0.3, seed=0)
    assert len(test) == 60 and len(train) == 140 and not set(train) & set(test)
    assert (test < 100).sum() == 30 and (test >= 100).sum() == 30
    assert np.array_equal(held_out_split(100, 0.3, seed=0)[1], test)
    assert not np.array_equal(held_out_split(100, 0.3, seed=1)[1], test)


def test_a_brightness_difference_is_found(tmp_path: Path) -> None:
    a, la = synthetic_draw("train", 200)
    b, lb = synthetic_draw("val", 200)  # same class patterns, other draws ...
    b = np.clip(b.astype(np.int16) + 60, 0, 255).astype(np.uint8)  # ... and brighter: the one difference
    classes = [f"c{i}" for i in range(4)]
    ref = write_imagefolder(tmp_path / "dark", a, la, classes)
    con = write_imagefolder(tmp_path / "bright", b, lb, classes)
    audit = run_audit(AuditConfig(reference=f"imagefolder:{ref}", contrast=f"imagefolder:{con}",
                                  out=str(tmp_path / "audit"), **FAST))
    print(audit["image_level"]["seconds"], audit["image_level"]["draw_seconds"],
          audit["image_level"]["classifier"]["train_seconds"])
    s = audit["summary"]["image_level"]
    assert s["accuracy"] >= 0.95 and s["ci_low"] > 0.85, s
    assert s["model"] == "resnet_s32"
    st = audit["image_level"]["statistics"]["per_statistic"]
    # adding brightness shifts every channel mean (and so lowers saturation, (max - min) / max)
    assert s["best_statistic"] in ("mean_red", "mean_green", "mean_blue", "saturation")
    assert s["best_statistic_accuracy"] >= 0.9
    assert all(st[k]["accuracy"] >= 0.8 for k in ("mean_red", "mean_green", "mean_blue"))
    assert st["mean_red"]["contrast_mean"] - st["mean_red"]["reference_mean"] > 0.15
    # both folders hold 24 px PNGs: the original size tells nothing
    assert st["original_shorter_side"]["reference_mean"] == st["original_shorter_side"]["contrast_mean"] == 24
    assert audit["image_level"]["n_test"] == s["n_test"] == 96  # 30% of 160 from each side


def test_random_halves_of_one_dataset_stay_near_chance(tmp_path: Path) -> None:
    images, labels = synthetic_draw("train", 320, seed=3)
    perm = np.random.default_rng(7).permutation(len(images))
    classes = [f"c{i}" for i in range(4)]
    first = write_imagefolder(tmp_path / "h1", images[perm[:160]], labels[perm[:160]], classes)
    second = write_imagefolder(tmp_path / "h2", images[perm[160:]], labels[perm[160:]], classes)
    audit = run_audit(AuditConfig(reference=f"imagefolder:{first}", contrast=f"imagefolder:{second}",
                                  out=str(tmp_path / "audit"), **FAST))
    s = audit["summary"]["image_level"]
    assert s["ci_low"] <= 0.5 <= s["ci_high"], s
    assert abs(s["accuracy"] - 0.5) < 0.15
    for name, st in audit["image_level"]["statistics"]["per_statistic"].items():
        assert st["ci_low"] <= 0.5 + 0.05, (name, st)

