"""Command line: `python -m modekit {train,sweep,bench,reproduce} ...`.

A user's mistake (bad option, unknown dataset, impossible value) exits with code 2 and one line on
stderr naming the argument, the value and what is allowed, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import data as datasets
from .compare import DOMAINS, PROFILES
from .config import DEVICES, GATES, ModelConfig, TrainConfig


class UsageError(Exception):
    """A user's mistake: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message}")


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _seeds(text: str) -> list[int]:
    """'3' -> [0, 1, 2]; '0,4,7' -> [0, 4, 7]."""
    values = _int_list(text)
    return list(range(values[0])) if len(values) == 1 and "," not in text else values


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def _add_model_and_training(parser: argparse.ArgumentParser, alpha: bool = True) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `python -m modekit data list`) or csv:PATH")
    parser.add_argument("--target", help="label column, for --dataset csv:PATH")
    if alpha:
        parser.add_argument("--alpha", type=float, default=0.0, help="MoDE distillation strength (0 = plain MoE)")
    parser.add_argument("--experts", type=int, default=4, help="number of experts E")
    parser.add_argument("--gate", choices=GATES, default="dense")
    parser.add_argument("--top-k", type=int, default=2, help="experts per sample for --gate topk")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs (0 = off)")
    parser.add_argument("--device", choices=DEVICES, default="auto")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modekit", description="MoE / MoDE / OneS teaching and reproduction kit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train one MoE / MoDE model")
    _add_model_and_training(train)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    sweep = commands.add_parser("sweep", help="train an alpha x seed population")
    _add_model_and_training(sweep, alpha=False)
    sweep.add_argument("--alphas", type=_float_list, default=[0.0, 0.01, 0.1, 1.0])
    sweep.add_argument("--seeds", type=_int_list, default=[0, 1, 2])
    sweep.add_argument("--vectorise", choices=("auto", "yes", "no"), default="auto")
    sweep.add_argument("--out", type=Path, help="write the tidy results table as CSV (never overwrites)")

    data = commands.add_parser("data", help="list or fetch datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    listing = data_commands.add_parser("list", help="every dataset, its size and whether its files are present")
    listing.add_argument("--json", action="store_true")
    fetch = data_commands.add_parser("fetch", help="download a dataset's files from its public source")
    fetch.add_argument("name")

    bench = commands.add_parser("bench", help="train-step throughput, and OneS teacher vs student inference speed")
    bench.add_argument("--device", choices=DEVICES, default="auto")
    bench.add_argument("--section", choices=("all", "train", "ones"), default="all")
    bench.add_argument("--json", action="store_true")

    ones = commands.add_parser("ones", help="OneS: gather a sparse MoE into a dense student, then distil")
    ones.add_argument("--dataset", required=True)
    ones.add_argument("--methods", default="sum,avg,topk,svd", help="comma-separated: sum, avg, topk, neurons, svd")
    ones.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="a count (3 = seeds 0,1,2) or a list")
    ones.add_argument("--epochs", type=int, default=20, help="teacher and dense-baseline epochs")
    ones.add_argument("--kd-epochs", type=int, default=10, help="distillation epochs per student")
    ones.add_argument("--mode-alpha", type=float, help="alpha of the MoDE teacher (default per domain; 0 = none)")
    ones.add_argument("--device", choices=DEVICES, default="auto")
    ones.add_argument("--json", action="store_true")
    ones.add_argument("--out", type=Path, help="write results.csv and summary.csv into this new folder")

    reproduce = commands.add_parser("reproduce", help="run every notebook headless (papermill) and write the report + scorecard")
    reproduce.add_argument("--profile", choices=("fast", "full"), default="fast", help="fast: embedded data, CPU minutes; full: real data")
    reproduce.add_argument("--out", type=Path, help="report folder (default: reports/<timestamp>); never overwritten without --force")
    reproduce.add_argument("--force", action="store_true", help="replace an existing report folder")
    reproduce.add_argument("--only", help="comma-separated notebook names (default: all)")
    reproduce.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                           help="seconds one cell may run before its notebook counts as hung (default: 900 fast, 21600 full)")
    reproduce.add_argument("--threads", type=int, metavar="N",
                           help="CPU threads per notebook kernel (default: 1 fast, torch's default full)")

    for name, text in (("compare", "MoE vs MoDE vs dense baselines across domains, paired by seed"),):
        command = commands.add_parser(name, help=text)
        command.add_argument("--domains", default="tabular,image,text", help="comma-separated: tabular, image, text")
        command.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="a count (3 = seeds 0,1,2) or a list")
        command.add_argument("--profile", choices=tuple(PROFILES), default="fast", help="fast: embedded data; full: real sets")
        command.add_argument("--datasets", help="override the profile's datasets (comma-separated names)")
        command.add_argument("--epochs", type=int, help="override the profile's epochs for every domain")
        command.add_argument("--max-train", type=int, help="train on at most this many samples per dataset (stratified)")
        command.add_argument("--gate", choices=GATES, default="dense")
        command.add_argument("--top-k", type=int, default=2)
        command.add_argument("--no-baselines", action="store_true", help="skip the two dense baselines")
        command.add_argument("--device", choices=DEVICES, default="auto")
        command.add_argument("--out", type=Path, help="folder for results.csv, summary.csv, summary.txt (must be new or empty)")
    return parser


