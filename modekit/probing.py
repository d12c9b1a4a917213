"""Looking inside a trained MoE: how the gate splits the data, what each expert knows.

- effective sample share ESS_i = (sum_x g_i(x))^2 / sum_x g_i(x)^2, divided by n (narrow vision);
- dominating sample-based task domain DS_i = samples whose largest gate weight is expert i's;
- expert probing: the gate forced to one-hot(i), accuracy on DS_i (own) and the other DS (cross);
- gate recognition accuracy: share of samples routed to "their" expert under the best one-to-one
  matching of sub-tasks to experts;
- expert consistency: mean pairwise cosine similarity of the experts' outputs (1 = collapsed);
- per-expert permutation feature importance.
All functions take the model's first MoE layer and run in eval mode.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from .losses import mutual_distillation_loss
from .nn.backbones import moe_layers


def first_moe(model):
    layers = moe_layers(model)
    if not layers:
        raise ValueError(f"model {type(model).__name__} has no MoE layer to probe")
    return layers[0][1]


@torch.no_grad()
def gate_weights(model, X: torch.Tensor) -> np.ndarray:
    """(n, E) gate weights of the first MoE layer, eval mode (no gate noise)."""
    model.eval()
    return model(X).gate_weights.reshape(len(X), -1).float().numpy()


def effective_sample_share(weights: np.ndarray) -> np.ndarray:
    """ESS_i / n with ESS_i = (sum_x g_i(x))^2 / sum_x g_i(x)^2: 1 = expert i learns from every
    sample equally, 1/E = from a (gate-weighted) E-th of the data."""
    # ESS_i = (sum g_i)^2 / sum g_i^2
    ess = weights.sum(0) ** 2 / np.maximum((weights**2).sum(0), 1e-12)
    return ess / len(weights)


def dominating_expert(weights: np.ndarray) -> np.ndarray:
    """DS membership: for each sample, the expert with the largest gate weight."""
    return weights.argmax(1)


@contextlib.contextmanager
def forced_expert(model, expert: int):
    """Within the block, the first MoE layer's gate is one-hot(expert)."""
    layer = first_moe(model)
    layer.forced_expert = expert
    try:
        yield model
    finally:
        layer.forced_expert = None


@torch.no_grad()
def accuracy(model, X, y) -> float:
    model.eval()
    return float((model(X).logits.argmax(-1) == y).float().mean()) if len(y) else float("nan")


def expert_probing(model, X: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    """One row per (expert i, domain DS_j): accuracy of expert i alone on DS_j, own = (i == j)."""
    domain = dominating_expert(gate_weights(model, X))
    n_experts = first_moe(model).experts.n_experts
    rows = []
    for expert in range(n_experts):
        with forced_expert(model, expert):
            for owner in range(n_experts):
                members = torch.as_tensor(domain == owner)
                rows.append({"expert": expert, "domain": owner, "own": expert == owner, "samples": int(members.sum()),
                             "accuracy": accuracy(model, X[members], y[members])})
    return pd.DataFrame(rows)


def gate_recognition_accuracy(weights: np.ndarray, subtask: np.ndarray) -> float:
    """Share of samples whose dominating expert is the one matched to their sub-task, under the
    best one-to-one matching of sub-tasks to experts (Hungarian algorithm)."""
    routed = dominating_expert(weights)
    n_experts, n_tasks = weights.shape[1], int(subtask.max()) + 1
    counts = np.zeros((n_tasks, n_experts))
    np.add.at(counts, (subtask, routed), 1)
    tasks, experts = linear_sum_assignment(-counts)
    return float(counts[tasks, experts].sum() / len(subtask))


@torch.no_grad()
def expert_consistency(model, X: torch.Tensor) -> dict:
    """Mean pairwise cosine similarity of the experts' outputs over samples, and L_KD."""
    model.eval()
    layer = first_moe(model)
    captured = {}
    handle = layer.register_forward_pre_hook(lambda module, inputs: captured.update(x=inputs[0]))
    model(X)
    handle.remove()
    outputs = layer.expert_outputs(captured["x"])  # (e, n, p)
    normed = torch.nn.functional.normalize(outputs.float(), dim=-1)
    pairs = [(normed[i] * normed[j]).sum(-1).mean() for i, j in itertools.combinations(range(len(outputs)), 2)]
    cosine = float(torch.stack(pairs).mean()) if pairs else 1.0
    return {"cosine_similarity": cosine, "distillation_loss": float(mutual_distillation_loss(outputs))}


def expert_feature_importance(model, X: torch.Tensor, y: torch.Tensor, feature_names=None, repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Permutation importance per expert (gate forced to it): accuracy drop when a feature is shuffled."""
    generator = torch.Generator().manual_seed(seed)
    names = feature_names or [f"x{i}" for i in range(X.shape[1])]
    rows = []
    for expert in range(first_moe(model).experts.n_experts):
        with forced_expert(model, expert):
            base = accuracy(model, X, y)
            for column, name in enumerate(names):
                drops = []
                for _ in range(repeats):
                    shuffled = X.clone()
                    shuffled[:, column] = X[torch.randperm(len(X), generator=generator), column]
                    drops.append(base - accuracy(model, shuffled, y))
                rows.append({"expert": expert, "feature": name, "importance": float(np.mean(drops))})
    return pd.DataFrame(rows)


@torch.no_grad()
def decision_grid(model, X: torch.Tensor, resolution: int = 150):
    """Class-1 probability and dominating expert on a grid over a 2-D input's range."""
    model.eval()
    low, high = X.min(0).values - 0.5, X.max(0).values + 0.5
    xs, ys = torch.linspace(low[0], high[0], resolution), torch.linspace(low[1], high[1], resolution)
    grid = torch.cartesian_prod(xs, ys)
    out = model(grid)
    probability = torch.softmax(out.logits.float(), -1)[:, -1].reshape(resolution, resolution).T
    expert = out.gate_weights.argmax(-1).reshape(resolution, resolution).T
    return xs.numpy(), ys.numpy(), probability.numpy(), expert.numpy()


def matched_experts(weights: np.ndarray, subtask: np.ndarray) -> np.ndarray:
    """For each sub-task, the expert the gate sends most of it to (best one-to-one matching)."""
    n_tasks = int(subtask.max()) + 1
    counts = np.zeros((n_tasks, weights.shape[1]))
    np.add.at(counts, (subtask, dominating_expert(weights)), 1)
    tasks, experts = linear_sum_assignment(-counts)
    return experts[np.argsort(tasks)]
