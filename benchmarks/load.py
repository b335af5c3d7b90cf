"""Load: 10,000 signed orders and their storefront events through the running local stack, in bursts.

The stack is `python -m reclift_local run --db dynamodb-local` in a subprocess (`make run DB=dynamodb-local`): the
routes, a pool of worker processes per function, the SQS pollers, and the tables in AWS's DynamoDB Local. Five shops
trade at once. Burst after burst, each buyer's events go through the signed app proxy, then the burst's orders/create
webhooks are posted concurrently, and a share of them again under the same webhook id (Shopify's retry of a delivery
whose answer it did not see). The next burst starts once the backlog is below half a burst: moto's SQS (the
emulator's queues) walks every queued message on each SendMessage, so a backlog of thousands would make the emulator,
not reclift, the thing measured.

Once the queue is empty, every shop's figures are read — the ROI report once, the counters by key (BatchGetItem) —
and compared with the truth worked out by hand from what was sent (tests/support/truth.py): nothing lost, nothing
counted twice, to the cent. The figures are the accept latency of the webhooks (p50/p99) and of the storefront
requests, the rates, and how long the backlog took to drain.

Why DynamoDB Local: moto's TransactWriteItems deep-copies every table a transaction touches (its rollback copy) and
its Query walks the whole table, work that grows with the tables (the burst benchmark's 1,000 orders on moto took
417 s until all were visible; profiled, most of the emulator's DynamoDB time was in that copy). DynamoDB Local, like
DynamoDB, does neither.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.truth import (
    SEED,
    PlannedOrder,
    actual_counters,
    actual_report,
    as_json,
    events_for,
    expected_counters,
    expected_report,
    order_json,
    plan,
)

from benchmarks.burst import Client, Sample, downsample, queue_depth, roi
from benchmarks.common import latency_summary, pyplot, save_figure, write_results

NAME = "load"
DESCRIPTION = (
    "10,000 signed orders and their storefront events through the running local stack (tables in DynamoDB Local), "
    "in bursts, five shops at once, 5 % of the webhooks delivered twice: accept latency p50/p99, rates, and every "
    "shop's report and counters checked exactly against totals worked out by hand (nothing lost, nothing twice)"
)
THREADS = 8
SHOPS = 5
SHOPIFY_RETRY_SHARE = 0.05
BACKLOG_SHARE = 0.5  # the next burst waits until fewer than this share of a burst is queued


def burst_traffic(
    client: Client, shops: list[str], burst: list[tuple[int, PlannedOrder]], rng: random.Random
) -> tuple[list[Sample], list[Sample], int]:
    """One burst: the buyers' events, then their orders (some twice). Returns the storefront and webhook samples
    and how many webhooks were repeats."""
    from tests.support.shopify import proxy_query, webhook_request

    def track(item: tuple[int, PlannedOrder]) -> Sample:
        shop, order = shops[item[0]], item[1]
        query = proxy_query(shop, order.customer_id or "")
        return client.timed(
            "storefront", "POST", f"/apps/proxy/events?{query}", json={"events": events_for(shop, order)}
        )

    with ThreadPoolExecutor(THREADS) as pool:
        storefront = list(pool.map(track, burst))
    now = datetime.now(UTC)  # every order of the burst is placed after its buyer's events
    deliveries = [
        webhook_request(shops[index], order_json(order, now, shop=shops[index]), webhook_id=f"load-{order.order_id}")
        for index, order in burst
    ]
    repeats = [delivery for delivery in deliveries if rng.random() < SHOPIFY_RETRY_SHARE]

    def post(delivery: tuple[list[tuple[str, str]], bytes]) -> Sample:
        headers, body = delivery
        return client.timed("webhook", "POST", "/webhooks/orders/create", data=body, headers=dict(headers))

    with ThreadPoolExecutor(THREADS) as pool:
        webhooks = list(pool.map(post, deliveries + repeats))
    return storefront, webhooks, len(repeats)


def verify(stack: Any, client: Client, shops: list[str], by_shop: list[list[PlannedOrder]]) -> dict[str, Any]:
    """Each shop's ROI report and counters against the truth."""
    dynamodb = stack.client("dynamodb")
    table = stack.resource("CountersTable")
    shops_out: list[dict[str, Any]] = []
    for shop, orders in zip(shops, by_shop, strict=True):
        expected, counters = expected_report(orders), expected_counters(orders)
        started = time.monotonic()
        actual = actual_report(roi(client, shop))
        report_s = time.monotonic() - started
        started = time.monotonic()
        stored = actual_counters(dynamodb, table, shop, counters)
        counters_s = time.monotonic() - started
        mismatched = sorted(key for key in expected if expected[key] != actual.get(key))
        mismatched += sorted(f"counter:{key}" for key in counters if counters[key] != stored.get(key))
        shops_out.append(
            {
                "orders": len(orders),
                "exact": not mismatched,
                "mismatched": mismatched,
                "expected": {k: v for k, v in as_json(expected).items() if k != "by_product"},
                "counted": {k: v for k, v in as_json(actual).items() if k != "by_product"},
                "read_report_s": report_s,
                "read_counters_s": counters_s,
            }
        )
    return {"shops": shops_out}


