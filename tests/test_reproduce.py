"""The batch reproduction: a fast report is regenerated and its scorecard is complete; a failing
notebook does not stop the others; reports are never overwritten silently."""

import json
import shutil
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from modekit import reproduce as batch
from modekit.claims import CLAIMS, record, scorecard, verdict


@pytest.fixture(scope="module")
def fast_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "fast"
    report, runs = batch.reproduce("fast", out, progress=False)
    return out, report, runs


def test_fast_report_has_every_notebook_figure_and_claim(fast_report):
    out, report, runs = fast_report
    assert list(runs.notebook) == batch.NOTEBOOKS
    assert (runs.status == "ok").all(), runs[runs.status != "ok"].to_string()
    for name in batch.NOTEBOOKS:
        executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert executed.metadata["papermill"]["parameters"]["FAST"] is True
        assert list((out / name).glob("*.png")), f"{name} wrote no figure"
    card = pd.read_csv(out / "scorecard.csv")
    assert list(card.claim) == [c.id for c in CLAIMS]
    assert set(card.verdict) <= {"reproduced", "not reproduced", "inconclusive"}  # none 'not run'
    text = report.read_text()
    assert "## Scorecard" in text and "Verdict rule" in text and text.count("![") == len(list(out.glob("*/*.png")))
    assert (out / "report.html").read_text().count("<img") == len(list(out.glob("*/*.png")))


def test_existing_report_is_not_overwritten(fast_report, tmp_path):
    out, _, _ = fast_report
    before = (out / "report.md").read_text()
    with pytest.raises(ValueError, match="exists and is not empty"):
        batch.reproduce("fast", out, notebooks=["00_quickstart"], progress=False)
    assert (out / "report.md").read_text() == before


def test_failing_notebook_is_reported_and_the_others_run(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name, source in (("good", "FAST = None\nOUT_DIR = None"), ("bad", "FAST = None\nOUT_DIR = None\nraise RuntimeError('boom')")):
        nb = new_notebook(cells=[new_code_cell(source, metadata={"tags": ["parameters"]})])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, notebooks / f"{name}.ipynb")
    monkeypatch.setattr(batch, "NOTEBOOK_DIR", notebooks)
    report, runs = batch.reproduce("fast", tmp_path / "out", notebooks=["bad", "good"], progress=False)
    assert runs.set_index("notebook").status.to_dict() == {"bad": "failed", "good": "ok"}
    assert "boom" in runs.set_index("notebook").error["bad"]
    executed = nbformat.read(tmp_path / "out" / "bad.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in executed.cells for o in c.get("outputs", []))
    assert "failed" in report.read_text()
    card = scorecard(tmp_path / "out")
    assert (card.verdict == "not run").all()


def test_cli_reproduce_exits_nonzero_on_bad_profile():
    out = subprocess.run([sys.executable, "-m", "modekit", "reproduce", "--profile", "huge"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'huge'" in out.stderr


@pytest.mark.parametrize(
    "values, expected",
    [([0.02, 0.03, 0.025], "reproduced"), ([-0.02, -0.03, -0.025], "not reproduced"), ([0.05, -0.04, 0.0], "inconclusive"), ([0.5], "inconclusive")],
)
def test_verdict_rule(values, expected):
    assert verdict(values)[0] == expected


def test_record_appends_and_rejects_unknown(tmp_path):
    record("ones_speedup", [2.0, 2.5, 3.0], tmp_path / "04")
    row = json.loads((tmp_path / "04" / "claims.jsonl").read_text())
    assert row["verdict"] == "reproduced" and row["ours_mean"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="claim_id='nope'"):
        record("nope", [1.0])
