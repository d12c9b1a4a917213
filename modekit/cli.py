"""Command line: `python -m modekit {train,sweep,compare,ones,bench,data,reproduce,notebooks} ...`.

A user's mistake (a bad option, unknown dataset, impossible value: a `UserError`) exits with code 2
and one line on stderr naming the argument, the value and what is allowed. Any other exception is
the kit's own bug and keeps its traceback. Defaults are read from the config dataclasses.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from .commands import COMMANDS, Interrupted, Terminated
from .config import GATES, MAX_ALPHA, MAX_BATCH, MAX_EPOCHS, MAX_EXPERTS, MAX_LR, MAX_SEED, ModelConfig, TrainConfig
from .device import DEVICES
from .distributed import launched, main_process
from .errors import NonFiniteLossError, UserError
from .executors import DEFAULT_TIMEOUT_MIN, EXECUTORS, MAX_WORKERS
from .gathering import METHODS
from .ones_experiment import KD_EPOCHS, TEACHER_EPOCHS
from .profiles import DOMAINS, PROFILES
from .reproduce import CELL_TIMEOUT_S, MAX_JOBS

MODEL, TRAINING = ModelConfig(), TrainConfig()


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message}")


def _integer(name: str, low: int, high: int, word: str | None = None):
    """An argparse type: an integer in [low, high] (or the one `word`, e.g. 'auto', as given); the
    message names the option's field and what is allowed."""
    allowed = (f"{word!r} or " if word else "") + f"an integer between {low} and {high}"

    def parse(text: str) -> int | str:
        if word is not None and text == word:
            return text
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not allowed: {allowed}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name}={value} is not allowed: {allowed}")
        return value

    return parse


def _number(name: str, low: float, high: float, low_open: bool = False):
    """An argparse type: a finite number in [low, high] ((low, high] with low_open)."""
    allowed = f"a finite number {'>' if low_open else '>='} {low:g} and <= {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not allowed: {allowed}") from None
        if not (low < value if low_open else low <= value) or not value <= high:  # NaN and inf fail here
            raise argparse.ArgumentTypeError(f"{name}={value} is not allowed: {allowed}")
        return value

    return parse


def _alphas(text: str) -> list[float]:
    parse = _number("alpha", 0.0, MAX_ALPHA)
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give at least one alpha (e.g. 0,0.01,0.1)")
    for value in values:
        parse(repr(value))
    _no_repeats("alpha", values)
    return values


def _no_repeats(what: str, values: list) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{what} {', '.join(f'{v:g}' for v in repeated)} repeated: give each {what} once")


def _seeds(text: str) -> list[int]:
    """Every --seeds: '3' -> seeds [0, 1, 2] (a count); '0,4,7' -> [0, 4, 7]; '5,' -> [5]."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed count (3 = seeds 0,1,2) or a comma-separated list of seeds") from None
    if len(values) == 1 and "," not in text:
        if not 1 <= values[0] <= MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a seed count between 1 and {MAX_SEEDS}, or a list such as 0,4,7")
        return list(range(values[0]))
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give a seed count (3 = seeds 0,1,2) or a list such as 0,4,7")
    if len(values) > MAX_SEEDS or any(not 0 <= v <= MAX_SEED for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: at most {MAX_SEEDS} seeds, each between 0 and {MAX_SEED}")
    _no_repeats("seed", values)
    return values


SEEDS_HELP = "a count (3 = seeds 0,1,2) or a comma-separated list (0,4,7)"
MAX_SEEDS = 1000
MAX_CELL_TIMEOUT_S = 7 * 24 * 3600
MAX_JOB_MINUTES = 30 * 24 * 60
OUT_HELP = "output folder (new, or one modekit made: a rerun resumes from its results store)"
FRESH_HELP = "recompute every result even if the --out folder's store has it"


def _add_scale_out(parser: argparse.ArgumentParser) -> None:
    """Where the command's units (populations, dataset x seed, OneS seeds) run (docs/scaling.md)."""
    parser.add_argument("--workers", type=_integer("workers", 1, MAX_WORKERS, word="auto"), default="auto", metavar="N|auto",
                        help="local worker processes, one torch thread each (auto: one per core on the CPU, 1 on CUDA); "
                             "with a submitit --executor: the most jobs queued or running at once (auto: 16)")  # fmt: skip
    parser.add_argument("--executor", choices=EXECUTORS, default="pool",
                        help="pool: local processes; slurm: one SLURM job per unit through submitit (pip install 'modekit[cluster]'); "
                             "submitit-local / submitit-debug: submitit's local and in-process executors (for testing)")  # fmt: skip
    parser.add_argument("--slurm-partition", help="SLURM partition (--executor slurm)")
    parser.add_argument("--slurm-time", type=_integer("slurm_time", 1, MAX_JOB_MINUTES), metavar="MINUTES",
                        help=f"time limit of one job, in minutes (submitit executors; default {DEFAULT_TIMEOUT_MIN})")  # fmt: skip
    parser.add_argument("--slurm-gpus", type=_integer("slurm_gpus", 0, 64), metavar="N", help="GPUs per job (submitit executors)")
    parser.add_argument("--slurm-cpus", type=_integer("slurm_cpus", 1, 1024), metavar="N", help="CPUs per job (submitit executors)")
    parser.add_argument("--slurm-mem", type=_integer("slurm_mem", 1, 65536), metavar="GB", help="memory per job in GB (submitit executors)")


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help=OUT_HELP)
    parser.add_argument("--fresh", action="store_true", help=FRESH_HELP)


