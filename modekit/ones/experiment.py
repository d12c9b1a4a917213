"""The OneS experiment (its inference speed: modekit.ones.speed).

Per seed: a teacher (top-2 sparse MoE, 4 experts; also a MoDE-trained one), a dense model of the
student's architecture trained from scratch, KD from random init, the Switch-Transformer recipe
(non-expert weights copied, random dense block, 0.25 soft / 0.75 hard, T = 1), and every gathering
method before and after KD (0.5 soft / 0.5 hard, T = 2). "% of MoE benefit preserved" is computed
from the means over seeds, and only where the paired MoE - dense interval lies above 0
(otherwise "no MoE benefit to keep").
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from modekit.analysis.stats import Evidence, benefit_preserved, judge
from modekit.config import TEACHER_EPOCHS, ModelConfig, TrainConfig
from modekit.data import Dataset, load
from modekit.errors import UserError
from modekit.executors import map_units
from modekit.nn import model_config_for, moe_layers
from modekit.ones.distill import SWITCH_RECIPE, DistillationObjective, teacher_kl
from modekit.ones.gathering import gather_matrices, k_limit, make_student
from modekit.profiles import MODE_ALPHA
from modekit.store import active_store, data_checksum
from modekit.training.loop import evaluate, train

ONES_UNIT = "ones_seed"  # the store's kind for one seed of the OneS experiment
TEACHER = {
    "tabular": ModelConfig(gate="topk", top_k=2),
    "image": ModelConfig(backbone="vit", gate="topk", top_k=2),
    "text": ModelConfig(gate="topk", top_k=2),
}


def teacher_config(data: Dataset, expert_hidden: int | None = None) -> ModelConfig:
    """The OneS teacher for `data`: TEACHER of its domain, completed from the data; `expert_hidden`
    sets the experts' hidden width (and so the dense student's), None keeps the default."""
    config = TEACHER[data.domain] if expert_hidden is None else TEACHER[data.domain].replace(expert_hidden=expert_hidden)
    if data.domain == "image" and (data.X_train.shape[-1] % 4 or data.X_train.shape[-1] <= 8):
        config = config.replace(patch_size=2)  # 8x8 digits: 2x2 patches give 16 tokens
    return model_config_for(data, config)


def _row(seed, teacher, student, stage, model, data, reference=None):
    accuracy = evaluate(model, data.X_test, data.y_test)["accuracy"]
    kl = teacher_kl(model, reference, data.X_test) if reference is not None else float("nan")
    return {"seed": seed, "teacher": teacher, "student": student, "stage": stage, "test_accuracy": accuracy, "kl_to_teacher": kl}


def run_ones(
    data: Dataset | str,
    methods: Sequence[str] = ("sum", "avg", "topk", "svd"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    train_config: TrainConfig | None = None,
    kd_config: TrainConfig | None = None,
    mode_alpha: float | None = None,
    max_train: int | None = None,
    progress: bool = False,
    expert_hidden: int | None = None,
    executor=None,
    **load_options,
) -> pd.DataFrame:
    """Tidy results: seed x teacher (MoE / MoDE) x student x stage (trained / before KD / after KD).
    A dataset given by name is loaded once per seed (with `load_options`), each seed with its own split.
    `expert_hidden`: the experts' hidden width, which is also the dense model's and the students'
    (None: the teacher's default, `teacher_config`). executor (modekit.executors): where the seeds
    (one unit each) run."""
    from tqdm.auto import tqdm

    if not list(seeds):
        raise UserError("seeds=[] is not allowed: give at least one seed")
    base = train_config or TrainConfig(epochs=TEACHER_EPOCHS, progress=False)
    kd = kd_config or base  # the same epochs as the dense model from scratch
    units = [(data, seed, tuple(methods), base, kd, mode_alpha, max_train, expert_hidden, load_options) for seed in seeds]
    with tqdm(total=len(units), desc="OneS seeds", disable=not progress, leave=False) as bar:
        rows = [row for seed_rows in map_units(executor, _ones_unit, units, bar) for row in seed_rows]
    name = data if isinstance(data, str) else data.name
    return pd.DataFrame(rows).assign(dataset=name)


def _ones_unit(data, seed: int, methods, base, kd, mode_alpha, max_train, expert_hidden, load_options) -> list[dict]:
    """One seed of the experiment, one unit of the store (its models are stored too, one by one)."""
    data_seed = load(data, seed=seed, **load_options) if isinstance(data, str) else data
    if max_train:
        data_seed = data_seed.subsample_train(max_train, seed=seed)
    store = active_store()
    if store is None:
        return _ones_seed(data_seed, seed, methods, base, kd, mode_alpha, expert_hidden)
    unit = {"seed": seed, "methods": list(methods), "train": base.replace(progress=False), "kd": kd.replace(progress=False),
            "mode_alpha": mode_alpha, "expert_hidden": expert_hidden}  # fmt: skip
    key = store.key(ONES_UNIT, unit, data_checksum(data_seed))
    stored = store.get(key, ONES_UNIT)
    if stored is not None:
        return stored["metrics"]["rows"]
    seed_rows = _ones_seed(data_seed, seed, methods, base, kd, mode_alpha, expert_hidden)
    store.put(key, ONES_UNIT, unit, {"rows": seed_rows}, label=f"seed={seed}")
    return seed_rows


def _ones_seed(data: Dataset, seed: int, methods, base: TrainConfig, kd: TrainConfig, mode_alpha, expert_hidden) -> list[dict]:
    """One seed of the OneS experiment: dense, teachers, baselines and every gathering method."""
    config = teacher_config(data, expert_hidden)
    dense_config = config.replace(n_experts=1, top_k=1, gate="dense")
    alpha = MODE_ALPHA[data.domain] if mode_alpha is None else mode_alpha
    rows = []
    dense = train(data, dense_config, base.replace(seed=seed)).model
    rows.append(_row(seed, "-", "dense from scratch", "trained", dense, data))
    teachers = {"MoE": 0.0, "MoDE": alpha} if alpha > 0 else {"MoE": 0.0}
    for label, teacher_alpha in teachers.items():
        teacher = train(data, config, base.replace(seed=seed, alpha=teacher_alpha)).model
        rows.append(_row(seed, label, "teacher", "trained", teacher, data))
        if label == "MoE":  # the baselines need one teacher only
            random_init = train(data, dense_config, kd.replace(seed=seed), objective=DistillationObjective(teacher)).model
            rows.append(_row(seed, label, "KD from random init", "after KD", random_init, data, teacher))
            switch = make_student(teacher, "random", seed=seed)
            rows.append(_row(seed, label, "Switch-style", "before KD", switch, data, teacher))
            switch = train(data, config, kd.replace(seed=seed), model=switch, objective=DistillationObjective(teacher, SWITCH_RECIPE)).model
            rows.append(_row(seed, label, "Switch-style", "after KD", switch, data, teacher))
        for method in methods:
            student = make_student(teacher, method)
            rows.append(_row(seed, label, method, "before KD", student, data, teacher))
            student = train(data, config, kd.replace(seed=seed), model=student, objective=DistillationObjective(teacher)).model
            rows.append(_row(seed, label, method, "after KD", student, data, teacher))
    return rows


def choose_dataset(
    candidates: Sequence[str],
    tuning_seeds: Sequence[int],
    train_config: TrainConfig | None = None,
    max_train: int | None = None,
    expert_hidden: int | None = None,
) -> tuple[str, pd.DataFrame]:
    """OneS's dataset by a rule fixed in advance: the first of `candidates`, in their order, on which
    the MoE teacher beats the dense model on every one of `tuning_seeds` (seeds that the experiment
    does not use again), so that there is a benefit for the student to keep. None qualifies: the last
    candidate (its row says so). Returns the name and one row per candidate tried and tuning seed."""
    if not list(candidates) or not list(tuning_seeds):
        raise UserError(f"candidates={list(candidates)!r}, tuning_seeds={list(tuning_seeds)!r}: give at least one of each")
    if len(candidates) == 1:  # the rule has nothing to choose
        return candidates[0], pd.DataFrame(columns=["dataset", "seed", "moe", "dense", "moe_minus_dense"])
    base = train_config or TrainConfig(epochs=TEACHER_EPOCHS, progress=False)
    rows = []
    for name in candidates:
        for seed in tuning_seeds:
            data = load(name, seed=seed)
            data = data.subsample_train(max_train, seed=seed) if max_train else data
            config = teacher_config(data, expert_hidden)
            dense = train(data, config.replace(n_experts=1, top_k=1, gate="dense"), base.replace(seed=seed)).test_accuracy
            moe = train(data, config, base.replace(seed=seed)).test_accuracy
            rows.append({"dataset": name, "seed": seed, "moe": moe, "dense": dense, "moe_minus_dense": moe - dense})
        if all(row["moe_minus_dense"] > 0 for row in rows if row["dataset"] == name):
            break
    table = pd.DataFrame(rows)
    return table.dataset.iloc[-1], table


def moe_advantage(results: pd.DataFrame) -> Evidence:
    """MoE teacher - dense model test accuracy, paired by seed, with its 95% interval."""
    teacher = results[(results.teacher == "MoE") & (results.student == "teacher")].set_index("seed").test_accuracy
    dense = results[results.student == "dense from scratch"].set_index("seed").test_accuracy
    return judge((teacher - dense).dropna())


def summarise_ones(results: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """Mean +- std per (teacher, student, stage) and % of MoE benefit preserved. The % is given only
    where the MoE's advantage over the dense model is itself significant (its 95% interval above 0);
    otherwise it is NaN and the warning says "no MoE benefit to keep"."""
    dense = results[results.student == "dense from scratch"].test_accuracy
    summary = (
        results.groupby(["teacher", "student", "stage"], sort=False)
        .agg(
            mean=("test_accuracy", "mean"), std=("test_accuracy", "std"), kl_to_teacher=("kl_to_teacher", "mean"), seeds=("seed", "nunique")
        )  # fmt: skip
        .reset_index()
    )
    moe = results[(results.teacher == "MoE") & (results.student == "teacher")].test_accuracy
    warning = no_benefit_warning(results)
    meaningful = warning is None
    summary["benefit_%"] = [benefit_preserved(m, dense.mean(), moe.mean()) if meaningful else float("nan") for m in summary["mean"]]
    summary["benefit_meaningful"] = meaningful
    return summary, warning


def no_benefit_warning(results: pd.DataFrame) -> str | None:
    """None where the MoE's advantage over the dense model is significant (its interval above 0),
    else the warning that there is no benefit to keep."""
    advantage = moe_advantage(results)
    if advantage.verdict == "reproduced":
        return None
    return (
        f"no MoE benefit to keep: MoE - dense = {100 * advantage.effect:+.2f} points, 95% CI "
        f"[{100 * advantage.ci_low:+.2f}, {100 * advantage.ci_high:+.2f}] over {advantage.n} seeds, does not exclude 0; "
        "'% of MoE benefit preserved' is not computed"
    )


def k_sweep(teacher: torch.nn.Module, data: Dataset, methods=("topk", "svd"), fractions=(1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)) -> pd.DataFrame:
    """Accuracy before KD of students gathered with K = fraction * (maximum K), per method (each K
    once: small limits round several fractions to the same K). Only methods with a K: topk, neurons, svd."""
    for method in methods:
        if method not in ("topk", "neurons", "svd"):
            raise UserError(f"method={method!r} is not allowed in k_sweep: only 'topk', 'neurons' and 'svd' have a K")
    layer = moe_layers(teacher)[0][1]
    weights = layer.experts.w1
    total = gather_matrices(weights, "sum")
    rows = []
    for method in methods:
        limit, _ = k_limit(weights, method)
        for k in sorted({max(1, round(fraction * limit)) for fraction in fractions}):
            student = make_student(teacher, method, k=k)
            distance = float("nan") if method == "neurons" else float((gather_matrices(weights, method, k) - total).norm() / total.norm())
            accuracy = evaluate(student, data.X_test, data.y_test)["accuracy"]
            rows.append({"method": method, "k": k, "fraction": k / limit, "test_accuracy": accuracy, "relative_distance_to_sum": distance})
    return pd.DataFrame(rows)


def ones_report(summary: pd.DataFrame, warning: str | None, dataset: str, seeds, methods) -> dict:
    """The `ones --json` object: mean, std and % of benefit of each model and student."""

    def pick(teacher, student, stage):
        row = summary[(summary.teacher == teacher) & (summary.student == student) & (summary.stage == stage)]
        return None if row.empty else {"mean": row["mean"].item(), "std": row["std"].item(), "benefit_%": row["benefit_%"].item()}

    students = {m: {"before_kd": pick("MoE", m, "before KD"), "after_kd": pick("MoE", m, "after KD"),
                    "mode_teacher_after_kd": pick("MoDE", m, "after KD")} for m in methods}  # fmt: skip
    return {
        "dataset": dataset,
        "seeds": list(seeds),
        "teacher": pick("MoE", "teacher", "trained"),
        "dense": pick("-", "dense from scratch", "trained"),
        "mode_teacher": pick("MoDE", "teacher", "trained"),
        "students": students,
        "baselines": {b: pick("MoE", b, "after KD") for b in ("KD from random init", "Switch-style")},
        "benefit_meaningful": warning is None,
        "warning": warning,
    }
