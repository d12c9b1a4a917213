"""Synthetic data with a hidden sub-task label: the setting in which MoE's "narrow vision" shows.

Each sample belongs to sub-task s (0 or 1). Feature 0 is a routing cue (its mean is -sep for
sub-task 0 and +sep for sub-task 1), so a gate can learn who is who. The label follows a different
rule per sub-task: a linear rule on a block of features, the two blocks sharing `shared` features on
which the rules disagree (so one linear model cannot solve both sub-tasks at once).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError


def make_subtasks(
    n_samples: int = 4000,
    n_features: int = 8,
    imbalance: float = 0.5,
    noise: float = 0.05,
    shared: int = 2,
    separation: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (X, y, subtask): X (n, d) float32, binary y, subtask in {0, 1}.

    imbalance: share of samples in sub-task 0 (0.5 = balanced; 0.9 = sub-task 1 is rare).
    noise: probability that a label is flipped.  shared: rule features the sub-tasks share.
    """
    if not isinstance(n_samples, int) or n_samples < 20:
        raise UserError(f"n_samples={n_samples!r} is not allowed: n_samples must be an integer >= 20")
    if not isinstance(n_features, int) or n_features < 2:
        raise UserError(f"n_features={n_features!r} is not allowed: n_features must be an integer >= 2")
    if not 0.0 < imbalance < 1.0:
        raise UserError(f"imbalance={imbalance!r} is not allowed: imbalance must be strictly between 0 and 1")
    if not 0.0 <= noise < 0.5:
        raise UserError(f"noise={noise!r} is not allowed: noise must be in [0, 0.5)")
    rule_features = n_features - 1
    if not isinstance(shared, int) or not 1 <= shared <= rule_features:
        raise UserError(f"shared={shared!r} is not allowed: shared must be an integer in [1, n_features - 1]")
    rng = np.random.default_rng(seed)
    subtask = (rng.random(n_samples) >= imbalance).astype(np.int64)
    X = rng.standard_normal((n_samples, n_features))
    # feature 0: the routing cue, -sep for sub-task 0, +sep for sub-task 1
    X[:, 0] += np.where(subtask == 1, separation, -separation)
    # rule blocks F0 = [1, 1+m), F1 = [1+m-shared, 1+2m-shared): they overlap on `shared` features
    block = (rule_features + shared) // 2
    first = np.arange(1, 1 + block)
    second = np.arange(1 + block - shared, 1 + 2 * block - shared)
    w_first = rng.standard_normal(block)
    w_second = rng.standard_normal(block)
    # the sub-tasks disagree on the shared features: w1 = -w0 there
    w_second[:shared] = -w_first[block - shared :]
    score = np.where(subtask == 0, X[:, first] @ w_first, X[:, second] @ w_second)
    y = (score > 0).astype(np.int64)
    flip = rng.random(n_samples) < noise
    y[flip] = 1 - y[flip]
    return X.astype(np.float32), y, subtask


