"""The training loop's adapter to the results store (modekit.store): a trained model is saved as a
unit (summary, history, weights, RNG state) under a hash of what decides it, and a rerun of an
interrupted run reuses it instead of training again."""

from __future__ import annotations

import pandas as pd
import torch

from modekit.config import ModelConfig, TrainConfig
from modekit.data import Dataset
from modekit.device import resolve_device
from modekit.nn import build_model, model_config_for
from modekit.store import ResultsStore, active_store, data_checksum, pack_state, unpack_state
from modekit.training.objectives import MoDEObjective
from modekit.training.result import TrainResult

UNIT = "model"  # the store's kind for one trained model


def _look_up(store: ResultsStore, data, model_config, config, device, objective, model):
    """(key, unit, the stored TrainResult or None) of one `train` call."""
    unit = unit_config(model_config, config, device, objective=objective, start=model)
    key = store.key(UNIT, unit, data_checksum(data))
    row = store.peek(key)
    return key, unit, None if row is None else stored_result(store, key, row, model_config, config, device, model)


def stored_model(data: Dataset, model_config: ModelConfig | None, train_config: TrainConfig) -> TrainResult | None:
    """What `train(data, model_config, train_config)` would reuse from the active store (counted as
    reused), else None; trains nothing. Lets an executor skip units that are already done."""
    store = active_store()
    if store is None:
        return None
    model_config = model_config_for(data, model_config)
    device = resolve_device(train_config.device)
    objective = MoDEObjective(train_config.alpha, train_config.balance_coef).prepare(device)
    return _look_up(store, data, model_config, train_config, device, objective, None)[2]


def unit_config(model_config: ModelConfig, config: TrainConfig, device, objective=None, start=None, vectorised: bool = False) -> dict:
    """What decides one trained model: the store's key is a hash of it (progress bars do not count)."""
    # compile is left out: compiled and eager steps agree within float rounding (tests/test_compiled.py)
    training = {k: v for k, v in config.to_dict().items() if k not in ("progress", "device", "compile")}
    return {"model": model_config.to_dict(), "train": training, "device": str(device), "objective": objective,
            "start": start, "vectorised": vectorised}  # fmt: skip


def save_result(store: ResultsStore, key: str, unit: dict, result: TrainResult, rng_state: torch.Tensor | None = None) -> None:
    """One trained model into the store: its summary, history, weights and the RNG state after training."""
    metrics = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "train_seconds": result.train_seconds,
               "val_accuracy": result.val_accuracy, "test_accuracy": result.test_accuracy, "device": result.device}  # fmt: skip
    state = pack_state({"model": result.model.state_dict(), "rng": torch.get_rng_state() if rng_state is None else rng_state})
    label = f"alpha={result.train_config.alpha} seed={result.train_config.seed} experts={result.model_config.n_experts}"
    store.put(key, UNIT, unit, metrics, result.history.to_dict("records"), state, label)


def stored_result(store: ResultsStore, key: str, row: dict, model_config, config, device, model=None):
    """The TrainResult stored in `row` (store.peek(key)): weights loaded into `model` or a new one,
    RNG state restored, and the reuse counted."""
    store.reuse(key, UNIT)
    state = unpack_state(row["state"], device)
    model = (model or build_model(model_config, config.seed)).to(device)
    model.load_state_dict(state["model"])
    torch.set_rng_state(state["rng"])
    m = row["metrics"]
    history = pd.DataFrame(row["history"])
    return TrainResult(model, history, config, model_config, m["best_epoch"], m["epochs_run"], m["train_seconds"], m["val_accuracy"],
                       m["test_accuracy"], m["device"])  # fmt: skip
