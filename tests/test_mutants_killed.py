"""Tests written against the mutants that survived `ci/mutation.sh` (mutmut 3.8.1 over the maths
modules). Each docstring names the mutant(s) it kills as mutmut reports them (the numbers shift when
the function changes) and says what the mutation was, so the test stays meaningful without them.
Small tensors only: the whole file runs in a few seconds."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as scipy_stats

import modekit as mk
from modekit import probing, stats
from modekit.functional import switch_balance_loss, truncated_svd
from modekit.gathering import (
    default_k,
    expert_spectra,
    gather_experts,
    gather_matrices,
    gather_neurons,
    k_limit,
    make_student,
    random_dense_blocks,
    second_k,
)
from modekit.nn import DenseGate, ExpertStack, MoELayer, NoisyTopKGate
from modekit.objectives import DistillationObjective, DistillConfig


def _topk_layer(seed=0, n_experts=3, top_k=2, **kwargs):
    """An eval-mode top-k MoE layer (4 -> 8 -> 3) with a random router, so routing is not uniform."""
    torch.manual_seed(seed)
    layer = MoELayer(4, 8, 3, n_experts=n_experts, gate="topk", top_k=top_k, **kwargs).eval()
    torch.nn.init.normal_(layer.gate.proj.weight)
    return layer


# --- functional ---


def test_truncated_svd_with_k_beyond_the_rank_is_the_matrix():
    """Kills functional.x_truncated_svd__mutmut_5 / _6 (full_matrices=False dropped or set True: U and
    V^T then keep more than min(a, b) vectors and a k above the rank no longer returns the matrix)."""
    matrix = torch.arange(15, dtype=torch.float64).reshape(3, 5).sin()
    torch.testing.assert_close(truncated_svd(matrix, 5), matrix)
    assert truncated_svd(matrix, 1).shape == (3, 5)


def test_balance_loss_counts_only_the_kept_positions():
    """Kills functional.x_switch_balance_loss__mutmut_6 (`sample_mask is None or True`: padding
    positions counted in f_i and P_i)."""
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, 2.0, 0.0], [5.0, -5.0, 0.0]])
    active = torch.zeros(4, 3, dtype=torch.bool).scatter(1, logits.topk(1, dim=1).indices, True)
    mask = torch.tensor([True, True, True, False])
    got = switch_balance_loss(logits, active, 1, mask)
    torch.testing.assert_close(got, switch_balance_loss(logits[:3], active[:3], 1))
    assert abs(got.item() - switch_balance_loss(logits, active, 1).item()) > 1e-3


def test_balance_loss_of_a_single_position():
    """Kills functional.x_switch_balance_loss__mutmut_13 (n clamped to at least 2, halving f_i and P_i
    for one position): n = 1, top-1 to expert 0 of 2 gives L = 2 * 1 * softmax(h)_0."""
    logits = torch.tensor([[1.0, 0.0]])
    got = switch_balance_loss(logits, torch.tensor([[True, False]]), 1)
    assert got.item() == pytest.approx(2 * math.exp(1) / (math.exp(1) + 1), rel=1e-6)


# --- gates ---


@pytest.mark.parametrize("gate", [DenseGate(4, 3), NoisyTopKGate(4, 3, 2)], ids=["dense", "topk"])
def test_gate_output_active_is_a_bool_mask_of_the_experts_receiving_each_sample(gate):
    """Kills gates.xǁDenseGateǁforward__mutmut_9 / _11 / _13 / _15 (active None or float ones) and
    gates.xǁNoisyTopKGateǁforward__mutmut_40 / _42 (active built as float instead of bool)."""
    torch.manual_seed(0)
    torch.nn.init.normal_(gate.proj.weight)
    out = gate.eval()(torch.randn(5, 4))
    assert out.active.dtype == torch.bool and out.active.shape == (5, 3)
    assert torch.equal(out.active, out.weights > 0)  # dense: every expert; top-k: exactly the routed ones
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(5))


# --- MoE layer ---


def test_layer_mask_reaches_the_balance_loss_and_the_distillation_term():
    """Kills moe.xǁMoELayerǁforward__mutmut_13 / _15 / _22 / _24 (the mask not passed to the gate),
    gates.xǁNoisyTopKGateǁforward__mutmut_55 / _59 (the gate not passing it to the balance loss) and
    moe.xǁMoELayerǁforward__mutmut_90 / _93 (the mask not passed to L_KD): padding must not count."""
    layer = _topk_layer()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    with torch.no_grad():
        padded, kept = layer(x, mask), layer(x[mask])
        unmasked = layer(x)
    torch.testing.assert_close(padded.balance_loss, kept.balance_loss)
    torch.testing.assert_close(padded.distillation_loss, kept.distillation_loss)
    assert abs(unmasked.balance_loss.item() - kept.balance_loss.item()) > 1e-4
    assert abs(unmasked.distillation_loss.item() - kept.distillation_loss.item()) > 1e-4


def test_topk_layer_default_keeps_two_experts():
    """Kills moe.xǁMoELayerǁ__init____mutmut_3 (default top_k 2 -> 3; docs/method.md §3)."""
    assert MoELayer(4, 8, 3, n_experts=4, gate="topk").gate.top_k == 2


def test_forced_expert_output_is_that_experts_output_and_has_no_pair():
    """Kills moe.xǁMoELayerǁforward__mutmut_29 (one-hot of 2.0: the forced expert doubled) and
    moe.xǁMoELayerǁforward__mutmut_32 / _34 (the forced gate's `active` dropped or left at the real
    gate's: under distill_among="active" one forced expert has no pair, L_KD = 0)."""
    torch.manual_seed(0)
    layer = MoELayer(4, 8, 3, n_experts=3, distill_among="active").eval()
    x = torch.randn(6, 4)
    with torch.no_grad():
        each = layer.expert_outputs(x)
        layer.forced_expert = 1
        out = layer(x)
    torch.testing.assert_close(out.output, each[1])
    assert torch.equal(out.gate_weights, torch.tensor([0.0, 1.0, 0.0]).expand(6, 3))
    assert out.distillation_loss.item() == 0.0


def test_sparse_inference_returns_what_the_dense_path_returns():
    """Kills experts.xǁExpertStackǁforward_routed__mutmut_34 (out / g instead of out * g: invisible
    under top-1, where every g is 1) and moe.xǁMoELayerǁforward__mutmut_51 / _54 / _55 / _56 / _67
    (the sparse path's L_KD = 0, gate weights, balance loss or their (..., e) shape lost)."""
    layer = _topk_layer(seed=2)
    torch.manual_seed(3)
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        dense = layer(x)
        layer.sparse_inference = True
        sparse = layer(x)
    assert not torch.all((dense.gate_weights == 0) | (dense.gate_weights == 1))  # top-2: weights below 1
    torch.testing.assert_close(sparse.output, dense.output)
    assert sparse.gate_weights.shape == (2, 5, 3)
    torch.testing.assert_close(sparse.gate_weights, dense.gate_weights)
    torch.testing.assert_close(sparse.balance_loss, dense.balance_loss)
    assert torch.is_tensor(sparse.distillation_loss) and sparse.distillation_loss.item() == 0.0


def test_sparse_inference_with_a_forced_expert_runs_that_expert_on_every_sample():
    """Kills moe.xǁMoELayerǁforward__mutmut_32 / _34 on the sparse path (dispatch by a missing
    `active`, or by the real gate's top-k, leaving samples not routed to the forced expert at 0)."""
    layer = _topk_layer(seed=4, top_k=1)
    x = torch.randn(8, 4)
    with torch.no_grad():
        each = layer.expert_outputs(x)
        assert not layer.gate(x).active[:, 0].all()  # some samples are routed elsewhere
        layer.sparse_inference, layer.forced_expert = True, 0
        torch.testing.assert_close(layer(x).output, each[0])


# --- experts ---


def test_expert_init_is_uniform_within_one_over_sqrt_fan_in():
    """Kills experts.xǁExpertStackǁreset_parameters__mutmut_3 (bound 2 / sqrt(fan_in) instead of 1)."""
    torch.manual_seed(0)
    stack = ExpertStack(4, 16, 32, 8)  # w1 fan-in 16, w2 fan-in 32
    for weight, bias, fan_in in ((stack.w1, stack.b1, 16), (stack.w2, stack.b2, 32)):
        bound = 1 / math.sqrt(fan_in)
        assert weight.abs().max() <= bound and bias.abs().max() <= bound
        assert weight.abs().max() > 0.95 * bound  # hundreds of draws reach close to the bound


# --- objectives ---


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_distill_config_accepts_the_ends_of_the_weight_range(weight):
    """Kills objectives.xǁDistillConfigǁ__post_init____mutmut_3 / _4 (0 < w or w < 1: the pure-CE and
    pure-KD recipes refused)."""
    assert DistillConfig(weight=weight).weight == weight


def test_distill_config_refuses_a_weight_above_one():
    """Kills objectives.xǁDistillConfigǁ__post_init____mutmut_5 (upper bound 2 instead of 1)."""
    with pytest.raises(ValueError, match="weight"):
        DistillConfig(weight=1.5)


def test_distillation_objective_moves_its_teacher_to_the_device():
    """Kills objectives.xǁDistillationObjectiveǁprepare__mutmut_2 (`.to(None)`: the teacher stays on
    the CPU). The meta device stands in for a GPU."""
    teacher = torch.nn.Linear(3, 2)
    objective = DistillationObjective(teacher).prepare(torch.device("meta"))
    assert objective.teacher.weight.device.type == "meta" and not objective.teacher.training


# --- probing ---


def test_gate_recognition_accepts_float_subtask_labels():
    """Kills probing.x__matching__mutmut_3 / _5 (labels no longer cast to int: float labels, e.g.
    read from a float column, break the counting)."""
    weights = np.eye(2)[[0, 1, 1, 0]]
    assert probing.gate_recognition_accuracy(weights, np.array([1.0, 0.0, 0.0, 1.0])) == 1.0


def test_matched_experts_has_one_expert_per_subtask_when_experts_outnumber_subtasks():
    """Kills probing.x__matching__mutmut_10 (a phantom sub-task row: max + 2 rows instead of max + 1)."""
    weights = np.eye(4)[[2, 2, 0, 0, 2]]
    assert probing.matched_experts(weights, [0, 0, 1, 1, 0]).tolist() == [2, 0]


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


# --- OneS gathering ---


def small_teacher(**changes):
    """A 2-expert tabular teacher, by default with experts 4 -> 6 -> 3 (W1 rank 4, W2 rank 3)."""
    shape = {"n_features": 4, "n_classes": 2, "n_experts": 2, "expert_hidden": 6, "expert_out": 3} | changes
    return mk.build_model(mk.ModelConfig(**shape), seed=0)


def test_default_and_largest_k_are_at_least_one_and_integers():
    """Kills gathering.x_default_k__mutmut_9 / _19 / _25 and x_k_limit__mutmut_14 (floor of 1 raised to 2),
    x_default_k__mutmut_20 and x_k_limit__mutmut_15 (`/` for `//`: a K of 2.5) and x_k_limit__mutmut_8 /
    _9 (the "neurons" entry renamed: notebook 04 asks k_limit for it)."""
    tiny = torch.zeros(4, 3, 3)  # every floor((...) / E) is 0 here
    assert [default_k(tiny, method) for method in ("topk", "neurons", "svd")] == [2, 1, 1]
    assert default_k(torch.zeros(4, 1, 3), "topk") == 1
    assert k_limit(tiny, "neurons")[0] == 1
    odd = torch.zeros(2, 3, 5)
    assert default_k(odd, "neurons") == 2 and isinstance(default_k(odd, "neurons"), int)
    assert k_limit(odd, "neurons")[0] == 2 and isinstance(k_limit(odd, "neurons")[0], int)


def test_gather_matrices_defaults_to_svd_refuses_neurons_and_bool_k():
    """Kills gathering.x_gather_matrices__mutmut_1 / _2 (default method "svd" misspelt),
    _26 / _27 (the "neurons" refusal misspelt: one matrix gathered without its partner layer) and
    _59 (`isinstance(k, bool) and ...`: k=True accepted as 1)."""
    weights = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gather_matrices(weights), gather_matrices(weights, "svd"))
    with pytest.raises(ValueError, match="neurons"):
        gather_matrices(weights, "neurons")
    with pytest.raises(ValueError, match="k=True"):
        gather_matrices(weights, "svd", k=True)


