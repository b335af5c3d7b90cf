"""Each handler with its events/ sample and with requests signed as Shopify signs them, against moto server.

The handlers run in this process, with the environment the template gives them, so the assertions can look at
what they wrote (real boto3 calls to the emulator) and at what they answered.
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from reclift.ranking import Arm
from reclift.signatures import encode_hs256_jwt
from reclift_local.pollers import sqs_record
from reclift_local.sign import DEV_API_SECRET
from tests.support.aws import EmulatedAws, process_queue, process_stream, queued
from tests.support.calls import ApiCall, ApiCallCounter
from tests.support.recs import shown
from tests.support.shop_items import mentions
from tests.support.shopify import (
    admin_event,
    fresh_sample,
    new_shop,
    order_payload,
    proxy_event,
    proxy_query,
    session_token,
    webhook_event,
)
from tests.support.truth import SHOP_COUNTER, actual_counters

EVENTS = Path(__file__).resolve().parents[2] / "events"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
REGION = "us-east-1"


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def order_body(shop_visitor: str, order_id: int, created_at: datetime, **kwargs: Any) -> bytes:
    lines = kwargs.pop(
        "lines", [{"product_id": 111, "price": "20.00", "quantity": 2, "discount": "5.00", "rec_id": "rec-1"}]
    )
    return json.dumps(
        order_payload(order_id=order_id, created_at=created_at, lines=lines, visitor_id=shop_visitor, **kwargs)
    ).encode()


def track(
    aws: EmulatedAws, shop: str, events: list[dict[str, Any]], customer_id: str = "", *, count: bool = True
) -> dict[str, Any]:
    """Post the widget's events; then, unless `count` is False, let the counting function read what they wrote to
    the events table's stream (as Lambda's event source mapping would within seconds)."""
    body = json.dumps({"events": events}).encode()
    response: dict[str, Any] = aws.invoke(
        "StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop, customer_id), body)
    )
    if count:
        process_stream(aws, "CountingFunction")
    return response


def roi(aws: EmulatedAws, shop: str, day: datetime) -> dict[str, Any]:
    query = f"?from={day.date().isoformat()}&to={day.date().isoformat()}"
    response = aws.invoke("AdminFunction", admin_event("GET", f"/admin/roi{query}", shop))
    assert response["statusCode"] == 200, response
    report: dict[str, Any] = body_of(response)
    return report


# ---------------------------------------------------------------- WebhookFunction
def with_environment(aws: EmulatedAws, monkeypatch: pytest.MonkeyPatch, function: str, **variables: str) -> None:
    """Run `function` with these variables on top of what the template gives it (as a changed parameter would)."""
    changed = aws.environment(function) | variables
    original = aws.environment
    monkeypatch.setattr(
        aws, "environment", lambda logical_id: changed if logical_id == function else original(logical_id)
    )


def test_given_the_signed_sample_webhook_when_received_with_the_age_check_off_then_the_exact_delivery_is_queued(
    aws: EmulatedAws, sqs: Any, webhook_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_environment(aws, monkeypatch, "WebhookFunction", WEBHOOK_MAX_AGE_SECONDS="0")
    event = sample("webhook-orders-create.json")

    response = aws.invoke("WebhookFunction", event)

    assert response["statusCode"] == 200, response
    [message] = queued(sqs, webhook_queue)
    envelope = json.loads(message["Body"])
    assert envelope["topic"] == "orders/create"
    assert envelope["shop"] == "reclift-demo.myshopify.com"
    assert envelope["webhook_id"] == event["headers"]["x-shopify-webhook-id"]
    assert envelope["api_version"] == "2025-10"
    assert envelope["body"] == event["body"]  # the exact bytes Shopify signed
    assert message["MessageAttributes"]["topic"]["StringValue"] == "orders/create"


def test_given_a_captured_delivery_replayed_after_the_window_when_received_then_400_and_nothing_is_queued(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    event = sample("webhook-orders-create.json")  # authentic, triggered at the samples' fixed moment

    response = aws.invoke("WebhookFunction", event)

    assert response["statusCode"] == 400
    assert body_of(response)["field"] == "x-shopify-triggered-at"
    assert "more than 172800 seconds ago" in body_of(response)["error"]
    assert queued(sqs, webhook_queue) == []


AN_HOUR_AHEAD = "an hour ahead"  # stands for the time an hour after the test runs (an id the same in every process)


@pytest.mark.parametrize(
    ("triggered_at", "problem"),
    [
        (None, "no trigger time"),
        ("yesterday", "not an ISO 8601 time"),
        ("2030-01-01T00:00:00", "no time zone"),
        (AN_HOUR_AHEAD, "in the future"),
    ],
)
def test_given_a_signed_delivery_without_a_usable_trigger_time_when_received_then_400_names_it(
    aws: EmulatedAws, sqs: Any, webhook_queue: str, triggered_at: str | None, problem: str
) -> None:
    event = webhook_event(new_shop(), b"{}")
    event["headers"].pop("x-shopify-triggered-at")
    if triggered_at == AN_HOUR_AHEAD:
        triggered_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    if triggered_at is not None:
        event["headers"]["x-shopify-triggered-at"] = triggered_at

    response = aws.invoke("WebhookFunction", event)

    assert (response["statusCode"], body_of(response)["field"]) == (400, "x-shopify-triggered-at")
    assert problem in body_of(response)["error"]
    assert queued(sqs, webhook_queue) == []


def test_given_a_forged_signature_when_received_then_401_and_nothing_is_queued(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    response = aws.invoke("WebhookFunction", sample("webhook-orders-create-bad-signature.json"))

    assert response["statusCode"] == 401
    assert body_of(response) == {"error": "invalid webhook signature"}
    assert queued(sqs, webhook_queue) == []


def test_given_upper_case_headers_and_a_base64_body_when_received_then_the_signature_still_verifies(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    event = webhook_event(new_shop(), '{"id": 1, "note": "caf\u00e9"}'.encode())
    event["headers"] = {key.upper(): value for key, value in event["headers"].items()}
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True

    response = aws.invoke("WebhookFunction", event)

    assert response["statusCode"] == 200, response
    assert len(queued(sqs, webhook_queue)) == 1


def test_given_one_byte_changed_after_signing_when_received_then_401(aws: EmulatedAws, webhook_queue: str) -> None:
    event = webhook_event(new_shop(), b'{"id": 12345}')
    event["body"] = '{"id": 12346}'

    assert aws.invoke("WebhookFunction", event)["statusCode"] == 401


def test_given_a_rotation_when_signed_with_the_previous_secret_then_accepted_only_while_it_is_configured(
    aws: EmulatedAws, webhook_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = webhook_event(new_shop(), b'{"id": 77}', secret="the-secret-before-rotation")
    assert aws.invoke("WebhookFunction", event)["statusCode"] == 401

    monkeypatch.setenv("SHOPIFY_API_SECRET_PREVIOUS", "the-secret-before-rotation")
    assert aws.invoke("WebhookFunction", event)["statusCode"] == 200


def test_given_a_signed_body_over_one_mebibyte_when_received_then_413_and_nothing_is_queued(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    body = json.dumps({"id": 1, "note": "x" * (1024 * 1024)}).encode()

    response = aws.invoke("WebhookFunction", webhook_event(new_shop(), body))

    assert response["statusCode"] == 413
    assert "1048576" in body_of(response)["error"]
    assert queued(sqs, webhook_queue) == []


def test_given_an_authentic_webhook_with_a_body_that_is_not_json_when_received_then_it_is_still_queued(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    response = aws.invoke("WebhookFunction", webhook_event(new_shop(), b"not json at all"))

    assert response["statusCode"] == 200
    assert len(queued(sqs, webhook_queue)) == 1


# ---------------------------------------------------------------- AttributionFunction
def test_given_the_sample_sqs_batch_when_processed_then_no_record_fails(aws: EmulatedAws) -> None:
    result = aws.invoke("AttributionFunction", sample("attribution-sqs-orders-create.json"))

    assert result == {"batchItemFailures": []}


def test_given_a_batch_with_a_poison_message_when_processed_then_only_that_record_is_reported_failed(
    aws: EmulatedAws,
) -> None:
    event = sample("attribution-sqs-batch-with-poison.json")
    poison_id = event["Records"][1]["messageId"]

    result = aws.invoke("AttributionFunction", event)

    assert result == {"batchItemFailures": [{"itemIdentifier": poison_id}]}


def test_given_a_batch_of_only_poison_when_processed_then_the_whole_batch_fails(aws: EmulatedAws) -> None:
    event = sample("attribution-sqs-batch-with-poison.json")
    event["Records"] = event["Records"][1:]

    with pytest.raises(BatchProcessingError):
        aws.invoke("AttributionFunction", event)


def test_given_tracked_events_and_a_signed_order_when_processed_then_the_roi_shows_the_attributed_line(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    response = shown(shop, "v1", ["111", "222"])
    events: list[dict[str, Any]] = [
        {
            "type": "impression",
            "visitor_id": "v1",
            "placement": "product",
            "products": [{"product_id": "111", "position": 1}, {"product_id": "222", "position": 2}],
        }
        | response,
        {"type": "click", "visitor_id": "v1", "product_id": "111", "position": 1} | response,
    ]
    assert body_of(track(aws, shop, events)) == {"received": 2, "stored": 2, "ignored": 0}
    now = datetime.now(UTC)
    lines = [
        {"product_id": 111, "price": "20.00", "quantity": 2, "discount": "5.00", "rec_id": response["rec_id"]},
        {"product_id": 333, "price": "9.99", "quantity": 1},
    ]

    assert (
        aws.invoke("WebhookFunction", webhook_event(shop, order_body("v1", 1001, now, lines=lines)))["statusCode"]
        == 200
    )
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    report = roi(aws, shop, now)
    assert report["attributed_revenue"] == "35.00"  # 2 × 20.00 − 5.00
    assert report["click_through_revenue"] == "35.00"
    assert report["view_through_revenue"] == "0.00"
    assert report["attributed_orders"] == 1
    assert report["orders"] == 1
    assert report["by_product"] == [{"product_id": "111", "purchases": 1, "units": 2, "revenue": "35.00"}]
    assert report["currency"] == "USD"


def test_given_orders_of_one_shop_then_the_registry_is_written_by_the_first_and_again_only_for_a_new_currency(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop, now = new_shop(), datetime.now(UTC)
    counter = ApiCallCounter(names={aws.resource("ShopsTable"): "ShopsTable"})

    def registry_writes(order_id: int, currency: str) -> int:
        order = json.loads(order_body("v1", order_id, now)) | {"currency": currency}
        webhook = aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))
        assert webhook["statusCode"] == 200
        with counter.counting() as block:
            assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
        return block.calls[ApiCall("dynamodb", "UpdateItem", "ShopsTable")]

    assert [registry_writes(order_id, "USD") for order_id in (2001, 2002, 2003)] == [1, 0, 0]
    assert registry_writes(2004, "EUR") == 1  # news: the shop's currency changed
    assert registry_writes(2005, "EUR") == 0
    registered = aws.client("dynamodb").get_item(TableName=aws.resource("ShopsTable"), Key={"pk": {"S": shop}})
    assert registered["Item"]["currency"]["S"] == "EUR"
    assert "first_seen" in registered["Item"]


def test_given_the_same_delivery_three_times_and_the_order_under_a_new_webhook_id_then_it_counts_once(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    click = {"type": "click", "visitor_id": "v1", "product_id": "111", "position": 1} | shown(shop, "v1", ["111"])
    assert body_of(track(aws, shop, [click]))["stored"] == 1
    now = datetime.now(UTC)
    body = order_body("v1", 2002, now)
    delivery = webhook_event(shop, body, webhook_id="delivery-1")

    for _ in range(3):
        assert aws.invoke("WebhookFunction", delivery)["statusCode"] == 200
    assert aws.invoke("WebhookFunction", webhook_event(shop, body, webhook_id="delivery-2"))["statusCode"] == 200
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    # Shopify retries a delivery it thinks failed, after reclift has processed it.
    aws.invoke("WebhookFunction", delivery)
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    report = roi(aws, shop, now)
    assert report["attributed_revenue"] == "35.00"
    assert report["attributed_orders"] == 1
    assert report["orders"] == 1


def test_given_a_test_order_when_processed_then_it_is_counted_apart_and_not_attributed(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    click = {"type": "click", "visitor_id": "v1", "product_id": "111", "position": 1} | shown(shop, "v1", ["111"])
    assert body_of(track(aws, shop, [click]))["stored"] == 1
    now = datetime.now(UTC)
    aws.invoke("WebhookFunction", webhook_event(shop, order_body("v1", 3003, now, test=True)))
    process_queue(aws, sqs, webhook_queue)

    report = roi(aws, shop, now)
    assert report["attributed_revenue"] == "0.00"
    assert report["test_orders"] == 1
    assert report["orders"] == 0


def test_given_a_view_window_setting_when_the_impression_is_older_then_the_line_is_not_attributed(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop, now = new_shop(), datetime.now(UTC)
    put = aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"view_window_days": 1}))
    assert put["statusCode"] == 200, put
    track(
        aws,
        shop,
        [
            {
                "type": "impression",
                "visitor_id": "v9",
                "placement": "home",
                "products": [{"product_id": "111", "position": 1}],
            }
            | shown(shop, "v9", ["111"], placement="home")
        ],
    )
    # Placed two days after the impression: outside a one-day view window.
    lines = [{"product_id": 111, "price": "10.00"}]
    aws.invoke("WebhookFunction", webhook_event(shop, order_body("v9", 4004, now + timedelta(days=2), lines=lines)))
    process_queue(aws, sqs, webhook_queue)

    assert roi(aws, shop, now + timedelta(days=2))["attributed_revenue"] == "0.00"


# ---------------------------------------------------------------- StorefrontFunction
def test_given_the_signed_sample_events_when_posted_with_the_skew_check_off_then_stored(
    aws: EmulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_PROXY_MAX_SKEW_SECONDS", "0")
    with_skew_off = aws.environment("StorefrontFunction") | {"APP_PROXY_MAX_SKEW_SECONDS": "0"}
    monkeypatch.setattr(aws, "environment", lambda logical_id: with_skew_off)

    response = aws.invoke("StorefrontFunction", sample("storefront-post-events.json"))

    assert response["statusCode"] == 200, response
    # The sample's rec id was issued when the sample was made, more than a day ago: a replay that proves nothing.
    assert body_of(response) == {"received": 3, "stored": 0, "ignored": 2}


def test_given_the_sample_events_when_posted_with_the_default_skew_then_their_old_timestamp_is_refused(
    aws: EmulatedAws,
) -> None:
    assert aws.invoke("StorefrontFunction", sample("storefront-post-events.json"))["statusCode"] == 401


def test_given_a_bad_proxy_signature_when_events_are_posted_then_401(aws: EmulatedAws) -> None:
    response = aws.invoke("StorefrontFunction", sample("storefront-post-events-bad-signature.json"))

    assert response["statusCode"] == 401
    assert body_of(response) == {"error": "invalid app proxy signature"}


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (b"{not json", 400, "body", "not valid JSON"),
        (b"", 400, "body", "JSON body is required"),
        (b'{"events": [{"type": "purchase", "visitor_id": "v"}]}', 400, "events.0", "unknown event type 'purchase'"),
        (b'{"events": [{"type": "click", "visitor_id": "v"}]}', 400, "events.0.click.rec_id", "Field required"),
        (
            json.dumps({"events": [{"type": "view", "visitor_id": "v", "product_id": "1"}] * 51}).encode(),
            400,
            "events",
            "at most 50 events",
        ),
        (b'{"events": []}', 400, "events", "at least 1"),
        (b'{"events": [' + b" " * (256 * 1024) + b"]}", 413, "body", "at most 262144 are accepted"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "body", "nested too deep"),
    ],
)
def test_given_a_malformed_body_when_events_are_posted_then_a_4xx_names_the_problem(
    aws: EmulatedAws, body: bytes, status: int, field: str, message: str
) -> None:
    event = proxy_event("POST", "/apps/proxy/events", proxy_query(new_shop()), body)

    response = aws.invoke("StorefrontFunction", event)

    assert response["statusCode"] == status
    error = body_of(response)
    assert error["field"] == field
    assert message in error["error"]


def test_given_events_from_a_logged_in_customer_when_posted_then_the_customer_profile_is_updated(
    aws: EmulatedAws,
) -> None:
    shop = new_shop()
    events: list[dict[str, Any]] = [
        {"type": "view", "visitor_id": "v5", "product_id": "gid://shopify/Product/555"},
        {"type": "add_to_cart", "visitor_id": "v5", "product_id": "556", "position": 2}
        | shown(shop, "v5", ["557", "556"]),
    ]

    assert track(aws, shop, events, customer_id="42")["statusCode"] == 200

    profiles = aws.client("dynamodb")
    for key in (f"{shop}#v#v5", f"{shop}#c#42"):
        item = profiles.get_item(TableName=aws.resource("ProfilesTable"), Key={"pk": {"S": key}})["Item"]
        assert [v["S"] for v in item["viewed"]["L"]] == ["555"]
        assert [v["S"] for v in item["carted"]["L"]] == ["556"]


@pytest.mark.parametrize("customer_id", ["9001,", "9001,9002", "0", "-1", "42a", "1" * 21])
def test_given_a_signed_customer_id_that_is_not_numeric_when_events_are_posted_then_400_and_no_profile_key(
    aws: EmulatedAws, customer_id: str
) -> None:
    shop = new_shop()
    events: list[dict[str, Any]] = [{"type": "view", "visitor_id": "v6", "product_id": "555"}]

    response = track(aws, shop, events, customer_id=customer_id)

    assert response["statusCode"] == 400
    assert body_of(response)["field"] == "logged_in_customer_id"
    profiles = aws.client("dynamodb")
    for key in (f"{shop}#v#v6", f"{shop}#c#{customer_id}"):
        assert "Item" not in profiles.get_item(TableName=aws.resource("ProfilesTable"), Key={"pk": {"S": key}})


# ---------------------------------------------------------------- AdminFunction
def test_given_the_sample_roi_request_made_now_when_invoked_then_200_with_the_report_fields(aws: EmulatedAws) -> None:
    response = aws.invoke("AdminFunction", fresh_sample("admin-get-roi.json"))

    assert response["statusCode"] == 200, response
    report = body_of(response)
    assert report["shop"] == "reclift-demo.myshopify.com"
    for key in (
        "currency",
        "attributed_revenue",
        "attributed_orders",
        "click_through_revenue",
        "view_through_revenue",
        "by_product",
        "daily",
    ):
        assert key in report


def test_given_the_committed_roi_sample_when_invoked_later_then_its_one_minute_token_has_expired(
    aws: EmulatedAws,
) -> None:
    assert aws.invoke("AdminFunction", sample("admin-get-roi.json"))["statusCode"] == 401


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": None},  # no issuer
        {"iss": "https://other-shop.myshopify.com/admin"},  # issued for another shop
        {"exp": int(time.time()) + 3600},  # an hour's lifetime from its iat
        {"exp": int(time.time()) + 3600, "iat": None, "nbf": None},  # an hour's lifetime from now
        {"iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200, "exp": int(time.time()) + 30},
    ],
    ids=["no-iss", "other-iss", "long-from-iat", "long-from-now", "issued-long-ago"],
)
def test_given_a_signed_session_token_shopify_would_never_issue_when_the_admin_is_called_then_401(
    aws: EmulatedAws, claims: dict[str, Any]
) -> None:
    shop = new_shop()
    segment = session_token(shop).split(".")[1]
    issued = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    for name, value in claims.items():
        if value is None:
            del issued[name]
        else:
            issued[name] = value
    token = encode_hs256_jwt(issued, DEV_API_SECRET)

    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", shop, token=token))

    assert response["statusCode"] == 401
    assert response["headers"]["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_given_a_shop_with_no_data_when_it_asks_for_its_roi_then_200_and_zeros(aws: EmulatedAws) -> None:
    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", new_shop()))

    assert response["statusCode"] == 200
    report = body_of(response)
    assert report["attributed_revenue"] == "0.00"
    assert report["attributed_orders"] == 0
    assert report["by_product"] == []
    assert len(report["daily"]) == 30


@pytest.mark.parametrize("token", [None, "not.a.token"])
def test_given_no_or_a_bad_session_token_when_the_admin_is_called_then_401_asking_for_a_new_token(
    aws: EmulatedAws, token: str | None
) -> None:
    event = sample("admin-get-roi-no-token.json")
    if token:
        event["headers"]["authorization"] = f"Bearer {token}"

    response = aws.invoke("AdminFunction", event)

    assert response["statusCode"] == 401
    assert response["headers"]["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_given_a_token_for_another_app_when_the_admin_is_called_then_401(aws: EmulatedAws) -> None:
    token = session_token(new_shop(), api_key="some-other-app")
    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", None, token=token))

    assert response["statusCode"] == 401


def test_given_settings_when_changed_partially_then_defaults_fill_the_rest(aws: EmulatedAws) -> None:
    shop = new_shop()
    put = aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"click_window_days": 3}))
    got = aws.invoke("AdminFunction", admin_event("GET", "/admin/settings", shop))

    assert put["statusCode"] == 200
    assert body_of(got) == body_of(put)
    assert body_of(got)["click_window_days"] == 3
    assert body_of(got)["view_window_days"] == 7


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"holdout_share": 0.9}, "holdout_share"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"click_window_days": "7"}, "click_window_days"),
        ([1, 2], "body"),
    ],
)
def test_given_an_invalid_settings_change_when_put_then_400_names_the_key_and_nothing_changes(
    aws: EmulatedAws, change: Any, field: str
) -> None:
    shop = new_shop()

    response = aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, change))

    assert response["statusCode"] == 400
    assert body_of(response)["field"] == field
    assert body_of(aws.invoke("AdminFunction", admin_event("GET", "/admin/settings", shop)))["holdout_share"] == 0.1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=yesterday", "from"),
        ("?from=2026-02-01&to=2026-01-01", "from"),
        ("?from=2020-01-01&to=2026-01-01", "from"),
        ("?to=2026-13-01", "to"),
    ],
)
def test_given_a_bad_date_range_when_roi_is_asked_then_400_names_it(aws: EmulatedAws, query: str, field: str) -> None:
    response = aws.invoke("AdminFunction", admin_event("GET", f"/admin/roi{query}", new_shop()))

    assert response["statusCode"] == 400
    assert body_of(response)["field"] == field


def test_the_secret_comes_from_ssm_not_from_the_function_environment(aws: EmulatedAws) -> None:
    env = aws.environment("WebhookFunction")

    assert "SHOPIFY_API_SECRET" not in env
    assert env["SHOPIFY_API_SECRET_PARAM"] == "/reclift/shopify-api-secret"
    assert "SHOPIFY_API_SECRET" not in os.environ


# ---------------------------------------------------------------- refunds and cancellations
def demo_order_after_a_click(aws: EmulatedAws, shop: str) -> dict[str, Any]:
    """The sample order (three lines of product 632910392), placed now by a visitor who clicked that product."""
    click = {"type": "click", "visitor_id": "v-demo-1", "product_id": "632910392", "position": 1}
    assert body_of(track(aws, shop, [click | shown(shop, "v-demo-1", ["632910392"])]))["stored"] == 1
    order: dict[str, Any] = json.loads((EVENTS / "bodies" / "orders-create.json").read_text())
    order["created_at"] = datetime.now(UTC).isoformat()
    return order


def test_given_an_attributed_order_when_refunded_then_cancelled_then_the_roi_loses_the_refund_then_everything(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    """Shopify's own samples: the refund takes back line 518995019 (1 of 1), the cancellation what is left."""
    shop = new_shop()
    order = demo_order_after_a_click(aws, shop)
    refund = json.loads((FIXTURES / "refunds_create_sample.json").read_text())
    cancelled = json.loads((FIXTURES / "orders_cancelled_sample.json").read_text())

    def deliver(topic: str, payload: Any, webhook_id: str | None = None) -> None:
        event = webhook_event(shop, json.dumps(payload).encode(), topic=topic, webhook_id=webhook_id)
        assert aws.invoke("WebhookFunction", event)["statusCode"] == 200
        assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    placed = datetime.fromisoformat(order["created_at"])  # the report's day: the order's, whenever it is asked
    deliver("orders/create", order)
    assert roi(aws, shop, placed)["attributed_revenue"] == "587.00"

    deliver("refunds/create", refund)
    deliver("refunds/create", refund, webhook_id="the-same-refund-again")  # re-sent: changes nothing
    after_refund = roi(aws, shop, placed)
    assert after_refund["attributed_revenue"] == "391.33"  # 587.00 − 195.67, the refunded line's net revenue
    assert after_refund["attributed_orders"] == 1

    deliver("orders/cancelled", cancelled)
    after_cancel = roi(aws, shop, placed)
    assert after_cancel["attributed_revenue"] == "0.00"
    assert after_cancel["attributed_orders"] == 0
    counter = actual_counters(aws.client("dynamodb"), aws.resource("CountersTable"), shop, [])[SHOP_COUNTER]
    assert (counter["attributed_revenue"], counter["attributed_orders"]) == (0, 0)


