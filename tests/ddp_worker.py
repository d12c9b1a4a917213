"""Run by tests/test_training_distributed.py under `torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py CASE OUT`.

models: trains each of CASES on every rank and writes each rank's weights, history and summary
to OUT/<case>-rank<r>.pt (a test helper: the kit itself writes on rank 0 only), then trains
without DDP and writes the error each rank raised to OUT/unsynchronised-rank<r>.txt.
nonfinite: `modekit train` through the CLI's main on data with one inf sample (so one rank's slice
holds it); exits with the CLI's code.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import torch

import modekit
from modekit.config import ModelConfig, TrainConfig

# 384 training samples, global batch 49: 7 batches of 49 (slices 25 + 24) and a last batch of 41 (21 + 20)
N_SAMPLES, BATCH = 600, 49
CASES = {
    "dense": (ModelConfig(n_experts=3), TrainConfig(alpha=0.1, epochs=3, batch_size=BATCH, lr=3e-3, weight_decay=1e-3, patience=0)),
    "topk": (ModelConfig(n_experts=4, gate="topk", top_k=2), TrainConfig(alpha=0.1, epochs=3, batch_size=BATCH, lr=3e-3, patience=0)),
}


def data():
    return modekit.load("subtasks2d", seed=0, n_samples=N_SAMPLES)


def poisoned_data():
    """The data with one training sample's features set to inf: its loss, on one rank, is not finite."""
    clean = data()
    X = clean.X_train.clone()
    X[7] = float("inf")
    return dataclasses.replace(clean, X_train=X)


def run_models(out: Path) -> None:
    from modekit.training.loop import train

    rank = int(os.environ["RANK"])
    for name, (model_config, train_config) in CASES.items():
        result = train(data(), model_config, train_config)
        record = {"state": result.model.state_dict(), "history": result.history.drop(columns="seconds").to_dict("records")}
        summary = {k: v for k, v in result.summary().items() if k != "train_seconds"}
        torch.save({**record, "summary": summary}, out / f"{name}-rank{rank}.pt")


def run_unsynchronised(out: Path) -> None:
    """Each rank trains its slices without DDP (as a step that bypassed DDP's hooks would): the ranks
    must notice that their weights differ. Writes the error each rank raised."""
    from modekit.training.distributed import Ranks
    from modekit.training.loop import train

    Ranks.wrap = lambda self, model: model
    model_config, train_config = CASES["dense"]
    try:
        train(data(), model_config, train_config.replace(epochs=1))
        message = "no error"
    except RuntimeError as error:
        message = str(error)
    (out / f"unsynchronised-rank{os.environ['RANK']}.txt").write_text(message)


def run_nonfinite() -> int:
    from modekit.cli import commands
    from modekit.cli import parser as cli

    commands._load = lambda args, seed=0: poisoned_data()
    return cli.main(["train", "--dataset", "subtasks2d", "--epochs", "2", "--batch-size", str(BATCH), "--device", "cpu"])


if __name__ == "__main__":
    case = sys.argv[1]
    if case == "models":
        run_models(Path(sys.argv[2]))
        run_unsynchronised(Path(sys.argv[2]))
    else:
        sys.exit(run_nonfinite())
