"""Training objectives: what one step minimises. The training loop takes one and knows nothing else
about the method (docs/method.md §2, §4).

- `MoDEObjective(alpha, balance_coef)`: L = L_task + alpha * L_KD + balance_coef * L_balance
  (alpha = 0 is plain MoE);
- `DistillationObjective(teacher, recipe)`: OneS / Switch knowledge distillation,
  L = (1 - w) CE(y, s) + w T^2 KL(softmax(t/T) || softmax(s/T)).

Each returns a `StepLoss`; its `auxiliary` term is what the history's `distillation_loss` column
holds: MoDE's L_KD among the experts, or the soft (teacher) term of KD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .errors import UserError
from .functional import soft_target_loss, task_loss


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


@dataclass(frozen=True)
class DistillConfig:
    """Student loss (1 - weight) * CE(y, s) + weight * T^2 * KL(softmax(t/T) || softmax(s/T))."""

    weight: float = 0.5  # share of the soft (teacher) term (ours: 0.5; Switch recipe: 0.25)
    temperature: float = 2.0  # T (ours: 2; Switch recipe: 1)

    def __post_init__(self):
        if not 0.0 <= self.weight <= 1.0:
            raise UserError(f"weight={self.weight!r} is not allowed: weight must be in [0, 1]")
        if not self.temperature > 0:
            raise UserError(f"temperature={self.temperature!r} is not allowed: temperature must be > 0")


ONES_RECIPE = DistillConfig(0.5, 2.0)  # (ours)
SWITCH_RECIPE = DistillConfig(0.25, 1.0)  # Fedus et al.: 0.25 soft / 0.75 hard targets, T = 1


def student_loss(student_logits, teacher_logits, targets, recipe: DistillConfig) -> StepLoss:
    """(1 - w) CE(y, s) + w T^2 KL(t || s), the KD loss of a student against a teacher."""
    hard = task_loss(student_logits, targets)
    soft = soft_target_loss(student_logits, teacher_logits, recipe.temperature)
    # L = (1 - w) L_CE + w L_soft
    return StepLoss((1 - recipe.weight) * hard + recipe.weight * soft, hard, soft, student_logits)


class DistillationObjective:
    """Train a student on labels and on a frozen teacher's soft targets (OneS §4, Switch recipe)."""

    def __init__(self, teacher: nn.Module, recipe: DistillConfig = ONES_RECIPE):
        self.teacher, self.recipe = teacher, recipe

    def prepare(self, device: torch.device) -> DistillationObjective:
        self.teacher = self.teacher.to(device).eval()
        return self

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepLoss:
        with torch.no_grad():
            teacher_logits = self.teacher(x).logits
        return student_loss(model(x).logits, teacher_logits, y, self.recipe)


@torch.no_grad()
def teacher_kl(student: nn.Module, teacher: nn.Module, X: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean KL(teacher || student) of the predictive distributions (T = 1) on X, both in eval mode
    (their train / eval modes are restored afterwards)."""
    modes = student.training, teacher.training
    student.eval(), teacher.eval()
    device = next(student.parameters()).device
    total = 0.0
    for start in range(0, len(X), batch_size):
        xb = X[start : start + batch_size].to(device)
        total += float(soft_target_loss(student(xb).logits, teacher(xb).logits, 1.0)) * len(xb)
    student.train(modes[0]), teacher.train(modes[1])
    return total / max(len(X), 1)
