"""MoE vs MoDE, paired by seed: the MoDE paper's main comparison.

For each dataset, one population is trained: alpha = 0 (plain MoE) and a small log grid of alphas
around the paper's value for the domain, times the seeds. MoDE's alpha is chosen on the validation
split (mean over seeds), never on test; then test accuracies are compared seed by seed. Two dense
baselines (one expert) run beside them: the same compute (one expert of the same width) and the
same parameter count (one expert E times as wide).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config import ModelConfig, TrainConfig
from .data import Dataset, load
from .errors import UserError
from .nn import model_config_for
from .population import sweep_configs, train_population
from .profiles import ALPHA_GRID, paper_alpha_text
from .stats import paired_difference
from .train import results_frame


def compare_moe_mode(
    datasets: Sequence[str | Dataset],
    seeds: Sequence[int] = (0, 1, 2),
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    alphas: Sequence[float] | None = None,
    vectorise: bool | str = "auto",
    progress: bool = True,
    baselines: bool = False,
    max_train: int | None = None,
) -> pd.DataFrame:
    """Tidy results: one row per dataset x model x alpha x seed (model: MoE, MoDE, dense baselines)."""
    base = train_config or TrainConfig(progress=False)
    frames = []
    for entry in datasets:
        data = entry if isinstance(entry, Dataset) else load(entry)
        if max_train:
            data = data.subsample_train(max_train, seed=0)
        grid = tuple(alphas) if alphas is not None else ALPHA_GRID[data.domain]
        if any(a <= 0 for a in grid):
            raise UserError(f"alphas={list(grid)!r} is not allowed: MoDE alphas must be > 0 (alpha = 0, MoE, is always run)")
        configs = sweep_configs(base, (0.0, *grid), seeds)
        results = train_population(data, model_config, configs, vectorise=vectorise, progress=progress)
        frame = results_frame(results, dataset=data.name, domain=data.domain)
        frame["model"] = np.where(frame["alpha"] == 0, "MoE", "MoDE")
        frames.append(frame)
        if baselines:
            full = model_config_for(data, model_config)
            dense = {
                "dense (same compute)": full.replace(n_experts=1, top_k=1),
                "dense (same params)": full.replace(n_experts=1, top_k=1, expert_hidden=full.expert_hidden * full.n_experts),
            }
            for label, config in dense.items():
                results = train_population(data, config, sweep_configs(base, (0.0,), seeds), vectorise=vectorise, progress=progress)
                frames.append(results_frame(results, dataset=data.name, domain=data.domain).assign(model=label))
    return pd.concat(frames, ignore_index=True)


def choose_alpha(results: pd.DataFrame) -> pd.Series:
    """Per dataset, the MoDE alpha with the best mean validation accuracy over seeds."""
    mode = results[results["model"] == "MoDE"]
    val = mode.groupby(["dataset", "alpha"])["val_accuracy"].mean().reset_index()
    best = val.loc[val.groupby("dataset")["val_accuracy"].idxmax()]
    return best.set_index("dataset")["alpha"]


def summarise_comparison(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: MoE and MoDE (alpha chosen on validation) test accuracy mean +- std over seeds,
    and the paired difference MoDE - MoE (mean +- std, and how many seeds MoDE won or tied)."""
    chosen = choose_alpha(results)
    rows = []
    for dataset, alpha in chosen.items():
        part = results[results["dataset"] == dataset]
        moe = part[part["model"] == "MoE"].set_index("seed")["test_accuracy"]
        mode = part[(part["model"] == "MoDE") & (part["alpha"] == alpha)].set_index("seed")["test_accuracy"]
        difference = paired_difference(part[(part["model"] == "MoE") | (part["alpha"] == alpha)], "test_accuracy")
        dense = {
            f"{key}_mean": part[part["model"] == label]["test_accuracy"].mean()
            for key, label in (("dense_compute", "dense (same compute)"), ("dense_params", "dense (same params)"))
        }
        rows.append(
            {
                "dataset": dataset,
                "domain": part["domain"].iloc[0],
                "alpha": alpha,
                "seeds": len(difference),
                "moe_mean": moe.mean(),
                "moe_std": moe.std(ddof=1),
                "mode_mean": mode.mean(),
                "mode_std": mode.std(ddof=1),
                "diff_mean": difference.mean(),
                "diff_std": difference.std(ddof=1),
                "mode_wins_or_ties": int((difference >= 0).sum()),
                **dense,
                "train_seconds": part["train_seconds"].sum(),
            }
        )
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as an aligned text table: accuracies in %, mean +- std over seeds."""
    lines = [
        f"{'dataset':<14} {'domain':<8} {'alpha':>6} {'MoE test acc':>16} {'MoDE test acc':>16} {'MoDE - MoE':>16} {'MoDE>=MoE':>9}"
        f" {'dense=compute':>13} {'dense=params':>12}"
    ]
    for row in summary.itertuples():
        dense = "".join(f" {100 * v:>12.2f}" if v == v else f" {'-':>12}" for v in (row.dense_compute_mean, row.dense_params_mean))
        lines.append(
            f"{row.dataset:<14} {row.domain:<8} {row.alpha:>6g} {100 * row.moe_mean:>8.2f} +- {100 * row.moe_std:<4.2f} "
            f"{100 * row.mode_mean:>8.2f} +- {100 * row.mode_std:<4.2f} "
            f"{100 * row.diff_mean:>+8.2f} +- {100 * row.diff_std:<4.2f} {f'{row.mode_wins_or_ties}/{row.seeds}':>9} {dense}"
        )
    return "\n".join(lines)


def sweet_spots(results: pd.DataFrame) -> pd.DataFrame:
    """Per domain: the alphas chosen on validation, beside the paper's value for that domain."""
    chosen = choose_alpha(results).rename("chosen_alpha").reset_index()
    domains = results.drop_duplicates("dataset").set_index("dataset")["domain"]
    chosen["domain"] = chosen["dataset"].map(domains)
    chosen["paper_alpha"] = chosen["domain"].map(paper_alpha_text)
    return chosen[["domain", "dataset", "chosen_alpha", "paper_alpha"]]
