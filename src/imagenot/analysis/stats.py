"""The statistics of a ranking comparison, each a small function over paired arrays.

All tests and fits come from `scipy.stats` (kendalltau with tau-b so that ties are handled, spearmanr,
linregress); this module only adds the bookkeeping a report needs: scale transforms, pair flips, step-to-step
changes, and a two-level bootstrap. Functions return plain dicts of floats so they go straight into stats.json.
Every function that needs a minimum number of points returns None below it instead of raising, so a small or
partial study still gets a report (the caller says why a statistic is missing).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

MIN_POINTS = 3
"""Fewer paired models than this and correlations and fits are omitted (a line through 2 points has R^2 1)."""

ACCURACY_SCALES = ("percent", "fraction")
SCALES = ("percent", "fraction", "ratio")
FIT_SCALES = ("raw", "logit", "probit", "ratio")
CLIP = 1e-4
"""Accuracies of exactly 0 or 1 are clipped to [CLIP, 1 - CLIP] before logit/probit (the transforms are infinite
there); the report notes when that happened."""


def _arrays(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-d and of equal length, got {xa.shape} and {ya.shape}")
    return xa, ya


def _constant(a: np.ndarray) -> bool:
    return bool(np.all(a == a[0])) if a.size else True


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float] | None:
    """Kendall tau-b and Spearman rho with two-sided p-values; None under MIN_POINTS or with a constant side.

    Kendall's p is exact for small samples without ties (scipy's 'auto'), Spearman's comes from the t
    approximation, which gives p = 0 at rho = +-1: the report therefore leads with tau.
    """
    xa, ya = _arrays(x, y)
    if xa.size < MIN_POINTS or _constant(xa) or _constant(ya):
        return None
    tau = stats.kendalltau(xa, ya, variant="b")
    rho = stats.spearmanr(xa, ya)
    return {
        "n": int(xa.size),
        "kendall_tau": float(tau.statistic),
        "kendall_p": float(tau.pvalue),
        "spearman_rho": float(rho.statistic),
        "spearman_p": float(rho.pvalue),
    }


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float] | None:
    """Least-squares fit y = slope * x + intercept with R^2 and standard errors; None if it cannot be fitted."""
    xa, ya = _arrays(x, y)
    if xa.size < MIN_POINTS or _constant(xa):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = stats.linregress(xa, ya)
    r = float(fit.rvalue) if not _constant(ya) else 0.0
    return {
        "n": int(xa.size),
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "r": r,
        "r2": r * r,
        "p": float(fit.pvalue) if not _constant(ya) else 1.0,
        "slope_stderr": float(fit.stderr),
        "intercept_stderr": float(fit.intercept_stderr),
    }


def pearson(x: Sequence[float], y: Sequence[float]) -> dict[str, float] | None:
    """Pearson r with p-value (scipy.stats.pearsonr); None under MIN_POINTS or with a constant side."""
    xa, ya = _arrays(x, y)
    if xa.size < MIN_POINTS or _constant(xa) or _constant(ya):
        return None
    res = stats.pearsonr(xa, ya)
    return {"n": int(xa.size), "r": float(res.statistic), "r2": float(res.statistic) ** 2, "p": float(res.pvalue)}


def to_fraction(values: Sequence[float], scale: str) -> np.ndarray:
    """Accuracies as fractions in [0, 1] (the input to logit/probit)."""
    if scale not in ACCURACY_SCALES:
        raise ValueError(f"{scale!r} is not an accuracy scale ({', '.join(ACCURACY_SCALES)})")
    arr = np.asarray(values, dtype=float)
    return arr / 100.0 if scale == "percent" else arr


def transform(fractions: Sequence[float], how: str) -> np.ndarray:
    """logit or probit of accuracies given as fractions, clipped away from 0 and 1."""
    p = np.clip(np.asarray(fractions, dtype=float), CLIP, 1 - CLIP)
    if how == "logit":
        return np.log(p / (1 - p))
    if how == "probit":
        return stats.norm.ppf(p)
    raise ValueError(f"unknown transform {how!r}; known: logit, probit")


def detect_scale(values: Sequence[float], name: str = "") -> tuple[str, str]:
    """Guess how a dataset's numbers are expressed; returns (scale, reason) so the report can declare it.

    'ratio' when the dataset or column name says so; 'fraction' when every value is at most 1; otherwise
    'percent'. A user whose percent accuracies are all below 1 % (or whose ratios are unnamed) declares the
    scale instead.
    """
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if "ratio" in name.lower():
        return "ratio", f"the name {name!r} contains 'ratio'"
    if arr.size and float(arr.max()) <= 1.0:
        return "fraction", "every value is at most 1"
    return "percent", "values above 1"


def pairwise_order(
    models: Sequence[str], x: Sequence[float], y: Sequence[float]
) -> dict[str, Any]:
    """Compare the order of every pair of models on both datasets and list the pairs that flip.

    A pair tied on either side is counted as a tie, neither kept nor flipped (as in tau-b's numerator).
    """
    xa, ya = _arrays(x, y)
    if len(models) != xa.size:
        raise ValueError("one model name per value is needed")
    concordant = discordant = ties = 0
    flips: list[dict[str, Any]] = []
    for i in range(xa.size):
        for j in range(i + 1, xa.size):
            sx = np.sign(xa[i] - xa[j])
            sy = np.sign(ya[i] - ya[j])
            if sx == 0 or sy == 0:
                ties += 1
            elif sx == sy:
                concordant += 1
            else:
                discordant += 1
                # name the pair as (better on x, better on y) so the sentence reads naturally
                a, b = (i, j) if sx > 0 else (j, i)
                flips.append({
                    "better_on_x": models[a], "better_on_y": models[b],
                    "x": [float(xa[a]), float(xa[b])], "y": [float(ya[a]), float(ya[b])],
                })
    pairs = xa.size * (xa.size - 1) // 2
    return {
        "pairs": pairs,
        "concordant": concordant,
        "discordant": discordant,
        "ties": ties,
        "agreement": concordant / pairs if pairs else math.nan,
        "flips": flips,
    }


def ranks(values: Sequence[float]) -> np.ndarray:
    """Rank 1 = highest accuracy; ties share the best (lowest) rank, as in a leaderboard."""
    arr = np.asarray(values, dtype=float)
    return stats.rankdata(-arr, method="min").astype(int)


def relative(values: Sequence[float], baseline: float) -> np.ndarray:
    """Accuracy divided by the baseline model's accuracy on the same dataset (ImageNot's 'ratio to AlexNet')."""
    return np.asarray(values, dtype=float) / float(baseline)


def steps(values: Sequence[float]) -> np.ndarray:
    """Relative change from each model to the next in the given (publication) order: v[i] / v[i-1] - 1."""
    arr = np.asarray(values, dtype=float)
    return arr[1:] / arr[:-1] - 1.0


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof 1; NaN for a single seed) of one model's seed accuracies."""
    arr = np.asarray(values, dtype=float)
    return {
        "mean": float(arr.mean()) if arr.size else math.nan,
        "sd": float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
        "n": int(arr.size),
    }


