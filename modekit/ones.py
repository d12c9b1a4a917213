"""OneS (arXiv 2201.10890): knowledge gathering from a sparse MoE into one dense student, then
knowledge distillation from the whole MoE (method.md §4).

Gathering, per expert weight matrix W_i of shape (a, b), E experts:
    sum:      W = sum_i W_i                    avg: W = mean_i W_i
    topk:     keep the K largest |entries| of each W_i (default K = a*b / E), zero the rest, sum
    neurons:  keep the K output units (columns) of largest L2 norm of each W_i (default K = b / E), sum
    svd:      W_i ~ U_K diag(S_K) V_K^T (top-K singular triplets, default K = rank / E), merged by
              sum (default) or mean
Biases are averaged over the experts. Everything outside the experts is copied; the router goes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .nn.backbones import DenseFeedForward, moe_layers

METHODS = ("sum", "avg", "topk", "neurons", "svd")
MERGES = ("sum", "mean")


def default_k(weights: torch.Tensor, method: str) -> int:
    n_experts, rows, columns = weights.shape
    if method == "topk":
        return max(1, rows * columns // n_experts)
    if method == "neurons":
        return max(1, columns // n_experts)
    return max(1, min(rows, columns) // n_experts)


def _k_limit(weights: torch.Tensor, method: str) -> tuple[int, str]:
    _, rows, columns = weights.shape
    return {"topk": (rows * columns, "entries"), "neurons": (columns, "output units"), "svd": (min(rows, columns), "the rank")}[method]


def truncated(matrix: torch.Tensor, k: int) -> torch.Tensor:
    """Best rank-k approximation (Eckart-Young): U_k diag(S_k) V_k^T."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u[:, :k] @ torch.diag(s[:k]) @ vh[:k]


def gather_matrices(weights: torch.Tensor, method: str = "svd", k: int | None = None, merge: str = "sum") -> torch.Tensor:
    """Gather stacked expert matrices (E, a, b) into one (a, b) matrix."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed: method must be one of {', '.join(METHODS)}")
    if merge not in MERGES:
        raise ValueError(f"merge={merge!r} is not allowed: merge must be 'sum' or 'mean'")
    if weights.dim() != 3:
        raise ValueError(f"weights has shape {tuple(weights.shape)}: expected stacked experts (E, rows, columns)")
    weights = weights.detach().float()
    if method == "sum":
        # W = sum_i W_i
        return weights.sum(0)
    if method == "avg":
        # W = (1/E) sum_i W_i
        return weights.mean(0)
    k = default_k(weights, method) if k is None else k
    limit, what = _k_limit(weights, method)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
        raise ValueError(f"k={k!r} is not allowed: for method={method!r} k must be an integer in [1, {limit}] ({what})")
    if method == "topk":
        # keep the k largest |W_i| entries of each expert, then W = sum_i masked(W_i)
        flat = weights.flatten(1)
        keep = torch.zeros_like(flat).scatter(1, flat.abs().topk(k, dim=1).indices, 1.0)
        pieces = (flat * keep).view_as(weights)
    elif method == "neurons":
        # keep the k output units (columns) of largest L2 norm of each expert
        keep = torch.zeros(weights.shape[0], weights.shape[2], device=weights.device)
        keep.scatter_(1, weights.norm(dim=1).topk(k, dim=1).indices, 1.0)
        pieces = weights * keep[:, None, :]
    else:
        # W_i ~ U_k diag(S_k) V_k^T, one truncated SVD per expert
        pieces = torch.stack([truncated(w, k) for w in weights])
    return pieces.mean(0) if merge == "mean" and method == "svd" else pieces.sum(0)


def gather_experts(model: nn.Module, method: str = "svd", k: int | None = None, merge: str = "sum") -> list[DenseFeedForward]:
    """One dense feed-forward block per MoE layer of `model`, of one expert's shape."""
    layers = moe_layers(model)
    if not layers:
        raise ValueError(f"model {type(model).__name__} has no MoE layers: there are no experts to gather")
    blocks = []
    for _, layer in layers:
        experts = layer.experts
        _, d_in, d_hidden = experts.w1.shape
        dense = DenseFeedForward(d_in, d_hidden, experts.w2.shape[2]).to(experts.w1.device)
        with torch.no_grad():
            dense.w1.copy_(gather_matrices(experts.w1, method, k, merge))
            dense.w2.copy_(gather_matrices(experts.w2, method, _second_k(k, experts, method), merge))
            # biases: mean over the experts
            dense.b1.copy_(experts.b1.mean(0))
            dense.b2.copy_(experts.b2.mean(0))
        blocks.append(dense)
    return blocks


