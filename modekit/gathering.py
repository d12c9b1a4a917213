"""OneS (arXiv 2201.10890): knowledge gathering from a sparse MoE into one dense student, then
knowledge distillation from the whole MoE (docs/method.md §4). The distillation objective lives
in modekit.objectives.

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

import pandas as pd
import torch
from torch import nn

from .config import check_choice
from .errors import UserError
from .functional import truncated_svd
from .nn import DenseFeedForward, moe_layers

METHODS = ("sum", "avg", "topk", "neurons", "svd")
MERGES = ("sum", "mean")


def default_k(weights: torch.Tensor, method: str) -> int:
    n_experts, rows, columns = weights.shape
    if method == "topk":
        return max(1, rows * columns // n_experts)
    if method == "neurons":
        return max(1, columns // n_experts)
    return max(1, min(rows, columns) // n_experts)


def k_limit(weights: torch.Tensor, method: str) -> tuple[int, str]:
    """The largest K of a method for stacked (E, rows, columns) weights, and what K counts."""
    _, rows, columns = weights.shape
    return {"topk": (rows * columns, "entries"), "neurons": (columns, "output units"), "svd": (min(rows, columns), "the rank")}[method]


def gather_matrices(weights: torch.Tensor, method: str = "svd", k: int | None = None, merge: str = "sum") -> torch.Tensor:
    """Gather stacked expert matrices (E, a, b) into one (a, b) matrix."""
    check_choice("method", method, METHODS)
    check_choice("merge", merge, MERGES)
    if weights.dim() != 3:
        raise UserError(f"weights has shape {tuple(weights.shape)}: expected stacked experts (E, rows, columns)")
    weights = weights.detach().float()
    if method == "sum":
        # W = sum_i W_i
        return weights.sum(0)
    if method == "avg":
        # W = (1/E) sum_i W_i
        return weights.mean(0)
    k = default_k(weights, method) if k is None else k
    limit, what = k_limit(weights, method)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
        raise UserError(f"k={k!r} is not allowed: for method={method!r} k must be an integer in [1, {limit}] ({what})")
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
        pieces = torch.stack([truncated_svd(w, k) for w in weights])
    return pieces.mean(0) if merge == "mean" and method == "svd" else pieces.sum(0)


def gather_experts(model: nn.Module, method: str = "svd", k: int | None = None, merge: str = "sum") -> list[DenseFeedForward]:
    """One dense feed-forward block per MoE layer of `model`, of one expert's shape."""
    layers = moe_layers(model)
    if not layers:
        raise UserError(f"model {type(model).__name__} has no MoE layers: there are no experts to gather")
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


def expert_spectra(model: nn.Module) -> pd.DataFrame:
    """Singular values of every expert matrix: layer, matrix (w1 / w2), expert, index, value, energy share."""
    rows = []
    for layer_name, layer in moe_layers(model):
        for matrix in ("w1", "w2"):
            for expert, weight in enumerate(getattr(layer.experts, matrix).detach().float()):
                values = torch.linalg.svdvals(weight)
                energy = values.pow(2).cumsum(0) / values.pow(2).sum()
                for index, (value, share) in enumerate(zip(values.tolist(), energy.tolist())):
                    rows.append(
                        {
                            "layer": layer_name,
                            "matrix": matrix,
                            "expert": expert,
                            "index": index + 1,
                            "singular_value": value,
                            "cumulative_energy": share,
                        }
                    )
    return pd.DataFrame(rows)
