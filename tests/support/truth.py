"""A store's traffic planned in advance, and what reclift must report about it, worked out by hand.

The plan is buyers with their storefront events (an impression, mostly a click) and their orders; refunds and
cancellations may follow. The truth is DESIGN §2 applied with plain arithmetic over what was sent — it never calls
reclift's code — so a test or a benchmark can compare every figure the system reports against it, to the cent.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.support.recs import shown
from tests.support.shopify import fixture, order_payload

SEED = 20261126
CATALOGUE = 60
PRICES = ("0.99", "4.99", "12.00", "19.95", "24.50", "39.00", "59.99", "129.00")
LOGGED_IN_SHARE = 0.2
SHOWN_SHARE = 0.6
CLICK_SHARE = 0.7
REC_ID_ON_CLICKED = 0.5
REC_ID_ON_SHOWN = 0.15
CENT = Decimal("0.01")
FIRST_ORDER_ID = 4_100_000_000
SHOP_COUNTER = "_shop"  # the counter item of the shop's own totals


@dataclass(frozen=True)
class Line:
    product_id: str
    price: Decimal
    quantity: int
    discount: Decimal
    rec_id: str | None

    @property
    def revenue(self) -> Decimal:
        return self.price * self.quantity - self.discount


@dataclass(frozen=True)
class PlannedOrder:
    order_id: int
    visitor_id: str | None  # the `_reclift_vid` cart attribute, for anonymous buyers
    customer_id: str | None  # the customer, for buyers logged in (their events carry it, signed by the app proxy)
    lines: tuple[Line, ...]
    events: tuple[dict[str, Any], ...]

    def line_id(self, index: int) -> int:
        """The id `order_payload` gives the order's line at `index`."""
        return self.order_id * 100 + index


def plan(count: int, seed: int = SEED, first_order_id: int = FIRST_ORDER_ID) -> list[PlannedOrder]:
    """`count` buyers, each with the events the widget reported for them and one order."""
    rng = random.Random(seed)
    catalogue = {str(3_000_001 + n): Decimal(rng.choice(PRICES)) for n in range(CATALOGUE)}
    products = sorted(catalogue)
    orders: list[PlannedOrder] = []
    for index in range(count):
        order_id = first_order_id + index
        rec = f"rec-{order_id}"
        logged_in = rng.random() < LOGGED_IN_SHARE
        event_visitor = f"bv-{order_id}"
        bought = rng.sample(products, rng.choice((1, 1, 2, 2, 3, 4)))
        shown = [p for p in bought if rng.random() < SHOWN_SHARE]
        others = [p for p in rng.sample(products, 6) if p not in bought][:2]
        shown_all = shown + others
        clicked = rng.choice(shown) if shown and rng.random() < CLICK_SHARE else None
        events: list[dict[str, Any]] = [
            {
                "type": "impression",
                "rec_id": rec,
                "visitor_id": event_visitor,
                "placement": rng.choice(("product", "cart", "home")),
                "products": [{"product_id": p, "position": n + 1} for n, p in enumerate(shown_all)],
            }
        ]
        if clicked is not None:
            events.append(
                {
                    "type": "click",
                    "rec_id": rec,
                    "visitor_id": event_visitor,
                    "product_id": clicked,
                    "position": shown_all.index(clicked) + 1,
                }
            )
        lines = []
        for product in bought:
            price, quantity = catalogue[product], rng.randint(1, 3)
            gross = price * quantity
            discount = rng.choice((Decimal(0), Decimal("0.50"), Decimal("1.25"), (gross / 10).quantize(CENT)))
            discount = min(discount, gross - CENT)  # revenue stays above zero
            carries_rec = (product == clicked and rng.random() < REC_ID_ON_CLICKED) or (
                product in shown and product != clicked and rng.random() < REC_ID_ON_SHOWN
            )
            lines.append(Line(product, price, quantity, discount, rec if carries_rec else None))
        orders.append(
            PlannedOrder(
                order_id=order_id,
                visitor_id=None if logged_in else event_visitor,
                customer_id=str(7_000_000 + index) if logged_in else None,
                lines=tuple(lines),
                events=tuple(events),
            )
        )
    return orders


# ------------------------------------------------------------------------------------------------ payloads
_ISSUED: dict[tuple[str, int], dict[str, Any]] = {}


def rec_fields(shop: str, order: PlannedOrder) -> dict[str, Any]:
    """The rec id the server issued for the buyer's one recommendation (what its impression lists, to its visitor),
    with the response's event fields: issued once per shop and order, so its events and its lines cite the same."""
    key = (shop, order.order_id)
    if key not in _ISSUED:
        impression = order.events[0]
        listed = [p["product_id"] for p in impression["products"]]
        _ISSUED[key] = shown(shop, impression["visitor_id"], listed, placement=impression["placement"])
    return _ISSUED[key]


