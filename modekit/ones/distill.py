"""OneS / Switch knowledge distillation: the student's objective (docs/method.md §4).

`DistillationObjective(teacher, recipe)`:
  L = (1 - w) CE(y, s) + w T^2 KL(softmax(t/T) || softmax(s/T)).
Its `StepLoss.auxiliary` (the history's `distillation_loss` column) is the soft (teacher) term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from modekit.errors import UserError
from modekit.functional import soft_target_loss, task_loss
from modekit.training.objectives import StepLoss


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
