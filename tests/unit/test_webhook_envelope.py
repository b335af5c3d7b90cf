"""Webhook envelopes: a verified delivery's headers and exact body, as queued (compressed when large)."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from reclift.data.store import Store
from reclift.logic.deliveries import UnprocessableDelivery, process_delivery
from reclift.webhooks import COMPRESS_ABOVE_BYTES, MAX_WEBHOOK_BYTES, WebhookEnvelope, envelope_for

SHOPIFY_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SQS_MESSAGE_LIMIT = 1024 * 1024  # SQS's maximum message size since 2025; the envelope must fit with room to spare

HEADERS = {
    "X-Shopify-Topic": "orders/create",
    "X-Shopify-Shop-Domain": "demo-shop.myshopify.com",
    "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    "X-Shopify-Triggered-At": "2025-04-02T16:30:54.123456Z",
    "X-Shopify-API-Version": "2025-04",
    "X-Shopify-Hmac-Sha256": "not-kept",
}


def raw_fixture(name: str) -> bytes:
    return (SHOPIFY_FIXTURES / f"{name}.json").read_bytes()


def unwrapped(envelope: WebhookEnvelope) -> bytes:
    """The exact bytes the envelope carries."""
    if envelope.body_encoding == "gzip+base64":
        return gzip.decompress(base64.b64decode(envelope.body, validate=True))
    return envelope.body.encode("utf-8")


def queued(envelope: WebhookEnvelope) -> WebhookEnvelope:
    """The envelope after a trip through the queue as JSON."""
    return WebhookEnvelope.model_validate_json(envelope.model_dump_json())


# --- Headers ------------------------------------------------------------------------------------------------------


def test_given_a_real_delivery_when_enveloped_then_headers_and_the_exact_body_are_kept() -> None:
    raw = raw_fixture("orders_create_sample")

    envelope = envelope_for(HEADERS, raw, None)

    assert envelope.topic == "orders/create"
    assert envelope.shop == "demo-shop.myshopify.com"
    assert envelope.webhook_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert envelope.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert envelope.triggered_at == "2025-04-02T16:30:54.123456Z"
    assert envelope.api_version == "2025-04"
    assert envelope.body_encoding == "utf-8"
    assert envelope.body.encode("utf-8") == raw
    assert envelope.payload() == json.loads(raw)
    assert "not-kept" not in envelope.model_dump_json()


@pytest.mark.parametrize("case", [str.lower, str.upper, lambda name: name.replace("Shopify", "SHOPIFY")])
def test_given_headers_in_any_case_when_enveloped_then_they_are_read(case: Any) -> None:
    headers = {case(name): value for name, value in HEADERS.items()}

    envelope = envelope_for(headers, b"{}", None)

    assert (envelope.topic, envelope.shop, envelope.webhook_id, envelope.api_version) == (
        "orders/create",
        "demo-shop.myshopify.com",
        HEADERS["X-Shopify-Webhook-Id"],
        "2025-04",
    )


def test_given_no_topic_header_when_enveloped_then_the_path_topic_is_used_lower_cased() -> None:
    headers = {name: value for name, value in HEADERS.items() if name != "X-Shopify-Topic"}
    assert envelope_for(headers, b"{}", " Orders/Paid ").topic == "orders/paid"


def test_given_a_topic_header_and_a_path_topic_when_enveloped_then_the_header_wins() -> None:
    assert envelope_for(HEADERS, b"{}", "orders/paid").topic == "orders/create"


def test_given_mixed_case_topic_and_shop_when_enveloped_then_they_are_lower_cased() -> None:
    headers = HEADERS | {"X-Shopify-Topic": " ORDERS/Create ", "X-Shopify-Shop-Domain": " Demo-Shop.MyShopify.com "}
    envelope = envelope_for(headers, b"{}", None)
    assert (envelope.topic, envelope.shop) == ("orders/create", "demo-shop.myshopify.com")


def test_given_no_headers_when_enveloped_then_the_optional_ones_are_none_and_the_rest_empty() -> None:
    envelope = envelope_for({}, b"{}", None)
    assert (envelope.topic, envelope.shop, envelope.event_id, envelope.triggered_at, envelope.api_version) == (
        "",
        "",
        None,
        None,
        None,
    )


@pytest.mark.parametrize("webhook_id", [None, ""])
def test_given_no_webhook_id_when_enveloped_then_the_id_is_the_body_hash(webhook_id: str | None) -> None:
    raw = raw_fixture("orders_paid_sample")
    headers = {name: value for name, value in HEADERS.items() if name != "X-Shopify-Webhook-Id"}
    if webhook_id is not None:
        headers["x-shopify-webhook-id"] = webhook_id

    envelope = envelope_for(headers, raw, None)

    assert envelope.webhook_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    # The same delivery retried gets the same id; another body another.
    assert envelope_for(headers, raw, None).webhook_id == envelope.webhook_id
    assert envelope_for(headers, raw + b" ", None).webhook_id != envelope.webhook_id


# --- Bodies -------------------------------------------------------------------------------------------------------


def test_given_a_body_exactly_at_the_threshold_when_enveloped_then_it_stays_plain_text() -> None:
    raw = json.dumps({"note": "x" * (COMPRESS_ABOVE_BYTES - 12)}).encode()
    raw += b" " * (COMPRESS_ABOVE_BYTES - len(raw))
    assert len(raw) == COMPRESS_ABOVE_BYTES

    envelope = envelope_for(HEADERS, raw, None)

    assert envelope.body_encoding == "utf-8"
    assert unwrapped(envelope) == raw


def test_given_a_body_one_byte_above_the_threshold_when_enveloped_then_it_is_gzipped_and_round_trips() -> None:
    raw = json.dumps({"note": "x" * (COMPRESS_ABOVE_BYTES - 12)}).encode()
    raw += b" " * (COMPRESS_ABOVE_BYTES + 1 - len(raw))

    envelope = queued(envelope_for(HEADERS, raw, None))

    assert envelope.body_encoding == "gzip+base64"
    assert unwrapped(envelope) == raw
    assert envelope.payload() == json.loads(raw)


def _large_order(target_bytes: int) -> bytes:
    """The real orders/create sample with its lines repeated (distinct ids, non-ASCII engravings) to `target_bytes`."""
    payload: dict[str, Any] = json.loads(raw_fixture("orders_create_sample"))
    template = payload["line_items"][0]
    payload["line_items"] = []
    size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    lines: list[dict[str, Any]] = []
    while size < target_bytes:
        line = copy.deepcopy(template)
        line["id"] = 10**9 + len(lines)
        line["properties"] = [{"name": "Engraving", "value": f"Für Ünïcode #{len(lines)} ✓"}]
        lines.append(line)
        size += len(json.dumps(line, ensure_ascii=False).encode("utf-8")) + 2
    payload["line_items"] = lines
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def test_given_a_900_kb_order_when_enveloped_then_it_fits_a_queue_message_and_the_payload_round_trips() -> None:
    raw = _large_order(900 * 1024)
    assert 900 * 1024 <= len(raw) <= MAX_WEBHOOK_BYTES

    envelope = envelope_for(HEADERS, raw, None)
    message = envelope.model_dump_json()
    received = WebhookEnvelope.model_validate_json(message)

    assert envelope.body_encoding == "gzip+base64"
    assert len(message.encode()) < SQS_MESSAGE_LIMIT // 4
    assert unwrapped(received) == raw
    assert received.payload() == json.loads(raw)


def test_given_a_non_utf8_small_body_when_enveloped_then_it_is_gzipped_and_kept_byte_for_byte() -> None:
    raw = '{"note": "café"}'.encode("latin-1")

    envelope = queued(envelope_for(HEADERS, raw, None))

    assert envelope.body_encoding == "gzip+base64"
    assert unwrapped(envelope) == raw
    with pytest.raises(ValueError, match="can't decode"):  # not UTF-8 JSON: the worker gets a ValueError, not garbage
        envelope.payload()


def test_given_a_utf16_json_body_when_enveloped_then_the_payload_still_decodes() -> None:
    raw = '{"note": "café"}'.encode("utf-16")
    envelope = envelope_for(HEADERS, raw, None)
    assert envelope.body_encoding == "gzip+base64"
    assert envelope.payload() == {"note": "café"}


def test_given_a_body_that_is_not_json_when_its_payload_is_read_then_it_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        envelope_for(HEADERS, b"topic=orders/create", None).payload()


def test_given_json_nested_100000_deep_when_delivered_then_it_is_unprocessable_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000  # authentic bytes a retry can never parse
    envelope = envelope_for(HEADERS, body, None)
    store = cast(Store, object())  # refused before the store is touched

    with pytest.raises(UnprocessableDelivery, match="nested too deep"):
        process_delivery(envelope, store)


def test_given_an_envelope_with_an_unknown_field_when_read_from_the_queue_then_it_is_refused() -> None:
    message = json.loads(envelope_for(HEADERS, b"{}", None).model_dump_json()) | {"hmac": "x"}
    with pytest.raises(ValidationError):
        WebhookEnvelope.model_validate(message)


@given(st.binary(max_size=2048))
def test_given_any_small_body_when_enveloped_and_queued_then_the_exact_bytes_come_back(raw: bytes) -> None:
    envelope = queued(envelope_for({}, raw, "orders/create"))
    assert unwrapped(envelope) == raw
    assert envelope.webhook_id == "sha256:" + hashlib.sha256(raw).hexdigest()


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(st.characters(exclude_categories=["Cs"])),
        lambda inner: st.lists(inner, max_size=4),
    )
)
def test_given_any_json_body_when_enveloped_then_payload_returns_it(value: Any) -> None:
    raw = json.dumps({"value": value}, ensure_ascii=False).encode("utf-8")
    assert queued(envelope_for(HEADERS, raw, None)).payload() == {"value": value}