def make_multiview(
    n_samples: int = 4000,
    view_width: int = 3,
    multi_view_share: float = 0.3,
    separation: float = 2.0,
    signal: float = 1.5,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two redundant views of the class, and sub-tasks that mostly see different views.

    Features: [cue, view A (view_width), view B (view_width)]. A multi-view sample carries the class
    signal (mean +-signal) in both views; a single-view sample only in its sub-task's view (A for
    sub-task 0, B for sub-task 1), the other view being noise. The question (MoDE §5.4.3, weakly
    supported in our summary): does mutual distillation make an expert use the view its peer learned?
    """
    if not 0.0 <= multi_view_share <= 1.0:
        raise UserError(f"multi_view_share={multi_view_share!r} is not allowed: it must be in [0, 1]")
    if not isinstance(view_width, int) or view_width < 1:
        raise UserError(f"view_width={view_width!r} is not allowed: view_width must be an integer >= 1")
    rng = np.random.default_rng(seed)
    subtask = rng.integers(0, 2, n_samples)
    y = rng.integers(0, 2, n_samples)
    sign = np.where(y == 1, 1.0, -1.0)[:, None]
    multi = rng.random(n_samples) < multi_view_share
    cue = rng.standard_normal((n_samples, 1)) + np.where(subtask == 1, separation, -separation)[:, None]
    view_a = rng.standard_normal((n_samples, view_width)) + sign * signal * ((subtask == 0) | multi)[:, None]
    view_b = rng.standard_normal((n_samples, view_width)) + sign * signal * ((subtask == 1) | multi)[:, None]
    flip = rng.random(n_samples) < noise
    y = np.where(flip, 1 - y, y)
    return np.hstack([cue, view_a, view_b]).astype(np.float32), y.astype(np.int64), subtask.astype(np.int64)


def make_clustered_subtasks(
    n_samples: int = 2000,
    n_subtasks: int = 4,
    rule_width: int = 1,
    separation: float = 3.0,
    cue_spread: float = 0.5,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-tasks that a sparse MoE of narrow experts solves better than a dense model of one expert's width.

    Features: [cue (2), rule block 0 (rule_width), ..., rule block S-1 (rule_width)], all N(0, 1)
    except the cue. The routing cue places sub-task s around separation * (cos 2 pi s / S,
    sin 2 pi s / S) with spread `cue_spread`: the centres are the corners of a regular polygon, so a
    linear gate can tell every sub-task from the others. The label of a sub-task-s sample is
    y = [sum of its own block's features > 0] (then flipped with probability `noise`): each sub-task
    has its own simple rule, on features the other sub-tasks ignore, and the rule features are not
    the cue. An expert that serves one sub-task needs one direction of its input; a dense model must
    learn all S of them and switch between them by the cue, inside one expert's hidden width. With
    narrow experts (4 hidden units for 4 sub-tasks) the MoE, whose gate does the switching, learns
    this clearly better in the same epochs (tests/test_designed_data_ones.py; notebook 04).
    Returns (X, y, subtask): X (n, 2 + S * rule_width) float32, binary y, subtask in {0, ..., S-1}.
    """
    if not isinstance(n_samples, int) or n_samples < 20:
        raise UserError(f"n_samples={n_samples!r} is not allowed: n_samples must be an integer >= 20")
    if isinstance(n_subtasks, bool) or not isinstance(n_subtasks, int) or n_subtasks < 2:
        raise UserError(f"n_subtasks={n_subtasks!r} is not allowed: n_subtasks must be an integer >= 2")
    if isinstance(rule_width, bool) or not isinstance(rule_width, int) or rule_width < 1:
        raise UserError(f"rule_width={rule_width!r} is not allowed: rule_width must be an integer >= 1")
    if not separation > 0:
        raise UserError(f"separation={separation!r} is not allowed: separation must be > 0")
    if not cue_spread > 0:
        raise UserError(f"cue_spread={cue_spread!r} is not allowed: cue_spread must be > 0")
    if not 0.0 <= noise < 0.5:
        raise UserError(f"noise={noise!r} is not allowed: noise must be in [0, 0.5)")
    rng = np.random.default_rng(seed)
    subtask = rng.integers(0, n_subtasks, n_samples)
    angles = 2 * np.pi * np.arange(n_subtasks) / n_subtasks
    centres = separation * np.column_stack([np.cos(angles), np.sin(angles)])
    cue = centres[subtask] + cue_spread * rng.standard_normal((n_samples, 2))
    rules = rng.standard_normal((n_samples, n_subtasks * rule_width))
    # y = [sum of the sample's own block > 0]: block s = rule features [s * m, (s + 1) * m)
    own = rules.reshape(n_samples, n_subtasks, rule_width)[np.arange(n_samples), subtask]
    y = (own.sum(1) > 0).astype(np.int64)
    flip = rng.random(n_samples) < noise
    y[flip] = 1 - y[flip]
    return np.hstack([cue, rules]).astype(np.float32), y, subtask.astype(np.int64)
