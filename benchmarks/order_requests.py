"""DynamoDB requests per order: bounded, and independent of how many events the buyer left before ordering.

Each order is processed as production processes it: the storefront events go through the StorefrontFunction, the
signed webhook through the WebhookFunction, the envelope it queued is taken off the WebhookQueue with boto3 and
handed to the AttributionFunction as an SQS event; all in this process against the emulator (the tables in AWS's
DynamoDB Local), with the template's environment. Only the AttributionFunction invocation is counted, at the botocore
level, and metered: the read and write capacity units its DynamoDB requests consumed (ReturnConsumedCapacity, a
transaction costed per item at AWS's 2x; `benchmarks.common.CapacityMeter`).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import (
    ApiCallCounter,
    Block,
    Capacity,
    CapacityMeter,
    calls_by_operation,
    counted_and_metered,
    logical_names,
    pyplot,
    quiet_stdout,
    save_figure,
    write_results,
)

NAME = "order_requests"
DESCRIPTION = (
    "AWS requests (botocore level) and DynamoDB capacity units (RCU, WCU; transactions at 2x, on DynamoDB Local) of "
    "one AttributionFunction invocation processing one orders/create delivery, by order size and by the number of "
    "the buyer's prior storefront events"
)
LINES = (1, 3, 25)
PRIOR_EVENTS = (0, 20, 200)
IDEMPOTENCY_TABLE = "IdempotencyTable"
EVENTS_PER_REQUEST = 50  # the storefront endpoint's limit
SHOWN_PER_IMPRESSION = 5
PRICES = ("19.99", "5.00", "42.50", "7.25", "120.00")
DISCOUNTS = ("0.00", "1.00", "0.00", "2.50")


@dataclass(frozen=True)
class Case:
    lines: int
    prior_events: int
    page: str | None = None  # the product page the widget was on (signed in its rec ids), or a version-1 id


_ISSUED: dict[tuple[str, str, int, str | None], str] = {}


def rec_id(shop: str, visitor: str, pair: int, products: list[str], page: str | None = None) -> str:
    """The rec id the server issued for impression `pair` (it listed `shown_in(pair, products)` to the visitor, on
    the page of the product `page` when given): events count only when they cite one (reclift.recids, under the
    development secret the stack runs with)."""
    key = (shop, visitor, pair, page)
    if key not in _ISSUED:
        from reclift.recids import RecIds
        from reclift_local.sign import DEV_API_SECRET

        _ISSUED[key] = RecIds.of_secrets([DEV_API_SECRET]).issue(
            shop=shop,
            visitor_id=visitor,
            arm="learning",
            placement="product",
            products=shown_in(pair, products),
            now=datetime.now(UTC),
            page=page,
        )
    return _ISSUED[key]


def shown_in(pair: int, products: list[str]) -> list[str]:
    """The products impression `pair` shows: a sliding window over the ordered products."""
    count = min(SHOWN_PER_IMPRESSION, len(products))
    return list(dict.fromkeys(products[(SHOWN_PER_IMPRESSION * pair + j) % len(products)] for j in range(count)))


def storefront_events(
    shop: str, products: list[str], count: int, visitor: str, page: str | None = None
) -> list[dict[str, Any]]:
    """`count` events alternating an impression of some ordered products and a click on the first one shown, each
    about its own recommendation (its rec id and event fields)."""
    events: list[dict[str, Any]] = []
    for index in range(count):
        pair = index // 2
        shown = shown_in(pair, products)
        about = {"rec_id": rec_id(shop, visitor, pair, products, page), "rec_products": shown, "visitor_id": visitor}
        if index % 2 == 0:
            events.append(
                {
                    "type": "impression",
                    "placement": "product",
                    "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(shown)],
                }
                | about
            )
        else:
            events.append({"type": "click", "product_id": shown[0], "position": 1} | about)
    return events


def order_lines(shop: str, visitor: str, products: list[str], page: str | None = None) -> list[dict[str, Any]]:
    """The same order whatever the prior events: every other line carries the `_rec_id` of the first impression
    that showed its product (in the 20-event pattern), the rest rely on the visitor's clicks and impressions."""
    lines: list[dict[str, Any]] = []
    for index, product in enumerate(products):
        line: dict[str, Any] = {
            "product_id": int(product),
            "price": PRICES[index % len(PRICES)],
            "quantity": 1 + index % 3,
            "discount": DISCOUNTS[index % len(DISCOUNTS)],
        }
        if index % 2 == 0:
            pair = next(p for p in range(10) if product in shown_in(p, products))
            line["rec_id"] = rec_id(shop, visitor, pair, products, page)
        lines.append(line)
    return lines


