"""OneS: the gathering identities, the dense student, distillation, and bad input."""

import pytest
import torch

import modekit as mk
from modekit.functional import truncated_svd as truncated
from modekit.nn import DenseFeedForward, model_config_for, moe_layers
from modekit.ones.distill import DistillationObjective, DistillConfig, teacher_kl
from modekit.ones.experiment import k_sweep, run_ones, summarise_ones, teacher_config
from modekit.ones.gathering import (
    expert_spectra,
    gather_experts,
    gather_matrices,
    gather_neurons,
    make_student,
    moe_layer_input,
    permutation_effect,
    permute_hidden_units,
    second_k,
    summed_block_error,
)
from modekit.ones.speed import count_flops, inference_speed, set_sparse_inference, speed_summary


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return torch.randn(4, 12, 7, dtype=torch.float64)


def test_svd_full_rank_mean_merge_is_averaging(weights):
    torch.testing.assert_close(gather_matrices(weights, "svd", k=7, merge="mean").double(), weights.mean(0), rtol=1e-5, atol=1e-5)


def test_svd_full_rank_sum_merge_is_summation(weights):
    torch.testing.assert_close(gather_matrices(weights, "svd", k=7, merge="sum").double(), weights.sum(0), rtol=1e-5, atol=1e-5)


def test_rank_k_reconstruction_error_is_norm_of_discarded_singular_values(weights):
    matrix = weights[0].float()
    values = torch.linalg.svdvals(matrix)
    for k in range(1, 7):
        error = (matrix - truncated(matrix, k)).norm()
        torch.testing.assert_close(error, values[k:].norm(), rtol=1e-4, atol=1e-5)


def test_topk_keeps_exactly_k_entries_per_expert(weights):
    single = weights[:1]
    for k in (1, 5, 30, 84):
        gathered = gather_matrices(single, "topk", k=k)
        assert int((gathered != 0).sum()) == k
        kept = gathered[gathered != 0].abs()
        assert kept.min() >= single.abs().flatten().topk(k).values.min().float() - 1e-6
    assert int((gather_matrices(weights, "topk", k=3) != 0).sum()) <= 4 * 3


def test_neurons_keeps_each_hidden_unit_whole():
    """A unit's W1 column, b1 entry and W2 row come from the same expert and unit (the pairing)."""
    generator = torch.Generator().manual_seed(0)
    w1, b1 = torch.randn(2, 3, 4, generator=generator), torch.randn(2, 4, generator=generator)
    w2, b2 = torch.randn(2, 4, 5, generator=generator), torch.randn(2, 5, generator=generator)
    W1, B1, W2, B2 = gather_neurons(w1, b1, w2, b2, k=2)
    for slot in range(4):
        matches = [(i, j) for i in range(2) for j in range(4) if torch.equal(W1[:, slot], w1[i][:, j])]
        assert len(matches) == 1
        i, j = matches[0]
        assert B1[slot] == b1[i, j] and torch.equal(W2[slot], w2[i, j])
        assert slot // 2 == i  # expert i's units fill slots [2i, 2i + 2)
    torch.testing.assert_close(B2, b2.sum(0))
    with pytest.raises(ValueError, match=r"k=3 is not allowed: .*\[1, 2\]"):
        gather_neurons(w1, b1, w2, b2, k=3)


def test_neurons_of_experts_with_idle_units_sum_the_experts_exactly():
    """Experts whose other units are zero: the gathered block computes sum_i e_i(x) exactly."""
    generator = torch.Generator().manual_seed(1)
    w1, b1 = torch.randn(2, 3, 4, generator=generator), torch.randn(2, 4, generator=generator)
    w2, b2 = torch.randn(2, 4, 5, generator=generator), torch.randn(2, 5, generator=generator)
    w1[0, :, 2:], w2[0, 2:], w1[1, :, :2], w2[1, :2] = 0, 0, 0, 0
    W1, B1, W2, B2 = gather_neurons(w1, b1, w2, b2)
    x = torch.randn(7, 3, generator=generator)
    experts = sum(torch.relu(x @ w1[i] + b1[i]) @ w2[i] + b2[i] for i in range(2))
    torch.testing.assert_close(torch.relu(x @ W1 + B1) @ W2 + B2, experts, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method, merge, reduce", [("sum", "sum", "sum"), ("avg", "sum", "mean"), ("topk", "sum", "sum"),
                                                   ("svd", "sum", "sum"), ("svd", "mean", "mean")])  # fmt: skip