# ---------------------------------------------------------------- privacy topics
def for_shop(fixture: str, shop: str) -> dict[str, Any]:
    """Shopify's published privacy sample, as Shopify sends it to `shop` (its body names the shop)."""
    payload: dict[str, Any] = json.loads((FIXTURES / fixture).read_text())
    assert payload["shop_domain"] == "{shop}.myshopify.com"
    payload["shop_domain"] = shop
    return payload


def everything_of(aws: EmulatedAws, needle: str) -> list[str]:
    """Every item in every table whose text mentions `needle`, as table:key."""
    dynamodb = aws.client("dynamodb")
    found = []
    tables = (
        "EventsTable",
        "CountersTable",
        "OrdersTable",
        "ProfilesTable",
        "ShopsTable",
        "LearningTable",
        "CatalogTable",
    )
    for logical_id in tables:
        for page in dynamodb.get_paginator("scan").paginate(TableName=aws.resource(logical_id)):
            found += [f"{logical_id}:{item['pk']['S']}" for item in page["Items"] if mentions(item, needle)]
    return found


def test_given_a_customers_history_when_shopify_asks_for_their_data_then_redacts_them_then_nothing_of_them_is_left(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    track(
        aws,
        shop,
        [
            {"type": "click", "visitor_id": "v-gdpr", "product_id": "111", "position": 1}
            | shown(shop, "v-gdpr", ["111"]),
            {"type": "view", "visitor_id": "v-gdpr", "product_id": "112"},
        ],
        customer_id="191167",
    )
    order = order_payload(
        order_id=299938,
        created_at=datetime.now(UTC),
        visitor_id="v-gdpr",
        customer_id=191167,
        lines=[{"product_id": 111, "price": "20.00"}],
    )
    request = for_shop("customers_data_request_sample.json", shop)
    redact = for_shop("customers_redact_sample.json", shop)

    for topic, payload in (("orders/create", order), ("customers/data_request", request)):
        aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(payload).encode(), topic=topic))
        assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    fetched = aws.invoke("AdminFunction", admin_event("GET", "/admin/privacy/requests/9999", shop))
    assert fetched["statusCode"] == 200, fetched
    data = body_of(fetched)["data"]
    assert data["customer_id"] == "191167"
    assert data["profile"]["carted"] == ["111"]
    assert [event["type"] for event in data["events"]] == ["click"]
    assert {row["product_id"] for row in data["orders"] if row["record"].startswith("line#")} == {"111"}
    assert any("191167" in item for item in everything_of(aws, "191167"))

    aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(redact).encode(), topic="customers/redact"))
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    left = [item for item in everything_of(aws, "191167") if shop in item]
    assert left == []  # the data export the merchant asked for went with the rest
    placed = datetime.fromisoformat(order["created_at"])
    assert roi(aws, shop, placed)["attributed_revenue"] == "20.00"  # the sale itself is the shop's


