"""Datasets: `load(name, seed=...)` returns a `Dataset` with train / val / test tensors.

Embedded sets need no files: `subtasks` (synthetic, hidden sub-task label), `subtasks2d`, and
scikit-learn's bundled `digits`, `wine`, `breast_cancer`.
"""

from __future__ import annotations

from .dataset import Dataset
from .embedded import load_breast_cancer, load_digits, load_subtasks, load_subtasks_2d, load_wine
from .synthetic import make_subtasks

EMBEDDED = {
    "subtasks": load_subtasks,
    "subtasks2d": load_subtasks_2d,
    "digits": load_digits,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
}


def available() -> list[str]:
    return sorted(EMBEDDED)


def load(name: str, seed: int = 0, **options) -> Dataset:
    """Load a dataset by name; `seed` decides the split (and the samples of synthetic sets)."""
    if name not in EMBEDDED:
        raise ValueError(f"dataset={name!r} is not available: choose one of {', '.join(available())}")
    return EMBEDDED[name](seed=seed, **options)


__all__ = ["Dataset", "available", "load", "make_subtasks"]
