"""The batch reproduction: every notebook run headless by papermill, then one report.

Each notebook gets the parameters FAST (profile) and OUT_DIR (its own folder under the report),
writes its figures (PNG), tables (CSV) and measured claims there, and its executed copy is kept.
A notebook that fails does not stop the others; its executed copy keeps the error, the report
lists it, and `reproduce` returns non-zero. An existing report folder is never overwritten unless
`force=True`; by default each run gets a new timestamped folder under reports/.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import time
import uuid
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from modekit.config import CELL_TIMEOUT_S, MAX_CELL_TIMEOUT_S, MAX_JOBS, check_first_seed
from modekit.errors import UserError
from modekit.profiles import PROFILES
from modekit.reproduction.report import write_report
from modekit.resources import HOW_TO_GET, folder
from modekit.store import ENV_RUN, ENV_STORE, STORE_NAME, ResultsStore, check_out_folder

NOTEBOOK_DIR = folder("notebooks")  # the wheel's packaged notebooks, else the checkout's
NOTEBOOKS = ["00_quickstart", "01_narrow_vision", "02_alpha_sensitivity", "03_expert_probing", "04_ones_svd_gathering", "05_reproduction"]
REPORT_MARKER = ".modekit-report"  # written into every report folder: --force replaces only such folders


def default_out() -> Path:
    return Path("reports") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def prepare_out(out: Path, force: bool) -> Path:
    """A new or empty report folder, marked as the kit's, checked before any work. An earlier report
    (a folder holding REPORT_MARKER) is resumed: its results store serves the rerun; `force` replaces
    it instead (everything recomputed). A folder the kit did not make is never written to or deleted;
    a file, a path under a file or a folder that cannot be written is refused."""
    if check_out_folder(out, REPORT_MARKER, option="out") and force:
        shutil.rmtree(out)
        out.mkdir(parents=True)
    (out / REPORT_MARKER).write_text("made by `modekit reproduce`; a rerun with the same --out resumes, --force replaces it\n")
    return out


# Seconds one cell may run before its notebook counts as hung and fails (FAST cells take seconds;
# full-profile cells train on real data). Also bounds papermill's final wait for the kernel
# (nteract/papermill#711). Replies a poll missed are picked up by PatientKernelManager.
# CPU threads of each notebook's kernel (OMP_NUM_THREADS; None: torch's default, one per core). The
# fast profile's models are tiny: on an idle 2-core CPU a second thread gains ~5%, and on cores that
# something else is using, two spinning threads per process made training 8x slower than one.
KERNEL_THREADS = {"fast": 1, "laptop": 1, "full": None}
# Seconds each notebook took on this project's 2-core CPU (one thread): the progress bar counts in
# these, so its rate and time left are in seconds of work, not in notebooks of unequal length.
EXPECTED_SECONDS = {
    "fast": {"00_quickstart": 10, "01_narrow_vision": 15, "02_alpha_sensitivity": 20, "03_expert_probing": 25,
             "04_ones_svd_gathering": 34, "05_reproduction": 157},
    "laptop": {"00_quickstart": 9, "01_narrow_vision": 14, "02_alpha_sensitivity": 73, "03_expert_probing": 552,
               "04_ones_svd_gathering": 189, "05_reproduction": 1964},  # the 2026-12-03 run, 2 at a time (docs/reproduction.md)
}  # fmt: skip


def check_options(profile: str, notebooks=None, cell_timeout: float | None = None, threads: int | None = None):
    """Validate the run's options and fill in the profile's defaults: (notebooks, cell_timeout, threads)."""
    if profile not in PROFILES:
        raise UserError(f"profile={profile!r} is not allowed: profile must be one of {', '.join(PROFILES)}")
    notebooks = list(notebooks or NOTEBOOKS)
    for name in notebooks:
        if not (NOTEBOOK_DIR / f"{name}.ipynb").is_file():
            shipped = f"; it ships with modekit: {HOW_TO_GET}" if name in NOTEBOOKS else ""
            raise UserError(f"notebook {name!r} not found in {NOTEBOOK_DIR}: choose from {', '.join(NOTEBOOKS)}{shipped}")
    cell_timeout = CELL_TIMEOUT_S[profile] if cell_timeout is None else cell_timeout
    if isinstance(cell_timeout, bool) or not isinstance(cell_timeout, int) or not 1 <= cell_timeout <= MAX_CELL_TIMEOUT_S:
        raise UserError(
            f"cell_timeout={cell_timeout!r} is not allowed: it must be a whole number of seconds between 1 and {MAX_CELL_TIMEOUT_S}"
        )
    threads = KERNEL_THREADS[profile] if threads is None else threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"threads={threads!r} is not allowed: it must be a positive integer (CPU threads per notebook kernel)")
    return notebooks, cell_timeout, threads


def run_notebooks(
    out: Path,
    profile: str = "fast",
    notebooks=None,
    progress: bool = True,
    cell_timeout: float | None = None,
    threads: int | None = None,
    jobs: int = 1,
    first_seed: int = 0,
) -> pd.DataFrame:
    """Execute each notebook with papermill; one row per notebook: status, seconds, error.

    A notebook fails when a cell raises (its executed copy keeps the traceback), its kernel dies, or a
    cell runs past `cell_timeout` seconds (default per profile, CELL_TIMEOUT_S); the others still run.
    `threads` sets the kernels' CPU threads (default per profile, KERNEL_THREADS). `jobs` > 1 runs
    that many notebooks at once, each driven from its own process (modekit.executors.LocalPool)
    with its own kernel; they share the report's results store. `first_seed`: the lessons' seeds run
    from it (their FIRST_SEED parameter).
    """
    notebooks, cell_timeout, threads = check_options(profile, notebooks, cell_timeout, threads)
    check_jobs(jobs)
    check_first_seed(first_seed)
    expected = EXPECTED_SECONDS.get(profile, {})
    total = sum(expected.get(name, 60) for name in notebooks)
    bar = tqdm(total=total, desc=f"{profile} reproduction", unit="s", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of work [{elapsed}<{remaining}]{postfix}")  # fmt: skip
    with _kernel_environment(threads, out), bar:
        if jobs > 1 and len(notebooks) > 1:
            return _run_in_parallel(out, profile, notebooks, cell_timeout, min(jobs, len(notebooks)), bar, expected, first_seed)
        rows = []
        for name in notebooks:
            bar.set_postfix_str(name)
            try:
                rows.append(run_notebook(out, profile, name, cell_timeout, first_seed=first_seed))
            except KeyboardInterrupt as interrupt:  # Ctrl-C / SIGTERM: this notebook is marked interrupted, the rest not run
                mark_interrupted(out / f"{name}.ipynb")
                rows.append({"notebook": name, "status": "interrupted", "seconds": 0.0, "error": ""})
                rows += [{"notebook": n, "status": "not run", "seconds": 0.0, "error": ""} for n in notebooks[len(rows) :]]
                interrupt.runs = pd.DataFrame(rows)
                raise
            bar.update(expected.get(name, 60))
    return pd.DataFrame(rows)


def solutions_of(notebooks: list[str]) -> list[str]:
    """The solutions notebooks of `notebooks` that exist, as names under NOTEBOOK_DIR ("solutions/01_solutions")."""
    names = [f"solutions/{name.split('_')[0]}_solutions" for name in notebooks if not name.startswith("solutions/")]
    return [name for name in names if (NOTEBOOK_DIR / f"{name}.ipynb").is_file()]


def check_jobs(jobs) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise UserError(f"jobs={jobs!r} is not allowed: the number of notebooks run at once, an integer from 1 to {MAX_JOBS}")


def run_notebook(out: Path, profile: str, name: str, cell_timeout: int, notebook_dir: Path | None = None, first_seed: int = 0) -> dict:
    """One notebook of `notebook_dir` (default NOTEBOOK_DIR) executed by papermill into `out`: its row
    (status ok / failed, seconds, error)."""
    import papermill

    from modekit.reproduction.notebook_client import PatientKernelManager

    notebook_dir = notebook_dir or NOTEBOOK_DIR
    start, status, error = time.perf_counter(), "ok", ""
    (out / name).parent.mkdir(parents=True, exist_ok=True)  # "solutions/01_solutions" runs in its own folder
    try:
        papermill.execute_notebook(
            str(notebook_dir / f"{name}.ipynb"),
            str(out / f"{name}.ipynb"),
            parameters={"FAST": profile == "fast", "PROFILE": profile, "OUT_DIR": str((out / name).resolve()), "FIRST_SEED": first_seed},
            kernel_name="python3",
            cwd=str((notebook_dir / name).parent),
            progress_bar=False,
            log_output=False,
            execution_timeout=cell_timeout,
            start_timeout=120,
            kernel_manager_class=_logged_kernels(PatientKernelManager, (out / KERNEL_LOG).resolve()),
        )
    except Exception as exc:  # PapermillExecutionError keeps the failing cell in the executed copy
        status, error = "failed", _one_line(exc)
    return {"notebook": name, "status": status, "seconds": round(time.perf_counter() - start, 1), "error": error}


def _run_in_parallel(
    out: Path, profile: str, notebooks: list[str], cell_timeout: int, jobs: int, bar, expected, first_seed
) -> pd.DataFrame:
    """`jobs` notebooks at a time, each in a worker process of its own; a failing or hung notebook
    fails alone (its row says why). On an interrupt the workers are stopped, the notebooks that were
    running are marked interrupted, those not started "not run" (their kernels, orphaned, exit)."""
    from modekit.executors import LocalPool

    pool, rows = LocalPool(jobs), {}
    # the longest first (by the profile's expected seconds): the short ones fill in beside it, rather
    # than the longest starting last and running alone
    longest_first = sorted(notebooks, key=lambda name: -expected.get(name, 60))
    try:
        pending = {name: pool.submit(run_notebook, out, profile, name, cell_timeout, NOTEBOOK_DIR, first_seed) for name in longest_first}
        while pending:
            finished = [name for name, result in pending.items() if result.done()]
            for name in finished:
                rows[name] = pending.pop(name).result()
                bar.update(expected.get(name, 60))
            if pending:
                bar.set_postfix_str("not finished: " + ", ".join(pending))
                if not finished:
                    time.sleep(0.2)
    except KeyboardInterrupt as interrupt:
        pool.terminate()
        for name in notebooks:
            if name not in rows and (out / f"{name}.ipynb").is_file():
                mark_interrupted(out / f"{name}.ipynb")
        interrupt.runs = pd.DataFrame([rows.get(n) or {"notebook": n, "status": "interrupted" if (out / f"{n}.ipynb").is_file()
                                       else "not run", "seconds": 0.0, "error": ""} for n in notebooks])  # fmt: skip
        raise
    finally:
        pool.shutdown(wait=False)
    return pd.DataFrame([rows[n] for n in notebooks])


KERNEL_LOG = "kernels.log"  # the kernels' own stderr (their warnings; the traceback of a kernel cut short)


def _logged_kernels(manager_class, log: Path):
    """A kernel manager class whose kernels write their stderr to `log` instead of the terminal, so
    that an interrupted run ends with its one line, not with the kernel's traceback."""

    class LoggedKernelManager(manager_class):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log, "a") as handle:  # the kernel keeps its own copy of the descriptor
                kw["stderr"] = handle
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def mark_interrupted(path: Path) -> None:
    """papermill labels every cell that never ran `completed` when a run ends early: label those
    `pending` again, the running one `interrupted`, and the notebook itself interrupted."""
    import nbformat

    if not path.is_file():
        return
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        state = cell.metadata.get("papermill", {})
        if state.get("status") == "running":
            state["status"] = "interrupted"
        elif state.get("status") == "completed" and not state.get("end_time"):
            state["status"] = "pending"
    notebook.metadata.setdefault("papermill", {}).update({"exception": True, "interrupted": True})
    nbformat.write(notebook, path)