def test_given_a_shops_data_when_shopify_redacts_the_shop_then_every_table_forgets_it(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop, other = new_shop(), new_shop()
    for name in (shop, other):
        click = {"type": "click", "visitor_id": "v", "product_id": "111", "position": 1} | shown(name, "v", ["111"])
        assert body_of(track(aws, name, [click]))["stored"] == 1
        order = order_payload(
            order_id=7007, created_at=datetime.now(UTC), visitor_id="v", lines=[{"product_id": 111, "price": "5.00"}]
        )
        aws.invoke("WebhookFunction", webhook_event(name, json.dumps(order).encode()))
        listed = (FIXTURES / "products_update_sample.json").read_bytes()
        aws.invoke("WebhookFunction", webhook_event(name, listed, topic="products/update"))
        aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", name, {"policy": "seed"}))
    process_queue(aws, sqs, webhook_queue)
    assert everything_of(aws, shop)

    redact = for_shop("shop_redact_sample.json", shop)
    aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(redact).encode(), topic="shop/redact"))
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    [erasure] = queued(sqs, aws.resource("ShopRedactQueue"))  # the worker hands it to ShopRedactFunction
    record = sqs_record(erasure, f"arn:aws:sqs:{REGION}:123456789012:shop-redact", REGION)
    assert aws.invoke("ShopRedactFunction", {"Records": [record]}) == {"batchItemFailures": []}

    assert everything_of(aws, shop) == []
    assert everything_of(aws, other)  # another shop's data is untouched


