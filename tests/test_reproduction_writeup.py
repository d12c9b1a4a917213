"""The citable reproduction report: generated from a run's files only, and the committed one in step with its evidence."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modekit.analysis import claims, plots
from modekit.analysis.stats import VERDICTS
from modekit.errors import UserError
from modekit.profiles import DOMAINS, PROFILES
from modekit.reproduction import writeup
from modekit.reproduction.report import write_report

DOCS = Path(__file__).resolve().parents[1] / "docs"
SIZES = {"letter": 12800, "satimage": 4118, "magic": 12172, "penbased": 7034, "fashion_mnist": 50000, "mnist": 50000,
         "sst2": 60614, "trec": 4906, "mr": 6823}  # fmt: skip


def _comparison(rng) -> pd.DataFrame:
    rows = []
    for dataset, domain in (("letter", "tabular"), ("mnist", "image")):
        for seed in range(4):
            for model, alpha in (("MoE", 0.0), ("MoDE", 0.1 if domain == "tabular" else 10.0)):
                rows.append({"dataset": dataset, "domain": domain, "model": model, "alpha": alpha, "weight_decay": 0.0, "seed": seed,
                             "epochs_run": 20, "best_epoch": 12, "train_seconds": 4.0 if domain == "tabular" else 30.0,
                             "val_accuracy": 0.9, "test_accuracy": 0.9 + rng.normal(0, 0.01)})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def report(tmp_path, monkeypatch):
    """A small report folder as `reproduce` writes it: two notebooks' claims, the comparison table, runs."""
    monkeypatch.setattr(writeup, "full_train_sizes", lambda: SIZES)
    rng = np.random.default_rng(0)
    out = tmp_path / "report"
    results = _comparison(rng)
    (out / "05_reproduction").mkdir(parents=True)
    results.to_csv(out / writeup.COMPARISON, index=False)
    from modekit.experiments.judge import mode_beats_moe

    claims.save(mode_beats_moe(results, ["tabular", "image"]), out / "05_reproduction")
    claims.record("ones_speedup", 3.0 + rng.normal(0, 0.1, 5), out / "04_ones_svd_gathering", bound=4.0)
    runs = pd.DataFrame({"notebook": ["04_ones_svd_gathering", "05_reproduction"], "status": "ok", "seconds": [61.0, 1234.5], "error": ""})
    write_report(out, runs, "laptop", 1300.0, {"jobs": 2})
    return out


def test_write_up_renders_every_number_from_the_evidence_it_exported(report, tmp_path):
    page = writeup.write_up(report, tmp_path / "docs" / "reproduction.md")
    evidence = tmp_path / "docs" / "reproduction"
    assert {p.name for p in evidence.iterdir()} == set(writeup.EVIDENCE_FILES)
    text = page.read_text()
    assert text == writeup.render(evidence, "reproduction/")  # the page is its evidence, rendered
    card = pd.read_csv(evidence / "scorecard.csv")
    tabular = card[(card.claim == "mode_beats_moe_tabular") & (card.scope == "all")].iloc[0]
    assert f"{100 * tabular.effect:+.2f} [{100 * tabular.ci_low:+.2f}, {100 * tabular.ci_high:+.2f}] points" in text
    assert "1300 s on" in text and "2 notebook(s) at a time" in text and "05_reproduction 1234 s" in text
    assert "## The plan, fixed before the run" in text and "| fashion_mnist, mnist" in text  # the plan the run recorded
    # a number changed in the evidence changes the page: nothing on it is typed
    card.loc[card.claim == "mode_beats_moe_tabular", "effect"] = 0.5
    card.to_csv(evidence / "scorecard.csv", index=False)
    assert "+50.00 [" in writeup.render(evidence, "reproduction/")


