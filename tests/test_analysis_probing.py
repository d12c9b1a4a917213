"""Tests of modekit.analysis.probing."""

import numpy as np
import pandas as pd
import pytest
import torch

import modekit as mk
from modekit.analysis import probing


def two_feature_experts_model():
    """Two experts on two features: expert i alone predicts class 1 iff x_i > 0 (it reads only
    feature i); the dense gate starts uniform, so the un-forced model reads both features."""
    model = mk.build_model(mk.ModelConfig(n_features=2, n_classes=2, n_experts=2, expert_hidden=2, expert_out=2), seed=0)
    layer, head = model.moe, model.tower[-1]
    with torch.no_grad():
        layer.gate.proj.weight.zero_()
        layer.gate.proj.bias.zero_()
        for name in ("w1", "b1", "w2", "b2"):
            getattr(layer.experts, name).zero_()
        for i in range(2):
            layer.experts.w1[i, i] = torch.tensor([1.0, -1.0])  # hidden (relu(x_i), relu(-x_i))
            layer.experts.w2[i] = torch.eye(2)
        head.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # logit 1 = relu(x_i), logit 0 = relu(-x_i)
        head.bias.zero_()
    return model


def test_gate_recognition_accepts_float_subtask_labels():
    """Kills probing.x__matching__mutmut_3 / _5 (labels no longer cast to int: float labels, e.g.
    read from a float column, break the counting)."""
    weights = np.eye(2)[[0, 1, 1, 0]]
    assert probing.gate_recognition_accuracy(weights, np.array([1.0, 0.0, 0.0, 1.0])) == 1.0


def test_matched_experts_has_one_expert_per_subtask_when_experts_outnumber_subtasks():
    """Kills probing.x__matching__mutmut_10 (a phantom sub-task row: max + 2 rows instead of max + 1)."""
    weights = np.eye(4)[[2, 2, 0, 0, 2]]
    assert probing.matched_experts(weights, [0, 0, 1, 1, 0]).tolist() == [2, 0]


def test_expert_feature_importance_forces_each_expert_and_is_reproducible():
    """Kills probing.x_expert_feature_importance__mutmut_13 (gate not forced), _35 (base + accuracy),
    _44 - _50 / _53 (rows or their columns lost), _1 / _2 (default repeats 5 / seed 0 changed) and
    _3 / _31 / _33 (the seeded generator replaced by the global RNG)."""
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 2, generator=generator)
    y = (X[:, 0] > 0).long()
    model = two_feature_experts_model()
    torch.manual_seed(1)
    table = probing.expert_feature_importance(model, X, y)
    assert list(table.columns) == ["expert", "feature", "importance"]
    importance = table.set_index(["expert", "feature"]).importance
    assert sorted(importance.index) == [(0, "x0"), (0, "x1"), (1, "x0"), (1, "x1")]
    # expert 0 alone is right on every sample and ignores x1; expert 1 ignores x0
    assert importance[0, "x1"] == 0.0 and importance[1, "x0"] == 0.0
    assert importance[0, "x0"] > 0.2
    torch.manual_seed(2)  # another global RNG state: the permutations come from `seed` only
    pd.testing.assert_frame_equal(probing.expert_feature_importance(model, X, y, repeats=5, seed=0), table)
    assert not probing.expert_feature_importance(model, X, y, repeats=5, seed=1).equals(table)
    assert not probing.expert_feature_importance(model, X, y, repeats=6, seed=0).equals(table)


def tabular_model(n_features=3, n_experts=3, **changes):
    return mk.build_model(mk.ModelConfig(n_features=n_features, n_classes=2, n_experts=n_experts, **changes), seed=0)


def one_hot(labels, n_experts):
    return np.eye(n_experts)[np.asarray(labels)]


# --- effective sample share ---


def test_ess_is_one_under_uniform_gate_weights():
    weights = np.full((12, 4), 0.25)
    np.testing.assert_allclose(probing.effective_sample_share(weights), np.ones(4), rtol=0, atol=1e-12)


def test_ess_is_one_over_e_under_one_hot_routing_with_equal_counts():
    weights = one_hot([0, 1, 2, 3] * 3, 4)
    np.testing.assert_allclose(probing.effective_sample_share(weights), np.full(4, 0.25), rtol=0, atol=1e-12)


