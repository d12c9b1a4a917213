"""The MoDE >= MoE verdicts in words: notebook 05's takeaway, generated from the scorecard's rows so
that another run (other seeds, other sets, another profile) says other things, truthfully.
Every sentence is chosen by the verdicts and filled in from the rows; tests feed it runs that read
"reproduced", "contradicted", "equivalent", "inconclusive" and "no spread" and check what it says.
"""

from __future__ import annotations

import pandas as pd

from modekit.analysis import claims, stats


def _points(low: float, high: float) -> str:
    return f"[{100 * low:+.1f}, {100 * high:+.1f}] points" if low == low else "no interval"


def dataset_part(row) -> str:
    """One set's gain, interval and verdict, and what it could have detected (or why there is no test)."""
    text = f"`{row.scope}` {100 * row.effect:+.1f} {_points(row.ci_low, row.ci_high)}, {row.verdict}"
    if row.verdict == "inconclusive" and row.ci_low == row.ci_high:
        return text + " (every seed gave the same gain: no spread, no test)"
    return text + (f" (could have detected about {100 * row.detectable:.1f} points)" if row.detectable == row.detectable else "")


def why(top, sets: pd.DataFrame) -> str:
    """Why a domain got its verdict (`top`: its summary row; `sets`: its per-set rows)."""
    rope = 100 * claims.BY_ID[top.claim].rope
    named = ", ".join(f"`{s}`" for s in sets[sets.verdict == "contradicted"].scope)
    if sets.empty:
        return f"No dataset could carry a verdict ({top.note})."
    if top.verdict == "reproduced":
        below = 100 * min(sets.ci_low) < rope
        return "MoDE beat MoE on every eligible set" + (
            f", though an interval starts below {rope:.1f} points: a gain that matters is not yet shown." if below else "."
        )
    if top.verdict == "contradicted":
        return f"MoE beat MoDE on {named}, beyond chance after Holm over the sets."
    if top.verdict == "equivalent":
        return f"Every set's interval lies within {rope:.1f} points of zero: no difference worth acting on."
    if top.own_verdict == "reproduced":  # every set reproduced on its own, not after Holm over the family
        return f"Every set was reproduced on its own, but not after Holm over the primary family (`p_holm` {top.p_holm:.3g})."
    if top.own_verdict == "contradicted":  # contradicted over the sets, not after Holm over the family (claims.demoted)
        return f"MoE beat MoDE on {named}, beyond chance over the sets, but not after Holm over the primary family."
    if (sets.verdict == "contradicted").any():
        return f"MoE beat MoDE on {named} on its own, but not after Holm over the sets."
    if len(sets) == 1:
        return "The interval does not exclude zero." if sets.ci_low.iloc[0] < sets.ci_high.iloc[0] else "No spread, so no test."
    return f"{(sets.verdict == 'reproduced').sum()} of {len(sets)} sets reproduced, none contradicted."


def tuned_lines(domain: str, sets: pd.DataFrame, gains: pd.DataFrame) -> list[str]:
    """The secondary comparison (tuned on validation) beside the primary verdicts of one domain."""
    tuned = gains[(gains.domain == domain) & (gains.comparison == "tuned on validation")]
    if sets.empty or tuned.empty:
        return []
    fixed = sets.set_index("scope").verdict
    claim = claims.BY_ID[f"mode_beats_moe_{domain}"]  # the same threshold, direction and region of equivalence
    tuned_sets = {
        name: stats.judge(part.gain, claim.threshold, claim.direction, claim.rope) for name, part in tuned.groupby("dataset", sort=False)
    }
    parts = [f"`{name}` {100 * e.effect:+.1f} {_points(e.ci_low, e.ci_high)}, {e.verdict}" for name, e in tuned_sets.items()]
    differ = [f"`{name}`" for name, e in tuned_sets.items() if e.verdict != fixed.get(name)]
    agreement = f"a different verdict on {', '.join(differ)}" if differ else "the same verdict on every set"
    lines = [f"  - Tuned on validation (secondary, unadjusted): {agreement} ({'; '.join(parts)})."]
    if any(e.verdict == "reproduced" and fixed.get(name) != "reproduced" for name, e in tuned_sets.items()):
        lines.append(
            "  - The tuned settings were chosen on the validation split of the very seeds they are tested on: the weaker evidence."
        )
    return lines


def mode_beats_moe_takeaway(card: pd.DataFrame, gains: pd.DataFrame, domains: list[str]) -> list[str]:
    """Markdown lines: the tally of verdicts per domain, then per domain its verdict, why, each set's
    gain and the mean over sets (a description), and the tuned comparison beside it."""
    mine = card[card.claim.str.startswith("mode_beats_moe_")]
    family = card[(card.family == claims.PRIMARY) & (card.scope == "all") & card.p.notna()]
    lines, tally = [], {verdict: [] for verdict in stats.VERDICTS}
    for domain in domains:
        rows = mine[mine.claim == f"mode_beats_moe_{domain}"]
        top, sets = rows[rows.scope == "all"].iloc[0], rows[rows.scope != "all"]
        tally.setdefault(top.verdict, []).append(domain)
        per_set = "; ".join(dataset_part(row) for row in sets.itertuples())
        text = f"- **{domain}: {top.verdict}.** {why(top, sets)}" + (f" {per_set}" if per_set else "")
        if len(sets) > 1:
            text += f". Mean over the {len(sets)} sets, a description only: {100 * top.effect:+.1f} {_points(top.ci_low, top.ci_high)}"
        lines += [text + ("." if len(sets) else ""), *tuned_lines(domain, sets, gains)]
    counts = "; ".join(f"{verdict}: {', '.join(names) or 'none'}" for verdict, names in tally.items())
    return [f"Per domain, {counts}. Holm ran over the {len(family)} primary claim(s) with a p in this scorecard.", "", *lines]
