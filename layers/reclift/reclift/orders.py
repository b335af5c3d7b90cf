"""Shopify order webhooks parsed into the plain values attribution works on.

Money is taken in shop currency (`*_set.shop_money`), as Decimal, never float.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote, urlsplit

from reclift.ids import shopify_id

REC_ID_PROPERTY = "_rec_id"
VISITOR_ATTRIBUTE = "_reclift_vid"
MAX_KEY_LENGTH = 128
MAX_AMOUNT = Decimal("1e15")
MAX_HANDLE_LENGTH = 255  # Shopify's limit on a product handle


class OrderPayloadError(ValueError):
    """An order payload that lacks what attribution needs."""


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    product_id: str | None  # None for custom lines (no product)
    quantity: int
    unit_price: Decimal
    discount: Decimal
    rec_id: str | None

    @property
    def revenue(self) -> Decimal:
        """Price × quantity − the line's discount allocations, never below zero."""
        return max(self.unit_price * self.quantity - self.discount, Decimal(0))


@dataclass(frozen=True)
class Order:
    order_id: str
    created_at: datetime  # timezone-aware, UTC
    currency: str
    test: bool
    customer_id: str | None
    visitor_id: str | None
    lines: tuple[OrderLine, ...]
    landing: str | None = None  # the handle of the product page the buyer's visit landed on (`landing_handle`)

    @property
    def product_ids(self) -> tuple[str, ...]:
        """The basket: distinct products, in line order."""
        return tuple(dict.fromkeys(line.product_id for line in self.lines if line.product_id))


