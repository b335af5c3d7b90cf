"""Co-purchase similarity and profiles through the handlers against the emulator: signed orders → the similarity job
→ recommendations for a product, a cart and a visitor's home page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reclift.data.serving import serving_reader
from reclift.logic.similarity import compute_shop
from reclift_local.pollers import sqs_record
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, forget_execution_environment, process_queue, queued
from tests.support.calls import ApiCallCounter
from tests.support.shopify import admin_event, new_shop, order_payload, proxy_event, proxy_query, webhook_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
REGION = "us-east-1"
A, B, C, D, E = "1001", "1002", "1003", "1004", "1005"
# A is bought with B ten times, with C four times, with D twice, with E once (below the minimum support of 2), and
# once alone by the visitor `buyer`: n(A) = 18, so Jaccard(A, B) = 10/18 > (A, C) = 4/18 > (A, D) = 2/18.
BASKETS = [[A, B]] * 10 + [[A, C]] * 4 + [[A, D]] * 2 + [[A, E]]
BUYER = "buyer-1"


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def job_event(body: dict[str, Any] | str, message_id: str = "m-1") -> dict[str, Any]:
    message = {
        "MessageId": message_id,
        "ReceiptHandle": "r",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {},
    }
    return {"Records": [sqs_record(message, "arn:aws:sqs:us-east-1:1:q", REGION)]}


def drain_webhooks(aws: EmulatedAws) -> None:
    sqs, queue = aws.client("sqs"), aws.resource("WebhookQueue")
    assert process_queue(aws, sqs, queue) == {"batchItemFailures": []}


def recommended(aws: EmulatedAws, shop: str, **params: str) -> list[str]:
    query = proxy_query(shop, extra={"limit": "10", **params})
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))
    assert response["statusCode"] == 200, response
    return [p["product_id"] for p in body_of(response)["products"]]


def post_events(aws: EmulatedAws, shop: str, events: list[dict[str, Any]], customer: str = "") -> None:
    body = json.dumps({"events": events}).encode()
    response = aws.invoke(
        "StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop, customer), body)
    )
    assert response["statusCode"] == 200, response


@pytest.fixture(scope="module")
def shop_with_baskets(aws: EmulatedAws) -> str:
    """A shop whose signed orders hold BASKETS, and whose similarity job has run. No exploration slots, so every
    answer is in the policy's order (before any learning run: similarity order)."""
    shop = new_shop()
    settings = admin_event("PUT", "/admin/settings", shop, {"explore_share": 0.0})
    assert aws.invoke("AdminFunction", settings)["statusCode"] == 200
    orders = [(basket, None) for basket in BASKETS] + [([A], BUYER)]
    for index, (basket, visitor) in enumerate(orders):
        order = order_payload(
            order_id=50_000 + index,
            created_at=datetime.now(UTC),
            visitor_id=visitor,
            lines=[{"product_id": int(product), "price": "10.00"} for product in basket],
        )
        assert aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))["statusCode"] == 200
    drain_webhooks(aws)
    result = aws.invoke("SimilarityFunction", job_event({"shop": shop, "now": datetime.now(UTC).isoformat()}))
    assert result == {"batchItemFailures": []}
    return shop


