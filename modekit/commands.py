"""The commands behind `python -m modekit ...`: each takes the parsed arguments, does the work
through the library and prints the result. The parser and the error handling are in cli.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import data as datasets
from .config import ModelConfig, TrainConfig
from .errors import UserError
from .profiles import DOMAINS, PROFILES


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
            raise UserError(f"--dataset {args.dataset} needs --target COLUMN (the label column)")
        return datasets.load(args.dataset, seed=seed, target=args.target)
    if args.target:
        raise UserError("--target is only for --dataset csv:PATH")
    return datasets.load(args.dataset, seed=seed)


def _check_new_file(path: Path | None) -> None:
    if path is not None and path.exists():
        raise UserError(f"--out {path}: the file exists; choose a new name (modekit never overwrites results)")


def _list_of(option: str, text: str, allowed, what: str) -> list[str]:
    """A comma-separated option's values, each one of `allowed`."""
    values = [v for v in text.split(",") if v]
    for value in values:
        if value not in allowed:
            raise UserError(f"{option}: {value!r} is not {what}; choose from {', '.join(allowed)}")
    return values


def _check_new_folder(path: Path | None) -> None:
    if path is not None and path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "a file" if not path.is_dir() else "not empty"
        raise UserError(f"--out {path}: the path is {what}; choose a new folder (modekit never overwrites results)")


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


def cmd_notebooks(args) -> int:
    from .resources import copy_notebooks

    copied, kept = copy_notebooks(args.dir)
    for path in copied:
        print(f"copied {path}")
    for path in kept:
        print(f"kept {path} (it exists; modekit never overwrites your files)")
    return 0


def cmd_bench(args) -> int:
    from .bench import format_bench, ones_bench, run_bench

    report = run_bench(args.device) if args.section in ("all", "train") else {}
    if args.section in ("all", "ones"):
        report["ones_inference"] = ones_bench(args.device)
    print(json.dumps(report) if args.json else format_bench(report))
    return 0


def cmd_ones(args) -> int:
    from .gathering import METHODS
    from .ones_experiment import run_ones, summarise_ones

    methods = _list_of("--methods", args.methods, METHODS, "a gathering method")
    _check_new_folder(args.out)
    data = _load(argparse.Namespace(dataset=args.dataset, target=None))  # checks the name before any training
    base = TrainConfig(epochs=args.epochs, device=args.device, progress=False)
    source = args.dataset if not args.dataset.startswith("csv:") else data  # by name: each seed its own split
    results = run_ones(source, methods, args.seeds, base, base.replace(epochs=args.kd_epochs), mode_alpha=args.mode_alpha)
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
            "dataset": data.name,
            "seeds": args.seeds,
            "teacher": pick("MoE", "teacher", "trained"),
            "dense": pick("-", "dense from scratch", "trained"),
            "mode_teacher": pick("MoDE", "teacher", "trained"),
            "students": {
                m: {
                    "before_kd": pick("MoE", m, "before KD"),
                    "after_kd": pick("MoE", m, "after KD"),
                    "mode_teacher_after_kd": pick("MoDE", m, "after KD"),
                }
                for m in methods
            },
            "baselines": {b: pick("MoE", b, "after KD") for b in ("KD from random init", "Switch-style")},
            "benefit_meaningful": warning is None,
            "warning": warning,
        }
        print(json.dumps(report))
    else:
        print(f"OneS on {data.name}: test accuracy over seeds {args.seeds} ('% of MoE benefit preserved' from the means)\n")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if warning:
            print("\n" + warning)
    return 0


def cmd_reproduce(args) -> int:
    from .report import scorecard_table
    from .reproduce import reproduce

    notebooks = [n for n in args.only.split(",") if n] if args.only else None
    report, runs = reproduce(
        args.profile, args.out, args.force, notebooks, progress=True, cell_timeout=args.cell_timeout, threads=args.threads
    )
    print(runs.to_string(index=False))
    from .claims import scorecard

    card = scorecard(report.parent)
    print("\nscorecard:")
    shown = scorecard_table(card)
    print(shown[["claim", "scope", "paper", "ours: effect [95% CI]", "p", "n", "verdict"]].to_string(index=False))
    print(f"\nreport: {report} (and report.html beside it)")
    failed = runs[runs.status != "ok"]
    if len(failed):
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed.notebook)}; their executed copies keep the error", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args) -> int:
    import time

    from .compare import compare_moe_mode, format_summary, summarise_comparison, sweet_spots

    domains = _list_of("--domains", args.domains, DOMAINS, "a domain")
    _check_new_folder(args.out)
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
                names,
                args.seeds,
                model_config=model_config,
                train_config=base,
                progress=sys.stderr.isatty(),
                baselines=not args.no_baselines,
                max_train=args.max_train or profile.get("max_train", {}).get(domain),
                max_val=profile.get("max_val", {}).get(domain),
                load_options=profile.get("load_options"),
            )
        )
    import pandas as pd

    results = pd.concat(frames, ignore_index=True)
    summary = summarise_comparison(results)
    wall = time.perf_counter() - start
    text = (
        f"MoE vs MoDE ({args.gate} gate), each tuned on validation over grids of equal size (MoE: weight decay, MoDE: alpha); "
        f"test accuracy % mean +- std over seeds {args.seeds}, each seed its own split\n"
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


COMMANDS = {
    "data": cmd_data,
    "train": cmd_train,
    "sweep": cmd_sweep,
    "bench": cmd_bench,
    "compare": cmd_compare,
    "ones": cmd_ones,
    "reproduce": cmd_reproduce,
    "notebooks": cmd_notebooks,
}