def test_ess_uses_squared_numerator():
    """Kills `weights.sum(0)` in place of `weights.sum(0) ** 2` (column sums here are not 1)."""
    weights = np.array([[0.9, 0.1], [0.8, 0.2], [0.5, 0.5], [0.0, 1.0]])
    # column 0: sum 2.2, sum of squares 1.70; column 1: sum 1.8, sum of squares 1.30; n = 4
    expected = np.array([2.2**2 / 1.70 / 4, 1.8**2 / 1.30 / 4])
    np.testing.assert_allclose(probing.effective_sample_share(weights), expected, rtol=1e-12)


# --- gate recognition accuracy and matched experts (Hungarian matching) ---


def test_gate_recognition_accuracy_is_invariant_to_expert_permutation():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(4), size=40)
    subtask = rng.integers(0, 4, size=40)
    base = probing.gate_recognition_accuracy(weights, subtask)
    for permutation in ([1, 0, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1]):
        assert probing.gate_recognition_accuracy(weights[:, permutation], subtask) == pytest.approx(base)


def test_gate_recognition_accuracy_is_one_for_perfect_routing_with_permuted_labels():
    """Kills minimising the matching (`linear_sum_assignment(counts)`): it would match no sample."""
    subtask = np.array([0, 0, 1, 1, 1, 2, 2])
    permutation = np.array([2, 0, 1])  # sub-task t is routed to expert permutation[t]
    weights = one_hot(permutation[subtask], 3)
    assert probing.gate_recognition_accuracy(weights, subtask) == 1.0


def test_gate_recognition_accuracy_maximises_matched_counts():
    """Kills `linear_sum_assignment(counts)`: counts [[5, 1], [2, 4]] -> best 9/12, worst 3/12."""
    subtask = np.array([0] * 6 + [1] * 6)
    routed = np.array([0] * 5 + [1] + [0] * 2 + [1] * 4)
    weights = one_hot(routed, 2)
    assert probing.gate_recognition_accuracy(weights, subtask) == pytest.approx(9 / 12)
    # with the experts relabelled the best matching is the anti-diagonal, still 9/12
    assert probing.gate_recognition_accuracy(weights[:, ::-1], subtask) == pytest.approx(9 / 12)


def test_matched_experts_recovers_the_permutation():
    """Kills a minimising matching in matched_experts."""
    subtask = np.array([0, 0, 1, 1, 1, 2, 2])
    permutation = np.array([2, 0, 1])
    weights = one_hot(permutation[subtask], 3)
    np.testing.assert_array_equal(probing.matched_experts(weights, subtask), permutation)


def test_matched_experts_maximises_matched_counts():
    """Kills `linear_sum_assignment(counts)`: counts [[5, 1], [2, 4]] -> task 0 -> expert 0, task 1 -> 1."""
    subtask = np.array([0] * 6 + [1] * 6)
    routed = np.array([0] * 5 + [1] + [0] * 2 + [1] * 4)
    np.testing.assert_array_equal(probing.matched_experts(one_hot(routed, 2), subtask), [0, 1])
    np.testing.assert_array_equal(probing.matched_experts(one_hot(1 - routed, 2), subtask), [1, 0])


# --- expert consistency ---


