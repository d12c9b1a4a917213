"""Real tabular sets from the data directory, and the shared encoder for every table (users' too).

Encoding, fitted on the training split only: numeric columns standardised, categorical (text)
columns one-hot encoded (categories unseen in training map to all zeros).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modekit.data.dataset import Dataset, split_indices, tensors_from_parts
from modekit.data.files import cached, locate, manifest

UCI = "the UCI repository (archive.ics.uci.edu) or OpenML (`sklearn.datasets.fetch_openml`)"


@dataclass(frozen=True)
class TableSpec:
    name: str
    path: str  # relative to the data directory
    target: str | int  # column name, or -1 for the last column of a headerless file
    header: bool
    test_path: str | None = None  # official test split, when the set has one
    source: str = UCI

    @property
    def files(self) -> list[str]:
        return [self.path] + ([self.test_path] if self.test_path else [])


def _keel(name: str, file: str | None = None) -> TableSpec:
    return TableSpec(name, f"tabular/keel/{file or name}.dat", -1, header=False)


def _mlbench(name: str, file: str, target: str) -> TableSpec:
    return TableSpec(name, f"tabular/mlbench/{file}.csv", target, header=True)


TABLES = {
    spec.name: spec
    for spec in [
        _keel("letter"),
        _keel("satimage"),
        _mlbench("shuttle", "Shuttle", "Class"),
        _mlbench("dna", "DNA", "Class"),
        TableSpec("adult", "tabular/adult/adult.data", "income", True, test_path="tabular/adult/adult.test"),
        _keel("magic"),
        _keel("penbased"),
        _keel("optdigits"),
        _keel("spambase"),
        _keel("segment"),
        _mlbench("vehicle", "Vehicle", "Class"),
        _keel("phoneme"),
        _keel("ring"),
        _keel("twonorm"),
        _keel("texture"),
        _keel("splice"),
        _mlbench("vowel", "Vowel", "Class"),
        _mlbench("glass", "Glass", "Type"),
        _mlbench("sonar", "Sonar", "Class"),
        _mlbench("ionosphere", "Ionosphere", "Class"),
        _mlbench("pima", "PimaIndiansDiabetes", "diabetes"),
    ]
}


def read_table(path, header: bool) -> pd.DataFrame:
    """A CSV as strings-or-numbers; '?' (UCI's missing marker) is kept as its own category."""
    frame = pd.read_csv(path, header=0 if header else None, skipinitialspace=True, dtype_backend="numpy_nullable")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _frame_to_arrays(frame: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    arrays = {}
    for i, column in enumerate(frame.columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            arrays[f"{prefix}{i:04d}:{column}"] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arrays[f"{prefix}{i:04d}:{column}"] = values.astype("string").fillna("").to_numpy(dtype=str)
    return arrays


def _arrays_to_frame(arrays: dict[str, np.ndarray], prefix: str) -> pd.DataFrame:
    columns = sorted(k for k in arrays if k.startswith(prefix))
    return pd.DataFrame({k.split(":", 1)[1]: arrays[k] for k in columns})


def target_column(frame: pd.DataFrame, target: str | int) -> str:
    return frame.columns[target] if isinstance(target, int) else target


def encode_features(frame: pd.DataFrame, train_index: np.ndarray, categorical: list[str] | None = None, impute_median: bool = False):
    """Fit on the training rows: standardise numeric columns, one-hot encode categorical ones
    (missing categories become '<missing>'); with impute_median, numeric NaN -> training median.
    Returns (encoded float32 matrix for all rows, feature names)."""
    declared = set(categorical or [])
    # text columns are always categorical; numeric ones only when declared
    categorical = [c for c in frame.columns if c in declared or not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = [c for c in frame.columns if c not in categorical]
    frame = frame.copy()
    for column in categorical:
        frame[column] = frame[column].astype("string").fillna("<missing>").astype(str)
    for column in numeric:
        frame[column] = frame[column].astype("float64")
    encoder = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()) if impute_median else StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ],
        verbose_feature_names_out=False,
    )
    encoder.fit(frame.iloc[train_index])
    matrix = np.asarray(encoder.transform(frame), dtype=np.float32)
    return matrix, [str(n) for n in encoder.get_feature_names_out()]


def table_dataset(
    name: str,
    features: pd.DataFrame,
    labels: pd.Series,
    seed: int,
    test_rows: int = 0,
    categorical: list[str] | None = None,
    metadata: dict | None = None,
    impute_median: bool = False,
) -> Dataset:
    """Features and labels -> Dataset. The last `test_rows` rows are the official test split (if > 0);
    otherwise a seeded stratified split. Labels of any type are mapped to classes in sorted order."""
    labels = labels.astype(str).str.strip().str.rstrip(".")  # adult.test writes '>50K.' for '>50K'
    class_names = sorted(labels.unique())
    y = labels.map({c: i for i, c in enumerate(class_names)}).to_numpy(dtype=np.int64)
    n_train = len(y) - test_rows
    if test_rows:
        train_index, val_index, _ = split_indices(y[:n_train], seed, has_test=True)
        test_index = np.arange(n_train, len(y))
    else:
        train_index, val_index, test_index = split_indices(y, seed)
    matrix, feature_names = encode_features(features, train_index, categorical, impute_median)
    parts = {"train": train_index, "val": val_index, "test": test_index}
    return Dataset(
        name=name,
        domain="tabular",
        class_names=class_names,
        feature_names=feature_names,
        metadata={"seed": seed, "rows": len(y), **(metadata or {})},
        **tensors_from_parts(matrix, y, parts),
    )


def load_table(name: str, seed: int = 0, verify: bool = True) -> Dataset:
    spec = TABLES[name]
    how = f"copy it from {spec.source} into the data directory in this format (see data/README.md)"
    located = [locate(path, how, verify) for path in spec.files]

    def parse() -> dict[str, np.ndarray]:
        frames = [read_table(path, spec.header) for path, _ in located]
        if len(frames) > 1:
            frames[1].columns = frames[0].columns
        arrays = _frame_to_arrays(pd.concat(frames, ignore_index=True), "c")
        arrays["test_rows"] = np.array(len(frames[1]) if len(frames) > 1 else 0)
        return arrays

    arrays = cached(name, [sha for _, sha in located], {}, parse)
    frame = _arrays_to_frame(arrays, "c")
    target = target_column(frame, spec.target)
    rows = manifest().get(spec.path, {})
    return table_dataset(
        name,
        frame.drop(columns=[target]),
        frame[target],
        seed,
        test_rows=int(arrays["test_rows"]),
        metadata={"source": f"{rows.get('origin', spec.source)}: {', '.join(spec.files)}", "licence": rows.get("licence", "")},
    )