def test_full_cost_scales_the_measured_rate_to_the_full_profile(report):
    results = pd.read_csv(report / writeup.COMPARISON)
    cost = writeup.full_cost(results, "laptop", SIZES).set_index("dataset")
    # letter: 4 s per run of 20 epochs on min(12800, cap 4000) samples
    rate = 4.0 / (20 * 4000)
    assert cost.loc["letter", "seconds_per_sample_epoch"] == pytest.approx(rate)
    assert cost.loc["satimage", "seconds_per_sample_epoch"] == pytest.approx(rate)  # not measured: its domain's mean
    assert not cost.loc["satimage", "measured_here"] and cost.loc["letter", "measured_here"]
    # 4 alphas + 4 decays + 2 dense baselines, 5 seeds; 30 epochs on the full 12,800
    assert cost.loc["letter", "core_seconds"] == pytest.approx(rate * 12800 * 30 * (4 + 4 + 2) * 5)
    assert np.isnan(cost.loc["trec", "core_seconds"])  # no text set measured: no estimate


def test_write_up_never_overwrites_what_it_did_not_make(report, tmp_path):
    mine = tmp_path / "notes.md"
    mine.write_text("my own notes")
    with pytest.raises(UserError, match="writeup` did not make it"):
        writeup.write_up(report, mine)
    assert mine.read_text() == "my own notes"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("mine")
    with pytest.raises(UserError, match=r"holds files `writeup` did not make \(data.csv\)"):
        writeup.write_up(report, tmp_path / "other.md")
    page = writeup.write_up(report, tmp_path / "page.md")
    assert writeup.write_up(report, page) == page  # its own page is regenerated


def test_write_up_refuses_a_folder_that_is_not_a_report(tmp_path):
    with pytest.raises(UserError, match=r"report=.*no scorecard.csv"):
        writeup.write_up(tmp_path, tmp_path / "out.md")


def test_forest_table_is_in_claim_units_with_the_primary_claims_first(report):
    card = pd.read_csv(report / "scorecard.csv")
    table = claims.forest_table(card)
    assert "not run" not in set(table.verdict)
    first_secondary = table.index[table.label == "ones_speedup"][0]
    assert table.loc[: first_secondary - 1, "label"].str.contains(r"\(primary\)|^ +on ").all()
    speed = table[table.claim == "ones_speedup"].iloc[0]
    assert speed.units == "x" and speed.effect == pytest.approx(card[card.claim == "ones_speedup"].effect.iloc[0])
    tabular = table[(table.claim == "mode_beats_moe_tabular") & (table.scope == "all")].iloc[0]
    assert tabular.rope == pytest.approx(100 * claims.BY_ID["mode_beats_moe_tabular"].rope)
    fig = plots.forest(table, "every claim")
    assert len(fig.axes) == 2  # accuracy points, and the speed ratio
    assert (report / "forest.png").is_file()  # write_report draws it too
    assert "![every claim](forest.png)" in (report / "report.md").read_text()


def test_the_columns_reproduce_prints_are_the_scorecard_tables(report):
    from modekit.reproduction.report import TERMINAL_COLUMNS, scorecard_table

    shown = scorecard_table(pd.read_csv(report / "scorecard.csv"))
    assert set(TERMINAL_COLUMNS) <= set(shown.columns)  # a renamed column crashed the CLI after a whole laptop run


def test_report_shows_effects_in_points_and_provenance_as_a_table(report):
    text = (report / "report.md").read_text()
    assert re.search(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] points", text)
    assert "| commit" in text and "[provenance.json](provenance.json)" in text and '"packages"' not in text


def test_committed_reproduction_page_matches_its_evidence():
    """docs/reproduction.md is regenerated from docs/reproduction/ (a laptop run): it must not drift."""
    page, evidence = DOCS / "reproduction.md", DOCS / "reproduction"
    assert page.is_file() and evidence.is_dir(), "docs/reproduction.md and its evidence are committed"
    assert page.read_text() == writeup.render(evidence, "reproduction/"), "rerun `python -m modekit writeup REPORT`"
    # the laptop run answers every domain on every one of its real sets: a verdict row each, no exclusion
    card = pd.read_csv(evidence / "scorecard.csv")
    for domain in DOMAINS:
        rows = card[card.claim == f"mode_beats_moe_{domain}"]
        assert set(rows.scope) == {"all", *PROFILES["laptop"]["datasets"][domain]}, rows.to_string()
        assert set(rows.verdict) <= set(VERDICTS) and "excluded" not in rows.note.iloc[0]