def _configs(args, alpha: float, seed: int) -> tuple[ModelConfig, TrainConfig]:
    model = ModelConfig(n_experts=args.experts, gate=args.gate, top_k=args.top_k)
    training = TrainConfig(
        alpha=alpha,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        seed=seed,
        device=args.device,
        progress=sys.stderr.isatty(),
    )
    return model, training


def _load(args, seed: int = 0):
    if args.dataset.startswith("csv:"):
        if not args.target:
            raise UsageError(f"--dataset {args.dataset} needs --target COLUMN (the label column)")
        return datasets.load(args.dataset, seed=seed, target=args.target)
    if args.target:
        raise UsageError("--target is only for --dataset csv:PATH")
    return datasets.load(args.dataset, seed=seed)


def _check_new_file(path: Path | None) -> None:
    if path is not None and path.exists():
        raise UsageError(f"--out {path}: the file exists; choose a new name (modekit never overwrites results)")


def cmd_train(args) -> int:
    model_config, train_config = _configs(args, args.alpha, args.seed)
    from .train import train

    result = train(_load(args, args.seed), model_config, train_config)
    summary = {"dataset": args.dataset, **result.summary()}
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>15}: {value}")
    return 0


def cmd_sweep(args) -> int:
    _check_new_file(args.out)
    from .population import summarise, sweep_configs, train_population
    from .train import results_frame

    model_config, base = _configs(args, 0.0, 0)
    data = _load(args)
    configs = sweep_configs(base, args.alphas, args.seeds)
    vectorise = {"auto": "auto", "yes": True, "no": False}[args.vectorise]
    results = train_population(data, model_config, configs, vectorise=vectorise, progress=sys.stderr.isatty())
    table = results_frame(results, dataset=data.name)
    print(f"{data.name}: test accuracy per alpha over seeds {args.seeds}")
    for row in summarise(table).itertuples():
        print(f"  alpha={row.alpha:<8g} {100 * row.mean:6.2f} +- {100 * (row.std if row.count > 1 else 0):.2f} %  (n={row.count})")
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"results: {args.out}")
    return 0


def cmd_data(args) -> int:
    if args.data_command == "fetch":
        from .data.fetch import fetch

        for path in fetch(args.name):
            print(path)
        return 0
    table = datasets.catalogue()
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(f"data directory: {datasets.data_dir().resolve()} (MODEKIT_DATA)\n")
        print(table.to_string(index=False))
    return 0


def cmd_bench(args) -> int:
    from .bench import format_bench, ones_bench, run_bench

    report = run_bench(args.device) if args.section in ("all", "train") else {}
    if args.section in ("all", "ones"):
        report["ones_inference"] = ones_bench(args.device)
    print(json.dumps(report) if args.json else format_bench(report))
    return 0


