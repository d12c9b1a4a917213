"""04's takeaway in words (modekit.ones.takeaway): each bullet says what its numbers allow, on both
sides of every choice, so that a run with other seeds reads true."""

import pandas as pd

from modekit.analysis import claims, stats
from modekit.ones import takeaway


def evidence(low, high, verdict="inconclusive"):
    return stats.Evidence(verdict, (low + high) / 2, low, high, 0.5, 5, "t", float("nan"))


def test_benefit_follows_the_interval_of_the_moe_advantage():
    above = takeaway.benefit(evidence(0.02, 0.14), 0.846, 0.760, 2, 4)
    assert "There is a benefit" in above and "beats" in above and "+8.0 points, 95% interval [+2.0, +14.0]" in above
    straddles = takeaway.benefit(evidence(-0.01, 0.05), 0.80, 0.78, 2, 4)
    assert "There is no clear benefit" in straddles and "cannot be told apart from" in straddles and "no benefit kept" in straddles
    below = takeaway.benefit(evidence(-0.06, -0.01), 0.70, 0.74, 1, 4)
    assert "loses to" in below and "top-1-of-4" in below


def test_permutation_names_the_students_that_move_and_the_parts_of_the_error():
    effect = pd.DataFrame({"method": ["sum", "svd", "neurons"], "student_change": [0.24, 0.43, 0.0], "teacher_change": 3e-8})
    text = takeaway.permutation(effect, {"total": 1.03, "non_linearity": 1.17, "cross_terms": 1.64})
    assert "leaves the teacher's logits unchanged" in text and "`sum` and `svd` students' logits by 24%-43%" in text
    assert "`neurons` does not move at all" in text and "about as much as that sum's own norm" in text and "both the ReLU and" in text
    moved = takeaway.permutation(effect.assign(teacher_change=0.02), {"total": 0.5, "non_linearity": 0.5, "cross_terms": 0.0})
    assert "moves the teacher's logits by 2.0%" in moved and "50% of that sum's own norm" in moved and "through the ReLU (" in moved


def test_gathering_says_where_the_students_start_and_what_kd_does():
    before, dense = pd.Series({"sum": 0.5, "svd": 0.6}), 0.76
    below = takeaway.gathering(before, pd.Series({"sum": 0.7, "svd": 0.75}), dense)
    assert "a starting point, not a model" in below and "every gathered student is below" in below and "KD adds 15-20 points" in below
    above = takeaway.gathering(before + 0.3, pd.Series({"sum": 0.7, "svd": 0.75}), dense)
    assert "already beats the dense model" in above and "KD changes them by -10 to -15 points" not in above
    assert "KD changes them by -15 to -10 points" in above
    assert "uneven" in takeaway.gathering(pd.Series({"sum": 0.7, "svd": 0.8}), pd.Series({"sum": 0.8, "svd": 0.85}), dense)


def test_accuracy_claims_rank_svd_and_keep_the_benefit_only_when_there_is_one():
    seeds = range(5)
    dense = pd.Series([0.70, 0.72, 0.74, 0.76, 0.78], index=seeds)
    moe, svd = dense + 0.10, dense + 0.08
    kd = pd.DataFrame(
        {"mean": {"sum": 0.79, "svd": 0.82, "Switch-style": 0.75}, "benefit_%": {"sum": 50.0, "svd": 80.0, "Switch-style": 10.0}}
    )
    rows = [
        {"claim": "svd_best_gathering", "scope": "all", "verdict": "reproduced", "ci_low": 0.01, "ci_high": 0.05},
        {"claim": "svd_best_gathering", "scope": "svd - sum", "verdict": "reproduced", "ci_low": 0.01, "ci_high": 0.05},
        {"claim": "ones_benefit_kept", "scope": "all", "verdict": "inconclusive", "ci_low": -0.01, "ci_high": 0.05},
    ]
    text = takeaway.accuracy_claims(kd, dense, moe, svd, rows)
    assert "partly reproduced" in text and "the best gathered student is `svd`: 0.820, 80% of the benefit kept" in text
    assert "The SVD student is the best gathering" in text and "80% of the benefit kept (ratio of means 80%" in text
    assert "Switch-style: 0.750, 10% of the benefit kept" in text and "Per seed, SVD beats `sum`:" in text
    worst = kd.assign(**{"benefit_%": float("nan")})
    worst.loc["svd", "mean"] = 0.70
    rows = [{**r, "verdict": "contradicted", "ci_low": -0.05, "ci_high": -0.01} for r in rows]
    text = takeaway.accuracy_claims(worst, dense, moe, svd - 0.1, rows)
    assert "not reproduced" in text and "The SVD student is the worst gathering" in text and "% of the benefit kept" not in text
    assert "the best gathered student is `sum`: 0.790, above the band" in text and "Per seed, SVD loses to `sum`:" in text


def test_teacher_and_speed_wording():
    assert "A MoDE teacher gathers better here" in takeaway.teacher(evidence(0.01, 0.03, "reproduced"))
    assert "cannot be told apart from the MoE teacher" in takeaway.teacher(evidence(-0.01, 0.03))
    by_batch = pd.Series([2.0, 6.4], index=[64, 256])
    fast = takeaway.speed(pd.Series([6.3, 6.4, 6.5]), 1.76, "cpu", by_batch, claims.OVERHEAD)
    assert (
        "6.4x faster than" in fast
        and "above the 1.76x FLOP bound" in fast
        and "dispatch overhead" in fast
        and "batch sizes 64 and 256" in fast
    )
    slow = takeaway.speed(pd.Series([0.5, 0.5]), 1.76, "cuda", by_batch, "contradicted")
    assert "2.0x slower than" in slow and "within the" in slow and "the student is not faster" in slow and "CUDA" in slow
    assert "do not settle it" in takeaway.speed(pd.Series([1.5]), 1.76, "cpu", by_batch, "inconclusive")


def test_the_claims_state_needs_a_verdict_to_say_reproduced():
    assert takeaway.state_of([]) == "not judged"
    assert takeaway.state_of([{"scope": "svd - sum", "verdict": "reproduced"}]) == "not judged"  # a per-set row is not a claim's verdict
    assert (
        takeaway.state_of([{"scope": "all", "verdict": "reproduced"}, {"scope": "all", "verdict": "inconclusive"}]) == "partly reproduced"
    )


def test_none_of_the_benefit_kept_is_said_only_when_the_fieller_interval_lies_below_0():
    seeds = range(5)
    dense = pd.Series([0.70, 0.72, 0.74, 0.76, 0.78], index=seeds)
    moe = dense + pd.Series([0.10, 0.11, 0.09, 0.10, 0.10], index=seeds)
    kd = pd.DataFrame({"mean": {"sum": 0.79, "svd": 0.72}, "benefit_%": {"sum": 50.0, "svd": -20.0}})
    rows = [{"claim": "ones_benefit_kept", "scope": "all", "verdict": "inconclusive", "ci_low": -0.01, "ci_high": 0.05}]
    clearly_below = takeaway.accuracy_claims(kd, dense, moe, dense - pd.Series([0.02, 0.03, 0.02, 0.025, 0.02], index=seeds), rows)
    assert "none of the benefit kept" in clearly_below
    spread = pd.Series([-0.09, 0.05, -0.08, 0.06, -0.04], index=seeds)  # below on average, the ratio's interval reaching above 0
    reaching = takeaway.accuracy_claims(kd, dense, moe, dense + spread, rows)
    assert "none of the benefit kept" not in reaching and "below the dense model, on average; the interval reaches above 0" in reaching
