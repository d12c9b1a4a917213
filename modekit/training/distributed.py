"""Training one model across processes: `torchrun --nproc_per_node=N -m modekit train ...`
(docs/scaling.md, "Training one model across processes").

torchrun starts N copies of the command, each a *rank*, and sets RANK / WORLD_SIZE / LOCAL_RANK;
`train` sees them, joins the process group (gloo on CPU, NCCL on CUDA with device cuda:LOCAL_RANK)
and trains one model on all ranks with PyTorch's DistributedDataParallel (DDP):

- every rank holds the whole model and the whole dataset; DDP broadcasts rank 0's weights when it
  wraps the model, so every rank starts from the same weights;
- every rank draws the same permutation of the training set (same generator seed) and trains on
  its slice of each global batch (`batch_size` is the global batch; `torch.tensor_split` cuts it);
- DDP averages the ranks' gradients, so each rank's loss is multiplied by
  world * (its slice) / (the global batch): the average is then the gradient of the global batch's
  mean loss, exactly as one process computes it, uneven last batch included. This holds because
  every term of the loss is a mean over the batch's samples: L_task and the soft-target term are,
  and so is MoDE's L_KD when every sample has a pair of experts (the dense gate, or top-k with
  k >= 2) and counts the same number of positions (tabular, CNN and ViT models; text with padding
  is a mean over real tokens, weighted here by samples);
- the per-step losses and the epoch's train metrics are all-reduced and the validation metrics are
  broadcast from rank 0, so every rank sees the same numbers and makes the same decisions
  (non-finite loss, best epoch, early stopping); once an epoch the ranks check that their weights
  are still the same.

Two things differ from one process (measured in docs/scaling.md): the top-k gate's balance loss
E * sum_i f_i P_i is computed from each rank's slice (a product of two batch means does not
average over slices), and the noisy top-k gate's noise is drawn per rank. The dense gate has no
randomness and matches one process to float rounding.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from modekit.errors import UserError
from modekit.training.objectives import StepLoss


def launched() -> bool:
    """True in a process that torchrun (or another launcher setting RANK and WORLD_SIZE) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def main_process() -> bool:
    """False only on the ranks > 0 of a launch: they train, but only rank 0 prints and writes files."""
    return os.environ.get("RANK", "0") in ("", "0")


