"""Tests of modekit.reproduction."""

import json
import os
import re
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import modekit as mk
from modekit.analysis.claims import CLAIMS, OVERHEAD, record, scorecard
from modekit.analysis.stats import VERDICTS
from modekit.reproduction import runner as batch


def test_force_never_deletes_a_folder_the_kit_did_not_make(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_text("two years of work")
    for force in (True, False):
        with pytest.raises(mk.UserError, match="was not made by modekit"):
            batch.prepare_out(folder, force=force)
    assert (folder / "thesis.txt").read_text() == "two years of work"


def test_force_replaces_an_earlier_report(tmp_path):
    report = batch.prepare_out(tmp_path / "report", force=False)
    (report / "old.md").write_text("old")
    assert (report / batch.REPORT_MARKER).is_file()
    resumed = batch.prepare_out(report, force=False)  # the same --out again: resumed, nothing deleted
    assert (resumed / "old.md").read_text() == "old"
    again = batch.prepare_out(report, force=True)
    assert not (again / "old.md").exists() and (again / batch.REPORT_MARKER).is_file()


# The regenerated report is "a run with other seeds": every lesson runs from seed 10 (nbval runs them
# from seed 0), so each generated sentence and each in-notebook assert must hold on seeds the lessons
# were not written on. Two kernels at once; 05 sets the pace.
REPORTED = list(batch.NOTEBOOKS)
OTHER_SEEDS = 10


@pytest.fixture(scope="module")
def fast_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "fast"
    report, runs = batch.reproduce("fast", out, notebooks=REPORTED, progress=False, jobs=2, first_seed=OTHER_SEEDS)
    return out, report, runs


@pytest.mark.slow
def test_fast_report_has_every_notebook_figure_and_claim(fast_report):
    out, report, runs = fast_report
    assert list(runs.notebook) == REPORTED
    assert (runs.status == "ok").all(), runs[runs.status != "ok"].to_string()
    for name in REPORTED:
        executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert executed.metadata["papermill"]["parameters"]["FAST"] is True
        assert executed.metadata["papermill"]["parameters"]["FIRST_SEED"] == OTHER_SEEDS
        assert list((out / name).glob("*.png")), f"{name} wrote no figure"
    card = pd.read_csv(out / "scorecard.csv")
    ran = card.notebook.isin(REPORTED)
    assert ran.all() and set(card.verdict) <= {*VERDICTS, OVERHEAD}  # every claim has a verdict
    summary = card[card.scope == "all"]
    assert list(summary.claim) == [c.id for c in CLAIMS]
    reproduced = card[card.verdict == "reproduced"]
    assert ((reproduced.ci_low > reproduced.threshold) | (reproduced.ci_high < reproduced.threshold)).all()
    inconclusive = card[(card.verdict == "inconclusive") & (card.n >= 2)]
    assert inconclusive.detectable.notna().all(), inconclusive.to_string()
    text = report.read_text()
    figures = len(list(out.glob("*/*.png"))) + 1  # and the forest plot of every claim
    assert "## Scorecard" in text and "Verdict rule" in text and text.count("![") == figures and (out / "forest.png").is_file()
    assert (out / "report.html").read_text().count("<img") == figures


@pytest.mark.slow
def test_the_run_with_other_seeds_used_them_and_its_generated_prose_has_no_missing_number(fast_report):
    out, _, _ = fast_report
    tables = [pd.read_csv(path) for path in sorted(out.glob("*/*.csv"))]
    seeds = pd.concat([table.seed for table in tables if "seed" in table.columns])
    assert len(seeds) and seeds.min() >= OTHER_SEEDS, "a lesson ignored FIRST_SEED"
    for name in REPORTED:
        cells = nbformat.read(out / f"{name}.ipynb", as_version=4).cells
        generated = [o["data"]["text/markdown"] for c in cells for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
        assert generated, f"{name} generated no prose from its run"
        assert not [text for text in generated if re.search(r"\bnan\b", text, flags=re.I)], f"{name}: a generated sentence says nan"


@pytest.mark.slow
def test_fast_report_is_complete_and_its_results_are_stored(fast_report):
    out, _, _ = fast_report
    status = json.loads((out / "status.json").read_text())
    assert status["complete"] is True and status["completed"] == len(REPORTED)
    assert status["results"]["computed"] >= status["results"]["stored"] > 0  # a new report computes and stores every result


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


def _write_notebooks(folder, sources):
    folder.mkdir(exist_ok=True)
    for name, source in sources.items():
        nb = new_notebook(cells=[new_code_cell("FAST = None\nOUT_DIR = None", metadata={"tags": ["parameters"]}), new_code_cell(source)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 3])
def test_dead_kernel_and_hung_cell_fail_their_notebooks_and_the_others_run(tmp_path, monkeypatch, jobs):
    _write_notebooks(
        tmp_path / "notebooks",
        {
            "dies": "import os\nos._exit(1)",
            "hangs": "import time\ntime.sleep(60)",
            "good": "print('ran')",
        },
    )
    monkeypatch.setattr(batch, "NOTEBOOK_DIR", tmp_path / "notebooks")
    (tmp_path / "out").mkdir()
    runs = batch.run_notebooks(tmp_path / "out", notebooks=["dies", "hangs", "good"], progress=False, cell_timeout=3, jobs=jobs)
    runs = runs.set_index("notebook")
    assert runs.status.to_dict() == {"dies": "failed", "hangs": "failed", "good": "ok"}
    assert runs.error["dies"].startswith("DeadKernelError")
    assert "timed out" in runs.error["hangs"], runs.error["hangs"]
    assert runs.seconds["hangs"] < 30  # stopped by the cell timeout, not by the cell finishing


@pytest.mark.slow
def test_parallel_notebooks_start_the_longest_first_and_report_in_their_own_order(tmp_path, monkeypatch):
    starts = tmp_path / "starts.txt"  # each notebook appends its name as its first cell runs
    write = f"open({str(starts)!r}, 'a').write(%r + '\\n')"
    _write_notebooks(
        tmp_path / "notebooks",
        {
            "short_a": write % "short_a",
            # finishes only once "long" has started (at most 60 s): the order below does not rest on kernel start-up times
            "short_b": write % "short_b" + f"\nimport time\nwhile 'long' not in open({str(starts)!r}).read():\n    time.sleep(0.1)",
            "long": write % "long",
        },
    )
    monkeypatch.setattr(batch, "NOTEBOOK_DIR", tmp_path / "notebooks")
    monkeypatch.setitem(batch.EXPECTED_SECONDS, "fast", {"short_a": 1, "short_b": 2, "long": 100})
    (tmp_path / "out").mkdir()
    runs = batch.run_notebooks(tmp_path / "out", notebooks=["short_a", "short_b", "long"], progress=False, cell_timeout=60, jobs=2)
    assert list(runs.notebook) == ["short_a", "short_b", "long"] and set(runs.status) == {"ok"}
    # two at a time: the longest and the next longest start together, the shortest when one has finished
    assert sorted(starts.read_text().split()[:2]) == ["long", "short_b"] and starts.read_text().split()[2] == "short_a"


def test_fast_kernels_get_one_thread_and_the_environment_is_restored(tmp_path, monkeypatch):
    _write_notebooks(
        tmp_path / "notebooks",
        {
            "threads": "import os, torch\nassert os.environ['OMP_NUM_THREADS'] == '1', os.environ.get('OMP_NUM_THREADS')\n"
            "assert torch.get_num_threads() == 1, torch.get_num_threads()",
        },
    )
    monkeypatch.setattr(batch, "NOTEBOOK_DIR", tmp_path / "notebooks")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    (tmp_path / "out").mkdir()
    runs = batch.run_notebooks(tmp_path / "out", "fast", notebooks=["threads"], progress=False)
    assert runs.status.tolist() == ["ok"], runs.error.tolist()
    assert os.environ["OMP_NUM_THREADS"] == "7"


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("cell_timeout", 0, "cell_timeout=0 is not allowed"),
        ("threads", 0, "threads=0 is not allowed"),
        ("jobs", 0, "jobs=0 is not allowed"),
        ("notebooks", ["nope"], "notebook 'nope' not found"),
        ("first_seed", -1, "first_seed=-1 is not allowed"),
        ("first_seed", "10", "first_seed='10' is not allowed"),
    ],
)
def test_bad_run_options_are_refused_before_anything_is_replaced(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=message):
        batch.run_notebooks(tmp_path, **{"notebooks": ["00_quickstart"], "progress": False, option: value})
    report = tmp_path / "previous-report"
    report.mkdir()
    (report / "notes.md").write_text("mine")
    with pytest.raises(ValueError, match=message):
        batch.reproduce("fast", report, force=True, **{"notebooks": ["00_quickstart"], "progress": False, option: value})
    assert (report / "notes.md").read_text() == "mine"  # --force only replaces a report once the options are valid


