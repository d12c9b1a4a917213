"""Embedded data: the synthetic sub-task generator and scikit-learn's bundled sets."""

import numpy as np
import pytest
import torch

import modekit as mk
from modekit.data import make_subtasks


@pytest.mark.parametrize("name", ["subtasks", "subtasks2d", "digits", "wine", "breast_cancer"])
def test_embedded_sets_split_stratified_and_standardised(name):
    data = mk.load(name, seed=0)
    sizes = data.sizes
    total = sum(sizes.values())
    assert sizes["test"] == pytest.approx(0.2 * total, abs=2)
    assert sizes["val"] == pytest.approx(0.2 * 0.8 * total, abs=2)
    # standardised with training statistics only: train is centred, the other splits only roughly
    assert data.X_train.mean(0).abs().max() < 1e-4
    assert torch.allclose(data.X_train.std(0, unbiased=False)[data.X_train.std(0) > 0], torch.tensor(1.0), atol=1e-3)
    # stratified: class shares equal across splits within a sample or two
    for split in ("val", "test"):
        shares = np.bincount(data.split(split)[1], minlength=data.n_classes) / sizes[split]
        train_shares = np.bincount(data.y_train, minlength=data.n_classes) / sizes["train"]
        assert np.abs(shares - train_shares).max() < 3 / sizes[split] + 1e-9
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64


def test_splits_are_deterministic_and_seed_dependent():
    a, b, c = mk.load("wine", seed=0), mk.load("wine", seed=0), mk.load("wine", seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, c.X_train)


def test_subtask_generator_knobs():
    X, y, s = make_subtasks(n_samples=5000, n_features=8, imbalance=0.8, noise=0.0, seed=0)
    assert X.shape == (5000, 8) and set(np.unique(y)) == {0, 1}
    assert (s == 0).mean() == pytest.approx(0.8, abs=0.02)
    # feature 0 tells the sub-tasks apart (routing cue)
    assert X[s == 0, 0].mean() < -3.5 and X[s == 1, 0].mean() > 3.5
    # the labels follow each sub-task's rule exactly (no noise); the distractors x5.. carry nothing
    assert np.array_equal(y[s == 0], (X[s == 0, 1] * X[s == 0, 2] > 0).astype(int))
    assert np.array_equal(y[s == 1], (X[s == 1, 3] * X[s == 1, 4] > 0).astype(int))
    assert np.abs([np.corrcoef(X[:, j], y)[0, 1] for j in range(5, 8)]).max() < 0.05
    noisy = make_subtasks(n_samples=5000, noise=0.1, seed=0)
    clean = make_subtasks(n_samples=5000, noise=0.0, seed=0)
    assert (noisy[1] != clean[1]).mean() == pytest.approx(0.1, abs=0.015)


def test_subtask_labels_travel_with_the_splits():
    data = mk.load("subtasks", seed=2)
    for split in ("train", "val", "test"):
        assert len(data.subtask[split]) == len(data.split(split)[1])
    assert data.subtask_names == ["sub-task A", "sub-task B"]


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"imbalance": 1.0}, "imbalance=1.0"),
        ({"noise": 0.5}, "noise=0.5"),
        ({"n_features": 1}, "n_features=1"),
        ({"separation": 4.0, "n_features": 4}, "n_features=4"),
        ({"n_samples": 5}, "n_samples=5"),
    ],
)
def test_subtask_generator_rejects_bad_knobs(knobs, message):
    with pytest.raises(ValueError, match=message):
        make_subtasks(**knobs)


def test_unknown_dataset_lists_available():
    with pytest.raises(ValueError, match="dataset='mnist2' is not available: choose one of .*wine"):
        mk.load("mnist2")
