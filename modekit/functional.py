"""Pure tensor maths, no modules and no state: MoDE's L_KD, the task loss, the soft-target KD
term, the truncated SVD and the Switch load-balancing loss. Equations: docs/method.md.

Axis legend: e experts, n samples (or tokens), p output dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mutual_distillation_loss(
    expert_outputs: torch.Tensor,
    active: torch.Tensor | None = None,
    sample_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MoDE's L_KD (docs/method.md §2) in O(E) instead of a loop over the E(E-1) pairs.

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


def sum_normalised_alpha(alpha: float, n_experts: int, out_dim: int) -> float:
    """Our alpha expressed for a sum-normalised L_KD (docs/method.md §2, "Mapping").

    L^sum_KD = sum_{i<j} ||e_i - e_j||^2 = p E (E - 1) / 2 * L_KD (ours, all experts distilled), so the
    same objective needs alpha_sum = 2 alpha_ours / (p E (E - 1)).
    """
    if n_experts < 2 or out_dim < 1:
        raise ValueError(f"n_experts={n_experts!r}, out_dim={out_dim!r}: the mapping needs n_experts >= 2 and out_dim >= 1")
    # alpha_sum = 2 alpha / (p E (E - 1))
    return 2.0 * alpha / (out_dim * n_experts * (n_experts - 1))


def ours_from_sum_normalised_alpha(alpha_sum: float, n_experts: int, out_dim: int) -> float:
    """The inverse of `sum_normalised_alpha`: alpha_ours = p E (E - 1) / 2 * alpha_sum."""
    return alpha_sum / sum_normalised_alpha(1.0, n_experts, out_dim)


def task_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, computed in float32 whatever the autocast dtype."""
    return F.cross_entropy(logits.float(), targets)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), mean over samples (Hinton et al. 2015; §4)."""
    t = temperature
    # T^2 keeps the soft term's gradient scale independent of T
    return (
        t
        * t
        * F.kl_div(
            F.log_softmax(student_logits.float() / t, -1),
            F.log_softmax(teacher_logits.float() / t, -1),
            log_target=True,
            reduction="batchmean",
        )
    )


def truncated_svd(matrix: torch.Tensor, k: int) -> torch.Tensor:
    """Best rank-k approximation (Eckart-Young): U_k diag(S_k) V_k^T."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u[:, :k] @ torch.diag(s[:k]) @ vh[:k]


def switch_balance_loss(
    router_logits: torch.Tensor, active: torch.Tensor, top_k: int, sample_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """L_balance = E * sum_i f_i * P_i (Switch Transformer; §3): f_i = share of the n*k routed
    slots going to expert i, P_i = mean router probability of expert i. 1 when routing is uniform.

    router_logits: (n, e); active: (n, e) bool, the experts each sample is routed to.
    """
    n_experts = router_logits.shape[-1]
    keep = torch.ones_like(router_logits[:, 0]) if sample_mask is None else sample_mask.to(router_logits.dtype)
    n_kept = keep.sum().clamp_min(1.0)
    # f_i = (1 / (n k)) sum_x 1[i in TopK(x)]
    dispatch_share = (active.to(router_logits.dtype) * keep[:, None]).sum(0) / (n_kept * top_k)
    # P_i = (1 / n) sum_x softmax(h(x))_i
    router_prob = (torch.softmax(router_logits, dim=-1) * keep[:, None]).sum(0) / n_kept
    return n_experts * (dispatch_share * router_prob).sum()
