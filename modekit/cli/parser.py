"""Command line: `python -m modekit {train,sweep,compare,ones,judge,bench,data,reproduce,writeup,notebooks} ...`.

A user's mistake (a bad option, unknown dataset, impossible value: a `UserError`) exits with code 2
and one line on stderr naming the argument, the value and what is allowed. Any other exception is
the kit's own bug and keeps its traceback. An option that sets a config field is built from that
field (`modekit.config.option`: its bounds or choices, its default, its help), so its name, bounds and
help live in one place; `--help` shows every default and imports no torch (the commands are imported
only once the arguments are parsed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from modekit.cli.types import alphas, auto_yes_no, integer, number, seeds
from modekit.config import (
    AUTO_YES_NO,
    CELL_TIMEOUT_S,
    DEFAULT_TIMEOUT_MIN,
    EXECUTORS,
    GATHERING_METHODS,
    KD_EPOCHS,
    MAX_ALPHA,
    MAX_CELL_TIMEOUT_S,
    MAX_EPOCHS,
    MAX_FIRST_SEED,
    MAX_JOBS,
    MAX_WORKERS,
    TEACHER_EPOCHS,
    Bound,
    ModelConfig,
    TrainConfig,
)
from modekit.errors import Interrupted, NonFiniteLossError, Terminated, UserError
from modekit.profiles import DOMAINS, PROFILES


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none (None) or it is an off switch."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)  # every --help shows the defaults
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message}")


def _field(group, flag: str, config: type, name: str, **changes) -> None:
    """The option `flag` for the config field `name`: its type from the field's Bound or choices, its
    default and help from the field (`changes` overrides, e.g. another default); dest = the field's name."""
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    allowed, options = field.metadata["allowed"], {"dest": name, "default": field.default, "help": field.metadata["help"]}
    label = changes.get("dest", name)  # what an error message calls it
    if isinstance(allowed, Bound) and allowed.kind is int:
        options.update(type=integer(label, int(allowed.low), int(allowed.high)), metavar="N")
    elif isinstance(allowed, Bound):
        options.update(type=number(label, allowed.low, allowed.high, allowed.low_open), metavar="X")
    elif all(isinstance(choice, str) for choice in allowed):
        options.update(choices=allowed)
    else:  # "auto", True, False
        options.update(type=auto_yes_no(label), metavar="{auto,yes,no}")
        options["default"] = next(word for word, value in AUTO_YES_NO.items() if value is field.default)
    options.update(changes)
    if isinstance(options["default"], bool) and "type" in options:  # shown as the user types it
        options["default"] = next(word for word, value in AUTO_YES_NO.items() if value is options["default"])
    group.add_argument(flag, **options)


SEEDS_HELP = "a count (3 = seeds 0,1,2) or a comma-separated list (0,4,7)"
MAX_JOB_MINUTES = 30 * 24 * 60
OUT_HELP = "output folder (new, or one modekit made: a rerun resumes from its results store)"
FRESH_HELP = "recompute every result even if the --out folder's store has it"


def _add_scale_out(parser: argparse.ArgumentParser) -> None:
    """Where the command's units (populations, dataset x seed, OneS seeds) run (docs/scaling.md)."""
    group = parser.add_argument_group("scale-out", "where the units of work run (docs/scaling.md)")
    group.add_argument("--workers", type=integer("workers", 1, MAX_WORKERS, word="auto"), default="auto", metavar="N|auto",
                       help="local worker processes, one torch thread each (auto: one per core on the CPU, 1 on CUDA); "
                            "with a submitit --executor: the most jobs queued or running at once (auto: 16)")  # fmt: skip
    group.add_argument("--executor", choices=EXECUTORS, default="pool",
                       help="pool: local processes; slurm: one SLURM job per unit through submitit (pip install 'modekit[cluster]'); "
                            "submitit-local / submitit-debug: submitit's local and in-process executors (for testing)")  # fmt: skip
    group.add_argument("--slurm-partition", help="SLURM partition (--executor slurm)")
    group.add_argument("--slurm-time", type=integer("slurm_time", 1, MAX_JOB_MINUTES), metavar="MINUTES",
                       help=f"time limit of one job, in minutes (submitit executors; none given: {DEFAULT_TIMEOUT_MIN})")  # fmt: skip
    group.add_argument("--slurm-gpus", type=integer("slurm_gpus", 0, 64), metavar="N", help="GPUs per job (submitit executors)")
    group.add_argument("--slurm-cpus", type=integer("slurm_cpus", 1, 1024), metavar="N", help="CPUs per job (submitit executors)")
    group.add_argument("--slurm-mem", type=integer("slurm_mem", 1, 65536), metavar="GB", help="memory per job in GB (submitit executors)")


