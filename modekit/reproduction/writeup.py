"""The citable reproduction report (docs/reproduction.md), generated from a run, never typed.

`export_evidence(report, evidence)` copies what the write-up rests on out of a report folder:
scorecard.csv, runs.csv, provenance.json, compute.csv (what each claim cost), full_cost.csv (the full
profile's estimated cost, from the measured per-model times) and the forest plot. `render(evidence)`
writes the Markdown from those files only, so a test can render the committed evidence and compare it
with the committed Markdown: a number typed by hand, or a stale one, fails it. `write_up` does both.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from modekit.analysis import claims, plots
from modekit.analysis.stats import RULE
from modekit.errors import UserError
from modekit.experiments.compare import setting_grids
from modekit.profiles import DOMAINS, PROFILES, domain_plan
from modekit.reproduction.report import provenance_table

EVIDENCE_FILES = ("scorecard.csv", "runs.csv", "provenance.json", "compute.csv", "full_cost.csv", "forest.png")
COMPARISON = "05_reproduction/comparison_results.csv"


def write_up(report: Path, out: Path) -> Path:
    """Export the evidence of `report` into a folder beside `out` (out's stem), then render `out`."""
    evidence = out.parent / out.stem
    export_evidence(report, evidence)
    out.write_text(render(evidence, f"{evidence.name}/"))
    return out


def export_evidence(report: Path, evidence: Path) -> None:
    report, evidence = Path(report), Path(evidence)
    for name in ("scorecard.csv", "runs.csv", "provenance.json", COMPARISON):
        if not (report / name).is_file():
            raise UserError(f"report={str(report)!r} is not allowed: it has no {name}; give a report folder that `modekit reproduce` wrote")
    evidence.mkdir(parents=True, exist_ok=True)
    for name in ("scorecard.csv", "runs.csv"):
        shutil.copyfile(report / name, evidence / name)
    record = json.loads((report / "provenance.json").read_text())
    if "plan" not in record:  # a run from before provenance recorded its plan: the profile's, said so
        record["plan"] = json.loads(json.dumps(PROFILES[record["profile"]]))
        record["plan_source"] = "modekit.profiles when the report was written up (the run's provenance did not record its plan)"
    (evidence / "provenance.json").write_text(json.dumps(record, indent=1) + "\n")
    card = pd.read_csv(report / "scorecard.csv")
    results = pd.read_csv(report / COMPARISON)
    profile = json.loads((report / "provenance.json").read_text())["profile"]
    compute_table(card, pd.read_csv(report / "runs.csv"), results).to_csv(evidence / "compute.csv", index=False)
    full_cost(results, profile, full_train_sizes()).to_csv(evidence / "full_cost.csv", index=False)
    title = f"Every claim: our effect and 95% interval against the paper's threshold ({profile} profile)"
    plots.save(plots.forest(claims.forest_table(card), title), evidence, "forest")


def compute_table(card: pd.DataFrame, runs: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per claim: the notebook that measured it and its wall seconds; for MoDE >= MoE per domain, the
    models trained and their training seconds summed (CPU seconds over the workers)."""
    seconds = dict(zip(runs.notebook, runs.seconds))
    rows = []
    for claim in claims.CLAIMS:
        row = {"claim": claim.id, "notebook": claim.notebook, "notebook_seconds": seconds.get(claim.notebook, np.nan)}
        domain = claim.id.removeprefix("mode_beats_moe_")
        part = results[results.domain == domain] if claim.id.startswith("mode_beats_moe_") else results.iloc[:0]
        row.update(models_trained=len(part) or np.nan, training_seconds=part.train_seconds.sum() if len(part) else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def full_train_sizes() -> dict[str, int]:
    """Each full-profile set's training-set size at its default split (loads them from $MODEKIT_DATA)."""
    from modekit.data import load

    return {name: load(name).sizes["train"] for domain in DOMAINS for name in domain_plan("full", domain)["datasets"]}


def full_cost(results: pd.DataFrame, measured_profile: str, full: dict[str, int]) -> pd.DataFrame:
    """The full profile's estimated cost per dataset: seconds per training sample and epoch measured
    here on the same set (MoE and MoDE runs; a set not measured takes its domain's mean, NaN where no
    set of the domain was), times its full training set (`full`: name -> size), its epochs and its
    models (compare's grids, 2 dense baselines, the profile's seeds), on this run's device."""
    runs = results[results.model.isin(["MoE", "MoDE"]) & results.dataset.isin(full)].copy()
    caps = PROFILES[measured_profile].get("max_train", {})
    runs["n_train"] = [min(full[n], caps.get(d) or full[n]) for n, d in zip(runs.dataset, runs.domain)]
    runs["per_sample_epoch"] = runs.train_seconds / (runs.epochs_run * runs.n_train)
    measured = runs.groupby("dataset").per_sample_epoch.mean()
    by_domain = runs.groupby("domain").per_sample_epoch.mean()
    rows = []
    for domain in DOMAINS:
        plan = domain_plan("full", domain)
        grid, decays = setting_grids(domain, plan["alphas"])
        models = (len(grid) + len(decays) + 2) * len(plan["seeds"])
        for name in plan["datasets"]:
            rate = measured.get(name, by_domain.get(domain, np.nan))
            seconds = rate * full[name] * plan["epochs"] * models  # before any budget rerun
            rows.append({"dataset": name, "domain": domain, "measured_here": name in measured.index, "seconds_per_sample_epoch": rate,
                         "train_samples": full[name], "epochs": plan["epochs"], "models": models, "core_seconds": seconds})  # fmt: skip
    return pd.DataFrame(rows)


def _number(value: float, claim_id: str, signed: bool = True) -> str:
    if value != value:
        return "-"
    value = value * claims.BY_ID[claim_id].scale
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _effect(row) -> str:
    units = claims.BY_ID[row.claim].units
    if row.verdict == "not run":
        return "not run"
    return f"{_number(row.effect, row.claim)} [{_number(row.ci_low, row.claim)}, {_number(row.ci_high, row.claim)}] {units}"


def answer_table(card: pd.DataFrame) -> str:
    """One row per claim (primary first), each followed by its per-set rows."""
    lines = [
        "| claim | the paper (its source) | ours: effect [95% interval] | threshold | n | p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in claims.forest_order(card).itertuples():
        if row.scope == "all":
            p = "-" if row.p != row.p else f"{row.p:.3g}" + ("" if row.p_holm != row.p_holm else f" ({row.p_holm:.3g})")
            lines.append(f"| **{row.claim}**: {row.statement} | {row.paper} ({row.source}) | {_effect(row)} | "
                         f"{row.threshold * claims.BY_ID[row.claim].scale:g} | {row.n} | {p} | **{row.verdict}** |")  # fmt: skip
        else:
            p = "-" if row.p != row.p else f"{row.p:.3g}"
            lines.append(f"| &nbsp;&nbsp;on `{row.scope}` | | {_effect(row)} | | {row.n} | {p} | {row.verdict} |")
    return "\n".join(lines)


def render(evidence: Path, link: str = "") -> str:
    """docs/reproduction.md from the evidence folder's files only (see the module docstring)."""
    evidence = Path(evidence)
    files = {name: pd.read_csv(evidence / f"{name}.csv") for name in ("scorecard", "runs", "compute", "full_cost")}
    record = json.loads((evidence / "provenance.json").read_text())
    parts = [*_answer(files["scorecard"], record, link), *_settings(), *_plan(record), *_cost(files, record), *_rerun(record, link)]
    return "\n\n".join(parts) + "\n"


def _answer(card: pd.DataFrame, record: dict, link: str) -> list[str]:
    summary = claims.forest_order(card)
    summary = summary[summary.scope == "all"]
    counts = ", ".join(f"{n} {verdict}" for verdict, n in summary.verdict.value_counts().items())
    return [
        "# Reproducing MoDE and OneS on a laptop: the reproduction report",
        f"*Generated by `python -m modekit writeup REPORT --out docs/reproduction.md` from the {record['profile']}-profile run of "
        f"{record['generated'][:10]} (modekit {record['modekit']}, commit `{record['git_commit'][:12]}`). Every number on this page "
        f"is read from the files in [`{link}`]({link}); `tests/test_reproduction_writeup.py` renders them again and fails when "
        "this page differs from them. Do not edit it by hand: rerun the command.*",
        "## The answer, claim by claim",
        f"{len(summary)} claims: {counts}. The unit of replication is the seed, an independent run with its own data split (the "
        "speedup: a timing block of one pair of models). Effects are in accuracy points unless the row says otherwise; intervals "
        f"are 95%. The verdict rule: {RULE}.",
        answer_table(card),
        f"![Every claim: our effect and 95% interval against its threshold, coloured by verdict]({link}forest.png)",
        "In one sentence each, generated from the row:",
        "\n".join(f"- {claims.describe(row)}" for row in summary.to_dict("records")),
    ]


def _settings() -> list[str]:
    rows = "\n".join(f"| {c.id} | {c.measured} | {c.deviation or claims.DEVIATION_DATA} |" for c in claims.CLAIMS)
    return ["## The papers' settings beside ours", "| claim | what we measure | deviations from the paper |\n|---|---|---|\n" + rows]


def _table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    """A Markdown table with the given columns formatted as given and a missing value shown as "-"."""
    shown = frame.astype(object).copy()
    for column, form in formats.items():
        shown[column] = [form.format(v) if v == v else "-" for v in frame[column]]
    return shown.to_markdown(index=False, disable_numparse=True)


def _plan(record: dict) -> list[str]:
    """The plan the run followed (recorded in its provenance), per domain, and why its caps remain."""
    plan = record.get("plan")
    if not plan:
        return []
    rows = []
    for domain, names in plan["datasets"].items():
        rows.append({"domain": domain, "datasets": ", ".join(names), "training cap": plan.get("max_train", {}).get(domain, "none"),
                     "validation cap": plan.get("max_val", {}).get(domain, "none"), "epochs": plan["epochs"][domain],
                     "alphas": ", ".join(f"{a:g}" for a in plan.get("alphas", {}).get(domain, [])) or "the default grid",
                     "seeds": plan.get("seeds", {}).get(domain, 5)})  # fmt: skip
    doublings = plan.get("budget_doublings", 0)
    rules = f"Budget rule: a dataset-seed still improving at its last epoch is rerun with twice the epochs, at most {doublings} time(s)."
    ones = plan.get("ones", {})
    if ones:
        rules += (f" OneS's dataset: the first of {', '.join(ones['candidates'])} where the MoE beats the dense model on every one of "
                  f"the tuning seeds {', '.join(map(str, ones['tuning_seeds']))} (never used again).")  # fmt: skip
    capped = f" Caps that remain, and why: {plan['why_capped']}." if plan.get("why_capped") else ""
    source = f" (Source of this table: {record['plan_source']}.)" if record.get("plan_source") else ""
    return ["## The plan, fixed before the run", pd.DataFrame(rows).to_markdown(index=False), rules + capped + source]


def _cost(files: dict, record: dict) -> list[str]:
    runs, cost = files["runs"], files["full_cost"]
    per_notebook = ", ".join(f"{n} {s:.0f} s" for n, s in zip(runs.notebook, runs.seconds))
    core_hours = cost.core_seconds.sum() / 3600
    return [
        "## What each claim cost",
        f"Wall time of the whole run: {record.get('wall_seconds', runs.seconds.sum()):.0f} s on {record['device']}, "
        f"{record['parameters'].get('jobs', 1)} notebook(s) at a time; per notebook: {per_notebook}. The notebook that measures a "
        "claim measures others too, so its seconds are shared; the comparison's training seconds are summed over its worker "
        "processes (CPU seconds).",
        _table(files["compute"], {"notebook_seconds": "{:.0f}", "models_trained": "{:.0f}", "training_seconds": "{:.0f}"}),
        "## The full profile's cost (estimated)",
        "From the seconds per training sample and epoch measured in this run (a set not measured here takes its domain's mean), "
        "times each set's full training set, the full profile's epochs and its models; before any budget rerun. On this run's "
        f"device: {core_hours:.1f} core-hours, about {core_hours / 2:.1f} hours on the 2-core machine. On one GPU: not measured "
        "(no GPU was lent to this run); `modekit bench --device cuda` measures the step there.",
        _table(cost, {"seconds_per_sample_epoch": "{:.2e}", "core_seconds": "{:.0f}"}),
        "## What was easy, what was difficult",
        "- Easy: the MoDE loss itself (one L2 term between the experts' outputs) and SVD gathering (a truncated SVD per expert).\n"
        "- Difficult: enough seeds for a verdict on a laptop (a real-data verdict needs the whole hour); telling a gain that "
        "matters from noise when the paper gives single runs; the papers' numbers could only be read from their abstracts and "
        "the project's summaries (each row says which); OneS's benefit ratio, which means nothing unless the MoE clearly beats "
        "the dense model (so its dataset is chosen by a rule fixed in advance, on seeds not used again).",
    ]


def _rerun(record: dict, link: str) -> list[str]:
    command = f"python -m modekit reproduce --profile {record['profile']} --jobs {record['parameters'].get('jobs', 1)}"
    provenance = provenance_table(record)
    return [
        "## How to rerun it",
        f"```bash\nMODEKIT_DATA=/path/to/data {command}   # prints its report folder; then:\n"
        "python -m modekit writeup reports/<that folder> --out docs/reproduction.md\n```\n\nA rerun with the same `--out` "
        "resumes from its results store. Where to get the data and their checksums: `data/manifest.csv`.",
        "## Provenance",
        provenance.to_markdown(index=False) + f"\n\nEverything else: [`provenance.json`]({link}provenance.json).",
    ]
