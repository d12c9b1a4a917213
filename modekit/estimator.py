"""`MoDEClassifier`: the kit's tabular MoE / MoDE as a scikit-learn classifier.

A thin face over the kit's own training loop (`modekit.training.loop.train` with `TabularMoE`), so its
numbers are the scorecard's: `fit` carves `validation_fraction` of the data it is given (stratified,
seeded) for early stopping and trains on the rest; nothing else is split off, so `cross_val_score`,
`GridSearchCV` and `Pipeline(StandardScaler(), MoDEClassifier())` see the data they pass.
alpha = 0 is the plain MoE; alpha > 0 adds MoDE's mutual distillation among experts.
Bad input follows scikit-learn's conventions (`validate_data`, `check_classification_targets`);
bad parameters are refused at `fit`, naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from modekit.config import ModelConfig, TrainConfig
from modekit.data import Dataset
from modekit.device import autocast, to_numpy
from modekit.errors import UserError
from modekit.training.loop import train


class MoDEClassifier(ClassifierMixin, BaseEstimator):
    """Tabular Mixture-of-Experts classifier trained with the MoDE objective (alpha = 0: plain MoE).

    Parameters: alpha (distillation strength, >= 0), n_experts, gate ("dense" or "topk"), top_k
    (experts per sample for "topk"), epochs (maximum), lr, batch_size, validation_fraction (share of
    the fit data held out for early stopping, in [0, 1); 0 trains on everything for `epochs` epochs
    and scores the training data as validation, so `model_` is the epoch with the best training
    accuracy and `validation_score_` a training accuracy),
    random_state (None, an int or a RandomState), device ("auto", "cpu", "cuda").

    Fitted attributes: classes_, n_features_in_, feature_names_in_ (for DataFrames), model_ (the
    trained `TabularMoE`, best validation epoch restored), history_ (the loop's per-epoch table),
    best_epoch_, n_iter_ (epochs run), validation_score_ (best validation accuracy).
    """

    def __init__(
        self,
        alpha: float = 0.0,
        n_experts: int = 4,
        gate: str = "dense",
        top_k: int = 2,
        epochs: int = 60,
        lr: float = 3e-3,
        batch_size: int = 128,
        validation_fraction: float = 0.1,
        random_state=None,
        device: str = "auto",
    ):
        self.alpha = alpha
        self.n_experts = n_experts
        self.gate = gate
        self.top_k = top_k
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def _configs(self, seed: int) -> tuple[ModelConfig, TrainConfig]:
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
            raise UserError(f"validation_fraction={fraction!r} is not allowed: validation_fraction must be a number in [0, 1)")
        model_config = ModelConfig(n_experts=self.n_experts, gate=self.gate, top_k=self.top_k)
        train_config = TrainConfig(
            alpha=self.alpha,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            patience=TrainConfig.patience if fraction else 0,
            seed=seed,
            device=self.device,
            progress=False,
        )
        return model_config, train_config

    def _split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows: `validation_fraction` of them held out, stratified when every
        class has two samples; with too few rows to hold any out, validation is the training data."""
        index = np.arange(len(y))
        n_val = int(np.ceil(self.validation_fraction * len(y)))
        if n_val == 0 or n_val >= len(y):
            return index, index
        stratify = y if np.bincount(y).min() >= 2 and n_val >= len(self.classes_) and len(y) - n_val >= len(self.classes_) else None
        return train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise UserError(f"y has 1 class ({self.classes_[0]!r}): {type(self).__name__} needs at least 2 classes")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        model_config, train_config = self._configs(seed)
        features, labels = torch.tensor(X, dtype=torch.float32), torch.as_tensor(y_index, dtype=torch.int64)
        train_rows, val_rows = (torch.as_tensor(rows) for rows in self._split(y_index, seed))
        data = Dataset(
            name=type(self).__name__,
            domain="tabular",
            X_train=features[train_rows],
            y_train=labels[train_rows],
            X_val=features[val_rows],
            y_val=labels[val_rows],
            X_test=features[:0],  # no test split: the caller keeps its own (cross_val_score, a held-out set)
            y_test=labels[:0],
            class_names=[str(c) for c in self.classes_],
            metadata={"seed": seed, "rows": len(y)},
        )
        result = train(data, model_config, train_config)
        self.model_ = result.model.eval()
        self.history_ = result.history[result.history["split"] != "test"].reset_index(drop=True)
        self.best_epoch_, self.n_iter_, self.validation_score_ = result.best_epoch, result.epochs_run, result.val_accuracy
        return self

    @torch.no_grad()
    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        parameter = next(self.model_.parameters())
        features = torch.tensor(X, dtype=torch.float32, device=parameter.device)
        self.model_.eval()
        with autocast(parameter.device):
            logits = self.model_(features).logits
        return to_numpy(torch.softmax(logits.double(), dim=-1))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