def events_for(shop: str, order: PlannedOrder) -> list[dict[str, Any]]:
    """The order's events as the widget posts them to `shop`: each about the recommendation cites its rec id."""
    return [event | rec_fields(shop, order) if "rec_id" in event else dict(event) for event in order.events]


def order_json(order: PlannedOrder, created_at: datetime, *, shop: str) -> bytes:
    """The order as Shopify's orders/create webhook carries it (the published sample, with these lines); a line's
    `_rec_id` is the rec id the server issued to `shop` for the buyer's recommendation."""
    payload = order_payload(
        order_id=order.order_id,
        created_at=created_at,
        visitor_id=order.visitor_id,
        customer_id=int(order.customer_id) if order.customer_id else None,
        lines=[
            {
                "product_id": int(line.product_id),
                "price": str(line.price),
                "quantity": line.quantity,
                "discount": str(line.discount),
                "rec_id": rec_fields(shop, order)["rec_id"] if line.rec_id else None,
            }
            for line in order.lines
        ],
    )
    return json.dumps(payload).encode()


def refund_json(order: PlannedOrder, line_index: int, refund_id: int) -> bytes:
    """Shopify's published refunds/create sample, refunding the whole quantity of one line of the order."""
    refund: dict[str, Any] = copy.deepcopy(fixture("shopify/refunds_create_sample.json"))
    line = order.lines[line_index]
    refund["id"] = refund_id
    refund["admin_graphql_api_id"] = f"gid://shopify/Refund/{refund_id}"
    refund["order_id"] = order.order_id
    template = refund["refund_line_items"][0]
    template["quantity"] = line.quantity
    template["line_item_id"] = order.line_id(line_index)
    template["line_item"]["id"] = order.line_id(line_index)
    template["line_item"]["product_id"] = int(line.product_id)
    template["line_item"]["quantity"] = line.quantity
    refund["refund_line_items"] = [template]
    return json.dumps(refund).encode()


def cancellation_json(order: PlannedOrder) -> bytes:
    """Shopify's published orders/cancelled sample, for this order."""
    cancelled: dict[str, Any] = copy.deepcopy(fixture("shopify/orders_cancelled_sample.json"))
    cancelled["id"] = order.order_id
    cancelled["admin_graphql_api_id"] = f"gid://shopify/Order/{order.order_id}"
    return json.dumps(cancelled).encode()


# ------------------------------------------------------------------------------------------------ the truth
def _channel(order: PlannedOrder, line: Line) -> str | None:
    """DESIGN §2 by hand: a `_rec_id` whose events show the product, or a click on it, is click-through; an
    impression of it, view-through; else the line is not attributed. Each buyer reaches only their own events."""
    impressions = [e for e in order.events if e["type"] == "impression"]
    clicks = [e for e in order.events if e["type"] == "click"]
    shown = {p["product_id"] for e in impressions for p in e["products"]}
    clicked = {e["product_id"] for e in clicks}
    rec_shows = {p["product_id"] for e in impressions if e["rec_id"] == line.rec_id for p in e["products"]} | {
        e["product_id"] for e in clicks if e["rec_id"] == line.rec_id
    }
    if (line.rec_id and line.product_id in rec_shows) or line.product_id in clicked:
        return "click_through"
    if line.product_id in shown:
        return "view_through"
    return None


def attributed_line_indexes(order: PlannedOrder) -> list[int]:
    return [index for index, line in enumerate(order.lines) if _channel(order, line) is not None]


def expected_report(
    orders: list[PlannedOrder],
    *,
    refunded: Collection[tuple[int, int]] = (),
    cancelled: Collection[int] = (),
) -> dict[str, Any]:
    """The ROI report's figures. `refunded` holds (order id, line index) of lines refunded in full, `cancelled` the
    ids of cancelled orders: their revenue is taken back; their lines still count as purchases."""
    revenue = {"click_through": Decimal(0), "view_through": Decimal(0)}
    attributed_orders = attributed_lines = 0
    by_product: dict[str, dict[str, Any]] = {}
    for order in orders:
        order_revenue = Decimal(0)
        for index, line in enumerate(order.lines):
            channel = _channel(order, line)
            if channel is None:
                continue
            kept = Decimal(0) if (order.order_id, index) in refunded or order.order_id in cancelled else line.revenue
            revenue[channel] += kept
            order_revenue += kept
            attributed_lines += 1
            product = by_product.setdefault(line.product_id, {"purchases": 0, "units": 0, "revenue": Decimal(0)})
            product["purchases"] += 1
            product["units"] += line.quantity
            product["revenue"] += kept
        if order_revenue > 0:
            attributed_orders += 1
    return {
        "attributed_revenue": revenue["click_through"] + revenue["view_through"],
        "click_through_revenue": revenue["click_through"],
        "view_through_revenue": revenue["view_through"],
        "attributed_orders": attributed_orders,
        "attributed_lines": attributed_lines,
        "orders": len(orders),
        "test_orders": 0,
        "by_product": by_product,
    }


