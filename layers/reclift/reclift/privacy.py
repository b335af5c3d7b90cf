"""Shopify's mandatory privacy topics, parsed: a customer's redaction or data request, a shop's redaction."""

from __future__ import annotations

from dataclasses import dataclass

from reclift.ids import shopify_id
from reclift.orders import OrderPayloadError


@dataclass(frozen=True)
class CustomerRequest:
    """`customers/redact` (orders_to_redact) or `customers/data_request` (orders_requested, a request id)."""

    customer_id: str
    order_ids: tuple[str, ...]
    request_id: str | None = None


def _id(raw: object, kind: str, what: str) -> str:
    try:
        return shopify_id(raw, kind)
    except ValueError as exc:
        raise OrderPayloadError(f"{what}: {exc}") from exc


def parse_customer_request(payload: object, orders_key: str) -> CustomerRequest:
    if not isinstance(payload, dict):
        raise OrderPayloadError("the payload is not a JSON object")
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
    )
