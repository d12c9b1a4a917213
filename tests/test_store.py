"""The results store: finished units are reused on a rerun with results identical to an
uninterrupted run; the key changes with the configuration, the data and the kit's version; two
processes may write one store at once."""

import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch

import modekit as mk
from modekit import store as results_store
from modekit.cli.parser import main
from modekit.ones.experiment import run_ones
from modekit.store import ResultsStore, using_store
from modekit.training.population import sweep_configs, train_population

TIMING = ["train_seconds"]  # wall times differ between any two runs; everything else must not


@pytest.fixture(scope="module")
def wine():
    return mk.load("wine", seed=0)


def _table(results):
    return mk.results_frame(results).drop(columns=TIMING)


def _histories(results):
    return [r.history.drop(columns=["seconds"]) for r in results]


@pytest.mark.parametrize("vectorise", [False, True])
def test_population_resumed_equals_uninterrupted(wine, tmp_path, vectorise):
    configs = sweep_configs(mk.TrainConfig(epochs=4, progress=False), [0.0, 0.1], [0, 1])
    uninterrupted = train_population(wine, None, configs, vectorise=vectorise, progress=False)
    with using_store(tmp_path / "r.sqlite") as store:
        first = train_population(wine, None, configs[:2] if not vectorise else configs, vectorise=vectorise, progress=False)
        assert store.counts() == (0, len(first))
    with using_store(tmp_path / "r.sqlite") as store:
        resumed = train_population(wine, None, configs, vectorise=vectorise, progress=False)
        assert store.counts() == ((2, 2) if not vectorise else (4, 0))
    pd.testing.assert_frame_equal(_table(resumed), _table(uninterrupted))
    for a, b in zip(_histories(resumed), _histories(uninterrupted)):
        pd.testing.assert_frame_equal(a, b)
    for a, b in zip(resumed, uninterrupted):  # the weights too: what a notebook does next with the model is the same
        for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            assert torch.equal(p, q), name
    assert resumed[0].train_seconds == first[0].train_seconds  # reused, not recomputed


def test_vectorised_population_is_reused_only_whole(wine, tmp_path):
    configs = sweep_configs(mk.TrainConfig(epochs=2, progress=False), [0.0, 0.1], [0])
    with using_store(tmp_path / "r.sqlite") as store:
        train_population(wine, None, configs[:1], vectorise=True, progress=False)
        train_population(wine, None, configs, vectorise=True, progress=False)  # one member stored as a population of 1: not reused
        assert store.counts() == (0, 3)


def test_reused_model_restores_the_rng_state(wine, tmp_path):
    config = mk.TrainConfig(epochs=2, progress=False)
    with using_store(tmp_path / "r.sqlite"):
        mk.train(wine, None, config)
        after_training = torch.rand(3)
        mk.train(wine, None, config)
        after_reuse = torch.rand(3)
    assert torch.equal(after_training, after_reuse)


def test_key_changes_with_config_data_and_version(wine, tmp_path, monkeypatch):
    config = mk.TrainConfig(epochs=1, progress=False)
    other = mk.load("wine", seed=1)  # another split: other data
    with using_store(tmp_path / "r.sqlite") as store:
        mk.train(wine, None, config)
        mk.train(wine, None, config.replace(progress=True))  # a progress bar decides nothing: reused
        mk.train(wine, None, config.replace(lr=1e-3))
        mk.train(other, None, config)
        monkeypatch.setattr(results_store, "kit_version", lambda: "99.0")
        mk.train(wine, None, config)
        assert store.counts() == (1, 4) and len(store) == 4


def test_fresh_recomputes_and_replaces(wine, tmp_path):
    config = mk.TrainConfig(epochs=1, progress=False)
    with using_store(tmp_path / "r.sqlite"):
        mk.train(wine, None, config)
    with using_store(tmp_path / "r.sqlite", fresh=True) as store:
        mk.train(wine, None, config)
        assert store.counts() == (0, 1) and len(store) == 1


def test_ones_resumed_equals_uninterrupted(tmp_path):
    base = mk.TrainConfig(epochs=1, progress=False)
    arguments = dict(methods=("sum", "svd"), train_config=base, kd_config=base)
    uninterrupted = run_ones("wine", seeds=[0, 1], **arguments)
    with using_store(tmp_path / "r.sqlite"):
        run_ones("wine", seeds=[0], **arguments)
    with using_store(tmp_path / "r.sqlite") as store:
        resumed = run_ones("wine", seeds=[0, 1], **arguments)
        assert store.counts("ones_seed") == (1, 1)
    pd.testing.assert_frame_equal(resumed, uninterrupted)


def test_compare_cli_resumes_with_identical_results(tmp_path, capsys):
    args = [
        "compare",
        "--domains",
        "tabular",
        "--datasets",
        "wine",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--no-baselines",
        "--workers",
        "1",
        "--out",
    ]
    assert main([*args, str(tmp_path / "first")]) == 0
    assert "reused 0, computed 16" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "first")]) == 0
    assert "reused 16, computed 0" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "other")]) == 0  # uninterrupted, elsewhere
    first, other = (pd.read_csv(tmp_path / name / "results.csv").drop(columns=TIMING) for name in ("first", "other"))
    pd.testing.assert_frame_equal(first, other)


WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from modekit.store import ResultsStore
    store = ResultsStore(sys.argv[1], run=sys.argv[2])
    pathlib.Path(sys.argv[1] + "." + sys.argv[2]).touch()  # ready
    while not pathlib.Path(sys.argv[1] + ".go").exists():  # both start writing at the same moment
        time.sleep(0.01)
    for i in range(150):
        key = store.key("demo", {"i": i % 100, "shared": i >= 100}, "data")
        store.put(key, "demo", {"i": i}, {"value": i, "writer": sys.argv[2]}, history=[{"epoch": 1}], state=bytes(2000))
    """
)


def test_two_processes_write_one_store(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResultsStore(path).close()  # created first: both writers open an existing WAL database
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name]) for name in ("a", "b")]
    deadline = time.time() + 240
    while not all((tmp_path / f"shared.sqlite.{name}").exists() for name in "ab") and time.time() < deadline:
        time.sleep(0.05)
    (tmp_path / "shared.sqlite.go").touch()
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT COUNT(*) FROM results").fetchone() == (150,)  # both wrote the same 150 keys
        assert db.execute("SELECT COUNT(*) FROM uses").fetchone() == (300,)
