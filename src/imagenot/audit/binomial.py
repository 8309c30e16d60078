"""Accuracies with exact (Clopper-Pearson) binomial intervals: held-out sets here are hundreds of images, so
the interval is part of the number."""

from __future__ import annotations

from typing import Any


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    """`{"accuracy", "correct", "n_test", "ci_low", "ci_high", "confidence"}`; None for an empty test set."""
    if n <= 0:
        return {"accuracy": None, "correct": 0, "n_test": 0, "ci_low": None, "ci_high": None,
                "confidence": confidence}
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(int(correct), int(n), alpha=1.0 - confidence, method="beta")
    return {"accuracy": correct / n, "correct": int(correct), "n_test": int(n), "ci_low": float(low),
            "ci_high": float(high), "confidence": confidence}
