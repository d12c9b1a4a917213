"""Populations: K independent models (an alpha x seed sweep) trained in one run.

Vectorised: the K models' parameters are stacked (`torch.func.stack_module_state`) and one plain
model is run over them with `vmap(functional_call)`; one AdamW over the stacked tensors equals K
optimisers because Adam is elementwise and the summed loss gives each member its own gradient.
Measured (docs/architecture.md): ~45x the aggregate samples/s of one-by-one training for K = 64 on
an H100, but 0.3-0.6x on a 2-core CPU. So `vectorise="auto"` vectorises on CUDA only. Both paths
share the training loop's epoch machinery (`EpochTracker`, `step_metrics`, `mode_loss`).

Axis legend: k members, b batch, d features.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import pandas as pd
import torch
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from modekit.config import ModelConfig, TrainConfig
from modekit.data import Dataset
from modekit.device import autocast, resolve_device, tf32_allowed
from modekit.errors import UserError
from modekit.executors import map_units
from modekit.nn import build_model, model_config_for
from modekit.store import active_store, data_checksum
from modekit.training.compiled import resolve_compile
from modekit.training.loop import EVAL_BATCH, EpochTracker, check_fits_memory, make_optimizer, train
from modekit.training.objectives import mode_loss, step_metrics
from modekit.training.result import TrainResult
from modekit.training.resume import UNIT, save_result, stored_model, stored_result, unit_config

# fields that may differ between members of one vectorised population
PER_MEMBER_FIELDS = ("alpha", "seed")


def sweep_configs(base: TrainConfig, alphas: Sequence[float], seeds: Sequence[int]) -> list[TrainConfig]:
    """The alpha x seed grid as a list of configs (alpha-major order)."""
    return [base.replace(alpha=float(a), seed=int(s)) for a in alphas for s in seeds]


def train_population(
    data: Dataset,
    model_config: ModelConfig | None,
    train_configs: Sequence[TrainConfig],
    vectorise: bool | str = "auto",
    progress: bool = True,
    executor=None,
) -> list[TrainResult]:
    """Train every config's model; member k equals `train(data, model_config, train_configs[k])`.

    vectorise: "auto" (CUDA: yes, CPU: no), True or False. executor (modekit.executors): where the
    units run; a population trained one by one is one unit per member, a vectorised one is one unit.
    """
    configs = list(train_configs)
    if not configs:
        raise UserError("train_configs=[] is not allowed: give at least one TrainConfig (at least one alpha and one seed)")
    if vectorise not in ("auto", True, False):
        raise UserError(f"vectorise={vectorise!r} is not allowed: vectorise must be 'auto', True or False")
    device = resolve_device(configs[0].device)
    full_config = model_config_for(data, model_config)
    if vectorise == "auto":  # vmap is shown (tests, bench) for the MLP backbone; others train one by one
        vectorise = device.type == "cuda" and len(configs) > 1 and full_config.backbone == "mlp"
    if not vectorise:  # compile="auto" is decided here, once, for all the members trained one by one (one shape)
        configs = [c.replace(compile=resolve_compile(full_config, c, len(data.y_train), device, len(configs))) for c in configs]
    if executor is not None and not vectorise:  # one unit per model not in the store yet
        results = [stored_model(data, model_config, c) for c in configs]
        missing = [k for k, r in enumerate(results) if r is None]
        with tqdm(total=len(missing), desc="population", disable=not progress, leave=False) as bar:
            trained = map_units(executor, train, [(data, model_config, configs[k]) for k in missing], bar)
        for k, result in zip(missing, trained):
            results[k] = result
        return results
    if executor is not None:  # a vectorised population is one unit
        return map_units(executor, train_population, [(data, model_config, configs, True, False)])[0]
    if not vectorise:
        members = tqdm(configs, desc="population", disable=not progress, leave=False)
        return [train(data, model_config, c) for c in members]
    check_fits_memory(full_config, len(configs))
    store = active_store()
    if store is None:
        with tf32_allowed(device):
            return _train_vectorised(data, full_config, configs, device, progress)
    # stored per member, reused only as a whole: the members share one draw of gate noise
    units = [unit_config(full_config, c, device, vectorised=True) for c in configs]
    keys = [store.key(UNIT, unit, data_checksum(data)) for unit in units]
    rows = [store.peek(key) for key in keys]
    if all(row is not None for row in rows):
        return [stored_result(store, key, row, full_config, c, device) for key, row, c in zip(keys, rows, configs)]
    with tf32_allowed(device):
        results = _train_vectorised(data, full_config, configs, device, progress)
    rng_state = torch.get_rng_state()
    for key, unit, result in zip(keys, units, results):
        save_result(store, key, unit, result, rng_state)
    return results


def _check_shared(configs: list[TrainConfig]) -> TrainConfig:
    shared = configs[0]
    for config in configs[1:]:
        for field, value in config.to_dict().items():
            if field not in PER_MEMBER_FIELDS and value != getattr(shared, field):
                raise UserError(
                    f"{field}={value!r} differs between population members ({getattr(shared, field)!r} for the "
                    f"first): a vectorised population may differ only in {', '.join(PER_MEMBER_FIELDS)}; "
                    "use vectorise=False"
                )
    return shared


def vectorised_functions(template, balance_coef: float):
    """vmap'd (train step, eval) of one plain model over stacked parameters.

    step(params, buffers, x (k, b, d), y (k, b), alpha (k,)) -> total loss (k,), sums (k, 3)
    eval(params, buffers, x (b, d), y (b,)) -> sums (k, 3) of `step_metrics`
    """

    def member_step(p, b, xb, yb, alpha):
        loss = mode_loss(functional_call(template, (p, b), (xb,)), yb, alpha, balance_coef)
        return loss.total, step_metrics(loss, yb)

    def member_eval(p, b, xb, yb):
        return step_metrics(mode_loss(functional_call(template, (p, b), (xb,)), yb, 0.0, 0.0), yb)

    return (
        vmap(member_step, randomness="different"),
        vmap(member_eval, in_dims=(0, 0, None, None), randomness="different"),
    )


def _train_vectorised(data, model_config, configs, device, progress) -> list[TrainResult]:
    shared = _check_shared(configs)
    k = len(configs)
    models = [build_model(model_config, c.seed).to(device) for c in configs]
    params, buffers = stack_module_state(models)  # name -> (k, ...) leaf tensors
    template = copy.deepcopy(models[0]).to("meta")
    alphas = torch.tensor([c.alpha for c in configs], device=device)
    optimizer = make_optimizer(list(params.values()), shared, device)
    torch.manual_seed(shared.seed)  # gate noise (vmap draws different noise per member)
    shuffles = [torch.Generator().manual_seed(c.seed) for c in configs]
    batched_step, batched_eval = vectorised_functions(template, shared.balance_coef)
    X, y = data.X_train.to(device), data.y_train.to(device)
    best = {name: tensor.detach().clone() for name, tensor in params.items()}
    tracker, start = EpochTracker(configs), time.perf_counter()
    for epoch in tqdm(range(1, shared.epochs + 1), desc=f"population k={k}", disable=not progress, leave=False):
        order = torch.stack([torch.randperm(len(y), generator=g) for g in shuffles]).to(device)  # (k, n)
        template.train()
        totals, sums = _vectorised_epoch(batched_step, optimizer, params, buffers, X, y, order, alphas, shared.batch_size, device)
        template.eval()  # no gate noise while evaluating
        val = _evaluate_members(batched_eval, params, buffers, data.X_val.to(device), data.y_val.to(device), device)
        improved = tracker.end_epoch(epoch, totals, sums / len(y), val, time.perf_counter() - start)
        if improved.any():
            index = improved.nonzero().flatten().to(device)
            for name, tensor in params.items():
                best[name][index] = tensor.detach()[index]
        if tracker.finished:
            break
    amortised = (time.perf_counter() - start) / k  # the population's wall time shared by its members
    results = []
    for member, config in enumerate(configs):
        model = build_model(model_config, config.seed).to(device)
        model.load_state_dict({name: tensor[member] for name, tensor in best.items()})
        results.append(tracker.result(member, model, data, model_config, amortised, device))
    return results


def _vectorised_epoch(batched_step, optimizer, params, buffers, X, y, order, alphas, batch: int, device):
    """One epoch of every member: (step totals (steps, k), metric sums (k, 3))."""
    k, n = order.shape
    steps = -(-n // batch)
    totals, sums = torch.zeros(steps, k, device=device), torch.zeros(k, 3, device=device)
    for step in range(steps):
        index = order[:, step * batch : (step + 1) * batch]  # (k, b)
        with autocast(device):
            total, member_sums = batched_step(params, buffers, X[index], y[index], alphas)
        optimizer.zero_grad(set_to_none=True)
        total.sum().backward()  # members share no parameters: each gets its own gradient
        optimizer.step()
        totals[step] = total.detach()
        sums += member_sums.detach()
    return totals, sums


@torch.no_grad()
def _evaluate_members(batched_eval, params, buffers, X, y, device) -> torch.Tensor:
    """(k, 3): task loss, L_KD, accuracy of every member on one split (eval mode)."""
    sums = 0
    for start in range(0, len(y), EVAL_BATCH):
        with autocast(device):
            sums = sums + batched_eval(params, buffers, X[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH])
    return (sums / len(y)).float().cpu()


def population_history(results: Sequence[TrainResult]) -> pd.DataFrame:
    """All members' histories in one tidy frame with their alpha and seed."""
    frames = [r.history.assign(alpha=r.train_config.alpha, seed=r.train_config.seed) for r in results]
    return pd.concat(frames, ignore_index=True)


def summarise(results_table: pd.DataFrame, by: str = "alpha", metric: str = "test_accuracy") -> pd.DataFrame:
    """Mean, std and count of a metric per group (e.g. per alpha over seeds)."""
    return results_table.groupby(by)[metric].agg(["mean", "std", "count"]).reset_index()
