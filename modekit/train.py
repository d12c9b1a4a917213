"""The training loop: one model, CPU or CUDA, read top to bottom.

Data lives on the device as tensors and batches are indexed there. Losses are accumulated on the
device and read once per epoch (no host sync per step); a non-finite loss is then traced back to
its epoch and step. On CUDA: bf16 autocast, fused AdamW, TF32 matmuls.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import ModelConfig, TrainConfig
from .data import Dataset
from .losses import moe_objective, task_loss
from .nn import build_model

EVAL_BATCH = 4096


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' is not allowed here: no CUDA GPU is visible; use device='auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device={name!r} is not allowed: device must be 'auto', 'cpu' or 'cuda'")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (keeps CPU runs bit-for-bit deterministic)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def make_optimizer(parameters, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # weight_decay = 0 makes AdamW plain Adam; fused kernels on CUDA
    return torch.optim.AdamW(
        parameters, lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda"
    )


DEFAULT_BACKBONE = {"tabular": "mlp", "image": "cnn", "text": "transformer"}


def model_config_for(data: Dataset, config: ModelConfig | None = None) -> ModelConfig:
    """The model config completed from the data: input width, classes, image shape, vocabulary,
    and the backbone for the data's domain when it is "auto"."""
    config = config or ModelConfig()
    changes = {"n_features": data.n_features, "n_classes": data.n_classes}
    if config.backbone == "auto":
        changes["backbone"] = DEFAULT_BACKBONE[data.domain]
    if data.domain == "image":
        changes["input_shape"] = tuple(data.X_train.shape[1:])
    if data.domain == "text":
        changes["vocab_size"] = len(data.metadata["vocabulary"])
        changes["max_length"] = data.X_train.shape[1]
    return config.replace(**changes)


@dataclass
class TrainResult:
    model: nn.Module
    history: pd.DataFrame  # one row per epoch x split: epoch, split, task_loss, distillation_loss, accuracy, seconds
    train_config: TrainConfig
    model_config: ModelConfig
    best_epoch: int
    epochs_run: int
    train_seconds: float
    val_accuracy: float
    test_accuracy: float
    device: str

    def summary(self) -> dict:
        return {
            "alpha": self.train_config.alpha,
            "seed": self.train_config.seed,
            "experts": self.model_config.n_experts,
            "gate": self.model_config.gate,
            "device": self.device,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "train_seconds": round(self.train_seconds, 3),
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
        }


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH) -> dict:
    """Task loss, distillation loss and accuracy of a model on one split (eval mode, no gate noise)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    X, y = X.to(device), y.to(device)
    sums = torch.zeros(3, device=device)
    with autocast(device):
        for start in range(0, len(y), batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            out = model(xb)
            sums += torch.stack(
                [
                    task_loss(out.logits, yb) * len(yb),
                    out.distillation_loss.float() * len(yb),
                    (out.logits.argmax(-1) == yb).sum().float(),
                ]
            )
    model.train(was_training)
    task, distillation, correct = (sums / max(len(y), 1)).tolist()
    return {"task_loss": task, "distillation_loss": distillation, "accuracy": correct}


def check_finite(step_losses: torch.Tensor, epoch: int, config: TrainConfig) -> None:
    """Raise, naming epoch and step, if any step's loss was NaN or inf (one host sync per epoch)."""
    bad = ~torch.isfinite(step_losses)
    if bool(bad.any()):
        step = int(bad.nonzero()[0, 0])
        raise NonFiniteLossError(
            f"training loss became {float(step_losses[step])} at epoch {epoch}, step {step} "
            f"(lr={config.lr}, alpha={config.alpha}, seed={config.seed}): lower lr or alpha, "
            "and check the data for NaN / inf values"
        )


def train(
    data: Dataset,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    model: nn.Module | None = None,
    teacher: nn.Module | None = None,
    distill=None,
) -> TrainResult:
    """Train one model on `data`; return it (best validation epoch restored) with its history.

    With a `teacher` (OneS distillation), the loss is `distillation_objective` with `distill`
    (a `modekit.ones.DistillConfig`) and the history's distillation_loss column holds the soft
    (teacher) term; otherwise it holds MoDE's L_KD among the experts.
    """
    if teacher is not None:
        from .ones import ONES_RECIPE, distillation_objective

        distill = distill or ONES_RECIPE
    config = train_config or TrainConfig()
    model_config = model_config_for(data, model_config)
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)  # gate noise
    model = (model or build_model(model_config, config.seed)).to(device)
    if teacher is not None:
        teacher = teacher.to(device).eval()
    optimizer = make_optimizer(model.parameters(), config, device)
    shuffle = torch.Generator().manual_seed(config.seed)
    X, y = data.X_train.to(device), data.y_train.to(device)
    X_val, y_val = data.X_val.to(device), data.y_val.to(device)
    n = len(y)
    steps = -(-n // config.batch_size)

    rows, best_accuracy, best_state, best_epoch, stale = [], -1.0, None, 0, 0
    start_time = time.perf_counter()
    epochs = tqdm(range(1, config.epochs + 1), desc="train", disable=not config.progress, leave=False)
    for epoch in epochs:
        model.train()
        order = torch.randperm(n, generator=shuffle).to(device)
        # per step: total loss, task loss * batch, distillation loss * batch, correct predictions
        stats = torch.zeros(steps, 4, device=device)
        for step in range(steps):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb, yb = X[index], y[index]
            with autocast(device):
                out = model(xb)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(xb).logits
            if teacher is None:
                total, task, distillation = moe_objective(out, yb, config.alpha, config.balance_coef)
            else:
                total, task, distillation = distillation_objective(out.logits, teacher_logits, yb, distill)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            with torch.no_grad():
                correct = (out.logits.argmax(-1) == yb).sum()
                stats[step] = torch.stack([total, task * len(yb), distillation * len(yb), correct.float()]).detach()
        check_finite(stats[:, 0], epoch, config)
        train_sums = (stats[:, 1:].sum(0) / n).tolist()
        val = evaluate(model, X_val, y_val)
        seconds = time.perf_counter() - start_time
        rows.append({"epoch": epoch, "split": "train", **dict(zip(("task_loss", "distillation_loss", "accuracy"), train_sums)), "seconds": seconds})
        rows.append({"epoch": epoch, "split": "val", **val, "seconds": seconds})
        epochs.set_postfix(val_acc=f"{val['accuracy']:.4f}")
        if val["accuracy"] > best_accuracy:
            best_accuracy, best_epoch, stale = val["accuracy"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if config.patience and stale >= config.patience:
                break
    train_seconds = time.perf_counter() - start_time
    model.load_state_dict(best_state)
    test = evaluate(model, data.X_test, data.y_test)
    rows.append({"epoch": best_epoch, "split": "test", **test, "seconds": train_seconds})
    return TrainResult(
        model=model,
        history=pd.DataFrame(rows),
        train_config=config,
        model_config=model_config,
        best_epoch=best_epoch,
        epochs_run=epoch,
        train_seconds=train_seconds,
        val_accuracy=best_accuracy,
        test_accuracy=test["accuracy"],
        device=str(device),
    )


def results_frame(results: list[TrainResult], **columns) -> pd.DataFrame:
    """One row per trained model (alpha, seed, accuracies, time), plus constant extra columns."""
    return pd.DataFrame([{**columns, **r.summary()} for r in results])
