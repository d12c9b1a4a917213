"""OneS (arXiv 2201.10890): knowledge gathering from a sparse MoE into one dense student, then
knowledge distillation from the whole MoE (docs/method.md §4). The distillation objective lives
in modekit.ones.distill.

Gathering, per expert weight matrix W_i of shape (a, b), E experts:
    sum:      W = sum_i W_i                    avg: W = mean_i W_i
    topk:     keep the K largest |entries| of each W_i (default K = a*b / E), zero the rest, sum
    neurons:  each expert keeps its K hidden units (W1 column, b1 entry, W2 row together) of largest
              ||W1[:, j]|| ||W2[j, :]||, placed side by side (default and largest K = h / E)
    svd:      W_i ~ U_K diag(S_K) V_K^T (top-K singular triplets, default K = rank / E), merged by
              sum (default) or mean
Biases are merged as their weights are (summed, or averaged for avg and svd-mean); a K given for W1
is applied to W2 as the same share of its own limit. Everything outside the experts is copied; the
router goes. gather_matrices works on one stacked matrix; "neurons" pairs the two layers and lives
in gather_neurons.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
from torch import nn

from modekit.config import GATHERING_METHODS, check_choice
from modekit.errors import UserError
from modekit.functional import truncated_svd
from modekit.nn import DenseFeedForward, moe_layers

METHODS = GATHERING_METHODS
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
    n_experts, rows, columns = weights.shape
    limits = {"topk": (rows * columns, "entries"), "neurons": (max(1, columns // n_experts), "hidden units per expert, h / E"),
              "svd": (min(rows, columns), "the rank")}  # fmt: skip
    return limits[method]


def gather_matrices(weights: torch.Tensor, method: str = "svd", k: int | None = None, merge: str = "sum") -> torch.Tensor:
    """Gather stacked expert matrices (E, a, b) into one (a, b) matrix."""
    check_choice("method", method, METHODS)
    check_choice("merge", merge, MERGES)
    if weights.dim() != 3:
        raise UserError(f"weights has shape {tuple(weights.shape)}: expected stacked experts (E, rows, columns)")
    if method == "neurons":
        raise UserError(
            "method='neurons' is not allowed for one matrix: it keeps each hidden unit's W1 column and W2 row together; "
            "use gather_neurons(w1, b1, w2, b2, k) or gather_experts(model, 'neurons')"
        )
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
    else:
        # W_i ~ U_k diag(S_k) V_k^T, one truncated SVD per expert
        pieces = torch.stack([truncated_svd(w, k) for w in weights])
    return pieces.mean(0) if merge == "mean" and method == "svd" else pieces.sum(0)


def merge_biases(biases: torch.Tensor, method: str, merge: str = "sum") -> torch.Tensor:
    """Biases (E, b) merged as their weights are: averaged for avg (and svd with merge="mean"), else summed."""
    check_choice("merge", merge, MERGES)
    biases = biases.detach().float()
    # b = (1/E) sum_i b_i  or  b = sum_i b_i, matching W
    return biases.mean(0) if method == "avg" or (method == "svd" and merge == "mean") else biases.sum(0)


def gather_neurons(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, k: int | None = None):
    """OneS "neurons": each expert keeps its K hidden units of largest ||W1[:, j]|| * ||W2[j, :]||,
    each unit whole (its W1 column, b1 entry and W2 row together: the ReLU sits between the layers,
    so a unit only computes its function with its own pair), and the kept units of all experts sit
    side by side in one expert-shaped block (K <= h / E; unused units stay zero). The block computes
    sum_i of each expert restricted to its kept units, so b2 is summed like the "sum" method.
    Shapes: w1 (E, d, h), b1 (E, h), w2 (E, h, p), b2 (E, p). Returns (W1, b1, W2, b2)."""
    n_experts, d_in, hidden = w1.shape
    limit = max(1, hidden // n_experts)
    k = limit if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
        raise UserError(
            f"k={k!r} is not allowed: for method='neurons' k must be an integer in [1, {limit}] (hidden units per expert, h / E)"
        )
    w1, b1, w2 = w1.detach().float(), b1.detach().float(), w2.detach().float()
    # score of unit j of expert i: ||W1_i[:, j]|| * ||W2_i[j, :]||
    score = w1.norm(dim=1) * w2.norm(dim=2)  # (E, h)
    kept = score.topk(k, dim=1).indices.sort(dim=1).values  # (E, k), in unit order
    W1, B1, W2 = w1.new_zeros(d_in, hidden), w1.new_zeros(hidden), w1.new_zeros(hidden, w2.shape[2])
    for i in range(n_experts):
        slots = slice(i * k, (i + 1) * k)
        W1[:, slots], B1[slots], W2[slots] = w1[i][:, kept[i]], b1[i][kept[i]], w2[i][kept[i]]
    return W1, B1, W2, b2.detach().float().sum(0)


def second_k(k: int | None, w1: torch.Tensor, w2: torch.Tensor, method: str) -> int | None:
    """K for the second matrix: the same share of its own limit as K is of the first's (a rank-r
    fraction of W1 keeps the same fraction of W2's rank), never W1's absolute K."""
    if k is None or method in ("sum", "avg", "neurons"):
        return None
    first, second = k_limit(w1, method)[0], k_limit(w2, method)[0]
    return max(1, min(second, round(k / first * second)))


def gather_experts(model: nn.Module, method: str = "svd", k: int | None = None, merge: str = "sum") -> list[DenseFeedForward]:
    """One dense feed-forward block per MoE layer of `model`, of one expert's shape."""
    check_choice("method", method, METHODS)
    layers = moe_layers(model)
    if not layers:
        raise UserError(f"model {type(model).__name__} has no MoE layers: there are no experts to gather")
    blocks = []
    for _, layer in layers:
        experts = layer.experts
        _, d_in, d_hidden = experts.w1.shape
        dense = DenseFeedForward(d_in, d_hidden, experts.w2.shape[2]).to(experts.w1.device)
        if method == "neurons":
            parts = gather_neurons(experts.w1, experts.b1, experts.w2, experts.b2, k)
        else:
            parts = (gather_matrices(experts.w1, method, k, merge), merge_biases(experts.b1, method, merge),
                     gather_matrices(experts.w2, method, second_k(k, experts.w1, experts.w2, method), merge),
                     merge_biases(experts.b2, method, merge))  # fmt: skip
        with torch.no_grad():
            for target, value in zip((dense.w1, dense.b1, dense.w2, dense.b2), parts):
                target.copy_(value)
        blocks.append(dense)
    return blocks


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