@pytest.mark.parametrize(
    ("topic", "body_of_victim"),
    [
        # A captured delivery of the attacker's own shop, re-sent under the victim's domain and a privacy topic.
        ("shop/redact", lambda attacker, victim: for_shop("shop_redact_sample.json", attacker)),
        ("customers/redact", lambda attacker, victim: for_shop("customers_redact_sample.json", attacker)),
        # A body signed for another topic (a product listing), re-sent as a privacy topic.
        ("shop/redact", lambda attacker, victim: json.loads((FIXTURES / "products_update_sample.json").read_text())),
        # Shopify's sample as published, naming no real shop.
        ("shop/redact", lambda attacker, victim: json.loads((FIXTURES / "shop_redact_sample.json").read_text())),
    ],
)
def test_given_a_signed_body_re_sent_as_a_privacy_topic_for_another_shop_then_nothing_is_erased_and_it_waits_in_the_dlq(
    aws: EmulatedAws, sqs: Any, webhook_queue: str, topic: str, body_of_victim: Any
) -> None:
    attacker, victim = new_shop(), new_shop()
    click = {"type": "click", "visitor_id": "v", "product_id": "111", "position": 1} | shown(victim, "v", ["111"])
    assert body_of(track(aws, victim, [click]))["stored"] == 1
    order = order_payload(
        order_id=191167,
        created_at=datetime.now(UTC),
        visitor_id="v",
        customer_id=191167,
        lines=[{"product_id": 111, "price": "5.00"}],
    )
    aws.invoke("WebhookFunction", webhook_event(victim, json.dumps(order).encode()))
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    before = everything_of(aws, victim)

    body = json.dumps(body_of_victim(attacker, victim)).encode()
    assert aws.invoke("WebhookFunction", webhook_event(victim, body, topic=topic))["statusCode"] == 200
    [message] = queued(sqs, webhook_queue)
    record = sqs_record(message, f"arn:aws:sqs:{REGION}:123456789012:queue", REGION)

    with pytest.raises(BatchProcessingError):  # unprocessable: it stays on the queue, then the DLQ
        aws.invoke("AttributionFunction", {"Records": [record]})
    assert set(before) <= set(everything_of(aws, victim))  # nothing erased (the failed delivery is counted for health)