def _second_k(k, experts, method):
    """The same K for both matrices where it is meaningful (svd: rank of each), else its default."""
    if k is None or method in ("sum", "avg"):
        return None
    if method == "svd":
        return min(k, min(experts.w2.shape[1:]))
    if method == "neurons":
        return min(k, experts.w2.shape[2])
    return min(k, experts.w2.shape[1] * experts.w2.shape[2])


def random_dense_blocks(model: nn.Module, seed: int) -> list[DenseFeedForward]:
    """Dense blocks initialised like nn.Linear (for the Switch-Transformer distillation baseline)."""
    generator = torch.Generator().manual_seed(seed)
    blocks = []
    for _, layer in moe_layers(model):
        _, d_in, d_hidden = layer.experts.w1.shape
        dense = DenseFeedForward(d_in, d_hidden, layer.experts.w2.shape[2])
        with torch.no_grad():
            for weight, bias in ((dense.w1, dense.b1), (dense.w2, dense.b2)):
                bound = weight.shape[0] ** -0.5
                weight.copy_(torch.rand(weight.shape, generator=generator) * 2 * bound - bound)
                bias.copy_(torch.rand(bias.shape, generator=generator) * 2 * bound - bound)
        blocks.append(dense.to(layer.experts.w1.device))
    return blocks


def make_student(teacher: nn.Module, method: str = "svd", k: int | None = None, merge: str = "sum", seed: int = 0) -> nn.Module:
    """The teacher's architecture with every MoE layer replaced by a gathered dense block; all
    non-expert weights copied, the router gone. method="random": randomly initialised blocks."""
    blocks = random_dense_blocks(teacher, seed) if method == "random" else gather_experts(teacher, method, k, merge)
    student = copy.deepcopy(teacher)
    for (name, _), block in zip(moe_layers(student), blocks):
        parent_name, _, attribute = name.rpartition(".")
        setattr(student.get_submodule(parent_name) if parent_name else student, attribute, block)
    return student


@dataclass(frozen=True)
class DistillConfig:
    """Student loss (1 - weight) * CE(y, s) + weight * T^2 * KL(softmax(t/T) || softmax(s/T))."""

    weight: float = 0.5  # share of the soft (teacher) term (ours: 0.5; Switch recipe: 0.25)
    temperature: float = 2.0  # T (ours: 2; Switch recipe: 1)

    def __post_init__(self):
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight={self.weight!r} is not allowed: weight must be in [0, 1]")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r} is not allowed: temperature must be > 0")


ONES_RECIPE = DistillConfig(0.5, 2.0)
SWITCH_RECIPE = DistillConfig(0.25, 1.0)  # Fedus et al.: 0.25 soft / 0.75 hard targets, T = 1


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), mean over samples."""
    t = temperature
    return t * t * F.kl_div(
        F.log_softmax(student_logits.float() / t, -1), F.log_softmax(teacher_logits.float() / t, -1), log_target=True, reduction="batchmean"
    )


def distillation_objective(student_logits, teacher_logits, targets, config: DistillConfig):
    """(1 - a) CE(y, s) + a T^2 KL(t || s). Returns (total, CE, KL term)."""
    hard = F.cross_entropy(student_logits.float(), targets)
    soft = soft_target_loss(student_logits, teacher_logits, config.temperature)
    return (1 - config.weight) * hard + config.weight * soft, hard, soft


@torch.no_grad()
def teacher_kl(student: nn.Module, teacher: nn.Module, X: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean KL(teacher || student) of the predictive distributions (T = 1) on X, both in eval mode."""
    student.eval()
    teacher.eval()
    device = next(student.parameters()).device
    total = 0.0
    for start in range(0, len(X), batch_size):
        xb = X[start : start + batch_size].to(device)
        total += float(soft_target_loss(student(xb).logits, teacher(xb).logits, 1.0)) * len(xb)
    return total / len(X)


def expert_spectra(model: nn.Module) -> "pd.DataFrame":
    """Singular values of every expert matrix: layer, matrix (w1 / w2), expert, index, value, energy share."""
    import pandas as pd

    rows = []
    for layer_name, layer in moe_layers(model):
        for matrix in ("w1", "w2"):
            for expert, weight in enumerate(getattr(layer.experts, matrix).detach().float()):
                values = torch.linalg.svdvals(weight)
                energy = values.pow(2).cumsum(0) / values.pow(2).sum()
                for index, (value, share) in enumerate(zip(values.tolist(), energy.tolist())):
                    rows.append({"layer": layer_name, "matrix": matrix, "expert": expert, "index": index + 1, "singular_value": value, "cumulative_energy": share})
    return pd.DataFrame(rows)


def benefit_preserved(student: float, dense: float, moe: float) -> float:
    """% of MoE benefit preserved: 100 * (S_student - S_dense) / (S_MoE - S_dense)."""
    gap = moe - dense
    return float("nan") if gap == 0 else 100.0 * (student - dense) / gap
