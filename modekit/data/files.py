"""Where data files come from: the data directory, the manifest's checksums, and the parse cache.

- Data directory: `$MODEKIT_DATA`, else `./data` (git-ignored apart from its README and manifest).
- Manifest: `data/manifest.csv` (in the repository, and packaged in the wheel) lists every file's path, sha256, origin, licence.
  A file whose sha256 differs is refused (expected and actual are named) and never parsed.
- Cache: parsed arrays as `.npz` under `$MODEKIT_CACHE` (default `~/.cache/modekit`), keyed by the
  sources' sha256, so a changed source file invalidates its cache. Source files are only read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modekit.errors import UserError
from modekit.resources import resource

CACHE_VERSION = 1  # bump when a parser changes what it returns


class DataFileError(UserError):
    """A data file is missing, corrupted or malformed."""


def data_dir() -> Path:
    return Path(os.environ.get("MODEKIT_DATA", "data")).expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get("MODEKIT_CACHE", Path.home() / ".cache" / "modekit")).expanduser()


def manifest() -> dict[str, dict]:
    """path -> row of data/manifest.csv (sha256, bytes, lines, origin, licence)."""
    with open(resource("data/manifest.csv"), newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(relative: str, how_to_get: str, verify: bool = True) -> tuple[Path, str]:
    """The verified path of a data file and its sha256; a clear error when missing or corrupted."""
    path = data_dir() / relative
    if not path.is_file():
        raise DataFileError(
            f"data file {relative!r} not found: looked for {path.resolve()} "
            f"(data directory from MODEKIT_DATA={os.environ.get('MODEKIT_DATA', '<unset>, default ./data')}). "
            f"To obtain it: {how_to_get}"
        )
    actual = sha256(path)
    expected = manifest().get(relative, {}).get("sha256")
    if verify and expected and actual != expected:
        raise DataFileError(
            f"data file {path} is corrupted or not the expected version: sha256 {actual}, expected {expected} "
            "(data/manifest.csv); the data was not used. Re-obtain the file, or pass verify=False only for a file "
            "you made yourself"
        )
    return path, actual


def cached(name: str, source_hashes: list[str], options: dict, build: Callable[[], dict]) -> dict[str, np.ndarray]:
    """Arrays built by `build()`, read from the cache when the same sources and options were parsed before."""
    key = hashlib.sha256(json.dumps([CACHE_VERSION, name, source_hashes, options], sort_keys=True).encode()).hexdigest()
    target = cache_dir() / f"{name}-{key[:20]}.npz"
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}
        except Exception:  # a truncated or corrupted entry (BadZipFile, EOFError, KeyError, ...) is rebuilt below
            pass
    arrays = build()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".npz", delete=False) as handle:
            np.savez(handle, **arrays)
        os.replace(handle.name, target)
    except OSError:
        pass  # a read-only cache directory only costs speed
    return arrays