def test_given_a_product_listing_re_sent_as_its_deletion_then_the_catalog_keeps_it(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    listing = (FIXTURES / "products_update_sample.json").read_bytes()
    aws.invoke("WebhookFunction", webhook_event(shop, listing, topic="products/update"))
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    before = catalog_of(aws, shop)

    aws.invoke("WebhookFunction", webhook_event(shop, listing, topic="products/delete"))
    [message] = queued(sqs, webhook_queue)
    record = sqs_record(message, f"arn:aws:sqs:{REGION}:123456789012:queue", REGION)

    with pytest.raises(BatchProcessingError):
        aws.invoke("AttributionFunction", {"Records": [record]})
    assert catalog_of(aws, shop) == before
    assert len(before) == 1


def catalog_of(aws: EmulatedAws, shop: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.client("dynamodb").scan(TableName=aws.resource("CatalogTable"))["Items"]
    return [item for item in items if shop in json.dumps(item)]


def test_given_a_refund_delivered_before_its_order_then_it_is_retried_until_the_order_is_in(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    order = demo_order_after_a_click(aws, shop)
    refund = json.loads((FIXTURES / "refunds_create_sample.json").read_text())
    aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(refund).encode(), topic="refunds/create"))
    [message] = queued(sqs, webhook_queue)
    record = sqs_record(message, f"arn:aws:sqs:{REGION}:123456789012:queue", REGION)

    with pytest.raises(BatchProcessingError):  # the only record failed: it stays on the queue
        aws.invoke("AttributionFunction", {"Records": [record]})

    aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    assert aws.invoke("AttributionFunction", {"Records": [record]}) == {"batchItemFailures": []}  # the retry
    assert roi(aws, shop, datetime.fromisoformat(order["created_at"]))["attributed_revenue"] == "391.33"


ARM_VISITORS: tuple[tuple[Arm, int], ...] = (("learning", 9), ("holdout", 3))


def test_given_impressions_of_both_arms_and_a_sale_when_roi_is_asked_then_the_lift_block_counts_them(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    impressions = [
        {
            "type": "impression",
            "visitor_id": f"{arm[0]}-visitor-{n}",
            "placement": "home",
            "products": [{"product_id": "111", "position": 1}],
        }
        | shown(shop, f"{arm[0]}-visitor-{n}", ["111"], arm=arm, placement="home")
        for arm, count in ARM_VISITORS
        for n in range(count)
    ]
    assert body_of(track(aws, shop, impressions))["stored"] == 12
    # A visitor seen twice counts once; a second impression of the same response is ignored.
    assert body_of(track(aws, shop, impressions[:2]))["ignored"] == 2
    placed = datetime.now(UTC)
    order = order_payload(
        order_id=8008, created_at=placed, visitor_id="l-visitor-0", lines=[{"product_id": 111, "price": "45.00"}]
    )
    aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))
    process_queue(aws, sqs, webhook_queue)

    lift = roi(aws, shop, placed)["lift"]

    assert lift["visitors"] == {"learning": 9, "holdout": 3}
    assert lift["revenue_per_visitor"]["learning"] == 5.0  # 45.00 over 9 visitors
    assert lift["revenue_per_visitor"]["holdout"] == 0.0
    assert lift["revenue_per_visitor"]["relative"] is None  # no holdout revenue yet: no ratio to take
    assert lift["conversion_rate"]["learning"] == pytest.approx(1 / 9, abs=1e-6)
    assert 0 < lift["srm_p_value"] <= 1


