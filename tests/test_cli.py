"""The command line: JSON output, exit code 2 with one line for a user's mistakes, no overwrites."""

import json
import subprocess
import sys

import pytest

import modekit as mk
from modekit.cli import commands
from modekit.cli import parser as cli
from modekit.reproduction import runner as batch


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modekit", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
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
@pytest.mark.slow
def test_user_mistakes_exit_2_with_one_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_compare_rejects_bad_domain_and_non_empty_out(tmp_path):
    out = run("compare", "--domains", "tabular,audio")
    assert out.returncode == 2 and "'audio' is not a domain" in out.stderr
    (tmp_path / "keep.txt").write_text("mine")
    out = run("compare", "--out", str(tmp_path))
    assert out.returncode == 2 and "not empty" in out.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_compare_small_run_writes_tables(tmp_path):
    target = tmp_path / "cmp"
    out = run("compare", "--domains", "tabular", "--datasets", "wine", "--seeds", "2", "--epochs", "2", "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert "wine" in out.stdout and "sweet spot" in out.stdout
    import pandas as pd

    results = pd.read_csv(target / "results.csv")
    assert set(results.model) == {"MoE", "MoDE", "dense (same compute)", "dense (same params)"}
    assert set(results.seed) == {0, 1}


@pytest.mark.slow
def test_data_list_shows_every_dataset():
    out = run("data", "list", "--json")
    assert out.returncode == 0, out.stderr
    names = {row["name"] for row in json.loads(out.stdout)}
    assert {"subtasks", "digits8x8", "synthtext", "letter", "mnist", "sst2"} <= names


def test_out_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep")
    with pytest.raises(mk.UserError, match="is a file"):
        batch.prepare_out(path, force=True)
    assert path.read_text() == "keep"


def test_cli_reports_a_users_mistake_in_one_line_and_keeps_the_traceback_of_a_bug(monkeypatch, capsys):
    def user_mistake(args):
        raise mk.UserError("lr=-1 is not allowed: lr must be a number > 0")

    def kit_bug(args):
        raise ValueError("shapes (3,) and (4,) not aligned")

    monkeypatch.setitem(commands.COMMANDS, "train", user_mistake)
    assert cli.main(["train", "--dataset", "wine"]) == 2
    assert capsys.readouterr().err.strip() == "error: lr=-1 is not allowed: lr must be a number > 0"
    monkeypatch.setitem(commands.COMMANDS, "train", kit_bug)
    with pytest.raises(ValueError, match="not aligned"):  # a bug is not dressed up as the user's error
        cli.main(["train", "--dataset", "wine"])


def test_seeds_means_the_same_in_every_command():
    """--seeds 3 meant seeds 0,1,2 for compare / ones but seed 3 for sweep."""
    parser = cli.build_parser()
    for command in (["sweep", "--dataset", "wine"], ["compare"], ["ones", "--dataset", "wine"]):
        assert parser.parse_args([*command, "--seeds", "3"]).seeds == [0, 1, 2]
        assert parser.parse_args([*command, "--seeds", "3,5"]).seeds == [3, 5]


def test_cli_defaults_are_the_config_defaults():
    args = cli.build_parser().parse_args(["train", "--dataset", "wine"])
    model, training = mk.ModelConfig(), mk.TrainConfig()
    assert (args.n_experts, args.gate, args.top_k) == (model.n_experts, model.gate, model.top_k)
    assert (args.epochs, args.batch_size, args.lr, args.patience, args.alpha, args.seed) == (
        training.epochs,
        training.batch_size,
        training.lr,
        training.patience,
        training.alpha,
        training.seed,
    )


def test_version_and_help_import_no_torch():
    """`--version` prints the kit's version; `--help` (every command's) shows defaults and imports
    neither torch nor pandas: the commands are imported once the arguments are parsed."""
    code = (
        "import sys, contextlib, io\n"
        "from modekit.cli.parser import main\n"
        "for argv in (['--help'], ['train', '--help'], ['compare', '--help'], ['ones', '--help'], ['--version']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        main(argv)\n"
        "    print(out.getvalue())\n"
        "print('IMPORTED', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pandas', 'numpy')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED []" in run.stdout, run.stdout[-500:]
    assert f"modekit {mk.__version__}" in run.stdout
    assert "--epochs N            maximum epochs (ours) (default: 60)" in run.stdout
    assert "scale-out:" in run.stdout and "training:" in run.stdout and "model:" in run.stdout and "data:" in run.stdout
    assert "laptop:" in run.stdout, "--profile's help names every profile"


def test_every_option_built_from_a_config_field_takes_its_bounds_and_default_from_it():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--dataset", "wine"])
    model, training = mk.ModelConfig(), mk.TrainConfig()
    for field in ("n_experts", "gate", "top_k"):
        assert getattr(args, field) == getattr(model, field)
    for field in ("alpha", "epochs", "batch_size", "lr", "patience", "seed", "device", "compile"):
        assert getattr(args, field) == getattr(training, field)
    assert parser.parse_args(["train", "--dataset", "wine", "--compile", "no"]).compile is False
    with pytest.raises(mk.UserError, match="epochs=0 is not allowed: an integer between 1 and 100000"):
        parser.parse_args(["train", "--dataset", "wine", "--epochs", "0"])
    with pytest.raises(mk.UserError, match="compile='off' is not allowed: one of auto, yes, no"):
        parser.parse_args(["compare", "--compile", "off"])


@pytest.mark.slow
def test_ones_trains_on_a_csv_with_its_target(tmp_path):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    run = subprocess.run(
        [sys.executable, "-m", "modekit", "ones", "--dataset", f"csv:{path}", "--target", "target", "--seeds", "1",
         "--epochs", "2", "--kd-epochs", "1", "--methods", "svd", "--mode-alpha", "0", "--json"],  # fmt: skip
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["seeds"] == [0] and 0 <= report["students"]["svd"]["after_kd"]["mean"] <= 1
    missing = subprocess.run([sys.executable, "-m", "modekit", "ones", "--dataset", f"csv:{path}"], capture_output=True, text=True)
    assert missing.returncode == 2 and "needs --target COLUMN" in missing.stderr


def test_bench_compile_is_a_two_way_switch():
    parser = cli.build_parser()
    assert parser.parse_args(["bench", "--compile", "no"]).compile is False
    assert parser.parse_args(["bench"]).compile is True
    with pytest.raises(mk.UserError, match="compile='auto' is not allowed: one of yes, no"):
        parser.parse_args(["bench", "--compile", "auto"])
