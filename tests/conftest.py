import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """../shared/reference beside the checkout (the study's released list and numbers)."""
    if not SHARED_REFERENCE.exists():
        pytest.skip(f"{SHARED_REFERENCE} not present")
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def wordnet():
    from imagenot.wordnet.loader import get_wordnet

    return get_wordnet()
