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

from modekit.analysis.stats import Evidence, judge, judge_across
from modekit.errors import UserError


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


GAIN = "paired test-accuracy gain MoDE - MoE per seed (alpha chosen on validation), per dataset"
CLAIMS = [
    Claim("mode_beats_moe_tabular", "MoDE >= MoE on tabular data (T-DMoE)", "MoDE >= MoE on every set", GAIN, 0.0, "05_reproduction"),
    Claim("mode_beats_moe_image", "MoDE >= MoE on image data (C-DMoE)", "MoDE >= MoE on every set", GAIN, 0.0, "05_reproduction"),
    Claim("mode_beats_moe_text", "MoDE >= MoE on text data (N-DMoE)", "MoDE >= MoE on every set", GAIN, 0.0, "05_reproduction"),
    Claim("alpha_inverted_u", "accuracy is an inverted U in alpha (moderate distillation is best)",
          "sweet spot at alpha 0.01-0.1 (tabular)",
          "per seed: test accuracy at the best interior alpha - at the better end (alpha 0 or the largest), both chosen on the other "
          "seeds' validation accuracy", 0.0, "02_alpha_sensitivity"),
    Claim("experts_collapse", "very large alpha collapses the experts into one", "experts become identical",
          "per seed: expert cosine similarity at the largest alpha, threshold 0.9", 0.9, "02_alpha_sensitivity", rope=None),
    Claim("probing_own_gain", "MoDE raises each expert's accuracy on its own DS (expert probing)", "0.95 -> 0.9525 and 0.9756",
          "per seed: own-DS accuracy MoDE - MoE, mean over the sub-tasks' matched experts, DS = the known sub-tasks (the same samples "
          "for both models)", 0.0, "03_expert_probing"),
    Claim("specialisation_kept", "MoDE keeps the experts' specialisation (own-DS minus cross-DS accuracy)",
          "each expert maintains its specialization (§5.4.1)",
          "per seed: specialisation MoDE - MoE, on the known sub-tasks' DS (equivalent = maintained)", 0.0, "03_expert_probing",
          rope=0.02),
    Claim("gate_recognition_gain", "MoDE raises the gate's recognition accuracy", "-> 0.9796",
          "per seed: gate recognition accuracy MoDE - MoE", 0.0, "03_expert_probing", paper_value=0.9796),
    Claim("multiview_other_view", "hypothesis (weakly supported): a distilled expert also uses the view its peer learned", "qualitative",
          "per seed: importance share of the other view, MoDE - MoE, mean over sub-tasks", 0.0, "03_expert_probing", rope=0.02),
    Claim("ones_benefit_kept", "the OneS student keeps most of the MoE's benefit over a dense model", "61.7% (ImageNet), 88.2% (NLP)",
          "per seed: % of MoE benefit kept by the SVD student after KD (only where MoE > dense is significant)", 50.0,
          "04_ones_svd_gathering", rope=None, paper_value=61.7),
    Claim("svd_best_gathering", "SVD knowledge gathering beats the other gathering methods", "SVD-KG best",
          "per seed: SVD student after KD - best other method after KD", 0.0, "04_ones_svd_gathering"),
    Claim("ones_speedup", "the dense student infers faster than the sparse MoE", "3.7x",
          "per timing block (torch.utils.benchmark), batch 256: student / teacher samples per second; above the FLOP bound = "
          "dispatch overhead", 1.0, "04_ones_svd_gathering", rope=None, unit="timing block, batch 256", paper_value=3.7),
]  # fmt: skip
BY_ID = {claim.id: claim for claim in CLAIMS}
COLUMNS = ["claim", "scope", "statement", "paper", "paper_value", "measured", "unit", "threshold", "effect", "ci_low", "ci_high",
           "p", "n", "test", "verdict", "detectable", "note"]  # fmt: skip
SHOWN = ["claim", "scope", "paper", "effect", "ci_low", "ci_high", "p", "n", "verdict", "detectable"]  # what notebooks display
OVERHEAD = "dispatch overhead"  # the verdict of a speedup beyond its FLOP bound: not the paper's effect


def _row(claim: Claim, scope: str, evidence: Evidence, note: str) -> dict:
    return {"claim": claim.id, "scope": scope, "statement": claim.statement, "paper": claim.paper, "paper_value": claim.paper_value,
            "measured": claim.measured, "unit": claim.unit, "threshold": claim.threshold, **evidence.to_dict(), "note": note}  # fmt: skip


def judge_claim(claim_id: str, values, note: str = "", bound: float | None = None) -> list[dict]:
    """Rows of evidence for a claim: `values` are replicate values, or {dataset: values} for a
    claim over several datasets (a row per dataset, then the summary row, scope "all").
    `bound`: an upper bound the effect cannot honestly exceed (a FLOP ratio); beyond it the
    verdict is "dispatch overhead", never "reproduced"."""
    if claim_id not in BY_ID:
        raise UserError(f"claim_id={claim_id!r} is not a known claim: choose one of {', '.join(BY_ID)}")
    claim = BY_ID[claim_id]
    args = (claim.threshold, claim.direction, claim.rope)
    if isinstance(values, dict):
        rows = [_row(claim, str(name), judge(v, *args), note) for name, v in values.items()]
        summary = judge_across(values, *args)
    else:
        rows, summary = [], judge(values, *args)
    if bound is not None and summary.ci_low > bound:
        summary = dataclasses.replace(summary, verdict=OVERHEAD)
        note = f"{note}; the whole interval lies above the FLOP bound {bound:.2f}x".lstrip("; ")
    return [_row(claim, "all", summary, note), *rows]


def record(claim_id: str, values, out_dir=None, note: str = "", bound: float | None = None) -> dict:
    """Judge a claim (judge_claim); append its rows to out_dir/claims.jsonl when given; return the summary row."""
    rows = judge_claim(claim_id, values, note, bound)
    if out_dir:
        path = Path(out_dir) / "claims.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    return rows[0]


def scorecard(report_dir) -> pd.DataFrame:
    """Every claim's summary row (or 'not run'), each followed by its per-dataset rows."""
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
        rows += [{**row, "notebook": claim.notebook} for row in recorded.get(claim.id) or [missing]]
    return pd.DataFrame(rows, columns=[*COLUMNS, "notebook"])
