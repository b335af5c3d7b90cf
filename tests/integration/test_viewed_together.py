"""Viewed together through the handlers against the emulator: signed product views on the storefront → the
similarity job → a product page lists the products viewed with it (`source: "viewed_together"`) beside those bought
with it, in the same two round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reclift.data.serving import serving_reader
from tests.integration.test_similarity import body_of, drain_webhooks, job_event, post_events
from tests.support.aws import EmulatedAws
from tests.support.calls import ApiCallCounter
from tests.support.shopify import admin_event, new_shop, order_payload, proxy_event, proxy_query, webhook_event

A, B, C, D = "2001", "2002", "2003", "2004"


def shop_with_orders(aws: EmulatedAws) -> str:
    """A and B bought together three times; no exploration slot, so answers are in the policy's order."""
    shop = new_shop()
    assert (
        aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"explore_share": 0.0}))["statusCode"]
        == 200
    )
    for index in range(3):
        order = order_payload(
            order_id=60_000 + index,
            created_at=datetime.now(UTC),
            lines=[{"product_id": int(product), "price": "10.00"} for product in (A, B)],
        )
        assert aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))["statusCode"] == 200
    drain_webhooks(aws)
    return shop


def run_similarity(aws: EmulatedAws, shop: str) -> None:
    result = aws.invoke("SimilarityFunction", job_event({"shop": shop, "now": datetime.now(UTC).isoformat()}))
    assert result == {"batchItemFailures": []}


def served(aws: EmulatedAws, shop: str, product: str, visitor: str = "shopper") -> list[dict[str, Any]]:
    query = proxy_query(
        shop, extra={"limit": "10", "placement": "product", "product_id": product, "visitor_id": visitor}
    )
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))
    assert response["statusCode"] == 200, response
    return list(body_of(response)["products"])


def test_given_visitors_viewing_two_products_together_when_the_job_ran_then_a_product_page_lists_them_viewed_together(
    aws: EmulatedAws,
) -> None:
    shop = shop_with_orders(aws)
    for visitor in range(4):  # four visitors view A and C on the same day, one of them D as well
        views = [A, C, D] if visitor == 0 else [C, A]
        post_events(aws, shop, [{"type": "view", "visitor_id": f"viewer-{visitor}", "product_id": p} for p in views])
    run_similarity(aws, shop)
    serving_reader().caches.clear()

    counter = ApiCallCounter()
    with counter.counting() as cold:
        products = served(aws, shop, A)

    assert [(p["product_id"], p["source"]) for p in products] == [(B, "similar"), (C, "viewed_together")]
    assert [p["product_id"] for p in served(aws, shop, C)] == [A]
    assert [p["source"] for p in served(aws, shop, C)] == ["viewed_together"]
    assert served(aws, shop, D) == []  # viewed with A and C in one session only: below the support of 2
    # The co-view neighbours came with the co-purchase ones: still two round trips from a cold environment.
    assert [(call.service, call.operation) for call in cold.calls.elements()] == [
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "BatchGetItem"),
    ]


def test_given_a_shop_without_views_when_the_job_ran_then_its_product_page_has_only_co_purchase_candidates(
    aws: EmulatedAws,
) -> None:
    shop = shop_with_orders(aws)
    run_similarity(aws, shop)

    assert [(p["product_id"], p["source"]) for p in served(aws, shop, A)] == [(B, "similar")]
    assert served(aws, shop, C) == []