def test_given_co_purchases_when_the_job_ran_then_a_product_page_lists_them_in_jaccard_order(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    assert recommended(aws, shop_with_baskets, placement="product", product_id=A) == [B, C, D]
    assert recommended(aws, shop_with_baskets, placement="product", product_id=B) == [A]
    assert recommended(aws, shop_with_baskets, placement="product", product_id=E) == []  # support 1: none


def test_given_a_cart_then_its_products_neighbours_are_combined_without_the_cart_itself(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    assert recommended(aws, shop_with_baskets, placement="cart", cart_product_ids=f"{B},{C}") == [A]
    assert recommended(aws, shop_with_baskets, placement="cart", cart_product_ids=f"{A},{B}") == [C, D]


def test_given_a_visitors_history_then_home_follows_it_and_never_shows_what_they_bought(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    shop = shop_with_baskets
    # The buyer bought A before the job ran: their profile has no neighbours yet, and there are no best sellers.
    assert recommended(aws, shop, placement="home", visitor_id=BUYER) == []

    post_events(aws, shop, [{"type": "view", "visitor_id": BUYER, "product_id": C}])

    # Seeds C (viewed) and A (bought): their neighbours, without the seeds and without A, which they bought.
    assert recommended(aws, shop, placement="home", visitor_id=BUYER) == [B, D]
    assert recommended(aws, shop, placement="product", product_id=C, visitor_id=BUYER) == []


def test_given_a_visitor_who_logs_in_then_their_history_shapes_the_customers_home(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    shop = shop_with_baskets
    post_events(aws, shop, [{"type": "view", "visitor_id": "anon-7", "product_id": A}])
    # Later, logged in on the same device (the app proxy signs the customer id), a product with no neighbours …
    post_events(aws, shop, [{"type": "view", "visitor_id": "anon-7", "product_id": E}], customer="4242")

    # … and then on another device, known only as the customer: the anonymous view of A was merged in.
    query = proxy_query(shop, "4242", extra={"placement": "home", "limit": "10", "visitor_id": "phone-1"})
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))
    assert [p["product_id"] for p in body_of(response)["products"]] == [B, C, D]


def test_given_a_shop_when_its_similarity_is_computed_directly_then_it_reads_its_window_and_writes_each_product(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    """`compute_shop` is what a backfill calls once a new shop's orders are stored."""
    forget_execution_environment()  # bound to this emulator for the call, then forgotten for whatever runs next
    try:
        with function_env(aws.environment("SimilarityFunction")):
            summary = compute_shop(shop_with_baskets)
            old = compute_shop(shop_with_baskets, datetime(2020, 1, 1, tzinfo=UTC))
    finally:
        forget_execution_environment()

    assert summary["baskets"] == len(BASKETS) + 1
    assert (summary["products"], summary["products_with_neighbours"]) == (5, 4)  # E is below the minimum support
    assert (old["baskets"], old["products_with_neighbours"]) == (0, 0)  # no order in that window
    assert recommended(aws, shop_with_baskets, placement="product", product_id=A) == [B, C, D]


def test_given_similarity_candidates_then_a_request_takes_two_round_trips_the_second_for_the_candidates(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    """Two round trips from a cold execution environment; once its caches hold the neighbours, the model and the
    listings, one."""
    recommended(aws, shop_with_baskets, placement="product", product_id=A)  # warm: the secret, once
    serving_reader().caches.clear()

    counter = ApiCallCounter()
    with counter.counting() as cold:
        recommended(aws, shop_with_baskets, placement="product", product_id=A, visitor_id="v-9")
    with counter.counting() as warm:
        recommended(aws, shop_with_baskets, placement="product", product_id=A, visitor_id="v-9")

    assert [(call.service, call.operation) for call in cold.calls.elements()] == [
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "BatchGetItem"),
    ]
    assert [(call.service, call.operation) for call in warm.calls.elements()] == [("dynamodb", "BatchGetItem")]


def test_given_the_schedule_then_one_job_per_shop_is_queued_and_a_bad_message_fails_alone(
    aws: EmulatedAws, shop_with_baskets: str
) -> None:
    scheduled = json.loads((EVENTS / "similarity-scheduled.json").read_text())
    sqs, queue = aws.client("sqs"), aws.resource("SimilarityQueue")

    fanned = aws.invoke("SimilarityFunction", scheduled)
    bodies = [json.loads(message["Body"]) for message in queued(sqs, queue)]

    assert fanned["shops"] == len(bodies) >= 1
    assert shop_with_baskets in {body["shop"] for body in bodies}
    assert {body["now"] for body in bodies} == {"2026-11-01T12:00:00Z"}
    good = job_event({"shop": new_shop(), "now": "2026-11-01T03:00:00+00:00"}, "good")
    bad = job_event('{"shop": "nope", "now": "yesterday"}', "bad")
    both = {"Records": good["Records"] + bad["Records"]}
    assert aws.invoke("SimilarityFunction", both) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert aws.invoke("SimilarityFunction", json.loads((EVENTS / "similarity-sqs-shop.json").read_text())) == {
        "batchItemFailures": []
    }
