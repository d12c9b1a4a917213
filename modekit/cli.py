"""Command line: `python -m modekit {train,sweep,compare,ones,bench,data,reproduce,notebooks} ...`.

A user's mistake (a bad option, unknown dataset, impossible value: a `UserError`) exits with code 2
and one line on stderr naming the argument, the value and what is allowed. Any other exception is
the kit's own bug and keeps its traceback. Defaults are read from the config dataclasses.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .commands import COMMANDS
from .config import GATES, ModelConfig, TrainConfig
from .device import DEVICES
from .errors import UserError
from .gathering import METHODS
from .ones_experiment import KD_EPOCHS, TEACHER_EPOCHS
from .profiles import DOMAINS, PROFILES
from .reproduce import CELL_TIMEOUT_S

MODEL, TRAINING = ModelConfig(), TrainConfig()


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message}")


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _seeds(text: str) -> list[int]:
    """Every --seeds: '3' -> seeds [0, 1, 2] (a count); '0,4,7' -> [0, 4, 7]; '5,' -> [5]."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed count (3 = seeds 0,1,2) or a comma-separated list of seeds") from None
    return list(range(values[0])) if len(values) == 1 and "," not in text else values


SEEDS_HELP = "a count (3 = seeds 0,1,2) or a comma-separated list (0,4,7)"


def _add_training(parser: argparse.ArgumentParser, alpha: bool = True) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `python -m modekit data list`) or csv:PATH")
    parser.add_argument("--target", help="label column, for --dataset csv:PATH")
    if alpha:
        parser.add_argument("--alpha", type=float, default=TRAINING.alpha, help="MoDE distillation strength (0 = plain MoE)")
    parser.add_argument("--experts", type=int, default=MODEL.n_experts, help="number of experts E")
    parser.add_argument("--gate", choices=GATES, default=MODEL.gate)
    parser.add_argument("--top-k", type=int, default=MODEL.top_k, help="experts per sample for --gate topk")
    parser.add_argument("--epochs", type=int, default=TRAINING.epochs)
    parser.add_argument("--batch-size", type=int, default=TRAINING.batch_size)
    parser.add_argument("--lr", type=float, default=TRAINING.lr)
    parser.add_argument("--patience", type=int, default=TRAINING.patience, help="early-stopping patience in epochs (0 = off)")
    parser.add_argument("--device", choices=DEVICES, default=TRAINING.device)


def _add_train_and_sweep(commands) -> None:
    train = commands.add_parser("train", help="train one MoE / MoDE model")
    _add_training(train)
    train.add_argument("--seed", type=int, default=TRAINING.seed)
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sweep = commands.add_parser("sweep", help="train an alpha x seed population")
    _add_training(sweep, alpha=False)
    sweep.add_argument("--alphas", type=_float_list, default=[0.0, 0.01, 0.1, 1.0])
    sweep.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    sweep.add_argument("--vectorise", choices=("auto", "yes", "no"), default="auto")
    sweep.add_argument("--out", type=Path, help="write the tidy results table as CSV (never overwrites)")


def _add_data_and_bench(commands) -> None:
    data = commands.add_parser("data", help="list or fetch datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    listing = data_commands.add_parser("list", help="every dataset, its size and whether its files are present")
    listing.add_argument("--json", action="store_true")
    fetch = data_commands.add_parser("fetch", help="download a dataset's files from its public source")
    fetch.add_argument("name")
    bench = commands.add_parser("bench", help="train-step throughput, and OneS teacher vs student inference speed")
    bench.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    bench.add_argument("--section", choices=("all", "train", "ones"), default="all")
    bench.add_argument("--json", action="store_true")


def _add_ones(commands) -> None:
    ones = commands.add_parser("ones", help="OneS: gather a sparse MoE into a dense student, then distil")
    ones.add_argument("--dataset", required=True)
    ones.add_argument("--methods", default="sum,avg,topk,svd", help=f"comma-separated: {', '.join(METHODS)}")
    ones.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    ones.add_argument("--epochs", type=int, default=TEACHER_EPOCHS, help="teacher and dense-baseline epochs")
    ones.add_argument("--kd-epochs", type=int, default=KD_EPOCHS, help="distillation epochs per student")
    ones.add_argument("--mode-alpha", type=float, help="alpha of the MoDE teacher (default per domain; 0 = none)")
    ones.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    ones.add_argument("--json", action="store_true")
    ones.add_argument("--out", type=Path, help="write results.csv and summary.csv into this new folder")


def _add_compare(commands) -> None:
    compare = commands.add_parser("compare", help="MoE vs MoDE vs dense baselines across domains, paired by seed")
    compare.add_argument("--domains", default=",".join(DOMAINS), help=f"comma-separated: {', '.join(DOMAINS)}")
    compare.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    compare.add_argument("--profile", choices=tuple(PROFILES), default="fast", help="fast: embedded data; full: real sets")
    compare.add_argument("--datasets", help="override the profile's datasets (comma-separated names)")
    compare.add_argument("--epochs", type=int, help="override the profile's epochs for every domain")
    compare.add_argument("--max-train", type=int, help="train on at most this many samples per dataset (stratified)")
    compare.add_argument("--gate", choices=GATES, default=MODEL.gate)
    compare.add_argument("--top-k", type=int, default=MODEL.top_k)
    compare.add_argument("--no-baselines", action="store_true", help="skip the two dense baselines")
    compare.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    compare.add_argument("--out", type=Path, help="folder for results.csv, summary.csv, summary.txt (must be new or empty)")


def _add_reproduce(commands) -> None:
    reproduce = commands.add_parser("reproduce", help="run every notebook headless (papermill) and write the report + scorecard")
    reproduce.add_argument("--profile", choices=tuple(PROFILES), default="fast", help="fast: embedded data, CPU minutes; full: real data")
    reproduce.add_argument("--out", type=Path, help="report folder (default: reports/<timestamp>); never overwritten without --force")
    reproduce.add_argument("--force", action="store_true", help="replace an earlier report folder (only one that reproduce made)")
    reproduce.add_argument("--only", help="comma-separated notebook names (default: all)")
    timeouts = ", ".join(f"{s:g} {p}" for p, s in CELL_TIMEOUT_S.items())
    reproduce.add_argument(
        "--cell-timeout",
        type=float,
        metavar="SECONDS",
        help=f"seconds one cell may run before its notebook counts as hung (default: {timeouts})",
    )
    reproduce.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads per notebook kernel (default: 1 fast, torch's default full)"
    )


def _add_notebooks(commands) -> None:
    notebooks = commands.add_parser("notebooks", help="your own editable copies of the kit's notebooks")
    actions = notebooks.add_subparsers(dest="notebooks_command", required=True, parser_class=_Parser)
    copy = actions.add_parser("copy", help="copy every notebook into DIR (made if missing); existing files are kept, never overwritten")
    copy.add_argument("dir", type=Path, metavar="DIR")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modekit", description="MoE / MoDE / OneS teaching and reproduction kit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train_and_sweep, _add_data_and_bench, _add_ones, _add_compare, _add_reproduce, _add_notebooks):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into `head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except UserError as error:  # configs, loaders and commands name the argument, the value and what is allowed
        print(f"error: {error}", file=sys.stderr)
        return 2
