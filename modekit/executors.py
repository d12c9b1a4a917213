"""Where independent units of work run: here, in a local process pool, or on a cluster (docs/scaling.md).

A unit is one population (a dataset with a block of alphas x seeds, so a GPU keeps its vectorised
packing), one compare seed of one dataset, or one OneS seed. The library's loops take
`executor=None` (every unit here, one after another) or any object with `submit(fn, *args)` that
returns something with `.result()`: a `concurrent.futures` executor, `process_pool(n)`, or
`submitit_executor(...)` (SLURM through submitit, the `cluster` extra). `map_units` returns the
results in submission order, so a table is the same whichever executor ran it; each unit trains
from its own seeds, so its numbers do not depend on the process it ran in.

Every unit runs through `run_unit`, which sets the worker's torch threads (one per worker: two
spinning threads per process on shared cores thrash) and opens the caller's results store in the
worker, so finished units are kept wherever they ran and a rerun of a dead job resumes.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from modekit.config import DEFAULT_TIMEOUT_MIN, EXECUTORS, MAX_WORKERS
from modekit.errors import UserError
from modekit.store import active_store, using_store

SUBMITIT_CLUSTERS = {"slurm": "slurm", "submitit-local": "local", "submitit-debug": "debug"}
# submitit's local executor kills a job after timeout_min (2 minutes unless set): our default is an hour


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_workers(workers: int | str) -> int | str:
    if workers == "auto":
        return workers
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"workers={workers!r} is not allowed: give 'auto' or an integer from 1 to {MAX_WORKERS}")
    return workers


def resolve_workers(workers: int | str, device: str, units: int) -> int:
    """'auto': one worker per core on the CPU, one process on CUDA (a GPU packs a population by
    vectorising it instead); never more workers than units."""
    workers = check_workers(workers)
    if workers == "auto":
        workers = 1 if device.startswith("cuda") else available_cores()
    return max(1, min(workers, units))


@dataclass(frozen=True)
class StoreContext:
    """What a worker needs to open the caller's results store: its path, run id and `fresh` flag."""

    path: str
    run: str
    fresh: bool


def _store_context() -> StoreContext | None:
    store = active_store()
    return None if store is None else StoreContext(str(store.path), store.run, store.fresh)


def run_unit(threads: int | None, store: StoreContext | None, fn, args: tuple):
    """One unit in a worker: its torch threads set (None: left as they are), the caller's store open."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if store is None:
        return fn(*args)
    with using_store(store.path, fresh=store.fresh, run=store.run):
        return fn(*args)


def _start_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a worker the pool restarts
    # tqdm's default lock is a multiprocessing semaphore: a worker stopped mid-unit would leave it to
    # the resource tracker, which then warns of a leak; a worker's bars need only a thread lock
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """A worker whose parent was killed (SIGKILL: no chance to stop its pool) exits too; its unfinished
    unit is lost (its store transaction never began or rolls back), the finished ones are kept."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _call_pickled(payload: bytes) -> bytes:
    fn, args = pickle.loads(payload)
    return pickle.dumps(fn(*args))


