"""The data designed for OneS (notebook 04): `clustered_subtasks`, on which a top-2-of-4 MoE of
narrow experts beats the dense model of one expert's width, so that OneS has a benefit to keep."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modekit as mk
from modekit.data.synthetic import make_clustered_subtasks
from modekit.ones.experiment import moe_advantage, run_ones

# The FAST configuration of notebook 04 (its EPOCHS and EXPERT_HIDDEN), 5 seeds
EPOCHS, EXPERT_HIDDEN, SEEDS = 15, 4, [0, 1, 2, 3, 4]


def test_the_cue_tells_the_subtasks_apart_and_is_not_a_rule_feature():
    X, y, subtask = make_clustered_subtasks(n_samples=4000, noise=0.0, seed=0)
    assert X.shape == (4000, 6) and X.dtype == np.float32 and set(np.unique(subtask)) == {0, 1, 2, 3}
    cue, rules = X[:, :2], X[:, 2:]
    # a linear gate on the cue alone recognises the sub-task
    assert LogisticRegression(max_iter=500).fit(cue, subtask).score(cue, subtask) > 0.97
    # the label is the sign of the sample's own rule feature; the cue alone says nothing about it
    assert np.array_equal(y, (rules[np.arange(4000), subtask] > 0).astype(np.int64))
    assert LogisticRegression(max_iter=500).fit(cue, y).score(cue, y) < 0.6
    # each sub-task is linear on its own, no single linear model solves them together
    per_task = [
        LogisticRegression(max_iter=500).fit(X[subtask == s], y[subtask == s]).score(X[subtask == s], y[subtask == s]) for s in range(4)
    ]
    assert min(per_task) > 0.97 and LogisticRegression(max_iter=500).fit(X, y).score(X, y) < 0.8


def test_generator_is_seeded_and_its_knobs_work():
    a, b, c = (make_clustered_subtasks(n_samples=300, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(p, q) for p, q in zip(a, b)) and not np.array_equal(a[0], c[0])
    X, y, subtask = make_clustered_subtasks(n_samples=3000, n_subtasks=3, rule_width=2, noise=0.1, seed=0)
    assert X.shape == (3000, 2 + 3 * 2) and set(np.unique(subtask)) == {0, 1, 2}
    clean = (X[:, 2:].reshape(3000, 3, 2)[np.arange(3000), subtask].sum(1) > 0).astype(np.int64)
    assert (clean != y).mean() == pytest.approx(0.1, abs=0.02)  # label noise: flipped with probability 0.1
    data = mk.load("clustered_subtasks", seed=1)
    assert data.feature_names[:3] == ["cue0", "cue1", "r0_0"] and len(data.subtask_names) == 4
    assert mk.data.CATALOGUE["clustered_subtasks"] == ("tabular", sum(data.sizes.values()), data.n_features, data.n_classes)


@pytest.mark.parametrize(
    "knobs, message",
    [({"n_subtasks": 1}, "n_subtasks=1"), ({"rule_width": 0}, "rule_width=0"), ({"noise": 0.5}, "noise=0.5"),
     ({"separation": 0}, "separation=0"), ({"cue_spread": -1}, "cue_spread=-1"), ({"n_samples": 5}, "n_samples=5")],
)  # fmt: skip
def test_bad_knobs_are_refused_by_name(knobs, message):
    with pytest.raises(ValueError, match=f"{message} is not allowed"):
        make_clustered_subtasks(**knobs)


@pytest.mark.slow
def test_moe_beats_the_dense_model_of_one_experts_width_over_five_seeds():
    """The paired MoE - dense test-accuracy gap over 5 seeds: its 95% t interval lies above 0."""
    results = run_ones("clustered_subtasks", methods=(), seeds=SEEDS, mode_alpha=0.0, expert_hidden=EXPERT_HIDDEN,
                       train_config=mk.TrainConfig(epochs=EPOCHS, progress=False, device="cpu"))  # fmt: skip
    gap = moe_advantage(results)
    assert gap.n == 5 and gap.ci_low > 0, gap
    assert gap.verdict == "reproduced"
