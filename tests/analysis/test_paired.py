"""Per-image statistics against scipy, statsmodels and values worked out by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from imagenot.analysis import paired, stats
from imagenot.stats import accuracy_interval, clopper_pearson


def test_clopper_pearson_matches_the_beta_quantiles() -> None:
    low, high = clopper_pearson(7, 20, 0.95)
    assert low == pytest.approx(sps.beta.ppf(0.025, 7, 14))
    assert high == pytest.approx(sps.beta.ppf(0.975, 8, 13))
    ci = sps.binomtest(7, 20).proportion_ci(confidence_level=0.95, method="exact")
    assert (low, high) == pytest.approx((ci.low, ci.high))
    # k = 0: the lower end is 0 and the upper one solves (1 - p)^n = alpha / 2
    low0, high0 = clopper_pearson(0, 10, 0.95)
    assert low0 == 0.0 and high0 == pytest.approx(1 - 0.025 ** (1 / 10))
    low_n, high_n = clopper_pearson(10, 10, 0.9)
    assert high_n == 1.0 and low_n == pytest.approx(0.05 ** (1 / 10))
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))


def test_accuracy_interval_is_the_same_clopper_pearson_as_a_record() -> None:
    """The audit's accuracy records and the report's intervals come from one implementation."""
    rec = accuracy_interval(7, 20, 0.9)
    assert (rec["ci_low"], rec["ci_high"]) == clopper_pearson(7, 20, 0.9)
    assert rec["accuracy"] == pytest.approx(0.35) and rec["n_test"] == 20 and rec["correct"] == 7
    empty = accuracy_interval(0, 0)
    assert empty["accuracy"] is None and empty["ci_low"] is None and empty["n_test"] == 0


def test_mcnemar_on_a_constructed_table() -> None:
    # 100 images: 50 both right, 9 only a, 2 only b, 39 both wrong
    a = np.array([1] * 50 + [1] * 9 + [0] * 2 + [0] * 39, dtype=bool)
    b = np.array([1] * 50 + [0] * 9 + [1] * 2 + [0] * 39, dtype=bool)
    table = paired.mcnemar_table(a, b)
    assert table.tolist() == [[50, 9], [2, 39]]
    # exact McNemar = two-sided binomial test of 2 successes in 11 at 1/2: 2 * (1 + 11 + 55) / 2^11
    assert paired.mcnemar_p(table) == pytest.approx(2 * 67 / 2048)
    assert paired.mcnemar_p(table) == pytest.approx(sps.binomtest(2, 11, 0.5).pvalue)
    assert paired.mcnemar_p(np.array([[5, 0], [0, 5]])) == 1.0  # no discordant image: no evidence
    # with several seeds an image counts for the model whose seeds get it right more often
    sa = np.array([1.0, 2 / 3, 1 / 3, 0.0, 0.5])
    sb = np.array([1.0, 1 / 3, 2 / 3, 0.0, 0.5])
    assert paired.mcnemar_table(sa, sb).tolist() == [[2, 1], [1, 1]]


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    reject, adjusted = paired.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert reject.tolist() == [True, False, False, True]
    assert paired.holm([])[1].size == 0


def _enumerated_p(x: list[float], y: list[float]) -> float:
    observed = abs(sps.kendalltau(x, y).statistic)
    taus = [abs(sps.kendalltau(x, list(perm)).statistic) for perm in itertools.permutations(y)]
    return sum(t >= observed - 1e-12 for t in taus) / len(taus)


def test_permutation_p_of_tau_for_four_models_by_enumeration() -> None:
    # tau = 4/6: |tau| >= 2/3 for the identity, 3 adjacent swaps and their 4 reverses: 8 of 24 orders
    res = paired.kendall_permutation_p([1, 2, 3, 4], [1, 3, 2, 4], stats.kendall_tau_b_rows)
    assert res is not None and res["exact"] and res["permutations"] == 24
    assert res["p"] == pytest.approx(8 / 24) and res["statistic"] == pytest.approx(4 / 6)
    assert res["p"] == pytest.approx(_enumerated_p([1, 2, 3, 4], [1, 3, 2, 4]))
    # with ties the closed form does not apply; every order is enumerated (tau-b handles the ties)
    x, y = [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0]
    tied = paired.kendall_permutation_p(x, y, stats.kendall_tau_b_rows)
    assert tied is not None and tied["exact"]
    assert tied["p"] == pytest.approx(_enumerated_p(x, y))
    assert tied["statistic"] == pytest.approx(sps.kendalltau(x, y).statistic)
    assert paired.kendall_permutation_p([1, 2], [2, 1], stats.kendall_tau_b_rows) is None


def test_permutation_p_beyond_nine_is_monte_carlo() -> None:
    x = np.arange(11.0)
    res = paired.kendall_permutation_p(x, x, stats.kendall_tau_b_rows, n_perm=2000, seed=1)
    assert res is not None and not res["exact"] and res["permutations"] == 2000
    # a perfect order of 11 is never matched by chance in 2000 draws; the observed order is counted in the
    # upper tail, (0 + 1) / (2000 + 1), and the two-sided p doubles the smaller tail
    assert res["p"] == pytest.approx(2 / 2001)


def test_patterns_and_bootstrap_are_paired() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random((1000, 3)) < [0.5, 0.7, 0.9]
    correct[:, 2] = correct[:, 1]  # two runs right on exactly the same images
    patterns, counts = paired.correctness_patterns(correct)
    assert counts.sum() == 1000 and len({tuple(p) for p in patterns}) == len(patterns) <= 4
    draws = paired.bootstrap_accuracies(correct, 500, np.random.default_rng(1))
    assert draws.shape == (500, 3)
    assert np.array_equal(draws[:, 1], draws[:, 2])  # same images in every draw
    assert draws.mean(axis=0) == pytest.approx(correct.mean(axis=0), abs=0.01)
    assert draws[:, 0].std() == pytest.approx(math.sqrt(0.25 / 1000), rel=0.2)
    wide = rng.random((50, 70)) < 0.5  # more runs than fit in an int64 code
    p_wide, c_wide = paired.correctness_patterns(wide)
    assert c_wide.sum() == 50 and p_wide.shape[1] == 70


def test_paired_bootstrap_of_a_difference_with_a_known_answer() -> None:
    # a right on all 400 images; b wrong on 100 of them and right elsewhere: diff = share of those 100 drawn,
    # Binomial(400, 1/4) / 400, so the interval is the binomial's 2.5% and 97.5% quantiles
    n, k = 400, 100
    a = np.ones(n, dtype=bool)
    b = np.ones(n, dtype=bool)
    b[:k] = False
    draws = paired.bootstrap_accuracies(np.column_stack([a, b]), 4000, np.random.default_rng(2))
    low, high = paired.percentile_ci(draws[:, 0] - draws[:, 1], 0.95)
    assert low == pytest.approx(sps.binom.ppf(0.025, n, 0.25) / n, abs=0.006)
    assert high == pytest.approx(sps.binom.ppf(0.975, n, 0.25) / n, abs=0.006)
    assert float(np.mean(draws[:, 0] - draws[:, 1])) == pytest.approx(0.25, abs=0.003)


def test_min_detectable_difference_has_the_stated_power() -> None:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    mdd = paired.min_detectable_difference(300, 0.8, 0.15, alpha=0.05, power=0.8)
    # unpaired: two accuracies around 80% that far apart are found 80% of the time with 300 images each
    h = 2 * math.asin(math.sqrt(0.8 + mdd["unpaired"] / 2)) - 2 * math.asin(math.sqrt(0.8 - mdd["unpaired"] / 2))
    assert NormalIndPower().power(h, nobs1=300, alpha=0.05, ratio=1.0) == pytest.approx(0.8, abs=0.01)
    # paired: the discordant split that moves accuracy by mdd["paired"] has 80% power on 45 discordant images
    share = 0.5 + mdd["paired"] / (2 * 0.15)
    power = NormalIndPower().power(proportion_effectsize(share, 0.5), nobs1=45, alpha=0.05, ratio=0.0)
    assert power == pytest.approx(0.8, abs=1e-6)
    # four times the images, half the detectable difference
    big = paired.min_detectable_difference(1200, 0.8, 0.15)
    assert big["unpaired"] == pytest.approx(mdd["unpaired"] / 2, rel=0.02)
    assert math.isnan(paired.min_detectable_difference(300, 0.8, None)["paired"])


def test_covering_pairs_drop_implied_relations() -> None:
    order = [("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")]
    assert paired.covering_pairs(order) == [("a", "b"), ("b", "c"), ("a", "d")]
    assert paired.covering_pairs([]) == []
