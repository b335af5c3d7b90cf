"""Shopify's mandatory privacy topics, parsed: a customer's redaction or data request, a shop's redaction.

Each names the shop it is about in its body (`shop_domain`, `shop_id`). The signature covers the body only, not the
`X-Shopify-Shop-Domain` header, so a privacy topic is acted on only where its body names the shop it arrived for.
"""

from __future__ import annotations

from dataclasses import dataclass

from reclift.ids import shop_domain, shopify_id
from reclift.orders import OrderPayloadError


@dataclass(frozen=True)
class ShopRedaction:
    """`shop/redact`: the shop Shopify asks to erase, 48 hours after it uninstalled the app."""

    shop_domain: str
    shop_id: str | None


@dataclass(frozen=True)
class CustomerRequest:
    """`customers/redact` (orders_to_redact) or `customers/data_request` (orders_requested, a request id)."""

    customer_id: str
    order_ids: tuple[str, ...]
    request_id: str | None = None
    shop_domain: str = ""
    shop_id: str | None = None


def _id(raw: object, kind: str, what: str) -> str:
    try:
        return shopify_id(raw, kind)
    except ValueError as exc:
        raise OrderPayloadError(f"{what}: {exc}") from exc


def parse_shop_redaction(payload: object) -> ShopRedaction:
    if not isinstance(payload, dict):
        raise OrderPayloadError("the payload is not a JSON object")
    return ShopRedaction(*_shop_of(payload))


def _shop_of(payload: dict[str, object]) -> tuple[str, str | None]:
    raw_domain = payload.get("shop_domain")
    if not isinstance(raw_domain, str):
        raise OrderPayloadError("the payload names no shop_domain")
    try:
        domain = shop_domain(raw_domain)
    except ValueError as exc:
        raise OrderPayloadError(f"shop_domain: {exc}") from exc
    raw_id = payload.get("shop_id")
    return domain, None if raw_id is None else _id(raw_id, "Shop", "shop_id")


def parse_customer_request(payload: object, orders_key: str) -> CustomerRequest:
    if not isinstance(payload, dict):
        raise OrderPayloadError("the payload is not a JSON object")
    domain, shop_id = _shop_of(payload)
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        raise OrderPayloadError("the payload names no customer")
    orders = payload.get(orders_key) or []
    if not isinstance(orders, list):
        raise OrderPayloadError(f"{orders_key} is not a list")
    request = payload.get("data_request")
    return CustomerRequest(
        customer_id=_id(customer.get("id"), "Customer", "customer id"),
        order_ids=tuple(_id(order, "Order", orders_key) for order in orders),
        request_id=_id(request.get("id"), "DataRequest", "data_request id") if isinstance(request, dict) else None,
        shop_domain=domain,
        shop_id=shop_id,
    )
