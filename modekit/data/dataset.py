"""The `Dataset` every loader returns: train / validation / test tensors plus what describes them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from modekit.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """Splits as tensors (features float32, labels int64) with names, sub-task labels and metadata.

    `subtask` maps a split name to the hidden sub-task label of each sample, when the data has one
    (synthetic sub-task data, composites); it is never an input of the model.
    """

    name: str
    domain: str  # "tabular", "image" or "text"
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    feature_names: list[str] | None = None
    subtask: dict[str, torch.Tensor] | None = None
    subtask_names: list[str] | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X_train.shape[1:]))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def sizes(self) -> dict[str, int]:
        return {split: len(self.split(split)[1]) for split in SPLITS}

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in SPLITS:
            raise UserError(f"split={name!r} is not allowed: split must be one of {', '.join(SPLITS)}")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")

    def subsample_train(self, n: int, seed: int = 0) -> Dataset:
        """A copy whose training split keeps n samples (stratified, seeded); validation and test unchanged."""
        return self.subsample("train", n, seed)

    def subsample(self, split: str, n: int, seed: int = 0) -> Dataset:
        """A copy whose `split` ("train", "val" or "test") keeps n samples (stratified, seeded); the
        other splits unchanged. Capping "val" makes each epoch's evaluation cheaper."""
        if split not in ("train", "val", "test"):
            raise UserError(f"split={split!r} is not allowed: split must be 'train', 'val' or 'test'")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"n={n!r} is not allowed: n must be an integer >= 1 (samples to keep in the {split} split)")
        X, y_split = self.split(split)
        if n >= len(y_split):
            return self
        y = y_split.cpu().numpy()
        keep, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=seed, stratify=y)
        keep = torch.as_tensor(np.sort(keep))
        subtask = None if self.subtask is None else {**self.subtask, split: self.subtask[split][keep]}
        return dataclasses.replace(
            self,
            **{f"X_{split}": X[keep], f"y_{split}": y_split[keep]},
            subtask=subtask,
            metadata={**self.metadata, f"{split}_subsample": n},
        )

    def lengths(self, split: str) -> torch.Tensor:
        """Token counts of a text split (padding id 0 excluded)."""
        return (self.split(split)[0] != 0).sum(1)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"Dataset({self.name!r}, {self.domain}, features={tuple(self.X_train.shape[1:])}, classes={self.n_classes}, {sizes})"


def split_indices(y: np.ndarray, seed: int, test_size: float = 0.2, val_size: float = 0.2, has_test=False):
    """Seeded stratified split: test from all data (unless the set has an official test split),
    then validation carved from what is left for training, never from test."""
    index = np.arange(len(y))
    if has_test:
        train_index, test_index = index, None
    else:
        train_index, test_index = train_test_split(index, test_size=test_size, random_state=seed, stratify=y)
    train_index, val_index = train_test_split(train_index, test_size=val_size, random_state=seed, stratify=y[train_index])
    return train_index, val_index, test_index


def tensors_from_parts(features: np.ndarray, y: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """{X_train, y_train, X_val, ...} tensors from row indices per split (features keep their dtype)."""
    tensors = {}
    for split, index in parts.items():
        tensors[f"X_{split}"] = torch.as_tensor(np.ascontiguousarray(features[index]))
        tensors[f"y_{split}"] = torch.as_tensor(y[index].astype(np.int64))
    return tensors


def tabular_dataset(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    class_names: list[str],
    feature_names: list[str] | None = None,
    subtask: np.ndarray | None = None,
    subtask_names: list[str] | None = None,
    metadata: dict | None = None,
    standardise: bool = True,
) -> Dataset:
    """Split numeric features (stratified, seeded) and standardise them with training statistics only."""
    train_index, val_index, test_index = split_indices(y, seed)
    parts = {"train": train_index, "val": val_index, "test": test_index}
    if standardise:
        X = StandardScaler().fit(X[train_index]).transform(X)
    tensors = tensors_from_parts(np.asarray(X, dtype=np.float32), y, parts)
    sub = None if subtask is None else {k: torch.as_tensor(subtask[i].astype(np.int64)) for k, i in parts.items()}
    return Dataset(
        name=name,
        domain="tabular",
        class_names=class_names,
        feature_names=feature_names,
        subtask=sub,
        subtask_names=subtask_names,
        metadata={"seed": seed, "rows": len(y), **(metadata or {})},
        **tensors,
    )
