"""How far a top-k gate's balance-loss gradient under DDP is from one process's (docs/scaling.md).

    python benchmarks/ddp_balance_gradient.py

Under DDP each rank computes the Switch balance loss E * sum_i f_i P_i from its own slice of the
global batch; the gradient DDP applies is the slice-weighted mean of those. This script computes
both in one process, with no gate noise (eval mode) so that only the statistics differ: one batch
of 49 `subtasks2d` samples, 4 experts, top-2, gate weights drawn at random so that routing is
uneven. It prints the relative difference of the balance term's gradient and of the whole loss's
gradient (L_task + 0.1 L_KD + 0.01 L_balance) for 2, 4 and 8 slices.
"""

from __future__ import annotations

import torch

import modekit
from modekit.config import ModelConfig
from modekit.nn import build_model, model_config_for
from modekit.training.objectives import mode_loss


def main() -> None:
    data = modekit.load("subtasks2d", seed=0, n_samples=600)
    model = build_model(model_config_for(data, ModelConfig(n_experts=4, gate="topk", top_k=2)), 0)
    with torch.no_grad():
        model.moe.gate.proj.weight.copy_(torch.randn(model.moe.gate.proj.weight.shape, generator=torch.Generator().manual_seed(0)))
    model.eval()  # no gate noise
    x, y = data.X_train[:49], data.y_train[:49]

    def gradient(term: str, slices: int) -> torch.Tensor:
        model.zero_grad()
        for xs, ys in zip(torch.tensor_split(x, slices), torch.tensor_split(y, slices)):
            out = model(xs)
            loss = out.balance_loss if term == "balance" else mode_loss(out, ys, 0.1, 1e-2).total
            (loss * len(ys) / len(y)).backward()  # DDP's mean of world * slice / batch weighted losses
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    print(f"{'ranks':>5} {'balance-term gradient':>22} {'whole-loss gradient':>20}   (relative L2 difference from one process)")
    reference = {term: gradient(term, 1) for term in ("balance", "total")}
    for slices in (2, 4, 8):
        gaps = [float((gradient(term, slices) - reference[term]).norm() / reference[term].norm()) for term in ("balance", "total")]
        print(f"{slices:>5} {gaps[0]:>22.2e} {gaps[1]:>20.2e}")


if __name__ == "__main__":
    main()