def parse_timestamp(value: object) -> datetime:
    """An ISO-8601 timestamp with an offset, as aware UTC."""
    if not isinstance(value, str) or not value:
        raise OrderPayloadError("created_at is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise OrderPayloadError(f"created_at is not an ISO-8601 timestamp: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise OrderPayloadError(f"created_at is out of range: {value[:40]!r}") from exc


def shop_money(container: dict[str, Any], set_key: str, plain_key: str) -> Decimal:
    """An amount in shop currency: `<set_key>.shop_money.amount`, else the plain field."""
    money_set = container.get(set_key)
    raw: object = None
    if isinstance(money_set, dict):
        shop = money_set.get("shop_money")
        if isinstance(shop, dict):
            raw = shop.get("amount")
    if raw is None:
        raw = container.get(plain_key)
    if raw is None:
        return Decimal(0)
    try:
        amount = Decimal(str(raw))
    except InvalidOperation as exc:
        raise OrderPayloadError(f"{plain_key} is not a decimal amount: {str(raw)[:40]!r}") from exc
    if not amount.is_finite():
        raise OrderPayloadError(f"{plain_key} is not a finite amount")
    if abs(amount) > MAX_AMOUNT:
        raise OrderPayloadError(f"{plain_key} is not a plausible amount: {str(raw)[:40]!r}")
    return amount


def landing_handle(url: object) -> str | None:
    """The product handle of the page a buyer's visit landed on, from an order's `landing_site` (or GraphQL's
    `landingPage`): `/products/<handle>`, also under a locale (`/fr/products/…`) or a collection
    (`/collections/<c>/products/…`), relative or absolute, its query and fragment ignored. None for any other page
    (the home page, a collection, a search) or no landing. Only the handle is kept: a landing URL's query can carry
    campaign parameters, never needed here."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None
    segments = [segment for segment in path.split("/") if segment]
    for index, segment in enumerate(segments[:-1]):
        if segment == "products":
            handle = unquote(segments[index + 1]).strip().lower()
            # Shopify's handles are letters, digits and hyphens: never a "#" (the basket's index key separator)
            return handle if 0 < len(handle) <= MAX_HANDLE_LENGTH and "#" not in handle else None
    return None


def _named_value(pairs: object, name: str) -> str | None:
    """The value of `name` in Shopify's `[{"name": …, "value": …}]` lists (line properties, note attributes)."""
    if not isinstance(pairs, list):
        return None
    for pair in pairs:
        if isinstance(pair, dict) and pair.get("name") == name:
            value = pair.get("value")
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()[:MAX_KEY_LENGTH]
    return None


def _line(raw: object) -> OrderLine:
    if not isinstance(raw, dict):
        raise OrderPayloadError("a line item is not an object")
    if raw.get("id") is None:
        raise OrderPayloadError("a line item has no id")
    quantity = raw.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise OrderPayloadError(f"line item {raw.get('id')} has an invalid quantity")
    product = raw.get("product_id")
    allocations = raw.get("discount_allocations") or []
    if not isinstance(allocations, list) or not all(isinstance(item, dict) for item in allocations):
        raise OrderPayloadError(f"line item {raw.get('id')} has malformed discount_allocations")
    discounts = [shop_money(allocation, "amount_set", "amount") for allocation in allocations]
    if any(amount < 0 for amount in discounts):
        raise OrderPayloadError(f"line item {raw.get('id')} has a negative discount allocation")
    discount = sum(discounts, Decimal(0))
    try:
        line_id = shopify_id(raw["id"], "LineItem")
        product_id = shopify_id(product, "Product") if product is not None else None
    except ValueError as exc:
        raise OrderPayloadError(str(exc)) from exc
    return OrderLine(
        line_id=line_id,
        product_id=product_id,
        quantity=quantity,
        unit_price=shop_money(raw, "price_set", "price"),
        discount=discount,
        rec_id=_named_value(raw.get("properties"), REC_ID_PROPERTY),
    )


def parse_order(payload: object) -> Order:
    """An `orders/create` (or `orders/paid`) payload as an Order; OrderPayloadError names what is wrong."""
    if not isinstance(payload, dict):
        raise OrderPayloadError("the order payload is not a JSON object")
    if payload.get("id") is None:
        raise OrderPayloadError("the order has no id")
    try:
        order_id = shopify_id(payload["id"], "Order")
    except ValueError as exc:
        raise OrderPayloadError(str(exc)) from exc
    lines = payload.get("line_items")
    if not isinstance(lines, list):
        raise OrderPayloadError("the order has no line_items list")
    customer = payload.get("customer")
    customer_id: str | None = None
    if isinstance(customer, dict) and customer.get("id") is not None:
        try:
            customer_id = shopify_id(customer["id"], "Customer")
        except ValueError as exc:
            raise OrderPayloadError(str(exc)) from exc
    currency = payload.get("currency")
    return Order(
        order_id=order_id,
        created_at=parse_timestamp(payload.get("created_at")),
        currency=currency if isinstance(currency, str) and currency else "USD",
        test=payload.get("test") is True,
        customer_id=customer_id,
        visitor_id=_named_value(payload.get("note_attributes"), VISITOR_ATTRIBUTE),
        lines=tuple(_line(line) for line in lines),
        landing=landing_handle(payload.get("landing_site")),
    )


@dataclass(frozen=True)
class Basket:
    """An order as co-purchase similarity needs it: its distinct products, when, and whether it was a test."""

    order_id: str
    created_at: datetime
    currency: str
    test: bool
    product_ids: tuple[str, ...]
    landing: str | None = None  # the handle of the product page the buyer's visit landed on (`landing_handle`)


def parse_graphql_order(node: object, extra_lines: Iterable[object] = ()) -> Basket:
    """An Admin GraphQL `Order` node (id, createdAt, test, currencyCode, lineItems { nodes { product { id } } },
    customerJourneySummary { lastVisit { landingPage } }) as a basket; `extra_lines` are line nodes fetched on
    later pages of its lineItems connection. Lines without a product (custom lines, deleted products) are left
    out."""
    if not isinstance(node, dict):
        raise OrderPayloadError("the order node is not a JSON object")
    try:
        order_id = shopify_id(node.get("id"), "Order")
    except ValueError as exc:
        raise OrderPayloadError(f"the order node has no valid id: {exc}") from exc
    connection = node.get("lineItems")
    lines = connection.get("nodes") if isinstance(connection, dict) else None
    products: list[str] = []
    for line in [*(lines if isinstance(lines, list) else []), *extra_lines]:
        product = line.get("product") if isinstance(line, dict) else None
        if isinstance(product, dict) and product.get("id") is not None:
            try:
                products.append(shopify_id(product["id"], "Product"))
            except ValueError as exc:
                raise OrderPayloadError(f"order {order_id}: {exc}") from exc
    currency = node.get("currencyCode")
    journey = node.get("customerJourneySummary")
    visit = journey.get("lastVisit") if isinstance(journey, dict) else None
    return Basket(
        order_id=order_id,
        created_at=parse_timestamp(node.get("createdAt")),
        currency=currency if isinstance(currency, str) and currency else "USD",
        test=node.get("test") is True,
        product_ids=tuple(dict.fromkeys(products)),
        landing=landing_handle(visit.get("landingPage")) if isinstance(visit, dict) else None,
    )