class Harness:
    """The emulated stack, its queue and the counter; runs one order through the functions."""

    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self.sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name="us-east-1")
        self.queue_url = aws.resource("WebhookQueue")
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.counter = ApiCallCounter(names=logical_names(aws))
        self.meter = CapacityMeter(logical_names(aws))
        self.next_order_id = 5_400_000_000

    def track(self, shop: str, events: list[dict[str, Any]]) -> None:
        from tests.support.shopify import proxy_event, proxy_query

        for start in range(0, len(events), EVENTS_PER_REQUEST):
            chunk = events[start : start + EVENTS_PER_REQUEST]
            body = json.dumps({"events": chunk}).encode()
            response = self.aws.invoke(
                "StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body)
            )
            if response["statusCode"] != 200:
                raise RuntimeError(f"the storefront refused the events: {response}")

    def deliver(self, shop: str, order: dict[str, Any], webhook_id: str | None = None) -> dict[str, Any]:
        """The signed webhook through the WebhookFunction; returns the SQS record of the message it queued."""
        from tests.support.shopify import webhook_event

        from reclift_local.pollers import sqs_record

        event = webhook_event(shop, json.dumps(order).encode(), webhook_id=webhook_id)
        response = self.aws.invoke("WebhookFunction", event)
        if response["statusCode"] != 200:
            raise RuntimeError(f"the webhook was refused: {response}")
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if len(messages) != 1:
            raise RuntimeError(f"expected one queued delivery, found {len(messages)}")
        [message] = messages
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sqs_record(message, self.queue_arn, "us-east-1")

    def attribute(self, record: dict[str, Any]) -> tuple[Block, Capacity, float]:
        """One AttributionFunction invocation with the record; its AWS requests, their capacity units and its
        duration."""
        with counted_and_metered(self.counter, self.meter) as (calls, capacity):
            started = time.perf_counter()
            result = self.aws.invoke("AttributionFunction", {"Records": [record]})
            elapsed = time.perf_counter() - started
        if result.get("batchItemFailures"):
            raise RuntimeError(f"the delivery failed: {result}")
        return calls, capacity, elapsed

    def attributed_lines(self, shop: str) -> int:
        from tests.support.shopify import admin_event

        response = self.aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", shop))
        if response["statusCode"] != 200:
            raise RuntimeError(f"the ROI report failed: {response}")
        return int(json.loads(response["body"])["attributed_lines"])

    def new_order(self, case: Case) -> tuple[str, dict[str, Any]]:
        from tests.support.shopify import new_shop, order_payload

        shop = new_shop()
        visitor = f"v-{uuid.uuid4().hex[:10]}"
        products = [str(8_100_000 + index) for index in range(case.lines)]
        self.track(shop, storefront_events(shop, products, case.prior_events, visitor, case.page))
        self.next_order_id += 1
        order = order_payload(
            order_id=self.next_order_id,
            created_at=datetime.now(UTC),
            visitor_id=visitor,
            lines=order_lines(shop, visitor, products, case.page),
        )
        return shop, order