def test_biases_are_merged_as_their_weights(method, merge, reduce):
    data = mk.load("subtasks", n_samples=200, n_features=8)
    teacher = mk.build_model(model_config_for(data, mk.ModelConfig(n_experts=3, gate="topk", top_k=2)), seed=0)
    (block,) = gather_experts(teacher, method, merge=merge)
    experts = teacher.moe.experts
    torch.testing.assert_close(block.b1, getattr(experts.b1.detach(), reduce)(0))
    torch.testing.assert_close(block.b2, getattr(experts.b2.detach(), reduce)(0))


def test_full_rank_svd_on_both_matrices_is_the_sum_for_each():
    """K at its maximum for W1 means the maximum for W2 too (not W1's absolute rank)."""
    data = mk.load("subtasks", n_samples=200, n_features=8)
    teacher = mk.build_model(model_config_for(data, mk.ModelConfig(n_experts=4, expert_hidden=64, expert_out=64)), seed=0)
    experts = teacher.moe.experts
    assert second_k(8, experts.w1, experts.w2, "svd") == 64 and second_k(4, experts.w1, experts.w2, "svd") == 32
    (svd,) = gather_experts(teacher, "svd", k=8)
    (total,) = gather_experts(teacher, "sum")
    torch.testing.assert_close(svd.w1, total.w1, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(svd.w2, total.w2, rtol=1e-4, atol=1e-4)


def test_sum_and_avg(weights):
    torch.testing.assert_close(gather_matrices(weights, "sum").double(), weights.sum(0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gather_matrices(weights, "avg").double(), weights.mean(0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["sum", "avg", "topk", "neurons", "svd"])
def test_single_expert_gathers_to_itself_and_student_matches_teacher(method):
    data = mk.load("subtasks", n_samples=200, n_features=8)
    config = model_config_for(data, mk.ModelConfig(n_experts=1, gate="topk", top_k=1))
    teacher = mk.build_model(config, seed=0).eval()
    k = {"topk": 8 * 64, "neurons": 64, "svd": 8}.get(method)  # E = 1: keeping everything is the default
    assert k is None or method == "neurons" or gather_matrices(teacher.moe.experts.w1, method).shape == (8, 64)
    (block,) = gather_experts(teacher, method)
    torch.testing.assert_close(block.w1, teacher.moe.experts.w1[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(block.w2, teacher.moe.experts.w2[0], rtol=1e-5, atol=1e-5)
    student = make_student(teacher, method).eval()
    with torch.no_grad():
        torch.testing.assert_close(student(data.X_test).logits, teacher(data.X_test).logits, rtol=1e-4, atol=1e-5)


def test_student_shapes_copied_weights_and_no_router():
    data = mk.load("synthtext", n_samples=300)
    teacher = mk.build_model(model_config_for(data, mk.ModelConfig(d_model=32, n_heads=2, expert_hidden=48, gate="topk")), seed=0)
    student = make_student(teacher, "svd")
    assert moe_layers(student) == [] and all(isinstance(b.moe, DenseFeedForward) for b in student.blocks)
    assert student.blocks[0].moe.w1.shape == (32, 48) and student.blocks[0].moe.w2.shape == (48, 32)
    torch.testing.assert_close(student.embed.weight, teacher.embed.weight)
    torch.testing.assert_close(student.blocks[1].attention.in_proj_weight, teacher.blocks[1].attention.in_proj_weight)
    assert not any("gate" in name for name, _ in student.named_parameters())
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())
    assert moe_layers(teacher)  # the teacher is untouched


def test_distillation_lowers_kl_to_teacher():
    data = mk.load("subtasks", n_samples=800, n_features=8)
    config = model_config_for(data, mk.ModelConfig(gate="topk", top_k=2))
    teacher = mk.train(data, config, mk.TrainConfig(epochs=10, progress=False)).model
    student = make_student(teacher, "svd")
    before = teacher_kl(student, teacher, data.X_val)
    student = mk.train(
        data, config, mk.TrainConfig(epochs=5, progress=False), model=student, objective=DistillationObjective(teacher)
    ).model
    assert teacher_kl(student, teacher, data.X_val) < 0.5 * before


def test_sparse_inference_equals_dense_compute_and_counts_fewer_flops():
    data = mk.load("subtasks", n_samples=200, n_features=8)
    teacher = mk.build_model(model_config_for(data, mk.ModelConfig(gate="topk", top_k=1, n_experts=4)), seed=0).eval()
    torch.nn.init.normal_(teacher.moe.gate.proj.weight)
    with torch.no_grad():
        dense = teacher(data.X_test).logits
        dense_flops = count_flops(teacher, data.X_test)
        set_sparse_inference(teacher)
        torch.testing.assert_close(teacher(data.X_test).logits, dense, rtol=1e-5, atol=1e-6)
        assert count_flops(teacher, data.X_test) < 0.5 * dense_flops
    speed = inference_speed(teacher, make_student(teacher, "avg"), data.X_test, batch_sizes=(1, 32), seconds=0.05, rounds=2)
    assert list(speed.batch) == [1, 1, 32, 32] and list(speed["round"]) == [0, 1, 0, 1]
    assert (speed.flop_ratio_bound > 1).all() and (speed.speedup > 0).all()
    summary = speed_summary(speed)
    assert list(summary.batch) == [1, 32] and (summary.rounds == 2).all()
    assert (summary.speedup_min <= summary.speedup).all() and (summary.speedup <= summary.speedup_max).all()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda w: gather_matrices(w, "median"), r"method='median' is not allowed: .*'sum', 'avg', 'topk', 'neurons', 'svd'"),
        (lambda w: gather_matrices(w, "svd", k=0), r"k=0 is not allowed: .*\[1, 7\] \(the rank\)"),
        (lambda w: gather_matrices(w, "svd", k=8), r"k=8 is not allowed"),
        (lambda w: gather_matrices(w, "topk", k=85), r"k=85 .*\[1, 84\] \(entries\)"),
        (lambda w: gather_matrices(w, "svd", merge="max"), r"merge='max'"),
        (lambda w: gather_matrices(w[0], "sum"), r"expected stacked experts"),
    ],
)
def test_gathering_rejects_bad_input(weights, call, message):
    with pytest.raises(ValueError, match=message):
        call(weights)


def test_model_without_moe_layers_is_refused():
    with pytest.raises(ValueError, match="has no MoE layers"):
        gather_experts(torch.nn.Sequential(torch.nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="temperature=0"):
        DistillConfig(temperature=0)


def test_spectra_and_k_sweep():
    data = mk.load("subtasks", n_samples=300, n_features=8)
    teacher = mk.build_model(model_config_for(data, mk.ModelConfig(gate="topk")), seed=0)
    spectra = expert_spectra(teacher)
    assert set(spectra.matrix) == {"w1", "w2"} and spectra.expert.nunique() == 4
    last = spectra.groupby(["matrix", "expert"]).cumulative_energy.max()
    assert torch.allclose(torch.tensor(last.values), torch.ones(len(last), dtype=torch.float64))
    sweep = k_sweep(teacher, data, fractions=(0.25, 1.0))
    full_svd = sweep[(sweep.method == "svd") & (sweep.fraction == 1.0)].relative_distance_to_sum.item()
    assert full_svd < 1e-5  # full rank, sum merge = summation
    small = k_sweep(*_small_teacher(hidden=4), ("svd", "neurons"), fractions=(1 / 16, 1 / 8, 1 / 4, 1.0))
    assert list(small[small.method == "svd"].k) == [1, 4]  # rank 4: 1/16, 1/8 and 1/4 all round to K = 1, listed once
    assert list(small[small.method == "neurons"].k) == [1] and small[small.method == "neurons"].relative_distance_to_sum.isna().all()
    with pytest.raises(ValueError, match="method='sum' is not allowed in k_sweep"):
        k_sweep(teacher, data, ("sum",))


def test_run_ones_small_end_to_end():
    data = mk.load("subtasks", n_samples=400, n_features=8)
    results = run_ones(data, methods=("avg", "svd"), seeds=[0, 1], train_config=mk.TrainConfig(epochs=3, progress=False))
    assert {"teacher", "dense from scratch", "KD from random init", "Switch-style", "avg", "svd"} <= set(results.student)
    summary, warning = summarise_ones(results)
    assert set(summary.stage) == {"trained", "before KD", "after KD"}
    assert "benefit_%" in summary and (warning is None) == bool(summary.benefit_meaningful.iloc[0])


def _small_teacher(n_experts=3, hidden=5):
    data = mk.load("clustered_subtasks", n_samples=200)
    config = model_config_for(data, mk.ModelConfig(n_experts=n_experts, expert_hidden=hidden, expert_out=6, gate="topk", top_k=2))
    return mk.build_model(config, seed=0).eval(), data


def test_summed_block_error_is_the_sum_blocks_distance_from_the_sum_of_experts():
    """`total` is ||sum-gathered block(x) - sum_i e_i(x)|| / ||sum_i e_i(x)||, computed here from the
    real gathered block and the expert stack; its two parts bound it (triangle inequality)."""
    teacher, data = _small_teacher()
    experts, x = teacher.moe.experts, data.X_test
    (block,) = gather_experts(teacher, "sum")
    with torch.no_grad():
        summed = experts(x).sum(0)
        distance = float((block(x).output - summed).norm() / summed.norm())
    error = summed_block_error(experts.w1, experts.b1, experts.w2, experts.b2, x)
    assert error["total"] == pytest.approx(distance, rel=1e-4)
    assert error["total"] > 0.1 and error["total"] <= error["non_linearity"] + error["cross_terms"] + 1e-9


def test_summed_block_error_parts_vanish_where_their_cause_does():
    generator = torch.Generator().manual_seed(0)
    w1, w2 = torch.randn(3, 4, 5, generator=generator), torch.randn(3, 5, 2, generator=generator)
    b2, x = torch.randn(3, 2, generator=generator), torch.randn(9, 4, generator=generator)
    # every pre-activation positive: the ReLU is the identity, only the cross terms are left
    linear = summed_block_error(w1, torch.full((3, 5), 100.0), w2, b2, x)
    assert linear["non_linearity"] < 1e-12 and linear["total"] == pytest.approx(linear["cross_terms"], rel=1e-9)
    # one expert: the block is the expert
    single = summed_block_error(w1[:1], torch.zeros(1, 5), w2[:1], b2[:1], x)
    assert max(single.values()) < 1e-12


def test_permuting_hidden_units_keeps_the_function_and_moves_every_gathering_but_neurons():
    teacher, data = _small_teacher()
    permuted = permute_hidden_units(teacher, expert=1, seed=0)
    assert not torch.equal(permuted.moe.experts.w1[1], teacher.moe.experts.w1[1])
    assert torch.equal(permuted.moe.experts.w1[0], teacher.moe.experts.w1[0])  # only expert 1 moves
    effect = permutation_effect(teacher, data.X_test, expert=1).set_index("method")
    assert (effect.teacher_change < 1e-5).all()  # the same function
    assert effect.student_change["neurons"] < 1e-5  # units are kept whole: their order does not matter
    assert (effect.student_change.drop("neurons") > 1e-3).all()
    with pytest.raises(ValueError, match=r"expert=3 is not allowed: .*\[0, 2\]"):
        permute_hidden_units(teacher, expert=3)


def test_teacher_config_expert_hidden_sets_the_expert_and_dense_width():
    data = mk.load("clustered_subtasks", n_samples=200)
    assert teacher_config(data).expert_hidden == mk.ModelConfig().expert_hidden
    config = teacher_config(data, expert_hidden=4)
    assert (config.expert_hidden, config.n_experts, config.top_k, config.n_features) == (4, 4, 2, 6)


def test_moe_layer_input_is_what_the_first_moe_layer_sees():
    teacher, data = _small_teacher()
    assert torch.equal(moe_layer_input(teacher, data.X_test), data.X_test)  # tabular: the features themselves
    text = mk.load("synthtext", n_samples=60)
    model = mk.build_model(model_config_for(text, mk.ModelConfig(d_model=16, n_heads=2, expert_hidden=8, gate="topk")), seed=0)
    tokens = moe_layer_input(model, text.X_test)
    assert tokens.shape == (text.X_test.numel(), 16)  # one row per token, d_model wide
    experts = moe_layers(model)[0][1].experts
    assert summed_block_error(experts.w1, experts.b1, experts.w2, experts.b2, tokens)["total"] > 0


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
