"""MoE vs MoDE, paired by seed: the MoDE paper's main comparison, with an equal tuning budget.

For each dataset and seed (each seed its own data split where the dataset has no official one):
MoDE trains one model per alpha of the domain's grid, and MoE one model per weight decay of a grid
of the same size (MoE_WEIGHT_DECAY), so that neither side gets more tuning. Each side's setting is
chosen on the validation split (mean over seeds), never on test; then test accuracies are paired
seed by seed. MoDE at the paper's alpha is reported beside the tuned one. Two dense baselines (one
expert) run beside them: the same compute and the same parameter count. A run whose best epoch is
its last is flagged undertrained; a dataset where both models reach the ceiling carries no
evidence. Both are reported and kept out of verdicts (modekit.analysis.stats.eligible_datasets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modekit.analysis.stats import CEILING, judge, paired_difference
from modekit.config import ModelConfig, TrainConfig
from modekit.data import Dataset, load
from modekit.device import resolve_device
from modekit.errors import UserError
from modekit.executors import map_units
from modekit.nn import model_config_for
from modekit.profiles import ALPHA_GRID, MOE_WEIGHT_DECAY, PAPER_ALPHA_POINT, paper_alpha_text
from modekit.training.compiled import resolve_compile
from modekit.training.population import train_population
from modekit.training.result import results_frame


def setting_grids(domain: str, alphas: Sequence[float] | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(MoDE alphas, MoE weight decays): the MoE grid has as many settings as the alpha grid."""
    grid = tuple(alphas) if alphas is not None else ALPHA_GRID[domain]
    if not grid or any(not a > 0 for a in grid):
        raise UserError(f"alphas={list(grid)!r} is not allowed: MoDE alphas must be > 0 (alpha = 0, MoE, is always run)")
    if len(grid) > len(MOE_WEIGHT_DECAY):
        raise UserError(f"alphas={list(grid)!r} is not allowed: at most {len(MOE_WEIGHT_DECAY)} alphas (the MoE tuning grid's size)")
    return grid, MOE_WEIGHT_DECAY[: len(grid)]


def _one_seed(
    data: Dataset, seed: int, seeds: int, model_config, base: TrainConfig, grid, decays, vectorise, baselines, pair: bool = True
) -> list[pd.DataFrame]:
    """Every model of one dataset and seed: MoDE per alpha and MoE per weight decay (`pair`), dense baselines.
    compile="auto" is decided from the comparison's plan for the dataset (`seeds` seeds x the models
    of each shape), the same in every unit whichever worker runs it."""
    full = model_config_for(data, model_config)
    device, n_train = resolve_device(base.device), len(data.y_train)

    def planned(config: ModelConfig, models: int) -> TrainConfig:  # MoDE and MoE share one shape
        return base.replace(compile=resolve_compile(config, base, n_train, device, seeds * models))

    frames = []
    if pair:  # MoDE and MoE share one shape: planned together
        shared = planned(full, len(grid) + len(decays))
        populations = [("MoDE", grid, shared.weight_decay), *(("MoE", (0.0,), decay) for decay in decays)]  # one per weight decay
        for model, alphas, decay in populations:
            configs = [shared.replace(alpha=float(a), weight_decay=decay, seed=seed) for a in alphas]
            trained = train_population(data, model_config, configs, vectorise, progress=False)
            frames.append(results_frame(trained, dataset=data.name, domain=data.domain).assign(model=model))
    if baselines:
        dense = {
            "dense (same compute)": full.replace(n_experts=1, top_k=1),
            "dense (same params)": full.replace(n_experts=1, top_k=1, expert_hidden=full.expert_hidden * full.n_experts),
        }
        for label, config in dense.items():
            result = train_population(data, config, [planned(config, 1).replace(alpha=0.0, seed=seed)], vectorise, progress=False)
            frames.append(results_frame(result, dataset=data.name, domain=data.domain).assign(model=label))
    return frames


