"""Verdicts from a results table, anyone's: the scorecard's own code applied to the tables that
`compare` and `ones` write (`python -m modekit judge FILE --claim ...`). Notebook 05 and 04 judge
their claims through the same functions, so a file and a report give the same rows.

- `mode_beats_moe`: per domain, MoDE - MoE paired by seed on every eligible dataset (settings fixed in
  advance: MoDE at the paper's alpha, MoE at its default; a table with one MoDE and one MoE setting
  per dataset is compared as it is), a row per dataset and the summary of each domain.
- `svd_best_gathering`, `ones_benefit_kept`: from the OneS table, the SVD student after KD against
  each other method, and the benefit contrast (S - D) - 0.5 (M - D) with the ratio of means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modekit.analysis import claims
from modekit.analysis.stats import benefit_contrast, domain_gains, eligible_datasets, fieller_ratio, gaps_to_each_other
from modekit.errors import UserError
from modekit.experiments.compare import fixed_runs, summarise_comparison
from modekit.ones.experiment import no_benefit_warning
from modekit.profiles import PAPER_ALPHA_POINT

COMPARISON_COLUMNS = ("dataset", "domain", "model", "alpha", "weight_decay", "seed", "val_accuracy", "test_accuracy")
ONES_COLUMNS = ("seed", "teacher", "student", "stage", "test_accuracy")
CLAIMS = {"mode_beats_moe": COMPARISON_COLUMNS, "svd_best_gathering": ONES_COLUMNS, "ones_benefit_kept": ONES_COLUMNS}
OTHER_METHODS = ("sum", "avg", "topk")


def primary_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The MoE and MoDE runs the primary comparison pairs: one setting of each per dataset as given,
    else the settings fixed in advance (compare.fixed_runs)."""
    parts = []
    for dataset, part in results.groupby("dataset", sort=False):
        if set(part.model) != {"MoE", "MoDE"}:
            raise UserError(f"dataset={dataset!r} is not allowed: it needs both MoE and MoDE rows (it has {sorted(set(part.model))})")
        if (part.groupby("model")[["alpha", "weight_decay"]].nunique() == 1).all(axis=None):  # one setting of each model
            parts.append(part)
            continue
        fixed = fixed_runs(part)
        if not (fixed.model == "MoDE").any() or not (fixed.model == "MoE").any():
            alpha = PAPER_ALPHA_POINT.get(part.domain.iloc[0])
            raise UserError(
                f"dataset={dataset!r} is not allowed: with several settings per model the primary comparison needs MoDE at the "
                f"paper's alpha ({alpha}) and MoE at weight_decay 0; give those runs, or one setting of each model"
            )
        parts.append(fixed)
    return pd.concat(parts) if parts else results.iloc[:0]


def mode_beats_moe(results: pd.DataFrame, domains=None) -> list[dict]:
    """The scorecard rows of "MoDE >= MoE" per domain: each domain's summary then its datasets. A
    dataset at the ceiling or with a run still improving at its last epoch gives no verdict (the
    note says why), when the table has the columns to tell (best_epoch, epochs_run)."""
    pairs = results[results.model.isin(["MoE", "MoDE"])]
    if "train_seconds" not in pairs.columns:  # a user's table need not say how long its runs took
        pairs = pairs.assign(train_seconds=float("nan"))
    if {"best_epoch", "epochs_run"} <= set(pairs.columns):
        eligible, excluded = eligible_datasets(summarise_comparison(pairs))
    else:
        eligible, excluded = list(pairs.dataset.unique()), {}
    gains = domain_gains(primary_runs(pairs[pairs.dataset.isin(eligible)]))
    rows = []
    for domain in domains or list(dict.fromkeys(pairs.domain)):
        names = list(dict.fromkeys(pairs[pairs.domain == domain].dataset))
        left_out = [f"excluded {d}: {why}" for d, why in excluded.items() if d in names]
        note = "; ".join([", ".join(gains.get(domain, {})) or "no eligible dataset", *left_out])
        rows += claims.judge_claim(f"mode_beats_moe_{domain}", gains.get(domain, {}), note=note)
    return rows


def _per_seed(results: pd.DataFrame) -> pd.DataFrame:
    return results.pivot_table(index="seed", columns=["teacher", "student", "stage"], values="test_accuracy")


