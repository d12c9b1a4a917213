"""The command line: JSON output, exit code 2 with one line for a user's mistakes, no overwrites."""

import json
import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modekit", *args], capture_output=True, text=True, cwd=cwd)


def test_train_json():
    out = run("train", "--dataset", "wine", "--alpha", "0.05", "--epochs", "3", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("dataset", "alpha", "experts", "gate", "seed", "device", "epochs_run", "train_seconds", "val_accuracy", "test_accuracy"):
        assert key in report
    assert report["dataset"] == "wine" and report["alpha"] == 0.05 and report["epochs_run"] == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "nope"], "dataset='nope' is not available: choose one of"),
        (["train", "--dataset", "wine", "--alpha", "-1"], "alpha=-1.0 is not allowed"),
        (["train", "--dataset", "wine", "--gate", "sparse"], "invalid choice: 'sparse'"),
        (["train", "--dataset", "wine", "--gate", "topk", "--top-k", "9"], "top_k=9 is not allowed"),
        (["train", "--dataset", "wine", "--epochs", "0"], "epochs=0 is not allowed"),
        (["train", "--dataset", "wine", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["sweep", "--dataset", "wine", "--alphas", "0,x"], "'0,x' is not a comma-separated list of numbers"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_sweep_prints_per_alpha_and_resumes_from_its_folder(tmp_path):
    target = tmp_path / "sweep"
    args = ("sweep", "--dataset", "wine", "--alphas", "0,0.1", "--seeds", "0,1", "--epochs", "2", "--workers", "1", "--out", str(target))
    out = run(*args)
    assert out.returncode == 0, out.stderr
    assert "alpha=0 " in out.stdout and "alpha=0.1" in out.stdout and "reused 0, computed 4" in out.stderr
    import pandas as pd

    table = pd.read_csv(target / "results.csv")
    assert len(table) == 4 and set(table.alpha) == {0.0, 0.1}
    again = run(*args)  # the same --out: every model comes from the store, the table is the same
    assert again.returncode == 0 and "reused 4, computed 0" in again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(target / "results.csv"), table)
    fresh = run(*args, "--fresh")
    assert fresh.returncode == 0 and "reused 0, computed 4" in fresh.stderr


def test_compare_rejects_bad_domain_and_non_empty_out(tmp_path):
    out = run("compare", "--domains", "tabular,audio")
    assert out.returncode == 2 and "'audio' is not a domain" in out.stderr
    (tmp_path / "keep.txt").write_text("mine")
    out = run("compare", "--out", str(tmp_path))
    assert out.returncode == 2 and "not empty" in out.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_compare_small_run_writes_tables(tmp_path):
    target = tmp_path / "cmp"
    out = run("compare", "--domains", "tabular", "--datasets", "wine", "--seeds", "2", "--epochs", "2", "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert "wine" in out.stdout and "sweet spot" in out.stdout
    import pandas as pd

    results = pd.read_csv(target / "results.csv")
    assert set(results.model) == {"MoE", "MoDE", "dense (same compute)", "dense (same params)"}
    assert set(results.seed) == {0, 1}


def test_data_list_shows_every_dataset():
    out = run("data", "list", "--json")
    assert out.returncode == 0, out.stderr
    names = {row["name"] for row in json.loads(out.stdout)}
    assert {"subtasks", "digits8x8", "synthtext", "letter", "mnist", "sst2"} <= names