def kendall_tau_b_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of two (k, n) arrays at once; NaN where a row is constant.

    The bootstrap needs thousands of taus of the same small n; scipy.stats.kendalltau costs about a
    millisecond per call here, this about a microsecond per row. Tests check it against scipy, ties included.
    tau_b = sum_{i<j} sign(dx) sign(dy) / sqrt(untied pairs in x * untied pairs in y).
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    n = x.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], 512):  # bounded memory for large zoos
        sx = np.sign(x[start:start + 512, iu] - x[start:start + 512, ju])
        sy = np.sign(y[start:start + 512, iu] - y[start:start + 512, ju])
        denom = np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + 512] = np.where(denom > 0, (sx * sy).sum(axis=1) / denom, np.nan)
    return out


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho (Pearson r of average ranks) of each row pair; NaN where a row is constant."""
    rx = stats.rankdata(np.atleast_2d(x), axis=1)
    ry = stats.rankdata(np.atleast_2d(y), axis=1)
    return _fit_rows(rx, ry)[2]


def _fit_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares slope, intercept and Pearson r of y on x for each row (linregress, vectorised)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxx = (xc * xc).sum(axis=1)
    syy = (yc * yc).sum(axis=1)
    sxy = (xc * yc).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
        r = np.where((sxx > 0) & (syy > 0), sxy / np.sqrt(sxx * syy), np.nan)
    intercept = y.mean(axis=1) - slope * x.mean(axis=1)
    return slope, intercept, r


def fit_rows(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row slope, intercept and R^2 (see `_fit_rows`)."""
    slope, intercept, r = _fit_rows(x, y)
    return {"slope": slope, "intercept": intercept, "r2": r * r}


Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Maps resampled per-model means (k, n) of both sides to the scale the statistics use (ratio, logit...)."""


def resample_means(
    seeds: Sequence[Sequence[float]], n_boot: int, rng: np.random.Generator, within: bool
) -> np.ndarray:
    """(n_boot, n_models) means of each model's seeds, resampled with replacement when `within`."""
    out = np.empty((n_boot, len(seeds)))
    for j, values in enumerate(seeds):
        arr = np.asarray(values, dtype=float)
        if within and arr.size > 1:
            out[:, j] = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
        else:
            out[:, j] = arr.mean()
    return out


