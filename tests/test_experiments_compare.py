"""MoE vs MoDE comparison: alpha chosen on validation, paired differences, baselines."""

import numpy as np
import pandas as pd
import pytest
import torch

import modekit as mk
from modekit.experiments.compare import choose_alpha, compare_moe_mode, summarise_comparison, sweet_spots


def run_row(model, alpha, seed, val, test, epochs=(5, 10), dataset="d", weight_decay=0.0):
    """One row of compare_moe_mode's results table (only the columns the summaries read)."""
    best_epoch, epochs_run = epochs
    return {"dataset": dataset, "domain": "tabular", "model": model, "alpha": alpha, "weight_decay": weight_decay, "seed": seed,
            "val_accuracy": val, "test_accuracy": test, "train_seconds": 1, "best_epoch": best_epoch, "epochs_run": epochs_run}  # fmt: skip


def test_alpha_is_chosen_on_validation_never_test():
    rows = []
    for seed in (0, 1):
        rows += [run_row("MoE", 0.0, seed, 0.8, 0.80), run_row("MoDE", 0.1, seed, 0.9, 0.70), run_row("MoDE", 1.0, seed, 0.7, 0.99)]
    results = pd.DataFrame(rows)
    assert choose_alpha(results)["d"] == 0.1
    summary = summarise_comparison(results).iloc[0]
    assert summary.diff_mean == pytest.approx(-0.10) and (summary.wins, summary.ties, summary.losses) == (0, 0, 2)
    assert not summary.at_ceiling and summary.undertrained == 0
    assert sweet_spots(results).iloc[0].paper_alpha == "0.01-0.1"


def test_compare_runs_models_and_baselines_paired_by_seed():
    data = mk.load("subtasks", n_samples=400)
    results = compare_moe_mode(
        [data], seeds=[0, 1], alphas=[0.1], train_config=mk.TrainConfig(epochs=2, progress=False), baselines=True, progress=False
    )
    counts = results.groupby("model").size().to_dict()
    assert counts == {"MoE": 2, "MoDE": 2, "dense (same compute)": 2, "dense (same params)": 2}
    assert list(results.split_seed.unique()) == [data.metadata["seed"]]  # a Dataset object keeps its one split
    assert set(results[results.model == "dense (same compute)"].experts) == {1}
    summary = summarise_comparison(results)
    assert summary.iloc[0].seeds == 2 and 0 < summary.iloc[0].dense_params_mean <= 1
    with pytest.raises(ValueError, match="MoDE alphas must be > 0"):
        compare_moe_mode([data], seeds=[0], alphas=[0.0])


def test_subsample_train_is_stratified_and_keeps_other_splits():
    data = mk.load("digits")
    small = data.subsample_train(300)
    assert len(small.y_train) == 300 and small.sizes["test"] == data.sizes["test"]
    assert small.y_train.bincount().min() >= 25
    fewer = data.subsample("val", 100, seed=1)
    assert len(fewer.y_val) == 100 and torch.equal(fewer.y_train, data.y_train) and torch.equal(fewer.y_test, data.y_test)
    with pytest.raises(ValueError, match="split='dev' is not allowed"):
        data.subsample("dev", 10)
    with pytest.raises(mk.UserError, match="n=0 is not allowed"):
        data.subsample("val", 0)


def test_moe_gets_the_same_tuning_budget_and_each_seed_its_own_split():
    results = compare_moe_mode(["wine"], seeds=[0, 1], alphas=[0.01, 0.1], train_config=mk.TrainConfig(epochs=2, progress=False),
                               progress=False)  # fmt: skip
    mode, moe = results[results.model == "MoDE"], results[results.model == "MoE"]
    assert sorted(mode.alpha.unique()) == [0.01, 0.1] and sorted(moe.weight_decay.unique()) == [0.0, 1e-3]
    assert len(mode) == len(moe) == 4 and set(results.split_seed) == {0, 1}
    first, second = mk.load("wine", seed=0), mk.load("wine", seed=1)
    assert not torch.equal(first.y_test, second.y_test)  # the seeds' splits differ
    summary = summarise_comparison(results)
    assert summary.iloc[0].moe_weight_decay in (0.0, 1e-3) and summary.iloc[0].paper_alpha == 0.1


