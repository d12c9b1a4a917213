"""The MoE / MoDE layer: h(x) = sum_i g_i(x) e_i(x), plus the MoDE distillation term.

The layer is backbone-agnostic: it takes (..., d) inputs (samples for tabular data, tokens for a
transformer) and an optional mask of which positions are real (padding excluded), and returns the
mixed output with the losses a training loop needs. Axis legend: n positions, e experts, p output.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from modekit.config import DISTILL_AMONG, check_choice
from modekit.functional import mutual_distillation_loss
from modekit.nn.experts import ExpertStack, ReferenceExperts
from modekit.nn.gates import make_gate


class MoEOutput(NamedTuple):
    output: torch.Tensor  # (..., p) gate-weighted mix of the experts
    gate_weights: torch.Tensor  # (..., e)
    distillation_loss: torch.Tensor  # scalar L_KD among the experts' outputs (before gating)
    balance_loss: torch.Tensor  # scalar load-balancing loss (0 for the dense gate)


class MoELayer(nn.Module):
    """E experts and a gate. `reference=True` swaps in the plain ModuleList experts (for tests)."""

    def __init__(
        self,
        d_in: int,
        d_hidden: int,
        d_out: int,
        n_experts: int,
        gate: str = "dense",
        top_k: int = 2,
        distill_among: str = "all",
        reference: bool = False,
    ):
        super().__init__()
        check_choice("distill_among", distill_among, DISTILL_AMONG)
        self.gate = make_gate(gate, d_in, n_experts, top_k)
        expert_class = ReferenceExperts if reference else ExpertStack
        self.experts = expert_class(n_experts, d_in, d_hidden, d_out)
        self.distill_among = distill_among
        # eval-time sparse dispatch for top-k gates (inference speed); L_KD is then not computed
        self.sparse_inference = False
        # expert probing: when set to i, the gate is replaced by one-hot(i) (see modekit.analysis.probing)
        self.forced_expert: int | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> MoEOutput:
        leading = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        flat_mask = None if mask is None else mask.reshape(-1)
        gate = self.gate(flat, flat_mask)
        if self.forced_expert is not None:
            one_hot = torch.zeros_like(gate.weights)
            one_hot[:, self.forced_expert] = 1.0
            gate = gate._replace(weights=one_hot, active=one_hot.bool())
        if self.sparse_inference and not self.training and hasattr(self.experts, "forward_routed"):
            mixed = self.experts.forward_routed(flat, gate.weights, gate.active)
            zero = mixed.new_zeros(())
            return MoEOutput(mixed.reshape(*leading, -1), gate.weights.reshape(*leading, -1), zero, gate.balance_loss)
        expert_outputs = self.experts(flat)  # (e, n, p)
        # h(x) = sum_i g_i(x) e_i(x)
        # (a broadcast multiply-sum: einsum would lower this to a bmm over n tiny matrices, slow on CPU)
        mixed = (gate.weights.T.to(expert_outputs.dtype).unsqueeze(-1) * expert_outputs).sum(0)
        among = gate.active if self.distill_among == "active" else None
        distillation = mutual_distillation_loss(expert_outputs, among, flat_mask)
        return MoEOutput(
            mixed.reshape(*leading, -1),
            gate.weights.reshape(*leading, -1),
            distillation,
            gate.balance_loss,
        )

    @torch.no_grad()
    def expert_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert's output e_i(x) before gating, (e, n, p), for probing and analysis."""
        return self.experts(x.reshape(-1, x.shape[-1]))
