"""Every custom metric an alarm or the dashboard reads is one the code emits, with the same namespace, name and
dimensions: the handlers run their paths against the emulator and their EMF output (Powertools Metrics, printed to
stdout) is read back — not a list copied by hand."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from reclift_local.pollers import sqs_record
from reclift_local.template import load_template
from tests.support.aws import EmulatedAws
from tests.support.recs import shown as issued
from tests.support.shopify import new_shop, order_payload, proxy_event, proxy_query, webhook_event

ROOT = Path(__file__).resolve().parents[2]
CUSTOM_NAMESPACE = "Reclift"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:queue"

Metric = tuple[str, str, frozenset[tuple[str, str]]]


def emitted(output: str) -> set[Metric]:
    """(namespace, name, dimensions) of every metric in the EMF records among the printed lines."""
    found: set[Metric] = set()
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = frozenset((name, str(record[name])) for name in dimension_set)
                found |= {(directive["Namespace"], metric["Name"], dims) for metric in directive["Metrics"]}
    return found


def counted(output: str, name: str) -> float:
    """The sum of metric `name` over the EMF records among the printed lines."""
    total = 0.0
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line).get(name, 0)
            total += sum(value) if isinstance(value, list) else value
    return total


def read_by_alarms_and_dashboard() -> set[Metric]:
    template = load_template(ROOT / "template.yaml")
    read: set[Metric] = set()
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            stats = [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
            if "MetricName" in props:
                stats.append(props)
            for metric in stats:
                if metric["Namespace"] != CUSTOM_NAMESPACE:
                    continue  # AWS/Lambda, AWS/SQS: emitted by AWS itself, their dimensions name resources
                dims = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
                read.add((metric["Namespace"], metric["MetricName"], dims))
        if resource["Type"] == "AWS::CloudWatch::Dashboard":
            body = json.loads(re.sub(r"\$\{([\w:]+)(\.\w+)?\}", r"\1", props["DashboardBody"]["Fn::Sub"]))
            for widget in body["widgets"]:
                for row in widget["properties"].get("metrics", []):
                    if isinstance(row[0], str):
                        parts = [part for part in row if isinstance(part, str)]
                        dims = frozenset(zip(parts[2::2], parts[3::2], strict=True))
                        read.add((parts[0], parts[1], dims))
    return {metric for metric in read if metric[0] == CUSTOM_NAMESPACE}


def run_every_path(aws: EmulatedAws) -> None:
    shop = new_shop()
    response = issued(shop, "v-metrics", ["701"])
    shown = {
        "type": "impression",
        "visitor_id": "v-metrics",
        "placement": "product",
        "products": [{"product_id": "701", "position": 1}],
    } | response
    clicked = {"type": "click", "visitor_id": "v-metrics", "product_id": "701", "position": 1} | response
    body = json.dumps({"events": [shown, clicked]}).encode()
    assert (
        aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))[
            "statusCode"
        ]
        == 200
    )
    query = proxy_query(shop, extra={"placement": "home", "visitor_id": "v-metrics"})
    assert (
        aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))["statusCode"] == 200
    )
    query = proxy_query(shop, secret="wrong", extra={"placement": "home", "visitor_id": "v-metrics"})
    assert (
        aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))["statusCode"] == 401
    )

    order = order_payload(
        order_id=71_000,
        created_at=datetime.now(UTC),
        visitor_id="v-metrics",
        lines=[{"product_id": 701, "price": "20.00"}],
    )
    assert aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))["statusCode"] == 200
    assert aws.invoke("WebhookFunction", webhook_event(shop, b"{}", secret="wrong"))["statusCode"] == 401
    assert aws.invoke("WebhookFunction", webhook_event(shop, b'{"id": "no order"}'))["statusCode"] == 200
    sqs, queue = aws.client("sqs"), aws.resource("WebhookQueue")
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:  # one record per invocation: the poison one fails alone
            with contextlib.suppress(BatchProcessingError):
                aws.invoke("AttributionFunction", {"Records": [sqs_record(message, QUEUE_ARN, "us-east-1")]})
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def test_every_custom_metric_an_alarm_or_the_dashboard_reads_is_emitted_by_the_code(
    aws: EmulatedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    run_every_path(aws)
    output = capsys.readouterr().out

    code = emitted(output)
    read = read_by_alarms_and_dashboard()

    assert len(read) >= 9  # the scan of the template found the alarms' and the dashboard's metrics
    assert {name for _, name, _ in code} >= {"AttributedOrders", "AttributedRevenue", "DeliveriesFailed"}
    assert read - code == set(), "read by an alarm or the dashboard, never emitted: " + repr(sorted(read - code))


def test_no_metric_carries_a_per_shop_dimension(aws: EmulatedAws, capsys: pytest.CaptureFixture[str]) -> None:
    run_every_path(aws)

    dimensions = {name for _, _, dims in emitted(capsys.readouterr().out) for name, _ in dims}

    assert dimensions == {"service"}


def test_a_delivery_that_fails_inside_a_batch_counts_in_deliveries_failed_though_the_invocation_succeeds(
    aws: EmulatedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record that fails beside good ones is a partial batch failure: the invocation returns normally, so Lambda's
    Errors never sees it, and DeliveriesFailed (what DeliveriesFailedAlarm reads) is the only count of it."""
    event = json.loads((ROOT / "events" / "attribution-sqs-batch-with-poison.json").read_text(encoding="utf-8"))
    poison_id = event["Records"][1]["messageId"]
    capsys.readouterr()

    result = aws.invoke("AttributionFunction", event)

    assert result == {"batchItemFailures": [{"itemIdentifier": poison_id}]}
    output = capsys.readouterr().out
    counts = {name: counted(output, name) for name in ("DeliveriesFailed", "DeliveriesProcessed")}
    assert counts == {"DeliveriesFailed": 1, "DeliveriesProcessed": len(event["Records"]) - 1}


