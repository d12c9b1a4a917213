"""The papers' claims that the kit tests, and the reproduction scorecard.

Each notebook measures one or more claims and calls `record(claim_id, values, out_dir)` with the
per-seed (or per-case) values of the deciding quantity, computed by `modekit.analysis.stats`; the verdict
rule is `modekit.analysis.stats.judge` / `judge_across` (its text: `modekit.analysis.stats.RULE`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modekit.analysis.stats import ONE_SIDED, Evidence, detectable_effect, every_set, holm, judge, judge_across
from modekit.errors import UserError

# Where a paper number was read: the kit could read the papers' abstracts and the summaries the
# project started from (docs/method.md §7), not the papers' full text.
ABSTRACT = "paper text (abstract)"
QUOTED = "quoted in the project's summary of the paper (unverified)"
SUMMARY = "the project's summary only (unverified)"
PRIMARY = "primary (Holm over the family)"
SECONDARY = "secondary, unadjusted"


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # what the paper claims
    paper: str  # the paper's number, as text
    measured: str  # the deciding quantity, one value per replicate
    threshold: float  # the value the paper's claim is judged against
    notebook: str
    direction: int = 1  # +1: the paper says the quantity is above the threshold; -1: below
    rope: float | None = 0.005  # region of practical equivalence around the threshold (None: none)
    unit: str = "seed (an independent run with its own data split)"
    paper_value: float = float("nan")  # the paper's number where it is one
    source: str = SUMMARY  # where the paper's number was read (ABSTRACT, QUOTED, SUMMARY)
    deviation: str = ""  # the paper's setting beside ours
    family: str = SECONDARY
    scale: float = 100.0  # shown as value x scale: accuracy differences in points
    units: str = "points"


GAIN = ("paired test-accuracy gain MoDE - MoE per seed, per dataset; MoDE at the paper's alpha for the domain, MoE at its default "
        "(weight decay 0): settings fixed in advance, nothing chosen on the tested seeds")  # fmt: skip
EVERY_SET = "MoDE >= MoE on every set"
DEVIATION_DATA = "paper: its benchmark sets at full size (summary); ours: the profile's sets, capped training sets, small models"
CLAIMS = [
    Claim("mode_beats_moe_tabular", "MoDE >= MoE on tabular data (T-DMoE: tabular dense MoE)", EVERY_SET, GAIN, 0.0, "05_reproduction",
          deviation=DEVIATION_DATA, family=PRIMARY),
    Claim("mode_beats_moe_image", "MoDE >= MoE on image data (C-DMoE: convolutional dense MoE)", EVERY_SET, GAIN, 0.0,
          "05_reproduction", deviation=DEVIATION_DATA, family=PRIMARY),
    Claim("mode_beats_moe_text", "MoDE >= MoE on text data (N-DMoE: NLP dense MoE)", EVERY_SET, GAIN, 0.0, "05_reproduction",
          deviation=DEVIATION_DATA, family=PRIMARY),
    Claim("alpha_inverted_u", "accuracy is an inverted U in alpha (moderate distillation is best)",
          "sweet spot at alpha 0.01-0.1 (tabular)",
          "per seed: test accuracy at the best interior alpha - at the better end (alpha 0 or the largest), both chosen on the other "
          "seeds' validation accuracy", 0.0, "02_alpha_sensitivity", deviation="paper: alpha grid per domain; ours: one tabular set"),
    Claim("experts_collapse", "very large alpha collapses the experts into one", "experts become identical",
          "per seed: expert cosine similarity at the largest alpha, threshold 0.9", 0.9, "02_alpha_sensitivity", rope=None, scale=1.0,
          units="(cosine similarity)"),
    Claim("probing_own_gain", "MoDE raises each expert's accuracy on its own DS (expert probing)", "0.95 -> 0.9525 and 0.9756",
          "per seed: own-DS accuracy MoDE - MoE, mean over the sub-tasks' matched experts, DS = the known sub-tasks (the same samples "
          "for both models)", 0.0, "03_expert_probing", source=QUOTED + ", section 5.4.1",
          deviation="paper: DS found by the gate on a real set; ours: designed data with known sub-tasks"),
    Claim("specialisation_kept", "MoDE keeps the experts' specialisation (own-DS minus cross-DS accuracy)",
          "each expert maintains its specialization",
          "per seed: specialisation MoDE - MoE on the known sub-tasks' DS; kept = non-inferior at a 2-point margin (the interval's "
          "lower end above -0.02)", -0.02, "03_expert_probing", rope=None, source=QUOTED + ", section 5.4.1"),
    Claim("gate_recognition_gain", "MoDE raises the gate's recognition accuracy", "-> 0.9796",
          "per seed: gate recognition accuracy MoDE - MoE", 0.0, "03_expert_probing", paper_value=0.9796,
          source=QUOTED + ", section 5.4.2"),
    Claim("multiview_other_view", "hypothesis (weakly supported): a distilled expert also uses the view its peer learned", "qualitative",
          "per seed: importance share of the other view, MoDE - MoE, mean over sub-tasks", 0.0, "03_expert_probing", rope=0.02),
    Claim("ones_benefit_kept", "the OneS student keeps most of the MoE's benefit over a dense model", "61.7% (ImageNet), 88.2% (NLP)",
          "per seed: the contrast (S - D) - 0.5 (M - D) of the SVD student after KD (S), the dense model (D) and the MoE (M): above 0 "
          "= more than half the benefit kept (only where MoE > dense is significant); the ratio of means with its Fieller interval "
          "in the note", 0.0, "04_ones_svd_gathering", rope=None, paper_value=61.7, source=ABSTRACT, family=PRIMARY,
          deviation="paper: ImageNet / four NLP sets, 15M-parameter students; ours: one set chosen by a fixed rule, small models"),
    Claim("svd_best_gathering", "SVD knowledge gathering beats the other gathering methods", "SVD-KG best",
          "per seed: SVD student after KD - each other method after KD; best = better than every one of them", 0.0,
          "04_ones_svd_gathering"),
    Claim("ones_speedup", "the dense student infers faster than the sparse MoE", "3.7x",
          "per timing block (torch.utils.benchmark), batch 256: student / teacher samples per second; reproduced only within its "
          "FLOP bound (beyond it: dispatch overhead)", 1.0, "04_ones_svd_gathering", rope=None, unit="timing block, batch 256",
          paper_value=3.7, source=ABSTRACT, deviation="paper: GPU, ImageNet-size models; ours: CPU, small models, one pair of models",
          scale=1.0, units="x"),
]  # fmt: skip
BY_ID = {claim.id: claim for claim in CLAIMS}
COLUMNS = ["claim", "family", "scope", "statement", "paper", "paper_value", "source", "deviation", "measured", "unit", "threshold",
           "effect", "ci_low", "ci_high", "p", "p_holm", "p_against_holm", "n", "test", "verdict", "own_verdict", "detectable",
           "note"]  # fmt: skip
# own_verdict: the verdict a row's runs give on their own; a primary's `verdict` is that after Holm over the family
# (p_holm: Holm over the p in the paper's direction; p_against_holm: over the p against it)
SHOWN = ["claim", "scope", "paper", "source", "threshold", "effect", "ci_low", "ci_high", "p", "n", "verdict", "detectable"]
OVERHEAD = "dispatch overhead"  # the verdict of a speedup beyond its FLOP bound: not the paper's effect


def _row(claim: Claim, scope: str, evidence: Evidence, note: str) -> dict:
    return {"claim": claim.id, "family": claim.family if scope == "all" else "per set", "scope": scope, "statement": claim.statement,
            "paper": claim.paper, "paper_value": claim.paper_value, "source": claim.source, "deviation": claim.deviation,
            "measured": claim.measured, "unit": claim.unit, "threshold": claim.threshold, **evidence.to_dict(),
            "p_holm": float("nan"), "p_against_holm": float("nan"), "own_verdict": evidence.verdict, "note": note}  # fmt: skip


MEANING = {
    "reproduced": "the interval lies beyond the threshold in the paper's direction (one-sided p < 0.025)",
    "contradicted": "the interval lies beyond the threshold against the paper",
    "equivalent": "the interval lies inside the threshold +- the region of practical equivalence: too small an effect to matter",
    "inconclusive": "the interval is too wide to tell",
    OVERHEAD: "the speedup lies above what the FLOPs allow: dispatch overhead, not the paper's effect",
    "not run": "the notebook that measures it did not run",
}


EVERY_SET_TEST = "every set must be reproduced"
EVERY_SET_MEANING = {
    "reproduced": "every set's own interval lies beyond the threshold in the paper's direction",
    "contradicted": "on at least one set the interval lies beyond the threshold against the paper (after Holm over the sets)",
    "equivalent": "every set's interval lies inside the region of practical equivalence",
    "inconclusive": "not every set's own interval lies beyond the threshold (each set's row says which)",
}


def shown(value: float, claim_id: str, signed: bool = True, minus: str = "-") -> str:
    """A claim's value as the kit shows it everywhere (sentences, report, write-up): in the claim's
    units (its scale applied), two decimals, a sign when `signed`, "-" when missing."""
    if value != value:
        return "-"
    value = value * BY_ID[claim_id].scale
    text = f"{value:+.2f}" if signed else f"{value:.2f}"
    return text.replace("-", minus)


def _shown(value: float, claim: Claim, signed: bool = True) -> str:
    return shown(value, claim.id, signed, minus="\u2212")  # a sentence's minus sign


def describe(row: dict) -> str:
    """One sentence on a scorecard row, generated from its values: the claim, the effect with its
    interval in the claim's units, p and n, the verdict and what it means, and what the run could
    have detected when it could not tell. Notebooks and the report print this, never a typed copy."""
    claim = BY_ID[row["claim"]]
    scope = "" if row["scope"] == "all" else f" on {row['scope']}"
    verdict = row["verdict"]
    if verdict == "not run":
        return f"`{claim.id}`{scope}: not run ({MEANING['not run']})."
    sign = claim.scale != 1.0 or claim.units != "x"
    interval = f"[{_shown(row['ci_low'], claim, sign)}, {_shown(row['ci_high'], claim, sign)}]"
    family = row.get("family", claim.family)
    if family == PRIMARY and row.get("p") == row.get("p") and not row.get("p_holm") == row.get("p_holm"):  # not yet adjusted
        family = "primary, unadjusted here: the scorecard applies Holm over the family"
    text = (f"`{claim.id}`{scope} ({family}): {_shown(row['effect'], claim, sign)} {claim.units} {interval} "
            f"against the threshold {_shown(claim.threshold, claim, False)}, n = {row['n']}")  # fmt: skip
    text += f", p = {row['p']:.3g}" if row["p"] == row["p"] else ""
    no_spread = verdict == "inconclusive" and row["ci_low"] == row["ci_high"]
    meaning = "every run gave the same value: no spread, so no test" if no_spread else MEANING.get(verdict, verdict)
    if str(row.get("test", "")).startswith(EVERY_SET_TEST):  # the interval shown is the mean over sets; the verdict is per set
        text = text.replace(f" {interval}", f" {interval} (mean over the sets, descriptive)", 1)
        meaning = EVERY_SET_MEANING.get(verdict, meaning)
    meaning = _holm_demotion(row) or meaning
    text += f": **{verdict}**, {meaning}"
    if verdict == "inconclusive" and row.get("detectable") == row.get("detectable") and row.get("detectable") is not None:
        text += f"; it could have detected about {_shown(row['detectable'], claim, False)} {claim.units}"
    paper = f"; the paper: {claim.paper} ({claim.source})" if row["scope"] == "all" else ""
    return text + paper + "."


def demoted(card: pd.DataFrame) -> pd.Series:
    """Per row: Holm's correction over the primary family changed its own verdict (adjust_primaries)."""
    own = card.get("own_verdict", pd.Series(None, index=card.index))  # a card from before the column: nothing demoted
    return own.notna() & (own != card["verdict"]) & (card["family"] == PRIMARY)


