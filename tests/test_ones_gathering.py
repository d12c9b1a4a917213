"""Tests of modekit.ones.gathering."""

import pytest
import torch

import modekit as mk
from modekit.functional import truncated_svd
from modekit.ones.gathering import (
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


def _teacher(seed=0):
    import modekit as mk

    torch.manual_seed(seed)
    config = mk.ModelConfig(n_features=5, n_classes=3, n_experts=3, expert_hidden=6, expert_out=4, gate="topk", top_k=2)
    return mk.build_model(config, seed=seed)


def test_permute_hidden_units_is_seeded_moves_the_chosen_expert_only_and_keeps_the_function():
    from modekit.errors import UserError
    from modekit.nn import moe_layers
    from modekit.ones.gathering import permute_hidden_units

    teacher, x = _teacher(), torch.randn(16, 5)
    first, again, other = (permute_hidden_units(teacher, 1, seed) for seed in (3, 3, 4))
    w1 = [moe_layers(m)[0][1].experts.w1.detach() for m in (teacher, first, again, other)]
    assert torch.equal(w1[1], w1[2]) and not torch.equal(w1[1], w1[3]), "one seeded permutation per seed"
    assert torch.equal(w1[0][0], w1[1][0]) and torch.equal(w1[0][2], w1[1][2]) and not torch.equal(w1[0][1], w1[1][1])
    assert sorted(w1[1][1].sum(0).tolist()) == pytest.approx(sorted(w1[0][1].sum(0).tolist())), "the same units, reordered"
    torch.testing.assert_close(first.eval()(x).logits, teacher.eval()(x).logits)
    permute_hidden_units(teacher, 0)  # the first expert is allowed
    with pytest.raises(UserError, match=r"expert=3 is not allowed: expert must be an integer in \[0, 2\]"):
        permute_hidden_units(teacher, 3)


def test_permutation_effect_is_relative_to_each_models_own_logits():
    from modekit.ones.gathering import make_student, permutation_effect, permute_hidden_units

    teacher, x = _teacher(1), torch.randn(16, 5)
    table = permutation_effect(teacher, x, methods=("sum", "neurons"), expert=1, seed=2)
    permuted = permute_hidden_units(teacher, 1, 2)
    assert list(table.method) == ["sum", "neurons"] and (table.teacher_change < 1e-5).all()
    with torch.no_grad():
        before, after = (make_student(m, "sum").eval()(x).logits for m in (teacher, permuted))
    assert table.student_change.iloc[0] == pytest.approx(float((after - before).norm() / before.norm()), rel=1e-5)
    assert table.student_change.iloc[1] < 1e-5, "neurons keeps units whole: no change"


def test_summed_block_error_parts_are_relative_to_the_experts_sum():
    from modekit.ones.gathering import summed_block_error

    g = torch.Generator().manual_seed(0)
    w1, b1, w2, b2, x = torch.randn(3, 4, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, 5, 2, generator=g), \
        torch.randn(3, 2, generator=g), torch.randn(7, 4, generator=g)  # fmt: skip
    parts = summed_block_error(w1, b1, w2, b2, x)
    z = torch.stack([x.double() @ w1[i].double() + b1[i].double() for i in range(3)])
    experts = sum(torch.relu(z[i]) @ w2[i].double() for i in range(3)) + b2.double().sum(0)
    non_linearity = (torch.relu(z.sum(0)) - torch.relu(z).sum(0)) @ w2.double().sum(0)
    assert parts["non_linearity"] == pytest.approx(float(non_linearity.norm() / experts.norm()))
    block = torch.relu(z.sum(0)) @ w2.double().sum(0) + b2.double().sum(0)
    assert parts["total"] == pytest.approx(float((block - experts).norm() / experts.norm()))
    assert summed_block_error(w1[:1], b1[:1], w2[:1], b2[:1], x) == pytest.approx({"total": 0, "non_linearity": 0, "cross_terms": 0})


def test_model_without_experts_is_refused_by_name():
    """gather_experts, permute_hidden_units and moe_layer_input name the model type that has no MoE layer."""
    from modekit.errors import UserError
    from modekit.ones.gathering import moe_layer_input, permute_hidden_units

    student = make_student(small_teacher(), "sum")
    name = type(student).__name__
    for call, what in ((gather_experts, "gather"), (permute_hidden_units, "permute")):
        with pytest.raises(UserError, match=rf"^model {name} has no MoE layers: there are no experts to {what}$"):
            call(student)
    with pytest.raises(UserError, match=rf"^model {name} has no MoE layers: there are no experts to read$"):
        moe_layer_input(student, torch.zeros(2, 4))


def test_gather_experts_and_k_limit_name_their_choices():
    """An unknown method is refused naming the `method` argument; k_limit says what K counts."""
    with pytest.raises(ValueError, match=r"^method='bogus' is not allowed: method must be one of "):
        gather_experts(small_teacher(), "bogus")
    weights = torch.zeros(2, 3, 8)
    assert k_limit(weights, "neurons") == (4, "hidden units per expert, h / E")
    with pytest.raises(
        ValueError,
        match=r"^method='neurons' is not allowed for one matrix: it keeps each hidden unit's W1 column and W2 row "
        r"together; use gather_neurons\(w1, b1, w2, b2, k\) or gather_experts\(model, 'neurons'\)$",
    ):
        gather_matrices(weights, "neurons")


def test_merge_biases_sums_by_default():
    from modekit.ones.gathering import merge_biases

    biases = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    torch.testing.assert_close(merge_biases(biases, "svd"), torch.tensor([4.0, 7.0]))
    torch.testing.assert_close(merge_biases(biases, "svd", "mean"), torch.tensor([2.0, 3.5]))


def test_permute_hidden_units_defaults_refuses_bool_and_never_keeps_the_order():
    """Defaults expert 0, seed 0; expert=True is not an index; with two hidden units half the seeds
    draw the identity permutation, which is replaced so that the units always move."""
    from modekit.errors import UserError
    from modekit.nn import moe_layers
    from modekit.ones.gathering import permutation_effect, permute_hidden_units

    teacher = _teacher()
    default, explicit = permute_hidden_units(teacher), permute_hidden_units(teacher, 0, 0)
    for name, value in moe_layers(default)[0][1].experts.state_dict().items():
        assert torch.equal(value, moe_layers(explicit)[0][1].experts.state_dict()[name]), name
    with pytest.raises(UserError, match=r"^expert=True is not allowed"):
        permute_hidden_units(teacher, True)
    two = small_teacher(expert_hidden=2)
    w1 = two.moe.experts.w1.detach()
    for seed in range(6):
        moved = permute_hidden_units(two, 0, seed).moe.experts.w1.detach()
        torch.testing.assert_close(moved[0], w1[0].flip(-1))  # the only other order of two units
        assert torch.equal(moved[1], w1[1])
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    table = permutation_effect(teacher, x, methods=("sum",))
    again = permutation_effect(teacher, x, methods=("sum",), expert=0, seed=0)
    assert table.equals(again)
    assert not table.equals(permutation_effect(teacher, x, methods=("sum",), expert=0, seed=1)), "the seed matters"


def test_permutation_effect_teacher_change_is_relative_to_the_teachers_logits():
    """16 hidden units: reordering them changes the sum's rounding, so the teacher's change is tiny
    but not zero; it is ||permuted(x) - teacher(x)|| / ||teacher(x)||, recomputed here."""
    from modekit.ones.gathering import permutation_effect, permute_hidden_units

    torch.manual_seed(0)
    config = mk.ModelConfig(n_features=5, n_classes=3, n_experts=3, expert_hidden=16, expert_out=4, gate="topk", top_k=2)
    teacher = mk.build_model(config, seed=0)
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    change = permutation_effect(teacher, x, methods=("sum",), expert=1, seed=2).teacher_change.iloc[0]
    permuted = permute_hidden_units(teacher, 1, 2)
    with torch.no_grad():
        logits, moved = teacher.eval()(x).logits, permuted.eval()(x).logits
    assert 0 < change < 1e-5 and logits.norm() > 2
    assert change == pytest.approx(float((moved - logits).norm() / logits.norm()), rel=1e-3)


def test_merge_biases_refuses_an_unknown_merge_by_name():
    """Any merge other than "mean" used to sum silently."""
    from modekit.errors import UserError
    from modekit.ones.gathering import merge_biases

    with pytest.raises(UserError, match="merge='average'"):
        merge_biases(torch.ones(4, 3), "svd", merge="average")
