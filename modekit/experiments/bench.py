"""Train-step throughput and its distance to the machine's limit (docs/architecture.md).

Measured in one run: the machine's float32 matmul rate (one matmul of the bench's size, on the
run's threads), then per model shape and batch the training step (forward, losses, backward,
AdamW) as samples/s and as a share of that matmul rate: the ModuleList reference loop, the
stacked experts eagerly, and the stacked experts as the compiled step (modekit.training.compiled), with the
compilation's time and the number of models after which it pays off. At the Covertype-like shape
and batch 2048 also populations of K models trained vectorised (vmap over stacked parameters) and
one by one. Each figure follows warm-up steps and is timed with device synchronisation.
"""

from __future__ import annotations

import contextlib
import copy
import platform
import time

import torch
from torch.func import stack_module_state

from modekit.config import ModelConfig, TrainConfig
from modekit.device import autocast, resolve_device, synchronize
from modekit.executors import available_cores
from modekit.nn import build_model
from modekit.profiles import PROFILES
from modekit.training.compiled import CompiledStep, shape_key
from modekit.training.loop import make_optimizer
from modekit.training.objectives import MoDEObjective, mode_loss
from modekit.training.population import vectorised_functions

BENCH_SHAPE = {"n_features": 54, "expert_hidden": 128, "expert_out": 128, "n_classes": 7, "n_experts": 4}
BENCH_BATCH = 2048
# model shapes of the step table: `letter` (the full tabular profile's first set) and Covertype-like
SHAPES = {
    "letter": {"n_features": 16, "expert_hidden": 64, "expert_out": 64, "n_classes": 26, "n_experts": 4},
    "covertype": BENCH_SHAPE,
}
STEP_BATCHES = (128, 2048)
MATMUL = (2048, 128, 128)  # (n, k, m): the bench shape's largest matmul, a batch of 2048 through a 128-wide layer
ALPHA = 0.1  # MoDE's L_KD is part of every timed step
# "pays off after N models": a model of the full tabular profile's epochs over letter's 12,800 training samples
PAYOFF_EPOCHS, PAYOFF_SAMPLES = PROFILES["full"]["epochs"]["tabular"], 12_800


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _timed(step, device, warmup: int, repeats: int | None, min_run_s: float = 1.0) -> float:
    """Seconds per call of `step` after warm-up (torch.utils.benchmark, CUDA synchronised): the mean
    of `repeats` calls, or with repeats=None the median over blocks filling `min_run_s`."""
    import torch.utils.benchmark as benchmark  # imported here: importing it warns on a machine without CUDA

    for _ in range(warmup):
        step()
    synchronize(device)
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.timeit(repeats).mean if repeats else timer.blocked_autorange(min_run_time=min_run_s).median


def matmul_flops_per_second(device, repeats: int | None = None, size=MATMUL) -> float:
    """The machine's float32 matmul rate (FLOP/s) at `size` (n, k, m) on this run's threads: the
    best block of a second's calls (other work on shared cores only ever slows a block down)."""
    import torch.utils.benchmark as benchmark

    n, k, m = size
    a, b = torch.randn(n, k, device=device), torch.randn(k, m, device=device)
    for _ in range(3):
        torch.mm(a, b)
    synchronize(device)
    timer = benchmark.Timer(stmt="torch.mm(a, b)", globals={"torch": torch, "a": a, "b": b}, num_threads=torch.get_num_threads())
    seconds = timer.timeit(repeats).mean if repeats else min(timer.blocked_autorange(min_run_time=1.0).times)
    # an (n, k) @ (k, m) matmul is n m k multiply-adds: 2 n k m FLOPs
    return 2 * n * k * m / seconds


def step_flops(shape: dict, batch: int) -> int:
    """Matmul FLOPs of one training step of the tabular MoE (dense gate) on `batch` samples.

    forward, per sample (d features, E experts, h hidden, p expert output, C classes; 2 FLOPs per
    multiply-add): gate 2 d E + experts 2 E (d h + h p) + tower 2 p C;
    step = forward + backward = 3 x forward (the backward's two matmuls per layer: dX and dW).
    Elementwise work (ReLU, softmax, L_KD, AdamW) is not counted: the share is of the matmul rate.
    """
    d, h, p, c, e = (shape[k] for k in ("n_features", "expert_hidden", "expert_out", "n_classes", "n_experts"))
    forward = 2 * batch * (d * e + e * (d * h + h * p) + p * c)
    return 3 * forward


def _batch(shape: dict, device, batch: int, leading: tuple = ()):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*leading, batch, shape["n_features"], generator=generator).to(device)
    y = torch.randint(0, shape["n_classes"], (*leading, batch), generator=generator).to(device)
    return x, y


