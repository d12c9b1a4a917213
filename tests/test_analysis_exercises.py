"""Every exercise check passes the right answer and fails a plausible wrong one."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modekit.analysis import exercises
from modekit.analysis.stats import ONE_SIDED, t_interval
from modekit.functional import sum_normalised_alpha

RNG = np.random.default_rng(0)


def test_chain_rule_wants_the_experts_own_gate_weight():
    upstream, g = RNG.normal(size=4), np.array([0.3, 0.7])
    exercises.chain_rule(g[1] * upstream, g[1], upstream)
    with pytest.raises(AssertionError, match="by hand"):
        exercises.chain_rule(g[0] * upstream, g[1], upstream)  # the other expert's weight


def test_low_weight_share_is_the_gradient_not_the_head_count():
    weights = RNG.uniform(size=200)
    norms = weights * RNG.uniform(0.5, 1.5, 200)  # the task gradient scales with g_0(x)
    low = weights <= np.quantile(weights, 0.1)
    exercises.low_weight_share(norms[low].sum() / norms.sum(), weights, norms)
    with pytest.raises(AssertionError, match="gradient mass"):
        exercises.low_weight_share(low.mean(), weights, norms)  # the share of samples, not of the gradient
    with pytest.raises(AssertionError, match="not less"):  # a gradient that ignores the gate: no narrow vision
        flat = np.ones(200)
        exercises.low_weight_share(flat[low].sum() / flat.sum(), weights, flat)


def test_trend_with_alpha_fails_the_wrong_trend():
    alphas = [0.1, 1.0, 10.0]
    for parts, truth in (([0.05, 0.3, 0.8], "grows"), ([0.8, 0.3, 0.05], "shrinks"), ([0.22, 0.12, 0.52], "neither")):
        exercises.trend_with_alpha(alphas, parts, truth)
        for wrong in set(exercises.TRENDS) - {truth}:
            with pytest.raises(AssertionError, match=f"it {truth}, not '{wrong}'"):
                exercises.trend_with_alpha(alphas, parts, wrong)
    with pytest.raises(AssertionError, match="three increasing"):
        exercises.trend_with_alpha([10.0, 1.0, 0.1], [0.05, 0.3, 0.8], "grows")
    with pytest.raises(AssertionError, match="say one of"):
        exercises.trend_with_alpha(alphas, [0.05, 0.3, 0.8], "up")


def test_seed_interval_wants_the_t_interval_over_the_asked_seeds():
    gains = [0.01, -0.02, 0.03]
    exercises.seed_interval(gains, t_interval(gains), seeds=3)
    normal = np.mean(gains) + np.array([-1, 1]) * 1.96 * np.std(gains, ddof=1) / np.sqrt(3)
    with pytest.raises(AssertionError, match="t interval"):
        exercises.seed_interval(gains, tuple(normal), seeds=3)  # a normal interval for 3 seeds is far too narrow
    with pytest.raises(AssertionError, match="3 seeds"):
        exercises.seed_interval(gains[:2], t_interval(gains[:2]), seeds=3)


def test_converted_alpha_and_its_inverse():
    ours = 32 * 8 * 7 / 2 * 1e-3
    exercises.converted_alpha(ours, 1e-3, 8, 32)
    assert np.isclose(sum_normalised_alpha(ours, 8, 32), 1e-3)
    with pytest.raises(AssertionError, match="our alpha"):
        exercises.converted_alpha(32 * 8 * 7 * 1e-3, 1e-3, 8, 32)  # ordered pairs counted twice


def test_smallest_alpha_above_is_the_smallest():
    cosine = {0.0: 0.2, 0.1: 0.5, 1.0: 0.93, 10.0: 0.99}
    exercises.smallest_alpha_above(1.0, cosine, 0.9)
    with pytest.raises(AssertionError, match="smallest alpha"):
        exercises.smallest_alpha_above(10.0, cosine, 0.9)


def test_selection_bias_is_in_sample_minus_cross_fitted():
    exercises.selection_bias(0.004, 0.010, 0.006)
    with pytest.raises(AssertionError, match="cross-fitted"):
        exercises.selection_bias(0.016, 0.010, 0.006)  # added instead of subtracted


def test_placed_differently_is_a_share():
    first, second = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])
    exercises.placed_differently(0.5, first, second)
    with pytest.raises(AssertionError, match="placed differently"):
        exercises.placed_differently(2, first, second)  # a count, not a share


def test_null_rate_counts_reproduced_and_holds_the_level():
    verdicts = ["reproduced"] * 50 + ["inconclusive"] * 1950
    exercises.null_rate(0.025, verdicts, ONE_SIDED)
    with pytest.raises(AssertionError, match="share of"):
        exercises.null_rate(0.975, verdicts, ONE_SIDED)  # the share of "inconclusive"
    with pytest.raises(AssertionError, match="twice the rule's level"):
        exercises.null_rate(0.1, ["reproduced"] * 200 + ["inconclusive"] * 1800, ONE_SIDED)
    assert scipy_stats.binomtest(50, 2000).proportion_ci().low < ONE_SIDED  # the right answer is consistent with the level
