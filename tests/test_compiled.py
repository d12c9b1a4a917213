"""The compiled training step (modekit.compiled) against the eager reference.

Tolerance: over 3 epochs of 7 full batches (113 samples, batch 16: the 8th, ragged batch of 1 takes
the eager step each epoch), every history loss and every parameter of the compiled run is within
1e-5 of eager's (measured: ~4e-7; the graph fuses AdamW and computes its bias corrections in float32
where eager uses Python doubles). Gate noise: inductor runs with `fallback_random`, so the noisy
top-k gate draws the same noise as eager from the same generator (no noise is passed in).

Compilation costs ~15 s per shape with inductor, so inductor compiles two shapes (dense, top-k) once
for the module; the compilation count and the fallback use dynamo's counting backend (no inductor).
"""

import warnings

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from modekit import compiled
from modekit.compare import compare_moe_mode
from modekit.config import ModelConfig, TrainConfig
from modekit.data import load
from modekit.errors import UserError
from modekit.nn import build_model, model_config_for
from modekit.objectives import MoDEObjective
from modekit.population import sweep_configs, train_population
from modekit.train import make_optimizer, train, train_epoch

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


@pytest.mark.parametrize("gate", ["dense", "topk"])
def test_compiled_step_equals_eager_within_tolerance(runs, gate):
    eager, compiled_run, _ = runs[gate]
    assert compiled.shape_key(compiled_run.model, RUN["batch_size"], torch.device("cpu")) in compiled._compiled, "the step was compiled"
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
    monkeypatch.setattr(compiled, "_compiled", {})
    monkeypatch.setattr(compiled, "_failed", {})
    monkeypatch.setattr(compiled, "_warned", set())
    monkeypatch.setattr(compiled, "_planned", {})
    monkeypatch.setattr(compiled, "_ran", {})
    return counter


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


def test_auto_compiles_only_when_the_expected_steps_repay_the_compilation(counting, wine):
    model_config = ModelConfig(**TINY)
    full = model_config.replace(n_features=wine.n_features, n_classes=wine.n_classes, backbone="mlp")
    cpu = torch.device("cpu")
    model = torch.nn.Linear(1, 1)  # not a kit model: never compiled
    config = TrainConfig(**RUN)
    assert compiled.choose(model, None, None, config, cpu, 113) is None
    kit_model = build_model(full, 0)
    optimizer = make_optimizer(kit_model.parameters(), config, cpu)

    def chosen(config=config):
        return compiled.choose(kit_model, MoDEObjective(), optimizer, config, cpu, 113)

    steps = RUN["epochs"] * (113 // RUN["batch_size"])  # planned full batches per model
    enough = -(-compiled.pays_after_steps() // steps)  # models whose full planned steps repay a compilation
    assert chosen() is None
    compiled.note_ran(kit_model, object(), RUN["epochs"], RUN["epochs"])  # another objective (OneS's KD): never compiled, not counted
    assert full not in compiled._ran
    with compiled.planned_models(full, enough + 1):
        assert chosen() is None, "the first model of a shape trains eagerly: early stopping may cut its planned steps"
        compiled.note_ran(kit_model, MoDEObjective(), RUN["epochs"], RUN["epochs"])  # it ran every planned epoch: `enough` models to come
        assert compiled._planned[full] == [enough + 1, 1] and isinstance(chosen(), compiled.CompiledStep)
    assert full not in compiled._planned
    compiled._compiled.clear()
    with compiled.planned_models(full, enough + 1):  # the same shape, but its models stop at half their epochs
        compiled.note_ran(kit_model, MoDEObjective(), 0, RUN["epochs"])  # the mean share of planned epochs run is now 1/2
        assert chosen() is None
    with compiled.planned_models(full, 2 * enough + 1):
        compiled.note_ran(kit_model, MoDEObjective(), RUN["epochs"] // 2, RUN["epochs"])
        assert compiled._ran[full] == (3, 1.0 + RUN["epochs"] // 2 / RUN["epochs"]) and chosen() is None  # share 4/9 < 1/2
        compiled.note_ran(
            kit_model, MoDEObjective(), RUN["epochs"], RUN["epochs"]
        )  # share 7/12 now: 2 * enough - 1 models to come repay it
        assert isinstance(chosen(), compiled.CompiledStep)
    compiled._compiled.clear()
    assert isinstance(chosen(config.replace(epochs=compiled.pays_after_steps())), compiled.CompiledStep), "a model long enough alone"
    assert chosen(config.replace(compile=False)) is None


def test_a_later_compilation_pays_off_sooner_than_the_first(counting, wine):
    # the first compilation of a process pays inductor's start-up: more steps must repay it
    first = compiled.pays_after_steps()
    assert first == int(compiled.FIRST_COMPILE_SECONDS / compiled.SAVED_SECONDS_PER_STEP)
    train(wine, ModelConfig(**TINY), TrainConfig(compile=True, **{**RUN, "epochs": 1}))
    assert compiled._compiled and compiled.pays_after_steps() == int(compiled.NEXT_COMPILE_SECONDS / compiled.SAVED_SECONDS_PER_STEP)
    assert compiled.pays_after_steps() < first


def test_compare_announces_the_models_still_to_come_of_a_shape_dense_baselines_included(counting, wine, monkeypatch):
    announced = {}  # (experts, hidden) -> the models planned for that shape, at each seed's first model of it
    real = compiled.pays_off

    def recording(model_config, steps_per_model):
        planned, trained = compiled._planned.get(model_config, [None, None])
        if trained == 0:
            announced.setdefault((model_config.n_experts, model_config.expert_hidden), []).append(planned)
        return real(model_config, steps_per_model)

    monkeypatch.setattr(compiled, "pays_off", recording)
    compare_moe_mode([wine], seeds=[0, 1, 2], model_config=ModelConfig(**TINY), train_config=TrainConfig(**{**RUN, "epochs": 1}),
                     alphas=[0.1, 1.0], progress=False, baselines=True)  # fmt: skip
    experts, hidden = TINY["n_experts"], TINY["expert_hidden"]
    # MoE and MoDE: (3, 2, 1 seeds to come) x (2 alphas + 2 weight decays); each dense baseline: 3, 2, 1 seeds
    assert announced == {(experts, hidden): [12, 8, 4], (1, hidden): [3, 2, 1], (1, hidden * experts): [3, 2, 1]}
    # every trained model told "auto" how many of its planned epochs it ran (here all: one epoch)
    assert {(c.n_experts, c.expert_hidden): ran for c, ran in compiled._ran.items()} == {
        (experts, hidden): (12, 12.0), (1, hidden): (3, 3.0), (1, hidden * experts): (3, 3.0)}  # fmt: skip


@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_compile_field_is_validated(value):
    with pytest.raises(UserError, match=r"compile=.* is not allowed: compile must be 'auto', True or False"):
        TrainConfig(compile=value)
