"""Tests of modekit.analysis.stats."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from modekit.analysis import stats

STRATA = {"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0]}  # means 2, 3; variances 1, 2


def same_evidence(got, want):
    """Evidence equality with NaN equal to NaN (the dataclass's == says NaN != NaN)."""
    for field, value in want.to_dict().items():
        other = got.to_dict()[field]
        assert other == value or (isinstance(value, float) and math.isnan(value) and math.isnan(other)), field
    return True


def test_decide_is_strict_at_the_threshold_inclusive_at_the_rope_and_refuses_nan():
    """Kills stats.x_decide__mutmut_9 / _10 (an interval touching the threshold counted as excluding it),
    _27 / _28 (an interval touching threshold +- rope not counted as inside), _3 (`or`: one finite end
    is enough) and _6 / _7 (the "inconclusive" label misspelt)."""
    assert stats.decide(0.0, 1.0, 0.0) == "inconclusive"
    assert stats.decide(-1.0, 0.0, 0.0) == "inconclusive"
    assert stats.decide(-0.5, 0.25, 0.0, rope=0.5) == "equivalent"
    assert stats.decide(-0.25, 0.5, 0.0, rope=0.5) == "equivalent"
    assert stats.decide(0.5, float("nan"), 0.0) == "inconclusive"


def test_judge_with_fewer_than_two_values():
    """Kills stats.x_judge__mutmut_6 / _7 (n = 2 treated as too few), _8 / _9 / _11 / _12 / _13 (the
    n < 2 effect: None, NaN for one value, or float(None) / float("XXnanXX")), and _15 - _34 / _36 /
    _37 / _39 / _40 / _44 / _45 (the fields of that Evidence: None, dropped, misspelt or float(None))."""
    one = stats.judge([0.25])
    assert (one.verdict, one.effect, one.n) == ("inconclusive", 0.25, 1) and isinstance(one.test, str)
    assert all(math.isnan(value) for value in (one.ci_low, one.ci_high, one.p, one.detectable))
    none = stats.judge([])
    assert none.verdict == "inconclusive" and math.isnan(none.effect) and none.n == 0
    two = stats.judge([1.0, 1.5])
    assert two.n == 2 and math.isfinite(two.ci_low) and math.isfinite(two.ci_high)


def test_judge_defaults_threshold_p_and_detectable_effect():
    """Kills stats.x_judge__mutmut_1 (default threshold 1), _60 (no test description),
    x__t_evidence__mutmut_26 (p of effect + threshold), _49 (detectable reported for a decided claim)
    and _50 (detectable (t + t) / se instead of * se)."""
    values = [1.0, 1.2, 1.4, 1.6]
    se = math.sqrt(0.2 / 3) / 2
    assert same_evidence(stats.judge(values), stats.judge(values, 0.0))
    evidence = stats.judge(values, 1.0)
    assert evidence.p == pytest.approx(scipy_stats.t.sf(0.3 / se, 3))
    assert evidence.verdict == "inconclusive" and isinstance(evidence.test, str)
    assert evidence.detectable == pytest.approx((scipy_stats.t.ppf(0.975, 3) + scipy_stats.t.ppf(0.8, 3)) * se)
    assert math.isnan(stats.judge(values, 0.0).detectable)  # reproduced: nothing left to detect


def test_judge_without_spread_is_inconclusive_with_no_p():
    """Identical values give a zero-width interval, which proves nothing (docs/method.md §8): the
    verdict is inconclusive and p undefined, whichever side of the threshold the value lies."""
    same = [0.5, 0.5, 0.5]
    for threshold, direction in ((0.0, 1), (2.0, 1), (0.0, -1), (0.5, 1)):
        evidence = stats.judge(same, threshold, direction)
        assert evidence.verdict == "inconclusive" and np.isnan(evidence.p) and evidence.effect == 0.5
        assert (evidence.ci_low, evidence.ci_high) == (0.5, 0.5)


def test_judge_drops_missing_values_like_nan():
    """Kills stats.x__finite__mutmut_3 / _5 (no float cast: None is no longer read as NaN and dropped)."""
    assert same_evidence(stats.judge([1.0, None, 2.0, float("nan"), 4.0]), stats.judge([1.0, 2.0, 4.0]))


def test_judge_across_is_the_stratified_t_interval():
    """Kills stats.x_judge_across__mutmut_71 / _73 / _75 / _76 (Var = sum_d s_d^2 / n_d / D^2 wrong),
    _82 / _85 - _93 / _99 (Welch-Satterthwaite df wrong or replaced by n - D) and _21 / _23 / _24
    (several datasets, each with two or more runs, judged "inconclusive" without an interval)."""
    parts = np.array([1 / 3, 2 / 2]) / 4
    se = math.sqrt(parts.sum())
    df = parts.sum() ** 2 / (parts[0] ** 2 / 2 + parts[1] ** 2 / 1)
    half = scipy_stats.t.ppf(0.975, df) * se
    evidence = stats.judge_across(STRATA, 0.0)
    assert evidence.effect == pytest.approx(2.5) and evidence.n == 5
    assert (evidence.ci_low, evidence.ci_high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    assert evidence.p == pytest.approx(scipy_stats.t.sf(2.5 / se, df))
    assert stats.judge_across({"a": [1.0, 2.0], "b": [2.0, 4.0]}, -10.0).verdict == "reproduced"


def test_judge_across_defaults_and_single_dataset():
    """Kills stats.x_judge_across__mutmut_1 / _2 (default threshold 1 or direction 2: p doubles its t)
    and _7 - _15 (one non-empty dataset not judged with the caller's threshold, direction and rope)."""
    assert same_evidence(stats.judge_across(STRATA), stats.judge_across(STRATA, 0.0, 1))
    tight = [0.001, -0.001, 0.0005, -0.0005, 0.0]
    args = (0.0002, -1, 0.005)
    assert same_evidence(stats.judge_across({"a": tight, "empty": []}, *args), stats.judge(tight, *args))
    assert stats.judge(tight, *args).verdict == "equivalent"


def test_judge_across_with_a_dataset_of_one_run_or_none():
    """Kills stats.x_judge_across__mutmut_20 (`not samples and ...`: a one-run dataset gets a NaN
    interval with p = 0), _25 / _26 / _28 - _31 (that effect: None, NaN, float(None) / "XXnanXX") and
    _33 - _52 / _54 / _55 / _57 / _58 / _60 / _63 / _64 (the fields of that Evidence)."""
    short = stats.judge_across({"a": [1.0], "b": [2.0, 4.0]})
    assert (short.verdict, short.effect, short.n) == ("inconclusive", 2.0, 3) and isinstance(short.test, str)
    assert all(math.isnan(value) for value in (short.ci_low, short.ci_high, short.p, short.detectable))
    empty = stats.judge_across({})
    assert empty.verdict == "inconclusive" and math.isnan(empty.effect) and empty.n == 0


def test_judge_across_without_spread_and_with_a_rope():
    """Kills stats.x_judge_across__mutmut_83 / _98 (Welch df computed at se = 0: 0 / 0), _100
    (float(None) for its n - D) and _108 (the rope not passed on)."""
    assert stats.judge_across({"a": [1.0, 1.0], "b": [1.0, 1.0]}, 0.0).verdict == "inconclusive"
    tight = {"a": [0.001, -0.001, 0.0], "b": [0.0005, -0.0005, 0.0]}
    assert stats.judge_across(tight, 0.0, rope=0.05).verdict == "equivalent"


def test_inverted_u_gain_with_one_seed_uses_its_own_validation_and_names_its_series():
    """Kills stats.x_inverted_u_gain__mutmut_32 / _34 (one seed: "the other seeds" are none, so the
    seed's own validation must choose) and _49 - _59 (the returned series' names)."""
    population = pd.DataFrame(
        {"alpha": [0.0, 0.1, 1.0, 10.0], "seed": 0, "val_accuracy": [0.8, 0.7, 0.9, 0.85], "test_accuracy": [0.6, 0.7, 0.8, 0.5]}
    )
    gains, chosen = stats.inverted_u_gain(population)
    assert chosen.to_dict() == {0: 1.0} and gains.to_dict() == {0: pytest.approx(0.8 - 0.5)}
    assert (gains.name, chosen.name) == ("gain", "interior_alpha")


def test_gaps_to_each_other_method_are_per_seed_and_per_method():
    per_seed = pd.DataFrame({"svd": [0.9, 0.8], "sum": [0.5, 0.7], "avg": [0.6, 0.4]})
    gaps = stats.gaps_to_each_other(per_seed, "svd", ["sum", "avg"])
    assert list(gaps) == ["svd - sum", "svd - avg"]
    np.testing.assert_allclose(gaps["svd - sum"].to_numpy(), [0.4, 0.1])
    np.testing.assert_allclose(gaps["svd - avg"].to_numpy(), [0.3, 0.4])


def test_domain_gains_keep_the_order_of_appearance():
    """Kills stats.x_domain_gains__mutmut_5 / _10 (groupby sorted: domains and datasets re-ordered)."""
    chosen = pd.DataFrame(
        [("z", "text", "MoE", 0, 0.5), ("z", "text", "MoDE", 0, 0.6), ("b", "tabular", "MoE", 0, 0.7),
         ("b", "tabular", "MoDE", 0, 0.6), ("a", "tabular", "MoE", 0, 0.7), ("a", "tabular", "MoDE", 0, 0.8)],
        columns=["dataset", "domain", "model", "seed", "test_accuracy"],
    )  # fmt: skip
    gains = stats.domain_gains(chosen)
    assert list(gains) == ["text", "tabular"] and list(gains["tabular"]) == ["b", "a"]


def population(rows):
    return pd.DataFrame(rows, columns=["alpha", "seed", "val_accuracy", "test_accuracy", "cosine_similarity"])


POPULATION = population(
    [
        # alpha 0 (MoE), two interior alphas, the largest alpha
        (0.0, 0, 0.80, 0.70, 0.1), (0.0, 1, 0.80, 0.72, 0.2),
        (0.1, 0, 0.90, 0.80, 0.5), (0.1, 1, 0.92, 0.78, 0.6),
        (1.0, 0, 0.85, 0.90, 0.8), (1.0, 1, 0.85, 0.91, 0.8),
        (10.0, 0, 0.70, 0.75, 0.99), (10.0, 1, 0.70, 0.60, 0.97),
    ]
)  # fmt: skip


def test_sweet_spot_is_chosen_on_validation_not_test():
    assert stats.sweet_spot(POPULATION) == 0.1  # alpha 1.0 has the best test accuracy, 0.1 the best validation
    assert stats.sweet_spot(POPULATION, among=[1.0, 10.0]) == 1.0


def test_inverted_u_gain_is_cross_fitted_per_seed():
    gains, chosen = stats.inverted_u_gain(POPULATION)
    # seed 0 is judged with alphas chosen on seed 1's validation (interior 0.1, end 0), and vice versa
    assert chosen.to_dict() == {0: 0.1, 1: 0.1}
    np.testing.assert_allclose(gains.loc[[0, 1]].to_numpy(), [0.80 - 0.70, 0.78 - 0.72])


def test_inverted_u_gain_does_not_select_on_the_judged_seed():
    """Seed 1's own validation would pick alpha 1.0; it is judged with seed 0's choice."""
    population = POPULATION.copy()
    population.loc[(population.alpha == 1.0) & (population.seed == 1), "val_accuracy"] = 0.99
    _, chosen = stats.inverted_u_gain(population)
    assert chosen[1] == 0.1 and chosen[0] == 1.0


def test_collapse_similarity_is_taken_at_the_largest_alpha():
    assert stats.collapse_similarity(POPULATION).to_dict() == {0: 0.99, 1: 0.97}


def test_paired_difference_pairs_by_seed_and_drops_unpaired():
    table = pd.DataFrame({"model": ["MoE", "MoE", "MoE", "MoDE", "MoDE"], "seed": [0, 1, 2, 1, 0], "score": [1.0, 2.0, 3.0, 2.5, 0.5]})
    difference = stats.paired_difference(table, "score")
    assert difference.to_dict() == {0: -0.5, 1: 0.5}  # seed 2 has no MoDE run


def test_own_domain_accuracy_follows_the_matching():
    probing_table = pd.DataFrame(
        {
            "expert": [0, 0, 1, 1],
            "domain": [0, 1, 0, 1],
            "own": [True, False, False, True],
            "accuracy": [0.9, 0.4, 0.3, 0.8],
        }
    )
    # sub-task 0 went to expert 1, sub-task 1 to expert 0
    np.testing.assert_allclose(stats.own_domain_accuracy(probing_table, [1, 0]), [0.8, 0.9])


def test_benefit_preserved():
    assert stats.benefit_preserved(0.85, 0.80, 0.90) == pytest.approx(50.0)
    assert stats.benefit_preserved(0.90, 0.80, 0.90) == pytest.approx(100.0)
    assert np.isnan(stats.benefit_preserved(0.9, 0.8, 0.8))


def test_benefit_contrast_and_the_ratio_of_means_with_its_fieller_interval():
    student, dense, moe = np.array([0.85, 0.86, 0.84]), np.array([0.80, 0.80, 0.80]), np.array([0.90, 0.91, 0.89])
    # (S - D) - 0.5 (M - D)
    np.testing.assert_allclose(stats.benefit_contrast(student, dense, moe), [0.0, 0.005, -0.005], atol=1e-12)
    ratio, low, high = stats.fieller_ratio(student - dense, moe - dense)
    assert ratio == pytest.approx(0.15 / 0.30) and low < ratio < high
    # the ratio of means where a per-seed ratio explodes (a seed whose MoE - dense gap is near 0)
    ratio, low, high = stats.fieller_ratio([0.05, 0.05, 0.02, 0.05, 0.05], [0.10, 0.10, 0.001, 0.10, 0.10])
    assert ratio == pytest.approx(0.22 / 0.401)
    assert stats.fieller_ratio([0.1, -0.1, 0.1], [0.1, -0.1, 0.05])[1:] == (float("-inf"), float("inf")), "denominator not away from 0"


def test_holm_adjusts_step_down_and_keeps_nan():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])


