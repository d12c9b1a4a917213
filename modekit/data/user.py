"""Users' own data: `from_csv`, `from_dataframe`, `from_arrays`. Files are only ever read.

Checks, each a `ValueError` naming what and where: no rows, a missing target column, a single
class, ragged CSV rows, X / y of different lengths, NaN or inf values (row and column), unless
`impute` asks for the documented treatment:
    impute="median": numeric NaN -> training-split median; categorical NaN -> its own category
    impute="drop":   rows with any NaN / inf are dropped before splitting
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .dataset import Dataset
from .tabular import table_dataset

IMPUTE = (None, "median", "drop")


def _first_bad_cell(frame: pd.DataFrame) -> tuple[int, str] | None:
    numeric = frame.select_dtypes(include="number").astype("float64")
    bad = numeric.isna() | np.isinf(numeric)
    other = frame.drop(columns=numeric.columns).isna()
    for mask in (bad, other):
        if mask.to_numpy().any():
            row, col = np.argwhere(mask.to_numpy())[0]
            return int(row), str(mask.columns[col])
    return None


def from_dataframe(
    frame: pd.DataFrame,
    target: str,
    name: str = "dataframe",
    categorical: list[str] | None = None,
    impute: str | None = None,
    seed: int = 0,
    where: str = "dataframe",
) -> Dataset:
    """A classification dataset from a DataFrame; `target` names the label column (any type)."""
    if impute not in IMPUTE:
        raise UserError(f"impute={impute!r} is not allowed: impute must be None, 'median' or 'drop'")
    if len(frame) == 0:
        raise UserError(f"{where} has no rows: a dataset needs at least one row per class")
    if target not in frame.columns:
        raise UserError(f"target={target!r} is not a column of {where}: columns are {', '.join(map(str, frame.columns))}")
    for column in categorical or []:
        if column not in frame.columns or column == target:
            raise UserError(f"categorical column {column!r} is not a feature column of {where}")
    frame = frame.reset_index(drop=True)
    if frame[target].isna().any():
        row = int(np.flatnonzero(frame[target].isna().to_numpy())[0])
        raise UserError(f"{where}: the target column {target!r} is empty at row {row} (0-based data row)")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise UserError(f"{where} has no feature columns besides target={target!r}")
    numeric = features.select_dtypes(include="number").columns
    features[numeric] = features[numeric].astype("float64").replace([np.inf, -np.inf], np.nan) if impute else features[numeric]
    bad = _first_bad_cell(features)
    if bad is not None and impute is None:
        row, column = bad
        value = features.at[row, column]
        raise UserError(
            f"{where}: value {value if isinstance(value, float) else repr(value)} at row {row} (0-based data row), "
            f"column {column!r} is missing, NaN or inf; "
            "fix the data or pass impute='median' (numeric: training median; categorical: own category) or impute='drop'"
        )
    labels = frame[target]
    if bad is not None and impute == "drop":
        keep = ~features.isna().any(axis=1)
        features, labels = features[keep].reset_index(drop=True), labels[keep].reset_index(drop=True)
    counts = labels.astype(str).value_counts()
    if len(counts) < 2:
        raise UserError(f"{where}: target={target!r} has a single class ({counts.index[0]!r}); classification needs at least 2")
    if counts.min() < 3:
        raise UserError(
            f"{where}: class {counts.idxmin()!r} of target={target!r} has {counts.min()} row(s); "
            "a stratified train / validation / test split needs at least 3 per class"
        )
    data = table_dataset(
        name,
        features,
        labels,
        seed,
        categorical=categorical,
        metadata={"source": where, "licence": "the user's"},
        impute_median=impute == "median",
    )
    return data


def from_csv(path, target: str, categorical: list[str] | None = None, impute: str | None = None, seed: int = 0, **read_options) -> Dataset:
    """Read a CSV (never modified); see `from_dataframe` for the checks."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"CSV file {str(path)!r} not found")
    try:
        frame = pd.read_csv(path, skipinitialspace=True, **read_options)
    except pd.errors.EmptyDataError:
        raise UserError(f"CSV file {path} is empty: no header and no rows") from None
    except pd.errors.ParserError as error:  # ragged rows: 'Expected 3 fields in line 5, saw 4'
        raise UserError(f"CSV file {path} is malformed: {str(error).strip()}") from None
    return from_dataframe(frame, target, name=path.stem, categorical=categorical, impute=impute, seed=seed, where=f"CSV file {path}")


def from_arrays(X, y, name: str = "arrays", feature_names: list[str] | None = None, impute: str | None = None, seed: int = 0) -> Dataset:
    """A dataset from a feature matrix (n, d) and labels (n,)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise UserError(f"X has shape {X.shape}: X must be 2-D (samples, features)")
    if y.ndim != 1:
        raise UserError(f"y has shape {y.shape}: y must be 1-D (one label per sample)")
    if len(X) != len(y):
        raise UserError(f"X has {len(X)} rows but y has {len(y)}: they must have the same length")
    columns = feature_names or [f"x{i}" for i in range(X.shape[1])]
    if len(columns) != X.shape[1]:
        raise UserError(f"feature_names has {len(columns)} names for {X.shape[1]} columns of X")
    frame = pd.DataFrame(X, columns=columns)
    frame["__target__"] = y
    return from_dataframe(frame, "__target__", name=name, impute=impute, seed=seed, where="arrays")