def test_ties_are_ties_and_the_ceiling_is_flagged():
    rows = [
        run_row(model, alpha, seed, 1.0, 1.0, epochs=(3, 3), dataset="w")
        for seed in range(3)
        for model, alpha in (("MoE", 0.0), ("MoDE", 0.1))
    ]
    summary = summarise_comparison(pd.DataFrame(rows)).iloc[0]
    assert (summary.wins, summary.ties, summary.losses) == (0, 3, 0)
    assert summary.at_ceiling and summary.undertrained == 6


def test_paired_gains_fixed_in_advance_and_tuned_on_validation():
    """Primary: MoDE at the paper's alpha vs MoE at its default, neither chosen on the tested seeds;
    secondary: each tuned on validation. The fixed comparison never meets a tuned MoE (an untuned
    MoDE against a tuned MoE was biased against MoDE)."""
    from modekit.experiments.compare import fixed_runs, paired_gains

    rows = []
    for seed in (0, 1, 2):
        rows += [
            {"dataset": "d", "domain": "tabular", "seed": seed, "model": "MoE", "alpha": 0.0, "weight_decay": 0.0,
             "val_accuracy": 0.8, "test_accuracy": 0.80 + 0.01 * seed},
            {"dataset": "d", "domain": "tabular", "seed": seed, "model": "MoE", "alpha": 0.0, "weight_decay": 0.01,
             "val_accuracy": 0.85, "test_accuracy": 0.82 + 0.01 * seed},
            {"dataset": "d", "domain": "tabular", "seed": seed, "model": "MoDE", "alpha": 0.3, "weight_decay": 0.0,
             "val_accuracy": 0.9, "test_accuracy": 0.85 + 0.01 * seed},
            {"dataset": "d", "domain": "tabular", "seed": seed, "model": "MoDE", "alpha": 0.1, "weight_decay": 0.0,
             "val_accuracy": 0.7, "test_accuracy": 0.79 + 0.01 * seed},
        ]  # fmt: skip
    table = pd.DataFrame(rows)
    fixed = fixed_runs(table)
    assert set(zip(fixed.model, fixed.alpha, fixed.weight_decay)) == {("MoE", 0.0, 0.0), ("MoDE", 0.1, 0.0)}  # paper's tabular alpha 0.1
    gains = paired_gains(table)
    tuned = gains[gains.comparison == "tuned on validation"].set_index("seed").gain
    primary = gains[gains.comparison == "fixed in advance"].set_index("seed").gain
    np.testing.assert_allclose(tuned.values, [0.03, 0.03, 0.03])
    np.testing.assert_allclose(primary.values, [-0.01, -0.01, -0.01])
    table["best_epoch"], table["epochs_run"], table["train_seconds"] = 1, 5, 1.0
    from modekit.experiments.compare import summarise_comparison

    summary = summarise_comparison(table)
    assert summary.improved_share_at_paper_alpha.item() == 0.0 and summary.diff_at_paper_alpha.item() == pytest.approx(-0.01)


def _two_runs(shift: float, spread: float = 0.01, seeds: int = 5):
    """Two results tables of one dataset: the second's MoDE test accuracies moved by `shift`."""
    rng = np.random.default_rng(0)
    first, second = [], []
    for seed in range(seeds):
        noise = rng.normal(0, spread, 3)
        first += [run_row("MoE", 0.0, seed, 0.8, 0.80 + noise[0]), run_row("MoDE", 0.1, seed, 0.9, 0.82 + noise[1]),
                  run_row("dense (same compute)", 0.0, seed, 0.7, 0.75 + noise[2])]  # fmt: skip
        second += [run_row("MoE", 0.0, seed, 0.8, 0.80 + noise[0] + 0.1 * spread), run_row("MoDE", 0.1, seed, 0.9, 0.82 + noise[1] + shift),
                   run_row("dense (same compute)", 0.0, seed, 0.7, 0.75 + noise[2])]  # fmt: skip
    return pd.DataFrame(first), pd.DataFrame(second)


def test_runs_agree_within_the_seed_spread_and_not_beyond():
    from modekit.experiments.compare import runs_agree

    same = runs_agree(*_two_runs(shift=0.005)).set_index("model")
    assert same.within_spread.all() and same.loc["MoDE", "difference"] == pytest.approx(0.005)
    assert same.loc["dense (same compute)", "difference"] == 0.0
    moved = runs_agree(*_two_runs(shift=0.05)).set_index("model")  # five times the seed spread
    assert not moved.loc["MoDE", "within_spread"] and moved.loc[["MoE", "dense (same compute)"], "within_spread"].all()
    first, second = _two_runs(shift=0.0)
    with pytest.raises(mk.UserError, match=r"runs=\[\('d', 'dense \(same compute\)'\)\] is not allowed"):
        runs_agree(first, second[second.model != "dense (same compute)"])


