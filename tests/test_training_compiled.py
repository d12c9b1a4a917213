"""The compiled training step (modekit.training.compiled) against the eager reference.

Tolerance: over 3 epochs of 7 full batches (113 samples, batch 16: the 8th, ragged batch of 1 takes
the eager step each epoch), every history loss and every parameter of the compiled run is within
1e-5 of eager's (measured: ~4e-7; the graph fuses AdamW and computes its bias corrections in float32
where eager uses Python doubles). Gate noise: inductor runs with `fallback_random`, so the noisy
top-k gate draws the same noise as eager from the same generator (no noise is passed in).

Compilation costs ~15 s per shape with inductor, so inductor compiles two shapes (dense, top-k) once
for the module; the compilation count and the fallback use dynamo's counting backend (no inductor).
"""

import warnings

import pandas as pd
import pytest
import torch
from torch._dynamo.testing import CompileCounter

from modekit.config import ModelConfig, TrainConfig
from modekit.data import load
from modekit.errors import UserError
from modekit.experiments.compare import compare_moe_mode
from modekit.nn import build_model, model_config_for
from modekit.training import compiled
from modekit.training.loop import make_optimizer, train, train_epoch
from modekit.training.objectives import MoDEObjective
from modekit.training.population import sweep_configs, train_population

TOLERANCE = 1e-5
TINY = {"n_experts": 4, "expert_hidden": 8, "expert_out": 8}
RUN = {"epochs": 3, "batch_size": 16, "alpha": 0.1, "patience": 0, "progress": False}


@pytest.fixture(scope="module")
def wine():
    data = load("wine")
    assert len(data.y_train) % RUN["batch_size"], "the ragged last batch (eager) must be part of the test"
    return data


def _epochs_by_hand(data, model_config, compile_step: bool):
    """RUN's epochs through `train_epoch` directly: (final parameters, every step's total loss)."""
    cpu = torch.device("cpu")
    config = TrainConfig(**RUN)
    model = build_model(model_config_for(data, model_config), 0)
    optimizer = make_optimizer(model.parameters(), config, cpu)
    objective = MoDEObjective(config.alpha, config.balance_coef)
    step = compiled.CompiledStep(compiled.shape_key(model, config.batch_size, cpu), model, objective, optimizer) if compile_step else None
    torch.manual_seed(0)  # gate noise
    shuffle, totals = torch.Generator().manual_seed(0), []
    for _ in range(config.epochs):
        order = torch.randperm(len(data.y_train), generator=shuffle)
        totals.append(train_epoch(model, objective, optimizer, data.X_train, data.y_train, order, config.batch_size, cpu, step)[0])
    return model.state_dict(), torch.cat(totals)


@pytest.fixture(scope="module")
def runs(wine):
    """gate -> (eager result, compiled result, compiled again with the same seed), and by hand
    (eager (parameters, step losses), compiled (parameters, step losses))."""
    out = {}
    for gate in ("dense", "topk"):
        model_config = ModelConfig(gate=gate, **TINY)
        eager = train(wine, model_config, TrainConfig(compile=False, **RUN))
        first = train(wine, model_config, TrainConfig(compile=True, **RUN))
        second = train(wine, model_config, TrainConfig(compile=True, **RUN))
        out[gate] = eager, first, second
        out[gate, "by hand"] = _epochs_by_hand(wine, model_config, False), _epochs_by_hand(wine, model_config, True)
    return out


def _largest_difference(a, b) -> float:
    """Over the history's losses (every epoch) and the returned (best-epoch) parameters."""
    losses = (a.history[["task_loss", "distillation_loss"]] - b.history[["task_loss", "distillation_loss"]]).abs().to_numpy().max()
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    return max(float(losses), *(float((state_a[k] - state_b[k]).abs().max()) for k in state_a))


@pytest.mark.slow
@pytest.mark.parametrize("gate", ["dense", "topk"])
def test_compiled_step_equals_eager_within_tolerance(runs, gate):
    eager, compiled_run, _ = runs[gate]
    assert compiled.shape_key(compiled_run.model, RUN["batch_size"], torch.device("cpu")) in compiled.compiled_shapes(), (
        "the step was compiled"
    )
    assert len(eager.history) == len(compiled_run.history) == 2 * RUN["epochs"] + 1
    assert _largest_difference(eager, compiled_run) < TOLERANCE
    assert (eager.history.accuracy == compiled_run.history.accuracy).mean() > 0.8  # argmax flips only at exact ties


