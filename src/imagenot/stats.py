"""Exact binomial statistics shared by the stages: an accuracy measured on a few hundred images carries a
sampling error of several points, so every stage that states one (the report, the audit) states its
interval with the same method.

The interval is Clopper-Pearson (statsmodels' `proportion_confint`, method 'beta'): exact, never narrower
than the data allow, and what the paper's per-model error bars mean. Kept here, in the foundation, because
the analysis stage (which may import no other stage) and the audit both need it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger(__name__)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of k successes in n trials, as fractions (statsmodels, method 'beta');
    NaNs for n <= 0."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return math.nan, math.nan
    low, high = proportion_confint(int(k), int(n), alpha=1.0 - confidence, method="beta")
    return float(low), float(high)


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    """An accuracy with its exact interval, as a record: `{"accuracy", "correct", "n_test", "ci_low",
    "ci_high", "confidence"}`; accuracy and bounds None for an empty test set."""
    if n <= 0:
        return {"accuracy": None, "correct": 0, "n_test": 0, "ci_low": None, "ci_high": None,
                "confidence": confidence}
    low, high = clopper_pearson(correct, n, confidence)
    return {"accuracy": correct / n, "correct": int(correct), "n_test": int(n), "ci_low": low,
            "ci_high": high, "confidence": confidence}