def _holm_demotion(row: dict) -> str | None:
    """Why a primary reads "inconclusive" although its own runs gave a verdict: Holm's correction
    over the primary claims; else None."""
    own = row.get("own_verdict")
    if row["verdict"] == own or row.get("family") != PRIMARY or own not in ("reproduced", "contradicted"):
        return None
    on_every_set = str(row.get("test", "")).startswith(EVERY_SET_TEST)
    if own == "reproduced":
        whose = "every set's own interval lies" if on_every_set else "its own interval lies"
        return (f"{whose} beyond the threshold in the paper's direction, but not after Holm's correction over the primary "
                f"claims (p_holm = {row['p_holm']:.3g}, not below {ONE_SIDED:g})")  # fmt: skip
    whose = "a set's own interval (after Holm over the sets) lies" if on_every_set else "its own interval lies"
    return (f"{whose} beyond the threshold against the paper, but not after Holm's correction over the primary claims (the p "
            f"against the paper, adjusted, is {row['p_against_holm']:.3g}, not below {ONE_SIDED:g})")  # fmt: skip


def judge_claim(claim_id: str, values, note: str = "", bound: float | None = None) -> list[dict]:
    """Rows of evidence for a claim: `values` are replicate values, or {set: values} for a claim
    "on every set" (several datasets, or one method against each other one): a row per set, then
    the summary row (scope "all") whose verdict is the intersection-union rule (`stats.every_set`)
    and whose effect and interval are the stratified mean (a description). `bound`: the most the
    effect can honestly be (a FLOP ratio): an interval reaching past it is never "reproduced"."""
    if claim_id not in BY_ID:
        raise UserError(f"claim_id={claim_id!r} is not a known claim: choose one of {', '.join(BY_ID)}")
    claim = BY_ID[claim_id]
    args = (claim.threshold, claim.direction, claim.rope)
    if isinstance(values, dict):
        per_set = {str(name): judge(v, *args) for name, v in values.items()}
        rows = [_row(claim, name, evidence, note) for name, evidence in per_set.items()]
        verdict, p = every_set(per_set)
        across = judge_across(values, *args)
        summary = dataclasses.replace(across, verdict=verdict, p=p, test=f"{EVERY_SET_TEST} (intersection-union over "
                                      f"{len(per_set)}); effect and interval: {across.test}, descriptive")  # fmt: skip
    else:
        rows, summary = [], judge(values, *args)
    if bound is not None and summary.ci_low > bound:
        summary = dataclasses.replace(summary, verdict=OVERHEAD)
        note = f"{note}; the whole interval lies above the FLOP bound {bound:.2f}x".lstrip("; ")
    elif bound is not None and summary.verdict == "reproduced" and summary.ci_high > bound:
        summary = dataclasses.replace(summary, verdict="inconclusive")
        note = f"{note}; the interval reaches past the FLOP bound {bound:.2f}x".lstrip("; ")
    return [_row(claim, "all", summary, note), *rows]


