"""Datasets that need no files and no network: synthetic sub-task data and scikit-learn's bundled sets."""

from __future__ import annotations

from sklearn import datasets as sk_datasets

from .dataset import Dataset, tabular_dataset
from .synthetic import make_subtasks


def load_subtasks(seed: int = 0, **knobs) -> Dataset:
    """Two sub-tasks with a hidden sub-task label (knobs: see `make_subtasks`)."""
    X, y, subtask = make_subtasks(seed=seed, **knobs)
    return tabular_dataset(
        "subtasks",
        X,
        y,
        seed,
        class_names=["0", "1"],
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        subtask=subtask,
        subtask_names=["sub-task A", "sub-task B"],
        metadata={"source": "modekit synthetic generator", "licence": "MIT (generated)", "knobs": knobs},
    )


def load_subtasks_2d(seed: int = 0, **knobs) -> Dataset:
    """The 2-D version (routing cue x0, one rule feature x1): decision regions can be drawn."""
    knobs = {"n_features": 2, "shared": 1, **knobs}
    data = load_subtasks(seed=seed, **knobs)
    data.name = "subtasks2d"
    return data


def _sklearn_loader(name: str, function):
    def load(seed: int = 0) -> Dataset:
        bunch = function()
        class_names = [str(c) for c in getattr(bunch, "target_names", sorted(set(bunch.target)))]
        feature_names = [str(f) for f in getattr(bunch, "feature_names", [])] or None
        return tabular_dataset(
            name,
            bunch.data,
            bunch.target,
            seed,
            class_names=class_names,
            feature_names=feature_names,
            metadata={"source": f"scikit-learn sklearn.datasets.load_{name}", "licence": "BSD-3 (scikit-learn)"},
        )

    load.__doc__ = f"scikit-learn's bundled `{name}` set, seeded stratified split, standardised."
    return load


load_digits = _sklearn_loader("digits", sk_datasets.load_digits)
load_wine = _sklearn_loader("wine", sk_datasets.load_wine)
load_breast_cancer = _sklearn_loader("breast_cancer", sk_datasets.load_breast_cancer)