def _add_training(parser: argparse.ArgumentParser, alpha: bool = True) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `python -m modekit data list`) or csv:PATH")
    parser.add_argument("--target", help="label column, for --dataset csv:PATH")
    parser.add_argument("--sep", help="column separator of --dataset csv:PATH (default ','; e.g. ';' or tab: $'\\t')")
    parser.add_argument("--encoding", help="text encoding of --dataset csv:PATH (default utf-8; e.g. latin-1)")
    if alpha:
        parser.add_argument(
            "--alpha", type=_number("alpha", 0, MAX_ALPHA), default=TRAINING.alpha, help="MoDE distillation strength (0 = plain MoE)"
        )
    parser.add_argument("--experts", type=_integer("n_experts", 1, MAX_EXPERTS), default=MODEL.n_experts, help="number of experts E")
    parser.add_argument("--gate", choices=GATES, default=MODEL.gate)
    parser.add_argument("--top-k", type=_integer("top_k", 1, MAX_EXPERTS), default=MODEL.top_k, help="experts per sample for --gate topk")
    parser.add_argument("--epochs", type=_integer("epochs", 1, MAX_EPOCHS), default=TRAINING.epochs)
    parser.add_argument("--batch-size", type=_integer("batch_size", 1, MAX_BATCH), default=TRAINING.batch_size)
    parser.add_argument("--lr", type=_number("lr", 0, MAX_LR, low_open=True), default=TRAINING.lr)
    parser.add_argument("--patience", type=_integer("patience", 0, MAX_EPOCHS), default=TRAINING.patience,
                        help="early-stopping patience in epochs (0 = off)")  # fmt: skip
    parser.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    _add_compile(parser)


def _add_compile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compile", choices=("auto", "yes", "no"), default="auto", help=COMPILE_HELP)


COMPILE_HELP = "the compiled training step: auto (CPU, when the run's steps repay the compilation), yes, or no (eager)"


def _add_train_and_sweep(commands) -> None:
    train = commands.add_parser("train", help="train one MoE / MoDE model")
    _add_training(train)
    train.add_argument("--seed", type=_integer("seed", 0, MAX_SEED), default=TRAINING.seed)
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sweep = commands.add_parser("sweep", help="train an alpha x seed population")
    _add_training(sweep, alpha=False)
    sweep.add_argument("--alphas", type=_alphas, default=[0.0, 0.01, 0.1, 1.0])
    sweep.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    sweep.add_argument("--vectorise", choices=("auto", "yes", "no"), default="auto")
    _add_out(sweep)
    _add_scale_out(sweep)


