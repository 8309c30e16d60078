"""Fixtures for the mining tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagenot.wordnet.classes import write_classes

from .mine_helpers import ANIMALS, make_classes


@pytest.fixture
def animal_classes(tmp_path: Path) -> Path:
    path = tmp_path / "classes.tsv"
    write_classes(path, make_classes(ANIMALS))
    return path
