"""A hostile but realistic user: every bad input through the CLI exits 2 with one line on stderr
naming what is wrong (no traceback), and no user file changes; the same classes through the API raise
a UserError. Most cases run in-process (`main(argv)`, fast); a few through a real subprocess."""

import hashlib
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modekit as mk
from modekit.cli import parser as cli
from modekit.errors import UserError

N = 120


def _frame(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N)
    return pd.DataFrame({"x": x, "y": rng.normal(size=N), "c": rng.choice(list("abc"), N), "label": np.where(x > 0, "p", "n")})


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    return make_user_files(tmp_path_factory.mktemp("user"))


def make_user_files(home: Path) -> Path:
    """The user's files: good and broken CSVs, a text file, a folder of their own."""
    frame = _frame()
    frame.to_csv(home / "good.csv", index=False)
    frame.to_csv(home / "semi.csv", index=False, sep=";")
    frame.to_csv(home / "tab.csv", index=False, sep="\t")
    frame.assign(c=np.where(frame.x > 1, "é", "ü")).to_csv(home / "latin.csv", index=False, encoding="latin-1")
    dup_target = frame.copy()
    dup_target.columns = ["x", "y", "label", "label"]
    dup_target.to_csv(home / "dup_target.csv", index=False)
    dup_feature = frame.copy()
    dup_feature.columns = ["x", "x", "c", "label"]
    dup_feature.to_csv(home / "dup_feature.csv", index=False)
    (home / "folder.csv").mkdir()
    (home / "empty.csv").write_text("")
    (home / "ragged.csv").write_text("a,b,label\n1,2,p\n3,4,5,n\n")
    frame.assign(label="p").to_csv(home / "one_class.csv", index=False)
    frame.assign(x=frame.x.where(frame.index != 7)).to_csv(home / "nan.csv", index=False)
    (home / "notes.txt").write_text("the user's notes\n")
    (home / "mine").mkdir()
    (home / "mine" / "thesis.md").write_text("never touch\n")
    return home


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


TRAIN = ["train", "--dataset", "wine"]
SWEEP = ["sweep", "--dataset", "wine", "--epochs", "1"]
ONES = ["ones", "--dataset", "wine", "--epochs", "1", "--kd-epochs", "1"]
COMPARE = ["compare", "--domains", "tabular", "--datasets", "wine", "--epochs", "1"]
REPRODUCE = ["reproduce", "--only", "00_quickstart"]


def csv(name, *extra):
    return ["train", "--dataset", f"csv:{name}", "--target", "label", "--epochs", "1", *extra]


