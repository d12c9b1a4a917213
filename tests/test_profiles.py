"""The profiles' plans: what each runs, filled in from one place, and the laptop plan's rules fixed in advance."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modekit.data import CATALOGUE
from modekit.profiles import ALPHA_GRID, DOMAINS, PAPER_ALPHA_POINT, PROFILES, domain_plan


@pytest.mark.parametrize("profile", list(PROFILES))
def test_domain_plan_fills_in_the_defaults_and_holds_the_paper_alpha(profile):
    for domain in DOMAINS:
        plan = domain_plan(profile, domain)
        spec = PROFILES[profile]
        assert plan["datasets"] == spec["datasets"][domain] and plan["epochs"] == spec["epochs"][domain]
        assert plan["alphas"] == tuple(spec.get("alphas", ALPHA_GRID)[domain])
        assert PAPER_ALPHA_POINT[domain] in plan["alphas"]  # the primary comparison needs MoDE at the paper's alpha
        assert plan["seeds"] == list(range(spec.get("seeds", {}).get(domain, 5)))
        assert set(plan["load_options"]) <= set(plan["datasets"])
        assert all(CATALOGUE[name][0] == domain for name in plan["datasets"])


def test_laptop_answers_every_domain_on_two_real_sets_including_mnist_and_a_sentiment_set():
    datasets = PROFILES["laptop"]["datasets"]
    assert all(len(datasets[d]) >= 2 for d in DOMAINS)
    assert "mnist" in datasets["image"] and "fashion_mnist" in datasets["image"]
    assert {"sst2", "mr"} & set(datasets["text"])
    assert domain_plan("laptop", "tabular")["workers"] == 2  # both cores busy


def _detectable(sd: float, n: int) -> float:
    # smallest effect a paired t test at n seeds detects with 80% power: (t_{0.975} + t_{0.8}) sd / sqrt(n)
    return (scipy_stats.t.ppf(0.975, n - 1) + scipy_stats.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)


def test_laptop_tabular_seeds_follow_the_power_rule():
    """The rule written beside the profile: enough seeds to detect 1 point at the previous laptop run's paired sd (0.69 points)."""
    seeds = PROFILES["laptop"]["seeds"]["tabular"]
    needed = next(n for n in range(2, 100) if _detectable(0.69, n) <= 1.0)
    assert needed == 6 and seeds >= needed
    assert _detectable(0.69, 5) > 1.0  # five would not have been enough


def test_domain_plan_runs_its_seeds_from_the_first_seed():
    plan, moved = domain_plan("laptop", "tabular"), domain_plan("laptop", "tabular", first_seed=10)
    assert plan["seeds"] == list(range(8)) and moved["seeds"] == list(range(10, 18))
    assert {k: v for k, v in moved.items() if k != "seeds"} == {k: v for k, v in plan.items() if k != "seeds"}
