"""The full tabular comparison eagerly and with the compiled step, end to end (README, "Speed").

    python benchmarks/compare_compile.py OUT [--seeds 5] [--profile full]
    python benchmarks/compare_compile.py OUT --tables-only   # the agreement of two finished runs

Starts `modekit compare --profile full --domains tabular --workers 1` twice side by side, one
thread each (so each has a core of a 2-core machine): `--compile no` (the eager reference, the
behaviour before the compiled step) into OUT/eager and `--compile auto` into OUT/auto, each with
its own empty inductor cache (a user's first run: every compilation cold). Prints both wall and
CPU times, their ratios, both summary tables, and whether the two runs' test accuracies agree
within the seed spread (modekit.experiments.compare.runs_agree). Needs the real data under $MODEKIT_DATA.
OUT must not exist yet (nothing is overwritten), except with --tables-only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from modekit.experiments.compare import runs_agree

SIDES = {"eager": "no", "auto": "auto"}


def run_side_by_side(out: Path, seeds: str, profile: str) -> dict[str, tuple[float, float]]:
    """{side: (wall s, CPU s)} of the two compare runs started together."""
    out.mkdir(parents=True)
    started, children = time.perf_counter(), {}
    for side, compile_option in SIDES.items():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(out / f"inductor-cache-{side}")}
        command = [sys.executable, "-m", "modekit", "compare", "--profile", profile, "--domains", "tabular", "--seeds", seeds,
                   "--workers", "1", "--compile", compile_option, "--out", str(out / side)]  # fmt: skip
        log = open(out / f"{side}.log", "w")  # noqa: SIM115 - closed when the child is reaped
        children[subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT).pid] = (side, log)
    times = {}
    while children:
        pid, status, usage = os.wait4(-1, 0)  # per child: its own CPU time
        side, log = children.pop(pid)
        log.close()
        if os.waitstatus_to_exitcode(status):
            for other in children:  # the other run measures nothing alone: stop it too
                os.kill(other, signal.SIGTERM)
                os.waitpid(other, 0)
            raise SystemExit(f"{side}: modekit compare failed; see {out / f'{side}.log'}")
        times[side] = (time.perf_counter() - started, usage.ru_utime + usage.ru_stime)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", default="5")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--tables-only", action="store_true", help="compare two finished runs in OUT/eager and OUT/auto")
    args = parser.parse_args()
    if not args.tables_only:
        if args.out.exists():
            raise SystemExit(f"OUT={args.out} exists: give a new directory (nothing is overwritten)")
        times = run_side_by_side(args.out, args.seeds, args.profile)
        for side, (wall, cpu) in times.items():
            print(f"{side:>5}: wall {wall:7.1f} s, CPU {cpu:7.1f} s")
        (eager_wall, eager_cpu), (auto_wall, auto_cpu) = times["eager"], times["auto"]
        print(f"compiled vs eager: {eager_wall / auto_wall:.2f}x wall, {eager_cpu / auto_cpu:.2f}x CPU time\n")
    missing = [str(args.out / side / "results.csv") for side in SIDES if not (args.out / side / "results.csv").is_file()]
    if missing:
        raise SystemExit(f"OUT={args.out} holds no finished runs to compare: {', '.join(missing)} missing")
    results = {side: pd.read_csv(args.out / side / "results.csv") for side in SIDES}
    for side in SIDES:
        print(f"--- {side}: {(args.out / side / 'summary.txt').read_text()}")
        seconds = results[side].groupby("dataset", sort=False).train_seconds.sum()
        print("training seconds per dataset (compilations included):", ", ".join(f"{d} {s:.0f}" for d, s in seconds.items()), "\n")
    agreement = runs_agree(results["eager"], results["auto"])
    print(agreement.round(4).to_string(index=False))
    verdict = "agree" if agreement.within_spread.all() else "DO NOT agree"
    print(f"\nthe two runs' test accuracies {verdict} within the seed spread (every dataset and model)")


if __name__ == "__main__":
    main()
