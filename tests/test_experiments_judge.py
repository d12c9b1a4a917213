"""Tests of modekit.experiments.judge and `python -m modekit judge`: the scorecard's rule on anyone's table."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from modekit.analysis import claims
from modekit.errors import UserError
from modekit.experiments import judge


def _comparison(rng, gains: dict, seeds: int = 5, settings: bool = True) -> pd.DataFrame:
    """A compare-like table: per dataset (name -> (domain, true MoDE - MoE gain)), MoE at weight decays
    0 and 0.01 and MoDE at the paper's alpha and another, paired by seed."""
    rows = []
    for dataset, (domain, gain) in gains.items():
        paper = {"tabular": 0.1, "image": 10.0, "text": 1.0}[domain]
        for seed in range(seeds):
            base = 0.8 + rng.normal(0, 0.01)
            common = {"dataset": dataset, "domain": domain, "seed": seed, "epochs_run": 20, "best_epoch": 10}
            rows.append({**common, "model": "MoE", "alpha": 0.0, "weight_decay": 0.0, "val_accuracy": base,
                         "test_accuracy": base + rng.normal(0, 0.002)})  # fmt: skip
            rows.append({**common, "model": "MoDE", "alpha": paper, "weight_decay": 0.0, "val_accuracy": base,
                         "test_accuracy": base + gain + rng.normal(0, 0.002)})  # fmt: skip
            if settings:
                rows.append({**common, "model": "MoE", "alpha": 0.0, "weight_decay": 0.01, "val_accuracy": base + 0.05,
                             "test_accuracy": base + 0.05})  # fmt: skip
                rows.append({**common, "model": "MoDE", "alpha": 3 * paper, "weight_decay": 0.0, "val_accuracy": base - 0.05,
                             "test_accuracy": base - 0.05})  # fmt: skip
            rows.append({**common, "model": "dense (same compute)", "alpha": 0.0, "weight_decay": 0.0, "val_accuracy": 0.5,
                         "test_accuracy": 0.5})  # fmt: skip
    return pd.DataFrame(rows)


def test_judge_gives_the_scorecards_rows_for_a_comparison_file(tmp_path):
    table = _comparison(np.random.default_rng(0), {"a": ("tabular", 0.02), "b": ("tabular", 0.03), "c": ("text", 0.0)})
    path = tmp_path / "comparison_results.csv"
    table.to_csv(path, index=False)
    rows = judge.judge_file(path, "mode_beats_moe")
    assert list(zip(rows.claim, rows.scope)) == [("mode_beats_moe_tabular", "all"), ("mode_beats_moe_tabular", "a"),
                                                 ("mode_beats_moe_tabular", "b"), ("mode_beats_moe_text", "all"),
                                                 ("mode_beats_moe_text", "c")]  # fmt: skip
    assert list(rows.verdict) == ["reproduced", "reproduced", "reproduced", "equivalent", "equivalent"]
    # the fixed settings were paired (the tuned MoE at weight decay 0.01 would make every gain negative)
    assert rows.effect.iloc[0] == pytest.approx(0.025, abs=0.003)
    # what a report's notebook 05 records: the same function, so the same rows through the scorecard
    claims.save(judge.mode_beats_moe(table), tmp_path / "05_reproduction")
    card = claims.scorecard(tmp_path)
    recorded = card[card.claim.str.startswith("mode_beats_moe") & (card.verdict != "not run")]
    for column in ("scope", "verdict", "effect", "ci_low", "ci_high", "p", "n"):
        assert list(recorded[column]) == pytest.approx(list(rows[column]), nan_ok=True) if rows[column].dtype.kind == "f" \
            else list(recorded[column]) == list(rows[column])  # fmt: skip


def test_one_setting_per_model_is_compared_as_it_is():
    rng = np.random.default_rng(1)
    table = _comparison(rng, {"a": ("image", -0.03)}, settings=False)
    table.loc[table.model == "MoDE", "alpha"] = 0.5  # not the paper's alpha: nothing to choose, compared directly
    (summary, row) = judge.mode_beats_moe(table)
    assert summary["verdict"] == row["verdict"] == "contradicted" and row["n"] == 5


def test_an_undertrained_dataset_gives_no_verdict_and_says_why():
    table = _comparison(np.random.default_rng(2), {"a": ("tabular", 0.02), "b": ("tabular", 0.02)})
    table.loc[table.dataset == "b", "best_epoch"] = 20  # best at the last epoch: still improving
    summary = judge.mode_beats_moe(table)[0]
    assert "excluded b" in summary["note"] and "undertrained" in summary["note"]


