"""The training loop: one model, CPU or CUDA, any objective (docs/architecture.md).

The loop knows nothing about MoE, MoDE or OneS: an objective (modekit.training.objectives) turns a batch
into a `StepLoss`. Data lives on the device as tensors and batches are indexed there; losses are
accumulated on the device and read once per epoch (no host sync per step). The per-epoch
decisions (non-finite loss, history rows, improvement, early stopping) live in `EpochTracker`,
which populations share. On CUDA: bf16 autocast, fused AdamW, TF32 inside the run only. Under
torchrun, `modekit.training.distributed` gives each rank its slice of every global batch (DDP; docs/scaling.md).
"""

from __future__ import annotations

import copy
import os
import time

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from modekit.config import ModelConfig, TrainConfig
from modekit.data import Dataset
from modekit.device import autocast, resolve_device, tf32_allowed
from modekit.errors import NonFiniteLossError, UserError
from modekit.nn import build_model, model_config_for
from modekit.store import active_store
from modekit.training.compiled import CompiledStep, choose
from modekit.training.distributed import current_ranks
from modekit.training.objectives import MoDEObjective, mode_loss, step_metrics
from modekit.training.result import TrainResult
from modekit.training.resume import _look_up, save_result

EVAL_BATCH = 4096
MEMORY_FRACTION = 0.5  # a model (weights, gradients, two Adam moments) may use at most this share of the machine's memory
METRICS = ("task_loss", "distillation_loss", "accuracy")


def make_optimizer(parameters, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # weight_decay = 0 makes AdamW plain Adam; fused kernels on CUDA
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda")


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH) -> dict:
    """Task loss, L_KD and accuracy of a model on one split (eval mode, no gate noise; the model's
    train / eval mode is restored after). Accuracy is NaN on an empty split."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    X, y = X.to(device), y.to(device)
    sums = torch.zeros(3, device=device)
    with autocast(device):
        for start in range(0, len(y), batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            sums += step_metrics(mode_loss(model(xb), yb, 0.0, 0.0), yb)
    model.train(was_training)
    if not len(y):
        return dict.fromkeys(METRICS, float("nan"))
    return dict(zip(METRICS, (sums / len(y)).tolist()))


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


class EpochTracker:
    """The per-epoch decisions for k models trained side by side (k = 1 for `train`): a non-finite
    loss stops the run, each running model gets its history rows, the best validation accuracy
    and its epoch are kept, and a model stops after `patience` epochs without improvement."""

    def __init__(self, configs: list[TrainConfig]):
        k = len(configs)
        self.configs, self.patience = configs, configs[0].patience
        self.best_accuracy = torch.full((k,), -1.0)
        self.best_epoch = torch.zeros(k, dtype=torch.long)
        self.stale = torch.zeros(k, dtype=torch.long)
        self.epochs_run = torch.zeros(k, dtype=torch.long)
        self.running = torch.ones(k, dtype=torch.bool)
        self.rows: list[list[dict]] = [[] for _ in configs]

    def end_epoch(self, epoch: int, step_totals: torch.Tensor, train: torch.Tensor, val: torch.Tensor, seconds: float) -> torch.Tensor:
        """step_totals (steps, k); train and val (k, 3) means of METRICS. Returns which improved (k,)."""
        members = self.running.nonzero().flatten().tolist()
        for member in members:
            check_finite(step_totals[:, member], epoch, self.configs[member])
        train, val = train.float().cpu(), val.float().cpu()
        for member in members:
            for split, values in (("train", train[member]), ("val", val[member])):
                self.rows[member].append({"epoch": epoch, "split": split, **dict(zip(METRICS, values.tolist())), "seconds": seconds})
        improved = self.running & (val[:, 2] > self.best_accuracy)
        self.best_accuracy = torch.where(improved, val[:, 2], self.best_accuracy)
        self.best_epoch = torch.where(improved, epoch, self.best_epoch)
        self.stale = torch.where(improved, 0, self.stale + 1)
        self.epochs_run = torch.where(self.running, epoch, self.epochs_run)
        if self.patience:
            self.running &= self.stale < self.patience
        return improved

    @property
    def finished(self) -> bool:
        return not bool(self.running.any())

    def result(self, member: int, model: nn.Module, data: Dataset, model_config: ModelConfig, seconds: float, device) -> TrainResult:
        """The member's TrainResult: its best state must already be loaded into `model`."""
        test = evaluate(model, data.X_test, data.y_test)
        best_epoch = int(self.best_epoch[member])
        history = pd.DataFrame(self.rows[member] + [{"epoch": best_epoch, "split": "test", **test, "seconds": seconds}])
        return TrainResult(
            model,
            history,
            self.configs[member],
            model_config,
            best_epoch,
            int(self.epochs_run[member]),
            seconds,
            float(self.best_accuracy[member]),
            test["accuracy"],
            str(device),
        )


