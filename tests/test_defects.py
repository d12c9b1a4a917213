"""Defects found in review, each pinned by a test that failed before its fix."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import modekit as mk
from modekit import cli
from modekit import reproduce as batch
from modekit.device import tf32_allowed, to_numpy

ROOT = Path(__file__).resolve().parents[1]


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


def test_out_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep")
    with pytest.raises(mk.UserError, match="is a file"):
        batch.prepare_out(path, force=True)
    assert path.read_text() == "keep"


def test_to_numpy_handles_grad_and_bf16():
    tensor = torch.ones(3, requires_grad=True) * 2
    assert to_numpy(tensor).tolist() == [2.0, 2.0, 2.0]
    half = to_numpy(torch.ones(2, dtype=torch.bfloat16))
    assert half.dtype == np.float32


def test_tf32_is_scoped_to_the_run():
    """train() used to switch the process-wide TF32 flags on CUDA and leave them on."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with tf32_allowed(torch.device("cuda")):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_importing_plots_leaves_the_users_matplotlib_style_alone():
    code = (
        "import json, matplotlib; before = dict(matplotlib.rcParams); import modekit.plots; "
        "after = dict(matplotlib.rcParams); print(json.dumps(sorted(k for k in before if before[k] != after[k])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_readme_states_the_split_the_code_makes():
    """The README said 60 / 20 / 20 where the code makes 64 / 16 / 20."""
    line = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| splits"))
    train, val, test = (int(v) / 100 for v in re.search(r"(\d+) / (\d+) / (\d+)", line).groups())
    rng = np.random.default_rng(0)
    data = mk.data.from_arrays(rng.normal(size=(1000, 3)), rng.integers(0, 2, 1000), seed=0)
    sizes = np.array([len(data.y_train), len(data.y_val), len(data.y_test)]) / 1000
    np.testing.assert_allclose(sizes, [train, val, test], atol=0.01)


def test_cli_reports_a_users_mistake_in_one_line_and_keeps_the_traceback_of_a_bug(monkeypatch, capsys):
    def user_mistake(args):
        raise mk.UserError("lr=-1 is not allowed: lr must be a number > 0")

    def kit_bug(args):
        raise ValueError("shapes (3,) and (4,) not aligned")

    monkeypatch.setitem(cli.COMMANDS, "train", user_mistake)
    assert cli.main(["train", "--dataset", "wine"]) == 2
    assert capsys.readouterr().err.strip() == "error: lr=-1 is not allowed: lr must be a number > 0"
    monkeypatch.setitem(cli.COMMANDS, "train", kit_bug)
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
    assert (args.experts, args.gate, args.top_k) == (model.n_experts, model.gate, model.top_k)
    assert (args.epochs, args.batch_size, args.lr, args.patience, args.alpha, args.seed) == (
        training.epochs,
        training.batch_size,
        training.lr,
        training.patience,
        training.alpha,
        training.seed,
    )


def test_notebook_setup_checks_the_profile_and_derives_fast(tmp_path):
    from modekit.notebook import setup

    assert setup(None, str(tmp_path / "out"), "cpu", "laptop") == (False, str(tmp_path / "out"), "cpu", "laptop")
    assert setup(True, None, "cpu")[3] == "fast" and (tmp_path / "out").is_dir()
    with pytest.raises(mk.UserError, match="PROFILE='huge' is not allowed"):
        setup(None, None, "cpu", "huge")