@pytest.mark.parametrize("gate", ["dense", "topk"])
def test_compiled_step_parameters_after_every_step_equal_eager(runs, gate, wine):
    """24 steps (3 epochs of 7 compiled + 1 eager): the final parameters and each step's loss."""
    (eager_state, eager_losses), (compiled_state, compiled_losses) = runs[gate, "by hand"]
    assert len(eager_losses) == 3 * 8 and float((eager_losses - compiled_losses).abs().max()) < TOLERANCE
    assert max(float((eager_state[k] - compiled_state[k]).abs().max()) for k in eager_state) < TOLERANCE
    start = build_model(model_config_for(wine, ModelConfig(gate=gate, **TINY)), 0).state_dict()
    assert max(float((compiled_state[k] - v).abs().max()) for k, v in start.items()) > 1e-2, "the steps moved the parameters"


@pytest.mark.parametrize("gate", ["dense", "topk"])
def test_compiled_step_same_seed_same_result(runs, gate):
    _, first, second = runs[gate]
    assert _largest_difference(first, second) == 0.0


@pytest.fixture
def counting(monkeypatch):
    """torch.compile with dynamo's counting backend (no inductor), and a fresh per-process cache."""
    counter = CompileCounter()
    monkeypatch.setattr(compiled, "_compile", lambda f: torch.compile(f, backend=counter, dynamic=False, fullgraph=True))
    compiled.clear_cache()
    yield counter
    compiled.clear_cache()


def test_population_of_16_models_of_one_shape_compiles_once(counting, wine):
    base = TrainConfig(compile=True, **{**RUN, "epochs": 1})
    configs = sweep_configs(base, alphas=[0.0, 0.01, 0.1, 1.0], seeds=[0, 1, 2, 3])
    configs = [c.replace(weight_decay=0.01 * (i % 2)) for i, c in enumerate(configs)]  # weight decay differs too
    results = train_population(wine, ModelConfig(**TINY), configs, vectorise=False, progress=False)
    assert len(results) == 16 and len({r.test_accuracy for r in results}) > 1
    assert counting.frame_count == 1, f"{counting.frame_count} compilations for 16 models of one shape"
    # a second shape (another batch size) is a second graph
    train(wine, ModelConfig(**TINY), base.replace(batch_size=8))
    assert counting.frame_count == 2


def test_compile_failure_falls_back_to_eager_with_one_warning(counting, wine, monkeypatch):
    def unavailable(function):
        raise RuntimeError("torch.compile is not supported on this platform")

    monkeypatch.setattr(compiled, "_compile", unavailable)
    config = TrainConfig(compile=True, **RUN)
    eager = train(wine, ModelConfig(**TINY), config.replace(compile=False))
    with pytest.warns(RuntimeWarning, match="training eagerly instead: torch.compile failed"):
        fallback = train(wine, ModelConfig(**TINY), config)
    assert _largest_difference(eager, fallback) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: the second run of the shape is silent
        train(wine, ModelConfig(**TINY), config)


def test_compile_error_at_the_first_step_falls_back_to_eager(counting, wine, monkeypatch):
    def compiled_function(*args):  # what torch.compile's result does when inductor finds no compiler
        raise RuntimeError("backend='inductor' raised") from OSError("no C++ compiler found")

    monkeypatch.setattr(compiled, "_compile", lambda f: compiled_function)
    config = TrainConfig(compile=True, **RUN)
    eager = train(wine, ModelConfig(**TINY), config.replace(compile=False))
    with pytest.warns(RuntimeWarning, match=r"torch.compile failed \(OSError: no C\+\+ compiler found\)"):
        fallback = train(wine, ModelConfig(**TINY), config)
    assert _largest_difference(eager, fallback) == 0.0