def run(quick: bool) -> list[str]:
    from tests.support.shopify import new_shop
    from tests.support.stack import running_stack

    count = 300 if quick else 10_000
    burst_size = 100 if quick else 500
    deadline_s = 600.0 if quick else 5400.0
    config = {
        "orders": count,
        "burst_size": burst_size,
        "shops": SHOPS,
        "threads": THREADS,
        "seed": SEED,
        "shopify_retry_share": SHOPIFY_RETRY_SHARE,
        "next_burst_when_queued_below": int(burst_size * BACKLOG_SHARE),
        "database": "dynamodb-local",
        "quick": quick,
    }
    orders = plan(count)
    shops = [new_shop() for _ in range(SHOPS)]
    assigned = [(index % SHOPS, order) for index, order in enumerate(orders)]
    by_shop = [[order for shop, order in assigned if shop == index] for index in range(SHOPS)]
    rng = random.Random(SEED)

    with tempfile.TemporaryDirectory(prefix="reclift-load-") as tmp:
        started = time.monotonic()
        with running_stack(Path(tmp), database="dynamodb-local", startup_seconds=180) as stack:
            startup_s = time.monotonic() - started
            client = Client(stack.url)
            sqs = stack.client("sqs")
            queue = stack.resource("WebhookQueue")
            storefront: list[Sample] = []
            webhooks: list[Sample] = []
            repeats = 0
            backlog: list[tuple[float, int, int]] = []  # seconds, webhooks accepted so far, messages queued
            load_started = time.monotonic()
            for start in range(0, count, burst_size):
                while queue_depth(sqs, queue) >= burst_size * BACKLOG_SHARE:
                    time.sleep(1.0)
                tracked, posted, repeated = burst_traffic(client, shops, assigned[start : start + burst_size], rng)
                storefront += tracked
                webhooks += posted
                repeats += repeated
                elapsed = time.monotonic() - load_started
                depth = queue_depth(sqs, queue)
                backlog.append((elapsed, len(webhooks), depth))
                print(f"  {start + burst_size} orders sent after {elapsed:.0f} s; {depth} queued", file=sys.stderr)
            sent_s = time.monotonic() - load_started
            while (depth := queue_depth(sqs, queue)) and time.monotonic() - load_started < deadline_s:
                backlog.append((time.monotonic() - load_started, len(webhooks), depth))
                time.sleep(2.0)
            drained_s = time.monotonic() - load_started
            backlog.append((drained_s, len(webhooks), depth))
            dlq = queue_depth(sqs, stack.resource("WebhookDLQ"))
            verification = verify(stack, client, shops, by_shop)
            functions = stack.status()["functions"]

    figures = analyse(
        storefront=storefront,
        webhooks=webhooks,
        repeats=repeats,
        orders=orders,
        events=sum(len(order.events) for order in orders),
        startup_s=startup_s,
        sent_s=sent_s,
        drained_s=drained_s,
        queue_after=depth,
        dlq_after=dlq,
        verification=verification,
        backlog=backlog,
        functions=functions,
    )
    write_results(NAME, description=DESCRIPTION, config=config, figures=figures)
    plot(webhooks, storefront, figures["backlog"], count)
    return summary_lines(figures)


