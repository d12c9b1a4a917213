"""modekit: Mixture-of-Experts, MoDE (mutual distillation among experts) and OneS, for teaching and reproduction."""

from .config import ModelConfig, TrainConfig
from .data import Dataset, load
from .losses import mutual_distillation_loss
from .nn import MoELayer, TabularMoE, build_model
from .population import sweep_configs, train_population
from .train import TrainResult, evaluate, results_frame, train

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "MoELayer",
    "ModelConfig",
    "TabularMoE",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "evaluate",
    "load",
    "mutual_distillation_loss",
    "results_frame",
    "sweep_configs",
    "train",
    "train_population",
]