@dataclass(frozen=True)
class Ranks:
    """The processes training one model: this process's rank, their number and this rank's device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def noise_seed(self, seed: int) -> int:
        """The seed of this rank's gate noise: `seed` itself on rank 0 (one process: unchanged), an
        independent stream per other rank (numpy's SeedSequence spawn keys), so that no two ranks
        draw the same noise for their samples."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence(seed, spawn_key=(self.rank,)).generate_state(1, np.uint64)[0])

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training steps call: DDP around `model` when distributed (its gradients are
        averaged over the ranks in backward), else `model` itself."""
        if not self.distributed:
            return model
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def sharding(self, n_samples: int, batch_size: int) -> Sharding:
        """This rank's slice of every global batch of an epoch of `n_samples` (checked before training)."""
        return Sharding(self, n_samples, batch_size)

    def agree(self, values: torch.Tensor) -> torch.Tensor:
        """Rank 0's `values` on every rank (e.g. validation metrics, which decide best epoch and early stopping)."""
        if not self.distributed:
            return values
        shared = values.to(self.device)
        dist.broadcast(shared, 0)
        return shared.to(values.device)

    def check_same_weights(self, model: nn.Module, epoch: int) -> None:
        """Raise unless every rank holds the same weights (a fingerprint of them, all-reduced once an
        epoch). DDP keeps them equal; a training step that bypassed its gradient all-reduce (a
        functional or compiled step that does not call the DDP module) would let them drift apart."""
        if not self.distributed:
            return
        with torch.no_grad():
            weights = [p.detach().double() for p in model.parameters()]
            fingerprint = torch.nan_to_num(torch.stack([sum(w.sum() for w in weights), sum((w * w).sum() for w in weights)]))
        bounds = torch.cat([fingerprint, -fingerprint]).to(self.device)
        dist.all_reduce(bounds, op=dist.ReduceOp.MAX)  # (max, -min) over the ranks
        if not torch.equal(bounds[:2], -bounds[2:]):
            raise RuntimeError(f"the {self.world} ranks' weights differ after epoch {epoch}: their gradients were not all-reduced")

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        summed = values.clone()
        if self.distributed:
            dist.all_reduce(summed)
        return summed


def current_ranks(device: torch.device) -> Ranks:
    """The ranks of this run: one process (rank 0 of 1 on `device`) unless torchrun launched it or the
    caller initialised a process group. A launched process joins the group on first use (gloo on
    CPU, NCCL on CUDA with device cuda:LOCAL_RANK) and leaves it when the process exits."""
    grouped = dist.is_available() and dist.is_initialized()
    if not grouped and not launched():
        return Ranks(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        torch.cuda.set_device(device)
    if not grouped:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
        atexit.register(_leave)
    return Ranks(dist.get_rank(), dist.get_world_size(), device)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class Sharding:
    """Which samples of each global batch this rank trains on, and how its losses are weighted.

    A global batch of b samples is cut with `torch.tensor_split` into `world` slices (the first
    b % world ranks get one sample more); the last batch of an epoch may be smaller than the others.
    Every rank must get at least one sample of every batch (each step is one all-reduce that every
    rank joins): batch_size and the last batch must hold at least `world` samples.
    """

    def __init__(self, ranks: Ranks, n_samples: int, batch_size: int):
        self.ranks, self.n_samples = ranks, n_samples
        world, rank = ranks.world, ranks.rank
        steps = -(-n_samples // batch_size)
        last = n_samples - (steps - 1) * batch_size
        if batch_size < world:
            raise UserError(
                f"batch_size={batch_size} is not allowed with {world} processes: the global batch must hold at least one sample per process"
            )
        if last < world:
            raise UserError(
                f"batch_size={batch_size} is not allowed with {world} processes and {n_samples} training samples: the last batch would "
                f"hold {last} sample(s), fewer than the processes; choose a batch size for which {n_samples} % batch_size "
                f"is 0 or at least {world}"
            )
        full = torch.tensor_split(torch.arange(batch_size), world)[rank]
        tail = torch.tensor_split(torch.arange(last), world)[rank]
        # positions (in the epoch's permutation) of this rank's samples, batch after batch
        self.positions = torch.cat([(torch.arange(steps - 1)[:, None] * batch_size + full).flatten(), (steps - 1) * batch_size + tail])
        self.batch_size, self.steps = len(full), steps
        # world * slice / global batch, per step: DDP's average of the weighted losses' gradients is the global batch mean's
        self.weights = [world * len(full) / batch_size] * (steps - 1) + [world * len(tail) / last]
        self.sizes = [len(full)] * (steps - 1) + [len(tail)]

    def epoch(self, X: torch.Tensor, y: torch.Tensor, order: torch.Tensor, objective):
        """(X, y, order, batch_size, objective) for `train_epoch` on this rank, from the epoch's global `order`."""
        if not self.ranks.distributed:
            return X, y, order, self.batch_size, objective
        mine = order[self.positions.to(order.device)]
        return X[mine], y[mine], torch.arange(len(mine), device=order.device), self.batch_size, WeightedObjective(objective, self)

    def reduce(self, totals: torch.Tensor, means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's per-step losses (steps, 1) and train metric means (1, 3) of the global batches,
        from this rank's: the same numbers on every rank."""
        if not self.ranks.distributed:
            return totals, means
        # a weighted step loss is world * slice / batch * L_rank: their sum over ranks / world is the global batch's loss
        totals = self.ranks.all_sum(totals) / self.ranks.world
        return totals, self.ranks.all_sum(means * len(self.positions)) / self.n_samples


class WeightedObjective:
    """A rank's objective for one epoch: the loss on the rank's slice of step s, its backpropagated
    total multiplied by the step's weight world * slice / global batch (metrics unweighted)."""

    def __init__(self, objective, sharding: Sharding):
        self.objective, self.sharding, self.step = objective, sharding, 0

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepLoss:
        step, self.step = self.step, self.step + 1
        if step >= self.sharding.steps or len(y) != self.sharding.sizes[step]:
            raise RuntimeError(f"step {step} of {len(y)} samples does not match this rank's sharding ({self.sharding.steps} steps)")
        loss = self.objective(model, x, y)
        return loss._replace(total=loss.total * self.sharding.weights[step])
