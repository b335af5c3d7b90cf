"""Refunds and cancellations: what they take back from an order's attributed revenue (DESIGN.md §2).

A refund removes the refunded quantity's pro-rata share of each attributed line's revenue; a cancellation removes
what is left of the order's. A line's remaining revenue is always computed from its original revenue and the
quantity refunded so far, so a series of partial refunds cannot drift by rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from reclift.ids import shopify_id
from reclift.orders import OrderPayloadError

CENT = Decimal("0.01")


@dataclass(frozen=True)
class AttributedLine:
    """An attribution line as stored."""

    line_id: str
    product_id: str
    day: date  # the order's day, whose counters hold the line's revenue
    quantity: int
    original_revenue: Decimal
    revenue: Decimal
    refunded_quantity: int = 0
    channel: str | None = None  # what the ROI's day totals hold the line's revenue under
    arm: str | None = None
    visitor_id: str | None = None


@dataclass(frozen=True)
class LineChange:
    line: AttributedLine
    revenue_after: Decimal
    refunded_quantity_after: int

    @property
    def removed(self) -> Decimal:
        return self.line.revenue - self.revenue_after


@dataclass(frozen=True)
class Adjustment:
    """What one refund or cancellation does to an order; `marker` names it, so it is applied once."""

    order_id: str
    marker: str
    changes: tuple[LineChange, ...]

    @property
    def removed(self) -> Decimal:
        return sum((change.removed for change in self.changes), Decimal(0))


@dataclass(frozen=True)
class Refund:
    refund_id: str
    order_id: str
    quantities: dict[str, int]  # line id → quantity refunded


def _id(raw: object, kind: str, what: str) -> str:
    try:
        return shopify_id(raw, kind)
    except ValueError as exc:
        raise OrderPayloadError(f"{what}: {exc}") from exc


def parse_refund(payload: object) -> Refund:
    """A `refunds/create` payload; OrderPayloadError names what is missing."""
    if not isinstance(payload, dict):
        raise OrderPayloadError("the refund payload is not a JSON object")
    lines = payload.get("refund_line_items")
    if not isinstance(lines, list):
        raise OrderPayloadError("the refund has no refund_line_items list")
    quantities: dict[str, int] = {}
    for line in lines:
        if not isinstance(line, dict):
            raise OrderPayloadError("a refund line is not an object")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise OrderPayloadError(f"refund line {line.get('id')} has an invalid quantity")
        line_id = _id(line.get("line_item_id"), "LineItem", "refund line")
        quantities[line_id] = quantities.get(line_id, 0) + quantity
    return Refund(
        refund_id=_id(payload.get("id"), "Refund", "refund id"),
        order_id=_id(payload.get("order_id"), "Order", "refund order_id"),
        quantities=quantities,
    )


def parse_cancelled_order_id(payload: object) -> str:
    """The order an `orders/cancelled` payload cancels: an order with its `cancelled_at` set (so that no other signed
    body, an order not cancelled or a refund, can be re-sent as a cancellation)."""
    if not isinstance(payload, dict):
        raise OrderPayloadError("the order payload is not a JSON object")
    if not payload.get("cancelled_at") or not isinstance(payload.get("line_items"), list):
        raise OrderPayloadError("an orders/cancelled body is an order with cancelled_at and line_items")
    return _id(payload.get("id"), "Order", "order id")


def _remaining(line: AttributedLine, refunded: int) -> Decimal:
    if line.quantity <= 0:
        return Decimal(0)
    share = line.original_revenue * (line.quantity - refunded) / line.quantity
    return min(share.quantize(CENT, rounding=ROUND_HALF_EVEN), line.revenue)


CANCELLED_MARKER = "cancelled"  # the order's item that says it was cancelled (its adjustment is applied once)


def refund_marker(refund_id: str) -> str:
    """The order's item that says the refund `refund_id` was applied."""
    return f"refund#{refund_id}"


def refund_adjustment(refund: Refund, lines: Sequence[AttributedLine]) -> Adjustment:
    changes = []
    for line in lines:
        quantity = refund.quantities.get(line.line_id, 0)
        if quantity <= 0 or line.revenue <= 0:
            continue
        refunded = min(line.quantity, line.refunded_quantity + quantity)
        changes.append(LineChange(line, _remaining(line, refunded), refunded))
    return Adjustment(order_id=refund.order_id, marker=refund_marker(refund.refund_id), changes=tuple(changes))


def cancellation_adjustment(order_id: str, lines: Sequence[AttributedLine]) -> Adjustment:
    changes = tuple(LineChange(line, Decimal(0), line.refunded_quantity) for line in lines if line.revenue > 0)
    return Adjustment(order_id=order_id, marker=CANCELLED_MARKER, changes=changes)
