"""The claims' deciding quantities and the verdict rule, as tested functions on tidy frames.

Notebooks compute their numbers here, never only in a cell (docs/method.md §6, §8). Every
function takes the tables the experiments return (one row per model) and gives the per-replicate
values a verdict is judged from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

RULE = (
    "reproduced: mean - threshold > one standard error (n >= 2 seeds/cases); not reproduced: mean - threshold < "
    "-one standard error; inconclusive: otherwise"
)


def verdict(values, threshold: float = 0.0) -> tuple[str, float, float, int]:
    """(verdict, mean, std, n) of per-replicate values against a threshold, by RULE."""
    values = np.asarray([v for v in values if v == v], dtype=float)
    n = len(values)
    if n == 0:
        return "inconclusive", float("nan"), float("nan"), 0
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        return "inconclusive", mean, std, n
    standard_error = std / math.sqrt(n)
    if mean - threshold > standard_error:
        return "reproduced", mean, std, n
    if mean - threshold < -standard_error:
        return "not reproduced", mean, std, n
    return "inconclusive", mean, std, n


def paired_difference(
    table: pd.DataFrame, value: str, by="seed", treated: str = "MoDE", control: str = "MoE", label: str = "model"
) -> pd.Series:
    """treated - control of `value`, paired on `by` (rows whose pair is missing are dropped)."""
    wide = table.pivot_table(index=by, columns=label, values=value)
    return (wide[treated] - wide[control]).dropna()


def sweet_spot(population: pd.DataFrame, among: Sequence[float] | None = None) -> float:
    """The alpha with the best validation accuracy (mean over seeds), optionally among some alphas."""
    part = population if among is None else population[population.alpha.isin(among)]
    return float(part.groupby("alpha").val_accuracy.mean().idxmax())


def inverted_u_gain(population: pd.DataFrame) -> tuple[pd.Series, float]:
    """Per seed: test accuracy at the best interior alpha (chosen on mean validation accuracy) minus
    the better of alpha = 0 and the largest alpha. Returns (gains by seed, the interior alpha)."""
    alphas = sorted(population.alpha.unique())
    best = sweet_spot(population, alphas[1:-1])
    by_seed = population.pivot_table(index="seed", columns="alpha", values="test_accuracy")
    return by_seed[best] - np.maximum(by_seed[alphas[0]], by_seed[alphas[-1]]), best


def collapse_similarity(population: pd.DataFrame) -> pd.Series:
    """Per seed: the experts' cosine similarity at the largest alpha."""
    largest = population[population.alpha == population.alpha.max()]
    return largest.set_index("seed").cosine_similarity


def own_domain_accuracy(probing_table: pd.DataFrame, matched: Sequence[int]) -> np.ndarray:
    """Per sub-task t: own-DS accuracy of the expert matched to t (probing.matched_experts)."""
    own = probing_table[probing_table.own].set_index("expert").accuracy
    return np.array([own[expert] for expert in matched], dtype=float)


def benefit_preserved(student: float, dense: float, moe: float) -> float:
    """% of MoE benefit preserved: 100 * (S_student - S_dense) / (S_MoE - S_dense); NaN without a gap."""
    gap = moe - dense
    return float("nan") if gap == 0 else 100.0 * (student - dense) / gap


def best_other_gap(per_seed: pd.DataFrame, method: str, others: Sequence[str]) -> pd.Series:
    """Per seed: a method's accuracy minus the best of the other methods' (columns are methods)."""
    return per_seed[method] - per_seed[list(others)].max(axis=1)


def domain_gains(results: pd.DataFrame, chosen_alpha: pd.Series) -> dict[str, pd.Series]:
    """Per domain: MoDE (at each dataset's chosen alpha) - MoE test accuracy, paired by seed, one
    value per dataset x seed (index (dataset, seed))."""
    keep = (results.model == "MoE") | ((results.model == "MoDE") & (results.alpha == results.dataset.map(chosen_alpha)))
    part = results[keep]
    gains = {}
    for domain, group in part.groupby("domain", sort=False):
        gains[domain] = paired_difference(group, "test_accuracy", by=["dataset", "seed"])
    return gains
