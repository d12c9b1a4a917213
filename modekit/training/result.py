"""What one training run returns: the model (best validation epoch restored), its history and its
summary; `results_frame` tabulates many."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from torch import nn

from modekit.config import ModelConfig, TrainConfig


@dataclass
class TrainResult:
    model: nn.Module
    history: pd.DataFrame  # one row per epoch x split: epoch, split, task_loss, distillation_loss, accuracy, seconds
    train_config: TrainConfig
    model_config: ModelConfig
    best_epoch: int
    epochs_run: int
    train_seconds: float
    val_accuracy: float
    test_accuracy: float
    device: str

    def summary(self) -> dict:
        return {
            "alpha": self.train_config.alpha,
            "weight_decay": self.train_config.weight_decay,
            "seed": self.train_config.seed,
            "experts": self.model_config.n_experts,
            "gate": self.model_config.gate,
            "device": self.device,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "train_seconds": round(self.train_seconds, 3),
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
        }


def results_frame(results: list[TrainResult], **columns) -> pd.DataFrame:
    """One row per trained model (alpha, seed, accuracies, time), plus constant extra columns."""
    return pd.DataFrame([{**columns, **r.summary()} for r in results])
