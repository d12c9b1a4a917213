"""Training objectives: what one step minimises. The training loop takes one and knows nothing else
about the method (docs/method.md §2, §4).

- `MoDEObjective(alpha, balance_coef)`: L = L_task + alpha * L_KD + balance_coef * L_balance
  (alpha = 0 is plain MoE);
- OneS / Switch knowledge distillation lives with OneS (`modekit.ones.distill.DistillationObjective`).

Each returns a `StepLoss`; its `auxiliary` term is what the history's `distillation_loss` column
holds: MoDE's L_KD among the experts, or the soft (teacher) term of KD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from modekit.functional import task_loss


class StepLoss(NamedTuple):
    total: torch.Tensor  # the scalar that is backpropagated
    task: torch.Tensor  # cross-entropy against the labels
    auxiliary: torch.Tensor  # MoDE: L_KD among experts; KD: the soft-target term
    logits: torch.Tensor  # (n, classes), for the step's accuracy


def step_metrics(loss: StepLoss, targets: torch.Tensor) -> torch.Tensor:
    """(3,) sums over a batch: task loss * b, auxiliary loss * b, correct predictions. The kit's
    one accuracy computation: every accuracy is these sums divided by the sample count."""
    b = len(targets)
    correct = (loss.logits.argmax(-1) == targets).sum().float()
    return torch.stack([loss.task.float() * b, loss.auxiliary.float() * b, correct])


def mode_loss(output, targets: torch.Tensor, alpha, balance_coef: float) -> StepLoss:
    """L = L_task + alpha * L_KD + balance_coef * L_balance, from a model's output.
    `alpha` may be a tensor (one value per member of a vectorised population)."""
    task = task_loss(output.logits, targets)
    # L = L_task + alpha * L_KD (+ the top-k gate's load-balancing term; 0 for the dense gate)
    total = task + alpha * output.distillation_loss + balance_coef * output.balance_loss
    return StepLoss(total, task, output.distillation_loss, output.logits)


@dataclass(frozen=True)
class MoDEObjective:
    """MoE (alpha = 0) or MoDE (alpha > 0) training of the model itself."""

    alpha: float = 0.0
    balance_coef: float = 1e-2

    def prepare(self, device: torch.device) -> MoDEObjective:
        return self

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepLoss:
        return mode_loss(model(x), y, self.alpha, self.balance_coef)
