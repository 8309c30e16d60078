"""Every statistic against hand-computed values and scipy on small cases, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from imagenot.analysis import stats


def test_kendall_and_spearman_by_hand_without_ties() -> None:
    # pairs: 6, one discordant (2,3) -> tau = (5 - 1) / 6; d = [0, 1, 1, 0] -> rho = 1 - 6 * 2 / (4 * 15)
    r = stats.rank_correlation([1, 2, 3, 4], [1, 3, 2, 4])
    assert r is not None
    assert r["kendall_tau"] == pytest.approx(4 / 6)
    assert r["spearman_rho"] == pytest.approx(0.8)
    assert r["n"] == 4
    assert r["kendall_p"] == pytest.approx(sps.kendalltau([1, 2, 3, 4], [1, 3, 2, 4]).pvalue)


def test_kendall_tau_b_by_hand_with_ties() -> None:
    # x = 1,2,2,3 ; y = 1,2,3,3: concordant 4, discordant 0, one pair tied in x, one tied in y
    # tau_b = 4 / sqrt((6 - 1) * (6 - 1)) = 0.8 (tau-a would be 4/6)
    x, y = [1, 2, 2, 3], [1, 2, 3, 3]
    r = stats.rank_correlation(x, y)
    assert r is not None
    assert r["kendall_tau"] == pytest.approx(0.8)
    assert r["kendall_tau"] == pytest.approx(sps.kendalltau(x, y, variant="b").statistic)
    assert r["spearman_rho"] == pytest.approx(sps.spearmanr(x, y).statistic)
    # Spearman with ties = Pearson on average ranks: ranks x 1,2.5,2.5,4 ; y 1,2,3.5,3.5
    assert r["spearman_rho"] == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3.5, 3.5])[0, 1])


def test_rank_correlation_omitted_when_too_few_or_constant() -> None:
    assert stats.rank_correlation([1, 2], [2, 1]) is None
    assert stats.rank_correlation([1, 2, 3], [5, 5, 5]) is None
    assert stats.rank_correlation([], []) is None


def test_linear_fit_by_hand() -> None:
    # mean x 1.5, mean y 1.25; Sxy 4.5, Sxx 5, Syy 4.75 -> slope 0.9, intercept -0.1, R^2 = 4.5^2 / (5 * 4.75)
    fit = stats.linear_fit([0, 1, 2, 3], [0, 1, 1, 3])
    assert fit is not None
    assert fit["slope"] == pytest.approx(0.9)
    assert fit["intercept"] == pytest.approx(-0.1)
    assert fit["r2"] == pytest.approx(20.25 / 23.75)
    ref = sps.linregress([0, 1, 2, 3], [0, 1, 1, 3])
    assert fit["slope_stderr"] == pytest.approx(ref.stderr)
    assert fit["p"] == pytest.approx(ref.pvalue)
    exact = stats.linear_fit([0, 1, 2], [1, 3, 5])
    assert exact is not None and exact["slope"] == pytest.approx(2) and exact["r2"] == pytest.approx(1)


def test_linear_fit_needs_three_points_and_spread_in_x() -> None:
    assert stats.linear_fit([1, 2], [1, 2]) is None
    assert stats.linear_fit([1, 1, 1], [1, 2, 3]) is None
    flat = stats.linear_fit([1, 2, 3], [4, 4, 4])
    assert flat is not None and flat["slope"] == 0 and flat["r2"] == 0


def test_pearson_matches_scipy() -> None:
    x, y = [1.0, 2.0, 4.0, 7.0], [2.0, 1.0, 5.0, 6.0]
    r = stats.pearson(x, y)
    assert r is not None
    assert r["r"] == pytest.approx(sps.pearsonr(x, y).statistic)
    assert r["r2"] == pytest.approx(r["r"] ** 2)


def test_logit_probit_and_scale_conversion() -> None:
    assert stats.transform([0.5, 0.75], "logit") == pytest.approx([0.0, math.log(3)])
    assert stats.transform([0.975], "probit")[0] == pytest.approx(1.959964, abs=1e-5)
    clipped = stats.transform([0.0, 1.0], "logit")
    assert np.all(np.isfinite(clipped)) and clipped[0] == pytest.approx(-clipped[1])
    assert stats.to_fraction([50.0, 75.0], "percent") == pytest.approx([0.5, 0.75])
    assert stats.to_fraction([0.5], "fraction") == pytest.approx([0.5])
    with pytest.raises(ValueError):
        stats.to_fraction([1.0], "ratio")
    with pytest.raises(ValueError):
        stats.transform([0.5], "arcsine")


def test_detect_scale() -> None:
    assert stats.detect_scale([56.5, 85.8], "imagenet_top1")[0] == "percent"
    assert stats.detect_scale([0.565, 0.858], "acc")[0] == "fraction"
    assert stats.detect_scale([1.0, 1.5], "imagenot_ratio_to_alexnet")[0] == "ratio"
    assert stats.detect_scale([float("nan"), 0.4], "x")[0] == "fraction"


def test_pairwise_order_lists_flips_and_ties() -> None:
    models = ["a", "b", "c", "d"]
    x = [1.0, 2.0, 3.0, 4.0]
    y = [1.0, 3.0, 2.0, 2.0]  # b/c flip, b/d flip, c/d tied on y
    out = stats.pairwise_order(models, x, y)
    assert out["pairs"] == 6
    assert (out["concordant"], out["discordant"], out["ties"]) == (3, 2, 1)
    assert out["agreement"] == pytest.approx(0.5)
    flipped = {(f["better_on_x"], f["better_on_y"]) for f in out["flips"]}
    assert flipped == {("c", "b"), ("d", "b")}
    flip = next(f for f in out["flips"] if f["better_on_x"] == "c")
    assert flip["x"] == [3.0, 2.0] and flip["y"] == [2.0, 3.0]


def test_ranks_relative_steps_summary_by_hand() -> None:
    assert list(stats.ranks([90.0, 80.0, 90.0, 70.0])) == [1, 3, 1, 4]
    assert stats.relative([50.0, 60.0, 75.0], 50.0) == pytest.approx([1.0, 1.2, 1.5])
    assert stats.steps([50.0, 60.0, 45.0]) == pytest.approx([0.2, -0.25])
    s = stats.summarize([1.0, 2.0, 3.0])
    assert s == {"mean": 2.0, "sd": pytest.approx(1.0), "n": 3}
    single = stats.summarize([4.0])
    assert single["mean"] == 4.0 and math.isnan(single["sd"])


def test_vectorised_tau_spearman_and_fit_match_scipy_row_by_row() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(200, 7)).astype(float)  # small range: many ties
    y = rng.integers(0, 4, size=(200, 7)).astype(float)
    x[0] = 2.0  # a constant row
    tau = stats.kendall_tau_b_rows(x, y)
    rho = stats.spearman_rows(x, y)
    fits = stats.fit_rows(x, y)
    assert math.isnan(tau[0]) and math.isnan(rho[0]) and math.isnan(fits["slope"][0])
    for i in range(1, 200):
        if np.all(y[i] == y[i][0]):
            assert math.isnan(tau[i])
            continue
        assert tau[i] == pytest.approx(sps.kendalltau(x[i], y[i], variant="b").statistic, abs=1e-12)
        assert rho[i] == pytest.approx(sps.spearmanr(x[i], y[i]).statistic, abs=1e-12)
        ref = sps.linregress(x[i], y[i])
        assert fits["slope"][i] == pytest.approx(ref.slope, abs=1e-12)
        assert fits["intercept"][i] == pytest.approx(ref.intercept, abs=1e-12)
        assert fits["r2"][i] == pytest.approx(ref.rvalue ** 2, abs=1e-12)


def test_bootstrap_models_on_a_perfect_ranking_and_reproducibility() -> None:
    x = [[60.0], [70.0], [75.0], [80.0], [85.0]]
    y = [[30.0], [38.0], [40.0], [47.0], [50.0]]
    a = stats.bootstrap(x, y, resample="models", n_boot=500, seed=7)
    b = stats.bootstrap(x, y, resample="models", n_boot=500, seed=7)
    assert a == b
    assert a["kendall_tau"]["low"] == 1.0 and a["kendall_tau"]["high"] == 1.0
    # every valid resample is a subset of a monotone set, so R^2 is positive and at most 1
    assert 0 < a["r2"]["low"] <= a["r2"]["high"] <= 1.0
    # resamples drawing one model only are undefined and dropped: 5 ** -4 of them on average
    assert a["kendall_tau"]["valid"] <= 500
    c = stats.bootstrap(x, y, resample="models", n_boot=500, seed=8)
    assert c["slope"] != a["slope"]


def test_bootstrap_seeds_reflects_training_noise_only() -> None:
    x = [[60.0, 60.0], [70.0, 70.0], [80.0, 80.0]]
    y = [[30.0, 30.0], [40.0, 40.0], [50.0, 50.0]]
    fixed = stats.bootstrap(x, y, resample="seeds", n_boot=200, seed=0)
    assert fixed["slope"]["low"] == pytest.approx(1.0) and fixed["slope"]["high"] == pytest.approx(1.0)
    assert fixed["slope"]["sd"] == pytest.approx(0.0, abs=1e-12)
    noisy_y = [[28.0, 32.0], [38.0, 42.0], [48.0, 52.0]]
    noisy = stats.bootstrap(x, noisy_y, resample="seeds", n_boot=400, seed=0)
    # the mean of two seeds moves by at most 2 points, so the slope stays within (50-2 - (30+2)) / 20 ...
    assert 0.8 - 1e-9 <= noisy["slope"]["low"] < 1.0 < noisy["slope"]["high"] <= 1.2 + 1e-9
    assert noisy["kendall_tau"]["low"] == 1.0  # a 2-point wobble cannot reorder models 10 points apart


def test_bootstrap_transform_uses_resampled_baseline() -> None:
    x = [[50.0], [60.0], [75.0], [80.0]]
    y = [[20.0], [24.0], [30.0], [33.0]]
    ratio = stats.bootstrap(x, y, transform=lambda a, b: (a / a[:, [0]], b / b[:, [0]]),
                            resample="seeds", n_boot=100, seed=0)
    direct = stats.linear_fit([1.0, 1.2, 1.5, 1.6], [1.0, 1.2, 1.5, 1.65])
    assert direct is not None
    assert ratio["slope"]["low"] == pytest.approx(direct["slope"])
    assert ratio["r2"]["high"] == pytest.approx(direct["r2"])


def test_bootstrap_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="resample"):
        stats.bootstrap([[1.0]], [[1.0]], resample="everything")
    with pytest.raises(ValueError, match="one entry per model"):
        stats.bootstrap([[1.0]], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap([[1.0]], [[1.0]], confidence=1.5)