def _add_data_and_bench(commands) -> None:
    data = commands.add_parser("data", help="list or fetch datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    listing = data_commands.add_parser("list", help="every dataset, its size and whether its files are present")
    listing.add_argument("--json", action="store_true")
    fetch = data_commands.add_parser("fetch", help="download a dataset's files from its public source")
    fetch.add_argument("name")
    bench = commands.add_parser("bench", help="train-step throughput, and OneS teacher vs student inference speed")
    bench.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    bench.add_argument("--section", choices=("all", "train", "ones", "workers"), default="all",
                       help="train: step throughput; ones: OneS inference; workers: a CPU population in 1 vs 2 local workers")  # fmt: skip
    bench.add_argument("--no-compile", action="store_true", help="leave out the compiled step (its compilation takes ~20 s per shape)")
    bench.add_argument("--json", action="store_true")


def _add_ones(commands) -> None:
    ones = commands.add_parser("ones", help="OneS: gather a sparse MoE into a dense student, then distil")
    ones.add_argument("--dataset", required=True)
    ones.add_argument("--methods", default="sum,avg,topk,svd", help=f"comma-separated: {', '.join(METHODS)}")
    ones.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    ones.add_argument("--epochs", type=_integer("epochs", 1, MAX_EPOCHS), default=TEACHER_EPOCHS, help="teacher and dense-baseline epochs")
    ones.add_argument("--kd-epochs", type=_integer("kd_epochs", 1, MAX_EPOCHS), default=KD_EPOCHS, help="distillation epochs per student")
    ones.add_argument(
        "--mode-alpha", type=_number("mode_alpha", 0, MAX_ALPHA), help="alpha of the MoDE teacher (default per domain; 0 = none)"
    )
    ones.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    ones.add_argument("--json", action="store_true")
    _add_out(ones)
    _add_scale_out(ones)


def _add_compare(commands) -> None:
    compare = commands.add_parser("compare", help="MoE vs MoDE vs dense baselines across domains, paired by seed")
    compare.add_argument("--domains", default=",".join(DOMAINS), help=f"comma-separated: {', '.join(DOMAINS)}")
    compare.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    compare.add_argument("--profile", choices=tuple(PROFILES), default="fast", help="fast: embedded data; full: real sets")
    compare.add_argument("--datasets", help="override the profile's datasets (comma-separated names)")
    compare.add_argument("--epochs", type=_integer("epochs", 1, MAX_EPOCHS), help="override the profile's epochs for every domain")
    compare.add_argument(
        "--max-train", type=_integer("max_train", 3, 10**9), help="train on at most this many samples per dataset (stratified)"
    )
    compare.add_argument("--gate", choices=GATES, default=MODEL.gate)
    compare.add_argument("--top-k", type=_integer("top_k", 1, MAX_EXPERTS), default=MODEL.top_k)
    compare.add_argument("--no-baselines", action="store_true", help="skip the two dense baselines")
    compare.add_argument("--device", choices=DEVICES, default=TRAINING.device)
    _add_compile(compare)
    _add_out(compare)
    _add_scale_out(compare)


def _add_reproduce(commands) -> None:
    reproduce = commands.add_parser("reproduce", help="run every notebook headless (papermill) and write the report + scorecard")
    reproduce.add_argument("--profile", choices=tuple(PROFILES), default="fast", help="fast: embedded data, CPU minutes; full: real data")
    reproduce.add_argument(
        "--out", type=Path, help="report folder (default: reports/<timestamp>); a rerun with the same --out resumes from its results store"
    )
    reproduce.add_argument(
        "--force", action="store_true", help="replace an earlier report folder (only one that reproduce made) and recompute"
    )
    reproduce.add_argument("--only", help="comma-separated notebook names (default: all)")
    timeouts = ", ".join(f"{s:g} {p}" for p, s in CELL_TIMEOUT_S.items())
    reproduce.add_argument(
        "--cell-timeout",
        type=_integer("cell_timeout", 1, MAX_CELL_TIMEOUT_S),
        metavar="SECONDS",
        help=f"seconds one cell may run before its notebook counts as hung (default: {timeouts})",
    )
    reproduce.add_argument(
        "--threads",
        type=_integer("threads", 1, 1024),
        metavar="N",
        help="CPU threads per notebook kernel (default: 1 fast, torch's default full)",
    )
    reproduce.add_argument(
        "--jobs",
        type=_integer("jobs", 1, MAX_JOBS),
        default=1,
        metavar="N",
        help="notebooks run at once, each with its own kernel (default 1; a failing or hung one fails alone)",
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


def _terminate(signum, frame):
    raise Terminated()


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    show, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        args = parser.parse_args(argv)
        if launched() and args.command != "train":
            raise UserError(
                f"`modekit {args.command}` does not run under torchrun (RANK and WORLD_SIZE are set): only `modekit train` "
                "trains one model across processes; run it without torchrun"
            )
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into `head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except (UserError, NonFiniteLossError) as error:  # configs, loaders and commands name the argument, the value and what is allowed
        if main_process():  # under torchrun every rank meets the same error (decisions are agreed): rank 0 says it
            print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # Ctrl-C (130) or SIGTERM (143): what was kept and how to resume
        text = str(interrupt) if isinstance(interrupt, Interrupted) else "interrupted"
        print(text, file=sys.stderr)
        return 143 if isinstance(interrupt, Terminated) or getattr(interrupt, "terminated", False) else 130
    finally:
        warnings.showwarning = show
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