def test_a_unit_still_improving_at_its_last_epoch_is_rerun_with_twice_the_epochs():
    """The budget rule, fixed before the run: MoE and MoDE of a dataset-seed rerun together with 2x,
    then 4x the epochs while a run is best at its last epoch, at most `doublings` times."""
    from modekit.experiments.compare import compare_moe_mode, still_improving

    data = mk.load("wine")
    config = mk.TrainConfig(epochs=1, patience=0, progress=False)  # one epoch: always best at its last
    table = compare_moe_mode([data], seeds=[0], model_config=mk.ModelConfig(n_experts=2, expert_hidden=8, expert_out=8),
                             train_config=config, alphas=[0.1], progress=False, doublings=2)  # fmt: skip
    (reruns,), (budget,) = set(table.budget_reruns), set(table.budget_epochs)
    assert reruns >= 1 and budget == 2**reruns, "one epoch is always best at its last: at least one rerun"
    assert (table.epochs_run <= budget).all()
    assert reruns == 2 or not still_improving(table, budget), "stopped early only when no run was still improving"
    assert not still_improving(table.assign(best_epoch=0), budget) and still_improving(table.assign(best_epoch=budget), budget)
    once = compare_moe_mode([data], seeds=[0], model_config=mk.ModelConfig(n_experts=2, expert_hidden=8, expert_out=8),
                            train_config=config, alphas=[0.1], progress=False)  # fmt: skip
    assert set(once.budget_epochs) == {1} and set(once.budget_reruns) == {0}, "no doublings: the budget as given"


def test_the_ceiling_is_decided_on_validation_not_test():
    from modekit.experiments.compare import summarise_comparison

    rows = []
    for seed in range(3):
        for model, alpha in (("MoE", 0.0), ("MoDE", 0.1)):
            rows.append({"dataset": "d", "domain": "tabular", "seed": seed, "model": model, "alpha": alpha, "weight_decay": 0.0,
                         "val_accuracy": 0.999, "test_accuracy": 0.90 + 0.01 * seed, "best_epoch": 3, "epochs_run": 10,
                         "train_seconds": 1.0})  # fmt: skip
    table = pd.DataFrame(rows)
    assert summarise_comparison(table).at_ceiling.item(), "validation at the ceiling: no room, whatever the test set says"
    table["val_accuracy"], table["test_accuracy"] = 0.9, 0.999
    assert not summarise_comparison(table).at_ceiling.item()


def test_the_dense_baselines_are_trained_once_at_the_final_budget():
    from modekit.experiments.compare import compare_moe_mode

    config = mk.TrainConfig(epochs=1, patience=0, progress=False)
    table = compare_moe_mode([mk.load("wine")], seeds=[0], model_config=mk.ModelConfig(n_experts=2, expert_hidden=8, expert_out=8),
                             train_config=config, alphas=[0.1], progress=False, doublings=1, baselines=True)  # fmt: skip
    dense = table[table.model.str.startswith("dense")]
    assert len(dense) == 2 and set(table.budget_epochs) == {2} and (dense.epochs_run == 2).all()


def test_the_summary_table_leads_with_the_fixed_comparison_and_shows_dense_columns_only_when_trained():
    from modekit.experiments.compare import format_summary

    rows = []
    for seed in (0, 1, 2):
        rows += [
            run_row("MoE", 0.0, seed, 0.8, 0.80),
            run_row("MoDE", 0.1, seed, 0.85, 0.82 + 0.01 * seed),
            run_row("MoDE", 1.0, seed, 0.9, 0.85),
        ]
    pairs = pd.DataFrame(rows)
    header, row = format_summary(summarise_comparison(pairs)).splitlines()[:2]
    assert header.index("fixed: MoDE - MoE") < header.index("tuned: MoDE - MoE") and "dense" not in header
    # fixed: MoDE at the paper's alpha 0.1, +3 points; tuned: alpha 1 (best on validation), +5 points; in that order
    assert "+3.00" in row and "+5.00" in row and row.index("+3.00") < row.index("+5.00")
    with_dense = pd.concat([pairs, pd.DataFrame([run_row("dense (same params)", 0.0, s, 0.7, 0.75) for s in (0, 1, 2)])])
    text = format_summary(summarise_comparison(with_dense))
    assert "dense (same params)" in text and "75.00" in text and "dense (same compute)" not in text