def test_expert_consistency_is_one_for_identical_experts():
    model = tabular_model()
    experts = model.moe.experts
    with torch.no_grad():
        for name in ("w1", "b1", "w2", "b2"):
            parameter = getattr(experts, name)
            parameter.copy_(parameter[0:1].expand_as(parameter))
    X = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    result = probing.expert_consistency(model, X)
    assert result["cosine_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert result["distillation_loss"] == pytest.approx(0.0, abs=1e-8)


def test_expert_consistency_is_below_one_for_distinct_experts():
    model = tabular_model()
    X = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    result = probing.expert_consistency(model, X)
    assert result["cosine_similarity"] < 0.99 and result["distillation_loss"] > 0


# --- expert probing ---


def routed_by_sign_model():
    """Two experts; the gate sends x0 > 0 to expert 0 and x0 < 0 to expert 1 (weights ~ one-hot).
    Expert 0 alone always predicts class 1, expert 1 alone always predicts class 0."""
    model = mk.build_model(mk.ModelConfig(n_features=3, n_classes=2, n_experts=2, expert_hidden=4, expert_out=4), seed=0)
    layer, tower = model.moe, model.tower[-1]
    with torch.no_grad():
        layer.gate.proj.weight.copy_(torch.tensor([[20.0, 0.0, 0.0], [-20.0, 0.0, 0.0]]))
        layer.gate.proj.bias.zero_()
        for name in ("w1", "b1", "w2"):
            getattr(layer.experts, name).zero_()
        layer.experts.b2.copy_(torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
        tower.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
        tower.bias.zero_()
    return model


def test_expert_probing_masks_by_the_gate_domain():
    model = routed_by_sign_model()
    signs = torch.tensor([1, -1, 1, 1, -1, 1, 1, -1, 1, 1], dtype=torch.float32)  # DS_0: 7 samples, DS_1: 3
    X = torch.stack([signs, torch.linspace(-1, 1, 10), torch.zeros(10)], 1)
    # labels: DS_0 (x0 > 0) has five 1s and two 0s; DS_1 (x0 < 0) has two 1s and one 0
    y = torch.tensor([1, 1, 1, 1, 1, 1, 0, 0, 1, 0])
    assert (probing.dominating_expert(probing.gate_weights(model, X)) == (signs < 0).long().numpy()).all()
    table = probing.expert_probing(model, X, y).set_index(["expert", "domain"]).sort_index()
    expected = pd.DataFrame(
        {
            "expert": [0, 0, 1, 1],
            "domain": [0, 1, 0, 1],
            "own": [True, False, False, True],
            "samples": [7, 3, 7, 3],
            # expert 0 (always class 1): 5/7 on its own DS, 2/3 on DS_1; expert 1 (always 0): 2/7, 1/3 own
            "accuracy": [5 / 7, 2 / 3, 2 / 7, 1 / 3],
        }
    ).set_index(["expert", "domain"])
    assert list(table["own"]) == list(expected["own"])
    assert list(table["samples"]) == list(expected["samples"])
    np.testing.assert_allclose(table["accuracy"].to_numpy(), expected["accuracy"].to_numpy(), rtol=1e-6)


# --- probing leaves the model as it found it ---

PROBES = {
    "gate_weights": lambda model, X, y: probing.gate_weights(model, X),
    "expert_probing": lambda model, X, y: probing.expert_probing(model, X, y),
    "expert_consistency": lambda model, X, y: probing.expert_consistency(model, X),
    "expert_feature_importance": lambda model, X, y: probing.expert_feature_importance(model, X, y, repeats=1),
    "decision_grid": lambda model, X, y: probing.decision_grid(model, X, resolution=4),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_probing_preserves_train_eval_mode(probe):
    model = tabular_model(n_features=2, n_experts=2, expert_hidden=4, expert_out=4)
    generator = torch.Generator().manual_seed(0)
    X, y = torch.randn(12, 2, generator=generator), torch.randint(0, 2, (12,), generator=generator)
    model.train()
    PROBES[probe](model, X, y)
    assert model.training and all(module.training for module in model.modules()), f"{probe} left the model in eval mode"
    model.eval()
    PROBES[probe](model, X, y)
    assert not any(module.training for module in model.modules()), f"{probe} left the model in train mode"
    assert probing.first_moe(model).forced_expert is None


# --- token-level gates ---


def test_gate_weights_refuses_per_token_gates():
    """gate_weights must not flatten a transformer's (n, t, E) gate into a (n, t*E) array."""
    model = mk.build_model(
        mk.ModelConfig(
            backbone="transformer", vocab_size=20, max_length=6, n_classes=2, d_model=16, n_heads=2, n_layers=1, expert_hidden=8
        ),
        seed=0,
    )
    X = torch.randint(1, 20, (5, 6), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="(?i)token"):
        probing.gate_weights(model, X)


def test_expert_output_gradients_match_the_derivation():
    """docs/method.md §2: dL_task/de_i(x) = g_i(x) dL_task/dh(x); dL_KD/de_i(x) = 4 (e_i - mean e) / ((E - 1) p n)."""
    data = mk.load("subtasks", seed=0, n_samples=300)
    config = mk.ModelConfig(n_features=data.n_features, n_classes=2, n_experts=3, expert_hidden=8, expert_out=4)
    model = mk.build_model(config, seed=0)
    torch.nn.init.normal_(model.moe.gate.proj.weight)  # a gate that is not uniform
    grads = probing.expert_output_gradients(model, data.X_test, data.y_test)
    e, n, p = grads["outputs"].shape
    assert (e, p) == (3, 4) and n == len(data.y_test)
    expected_task = grads["gate_weights"].T[:, :, None] * grads["mixed"][None]
    np.testing.assert_allclose(grads["task"], expected_task, rtol=1e-5, atol=1e-9)
    outputs = grads["outputs"]
    expected_kd = 4.0 / ((e - 1) * p * n) * (outputs - outputs.mean(0, keepdims=True))
    np.testing.assert_allclose(grads["distillation"], expected_kd, rtol=1e-4, atol=1e-9)


def test_gradient_sample_share_counts_the_samples_that_teach():
    even = np.ones((2, 10, 3))
    one = np.zeros((2, 10, 3))
    one[:, 0] = 1.0
    np.testing.assert_allclose(probing.gradient_sample_share(even), [1.0, 1.0])
    np.testing.assert_allclose(probing.gradient_sample_share(one), [0.1, 0.1])
    half = np.zeros((1, 4, 1))
    half[0, :2] = 2.0
    shares = probing.gradient_share_by_group(half, np.array([0, 0, 1, 1]))
    assert shares.share.tolist() == [1.0, 0.0]


def test_subtask_domains_score_every_model_on_the_same_samples():
    weights = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    subtask = np.array([1, 1, 0, 0])  # the gate sends sub-task 1 to expert 0
    np.testing.assert_array_equal(probing.subtask_domains(weights, subtask), [0, 0, 1, 1])


def test_other_view_share_reads_the_matched_experts_importance():
    importance = pd.DataFrame(
        {
            "expert": [0, 0, 0, 1, 1, 1],
            "feature": ["cue", "A0", "B0", "cue", "A0", "B0"],
            "importance": [0.3, 0.2, 0.0, 0.1, 0.1, -0.05],
        }
    )
    # sub-task A -> expert 1 (uses A0 only: share 0), sub-task B -> expert 0 (B0 own 0, A0 other 0.2: share 1)
    assert probing.other_view_share(importance, np.array([1, 0])) == [0.0, 1.0]


def _routed_model(seed: int = 0):
    """A 2-expert tabular MoE (4 features, 3 classes) with a random gate, so routing is not uniform."""
    torch.manual_seed(seed)
    model = mk.build_model(mk.ModelConfig(n_features=4, n_classes=3, n_experts=2, expert_hidden=8, expert_out=6), seed=seed)
    torch.nn.init.normal_(probing.first_moe(model).gate.proj.weight, std=2.0)
    X, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    subtask = (X[:, 0] > 0).numpy().astype(int)
    return model, X, y, subtask


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_gradient_reach_is_each_matched_experts_share_from_the_other_subtask(alpha):
    """Recomputed by hand from `expert_output_gradients`: per sub-task t and its matched expert i, the
    share of sum_x |dL/de_i(x)| from samples outside t (task gradient, and task + alpha L_KD), the
    effective sample share of each, and L_KD's part of the expert's gradient mass."""
    model, X, y, subtask = _routed_model()
    table = probing.gradient_reach(model, X, y, subtask, alpha)
    grads = probing.expert_output_gradients(model, X, y)
    matched = probing.matched_experts(grads["gate_weights"], subtask)
    assert list(table.columns) == ["sub-task", "expert", "other_share_task", "sample_share_task", "other_share_total",
                                   "sample_share_total", "distillation_part"]  # fmt: skip
    assert list(table["sub-task"]) == [0, 1] and list(table.expert) == [int(e) for e in matched]
    for row in table.itertuples():
        i, outside = row.expert, subtask != row[1]
        for label, gradient in (("task", grads["task"][i]), ("total", grads["task"][i] + alpha * grads["distillation"][i])):
            strength = np.linalg.norm(gradient, axis=-1)
            assert getattr(row, f"other_share_{label}") == pytest.approx(strength[outside].sum() / strength.sum())
            assert getattr(row, f"sample_share_{label}") == pytest.approx(strength.sum() ** 2 / (len(strength) * (strength**2).sum()))
        task_mass = np.linalg.norm(grads["task"][i], axis=-1).sum()
        distill_mass = np.linalg.norm(alpha * grads["distillation"][i], axis=-1).sum()
        assert row.distillation_part == pytest.approx(distill_mass / (task_mass + distill_mass))
    if alpha == 0:
        assert (table.distillation_part == 0).all()
        assert (table.other_share_task == table.other_share_total).all()
    else:
        assert (table.distillation_part > 0).all() and not np.allclose(table.other_share_task, table.other_share_total)


def test_gradient_share_by_group_sums_to_one_per_expert_and_names_its_columns():
    gradients = np.abs(np.random.default_rng(0).normal(size=(2, 6, 3)))
    group = np.array([0, 0, 1, 1, 1, 2])
    table = probing.gradient_share_by_group(gradients, group)
    assert list(table.columns) == ["expert", "group", "share"] and len(table) == 6
    np.testing.assert_allclose(table.groupby("expert").share.sum(), [1.0, 1.0])
    strength = np.linalg.norm(gradients[1], axis=-1)
    assert table[(table.expert == 1) & (table.group == 1)].share.item() == pytest.approx(strength[2:5].sum() / strength.sum())


def test_expert_probing_uses_a_given_domain_and_first_moe_names_a_model_without_one():
    """An explicit domain (e.g. the known sub-tasks) replaces the gate's DS; a OneS student has no MoE layer."""
    model = routed_by_sign_model()
    X = torch.stack([torch.linspace(-1, 1, 10), torch.linspace(-1, 1, 10), torch.zeros(10)], 1)
    y = torch.tensor([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    domain = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # not the gate's DS (the sign of x0 splits 5 / 5)
    table = probing.expert_probing(model, X, y, domain=domain).set_index(["expert", "domain"]).sort_index()
    assert list(table["samples"]) == [4, 6, 4, 6]
    # expert 0 always says 1: 4/4 on domain 0, 1/6 on domain 1; expert 1 always says 0: 0/4, 5/6
    np.testing.assert_allclose(table["accuracy"].to_numpy(), [1.0, 1 / 6, 0.0, 5 / 6], rtol=1e-6)
    from modekit.ones.gathering import make_student

    student = make_student(model, "sum")
    with pytest.raises(ValueError, match=rf"^model {type(student).__name__} has no MoE layer to probe \(a OneS student has none\)$"):
        probing.first_moe(student)


def test_expert_output_gradients_of_a_single_expert_have_no_distillation_part():
    """One expert: no pair, no L_KD; its distillation gradient is zero, its task gradient g dL/dh = dL/dh."""
    model = mk.build_model(mk.ModelConfig(n_features=3, n_classes=2, n_experts=1, expert_hidden=4, expert_out=2), seed=0)
    generator = torch.Generator().manual_seed(0)
    X, y = torch.randn(6, 3, generator=generator), torch.randint(0, 2, (6,), generator=generator)
    grads = probing.expert_output_gradients(model, X, y)
    assert grads["distillation"].shape == grads["outputs"].shape == (1, 6, 2)
    assert not grads["distillation"].any()
    np.testing.assert_allclose(grads["task"][0], grads["mixed"], rtol=1e-5)


def test_other_view_share_uses_only_the_matched_expert():
    importance = pd.DataFrame(
        {
            "expert": [0, 0, 1, 1],
            "feature": ["A0", "B0", "A0", "B0"],
            "importance": [0.4, 0.0, 0.1, 0.3],
        }
    )
    # sub-task A -> expert 0 (A0 only: share 0); sub-task B -> expert 1 (B0 own 0.3, A0 other 0.1: share 0.25)
    assert probing.other_view_share(importance, np.array([0, 1])) == pytest.approx([0.0, 0.25])


def test_subtask_domains_accept_float_subtask_labels():
    weights = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    np.testing.assert_array_equal(probing.subtask_domains(weights, np.array([1.0, 1.0, 0.0, 0.0])), [0, 0, 1, 1])


def test_the_pictured_seed_is_the_first_that_routes_and_later_seeds_are_not_computed():
    asked = []

    def recognition(seed):
        asked.append(seed)
        return {10: 0.6, 11: 0.97, 12: 0.99}[seed]

    assert probing.first_routed_seed([10, 11, 12], recognition, 0.95) == 11 and asked == [10, 11]
    assert probing.first_routed_seed([10, 11, 12], recognition, 0.995) == 10  # none routes: the first seed
    assert probing.first_routed_seed(range(10, 13), lambda seed: 0.97, 0.97) == 10  # "above" is strict


def test_narrowness_in_words_at_its_bounds():
    assert probing.narrowness(0.5) == probing.narrowness(probing.NARROW_SHARE) == "narrow"
    assert probing.narrowness(0.7) == probing.narrowness(probing.BARELY_NARROWED_SHARE) == "partly narrowed"
    assert probing.narrowness(0.81) == probing.narrowness(1.0) == "barely narrowed"
