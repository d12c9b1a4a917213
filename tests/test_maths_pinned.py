"""Pinned maths: each test fixes one formula on hand-computed numbers, so that a realistic one-line
mutation of it (named in the test's docstring) makes the test fail."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from modekit.analysis.stats import benefit_preserved, judge
from modekit.functional import mutual_distillation_loss, soft_target_loss
from modekit.nn.gates import NoisyTopKGate
from modekit.nn.moe import MoELayer
from modekit.ones.distill import DistillConfig, student_loss
from modekit.ones.gathering import default_k


def identity_gate(n_experts, top_k):
    """An eval-mode top-k gate whose logits are the input itself (proj = identity, no noise)."""
    gate = NoisyTopKGate(n_experts, n_experts, top_k)
    with torch.no_grad():
        gate.proj.weight.copy_(torch.eye(n_experts))
        gate.noise_proj.weight.fill_(1.0)  # would add noise in training mode; eval mode must ignore it
    return gate.eval()


# --- top-k gate ---


def test_topk_gate_activates_the_largest_logits():
    """Kills `logits.topk(k, largest=False)` (keeping the k smallest logits)."""
    gate = identity_gate(5, 2)
    x = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5], [4.0, -2.0, 1.0, 0.0, 1.5]])
    out = gate(x)
    expected_active = torch.zeros(2, 5, dtype=torch.bool)
    expected_active[0, [1, 3]] = True
    expected_active[1, [0, 4]] = True
    assert torch.equal(out.active, expected_active)
    expected_weights = torch.zeros(2, 5)
    expected_weights[0, [1, 3]] = torch.softmax(torch.tensor([3.0, 2.0]), 0)
    expected_weights[1, [0, 4]] = torch.softmax(torch.tensor([4.0, 1.5]), 0)
    torch.testing.assert_close(out.weights, expected_weights)


# --- load-balancing loss ---


def test_balance_loss_top2_equals_hand_computed_switch_loss():
    """Kills a balance loss wrong for top_k = 2 (e.g. f_i = count / n instead of count / (n * top_k))."""
    gate = identity_gate(3, 2)
    x = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [1.0, 0.0, 2.0]])
    # top-2 per row: {0, 1}, {1, 2}, {0, 2}, {0, 2} -> active counts 3, 2, 3 over n * k = 8 slots
    f = [3 / 8, 2 / 8, 3 / 8]
    rows = x.tolist()
    P = [sum(math.exp(row[i]) / sum(math.exp(v) for v in row) for row in rows) / len(rows) for i in range(3)]
    expected = 3 * sum(f_i * P_i for f_i, P_i in zip(f, P))
    assert gate(x).balance_loss.item() == pytest.approx(expected, rel=1e-6)


def test_balance_loss_top2_is_one_for_uniform_routing():
    """Kills a top_k = 2 balance loss that is not 1 under uniform dispatch (e.g. missing / top_k gives 2)."""
    gate = identity_gate(4, 2)
    # every expert is in the top 2 of exactly two of the four rows; router probabilities are not uniform
    x = torch.tensor([[3.0, 2.0, 0.0, -1.0], [0.0, -1.0, 3.0, 2.0], [3.0, 0.0, 2.0, -1.0], [-1.0, 3.0, 0.0, 2.0]])
    out = gate(x)
    assert out.active.sum(0).tolist() == [2, 2, 2, 2]
    assert out.balance_loss.item() == pytest.approx(1.0, rel=1e-6)


# --- MoDE pairs: all experts or only the active ones ---


def _active_layer(seed: int, top_k: int, n: int):
    """A 3-expert top-k layer distilling among its active experts, with random routing, and inputs."""
    torch.manual_seed(seed)
    layer = MoELayer(4, 8, 3, n_experts=3, gate="topk", top_k=top_k, distill_among="active").eval()
    torch.nn.init.normal_(layer.gate.proj.weight)
    return layer, torch.randn(n, 4)


def test_distill_among_active_with_top1_has_no_pair_but_all_does():
    """Kills an inverted `distill_among` (active <-> all) in MoELayer.forward."""
    layer, x = _active_layer(seed=0, top_k=1, n=10)
    with torch.no_grad():
        assert layer(x).distillation_loss.item() == 0.0  # one active expert per sample: no pair
        layer.distill_among = "all"
        assert layer(x).distillation_loss.item() > 0.0


def test_distill_among_active_top2_equals_loss_on_active_mask():
    """Kills an inverted or ignored `distill_among="active"` with top_k = 2 of 3 experts."""
    layer, x = _active_layer(seed=1, top_k=2, n=12)
    with torch.no_grad():
        got = layer(x).distillation_loss
        active = layer.gate(x).active
        outputs = layer.expert_outputs(x)
        expected = mutual_distillation_loss(outputs, active)
        everyone = mutual_distillation_loss(outputs)
    assert active.sum(-1).eq(2).all()
    torch.testing.assert_close(got, expected)
    assert abs(expected.item() - everyone.item()) > 1e-4  # the two choices really differ here


# --- OneS default K ---


@pytest.mark.parametrize(
    "n_experts, expected",
    [(4, {"topk": 8 * 16 // 4, "neurons": 16 // 4, "svd": 8 // 4}), (2, {"topk": 8 * 16 // 2, "neurons": 16 // 2, "svd": 8 // 2})],
)
def test_default_k_divides_by_the_number_of_experts(n_experts, expected):
    """Kills a default K wrong for E > 1 (e.g. not divided by E, or divided along the wrong axis)."""
    weights = torch.zeros(n_experts, 8, 16)
    assert {method: default_k(weights, method) for method in expected} == expected


# --- OneS knowledge distillation ---


def hand_kl(student_logits, teacher_logits, temperature):
    """KL(softmax(t/T) || softmax(s/T)), mean over samples, written out."""
    p_teacher = torch.softmax(teacher_logits / temperature, -1)
    log_student = torch.log_softmax(student_logits / temperature, -1)
    return (p_teacher * (torch.log(p_teacher) - log_student)).sum(-1).mean()


STUDENT = torch.tensor([[1.0, -0.5, 0.3], [0.2, 2.0, -1.0], [-0.7, 0.1, 0.9], [1.5, 1.0, -2.0]], dtype=torch.float64)
TEACHER = torch.tensor([[2.5, -1.0, 0.0], [-0.5, 1.0, 0.5], [0.3, -1.2, 2.0], [0.0, 2.0, -1.0]], dtype=torch.float64)
TARGETS = torch.tensor([0, 2, 1, 1])


def test_soft_target_loss_is_scaled_by_t_squared():
    """Kills scaling the soft term by T instead of T^2."""
    got = soft_target_loss(STUDENT, TEACHER, 2.0)
    torch.testing.assert_close(got.double(), 4.0 * hand_kl(STUDENT, TEACHER, 2.0), rtol=1e-5, atol=1e-7)


def test_distillation_loss_weights_the_soft_term():
    """Kills the KD weight applied to the wrong term ((1 - a) KL + a CE instead of (1 - a) CE + a KL)."""
    total, hard, soft, _ = student_loss(STUDENT, TEACHER, TARGETS, DistillConfig(weight=0.25, temperature=1.0))
    ce = -torch.log_softmax(STUDENT, -1)[torch.arange(4), TARGETS].mean()
    kl = hand_kl(STUDENT, TEACHER, 1.0)
    assert abs(ce.item() - kl.item()) > 0.1  # so that swapping the weights shows
    torch.testing.assert_close(hard.double(), ce, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(soft.double(), kl, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(total.double(), 0.75 * ce + 0.25 * kl, rtol=1e-5, atol=1e-7)


def test_benefit_preserved_on_known_numbers():
    """Kills a wrong % of MoE benefit kept (e.g. a swapped numerator or denominator)."""
    assert benefit_preserved(student=0.86, dense=0.80, moe=0.90) == pytest.approx(60.0)
    assert benefit_preserved(student=0.78, dense=0.80, moe=0.90) == pytest.approx(-20.0)
    assert benefit_preserved(student=0.90, dense=0.80, moe=0.90) == pytest.approx(100.0)
    assert math.isnan(benefit_preserved(student=0.85, dense=0.80, moe=0.80))


# --- MoDE mutual distillation ---


def pairwise_definition(outputs, active, sample_mask):
    """Per kept sample, mean over ordered pairs i != j of active experts of mean_p (e_i - e_j)^2;
    then the mean over the samples that have a pair."""
    per_sample = []
    for b in range(outputs.shape[1]):
        if not sample_mask[b]:
            continue
        members = [i for i in range(outputs.shape[0]) if active[b, i]]
        pairs = list(itertools.permutations(members, 2))
        if pairs:
            per_sample.append(torch.stack([F.mse_loss(outputs[i, b], outputs[j, b]) for i, j in pairs]).mean())
    return torch.stack(per_sample).mean()


def test_mutual_distillation_three_experts_with_masks_equals_pairwise_definition():
    """Kills a wrong pair normalisation (e.g. 1/(|A|-1) or 2/|A|) or a mask that is ignored."""
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    active = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 1, 1], [1, 0, 0], [1, 1, 1], [1, 0, 1]], dtype=torch.bool)
    sample_mask = torch.tensor([True, True, True, True, False, True])
    expected = pairwise_definition(outputs, active, sample_mask)
    torch.testing.assert_close(mutual_distillation_loss(outputs, active, sample_mask).double(), expected, rtol=1e-5, atol=1e-7)
    # and the masks matter: dropping either changes the value
    assert abs(mutual_distillation_loss(outputs, active).item() - expected.item()) > 1e-4
    assert abs(mutual_distillation_loss(outputs, None, sample_mask).item() - expected.item()) > 1e-4


def test_mutual_distillation_two_experts_is_mse():
    """Kills a pair normalisation off by a factor for E = 2 (L_KD must be MSE(e_1, e_2))."""
    generator = torch.Generator().manual_seed(1)
    outputs = torch.randn(2, 7, 3, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(mutual_distillation_loss(outputs).double(), F.mse_loss(outputs[0], outputs[1]), rtol=1e-5, atol=1e-7)


# --- verdict rule (stats.judge) ---
# Values [1.0, 1.2, 1.4, 1.6]: mean 1.3, sd 0.258, se 0.129, t_{0.975, 3} = 3.182, so the 95% interval
# is 1.3 +- 0.411 = [0.889, 1.711].

VALUES = [1.0, 1.2, 1.4, 1.6]


def test_judge_interval_is_the_t_interval():
    """Kills a wrong mean, sd (ddof), n, critical value or the sd used in place of the se."""
    evidence = judge(VALUES, 0.0)
    half = 3.182446305284263 * math.sqrt(0.2 / 3) / 2
    assert evidence.effect == pytest.approx(1.3) and evidence.n == 4
    assert (evidence.ci_low, evidence.ci_high) == (pytest.approx(1.3 - half), pytest.approx(1.3 + half))


def test_judge_threshold_sign_and_direction():
    """Kills a flipped threshold sign or direction: the interval [0.889, 1.711] against thresholds."""
    assert judge(VALUES, 0.8).verdict == "reproduced"
    assert judge(VALUES, 1.8).verdict == "contradicted"
    assert judge(VALUES, 1.8, direction=-1).verdict == "reproduced"
    assert judge(VALUES, 1.0).verdict == "inconclusive"  # inside the interval
    assert judge([-v for v in VALUES], -0.8).verdict == "contradicted"


def test_judge_one_sided_p_in_the_claims_direction():
    """Kills a two-sided p or the wrong tail: t = 1.3 / 0.129 = 10.07 with 3 degrees of freedom."""
    p = judge(VALUES, 0.0).p
    assert p == pytest.approx(0.001040, rel=1e-2)
    assert judge(VALUES, 0.0, direction=-1).p == pytest.approx(1 - p)


def test_judge_equivalence_and_detectable_effect():
    """Kills a rope ignored or the detectable effect not reported for inconclusive results."""
    tight = [0.001, -0.001, 0.0005, -0.0005, 0.0]
    assert judge(tight, 0.0, rope=0.005).verdict == "equivalent"
    assert judge(tight, 0.0, rope=None).verdict == "inconclusive"
    wide = [0.05, -0.04, 0.0, 0.01, -0.02]
    evidence = judge(wide, 0.0, rope=0.005)
    assert evidence.verdict == "inconclusive" and evidence.detectable > evidence.ci_high - evidence.effect


def test_sum_normalised_alpha_gives_the_same_objective():
    from modekit.functional import mutual_distillation_loss, ours_from_sum_normalised_alpha, sum_normalised_alpha

    torch.manual_seed(0)
    outputs = torch.randn(3, 10, 5, dtype=torch.float64)  # E = 3 experts, n = 10, p = 5
    # L^sum_KD per sample: sum over unordered pairs of the squared L2 distance, mean over samples
    pairs = [(i, j) for i in range(3) for j in range(i + 1, 3)]
    loss_sum = sum((outputs[i] - outputs[j]).pow(2).sum(-1) for i, j in pairs).mean()
    alpha = 0.3
    alpha_sum = sum_normalised_alpha(alpha, n_experts=3, out_dim=5)
    assert alpha_sum == pytest.approx(2 * 0.3 / (5 * 3 * 2))
    assert float(alpha * mutual_distillation_loss(outputs)) == pytest.approx(
        float(alpha_sum * loss_sum), rel=1e-6
    )  # the loss computes in float32
    assert ours_from_sum_normalised_alpha(alpha_sum, 3, 5) == pytest.approx(alpha)
    with pytest.raises(ValueError, match="n_experts"):
        sum_normalised_alpha(1.0, n_experts=1, out_dim=5)
