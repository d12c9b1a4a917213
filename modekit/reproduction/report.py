"""The report of a batch reproduction: report.md and report.html (notebook runs, the scorecard with
its rule, provenance, every figure and table), scorecard.csv, runs.csv and provenance.json."""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path

import pandas as pd

from modekit.analysis import plots
from modekit.analysis.claims import BY_ID, forest_table, scorecard, shown
from modekit.analysis.stats import RULE
from modekit.reproduction.provenance import collect_provenance

STATUS_FILE = "status.json"  # complete or not, notebooks per status, results reused / computed


def write_report(
    out: Path,
    runs: pd.DataFrame,
    profile: str,
    wall: float,
    parameters: dict | None = None,
    complete: bool = True,
    reuse: dict | None = None,
) -> Path:
    """report.md and report.html: run table, scorecard with its rule, every figure and table, and
    provenance.json (what is needed to rerun it); status.json says whether the run completed. An
    interrupted run's report says so at its top: its scorecard covers only the notebooks that ran."""
    counts = runs.status.value_counts().to_dict()
    status = {"complete": complete, "notebooks": len(runs), "completed": int(counts.get("ok", 0)) + int(counts.get("failed", 0)),
              "status": {k: int(v) for k, v in counts.items()}, "results": reuse or {}}  # fmt: skip
    (out / STATUS_FILE).write_text(json.dumps(status, indent=1) + "\n")
    card = scorecard(out)
    card.to_csv(out / "scorecard.csv", index=False)
    if (card.verdict != "not run").any():
        plots.save(
            plots.forest(forest_table(card), f"Every claim: effect and 95% interval against its threshold ({profile})"), out, "forest"
        )
    runs.to_csv(out / "runs.csv", index=False)
    record = collect_provenance(profile, parameters or {}, runs) | {"wall_seconds": round(wall, 1)}
    (out / "provenance.json").write_text(json.dumps(record, indent=1) + "\n")
    warning = "" if complete else (
        f"**INCOMPLETE: the run was interrupted after {status['completed']} of {len(runs)} notebooks; "
        "rerun the same command to resume.**"
    )  # fmt: skip
    stored = f"Results store: reused {reuse['reused']}, computed {reuse['computed']}." if reuse else ""
    parts = {"profile": profile, "warning": warning, "wall": wall, "stored": stored, "runs": runs, "card": scorecard_table(card),
             "record": record, "figures": sorted(out.glob("*/*.png")), "tables": sorted(out.glob("*/*.csv")), "out": out}  # fmt: skip
    (out / "report.md").write_text(_markdown(**parts))
    (out / "report.html").write_text(_html(**parts))
    return out / "report.md"


def _markdown(profile, warning, wall, stored, runs, card, record, figures, tables, out) -> str:
    """report.md: status, notebooks, scorecard with its rule, provenance, figures and tables."""
    markdown = [
        f"# modekit reproduction report ({profile} profile)",
        *([f"\n{warning}"] if warning else []),
        f"\nGenerated {datetime.datetime.now():%Y-%m-%d %H:%M}, wall time {wall:.0f} s. {stored}\n",
        "## Notebooks\n",
        runs.to_markdown(index=False),
        "\n## Scorecard\n",
        f"{UNIT_TEXT} Verdict rule: {RULE}.\n",
        *(["![every claim](forest.png)\n"] if (out / "forest.png").is_file() else []),
        card.to_markdown(index=False),
        "\n## Provenance\n",
        provenance_table(record).to_markdown(index=False) + "\n\nEverything else: [provenance.json](provenance.json)",
        "\n## Figures\n",
        *[f"### {p.parent.name}/{p.stem}\n\n![{p.stem}]({p.relative_to(out)})\n" for p in figures],
        "\n## Tables\n",
        *[f"- [{p.relative_to(out)}]({p.relative_to(out)})" for p in tables],
    ]
    return "\n".join(markdown) + "\n"


