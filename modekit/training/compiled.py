"""The compiled training step: forward, losses, backward and AdamW in one `torch.compile`d graph,
compiled once per model shape and reused by every model of that shape (docs/architecture.md,
"Measured decisions").

The step is functional (`torch.func.functional_call` + `grad_and_value`): the parameters and
AdamW's state are its inputs and are updated in place, and alpha, the balance weight, lr, weight
decay, betas and eps are 0-d tensors, never Python floats (dynamo specialises on floats), so a new
seed, alpha or weight decay reuses the compiled graph. The AdamW state is the optimizer's own
(`exp_avg`, `exp_avg_sq`, `step`): an eager step (the ragged last batch of an epoch, whose shape
differs) continues exactly where a compiled one stopped. Eager stays the reference and the
fallback: no C++ compiler, `torch.compile` unavailable or raising -> one warning, then eager.

Gate noise: inductor runs with `fallback_random`, so the noisy top-k gate draws its noise from the
global generator with eager's own kernel, in eager's order: compiled and eager see the same noise.

Whether a run compiles is decided by whoever holds the plan, from that plan alone
(`resolve_compile`): `train` for one model, a population for its members, `compare` for every model
of a dataset's shape over all its seeds. "auto" compiles on CPU, for the MLP backbone, when the full
batches the plan trains at one shape (models x epochs x full batches per epoch) repay a cold
compilation; the resolved True / False travels down in the TrainConfig. Nothing the process did
before changes the decision, so a table does not depend on how its units were spread over workers.
Compiled graphs are memoised per shape (`_GRAPHS`), which saves time and changes no number.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from modekit.config import ModelConfig, TrainConfig
from modekit.device import autocast
from modekit.training.objectives import MoDEObjective, mode_loss, step_metrics

# Measured on the project's 2-core CPU, one thread, nothing else running (docs/architecture.md,
# "Measured decisions"): compiling a shape inductor's on-disk cache has not seen takes ~19 s when it
# is the process's first compilation (inductor's own start-up included) and ~12 s after that (~5 s
# with the cache warm); the compiled step saves ~1.0 ms per full batch of 128 (`letter`: 0.98 ms in
# `modekit bench`; 1.5 ms eager vs 0.5 ms compiled, about the same at the other tabular shapes).
FIRST_COMPILE_SECONDS = 19.0
SAVED_SECONDS_PER_STEP = 1.0e-3
# Early stopping with patience 10 stopped the fast profile's `wine` models at about 20 of 60 epochs and
# the full profile's `magic` and `penbased` ones at 57-100% of theirs: a plan expects 3 x patience at most.
EPOCHS_PER_PATIENCE = 3
RECOMPILE_LIMIT = 256  # one compiled graph per model shape and batch size; dynamo's default limit (8) is per function

# Memoisation only (no decision reads them): a shape's compiled graph, built once per process and
# shared by every model of that shape; a shape whose compilation failed (eager from then on, warned once).
_GRAPHS: dict = {}
_FAILED: dict = {}
_WARNED: set = set()


def clear_cache() -> None:
    """Forget every compiled graph and failed shape of this process (the next run compiles anew)."""
    _GRAPHS.clear()
    _FAILED.clear()
    _WARNED.clear()


def compiled_shapes() -> list:
    """The shape keys (`shape_key`) whose graph this process has compiled and run."""
    return [key for key, graph in _GRAPHS.items() if graph["calls"]]


def functional_adamw_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, weight_decay, beta1, beta2, eps) -> None:
    """torch.optim.AdamW's single-tensor update (torch/optim/adamw.py), in place, every
    hyperparameter a 0-d tensor:
        theta <- theta (1 - lr wd);  m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
        theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)"""
    for name, param in params.items():
        grad, exp_avg, exp_avg_sq, step = grads[name], exp_avgs[name], exp_avg_sqs[name], steps[name]
        step.add_(1)
        param.mul_(1 - lr * weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / (1 - beta2**step).sqrt()).add_(eps)
        param.sub_(lr / (1 - beta1**step) * exp_avg / denom)


def training_step(template, state, x, y, hyper, device: torch.device):
    """One MoDE step of the model `template` (a meta-device copy) with `state` = (params, buffers,
    exp_avgs, exp_avg_sqs, steps) (name -> tensor dicts, updated in place) and `hyper` =
    (alpha, balance_coef, lr, weight_decay, beta1, beta2, eps) (0-d tensors); the forward runs
    under the kit's autocast (bf16 on CUDA, none on CPU), as the eager step's does.
    Returns (total loss, `step_metrics` sums (3,)) of the batch before the update."""
    params, buffers, exp_avgs, exp_avg_sqs, steps = state
    alpha, balance_coef, lr, weight_decay, beta1, beta2, eps = hyper

    def total_loss(parameters):
        with autocast(device):
            loss = mode_loss(functional_call(template, (parameters, buffers), (x,)), y, alpha, balance_coef)
        return loss.total, loss

    grads, (total, loss) = grad_and_value(total_loss, has_aux=True)(params)
    functional_adamw_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, weight_decay, beta1, beta2, eps)
    return total.detach(), step_metrics(loss, y).detach()


def _compile(function):
    # dynamic=False: one static graph per shape (automatic dynamic shapes would slow every shape down);
    # fallback_random: the gate noise is eager's (same generator, same kernel)
    return torch.compile(function, dynamic=False, fullgraph=True, options={"fallback_random": True})


class CompiledStep:
    """The compiled step bound to one model and its AdamW optimizer: `step(xb, yb)` trains one full
    batch and returns (total loss, metric sums (3,)); the model's parameters and the optimizer's
    state are updated in place."""

    def __init__(self, key, model: nn.Module, objective: MoDEObjective, optimizer: torch.optim.Optimizer, compiler=None):
        self.key = key
        group = optimizer.param_groups[0]
        named = dict(model.named_parameters())
        state = [optimizer.state[p] for p in named.values()]
        for p, s in zip(named.values(), state):
            if not s:  # AdamW's own lazy initialisation (torch/optim/adamw.py), done here so eager steps share it
                on_device = group["fused"] or group["capturable"]
                s["step"] = torch.zeros((), dtype=torch.float32, device=p.device if on_device else "cpu")
                s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.state = (
            {name: p.detach() for name, p in named.items()},
            {name: b.detach() for name, b in model.named_buffers()},
            {name: s["exp_avg"] for name, s in zip(named, state)},
            {name: s["exp_avg_sq"] for name, s in zip(named, state)},
            {name: s["step"] for name, s in zip(named, state)},
        )
        self.device = device = next(model.parameters()).device
        values = (objective.alpha, objective.balance_coef, group["lr"], group["weight_decay"], *group["betas"], group["eps"])
        self.hyper = tuple(torch.tensor(float(v), device=device) for v in values)
        if key not in _GRAPHS:  # the shape's template: one per shape, so its graph serves every model
            template = copy.deepcopy(model).to("meta").train()
            _GRAPHS[key] = {"template": template, "function": (compiler or _compile)(training_step), "calls": 0}
        self.shared = _GRAPHS[key]

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(total loss, metric sums) of one trained batch, or None when the shape could not be
        compiled (nothing was changed then: the caller takes the eager step)."""
        shared = self.shared
        if shared["calls"]:
            return shared["function"](shared["template"], self.state, xb, yb, self.hyper, self.device)
        if self.key in _FAILED:
            return None
        try:  # the first call compiles (dynamo counts graphs per function: one per shape here)
            with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
                out = shared["function"](shared["template"], self.state, xb, yb, self.hyper, self.device)
        except Exception as error:  # no C++ compiler, an unsupported platform or operation
            return fail(self.key, error)
        shared["calls"] += 1
        return out


