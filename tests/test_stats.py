"""The claims' deciding quantities (modekit.stats) on small frames whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from modekit import stats


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


def test_best_other_gap_takes_the_best_of_the_others():
    per_seed = pd.DataFrame({"svd": [0.9, 0.8], "sum": [0.7, 0.85], "avg": [0.85, 0.6]}, index=[0, 1])
    np.testing.assert_allclose(stats.best_other_gap(per_seed, "svd", ["sum", "avg"]).to_numpy(), [0.05, -0.05])


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