def compare_moe_mode(
    datasets: Sequence[str | Dataset],
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    alphas: Sequence[float] | None = None,
    vectorise: bool | str = "auto",
    progress: bool = True,
    baselines: bool = False,
    max_train: int | None = None,
    load_options: dict[str, dict] | None = None,
    max_val: int | None = None,
    executor=None,
    doublings: int = 0,
) -> pd.DataFrame:
    """Tidy results: one row per dataset x model x setting x seed (model: MoE, MoDE, dense
    baselines; setting: alpha for MoDE, weight_decay for MoE). A dataset given by name is loaded
    once per seed with that seed's split (`load_options`: name -> extra arguments of `load`); a
    `Dataset` object keeps its one split (column `split_seed`). executor (modekit.executors): where
    the units (one dataset and seed each) run; the table is the same whichever runs them.
    doublings: the budget rule (run_comparison_unit): a unit still improving at its last epoch is
    rerun with twice the epochs, at most this many times (0: never)."""
    from tqdm.auto import tqdm

    base = train_config or TrainConfig(progress=False)
    if not list(seeds):
        raise UserError("seeds=[] is not allowed: give at least one seed")
    options = load_options or {}
    shared = {"model_config": model_config, "base": base, "alphas": alphas, "vectorise": vectorise,
              "baselines": baselines, "max_train": max_train, "max_val": max_val, "doublings": doublings}  # fmt: skip
    units = [
        (ComparisonUnit(entry, seed, len(seeds), load_options=options.get(entry, {}) if isinstance(entry, str) else {}, **shared),)
        for entry in datasets
        for seed in seeds
    ]
    with tqdm(total=len(units), desc="compare: dataset x seed", disable=not progress, leave=False) as bar:
        frames = map_units(executor, run_comparison_unit, units, bar)
    return pd.concat([frame for block in frames for frame in block], ignore_index=True)


@dataclass(frozen=True)
class ComparisonUnit:
    """One unit of the comparison, as an executor ships it: one dataset (by name: loaded with this
    seed's split) and one seed; `seeds`: how many seeds the comparison runs (its plan, from which
    compile="auto" is decided)."""

    entry: str | Dataset
    seed: int
    seeds: int
    model_config: ModelConfig | None
    base: TrainConfig
    alphas: Sequence[float] | None
    vectorise: bool | str
    baselines: bool
    max_train: int | None
    max_val: int | None
    load_options: dict
    doublings: int = 0


def run_comparison_unit(unit: ComparisonUnit) -> list[pd.DataFrame]:
    """Every model of one unit: its results frames (with the unit's `split_seed`, the epoch budget
    the unit ran with and how many times it was rerun). The budget rule, fixed before any run: when
    a MoE or MoDE run is still improving at its last epoch (best epoch = last epoch = the budget),
    the whole unit is rerun with twice the epochs, at most `unit.doublings` times, so that both models
    always share one budget (docs/method.md §8)."""
    data = unit.entry if isinstance(unit.entry, Dataset) else load(unit.entry, seed=unit.seed, **unit.load_options)
    if unit.max_train:
        data = data.subsample_train(unit.max_train, seed=unit.seed)
    if unit.max_val:
        data = data.subsample("val", unit.max_val, seed=unit.seed)
    grid, decays = setting_grids(data.domain, unit.alphas)
    split_seed = data.metadata.get("seed", 0) if isinstance(unit.entry, Dataset) else unit.seed
    base, plan = unit.base, (data, unit.seed, unit.seeds, unit.model_config)
    for reruns in range(unit.doublings + 1):
        frames = _one_seed(*plan, base, grid, decays, unit.vectorise, baselines=False)
        if reruns == unit.doublings or not still_improving(pd.concat(frames), base.epochs):
            break
        base = base.replace(epochs=2 * base.epochs)
    frames += _one_seed(*plan, base, grid, decays, unit.vectorise, unit.baselines, pair=False)  # the baselines once, at the final budget
    return [frame.assign(split_seed=split_seed, budget_epochs=base.epochs, budget_reruns=reruns) for frame in frames]


def best_at_last_epoch(runs: pd.DataFrame) -> pd.Series:
    """Per run: its best validation epoch was its last, so it was still improving when it stopped
    (early stopping never ends a run on its best epoch): the one test behind "undertrained"."""
    return runs.best_epoch == runs.epochs_run


def still_improving(results: pd.DataFrame, epochs: int) -> bool:
    """Whether a MoE or MoDE run of `results` was still improving at the budget's last epoch."""
    pairs = results[results.model.isin(["MoE", "MoDE"])]
    return bool((best_at_last_epoch(pairs) & (pairs.epochs_run == epochs)).any())


def choose_setting(results: pd.DataFrame, model: str, setting: str) -> pd.Series:
    """Per dataset, the `setting` value of `model` with the best mean validation accuracy over seeds."""
    part = results[results["model"] == model]
    val = part.groupby(["dataset", setting])["val_accuracy"].mean().reset_index()
    return val.loc[val.groupby("dataset")["val_accuracy"].idxmax()].set_index("dataset")[setting]


def choose_alpha(results: pd.DataFrame) -> pd.Series:
    """Per dataset, the MoDE alpha with the best mean validation accuracy over seeds."""
    return choose_setting(results, "MoDE", "alpha")


