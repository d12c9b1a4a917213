"""Users' own data: CSV / DataFrame / arrays, every bad input named, files never modified."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import modekit as mk
from modekit.data import from_arrays, from_csv, from_dataframe, make_composite
from modekit.data.tabular import encode_features


def mixed_frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    return pd.DataFrame({"size": size, "colour": colour, "count": rng.integers(0, 9, n), "label": np.where(size > 0, "big", "small")})


def test_csv_with_mixed_types_round_trip(tmp_path):
    path = tmp_path / "mine.csv"
    mixed_frame().to_csv(path, index=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    data = from_csv(path, target="label")
    assert data.class_names == ["big", "small"]
    assert data.feature_names == ["size", "count", "colour_blue", "colour_green", "colour_red"]
    assert sum(data.sizes.values()) == 60
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # only read


@pytest.mark.slow
def test_user_csv_trains_through_the_cli(tmp_path):
    path = tmp_path / "mine.csv"
    mixed_frame(200).to_csv(path, index=False)
    out = subprocess.run(
        [sys.executable, "-m", "modekit", "train", "--dataset", f"csv:{path}", "--target", "label", "--epochs", "20", "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["test_accuracy"] > 0.75  # the label is a threshold on `size`


def test_declared_categorical_column():
    frame = mixed_frame()
    data = from_dataframe(frame, "label", categorical=["count"])
    assert any(name.startswith("count_") for name in data.feature_names)


def test_standardisation_uses_training_rows_only():
    frame = pd.DataFrame({"v": np.arange(10, dtype=float), "c": list("abababab" + "zz")})
    train_index = np.arange(8)
    encoded, names = encode_features(frame, train_index)
    changed = frame.copy()
    changed.loc[9, "v"] = 1e6  # a test row changes: the training encoding must not
    encoded_changed, _ = encode_features(changed, train_index)
    np.testing.assert_allclose(encoded[:9], encoded_changed[:9])
    assert encoded[:8, 0].mean() == pytest.approx(0, abs=1e-6)
    assert names == ["v", "c_a", "c_b"] and (encoded[8:, 1:] == 0).all()  # unseen category 'z' -> zeros


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: f.assign(size=f["size"].where(f.index != 7)), r"row 7 .*column 'size'.*impute="),
        (lambda f: f.assign(size=f["size"].where(f.index != 3, np.inf)), r"value inf at row 3 .*column 'size'"),
        (lambda f: f.iloc[:0], r"has no rows"),
        (lambda f: f.drop(columns="label"), r"target='label' is not a column .*columns are size, colour, count"),
        (lambda f: f.assign(label="same"), r"single class \('same'\)"),
        (lambda f: f.assign(colour=f["colour"].where(f.index != 5)), r"row 5 .*column 'colour'"),
        (lambda f: f.assign(label=f["label"].where(f.index != 2)), r"target column 'label' is empty at row 2"),
    ],
)
def test_bad_dataframes_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        from_dataframe(make(mixed_frame()), "label")


def test_documented_imputation():
    frame = mixed_frame()
    frame.loc[[4, 9], "size"] = np.nan
    frame.loc[11, "colour"] = None
    dropped = from_dataframe(frame, "label", impute="drop")
    assert sum(dropped.sizes.values()) == 57
    imputed = from_dataframe(frame, "label", impute="median")
    assert sum(imputed.sizes.values()) == 60 and torch.isfinite(imputed.X_train).all()
    with pytest.raises(ValueError, match="impute='mean' is not allowed"):
        from_dataframe(frame, "label", impute="mean")


def test_malformed_csv_files(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,x\n3,4,y,5\n")
    with pytest.raises(ValueError, match=r"ragged.csv is malformed: .*line 3"):
        from_csv(ragged, target="label")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        from_csv(empty, target="label")
    with pytest.raises(ValueError, match="not found"):
        from_csv(tmp_path / "nope.csv", target="label")
    with pytest.raises(ValueError, match="needs target=COLUMN"):
        mk.load(f"csv:{ragged}")


def test_from_arrays_checks_shapes():
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    assert from_arrays(X, y).n_features == 3
    with pytest.raises(ValueError, match="X has 30 rows but y has 29"):
        from_arrays(X, y[:-1])
    with pytest.raises(ValueError, match=r"X has shape \(30,\)"):
        from_arrays(X[:, 0], y)
    with pytest.raises(ValueError, match="class '1' .* has 1 row"):
        from_arrays(X, np.r_[np.zeros(29, int), 1])


def test_embedded_composite_and_its_errors():
    digits, wine = mk.load("digits"), mk.load("wine")
    both = make_composite([digits, wine])
    assert both.n_features == 64 and both.n_classes == 13
    assert both.subtask_names == ["digits", "wine"]
    assert (both.X_train[both.subtask["train"] == 1, 13:] == 0).all()
    shared = mk.load("digits+wine", label_space="shared")
    assert shared.n_classes == 10 and shared.class_names[0] == "0 | class_0"
    with pytest.raises(ValueError, match="at least 2"):
        make_composite([digits])
    with pytest.raises(ValueError, match="label_space='mixed'"):
        make_composite([digits, wine], label_space="mixed")