def expected_counters(
    orders: list[PlannedOrder],
    *,
    refunded: Collection[tuple[int, int]] = (),
    cancelled: Collection[int] = (),
) -> dict[str, dict[str, Any]]:
    """Each product's day counter: impressions and clicks from the events sent, purchases, units and revenue from
    the attributed lines (one purchase per product per order); and the shop's own counter (`_shop`)."""
    counters: dict[str, dict[str, Any]] = {}

    def counter(product: str) -> dict[str, Any]:
        return counters.setdefault(
            product, {"impressions": 0, "clicks": 0, "purchases": 0, "units": 0, "revenue": Decimal(0)}
        )

    for order in orders:
        for event in order.events:
            if event["type"] == "impression":
                for shown in event["products"]:
                    counter(shown["product_id"])["impressions"] += 1
            elif event["type"] == "click":
                counter(event["product_id"])["clicks"] += 1
        for index in attributed_line_indexes(order):
            line = order.lines[index]
            row = counter(line.product_id)
            row["purchases"] += 1
            row["units"] += line.quantity
            if (order.order_id, index) not in refunded and order.order_id not in cancelled:
                row["revenue"] += line.revenue
    report = expected_report(orders, refunded=refunded, cancelled=cancelled)
    counters[SHOP_COUNTER] = {
        "orders": report["orders"],
        "attributed_orders": report["attributed_orders"],
        "attributed_revenue": report["attributed_revenue"],
    }
    return counters


def actual_report(report: dict[str, Any]) -> dict[str, Any]:
    """The ROI report's JSON in the truth's shape (decimals parsed)."""
    return {
        "attributed_revenue": Decimal(report["attributed_revenue"]),
        "click_through_revenue": Decimal(report["click_through_revenue"]),
        "view_through_revenue": Decimal(report["view_through_revenue"]),
        "attributed_orders": report["attributed_orders"],
        "attributed_lines": report["attributed_lines"],
        "orders": report["orders"],
        "test_orders": report["test_orders"],
        "by_product": {
            row["product_id"]: {
                "purchases": row["purchases"],
                "units": row["units"],
                "revenue": Decimal(row["revenue"]),
            }
            for row in report["by_product"]
        },
    }


def as_json(figures: dict[str, Any]) -> dict[str, Any]:
    """Decimals as strings, products as `[purchases, units, revenue]`, sorted."""
    out = {key: str(value) if isinstance(value, Decimal) else value for key, value in figures.items()}
    out["by_product"] = {
        product: [row["purchases"], row["units"], str(row["revenue"])]
        for product, row in sorted(figures["by_product"].items())
    }
    return out


def counter_days() -> tuple[date, date]:
    """The UTC days whose counters a test adds up: yesterday and today, so a test that runs across midnight (its
    traffic counted on one day, read on the next) still sees all of it. Each test's shop is new, so nothing older
    belongs to it."""
    today = datetime.now(UTC).date()
    return today - timedelta(days=1), today


def actual_counters(dynamodb: Any, table: str, shop: str, products: Collection[str]) -> dict[str, dict[str, Any]]:
    """The counters of these products over `counter_days()`, read by key (BatchGetItem, strongly consistent), in the
    truth's shape; `_shop` holds the shop's orders, attributed orders and attributed revenue (in the day's orders
    partition, `{shop}#{day}#o`)."""
    keys = [
        {"pk": {"S": f"{shop}#{day.isoformat()}" + ("#o" if product == SHOP_COUNTER else "")}, "sk": {"S": product}}
        for day in counter_days()
        for product in [*sorted(set(products) - {SHOP_COUNTER}), SHOP_COUNTER]
    ]
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            items += response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys") or {}

    shop_fields = {"orders": int, "attributed_orders": int, "attributed_revenue": Decimal}
    product_fields = {"impressions": int, "clicks": int, "purchases": int, "units": int, "revenue": Decimal}
    figures: dict[str, dict[str, Any]] = {}
    for item in items:
        key = item["sk"]["S"]
        fields = shop_fields if key == SHOP_COUNTER else product_fields
        row = figures.setdefault(key, {name: kind(0) for name, kind in fields.items()})
        for name, kind in fields.items():
            row[name] += kind(Decimal(item.get(name, {"N": "0"})["N"]))
    return figures
