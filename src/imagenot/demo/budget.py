"""The demo's budget sweep: the plateaus (scripts/demo_budget_sweep.py) the demo's report and summary compare
each model against, shipped with the package as `budget.json` beside this module.

Its own module so that the demo's runner and its summary both read it without importing each other.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def plateau_file() -> Path | None:
    """The demo's budget sweep (scripts/demo_budget_sweep.py), shipped with the package, if it exists."""
    path = Path(__file__).with_name("budget.json")
    return path if path.is_file() else None
