"""The notebooks' setup in one call: parameters from papermill or the environment, the output
folder, the device, quiet warnings and short float display.

    FAST, OUT_DIR, DEVICE, PROFILE = setup(FAST, OUT_DIR, DEVICE, PROFILE)

FAST: papermill's value, else $MODEKIT_FAST ("0" = full configuration), default True.
OUT_DIR: papermill's value, else $MODEKIT_OUT_DIR, else None (write nothing); created when given.
DEVICE: "auto", "cpu" or "cuda", checked here so that a wrong value fails in the first cell.
PROFILE: papermill's value, else $MODEKIT_PROFILE, else "fast" / "full" from FAST; "laptop" runs
real data on a CPU in under an hour (modekit.profiles.PROFILES).

    FIRST_SEED = first_seed(FIRST_SEED)

FIRST_SEED: papermill's value, else $MODEKIT_FIRST_SEED, default 0: the lesson's seeds run from it
(`reproduce --first-seed 10` reruns every lesson on seeds its words were not written on).
"""

from __future__ import annotations

import os
import warnings

import pandas as pd

from modekit.config import check_choice, check_first_seed
from modekit.device import resolve_device
from modekit.profiles import PROFILES


def markdown(*lines: str):
    """Prose a notebook generates from its run (a takeaway, a verdict): the lines as one Markdown
    display, so that no number a run produced is typed into a markdown cell by hand."""
    from IPython.display import Markdown  # the notebooks' own dependency, not the library's

    return Markdown("\n".join(lines))


def first_seed(value=None) -> int:
    """FIRST_SEED for a notebook; see the module docstring."""
    if value is not None:
        return check_first_seed(value, "FIRST_SEED")
    text = os.environ.get("MODEKIT_FIRST_SEED", "0")
    return check_first_seed(int(text) if text.strip().isdigit() else text, "MODEKIT_FIRST_SEED")


def setup(fast=None, out_dir=None, device: str = "auto", profile=None) -> tuple[bool, str | None, str, str]:
    """(FAST, OUT_DIR, DEVICE, PROFILE) for a notebook; see the module docstring."""
    warnings.filterwarnings("ignore", category=UserWarning)
    pd.set_option("display.precision", 4)
    fast = os.environ.get("MODEKIT_FAST", "1") != "0" if fast is None else bool(fast)
    out_dir = (os.environ.get("MODEKIT_OUT_DIR") if out_dir is None else out_dir) or None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    resolve_device(device)
    profile = profile or os.environ.get("MODEKIT_PROFILE") or ("fast" if fast else "full")
    check_choice("PROFILE", profile, tuple(PROFILES))
    return profile == "fast", out_dir, device, profile
