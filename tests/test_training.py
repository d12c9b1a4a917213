"""Training: alpha = 0 is plain MoE, CPU determinism, populations == separate models, errors."""

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import modekit as mk
from modekit.errors import NonFiniteLossError
from modekit.nn import build_model, model_config_for

FAST = dict(epochs=3, batch_size=64, progress=False)


def test_loss_decreases_and_model_learns(subtasks):
    result = mk.train(subtasks, mk.ModelConfig(), mk.TrainConfig(epochs=15, patience=0, progress=False))
    train = result.history[result.history.split == "train"]
    assert train.task_loss.iloc[-1] < 0.8 * train.task_loss.iloc[0]
    assert result.val_accuracy > 0.8  # chance is ~0.5


def test_history_is_tidy(subtasks):
    result = mk.train(subtasks, None, mk.TrainConfig(**FAST))
    h = result.history
    assert list(h.columns) == ["epoch", "split", "task_loss", "distillation_loss", "accuracy", "seconds"]
    assert set(h.split) == {"train", "val", "test"}
    assert len(h[h.split == "train"]) == result.epochs_run == 3
    assert h[h.split == "test"].accuracy.item() == result.test_accuracy


def test_alpha_zero_training_equals_plain_moe_training(subtasks):
    """A hand-written MoE loop with cross-entropy only (same seed, shuffles, optimiser) gives the
    same weights as modekit's loop with alpha = 0."""
    config = mk.TrainConfig(alpha=0.0, epochs=1, batch_size=64, patience=0, progress=False, seed=3)
    ours = mk.train(subtasks, None, config).model
    model_config = model_config_for(subtasks, None)
    plain = build_model(model_config, seed=3)
    optimizer = torch.optim.AdamW(plain.parameters(), lr=config.lr, weight_decay=0.0)
    torch.manual_seed(3)
    order = torch.randperm(len(subtasks.y_train), generator=torch.Generator().manual_seed(3))
    for start in range(0, len(order), 64):
        index = order[start : start + 64]
        loss = F.cross_entropy(plain(subtasks.X_train[index]).logits, subtasks.y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for a, b in zip(ours.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)


def test_alpha_changes_training(subtasks):
    moe = mk.train(subtasks, None, mk.TrainConfig(alpha=0.0, **FAST))
    mode = mk.train(subtasks, None, mk.TrainConfig(alpha=1.0, **FAST))
    moe_kd = moe.history[moe.history.split == "val"].distillation_loss.iloc[-1]
    mode_kd = mode.history[mode.history.split == "val"].distillation_loss.iloc[-1]
    assert mode_kd < moe_kd  # distillation pulls the experts together


def test_same_seed_gives_identical_metrics_on_cpu(subtasks):
    config = mk.TrainConfig(alpha=0.1, **FAST)
    first = mk.train(subtasks, mk.ModelConfig(gate="topk", top_k=1), config).history.drop(columns="seconds")
    second = mk.train(subtasks, mk.ModelConfig(gate="topk", top_k=1), config).history.drop(columns="seconds")
    pd.testing.assert_frame_equal(first, second)
    other = mk.train(subtasks, mk.ModelConfig(gate="topk", top_k=1), config.replace(seed=1)).history
    assert not other.drop(columns="seconds").equals(first)


def test_early_stopping_restores_best_epoch(subtasks):
    result = mk.train(subtasks, None, mk.TrainConfig(epochs=200, patience=2, lr=3e-2, progress=False))
    val = result.history[result.history.split == "val"]
    assert result.epochs_run < 200
    assert result.epochs_run - result.best_epoch == 2
    assert result.val_accuracy == val.accuracy.max()
    again = mk.evaluate(result.model, subtasks.X_val, subtasks.y_val)["accuracy"]
    assert again == pytest.approx(result.val_accuracy)


def test_nan_loss_names_epoch_and_step(subtasks):
    broken = mk.load("subtasks", seed=0, n_samples=600)
    broken.X_train[5, 2] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+"):
        mk.train(broken, None, mk.TrainConfig(**FAST))


def test_vectorised_population_member_equals_separate_model(subtasks):
    configs = mk.sweep_configs(mk.TrainConfig(**FAST), alphas=[0.0, 0.5], seeds=[0, 1])
    population = mk.train_population(subtasks, None, configs, vectorise=True, progress=False)
    for member, config in zip(population, configs):
        separate = mk.train(subtasks, None, config)
        assert member.train_config == config
        for a, b in zip(member.model.parameters(), separate.model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert member.test_accuracy == pytest.approx(separate.test_accuracy, abs=2 / len(subtasks.y_test))
        assert member.epochs_run == separate.epochs_run


def test_vectorised_population_with_noisy_topk_gate_trains(subtasks):
    """vmap draws different gate noise than a separate run, so only learning is checked here."""
    model_config = mk.ModelConfig(gate="topk", top_k=1)
    configs = mk.sweep_configs(mk.TrainConfig(epochs=10, progress=False), alphas=[0.0, 0.5], seeds=[0])
    for member in mk.train_population(subtasks, model_config, configs, vectorise=True, progress=False):
        assert member.val_accuracy > 0.7
        val = member.history[member.history.split == "val"]
        assert val.distillation_loss.notna().all()


def test_vectorised_population_early_stopping_per_member(subtasks):
    configs = mk.sweep_configs(mk.TrainConfig(epochs=40, patience=2, lr=3e-2, progress=False), [0.0, 3.0], [0, 1])
    vectorised = mk.train_population(subtasks, None, configs, vectorise=True, progress=False)
    one_by_one = mk.train_population(subtasks, None, configs, vectorise=False, progress=False)
    for a, b in zip(vectorised, one_by_one):
        assert (a.epochs_run, a.best_epoch) == (b.epochs_run, b.best_epoch)
        assert len(a.history) == len(b.history)
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=1e-6)


def test_population_rejects_members_differing_in_shared_fields(subtasks):
    configs = [mk.TrainConfig(**FAST), mk.TrainConfig(**{**FAST, "lr": 1e-2})]
    with pytest.raises(ValueError, match=r"lr=0.01 differs between population members"):
        mk.train_population(subtasks, None, configs, vectorise=True, progress=False)
    with pytest.raises(ValueError, match="vectorise='sometimes'"):
        mk.train_population(subtasks, None, configs, vectorise="sometimes")
    with pytest.raises(ValueError, match=r"train_configs=\[\]"):
        mk.train_population(subtasks, None, [])


def test_sweep_configs_grid():
    configs = mk.sweep_configs(mk.TrainConfig(), [0, 0.1], [0, 1, 2])
    assert [(c.alpha, c.seed) for c in configs] == [(a, s) for a in (0.0, 0.1) for s in (0, 1, 2)]


def test_resolve_device_rejects_missing_cuda():
    from modekit.device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda'"):
            resolve_device("cuda")


def test_results_frame_and_summary(subtasks):
    configs = mk.sweep_configs(mk.TrainConfig(**FAST), [0.0, 0.1], [0, 1])
    table = mk.results_frame(mk.train_population(subtasks, None, configs, progress=False), dataset="subtasks")
    from modekit.training.population import summarise

    summary = summarise(table)
    assert list(summary["count"]) == [2, 2]
    assert all(0 <= m <= 1 and not math.isnan(m) for m in summary["mean"])


def test_step_metrics_are_batch_sums_and_mode_loss_adds_the_balance_term():
    """step_metrics: (task * b, auxiliary * b, correct); mode_loss: task + alpha L_KD + coef L_balance."""
    from types import SimpleNamespace

    from modekit.training.objectives import StepLoss, mode_loss, step_metrics

    logits, targets = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 0, 0])
    metrics = step_metrics(StepLoss(torch.tensor(0.0), torch.tensor(0.5), torch.tensor(0.25), logits), targets)
    torch.testing.assert_close(metrics, torch.tensor([1.5, 0.75, 2.0]))
    output = SimpleNamespace(logits=logits, distillation_loss=torch.tensor(0.4), balance_loss=torch.tensor(2.0))
    loss = mode_loss(output, targets, 0.5, 0.1)
    task = F.cross_entropy(logits, targets)
    torch.testing.assert_close(loss.total, task + 0.5 * 0.4 + 0.1 * 2.0)
    torch.testing.assert_close(loss.auxiliary, torch.tensor(0.4))