def chosen_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The runs behind the comparison: MoDE at its chosen alpha, MoE at its chosen weight decay."""
    alpha, decay = choose_alpha(results), choose_setting(results, "MoE", "weight_decay")
    is_mode = (results.model == "MoDE") & (results.alpha == results.dataset.map(alpha))
    is_moe = (results.model == "MoE") & (results.weight_decay == results.dataset.map(decay))
    return results[is_mode | is_moe]


def fixed_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The runs behind the primary comparison, with settings fixed before any run: MoDE at the
    paper's alpha for its domain (profiles.PAPER_ALPHA_POINT), MoE at its default (weight decay 0).
    Nothing is chosen on the seeds that are then tested (docs/method.md §8)."""
    paper_alpha = results.domain.map(PAPER_ALPHA_POINT)
    is_mode = (results.model == "MoDE") & (results.alpha == paper_alpha)
    is_moe = (results.model == "MoE") & (results.weight_decay == MOE_WEIGHT_DECAY[0])
    return results[is_mode | is_moe]


def summarise_comparison(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: MoE (weight decay chosen on validation) and MoDE (alpha chosen on validation)
    test accuracy mean +- std over seeds; the paired difference MoDE - MoE with its 95% interval;
    wins, ties and losses; MoDE at the paper's alpha vs MoE at its default (the primary comparison)
    with the share of seeds it improves; dense baselines; flags for undertrained runs and for a
    dataset at the ceiling."""
    chosen = chosen_runs(results)
    alpha, decay = choose_alpha(results), choose_setting(results, "MoE", "weight_decay")
    rows = []
    for dataset, part in chosen.groupby("dataset", sort=False):
        everything = results[results.dataset == dataset]
        domain = part.domain.iloc[0]
        moe = part[part.model == "MoE"].set_index("seed").test_accuracy
        mode = part[part.model == "MoDE"].set_index("seed").test_accuracy
        difference = paired_difference(part, "test_accuracy")
        evidence = judge(difference)
        fixed = fixed_runs(everything)  # MoDE at the paper's alpha vs MoE at its default: neither tuned
        # no room for an effect: both models at the ceiling, decided on validation (test accuracy decides nothing)
        judged = pd.concat([part, fixed]).drop_duplicates(subset=["model", "alpha", "weight_decay", "seed"])  # both comparisons' runs
        at_ceiling = bool(min(judged[judged.model == m].val_accuracy.mean() for m in ("MoE", "MoDE")) >= CEILING)
        at_paper = paired_difference(fixed, "test_accuracy") if (fixed.model == "MoDE").any() else pd.Series(dtype=float)
        dense = {f"{key}_mean": everything[everything.model == label].test_accuracy.mean()
                 for key, label in (("dense_compute", "dense (same compute)"), ("dense_params", "dense (same params)"))}  # fmt: skip
        rows.append({
            "dataset": dataset, "domain": domain, "alpha": alpha[dataset], "moe_weight_decay": decay[dataset],
            "seeds": len(difference), "moe_mean": moe.mean(), "moe_std": moe.std(ddof=1), "mode_mean": mode.mean(),
            "mode_std": mode.std(ddof=1), "diff_mean": difference.mean(), "diff_std": difference.std(ddof=1),
            "diff_ci_low": evidence.ci_low, "diff_ci_high": evidence.ci_high, "wins": int((difference > 0).sum()),
            "ties": int((difference == 0).sum()), "losses": int((difference < 0).sum()),
            "paper_alpha": PAPER_ALPHA_POINT[domain], "diff_at_paper_alpha": at_paper.mean() if len(at_paper) else np.nan,
            # probability of improvement (descriptive): the share of seeds where MoDE beats MoE, fixed settings
            "improved_share_at_paper_alpha": float((at_paper > 0).mean()) if len(at_paper) else np.nan,
            **dense, "undertrained": int(best_at_last_epoch(judged).sum()),
            "at_ceiling": at_ceiling, "train_seconds": everything.train_seconds.sum(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as an aligned text table, the primary comparison first: accuracies in %, mean +- sd
    over seeds. The dense baselines' columns appear only where they were trained."""

    def points(mean, sd=None, sign="+"):
        if mean != mean:  # not run (the fixed comparison without the paper's alpha in the grid)
            return "-"
        return f"{100 * mean:{sign}.2f}" + ("" if sd is None else f" +- {100 * sd:.2f}")

    table = pd.DataFrame({
        "dataset": summary.dataset, "domain": summary.domain, "paper a": summary.paper_alpha.map("{:g}".format),
        "fixed: MoDE - MoE": summary.diff_at_paper_alpha.map(points), "tuned a": summary.alpha.map("{:g}".format),
        "MoE wd": summary.moe_weight_decay.map("{:g}".format),
        "MoE test acc (tuned)": [points(m, s, "") for m, s in zip(summary.moe_mean, summary.moe_std)],
        "MoDE test acc (tuned)": [points(m, s, "") for m, s in zip(summary.mode_mean, summary.mode_std)],
        "tuned: MoDE - MoE": [f"{points(m, s)} [{points(lo)}, {points(hi)}]"
                              for m, s, lo, hi in zip(summary.diff_mean, summary.diff_std, summary.diff_ci_low, summary.diff_ci_high)],
        "W/T/L": [f"{w}/{t}/{l}" for w, t, l in zip(summary.wins, summary.ties, summary.losses)],
    })  # fmt: skip
    for key, label in (("dense_compute_mean", "dense (same compute)"), ("dense_params_mean", "dense (same params)")):
        if summary[key].notna().any():
            table[label] = summary[key].map(lambda v: "-" if v != v else f"{100 * v:.2f}")
    table["flags"] = [", ".join(flag for flag, on in ((f"{u} undertrained", u), ("ceiling", c)) if on)
                      for u, c in zip(summary.undertrained, summary.at_ceiling)]  # fmt: skip
    legend = (
        "fixed: MoDE at the paper's alpha vs MoE at weight decay 0 (the primary comparison, mean gain); tuned: alpha and "
        "weight decay chosen on validation (secondary), with the 95% interval; W/T/L: the tuned seeds MoDE wins, ties, loses"
    )
    return table.to_string(index=False) + "\n" + legend


def sweet_spots(results: pd.DataFrame) -> pd.DataFrame:
    """Per domain: the alphas chosen on validation, beside the paper's value for that domain."""
    chosen = choose_alpha(results).rename("chosen_alpha").reset_index()
    domains = results.drop_duplicates("dataset").set_index("dataset")["domain"]
    chosen["domain"] = chosen["dataset"].map(domains)
    chosen["paper_alpha"] = chosen["domain"].map(paper_alpha_text)
    return chosen[["domain", "dataset", "chosen_alpha", "paper_alpha"]]


def paired_gains(results: pd.DataFrame) -> pd.DataFrame:
    """The per-seed gains behind the comparison, one row per dataset, seed and comparison:
    "fixed in advance": MoDE at the paper's alpha - MoE at its default (the primary verdicts' values);
    "tuned on validation": MoDE at its chosen alpha - MoE at its chosen weight decay (secondary)."""
    rows = []
    for dataset, part in results.groupby("dataset", sort=False):
        domain = part.domain.iloc[0]
        for label, runs in (("fixed in advance", fixed_runs(part)), ("tuned on validation", chosen_runs(part))):
            if (runs.model == "MoDE").any() and (runs.model == "MoE").any():
                gain = paired_difference(runs, "test_accuracy")
                rows += [
                    {"dataset": dataset, "domain": domain, "seed": seed, "comparison": label, "gain": value} for seed, value in gain.items()
                ]
    return pd.DataFrame(rows, columns=["dataset", "domain", "seed", "comparison", "gain"])


def model_accuracies(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and model, test accuracy mean and std over seeds: MoE and MoDE at the settings
    chosen on validation (as the summary reports them), dense baselines over all their runs."""
    runs = pd.concat([chosen_runs(results), results[results.model.str.startswith("dense")]])
    return runs.groupby(["dataset", "model"], sort=False).test_accuracy.agg(["mean", "std"])


def runs_agree(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Do two runs of one comparison (say eager and compiled) agree within the seed spread? Per
    dataset and model: both runs' test accuracy mean and std, the difference second - first, and
    `within_spread`: |difference| <= the larger of the two stds over seeds. A model that only one
    run has is refused, naming it."""
    a, b = model_accuracies(first), model_accuracies(second)
    if set(a.index) != set(b.index):
        missing = sorted(set(a.index) ^ set(b.index))
        raise UserError(f"runs={missing!r} is not allowed: both runs must hold the same datasets and models to be compared")
    table = a.add_suffix("_first").join(b.add_suffix("_second"))
    table["difference"] = table.mean_second - table.mean_first
    # within the seed spread: |m2 - m1| <= max(s1, s2)
    table["within_spread"] = table.difference.abs() <= table[["std_first", "std_second"]].max(axis=1)
    return table.reset_index()