def test_svd_gathering_truncates_to_rank_k():
    """Kills gathering.x_gather_matrices__mutmut_93 (`truncated_svd(w, None)`: full rank whatever K)."""
    weights = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    expected = sum(truncated_svd(w, 1) for w in weights)
    torch.testing.assert_close(gather_matrices(weights, "svd", k=1), expected)
    assert torch.linalg.matrix_rank(truncated_svd(weights[0], 1)) == 1


def test_second_k_is_none_where_k_means_nothing_and_at_least_one():
    """Kills gathering.x_second_k__mutmut_4 - _9 ("sum" / "avg" / "neurons" misspelt: k_limit then
    fails or a K is made up) and _25 (floor 2: a rank-1 share of W1 giving rank 2 of W2)."""
    w1, w2 = torch.zeros(2, 8, 8), torch.zeros(2, 8, 2)
    assert [second_k(2, w1, w2, method) for method in ("sum", "avg", "neurons")] == [None, None, None]
    assert second_k(1, w1, w2, "svd") == 1  # round(1/8 * 2) = 0, kept at 1
    teacher = small_teacher()
    (with_k,), (without,) = gather_experts(teacher, "sum", k=3), gather_experts(teacher, "sum")
    torch.testing.assert_close(with_k.w2, without.w2)