def test_cli_reproduce_exits_nonzero_on_bad_profile():
    out = subprocess.run([sys.executable, "-m", "modekit", "reproduce", "--profile", "huge"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'huge'" in out.stderr


def test_record_appends_and_rejects_unknown(tmp_path):
    record("ones_speedup", [2.0, 2.5, 3.0], tmp_path / "04", bound=4.0)
    row = json.loads((tmp_path / "04" / "claims.jsonl").read_text())
    assert row["verdict"] == "reproduced" and row["effect"] == pytest.approx(2.5) and row["ci_low"] > 1.0
    with pytest.raises(ValueError, match="claim_id='nope'"):
        record("nope", [1.0])


def test_solutions_of_names_each_lessons_solutions_notebook():
    assert batch.solutions_of(["00_quickstart", "05_reproduction"]) == ["solutions/00_solutions", "solutions/05_solutions"]
    assert batch.solutions_of(["solutions/00_solutions"]) == []  # a solutions notebook has no solutions of its own


@pytest.mark.slow
def test_reproduce_with_solutions_runs_them_into_the_report(tmp_path):
    report, runs = batch.reproduce("fast", tmp_path / "r", notebooks=["00_quickstart"], progress=False, with_solutions=True)
    assert list(runs.notebook) == ["00_quickstart", "solutions/00_solutions"]
    assert (runs.status == "ok").all(), runs.to_string()
    assert (tmp_path / "r" / "solutions" / "00_solutions.ipynb").is_file()
    assert "solutions/00_solutions" in report.read_text()