def cmd_ones(args) -> int:
    from .ones import METHODS
    from .ones_experiment import run_ones, summarise_ones

    methods = [m for m in args.methods.split(",") if m]
    for method in methods:
        if method not in METHODS:
            raise UsageError(f"--methods: {method!r} is not a gathering method; choose from {', '.join(METHODS)}")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"--out {args.out}: the folder is not empty; choose a new one (modekit never overwrites results)")
    data = _load(argparse.Namespace(dataset=args.dataset, target=None))
    base = TrainConfig(epochs=args.epochs, device=args.device, progress=False)
    results = run_ones(data, methods, args.seeds, base, base.replace(epochs=args.kd_epochs), mode_alpha=args.mode_alpha)
    summary, warning = summarise_ones(results)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out / "results.csv", index=False)
        summary.to_csv(args.out / "summary.csv", index=False)
    if args.json:
        def pick(teacher, student, stage):
            row = summary[(summary.teacher == teacher) & (summary.student == student) & (summary.stage == stage)]
            return None if row.empty else {"mean": row["mean"].item(), "std": row["std"].item(), "benefit_%": row["benefit_%"].item()}

        report = {
            "dataset": data.name, "seeds": args.seeds, "teacher": pick("MoE", "teacher", "trained"),
            "dense": pick("-", "dense from scratch", "trained"), "mode_teacher": pick("MoDE", "teacher", "trained"),
            "students": {m: {"before_kd": pick("MoE", m, "before KD"), "after_kd": pick("MoE", m, "after KD"),
                             "mode_teacher_after_kd": pick("MoDE", m, "after KD")} for m in methods},
            "baselines": {b: pick("MoE", b, "after KD") for b in ("KD from random init", "Switch-style")},
            "benefit_meaningful": warning is None, "warning": warning,
        }
        print(json.dumps(report))
    else:
        print(f"OneS on {data.name}: test accuracy over seeds {args.seeds} ('% of MoE benefit preserved' from the means)\n")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if warning:
            print("\n" + warning)
    return 0


def cmd_reproduce(args) -> int:
    from .reproduce import reproduce

    notebooks = [n for n in args.only.split(",") if n] if args.only else None
    report, runs = reproduce(args.profile, args.out, args.force, notebooks, progress=True, cell_timeout=args.cell_timeout, threads=args.threads)
    print(runs.to_string(index=False))
    from .claims import scorecard

    card = scorecard(report.parent)
    print("\nscorecard:")
    print(card[["claim", "paper", "ours_mean", "ours_std", "n", "verdict"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nreport: {report} (and report.html beside it)")
    failed = runs[runs.status != "ok"]
    if len(failed):
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed.notebook)}; their executed copies keep the error", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args) -> int:
    import time

    from .compare import compare_moe_mode, format_summary, summarise_comparison, sweet_spots

    domains = [d for d in args.domains.split(",") if d]
    for domain in domains:
        if domain not in DOMAINS:
            raise UsageError(f"--domains: {domain!r} is not a domain; choose from {', '.join(DOMAINS)}")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"--out {args.out}: the folder is not empty; choose a new one (modekit never overwrites results)")
    profile = PROFILES[args.profile]
    chosen = args.datasets.split(",") if args.datasets else None
    model_config = ModelConfig(gate=args.gate, top_k=args.top_k)
    start, frames = time.perf_counter(), []
    for domain in domains:
        names = [n for n in chosen if datasets.CATALOGUE.get(n, (domain,))[0] == domain] if chosen else profile["datasets"][domain]
        if not names:
            continue
        base = TrainConfig(epochs=args.epochs or profile["epochs"][domain], device=args.device, progress=False)
        frames.append(
            compare_moe_mode(
                names, args.seeds, model_config=model_config, train_config=base, progress=sys.stderr.isatty(),
                baselines=not args.no_baselines, max_train=args.max_train or profile["max_train"],
            )
        )
    import pandas as pd

    results = pd.concat(frames, ignore_index=True)
    summary = summarise_comparison(results)
    wall = time.perf_counter() - start
    text = (
        f"MoE vs MoDE ({args.gate} gate), alpha chosen on validation; test accuracy % mean +- std over seeds {args.seeds}\n"
        f"profile {args.profile}, device {results['device'].iloc[0]}, wall time {wall:.0f} s\n\n"
        + format_summary(summary)
        + "\n\nwhere the sweet spot lands (our L_KD normalisation) vs the paper's alpha:\n"
        + sweet_spots(results).to_string(index=False)
    )
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out / "results.csv", index=False)
        summary.to_csv(args.out / "summary.csv", index=False)
        (args.out / "summary.txt").write_text(text + "\n")
        print(f"\nresults: {args.out}/results.csv, summary.csv, summary.txt")
    return 0


COMMANDS = {"data": cmd_data, "train": cmd_train, "sweep": cmd_sweep, "bench": cmd_bench, "compare": cmd_compare, "ones": cmd_ones,
            "reproduce": cmd_reproduce}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into `head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # configs and loaders name the argument, the value and what is allowed
        print(f"error: {error}", file=sys.stderr)
        return 2