def test_given_a_visitor_already_counted_today_when_they_see_another_recommendation_then_their_arm_counts_them_once(
    aws: EmulatedAws,
) -> None:
    """The arm's visitors are counted at a constant cost: the counting function puts the visitor's marker for the
    day where it is absent, and adds to the arm's visitors of the hour only when that marker was new. A second
    response shown to the same visitor: the request writes its event alone; its counting, the marker's refused put,
    the product's counter and the hour's impressions, and no visitor."""
    shop = new_shop()

    def impression(product: str) -> dict[str, Any]:
        listed = [{"product_id": product, "position": 1}]
        event = {"type": "impression", "visitor_id": "v1", "placement": "home", "products": listed}
        return event | shown(shop, "v1", [product], placement="home")

    assert body_of(track(aws, shop, [impression("111")]))["stored"] == 1
    counter = ApiCallCounter(
        names={aws.resource("CountersTable"): "CountersTable", aws.resource("EventsTable"): "EventsTable"}
    )
    with counter.counting() as request:
        response = track(aws, shop, [impression("222")], count=False)
    with counter.counting() as counting:
        process_stream(aws, "CountingFunction")

    assert body_of(response)["stored"] == 1
    assert {call: n for call, n in request.calls.items() if call.target in ("CountersTable", "EventsTable")} == {
        ApiCall("dynamodb", "UpdateItem", "EventsTable"): 1  # the impression's item, its products a set
    }
    assert counting.calls[ApiCall("dynamodb", "PutItem", "CountersTable")] == 1  # the marker, refused
    assert counting.calls[ApiCall("dynamodb", "UpdateItem", "CountersTable")] == 2  # the product's, the hour's
    assert roi(aws, shop, datetime.now(UTC))["lift"]["visitors"] == {"learning": 1, "holdout": 0}


