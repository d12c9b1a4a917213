"""modekit: Mixture-of-Experts, MoDE (mutual distillation among experts) and OneS, for teaching and reproduction.

Layers, bottom to top (docs/architecture.md; checked by import-linter): errors, data, device,
config, functional, nn, objectives | gathering, train, population, probing | stats | plots,
profiles, compare | ones_experiment, bench, claims | notebook_client, reproduce | notebook,
commands, cli.
"""

from .config import ModelConfig, TrainConfig
from .data import Dataset, load
from .errors import NonFiniteLossError, UserError
from .functional import mutual_distillation_loss
from .nn import MoELayer, TabularMoE, build_model, model_config_for
from .objectives import DistillationObjective, MoDEObjective
from .population import sweep_configs, train_population
from .train import TrainResult, evaluate, results_frame, train

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DistillationObjective",
    "MoDEObjective",
    "MoELayer",
    "ModelConfig",
    "NonFiniteLossError",
    "TabularMoE",
    "TrainConfig",
    "TrainResult",
    "UserError",
    "build_model",
    "evaluate",
    "load",
    "model_config_for",
    "mutual_distillation_loss",
    "results_frame",
    "sweep_configs",
    "train",
    "train_population",
]
