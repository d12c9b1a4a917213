"""Looking inside a trained MoE: how the gate splits the data, what each expert knows.

- effective sample share ESS_i = (sum_x g_i(x))^2 / sum_x g_i(x)^2, divided by n (narrow vision);
- dominating sample-based task domain DS_i = samples whose largest gate weight is expert i's;
- expert probing: the gate forced to one-hot(i), accuracy on DS_i (own) and the other DS (cross);
- gate recognition accuracy: share of samples routed to "their" expert under the best one-to-one
  matching of sub-tasks to experts;
- expert consistency: mean pairwise cosine similarity of the experts' outputs (1 = collapsed);
- per-expert permutation feature importance.
All functions probe the model's first MoE layer and run in eval mode (no gate noise); the model's
train / eval mode is restored afterwards. Definitions: docs/method.md §5.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from modekit.device import to_numpy
from modekit.errors import UserError
from modekit.functional import mutual_distillation_loss
from modekit.nn import moe_layers
from modekit.training.loop import evaluate


def first_moe(model):
    layers = moe_layers(model)
    if not layers:
        raise UserError(f"model {type(model).__name__} has no MoE layer to probe (a OneS student has none)")
    return layers[0][1]


@contextlib.contextmanager
def eval_mode(model):
    """Within the block the model is in eval mode; its previous train / eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def gate_weights(model, X: torch.Tensor) -> np.ndarray:
    """(n, E) gate weights of the first MoE layer, eval mode (no gate noise). Per-sample gates only:
    a transformer routes each token, so its (n, t, E) weights are refused rather than flattened."""
    with eval_mode(model):
        weights = model(X).gate_weights
    if weights.dim() != 2:
        raise UserError(
            f"gate_weights: the model routes every token (gate weights of shape {tuple(weights.shape)}), not every "
            "sample: probing by sample needs a per-sample gate (tabular or CNN backbone)"
        )
    return to_numpy(weights)


def effective_sample_share(weights: np.ndarray) -> np.ndarray:
    """ESS_i / n with ESS_i = (sum_x g_i(x))^2 / sum_x g_i(x)^2: 1 = expert i learns from every
    sample equally, 1/E = from a (gate-weighted) E-th of the data."""
    # ESS_i = (sum g_i)^2 / sum g_i^2
    ess = weights.sum(0) ** 2 / np.maximum((weights**2).sum(0), 1e-12)
    return ess / len(weights)


def dominating_expert(weights: np.ndarray) -> np.ndarray:
    """DS membership: for each sample, the expert with the largest gate weight."""
    return weights.argmax(1)


@contextlib.contextmanager
def forced_expert(model, expert: int):
    """Within the block, the first MoE layer's gate is one-hot(expert)."""
    layer = first_moe(model)
    layer.forced_expert = expert
    try:
        yield model
    finally:
        layer.forced_expert = None


def expert_probing(model, X: torch.Tensor, y: torch.Tensor, domain: np.ndarray | None = None) -> pd.DataFrame:
    """One row per (expert i, domain DS_j): accuracy of expert i alone on DS_j, own = (i == j).

    domain: each sample's DS owner. None: the paper's DS, the expert with the largest gate weight
    (each model then defines its own DS, so two models are scored on different samples). A common
    reference for comparing models: `subtask_domains(weights, subtask)`, the known sub-tasks."""
    domain = dominating_expert(gate_weights(model, X)) if domain is None else np.asarray(domain)
    n_experts = first_moe(model).experts.n_experts
    rows = []
    for expert in range(n_experts):
        with forced_expert(model, expert):
            for owner in range(n_experts):
                members = torch.as_tensor(domain == owner)
                rows.append(
                    {
                        "expert": expert,
                        "domain": owner,
                        "own": expert == owner,
                        "samples": int(members.sum()),
                        "accuracy": evaluate(model, X[members], y[members])["accuracy"],
                    }
                )
    return pd.DataFrame(rows)