def _ones(rng, svd_gain: float, seeds: int = 5) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        dense = 0.7 + rng.normal(0, 0.005)
        moe = dense + 0.1 + rng.normal(0, 0.005)
        rows += [{"seed": seed, "teacher": "-", "student": "dense from scratch", "stage": "trained", "test_accuracy": dense},
                 {"seed": seed, "teacher": "MoE", "student": "teacher", "stage": "trained", "test_accuracy": moe}]  # fmt: skip
        for method, value in (("svd", 0.75 + svd_gain), ("sum", 0.75), ("avg", 0.75), ("topk", 0.75)):
            rows.append({"seed": seed, "teacher": "MoE", "student": method, "stage": "after KD",
                         "test_accuracy": value + rng.normal(0, 0.005)})  # fmt: skip
    return pd.DataFrame(rows)


def test_judge_on_a_ones_table(tmp_path):
    path = tmp_path / "results.csv"
    _ones(np.random.default_rng(3), 0.05).to_csv(path, index=False)
    best = judge.judge_file(path, "svd_best_gathering")
    assert list(best.scope) == ["all", "svd - sum", "svd - avg", "svd - topk"] and best.verdict.iloc[0] == "reproduced"
    kept = judge.judge_file(path, "ones_benefit_kept")
    assert kept.verdict.iloc[0] == "reproduced" and "Fieller" in kept.note.iloc[0]  # 0.8 of the benefit kept


@pytest.mark.parametrize(
    "content, claim, message",
    [
        (None, "mode_beats_moe", "is not a file"),
        ("a,b\n1,2\n", "mode_beats_moe", "lacks the column(s) dataset, domain, model"),
        ("", "mode_beats_moe", "is not a readable CSV"),
        (
            "dataset,domain,model,alpha,weight_decay,seed,val_accuracy,test_accuracy\nd,tabular,MoE,0,0,0,0.8,1.7\n",
            "mode_beats_moe",
            "test_accuracy 1.7 at row 0 is not a number in [0, 1]",
        ),
        (
            "dataset,domain,model,alpha,weight_decay,seed,val_accuracy,test_accuracy\nd,tabular,dense,0,0,0,0.8,0.7\n",
            "mode_beats_moe",
            "has no MoE or MoDE rows",
        ),
        ("seed,teacher,student,stage,test_accuracy\n0,MoE,svd,after KD,0.7\n", "ones_benefit_kept", "are missing from the OneS table"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, content, claim, message):
    path = tmp_path / "results.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        judge.judge_file(path, claim)


def test_several_settings_without_the_fixed_ones_are_refused():
    table = _comparison(np.random.default_rng(4), {"a": ("tabular", 0.02)})
    table = table[~((table.model == "MoDE") & (table.alpha == 0.1))]  # the paper's alpha missing, two MoE settings left
    table = pd.concat([table, table[table.model == "MoDE"].assign(alpha=0.9)])
    with pytest.raises(UserError, match=r"dataset='a' is not allowed: .* MoDE at the paper's alpha \(0.1\)"):
        judge.mode_beats_moe(table)


def test_the_judge_command_prints_rows_and_json(tmp_path):
    path = tmp_path / "comparison_results.csv"
    _comparison(np.random.default_rng(5), {"a": ("tabular", 0.02)}).to_csv(path, index=False)
    run = subprocess.run([sys.executable, "-m", "modekit", "judge", str(path), "--claim", "mode_beats_moe", "--json"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [r["scope"] for r in rows] == ["all", "a"] and rows[0]["verdict"] == "reproduced"
    text = subprocess.run([sys.executable, "-m", "modekit", "judge", str(path), "--claim", "mode_beats_moe"], capture_output=True,
                          text=True).stdout  # fmt: skip
    assert "mode_beats_moe_tabular" in text and "reproduced" in text
    bad = subprocess.run([sys.executable, "-m", "modekit", "judge", str(tmp_path / "nope.csv"), "--claim", "mode_beats_moe"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is not a file" in bad.stderr


def test_a_dataset_without_both_models_or_with_two_settings_of_one_is_refused():
    table = _comparison(np.random.default_rng(6), {"a": ("tabular", 0.02)}, settings=False)
    with pytest.raises(UserError, match=r"dataset='a' is not allowed: it needs both MoE and MoDE rows \(it has \['MoE'\]\)"):
        judge.primary_runs(table[table.model == "MoE"])
    doubled = pd.concat([table, table[table.model == "MoDE"].assign(alpha=0.5, weight_decay=0.01)])  # MoDE at two settings
    doubled = doubled[~((doubled.model == "MoDE") & (doubled.alpha == 0.1))].assign()
    doubled = pd.concat([doubled, doubled[doubled.model == "MoDE"].assign(weight_decay=0.02)])
    with pytest.raises(UserError, match="MoDE at the paper's alpha"):
        judge.primary_runs(doubled[doubled.model.isin(["MoE", "MoDE"])])
