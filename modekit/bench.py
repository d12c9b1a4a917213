"""Train-step throughput at the reference shape (docs/architecture.md): samples per second.

Shape: 54 features, expert hidden 128, 7 classes, 4 experts, batch 2048 (Covertype-like).
Measured: the ModuleList reference loop, stacked experts, and populations of K = 16 and K = 64
models trained vectorised (vmap over stacked parameters) and one by one. Each figure follows
warm-up steps and is timed with device synchronisation.
"""

from __future__ import annotations

import copy
import platform

import torch
from torch.func import stack_module_state

from .config import ModelConfig, TrainConfig
from .device import autocast, resolve_device, synchronize
from .executors import available_cores
from .nn import build_model
from .objectives import mode_loss
from .population import vectorised_functions
from .train import make_optimizer

BENCH_SHAPE = {"n_features": 54, "expert_hidden": 128, "expert_out": 128, "n_classes": 7, "n_experts": 4}
BENCH_BATCH = 2048


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _timed(step, device, warmup: int, repeats: int) -> float:
    """Median seconds per call of `step` over `repeats` timed calls after warm-up
    (torch.utils.benchmark: one call per measurement, CUDA synchronised)."""
    import torch.utils.benchmark as benchmark  # imported here: importing it warns on a machine without CUDA

    for _ in range(warmup):
        step()
    synchronize(device)
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.timeit(repeats).mean  # one timed block of `repeats` calls


