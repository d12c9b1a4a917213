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

`choose` decides per run (TrainConfig.compile): "auto" compiles on CPU, for the MLP backbone, when
the full batches expected for one shape repay a cold compilation (`pays_off`: planned models x
planned steps x the share of planned epochs the shape's models really ran, early stopping
included), or when that shape is already compiled in this process; never on CUDA (not measured there yet).
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from .config import ModelConfig, TrainConfig
from .device import autocast
from .objectives import MoDEObjective, mode_loss, step_metrics

# Measured on the project's 2-core CPU, one thread, nothing else running (docs/architecture.md,
# "Measured decisions"): compiling a shape inductor's on-disk cache has not seen takes ~19 s when it
# is the process's first compilation (inductor's own start-up included) and ~12 s after that (~5 s
# with the cache warm); the compiled step saves ~1.0 ms per full batch of 128 (`letter`: 0.98 ms in
# `modekit bench`; 1.5 ms eager vs 0.5 ms compiled, about the same at the other tabular shapes).
FIRST_COMPILE_SECONDS = 19.0
NEXT_COMPILE_SECONDS = 12.0
SAVED_SECONDS_PER_STEP = 1.0e-3
RECOMPILE_LIMIT = 256  # one compiled graph per model shape and batch size; dynamo's default limit (8) is per function

_compiled = {}  # shape key -> CompiledStep's shared graph state (template); compiled once per process
_failed: dict = {}  # shape key -> why it could not be compiled (eager from then on)
_planned: dict = {}  # ModelConfig -> [models a caller announced it will train (population, compare), models trained since]
_ran: dict = {}  # ModelConfig -> (models trained in this process, their shares of planned epochs run, summed)
_warned: set = set()


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
        if key not in _compiled:  # the shape's template: one per shape, so its graph serves every model
            template = copy.deepcopy(model).to("meta").train()
            _compiled[key] = {"template": template, "function": (compiler or _compile)(training_step), "calls": 0}
        self.shared = _compiled[key]

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(total loss, metric sums) of one trained batch, or None when the shape could not be
        compiled (nothing was changed then: the caller takes the eager step)."""
        shared = self.shared
        if shared["calls"]:
            return shared["function"](shared["template"], self.state, xb, yb, self.hyper, self.device)
        if self.key in _failed:
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


@contextlib.contextmanager
def planned_models(model_config: ModelConfig, count: int):
    """Announce that `count` models of `model_config` (complete, as `model_config_for` returns it)
    will be trained in this block (populations, compare): "auto" then weighs their steps together."""
    before = _planned.get(model_config)
    if before is None or before[0] < count:  # a block of its own (an outer block that plans more keeps counting)
        _planned[model_config] = [count, 0]
    try:
        yield
    finally:
        if before is None:
            _planned.pop(model_config, None)
        else:
            _planned[model_config] = before


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


def pays_after_steps() -> int:
    """The full batches of one shape that repay compiling it cold in this process: a compilation's
    seconds (the first one pays inductor's start-up too) over the seconds saved per step."""
    seconds = NEXT_COMPILE_SECONDS if _compiled else FIRST_COMPILE_SECONDS
    return int(seconds / SAVED_SECONDS_PER_STEP)


def pays_off(model_config: ModelConfig, steps_per_model: int) -> bool:
    """ "auto"'s rule on CPU: the full batches expected for this shape repay compiling it. A model
    whose own planned steps (epochs x full batches per epoch) repay it compiles at once. Otherwise
    early stopping makes the planned steps only an upper bound (patience 10 on small data stops far
    earlier), so the first model of a shape trains eagerly and tells which share of its planned
    epochs it ran; then the models still to come that a caller announced (`planned_models`), times
    the planned steps, times that share, decide."""
    threshold = pays_after_steps()
    if steps_per_model >= threshold:
        return True
    if model_config not in _ran:
        return False
    models, shares = _ran[model_config]
    announced, trained = _planned.get(model_config, (1, 0))
    # expected steps = models still to come x planned steps per model x mean share of planned epochs run
    return max(1, announced - trained) * steps_per_model * shares / models >= threshold


def note_ran(model: nn.Module, objective, epochs_run: int, epochs: int) -> None:
    """`model` ran `epochs_run` of its `epochs` (early stopping): "auto" expects the next ones of its
    shape to run as long, and counts it against the models announced. Only runs that could have
    been compiled count (a OneS student keeps its teacher's config, under another objective)."""
    config = getattr(model, "config", None)
    if not isinstance(objective, MoDEObjective) or not isinstance(config, ModelConfig):
        return
    models, shares = _ran.get(config, (0, 0.0))
    _ran[config] = (models + 1, shares + epochs_run / epochs)
    if config in _planned:
        _planned[config][1] += 1


def warn_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"compile: training eagerly instead: {reason}", RuntimeWarning, stacklevel=3)


def choose(model: nn.Module, objective, optimizer, config: TrainConfig, device: torch.device, n_train: int) -> CompiledStep | None:
    """The compiled step for this run, or None for eager (config.compile: "auto", True or False)."""
    if config.compile is False or n_train < config.batch_size:
        return None
    key = shape_key(model, config.batch_size, device)
    reason = why_eager(model, objective, optimizer, device) or _failed.get(key)
    if reason:
        if config.compile is True:
            warn_once(reason)
        return None
    if config.compile == "auto" and key not in _compiled:
        if device.type != "cpu" or not pays_off(model.config, config.epochs * (n_train // config.batch_size)):
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
    _compiled.pop(key, None)
    _failed[key] = f"torch.compile failed ({type(cause).__name__}: {lines[0] if lines else ''})"
    warn_once(_failed[key])
    return None