def summed_block_error(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """Why summing experts' weights does not sum their functions, on inputs x (n, d).

    With z_i = x W1_i + b1_i, the experts sum to S(x) = sum_i relu(z_i) W2_i + sum_i b2_i, while the
    "sum" block computes B(x) = relu(sum_i z_i) (sum_j W2_j) + sum_i b2_i. Exactly,
        B - S = [relu(sum_i z_i) - sum_i relu(z_i)] sum_j W2_j   (non-linearity: the ReLU between the layers)
              + sum_i relu(z_i) (sum_j W2_j - W2_i)              (cross terms: W2_j reads expert i's units)
    Returns the norms of B - S and of both parts, each relative to ||S|| (0 for one expert).
    Shapes: w1 (E, d, h), b1 (E, h), w2 (E, h, p), b2 (E, p)."""
    w1, b1, w2, b2, x = (t.detach().double() for t in (w1, b1, w2, b2, x))
    z = torch.einsum("nd,edh->enh", x, w1) + b1[:, None]  # z_i, (E, n, h)
    experts = torch.einsum("enh,ehp->np", torch.relu(z), w2) + b2.sum(0)  # S(x)
    block = torch.relu(z.sum(0)) @ w2.sum(0) + b2.sum(0)  # B(x)
    non_linearity = (torch.relu(z.sum(0)) - torch.relu(z).sum(0)) @ w2.sum(0)
    cross_terms = torch.einsum("enh,ehp->np", torch.relu(z), w2.sum(0) - w2)
    scale = experts.norm()
    return {"total": float((block - experts).norm() / scale), "non_linearity": float(non_linearity.norm() / scale),
            "cross_terms": float(cross_terms.norm() / scale)}  # fmt: skip


def permute_hidden_units(model: nn.Module, expert: int = 0, seed: int = 0) -> nn.Module:
    """A copy of `model` in which expert `expert` of every MoE layer has its hidden units shuffled:
    its W1 columns, b1 entries and W2 rows reordered by one seeded permutation. The expert, and so
    the model, computes the same function (the hidden units of an MLP have no order); its weight
    matrices, and so what sum / avg / topk / svd gather from them, change."""
    layers = moe_layers(model)
    if not layers:
        raise UserError(f"model {type(model).__name__} has no MoE layers: there are no experts to permute")
    n_experts = layers[0][1].experts.w1.shape[0]
    if isinstance(expert, bool) or not isinstance(expert, int) or not 0 <= expert < n_experts:
        raise UserError(f"expert={expert!r} is not allowed: expert must be an integer in [0, {n_experts - 1}]")
    permuted = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in moe_layers(permuted):
            experts = layer.experts
            order = torch.randperm(experts.w1.shape[2], generator=generator)
            if torch.equal(order, torch.arange(len(order))):
                order = order.roll(1)  # never the identity: every shuffle moves the units
            order = order.to(experts.w1.device)
            experts.w1[expert] = experts.w1[expert][:, order]
            experts.b1[expert] = experts.b1[expert][order]
            experts.w2[expert] = experts.w2[expert][order]
    return permuted


def permutation_effect(teacher: nn.Module, x: torch.Tensor, methods=METHODS, expert: int = 0, seed: int = 0) -> pd.DataFrame:
    """Per gathering method: how much the student's logits on x move when one expert's hidden units
    are shuffled (`permute_hidden_units`), relative to their norm, beside the teacher's own change
    (zero up to rounding: the teacher computes the same function)."""
    permuted = permute_hidden_units(teacher, expert, seed)
    with torch.no_grad():
        teacher_change = float((permuted.eval()(x).logits - teacher.eval()(x).logits).norm() / teacher(x).logits.norm())
        rows = []
        for method in methods:
            before, after = (make_student(model, method).eval()(x).logits for model in (teacher, permuted))
            rows.append(
                {"method": method, "teacher_change": teacher_change, "student_change": float((after - before).norm() / before.norm())}
            )
    return pd.DataFrame(rows)


def moe_layer_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the first MoE layer of `model` sees on inputs x, one row per sample (tabular) or token
    (transformer, ViT): the x of `summed_block_error` for any backbone."""
    layers = moe_layers(model)
    if not layers:
        raise UserError(f"model {type(model).__name__} has no MoE layers: there are no experts to read")
    seen = []
    hook = layers[0][1].register_forward_hook(lambda module, args, output: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        hook.remove()
    return seen[0].reshape(-1, seen[0].shape[-1])
