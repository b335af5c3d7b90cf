"""What the functions log: a full round of real traffic, and not one line carries a secret, a signature, a token,
an email, a phone number or a customer's name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reclift_local.pollers import sqs_record
from reclift_local.sign import DEV_API_SECRET
from tests.support.aws import EmulatedAws
from tests.support.shopify import (
    admin_event,
    fixture,
    new_shop,
    proxy_event,
    proxy_query,
    session_token,
    webhook_event,
)

REGION = "us-east-1"


def test_given_real_traffic_and_bad_requests_when_handled_then_no_log_line_carries_secrets_or_personal_data(
    aws: EmulatedAws, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")  # the template's POWERTOOLS_LOG_LEVEL
    shop = new_shop()
    order: dict[str, Any] = fixture("shopify/orders_create_sample.json")
    order["created_at"] = datetime.now(UTC).isoformat()
    order["note_attributes"].append({"name": "_reclift_vid", "value": "v-logs"})
    body = json.dumps(order).encode()
    query = proxy_query(shop, "207119551")
    token = session_token(shop)
    webhook = webhook_event(shop, body)
    events = [
        {
            "type": "click",
            "rec_id": "l-0123456789abcdef01234567",
            "visitor_id": "v-logs",
            "product_id": "632910392",
            "position": 1,
        }
    ]
    forged = webhook_event(shop, body, secret="not-the-secret")
    secrets = [
        DEV_API_SECRET,
        webhook["headers"]["x-shopify-hmac-sha256"],
        forged["headers"]["x-shopify-hmac-sha256"],
        query.rsplit("signature=", 1)[1],
        token,
        token.split(".")[2],
    ]
    personal = ["bob.norman@mail.example.com", "Bob", "Norman", "+557734881234", "+16136120707", "Ottawa"]

    aws.invoke(
        "StorefrontFunction", proxy_event("POST", "/apps/proxy/events", query, json.dumps({"events": events}).encode())
    )
    aws.invoke("WebhookFunction", webhook)
    aws.invoke("WebhookFunction", forged)  # 401
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.resource("WebhookQueue"), MaxNumberOfMessages=10)["Messages"]
    records = [sqs_record(m, f"arn:aws:sqs:{REGION}:123456789012:q", REGION) for m in messages]
    aws.invoke("AttributionFunction", {"Records": records})
    for message in messages:
        sqs.delete_message(QueueUrl=aws.resource("WebhookQueue"), ReceiptHandle=message["ReceiptHandle"])
    aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", None, token=token))
    aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", None, token=token[:-2] + "xx"))  # 401
    aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query + "0"))  # 401

    # Every record as the functions write it to CloudWatch: Powertools' JSON, with every extra field. (Imported
    # here: the functions create the shared logger and metrics with their own environment on first use.)
    from reclift.observability import logger

    lines = [logger.registered_formatter.format(record) for record in caplog.records if record.name == logger.name]
    assert any('"message":"delivery processed"' in line for line in lines)  # the logs were captured
    leaks = [(needle, line[:200]) for line in lines for needle in secrets + personal if needle in line]
    assert leaks == []