# (argv, a piece of the one-line message); the class in the first comment of each group
CASES = [
    # unknown names and choices
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([*TRAIN[:2], "nope"], "dataset='nope' is not available"),
    ([*TRAIN, "--gate", "sparse"], "invalid choice: 'sparse'"),
    ([*TRAIN, "--device", "tpu"], "invalid choice: 'tpu'"),
    (["bench", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["data", "fetch", "letter"], "has no automatic fetch"),
    ([*ONES[:2], "nope"], "dataset='nope' is not available"),
    # numeric bounds: integers where only integers make sense, finite floats, upper bounds on sizes
    ([*TRAIN, "--alpha", "-1"], "alpha=-1.0 is not allowed"),
    ([*TRAIN, "--alpha", "inf"], "alpha=inf is not allowed"),
    ([*TRAIN, "--alpha", "nan"], "alpha=nan is not allowed"),
    ([*TRAIN, "--alpha", "1e9"], "alpha=1000000000.0 is not allowed"),
    ([*TRAIN, "--experts", "0"], "n_experts=0 is not allowed"),
    ([*TRAIN, "--experts", "10000000"], "n_experts=10000000 is not allowed"),
    ([*TRAIN, "--experts", "2.5"], "n_experts='2.5' is not allowed"),
    ([*TRAIN, "--top-k", "0"], "top_k=0 is not allowed"),
    ([*TRAIN, "--gate", "topk", "--top-k", "9"], "top_k=9 is not allowed"),
    ([*TRAIN, "--epochs", "0"], "epochs=0 is not allowed"),
    ([*TRAIN, "--epochs", "1.5"], "epochs='1.5' is not allowed"),
    ([*TRAIN, "--epochs", "1e9"], "epochs='1e9' is not allowed"),
    ([*TRAIN, "--batch-size", "0"], "batch_size=0 is not allowed"),
    ([*TRAIN, "--batch-size", "99999999999"], "batch_size=99999999999 is not allowed"),
    ([*TRAIN, "--lr", "0"], "lr=0.0 is not allowed"),
    ([*TRAIN, "--lr", "inf"], "lr=inf is not allowed"),
    ([*TRAIN, "--lr", "nan"], "lr=nan is not allowed"),
    ([*TRAIN, "--lr", "-0.1"], "lr=-0.1 is not allowed"),
    ([*TRAIN, "--lr", "100"], "lr=100.0 is not allowed"),
    ([*TRAIN, "--patience", "-1"], "patience=-1 is not allowed"),
    ([*TRAIN, "--seed", "-1"], "seed=-1 is not allowed"),
    ([*TRAIN, "--seed", "99999999999"], "seed=99999999999 is not allowed"),
    ([*ONES, "--epochs", "0"], "epochs=0 is not allowed"),
    ([*ONES, "--kd-epochs", "-1"], "kd_epochs=-1 is not allowed"),
    ([*ONES, "--mode-alpha", "inf"], "mode_alpha=inf is not allowed"),
    ([*COMPARE, "--max-train", "0"], "max_train=0 is not allowed"),
    ([*COMPARE[:-1], "0"], "epochs=0 is not allowed"),
    ([*COMPARE, "--top-k", "0"], "top_k=0 is not allowed"),
    ([*REPRODUCE, "--cell-timeout", "1.5"], "cell_timeout='1.5' is not allowed"),
    ([*REPRODUCE, "--cell-timeout", "inf"], "cell_timeout='inf' is not allowed"),
    ([*REPRODUCE, "--cell-timeout", "0"], "cell_timeout=0 is not allowed"),
    ([*REPRODUCE, "--threads", "0"], "threads=0 is not allowed"),
    (["reproduce", "--profile", "huge"], "invalid choice: 'huge'"),
    # lists: empty, malformed, repeated, out of range
    ([*SWEEP, "--alphas", ""], "give at least one alpha"),
    ([*SWEEP, "--alphas", ","], "give at least one alpha"),
    ([*SWEEP, "--alphas", "0,x"], "is not a comma-separated list of numbers"),
    ([*SWEEP, "--alphas", "0,inf"], "alpha=inf is not allowed"),
    ([*SWEEP, "--alphas", "0,-1"], "alpha=-1.0 is not allowed"),
    ([*SWEEP, "--alphas", "0.1,0.1"], "alpha 0.1 repeated"),
    ([*SWEEP, "--seeds", ""], "give a seed count"),
    ([*SWEEP, "--seeds", "0"], "a seed count between 1 and"),
    ([*SWEEP, "--seeds", "-3"], "a seed count between 1 and"),
    ([*SWEEP, "--seeds", "1,1"], "seed 1 repeated"),
    ([*SWEEP, "--seeds", "a"], "is not a seed count"),
    ([*SWEEP, "--seeds", "100000"], "a seed count between 1 and"),
    ([*SWEEP, "--seeds", "0,-2"], "each between 0 and"),
    ([*ONES, "--seeds", "0"], "a seed count between 1 and"),
    ([*ONES, "--methods", ""], "--methods '' is not allowed"),
    ([*ONES, "--methods", "sum,nope"], "'nope' is not a gathering method"),
    ([*COMPARE, "--seeds", "0"], "a seed count between 1 and"),
    (["compare", "--domains", ""], "--domains '' is not allowed"),
    (["compare", "--domains", "tabular,audio"], "'audio' is not a domain"),
    (["compare", "--datasets", ""], "--datasets '' is not allowed"),
    (["compare", "--datasets", "nope"], "'nope' is not a dataset"),
    (["compare", "--domains", "tabular", "--datasets", "mnist"], "nothing to run"),
    ([*REPRODUCE[:1], "--only", ""], "--only '' is not allowed"),
    ([*REPRODUCE[:1], "--only", "nope"], "'nope' is not a notebook"),
    # --out: a file, a path under a file, a folder the kit did not make, a place that cannot be written
    ([*SWEEP, "--out", "notes.txt"], "names a file"),
    ([*SWEEP, "--out", "results.csv"], "names a file"),
    ([*SWEEP, "--out", "notes.txt/sub"], "which is a file"),
    ([*SWEEP, "--out", "mine"], "was not made by modekit"),
    ([*SWEEP, "--out", "/proc/modekit-cannot-write"], "cannot be written"),
    ([*ONES, "--out", "notes.txt"], "names a file"),
    ([*ONES, "--out", "mine"], "was not made by modekit"),
    ([*COMPARE, "--out", "notes.txt/x"], "which is a file"),
    ([*COMPARE, "--out", "mine"], "was not made by modekit"),
    ([*REPRODUCE, "--out", "notes.txt"], "is a file"),
    ([*REPRODUCE, "--out", "notes.txt/report"], "which is a file"),
    ([*REPRODUCE, "--out", "mine"], "was not made by modekit"),
    ([*REPRODUCE, "--out", "mine", "--force"], "was not made by modekit"),
    ([*REPRODUCE, "--out", "/proc/modekit-cannot-write"], "cannot be written"),
    # CSV pitfalls
    ([*TRAIN, "--target", "label"], "--target is only for --dataset csv:PATH"),
    ([*TRAIN, "--sep", ";"], "--sep is only for --dataset csv:PATH"),
    (["train", "--dataset", "csv:good.csv"], "needs --target COLUMN"),
    (csv("good.csv")[:4] + ["nope"], "target='nope' is not a column"),
    (csv("semi.csv"), "looks semicolon-separated"),
    (csv("tab.csv"), "looks tab-separated"),
    (csv("latin.csv"), "pass encoding='latin-1'"),
    (csv("good.csv", "--encoding", "nope"), "encoding='nope' is not allowed"),
    (csv("good.csv", "--sep", ""), "sep='' is not allowed"),
    (csv("dup_target.csv"), "'label' appear more than once"),
    (csv("dup_feature.csv"), "'x' appear more than once"),
    (csv("folder.csv"), "is a directory, not a file"),
    (csv("missing.csv"), "not found"),
    (csv("empty.csv"), "is empty"),
    (csv("ragged.csv"), "is malformed"),
    (csv("one_class.csv"), "has a single class"),
    (csv("nan.csv"), "row 7"),
    # scale-out options (docs/scaling.md)
    ([*SWEEP, "--workers", "0"], "workers=0 is not allowed"),
    ([*SWEEP, "--workers", "two"], "workers='two' is not allowed: 'auto' or an integer"),
    ([*SWEEP, "--slurm-gpus", "1"], "--slurm-gpus is only for a submitit --executor"),
    ([*COMPARE, "--executor", "dask"], "invalid choice: 'dask'"),
    ([*ONES, "--executor", "submitit-local", "--slurm-partition", "gpu"], "--slurm-partition is only for --executor slurm"),
    ([*SWEEP, "--executor", "slurm"], "--executor slurm needs --out DIR"),
    ([*SWEEP, "--executor", "submitit-debug", "--slurm-time", "0"], "slurm_time=0 is not allowed"),
]


def _run(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr()


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a)[:70] for a, _ in CASES])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(argv, message, user_dir, monkeypatch, capsys):
    monkeypatch.chdir(user_dir)
    before = snapshot(user_dir)
    code, captured = _run(argv, capsys)
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    assert message in lines[0], lines[0]
    assert snapshot(user_dir) == before