def summarise(block: Block, capacity: Capacity) -> dict[str, Any]:
    calls = block.calls
    app = Counter({call: n for call, n in calls.items() if call.target != IDEMPOTENCY_TABLE})
    idempotency = Counter({call: n for call, n in calls.items() if call.target == IDEMPOTENCY_TABLE})
    return {
        "requests": sum(calls.values()),
        "dynamodb_requests": sum(n for call, n in calls.items() if call.service == "dynamodb"),
        "app_table_requests": sum(app.values()),
        "idempotency_requests": sum(idempotency.values()),
        "by_operation": calls_by_operation(app),
        "idempotency_by_operation": calls_by_operation(idempotency),
        # Bounded requests still read every event of the buyer in the window: the items the queries returned.
        "items_read": sum(block.items.values()),
        "items_read_by_operation": calls_by_operation(block.items),
    } | capacity.units()


def run(quick: bool) -> list[str]:
    from tests.support.aws import emulated_aws

    repeats = 1 if quick else 3
    config = {"lines": list(LINES), "prior_events": list(PRIOR_EVENTS), "repeats_per_case": repeats, "quick": quick}
    cases = [Case(lines, prior) for lines in LINES for prior in PRIOR_EVENTS]
    results: list[dict[str, Any]] = []
    config["engine"] = "dynamodb-local (capacity units as it reports them; transactions per item at 2x)"
    with (
        tempfile.TemporaryDirectory(prefix="reclift-bench-") as tmp,
        quiet_stdout(),
        emulated_aws(Path(tmp), database="dynamodb-local") as aws,
    ):
        harness = Harness(aws)
        # The first order of an execution environment also creates its clients: measured, reported apart.
        shop, order = harness.new_order(Case(3, 20))
        first_calls, first_capacity, _ = harness.attribute(harness.deliver(shop, order))
        first = summarise(first_calls, first_capacity)

        for case in cases:
            counts: list[Block] = []
            units: list[Capacity] = []
            durations: list[float] = []
            attributed: list[int] = []
            for _ in range(repeats):
                shop, order = harness.new_order(case)
                calls, capacity, elapsed = harness.attribute(harness.deliver(shop, order))
                counts.append(calls)
                units.append(capacity)
                durations.append(elapsed)
                attributed.append(harness.attributed_lines(shop))
            summary = summarise(counts[0], units[0])
            results.append(
                {
                    "lines": case.lines,
                    "prior_events": case.prior_events,
                    **summary,
                    "identical_across_repeats": all(c.calls == counts[0].calls for c in counts),
                    "same_units_across_repeats": all(u.units() == units[0].units() for u in units),
                    "attributed_lines": attributed[0],
                    "invocation_ms_median": sorted(durations)[len(durations) // 2] * 1000,
                }
            )
            print(
                f"  {case.lines:>2} lines, {case.prior_events:>3} prior events: {summary['requests']}", file=sys.stderr
            )

        # Redeliveries: the same delivery id again (Powertools idempotency answers), and the same order under a new
        # webhook id (the conditional writes find it already recorded).
        shop, order = harness.new_order(Case(3, 20))
        record = harness.deliver(shop, order, webhook_id=str(uuid.uuid4()))
        harness.attribute(record)
        same_delivery, same_capacity, _ = harness.attribute(record)
        new_delivery, new_capacity, _ = harness.attribute(harness.deliver(shop, order, webhook_id=str(uuid.uuid4())))
        redelivery = {
            "same_webhook_id": summarise(same_delivery, same_capacity),
            "same_order_new_webhook_id": summarise(new_delivery, new_capacity),
            "attributed_lines_after": harness.attributed_lines(shop),
        }

    figures = analyse(results, first, redelivery)
    write_results(NAME, description=DESCRIPTION, config=config, figures=figures)
    plot(results)
    return summary_lines(figures)


def analyse(results: list[dict[str, Any]], first: dict[str, Any], redelivery: dict[str, Any]) -> dict[str, Any]:
    by_case = {(r["lines"], r["prior_events"]): r for r in results}
    independent = {
        str(lines): len({by_case[(lines, prior)]["requests"] for prior in PRIOR_EVENTS if prior > 0}) == 1
        for lines in LINES
    }
    return {
        "cases": results,
        "max_requests_per_order": max(r["requests"] for r in results),
        "max_idempotency_requests_per_order": max(r["idempotency_requests"] for r in results),
        "same_count_for_20_and_200_prior_events": independent,
        "first_invocation_of_environment": first,
        "redelivery": redelivery,
    }


STYLES = (("o", "-", 9), ("s", "--", 7), ("^", ":", 5))  # marker, line style, marker size: overlaps stay visible


def plot(results: list[dict[str, Any]]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (marker, style, size), prior in zip(STYLES, PRIOR_EVENTS, strict=True):
        rows = [r for r in results if r["prior_events"] == prior]
        left.plot(
            [r["lines"] for r in rows],
            [r["requests"] for r in rows],
            marker=marker,
            linestyle=style,
            markersize=size,
            label=f"{prior} prior events",
        )
    rows = [r for r in results if r["prior_events"] == PRIOR_EVENTS[1]]
    left.plot(
        [r["lines"] for r in rows],
        [r["idempotency_requests"] for r in rows],
        linestyle="-.",
        color="grey",
        label="of which idempotency table",
    )
    left.set(xlabel="order lines", ylabel="AWS requests per order", title="Requests vs. order lines", xscale="log")
    left.set_xticks(list(LINES), [str(n) for n in LINES])
    left.set_ylim(0, max(r["requests"] for r in results) * 1.3)
    left.legend(fontsize=8, loc="upper left")
    for (marker, style, size), lines in zip(STYLES, LINES, strict=True):
        rows = [r for r in results if r["lines"] == lines]
        right.plot(
            [r["prior_events"] for r in rows],
            [r["requests"] for r in rows],
            marker=marker,
            linestyle=style,
            markersize=size,
            label=f"{lines} lines: requests",
        )
    right.set(
        xlabel="prior storefront events of the buyer",
        ylabel="AWS requests per order",
        title="Requests (and items read) vs. prior events",
        xscale="symlog",
    )
    right.set_xticks(list(PRIOR_EVENTS), [str(n) for n in PRIOR_EVENTS])
    right.set_ylim(0, max(r["requests"] for r in results) * 1.3)
    items = right.twinx()
    rows = [r for r in results if r["lines"] == LINES[-1]]
    items.plot(
        [r["prior_events"] for r in rows],
        [r["items_read"] for r in rows],
        color="grey",
        linestyle="-.",
        label=f"{LINES[-1]} lines: items read",
    )
    items.set(ylabel="items read per order", yscale="symlog")
    handles, labels = right.get_legend_handles_labels()
    more_handles, more_labels = items.get_legend_handles_labels()
    right.legend(handles + more_handles, labels + more_labels, fontsize=8, loc="upper center")
    save_figure(fig, NAME)


def summary_lines(figures: dict[str, Any]) -> list[str]:
    lines = [
        "order_requests: AWS requests and DynamoDB capacity units per order (AttributionFunction, botocore level; "
        "idempotency included; DynamoDB Local, transactions at 2x)"
    ]
    lines.append(
        f"  {'lines':>5} {'prior':>5} {'total':>5} {'app':>4} {'idem':>4} {'items':>5} {'WCU':>6} {'RCU':>5}  "
        "operations (app tables)"
    )
    for row in figures["cases"]:
        ops = ", ".join(f"{k.split(':', 1)[1]}×{v}" for k, v in row["by_operation"].items())
        lines.append(
            f"  {row['lines']:>5} {row['prior_events']:>5} {row['requests']:>5} {row['app_table_requests']:>4} "
            f"{row['idempotency_requests']:>4} {row['items_read']:>5} {row['wcu']:>6.1f} {row['rcu']:>5.1f}  {ops}"
        )
    same = figures["same_count_for_20_and_200_prior_events"]
    lines.append(f"  max {figures['max_requests_per_order']} per order; same count at 20 and 200 prior events: {same}")
    redelivery = figures["redelivery"]
    lines.append(
        f"  redelivery: same webhook id {redelivery['same_webhook_id']['requests']} requests, "
        f"same order under a new webhook id {redelivery['same_order_new_webhook_id']['requests']}"
    )
    return lines
