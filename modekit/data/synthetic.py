"""Synthetic data with a hidden sub-task label, designed so that the papers' phenomena can happen.

Each sample belongs to sub-task s (0 = A or 1 = B). Feature 0 is the routing cue: its mean is -sep
for sub-task A and +sep for B, and it carries nothing about the label within a sub-task. The other
features are the rule features; each sub-task labels its samples by its own rule on them, so one
model needs the cue to know which rule applies, and a gate that splits by the cue gives each expert
one simple rule (docs/method.md §5, "designed data"; tests/test_data_synthetic.py checks over seeds
that a two-expert MoE's gate does find the sub-tasks).

- `make_subtasks` (d = 5 features by default): A labels by the sign of x1 x2 (an XOR of two rule
  features), B by the sign of x3 x4; features beyond x4 (n_features > 5) are distractors. Neither rule
  is linear and the two share no feature, so no split other than the cue's leaves each expert a
  single rule. Distractors make the gate's search harder: with three of them a two-expert MoE's
  recognition accuracy fell from 0.92 to 0.84 on average over 10 seeds.
- `make_subtasks_2d` (x0, x1, for pictures): A says y = 1 when x1 > t, B when x1 < -t. A split along
  x0 leaves one threshold per expert; a split along x1 would leave three regions, so the cue's split
  is the one two experts should find (the older XOR of the signs of x0 and x1 was symmetric: a split
  along x1 was as good, and the sub-tasks were not identifiable).
`imbalance` makes sub-task B rare (its expert then learns from few samples: narrow vision).
"""

from __future__ import annotations

import numpy as np

from modekit.errors import UserError

THRESHOLD_2D = 0.4  # |x1| beyond which the 2-D rules say "1": P(y = 1) = P(x1 > 0.4) = 0.34 (ours)


def _check_common(n_samples, imbalance, noise) -> None:
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 20:
        raise UserError(f"n_samples={n_samples!r} is not allowed: n_samples must be an integer >= 20")
    if not 0.0 < imbalance < 1.0:
        raise UserError(f"imbalance={imbalance!r} is not allowed: imbalance must be strictly between 0 and 1")
    if not 0.0 <= noise < 0.5:
        raise UserError(f"noise={noise!r} is not allowed: noise must be in [0, 0.5)")


def _cue_and_flips(rng, n_samples, imbalance, noise, separation, n_features):
    """Sub-task labels, features with the routing cue in column 0, and the label-noise mask."""
    subtask = (rng.random(n_samples) >= imbalance).astype(np.int64)
    X = rng.standard_normal((n_samples, n_features))
    # feature 0: the routing cue, -sep for sub-task A, +sep for sub-task B
    X[:, 0] += np.where(subtask == 1, separation, -separation)
    return subtask, X, rng.random(n_samples) < noise