def _single_model_step(model, device, batch):
    optimizer = make_optimizer(model.parameters(), TrainConfig(), device)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, BENCH_SHAPE["n_features"], generator=generator).to(device)
    y = torch.randint(0, BENCH_SHAPE["n_classes"], (batch,), generator=generator).to(device)

    def step():
        with autocast(device):
            out = model(x)
        loss = mode_loss(out, y, 0.1, 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()

    return step


def _population_steps(k: int, device, batch):
    """(vectorised step, one-by-one step) for a population of k models; each call trains all k once."""
    config = ModelConfig(**BENCH_SHAPE)
    models = [build_model(config, seed).to(device) for seed in range(k)]
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")
    batched_step, _ = vectorised_functions(template, 0.0)
    optimizer = make_optimizer(list(params.values()), TrainConfig(), device)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(k, batch, BENCH_SHAPE["n_features"], generator=generator).to(device)
    y = torch.randint(0, BENCH_SHAPE["n_classes"], (k, batch), generator=generator).to(device)
    alphas = torch.full((k,), 0.1, device=device)

    def vectorised():
        with autocast(device):
            total, _ = batched_step(params, buffers, x, y, alphas)
        optimizer.zero_grad(set_to_none=True)
        total.sum().backward()
        optimizer.step()

    singles = [_single_model_step(model, device, batch) for model in models]

    def one_by_one():
        for step in singles:
            step()

    return vectorised, one_by_one


def run_bench(device: str = "auto", populations=(16, 64), batch: int = BENCH_BATCH, repeats: int | None = None) -> dict:
    """Measure every configuration; returns a JSON-ready dict of samples/s and ratios."""
    dev = resolve_device(device)
    fast = dev.type == "cuda"
    repeats = repeats or (50 if fast else 5)
    warmup = 10 if fast else 2
    config = ModelConfig(**BENCH_SHAPE)
    stacked = build_model(config, 0).to(dev)
    reference = build_model(config, 0, reference=True).to(dev)
    rows = {}
    seconds = _timed(_single_model_step(reference, dev, batch), dev, warmup, repeats)
    rows["reference_loop"] = batch / seconds
    seconds = _timed(_single_model_step(stacked, dev, batch), dev, warmup, repeats)
    rows["stacked"] = batch / seconds
    for k in populations:
        vectorised, one_by_one = _population_steps(k, dev, batch)
        pop_repeats = max(2, repeats // 4) if not fast else repeats
        rows[f"population_k{k}_vectorised"] = k * batch / _timed(vectorised, dev, warmup, pop_repeats)
        rows[f"population_k{k}_one_by_one"] = k * batch / _timed(one_by_one, dev, 1, pop_repeats)
    ratios = {"stacked_over_reference": rows["stacked"] / rows["reference_loop"]}
    for k in populations:
        ratios[f"k{k}_vectorised_over_one_by_one"] = rows[f"population_k{k}_vectorised"] / rows[f"population_k{k}_one_by_one"]
    return {
        "device": device_name(dev),
        "torch": torch.__version__,
        "batch": batch,
        "shape": BENCH_SHAPE,
        "samples_per_second": {k: round(v, 1) for k, v in rows.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
    }


def ones_bench(device: str = "auto", batch_sizes=(1, 32, 256, 1024)) -> list[dict]:
    """OneS inference speed: a top-2 of 4 experts text-transformer teacher (routed inference) vs its
    SVD-gathered dense student (same shapes as the synthetic text task), eval mode."""
    from .data import load
    from .gathering import make_student
    from .ones_experiment import inference_speed, speed_summary, teacher_config

    data = load("synthtext", n_samples=400)
    teacher = build_model(teacher_config(data), seed=0)
    student = make_student(teacher, "svd")
    table = speed_summary(inference_speed(teacher, student, data.X_test, batch_sizes, device))
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in table.to_dict("records")]


def format_bench(report: dict) -> str:
    lines = []
    if "samples_per_second" in report:
        lines += [f"device: {report['device']}  torch {report['torch']}  batch {report['batch']}", ""]
        lines.append(f"{'train step: configuration':<34} {'samples/s':>14}")
        for name, value in report["samples_per_second"].items():
            lines.append(f"{name:<34} {value:>14,.0f}")
        lines.append("")
        for name, value in report["ratios"].items():
            lines.append(f"{name:<34} {value:>13.2f}x")
    if "workers" in report:
        w = report["workers"]
        lines += ["", f"CPU population: {w['models']} models of {w['dataset']}, {w['epochs']} epochs, local process pools, "
                      f"one torch thread per worker ({w['cores']} cores); tables identical: {w['tables_identical']}"]  # fmt: skip
        lines += [f"{n + ' worker(s)':<34} {v:>10.3f} models/s" for n, v in w["models_per_second"].items()]
        lines += [f"{'speedup ' + name.replace('_', ' '):<34} {v:>9.2f}x" for name, v in w["speedup"].items()]
    if "ones_inference" in report:
        lines += [
            "",
            "OneS inference (text transformer, teacher top-2 of 4 experts, routed; student dense):",
            f"{'device':<7} {'batch':>6} {'teacher/s':>12} {'student/s':>12} {'speedup':>8} {'FLOP bound':>11}",
        ]
        for row in report["ones_inference"]:
            lines.append(
                f"{row['device']:<7} {row['batch']:>6} {row['teacher_samples_per_s']:>12,.0f} {row['student_samples_per_s']:>12,.0f} "
                f"{row['speedup']:>7.2f}x {row['flop_ratio_bound']:>10.2f}x"
            )
    return "\n".join(lines)


def _warm_up(_: int) -> int:
    """A unit that only imports the training code: started workers are then ready to train."""
    from . import population  # noqa: F401

    return 0


def workers_bench(workers=(1, 2), models: int = 8, epochs: int = 30, dataset: str = "letter") -> dict:
    """A CPU population of `models` models (one alpha, `models` seeds) trained in local process pools
    of each size in `workers`, one torch thread per worker: models/s per pool from one run, the same
    population each time (the pools are started and warmed up before the clock starts). The tables
    are checked equal, as the executors promise."""
    import time

    from .data import load
    from .executors import map_units, process_pool
    from .population import sweep_configs, train_population
    from .train import results_frame

    data = _letter_or_embedded() if dataset == "letter" else load(dataset, seed=0)
    configs = sweep_configs(TrainConfig(epochs=epochs, patience=0, progress=False, device="cpu"), [0.1], range(models))
    rows, tables = {}, []
    for n in workers:
        pool = process_pool(n)
        try:
            map_units(pool, _warm_up, [(i,) for i in range(n)])
            start = time.perf_counter()
            results = train_population(data, None, configs, vectorise=False, progress=False, executor=pool)
            rows[n] = models / (time.perf_counter() - start)
        finally:
            pool.shutdown()
        tables.append(results_frame(results).drop(columns="train_seconds"))
    identical = all(t.equals(tables[0]) for t in tables[1:])
    return {
        "dataset": data.name,
        "models": models,
        "epochs": epochs,
        "cores": available_cores(),
        "models_per_second": {str(n): round(v, 3) for n, v in rows.items()},
        "speedup": {f"{n}_over_{workers[0]}": round(rows[n] / rows[workers[0]], 3) for n in workers[1:]},
        "tables_identical": identical,
    }


def _letter_or_embedded():
    """Letter (16 features, 26 classes: the tabular shape of the laptop profile) when its files are
    under MODEKIT_DATA, else the embedded digits table."""
    from .data import load
    from .errors import UserError

    try:
        return load("letter", seed=0).subsample_train(4000, seed=0)
    except UserError:
        return load("digits", seed=0)
