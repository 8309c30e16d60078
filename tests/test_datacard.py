"""The dataset card's one owner (`imagenot.datacard`): written by download, read by data, audit, report, demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagenot import datacard
from imagenot.errors import InputError


def test_card_round_trips_and_marks_the_folder_finished(tmp_path: Path) -> None:
    assert not datacard.has_card(tmp_path) and datacard.read_card_if_any(tmp_path) is None
    card = {"name": "x", "splits": {"train": {"count": 2, "shards": []}}, "text_filter": {"mode": "off"}}
    path = datacard.write_card(tmp_path, card)
    assert path == tmp_path / "dataset.json" and datacard.has_card(tmp_path)
    assert datacard.read_card(tmp_path) == card == datacard.read_card_if_any(tmp_path)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temporary left behind


def test_strict_reader_names_the_file_and_line_lenient_reader_gives_none(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no dataset.json"):
        datacard.read_card(tmp_path)
    (tmp_path / "dataset.json").write_text('{"a": 1,\n  oops}')
    with pytest.raises(InputError, match="bad JSON") as info:
        datacard.read_card(tmp_path)
    assert "dataset.json" in str(info.value) and "2" in str(info.value)
    assert datacard.read_card_if_any(tmp_path) is None
    (tmp_path / "dataset.json").write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="JSON object"):
        datacard.read_card(tmp_path)
    assert datacard.read_card_if_any(tmp_path) is None


def test_similarity_threshold_prefers_the_thresholds_section() -> None:
    assert datacard.similarity_threshold({"thresholds": {"similarity_threshold": 0.3},
                                          "mining": {"similarity_threshold": 0.2}}) == 0.3
    assert datacard.similarity_threshold({"thresholds": {"similarity_threshold": None},
                                          "mining": {"similarity_threshold": 0.2}}) == 0.2
    assert datacard.similarity_threshold({"thresholds": "odd", "mining": {}}) is None


def test_readme_is_written_from_the_card_with_names_escaped(tmp_path: Path) -> None:
    card = {
        "name": "<b>clip</b>", "tool": {"version": "9"}, "created_utc": "2026-01-01T00:00:00Z",
        "command": "imagenot download `x`", "image_size": 64, "encode_format": "jpg", "num_classes": 1,
        "source": {"matches": "/m/selected.parquet", "matches_sha256": "a" * 64, "classes": "/m/classes.tsv"},
        "mining": {"corpus": "openclipart", "encoder": None, "similarity_threshold": None},
        "counts": {"selected": 5, "decoded": 4, "after_dedup": 3, "train": 2, "val": 1},
        "removed": {"decode": 1, "dedup": 1}, "text_filter": {"mode": "count", "checked": 3, "text_in_image": 1},
        "thresholds": {"min_image_size": 8, "max_image_pixels": 10, "max_aspect_ratio": 4, "near_dup_distance": 2,
                       "min_images_per_class": 1, "min_val_per_class": 1, "keep_small_classes": False},
        "dedup": {"against": []}, "split": {"seed": 3, "moved_to_val": 0,
                                           "caps": {"train": None, "val": None, "source": None}},
        "classes": [{"index": 0, "wnid": "n00000001", "name": "a|b", "train": 2, "val": 1, "status": "ok"}],
        "splits": {"train": {"shards": [{"file": "train-000000.tar", "samples": 2, "sha256": "f" * 64}]}},
    }
    path = datacard.write_readme(tmp_path, card)
    text = path.read_text()
    assert path == tmp_path / "README.md"
    assert "<b>" not in text and "| a&#124;b |" in text  # names are text, not markup or table cells
    assert "would remove (count only; kept) 1" in text and "| train | train-000000.tar | 2 |" in text
    assert "similarity threshold: not recorded" in text and "![contact sheet](contact_sheet.png)" in text
