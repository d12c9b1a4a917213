"""The claims' deciding quantities and the verdict rule, as tested functions on tidy frames.

Notebooks compute their numbers here, never only in a cell (docs/method.md §6, §8). Every
function takes the tables the experiments return (one row per model) and gives the per-replicate
values a verdict is judged from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

# Verdicts (docs/method.md §8). The replicate unit is an independent run (a seed, with its own data
# split where the dataset has no official one). For n replicate values v_i of the deciding quantity:
#   effect = mean(v);  95% CI = effect +- t_{0.975, n-1} s / sqrt(n)   (one-sample t interval)
#   p      = one-sided p-value of the t-test against the threshold, in the claim's direction
#   equivalent    the CI lies inside threshold +- rope (checked first: an effect nobody would act on,
#                 whichever side of the threshold it lies)
#   reproduced    the CI lies beyond the threshold in the paper's direction (one-sided p < 0.025)
#   contradicted  the CI lies beyond the threshold in the other direction
#   inconclusive  otherwise, and whenever the values have no spread (a zero-width interval proves
#                 nothing); `detectable` is the smallest effect this n and spread would detect with
#                 80% power: (t_{0.975, n-1} + t_{0.8, n-1}) s / sqrt(n)
# "On every set" (several datasets, or a method against each other method) is an intersection-union
# test: reproduced only if every set is, contradicted if some set is after Holm's correction over the
# sets, equivalent if every set is; the mean of per-set means with a stratified t interval is shown
# beside it as a description. A "kept" claim is a non-inferiority test: its threshold is -margin.
RULE = (
    "effect = mean over independent runs (seeds; each its own split where the set has no official test set, else "
    "conditional on that test set) with a 95% t interval; equivalent: the interval lies inside the threshold +- the "
    "region of practical equivalence (checked first); reproduced: it excludes the threshold in the paper's direction "
    "(one-sided p < 0.025); contradicted: it excludes it in the other direction; inconclusive: otherwise or with no "
    "spread (with the smallest effect the run could detect). On every set: reproduced only if every set is, "
    "contradicted if one is after Holm; primary claims: Holm over the family, others unadjusted"
)
ONE_SIDED = 0.025  # the one-sided level behind "reproduced" and "contradicted" (the 95% interval's ends)
LEVEL = 0.95
CEILING = 0.995  # mean test accuracy at or above which a dataset leaves no room for an effect
POWER = 0.8
VERDICTS = ("reproduced", "contradicted", "equivalent", "inconclusive")


@dataclass(frozen=True)
class Evidence:
    """What a claim's verdict rests on."""

    verdict: str
    effect: float  # mean of the replicate values (several datasets: mean of per-dataset means)
    ci_low: float
    ci_high: float
    p: float  # one-sided, in the claim's direction
    n: int  # replicates (several datasets: all runs)
    test: str  # how the interval was computed
    detectable: float  # smallest effect detectable with 80% power (NaN unless inconclusive)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _finite(values) -> np.ndarray:
    values = np.asarray(list(values), dtype=float)
    return values[np.isfinite(values)]


def t_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """The one-sample t interval of the mean, mean +- t_{(1+level)/2, n-1} s / sqrt(n), as (low, high).

    The interval every verdict uses (see RULE); plots draw it as error bars. NaN for n < 2."""
    values = _finite(values)
    if len(values) < 2:
        return float("nan"), float("nan")
    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1)) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return float(values.mean()) - half, float(values.mean()) + half


