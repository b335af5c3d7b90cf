"""The merchant's per-product report: each CVR beside its 95 % interval once learning judges the product, and
"not enough data yet" (no interval) before that."""

from __future__ import annotations

from decimal import Decimal

from reclift.data.learning import LearnedModel
from reclift.learning import Performance, Prior
from reclift.logic.performance import performance_report


def performance(product_id: str, impressions: int, purchases: int) -> Performance:
    return Performance(
        product_id=product_id,
        impressions=impressions,
        clicks=purchases * 3,
        purchases=purchases,
        units=purchases,
        revenue=Decimal(20 * purchases),
        ctr=purchases * 3 / impressions if impressions else 0.0,
        cvr=purchases / impressions if impressions else 0.0,
        confidence=0.5,
        blacklisted=False,
        reason="",
        alpha=1.0 + purchases,
        beta=99.0 + impressions - purchases,
        price=Decimal(20),
    )


class Learned:
    def __init__(self, rows: list[Performance]) -> None:
        self.rows = rows

    def model(self, shop: str) -> LearnedModel | None:
        return LearnedModel(
            run="2026-12-01",
            policy="bayes",
            prior=Prior(1.0, 99.0),
            median_price=Decimal(20),
            best_sellers=[],
            products=len(self.rows),
            blacklisted=0,
        )

    def performance(self, shop: str, run: str) -> list[Performance]:
        return self.rows


def test_given_products_above_and_below_the_judging_threshold_then_only_those_above_show_an_interval() -> None:
    rows = [performance("1", 5_000, 100), performance("2", 99, 3), performance("3", 100, 0), performance("4", 0, 0)]

    report = performance_report("s.myshopify.com", Learned(rows), only_blacklisted=False, min_impressions=100)
    by_id = {row["product_id"]: row for row in report["products"]}

    low, high = by_id["1"]["cvr_ci95"]
    assert low < by_id["1"]["cvr"] == 0.02 < high
    assert high - low < 0.01  # 5,000 impressions pin a 2 % rate within a point
    assert by_id["2"]["cvr_ci95"] is None  # 99 impressions: learning does not judge it yet, nor does the page
    assert by_id["3"]["cvr_ci95"][0] == 0.0
    assert 0.0 < by_id["3"]["cvr_ci95"][1] < 0.05  # none bought in 100: below 4 %, not "0 %"
    assert by_id["4"]["cvr_ci95"] is None


def test_given_more_purchases_than_impressions_then_the_interval_still_reads_as_a_rate() -> None:
    """Attributed purchases can exceed the impressions counted (a click's order, a late impression); the CVR
    interval is per impression, so it stops at 100 %."""
    report = performance_report(
        "s.myshopify.com", Learned([performance("1", 100, 120)]), only_blacklisted=False, min_impressions=1
    )
    assert report["products"][0]["cvr_ci95"][1] == 1.0
