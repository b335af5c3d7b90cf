"""What the nightly order replay costs a shop: DynamoDB capacity units, Admin API requests and cost points, SQS
messages and Lambda time, per order read and in dollars per shop and month, as the shop's orders grow.

End to end on AWS's DynamoDB Local against the fake Admin API (a real HTTP server with Shopify's shapes and cost
arithmetic): BackfillFunction's own handler (warm) works the night's replay job of a shop whose orders of the last
26 hours were recorded by the attribution's own code (`attribute_order` and the store's `record_order`, every line
credited: the most items an order of its size keeps), every DynamoDB request metered (ReturnConsumedCapacity).
Three nights per size: nothing dropped (every night but a bad one), a tenth of the orders dropped (their creations
queued), and orders of 100 lines (the most items an order's reading could meet).

Billed Lambda time is the handler's compute (its time less DynamoDB Local's) plus, per request, a same-region
DynamoDB round trip, plus the wait for Shopify: an Admin API round trip per query or, when longer, the points spent at
the standard plans' restore rate, which the client paces itself to (the round trips and the rate are assumed, and
named in the results; the points are the fake's arithmetic of Shopify's cost rules, not measured on Shopify).
Prices are those of `benchmarks.cost` (us-east-1 list prices).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ApiCallCounter,
    CapacityMeter,
    WarmFunction,
    calls_by_operation,
    logical_names,
    pyplot,
    run_job,
    save_figure,
    write_results,
)
from benchmarks.cost import AWS_ROUND_TRIP_S, MEMORY_GB, PRICE, billed_seconds

NAME = "replay"
DESCRIPTION = (
    "The nightly order replay of one shop on DynamoDB Local against the fake Admin API: capacity units, Admin API "
    "requests and points, SQS messages and billed Lambda time per order read, and dollars per shop and month"
)
SIZES = (10, 100, 1_000)  # orders updated in the night's 26 hours
QUICK_SIZES = (10, 100)
LINES = 3
WIDE = {"orders": 20, "lines": 100}
DROPPED_SHARE = 0.1
ADMIN_ROUND_TRIP_S = 0.3  # assumed: one Admin GraphQL query answered by Shopify, as Lambda waits for it
STANDARD_RESTORE_RATE = 100.0  # cost points a second on Shopify's standard plans: the client paces itself to it
TOKEN = "shpat_bench"  # noqa: S105 - the fake's token
TOKEN_PREFIX = "/reclift/admin-tokens/"  # noqa: S105 - the template parameter's default, a name
NIGHTS_A_MONTH = 30
# a target: nothing dropped, reading an order back costs at most one read unit (a Query of its few items)
MAX_RCU_PER_ORDER = 1.0


def _orders(count: int, lines: int, now: datetime) -> list[dict[str, Any]]:
    from tests.support.shopify import order_payload

    orders = []
    for n in range(count):
        placed = now - timedelta(minutes=1 + n * 1_000 // max(count, 1))
        specs = [{"product_id": 5_000 + (n + line) % 400, "price": "19.90", "quantity": 1} for line in range(lines)]
        payload = order_payload(order_id=70_000 + n, created_at=placed, lines=specs, visitor_id=f"v{n}")
        orders.append(payload | {"updated_at": placed.isoformat()})
    return orders


def _night(aws: Any, backfill: WarmFunction, label: str, count: int, lines: int, dropped: float) -> dict[str, Any]:
    from tests.support.aws import queued

    from reclift.attribution import Touch, TouchKind, Windows, attribute_order
    from reclift.data.store import dynamo_store
    from reclift.orders import parse_order
    from reclift_local.fake_admin import FakeAdminApi, FakeOrder
    from reclift_local.worker import function_env

    shop = f"bench-replay-{label}-{count}.myshopify.com"
    now = datetime.now(UTC).replace(microsecond=0)
    orders = _orders(count, lines, now)
    lost = int(count * dropped)
    with function_env(aws.environment("AttributionFunction")):
        store = dynamo_store()
        for payload in orders[lost:]:  # delivered; the first `lost` were dropped by Shopify
            order = parse_order(payload)
            # every line credited to a click a minute before: the most items an order of its size keeps
            click = Touch(
                f"e{order.order_id}", TouchKind.CLICK, order.created_at - timedelta(minutes=1), order.product_ids
            )
            store.record_order(shop, attribute_order(order, [click], Windows.of_days(7, 1)))
    aws.client("ssm").put_parameter(Name=f"{TOKEN_PREFIX}{shop}", Value=TOKEN, Type="SecureString", Overwrite=True)
    fake_orders = [FakeOrder.from_webhook(payload) for payload in orders]
    with FakeAdminApi(shop, TOKEN, orders=fake_orders, restore_rate=1e6) as fake:
        os.environ["RECLIFT_ADMIN_API_URL"] = fake.url
        counter, meter = ApiCallCounter(names=logical_names(aws)), CapacityMeter(logical_names(aws))
        job = {"shop": shop, "what": "replay", "since": (now - timedelta(hours=26)).isoformat()}
        block, capacity, seconds = run_job(backfill, counter, meter, job)
        admin_requests, points = len(fake.requests), fake.points_spent
    queued(aws.client("sqs"), aws.resource("WebhookQueue"))  # what the worker would process: the orders' own cost
    dynamodb = calls_by_operation(block.calls, "dynamodb")
    sent = sum(n for key, n in calls_by_operation(block.calls, "sqs").items() if key.startswith("sqs:SendMessage@"))
    requests = sum(dynamodb.values())
    compute = max(seconds - capacity.dynamodb_seconds, 0.0)
    # Lambda waits for Shopify: each query's round trip, or, when longer, the rate limit the client paces itself to
    shopify_s = max(admin_requests * ADMIN_ROUND_TRIP_S, points / STANDARD_RESTORE_RATE)
    billed = billed_seconds(compute + requests * AWS_ROUND_TRIP_S + shopify_s)
    night_usd = (
        capacity.read_units * PRICE["rcu"]
        + capacity.write_units * PRICE["wcu"]
        + PRICE["lambda_request"]
        + billed * MEMORY_GB * PRICE["lambda_gb_second"]
        + (3 + 3 * sent) * PRICE["sqs_request"]  # the job's and each queued delivery's send, receive and delete
    )
    return {
        "night": label,
        "orders": count,
        "lines": lines,
        "dropped": lost,
        "deliveries_queued": sent,
        "dynamodb_requests": dynamodb,
        "rcu": capacity.read_units,
        "wcu": capacity.write_units,
        "rcu_per_order": capacity.read_units / count,
        "admin_requests": admin_requests,
        "admin_points": points,
        "admin_points_per_order": points / count,
        "shopify_wait_s": shopify_s,
        "share_of_a_days_rate_limit": points / (STANDARD_RESTORE_RATE * 86_400),
        "handler_s": seconds,
        "billed_s": billed,
        "usd_per_night": night_usd,
        "usd_per_month": night_usd * NIGHTS_A_MONTH,
    }


def measure(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    from tests.support.aws import emulated_aws, forget_execution_environment

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        forget_execution_environment()
        backfill = WarmFunction(aws, "BackfillFunction")
        for count in sizes:
            rows.append(_night(aws, backfill, "recorded", count, LINES, 0.0))
            rows.append(_night(aws, backfill, "dropped", count, LINES, DROPPED_SHARE))
        rows.append(_night(aws, backfill, "wide", WIDE["orders"], WIDE["lines"], 0.0))
        forget_execution_environment()
    return rows


def run(quick: bool) -> list[str]:
    sizes = QUICK_SIZES if quick else SIZES
    rows = measure(sizes)
    recorded = [row for row in rows if row["night"] == "recorded"]
    growth = recorded[-1]["rcu_per_order"] / recorded[0]["rcu_per_order"]
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "sizes": sizes,
            "lines": LINES,
            "wide": WIDE,
            "dropped_share": DROPPED_SHARE,
            "engine": "dynamodb-local",
            "assumed": {
                "admin_round_trip_s": ADMIN_ROUND_TRIP_S,
                "dynamodb_round_trip_s": AWS_ROUND_TRIP_S,
                "standard_restore_rate": STANDARD_RESTORE_RATE,
            },
            "prices_usd": PRICE,
            "memory_gb": MEMORY_GB,
        },
        figures={"nights": rows, "rcu_per_order_growth_smallest_to_largest": growth},
    )
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label, marker in (("recorded", "o"), ("dropped", "s")):
        mine = [row for row in rows if row["night"] == label]
        left.plot([r["orders"] for r in mine], [r["rcu_per_order"] for r in mine], marker=marker, label=label)
        right.plot([r["orders"] for r in mine], [r["usd_per_month"] for r in mine], marker=marker, label=label)
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel(f"orders updated in 26 hours ({LINES} lines each)")
        axis.legend()
    left.set_ylabel("read units per order read")
    left.set_title("DynamoDB per order, as the shop grows")
    right.set_ylabel("USD per shop and month")
    right.set_title("the nightly replay, all in")
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for row in rows:
        lines.append(
            f"  {row['night']:<8} {row['orders']:>5} orders of {row['lines']:>3} lines: {row['rcu']:.1f} RCU "
            f"({row['rcu_per_order']:.2f}/order), {row['wcu']:.1f} WCU, {row['deliveries_queued']} queued, "
            f"{row['admin_requests']} Admin API requests ({row['admin_points_per_order']:.1f} points/order, "
            f"{row['share_of_a_days_rate_limit']:.2%} of a day's rate limit), {row['handler_s']:.2f} s here, "
            f"{row['billed_s']:.1f} s billed; ${row['usd_per_night']:.5f} a night, "
            f"${row['usd_per_month']:.4f} at 30 such"
        )
    lines.append(f"  read units per order, largest shop against smallest: x{growth:.2f}")
    worst = max(row["rcu_per_order"] for row in rows if row["night"] != "wide")
    if worst > MAX_RCU_PER_ORDER:
        raise SystemExit(f"replay: {worst:.2f} read units per order, above {MAX_RCU_PER_ORDER}")
    return lines