def decide(ci_low: float, ci_high: float, threshold: float, direction: int = 1, rope: float | None = None) -> str:
    """The verdict of an interval against a threshold (direction +1: the paper says 'above'). The
    region of practical equivalence is checked first: an interval inside it is "equivalent" even
    when it also excludes the threshold."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "inconclusive"
    if rope is not None and threshold - rope <= ci_low and ci_high <= threshold + rope:
        return "equivalent"
    above, below = ci_low > threshold, ci_high < threshold
    if (above and direction > 0) or (below and direction < 0):
        return "reproduced"
    if above or below:
        return "contradicted"
    return "inconclusive"


def judge(values, threshold: float = 0.0, direction: int = 1, rope: float | None = None) -> Evidence:
    """Evidence for a claim from independent replicate values (see RULE)."""
    values = _finite(values)
    n = len(values)
    if n < 2:
        effect = float(values.mean()) if n else float("nan")
        return Evidence("inconclusive", effect, float("nan"), float("nan"), float("nan"), n, "t interval (n < 2)", float("nan"))
    if np.ptp(values) == 0:  # identical values: tested on the values, since their mean's rounding leaves a tiny se
        return _no_spread(float(values.mean()), n, "one-sample t interval over runs")
    se = float(values.std(ddof=1)) / math.sqrt(n)
    return _t_evidence(float(values.mean()), se, n - 1, n, threshold, direction, rope, "one-sample t interval over runs")


def _no_spread(effect: float, n: int, test: str) -> Evidence:
    """Identical values: a zero-width interval, which proves nothing (docs/method.md §8)."""
    return Evidence("inconclusive", effect, effect, effect, float("nan"), n, test + " (no spread: no test)", float("nan"))


def _t_evidence(effect, se, df, n, threshold, direction, rope, test) -> Evidence:
    if not se > 0:
        return _no_spread(effect, n, test)
    critical = float(scipy_stats.t.ppf(0.5 + LEVEL / 2, df))
    # CI = effect +- t_{0.975, df} * se
    low, high = effect - critical * se, effect + critical * se
    # one-sided p of t = (effect - threshold) / se in the claim's direction
    p = float(scipy_stats.t.sf(direction * (effect - threshold) / se, df))
    verdict = decide(low, high, threshold, direction, rope)
    # smallest effect detectable with 80% power: (t_{0.975} + t_{0.8}) * se
    detectable = detectable_effect(low, high, df) if verdict == "inconclusive" else float("nan")
    return Evidence(verdict, effect, low, high, p, n, test, detectable)


def detectable_effect(ci_low: float, ci_high: float, df: float) -> float:
    """The smallest effect a t test with this 95% interval detects with 80% power:
    (t_{0.975, df} + t_{0.8, df}) se, where se = half the interval's width / t_{0.975, df}."""
    critical = float(scipy_stats.t.ppf(0.5 + LEVEL / 2, df))
    # detectable = (t_{0.975} + t_{0.8}) * se,  se = (high - low) / (2 t_{0.975})
    return (critical + float(scipy_stats.t.ppf(POWER, df))) * (ci_high - ci_low) / (2 * critical)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN): p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def every_set(evidence: dict[str, Evidence]) -> tuple[str, float]:
    """The verdict of "on every set" from each set's own evidence (an intersection-union test):
    reproduced only if every set is (p = the largest per-set p); contradicted if some set is
    contradicted after Holm over the sets (its one-sided p in the other direction); equivalent if
    every set is; inconclusive otherwise. Returns (verdict, p)."""
    if not evidence:
        return "inconclusive", float("nan")
    verdicts = [e.verdict for e in evidence.values()]
    p_for = [e.p for e in evidence.values()]
    p_against = [1.0 - e.p if np.isfinite(e.p) else np.nan for e in evidence.values()]
    contradicted = [e.verdict == "contradicted" and q < ONE_SIDED for e, q in zip(evidence.values(), holm(p_against))]
    p = float(max(p_for)) if all(np.isfinite(p_for)) else float("nan")
    if all(v == "reproduced" for v in verdicts):
        return "reproduced", p
    if any(contradicted):
        return "contradicted", p
    if all(v == "equivalent" for v in verdicts):
        return "equivalent", p
    return "inconclusive", p


