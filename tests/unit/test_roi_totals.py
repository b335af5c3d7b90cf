"""The ROI's day totals: what orders, refunds and cancellations add equals what their lines add up to, lift included."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclift.adjustments import AttributedLine, Refund, cancellation_adjustment, refund_adjustment
from reclift.attribution import Channel, OrderAttribution
from reclift.lift import Sums, lift_from_sums, lift_report
from reclift.orders import Order
from reclift.roi_totals import (
    RoiTotals,
    VisitorDayKey,
    adjustment_delta,
    adjustment_visitor_days,
    order_delta,
    order_visitor_days,
    totals_from_lines,
)
from tests.support.attributions import Line
from tests.support.attributions import attribution as build

DAY0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """An attribution line as the report reads it."""

    order_id: str
    product_id: str
    quantity: int
    revenue: Decimal
    channel: Channel
    created_at: datetime
    currency: str
    arm: str | None
    visitor_id: str | None


class Ledger:
    """Orders recorded and adjusted as the store does it: deltas added to totals, visitor-days kept apart."""

    def __init__(self) -> None:
        self.totals = RoiTotals()
        self.visitor_days: dict[VisitorDayKey, Decimal] = {}
        self.lines: dict[str, list[AttributedLine]] = {}
        self.orders: dict[str, Order] = {}

    def _before(self, keys: list[VisitorDayKey]) -> dict[VisitorDayKey, Decimal | None]:
        return {key: self.visitor_days.get(key) for key in keys}

    def record(self, attribution: OrderAttribution) -> None:
        delta = order_delta(attribution, self._before(order_visitor_days(attribution)))
        self.totals.add(delta)
        for change in delta.visitor_days:
            self.visitor_days[(change.day, change.arm, change.visitor_id)] = change.after
        order = attribution.order
        self.orders[order.order_id] = order
        self.lines[order.order_id] = [
            AttributedLine(
                line_id=line.line.line_id,
                product_id=line.product_id,
                day=order.created_at.date(),
                quantity=line.line.quantity,
                original_revenue=line.revenue,
                revenue=line.revenue,
                channel=line.channel.value,
                arm=line.credited.arm,
                visitor_id=order.visitor_id,
            )
            for line in attribution.attributed
        ]

    def adjust(self, order_id: str, refund: dict[str, int] | None) -> None:
        lines = self.lines[order_id]
        adjustment = (
            cancellation_adjustment(order_id, lines)
            if refund is None
            else refund_adjustment(Refund("r", order_id, refund), lines)
        )
        before = sum((line.revenue for line in lines), Decimal(0))
        delta = adjustment_delta(adjustment, before, self._before(adjustment_visitor_days(adjustment)))
        if delta is None:
            return
        self.totals.add(delta)
        for change in delta.visitor_days:
            self.visitor_days[(change.day, change.arm, change.visitor_id)] = change.after
        changed = {change.line.line_id: change for change in adjustment.changes}
        self.lines[order_id] = [
            replace(
                line,
                revenue=changed[line.line_id].revenue_after,
                refunded_quantity=changed[line.line_id].refunded_quantity_after,
            )
            if line.line_id in changed
            else line
            for line in lines
        ]

    def rows(self) -> list[Row]:
        return [
            Row(
                order_id=order_id,
                product_id=line.product_id,
                quantity=line.quantity,
                revenue=line.revenue,
                channel=Channel(line.channel or Channel.CLICK_THROUGH),
                created_at=self.orders[order_id].created_at,
                currency="USD",
                arm=line.arm,
                visitor_id=line.visitor_id,
            )
            for order_id, lines in self.lines.items()
            for line in lines
        ]


def attribution(
    order_id: str, day: int, visitor: str | None, lines: list[Line], *, test: bool = False
) -> OrderAttribution:
    return build(order_id, DAY0 + timedelta(days=day), visitor, lines, test=test)


LINE = st.tuples(
    st.sampled_from(["101", "102", "103"]),
    st.integers(1, 4),
    st.integers(0, 20_000),
    st.sampled_from(list(Channel)),
    st.sampled_from(["learning", "holdout"]),
)
ORDER = st.tuples(st.integers(0, 2), st.sampled_from([None, "v1", "v2", "v3"]), st.lists(LINE, min_size=1, max_size=4))
# After the orders: refunds (line index → quantity) or cancellations (None) of some of them.
ADJUSTMENT = st.tuples(st.integers(0, 30), st.one_of(st.none(), st.dictionaries(st.integers(0, 3), st.integers(1, 4))))


def compare(ledger: Ledger) -> None:
    rows = ledger.rows()
    expected = totals_from_lines(rows).report_totals()
    got = ledger.totals
    for day in set(expected.days) | set(got.days):
        left, right = expected.days.get(day), got.days.get(day)
        assert left is not None
        assert right is not None
        assert (left.attributed_revenue, left.attributed_orders, left.attributed_lines) == (
            right.attributed_revenue,
            right.attributed_orders,
            right.attributed_lines,
        )
        assert (left.click_through_revenue, left.view_through_revenue) == (
            right.click_through_revenue,
            right.view_through_revenue,
        )
    assert {key: vars(value) for key, value in expected.arms.items() if value.revenue or value.converting} == {
        key: vars(value) for key, value in got.arms.items() if value.revenue or value.squares or value.converting
    }
    assert {key: vars(value) for key, value in expected.products.items()} == {
        key: vars(value) for key, value in got.products.items()
    }
    # The lift from the totals is the lift from each visitor-day's revenue in the lines.
    visitors = {"learning": 40, "holdout": 12}
    by_visitor: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row.arm and row.visitor_id:
            by_visitor[row.arm][f"{row.visitor_id}#{row.created_at.date()}"] += row.revenue
    from_lines = lift_report(visitors, by_visitor, 0.1)
    sums = {
        arm: Sums(
            visitors[arm],
            sum(f.converting for (_, name), f in got.arms.items() if name == arm),
            float(sum((f.revenue for (_, name), f in got.arms.items() if name == arm), Decimal(0))),
            float(sum((f.squares for (_, name), f in got.arms.items() if name == arm), Decimal(0))),
        )
        for arm in ("learning", "holdout")
    }
    from_totals = lift_from_sums(sums["learning"], sums["holdout"], 0.1)
    assert _close(from_totals, from_lines)


def _close(left: object, right: object) -> bool:
    if isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys()
        return all(_close(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right)
        return all(_close(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float) and isinstance(right, float):
        # The block rounds to 6 decimals; float sums taken in another order can fall either side of a rounding step.
        assert left == pytest.approx(right, rel=1e-9, abs=1.5e-6)
        return True
    assert left == right
    return True


@settings(max_examples=200, deadline=None)
@given(st.lists(ORDER, min_size=1, max_size=12), st.lists(ADJUSTMENT, max_size=8))
def test_given_random_orders_refunds_and_cancellations_when_totalled_then_the_totals_equal_the_lines(
    orders: list[tuple[int, str | None, list[tuple[str, int, int, Channel, str]]]],
    adjustments: list[tuple[int, dict[int, int] | None]],
) -> None:
    ledger = Ledger()
    for index, (day, visitor, lines) in enumerate(orders):
        ledger.record(attribution(f"o{index}", day, visitor, lines))
    for target, refund in adjustments:
        order_id = f"o{target % len(orders)}"
        quantities = None
        if refund is not None:
            ids = [line.line_id for line in ledger.lines[order_id]]
            quantities = {ids[i % len(ids)]: q for i, q in refund.items()}
        ledger.adjust(order_id, quantities)
    compare(ledger)


def test_given_two_orders_of_one_visitor_day_when_totalled_then_their_squares_are_of_the_day_sum() -> None:
    """30.00 then 10.00 the same day: one visitor-day of 40.00, Σ revenue² 1600, one converting visitor-day."""
    ledger = Ledger()
    ledger.record(attribution("a", 0, "v1", [("101", 1, 3000, Channel.CLICK_THROUGH, "learning")]))
    ledger.record(attribution("b", 0, "v1", [("102", 1, 1000, Channel.VIEW_THROUGH, "learning")]))

    arm = ledger.totals.arms[(DAY0.date().isoformat(), "learning")]

    assert (arm.revenue, arm.squares, arm.converting) == (Decimal("40.00"), Decimal("1600.0000"), 1)


def test_given_a_cancelled_order_when_totalled_then_its_visitor_day_no_longer_converts_or_counts() -> None:
    ledger = Ledger()
    ledger.record(attribution("a", 0, "v1", [("101", 2, 2500, Channel.CLICK_THROUGH, "holdout")]))
    ledger.adjust("a", None)

    day = DAY0.date().isoformat()
    arm, figures = ledger.totals.arms[(day, "holdout")], ledger.totals.days[day]

    assert (arm.revenue, arm.squares, arm.converting) == (Decimal(0), Decimal(0), 0)
    assert (figures.attributed_revenue, figures.attributed_orders, figures.attributed_lines) == (Decimal(0), 0, 1)
    assert ledger.totals.products["101"].purchases == 1
    assert ledger.totals.products["101"].revenue == 0


def test_given_a_test_order_when_totalled_then_it_counts_as_a_test_order_only() -> None:
    ledger = Ledger()
    ledger.record(attribution("t", 0, None, [], test=True))
    figures = ledger.totals.days[date(2026, 3, 1).isoformat()]
    assert (figures.orders, figures.test_orders, figures.attributed_orders) == (0, 1, 0)
