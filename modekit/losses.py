"""Losses: the task loss, MoDE's mutual distillation among experts, OneS's teacher-student KD.

MoDE (method.md §2):  L = L_task + alpha * L_KD, with
    L_KD = mean over ordered pairs i != j of MSE(e_i, e_j)
on the experts' outputs e_i(x) before gate weighting: no softmax, no temperature, no stop-gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mutual_distillation_loss(
    expert_outputs: torch.Tensor,
    active: torch.Tensor | None = None,
    sample_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MoDE's L_KD in O(E) instead of a loop over the E(E-1) pairs.

    expert_outputs: (e, n, p), every expert's output for n samples (or tokens).
    active: optional (n, e) bool, distil only among the experts active for each sample.
    sample_mask: optional (n,) bool, positions that count (padding tokens excluded).

    Per sample, with A the experts taking part and ē their mean,
        sum_{i<j in A} ||e_i - e_j||^2 = |A| * sum_{i in A} ||e_i - ē||^2
    (the centred form of E sum||e_i||^2 - ||sum e_i||^2, free of cancellation), so the mean over the
    |A|(|A|-1) ordered pairs of the per-dimension squared distance is 2 / (|A|-1) * sum_i MSE(e_i, ē).
    Samples with fewer than two participating experts contribute nothing; the result is the mean
    over the samples that have a pair (0 when none has).
    """
    outputs = expert_outputs.float()
    n_experts, n_samples, _ = outputs.shape
    if active is None:
        taking_part = outputs.new_ones(n_experts, n_samples)
    else:
        taking_part = active.T.to(outputs.dtype)
    if sample_mask is not None:
        taking_part = taking_part * sample_mask.to(outputs.dtype)
    count = taking_part.sum(0)  # |A| per sample
    # ē = sum_{i in A} e_i / |A|
    centre = (taking_part.unsqueeze(-1) * outputs).sum(0) / count.clamp_min(1.0)[:, None]
    # S = sum_{i in A} MSE(e_i, ē), the mean taken over the p output dimensions
    spread = (taking_part * (outputs - centre).pow(2).mean(-1)).sum(0)
    # mean over ordered pairs = 2 S / (|A| - 1)
    pair_mean = 2.0 * spread / (count - 1.0).clamp_min(1.0)
    has_pair = (count > 1.5).to(outputs.dtype)
    return (pair_mean * has_pair).sum() / has_pair.sum().clamp_min(1.0)


def task_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, computed in float32 whatever the autocast dtype."""
    return F.cross_entropy(logits.float(), targets)


def moe_objective(output, targets: torch.Tensor, alpha, balance_coef: float):
    """L = L_task + alpha * L_KD + balance_coef * L_balance. Returns (total, task, distillation)."""
    task = task_loss(output.logits, targets)
    # L = L_task + alpha * L_KD (+ the gate's load-balancing term for top-k gates)
    total = task + alpha * output.distillation_loss + balance_coef * output.balance_loss
    return total, task, output.distillation_loss
