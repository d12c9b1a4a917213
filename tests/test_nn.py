"""The maths of the MoE layer: stacked experts == the ModuleList reference, gates, the MoDE loss."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from modekit.functional import mutual_distillation_loss, switch_balance_loss
from modekit.nn import DenseGate, ExpertStack, MoELayer, NoisyTopKGate, ReferenceExperts


def pairwise_definition(outputs, active=None):
    """L_KD by its O(E^2) definition: per sample, mean over ordered pairs i != j of mean_p (e_i - e_j)^2."""
    n_experts, n_samples, _ = outputs.shape
    per_sample = []
    for b in range(n_samples):
        members = [i for i in range(n_experts) if active is None or active[b, i]]
        pairs = [(i, j) for i, j in itertools.permutations(members, 2)]
        if pairs:
            per_sample.append(torch.stack([F.mse_loss(outputs[i, b], outputs[j, b]) for i, j in pairs]).mean())
    return torch.stack(per_sample).mean() if per_sample else torch.tensor(0.0)


def test_stacked_experts_equal_reference_loop_outputs_and_gradients():
    torch.manual_seed(0)
    stack = ExpertStack(5, 7, 16, 3).double()
    reference = ReferenceExperts(5, 7, 16, 3).double().copy_from(stack)
    x = torch.randn(11, 7, dtype=torch.double)
    target = torch.randn(5, 11, 3, dtype=torch.double)
    out_stack, out_reference = stack(x), reference(x)
    torch.testing.assert_close(out_stack, out_reference)
    ((out_stack - target) ** 2).sum().backward()
    ((out_reference - target) ** 2).sum().backward()
    for i, expert in enumerate(reference.experts):
        torch.testing.assert_close(stack.w1.grad[i], expert[0].weight.grad.T)
        torch.testing.assert_close(stack.b1.grad[i], expert[0].bias.grad)
        torch.testing.assert_close(stack.w2.grad[i], expert[2].weight.grad.T)
        torch.testing.assert_close(stack.b2.grad[i], expert[2].bias.grad)


def test_moe_layer_stacked_equals_reference_layer():
    torch.manual_seed(1)
    fast = MoELayer(6, 8, 4, n_experts=3)
    slow = MoELayer(6, 8, 4, n_experts=3, reference=True)
    slow.gate.load_state_dict(fast.gate.state_dict())
    slow.experts.copy_from(fast.experts)
    x = torch.randn(9, 6)
    a, b = fast(x), slow(x)
    torch.testing.assert_close(a.output, b.output)
    torch.testing.assert_close(a.distillation_loss, b.distillation_loss)


def test_mixture_is_gate_weighted_sum_of_experts():
    torch.manual_seed(2)
    layer = MoELayer(5, 8, 3, n_experts=4)
    x = torch.randn(10, 5)
    out = layer(x)
    experts = layer.expert_outputs(x)
    manual = sum(out.gate_weights[:, i : i + 1] * experts[i] for i in range(4))
    torch.testing.assert_close(out.output, manual)
    torch.testing.assert_close(out.gate_weights.sum(-1), torch.ones(10))


def test_mode_loss_two_experts_is_mse():
    torch.manual_seed(3)
    e = torch.randn(2, 13, 5)
    torch.testing.assert_close(mutual_distillation_loss(e), F.mse_loss(e[0], e[1]))


def test_mode_loss_zero_for_identical_experts():
    e = torch.randn(1, 13, 5).expand(4, 13, 5)
    assert mutual_distillation_loss(e).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("n_experts", range(2, 9))
def test_mode_loss_equals_pairwise_definition(n_experts):
    torch.manual_seed(n_experts)
    e = torch.randn(n_experts, 6, 4, dtype=torch.double)
    torch.testing.assert_close(mutual_distillation_loss(e).double(), pairwise_definition(e), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_experts", [2, 4, 6])
def test_mode_loss_active_pairs_equals_pairwise_definition(n_experts):
    torch.manual_seed(10 + n_experts)
    e = torch.randn(n_experts, 8, 3)
    active = torch.rand(8, n_experts) > 0.4
    active[0] = False
    active[0, 0] = True  # a sample with a single active expert contributes nothing
    torch.testing.assert_close(mutual_distillation_loss(e, active), pairwise_definition(e, active).float())


def test_mode_loss_sample_mask_drops_padding():
    torch.manual_seed(4)
    e = torch.randn(3, 10, 4)
    mask = torch.tensor([True] * 6 + [False] * 4)
    torch.testing.assert_close(mutual_distillation_loss(e, sample_mask=mask), mutual_distillation_loss(e[:, :6]))


def test_mode_loss_single_expert_is_zero():
    assert mutual_distillation_loss(torch.randn(1, 5, 3)).item() == 0.0


def test_mode_loss_closed_form_identity():
    """sum_{i<j} ||e_i - e_j||^2 = E sum_i ||e_i||^2 - ||sum_i e_i||^2 (method.md §2)."""
    torch.manual_seed(5)
    e = torch.randn(5, 1, 7, dtype=torch.double)
    pairs = sum(((e[i] - e[j]) ** 2).sum() for i, j in itertools.combinations(range(5), 2))
    closed = 5 * (e**2).sum() - (e.sum(0) ** 2).sum()
    torch.testing.assert_close(pairs, closed)
    torch.testing.assert_close(mutual_distillation_loss(e).double(), 2 * pairs / (5 * 4 * 7))


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_topk_gate_keeps_k_experts_with_weights_summing_to_one(top_k):
    torch.manual_seed(6)
    gate = NoisyTopKGate(5, 4, top_k)
    torch.nn.init.normal_(gate.proj.weight)
    for training in (True, False):
        gate.train(training)
        out = gate(torch.randn(32, 5))
        assert (out.weights > 0).sum(-1).eq(top_k).all()
        assert out.active.sum(-1).eq(top_k).all()
        if top_k > 1:  # Shazeer: the kept weights are renormalised
            torch.testing.assert_close(out.weights.sum(-1), torch.ones(32))
        else:  # Switch: the chosen expert's full-softmax probability, below 1
            assert bool((out.weights.sum(-1) < 1).all() and (out.weights.sum(-1) >= 1 / 4).all())


def test_topk_gate_is_deterministic_in_eval_mode_and_noisy_in_training():
    torch.manual_seed(7)
    gate = NoisyTopKGate(5, 4, 2)
    torch.nn.init.normal_(gate.proj.weight)
    torch.nn.init.normal_(gate.noise_proj.weight)
    x = torch.randn(64, 5)
    gate.eval()
    torch.testing.assert_close(gate(x).weights, gate(x).weights)
    gate.train()
    assert not torch.equal(gate(x).weights, gate(x).weights)


def test_balance_loss_is_one_for_uniform_routing_and_larger_when_collapsed():
    gate = NoisyTopKGate(3, 4, 1).eval()
    # zero weights: uniform router probabilities; ties in top-1 all go to expert 0 -> collapsed dispatch
    collapsed = gate(torch.randn(40, 3)).balance_loss
    assert collapsed.item() == pytest.approx(1.0)  # P uniform => loss = E * sum f_i / E = 1
    logits = torch.eye(4).repeat(10, 1) * 5  # each expert preferred by a quarter of the samples
    active = torch.zeros(40, 4, dtype=torch.bool).scatter(-1, logits.argmax(-1, keepdim=True), True)
    balanced = switch_balance_loss(logits, active, gate.top_k)
    skewed_logits = torch.zeros(40, 4)
    skewed_logits[:, 0] = 5
    skewed = switch_balance_loss(skewed_logits, torch.zeros(40, 4, dtype=torch.bool).index_fill(1, torch.tensor([0]), True), gate.top_k)
    assert balanced.item() == pytest.approx(1.0, abs=1e-6)
    assert skewed.item() > 3.0


def test_layer_accepts_token_shaped_input_with_mask():
    torch.manual_seed(8)
    layer = MoELayer(6, 8, 5, n_experts=3, gate="topk", top_k=2, distill_among="active")
    x = torch.randn(2, 7, 6)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out = layer(x, mask)
    assert out.output.shape == (2, 7, 5) and out.gate_weights.shape == (2, 7, 3)
    assert torch.isfinite(out.distillation_loss) and torch.isfinite(out.balance_loss)


@pytest.mark.parametrize("top_k", [1, 2])
def test_top_k_router_gets_a_task_gradient_at_k_1_and_2(top_k):
    """k = 1 weights the chosen expert by its full-softmax probability (Switch): the task loss alone
    (no balance loss) reaches the router. Under Shazeer's renormalisation at k = 1 the weight was
    softmax of one value, always 1, and the router's task gradient exactly 0."""
    from modekit.nn import NoisyTopKGate

    torch.manual_seed(0)
    gate = NoisyTopKGate(6, 4, top_k).eval()  # eval: no noise
    torch.nn.init.normal_(gate.proj.weight)
    x = torch.randn(32, 6)
    out = gate(x)
    chosen = out.weights.max(dim=-1)
    if top_k == 1:
        expected = torch.softmax(x @ gate.proj.weight.T, dim=-1).max(dim=-1).values
        torch.testing.assert_close(chosen.values, expected)
        assert bool((out.weights.sum(-1) < 1).all()), "the chosen expert's probability, not 1"
    (out.weights * torch.randn(32, 4)).sum().backward()  # a task loss through the mixing weights only
    assert gate.proj.weight.grad.abs().sum() > 1e-3