def _add_out(parser: argparse.ArgumentParser, json: bool = True) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--out", type=Path, help=OUT_HELP)
    group.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    if json:
        group.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _add_data(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", required=True, help="dataset name (see `python -m modekit data list`) or csv:PATH")
    group.add_argument("--target", help="label column, for --dataset csv:PATH")
    group.add_argument("--sep", help="column separator of --dataset csv:PATH (none given: ','; e.g. ';' or tab: $'\\t')")
    group.add_argument("--encoding", help="text encoding of --dataset csv:PATH (none given: utf-8; e.g. latin-1)")


def _add_model(parser: argparse.ArgumentParser, experts: bool = True) -> None:
    group = parser.add_argument_group("model")
    if experts:
        _field(group, "--experts", ModelConfig, "n_experts")
    _field(group, "--gate", ModelConfig, "gate")
    _field(group, "--top-k", ModelConfig, "top_k")


def _add_training(parser: argparse.ArgumentParser, alpha: bool = True) -> None:
    group = parser.add_argument_group("training")
    if alpha:
        _field(group, "--alpha", TrainConfig, "alpha")
    for flag, name in (("--epochs", "epochs"), ("--batch-size", "batch_size"), ("--lr", "lr"), ("--patience", "patience")):
        _field(group, flag, TrainConfig, name)
    _field(group, "--device", TrainConfig, "device")
    _field(group, "--compile", TrainConfig, "compile")


def _add_train_and_sweep(commands) -> None:
    train = commands.add_parser("train", help="train one MoE / MoDE model")
    _add_data(train)
    _add_model(train)
    _add_training(train)
    _field(train._action_groups[-1], "--seed", TrainConfig, "seed")
    train.add_argument_group("output").add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sweep = commands.add_parser("sweep", help="train an alpha x seed population")
    _add_data(sweep)
    _add_model(sweep)
    _add_training(sweep, alpha=False)
    group = sweep._action_groups[-1]
    group.add_argument("--alphas", type=alphas, default=[0.0, 0.01, 0.1, 1.0], help="comma-separated MoDE alphas (0 = MoE)")
    group.add_argument("--seeds", type=seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    group.add_argument("--vectorise", type=auto_yes_no("vectorise"), default="auto", metavar="{auto,yes,no}",
                       help="train the population as one vmapped model (auto: on CUDA)")  # fmt: skip
    _add_out(sweep, json=False)
    _add_scale_out(sweep)


def _add_data_and_bench(commands) -> None:
    data = commands.add_parser("data", help="list or fetch datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    listing = data_commands.add_parser("list", help="every dataset, its size and whether its files are present")
    listing.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    fetch = data_commands.add_parser("fetch", help="download a dataset's files from its public source")
    fetch.add_argument("name", help="a dataset name from `data list`")
    bench = commands.add_parser("bench", help="train-step throughput, and OneS teacher vs student inference speed")
    _field(bench, "--device", TrainConfig, "device")
    bench.add_argument("--section", choices=("all", "train", "ones", "workers"), default="all",
                       help="train: step throughput; ones: OneS inference; workers: a CPU population in 1 vs 2 local workers")  # fmt: skip
    bench.add_argument("--compile", type=auto_yes_no("compile", ("yes", "no")), default=True, metavar="{yes,no}",
                       help="time the compiled step too (its compilation takes ~20 s per shape)")  # fmt: skip
    bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _add_ones(commands) -> None:
    ones = commands.add_parser("ones", help="OneS: gather a sparse MoE into a dense student, then distil")
    _add_data(ones)
    group = ones.add_argument_group("OneS")
    group.add_argument("--methods", default="sum,avg,topk,svd", help=f"comma-separated: {', '.join(GATHERING_METHODS)}")
    group.add_argument("--seeds", type=seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    _field(group, "--epochs", TrainConfig, "epochs", default=TEACHER_EPOCHS, help="teacher and dense-baseline epochs")
    _field(group, "--kd-epochs", TrainConfig, "epochs", dest="kd_epochs", default=KD_EPOCHS, help="distillation epochs per student")
    group.add_argument("--mode-alpha", type=number("mode_alpha", 0, MAX_ALPHA), metavar="X",
                       help="alpha of the MoDE teacher (none given: the domain's; 0 = no MoDE teacher)")  # fmt: skip
    _field(group, "--device", TrainConfig, "device")
    _add_out(ones)
    _add_scale_out(ones)


def _add_compare(commands) -> None:
    compare = commands.add_parser("compare", help="MoE vs MoDE vs dense baselines across domains, paired by seed")
    group = compare.add_argument_group("data")
    group.add_argument("--profile", choices=tuple(PROFILES), default="fast", help=PROFILE_HELP)
    group.add_argument("--domains", default=",".join(DOMAINS), help=f"comma-separated: {', '.join(DOMAINS)}")
    group.add_argument("--datasets", help="the profile's datasets unless given (comma-separated names)")
    group.add_argument("--max-train", type=integer("max_train", 3, 10**9), metavar="N",
                       help="train on at most this many samples per dataset (stratified)")  # fmt: skip
    _add_model(compare, experts=False)
    group = compare.add_argument_group("training")
    group.add_argument("--seeds", type=seeds, default=[0, 1, 2, 3, 4], help=SEEDS_HELP)
    group.add_argument(
        "--epochs", type=integer("epochs", 1, MAX_EPOCHS), metavar="N", help="every domain's epochs (none given: the profile's)"
    )
    group.add_argument("--no-baselines", action="store_true", help="skip the two dense baselines")
    _field(group, "--device", TrainConfig, "device")
    _field(group, "--compile", TrainConfig, "compile")
    _add_out(compare, json=False)
    _add_scale_out(compare)


PROFILE_HELP = (
    "fast: embedded data, CPU minutes; laptop: real data sets, capped, on a 2-core CPU; full: real data, more seeds and epochs (a GPU)"
)


def _add_reproduce(commands) -> None:
    reproduce = commands.add_parser("reproduce", help="run every notebook headless (papermill) and write the report + scorecard")
    reproduce.add_argument("--profile", choices=tuple(PROFILES), default="fast", help=PROFILE_HELP)
    group = reproduce.add_argument_group("output")
    group.add_argument("--out", type=Path, help="report folder (none given: reports/<timestamp>); a rerun with the same --out resumes")
    group.add_argument("--force", action="store_true", help="replace an earlier report folder (only one that reproduce made) and recompute")
    group = reproduce.add_argument_group("running")
    group.add_argument("--only", help="comma-separated notebook names (none given: all)")
    timeouts = ", ".join(f"{s:g} {p}" for p, s in CELL_TIMEOUT_S.items())
    group.add_argument("--cell-timeout", type=integer("cell_timeout", 1, MAX_CELL_TIMEOUT_S), metavar="SECONDS",
                       help=f"seconds one cell may run before its notebook counts as hung (none given: {timeouts})")  # fmt: skip
    group.add_argument("--threads", type=integer("threads", 1, 1024), metavar="N",
                       help="CPU threads per notebook kernel (none given: 1 fast and laptop, torch's default full)")  # fmt: skip
    group.add_argument("--jobs", type=integer("jobs", 1, MAX_JOBS), default=1, metavar="N",
                       help="notebooks run at once, each with its own kernel (a failing or hung one fails alone)")  # fmt: skip
    group.add_argument("--with-solutions", action="store_true", help="also run each notebook's solutions into the report (their checks)")
    group.add_argument("--first-seed", type=integer("first_seed", 0, MAX_FIRST_SEED), default=0, metavar="N",
                       help="the lessons' seeds run from N (default: %(default)s): do their words hold on other seeds?")  # fmt: skip


JUDGE_FILE_HELP = (
    "mode_beats_moe: the CSV compare writes (results.csv, or a report's comparison_results.csv: dataset, domain, model, "
    "alpha, weight_decay, seed, val_accuracy, test_accuracy); svd_best_gathering, ones_benefit_kept: the table ones writes"
)


def _add_judge(commands) -> None:
    judge = commands.add_parser("judge", help="verdicts of a claim on a results table (yours or the kit's), by the scorecard's rule")
    judge.add_argument("file", type=Path, metavar="FILE", help=JUDGE_FILE_HELP)
    judge.add_argument("--claim", required=True, choices=("mode_beats_moe", "svd_best_gathering", "ones_benefit_kept"),
                       help="the claim to judge")  # fmt: skip
    judge.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")


def _add_writeup(commands) -> None:
    writeup = commands.add_parser("writeup", help="the citable reproduction report (docs/reproduction.md) from a report folder")
    writeup.add_argument("report", type=Path, metavar="REPORT", help="a report folder that `modekit reproduce` wrote")
    writeup.add_argument("--out", type=Path, default=Path("docs/reproduction.md"), metavar="FILE.md",
                         help="the Markdown to write; its evidence (CSVs, provenance, forest plot) goes into FILE/ beside it")  # fmt: skip


def _add_notebooks(commands) -> None:
    notebooks = commands.add_parser("notebooks", help="your own editable copies of the kit's notebooks")
    actions = notebooks.add_subparsers(dest="notebooks_command", required=True, parser_class=_Parser)
    copy = actions.add_parser("copy", help="copy every notebook into DIR (made if missing); existing files are kept, never overwritten")
    copy.add_argument("dir", type=Path, metavar="DIR", help="the folder for your copies")


def build_parser() -> argparse.ArgumentParser:
    from modekit import __version__

    parser = _Parser(prog="modekit", description="MoE / MoDE / OneS teaching and reproduction kit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
        _add_train_and_sweep,
        _add_data_and_bench,
        _add_ones,
        _add_compare,
        _add_judge,
        _add_reproduce,
        _add_writeup,
        _add_notebooks,
    ):
        add(commands)
    return parser


def _main_process() -> bool:
    if "modekit.training.distributed" not in sys.modules:  # nothing launched a process group
        return True
    from modekit.training.distributed import main_process

    return main_process()


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
        from modekit.cli.commands import COMMANDS  # imported after parsing: --help and bad options need no torch
        from modekit.training.distributed import launched

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
        if _main_process():  # under torchrun every rank meets the same error (decisions are agreed): rank 0 says it
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
