"""The results store: finished units of work in one SQLite database, so that a rerun resumes.

One row per finished unit (one model trained for one dataset, configuration and seed; one seed of the
OneS experiment), written in one transaction as soon as it finishes: its metrics and history as JSON
and, for a model, its weights and the RNG state after training (so that what follows a reused unit
runs exactly as it would have). A row's key is a hash of the unit's configuration, the data's
checksum and the kit's version: change any of them and the unit is computed again.

The store is the standard library's `sqlite3` in WAL mode with a busy timeout, so two processes may
write the same store at once (the notebooks' kernels and `reproduce`, or two scale-out workers).

Which store is used: `using_store(path)` (the commands pass their `--out` folder's), else the
environment variable MODEKIT_STORE (how `reproduce` reaches its notebooks' kernels), else none: the
library then computes everything and stores nothing. MODEKIT_STORE_RUN names the run whose reuse the
store counts (`reused N, computed M`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import sqlite3
import time
import uuid
import weakref
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from modekit.errors import UserError

STORE_NAME = "results.sqlite"  # the store's file inside an output folder
RESULTS_MARKER = ".modekit-results"  # written into every folder sweep / compare / ones make: only such folders are resumed
ENV_STORE, ENV_RUN = "MODEKIT_STORE", "MODEKIT_STORE_RUN"
BUSY_TIMEOUT_S = 60  # how long a writer waits for another process's transaction
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, label TEXT, config TEXT NOT NULL, metrics TEXT NOT NULL,
    history TEXT, state BLOB, version TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uses (run TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, reused INTEGER NOT NULL);
"""


@functools.cache  # looked up for every key and write; the installed version does not change in a run
def kit_version() -> str:
    try:
        return metadata.version("modekit")
    except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH without installing
        return "unknown"