def analyse(
    *,
    storefront: list[Sample],
    webhooks: list[Sample],
    repeats: int,
    orders: list[PlannedOrder],
    events: int,
    startup_s: float,
    sent_s: float,
    drained_s: float,
    queue_after: int,
    dlq_after: int,
    verification: dict[str, Any],
    backlog: list[tuple[float, int, int]],
    functions: dict[str, Any],
) -> dict[str, Any]:
    shops = verification["shops"]
    counted_orders = sum(int(shop["counted"]["orders"]) for shop in shops)
    return {
        "stack_startup_s": startup_s,
        "orders": len(orders),
        "lines": sum(len(order.lines) for order in orders),
        "storefront_events": events,
        "webhooks_posted": len(webhooks),
        "webhooks_repeated": repeats,
        "accept": {
            "responses_by_status": dict(sorted(Counter(str(s.status) for s in webhooks).items())),
            "latency": latency_summary([s.seconds * 1000 for s in webhooks]),
        },
        "storefront": {
            "responses_by_status": dict(sorted(Counter(str(s.status) for s in storefront).items())),
            "latency": latency_summary([s.seconds * 1000 for s in storefront]),
        },
        "all_sent_after_s": sent_s,
        "webhooks_accepted_per_s": len(webhooks) / sent_s if sent_s > 0 else None,
        "queue_drained_after_s": drained_s,
        "orders_processed_per_s": len(orders) / drained_s if drained_s > 0 else None,
        "webhook_queue_depth_after": queue_after,
        "dlq_depth_after": dlq_after,
        "orders_counted": counted_orders,
        "orders_lost": max(0, len(orders) - counted_orders),
        "orders_counted_twice": max(0, counted_orders - len(orders)),
        "exact": all(shop["exact"] for shop in shops) and queue_after == 0 and dlq_after == 0,
        "verification": verification,
        "functions": {
            name: {k: v for k, v in stats.items() if k != "workers"} | {"workers": len(stats.get("workers", []))}
            for name, stats in sorted(functions.items())
        },
        "backlog": [{"s": t, "accepted": a, "queued": q} for t, a, q in downsample(backlog, 120)],
    }


def plot(webhooks: list[Sample], storefront: list[Sample], backlog: list[dict[str, Any]], count: int) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    values = {
        "POST /webhooks/orders/create": [s.seconds * 1000 for s in webhooks],
        "POST /apps/proxy/events": [s.seconds * 1000 for s in storefront],
    }
    low = max(0.1, min(min(v) for v in values.values()))
    high = max(max(v) for v in values.values())
    bins = [low * (high / low) ** (i / 40) for i in range(41)]
    for label, rows in values.items():
        left.hist(rows, bins=bins, alpha=0.6, label=f"{label} (n={len(rows)})")
    left.set(xscale="log", xlabel="latency, ms (log)", ylabel="requests", title="Accept latency under load")
    left.legend(fontsize=7)
    right.plot([row["s"] for row in backlog], [row["accepted"] for row in backlog], label="webhooks accepted (200)")
    right.plot([row["s"] for row in backlog], [row["queued"] for row in backlog], label="WebhookQueue backlog")
    right.set(xlabel="seconds since the first burst", ylabel="messages", title=f"{count} orders in bursts")
    right.legend(fontsize=7)
    save_figure(fig, NAME)


def summary_lines(figures: dict[str, Any]) -> list[str]:
    accept = figures["accept"]["latency"]
    front = figures["storefront"]["latency"]
    mismatched = [m for shop in figures["verification"]["shops"] for m in shop["mismatched"]]
    return [
        f"load: {figures['orders']} orders ({figures['lines']} lines, {figures['storefront_events']} storefront "
        f"events) in {len(figures['verification']['shops'])} shops; {figures['webhooks_posted']} webhooks "
        f"({figures['webhooks_repeated']} repeated) {figures['accept']['responses_by_status']}",
        f"  accept latency p50 {accept['p50_ms']:.1f} ms, p99 {accept['p99_ms']:.1f} ms; storefront p50 "
        f"{front['p50_ms']:.1f} ms, p99 {front['p99_ms']:.1f} ms",
        f"  all sent after {figures['all_sent_after_s']:.0f} s; queue drained after "
        f"{figures['queue_drained_after_s']:.0f} s ({figures['orders_processed_per_s']:.1f} orders/s); queue "
        f"{figures['webhook_queue_depth_after']}, DLQ {figures['dlq_depth_after']}",
        f"  exact: {figures['exact']}; orders counted {figures['orders_counted']}, lost {figures['orders_lost']}, "
        f"counted twice {figures['orders_counted_twice']}" + (f"; mismatched: {mismatched}" if mismatched else ""),
    ]