def test_neurons_refuse_bool_and_oversized_k_and_accept_one():
    """Kills gathering.x_gather_neurons__mutmut_7 (limit floor 2 > h / E), _14 (k=True accepted) and
    _17 / _18 (k=1 refused)."""
    generator = torch.Generator().manual_seed(0)
    w1, b1 = torch.randn(2, 3, 3, generator=generator), torch.randn(2, 3, generator=generator)
    w2, b2 = torch.randn(2, 3, 4, generator=generator), torch.randn(2, 4, generator=generator)
    for bad in (2, True):  # h / E = 3 // 2 = 1
        with pytest.raises(ValueError, match=r"\[1, 1\]"):
            gather_neurons(w1, b1, w2, b2, k=bad)
    for got, want in zip(gather_neurons(w1, b1, w2, b2, k=1), gather_neurons(w1, b1, w2, b2)):
        torch.testing.assert_close(got, want)


def test_neurons_rank_units_by_the_product_of_both_norms():
    """Kills gathering.x_gather_neurons__mutmut_24 / _26 (`norm(dim=None)`: ranking by one layer's
    norm only). Unit norms (W1 column, W2 row): (5, 1), (1, 5), (3, 3): the product keeps unit 2."""
    w1 = torch.tensor([[[5.0, 1.0, 3.0]]])  # (E=1, d=1, h=3)
    w2 = torch.tensor([[[1.0], [5.0], [3.0]]])  # (E=1, h=3, p=1)
    W1, _, W2, _ = gather_neurons(w1, torch.zeros(1, 3), w2, torch.zeros(1, 1), k=1)
    assert W1.tolist() == [[3.0, 0.0, 0.0]] and W2.tolist() == [[3.0], [0.0], [0.0]]