def test_domain_gains_pair_the_chosen_runs_per_dataset():
    chosen = pd.DataFrame(
        [
            ("a", "tabular", "MoE", 0, 0.70), ("a", "tabular", "MoDE", 0, 0.75),
            ("a", "tabular", "MoE", 1, 0.72), ("a", "tabular", "MoDE", 1, 0.71),
            ("b", "tabular", "MoE", 0, 0.50), ("b", "tabular", "MoDE", 0, 0.55),
            ("t", "text", "MoE", 0, 0.80), ("t", "text", "MoDE", 0, 0.70),
        ],
        columns=["dataset", "domain", "model", "seed", "test_accuracy"],
    )  # fmt: skip
    gains = stats.domain_gains(chosen)
    assert {d: list(g) for d, g in gains.items()} == {"tabular": ["a", "b"], "text": ["t"]}
    assert gains["tabular"]["a"].round(4).to_dict() == {0: 0.05, 1: -0.01}
    assert gains["text"]["t"].round(4).to_dict() == {0: -0.1}


def test_ceiling_and_undertrained_datasets_are_kept_out_of_verdicts():
    summary = pd.DataFrame({"dataset": ["wine", "digits8x8", "letter"], "at_ceiling": [True, False, False], "undertrained": [0, 3, 0]})
    eligible, excluded = stats.eligible_datasets(summary)
    assert eligible == ["letter"]
    assert "ceiling" in excluded["wine"] and "undertrained" in excluded["digits8x8"]


