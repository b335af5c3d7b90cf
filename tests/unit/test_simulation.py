"""The store simulation as a regression test of outcome: a small store played for ten days through production's use
cases (benchmarks/simulate.py over the in-memory ports). Learning must pay, judged on the expected revenue of what
was shown, and production's attribution must credit what the simulated shoppers bought from the widget."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.scenarios import scenario
from benchmarks.simulate import POLICIES, simulate

# The full run closes about 0.75 of the gap by day 10 on this seed (the judge's 28 days close more); a learning
# loop that stopped learning, a blacklist gone wrong or a broken path from events to counters falls far below.
GAP_CLOSED_AT_LEAST = 0.5


@pytest.fixture(scope="module")
def small_store() -> dict[str, Any]:
    return simulate(scenario("small", seed=101, days=10), "small")


def test_given_a_small_store_when_bayes_learned_ten_days_then_it_closes_most_of_the_expected_revenue_gap(
    small_store: dict[str, Any],
) -> None:
    erpv = small_store["summary"]["erpv_last7"]
    assert erpv["static"] < erpv["bayes"] < erpv["oracle"]
    assert small_store["summary"]["gap_closed_last7"]["bayes"] >= GAP_CLOSED_AT_LEAST
    assert small_store["summary"]["wrongly_blacklisted_share_max"]["bayes"] <= 0.02


def test_given_every_policy_then_they_met_the_same_visitors_and_attribution_credited_what_the_widget_sold(
    small_store: dict[str, Any],
) -> None:
    policies = small_store["policies"]
    assert len({tuple(policies[policy]["visitors_by_day"]) for policy in POLICIES}) == 1
    for policy in POLICIES:
        figures = policies[policy]
        assert sum(figures["orders_by_day"]) > 0
        # Every widget purchase went through a click: attribution credits all of it, and nothing else.
        assert figures["attributed_rpv_by_day"] == figures["rpv_by_day"]
        assert sum(figures["impressions_by_day"]) >= sum(figures["widgets_by_day"]) > 0


# A new shop's first days in a world with categories, reduced to run in seconds: every related product shares the
# page's type, so what a slot of the page's type means is the catalog neighbours' doing or co-purchase's.
LAUNCH_FLAGS: dict[str, Any] = {"products": 96, "visitors_per_day": 80, "days": 2, "related_same_type": 1.0}


@pytest.fixture(scope="module")
def launch_store() -> dict[str, Any]:
    return simulate(scenario("launch", seed=101, **LAUNCH_FLAGS), "launch")


def test_given_a_new_shop_with_types_when_served_then_catalog_neighbours_fill_the_slots_co_purchase_cannot(
    launch_store: dict[str, Any],
) -> None:
    window = launch_store["summary"]["sources"]["all_days"]
    shares = {variant: figures["share"] for variant, figures in window["variants"].items()}
    # Production's widgets hold catalog neighbours (first on the day before the shop's first learning run, then
    # valued by the policy beside best sellers); withheld, their slots go back to best sellers.
    assert shares["all"]["catalog"] > 0
    assert shares["co_purchase"]["catalog"] == shares["best_sellers"]["catalog"] == 0
    assert shares["best_sellers"]["best_seller"] == 1
    # More of the page's type than co-purchase alone gives (the same visitors and draws: equal if neighbours were
    # never offered), and far more than best sellers alone.
    assert shares["all"]["same_type"] > shares["co_purchase"]["same_type"]
    assert shares["all"]["same_type"] >= shares["best_sellers"]["same_type"] + 0.2
    # Ranked by the policy, neighbours take slots only where they are worth it: the expected revenue is no lower
    # than with co-purchase alone.
    gap = window["gap_closed_vs_best_sellers"]
    assert gap["all"] >= gap["co_purchase"]
    # Every variant met the same visitors.
    visitors = launch_store["policies"]["bayes"]["visitors_by_day"]
    assert all(series["visitors_by_day"] == visitors for series in launch_store["variants"].values())