def test_gather_experts_passes_k_and_merge_to_every_matrix():
    """Kills gathering.x_gather_experts__mutmut_38 / _43 (K not passed to gather_neurons) and
    _52 / _66 (merge not passed to W1's or W2's gather_matrices: svd with merge="mean")."""
    teacher = small_teacher()
    experts = teacher.moe.experts
    (neurons,) = gather_experts(teacher, "neurons", k=1)
    want = gather_neurons(experts.w1, experts.b1, experts.w2, experts.b2, k=1)
    torch.testing.assert_close(neurons.w1, want[0])
    torch.testing.assert_close(neurons.w2, want[2])
    (mean,) = gather_experts(teacher, "svd", k=2, merge="mean")
    torch.testing.assert_close(mean.w1, gather_matrices(experts.w1, "svd", 2, "mean"))
    torch.testing.assert_close(mean.w2, gather_matrices(experts.w2, "svd", second_k(2, experts.w1, experts.w2, "svd"), "mean"))


def test_gathered_and_random_blocks_live_on_the_teachers_device():
    """Kills gathering.x_gather_experts__mutmut_22 and x_random_dense_blocks__mutmut_38 (`.to(None)`:
    blocks left on the CPU). The meta device stands in for a GPU."""
    teacher = small_teacher().to("meta")
    (gathered,) = gather_experts(teacher, "avg")
    (random,) = random_dense_blocks(teacher, seed=0)
    assert gathered.w1.device.type == "meta" and random.w1.device.type == "meta"