def svd_best_gathering(results: pd.DataFrame, note: str = "") -> list[dict]:
    """The SVD student after KD minus each other gathering method after KD, per seed (MoE teacher)."""
    after_kd = _per_seed(results).xs(("MoE", "after KD"), level=("teacher", "stage"), axis=1)
    missing = [m for m in ("svd", *OTHER_METHODS) if m not in after_kd.columns]
    if missing:
        raise UserError(f"methods={missing!r} are missing from the OneS table: svd_best_gathering needs svd, sum, avg and topk after KD")
    return claims.judge_claim("svd_best_gathering", gaps_to_each_other(after_kd, "svd", OTHER_METHODS), note=note or "after KD")


def ones_benefit_kept(results: pd.DataFrame, note: str = "") -> list[dict]:
    """The benefit contrast of the SVD student after KD, judged only where the MoE beats the dense
    model (otherwise no values, and the note says so); the ratio of means and its Fieller interval
    go into the note."""
    per_seed = _per_seed(results)
    needed = [("-", "dense from scratch", "trained"), ("MoE", "teacher", "trained"), ("MoE", "svd", "after KD")]
    missing = [" / ".join(column) for column in needed if column not in per_seed.columns]
    if missing:
        raise UserError(f"rows={missing!r} are missing from the OneS table: ones_benefit_kept needs the dense model, the MoE and svd")
    dense, moe, student = (pd.concat([per_seed[c] for c in needed], axis=1).dropna()[c] for c in needed)  # seeds with all three
    warning = no_benefit_warning(results)
    if warning is not None:
        return claims.judge_claim("ones_benefit_kept", [], note=warning)
    ratio, low, high = fieller_ratio(student - dense, moe - dense)
    kept = f"SVD student after KD; benefit kept {100 * ratio:.1f}% (Fieller 95% interval [{100 * low:.1f}, {100 * high:.1f}])"
    return claims.judge_claim("ones_benefit_kept", benefit_contrast(student, dense, moe), note="; ".join(filter(None, [note, kept])))


def read_table(path, claim: str) -> pd.DataFrame:
    """A results CSV for `claim`, checked: it exists, parses, has the claim's columns, and its
    accuracies are numbers in [0, 1]."""
    if claim not in CLAIMS:
        raise UserError(f"claim={claim!r} is not allowed: choose one of {', '.join(CLAIMS)}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"FILE={str(path)!r} is not a file: give the CSV that compare or ones wrote (results.csv)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(f"FILE={str(path)!r} is not a readable CSV ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    missing = [c for c in CLAIMS[claim] if c not in table.columns]
    if missing:
        raise UserError(f"FILE={str(path)!r} lacks the column(s) {', '.join(missing)}: --claim {claim} needs {', '.join(CLAIMS[claim])}")
    accuracy = pd.to_numeric(table["test_accuracy"], errors="coerce")
    if accuracy.isna().any() or not accuracy.between(0, 1).all():
        row = int(np.flatnonzero(accuracy.isna().to_numpy() | ~accuracy.between(0, 1).to_numpy())[0])
        raise UserError(f"FILE={str(path)!r}: test_accuracy {table['test_accuracy'].iloc[row]} at row {row} is not a number in [0, 1]")
    if claim == "mode_beats_moe" and not table.model.isin(["MoE", "MoDE"]).any():
        raise UserError(f"FILE={str(path)!r} has no MoE or MoDE rows (column model): nothing to compare")
    return table


def judge_file(path, claim: str) -> pd.DataFrame:
    """The scorecard rows that `claim` gives on the table in `path` (summary rows first)."""
    table = read_table(path, claim)
    judged = {"mode_beats_moe": mode_beats_moe, "svd_best_gathering": svd_best_gathering, "ones_benefit_kept": ones_benefit_kept}
    return pd.DataFrame(judged[claim](table), columns=claims.COLUMNS)


def format_verdicts(rows: pd.DataFrame, title: str) -> str:
    """The rows as `judge` prints them: the scorecard's shown columns, numbers to 4 decimals."""
    shown = rows[[*claims.SHOWN, "note"]].copy()
    for column in ("threshold", "effect", "ci_low", "ci_high", "detectable"):
        shown[column] = shown[column].map(lambda v: f"{v:+.4f}" if v == v else "-")
    shown["p"] = shown["p"].map(lambda v: f"{v:.3g}" if v == v else "-")
    return f"{title} (rule: docs/method.md §8; effects in the claim's units)\n\n" + shown.to_string(index=False)
