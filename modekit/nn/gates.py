"""Gates: who gets which sample. Axis legend: n samples (or tokens), e experts.

Both gates return `GateOutput`: the weights g(x) (n, e) used to mix the experts, which experts are
active per sample (all of them for the dense gate), and the load-balancing auxiliary loss.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from modekit.config import GATES, check_choice
from modekit.functional import switch_balance_loss


class GateOutput(NamedTuple):
    weights: torch.Tensor  # (n, e), rows sum to 1 (top-1 routing: to the chosen expert's softmax probability)
    active: torch.Tensor  # (n, e) bool, experts that receive the sample
    balance_loss: torch.Tensor  # scalar


class DenseGate(nn.Module):
    """The papers' DMoE gate: g(x) = softmax(x W_g + b_g); every expert runs on every sample.

    W_g and b_g start at zero (as the noisy top-k gate does, Shazeer et al. 2017): every expert gets
    weight 1/E at first, and the gate learns its split from the experts' differences rather than from
    a random initial preference. Measured with 2 experts (hidden 8, output 16), 40 epochs, seeds 0-9:
    the gate's recognition accuracy on `subtasks` was 0.92 on average with zero init and 0.83 with
    PyTorch's default init; on `subtasks2d` 0.75 and 0.67. Either way some seeds keep a gate near 1/2
    whose experts each learn both rules (docs/method.md §3, §5)."""

    def __init__(self, d_in: int, n_experts: int):
        super().__init__()
        self.proj = nn.Linear(d_in, n_experts)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, sample_mask: torch.Tensor | None = None) -> GateOutput:
        # g(x) = softmax(x W_g + b_g)
        weights = torch.softmax(self.proj(x), dim=-1)
        active = torch.ones_like(weights, dtype=torch.bool)
        return GateOutput(weights, active, weights.new_zeros(()))


class NoisyTopKGate(nn.Module):
    """Noisy top-k gating (Shazeer et al. 2017) with the Switch-Transformer load-balancing loss.

    k >= 2: the kept experts' weights are the softmax over their own logits (Shazeer's renormalised
    top-k). k = 1: the softmax of one value is always 1, which would leave the router with no
    gradient from the task loss; as in the Switch Transformer (Fedus et al. 2021, eq. 2) the chosen
    expert is weighted by its probability under the softmax over every expert."""

    def __init__(self, d_in: int, n_experts: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.proj = nn.Linear(d_in, n_experts, bias=False)
        self.noise_proj = nn.Linear(d_in, n_experts, bias=False)
        # Shazeer et al. start from zero gate weights: routing begins uniform and noise-driven.
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.noise_proj.weight)

    def forward(self, x: torch.Tensor, sample_mask: torch.Tensor | None = None) -> GateOutput:
        logits = self.proj(x)
        if self.training:
            # H(x) = x W_g + N(0, 1) * softplus(x W_noise), noise during training only
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise_proj(x))
        top_values, top_index = logits.topk(self.top_k, dim=-1)
        if self.top_k == 1:
            # Switch: g_i(x) = softmax(H(x))_i for the chosen expert i, zero elsewhere
            kept = torch.softmax(logits, dim=-1).gather(-1, top_index)
        else:
            # g(x) = softmax(KeepTopK(H(x), k)): zero outside the top k
            kept = torch.softmax(top_values, dim=-1)
        weights = torch.zeros_like(logits).scatter(-1, top_index, kept)
        active = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top_index, True)
        return GateOutput(weights, active, switch_balance_loss(logits, active, self.top_k, sample_mask))


def make_gate(kind: str, d_in: int, n_experts: int, top_k: int) -> nn.Module:
    """The gate module named by a config's `gate` string ("dense" or "topk")."""
    check_choice("gate", kind, GATES)
    return DenseGate(d_in, n_experts) if kind == "dense" else NoisyTopKGate(d_in, n_experts, top_k)
