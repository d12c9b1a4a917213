"""The papers' claims that the kit tests, and the reproduction scorecard.

Each notebook measures one or more claims and calls `record(claim_id, values, out_dir)` with the
per-seed (or per-case) values of the deciding quantity, computed by `modekit.stats`; the verdict
rule is `modekit.stats.verdict` (its text: `RULE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import UserError
from .stats import verdict


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # what the paper claims
    paper: str  # the paper's number
    measured: str  # the deciding quantity we record per seed / case
    threshold: float
    notebook: str


CLAIMS = [
    Claim(
        "mode_beats_moe_tabular",
        "MoDE >= MoE on tabular data (T-DMoE)",
        "MoDE >= MoE on every set",
        "paired test-accuracy gain MoDE - MoE per dataset x seed",
        0.0,
        "05_reproduction",
    ),
    Claim(
        "mode_beats_moe_image",
        "MoDE >= MoE on image data (C-DMoE)",
        "MoDE >= MoE on every set",
        "paired test-accuracy gain MoDE - MoE per dataset x seed",
        0.0,
        "05_reproduction",
    ),
    Claim(
        "mode_beats_moe_text",
        "MoDE >= MoE on text data (N-DMoE)",
        "MoDE >= MoE on every set",
        "paired test-accuracy gain MoDE - MoE per dataset x seed",
        0.0,
        "05_reproduction",
    ),
    Claim(
        "alpha_inverted_u",
        "accuracy is an inverted U in alpha (moderate distillation is best)",
        "sweet spot at alpha 0.01-0.1 (tabular)",
        "per seed: accuracy at the best interior alpha - max(accuracy at alpha = 0, at the largest alpha)",
        0.0,
        "02_alpha_sensitivity",
    ),
    Claim(
        "experts_collapse",
        "very large alpha collapses the experts into one",
        "experts become identical",
        "per seed: expert cosine similarity at the largest alpha, threshold 0.9",
        0.9,
        "02_alpha_sensitivity",
    ),
    Claim(
        "probing_own_gain",
        "MoDE raises each expert's accuracy on its own DS (expert probing)",
        "0.95 -> 0.9525 and 0.9756",
        "per expert x seed: own-DS accuracy MoDE - MoE",
        0.0,
        "03_expert_probing",
    ),
    Claim(
        "gate_recognition_gain",
        "MoDE raises the gate's recognition accuracy",
        "-> 0.9796",
        "per seed: gate recognition accuracy MoDE - MoE",
        0.0,
        "03_expert_probing",
    ),
    Claim(
        "multiview_other_view",
        "hypothesis (weakly supported): a distilled expert also uses the view its peer learned",
        "qualitative",
        "per expert x seed: importance share of the other view, MoDE - MoE",
        0.0,
        "03_expert_probing",
    ),
    Claim(
        "ones_benefit_kept",
        "the OneS student keeps much of the MoE's benefit over a dense model",
        "61.7% (ImageNet), 88.2% (NLP)",
        "per seed: % of MoE benefit kept by the SVD student after KD",
        0.0,
        "04_ones_svd_gathering",
    ),
    Claim(
        "svd_best_gathering",
        "SVD knowledge gathering beats the other gathering methods",
        "SVD-KG best",
        "per seed: SVD student after KD - best other method after KD",
        0.0,
        "04_ones_svd_gathering",
    ),
    Claim(
        "ones_speedup",
        "the dense student infers faster than the sparse MoE",
        "3.7x",
        "per batch size: student / teacher samples per second (threshold 1x)",
        1.0,
        "04_ones_svd_gathering",
    ),
]
BY_ID = {claim.id: claim for claim in CLAIMS}


def record(claim_id: str, values, out_dir=None, note: str = "") -> dict:
    """Judge a claim from its per-seed values; append the row to out_dir/claims.jsonl when given."""
    if claim_id not in BY_ID:
        raise UserError(f"claim_id={claim_id!r} is not a known claim: choose one of {', '.join(BY_ID)}")
    claim = BY_ID[claim_id]
    result, mean, std, n = verdict(list(values), claim.threshold)
    row = {
        "claim": claim_id,
        "statement": claim.statement,
        "paper": claim.paper,
        "measured": claim.measured,
        "ours_mean": mean,
        "ours_std": std,
        "n": n,
        "verdict": result,
        "note": note,
    }
    if out_dir:
        path = Path(out_dir) / "claims.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
    return row


def scorecard(report_dir) -> pd.DataFrame:
    """Every claim, with the row its notebook recorded under report_dir, or 'not run' if none."""
    recorded = {}
    for path in sorted(Path(report_dir).glob("*/claims.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            recorded[row["claim"]] = row
    rows = []
    for claim in CLAIMS:
        row = recorded.get(claim.id) or {
            "claim": claim.id,
            "statement": claim.statement,
            "paper": claim.paper,
            "measured": claim.measured,
            "ours_mean": float("nan"),
            "ours_std": float("nan"),
            "n": 0,
            "verdict": "not run",
            "note": f"{claim.notebook} did not record it",
        }
        rows.append({**row, "notebook": claim.notebook})
    return pd.DataFrame(rows)
