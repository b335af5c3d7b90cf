"""Requests as Shopify and the storefront make them: signed webhooks, signed app-proxy calls, session tokens."""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reclift.signatures import mint_session_token, signed_app_proxy_query
from reclift_local.sample_events import build_all, http_event, webhook_headers
from reclift_local.sign import DEV_API_KEY, DEV_API_SECRET

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(name: str) -> Any:
    """A payload from tests/fixtures (Shopify's published webhook samples, `sam local generate-event` output)."""
    return json.loads((FIXTURES / name).read_text())


def new_shop() -> str:
    """A shop of its own for each test, so tests never see each other's data."""
    return f"test-{uuid.uuid4().hex[:12]}.myshopify.com"


def order_payload(
    *,
    order_id: int,
    created_at: datetime,
    lines: list[dict[str, Any]],
    visitor_id: str | None = None,
    customer_id: int | None = None,
    test: bool = False,
) -> dict[str, Any]:
    """Shopify's published orders/create sample with these lines (each: product_id, price, quantity,
    optional discount and rec_id), keeping every other field of the real payload."""
    order: dict[str, Any] = copy.deepcopy(fixture("shopify/orders_create_sample.json"))
    template_line = order["line_items"][0]
    order["id"] = order_id
    order["admin_graphql_api_id"] = f"gid://shopify/Order/{order_id}"
    order["created_at"] = created_at.isoformat()
    order["test"] = test
    order["note_attributes"] = [{"name": "_reclift_vid", "value": visitor_id}] if visitor_id else []
    if customer_id is None:
        order["customer"] = None
    else:
        order["customer"]["id"] = customer_id
    order["line_items"] = []
    for index, spec in enumerate(lines):
        line = copy.deepcopy(template_line)
        line["id"] = order_id * 100 + index
        line["product_id"] = spec["product_id"]
        line["quantity"] = spec.get("quantity", 1)
        price = str(spec["price"])
        line["price"] = price
        line["price_set"] = {
            "shop_money": {"amount": price, "currency_code": "USD"},
            "presentment_money": {"amount": price, "currency_code": "USD"},
        }
        discount = str(spec.get("discount", "0.00"))
        line["discount_allocations"] = [
            {
                "amount": discount,
                "amount_set": {
                    "shop_money": {"amount": discount, "currency_code": "USD"},
                    "presentment_money": {"amount": discount, "currency_code": "USD"},
                },
                "discount_application_index": 0,
            }
        ]
        line["properties"] = [{"name": "_rec_id", "value": spec["rec_id"]}] if spec.get("rec_id") else []
        order["line_items"].append(line)
    return order


def webhook_request(
    shop: str,
    body: bytes,
    *,
    topic: str = "orders/create",
    webhook_id: str | None = None,
    secret: str = DEV_API_SECRET,
    triggered_at: datetime | None = None,
) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of a signed delivery (triggered now, or at `triggered_at`)."""
    headers = webhook_headers(
        topic,
        body,
        secret=secret,
        now=triggered_at or datetime.now(UTC),
        shop=shop,
        webhook_id=webhook_id or str(uuid.uuid4()),
    )
    return headers, body


def webhook_event(shop: str, body: bytes, **kwargs: Any) -> dict[str, Any]:
    """The API Gateway event of a signed delivery."""
    topic = kwargs.get("topic", "orders/create")
    headers, body = webhook_request(shop, body, **kwargs)
    return http_event(
        "POST", f"/webhooks/{topic}", "/webhooks/{topic+}", headers, body, datetime.now(UTC), {"topic": topic}
    )


def proxy_query(
    shop: str,
    customer_id: str = "",
    *,
    secret: str = DEV_API_SECRET,
    at: float | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """A query string as Shopify's app proxy signs it."""
    params = {
        "shop": shop,
        "logged_in_customer_id": customer_id,
        "path_prefix": "/apps/reclift",
        "timestamp": str(int(time.time() if at is None else at)),
        **(extra or {}),
    }
    return signed_app_proxy_query(params, secret)


def proxy_event(method: str, path: str, query: str, body: bytes = b"") -> dict[str, Any]:
    headers = [("content-type", "application/json")] if body else []
    return http_event(method, f"{path}?{query}", path, headers, body, datetime.now(UTC))


def session_token(shop: str, *, secret: str = DEV_API_SECRET, api_key: str = DEV_API_KEY, ttl: int = 60) -> str:
    return mint_session_token(shop, secret, api_key=api_key, now=time.time(), ttl_seconds=ttl)


def admin_event(
    method: str, path: str, shop: str | None, body: Any = None, *, token: str | None = None
) -> dict[str, Any]:
    headers: list[tuple[str, str]] = []
    if token or shop:
        headers.append(("authorization", f"Bearer {token or session_token(shop or '')}"))
    raw = b""
    if body is not None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.append(("content-type", "application/json"))
    route = path.split("?", 1)[0]
    return http_event(method, path, route, headers, raw, datetime.now(UTC))


def fresh_sample(name: str) -> dict[str, Any]:
    """The events/ sample `name` as `make events` makes it now: signed for this moment, as Shopify would send it."""
    event: dict[str, Any] = build_all(datetime.now(UTC))[name]
    return event
