"""The commands behind `python -m modekit ...`: each takes the parsed arguments, does the work
through the library and prints the result. The parser and the error handling are in cli/parser.py."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys

from modekit import data as datasets
from modekit.config import ModelConfig, TrainConfig
from modekit.errors import Interrupted, Terminated, UserError
from modekit.profiles import ALPHA_GRID, DOMAINS, MOE_WEIGHT_DECAY, PROFILES
from modekit.store import RESULTS_MARKER, STORE_NAME, check_out_folder, mark_out_folder, to_json, using_store
from modekit.training.distributed import main_process


def _configs(args, alpha: float, seed: int) -> tuple[ModelConfig, TrainConfig]:
    """The configs of the options the parser built from config fields (each option's dest is its field)."""
    given = vars(args)
    model = ModelConfig(**{f.name: given[f.name] for f in dataclasses.fields(ModelConfig) if f.name in given})
    fields = {f.name: given[f.name] for f in dataclasses.fields(TrainConfig) if f.name in given}
    return model, TrainConfig(**{**fields, "alpha": alpha, "seed": seed, "progress": sys.stderr.isatty()})


def _load(args, seed: int = 0):
    csv_options = {k: getattr(args, k, None) for k in ("sep", "encoding") if getattr(args, k, None) is not None}
    if args.dataset.startswith("csv:"):
        if not args.target:
            raise UserError(f"--dataset {args.dataset} needs --target COLUMN (the label column)")
        return datasets.load(args.dataset, seed=seed, target=args.target, **csv_options)
    for option in ("target", *csv_options):
        if getattr(args, option, None):
            raise UserError(f"--{option} is only for --dataset csv:PATH (not for --dataset {args.dataset})")
    return datasets.load(args.dataset, seed=seed)


def _prepare_out(args, command: str) -> None:
    """Check --out before any work: a new folder or one modekit made (resumed); marked as the kit's."""
    if args.out is None:
        return
    if args.out.suffix.lower() in (".csv", ".txt", ".json") and not args.out.is_dir():
        raise UserError(f"--out {str(args.out)!r} names a file: --out is a folder (results.csv and the results store go inside it)")
    check_out_folder(args.out, RESULTS_MARKER)
    mark_out_folder(args.out, RESULTS_MARKER, command)


@contextlib.contextmanager
def _resumable(args, total: int, kind: str = "model"):
    """The --out folder's results store serves the library inside; afterwards the command says how
    many results it reused and computed, and an interrupt says how many were kept."""
    if args.out is None:
        try:
            yield None
        except KeyboardInterrupt as interrupt:
            raise Interrupted(
                "interrupted: nothing kept (no --out); pass --out DIR to make a run resumable", _was_term(interrupt)
            ) from None
        return
    with using_store(args.out / STORE_NAME, fresh=args.fresh) as store:
        try:
            yield store
        except KeyboardInterrupt as interrupt:
            kept = sum(store.counts(kind))
            raise Interrupted(
                f"interrupted: {kept} of {total} results kept in {args.out}; rerun the same command to resume", _was_term(interrupt)
            ) from None
        reused, computed = store.counts(kind)
        print(f"results store {args.out / STORE_NAME}: reused {reused}, computed {computed}", file=sys.stderr)


@contextlib.contextmanager
def _executor(args, units: int):
    """The executor --executor / --workers ask for (None: one process here), closed afterwards."""
    from modekit.device import resolve_device
    from modekit.executors import DEFAULT_TIMEOUT_MIN, close_executor, make_executor

    cluster = {"--slurm-partition": args.slurm_partition, "--slurm-time": args.slurm_time, "--slurm-gpus": args.slurm_gpus,
               "--slurm-cpus": args.slurm_cpus, "--slurm-mem": args.slurm_mem}  # fmt: skip
    given = [option for option, value in cluster.items() if value is not None]
    if given and args.executor == "pool":
        raise UserError(f"{given[0]} is only for a submitit --executor (slurm, submitit-local, submitit-debug), not --executor pool")
    if args.slurm_partition is not None and args.executor != "slurm":
        raise UserError(f"--slurm-partition is only for --executor slurm (not --executor {args.executor})")
    executor = make_executor(
        args.executor,
        args.workers,
        resolve_device(args.device).type,
        units,
        folder=args.out / "submitit" if args.out else None,
        timeout_min=args.slurm_time or DEFAULT_TIMEOUT_MIN,
        partition=args.slurm_partition,
        gpus_per_node=args.slurm_gpus,
        cpus_per_task=args.slurm_cpus,
        mem_gb=args.slurm_mem,
    )
    try:
        yield executor
    finally:
        close_executor(executor)


def _was_term(interrupt: KeyboardInterrupt) -> bool:
    return isinstance(interrupt, Terminated)


def _list_of(option: str, text: str, allowed, what: str) -> list[str]:
    """A comma-separated option's values, each one of `allowed`, at least one, none repeated."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise UserError(f"{option} {text!r} is not allowed: give at least one of {', '.join(allowed)}")
    for value in values:
        if value not in allowed:
            raise UserError(f"{option}: {value!r} is not {what}; choose from {', '.join(allowed)}")
        if values.count(value) > 1:
            raise UserError(f"{option}: {value!r} is repeated; give each {what} once")
    return values


def cmd_train(args) -> int:
    model_config, train_config = _configs(args, args.alpha, args.seed)
    from modekit.training.loop import train

    result = train(_load(args, args.seed), model_config, train_config)
    if not main_process():  # under torchrun: every rank trains, rank 0 reports
        return 0
    summary = {"dataset": args.dataset, **result.summary()}
    if args.json:
        print(to_json(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>15}: {value}")
    return 0


def cmd_sweep(args) -> int:
    from modekit.training.population import summarise, sweep_configs, train_population
    from modekit.training.result import results_frame

    model_config, base = _configs(args, 0.0, 0)
    data = _load(args)
    configs = sweep_configs(base, args.alphas, args.seeds)
    _prepare_out(args, "sweep")
    vectorise = args.vectorise
    with _resumable(args, len(configs)), _executor(args, len(configs)) as executor:
        results = train_population(data, model_config, configs, vectorise=vectorise, progress=sys.stderr.isatty(), executor=executor)
    table = results_frame(results, dataset=data.name)
    print(f"{data.name}: test accuracy per alpha over seeds {args.seeds}")
    for row in summarise(table).itertuples():
        print(f"  alpha={row.alpha:<8g} {100 * row.mean:6.2f} +- {100 * (row.std if row.count > 1 else 0):.2f} %  (n={row.count})")
    if args.out:
        table.to_csv(args.out / "results.csv", index=False)
        print(f"results: {args.out / 'results.csv'}")
    return 0


def cmd_data(args) -> int:
    if args.data_command == "fetch":
        from modekit.data.download import fetch

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
    from modekit.resources import copy_notebooks

    copied, kept = copy_notebooks(args.dir)
    for path in copied:
        print(f"copied {path}")
    for path in kept:
        print(f"kept {path} (it exists; modekit never overwrites your files)")
    return 0


def cmd_bench(args) -> int:
    from modekit.experiments.bench import format_bench, run_bench, workers_bench
    from modekit.ones.speed import ones_bench

    report = run_bench(args.device, compile=args.compile) if args.section in ("all", "train") else {}
    if args.section in ("all", "ones"):
        report["ones_inference"] = ones_bench(args.device)
    if args.section in ("all", "workers"):
        report["workers"] = workers_bench()
    print(to_json(report) if args.json else format_bench(report))
    return 0


def cmd_ones(args) -> int:
    from modekit.ones.experiment import ONES_UNIT, ones_report, run_ones, summarise_ones
    from modekit.ones.gathering import METHODS

    methods = _list_of("--methods", args.methods, METHODS, "a gathering method")
    data = _load(args)  # checks the name (and a csv: file with its --target) before any training
    base = TrainConfig(epochs=args.epochs, device=args.device, progress=False)
    _prepare_out(args, "ones")
    source = args.dataset if not args.dataset.startswith("csv:") else data  # by name: each seed its own split
    with _resumable(args, len(args.seeds), kind=ONES_UNIT), _executor(args, len(args.seeds)) as executor:
        kd = base.replace(epochs=args.kd_epochs)
        results = run_ones(source, methods, args.seeds, base, kd, mode_alpha=args.mode_alpha, executor=executor)
    summary, warning = summarise_ones(results)
    if args.out:
        results.to_csv(args.out / "results.csv", index=False)
        summary.to_csv(args.out / "summary.csv", index=False)
    if args.json:
        print(to_json(ones_report(summary, warning, data.name, args.seeds, methods)))
    else:
        print(f"OneS on {data.name}: test accuracy over seeds {args.seeds} ('% of MoE benefit preserved' from the means)\n")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if warning:
            print("\n" + warning)
    return 0


def cmd_reproduce(args) -> int:
    from modekit.reproduction.report import STATUS_FILE, TERMINAL_COLUMNS, scorecard_table
    from modekit.reproduction.runner import NOTEBOOKS, default_out, reproduce

    notebooks = _list_of("--only", args.only, NOTEBOOKS, "a notebook") if args.only is not None else None
    out = args.out or default_out()
    try:
        options = {"cell_timeout": args.cell_timeout, "threads": args.threads, "jobs": args.jobs, "with_solutions": args.with_solutions}
        options["first_seed"] = args.first_seed
        report, runs = reproduce(args.profile, out, args.force, notebooks, progress=True, **options)
    except KeyboardInterrupt as interrupt:
        status = json.loads((out / STATUS_FILE).read_text()) if (out / STATUS_FILE).is_file() else {}
        kept = status.get("results", {}).get("stored", 0)
        raise Interrupted(
            f"interrupted: {status.get('completed', 0)} of {status.get('notebooks', len(notebooks or NOTEBOOKS))} notebooks and "
            f"{kept} results kept in {out} (report marked incomplete); rerun the same command to resume",
            _was_term(interrupt),
        ) from None
    print(runs.to_string(index=False))
    from modekit.analysis.claims import scorecard

    card = scorecard(report.parent)
    print("\nscorecard:")
    shown = scorecard_table(card)
    print(shown[TERMINAL_COLUMNS].to_string(index=False))
    print(f"\nreport: {report} (and report.html beside it)")
    failed = runs[runs.status != "ok"]
    if len(failed):
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed.notebook)}; their executed copies keep the error", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args) -> int:
    import time

    from modekit.experiments.compare import format_summary, summarise_comparison, sweet_spots

    domains = _list_of("--domains", args.domains, DOMAINS, "a domain")
    profile = PROFILES[args.profile]
    chosen = _list_of("--datasets", args.datasets, sorted(datasets.CATALOGUE), "a dataset") if args.datasets is not None else None
    model_config = ModelConfig(gate=args.gate, top_k=args.top_k)
    plan = {d: [n for n in chosen if datasets.CATALOGUE[n][0] == d] if chosen else profile["datasets"][d] for d in domains}
    if not any(plan.values()):
        raise UserError(f"--datasets {args.datasets}: none of them is in --domains {args.domains}; nothing to run")
    per_seed = {d: 2 * len(ALPHA_GRID[d][: len(MOE_WEIGHT_DECAY)]) + (0 if args.no_baselines else 2) for d in domains}
    total = sum(len(names) * len(args.seeds) * per_seed[d] for d, names in plan.items())
    _prepare_out(args, "compare")
    start, frames = time.perf_counter(), []
    units = sum(len(names) for names in plan.values()) * len(args.seeds)
    with _resumable(args, total), _executor(args, units) as executor:
        frames = [_compare_domain(args, profile, model_config, domain, names, executor) for domain, names in plan.items() if names]
    import pandas as pd

    results = pd.concat(frames, ignore_index=True)
    summary = summarise_comparison(results)
    wall = time.perf_counter() - start
    text = (
        f"MoE vs MoDE ({args.gate} gate): test accuracy % mean +- sd over seeds {args.seeds}, each seed its own split; "
        f"the primary verdict: `modekit judge`\n"
        f"profile {args.profile}, device {results['device'].iloc[0]}, wall time {wall:.0f} s\n\n"
        + format_summary(summary)
        + "\n\nwhere the sweet spot lands (our L_KD normalisation) vs the paper's alpha:\n"
        + sweet_spots(results).to_string(index=False)
    )
    print(text)
    if args.out:
        results.to_csv(args.out / "results.csv", index=False)
        summary.to_csv(args.out / "summary.csv", index=False)
        (args.out / "summary.txt").write_text(text + "\n")
        print(f"\nresults: {args.out}/results.csv, summary.csv, summary.txt")
    return 0


def _compare_domain(args, profile, model_config, domain: str, names: list[str], executor):
    from modekit.experiments.compare import compare_moe_mode

    base = TrainConfig(epochs=args.epochs or profile["epochs"][domain], device=args.device, progress=False, compile=args.compile)
    return compare_moe_mode(
        names,
        args.seeds,
        model_config=model_config,
        train_config=base,
        progress=sys.stderr.isatty(),
        baselines=not args.no_baselines,
        max_train=args.max_train or profile.get("max_train", {}).get(domain),
        max_val=profile.get("max_val", {}).get(domain),
        load_options=profile.get("load_options"),
        executor=executor,
        doublings=profile.get("budget_doublings", 0),
    )


def cmd_judge(args) -> int:
    from modekit.experiments.judge import format_verdicts, judge_file

    rows = judge_file(args.file, args.claim)
    print(to_json(rows.to_dict("records")) if args.json else format_verdicts(rows, f"{args.claim} on {args.file}"))
    return 0


def cmd_writeup(args) -> int:
    from modekit.reproduction.writeup import write_up

    if args.out.suffix != ".md":
        raise UserError(f"--out {args.out}: not allowed: give a Markdown file name ending in .md")
    print(f"written: {write_up(args.report, args.out)} and its evidence in {args.out.parent / args.out.stem}/")
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
    "judge": cmd_judge,
    "writeup": cmd_writeup,
}
