"""Refunds and cancellations take back attributed revenue: pro rata, once, never below zero."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reclift.adjustments import (
    AttributedLine,
    Refund,
    cancellation_adjustment,
    parse_cancelled_order_id,
    parse_refund,
    refund_adjustment,
)
from reclift.orders import OrderPayloadError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
DAY = date(2026, 11, 26)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def line(
    line_id: str = "1", quantity: int = 3, revenue: str = "54.00", refunded: int = 0, now: str | None = None
) -> AttributedLine:
    return AttributedLine(
        line_id=line_id,
        product_id="p",
        day=DAY,
        quantity=quantity,
        original_revenue=Decimal(revenue),
        revenue=Decimal(now or revenue),
        refunded_quantity=refunded,
    )


def test_given_shopifys_refund_sample_when_parsed_then_its_order_and_line_quantities_are_read() -> None:
    refund = parse_refund(fixture("refunds_create_sample.json"))

    assert refund == Refund(refund_id="929361472", order_id="450789469", quantities={"518995019": 1})


def test_given_shopifys_cancellation_sample_when_parsed_then_the_order_id_is_read() -> None:
    assert parse_cancelled_order_id(fixture("orders_cancelled_sample.json")) == "450789469"


@pytest.mark.parametrize("other", ["orders_create_sample.json", "refunds_create_sample.json"])
def test_given_another_topics_signed_body_when_parsed_as_a_cancellation_then_it_is_refused(other: str) -> None:
    """An order that was not cancelled, or a refund (whose `id` is not an order's), is no cancellation."""
    with pytest.raises(OrderPayloadError, match="cancelled_at"):
        parse_cancelled_order_id(fixture(other))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("refund_line_items"), "refund_line_items"),
        (lambda p: p["refund_line_items"][0].update(quantity=-1), "invalid quantity"),
        (lambda p: p.update(order_id="x"), "order_id"),
        (lambda p: p["refund_line_items"][0].update(line_item_id=None), "refund line"),
    ],
)
def test_given_a_malformed_refund_when_parsed_then_the_error_names_it(mutate: Any, message: str) -> None:
    payload = copy.deepcopy(fixture("refunds_create_sample.json"))
    mutate(payload)
    with pytest.raises(OrderPayloadError, match=message):
        parse_refund(payload)


def test_given_one_of_three_units_refunded_when_adjusted_then_a_third_of_the_net_revenue_goes() -> None:
    adjustment = refund_adjustment(Refund("r1", "o1", {"1": 1}), [line()])

    [change] = adjustment.changes
    assert change.revenue_after == Decimal("36.00")
    assert change.refunded_quantity_after == 1
    assert adjustment.removed == Decimal("18.00")
    assert adjustment.marker == "refund#r1"


def test_given_refunds_one_unit_at_a_time_when_adjusted_then_they_sum_to_the_line_exactly() -> None:
    current = line(revenue="10.00")
    removed = Decimal(0)
    for refund_id in ("a", "b", "c"):
        [change] = refund_adjustment(Refund(refund_id, "o", {"1": 1}), [current]).changes
        removed += change.removed
        current = line(revenue="10.00", now=str(change.revenue_after), refunded=change.refunded_quantity_after)
    assert current.revenue == 0
    assert removed == Decimal("10.00")  # 3.33 + 3.34 + 3.33, no cent lost or invented


def test_given_more_units_refunded_than_bought_when_adjusted_then_revenue_stops_at_zero() -> None:
    [change] = refund_adjustment(Refund("r", "o", {"1": 9}), [line()]).changes
    assert (change.revenue_after, change.refunded_quantity_after) == (Decimal(0), 3)


def test_given_a_refund_of_lines_never_attributed_when_adjusted_then_nothing_changes() -> None:
    assert refund_adjustment(Refund("r", "o", {"99": 1}), [line()]).changes == ()


def test_given_a_partly_refunded_order_when_cancelled_then_what_is_left_goes() -> None:
    adjustment = cancellation_adjustment("o", [line(now="36.00", refunded=1), line("2", 1, "5.00", now="0.00")])

    assert [(c.line.line_id, c.revenue_after) for c in adjustment.changes] == [("1", Decimal(0))]
    assert adjustment.removed == Decimal("36.00")
    assert adjustment.marker == "cancelled"