def test_t_interval_is_the_interval_of_the_verdicts():
    values = [0.01, 0.03, -0.02, 0.04, 0.02]
    low, high = stats.t_interval(values)
    evidence = stats.judge(values)
    assert (low, high) == pytest.approx((evidence.ci_low, evidence.ci_high))
    assert low < np.mean(values) < high
    assert all(np.isnan(stats.t_interval([0.1])))


def test_specialisation_is_own_minus_cross_accuracy():
    table = pd.DataFrame(
        {"expert": [0, 0, 1, 1], "domain": [0, 1, 0, 1], "own": [True, False, False, True], "accuracy": [0.9, 0.6, 0.5, 0.95]}
    )
    assert stats.specialisation(table) == pytest.approx((0.9 + 0.95) / 2 - (0.6 + 0.5) / 2)
    merged = table.assign(accuracy=0.8)
    assert stats.specialisation(merged) == 0.0


def _fieller_by_search(a, b, level=0.95):
    """The Fieller set {r: (mean a - r mean b)^2 <= t^2 var(mean a - r mean b)} found on a fine grid."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    t2 = scipy_stats.t.ppf(0.5 + level / 2, n - 1) ** 2
    grid = np.linspace(-5, 5, 200_001)
    inside = [(a.mean() - r * b.mean()) ** 2 <= t2 * np.var(a - r * b, ddof=1) / n for r in grid]
    kept = grid[np.array(inside)]
    return kept.min(), kept.max()


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_fieller_interval_is_the_set_of_ratios_the_t_test_keeps(level):
    a = [0.05, 0.04, 0.06, 0.03, 0.05]
    b = [0.10, 0.09, 0.11, 0.10, 0.12]
    ratio, low, high = stats.fieller_ratio(a, b, level)
    assert ratio == pytest.approx(np.mean(a) / np.mean(b))
    expected = _fieller_by_search(a, b, level)
    assert (low, high) == pytest.approx(expected, abs=1e-4)


def test_fieller_with_one_pair_or_a_zero_denominator():
    ratio, low, high = stats.fieller_ratio([0.1], [0.2])
    assert ratio == pytest.approx(0.5) and np.isnan(low) and np.isnan(high)
    assert np.isnan(stats.fieller_ratio([0.1, 0.2], [0.1, -0.1])[0])


def _evidence(verdict, p):
    return stats.Evidence(verdict, 0.0, 0.0, 0.0, p, 5, "t", float("nan"))


def test_every_set_needs_every_set_and_contradicts_only_after_holm():
    verdict, p = stats.every_set({})
    assert verdict == "inconclusive" and np.isnan(p), "no set: nothing shown"
    assert stats.every_set({"a": _evidence("reproduced", 0.01), "b": _evidence("reproduced", 0.02)}) == ("reproduced", 0.02)
    assert stats.every_set({"a": _evidence("reproduced", 0.01), "b": _evidence("inconclusive", 0.3)}) == ("inconclusive", 0.3)
    assert stats.every_set({"a": _evidence("equivalent", 0.4), "b": _evidence("equivalent", 0.6)}) == ("equivalent", 0.6)
    # contradicted on one set: its p against the paper is 1 - p; Holm over 2 sets needs 2 (1 - p) < 0.025
    assert stats.every_set({"a": _evidence("contradicted", 0.995), "b": _evidence("reproduced", 0.01)})[0] == "contradicted"
    assert stats.every_set({"a": _evidence("contradicted", 0.98), "b": _evidence("reproduced", 0.01)})[0] == "inconclusive"
    assert stats.every_set({"a": _evidence("contradicted", 0.98)})[0] == "contradicted", "one set: no correction"
    verdict, p = stats.every_set({"a": _evidence("reproduced", 0.01), "b": _evidence("inconclusive", float("nan"))})
    assert verdict == "inconclusive" and np.isnan(p)


def test_holm_caps_at_one_and_handles_ties_and_a_single_value():
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(stats.holm([0.01, 0.01]), [0.02, 0.02])
    np.testing.assert_allclose(stats.holm([0.2]), [0.2])
    assert np.isnan(stats.holm([np.nan, np.nan])).all() and len(stats.holm([])) == 0


def test_benefit_contrast_with_another_share():
    np.testing.assert_allclose(stats.benefit_contrast([0.9], [0.8], [1.0], share=0.25), [0.1 - 0.25 * 0.2])


def test_fieller_edge_cases_two_pairs_and_an_insignificant_denominator():
    ratio, low, high = stats.fieller_ratio([0.05, 0.06], [0.10, 0.11])
    assert np.isfinite(low) and np.isfinite(high) and low < ratio < high, "two pairs already give an interval"
    # the numerator clearly away from 0, the denominator not: the set of ratios is unbounded
    assert stats.fieller_ratio([0.1, 0.11, 0.09, 0.1, 0.1], [0.1, -0.1, 0.05, -0.05, 0.02])[1:] == (float("-inf"), float("inf"))


def test_holm_caps_a_product_between_one_and_two():
    np.testing.assert_allclose(stats.holm([0.7, 0.9]), [1.0, 1.0])
    np.testing.assert_allclose(stats.holm([0.3, 0.02, 0.01]), [0.3, 0.04, 0.03])


def test_identical_values_whose_mean_rounds_are_still_no_spread():
    """0.1 three times has a standard deviation of about 1e-17 in floating point: still no test."""
    assert stats.judge([0.1, 0.1, 0.1]).verdict == "inconclusive"
    assert stats.judge_across({"a": [0.1] * 3, "b": [0.2] * 2}).verdict == "inconclusive"
    ratio, low, high = stats.fieller_ratio([0.3] * 3, [0.7] * 3)
    assert low == pytest.approx(ratio) == pytest.approx(high), "identical pairs: a point, not an unbounded set"


def test_t_interval_of_two_values_is_finite():
    """Two values are enough for a t interval (n - 1 = 1 degree of freedom): mean +- t_{0.975,1} s / sqrt(2)."""
    low, high = stats.t_interval([1.0, 2.0])
    half = scipy_stats.t.ppf(0.975, 1) * np.std([1.0, 2.0], ddof=1) / math.sqrt(2)
    assert (low, high) == pytest.approx((1.5 - half, 1.5 + half))


def test_judge_names_its_test_and_is_quiet_without_values():
    """Evidence names the test behind it: the n < 2 case, the t interval and the no-spread case
    (which keeps n and has no detectable effect); no values at all gives NaN without a warning."""
    assert stats.judge([0.2]).test == "t interval (n < 2)"
    assert stats.judge([0.1, 0.2, 0.4]).test == "one-sample t interval over runs"
    flat = stats.judge([0.3, 0.3, 0.3])
    assert flat.test == "one-sample t interval over runs (no spread: no test)"
    assert flat.n == 3 and math.isnan(flat.detectable) and math.isnan(flat.p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = stats.judge([])
        across = stats.judge_across({"a": [], "b": []})
    assert (empty.verdict, empty.n) == ("inconclusive", 0) and math.isnan(empty.effect)
    assert across.verdict == "inconclusive" and math.isnan(across.effect)


def test_judge_across_names_the_dataset_with_too_few_runs():
    short = stats.judge_across({"a": [1.0, 2.0, 3.0], "b": [2.0]})
    assert short.test == "stratified t interval over 2 datasets (Welch-Satterthwaite df): a dataset has n < 2"
    flat = stats.judge_across({"a": [1.0, 1.0], "b": [2.0, 2.0]})
    assert flat.test == "stratified t interval over 2 datasets (Welch-Satterthwaite df) (no spread: no test)"
    assert flat.n == 4 and math.isnan(flat.detectable)


def test_holm_takes_integer_p_values_as_floats():
    """p-values of exactly 0 and 1 given as integers: adjusted as floats, no cast warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjusted = stats.holm([1, 0])
    assert adjusted.dtype == float
    np.testing.assert_array_equal(adjusted, [1.0, 0.0])


def test_a_spread_that_underflows_is_no_spread():
    """Values that differ by 1e-200 have a variance that underflows to 0: no standard error, so the
    no-spread evidence (a point interval at the mean, no p), not a division by zero."""
    tiny = stats.judge([0.0, 0.0, 1e-200])
    assert (tiny.verdict, tiny.n, tiny.test) == ("inconclusive", 3, "one-sample t interval over runs (no spread: no test)")
    assert tiny.effect == tiny.ci_low == tiny.ci_high == pytest.approx(1e-200 / 3, rel=1e-12)
    assert math.isnan(tiny.p) and math.isnan(tiny.detectable)
    flat = stats.judge_across({"a": [1.0, 1.0], "b": [2.0, 2.0, 2.0]})
    assert (flat.effect, flat.ci_low, flat.ci_high, flat.n) == (1.5, 1.5, 1.5, 5)


def test_fieller_of_identical_small_pairs_is_a_point_interval():
    """Identical pairs with small means (0.001 / 0.007): the discriminant is 0 up to rounding at
    any scale, so the interval is the point 1/7, not (-inf, inf)."""
    ratio, low, high = stats.fieller_ratio([0.001] * 3, [0.007] * 3)
    assert ratio == low == high == pytest.approx(1 / 7)