def test_random_blocks_are_seeded_and_uniform_like_nn_linear():
    """Kills gathering.x_random_dense_blocks__mutmut_1 / _24 / _26 / _33 / _35 (the seeded generator
    replaced by the global RNG) and _15 - _18 / _20 - _22 / _27 / _29 - _31 / _36 (a wrong bound
    1 / sqrt(fan_in) or a wrong map of U(0, 1) onto [-bound, bound])."""
    teacher = small_teacher(n_features=4, expert_hidden=64, expert_out=16)
    torch.manual_seed(0)
    (block,) = random_dense_blocks(teacher, seed=3)
    torch.manual_seed(1)  # another global RNG state must not matter
    (again,) = random_dense_blocks(teacher, seed=3)
    (other,) = random_dense_blocks(teacher, seed=4)
    for name in ("w1", "b1", "w2", "b2"):
        assert torch.equal(getattr(block, name), getattr(again, name))
        assert not torch.equal(getattr(block, name), getattr(other, name))
    for weight, bias, fan_in in ((block.w1, block.b1, 4), (block.w2, block.b2, 64)):
        bound = fan_in**-0.5
        for values in (weight, bias):
            assert values.abs().max() <= bound and values.min() < 0 < values.max()
        assert weight.abs().max() > 0.9 * bound  # 256 and 1024 draws come close to the bound


def test_make_student_defaults_and_passes_k_and_merge():
    """Kills gathering.x_make_student__mutmut_1 / _2 (default method "svd" misspelt), _5 (default seed 1),
    _18 (K not passed) and _23 (merge not passed)."""
    teacher = small_teacher()
    w1 = teacher.moe.experts.w1
    torch.testing.assert_close(make_student(teacher).moe.w1, make_student(teacher, "svd").moe.w1)
    assert torch.equal(make_student(teacher, "random").moe.w1, make_student(teacher, "random", seed=0).moe.w1)
    torch.testing.assert_close(make_student(teacher, "svd", k=1).moe.w1, gather_matrices(w1, "svd", 1))
    torch.testing.assert_close(make_student(teacher, "svd", merge="mean").moe.w1, gather_matrices(w1, "svd", merge="mean"))


def test_expert_spectra_columns_and_one_based_index():
    """Kills gathering.x_expert_spectra__mutmut_28 / _29 / _34 / _35 / _38 / _39 (column names) and
    _36 / _37 (index - 1 or + 2 instead of + 1)."""
    table = expert_spectra(small_teacher())
    assert list(table.columns) == ["layer", "matrix", "expert", "index", "singular_value", "cumulative_energy"]
    w1 = table[(table.matrix == "w1") & (table.expert == 0)]
    assert w1["index"].tolist() == [1, 2, 3, 4]  # W1 is 4 x 6: rank 4
    torch.testing.assert_close(torch.tensor(w1.singular_value.tolist()), torch.linalg.svdvals(small_teacher().moe.experts.w1[0].detach()))


# --- stats: the verdict rule ---


def same_evidence(got, want):
    """Evidence equality with NaN equal to NaN (the dataclass's == says NaN != NaN)."""
    for field, value in want.to_dict().items():
        other = got.to_dict()[field]
        assert other == value or (isinstance(value, float) and math.isnan(value) and math.isnan(other)), field
    return True


def test_decide_is_strict_at_the_threshold_inclusive_at_the_rope_and_refuses_nan():
    """Kills stats.x_decide__mutmut_9 / _10 (an interval touching the threshold counted as excluding it),
    _27 / _28 (an interval touching threshold +- rope not counted as inside), _3 (`or`: one finite end
    is enough) and _6 / _7 (the "inconclusive" label misspelt)."""
    assert stats.decide(0.0, 1.0, 0.0) == "inconclusive"
    assert stats.decide(-1.0, 0.0, 0.0) == "inconclusive"
    assert stats.decide(-0.5, 0.25, 0.0, rope=0.5) == "equivalent"
    assert stats.decide(-0.25, 0.5, 0.0, rope=0.5) == "equivalent"
    assert stats.decide(0.5, float("nan"), 0.0) == "inconclusive"


