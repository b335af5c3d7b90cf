"""The ROI's day totals on moto and DynamoDB Local: orders, refunds and cancellations recorded through the store add to
them exactly once, and the report they make is the report the attribution lines make (the lift included), over any
range of whole or partial months; through the handlers, the report reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclift.adjustments import Refund, cancellation_adjustment, refund_adjustment
from reclift.attribution import Channel
from reclift.data.day_totals import DayTotalsStore, month_partitions
from reclift.data.roi_backfill import rebuild_months
from reclift.data.store import DynamoStore
from reclift.logic.roi import ReportRange, roi_report
from reclift.roi_totals import totals_from_lines
from reclift_local.worker import function_env
from tests.support.attributions import Line, attribution
from tests.support.aws import EmulatedAws, forget_execution_environment, process_queue
from tests.support.recs import shown
from tests.support.shopify import admin_event, new_shop, order_payload, proxy_event, proxy_query, webhook_event

# Orders from the last days of January to the first of March: whole and partial months.
START = datetime(2026, 1, 29, 10, tzinfo=UTC)
VISITORS = {"learning": 90, "holdout": 10}


@pytest.fixture
def store(aws: EmulatedAws) -> Iterator[DynamoStore]:
    """The AttributionFunction's store, in this process."""
    with function_env(aws.environment("AttributionFunction")):
        forget_execution_environment()
        yield DynamoStore()
    forget_execution_environment()


def from_lines(store: DynamoStore, shop: str, period: ReportRange) -> dict[str, Any]:
    """The report as it was computed before the totals: from the range's attribution lines and shop counters."""
    days = {
        total.day: (total.orders, total.test_orders) for total in store.shop_day_totals(shop, period.first, period.last)
    }
    totals = totals_from_lines(store.attributions(shop, period.first, period.last), days).report_totals()
    return roi_report(shop, period, totals, currency="USD", arm_visitors=VISITORS)


def from_totals(shop: str, period: ReportRange) -> dict[str, Any]:
    totals = DayTotalsStore().totals(shop, period.first, period.last)
    return roi_report(shop, period, totals, currency="USD", arm_visitors=VISITORS)


def assert_same_report(left: Any, right: Any) -> None:
    if isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys()
        for key in left:
            assert_same_report(left[key], right[key])
    elif isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            assert_same_report(a, b)
    elif isinstance(left, float) and isinstance(right, float):
        # The lift block rounds to 6 decimals; float sums in another order can fall either side of a rounding step.
        assert left == pytest.approx(right, rel=1e-9, abs=1.5e-6)
    else:
        assert left == right


LINE = st.tuples(
    st.sampled_from(["101", "102", "103", "104"]),
    st.integers(1, 3),
    st.integers(0, 9_000),
    st.sampled_from(list(Channel)),
    st.sampled_from(["learning", "holdout"]),
)
ORDER = st.tuples(
    st.integers(0, 32),  # days after START
    st.sampled_from([None, "v1", "v2", "v3", "v4"]),
    st.lists(LINE, min_size=1, max_size=3),
    st.booleans(),  # a test order
)
ADJUSTMENT = st.tuples(st.integers(0, 50), st.one_of(st.none(), st.dictionaries(st.integers(0, 2), st.integers(1, 3))))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(ORDER, min_size=1, max_size=8),
    st.lists(ADJUSTMENT, max_size=5),
    st.tuples(st.integers(0, 34), st.integers(0, 34)),
)
def test_given_random_orders_refunds_and_cancellations_when_reported_then_the_totals_report_equals_the_lines_report(
    store: DynamoStore,
    orders: list[tuple[int, str | None, list[Line], bool]],
    adjustments: list[tuple[int, dict[int, int] | None]],
    bounds: tuple[int, int],
) -> None:
    shop = new_shop()
    for index, (day, visitor, lines, test) in enumerate(orders):
        recorded = attribution(f"{index}", START + timedelta(days=day, minutes=index), visitor, lines, test=test)
        assert not store.record_order(shop, recorded).duplicate
        assert store.record_order(shop, recorded).duplicate  # a redelivery adds nothing
    for target, refund in adjustments:
        order_id = f"{target % len(orders)}"
        stored = store.attributed_lines(shop, order_id)
        assert stored is not None
        if not stored:
            continue
        adjustment = (
            cancellation_adjustment(order_id, stored)
            if refund is None
            else refund_adjustment(
                Refund(f"r{target}", order_id, {stored[i % len(stored)].line_id: q for i, q in refund.items()}), stored
            )
        )
        before = sum((line.revenue for line in stored), Decimal(0))
        store.apply_adjustment(shop, adjustment, before)
        assert not store.apply_adjustment(shop, adjustment, before)  # applied once

    first = START.date() + timedelta(days=min(bounds))
    period = ReportRange(first, START.date() + timedelta(days=max(bounds)))
    assert_same_report(from_totals(shop, period), from_lines(store, shop, period))
    whole = ReportRange(date(2026, 1, 1), date(2026, 3, 31))
    assert_same_report(from_totals(shop, whole), from_lines(store, shop, whole))


