"""Experts: E small two-layer MLPs, stored stacked and run with one batched matmul.

Axis legend: e experts, n samples (or tokens), d input features, h expert hidden, p expert output.

`ExpertStack` is the fast version; `ReferenceExperts` is the plain `ModuleList` loop kept so that
tests can prove both compute the same outputs and gradients.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ExpertStack(nn.Module):
    """E experts e_i(x) = W2_i relu(W1_i x + b1_i) + b2_i, weights stacked as (e, d, h) and (e, h, p)."""

    def __init__(self, n_experts: int, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_experts, d_in, d_hidden))
        self.b1 = nn.Parameter(torch.empty(n_experts, d_hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, d_hidden, d_out))
        self.b2 = nn.Parameter(torch.empty(n_experts, d_out))
        self.reset_parameters()

    @property
    def n_experts(self) -> int:
        return self.w1.shape[0]

    def reset_parameters(self) -> None:
        # nn.Linear's default init, expert by expert: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        for weight, bias in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, d) -> every expert's output (e, n, p)."""
        # h_i = relu(x W1_i + b1_i), all experts in one batched matmul with the bias fused in
        hidden = torch.relu(torch.baddbmm(self.b1.unsqueeze(1), x.expand(self.n_experts, *x.shape), self.w1))
        # e_i(x) = h_i W2_i + b2_i
        return torch.baddbmm(self.b2.unsqueeze(1), hidden, self.w2)

    def forward_routed(self, x: torch.Tensor, weights: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Sparse inference: each expert runs only on the samples routed to it; returns the mixed
        output sum_i g_i(x) e_i(x) (n, p) with the work of top-k, not all E, experts."""
        mixed = x.new_zeros(x.shape[0], self.w2.shape[2])
        for i in range(self.n_experts):  # one gathered matmul pair per expert (the standard dispatch)
            index = active[:, i].nonzero().squeeze(1)
            if index.numel():
                hidden = torch.relu(torch.addmm(self.b1[i], x[index], self.w1[i]))
                out = torch.addmm(self.b2[i], hidden, self.w2[i])
                # bf16 under CUDA autocast: accumulate in the float32 buffer
                mixed.index_add_(0, index, (out * weights[index, i, None].to(out.dtype)).to(mixed.dtype))
        return mixed


class ReferenceExperts(nn.Module):
    """The same experts as a plain loop over `nn.Sequential` MLPs (slow, obviously right)."""

    def __init__(self, n_experts: int, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out)) for _ in range(n_experts)
        )

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([expert(x) for expert in self.experts])

    @torch.no_grad()
    def copy_from(self, stack: ExpertStack) -> ReferenceExperts:
        """Load the weights of an `ExpertStack` (nn.Linear stores weights transposed: (out, in))."""
        for i, expert in enumerate(self.experts):
            expert[0].weight.copy_(stack.w1[i].T)
            expert[0].bias.copy_(stack.b1[i])
            expert[2].weight.copy_(stack.w2[i].T)
            expert[2].bias.copy_(stack.b2[i])
        return self
