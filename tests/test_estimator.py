"""MoDEClassifier: every scikit-learn estimator check, the pipeline / cross-validation / grid-search
contract, the kit's own loop underneath, validation carved from the fit data, bad parameters."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import modekit.estimator
from conftest import requires_data
from modekit import UserError, evaluate
from modekit.data.files import locate
from modekit.data.tabular import TABLES
from modekit.estimator import MoDEClassifier

ROOT = Path(__file__).resolve().parents[1]

# Tiny models and few epochs: the checks test the contract, not accuracy (check_classifiers_train
# still asks for > 83% on its blobs). The plain MoE (alpha = 0, dense gate) and MoDE with a top-k gate.
CHECKED = [
    MoDEClassifier(n_experts=2, epochs=20, lr=1e-2, batch_size=32, random_state=0, device="cpu"),
    MoDEClassifier(alpha=0.1, n_experts=3, gate="topk", top_k=2, epochs=20, lr=1e-2, batch_size=32, random_state=0, device="cpu"),
]


@functools.cache
def array_api_checks_in_a_fresh_interpreter() -> str:
    """scikit-learn runs its array-API check only when SCIPY_ARRAY_API=1 was set before scipy was
    imported: run that check (for every estimator) once in a fresh interpreter that has it."""
    env = {**os.environ, "SCIPY_ARRAY_API": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", Path(__file__).name, "-k", "check_array_api", "-q", "-rA", "-p", "no:cacheprovider"]
    run = subprocess.run(command, cwd=Path(__file__).parent, env=env, capture_output=True, text=True)
    return run.stdout + run.stderr


@pytest.mark.slow
@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check, request):
    if "check_array_api" in request.node.name and os.environ.get("SCIPY_ARRAY_API") != "1":
        output = array_api_checks_in_a_fresh_interpreter()
        assert f"PASSED {Path(__file__).name}::{request.node.name}" in output, output[-4000:]
        return
    check(estimator)


def test_fit_carves_validation_from_the_fit_data_and_trains_with_the_kit_loop(monkeypatch):
    X, y = load_wine(return_X_y=True)
    seen, kit_train = [], modekit.estimator.train

    def recording_train(data, model_config, train_config):
        seen.append((data, model_config, train_config))
        return kit_train(data, model_config, train_config)

    monkeypatch.setattr(modekit.estimator, "train", recording_train)
    estimator = MoDEClassifier(alpha=0.1, n_experts=3, epochs=5, validation_fraction=0.25, random_state=1, device="cpu").fit(X, y)
    ((data, model_config, train_config),) = seen
    assert data.sizes == {"train": 133, "val": 45, "test": 0}  # ceil(0.25 * 178) held out; no test split of its own
    assert np.bincount(data.y_val.numpy()).tolist() == [15, 18, 12]  # stratified: wine's 59 / 71 / 48 rows
    assert (model_config.n_experts, train_config.alpha, train_config.epochs, train_config.patience) == (3, 0.1, 5, 10)
    # the fitted model is the loop's model: its validation accuracy is the loop's evaluate()
    assert estimator.validation_score_ == pytest.approx(evaluate(estimator.model_, data.X_val, data.y_val)["accuracy"])
    assert estimator.n_iter_ == len(estimator.history_) // 2 and 1 <= estimator.best_epoch_ <= 5


def test_validation_fraction_zero_trains_on_everything_for_all_epochs():
    X, y = load_wine(return_X_y=True)
    estimator = MoDEClassifier(epochs=4, validation_fraction=0.0, random_state=0, device="cpu").fit(StandardScaler().fit_transform(X), y)
    assert estimator.n_iter_ == 4
    train_rows = estimator.history_[estimator.history_["split"] == "train"]
    val_rows = estimator.history_[estimator.history_["split"] == "val"]
    assert len(train_rows) == 4 and len(val_rows) == 4


def test_pipeline_and_cross_val_score_with_default_parameters():
    X, y = load_wine(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), MoDEClassifier(random_state=0, device="cpu"))
    scores = cross_val_score(pipeline, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.mean() > 0.8  # majority class: 40%
    assert pipeline.fit(X, y).score(X, y) > 0.9


def test_fitted_attributes_follow_the_input():
    X, y = load_wine(return_X_y=True)
    frame = pd.DataFrame(StandardScaler().fit_transform(X), columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    estimator = MoDEClassifier(epochs=3, random_state=0, device="cpu").fit(frame, labels)
    assert list(estimator.feature_names_in_) == list(frame.columns) and estimator.n_features_in_ == 13
    assert list(estimator.classes_) == ["barbera", "barolo", "grignolino"]
    proba = estimator.predict_proba(frame)
    assert proba.shape == (178, 3) and np.allclose(proba.sum(1), 1)
    assert set(estimator.predict(frame)) <= set(labels)


@pytest.mark.parametrize(
    "parameter, value, allowed",
    [
        ("alpha", -1.0, "a finite number >= 0"),
        ("n_experts", 0, "an integer >= 1"),
        ("gate", "soft", "one of 'dense', 'topk'"),
        ("top_k", 5, "between 1 and n_experts=4"),
        ("epochs", 0, "an integer >= 1"),
        ("lr", 0.0, "a number > 0"),
        ("batch_size", 2.5, "an integer >= 1"),
        ("validation_fraction", 1.0, "a number in [0, 1)"),
        ("device", "tpu", "one of 'auto', 'cpu', 'cuda'"),
    ],
)
def test_bad_parameters_are_refused_at_fit_naming_parameter_value_and_allowed(parameter, value, allowed):
    X, y = load_wine(return_X_y=True)
    estimator = MoDEClassifier(**{"gate": "topk" if parameter == "top_k" else "dense", parameter: value})
    with pytest.raises(UserError) as error:
        estimator.fit(X, y)
    assert f"{parameter}={value!r}" in str(error.value) and allowed in str(error.value)


@pytest.mark.slow
@requires_data
def test_grid_search_chooses_alpha_on_a_real_tabular_set():
    """Vehicle silhouettes (UCI, 846 rows x 18, 4 classes): the README's example and its figures."""
    spec = TABLES["vehicle"]
    frame = pd.read_csv(locate(spec.path, "see data/README.md")[0])  # checksum verified
    X, y = frame.drop(columns=spec.target), frame[spec.target]
    pipeline = make_pipeline(StandardScaler(), MoDEClassifier(random_state=0, device="cpu"))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    search = GridSearchCV(pipeline, {"modeclassifier__alpha": [0.0, 0.01, 0.1, 1.0]}, cv=cv).fit(X, y)
    print("GridSearchCV on vehicle:", search.best_params_, round(search.best_score_, 4), search.cv_results_["mean_test_score"].round(4))
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and search.best_score_ == scores.max() > 0.7  # majority class: 26%
    assert search.best_estimator_[-1].n_features_in_ == 18 and list(search.best_estimator_[0].feature_names_in_) == list(X.columns)
    assert search.score(X, y) > search.best_score_ - 0.1  # refit on everything