def judge_across(groups: dict, threshold: float = 0.0, direction: int = 1, rope: float | None = None) -> Evidence:
    """Evidence over several datasets (groups: name -> replicate values): the effect is the mean
    over datasets of each dataset's mean, every dataset weighted equally; its standard error
    combines the per-dataset standard errors, sqrt(sum_d s_d^2 / n_d) / D, with Welch-Satterthwaite
    degrees of freedom (a stratified t interval: runs vary within a dataset, datasets are fixed)."""
    samples = [v for v in (_finite(v) for v in groups.values()) if len(v)]
    if len(samples) == 1:
        return judge(samples[0], threshold, direction, rope)
    n = int(sum(len(v) for v in samples))
    name = f"stratified t interval over {len(samples)} datasets (Welch-Satterthwaite df)"
    if not samples or any(len(v) < 2 for v in samples):
        effect = float(np.mean([v.mean() for v in samples])) if samples else float("nan")
        return Evidence("inconclusive", effect, float("nan"), float("nan"), float("nan"), n, name + ": a dataset has n < 2", float("nan"))
    d = len(samples)
    effect = float(np.mean([v.mean() for v in samples]))
    if all(np.ptp(v) == 0 for v in samples):  # every dataset's values identical: no spread, no test
        return _no_spread(effect, n, name)
    # Var(effect) = (1 / D^2) sum_d s_d^2 / n_d
    parts = np.array([v.var(ddof=1) / len(v) for v in samples]) / d**2
    se = float(math.sqrt(parts.sum()))
    # Welch-Satterthwaite: df = (sum_d a_d)^2 / sum_d a_d^2 / (n_d - 1)
    df = float(parts.sum() ** 2 / sum(a**2 / (len(v) - 1) for a, v in zip(parts, samples))) if se > 0 else float(n - d)
    return _t_evidence(effect, se, df, n, threshold, direction, rope, name)


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