def _matching(weights: np.ndarray, subtask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Routing counts (sub-task x dominating expert) and the one-to-one matching of sub-tasks to
    experts that maximises the matched samples (Hungarian algorithm): (counts, tasks, experts)."""
    subtask = np.asarray(subtask, dtype=int)
    counts = np.zeros((int(subtask.max()) + 1, weights.shape[1]))
    np.add.at(counts, (subtask, dominating_expert(weights)), 1)
    tasks, experts = linear_sum_assignment(counts, maximize=True)
    return counts, tasks, experts


def gate_recognition_accuracy(weights: np.ndarray, subtask: np.ndarray) -> float:
    """Share of samples whose dominating expert is the one matched to their sub-task, under the
    best one-to-one matching of sub-tasks to experts."""
    counts, tasks, experts = _matching(weights, subtask)
    return float(counts[tasks, experts].sum() / len(subtask))


SPLIT_FOUND = 0.95  # gate recognition accuracy above which a gate has found the sub-tasks' split (ours; notebook 01)


def first_routed_seed(seeds, recognition, threshold: float = SPLIT_FOUND) -> int:
    """The first of `seeds` whose gate recognition accuracy, `recognition(seed)` (computed only as far
    as needed), lies above `threshold`, else the first seed: which seed a lesson pictures, by a rule
    fixed before the run rather than picked after looking."""
    seeds = list(seeds)
    return next((seed for seed in seeds if recognition(seed) > threshold), seeds[0])


# Mean effective sample share per expert at or below which an expert's vision counts as narrow, and
# above which it is barely narrowed (1/E: each sample to one expert; 1: every sample weighs the same) (ours)
NARROW_SHARE, BARELY_NARROWED_SHARE = 0.6, 0.8


def narrowness(share: float) -> str:
    """How narrow the experts' vision is, in words, from their mean effective sample share."""
    return "narrow" if share <= NARROW_SHARE else ("barely narrowed" if share > BARELY_NARROWED_SHARE else "partly narrowed")


@torch.no_grad()
def expert_consistency(model, X: torch.Tensor) -> dict:
    """Mean pairwise cosine similarity of the experts' outputs over samples, and L_KD."""
    layer = first_moe(model)
    captured = {}
    handle = layer.register_forward_pre_hook(lambda module, inputs: captured.update(x=inputs[0]))
    with eval_mode(model):
        model(X)
    handle.remove()
    outputs = layer.expert_outputs(captured["x"])  # (e, n, p)
    normed = torch.nn.functional.normalize(outputs.float(), dim=-1)
    pairs = [(normed[i] * normed[j]).sum(-1).mean() for i, j in itertools.combinations(range(len(outputs)), 2)]
    cosine = float(torch.stack(pairs).mean()) if pairs else 1.0
    return {"cosine_similarity": cosine, "distillation_loss": float(mutual_distillation_loss(outputs))}


def expert_feature_importance(model, X: torch.Tensor, y: torch.Tensor, feature_names=None, repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Permutation importance per expert (gate forced to it): accuracy drop when a feature is shuffled."""
    generator = torch.Generator().manual_seed(seed)
    names = feature_names or [f"x{i}" for i in range(X.shape[1])]
    rows = []
    for expert in range(first_moe(model).experts.n_experts):
        with forced_expert(model, expert):
            base = evaluate(model, X, y)["accuracy"]
            for column, name in enumerate(names):
                drops = []
                for _ in range(repeats):
                    shuffled = X.clone()
                    shuffled[:, column] = X[torch.randperm(len(X), generator=generator), column]
                    drops.append(base - evaluate(model, shuffled, y)["accuracy"])
                rows.append({"expert": expert, "feature": name, "importance": float(np.mean(drops))})
    return pd.DataFrame(rows)


def other_view_share(importance: pd.DataFrame, matched: np.ndarray, views: tuple[str, str] = ("A", "B")) -> list[float]:
    """Multi-view data: per sub-task t (whose own view is views[t]), the share of its matched expert's
    positive permutation importance that lies on the other view's features (names starting with the
    view's letter, as in `load("multiview")`): 0 = the expert uses only its own view."""
    shares = []
    for task, own_view in enumerate(views):
        other_view = views[1 - task]
        part = importance[importance.expert == matched[task]].set_index("feature").importance.clip(lower=0)
        own = part[part.index.str.startswith(own_view)].sum()
        other = part[part.index.str.startswith(other_view)].sum()
        # share = other / (own + other)
        shares.append(float(other / max(own + other, 1e-9)))
    return shares


@torch.no_grad()
def decision_grid(model, X: torch.Tensor, resolution: int = 150):
    """Class-1 probability and dominating expert on a grid over a 2-D input's range."""
    device = next(model.parameters()).device
    low, high = X.min(0).values - 0.5, X.max(0).values + 0.5
    xs, ys = torch.linspace(low[0], high[0], resolution), torch.linspace(low[1], high[1], resolution)
    grid = torch.cartesian_prod(xs, ys).to(device)
    with eval_mode(model):
        out = model(grid)
    probability = torch.softmax(out.logits.float(), -1)[:, -1].reshape(resolution, resolution).T
    expert = out.gate_weights.argmax(-1).reshape(resolution, resolution).T
    return to_numpy(xs), to_numpy(ys), to_numpy(probability), to_numpy(expert)


def subtask_domains(weights: np.ndarray, subtask: np.ndarray) -> np.ndarray:
    """DS on the known sub-tasks: each sample belongs to the DS of the expert matched to its sub-task
    (`matched_experts`), so that every model is probed on the same sample sets."""
    return matched_experts(weights, subtask)[np.asarray(subtask, dtype=int)]


def expert_output_gradients(model, X: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """What each sample teaches each expert: the gradients of L_task and of L_KD with respect to the
    experts' outputs e_i(x) of the first MoE layer (eval mode: no gate noise), by autograd.

    Returns arrays: "task" and "distillation" (e, n, p), "gate_weights" (n, e), "mixed" (n, p), the
    gradient of L_task with respect to h(x), and "outputs" (e, n, p), the experts' outputs.
    docs/method.md §2 derives  dL_task/de_i(x) = g_i(x) dL_task/dh(x)  and, for all E experts
    distilled,  dL_KD/de_i(x) = 4 / ((E - 1) p n) (e_i(x) - mean_j e_j(x)); notebook 01 checks both."""
    from modekit.functional import task_loss

    layer = first_moe(model)
    captured = {}

    def keep_outputs(module, inputs, outputs):
        captured["outputs"] = outputs

    def keep_mixed(module, inputs, output):
        captured["mixed"] = output.output

    handles = [layer.experts.register_forward_hook(keep_outputs), layer.register_forward_hook(keep_mixed)]
    try:
        with eval_mode(model):
            out = model(X)
    finally:
        for handle in handles:
            handle.remove()
    outputs, mixed = captured["outputs"], captured["mixed"]
    task = task_loss(out.logits, y.to(out.logits.device))
    task_grad, mixed_grad = torch.autograd.grad(task, [outputs, mixed], retain_graph=True)
    (distill_grad,) = torch.autograd.grad(out.distillation_loss, [outputs], allow_unused=True)
    if distill_grad is None:  # a single expert: no pair, no L_KD
        distill_grad = torch.zeros_like(outputs)
    return {
        "task": to_numpy(task_grad),
        "distillation": to_numpy(distill_grad),
        "gate_weights": to_numpy(out.gate_weights.detach()),
        "mixed": to_numpy(mixed_grad),
        "outputs": to_numpy(outputs.detach()),
    }


def gradient_sample_share(gradients: np.ndarray) -> np.ndarray:
    """Per expert, the effective share of samples its gradient comes from: with a_i(x) = |dL/de_i(x)|,
    (sum_x a_i(x))^2 / (n sum_x a_i(x)^2); 1 = every sample teaches expert i equally, 1/n = one does.

    gradients: (e, n, p), e.g. `expert_output_gradients(...)["task"]`. Narrow vision in one number:
    the task gradient carries g_i(x), so an expert learns mostly from the samples the gate sends it."""
    strength = np.linalg.norm(gradients, axis=-1)  # (e, n)
    # (sum_x a)^2 / (n sum_x a^2)
    return strength.sum(1) ** 2 / np.maximum(gradients.shape[1] * (strength**2).sum(1), 1e-30)


def gradient_share_by_group(gradients: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    """Per expert and group (e.g. sub-task): the share of the expert's gradient mass sum_x |dL/de_i(x)|
    that comes from the group's samples. Rows: expert, group, share (each expert's shares sum to 1)."""
    strength = np.linalg.norm(gradients, axis=-1)  # (e, n)
    group = np.asarray(group)
    total = np.maximum(strength.sum(1), 1e-30)
    return pd.DataFrame(
        [
            {"expert": i, "group": g, "share": float(strength[i, group == g].sum() / total[i])}
            for i in range(strength.shape[0])
            for g in np.unique(group)
        ]
    )


def gradient_reach(model, X: torch.Tensor, y: torch.Tensor, subtask: np.ndarray, alpha: float) -> pd.DataFrame:
    """Narrow vision and its cure in the gradient. One row per sub-task t and its matched expert i:
    the share of i's gradient sum_x |dL/de_i(x)| that comes from the *other* sub-tasks' samples, for
    the task gradient alone and for the whole gradient of L_task + alpha L_KD, and the effective
    sample share of each (`gradient_sample_share`)."""
    subtask = np.asarray(subtask, dtype=int)
    grads = expert_output_gradients(model, X, y)
    total = grads["task"] + alpha * grads["distillation"]
    matched = matched_experts(grads["gate_weights"], subtask)
    rows = []
    for task, expert in enumerate(matched):
        row = {"sub-task": task, "expert": int(expert)}
        for label, gradient in (("task", grads["task"]), ("total", total)):
            # share of expert i's gradient mass from samples outside sub-task t
            other = gradient_share_by_group(gradient[[expert]], subtask != task)
            row[f"other_share_{label}"] = float(other[other.group].share.sum())
            row[f"sample_share_{label}"] = float(gradient_sample_share(gradient[[expert]])[0])
        # the distillation term's part of the expert's gradient mass: sum|alpha dL_KD| / (sum|dL_task| + sum|alpha dL_KD|)
        task_mass = np.linalg.norm(grads["task"][expert], axis=-1).sum()
        distill_mass = np.linalg.norm(alpha * grads["distillation"][expert], axis=-1).sum()
        row["distillation_part"] = float(distill_mass / max(task_mass + distill_mass, 1e-30))
        rows.append(row)
    return pd.DataFrame(rows)


def matched_experts(weights: np.ndarray, subtask: np.ndarray) -> np.ndarray:
    """For each sub-task, the expert the gate sends most of it to (best one-to-one matching)."""
    _, tasks, experts = _matching(weights, subtask)
    return experts[np.argsort(tasks)]