def train_epoch(
    model, objective, optimizer, X, y, order, batch_size: int, device, compiled: CompiledStep | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the training data in `order`: (step totals (steps, 1), metric means (1, 3)).
    `compiled` (modekit.training.compiled) trains the full batches; the ragged last one, or every batch
    when it is None or its compilation failed, takes the eager step (the reference)."""
    model.train()
    steps = -(-len(y) // batch_size)
    totals, sums = torch.zeros(steps, 1, device=device), torch.zeros(3, device=device)
    for step in range(steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        xb, yb = X[index], y[index]
        out = compiled(xb, yb) if compiled is not None and len(yb) == batch_size else None
        if out is not None:  # the same sums as below, from one compiled graph
            totals[step, 0], metrics = out
            sums += metrics
            continue
        with autocast(device):
            loss = objective(model, xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()
        with torch.no_grad():
            totals[step, 0] = loss.total.detach()
            sums += step_metrics(loss, yb).detach()
    return totals, (sums / len(y))[None]


def train(
    data: Dataset,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    model: nn.Module | None = None,
    objective=None,
) -> TrainResult:
    """Train one model on `data`; return it (best validation epoch restored) with its history.

    objective: default `MoDEObjective(alpha, balance_coef)` from the train config; OneS passes a
    `DistillationObjective(teacher, recipe)`. `model`: start from this model (e.g. a OneS student).
    """
    config = train_config or TrainConfig()
    model_config = model_config_for(data, model_config)
    ranks = current_ranks(resolve_device(config.device))  # one process, or this rank of a torchrun launch
    device = ranks.device
    objective = (objective or MoDEObjective(config.alpha, config.balance_coef)).prepare(device)
    check_fits_memory(model_config)
    store = active_store()
    if store is not None:  # a finished unit of an earlier, interrupted run is reused
        key, unit, result = _look_up(store, data, model_config, config, device, objective, model)
        if result is not None:
            return result
    with tf32_allowed(device):
        torch.manual_seed(ranks.noise_seed(config.seed))  # gate noise
        model = (model or build_model(model_config, config.seed)).to(device)
        step_model = ranks.wrap(model)  # DDP under torchrun: gradients averaged over the ranks
        optimizer = make_optimizer(model.parameters(), config, device)
        # eager under torchrun: a compiled functional step would bypass DDP's gradient all-reduce
        compiled = choose(model, objective, optimizer, config, device, len(data.y_train)) if ranks.world == 1 else None
        shuffle = torch.Generator().manual_seed(config.seed)
        X, y = data.X_train.to(device), data.y_train.to(device)
        X_val, y_val = data.X_val.to(device), data.y_val.to(device)
        sharding = ranks.sharding(len(y), config.batch_size)  # this rank's slice of each global batch
        tracker, best_state, start = EpochTracker([config]), None, time.perf_counter()
        for epoch in tqdm(range(1, config.epochs + 1), desc="train", disable=not (config.progress and ranks.main), leave=False):
            order = torch.randperm(len(y), generator=shuffle).to(device)
            X_rank, y_rank, order_rank, batch, rank_objective = sharding.epoch(X, y, order, objective)
            rank_epoch = train_epoch(step_model, rank_objective, optimizer, X_rank, y_rank, order_rank, batch, device, compiled)
            totals, train_means = sharding.reduce(*rank_epoch)
            val = ranks.agree(torch.tensor([list(evaluate(model, X_val, y_val).values())]))
            if tracker.end_epoch(epoch, totals, train_means, val, time.perf_counter() - start)[0]:
                best_state = copy.deepcopy(model.state_dict())
            ranks.check_same_weights(model, epoch)
            if tracker.finished:
                break
        model.load_state_dict(best_state)
        result = tracker.result(0, model, data, model_config, time.perf_counter() - start, device)
    if store is not None and ranks.main:
        save_result(store, key, unit, result)
    return result


def check_fits_memory(model_config: ModelConfig, members: int = 1) -> None:
    """Refuse, naming the sizes, a model whose training state would not fit in memory (counted on
    the meta device: nothing is allocated)."""
    with torch.device("meta"):
        parameters = sum(p.numel() for p in build_model(model_config, 0).parameters())
    needed = 4 * 4 * parameters * members  # float32 weights, gradients and two Adam moments
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no bound
        return
    if needed > MEMORY_FRACTION * available:
        raise UserError(
            f"n_experts={model_config.n_experts}, expert_hidden={model_config.expert_hidden} (x {members} model(s)) is not allowed: "
            f"{parameters * members:,} parameters need {needed / 2**30:.1f} GiB to train, more than half of this machine's "
            f"{available / 2**30:.1f} GiB; use fewer or smaller experts"
        )