def shape_key(model: nn.Module, batch_size: int, device: torch.device):
    """What one compiled graph serves: the model's class, config and parameter shapes (a OneS
    student keeps its teacher's config but not its layers), the batch size, the device."""
    shapes = tuple((name, tuple(p.shape)) for name, p in model.named_parameters())
    return type(model).__qualname__, getattr(model, "config", None), shapes, batch_size, str(device)


def why_eager(model: nn.Module, objective, optimizer, device: torch.device) -> str | None:
    """Why this run cannot use the compiled step, or None when it can."""
    if not isinstance(objective, MoDEObjective):
        return f"the objective {type(objective).__name__} is not compiled (only MoDEObjective)"
    if not isinstance(getattr(model, "config", None), ModelConfig) or model.config.backbone not in ("mlp", "auto"):
        return "only the MLP (tabular) backbone is compiled"
    if len(optimizer.param_groups) != 1 or not isinstance(optimizer, torch.optim.AdamW):
        return "the optimizer is not one AdamW parameter group"
    group = optimizer.param_groups[0]
    if group["amsgrad"] or group["maximize"] or group["differentiable"] or group["foreach"]:
        return "AdamW with amsgrad / maximize / differentiable / foreach is not compiled"
    if device.type not in ("cpu", "cuda"):
        return f"device {device.type} is not compiled"
    return None


