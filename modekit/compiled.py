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
the run plans enough full batches of one shape to repay a cold compilation (`PAYS_AFTER_STEPS`),
or when that shape is already compiled in this process; never on CUDA (not measured there yet).
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

# Measured by `modekit bench` on the project's 2-core CPU, one thread (docs/architecture.md): a cold
# compilation of one shape takes ~25 s (~4 s with inductor's on-disk cache warm); the compiled step
# saves ~0.45 ms per batch of 128 at the `letter` shape. 25 s / 0.45 ms ~ 55,000 steps.
COLD_COMPILE_SECONDS = 25.0
SAVED_SECONDS_PER_STEP = 0.45e-3
PAYS_AFTER_STEPS = int(COLD_COMPILE_SECONDS / SAVED_SECONDS_PER_STEP)
RECOMPILE_LIMIT = 256  # one compiled graph per model shape and batch size; dynamo's default limit (8) is per function

_compiled = {}  # shape key -> CompiledStep's shared graph state (template); compiled once per process
_failed: dict = {}  # shape key -> why it could not be compiled (eager from then on)
_planned: dict = {}  # ModelConfig -> models a caller announced it will train (population, compare)
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
    before = _planned.get(model_config, 0)
    _planned[model_config] = max(before, count)
    try:
        yield
    finally:
        if before:
            _planned[model_config] = before
        else:
            _planned.pop(model_config, None)


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


def pays_off(model_config: ModelConfig, steps_per_model: int) -> bool:
    """ "auto"'s rule on CPU: the full batches planned for this shape (this model's epochs x full
    batches per epoch, times the models a caller announced) repay a cold compilation."""
    return steps_per_model * max(1, _planned.get(model_config, 1)) >= PAYS_AFTER_STEPS


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