def test_given_two_orders_of_one_visitor_on_one_day_when_totalled_then_they_are_one_visitor_day(
    store: DynamoStore,
) -> None:
    """30.00 then 10.00: one converting visitor-day of 40.00 (Σ revenue² 1600, not 900 + 100)."""
    shop = new_shop()
    store.record_order(shop, attribution("1", START, "v1", [("101", 1, 3000, Channel.CLICK_THROUGH, "learning")]))
    store.record_order(
        shop, attribution("2", START + timedelta(hours=2), "v1", [("102", 1, 1000, Channel.VIEW_THROUGH, "learning")])
    )

    totals = DayTotalsStore().totals(shop, START.date(), START.date())

    arm = totals.arms[(START.date().isoformat(), "learning")]
    assert (arm.revenue, arm.squares, arm.converting) == (Decimal("40.00"), Decimal("1600.0000"), 1)
    day = totals.days[START.date().isoformat()]
    assert (day.orders, day.attributed_orders, day.attributed_lines) == (2, 2, 2)
    assert (day.click_through_revenue, day.view_through_revenue) == (Decimal("30.00"), Decimal("10.00"))

    # The first order refunded, then the second cancelled: 40.00 → 10.00 → 0, each step from the visitor-day's last.
    lines = store.attributed_lines(shop, "1")
    assert lines is not None
    store.apply_adjustment(shop, refund_adjustment(Refund("r1", "1", {"1-0": 1}), lines), Decimal("30.00"))
    arm = DayTotalsStore().totals(shop, START.date(), START.date()).arms[(START.date().isoformat(), "learning")]
    assert (arm.revenue, arm.squares, arm.converting) == (Decimal("10.00"), Decimal("100.0000"), 1)
    lines = store.attributed_lines(shop, "2")
    assert lines is not None
    store.apply_adjustment(shop, cancellation_adjustment("2", lines), Decimal("10.00"))
    arm = DayTotalsStore().totals(shop, START.date(), START.date()).arms[(START.date().isoformat(), "learning")]
    assert (arm.revenue, arm.squares, arm.converting) == (Decimal(0), Decimal(0), 0)


def test_given_days_recorded_before_the_totals_when_backfilled_then_the_report_is_the_lines_report(
    aws: EmulatedAws, store: DynamoStore
) -> None:
    """Orders whose totals were lost (as days recorded before the totals existed): the backfill rebuilds them."""
    shop = new_shop()
    for index in range(6):
        lines: list[Line] = [("101", 1 + index % 2, 500 + 100 * index, Channel.CLICK_THROUGH, "learning")]
        store.record_order(shop, attribution(f"{index}", START + timedelta(days=index), f"v{index % 2}", lines))
    period = ReportRange(date(2026, 1, 1), date(2026, 2, 28))
    expected = from_lines(store, shop, period)
    counters = aws.client("dynamodb")
    partitions = [pk for month in ("2026-01", "2026-02") for pk in month_partitions(shop, month)]
    for partition in partitions:  # the totals wiped, as before they were kept
        for item in counters.query(
            TableName=aws.resource("CountersTable"),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
        )["Items"]:
            counters.delete_item(TableName=aws.resource("CountersTable"), Key={"pk": item["pk"], "sk": item["sk"]})
    assert from_totals(shop, period)["attributed_revenue"] == "0.00"

    written = rebuild_months(shop, date(2026, 1, 15), date(2026, 2, 2))

    assert set(written) == {"2026-01", "2026-02"}
    assert_same_report(from_totals(shop, period), expected)
    # A refund after the backfill takes back from the rebuilt totals, visitor-days included.
    stored = store.attributed_lines(shop, "0")
    assert stored is not None
    store.apply_adjustment(shop, cancellation_adjustment("0", stored), sum((x.revenue for x in stored), Decimal(0)))
    assert_same_report(from_totals(shop, period), from_lines(store, shop, period))


def test_given_orders_of_one_visitor_through_the_handlers_when_the_roi_is_asked_then_it_counts_one_converting_day(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    """Through the webhook, the attribution function and GET /admin/roi: two orders of one visitor on one day after
    a click are one converting visitor-day of the learning arm; a cancellation of one leaves the other's revenue."""
    shop = new_shop()
    visitor = "v-roi-1"
    click = {"type": "click", "visitor_id": visitor, "product_id": "111", "position": 1}
    body = json.dumps({"events": [click | shown(shop, visitor, ["111"])]}).encode()
    assert (
        aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))[
            "statusCode"
        ]
        == 200
    )
    placed = datetime.now(UTC)
    for order_id, price in ((9101, "30.00"), (9102, "10.00")):
        order = order_payload(
            order_id=order_id, created_at=placed, visitor_id=visitor, lines=[{"product_id": 111, "price": price}]
        )
        aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))
    process_queue(aws, sqs, webhook_queue)

    def report() -> dict[str, Any]:
        day = placed.date().isoformat()
        response = aws.invoke("AdminFunction", admin_event("GET", f"/admin/roi?from={day}&to={day}", shop))
        assert response["statusCode"] == 200
        body: dict[str, Any] = json.loads(response["body"])
        return body

    first = report()
    assert (first["attributed_revenue"], first["attributed_orders"], first["attributed_lines"]) == ("40.00", 2, 2)
    assert first["lift"]["converting_visitors"] == {"learning": 1, "holdout": 0}
    assert first["by_product"] == [{"product_id": "111", "purchases": 2, "units": 2, "revenue": "40.00"}]

    cancelled = order_payload(
        order_id=9101, created_at=placed, visitor_id=visitor, lines=[{"product_id": 111, "price": "30.00"}]
    ) | {"cancelled_at": datetime.now(UTC).isoformat()}
    aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(cancelled).encode(), topic="orders/cancelled"))
    process_queue(aws, sqs, webhook_queue)

    after = report()
    assert (after["attributed_revenue"], after["attributed_orders"], after["attributed_lines"]) == ("10.00", 1, 2)
    assert after["lift"]["converting_visitors"] == {"learning": 1, "holdout": 0}
    assert after["by_product"] == [{"product_id": "111", "purchases": 2, "units": 2, "revenue": "10.00"}]
