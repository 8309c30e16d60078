"""Statistics over per-image correctness: which accuracy differences do the validation images support?

Two models evaluated on the same images are paired: they differ only on the images one gets right and the
other wrong. The functions here turn `predictions.parquet` rows (a bool per image and run) into binomial
intervals (Clopper-Pearson, `imagenot.stats`), exact McNemar tests, Holm-adjusted significance, paired-bootstrap intervals, a
permutation p-value for Kendall tau and the smallest difference a validation set of a given size can detect.
The tests themselves are statsmodels' and scipy's; this module only shapes the data for them.

The image bootstrap does not draw n image indices per resample. The per-run accuracies of a resample depend
only on how many times each *pattern* of correctness across runs (e.g. right for A and C, wrong for B) was
drawn, and those counts are multinomial over the distinct patterns with the observed frequencies. A zoo of 9
runs has at most 2^9 patterns, so 2000 resamples of 50,000 images cost a 2000 x 512 multinomial draw and a
matrix product instead of 100 million gathered indices; the result has exactly the bootstrap's distribution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)

EXACT_PERMUTATION_MAX = 9
"""Up to this many models every one of the n! orders is enumerated (9! = 362,880); beyond, Monte Carlo."""


def mcnemar_table(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x2 table [[both right, only a], [only b, both wrong]] of two models on the same images.

    `a` and `b` are per-image scores in [0, 1]: the correctness of one run, or the mean over a model's seeds.
    With several seeds an image counts for a when a's seeds get it right more often than b's; with one seed
    this is exactly McNemar's table, with several it is the sign test of the per-image differences.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"scores of different lengths: {a.shape} and {b.shape}")
    only_a = int(np.sum(a > b))
    only_b = int(np.sum(b > a))
    same = a == b
    both = int(np.sum(same & (a >= 0.5)))
    neither = int(np.sum(same & (a < 0.5)))
    return np.array([[both, only_a], [only_b, neither]], dtype=np.int64)


def mcnemar_p(table: np.ndarray) -> float:
    """Exact McNemar p-value (two-sided binomial test on the discordant images); 1 when there are none."""
    from statsmodels.stats.contingency_tables import mcnemar

    table = np.asarray(table)
    if int(table[0, 1] + table[1, 0]) == 0:
        return 1.0
    return float(mcnemar(table, exact=True).pvalue)


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p) with Holm's step-down correction (statsmodels multipletests)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return np.asarray(reject, dtype=bool), np.asarray(adjusted, dtype=float)


def correctness_patterns(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of an (images x runs) bool matrix and how often each occurs: (patterns K x R, counts K)."""
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 2:
        raise ValueError(f"expected an (images x runs) matrix, got shape {c.shape}")
    n, r = c.shape
    if r <= 62:
        codes = c.astype(np.int64) @ (np.int64(1) << np.arange(r, dtype=np.int64))
        uniq, first, counts = np.unique(codes, return_index=True, return_counts=True)
        return c[first], counts
    packed = np.packbits(c, axis=1)
    _, first, counts = np.unique(packed, axis=0, return_index=True, return_counts=True)
    return c[first], counts