def test_auto_is_decided_from_the_plan_alone(counting, wine):
    model_config = ModelConfig(**TINY)
    full = model_config.replace(n_features=wine.n_features, n_classes=wine.n_classes, backbone="mlp")
    cpu, config = torch.device("cpu"), TrainConfig(**RUN)
    steps = RUN["epochs"] * (113 // RUN["batch_size"])  # full batches of one model
    enough = -(-compiled.FIRST_COMPILE_SECONDS // (compiled.SAVED_SECONDS_PER_STEP * steps))  # models that repay a compilation
    assert RUN["patience"] == 0, "no early stopping: a plan expects every epoch"
    assert compiled.resolve_compile(full, config, 113, cpu, models=int(enough)) is True
    assert compiled.resolve_compile(full, config, 113, cpu, models=int(enough) - 1) is False
    assert compiled.resolve_compile(full, config, 113, torch.device("cuda"), models=10**6) is False, "not measured on CUDA"
    assert compiled.resolve_compile(full.replace(backbone="cnn"), config, 113, cpu, models=10**6) is False, "only the MLP"
    assert compiled.resolve_compile(full, config, 3, cpu, models=10**6) is False, "no full batch"
    assert compiled.resolve_compile(full, config.replace(compile=True), 113, cpu) is True
    assert compiled.resolve_compile(full, config.replace(compile=False), 113, cpu, models=10**6) is False
    kit_model = build_model(full, 0)
    optimizer = make_optimizer(kit_model.parameters(), config, cpu)
    assert compiled.choose(torch.nn.Linear(1, 1), None, None, config, cpu, 113) is None, "not a kit model: never compiled"
    assert compiled.choose(kit_model, MoDEObjective(), optimizer, config, cpu, 113) is None, "one model's plan does not repay it"
    # what the process did before does not move the decision: a compiled run of the same shape changes nothing
    train(wine, model_config, config.replace(compile=True))
    assert counting.frame_count == 1
    assert compiled.choose(kit_model, MoDEObjective(), optimizer, config, cpu, 113) is None
    long_enough = config.replace(epochs=int(enough) * RUN["epochs"])
    assert isinstance(compiled.choose(kit_model, MoDEObjective(), optimizer, long_enough, cpu, 113), compiled.CompiledStep)
    # early stopping: a plan expects at most EPOCHS_PER_PATIENCE x patience epochs of each model
    stopping = long_enough.replace(patience=2)
    assert compiled.expected_epochs(stopping) == compiled.EPOCHS_PER_PATIENCE * 2
    assert compiled.choose(kit_model, MoDEObjective(), optimizer, stopping, cpu, 113) is None


def test_a_population_decides_auto_once_for_all_its_members(counting, wine, monkeypatch):
    import modekit.training.population as population

    seen = []
    real = population.train
    monkeypatch.setattr(
        population, "train", lambda data, model_config, config: seen.append(config.compile) or real(data, model_config, config)
    )
    config = TrainConfig(**{**RUN, "epochs": 1})
    train_population(wine, ModelConfig(**TINY), sweep_configs(config, [0.0, 0.1], [0, 1]), vectorise=False, progress=False)
    assert seen == [False] * 4, "4 one-epoch models do not repay a compilation: every member eager"
    seen.clear()
    many = sweep_configs(config.replace(epochs=1000), [0.0, 0.1], [0, 1])
    steps = compiled.FIRST_COMPILE_SECONDS / compiled.SAVED_SECONDS_PER_STEP
    assert (
        4 * many[0].epochs * (len(wine.y_train) // RUN["batch_size"]) >= steps > many[0].epochs * (len(wine.y_train) // RUN["batch_size"])
    )
    monkeypatch.setattr(population, "train", lambda data, model_config, config: seen.append(config.compile))
    train_population(wine, ModelConfig(**TINY), many, vectorise=False, progress=False)
    assert seen == [True] * 4, "together the members repay it, though one alone would not: every member compiled"


def test_compare_decides_compile_from_the_whole_plan_of_each_shape(counting, wine, monkeypatch):
    import modekit.experiments.compare as compare

    planned = {}  # (experts, hidden) -> the models of the plan at each seed
    real = compare.resolve_compile

    def recording(model_config, config, n_train, device, models=1):
        planned.setdefault((model_config.n_experts, model_config.expert_hidden), []).append(models)
        return real(model_config, config, n_train, device, models)

    monkeypatch.setattr(compare, "resolve_compile", recording)
    compare_moe_mode([wine], seeds=[0, 1, 2], model_config=ModelConfig(**TINY), train_config=TrainConfig(**{**RUN, "epochs": 1}),
                     alphas=[0.1, 1.0], progress=False, baselines=True)  # fmt: skip
    experts, hidden = TINY["n_experts"], TINY["expert_hidden"]
    # MoE and MoDE share a shape: 3 seeds x (2 alphas + 2 weight decays) at every seed; each dense baseline 3 seeds
    assert planned == {(experts, hidden): [12, 12, 12], (1, hidden): [3, 3, 3], (1, hidden * experts): [3, 3, 3]}


@pytest.mark.slow
def test_compare_with_one_or_two_workers_gives_the_same_table_when_auto_compiles(wine, tmp_path):
    """The plan (2 seeds x 2 models x 200 planned epochs x 28 full batches of 4) repays a
    compilation, so "auto" compiles in every worker, whichever runs which unit: identical tables."""
    from modekit.executors import close_executor, make_executor

    config = TrainConfig(**{**RUN, "batch_size": 4, "epochs": 200, "patience": 70})
    full = model_config_for(wine, ModelConfig(**TINY))
    assert compiled.resolve_compile(full, config, len(wine.y_train), torch.device("cpu"), models=2 * 2), "the plan must make auto compile"
    tables = []
    for workers in (1, 2):
        executor = make_executor("pool", workers, "cpu", units=2)
        try:
            table = compare_moe_mode([wine], seeds=[0, 1], model_config=ModelConfig(**TINY), train_config=config, alphas=[0.1],
                                     progress=False, executor=executor)  # fmt: skip
        finally:
            close_executor(executor)
        tables.append(table.drop(columns=["train_seconds"]).sort_values(["model", "seed"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_compile_field_is_validated(value):
    with pytest.raises(UserError, match=r"compile=.* is not allowed: compile must be one of 'auto', True, False"):
        TrainConfig(compile=value)
