"""Datasets that need no files and no network: synthetic sub-task data and scikit-learn's bundled sets."""

from __future__ import annotations

from sklearn import datasets as sk_datasets

from modekit.data.dataset import Dataset, tabular_dataset
from modekit.data.synthetic import make_clustered_subtasks, make_multiview, make_subtasks, make_subtasks_2d


def _subtask_dataset(name: str, arrays, seed: int, knobs: dict) -> Dataset:
    X, y, subtask = arrays
    return tabular_dataset(
        name,
        X,
        y,
        seed,
        class_names=["0", "1"],
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        subtask=subtask,
        subtask_names=["sub-task A", "sub-task B"],
        metadata={"source": "modekit synthetic generator", "licence": "MIT (generated)", "knobs": knobs},
    )


def load_subtasks(seed: int = 0, **knobs) -> Dataset:
    """Two sub-tasks told apart by the cue x0, each with its own XOR rule (knobs: see `make_subtasks`)."""
    return _subtask_dataset("subtasks", make_subtasks(seed=seed, **knobs), seed, knobs)


def load_multiview(seed: int = 0, **knobs) -> Dataset:
    """Two redundant views per class; sub-task A mostly sees view A, B view B (see `make_multiview`)."""
    X, y, subtask = make_multiview(seed=seed, **knobs)
    width = (X.shape[1] - 1) // 2  # [cue, view A, view B]
    return tabular_dataset(
        "multiview",
        X,
        y,
        seed,
        class_names=["0", "1"],
        feature_names=["cue"] + [f"A{i}" for i in range(width)] + [f"B{i}" for i in range(width)],
        subtask=subtask,
        subtask_names=["sub-task A (view A)", "sub-task B (view B)"],
        metadata={"source": "modekit synthetic multi-view generator", "licence": "MIT (generated)", "knobs": knobs},
    )


def load_subtasks_2d(seed: int = 0, **knobs) -> Dataset:
    """The 2-D version (routing cue x0, rule feature x1): decision regions can be drawn (`make_subtasks_2d`)."""
    return _subtask_dataset("subtasks2d", make_subtasks_2d(seed=seed, **knobs), seed, knobs)


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


def load_digits_images(seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) images: the embedded stand-in for MNIST."""
    data = load_digits(seed=seed)
    mean, std = float(data.X_train.mean()), float(data.X_train.std())
    for split in ("train", "val", "test"):
        # the features are already standardised per pixel; reshape to images
        setattr(data, f"X_{split}", getattr(data, f"X_{split}").reshape(-1, 1, 8, 8).contiguous())
    data.name, data.domain, data.feature_names = "digits8x8", "image", None
    data.metadata.update({"mean": mean, "std": std})
    return data


def load_synthetic_text(seed: int = 0, n_samples: int = 3000, max_length: int = 24) -> Dataset:
    """A synthetic two-topic sentiment task over a 120-word vocabulary: the embedded stand-in for text.

    Each sample has a topic (its hidden sub-task: 'sport' or 'tech' words dominate) and a label
    given by a topic-specific rule: the sentence is positive when it holds more of the topic's
    positive cue words than negative ones. Padding id 0, unknown id 1, lengths 6..max_length.
    """
    import numpy as np

    from modekit.data.dataset import split_indices, tensors_from_parts

    rng = np.random.default_rng(seed)
    vocabulary = ["<pad>", "<unk>"] + [f"w{i}" for i in range(118)]
    common, topics = np.arange(2, 40), [np.arange(40, 70), np.arange(70, 100)]
    positive, negative = [np.arange(100, 105), np.arange(110, 115)], [np.arange(105, 110), np.arange(115, 120)]
    ids = np.zeros((n_samples, max_length), dtype=np.int64)
    y = np.zeros(n_samples, dtype=np.int64)
    topic = rng.integers(0, 2, n_samples)
    for row in range(n_samples):
        t = topic[row]
        length = int(rng.integers(6, max_length + 1))
        n_pos, n_neg = rng.integers(0, 4, 2)
        if n_pos == n_neg:
            n_pos += 1 if rng.random() < 0.5 else 0
            n_neg += 0 if n_pos > n_neg else 1
        cues = np.r_[rng.choice(positive[t], n_pos), rng.choice(negative[t], n_neg)]
        # the other topic's cue words appear too, as distractors the gate must learn to ignore
        distractors = rng.choice(np.r_[positive[1 - t], negative[1 - t]], rng.integers(0, 3))
        filler = np.where(rng.random(length) < 0.6, rng.choice(topics[t], length), rng.choice(common, length))
        tokens = np.r_[cues, distractors, filler][:length]
        ids[row, :length] = rng.permutation(tokens)
        y[row] = int(n_pos > n_neg)
    train_index, val_index, test_index = split_indices(y, seed)
    parts = {"train": train_index, "val": val_index, "test": test_index}
    import torch

    return Dataset(
        name="synthtext",
        domain="text",
        class_names=["negative", "positive"],
        subtask={k: torch.as_tensor(topic[i]) for k, i in parts.items()},
        subtask_names=["sport", "tech"],
        metadata={
            "seed": seed,
            "rows": n_samples,
            "vocabulary": vocabulary,
            "source": "modekit synthetic text generator",
            "licence": "MIT (generated)",
        },
        **tensors_from_parts(ids, y, parts),
    )


def load_clustered_subtasks(seed: int = 0, n_subtasks: int = 4, **knobs) -> Dataset:
    """Sub-tasks (4 by default) told apart by a 2-D routing cue, each with its own rule on its own
    features: a top-2-of-4 MoE of narrow experts beats the dense model of one expert's width (knobs:
    see `make_clustered_subtasks`; notebook 04)."""
    X, y, subtask = make_clustered_subtasks(seed=seed, n_subtasks=n_subtasks, **knobs)
    width = (X.shape[1] - 2) // n_subtasks
    return tabular_dataset(
        "clustered_subtasks",
        X,
        y,
        seed,
        class_names=["0", "1"],
        feature_names=["cue0", "cue1", *(f"r{s}_{j}" for s in range(n_subtasks) for j in range(width))],
        subtask=subtask,
        subtask_names=[f"sub-task {s}" for s in range(n_subtasks)],
        metadata={
            "source": "modekit synthetic clustered sub-task generator",
            "licence": "MIT (generated)",
            "knobs": {"n_subtasks": n_subtasks, **knobs},
        },
    )