def _single_model_step(model, device, batch, shape=BENCH_SHAPE):
    optimizer = make_optimizer(model.parameters(), TrainConfig(), device)
    x, y = _batch(shape, device, batch)

    def step():
        with autocast(device):
            out = model(x)
        loss = mode_loss(out, y, ALPHA, 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()

    return step


def _compiled_step(shape: dict, device, batch: int):
    """(step, seconds its first call took: the compilation) of the compiled step for `shape`."""
    model = build_model(ModelConfig(**shape), 0).to(device)
    optimizer = make_optimizer(model.parameters(), TrainConfig(), device)
    compiled = CompiledStep(shape_key(model, batch, device), model, MoDEObjective(ALPHA, 0.0), optimizer)
    x, y = _batch(shape, device, batch)
    start = time.perf_counter()
    if compiled(x, y) is None:  # could not compile here (warned): no compiled figures
        return None, None
    synchronize(device)
    return (lambda: compiled(x, y)), time.perf_counter() - start


def _empty_compile_cache():
    """A context in which torch.compile starts from an empty, temporary kernel cache, so the bench's
    compilation time is what a first run on this machine pays (the budget `compile="auto"` uses) and
    not what a rerun that finds the kernels of an earlier run cached pays (0.4-1.8 s against 5-18 s
    cold, measured)."""
    from torch._inductor import utils

    fresh = getattr(utils, "fresh_cache", None) or getattr(utils, "fresh_inductor_cache", None)
    return fresh() if fresh is not None else contextlib.nullcontext()


def _population_steps(k: int, device, batch):
    """(vectorised step, one-by-one step) for a population of k models; each call trains all k once."""
    config = ModelConfig(**BENCH_SHAPE)
    models = [build_model(config, seed).to(device) for seed in range(k)]
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")
    batched_step, _ = vectorised_functions(template, 0.0)
    optimizer = make_optimizer(list(params.values()), TrainConfig(), device)
    x, y = _batch(BENCH_SHAPE, device, batch, (k,))
    alphas = torch.full((k,), ALPHA, device=device)

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


def _step_rows(dev, shapes, batches, repeats, compile: bool) -> tuple[list[dict], list[dict]]:
    """(one row per shape x batch x configuration, one compilation row per shape x batch)."""
    warmup = 10 if dev.type == "cuda" else 3
    rows, compilations = [], []
    for name in shapes:
        shape = SHAPES[name]
        for batch in batches:
            steps = {
                "reference loop (eager)": _single_model_step(
                    build_model(ModelConfig(**shape), 0, reference=True).to(dev), dev, batch, shape
                ),
                "stacked (eager)": _single_model_step(build_model(ModelConfig(**shape), 0).to(dev), dev, batch, shape),
            }
            if compile:
                step, seconds = _compiled_step(shape, dev, batch)
                if step is not None:
                    steps["stacked (compiled)"] = step
            times = {config: _timed(step, dev, warmup, repeats) for config, step in steps.items()}
            for configuration, per_step in times.items():
                rows.append({"shape": name, "batch": batch, "configuration": configuration, "seconds_per_step": per_step,
                             "samples_per_s": batch / per_step, "flop_per_s": step_flops(shape, batch) / per_step})  # fmt: skip
            if "stacked (compiled)" in times:
                saved = times["stacked (eager)"] - times["stacked (compiled)"]
                steps_per_model = PAYOFF_EPOCHS * (PAYOFF_SAMPLES // batch)
                models = seconds / (saved * steps_per_model) if saved > 0 else float("inf")
                compilations.append({"shape": name, "batch": batch, "compile_seconds": seconds, "saved_per_step_s": saved,
                                     "pays_off_after_models": models})  # fmt: skip
    return rows, compilations


def run_bench(
    device: str = "auto",
    populations=(16, 64),
    batch: int = BENCH_BATCH,
    repeats: int | None = None,
    shapes=tuple(SHAPES),
    batches=STEP_BATCHES,
    compile: bool = True,
) -> dict:
    """Measure every configuration; returns a JSON-ready dict. `repeats`: timed calls per figure
    (None: blocks of at least a second each, the median); `populations` at `batch` and the bench
    shape; `compile=False` leaves the compiled step (and its ~20 s compilation per shape) out."""
    dev = resolve_device(device)
    rate = matmul_flops_per_second(dev, repeats)
    with _empty_compile_cache() if compile else contextlib.nullcontext():
        rows, compilations = _step_rows(dev, shapes, batches, repeats, compile)
    rate = max(rate, matmul_flops_per_second(dev, repeats))  # measured before and after the steps: the better one
    for row in rows:
        row["share_of_matmul"] = row["flop_per_s"] / rate
    speeds = {}
    for k in populations:
        vectorised, one_by_one = _population_steps(k, dev, batch)
        pop_repeats = repeats and max(2, repeats // 4)
        speeds[f"population_k{k}_vectorised"] = k * batch / _timed(vectorised, dev, 2, pop_repeats)
        speeds[f"population_k{k}_one_by_one"] = k * batch / _timed(one_by_one, dev, 1, pop_repeats)
    ratios = {}
    for name in shapes:
        for b in batches:
            times = {r["configuration"]: r["seconds_per_step"] for r in rows if r["shape"] == name and r["batch"] == b}
            ratios[f"{name}_b{b}_stacked_over_reference"] = times["reference loop (eager)"] / times["stacked (eager)"]
            if "stacked (compiled)" in times:
                ratios[f"{name}_b{b}_compiled_over_eager"] = times["stacked (eager)"] / times["stacked (compiled)"]
    for k in populations:
        ratios[f"k{k}_vectorised_over_one_by_one"] = speeds[f"population_k{k}_vectorised"] / speeds[f"population_k{k}_one_by_one"]
    return {
        "device": device_name(dev),
        "torch": torch.__version__,
        "matmul": {"size": list(MATMUL), "flop_per_s": rate},
        "steps": rows,
        "compilations": compilations,
        "batch": batch,
        "shape": BENCH_SHAPE,
        "samples_per_second": {k: round(v, 1) for k, v in speeds.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
    }


def format_bench(report: dict) -> str:
    lines = []
    if "steps" in report:
        n, k, m = report["matmul"]["size"]
        lines += [f"device: {report['device']}  torch {report['torch']}",
                  f"float32 matmul ({n}x{k} @ {k}x{m}), this run: {report['matmul']['flop_per_s'] / 1e9:.1f} GFLOP/s", "",
                  "train step (MoDE, dense gate, AdamW; FLOPs = 3 x forward matmul FLOPs):",
                  f"{'shape':<10} {'batch':>5}  {'configuration':<24} {'us/step':>9} {'samples/s':>11} {'GFLOP/s':>8} "
                  f"{'of matmul':>9}"]  # fmt: skip
        for row in report["steps"]:
            lines.append(
                f"{row['shape']:<10} {row['batch']:>5}  {row['configuration']:<24} {row['seconds_per_step'] * 1e6:>9,.0f} "
                f"{row['samples_per_s']:>11,.0f} {row['flop_per_s'] / 1e9:>8.1f} {row['share_of_matmul']:>8.0%}"
            )
        if report["compilations"]:
            each = f"{PAYOFF_EPOCHS} epochs x {PAYOFF_SAMPLES:,} samples each"
            lines += ["", f"compiled step: compilation (in an empty kernel cache), and models ({each}) after which it pays off:"]
            for row in report["compilations"]:
                lines.append(
                    f"{row['shape']:<10} {row['batch']:>5}  compile {row['compile_seconds']:>6.1f} s  "
                    f"saves {row['saved_per_step_s'] * 1e6:>7,.0f} us/step  pays off after {row['pays_off_after_models']:.1f} models"
                )
    if report.get("samples_per_second"):
        lines += ["", f"populations at the covertype shape, batch {report['batch']}:", f"{'configuration':<34} {'samples/s':>14}"]
        for name, value in report["samples_per_second"].items():
            lines.append(f"{name:<34} {value:>14,.0f}")
    if report.get("ratios"):
        lines.append("")
        for name, value in report["ratios"].items():
            lines.append(f"{name:<40} {value:>7.2f}x")
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
    from modekit.training import population  # noqa: F401

    return 0


def workers_bench(workers=(1, 2), models: int = 8, epochs: int = 30, dataset: str = "letter") -> dict:
    """A CPU population of `models` models (one alpha, `models` seeds) trained in local process pools
    of each size in `workers`, one torch thread per worker: models/s per pool from one run, the same
    population each time (the pools are started and warmed up before the clock starts). The tables
    are checked equal, as the executors promise."""
    import time

    from modekit.data import load
    from modekit.executors import map_units, process_pool
    from modekit.training.population import sweep_configs, train_population
    from modekit.training.result import results_frame

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
    from modekit.data import load
    from modekit.errors import UserError

    try:
        return load("letter", seed=0).subsample_train(4000, seed=0)
    except UserError:
        return load("digits", seed=0)
