"""The exercises' checks. Each takes a learner's answer with what it was computed from, recomputes
the truth, and raises AssertionError saying what is wrong; the solutions notebooks call them on
their own answers. tests/test_analysis_exercises.py feeds each a plausible wrong answer and sees it
fail, so no check passes whatever it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modekit.analysis.stats import t_interval


def _close(answer, truth, what: str, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    answer, truth = np.asarray(answer, dtype=float), np.asarray(truth, dtype=float)
    if answer.shape != truth.shape or not np.allclose(answer, truth, rtol=rtol, atol=atol):
        raise AssertionError(f"{what}: {np.round(answer, 6).tolist()} is not {np.round(truth, 6).tolist()}")


def chain_rule(by_hand, gate_weight: float, upstream) -> None:
    """01, exercise 1: dL/de_i(x) = g_i(x) dL/dh(x) for one sample, with expert i's own gate weight."""
    # dL/de_i(x) = g_i(x) * dL/dh(x)
    _close(by_hand, gate_weight * np.asarray(upstream), "dL/de_i(x) by hand against g_i(x) dL/dh(x)", rtol=1e-4, atol=1e-10)


def low_weight_share(gradient_share: float, gate_weights, gradient_norms, fraction: float = 0.1) -> None:
    """01, exercise 2: the share of expert 0's gradient mass carried by the `fraction` of samples with
    the smallest g_0(x); they carry less than their head count (narrow vision)."""
    weights, norms = np.asarray(gate_weights, dtype=float), np.asarray(gradient_norms, dtype=float)
    low = weights <= np.quantile(weights, fraction)
    _close(gradient_share, norms[low].sum() / norms.sum(), "share of the gradient mass from the low-weight samples")
    if not gradient_share < low.mean():
        raise AssertionError(f"the {low.mean():.0%} of samples the gate weighs least carry {gradient_share:.1%} of the gradient: not less")


TRENDS = ("grows", "shrinks", "neither")


def trend(values: Sequence[float]) -> str:
    """How a sequence moves: "grows" (every step up), "shrinks" (every step down), else "neither"."""
    steps = np.diff(values)
    return "grows" if np.all(steps > 0) else ("shrinks" if np.all(steps < 0) else "neither")


def trend_with_alpha(alphas: Sequence[float], parts: Sequence[float], answer: str) -> None:
    """01, exercise 3: how L_KD's part of the gradient moves over increasing alphas ("grows",
    "shrinks" or "neither": up and down)."""
    if len(alphas) < 3 or not np.all(np.diff(alphas) > 0):
        raise AssertionError(f"alphas={list(alphas)}: give at least three increasing alphas")
    if answer not in TRENDS:
        raise AssertionError(f"answer={answer!r}: say one of {', '.join(TRENDS)}")
    if answer != trend(parts):
        raise AssertionError(f"L_KD's part {list(np.round(parts, 4))} over alpha {list(alphas)}: it {trend(parts)}, not {answer!r}")


def seed_interval(gains: Sequence[float], interval: tuple[float, float], seeds: int) -> None:
    """01, exercise 4 (and any "over n seeds" answer): one gain per seed, and the 95% t interval over them."""
    if len(gains) != seeds:
        raise AssertionError(f"{len(gains)} gains given: the exercise asks for {seeds} seeds, one gain each")
    _close(interval, t_interval(gains), "the 95% t interval over the seeds")


def converted_alpha(ours: float, alpha_sum: float, n_experts: int, out_dim: int) -> None:
    """02, exercise 1: alpha_sum of the sum over unordered pairs, in our mean-normalised alpha."""
    # alpha = alpha_sum * p * E (E - 1) / 2  (docs/method.md §2)
    _close(ours, alpha_sum * out_dim * n_experts * (n_experts - 1) / 2, "our alpha")


def smallest_alpha_above(answer: float, mean_by_alpha: dict[float, float], threshold: float) -> None:
    """02, exercise 2: the smallest alpha whose mean (cosine similarity) exceeds `threshold`."""
    above = [alpha for alpha, value in mean_by_alpha.items() if value > threshold]
    if not above or answer != min(above):
        raise AssertionError(f"alpha={answer}: the smallest alpha above {threshold} is {min(above) if above else 'none'}")


def selection_bias(bias: float, in_sample: float, cross_fitted: float) -> None:
    """02, exercise 3: the bias of choosing on the scored seeds = in-sample gain - cross-fitted gain."""
    _close(bias, in_sample - cross_fitted, "in-sample gain - cross-fitted gain")


def placed_differently(share: float, placed_first, placed_second) -> None:
    """03, exercise 1: the share of test samples two models place in a different sub-task's DS."""
    _close(share, np.mean(np.asarray(placed_first) != np.asarray(placed_second)), "share of samples placed differently")


def null_rate(share: float, verdicts: Sequence[str], level: float) -> None:
    """05, exercise 2: the share of simulated null runs read "reproduced", within twice the rule's level."""
    _close(share, np.mean(np.asarray(verdicts) == "reproduced"), 'share of "reproduced" verdicts')
    if not share < 2 * level:
        raise AssertionError(f'{share:.1%} of null runs read "reproduced": more than twice the rule\'s level {level:.1%}')