def fingerprint(value):
    """A JSON-able description of a configuration: dataclasses by field, modules and tensors by a
    hash of their values, other objects by their attributes."""
    if isinstance(value, torch.nn.Module):
        return {"module": type(value).__name__, "state": _tensors_digest(value.state_dict().values())}
    if isinstance(value, torch.Tensor):
        return {"tensor": _tensors_digest([value])}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {type(value).__name__: {f.name: fingerprint(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "__dict__"):
        return {type(value).__name__: {k: fingerprint(v) for k, v in sorted(vars(value).items())}}
    return repr(value)


def _tensors_digest(tensors) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().reshape(-1).contiguous().view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()


_checksums: dict[int, tuple[weakref.ref, str]] = {}


def data_checksum(data) -> str:
    """sha256 of a Dataset's splits, class names and name (computed once per Dataset object)."""
    cached = _checksums.get(id(data))
    if cached is not None and cached[0]() is data:
        return cached[1]
    tensors = [data.X_train, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test]
    digest = hashlib.sha256(_tensors_digest(tensors).encode())
    digest.update(json.dumps([data.name, data.domain, list(data.class_names)]).encode())
    checksum = digest.hexdigest()
    _checksums[id(data)] = (weakref.ref(data), checksum)
    return checksum


def to_json(value) -> str:
    """Strict JSON: NaN and inf become null (valid JSON everywhere, unlike json.dumps's NaN)."""
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def pack_state(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def unpack_state(blob: bytes, device="cpu") -> dict:
    return torch.load(io.BytesIO(blob), map_location=device, weights_only=True)


class ResultsStore:
    """One SQLite results store (WAL); `fresh=True` ignores stored rows (recomputes and replaces them)."""

    def __init__(self, path, fresh: bool = False, run: str | None = None):
        self.path, self.fresh = Path(path), fresh
        self.run = run or os.environ.get(ENV_RUN) or uuid.uuid4().hex
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            self._connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise UserError(f"results store {self.path} cannot be opened ({error}): it is not a modekit store, or it is damaged") from None

    def key(self, kind: str, config: dict, data: str | None) -> str:
        """The unit's key: hash of its kind, configuration, data checksum and the kit's version."""
        text = json.dumps([kind, fingerprint(config), data, kit_version()], sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()

    def peek(self, key: str) -> dict | None:
        """The stored row (metrics, history, state) or None; counts nothing."""
        if self.fresh:
            return None
        row = self._connection.execute("SELECT metrics, history, state FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"metrics": json.loads(row[0]), "history": json.loads(row[1]) if row[1] else None, "state": row[2]}

    def reuse(self, key: str, kind: str) -> None:
        """Count a stored row as reused by this run."""
        with self._transaction() as db:
            db.execute("INSERT INTO uses VALUES (?, ?, ?, 1)", (self.run, key, kind))

    def get(self, key: str, kind: str) -> dict | None:
        row = self.peek(key)
        if row is not None:
            self.reuse(key, kind)
        return row

    def put(self, key: str, kind: str, config: dict, metrics: dict, history=None, state: bytes | None = None, label: str = "") -> None:
        """Store one finished unit, in one transaction, replacing an older row of the same key."""
        history_json = json.dumps(history) if history is not None else None
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, label, json.dumps(fingerprint(config), default=repr), json.dumps(metrics), history_json, state, kit_version(),
                 time.time()),
            )  # fmt: skip
            db.execute("INSERT INTO uses VALUES (?, ?, ?, 0)", (self.run, key, kind))

    @contextlib.contextmanager
    def _transaction(self):
        db = self._connection
        db.execute("BEGIN IMMEDIATE")  # take the write lock now (waits up to the busy timeout)
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def counts(self, kind: str | None = None, run: str | None = None) -> tuple[int, int]:
        """(reused, computed) units of one run (default: this store's run)."""
        query = "SELECT COALESCE(SUM(reused), 0), COALESCE(SUM(1 - reused), 0) FROM uses WHERE run = ?"
        params = [run or self.run]
        if kind:
            query, params = query + " AND kind = ?", [*params, kind]
        reused, computed = self._connection.execute(query, params).fetchone()
        return int(reused), int(computed)

    def __len__(self) -> int:
        return self._connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._connection.close()


_active: list[ResultsStore] = []
_from_environment: dict[str, ResultsStore] = {}


@contextlib.contextmanager
def using_store(path, fresh: bool = False, run: str | None = None):
    """Inside this block the library stores every finished unit in (and reuses them from) `path`."""
    store = ResultsStore(path, fresh=fresh, run=run)
    _active.append(store)
    try:
        yield store
    finally:
        _active.remove(store)
        store.close()


def active_store() -> ResultsStore | None:
    """The store of the innermost `using_store`, else the one MODEKIT_STORE names, else None."""
    if _active:
        return _active[-1]
    path = os.environ.get(ENV_STORE)
    if not path:
        return None
    if path not in _from_environment:
        _from_environment[path] = ResultsStore(path)
    return _from_environment[path]


def check_out_folder(path: Path, marker: str, option: str = "--out") -> bool:
    """Check an output folder before any work; True when it is one the kit made (a rerun resumes it).

    Refused (UserError, one line): a file; a path under a file; a folder the kit did not make that is
    not empty; a place where no folder can be made or written."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == path else f"is under {str(parent)!r}, which is a file"
                raise UserError(f"{option} {str(path)!r} {where}: give a folder (new, or one modekit made)")
            break
    if path.is_dir() and any(path.iterdir()) and not (path / marker).is_file():
        raise UserError(
            f"{option} {str(path)!r} exists, is not empty and was not made by modekit (no {marker} file in it): "
            "choose a new folder; modekit never writes into a folder it did not make"
        )
    resumable = (path / marker).is_file()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".modekit-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"{option} {str(path)!r} cannot be written: {error.strerror or error}; choose a folder you may write to") from None
    return resumable


def mark_out_folder(path: Path, marker: str, command: str) -> None:
    (Path(path) / marker).write_text(f"made by `modekit {command}`; a rerun with the same --out resumes from {STORE_NAME}\n")
