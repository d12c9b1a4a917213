"""OneS in words: notebook 04's takeaway, generated from its numbers and verdicts, so that another run
(other seeds, another dataset, another profile) says other things, truthfully. Each function writes
one bullet; the wording is chosen by the intervals and verdicts it is given, and the tests
(tests/test_ones_takeaway.py) feed each both sides of its choices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from modekit.analysis import claims, stats

MOVED = 1e-4  # a relative change of logits above this is more than float rounding (ours)


def points(e: stats.Evidence) -> str:
    """An Evidence's effect and 95% interval, in accuracy points."""
    return f"{100 * e.effect:+.1f} points, 95% interval [{100 * e.ci_low:+.1f}, {100 * e.ci_high:+.1f}] over {e.n} seeds"


def side(e: stats.Evidence, above: str, below: str, neither: str) -> str:
    """The wording the interval allows: wholly above 0, wholly below 0, or neither."""
    return above if e.ci_low > 0 else (below if e.ci_high < 0 else neither)


def listed(names: Sequence, code: bool = True) -> str:
    """`a`, `b` and `c`."""
    names = [f"`{n}`" if code else str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def benefit(advantage: stats.Evidence, moe_mean: float, dense_mean: float, top_k: int, n_experts: int) -> str:
    """Is there a MoE benefit over the dense model to keep (its interval above 0)?"""
    meaningful = advantage.ci_low > 0
    return (
        f"- **{'There is a' if meaningful else 'There is no clear'} benefit to keep.** The top-{top_k}-of-{n_experts} MoE "
        f"{side(advantage, 'beats', 'loses to', 'cannot be told apart from')} the dense model of one expert's width "
        f"({moe_mean:.3f} vs {dense_mean:.3f}): {points(advantage)}; "
        + (
            "the interval lies above 0, so the benefit kept means something here."
            if meaningful
            else "the interval does not lie above 0, so no benefit kept is computed."
        )
    )


def permutation(effect: pd.DataFrame, error: dict) -> str:
    """Shuffling one expert's hidden units (`gathering.permutation_effect`) and the summed block's
    error split into its parts (`error`: total, non_linearity, cross_terms, relative to the sum)."""
    teacher_change = effect.teacher_change.iloc[0]
    moved, still = effect[effect.student_change > MOVED], effect[effect.student_change <= MOVED]
    text = "- **Summing MLPs is not summing their functions.** Shuffling one expert's hidden units " + (
        f"leaves the teacher's logits unchanged (relative change {teacher_change:.0e}, rounding)"
        if teacher_change < MOVED
        else f"moves the teacher's logits by {teacher_change:.1%}, more than rounding"
    )
    if len(moved):
        text += (
            f" but moves the {listed(moved.method)} students' logits by {moved.student_change.min():.0%}-{moved.student_change.max():.0%}"
        )
    if len(still):
        text += f"; {listed(still.method)} " + (
            "does not move at all" if still.student_change.max() == 0 else f"does not move (at most {still.student_change.max():.0e})"
        )
    parts = [
        name for name, key in (("the ReLU", "non_linearity"), ("the cross terms", "cross_terms")) if error[key] > 0.05 * error["total"]
    ]
    size = "about as much as that sum's own norm" if 0.8 <= error["total"] <= 1.25 else f"{error['total']:.0%} of that sum's own norm"
    return text + (
        f". The `sum` block misses the experts' sum by {size} (‖B − S‖ / ‖S‖ = {error['total']:.2f}), "
        f"through {('both ' if len(parts) == 2 else '') + ' and '.join(parts) or 'neither part alone'} "
        f"(non-linearity part {error['non_linearity']:.2f}, cross terms {error['cross_terms']:.2f}, each relative to ‖S‖)."
    )


def gathering(before_kd: pd.Series, after_kd: pd.Series, dense_mean: float) -> str:
    """Gathering alone against the dense model, then what KD adds (per method, means over seeds)."""
    gain = after_kd[before_kd.index] - before_kd
    if before_kd.max() < dense_mean:
        head, where = "Gathering alone is a starting point, not a model:", "every gathered student is below"
    elif before_kd.min() > dense_mean:
        head, where = "Gathering alone already beats the dense model:", "every gathered student is above"
    else:
        head, where = "Gathering alone is uneven:", "the gathered students straddle"
    return f"- **{head}** before KD {where} the dense model ({before_kd.min():.3f}-{before_kd.max():.3f} against {dense_mean:.3f}); " + (
        f"KD adds {100 * gain.min():.0f}-{100 * gain.max():.0f} points."
        if gain.min() > 0
        else f"KD changes them by {100 * gain.min():+.0f} to {100 * gain.max():+.0f} points."
    )


def state_of(rows: list[dict]) -> str:
    """The accuracy claims' summary rows together: reproduced, partly reproduced or not reproduced."""
    verdicts = [r["verdict"] for r in rows if r["scope"] == "all"]
    if not verdicts:
        return "not judged"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "partly reproduced" if any(v == "reproduced" for v in verdicts) else "not reproduced"


def accuracy_claims(kd: pd.DataFrame, dense: pd.Series, moe: pd.Series, svd_after: pd.Series, rows: list[dict]) -> str:
    """OneS's accuracy claims: the best gathered student after KD and the baselines against the dense
    model's 95% band, where SVD ranks, the benefit it keeps (ratio of means, Fieller interval) and,
    per seed, which methods it beats. `kd`: the MoE teacher's students after KD, by student (mean,
    benefit_%); `dense`, `moe`, `svd_after`: per seed; `rows`: the claims' scorecard rows."""
    meaningful = kd["benefit_%"].notna().any()
    baselines = [b for b in ("Switch-style", "KD from random init") if b in kd.index]
    gathered = kd.drop(index=baselines)["mean"]
    low, high = stats.t_interval(dense)

    def placed(name):
        value = kd.loc[name, "mean"]
        kept = f", {kd.loc[name, 'benefit_%']:.0f}% of the benefit kept" if meaningful else ""
        band = "inside" if low <= value <= high else ("above" if value > high else "below")
        return f"{value:.3f}{kept}, {band} the band"

    text = (
        f"- **OneS's accuracy claims are {state_of(rows)} on this task.** After KD, against the dense model's 95% band "
        f"[{low:.3f}, {high:.3f}] (benefit kept from the means over seeds), the best gathered student is `{gathered.idxmax()}`: "
        f"{placed(gathered.idxmax())}"
    )
    text += "; " + "; ".join(f"{b}: {placed(b)}" for b in baselines) + "." if baselines else "."
    rank = list(gathered.sort_values(ascending=False).index).index("svd") + 1
    position = "the best" if rank == 1 else ("the worst" if rank == len(gathered) else f"number {rank} of {len(gathered)}")
    text += f" The SVD student is {position} gathering after KD ({gathered['svd']:.3f})"
    if meaningful:
        ratio, r_low, r_high = stats.fieller_ratio(svd_after - dense, moe - dense)
        interval = f"[{100 * r_low:.0f}%, {100 * r_high:.0f}%]" if np.isfinite([r_low, r_high]).all() else "unbounded"
        share = f"{100 * ratio:.0f}% of the benefit kept"
        if ratio < 0:  # "none kept" only when the whole interval lies below 0
            whole = np.isfinite(r_high) and r_high < 0
            share = "below the dense model, " + ("none of the benefit kept" if whole else "on average; the interval reaches above 0")
        text += f": {share} (ratio of means {100 * ratio:.0f}%, Fieller 95% interval {interval})"
    per_method = [r for r in rows if r["claim"] == "svd_best_gathering" and r["scope"] != "all"]
    groups = {
        word: [r["scope"].split(" - ")[1] for r in per_method if test(r)]
        for word, test in (
            ("beats", lambda r: r["ci_low"] > 0),
            ("loses to", lambda r: r["ci_high"] < 0),
            ("cannot be told apart from", lambda r: not (r["ci_low"] > 0 or r["ci_high"] < 0)),
        )
    }
    return text + ". Per seed, SVD " + "; it ".join(f"{word} {listed(names)}" for word, names in groups.items() if names) + ":"


def teacher(mode_gain: stats.Evidence) -> str:
    """Does a MoDE teacher gather better than a MoE teacher (its students before KD, mean over methods)?"""
    return (
        f"- **A MoDE teacher {side(mode_gain, 'gathers better', 'gathers worse', 'cannot be told apart from the MoE teacher')} here:** "
        f"its students before KD minus the MoE teacher's (mean over the methods), {points(mode_gain)}: {mode_gain.verdict}."
    )


SPEED_MEANING = {
    claims.OVERHEAD: "the extra speed is the teacher's routing overhead (dispatch overhead), not a reproduction of the abstract's 3.7x",
    "reproduced": "a speedup the FLOPs can explain",
    "contradicted": "the student is not faster",
}


def speed(speedups: pd.Series, bound: float, device: str, by_batch: pd.Series, verdict: str) -> str:
    """The student's speedup over the routed teacher at batch 256 (`speedups`: its timing rounds)
    against the FLOP bound, and over batch sizes (`by_batch`: median speedup by batch size)."""
    median = speedups.median()
    pace = f"{median:.1f}x faster than" if median >= 1 else f"{1 / median:.1f}x slower than"
    return (
        f"- **Speed:** at batch 256 on this {device.upper()} the student is {pace} the routed teacher (median of {len(speedups)} "
        f"timing rounds; {by_batch.min():.1f}x to {by_batch.max():.1f}x over batch sizes {listed(by_batch.index, code=False)}), "
        f"{'above' if median > bound else 'within'} the {bound:.2f}x FLOP bound; the scorecard's verdict: "
        f"{SPEED_MEANING.get(verdict, 'the timing rounds do not settle it')}."
    )
