"""Lift against the holdout: figures per arm, the relative lift's interval, the SRM test, the visitors still needed."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest

from reclift.lift import Arm, lift_report, relative, sessions_needed, srm_p_value


def test_given_no_visitors_in_an_arm_when_reported_then_the_block_is_there_with_null_figures() -> None:
    report = lift_report({"learning": 10}, {"learning": {"v1": Decimal("5")}}, 0.1)

    assert report["visitors"] == {"learning": 10, "holdout": 0}
    assert report["revenue_per_visitor"] == {"learning": 0.5, "holdout": None, "relative": None, "ci95": None}
    assert report["sessions_needed"] is None


def test_given_two_arms_when_reported_then_rpv_conversion_and_relative_lift_follow_the_definitions() -> None:
    learning = {f"l{i}": Decimal("30") for i in range(30)}  # 30 of 900 learning visitors bought 30.00
    holdout = {f"h{i}": Decimal("30") for i in range(2)}  # 2 of 100 holdout visitors bought 30.00
    report = lift_report({"learning": 900, "holdout": 100}, {"learning": learning, "holdout": holdout}, 0.1)

    rpv = report["revenue_per_visitor"]
    assert (rpv["learning"], rpv["holdout"]) == (1.0, 0.6)
    assert rpv["relative"] == pytest.approx(1.0 / 0.6 - 1)
    low, high = rpv["ci95"]
    assert low < rpv["relative"] < high
    assert report["conversion_rate"]["learning"] == pytest.approx(30 / 900, abs=1e-6)
    assert report["srm_p_value"] == pytest.approx(1.0)  # exactly the configured 90/10 split


def test_given_a_known_case_when_the_delta_method_interval_is_computed_then_it_matches_by_hand() -> None:
    estimate = relative(2.0, 4.0, 100, 1.0, 1.0, 100)
    assert estimate is not None
    lift, (low, high) = estimate
    half = 1.959964 * math.sqrt(4.0 / 100 + 4.0 * 1.0 / 100)
    assert lift == pytest.approx(1.0)
    assert (low, high) == pytest.approx((1.0 - half, 1.0 + half), rel=1e-5)


@pytest.mark.parametrize(
    ("learning", "holdout", "expected"),
    [(900, 100, 1.0), (1000, 0, 0.0), (0, 0, None)],
)
def test_given_arm_counts_when_tested_for_sample_ratio_mismatch_then_the_chi_square_p_value_is_right(
    learning: int, holdout: int, expected: float | None
) -> None:
    p = srm_p_value(learning, holdout, 0.1)
    assert p == (None if expected is None else pytest.approx(expected, abs=1e-9))


def test_given_a_skewed_split_when_tested_then_the_p_value_is_the_chi_square_tail() -> None:
    chi2 = (850 - 900) ** 2 / 900 + (150 - 100) ** 2 / 100
    assert srm_p_value(850, 150, 0.1) == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))


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