@contextlib.contextmanager
def _kernel_environment(threads: int | None, out: Path):
    """Kernels inherit this process's environment: while they run, OMP_NUM_THREADS is set and
    MODEKIT_STORE names the report's results store (the library then reuses what an earlier,
    interrupted run of the same report stored); the environment is restored after."""
    changes = {ENV_STORE: str((out / STORE_NAME).resolve()), ENV_RUN: os.environ.get(ENV_RUN) or uuid.uuid4().hex}  # reproduce sets the run
    if threads is not None:
        changes["OMP_NUM_THREADS"] = str(threads)
    previous = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _one_line(exc: Exception) -> str:
    """A cell's error ends with the exception it raised; a timeout or dead kernel says what in its first line."""
    from papermill.exceptions import PapermillExecutionError

    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[-1] if isinstance(exc, PapermillExecutionError) else lines[0]}"


def reproduce(
    profile: str = "fast",
    out=None,
    force: bool = False,
    notebooks=None,
    progress: bool = True,
    cell_timeout: float | None = None,
    threads: int | None = None,
    jobs: int = 1,
    with_solutions: bool = False,
    first_seed: int = 0,
) -> tuple[Path, pd.DataFrame]:
    # validated once, before prepare_out may replace a report
    """Run the notebooks into `out` and write the report; returns (report.md, runs table).
    `with_solutions`: each notebook's solutions notebook (notebooks/solutions/) runs after the lessons,
    into out/solutions/, and its row joins the report's table (a failing solution check fails the run).
    `first_seed`: every lesson's seeds run from it, to see whether its generated words hold on other seeds.

    A rerun with the same `out` resumes: the library in the kernels reuses the results an earlier
    run stored in out/results.sqlite. On Ctrl-C / SIGTERM a partial report, marked incomplete in its
    page and in status.json, is written before the interrupt goes on (its `runs` attribute: the table)."""
    notebooks, cell_timeout, threads = check_options(profile, notebooks, cell_timeout, threads)
    if with_solutions:
        notebooks += solutions_of(notebooks)
    check_jobs(jobs)
    first_seed = check_first_seed(first_seed)
    out = prepare_out(Path(out) if out else default_out(), force)
    start = time.perf_counter()
    parameters = {"notebooks": notebooks, "cell_timeout_s": cell_timeout, "kernel_threads": threads, "jobs": jobs, "first_seed": first_seed}
    run, previous_run = uuid.uuid4().hex, os.environ.get(ENV_RUN)
    os.environ[ENV_RUN] = run
    try:
        runs = run_notebooks(out, profile, notebooks, progress, cell_timeout, threads, jobs, first_seed)
    except KeyboardInterrupt as interrupt:
        runs = getattr(interrupt, "runs", None)
        if runs is None:
            runs = pd.DataFrame([{"notebook": n, "status": "not run", "seconds": 0.0, "error": ""} for n in notebooks])
        write_report(out, runs, profile, time.perf_counter() - start, parameters, complete=False, reuse=_reuse(out, run))
        raise
    finally:
        if previous_run is None:
            os.environ.pop(ENV_RUN, None)
        else:
            os.environ[ENV_RUN] = previous_run
    report = write_report(out, runs, profile, time.perf_counter() - start, parameters, reuse=_reuse(out, run))
    return report, runs


def _reuse(out: Path, run: str) -> dict:
    """How many results this run reused from the report's store and how many it computed."""
    if not (out / STORE_NAME).is_file():
        return {"reused": 0, "computed": 0, "stored": 0}
    store = ResultsStore(out / STORE_NAME, run=run)
    try:
        reused, computed = store.counts()
        return {"reused": reused, "computed": computed, "stored": len(store)}
    finally:
        store.close()