def test_judge_with_fewer_than_two_values():
    """Kills stats.x_judge__mutmut_6 / _7 (n = 2 treated as too few), _8 / _9 / _11 / _12 / _13 (the
    n < 2 effect: None, NaN for one value, or float(None) / float("XXnanXX")), and _15 - _34 / _36 /
    _37 / _39 / _40 / _44 / _45 (the fields of that Evidence: None, dropped, misspelt or float(None))."""
    one = stats.judge([0.25])
    assert (one.verdict, one.effect, one.n) == ("inconclusive", 0.25, 1) and isinstance(one.test, str)
    assert all(math.isnan(value) for value in (one.ci_low, one.ci_high, one.p, one.detectable))
    none = stats.judge([])
    assert none.verdict == "inconclusive" and math.isnan(none.effect) and none.n == 0
    two = stats.judge([1.0, 1.5])
    assert two.n == 2 and math.isfinite(two.ci_low) and math.isfinite(two.ci_high)


def test_judge_defaults_threshold_p_and_detectable_effect():
    """Kills stats.x_judge__mutmut_1 (default threshold 1), _60 (no test description),
    x__t_evidence__mutmut_26 (p of effect + threshold), _49 (detectable reported for a decided claim)
    and _50 (detectable (t + t) / se instead of * se)."""
    values = [1.0, 1.2, 1.4, 1.6]
    se = math.sqrt(0.2 / 3) / 2
    assert same_evidence(stats.judge(values), stats.judge(values, 0.0))
    evidence = stats.judge(values, 1.0)
    assert evidence.p == pytest.approx(scipy_stats.t.sf(0.3 / se, 3))
    assert evidence.verdict == "inconclusive" and isinstance(evidence.test, str)
    assert evidence.detectable == pytest.approx((scipy_stats.t.ppf(0.975, 3) + scipy_stats.t.ppf(0.8, 3)) * se)
    assert math.isnan(stats.judge(values, 0.0).detectable)  # reproduced: nothing left to detect


def test_judge_without_spread():
    """Kills stats.x__t_evidence__mutmut_16 (`se >= 0`: division by zero) and _27 - _35 (the p of a
    zero-spread sample: 0 in the claim's direction, 1 otherwise, 1 at the threshold)."""
    same = [0.5, 0.5, 0.5]
    reproduced = stats.judge(same, 0.0)
    assert (reproduced.verdict, reproduced.p) == ("reproduced", 0.0)
    assert stats.judge(same, 2.0).p == 1.0 and stats.judge(same, 0.0, direction=-1).p == 1.0
    assert stats.judge(same, 0.5).p == 1.0


def test_judge_drops_missing_values_like_nan():
    """Kills stats.x__finite__mutmut_3 / _5 (no float cast: None is no longer read as NaN and dropped)."""
    assert same_evidence(stats.judge([1.0, None, 2.0, float("nan"), 4.0]), stats.judge([1.0, 2.0, 4.0]))


