"""Scale-out on existing engines (docs/scaling.md): a local process pool and submitit's executors give
the tables of one process; the executors' bookkeeping (order, the concurrency cap submitit lacks,
a failing unit, a killed parent) is pinned with small fakes and real processes."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import modekit as mk
from modekit.cli import parser as cli
from modekit.errors import UserError
from modekit.executors import map_units, process_pool, resolve_workers, submitit_executor
from modekit.experiments.compare import compare_moe_mode
from modekit.ones.experiment import run_ones

TIMING = ["train_seconds"]  # wall times differ between any two runs; everything else must not
SWEEP = ["sweep", "--dataset", "subtasks", "--alphas", "0,0.1", "--seeds", "3", "--epochs", "3", "--vectorise", "no"]


def table(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "results.csv").drop(columns=TIMING)


@pytest.mark.slow
def test_sweep_with_two_workers_equals_one_process(tmp_path):
    assert cli.main([*SWEEP, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert cli.main([*SWEEP, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    one, two = table(tmp_path / "one"), table(tmp_path / "two")
    assert len(one) == 6 and one["test_accuracy"].nunique() > 1  # six different models, not one repeated
    pd.testing.assert_frame_equal(two, one)


@pytest.mark.slow
def test_compare_in_a_process_pool_equals_the_sequential_table():
    arguments = dict(seeds=(0, 1), train_config=mk.TrainConfig(epochs=2, progress=False), alphas=(0.1,), baselines=True, progress=False)
    sequential = compare_moe_mode(["subtasks", "wine"], **arguments)
    pool = process_pool(2)
    try:
        parallel = compare_moe_mode(["subtasks", "wine"], executor=pool, **arguments)
    finally:
        pool.shutdown()
    assert len(sequential) == 2 * 2 * 4  # datasets x seeds x (MoDE, MoE, two dense baselines)
    pd.testing.assert_frame_equal(parallel.drop(columns=TIMING), sequential.drop(columns=TIMING))


@pytest.mark.slow
def test_sweep_through_submitits_local_executor_equals_one_process(tmp_path):
    sweep = ["sweep", "--dataset", "subtasks", "--alphas", "0,0.1", "--seeds", "2", "--epochs", "3", "--vectorise", "no"]
    assert cli.main([*sweep, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    out = tmp_path / "submitit"
    assert cli.main([*sweep, "--executor", "submitit-local", "--workers", "4", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(table(out), table(tmp_path / "one"))
    assert len(list((out / "submitit").glob("*_result.pkl"))) == 4  # one submitit job per model
    with sqlite3.connect(out / "results.sqlite") as db:  # the jobs wrote the command's results store
        assert db.execute("SELECT COUNT(*) FROM results").fetchone() == (4,)


def test_ones_through_submitits_debug_executor_equals_one_process(tmp_path):
    arguments = dict(methods=("svd",), seeds=[0, 1], train_config=mk.TrainConfig(epochs=2, progress=False), mode_alpha=0.0)
    sequential = run_ones("wine", **arguments)
    debug = run_ones("wine", executor=submitit_executor("submitit-debug", tmp_path), **arguments)
    pd.testing.assert_frame_equal(debug, sequential)


def test_submitits_local_timeout_is_ours_not_its_two_minutes(tmp_path):
    executor = submitit_executor("submitit-local", tmp_path, timeout_min=45)
    assert executor._executor._executor.parameters["timeout_min"] == 45
    assert submitit_executor("submitit-local", tmp_path)._executor._executor.parameters["timeout_min"] == 60


class FakeJob:
    def __init__(self, executor, fn, args):
        self.executor, self.fn, self.args = executor, fn, args

    def result(self):
        self.executor.in_flight -= 1
        return self.fn(*self.args)


class FakeExecutor:
    """Runs a job when its result is asked for; records how many were in flight at once."""

    threads = None

    def __init__(self, workers):
        self.workers, self.in_flight, self.most, self.terminated = workers, 0, 0, False

    def submit(self, fn, *args):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        return FakeJob(self, fn, args)

    def terminate(self):
        self.terminated = True


def _square(x):
    if x < 0:
        raise UserError(f"x={x} is not allowed")
    return x * x


def test_map_units_keeps_the_order_and_caps_what_is_in_flight():
    executor = FakeExecutor(workers=3)
    assert map_units(executor, _square, [(i,) for i in range(10)]) == [i * i for i in range(10)]
    assert executor.most == 3
    assert map_units(None, _square, [(i,) for i in range(4)]) == [0, 1, 4, 9]


def test_a_failing_unit_stops_the_executor_and_is_raised():
    executor = FakeExecutor(workers=2)
    with pytest.raises(UserError, match="x=-1 is not allowed"):
        map_units(executor, _square, [(1,), (-1,), (2,), (3,)])
    assert executor.terminated


def test_a_failing_unit_in_a_process_pool_is_raised_as_itself():
    pool = process_pool(2)
    try:
        with pytest.raises(UserError, match="x=-2 is not allowed"):
            map_units(pool, _square, [(1,), (-2,), (3,)])
    finally:
        pool.shutdown()


def test_auto_workers_are_one_per_core_on_the_cpu_and_one_on_cuda(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert resolve_workers("auto", "cpu", units=10) == 4
    assert resolve_workers("auto", "cpu", units=2) == 2  # never more workers than units
    assert resolve_workers("auto", "cuda", units=10) == 1
    assert resolve_workers(3, "cuda", units=10) == 3
    with pytest.raises(UserError, match="workers=0 is not allowed"):
        resolve_workers(0, "cpu", units=3)


def test_a_missing_submitit_is_named_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    with pytest.raises(UserError, match=r"pip install 'modekit\[cluster\]'"):
        submitit_executor("slurm", tmp_path)


def _children(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            kids = [int(k) for k in (task / "children").read_text().split()]
            found += kids
            todo += kids
    return found


def _stored(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc (Linux)")
def test_workers_of_a_killed_parent_exit_and_a_rerun_resumes(tmp_path):
    """SIGKILL to the parent alone (no chance to stop its pool): its workers notice and exit."""
    args = ["sweep", "--dataset", "subtasks", "--alphas", "0,0.1", "--seeds", "3", "--epochs", "12", "--patience", "0", "--vectorise", "no",
            "--workers", "2", "--out", "cut"]  # fmt: skip
    child = subprocess.Popen([sys.executable, "-m", "modekit", *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _stored(tmp_path / "cut" / "results.sqlite") < 1 and child.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert child.poll() is None, "finished before the kill"
    workers = [p for p in _children(child.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
    assert len(workers) == 2
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    deadline = time.time() + 30
    while any(Path(f"/proc/{p}").exists() for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    alive = [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]
    assert not alive, f"workers {alive} outlived their killed parent"
    resumed = subprocess.run([sys.executable, "-m", "modekit", *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and "computed" in resumed.stderr, resumed.stderr
    kept = _stored(tmp_path / "cut" / "results.sqlite")
    assert kept == 6


@pytest.mark.slow
def test_a_rerun_served_by_the_store_starts_no_worker(tmp_path):
    from modekit.store import using_store
    from modekit.training.population import sweep_configs, train_population

    data = mk.data.load("wine", seed=0)
    configs = sweep_configs(mk.TrainConfig(epochs=2, progress=False), [0.0, 0.1], [0])
    with using_store(tmp_path / "results.sqlite") as store:
        pool = process_pool(2)
        try:
            first = train_population(data, None, configs, vectorise=False, progress=False, executor=pool)
        finally:
            pool.shutdown()
        again = process_pool(2)
        second = train_population(data, None, configs, vectorise=False, progress=False, executor=again)
        assert again._pool is None  # every model came from the store, read here
        assert store.counts() == (2, 2)
    assert [r.test_accuracy for r in second] == [r.test_accuracy for r in first]
