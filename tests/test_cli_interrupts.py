"""Clean interrupts: `sweep` and `reproduce` stopped mid-run by SIGINT (Ctrl-C), SIGTERM or SIGKILL
keep every finished result; a rerun of the same command resumes, reuses them, and ends with the
results of an uninterrupted run. Each child runs in its own session (process group) and gets the
signal as a terminal's Ctrl-C would send it: to the whole group."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import nbformat
import pandas as pd
import pytest

TIMING = ["train_seconds"]  # wall times differ between any two runs; everything else must not
SWEEP = [
    "sweep",
    "--dataset",
    "wine",
    "--alphas",
    "0,0.1,1",
    "--seeds",
    "3",
    "--epochs",
    "40",
    "--patience",
    "0",
    "--vectorise",
    "no",
    "--workers",  # a local pool: what a laptop runs by default (one worker per core)
    "2",
    "--out",
]
REPRODUCE = ["reproduce", "--only", "00_quickstart", "--out"]


def modekit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "modekit", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def stored(path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:  # not made yet
        return 0


def _default_sigint():
    """A background job of a non-interactive shell (as CI may start pytest) ignores SIGINT, and a
    child inherits that: give the child the default, so that Ctrl-C reaches it as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after(args, cwd, store, rows: int, sig) -> subprocess.CompletedProcess:
    """Run modekit in its own process group; send `sig` to the group once the store holds `rows` results."""
    child = subprocess.Popen([sys.executable, "-m", "modekit", *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_default_sigint)  # fmt: skip
    deadline = time.time() + 300
    while stored(store) < rows and child.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert child.poll() is None, f"finished before the signal: {child.communicate()}"
    os.killpg(child.pid, sig)
    out, err = child.communicate(timeout=300)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.mark.slow
def test_sweep_interrupted_by_int_term_and_kill_resumes_to_the_uninterrupted_result(tmp_path):
    assert modekit(*SWEEP, "whole", cwd=tmp_path).returncode == 0
    store = tmp_path / "cut" / "results.sqlite"
    pattern = r"interrupted: (\d+) of 9 results kept in cut; rerun the same command to resume"
    ctrl_c = interrupt_after([*SWEEP, "cut"], tmp_path, store, 2, signal.SIGINT)
    assert ctrl_c.returncode == 130 and re.fullmatch(pattern, last_line(ctrl_c.stderr)), ctrl_c.stderr
    assert "Traceback" not in ctrl_c.stderr and int(re.fullmatch(pattern, last_line(ctrl_c.stderr))[1]) == stored(store)
    term = interrupt_after([*SWEEP, "cut"], tmp_path, store, stored(store) + 1, signal.SIGTERM)
    assert term.returncode == 143 and re.fullmatch(pattern, last_line(term.stderr)), term.stderr
    killed = interrupt_after([*SWEEP, "cut"], tmp_path, store, stored(store) + 1, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    kept = stored(store)
    assert 4 <= kept < 9
    resumed = modekit(*SWEEP, "cut", cwd=tmp_path)
    assert resumed.returncode == 0 and f"reused {kept}, computed {9 - kept}" in resumed.stderr, resumed.stderr
    whole, cut = (pd.read_csv(tmp_path / name / "results.csv").drop(columns=TIMING) for name in ("whole", "cut"))
    pd.testing.assert_frame_equal(cut, whole)


@pytest.mark.slow
def test_reproduce_interrupted_then_killed_resumes_to_the_uninterrupted_result(tmp_path):
    assert modekit(*REPRODUCE, "whole", cwd=tmp_path).returncode == 0
    out = tmp_path / "cut"
    ctrl_c = interrupt_after([*REPRODUCE, "cut"], tmp_path, out / "results.sqlite", 1, signal.SIGINT)
    assert ctrl_c.returncode == 130, ctrl_c.stderr
    assert re.fullmatch(r"interrupted: 0 of 1 notebooks and \d+ results kept in cut \(report marked incomplete\); rerun the same command"
                        " to resume", last_line(ctrl_c.stderr)), ctrl_c.stderr  # fmt: skip
    status = json.loads((out / "status.json").read_text())
    assert status["complete"] is False and status["status"] == {"interrupted": 1}
    assert "INCOMPLETE" in (out / "report.md").read_text() and "INCOMPLETE" in (out / "report.html").read_text()
    executed = nbformat.read(out / "00_quickstart.ipynb", as_version=4)
    states = [cell.metadata.papermill for cell in executed.cells]
    assert executed.metadata.papermill["interrupted"] is True and "pending" in [s["status"] for s in states]
    assert all(s["end_time"] for s in states if s["status"] == "completed")  # nothing labelled completed that did not run
    killed = interrupt_after([*REPRODUCE, "cut"], tmp_path, out / "results.sqlite", stored(out / "results.sqlite") + 1, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    time.sleep(3)  # the orphaned kernel notices its parent is gone within a second and exits
    kept = stored(out / "results.sqlite")
    resumed = modekit(*REPRODUCE, "cut", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["complete"] is True and status["results"]["reused"] == kept >= 2
    assert "INCOMPLETE" not in (out / "report.md").read_text()
    whole, cut = (pd.read_csv(tmp_path / name / "00_quickstart" / "quickstart.csv").drop(columns=TIMING) for name in ("whole", "cut"))
    pd.testing.assert_frame_equal(cut, whole)
