"""Faults, injected where AWS and Shopify cause them, and after each one the figures equal the truth.

Throttled DynamoDB requests, deliveries redelivered after their visibility timeout, deliveries handed over three
times and out of order, Shopify's eight retries of one webhook, refunds and cancellations before their order, a worker
process killed in the middle of a batch, a poison message in the DLQ re-driven once its cause is gone. The traffic is
Shopify's published payloads (tests/fixtures) with planned lines; the truth is worked out by hand from what was sent
(tests/support/truth.py), never by reclift's code. Every counter, attribution and revenue total is compared.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from reclift_local.pollers import sqs_record
from tests.support.aws import EmulatedAws, process_stream
from tests.support.faults import dynamodb_throttling
from tests.support.shopify import (
    admin_event,
    new_shop,
    proxy_event,
    proxy_query,
    webhook_event,
)
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for_value
from tests.support.truth import (
    PlannedOrder,
    actual_counters,
    actual_report,
    attributed_line_indexes,
    cancellation_json,
    events_for,
    expected_counters,
    expected_report,
    order_json,
    plan,
    refund_json,
)

REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:reclift-webhooks"
THROTTLED_SHARE = 0.2
SHOPIFY_RETRIES = 8  # Shopify re-sends a delivery it got no 2xx for up to 8 times, under the same webhook id


# ------------------------------------------------------------------------------------------------ traffic
def track(aws: EmulatedAws, shop: str, order: PlannedOrder) -> int:
    body = json.dumps({"events": events_for(shop, order)}).encode()
    query = proxy_query(shop, order.customer_id or "")
    response: dict[str, Any] = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", query, body))
    process_stream(aws, "CountingFunction")  # the counting function reads the events table's stream
    return int(response["statusCode"])


def post_webhook(aws: EmulatedAws, shop: str, body: bytes, *, topic: str, webhook_id: str) -> None:
    event = webhook_event(shop, body, topic=topic, webhook_id=webhook_id)
    response = aws.invoke("WebhookFunction", event)
    assert response["statusCode"] == 200, response


@dataclass
class QueueRun:
    """What handing the queue to the AttributionFunction took."""

    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    redelivered: int = 0  # records whose ApproximateReceiveCount was above 1
    receive_counts: list[int] = field(default_factory=list)


def drain(aws: EmulatedAws, *, rng: random.Random, copies: int = 1, rounds: int = 400) -> QueueRun:
    """Hand every queued delivery to the AttributionFunction as Lambda's poller would, until the queue is empty:
    batches of 10, what failed made visible again. Each round takes every visible message and shuffles it (SQS
    promises no order); with `copies` > 1 each message is handed over that many times, in different batches, before
    it is deleted (SQS's at-least-once delivery)."""
    sqs, url = aws.client("sqs"), aws.resource("WebhookQueue")
    run = QueueRun()
    for _ in range(rounds):
        messages: list[dict[str, Any]] = []
        while batch := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=120, AttributeNames=["All"]
        ).get("Messages", []):
            messages += batch
        if not messages:
            if not in_flight(sqs, url):
                return run
            time.sleep(0.25)  # some are invisible still (a visibility timeout running): wait for them
            continue
        for message in messages:
            count = int(message["Attributes"]["ApproximateReceiveCount"])
            run.receive_counts.append(count)
            run.redelivered += count > 1
        handed = [message for message in messages for _ in range(copies)]
        rng.shuffle(handed)
        failed: set[str] = set()
        for start in range(0, len(handed), 10):
            records = [sqs_record(message, QUEUE_ARN, REGION) for message in handed[start : start + 10]]
            run.invocations += 1
            run.records += len(records)
            try:
                result = aws.invoke("AttributionFunction", {"Records": records})
                failures = {failure["itemIdentifier"] for failure in result["batchItemFailures"]}
            except BatchProcessingError:
                failures = {record["messageId"] for record in records}
            run.failed_records += len(failures)
            failed |= failures
        for message in {m["MessageId"]: m for m in messages}.values():
            if message["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"the queue was not empty after {rounds} rounds: {run}")


def in_flight(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def empty_queues(aws: EmulatedAws) -> Iterator[None]:
    """The webhook queue and its DLQ start and end empty (other tests share the emulator)."""
    aws.empty_queues("WebhookQueue", "WebhookDLQ")
    yield
    aws.empty_queues("WebhookQueue", "WebhookDLQ")


def dlq_messages(aws: EmulatedAws) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.resource("WebhookDLQ"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def report(database: str, line: str) -> None:
    """What a fault test survived, on one line (`pytest -rP … | grep '^faults:'` shows them)."""
    print(f"faults: [{database}] {line}")


# ------------------------------------------------------------------------------------------------ the figures
def roi_figures(aws: EmulatedAws, shop: str) -> dict[str, Any]:
    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", shop))
    assert response["statusCode"] == 200, response
    return actual_report(json.loads(response["body"]))


def assert_figures_are_the_truth(
    aws: EmulatedAws,
    shop: str,
    orders: list[PlannedOrder],
    *,
    refunded: set[tuple[int, int]] | None = None,
    cancelled: set[int] | None = None,
) -> None:
    truth = expected_report(orders, refunded=refunded or set(), cancelled=cancelled or set())
    counters = expected_counters(orders, refunded=refunded or set(), cancelled=cancelled or set())

    assert roi_figures(aws, shop) == truth
    assert actual_counters(aws.client("dynamodb"), aws.resource("CountersTable"), shop, counters) == counters


# ------------------------------------------------------------------------------------------------ the faults
def test_given_a_fifth_of_dynamodb_requests_throttled_when_a_store_trades_then_every_figure_is_the_truth(
    aws: EmulatedAws, empty_queues: None, database: str
) -> None:
    """20 % of DynamoDB's answers are ProvisionedThroughputExceededException or ThrottlingException, on every
    function's every request (the tracking writes, the idempotency records, the order transactions, the reports)."""
    shop = new_shop()
    orders = plan(24, seed=11, first_order_id=5_100_000_000)

    with dynamodb_throttling(THROTTLED_SHARE, seed=7) as throttling:
        statuses = [track(aws, shop, order) for order in orders]
        now = datetime.now(UTC)  # the orders are placed after their buyers' events
        for order in orders:
            post_webhook(
                aws, shop, order_json(order, now, shop=shop), topic="orders/create", webhook_id=f"d-{order.order_id}"
            )
        run = drain(aws, rng=random.Random(3))
        throttled_roi = roi_figures(aws, shop)

    assert statuses == [200] * len(orders)
    assert throttling.total_throttled > 0.15 * throttling.requests  # the fault really was there
    assert throttling.backoff_asked > 0  # and the SDK retried it, backing off (on a shortened clock)
    assert run.records >= len(orders)
    assert dlq_messages(aws) == 0
    assert throttled_roi == expected_report(orders)  # the report, itself read under throttling
    assert_figures_are_the_truth(aws, shop, orders)
    report(
        database,
        f"throttling: {throttling.total_throttled} of {throttling.requests} DynamoDB requests throttled "
        f"({dict(throttling.throttled)}); {run.records} records in {run.invocations} invocations, "
        f"{run.failed_records} failed and retried; the SDK's backoff asked {throttling.backoff_asked:.0f} s and was "
        f"given {throttling.backoff_waited:.1f} s; figures exact",
    )


def test_given_every_delivery_three_times_out_of_order_and_shopifys_eight_retries_then_each_counts_once(
    aws: EmulatedAws, empty_queues: None, database: str
) -> None:
    """Every order is posted by Shopify 1 + 8 times under one webhook id (its retries) and once more under a new id
    (a re-sent order); a refund of one whole line and some cancellations are posted too, each also retried. The
    queue hands each message three times, shuffled: refunds and cancellations may come before their order."""
    shop = new_shop()
    orders = plan(30, seed=12, first_order_id=5_200_000_000)
    attributed = [order for order in orders if attributed_line_indexes(order)]
    refunded = {(order.order_id, attributed_line_indexes(order)[0]) for order in attributed[::3]}
    cancelled = {order.order_id for order in attributed[1::5]}
    for order in orders:
        assert track(aws, shop, order) == 200
    now = datetime.now(UTC)

    deliveries: list[tuple[str, bytes, str]] = []
    for order in orders:
        deliveries += [("orders/create", order_json(order, now, shop=shop), f"d-{order.order_id}")] * (
            1 + SHOPIFY_RETRIES
        )
        deliveries.append(("orders/create", order_json(order, now, shop=shop), f"resent-{order.order_id}"))
    by_id = {order.order_id: order for order in orders}
    for refund_id, (order_id, line) in enumerate(sorted(refunded), start=1):
        deliveries += [("refunds/create", refund_json(by_id[order_id], line, refund_id), f"r-{refund_id}")] * 3
    for order_id in sorted(cancelled):
        deliveries += [("orders/cancelled", cancellation_json(by_id[order_id]), f"c-{order_id}")] * 3
    rng = random.Random(5)
    rng.shuffle(deliveries)
    for topic, body, webhook_id in deliveries:
        post_webhook(aws, shop, body, topic=topic, webhook_id=webhook_id)

    run = drain(aws, rng=rng, copies=3)

    assert refunded
    assert cancelled
    assert run.records >= 3 * len(deliveries)
    assert dlq_messages(aws) == 0
    assert_figures_are_the_truth(aws, shop, orders, refunded=refunded, cancelled=cancelled)
    report(
        database,
        f"duplicates: {len(deliveries)} webhooks for {len(orders)} orders, {len(refunded)} refunds, {len(cancelled)} "
        f"cancellations; {run.records} records handed over (each message 3 times, shuffled), {run.failed_records} "
        f"failed and retried; figures exact",
    )


def test_given_batches_never_deleted_when_the_visibility_timeout_passes_then_the_redelivery_changes_nothing(
    aws: EmulatedAws, empty_queues: None, database: str
) -> None:
    """The consumer processes each batch and dies before deleting it: SQS delivers it again once its visibility
    timeout is over, with a higher receive count, and the second processing must add nothing."""
    shop = new_shop()
    orders = plan(20, seed=13, first_order_id=5_300_000_000)
    for order in orders:
        assert track(aws, shop, order) == 200
    now = datetime.now(UTC)
    for order in orders:
        post_webhook(
            aws, shop, order_json(order, now, shop=shop), topic="orders/create", webhook_id=f"d-{order.order_id}"
        )
    sqs, url = aws.client("sqs"), aws.resource("WebhookQueue")

    first: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5, AttributeNames=["All"]
    ).get("Messages", []):
        first += batch
    for start in range(0, len(first), 10):
        records = [sqs_record(message, QUEUE_ARN, REGION) for message in first[start : start + 10]]
        assert aws.invoke("AttributionFunction", {"Records": records}) == {"batchItemFailures": []}
        # processed, never deleted
    assert_figures_are_the_truth(aws, shop, orders)

    run = drain(aws, rng=random.Random(4))  # waits out the 5 s visibility timeout on the way

    assert len(first) == len(orders)
    assert run.redelivered == len(orders)
    assert min(run.receive_counts) == 2
    assert_figures_are_the_truth(aws, shop, orders)
    report(
        database,
        f"redelivery: {run.redelivered} of {len(orders)} deliveries redelivered after the visibility timeout "
        f"(receive count {min(run.receive_counts)}); figures exact",
    )


# ------------------------------------------------------------------------------------------------ the local stack
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("faults-stack"), database=database) as running:
        yield running


def send_traffic(stack: RunningStack, shop: str, orders: list[PlannedOrder]) -> None:
    """Each buyer's events through the signed app proxy, then their orders as Shopify's webhooks, over HTTP."""
    for order in orders:
        query = proxy_query(shop, order.customer_id or "")
        tracked = requests.post(
            f"{stack.url}/apps/proxy/events?{query}", json={"events": events_for(shop, order)}, timeout=30
        )
        assert tracked.status_code == 200, tracked.text
    now = datetime.now(UTC)
    for order in orders:
        deliver_webhook(stack, shop, order_json(order, now, shop=shop), timeout=30)


def stack_roi(stack: RunningStack, shop: str) -> dict[str, Any]:
    return actual_report(admin_get(stack, shop, "/admin/roi", timeout=60))


def stack_counters(stack: RunningStack, shop: str, products: Collection[str]) -> dict[str, dict[str, Any]]:
    return actual_counters(stack.client("dynamodb"), stack.resource("CountersTable"), shop, products)


def test_given_the_attribution_worker_killed_in_the_middle_of_batches_then_every_figure_is_the_truth(
    stack: RunningStack, database: str
) -> None:
    """SIGKILL to the AttributionFunction's worker process while it holds a batch (Lambda's runtime crashing or
    timing out mid-batch): the batch comes back, its deliveries run again, and nothing is lost or counted twice."""
    shop = new_shop()
    orders = plan(60, seed=14, first_order_id=5_400_000_000)
    dlq_before = stack.queue_depth("WebhookDLQ")
    send_traffic(stack, shop, orders)

    killed: list[int] = []
    deadline = time.monotonic() + 120
    while len(killed) < 3 and time.monotonic() < deadline and stack.queue_depth("WebhookQueue"):
        attribution = stack.status()["functions"]["AttributionFunction"]
        if attribution["in_flight"]:
            for pid in attribution["workers"]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(1.0)
        time.sleep(0.02)
    wait_for_value(lambda: stack.queue_depth("WebhookQueue"), 0, timeout=300, message="the queue to drain")

    errors = stack.status()["functions"]["AttributionFunction"]["errors"]
    assert killed  # the fault really happened
    assert errors >= 1
    assert stack.queue_depth("WebhookDLQ") == dlq_before
    counters = expected_counters(orders)
    assert stack_roi(stack, shop) == expected_report(orders)
    # The traffic's events are counted from the events table's stream, within the counting function's window.
    wait_for_value(lambda: stack_counters(stack, shop, counters), counters, timeout=120, message="the events counted")
    report(
        database,
        f"worker killed: {len(killed)} worker processes SIGKILLed with a batch in flight, {errors} invocations lost "
        "with them; figures exact",
    )


def test_given_a_refund_whose_order_never_came_when_the_order_arrives_then_make_redrive_gets_it_applied(
    stack: RunningStack, database: str
) -> None:
    """An authentic refunds/create for an order not recorded yet cannot be processed: it is retried, then lands in
    the DLQ. Once the order is in (the cause fixed), `make redrive` moves it back and it is applied."""
    shop = new_shop()
    orders = plan(8, seed=15, first_order_id=5_500_000_000)
    refunded_order = next(order for order in orders if attributed_line_indexes(order))
    refunded = {(refunded_order.order_id, attributed_line_indexes(refunded_order)[0])}
    dlq_before = stack.queue_depth("WebhookDLQ")

    refund = refund_json(refunded_order, attributed_line_indexes(refunded_order)[0], 1)
    deliver_webhook(stack, shop, refund, topic="refunds/create", timeout=30)
    wait_for_value(lambda: stack.queue_depth("WebhookDLQ"), dlq_before + 1, timeout=120, message="the DLQ")
    send_traffic(stack, shop, orders)
    wait_for_value(lambda: stack.queue_depth("WebhookQueue"), 0, timeout=120, message="the orders")
    assert stack_roi(stack, shop) == expected_report(orders)  # the refund is not applied yet

    moved = stack.command("redrive")
    assert moved.returncode == 0, moved.stderr
    moved_total = json.loads(moved.stdout)["total"]
    assert moved_total >= 1
    wait_for_value(lambda: stack.queue_depth("WebhookQueue"), 0, timeout=120, message="the redriven refund")

    assert stack.queue_depth("WebhookDLQ") == 0
    counters = expected_counters(orders, refunded=refunded)
    assert stack_roi(stack, shop) == expected_report(orders, refunded=refunded)
    # The traffic's events are counted from the events table's stream, within the counting function's window.
    wait_for_value(lambda: stack_counters(stack, shop, counters), counters, timeout=120, message="the events counted")
    report(
        database, f"poison: a refund before its order reached the DLQ; make redrive moved {moved_total} back; applied"
    )
