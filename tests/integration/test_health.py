"""The hourly health check through the handlers against the emulator: storefront traffic, signed orders and a failing
delivery induce each condition; the check alerts once on the alerts topic and on a local Slack webhook, stays quiet
while the condition lasts, sends one recovery when it clears, and `GET /admin/health` shows the state."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from reclift_local.pollers import sqs_record
from tests.support.aws import EmulatedAws, process_stream, queued
from tests.support.recs import shown as issued
from tests.support.shopify import (
    admin_event,
    fresh_sample,
    new_shop,
    order_payload,
    proxy_event,
    proxy_query,
    webhook_event,
)
from tests.support.slack import FakeSlack, fake_slack

REGION = "us-east-1"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:queue"
SLACK_PARAMETER = "/reclift/test/slack-webhook-url"
SAMPLES = ("health-scheduled", "health-sqs-shop")
ALL_CONDITIONS = {"cvr_24h", "cvr_7d", "error_rate_24h", "no_recommendations_24h"}


@pytest.fixture(scope="module")
def slack(aws: EmulatedAws) -> Iterator[FakeSlack]:
    with fake_slack() as fake:
        aws.client("ssm").put_parameter(Name=SLACK_PARAMETER, Value=fake.url, Type="SecureString", Overwrite=True)
        yield fake


class AlertsInbox:
    """A queue subscribed to the alerts topic, as an email address would be."""

    def __init__(self, aws: EmulatedAws) -> None:
        self.sqs = aws.client("sqs")
        self.url = self.sqs.create_queue(QueueName=f"alerts-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws.client("sns").subscribe(TopicArn=aws.resource("AlertsTopic"), Protocol="sqs", Endpoint=arn)
        self.subjects: list[str] = []

    def about(self, shop: str) -> list[str]:
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self.subjects.append(json.loads(message["Body"])["Subject"])
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return [subject for subject in self.subjects if shop in subject]


@pytest.fixture(scope="module")
def inbox(aws: EmulatedAws) -> AlertsInbox:
    return AlertsInbox(aws)


def check(aws: EmulatedAws, shop: str, *, slack_parameter: str = SLACK_PARAMETER) -> dict[str, Any]:
    body = json.dumps({"shop": shop, "scheduled_at": datetime.now(UTC).isoformat()})
    message = {"MessageId": uuid.uuid4().hex, "ReceiptHandle": "r", "Body": body, "MD5OfBody": "", "Attributes": {}}
    event = {"Records": [sqs_record(message, QUEUE_ARN, REGION)]}
    try:
        result: dict[str, Any] = aws.invoke(
            "HealthCheckFunction", event, env={"SLACK_WEBHOOK_URL_PARAM": slack_parameter}
        )
    except BatchProcessingError:
        return {"failed": True}
    return result


def show(aws: EmulatedAws, shop: str, products: int, visitor: str = "v-shown") -> None:
    """`products` impressions: one impression event per four products shown."""
    events = [
        {
            "type": "impression",
            "visitor_id": visitor,
            "placement": "home",
            "products": [{"product_id": str(900 + p), "position": p + 1} for p in range(min(4, products - start))],
        }
        | issued(shop, visitor, [str(900 + p) for p in range(min(4, products - start))], placement="home")
        for start in range(0, products, 4)
    ]
    for start in range(0, len(events), 50):
        body = json.dumps({"events": events[start : start + 50]}).encode()
        response = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
        assert response["statusCode"] == 200, response
    process_stream(aws, "CountingFunction")  # the counting function reads the events table's stream


def serve(aws: EmulatedAws, shop: str) -> None:
    query = proxy_query(shop, extra={"placement": "home", "visitor_id": "v-served"})
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))
    assert response["statusCode"] == 200, response


def deliver(aws: EmulatedAws, shop: str, bodies: list[bytes]) -> None:
    """Signed webhooks through the webhook function, then the queue drained through the attribution worker (records
    that fail are counted and dropped here, as the DLQ would take them)."""
    for body in bodies:
        assert aws.invoke("WebhookFunction", webhook_event(shop, body))["statusCode"] == 200
    sqs, queue = aws.client("sqs"), aws.resource("WebhookQueue")
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        with contextlib.suppress(BatchProcessingError):
            aws.invoke("AttributionFunction", {"Records": [sqs_record(m, QUEUE_ARN, REGION) for m in messages]})
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def order(order_id: int, visitor: str, product: str = "900") -> bytes:
    payload = order_payload(
        order_id=order_id,
        created_at=datetime.now(UTC),
        visitor_id=visitor,
        lines=[{"product_id": int(product), "price": "10.00"}],
    )
    return json.dumps(payload).encode()


def health(aws: EmulatedAws, shop: str) -> dict[str, Any]:
    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/health", shop))
    assert response["statusCode"] == 200, response
    body: dict[str, Any] = json.loads(response["body"])
    return body


def conditions_in(texts: list[str], kind: str) -> set[str]:
    """Which conditions the messages of one kind (`alert` / `recovered`) are about."""
    phrases = {
        "cvr_24h": "over 24 h below 0.5 %",
        "cvr_7d": "over 7 days below 0.5 %",
        "error_rate_24h": "failed processing over 24 h above 5 %",
        "no_recommendations_24h": "no recommendation served in 24 h",
    }
    return {name for text in texts if text.startswith(f"reclift {kind}") for name, p in phrases.items() if p in text}


def test_given_each_condition_induced_when_checked_hourly_then_one_alert_each_and_one_recovery_once_it_clears(
    aws: EmulatedAws, slack: FakeSlack, inbox: AlertsInbox
) -> None:
    shop = new_shop()
    # Given 200 products shown and none bought, nothing served, and a delivery that cannot be processed.
    show(aws, shop, 200)
    deliver(aws, shop, [json.dumps({"id": "not an order"}).encode()])

    first = check(aws, shop)
    second = check(aws, shop)

    mine = [text for text in slack.texts() if shop in text]
    assert first == second == {"batchItemFailures": []}
    assert len(mine) == 4  # one per condition, and nothing more on the second hour
    assert conditions_in(mine, "alert") == ALL_CONDITIONS
    assert len(inbox.about(shop)) == 4
    state = health(aws, shop)
    assert {name for name, c in state["conditions"].items() if c["status"] == "alerting"} == ALL_CONDITIONS
    assert state["conditions"]["cvr_24h"]["value"] == 0.0
    assert state["conditions"]["error_rate_24h"]["value"] == 1.0

    # When a recommendation is served, a shown product is bought (1 in 200 = 0.5 %: not below the floor) and 19 more
    # orders succeed (1 failure in 20 attempts = 5 %: not above the ceiling).
    serve(aws, shop)
    clicked = {"type": "click", "visitor_id": "v-shown", "product_id": "900", "position": 1} | issued(
        shop, "v-shown", ["900"], placement="home"
    )
    body = json.dumps({"events": [clicked]}).encode()
    assert (
        aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))[
            "statusCode"
        ]
        == 200
    )
    deliver(aws, shop, [order(80_000, "v-shown")] + [order(80_001 + n, f"v-other-{n}", "990") for n in range(18)])
    third = check(aws, shop)
    fourth = check(aws, shop)

    # Then one recovery per condition, once.
    mine = [text for text in slack.texts() if shop in text]
    assert third == fourth == {"batchItemFailures": []}
    assert len(mine) == 8
    assert conditions_in(mine[4:], "recovered") == ALL_CONDITIONS
    assert len(inbox.about(shop)) == 8
    state = health(aws, shop)
    assert {c["status"] for c in state["conditions"].values()} == {"ok"}
    assert state["conditions"]["cvr_24h"]["value"] == pytest.approx(0.005)
    assert state["conditions"]["error_rate_24h"]["value"] == pytest.approx(0.05)


def test_given_slack_failing_when_checked_then_the_check_is_retried_and_the_alert_is_sent_once_it_answers(
    aws: EmulatedAws, slack: FakeSlack, inbox: AlertsInbox
) -> None:
    shop = new_shop()
    show(aws, shop, 8)  # a shop that shows products but was never served one in the last 24 h (too few to judge CVR)
    slack.status = 500
    try:
        failed = check(aws, shop)
    finally:
        slack.status = 200
    retried = check(aws, shop)
    again = check(aws, shop)

    assert failed == {"failed": True}  # the only record failed: it stays on the queue, then the DLQ
    assert retried == again == {"batchItemFailures": []}
    mine = [text for text in slack.texts() if shop in text]
    assert len(mine) == 2  # the refused post, then the one delivered; nothing after
    assert conditions_in(mine, "alert") == {"no_recommendations_24h"}
    assert health(aws, shop)["conditions"]["cvr_24h"]["status"] == "insufficient_data"


def test_given_slack_off_when_a_condition_starts_then_the_alerts_topic_alone_gets_it(
    aws: EmulatedAws, slack: FakeSlack, inbox: AlertsInbox
) -> None:
    shop = new_shop()
    show(aws, shop, 4)

    assert check(aws, shop, slack_parameter="") == {"batchItemFailures": []}

    assert [text for text in slack.texts() if shop in text] == []
    assert len(inbox.about(shop)) == 1


def test_given_no_check_yet_when_the_admin_asks_then_an_empty_state_and_without_a_token_401(aws: EmulatedAws) -> None:
    shop = new_shop()

    assert health(aws, shop) == {"shop": shop, "checked_at": None, "conditions": {}}
    assert aws.invoke("AdminFunction", admin_event("GET", "/admin/health", None))["statusCode"] == 401


def test_given_the_schedule_when_it_fires_then_one_check_per_shop_is_queued(aws: EmulatedAws) -> None:
    shop = new_shop()
    show(aws, shop, 4)  # registers the shop
    sqs, queue = aws.client("sqs"), aws.resource("HealthQueue")

    summary = aws.invoke("HealthCheckFunction", {"time": "2026-11-26T10:00:00Z", "detail-type": "Scheduled Event"})

    bodies = [json.loads(message["Body"]) for message in queued(sqs, queue)]
    # Other tests' fan-outs may have left their messages (other schedules) on the session's queue.
    this_hour = [body for body in bodies if body["scheduled_at"] == "2026-11-26T10:00:00Z"]
    assert summary["shops"] == len(this_hour) >= 1
    assert {"shop": shop, "scheduled_at": "2026-11-26T10:00:00Z"} in this_hour


def test_given_the_sample_events_then_the_health_check_and_its_route_answer(aws: EmulatedAws) -> None:
    events = Path(__file__).resolve().parents[2] / "events"
    sample = {name: json.loads((events / f"{name}.json").read_text()) for name in SAMPLES}
    sqs, queue = aws.client("sqs"), aws.resource("HealthQueue")
    show(aws, new_shop(), 4)  # at least one shop in the registry

    fanned = aws.invoke("HealthCheckFunction", sample["health-scheduled"])
    queued = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for message in queued:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    assert fanned["shops"] >= 1
    assert queued
    assert aws.invoke("HealthCheckFunction", sample["health-sqs-shop"]) == {"batchItemFailures": []}
    response = aws.invoke("AdminFunction", fresh_sample("admin-get-health.json"))
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["checked_at"] is not None


@pytest.mark.usefixtures("one_hour")
def test_given_events_and_an_order_in_one_hour_then_their_totals_are_kept_apart_and_read_as_one_hour(
    aws: EmulatedAws,
) -> None:
    """The counting of events (from the events table's stream, once per batch) adds to the hour's events part and
    orders to their own, so an order's transaction never contends with the events' updates of a busy hour; the
    health check reads the parts as one hour."""
    from reclift.data.health import HealthStore
    from reclift_local.worker import function_env
    from tests.support.aws import process_queue

    shop = new_shop()
    for n in range(12):
        listed = [{"product_id": "111", "position": 1}, {"product_id": "222", "position": 2}]
        event: dict[str, Any] = {"type": "impression", "visitor_id": f"v{n}", "placement": "home", "products": listed}
        body = json.dumps({"events": [event | issued(shop, f"v{n}", ["111", "222"], placement="home")]}).encode()
        response = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
        assert response["statusCode"] == 200
    process_stream(aws, "CountingFunction")
    order = order_payload(order_id=9100, created_at=datetime.now(UTC), lines=[{"product_id": 111, "price": "5.00"}])
    assert aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))["statusCode"] == 200
    assert process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue")) == {"batchItemFailures": []}

    today = datetime.now(UTC).date()
    parts = {}
    for partition in (f"{shop}#{today.isoformat()}", f"{shop}#{today.isoformat()}#o"):  # the day's, its orders'
        items = aws.client("dynamodb").query(
            TableName=aws.resource("CountersTable"),
            KeyConditionExpression="pk = :pk AND begins_with(sk, :hour)",
            ExpressionAttributeValues={":pk": {"S": partition}, ":hour": {"S": "_hour#"}},
        )["Items"]
        parts[partition.removeprefix(shop)] = {
            sk.split("#")[2] for item in items if (sk := item["sk"]["S"]).count("#") == 2
        }
    assert parts == {f"#{today.isoformat()}": {"e"}, f"#{today.isoformat()}#o": {"o"}}
    with function_env(aws.environment("HealthCheckFunction")):
        [hour] = [h for h in HealthStore().hour_totals(shop, today, today) if h.impressions or h.orders]
    assert (hour.impressions, hour.orders) == (24, 1)
