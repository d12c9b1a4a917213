"""Looking inside a trained MoE: how the gate splits the data, what each expert knows.

- effective sample share ESS_i = (sum_x g_i(x))^2 / sum_x g_i(x)^2, divided by n (narrow vision);
- dominating sample-based task domain DS_i = samples whose largest gate weight is expert i's;
- expert probing: the gate forced to one-hot(i), accuracy on DS_i (own) and the other DS (cross);
- gate recognition accuracy: share of samples routed to "their" expert under the best one-to-one
  matching of sub-tasks to experts;
- expert consistency: mean pairwise cosine similarity of the experts' outputs (1 = collapsed);
- per-expert permutation feature importance.
All functions probe the model's first MoE layer and run in eval mode (no gate noise); the model's
train / eval mode is restored afterwards. Definitions: docs/method.md §5.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from .device import to_numpy
from .errors import UserError
from .functional import mutual_distillation_loss
from .nn import moe_layers
from .train import evaluate


def first_moe(model):
    layers = moe_layers(model)
    if not layers:
        raise UserError(f"model {type(model).__name__} has no MoE layer to probe (a OneS student has none)")
    return layers[0][1]


@contextlib.contextmanager
def eval_mode(model):
    """Within the block the model is in eval mode; its previous train / eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def gate_weights(model, X: torch.Tensor) -> np.ndarray:
    """(n, E) gate weights of the first MoE layer, eval mode (no gate noise). Per-sample gates only:
    a transformer routes each token, so its (n, t, E) weights are refused rather than flattened."""
    with eval_mode(model):
        weights = model(X).gate_weights
    if weights.dim() != 2:
        raise UserError(
            f"gate_weights: the model routes every token (gate weights of shape {tuple(weights.shape)}), not every "
            "sample: probing by sample needs a per-sample gate (tabular or CNN backbone)"
        )
    return to_numpy(weights)


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


def expert_probing(model, X: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    """One row per (expert i, domain DS_j): accuracy of expert i alone on DS_j, own = (i == j)."""
    domain = dominating_expert(gate_weights(model, X))
    n_experts = first_moe(model).experts.n_experts
    rows = []
    for expert in range(n_experts):
        with forced_expert(model, expert):
            for owner in range(n_experts):
                members = torch.as_tensor(domain == owner)
                rows.append(
                    {
                        "expert": expert,
                        "domain": owner,
                        "own": expert == owner,
                        "samples": int(members.sum()),
                        "accuracy": evaluate(model, X[members], y[members])["accuracy"],
                    }
                )
    return pd.DataFrame(rows)


def _matching(weights: np.ndarray, subtask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Routing counts (sub-task x dominating expert) and the one-to-one matching of sub-tasks to
    experts that maximises the matched samples (Hungarian algorithm): (counts, tasks, experts)."""
    subtask = np.asarray(subtask, dtype=int)
    counts = np.zeros((int(subtask.max()) + 1, weights.shape[1]))
    np.add.at(counts, (subtask, dominating_expert(weights)), 1)
    tasks, experts = linear_sum_assignment(counts, maximize=True)
    return counts, tasks, experts


def gate_recognition_accuracy(weights: np.ndarray, subtask: np.ndarray) -> float:
    """Share of samples whose dominating expert is the one matched to their sub-task, under the
    best one-to-one matching of sub-tasks to experts."""
    counts, tasks, experts = _matching(weights, subtask)
    return float(counts[tasks, experts].sum() / len(subtask))


@torch.no_grad()
def expert_consistency(model, X: torch.Tensor) -> dict:
    """Mean pairwise cosine similarity of the experts' outputs over samples, and L_KD."""
    layer = first_moe(model)
    captured = {}
    handle = layer.register_forward_pre_hook(lambda module, inputs: captured.update(x=inputs[0]))
    with eval_mode(model):
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
            base = evaluate(model, X, y)["accuracy"]
            for column, name in enumerate(names):
                drops = []
                for _ in range(repeats):
                    shuffled = X.clone()
                    shuffled[:, column] = X[torch.randperm(len(X), generator=generator), column]
                    drops.append(base - evaluate(model, shuffled, y)["accuracy"])
                rows.append({"expert": expert, "feature": name, "importance": float(np.mean(drops))})
    return pd.DataFrame(rows)


@torch.no_grad()
def decision_grid(model, X: torch.Tensor, resolution: int = 150):
    """Class-1 probability and dominating expert on a grid over a 2-D input's range."""
    device = next(model.parameters()).device
    low, high = X.min(0).values - 0.5, X.max(0).values + 0.5
    xs, ys = torch.linspace(low[0], high[0], resolution), torch.linspace(low[1], high[1], resolution)
    grid = torch.cartesian_prod(xs, ys).to(device)
    with eval_mode(model):
        out = model(grid)
    probability = torch.softmax(out.logits.float(), -1)[:, -1].reshape(resolution, resolution).T
    expert = out.gate_weights.argmax(-1).reshape(resolution, resolution).T
    return to_numpy(xs), to_numpy(ys), to_numpy(probability), to_numpy(expert)


def matched_experts(weights: np.ndarray, subtask: np.ndarray) -> np.ndarray:
    """For each sub-task, the expert the gate sends most of it to (best one-to-one matching)."""
    _, tasks, experts = _matching(weights, subtask)
    return experts[np.argsort(tasks)]