STRATA = {"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0]}  # means 2, 3; variances 1, 2


def test_judge_across_is_the_stratified_t_interval():
    """Kills stats.x_judge_across__mutmut_71 / _73 / _75 / _76 (Var = sum_d s_d^2 / n_d / D^2 wrong),
    _82 / _85 - _93 / _99 (Welch-Satterthwaite df wrong or replaced by n - D) and _21 / _23 / _24
    (several datasets, each with two or more runs, judged "inconclusive" without an interval)."""
    parts = np.array([1 / 3, 2 / 2]) / 4
    se = math.sqrt(parts.sum())
    df = parts.sum() ** 2 / (parts[0] ** 2 / 2 + parts[1] ** 2 / 1)
    half = scipy_stats.t.ppf(0.975, df) * se
    evidence = stats.judge_across(STRATA, 0.0)
    assert evidence.effect == pytest.approx(2.5) and evidence.n == 5
    assert (evidence.ci_low, evidence.ci_high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    assert evidence.p == pytest.approx(scipy_stats.t.sf(2.5 / se, df))
    assert stats.judge_across({"a": [1.0, 2.0], "b": [2.0, 4.0]}, -10.0).verdict == "reproduced"


def test_judge_across_defaults_and_single_dataset():
    """Kills stats.x_judge_across__mutmut_1 / _2 (default threshold 1 or direction 2: p doubles its t)
    and _7 - _15 (one non-empty dataset not judged with the caller's threshold, direction and rope)."""
    assert same_evidence(stats.judge_across(STRATA), stats.judge_across(STRATA, 0.0, 1))
    tight = [0.001, -0.001, 0.0005, -0.0005, 0.0]
    args = (0.0002, -1, 0.005)
    assert same_evidence(stats.judge_across({"a": tight, "empty": []}, *args), stats.judge(tight, *args))
    assert stats.judge(tight, *args).verdict == "equivalent"


def test_judge_across_with_a_dataset_of_one_run_or_none():
    """Kills stats.x_judge_across__mutmut_20 (`not samples and ...`: a one-run dataset gets a NaN
    interval with p = 0), _25 / _26 / _28 - _31 (that effect: None, NaN, float(None) / "XXnanXX") and
    _33 - _52 / _54 / _55 / _57 / _58 / _60 / _63 / _64 (the fields of that Evidence)."""
    short = stats.judge_across({"a": [1.0], "b": [2.0, 4.0]})
    assert (short.verdict, short.effect, short.n) == ("inconclusive", 2.0, 3) and isinstance(short.test, str)
    assert all(math.isnan(value) for value in (short.ci_low, short.ci_high, short.p, short.detectable))
    empty = stats.judge_across({})
    assert empty.verdict == "inconclusive" and math.isnan(empty.effect) and empty.n == 0


def test_judge_across_without_spread_and_with_a_rope():
    """Kills stats.x_judge_across__mutmut_83 / _98 (Welch df computed at se = 0: 0 / 0), _100
    (float(None) for its n - D) and _108 (the rope not passed on)."""
    assert stats.judge_across({"a": [1.0, 1.0], "b": [1.0, 1.0]}, 0.0).verdict == "reproduced"
    tight = {"a": [0.001, -0.001, 0.0], "b": [0.0005, -0.0005, 0.0]}
    assert stats.judge_across(tight, 0.0, rope=0.05).verdict == "equivalent"


# --- stats: deciding quantities ---


def test_inverted_u_gain_with_one_seed_uses_its_own_validation_and_names_its_series():
    """Kills stats.x_inverted_u_gain__mutmut_32 / _34 (one seed: "the other seeds" are none, so the
    seed's own validation must choose) and _49 - _59 (the returned series' names)."""
    population = pd.DataFrame(
        {"alpha": [0.0, 0.1, 1.0, 10.0], "seed": 0, "val_accuracy": [0.8, 0.7, 0.9, 0.85], "test_accuracy": [0.6, 0.7, 0.8, 0.5]}
    )
    gains, chosen = stats.inverted_u_gain(population)
    assert chosen.to_dict() == {0: 1.0} and gains.to_dict() == {0: pytest.approx(0.8 - 0.5)}
    assert (gains.name, chosen.name) == ("gain", "interior_alpha")


def test_best_other_gap_takes_each_seeds_best():
    """Kills stats.x_best_other_gap__mutmut_2 (`max(axis=None)`: the best over all seeds)."""
    per_seed = pd.DataFrame({"svd": [0.9, 0.8], "sum": [0.5, 0.7], "avg": [0.6, 0.4]})
    np.testing.assert_allclose(stats.best_other_gap(per_seed, "svd", ["sum", "avg"]).to_numpy(), [0.3, 0.1])


def test_domain_gains_keep_the_order_of_appearance():
    """Kills stats.x_domain_gains__mutmut_5 / _10 (groupby sorted: domains and datasets re-ordered)."""
    chosen = pd.DataFrame(
        [("z", "text", "MoE", 0, 0.5), ("z", "text", "MoDE", 0, 0.6), ("b", "tabular", "MoE", 0, 0.7),
         ("b", "tabular", "MoDE", 0, 0.6), ("a", "tabular", "MoE", 0, 0.7), ("a", "tabular", "MoDE", 0, 0.8)],
        columns=["dataset", "domain", "model", "seed", "test_accuracy"],
    )  # fmt: skip
    gains = stats.domain_gains(chosen)
    assert list(gains) == ["text", "tabular"] and list(gains["tabular"]) == ["b", "a"]