def bootstrap(
    x_seeds: Sequence[Sequence[float]],
    y_seeds: Sequence[Sequence[float]],
    *,
    transform: Transform | None = None,
    resample: str = "both",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of Kendall tau, Spearman rho, slope and R^2 of per-model means.

    `x_seeds[i]` / `y_seeds[i]` hold model i's seed accuracies on the two sides (independent runs, so they are
    resampled independently). 'seeds' resamples seeds within each model (training noise), 'models' resamples
    which models are in the study (the zoo is a sample too), 'both' does both. `transform` is applied to the
    means of all models before models are drawn, so that a ratio to a baseline model uses the baseline's
    resampled mean even when the baseline itself was not drawn. scipy.stats.bootstrap resamples one level only,
    hence this function. Resamples where a statistic is undefined (every drawn model identical) are dropped
    and counted in `valid`; with fewer than a tenth valid the interval is NaN.
    """
    if resample not in ("seeds", "models", "both"):
        raise ValueError(f"unknown resample mode {resample!r}; known: seeds, models, both")
    if len(x_seeds) != len(y_seeds):
        raise ValueError("x_seeds and y_seeds need one entry per model")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_models = len(x_seeds)
    rng = np.random.default_rng(seed)
    within = resample in ("seeds", "both")
    xm = resample_means(x_seeds, n_boot, rng, within)
    ym = resample_means(y_seeds, n_boot, rng, within)
    if transform is not None:
        xm, ym = transform(xm, ym)
    if resample in ("models", "both"):
        idx = rng.integers(0, n_models, size=(n_boot, n_models))
        xm = np.take_along_axis(xm, idx, axis=1)
        ym = np.take_along_axis(ym, idx, axis=1)
    fits = fit_rows(xm, ym)
    draws = {
        "kendall_tau": kendall_tau_b_rows(xm, ym),
        "spearman_rho": spearman_rows(xm, ym),
        "slope": fits["slope"],
        "r2": fits["r2"],
    }
    alpha = (1.0 - confidence) / 2.0
    out: dict[str, Any] = {"resample": resample, "n_boot": n_boot, "confidence": confidence, "seed": seed}
    for key, arr in draws.items():
        ok = arr[~np.isnan(arr)]
        if ok.size < max(10, n_boot // 10):
            out[key] = {"low": math.nan, "high": math.nan, "sd": math.nan, "valid": int(ok.size)}
            continue
        low, high = np.quantile(ok, [alpha, 1 - alpha])
        out[key] = {"low": float(low), "high": float(high), "sd": float(ok.std(ddof=1)), "valid": int(ok.size)}
    return out


def _interval(arr: np.ndarray, n_boot: int, confidence: float) -> dict[str, float]:
    ok = arr[~np.isnan(arr)]
    if ok.size < max(10, n_boot // 10):
        return {"low": math.nan, "high": math.nan, "sd": math.nan, "valid": int(ok.size)}
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ok, [alpha, 1 - alpha])
    return {"low": float(low), "high": float(high), "sd": float(ok.std(ddof=1)), "valid": int(ok.size)}


def agreement_intervals(
    xm: np.ndarray,
    ym: np.ndarray,
    *,
    accuracy: bool,
    base_index: int | None = None,
    model_idx: np.ndarray | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Intervals of tau, rho and the slope and R^2 of every fit scale over rows of resampled per-model means.

    `xm`, `ym` are (draws, models) means in percent (or ratios); each source of noise (test images, seeds,
    the choice of models) produces them its own way and this function summarises them the same way, so the
    report can put the sources side by side. Scales are applied before `model_idx` draws models, so a ratio
    keeps dividing by the baseline's resampled mean when the baseline itself was not drawn. tau and rho are
    the same on every scale (each transform is monotone within a draw) and are computed once.
    """
    xm = np.atleast_2d(np.asarray(xm, dtype=float))
    ym = np.atleast_2d(np.asarray(ym, dtype=float))
    n_boot = xm.shape[0]
    scaled: dict[str, tuple[np.ndarray, np.ndarray]] = {"raw": (xm, ym)}
    if accuracy:
        for how in ("logit", "probit"):
            scaled[how] = (transform(xm / 100.0, how), transform(ym / 100.0, how))
    if base_index is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled["ratio"] = (xm / xm[:, [base_index]], ym / ym[:, [base_index]])
    if model_idx is not None:
        scaled = {k: (np.take_along_axis(a, model_idx, axis=1), np.take_along_axis(b, model_idx, axis=1))
                  for k, (a, b) in scaled.items()}
    rx, ry = scaled["raw"]
    out: dict[str, Any] = {
        "n_boot": int(n_boot), "confidence": confidence,
        "kendall_tau": _interval(kendall_tau_b_rows(rx, ry), n_boot, confidence),
        "spearman_rho": _interval(spearman_rows(rx, ry), n_boot, confidence),
        "fits": {},
    }
    for how, (a, b) in scaled.items():
        fits = fit_rows(a, b)
        out["fits"][how] = {"slope": _interval(fits["slope"], n_boot, confidence),
                            "r2": _interval(fits["r2"], n_boot, confidence)}
    return out