def test_only_a_signature_that_matches_no_secret_counts_as_mismatched_not_a_missing_or_malformed_one(
    aws: EmulatedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    """What WebhookSignatureMismatchAlarm and ProxySignatureMismatchAlarm read: a request signed with another secret
    (what Shopify sends when the secret in SSM is not the app's) counts in SignaturesMismatched; an unsigned request or
    a malformed signature (what a scanner sends) is refused as well but is not counted there."""
    shop = new_shop()
    recommendations = "/apps/proxy/recommendations"
    unsigned_webhook = webhook_event(shop, b"{}")
    unsigned_webhook["headers"] = {
        key: value for key, value in unsigned_webhook["headers"].items() if key.lower() != "x-shopify-hmac-sha256"
    }
    malformed_webhook = webhook_event(shop, b"{}")
    malformed_webhook["headers"] = {
        key: ("not base64!" if key.lower() == "x-shopify-hmac-sha256" else value)
        for key, value in malformed_webhook["headers"].items()
    }
    signed = proxy_query(shop, extra={"placement": "home"})
    refused = {
        "webhook signed with another secret": ("WebhookFunction", webhook_event(shop, b"{}", secret="other"), 1),
        "webhook without a signature": ("WebhookFunction", unsigned_webhook, 0),
        "webhook with a malformed signature": ("WebhookFunction", malformed_webhook, 0),
        "proxy request signed with another secret": (
            "StorefrontFunction",
            proxy_event("GET", recommendations, proxy_query(shop, secret="other", extra={"placement": "home"})),
            1,
        ),
        "proxy request without a signature": (
            "StorefrontFunction",
            proxy_event("GET", recommendations, re.sub(r"&?signature=[0-9a-f]+", "", signed)),
            0,
        ),
        "proxy request with a malformed signature": (
            "StorefrontFunction",
            proxy_event("GET", recommendations, re.sub(r"signature=[0-9a-f]+", "signature=xyz", signed)),
            0,
        ),
    }
    capsys.readouterr()
    for case, (function_id, event, mismatched) in refused.items():
        assert aws.invoke(function_id, event)["statusCode"] == 401, case
        output = capsys.readouterr().out
        assert counted(output, "WebhooksRejected") + counted(output, "ProxyRequestsRejected") == 1, case
        assert counted(output, "SignaturesMismatched") == mismatched, case