def _html(profile, warning, wall, stored, runs, card, record, figures, tables, out) -> str:
    """report.html: the same as report.md, as one page."""
    page = [
        "<!doctype html><html><head><meta charset='utf-8'><title>modekit reproduction report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:100%}.failed{color:#b00}</style></head><body>",
        f"<h1>modekit reproduction report ({html.escape(profile)} profile)</h1>",
        f"<p class='failed'><b>{html.escape(warning.strip('*'))}</b></p>" if warning else "",
        f"<p>wall time {wall:.0f} s. {html.escape(stored)}</p>",
        "<h2>Notebooks</h2>",
        runs.to_html(index=False, classes="runs"),
        "<h2>Scorecard</h2>",
        f"<p>{html.escape(UNIT_TEXT)} Verdict rule: {html.escape(RULE)}.</p>",
        "<img src='forest.png' alt='every claim: effect and 95% interval'>" if (out / "forest.png").is_file() else "",
        card.to_html(index=False),
        "<h2>Provenance</h2>" + provenance_table(record).to_html(index=False) + "<p><a href='provenance.json'>provenance.json</a></p>",
        "<h2>Figures</h2>",
        *[f"<h3>{html.escape(p.parent.name)}/{html.escape(p.stem)}</h3><img src='{p.relative_to(out)}'>" for p in figures],
        "<h2>Tables</h2><ul>",
        *[f"<li><a href='{p.relative_to(out)}'>{p.relative_to(out)}</a></li>" for p in tables],
        "</ul></body></html>",
    ]
    return "\n".join(page)


UNIT_TEXT = (
    "One replicate is a seed: an independent run with its own data split (the speedup: a timing block of one pair of models). "
    "Effects, intervals, thresholds and detectable effects are in accuracy points unless the claim's unit says otherwise."
)


TERMINAL_COLUMNS = ["claim", "scope", "paper (source)", "ours: effect [95% CI]", "p", "n", "verdict"]  # what `reproduce` prints


def scorecard_table(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard as shown: effect [95% CI] in the claim's units (accuracy points, x) with two decimals, p, n."""
    units = card.claim.map(lambda c: BY_ID[c].units)
    return pd.DataFrame(
        {
            "claim": card.claim,
            "scope": card.scope,
            "paper (source)": [f"{p} ({s})" for p, s in zip(card.paper, card.source)],
            "ours: effect [95% CI]": [
                "-" if e != e else f"{shown(e, c)} [{shown(lo, c)}, {shown(hi, c)}] {u}"
                for e, lo, hi, c, u in zip(card.effect, card.ci_low, card.ci_high, card.claim, units)
            ],
            "threshold": [f"{t * BY_ID[c].scale:g}" for t, c in zip(card.threshold, card.claim)],
            "p": ["-" if p != p else f"{p:.2g}" for p in card.p],
            "p (Holm)": ["-" if p != p else f"{p:.2g}" for p in card.get("p_holm", pd.Series(float("nan"), index=card.index))],
            "n": card.n,
            "verdict": card.verdict,
            "detectable": [shown(d, c, signed=False) for d, c in zip(card.detectable, card.claim)],
            "note": card.note,
        }
    )


def provenance_table(record: dict) -> pd.DataFrame:
    """The provenance a reader checks first, as a short table (the rest: provenance.json)."""
    checksums = record.get("data_sha256")
    files = checksums if isinstance(checksums, str) else f"{len(checksums or {})} files, sha256 in provenance.json"
    keys = {"modekit": record.get("modekit"), "commit": record.get("git_commit"), "python": record.get("python"),
            "torch": record.get("packages", {}).get("torch"), "device": record.get("device"), "profile": record.get("profile"),
            "generated": record.get("generated"), "data files": files}  # fmt: skip
    return pd.DataFrame({"": list(keys), "value": list(keys.values())})