def test_enough_bad_inputs_are_tried():
    assert len(CASES) >= 60


@pytest.mark.parametrize(
    "argv",
    [[*SWEEP, "--out", "notes.txt/sub"], csv("latin.csv")],
)
@pytest.mark.slow
def test_bad_input_through_a_real_process(argv, user_dir):
    before = snapshot(user_dir)
    out = subprocess.run([sys.executable, "-m", "modekit", *argv], capture_output=True, text=True, cwd=user_dir)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    assert snapshot(user_dir) == before


def test_divergence_is_one_line_naming_lr_and_alpha(monkeypatch, capsys):
    data = mk.load("wine", seed=0)
    data.X_train = data.X_train.clone()
    data.X_train[0, 0] = float("nan")  # the loss becomes NaN at the first step
    monkeypatch.setattr(mk.data, "load", lambda *a, **k: data)
    code, captured = _run([*TRAIN, "--epochs", "2", "--lr", "0.5", "--alpha", "0.2"], capsys)
    assert code == 2 and len(captured.err.strip().splitlines()) == 1
    assert "lr=0.5" in captured.err and "alpha=0.2" in captured.err and "lower lr or alpha" in captured.err


def test_date_and_id_columns_are_left_out_with_a_one_line_warning(tmp_path, capsys):
    frame = _frame(1)
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(N)])
    frame.insert(1, "row", np.arange(N))
    frame.insert(2, "when", pd.date_range("2024-01-01", periods=N, freq="D").astype(str))
    path = tmp_path / "with_ids.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="'customer_id' .*'row' .*'when' .*left out of the features"):
        data = mk.data.from_csv(path, "label")
    assert data.feature_names == ["x", "y", "c_a", "c_b", "c_c"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert any(n.startswith("when_") for n in mk.data.from_csv(path, "label", categorical=["when"]).feature_names)
    code, captured = _run(["train", "--dataset", f"csv:{path}", "--target", "label", "--epochs", "1", "--json"], capsys)
    assert code == 0 and json.loads(captured.out)["dataset"] == f"csv:{path}"
    assert captured.err.strip().splitlines() == [captured.err.strip()] and captured.err.startswith("warning: ")


def test_sep_and_encoding_options_read_the_file(user_dir, capsys):
    for name, extra in (("semi.csv", ["--sep", ";"]), ("tab.csv", ["--sep", "\t"]), ("latin.csv", ["--encoding", "latin-1"])):
        code, captured = _run([*csv(str(user_dir / name)), "--json", *extra], capsys)
        assert code == 0, captured.err
        assert 0 <= json.loads(captured.out)["test_accuracy"] <= 1


def test_json_output_is_strict_json_without_nan(monkeypatch, capsys):
    from modekit.training.result import TrainResult

    def summary(self):
        return {"val_accuracy": float("nan"), "test_accuracy": float("inf")}

    monkeypatch.setattr(TrainResult, "summary", summary)
    code, captured = _run([*TRAIN, "--epochs", "1", "--json"], capsys)
    assert code == 0
    report = json.loads(captured.out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert report["val_accuracy"] is None and report["test_accuracy"] is None


def test_corrupted_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    from modekit.data.files import cached

    monkeypatch.setenv("MODEKIT_CACHE", str(tmp_path))
    arrays = cached("demo", ["abc"], {}, lambda: {"a": np.arange(5)})
    (entry,) = tmp_path.glob("demo-*.npz")
    entry.write_bytes(entry.read_bytes()[:20])  # truncated
    again = cached("demo", ["abc"], {}, lambda: {"a": np.arange(5)})
    assert np.array_equal(again["a"], arrays["a"])
    with np.load(entry) as stored:  # and the entry is whole again
        assert np.array_equal(stored["a"], arrays["a"])


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    from modekit.data import download as fetching
    from modekit.data.files import DataFileError

    monkeypatch.setenv("MODEKIT_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    with pytest.raises(DataFileError, match="failed"):
        fetching.fetch("x", {"new/folder/file.bin": (tmp_path / "absent.bin").as_uri()})
    source = tmp_path / "served.bin"
    source.write_bytes(b"x" * 1000)

    def broken_copy(response, handle):
        handle.write(b"partial")
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(fetching.shutil, "copyfileobj", broken_copy)
    with pytest.raises(DataFileError, match="Connection reset"):
        fetching.fetch("x", {"new/folder/file.bin": source.as_uri()})
    assert list((tmp_path / "data").rglob("*")) == []


# The Python API: the same classes raise a UserError with a one-line message
def _api_cases(user_dir):
    from modekit.data.download import fetch
    from modekit.experiments.compare import compare_moe_mode
    from modekit.ones.experiment import run_ones
    from modekit.reproduction.runner import check_options, prepare_out
    from modekit.store import check_out_folder
    from modekit.training.loop import check_fits_memory
    from modekit.training.population import train_population

    data = mk.load("wine", seed=0)
    duplicated = _frame()
    duplicated.columns = ["x", "x", "c", "label"]
    return [
        (lambda: mk.TrainConfig(lr=math.inf), "lr=inf"),
        (lambda: mk.TrainConfig(lr=100.0), "lr=100.0"),
        (lambda: mk.TrainConfig(epochs=1.5), "epochs=1.5"),
        (lambda: mk.TrainConfig(seed=-1), "seed=-1"),
        (lambda: mk.TrainConfig(alpha=math.nan), "alpha=nan"),
        (lambda: mk.ModelConfig(n_experts=10**7), "n_experts=10000000"),
        (lambda: check_fits_memory(mk.ModelConfig(n_features=784, n_experts=1024, expert_hidden=65536)), "GiB to train"),
        (lambda: train_population(data, None, []), "train_configs=[]"),
        (lambda: compare_moe_mode(["wine"], seeds=[]), "seeds=[]"),
        (lambda: run_ones("wine", seeds=[]), "seeds=[]"),
        (lambda: check_options("fast", cell_timeout=1.5), "cell_timeout=1.5"),
        (lambda: check_options("fast", cell_timeout=math.inf), "cell_timeout=inf"),
        (lambda: prepare_out(user_dir / "notes.txt", force=True), "is a file"),
        (lambda: prepare_out(user_dir / "mine", force=True), "was not made by modekit"),
        (lambda: check_out_folder(user_dir / "notes.txt" / "x", ".m"), "which is a file"),
        (lambda: mk.data.from_csv(user_dir / "folder.csv", "label"), "is a directory"),
        (lambda: mk.data.from_csv(user_dir / "dup_target.csv", "label"), "appear more than once"),
        (lambda: mk.data.from_dataframe(duplicated, "label"), "appear more than once"),
        (lambda: mk.data.from_csv(user_dir / "latin.csv", "label"), "encoding='latin-1'"),
        (lambda: fetch("letter"), "no automatic fetch"),
        (lambda: mk.data.from_arrays(np.zeros((3, 2)), np.zeros(4)), "same length"),
    ]


def test_bad_input_through_the_api_is_a_user_error(user_dir):
    before = snapshot(user_dir)
    cases = _api_cases(user_dir)
    for call, message in cases:
        with pytest.raises(UserError) as caught:
            call()
        text = str(caught.value)
        assert message in text and "\n" not in text, text
    assert snapshot(user_dir) == before