def record(claim_id: str, values, out_dir=None, note: str = "", bound: float | None = None) -> dict:
    """Judge a claim (judge_claim); append its rows to out_dir/claims.jsonl when given; return the summary row."""
    rows = judge_claim(claim_id, values, note, bound)
    save(rows, out_dir)
    return rows[0]


def save(rows: list[dict], out_dir=None) -> None:
    """Append judged rows (judge_claim's, summary first) to out_dir/claims.jsonl, read by `scorecard`."""
    if out_dir:
        path = Path(out_dir) / "claims.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")


def scorecard(report_dir) -> pd.DataFrame:
    """Every claim's summary row (or 'not run'), each followed by its per-set rows; the primary
    claims' verdicts are adjusted by Holm over the family (adjust_primaries)."""
    recorded: dict[str, list[dict]] = {}
    for path in sorted(Path(report_dir).glob("*/claims.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["scope"] == "all":
                recorded[row["claim"]] = []
            recorded.setdefault(row["claim"], []).append(row)
    rows = []
    for claim in CLAIMS:
        missing = _row(claim, "all", Evidence("not run", *[float("nan")] * 4, 0, "-", float("nan")), f"{claim.notebook} did not record it")
        rows += [{**missing, **row, "notebook": claim.notebook} for row in recorded.get(claim.id) or [missing]]
    return adjust_primaries(pd.DataFrame(rows, columns=[*COLUMNS, "notebook"]))


def adjust_primaries(card: pd.DataFrame) -> pd.DataFrame:
    """Holm over the primary claims' summary p-values, both ways: a primary stays "reproduced" only if
    its adjusted p is below 0.025 (one-sided), and "contradicted" only if its adjusted p against the
    paper's direction is: the family-wise rate of false "reproduced" verdicts is held at 2.5%, and so
    is that of false "contradicted" ones (of either kind, at most 5%); the others keep their own p
    ("secondary, unadjusted")."""
    card = card.copy()
    card["own_verdict"] = card["own_verdict"].fillna(card["verdict"])  # rows recorded before the column: their verdict
    primary = (card["family"] == PRIMARY) & (card["scope"] == "all")
    card.loc[primary, "p_holm"] = holm(card.loc[primary, "p"].astype(float).to_numpy())
    card.loc[primary, "p_against_holm"] = holm([_p_against(card, index) for index in card.index[primary]])
    unproven = ((card["own_verdict"] == "reproduced") & ~(card["p_holm"] < ONE_SIDED)) | (
        (card["own_verdict"] == "contradicted") & ~(card["p_against_holm"] < ONE_SIDED)
    )
    card.loc[primary & unproven, "verdict"] = "inconclusive"
    for index in card.index[demoted(card) & card["detectable"].isna()]:  # demoted: still says what it could have detected
        card.loc[index, "detectable"] = _detectable(card, index)
    return card


def _per_set(card: pd.DataFrame, claim: str) -> pd.DataFrame:
    """The per-set rows of a claim judged on every set (empty for a claim on one set of runs)."""
    return card[(card["claim"] == claim) & (card["scope"] != "all")]


def _detectable(card: pd.DataFrame, index) -> float:
    """A summary row's smallest detectable effect from its interval (df = n - 1); for a claim on every
    set, the largest of its sets' (the intersection-union test is as weak as its weakest set)."""
    sets = _per_set(card, card.loc[index, "claim"])
    rows = [card.loc[index]] if sets.empty else [row for _, row in sets.iterrows()]
    sized = [row for row in rows if row["n"] >= 2 and row["ci_high"] > row["ci_low"]]  # no spread: no test, no size
    sizes = [detectable_effect(row["ci_low"], row["ci_high"], row["n"] - 1) for row in sized]
    return max(sizes, default=float("nan"))


def _p_against(card: pd.DataFrame, index) -> float:
    """A summary row's one-sided p against the paper's direction: 1 - p for one set of runs; for a
    claim on every set, the smallest per-set p against, Holm-adjusted over the sets (its first step:
    D times it, D the sets with a p), the set on which `stats.every_set` says "contradicted"."""
    row = card.loc[index]
    if not str(row["test"]).startswith(EVERY_SET_TEST):
        return 1.0 - float(row["p"])
    sets = _per_set(card, row["claim"])
    if sets.empty:  # without the per-set rows the smallest p could not be adjusted over the sets
        raise UserError(f"claim {row['claim']!r} is judged on every set, but the card holds none of its per-set rows")
    against = 1.0 - sets["p"].astype(float).dropna()
    if against.empty:  # no set has a test (no spread): nothing to adjust
        return float("nan")
    return float(min(1.0, len(against) * against.min()))


def forest_order(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard's rows with the primary claims first, each followed by its per-set rows."""
    first = card.claim.map(lambda c: BY_ID[c].family != PRIMARY)
    return card.assign(order=first).sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)


def forest_table(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard ready for plots.forest: effect, interval, threshold and equivalence region in the
    claim's units (accuracy points, x), a label per row (per-set rows indented), runs not run left out."""
    ran = card[card.verdict != "not run"].copy()
    claim = ran.claim.map(BY_ID)
    scale = claim.map(lambda c: c.scale)
    for column in ("effect", "ci_low", "ci_high", "threshold"):
        ran[column] = ran[column] * scale
    ran["rope"] = claim.map(lambda c: float("nan") if c.rope is None else c.rope) * scale
    ran["units"] = claim.map(lambda c: c.units)
    primary = ran.family.str.startswith("primary").map({True: " (primary)", False: ""})
    ran["label"] = [f"{c}{p}" if s == "all" else f"    on {s}" for c, s, p in zip(ran.claim, ran.scope, primary)]
    return forest_order(ran)
