"""Lift against the holdout: figures per arm, the relative lift's interval, the SRM test, the visitors still needed."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest

from reclift.lift import Arm, Sums, lift_from_sums, lift_report, relative, sessions_needed, srm_p_value


def test_given_no_visitors_in_an_arm_when_reported_then_the_block_is_there_with_null_figures() -> None:
    report = lift_report({"learning": 10}, {"learning": {"v1": Decimal("5")}}, 0.1)

    assert report["visitors"] == {"learning": 10, "holdout": 0}
    assert report["revenue_per_visitor"] == {"learning": 0.5, "holdout": None, "relative": None, "ci95": None}
    assert report["sessions_needed"] is None


def test_given_two_arms_when_reported_then_rpv_conversion_and_relative_lift_follow_the_definitions() -> None:
    learning = {f"l{i}": Decimal("30") for i in range(150)}  # 150 of 4,500 learning visitors bought 30.00
    holdout = {f"h{i}": Decimal("30") for i in range(10)}  # 10 of 500 holdout visitors bought 30.00
    report = lift_report({"learning": 4500, "holdout": 500}, {"learning": learning, "holdout": holdout}, 0.1)

    assert report["enough_data"] is True
    assert report["converting_visitors"] == {"learning": 150, "holdout": 10}
    rpv = report["revenue_per_visitor"]
    assert (rpv["learning"], rpv["holdout"]) == (1.0, 0.6)
    assert rpv["relative"] == pytest.approx(1.0 / 0.6 - 1)
    low, high = rpv["ci95"]
    assert low < rpv["relative"] < high
    assert report["conversion_rate"]["learning"] == pytest.approx(150 / 4500, abs=1e-6)
    assert report["srm_p_value"] == pytest.approx(1.0)  # exactly the configured 90/10 split


def test_given_a_report_from_each_visitor_when_built_from_the_arms_sums_instead_then_it_is_the_same() -> None:
    rng = random.Random(3)
    revenue = {
        arm: {f"{arm}{i}": Decimal(f"{rng.lognormvariate(3.4, 0.6):.2f}") for i in range(n)}
        for arm, n in (("learning", 140), ("holdout", 14))
    }
    sums = [Sums.of(n, (float(v) for v in revenue[arm].values())) for arm, n in (("learning", 4500), ("holdout", 500))]
    by_visitor = lift_report({"learning": 4500, "holdout": 500}, revenue, 0.1)
    assert lift_from_sums(sums[0], sums[1], 0.1) == by_visitor
    assert sums[1] == Sums(500, 14, sum(float(v) for v in revenue["holdout"].values()), sums[1].squares)


def test_given_few_converting_visitors_when_reported_then_there_is_not_enough_data_and_no_interval() -> None:
    # 2 of 100 holdout visitors bought: at the pooled rate the holdout expects 3.2 converting visitors, not 10.
    learning = {f"l{i}": Decimal("30") for i in range(30)}
    holdout = {f"h{i}": Decimal("30") for i in range(2)}
    report = lift_report({"learning": 900, "holdout": 100}, {"learning": learning, "holdout": holdout}, 0.1)

    assert report["enough_data"] is False
    for block in (report["revenue_per_visitor"], report["conversion_rate"]):
        assert block["ci95"] is None
        assert block["relative"] == pytest.approx(1.0 / 0.6 - 1)  # the point estimate is still shown


# --- coverage: the interval's promise, checked on simulated stores --------------------------------------------------
# 500 holdout visitors and 4,500 in the learning arm (the production 90/10 split), 2.5 % converting, orders of
# 1 + Poisson(0.25) items priced log-normally (median 30, σ 0.6): revenue per visitor mostly 0 with a heavy tail.
# A 95 % interval should cover the true lift 93–97 % of the time and miss it on either side about 2.5 % of the time;
# 4.5 % on one side is ~6 standard errors (4,000 stores) beyond that.
COVERAGE_STORES = 4000
Interval = Callable[[float, float, int, float, float, int], "tuple[float, tuple[float, float]] | None"]


def simulated_arm(rng: np.random.Generator, visitors: int, conversion: float) -> list[Sums]:
    converting = rng.binomial(visitors, conversion, size=COVERAGE_STORES)
    items = 1 + rng.poisson(0.25, size=int(converting.sum()))
    prices = 30.0 * np.exp(rng.normal(0.0, 0.6, size=int(items.sum())))
    orders = np.bincount(np.repeat(np.arange(len(items)), items), prices)
    store = np.repeat(np.arange(COVERAGE_STORES), converting)
    total = np.bincount(store, orders, minlength=COVERAGE_STORES)
    squares = np.bincount(store, orders * orders, minlength=COVERAGE_STORES)
    return [Sums(visitors, int(k), float(t), float(q)) for k, t, q in zip(converting, total, squares, strict=True)]


def misses(interval: Interval, true_lift: float, seed: int) -> tuple[float, float]:
    """How often the interval lies wholly below and wholly above the true lift."""
    rng = np.random.default_rng(seed)
    holdout = simulated_arm(rng, 500, 0.025)
    learning = simulated_arm(rng, 4500, 0.025 * (1 + true_lift))
    below = above = 0
    for treated, base in zip(learning, holdout, strict=True):
        estimate = interval(treated.mean, treated.variance, 4500, base.mean, base.variance, 500)
        assert estimate is not None
        low, high = estimate[1]
        below += high < true_lift
        above += low > true_lift
    return below / COVERAGE_STORES, above / COVERAGE_STORES


def ratio_delta_interval(
    treated_mean: float, treated_var: float, n1: int, base_mean: float, base_var: float, n0: int
) -> tuple[float, tuple[float, float]]:
    """The interval reported before: the delta method on the ratio itself, symmetric around it."""
    ratio = treated_mean / base_mean
    half = 1.959964 * math.sqrt(treated_var / n1 + ratio * ratio * base_var / n0) / base_mean
    return ratio - 1, (ratio - 1 - half, ratio - 1 + half)


@pytest.mark.parametrize("true_lift", [0.0, 0.15])
def test_given_small_heavy_tailed_stores_when_the_lift_interval_is_reported_then_it_covers_95_percent_both_ways(
    true_lift: float,
) -> None:
    below, above = misses(relative, true_lift, seed=7)
    assert 0.93 <= 1 - below - above <= 0.97
    assert below <= 0.045
    assert above <= 0.045


def test_given_the_same_stores_when_the_symmetric_ratio_interval_is_judged_then_the_coverage_check_rejects_it() -> None:
    below, above = misses(ratio_delta_interval, 0.0, seed=7)
    assert below > 0.045  # it says "the learning loses money" too often, and never errs the other way
    assert above < 0.01


def test_given_stores_where_the_gate_bites_when_only_intervals_with_enough_data_are_shown_then_they_still_cover() -> (
    None
):
    # 400 holdout visitors at 2.5 %: 10 converting visitors expected, so about half the stores show no interval. The
    # gate reads the pooled rate, not the holdout's own luck, so the intervals it lets through are not the lucky ones.
    rng = np.random.default_rng(8)
    holdout, learning = simulated_arm(rng, 400, 0.025), simulated_arm(rng, 3600, 0.025)
    shown = below = above = 0
    for treated, base in zip(learning, holdout, strict=True):
        ci95 = lift_from_sums(treated, base, 0.1)["revenue_per_visitor"]["ci95"]
        if ci95 is None:
            continue
        shown += 1
        below += ci95[1] < 0.0
        above += ci95[0] > 0.0
    assert 0.3 * COVERAGE_STORES <= shown <= 0.7 * COVERAGE_STORES
    # About 2.5 % each way; a gate on the holdout's own converting visitors misses ~5 % below and ~0.1 % above.
    assert 0.01 * shown <= below <= 0.045 * shown
    assert 0.01 * shown <= above <= 0.045 * shown


@pytest.mark.parametrize(
    ("learning", "holdout", "expected"),
    [(900, 100, 1.0), (1000, 0, 0.0), (0, 0, None)],
)
def test_given_arm_counts_when_tested_for_sample_ratio_mismatch_then_the_chi_square_p_value_is_right(
    learning: int, holdout: int, expected: float | None
) -> None:
    p = srm_p_value(learning, holdout, 0.1)
    assert p == (None if expected is None else pytest.approx(expected, abs=1e-9))


def test_given_shops_split_as_configured_when_tested_then_5_percent_alarm_and_a_skewed_split_is_caught() -> None:
    rng = np.random.default_rng(11)
    visitors = 5000
    fair = [srm_p_value(visitors - int(h), int(h), 0.1) for h in rng.binomial(visitors, 0.10, size=4000)]
    skewed = [srm_p_value(20_000 - int(h), int(h), 0.1) for h in rng.binomial(20_000, 0.12, size=1000)]
    assert 0.04 <= sum(p is not None and p < 0.05 for p in fair) / len(fair) <= 0.06  # false alarms at the level
    assert 0.45 <= sum(p is not None and p < 0.5 for p in fair) / len(fair) <= 0.55  # uniform under a fair split
    assert sum(p is not None and p < 0.001 for p in skewed) / len(skewed) >= 0.95  # 12 % of 20,000, not 10 %: caught


def test_given_few_visitors_when_asked_how_many_more_then_the_power_formula_answers_and_more_need_fewer() -> None:
    rng = random.Random(1)
    learning = Arm(900, [rng.lognormvariate(3, 0.6) for _ in range(27)])
    holdout = Arm(100, [rng.lognormvariate(3, 0.6) for _ in range(3)])
    needed = sessions_needed(learning, holdout, 0.1)
    assert needed is not None
    assert needed > 0

    bigger = sessions_needed(Arm(9000, learning.revenue * 10), Arm(1000, holdout.revenue * 10), 0.1)
    assert bigger is not None
    assert bigger < needed
