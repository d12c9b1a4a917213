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
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .errors import UserError
from .profiles import PROFILES
from .report import write_report
from .resources import HOW_TO_GET, folder

NOTEBOOK_DIR = folder("notebooks")  # the wheel's packaged notebooks, else the checkout's
NOTEBOOKS = ["00_quickstart", "01_narrow_vision", "02_alpha_sensitivity", "03_expert_probing", "04_ones_svd_gathering", "05_reproduction"]
REPORT_MARKER = ".modekit-report"  # written into every report folder: --force replaces only such folders


def default_out() -> Path:
    return Path("reports") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def prepare_out(out: Path, force: bool) -> Path:
    """A new or empty report folder, marked as the kit's. `force` replaces an earlier report (a
    folder holding REPORT_MARKER) and nothing else: a folder the kit did not make is never deleted."""
    if out.exists() and not out.is_dir():
        raise UserError(f"out={str(out)!r} is a file, not a folder: choose a folder for the report")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UserError(f"out={str(out)!r} exists and is not empty: choose a new folder, or pass force=True (--force) to replace it")
        if not (out / REPORT_MARKER).is_file():
            raise UserError(
                f"out={str(out)!r} is not a modekit report (no {REPORT_MARKER} file in it): force=True (--force) replaces only "
                "a folder an earlier `reproduce` made; choose a new folder"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_MARKER).write_text("made by `modekit reproduce`; --force may replace this folder\n")
    return out


# Seconds one cell may run before its notebook counts as hung and fails (FAST cells take seconds;
# full-profile cells train on real data). Also bounds papermill's final wait for the kernel
# (nteract/papermill#711). Replies a poll missed are picked up by PatientKernelManager.
CELL_TIMEOUT_S = {"fast": 900, "laptop": 3600, "full": 6 * 3600}
# CPU threads of each notebook's kernel (OMP_NUM_THREADS; None: torch's default, one per core). The
# fast profile's models are tiny: on an idle 2-core CPU a second thread gains ~5%, and on cores that
# something else is using, two spinning threads per process made training 8x slower than one.
KERNEL_THREADS = {"fast": 1, "laptop": 1, "full": None}
# Seconds each notebook took on this project's 2-core CPU (one thread): the progress bar counts in
# these, so its rate and time left are in seconds of work, not in notebooks of unequal length.
EXPECTED_SECONDS = {
    "fast": {"00_quickstart": 9, "01_narrow_vision": 9, "02_alpha_sensitivity": 17, "03_expert_probing": 18,
             "04_ones_svd_gathering": 38, "05_reproduction": 199},
    "laptop": {"00_quickstart": 14, "01_narrow_vision": 11, "02_alpha_sensitivity": 93, "03_expert_probing": 48,
               "04_ones_svd_gathering": 192, "05_reproduction": 1290},
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
    if not cell_timeout > 0:
        raise UserError(f"cell_timeout={cell_timeout!r} is not allowed: it must be a positive number of seconds")
    threads = KERNEL_THREADS[profile] if threads is None else threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"threads={threads!r} is not allowed: it must be a positive integer (CPU threads per notebook kernel)")
    return notebooks, cell_timeout, threads


def run_notebooks(
    out: Path, profile: str = "fast", notebooks=None, progress: bool = True, cell_timeout: float | None = None, threads: int | None = None
) -> pd.DataFrame:
    """Execute each notebook with papermill; one row per notebook: status, seconds, error.

    A notebook fails when a cell raises (its executed copy keeps the traceback), its kernel dies, or a
    cell runs past `cell_timeout` seconds (default per profile, CELL_TIMEOUT_S); the others still run.
    `threads` sets the kernels' CPU threads (default per profile, KERNEL_THREADS).
    """
    import papermill

    from .notebook_client import PatientKernelManager

    notebooks, cell_timeout, threads = check_options(profile, notebooks, cell_timeout, threads)
    rows = []
    expected = EXPECTED_SECONDS.get(profile, {})
    total = sum(expected.get(name, 60) for name in notebooks)
    bar = tqdm(total=total, desc=f"{profile} reproduction", unit="s", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of work [{elapsed}<{remaining}]{postfix}")  # fmt: skip
    with _kernel_threads(threads), bar:
        for name in notebooks:
            bar.set_postfix_str(name)
            start, status, error = time.perf_counter(), "ok", ""
            try:
                papermill.execute_notebook(
                    str(NOTEBOOK_DIR / f"{name}.ipynb"),
                    str(out / f"{name}.ipynb"),
                    parameters={"FAST": profile == "fast", "PROFILE": profile, "OUT_DIR": str((out / name).resolve())},
                    kernel_name="python3",
                    cwd=str(NOTEBOOK_DIR),
                    progress_bar=False,
                    log_output=False,
                    execution_timeout=cell_timeout,
                    start_timeout=120,
                    kernel_manager_class=PatientKernelManager,
                )
            except Exception as exc:  # PapermillExecutionError keeps the failing cell in the executed copy
                status, error = "failed", _one_line(exc)
            rows.append({"notebook": name, "status": status, "seconds": round(time.perf_counter() - start, 1), "error": error})
            bar.update(expected.get(name, 60))
    return pd.DataFrame(rows)


@contextlib.contextmanager
def _kernel_threads(threads: int | None):
    """Kernels inherit this process's environment: set OMP_NUM_THREADS while they start, then restore it."""
    previous = os.environ.get("OMP_NUM_THREADS")
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = previous


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
) -> tuple[Path, pd.DataFrame]:
    # validated once, before prepare_out may replace a report
    notebooks, cell_timeout, threads = check_options(profile, notebooks, cell_timeout, threads)
    out = prepare_out(Path(out) if out else default_out(), force)
    start = time.perf_counter()
    runs = run_notebooks(out, profile, notebooks, progress, cell_timeout, threads)
    parameters = {"notebooks": notebooks, "cell_timeout_s": cell_timeout, "kernel_threads": threads}
    report = write_report(out, runs, profile, time.perf_counter() - start, parameters)
    return report, runs