def _topk_layer(seed=0, n_experts=3, top_k=2, **kwargs):
    """An eval-mode top-k MoE layer (4 -> 8 -> 3) with a random router, so routing is not uniform."""
    torch.manual_seed(seed)
    layer = MoELayer(4, 8, 3, n_experts=n_experts, gate="topk", top_k=top_k, **kwargs).eval()
    torch.nn.init.normal_(layer.gate.proj.weight)
    return layer


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


def test_expert_init_is_uniform_within_one_over_sqrt_fan_in():
    """Kills experts.xǁExpertStackǁreset_parameters__mutmut_3 (bound 2 / sqrt(fan_in) instead of 1)."""
    torch.manual_seed(0)
    stack = ExpertStack(4, 16, 32, 8)  # w1 fan-in 16, w2 fan-in 32
    for weight, bias, fan_in in ((stack.w1, stack.b1, 16), (stack.w2, stack.b2, 32)):
        bound = 1 / math.sqrt(fan_in)
        assert weight.abs().max() <= bound and bias.abs().max() <= bound
        assert weight.abs().max() > 0.95 * bound  # hundreds of draws reach close to the bound


def test_noisy_gate_adds_softplus_scaled_gaussian_noise_in_training():
    """H(x) = x W_g + N(0, 1) * softplus(x W_noise), recomputed from the same random draws; the noise
    projection has no bias (Shazeer et al. 2017)."""
    gate = NoisyTopKGate(3, 4, 2).train()
    assert gate.noise_proj.bias is None and gate.proj.bias is None
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        gate.proj.weight.normal_(generator=g)
        gate.noise_proj.weight.normal_(generator=g)
    x = torch.randn(5, 3, generator=g)
    torch.manual_seed(7)
    out = gate(x)
    torch.manual_seed(7)
    noise = torch.randn(5, 4)
    with torch.no_grad():
        logits = x @ gate.proj.weight.T + noise * F.softplus(x @ gate.noise_proj.weight.T)
    top_values, top_index = logits.topk(2, dim=-1)
    want = torch.zeros(5, 4).scatter(-1, top_index, torch.softmax(top_values, -1))
    torch.testing.assert_close(out.weights.detach(), want)


def test_unknown_gate_and_distill_among_are_refused_by_name():
    from modekit.nn.gates import make_gate

    with pytest.raises(ValueError, match=r"^gate='bogus' is not allowed: gate must be one of "):
        make_gate("bogus", 3, 2, 1)
    with pytest.raises(ValueError, match=r"^distill_among='bogus' is not allowed: distill_among must be one of "):
        MoELayer(4, 8, 3, n_experts=2, distill_among="bogus")


def test_expert_biases_are_uniform_in_plus_minus_one_over_sqrt_fan_in():
    torch.manual_seed(0)
    stack = ExpertStack(4, 16, 9, 50)  # 4 experts, 16 -> 9 -> 50
    for bias, fan_in in ((stack.b1, 16), (stack.b2, 9)):
        bound = 1 / math.sqrt(fan_in)
        assert bias.min() >= -bound and bias.max() <= bound
        assert bias.min() < -bound / 2 and bias.max() > bound / 2, "spread over the whole interval"
