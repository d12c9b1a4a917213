"""Users' own data: `from_csv`, `from_dataframe`, `from_arrays`. Files are only ever read.

Checks, each a `ValueError` naming what and where: no rows, a missing target column, a single
class, ragged CSV rows, X / y of different lengths, NaN or inf values (row and column), unless
`impute` asks for the documented treatment:
    impute="median": numeric NaN -> training-split median; categorical NaN -> its own category
    impute="drop":   rows with any NaN / inf are dropped before splitting
Column names that appear twice are refused by name (a second `label` column would leak the label
into the features). Columns that look like dates or identifiers (every value distinct: an ID, a
running number, a timestamp) are **left out of the features with a warning naming them**: one-hot
encoding them gives one useless column per row. List such a column in `categorical` to keep it.
CSV files: `sep` and `encoding` are read_csv's; a file that looks like another separator or another
encoding gets an error that says which to pass. A directory, a missing or an unreadable file is
named as such.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from modekit.data.dataset import Dataset
from modekit.data.tabular import table_dataset
from modekit.errors import UserError

IMPUTE = (None, "median", "drop")
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ID_NAME = re.compile(r"(^|[_ .-])(id|uuid|guid|index|key)$|^unnamed: ?\d+$", re.IGNORECASE)
MIN_ROWS_FOR_ID = 20  # below this, "every value distinct" says nothing


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).str.strip().drop_duplicates().head(200)
    if sample.empty or sample.str.fullmatch(r"[-+]?\d+(\.\d*)?").all():  # plain numbers are not dates
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= 0.9 and sample.str.contains(r"\d").all()


def identifier_columns(features: pd.DataFrame, keep=()) -> dict[str, str]:
    """Feature columns that look like dates or identifiers -> why (columns in `keep` are never listed)."""
    found = {}
    n = len(features)
    for column in features.columns:
        if column in keep:
            continue
        values = features[column]
        distinct = values.nunique(dropna=True) == n and n >= MIN_ROWS_FOR_ID
        if pd.api.types.is_datetime64_any_dtype(values):
            found[column] = "dates"
        elif not pd.api.types.is_numeric_dtype(values):
            if _looks_like_dates(values):
                found[column] = "dates"
            elif distinct:
                found[column] = "an identifier: every value distinct"
        elif distinct and pd.api.types.is_integer_dtype(values):
            ordered = np.sort(values.to_numpy())
            if ID_NAME.search(str(column)) or (ordered[-1] - ordered[0] == n - 1):
                found[column] = "an identifier: distinct integers" + (" in a running sequence" if ordered[-1] - ordered[0] == n - 1 else "")
    return found


def _first_bad_cell(frame: pd.DataFrame) -> tuple[int, str] | None:
    numeric = frame.select_dtypes(include="number").astype("float64")
    bad = numeric.isna() | np.isinf(numeric)
    other = frame.drop(columns=numeric.columns).isna()
    for mask in (bad, other):
        if mask.to_numpy().any():
            row, col = np.argwhere(mask.to_numpy())[0]
            return int(row), str(mask.columns[col])
    return None


def _check_frame(frame: pd.DataFrame, target: str, categorical, impute, where: str) -> None:
    """The checks `from_dataframe` makes before reading any value: options, rows, column names."""
    if impute not in IMPUTE:
        raise UserError(f"impute={impute!r} is not allowed: impute must be None, 'median' or 'drop'")
    if len(frame) == 0:
        raise UserError(f"{where} has no rows: a dataset needs at least one row per class")
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise UserError(f"{where}: column name(s) {', '.join(map(repr, repeated))} appear more than once; give every column a unique name")
    if target not in frame.columns:
        raise UserError(f"target={target!r} is not a column of {where}: columns are {', '.join(map(str, frame.columns))}")
    for column in categorical or []:
        if column not in frame.columns or column == target:
            raise UserError(f"categorical column {column!r} is not a feature column of {where}")


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
    _check_frame(frame, target, categorical, impute, where)
    frame = frame.reset_index(drop=True)
    if frame[target].isna().any():
        row = int(np.flatnonzero(frame[target].isna().to_numpy())[0])
        raise UserError(f"{where}: the target column {target!r} is empty at row {row} (0-based data row)")
    features = frame.drop(columns=[target])
    left_out = identifier_columns(features, keep=categorical or ())
    if left_out and len(left_out) < features.shape[1]:
        warnings.warn(
            f"{where}: column(s) {', '.join(f'{c!r} ({why})' for c, why in left_out.items())} left out of the features; "
            "list a column in categorical=[...] to keep it",
            UserWarning,
            stacklevel=2,
        )
        features = features.drop(columns=list(left_out))
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


def from_csv(
    path,
    target: str,
    categorical: list[str] | None = None,
    impute: str | None = None,
    seed: int = 0,
    sep: str = ",",
    encoding: str | None = None,
    **read_options,
) -> Dataset:
    """Read a CSV (never modified); see `from_dataframe` for the checks. `encoding` None: UTF-8
    (with or without a byte-order mark)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"CSV file {str(path)!r} is a directory, not a file: give the path of a .csv file")
    if not path.exists():
        raise UserError(f"CSV file {str(path)!r} not found")
    if not isinstance(sep, str) or not sep:
        raise UserError(f"sep={sep!r} is not allowed: give the column separator, e.g. ',', ';' or '\\t'")
    options = {"sep": sep, "encoding": encoding or "utf-8-sig", "skipinitialspace": True, **read_options}
    try:
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, **{**options, "skipinitialspace": True}).iloc[0]
        frame = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise UserError(f"CSV file {path} is empty: no header and no rows") from None
    except pd.errors.ParserError as error:  # ragged rows: 'Expected 3 fields in line 5, saw 4'
        raise UserError(f"CSV file {path} is malformed: {str(error).strip()}{_separator_hint(path, sep, options['encoding'])}") from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"CSV file {path} is not {encoding or 'UTF-8'} text ({error.reason} at byte {error.start}); {_encoding_hint(path)}"
        ) from None
    except LookupError as error:  # an unknown encoding name
        raise UserError(f"encoding={encoding!r} is not allowed: {error}; give a Python codec name such as utf-8 or latin-1") from None
    except OSError as error:
        raise UserError(f"CSV file {path} cannot be read: {error.strerror or error}") from None
    names = [str(v).strip() for v in header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(
            f"CSV file {path}: column name(s) {', '.join(map(repr, repeated))} appear more than once; give every column a unique name"
        )
    if target not in frame.columns:
        hint = _separator_hint(path, sep, options["encoding"])
        if hint:
            raise UserError(f"target={target!r} is not a column of CSV file {path}{hint}")
    return from_dataframe(frame, target, name=path.stem, categorical=categorical, impute=impute, seed=seed, where=f"CSV file {path}")


def _separator_hint(path: Path, sep: str, encoding: str) -> str:
    """'; the file looks semicolon-separated: pass sep=';' (CLI: --sep ';')' when the header says so."""
    try:
        with open(path, encoding=encoding, errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return ""
    counts = {s: first.count(s) for s in SEPARATORS if s != sep}
    best = max(counts, key=counts.get) if counts else None
    if best is None or counts[best] == 0 or first.count(sep) >= counts[best]:
        return ""
    api, cli = ("'\\t'", "$'\\t'") if best == "\t" else (repr(best), repr(best))
    return f": the file looks {SEPARATORS[best]}-separated (header {first.strip()[:80]!r}); pass sep={api} (CLI: --sep {cli})"


def _encoding_hint(path: Path) -> str:
    with open(path, "rb") as handle:  # the first bytes only: the file may be large
        start = handle.read(4)
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "the file starts with a UTF-16 byte-order mark: pass encoding='utf-16' (CLI: --encoding utf-16)"
    return "it looks like a Latin-1 / Windows-1252 file: pass encoding='latin-1' (CLI: --encoding latin-1) or the file's own encoding"


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
