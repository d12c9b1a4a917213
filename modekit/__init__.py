"""modekit: Mixture-of-Experts, MoDE (mutual distillation among experts) and OneS, for teaching and reproduction.

The layers, top to bottom (each imports only from the ones below it; pyproject.toml's import-linter
contract is the one list, tests/test_layout.py holds this copy to it):

<!-- layers -->
    __main__        `python -m modekit`
    cli/            the command line: parser (options built from config fields), types (option parsing), commands
    estimator       face: the scikit-learn classifier
    notebook        face: the notebooks' setup (profile, device, seeds)
    reproduction/   batch reproduction: runner (papermill), report, provenance, notebook_client, writeup (the citable report)
    experiments/    multi-model experiments: compare (MoE vs MoDE vs dense), judge (verdicts), takeaway (verdicts in words), bench
    ones/           OneS: gathering, distill (the student's KD objective), experiment, speed, takeaway (04 in words)
    analysis/       probing, stats (effects, intervals, verdicts), plots (canvas: style, layout), claims (the scorecard), exercises (checks)
    training/       loop, result, resume (results-store adapter), objectives, population, compiled, distributed
    nn/             experts (stacked + reference loop), gates, moe (the MoE layer), models (backbones, model factory)
    data/           dataset (the Dataset type), embedded, synthetic, composite, tabular, images, text, user, files, download
    executors       ground floor: where units of work run (local pool, submitit)
    device          ground floor: device choice, autocast
    functional      ground floor: the losses as functions (L_KD in O(E), balance, KD)
    profiles        ground floor: the fast / laptop / full plans
    config          ground floor: validated configs; every option's bounds and help
    store           ground floor: the results store (sqlite3)
    resources       ground floor: package data (notebooks, manifest)
    errors          ground floor: the errors a user sees
<!-- /layers -->

`import modekit as mk` gives the names below; each is imported on first use, so that importing the
package (and `python -m modekit --help`) does not import torch.
"""

import importlib

__version__ = "0.1.0"

_HOMES = {
    "Dataset": "modekit.data",
    "load": "modekit.data",
    "ModelConfig": "modekit.config",
    "TrainConfig": "modekit.config",
    "NonFiniteLossError": "modekit.errors",
    "UserError": "modekit.errors",
    "mutual_distillation_loss": "modekit.functional",
    "MoELayer": "modekit.nn",
    "TabularMoE": "modekit.nn",
    "build_model": "modekit.nn",
    "model_config_for": "modekit.nn",
    "DistillationObjective": "modekit.ones.distill",
    "MoDEObjective": "modekit.training.objectives",
    "sweep_configs": "modekit.training.population",
    "train_population": "modekit.training.population",
    "TrainResult": "modekit.training.result",
    "results_frame": "modekit.training.result",
    "evaluate": "modekit.training.loop",
    "train": "modekit.training.loop",
}

__all__ = sorted(_HOMES)
SUBPACKAGES = ("data", "nn", "training", "ones", "analysis", "experiments", "reproduction", "cli")


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif name in SUBPACKAGES:  # mk.data, mk.analysis, ... (never __main__, which runs the command line)
        value = importlib.import_module(f"modekit.{name}")
    else:
        raise AttributeError(f"module 'modekit' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES) | set(SUBPACKAGES))