# ---------------------------------------------------------------- proven events
@pytest.mark.usefixtures("one_hour")
def test_given_the_blacklisting_attack_replayed_when_learning_runs_then_only_the_genuine_impression_counted(
    aws: EmulatedAws,
) -> None:
    """The reproduced attack: requests of 50 impressions, each listing one product 20 times, with made-up `h-…` rec
    ids and with every way of reusing a genuine one (replayed, another shop's, another visitor's, expired, its arm
    rewritten, products it did not list). Only the one genuine first impression and click count."""
    shop, other = new_shop(), new_shop()
    genuine = shown(shop, "v1", ["111", "222"])
    twenty = [{"product_id": "111", "position": 1}] * 20

    def impressions(visitor: str = "v1", **fields: Any) -> list[dict[str, Any]]:
        event = {"type": "impression", "visitor_id": visitor, "placement": "product", "products": twenty}
        return [event | fields] * 50

    first = track(
        aws,
        shop,
        [
            *impressions(**genuine)[:1],
            {"type": "click", "visitor_id": "v1", "product_id": "111", "position": 1} | genuine,
        ],
    )
    assert body_of(first) == {"received": 2, "stored": 2, "ignored": 0}
    expired = shown(shop, "v1", ["111"], at=datetime.now(UTC) - timedelta(hours=25))
    rewritten = genuine | {"rec_id": "1hp." + genuine["rec_id"].split(".", 1)[1]}
    attacks = [
        *(impressions(f"h-visitor-{n}", rec_id=f"h-{n:024x}") for n in range(5)),
        impressions(**genuine),
        impressions(**shown(other, "v1", ["111"])),
        impressions("v2", **genuine),
        impressions(**expired),
        impressions(**rewritten),
        impressions(**(genuine | {"rec_products": ["111"]})),
    ]
    for batch in attacks:
        assert body_of(track(aws, shop, batch)) == {"received": 50, "stored": 0, "ignored": 50}

    # What was ignored is stored nowhere: the shop's events are the genuine impression (its rec id's item, one
    # product) and click alone, and no forged visitor has a profile (the click gave v1 its carted product).
    dynamodb = aws.client("dynamodb")
    stored = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=aws.resource("EventsTable"))
        for item in page["Items"]
        if item["pk"]["S"].startswith(f"{shop}#")
    ]
    assert sorted(
        (item["pk"]["S"], item["type"]["S"], item.get("product_set", {}).get("SS") or item["product_ids"]["L"])
        for item in stored
    ) == [(f"{shop}#v#v1", "click", [{"S": "111"}]), (f"{shop}#v#v1", "impression", ["111"])]
    profiles = [
        item["pk"]["S"]
        for page in dynamodb.get_paginator("scan").paginate(TableName=aws.resource("ProfilesTable"))
        for item in page["Items"]
        if item["pk"]["S"].startswith(f"{shop}#")
    ]
    assert profiles == [f"{shop}#v#v1"]

    counters = actual_counters(aws.client("dynamodb"), aws.resource("CountersTable"), shop, ["111", "222"])
    assert (counters["111"]["impressions"], counters["111"]["clicks"]) == (1, 1)
    assert "222" not in counters  # listed, never shown: no counter
    assert roi(aws, shop, datetime.now(UTC))["lift"]["visitors"] == {"learning": 1, "holdout": 0}
    job = json.dumps({"shop": shop, "day": datetime.now(UTC).date().isoformat()})
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": job, "MD5OfBody": "", "Attributes": {}}
    learning = {"Records": [sqs_record(message, "arn:aws:sqs:us-east-1:1:q", REGION)]}
    assert aws.invoke("DailyLearningFunction", learning) == {"batchItemFailures": []}
    performance = body_of(aws.invoke("AdminFunction", admin_event("GET", "/admin/performance", shop)))["products"]
    [product] = [row for row in performance if row["product_id"] == "111"]
    assert (product["impressions"], product["blacklisted"]) == (1, False)
    assert product["cvr_ci95"] is None  # one impression: not enough data for an interval