def bootstrap_accuracies(correct: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, runs) accuracies (fractions) of image resamples, the same images for every run (paired)."""
    patterns, counts = correctness_patterns(correct)
    n = int(counts.sum())
    if n == 0:
        return np.full((n_boot, patterns.shape[1]), math.nan)
    weights = patterns.astype(np.float64)
    out = np.empty((n_boot, patterns.shape[1]))
    step = max(1, 2_000_000 // len(counts))  # bounded memory when almost every image has its own pattern
    for start in range(0, n_boot, step):
        draws = rng.multinomial(n, counts / n, size=min(step, n_boot - start))
        out[start:start + draws.shape[0]] = draws @ weights / n
    return out


def percentile_ci(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap draws (NaN draws dropped)."""
    arr = np.asarray(draws, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(arr, [alpha, 1.0 - alpha])
    return float(low), float(high)


def kendall_permutation_p(
    x: Sequence[float],
    y: Sequence[float],
    tau_rows: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    n_perm: int = 100_000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Two-sided permutation p-value of Kendall tau-b: how often a random order of y agrees as well with x.

    For n <= 9 the p is exact over all n! orders: in closed form without ties (scipy's exact Kendall
    distribution), by enumerating every order with ties (scipy.stats.permutation_test with 'pairings', where
    tau-b itself handles the ties). Beyond 9, `n_perm` random orders (Monte Carlo; the observed order is
    counted, so p is never 0). `tau_rows` is the vectorised tau-b
    (stats.kendall_tau_b_rows), passed in to keep this module free of the report's own helpers.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    n = xa.size
    if n < 3 or np.all(xa == xa[0]) or np.all(ya == ya[0]):
        return None
    exact = n <= EXACT_PERMUTATION_MAX
    resamples = math.factorial(n) if exact else int(n_perm)
    if exact and np.unique(xa).size == n and np.unique(ya).size == n:
        # Without ties the distribution over all n! orders is Kendall's exact null distribution, which scipy
        # computes in closed form: the same p as enumerating, without 362,880 taus for 9 models.
        res = stats.kendalltau(xa, ya, method="exact")
        return {"p": float(res.pvalue), "exact": True, "permutations": resamples,
                "statistic": float(res.statistic)}

    def statistic(yy: np.ndarray, axis: int = -1) -> np.ndarray:
        yy = np.moveaxis(np.atleast_2d(yy), axis, -1)
        return tau_rows(np.broadcast_to(xa, yy.shape), yy)

    res = stats.permutation_test((ya,), statistic, permutation_type="pairings", n_resamples=resamples,
                                 vectorized=True, batch=20_000, alternative="two-sided",
                                 rng=np.random.default_rng(seed))
    return {"p": float(res.pvalue), "exact": exact, "permutations": resamples,
            "statistic": float(np.asarray(res.statistic).reshape(-1)[0])}


def min_detectable_difference(
    n: int, accuracy: float, discordance: float | None, *, alpha: float = 0.05, power: float = 0.8
) -> dict[str, float]:
    """Smallest accuracy difference (in fraction units) a two-sided test at `alpha` finds with `power`.

    'unpaired' compares two independent samples of n images at the given mean accuracy (Cohen's h, converted
    back around that accuracy): the noise in comparing one model across two datasets. 'paired' is McNemar's
    view for two models on the same n images, where only the discordant fraction `discordance` carries
    information: a one-sample test of the discordant split against 1/2 on n * discordance images.
    """
    from statsmodels.stats.power import NormalIndPower

    out = {"n": float(n), "accuracy": float(accuracy), "unpaired": math.nan, "paired": math.nan,
           "discordance": math.nan if discordance is None else float(discordance)}
    if n < 2 or not 0.0 < accuracy < 1.0:
        return out
    solver = NormalIndPower()
    h = float(solver.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=1.0))
    phi = math.asin(math.sqrt(accuracy))
    lo = math.sin(max(phi - h / 4, 0.0)) ** 2
    hi = math.sin(min(phi + h / 4, math.pi / 2)) ** 2
    out["unpaired"] = hi - lo
    if discordance is not None and discordance > 0 and n * discordance >= 2:
        hp = float(solver.solve_power(effect_size=None, nobs1=n * discordance, alpha=alpha, power=power,
                                      ratio=0.0))
        share = math.sin(min(math.pi / 4 + hp / 2, math.pi / 2)) ** 2  # share of discordant images won
        out["paired"] = discordance * (2.0 * share - 1.0)
    return out


def covering_pairs(better: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The transitive reduction of a strict partial order given as (better, worse) pairs (its Hasse edges).

    A pair a > c is dropped when some b has a > b > c: the sentence 'a > b > c' already says it.
    """
    above: dict[str, set[str]] = {}
    for a, b in better:
        above.setdefault(a, set()).add(b)
    out = []
    for a, b in better:
        if not any(b in above.get(c, set()) for c in above.get(a, set()) if c != b):
            out.append((a, b))
    return out