def inverted_u_gain(population: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per seed s: test accuracy at the best interior alpha minus test accuracy at the better end
    (alpha = 0 or the largest alpha), both chosen by the same rule on the OTHER seeds' mean
    validation accuracy (cross-fitted: neither side is selected on seed s's data, so selection
    alone does not favour the interior). Returns (gain by seed, interior alpha chosen by seed)."""
    alphas = sorted(population.alpha.unique())
    val = population.pivot_table(index="seed", columns="alpha", values="val_accuracy")
    test = population.pivot_table(index="seed", columns="alpha", values="test_accuracy")
    gains, chosen = {}, {}
    for seed in test.index:
        others = val.drop(index=seed).mean() if len(val) > 1 else val.loc[seed]
        interior = float(others[alphas[1:-1]].idxmax())
        end = float(others[[alphas[0], alphas[-1]]].idxmax())
        gains[seed], chosen[seed] = test.loc[seed, interior] - test.loc[seed, end], interior
    return pd.Series(gains, name="gain"), pd.Series(chosen, name="interior_alpha")


def collapse_similarity(population: pd.DataFrame) -> pd.Series:
    """Per seed: the experts' cosine similarity at the largest alpha."""
    largest = population[population.alpha == population.alpha.max()]
    return largest.set_index("seed").cosine_similarity


def own_domain_accuracy(probing_table: pd.DataFrame, matched: Sequence[int]) -> np.ndarray:
    """Per sub-task t: own-DS accuracy of the expert matched to t (probing.matched_experts)."""
    own = probing_table[probing_table.own].set_index("expert").accuracy
    return np.array([own[expert] for expert in matched], dtype=float)


def specialisation(probing_table: pd.DataFrame) -> float:
    """Own-DS minus cross-DS accuracy, each the mean over experts (probing.expert_probing rows):
    how much better the experts are on their own samples than on their peers' (0: interchangeable)."""
    own = probing_table[probing_table["own"]].accuracy.mean()
    cross = probing_table[~probing_table["own"]].accuracy.mean()
    # specialisation = mean own-DS accuracy - mean cross-DS accuracy
    return float(own - cross)


def benefit_preserved(student: float, dense: float, moe: float) -> float:
    """% of MoE benefit preserved: 100 * (S_student - S_dense) / (S_MoE - S_dense); NaN without a gap."""
    gap = moe - dense
    return float("nan") if gap == 0 else 100.0 * (student - dense) / gap


def benefit_contrast(student, dense, moe, share: float = 0.5) -> np.ndarray:
    """Per seed, the linear contrast (S - D) - share (M - D): above 0 when the student keeps more
    than `share` of the MoE's benefit over the dense model. Unlike a per-seed ratio it has no
    denominator that can reach 0, so its t interval is well behaved."""
    student, dense, moe = (np.asarray(v, dtype=float) for v in (student, dense, moe))
    # c_s = (S_s - D_s) - share (M_s - D_s)
    return (student - dense) - share * (moe - dense)


def fieller_ratio(numerator, denominator, level: float = LEVEL) -> tuple[float, float, float]:
    """Ratio of means mean(a) / mean(b) of paired values with its Fieller interval, as (ratio, low,
    high); the interval is (-inf, inf) when the denominator's mean is not significantly away from 0."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    n = len(a)
    ratio = float(a.mean() / b.mean()) if b.mean() != 0 else float("nan")
    if n < 2:
        return ratio, float("nan"), float("nan")
    t2 = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) ** 2
    # variances and covariance of the two means
    v11, v22, v12 = a.var(ddof=1) / n, b.var(ddof=1) / n, np.cov(a, b, ddof=1)[0, 1] / n
    # Fieller: (a_bar - r b_bar)^2 <= t^2 (v11 - 2 r v12 + r^2 v22), solved for r
    qa, qb, qc = b.mean() ** 2 - t2 * v22, a.mean() * b.mean() - t2 * v12, a.mean() ** 2 - t2 * v11
    discriminant = qb**2 - qa * qc
    if -1e-12 * qb**2 < discriminant < 0:  # identical pairs: 0 up to rounding, a point interval
        discriminant = 0.0
    if qa <= 0 or discriminant < 0:
        return ratio, float("-inf"), float("inf")
    root = math.sqrt(discriminant)
    return ratio, float((qb - root) / qa), float((qb + root) / qa)


def gaps_to_each_other(per_seed: pd.DataFrame, method: str, others: Sequence[str]) -> dict[str, pd.Series]:
    """Per other method: `method` minus that method, per seed (columns are methods). "Best" means
    better than each of them (an intersection-union test), so no competitor is picked per seed on
    the data that is then tested."""
    return {f"{method} - {other}": (per_seed[method] - per_seed[other]).dropna() for other in others}


def domain_gains(chosen: pd.DataFrame) -> dict[str, dict[str, pd.Series]]:
    """Per domain, per dataset: MoDE - MoE test accuracy paired by seed, from the chosen runs (one
    MoE and one MoDE run per dataset and seed, e.g. compare.chosen_runs)."""
    gains: dict[str, dict[str, pd.Series]] = {}
    for (domain, dataset), group in chosen.groupby(["domain", "dataset"], sort=False):
        gains.setdefault(domain, {})[dataset] = paired_difference(group, "test_accuracy")
    return gains


def eligible_datasets(summary: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Datasets whose runs may carry a verdict, and why the others may not: both models at the
    ceiling (no room for an effect) or a run whose best epoch was its last (undertrained)."""
    eligible, excluded = [], {}
    for row in summary.itertuples():
        if row.at_ceiling:
            excluded[row.dataset] = f"at the ceiling: both models at or above {CEILING:.1%} test accuracy"
        elif row.undertrained:
            excluded[row.dataset] = f"{row.undertrained} run(s) best at their last epoch (undertrained)"
        else:
            eligible.append(row.dataset)
    return eligible, excluded