def test_given_an_order_line_with_a_rec_id_the_server_did_not_issue_then_it_credits_nothing(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    """A `_rec_id` credits a line only when it is the server's, for that shop, and its stored event lists the line's
    product: a made-up one, or another shop's, falls back to the buyer's other keys (here: none)."""
    shop, other = new_shop(), new_shop()
    theirs = shown(other, "v7", ["111"])
    click = {"type": "click", "visitor_id": "v7", "product_id": "111", "position": 1}
    assert body_of(track(aws, other, [click | theirs]))["stored"] == 1
    now = datetime.now(UTC)
    for order_id, rec_id in ((9101, "l-0123456789abcdef01234567"), (9102, theirs["rec_id"])):
        lines = [{"product_id": 111, "price": "20.00", "rec_id": rec_id}]
        body = order_body("someone-else", order_id, now, lines=lines)
        assert aws.invoke("WebhookFunction", webhook_event(shop, body))["statusCode"] == 200
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    report = roi(aws, shop, now)
    assert (report["orders"], report["attributed_revenue"]) == (2, "0.00")


def test_given_more_views_in_a_day_than_the_cap_then_the_profile_keeps_the_first_fifty(aws: EmulatedAws) -> None:
    """Views feed profiles only, at most 50 per visitor a day: a script posting views cannot keep rewriting one."""
    shop = new_shop()
    views = [{"type": "view", "visitor_id": "v-browse", "product_id": str(5000 + n)} for n in range(60)]

    for start in (0, 30):
        answer = body_of(track(aws, shop, views[start : start + 30]))
        assert answer == {"received": 30, "stored": 0, "ignored": 0}  # views are neither: they feed the profile

    item = aws.client("dynamodb").get_item(
        TableName=aws.resource("ProfilesTable"), Key={"pk": {"S": f"{shop}#v#v-browse"}}
    )["Item"]
    assert [v["S"] for v in item["viewed"]["L"]] == [str(5000 + n) for n in reversed(range(50))]
    counters = actual_counters(aws.client("dynamodb"), aws.resource("CountersTable"), shop, ["5000"])
    assert "5000" not in counters  # a view counts nowhere in learning
