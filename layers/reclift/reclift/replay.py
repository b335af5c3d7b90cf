"""Order deliveries Shopify never made, rebuilt from the Admin GraphQL API.

Shopify retries a refused or failed webhook delivery for 4 hours and then drops it: an outage that long, or an app
secret in SSM that is not the one Shopify signs with, loses those orders' attribution, refunds and cancellations.
The replay reads the shop's orders back (`reclift.logic.replay`) and queues, for what reclift has not recorded, the
delivery Shopify would have made: an `orders/create`, `refunds/create` or `orders/cancelled` body of the fields the
topic handlers read, under a webhook id of its own. The webhook queue's worker then processes it like any delivery
(the same attribution, its idempotency, its retries and DLQ).

This module is pure: the Admin API's nodes in, the webhook bodies and the choice of what to queue out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reclift.adjustments import CANCELLED_MARKER, refund_marker
from reclift.ids import shopify_id
from reclift.orders import OrderPayloadError, parse_timestamp

ORDER_CREATED = "orders/create"
REFUND_CREATED = "refunds/create"
ORDER_CANCELLED = "orders/cancelled"


@dataclass(frozen=True)
class StoredOrder:
    """What reclift holds of an order: whether its delivery was processed (a basket the backfill stored ahead of it
    is not), and the refunds and cancellation already applied to it (their markers' sort keys)."""

    recorded: bool
    markers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Delivery:
    """A webhook body as Shopify would have sent it, with the topic and the webhook id it is queued under."""

    topic: str
    webhook_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Missing:
    """What of one order reclift never received: its creation, its refunds (by id) and its cancellation."""

    order_id: str
    created: bool
    refund_ids: tuple[str, ...]
    cancelled: bool


def webhook_id(topic: str, object_id: str) -> str:
    """The same id for the same replayed object every time, so the queue's idempotency sees a replay run twice."""
    return f"replay:{topic}:{object_id}"


def _node_id(value: object, kind: str, what: str) -> int:
    try:
        return int(shopify_id(value, kind))
    except ValueError as exc:
        raise OrderPayloadError(f"{what}: {exc}") from exc


def _amount(money_bag: object) -> str | None:
    """`MoneyBag.shopMoney.amount` (the shop's currency, as the webhook's `*_set.shop_money`)."""
    shop = money_bag.get("shopMoney") if isinstance(money_bag, dict) else None
    amount = shop.get("amount") if isinstance(shop, dict) else None
    return str(amount) if isinstance(amount, str | int | float) and not isinstance(amount, bool) else None


def _money_set(amount: str, currency: str) -> dict[str, Any]:
    return {"shop_money": {"amount": amount, "currency_code": currency}}


def _pairs(attributes: object) -> list[dict[str, Any]]:
    """GraphQL's `[Attribute] { key value }` as the webhook's `[{"name": …, "value": …}]`."""
    if not isinstance(attributes, list):
        return []
    return [
        {"name": item.get("key"), "value": item.get("value")}
        for item in attributes
        if isinstance(item, dict) and isinstance(item.get("key"), str)
    ]


def _line(node: object, currency: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise OrderPayloadError("a line item node is not a JSON object")
    product = node.get("product")
    price = _amount(node.get("originalUnitPriceSet"))
    if price is None:
        raise OrderPayloadError("a line item node has no originalUnitPriceSet.shopMoney.amount")
    allocations = node.get("discountAllocations")
    discounts = [
        _amount(allocation.get("allocatedAmountSet"))
        for allocation in allocations or []
        if isinstance(allocation, dict)
    ]
    if not isinstance(allocations, list | None) or any(amount is None for amount in discounts):
        raise OrderPayloadError("a line item node has malformed discountAllocations")
    return {
        "id": _node_id(node.get("id"), "LineItem", "a line item node"),
        "product_id": (
            _node_id(product.get("id"), "Product", "a line item's product")
            if isinstance(product, dict) and product.get("id") is not None
            else None
        ),
        "quantity": node.get("quantity"),
        "price": price,
        "price_set": _money_set(price, currency),
        "discount_allocations": [
            {"amount": amount, "amount_set": _money_set(amount, currency)} for amount in discounts if amount is not None
        ],
        "properties": _pairs(node.get("customAttributes")),
    }


def order_payload(node: object, extra_lines: Iterable[object] = ()) -> dict[str, Any]:
    """An Admin GraphQL `Order` node (the replay's fields; `extra_lines` its lines fetched on later pages) as the
    `orders/create` body Shopify sends: the fields `reclift.orders.parse_order` reads, under the webhook's names."""
    if not isinstance(node, dict):
        raise OrderPayloadError("the order node is not a JSON object")
    code = node.get("currencyCode")
    currency = code if isinstance(code, str) and code else "USD"
    connection = node.get("lineItems")
    lines = connection.get("nodes") if isinstance(connection, dict) else None
    if not isinstance(lines, list):
        raise OrderPayloadError("the order node has no lineItems nodes")
    customer = node.get("customer")
    journey = node.get("customerJourneySummary")
    visit = journey.get("lastVisit") if isinstance(journey, dict) else None
    return {
        "id": _node_id(node.get("id"), "Order", "the order node"),
        "admin_graphql_api_id": node.get("id"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "currency": currency,
        "test": node.get("test") is True,
        "customer": (
            {"id": _node_id(customer.get("id"), "Customer", "the order's customer")}
            if isinstance(customer, dict) and customer.get("id") is not None
            else None
        ),
        "note_attributes": _pairs(node.get("customAttributes")),
        "landing_site": visit.get("landingPage") if isinstance(visit, dict) else None,
        "line_items": [_line(line, currency) for line in [*lines, *extra_lines]],
    }


def refund_payload(node: object, order_id: str, extra_lines: Iterable[object] = ()) -> dict[str, Any]:
    """An Admin GraphQL `Refund` node (id, createdAt, refundLineItems { lineItem { id } quantity }) of the order
    `order_id` as the `refunds/create` body Shopify sends (the fields `reclift.adjustments.parse_refund` reads)."""
    if not isinstance(node, dict):
        raise OrderPayloadError("the refund node is not a JSON object")
    connection = node.get("refundLineItems")
    lines = connection.get("nodes") if isinstance(connection, dict) else None
    if not isinstance(lines, list):
        raise OrderPayloadError("the refund node has no refundLineItems nodes")
    refund_lines = []
    for line in [*lines, *extra_lines]:
        item = line.get("lineItem") if isinstance(line, dict) else None
        if not isinstance(item, dict):
            raise OrderPayloadError("a refund line node has no lineItem")
        refund_lines.append(
            {"line_item_id": _node_id(item.get("id"), "LineItem", "a refund line"), "quantity": line.get("quantity")}
        )
    return {
        "id": _node_id(node.get("id"), "Refund", "the refund node"),
        "order_id": int(order_id),
        "created_at": node.get("createdAt"),
        "refund_line_items": refund_lines,
    }


def _refund_ids(node: dict[str, Any]) -> tuple[str, ...]:
    """The ids of the refunds the Admin API lists for the order `node`."""
    refunds = node.get("refunds")
    listed = refunds if isinstance(refunds, list) else []
    return tuple(
        str(_node_id(refund.get("id"), "Refund", "a refund of the order"))
        for refund in listed
        if isinstance(refund, dict)
    )


def keys_to_read(node: object) -> tuple[str, ...]:
    """The order items' sort keys that say what reclift holds of the order `node`: its own item, and the markers of
    the cancellation and the refunds the Admin API lists for it (an order's attribution lines are not read)."""
    if not isinstance(node, dict):
        return ()
    try:
        refund_keys = tuple(refund_marker(refund) for refund in _refund_ids(node))
    except OrderPayloadError:
        refund_keys = ()  # `missing` names it
    return ("order", *([CANCELLED_MARKER] if node.get("cancelledAt") else []), *refund_keys)


def missing(node: object, stored: StoredOrder | None, *, since: datetime) -> Missing:
    """What of the order `node` (id, createdAt, cancelledAt, refunds { id }) to replay, given what reclift holds of
    it: its creation when it was placed since `since` and never recorded (an older unrecorded order predates the
    installation or the replay's range); its refunds and cancellation not yet applied, once it is recorded or
    replayed now."""
    if not isinstance(node, dict):
        raise OrderPayloadError("the order node is not a JSON object")
    order_id = str(_node_id(node.get("id"), "Order", "the order node"))
    recorded = stored is not None and stored.recorded
    created = not recorded and parse_timestamp(node.get("createdAt")) >= since
    markers = stored.markers if stored is not None and recorded else frozenset()
    if not (recorded or created):
        return Missing(order_id, created=False, refund_ids=(), cancelled=False)
    return Missing(
        order_id,
        created=created,
        refund_ids=tuple(refund for refund in _refund_ids(node) if refund_marker(refund) not in markers),
        cancelled=bool(node.get("cancelledAt")) and CANCELLED_MARKER not in markers,
    )
