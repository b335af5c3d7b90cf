"""Shopify's privacy topics, parsed: each names the shop it is about, and nothing else passes for it; a shop's
erasure, as its queue carries it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reclift.logic.shop_redaction import ShopRedactionJob, ShopRedactionJobError, parse_shop_redaction_job
from reclift.orders import OrderPayloadError
from reclift.privacy import CustomerRequest, ShopRedaction, parse_customer_request, parse_shop_redaction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
EVENTS = Path(__file__).resolve().parents[2] / "events"
SHOP = "demo-shop.myshopify.com"


def sample(name: str) -> dict[str, Any]:
    """Shopify's published sample, as sent to SHOP (the samples name the shop as `{shop}.myshopify.com`)."""
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    payload["shop_domain"] = SHOP
    return payload


def test_given_shopifys_shop_redact_sample_when_parsed_then_it_names_the_shop() -> None:
    assert parse_shop_redaction(sample("shop_redact_sample.json")) == ShopRedaction(SHOP, "954889")


def test_given_shopifys_customer_samples_when_parsed_then_they_name_the_shop_and_the_customer() -> None:
    redact = parse_customer_request(sample("customers_redact_sample.json"), "orders_to_redact")
    request = parse_customer_request(sample("customers_data_request_sample.json"), "orders_requested")

    assert redact == CustomerRequest("191167", ("299938", "280263", "220458"), None, SHOP, "954889")
    assert (request.request_id, request.shop_domain) == ("9999", SHOP)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"shop_id": 954889},
        {"shop_domain": "{shop}.myshopify.com"},  # the published sample as it stands names no real shop
        {"shop_domain": "evil.example.com"},
        {"shop_domain": SHOP, "shop_id": "not-an-id"},
        json.loads((FIXTURES / "products_update_sample.json").read_text()),  # a body signed for another topic
        [SHOP],
    ],
)
def test_given_a_body_that_names_no_shop_when_parsed_as_shop_redact_then_it_is_refused(payload: Any) -> None:
    with pytest.raises(OrderPayloadError):
        parse_shop_redaction(payload)


def test_given_a_customer_request_without_its_shop_when_parsed_then_it_is_refused() -> None:
    payload = sample("customers_redact_sample.json")
    del payload["shop_domain"]
    with pytest.raises(OrderPayloadError, match="shop_domain"):
        parse_customer_request(payload, "orders_to_redact")


# ---------------------------------------------------------------- a shop's erasure, as queued
def test_given_the_erasure_the_worker_queues_when_parsed_then_it_starts_at_the_first_phase() -> None:
    assert parse_shop_redaction_job(json.dumps({"shop": SHOP})) == ShopRedactionJob(SHOP, None)


def test_given_a_continuation_when_parsed_then_it_resumes_at_its_phase() -> None:
    body = json.dumps({"shop": SHOP, "resume_at": "counters"})
    assert parse_shop_redaction_job(body) == ShopRedactionJob(SHOP, "counters")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        (json.dumps(["shop"]), "names no shop"),
        (json.dumps({"shop": 7}), "names no shop"),
        (json.dumps({"shop": "https://evil.example"}), "shop:"),
        (json.dumps({"shop": SHOP, "resume_at": "everything"}), "no phase 'everything'"),
    ],
)
def test_given_a_message_that_is_no_erasure_when_parsed_then_it_is_refused_for_the_dlq(body: str, problem: str) -> None:
    with pytest.raises(ShopRedactionJobError, match=problem):
        parse_shop_redaction_job(body)


def test_given_the_sample_erasure_event_when_its_record_is_parsed_then_it_names_the_demo_shop() -> None:
    """events/shop-redact-sqs-shop.json (for `sam local invoke ShopRedactFunction -e …`) is a message the function
    takes."""
    event = json.loads((EVENTS / "shop-redact-sqs-shop.json").read_text())
    [record] = event["Records"]
    assert record["eventSourceARN"].endswith("ShopRedactQueue")
    assert parse_shop_redaction_job(record["body"]) == ShopRedactionJob("reclift-demo.myshopify.com")
