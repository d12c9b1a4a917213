"""Tests of modekit.functional."""

import math

import pytest
import torch

from modekit.functional import switch_balance_loss, truncated_svd
from modekit.nn import MoELayer


def _topk_layer(seed=0, n_experts=3, top_k=2, **kwargs):
    """An eval-mode top-k MoE layer (4 -> 8 -> 3) with a random router, so routing is not uniform."""
    torch.manual_seed(seed)
    layer = MoELayer(4, 8, 3, n_experts=n_experts, gate="topk", top_k=top_k, **kwargs).eval()
    torch.nn.init.normal_(layer.gate.proj.weight)
    return layer


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


def test_sum_normalised_alpha_accepts_the_smallest_layer():
    """Two experts and one output dimension are enough: alpha_sum = 2 alpha / (p E (E - 1)) = alpha."""
    from modekit.functional import sum_normalised_alpha

    assert sum_normalised_alpha(0.3, 2, 1) == pytest.approx(0.3)
    assert sum_normalised_alpha(0.3, 3, 2) == pytest.approx(2 * 0.3 / (2 * 3 * 2))
    with pytest.raises(ValueError, match=r"n_experts=1, out_dim=1"):
        sum_normalised_alpha(0.3, 1, 1)
    with pytest.raises(ValueError, match=r"n_experts=2, out_dim=0"):
        sum_normalised_alpha(0.3, 2, 0)


def test_soft_target_loss_softmaxes_over_the_class_axis():
    """Logits (batch, tokens, classes): the KL is over the last axis, summed and divided by the batch."""
    from modekit.functional import soft_target_loss

    g = torch.Generator().manual_seed(0)
    student, teacher, t = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g), 2.0
    p, log_q = torch.softmax(teacher / t, -1), torch.log_softmax(student / t, -1)
    # T^2 * sum_{b, tok} sum_c p log(p / q) / B
    expected = t * t * (p * (torch.log(p) - log_q)).sum() / 2
    torch.testing.assert_close(soft_target_loss(student, teacher, t), expected)