def pays_off(steps: int) -> bool:
    """ "auto"'s rule on CPU: `steps` full batches at one shape (all the models a plan trains there)
    save more than a cold compilation costs."""
    # compile when steps x seconds saved per step >= seconds of a cold compilation
    return steps * SAVED_SECONDS_PER_STEP >= FIRST_COMPILE_SECONDS


def expected_epochs(config: TrainConfig) -> int:
    """The epochs a plan expects one model to run: all of them without early stopping, else at most
    EPOCHS_PER_PATIENCE x patience (early stopping cuts the planned epochs; a rule of the plan, not a
    measurement of this process, so that every process decides alike)."""
    return config.epochs if not config.patience else min(config.epochs, EPOCHS_PER_PATIENCE * config.patience)


def resolve_compile(model_config: ModelConfig, config: TrainConfig, n_train: int, device, models: int = 1) -> bool:
    """config.compile as True / False for a plan of `models` models of `model_config` trained by
    `config` on `n_train` samples: "auto" compiles on CPU, for the MLP backbone, when their expected
    full batches repay a compilation (`pays_off`). True / False are returned as they are."""
    if isinstance(config.compile, bool):
        return config.compile
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type != "cpu" or model_config.backbone not in ("mlp", "auto") or n_train < config.batch_size:
        return False
    return pays_off(models * expected_epochs(config) * (n_train // config.batch_size))


def warn_once(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        warnings.warn(f"compile: training eagerly instead: {reason}", RuntimeWarning, stacklevel=3)


def choose(model: nn.Module, objective, optimizer, config: TrainConfig, device: torch.device, n_train: int) -> CompiledStep | None:
    """The compiled step for this run, or None for eager. config.compile: True / False as a caller
    resolved it from its plan, or "auto", resolved here for a plan of this one model."""
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, ModelConfig) or not resolve_compile(model_config, config, n_train, device):
        return None
    if n_train < config.batch_size:  # no full batch to compile
        return None
    key = shape_key(model, config.batch_size, device)
    reason = why_eager(model, objective, optimizer, device) or _FAILED.get(key)
    if reason:
        if config.compile is True:
            warn_once(reason)
        return None
    try:
        return CompiledStep(key, model, objective, optimizer)
    except Exception as error:  # torch.compile unavailable on this platform
        return fail(key, error)


def fail(key, error: Exception) -> None:
    """Remember that `key` cannot be compiled, warn once, and let the caller train eagerly."""
    cause = error
    while cause.__cause__ is not None:  # dynamo wraps the backend's error (e.g. no C++ compiler)
        cause = cause.__cause__
    lines = str(cause).strip().splitlines()
    _GRAPHS.pop(key, None)
    _FAILED[key] = f"torch.compile failed ({type(cause).__name__}: {lines[0] if lines else ''})"
    warn_once(_FAILED[key])
    return None
