"""What a report needs to be rerun: the kit's version and commit, package versions, device, the
profile and its parameters, the data files' checksums (from data/manifest.csv, the checksums the
loaders verify) and the wall time per notebook."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

import torch

from modekit import data as datasets
from modekit.data.files import manifest
from modekit.profiles import PROFILES

PACKAGES = ("torch", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "papermill", "nbclient", "ipykernel")
REPOSITORY = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The checkout's commit (with '+changes' when the tree differs from it), or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPOSITORY, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode:
        return "unknown"
    return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_checksums(profile: str) -> dict[str, str]:
    """sha256 of every real data file the profile's datasets read (embedded sets have none)."""
    known = manifest()
    names = sorted({name for names in PROFILES[profile]["datasets"].values() for name in names})
    return {path: known.get(path, {}).get("sha256", "not in manifest") for name in names for path in datasets.files_of(name)}


def collect_provenance(profile: str, parameters: dict, runs) -> dict:
    """A JSON-ready record of the run (see the module docstring)."""
    from modekit import __version__

    return {
        "generated": datetime.datetime.now().isoformat(timespec="seconds"),
        "modekit": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})",
        "profile": profile,
        "plan": json.loads(json.dumps(PROFILES[profile])),  # what the profile ran, fixed before the run (tuples as lists)
        "parameters": parameters,
        "data_sha256": data_checksums(profile) or "embedded data only (generated from seeds; no files)",
        "notebook_seconds": dict(zip(runs.notebook, runs.seconds)),
    }
