"""05's takeaway reads true whichever way a run goes: runs built to read each verdict, and what the words say."""

import numpy as np
import pandas as pd

from modekit.analysis import claims
from modekit.experiments.takeaway import mode_beats_moe_takeaway

RNG = np.random.default_rng(1)
NO_TUNING = pd.DataFrame(columns=["dataset", "domain", "seed", "comparison", "gain"])


def _card(per_domain: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = [row for domain, sets in per_domain.items() for row in claims.judge_claim(f"mode_beats_moe_{domain}", sets, note="x")]
    return claims.adjust_primaries(pd.DataFrame(rows, columns=claims.COLUMNS))


def _gains(mean: float, sd: float = 0.002, n: int = 8) -> list[float]:
    return list(mean + RNG.normal(0, sd, n))


def _line(lines: list[str], domain: str) -> str:
    return next(line for line in lines if line.startswith(f"- **{domain}:"))


def test_a_clear_gain_on_every_set_reads_reproduced_and_names_no_loss():
    card = _card({"tabular": {"a": _gains(0.03), "b": _gains(0.04)}})
    line = _line(mode_beats_moe_takeaway(card, NO_TUNING, ["tabular"]), "tabular")
    assert line.startswith("- **tabular: reproduced.** MoDE beat MoE on every eligible set")
    assert "`a` +3.0" in line and "Mean over the 2 sets, a description only" in line


def test_a_clear_loss_on_one_set_reads_contradicted_and_names_that_set():
    card = _card({"image": {"good": _gains(0.001, 0.01, 5), "bad": _gains(-0.05, 0.003, 5)}})
    line = _line(mode_beats_moe_takeaway(card, NO_TUNING, ["image"]), "image")
    assert line.startswith("- **image: contradicted.** MoE beat MoDE on `bad`")
    assert "`good`" not in line.split(".**")[1].split(" on ")[1].split(",")[0]  # only the losing set is named


def test_noise_reads_inconclusive_with_what_the_run_could_detect():
    card = _card({"text": {"a": _gains(0.0, 0.02, 5), "b": _gains(0.0, 0.02, 5)}})
    lines = mode_beats_moe_takeaway(card, NO_TUNING, ["text"])
    line = _line(lines, "text")
    assert line.startswith("- **text: inconclusive.**") and "could have detected about" in line
    assert lines[0].startswith("Per domain, reproduced: none; contradicted: none; equivalent: none; inconclusive: text.")


def test_tiny_differences_read_equivalent():
    card = _card({"tabular": {"a": _gains(0.0, 0.0005, 10), "b": _gains(0.0, 0.0005, 10)}})
    line = _line(mode_beats_moe_takeaway(card, NO_TUNING, ["tabular"]), "tabular")
    assert line.startswith("- **tabular: equivalent.** Every set's interval lies within 0.5 points of zero")


def test_identical_gains_say_there_was_no_spread_and_no_test():
    card = _card({"image": {"only": [0.01] * 5}})
    line = _line(mode_beats_moe_takeaway(card, NO_TUNING, ["image"]), "image")
    assert "no spread, no test" in line.lower()


def test_the_tuned_comparison_is_reported_beside_and_flagged_when_it_alone_reproduces():
    card = _card({"tabular": {"a": _gains(0.0, 0.02, 5)}})
    tuned = pd.DataFrame({"dataset": "a", "domain": "tabular", "seed": range(5), "comparison": "tuned on validation",
                          "gain": _gains(0.05, 0.002, 5)})  # fmt: skip
    lines = mode_beats_moe_takeaway(card, tuned, ["tabular"])
    assert any(line.startswith("  - Tuned on validation (secondary, unadjusted): a different verdict on `a`") for line in lines)
    assert any("weaker evidence" in line for line in lines)


def test_a_loss_that_holm_over_the_primary_family_does_not_keep_says_so():
    # set b lies just beyond chance against MoDE (one-sided p about 0.01): contradicted over the two sets (Holm: about
    # 0.02 < 0.025), not after Holm over the two primary claims on the card (about 0.04)
    borderline = [-0.02414, -0.01943, -0.01471, -0.01, -0.01, -0.00529, -0.00057, 0.00414]
    level = [0.01, -0.01, 0.02, -0.02, 0.0, 0.005, -0.005, 0.0]
    alone = claims.judge_claim("mode_beats_moe_tabular", {"a": level, "b": borderline})[0]
    assert alone["verdict"] == "contradicted"
    card = _card({"tabular": {"a": level, "b": borderline}, "image": {"c": level[:5]}})
    top = card[(card.claim == "mode_beats_moe_tabular") & (card.scope == "all")].iloc[0]
    assert top.verdict == "inconclusive" and list(card.claim[claims.demoted(card)]) == ["mode_beats_moe_tabular"]
    line = _line(mode_beats_moe_takeaway(card, NO_TUNING, ["tabular"]), "tabular")
    assert "beyond chance over the sets, but not after Holm over the primary family" in line
    said = claims.describe(top.to_dict())
    assert "a set's own interval (after Holm over the sets) lies beyond the threshold against the paper" in said
    assert "could have detected about" in said, "a demoted row still says what it could detect"