def make_subtasks(
    n_samples: int = 4000,
    n_features: int = 5,
    imbalance: float = 0.5,
    noise: float = 0.02,
    separation: float = 4.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (X, y, subtask): X (n, d) float32, binary y, subtask in {0, 1}.

    y = 1[x1 x2 > 0] in sub-task A, 1[x3 x4 > 0] in sub-task B; x5 ... are distractors.
    imbalance: share of samples in sub-task A (0.5 = balanced; 0.9 = sub-task B is rare).
    noise: probability that a label is flipped.  separation: the cue's mean is -+separation.
    """
    _check_common(n_samples, imbalance, noise)
    if not isinstance(n_features, int) or n_features < 5:
        raise UserError(f"n_features={n_features!r} is not allowed: n_features must be an integer >= 5 (cue + two rule pairs)")
    rng = np.random.default_rng(seed)
    subtask, X, flip = _cue_and_flips(rng, n_samples, imbalance, noise, separation, n_features)
    # y = 1[x1 x2 > 0] (A) or 1[x3 x4 > 0] (B)
    y = np.where(subtask == 0, X[:, 1] * X[:, 2] > 0, X[:, 3] * X[:, 4] > 0).astype(np.int64)
    y[flip] = 1 - y[flip]
    return X.astype(np.float32), y, subtask


def make_subtasks_2d(
    n_samples: int = 4000,
    imbalance: float = 0.5,
    noise: float = 0.02,
    separation: float = 4.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2-D version (x0 cue, x1 rule feature): y = 1[x1 > t] in A, 1[x1 < -t] in B (t = THRESHOLD_2D)."""
    _check_common(n_samples, imbalance, noise)
    rng = np.random.default_rng(seed)
    subtask, X, flip = _cue_and_flips(rng, n_samples, imbalance, noise, separation, 2)
    # y = 1[x1 > t] (A) or 1[x1 < -t] (B)
    y = np.where(subtask == 0, X[:, 1] > THRESHOLD_2D, X[:, 1] < -THRESHOLD_2D).astype(np.int64)
    y[flip] = 1 - y[flip]
    return X.astype(np.float32), y, subtask


def _xor_pair(rng, y: np.ndarray) -> np.ndarray:
    """Two standard-normal features whose product has the sign of the class: sign(a0 a1) = 2 y - 1."""
    pair = rng.standard_normal((len(y), 2))
    wrong = np.sign(pair[:, 0] * pair[:, 1]) != np.where(y == 1, 1.0, -1.0)
    pair[wrong, 1] *= -1.0
    return pair


def make_multiview(
    n_samples: int = 4000,
    multi_view_share: float = 0.1,
    separation: float = 4.0,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two redundant views of the class, and sub-tasks that mostly see different views.

    Features: [cue, A0, A1, B0, B1]. A view "shows" the class when the sign of its pair's product is
    the class (an XOR, as in `make_subtasks`); otherwise its pair is noise. A multi-view sample shows
    the class in both views; a single-view sample only in its sub-task's view (A for sub-task A, B for
    B). With few multi-view samples a two-expert MoE's experts become single-view
    (tests/test_data_synthetic.py). The question (MoDE §5.4.3, weakly supported in our summary): does
    mutual distillation make an expert use the view its peer learned?
    """
    _check_common(n_samples, 0.5, noise)
    if not 0.0 <= multi_view_share <= 1.0:
        raise UserError(f"multi_view_share={multi_view_share!r} is not allowed: it must be in [0, 1]")
    rng = np.random.default_rng(seed)
    subtask = rng.integers(0, 2, n_samples)
    y = rng.integers(0, 2, n_samples)
    multi = rng.random(n_samples) < multi_view_share
    cue = rng.standard_normal((n_samples, 1)) + np.where(subtask == 1, separation, -separation)[:, None]
    views = []
    for view in (0, 1):
        shows = ((subtask == view) | multi)[:, None]
        views.append(np.where(shows, _xor_pair(rng, y), rng.standard_normal((n_samples, 2))))
    flip = rng.random(n_samples) < noise
    y = np.where(flip, 1 - y, y)
    return np.hstack([cue, *views]).astype(np.float32), y.astype(np.int64), subtask.astype(np.int64)


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
    this clearly better in the same epochs (tests/test_ones_designed_data.py; notebook 04).
    Returns (X, y, subtask): X (n, 2 + S * rule_width) float32, binary y, subtask in {0, ..., S-1}.
    """
    _check_common(n_samples, 0.5, noise)
    if isinstance(n_subtasks, bool) or not isinstance(n_subtasks, int) or n_subtasks < 2:
        raise UserError(f"n_subtasks={n_subtasks!r} is not allowed: n_subtasks must be an integer >= 2")
    if isinstance(rule_width, bool) or not isinstance(rule_width, int) or rule_width < 1:
        raise UserError(f"rule_width={rule_width!r} is not allowed: rule_width must be an integer >= 1")
    if not separation > 0:
        raise UserError(f"separation={separation!r} is not allowed: separation must be > 0")
    if not cue_spread > 0:
        raise UserError(f"cue_spread={cue_spread!r} is not allowed: cue_spread must be > 0")
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