class LocalPool:
    """A pool of `workers` fresh interpreters (multiprocessing "spawn": no forked OpenMP or CUDA
    state), one torch thread each: `submit(fn, *args)` returns an object with `.result()`.

    multiprocessing.Pool, not ProcessPoolExecutor, whose shutdown hung on a half-written call queue
    after an interrupt; its workers are killed directly on an interrupt (`terminate`). Arguments and results travel as plain
    pickles: multiprocessing's own pickler would move tensors through shared memory and file
    descriptors served by a thread of this process, which an interrupt leaves half done."""

    threads = 1

    def __init__(self, workers: int):
        self.workers, self._pool = workers, None  # started at the first submit: a run whose units are all stored starts none

    def _start(self):
        # Ctrl-C reaches the whole process group: the parent alone reacts (it stops the pool, and
        # what finished is in the store). Workers started while SIGINT is ignored keep ignoring it
        # from their first line (an ignored signal stays ignored across exec): no tracebacks of theirs.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers, initializer=_start_worker, initargs=(os.getpid(),))
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        return self._pool

    def submit(self, fn, *args) -> PickledResult:
        pool = self._pool or self._start()
        return PickledResult(pool.apply_async(_call_pickled, (pickle.dumps((fn, args)),)))

    def terminate(self) -> None:
        """Kill the workers now (SIGKILL) and drop the pool. Not `Pool.terminate()`: it first drains
        the task queue under a lock that a worker killed mid-wait (a SIGTERM sent to the whole
        process group) still holds, and hung there in a test; so its finalizer is cancelled too."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        handler = getattr(pool, "_worker_handler", None)  # the thread that replaces dead workers
        if handler is not None:
            handler._state = "TERMINATE"
            handler.join(timeout=5)
        finalizer = getattr(pool, "_terminate", None)
        if finalizer is not None:
            finalizer.cancel()
        workers = list(getattr(pool, "_pool", []))
        for worker in workers:
            if worker.exitcode is None:
                worker.kill()
        for worker in workers:
            worker.join(timeout=10)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.close()
            if wait:
                self._pool.join()


class PickledResult:
    """The result of `LocalPool.submit`, unpickled when asked for."""

    def __init__(self, pending):
        self._pending = pending

    def result(self, timeout=None):
        return pickle.loads(self._pending.get(timeout))

    def done(self) -> bool:
        return self._pending.ready()


def process_pool(workers: int) -> LocalPool:
    return LocalPool(check_workers(workers))


class SubmititExecutor:
    """submitit behind the executor interface, with the concurrency cap submitit lacks: at most
    `workers` jobs of ours are queued or running at once (`map_units` waits before submitting more)."""

    threads = None  # a cluster job gets the CPUs SLURM gives it (--cpus-per-task)

    def __init__(self, kind: str, folder: Path, workers: int, timeout_min: int, **parameters):
        try:
            import submitit
        except ImportError:
            raise UserError(
                f"--executor {kind} needs submitit, which is not installed: pip install 'modekit[cluster]' (or submitit)"
            ) from None
        self.kind, self.workers = kind, workers
        self._executor = submitit.AutoExecutor(folder=str(folder), cluster=SUBMITIT_CLUSTERS[kind])
        given = {k: v for k, v in parameters.items() if v is not None}
        self._executor.update_parameters(timeout_min=timeout_min, name="modekit", **given)
        self._jobs = []

    def submit(self, fn, *args):
        job = self._executor.submit(fn, *args)
        self._jobs.append(job)
        return job

    def terminate(self) -> None:
        for job in self._jobs:
            if not job.done():
                job.cancel(check=False)

    def shutdown(self, wait: bool = True) -> None:
        pass


def submitit_executor(
    kind: str,
    folder,
    workers: int = 16,
    timeout_min: int = DEFAULT_TIMEOUT_MIN,
    partition: str | None = None,
    gpus_per_node: int | None = None,
    cpus_per_task: int | None = None,
    mem_gb: int | None = None,
) -> SubmititExecutor:
    """A submitit executor: kind 'slurm', 'submitit-local' (local subprocesses) or 'submitit-debug'
    (in this process, for debugging); logs and pickles go to `folder`."""
    if kind not in SUBMITIT_CLUSTERS:
        raise UserError(f"executor={kind!r} is not a submitit executor: choose from {', '.join(SUBMITIT_CLUSTERS)}")
    parameters = {"slurm_partition": partition} if kind == "slurm" else {}
    parameters |= {"gpus_per_node": gpus_per_node, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb}
    return SubmititExecutor(kind, Path(folder), check_workers(workers), timeout_min, **parameters)


def map_units(executor, fn, units: list[tuple], progress=None) -> list:
    """fn(*unit) for every unit, results in the units' order. executor None: here, one after another.
    At most `executor.workers` units are in flight (when it says); an interrupt or a failed unit
    stops the executor's other work (`terminate`) and is raised; finished units are in the store."""
    if executor is None:
        results = []
        for unit in units:
            results.append(fn(*unit))
            if progress is not None:
                progress.update()
        return results
    cap = getattr(executor, "workers", None) or len(units) or 1
    store, threads = _store_context(), getattr(executor, "threads", None)
    pending, in_flight, results = collections.deque(units), collections.deque(), []
    try:
        while pending or in_flight:
            while pending and len(in_flight) < cap:
                in_flight.append(executor.submit(run_unit, threads, store, fn, pending.popleft()))
            results.append(in_flight.popleft().result())
            if progress is not None:
                progress.update()
    except BaseException:
        terminate = getattr(executor, "terminate", None)
        if terminate is not None:
            terminate()
        raise
    return results


def make_executor(kind: str = "pool", workers: int | str = "auto", device: str = "cpu", units: int = 1, folder=None, **cluster):
    """The executor a command asked for, or None when one process here does it best ('pool' with
    one worker). kind: 'pool' (local processes), 'slurm', 'submitit-local', 'submitit-debug'.
    Close it with `close_executor`."""
    if kind not in EXECUTORS:
        raise UserError(f"executor={kind!r} is not allowed: choose from {', '.join(EXECUTORS)}")
    if kind == "pool":
        n = resolve_workers(workers, device, units)
        return None if n == 1 else process_pool(n)
    if folder is None:
        raise UserError(f"--executor {kind} needs --out DIR: its jobs' logs go there, and its results store resumes a dead job")
    n = check_workers(workers)
    return submitit_executor(kind, folder, workers=16 if n == "auto" else n, **cluster)


def close_executor(executor) -> None:
    if executor is not None:
        executor.shutdown(wait=True)
