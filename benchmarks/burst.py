"""A burst of signed orders through the running local stack, over real HTTP, checked to the cent.

The stack is `python -m reclift_local run` in a subprocess (what `make run` starts: moto server, the routes, a pool of
worker processes per function, the SQS pollers). First every buyer's storefront events go through the app proxy
(an impression and mostly a click), then the orders/create webhooks are posted concurrently. Interleaved with them,
through the same thread pool, go two trivial requests, so the accept latency has baselines measured under the same
load: the primary one is an unauthenticated `GET /admin/roi` (401 from the AdminFunction: the same gateway-to-worker
path as a webhook, with no AWS work), the other `GET /_local/health` (the gateway alone, no function).

The expected report is worked out independently of reclift's code (tests/support/truth.py), from the generated orders
and DESIGN §2: a line's `_rec_id` (any event of that rec id showing the product) makes it click-through, else the
buyer's click on the product, else an impression of it (view-through); revenue = price × quantity − discount.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import requests
from tests.support.truth import (
    SEED,
    PlannedOrder,
    actual_report,
    as_json,
    events_for,
    expected_report,
    order_json,
    plan,
)

from benchmarks.common import latency_summary, median, pyplot, ratio, save_figure, write_results

NAME = "burst"
DESCRIPTION = (
    "A concurrent burst of signed orders/create webhooks through the running local stack over HTTP: accept "
    "latency (and its ratio to trivial routes in the same run), time until every attribution shows in GET "
    "/admin/roi, and the report checked exactly against totals computed independently"
)
THREADS = 8
PROBE_EVERY = 5  # one unauthenticated /admin/roi and one /_local/health per this many webhooks


# ------------------------------------------------------------------------------------------------ HTTP
@dataclass(frozen=True)
class Sample:
    kind: str  # webhook | admin_401 | health | storefront
    started: float  # monotonic
    seconds: float
    status: int


class Client:
    """One `requests.Session` per thread, as separate Shopify delivery workers would hold their connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def timed(self, kind: str, method: str, path: str, **kwargs: Any) -> Sample:
        started = time.monotonic()
        try:
            response = self.session().request(method, self.url + path, timeout=30, **kwargs)
            status = response.status_code
        except requests.RequestException:
            status = 0
        return Sample(kind, started, time.monotonic() - started, status)


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def roi(client: Client, shop: str) -> dict[str, Any]:
    from tests.support.shopify import session_token

    response = client.session().get(
        f"{client.url}/admin/roi", headers={"authorization": f"Bearer {session_token(shop)}"}, timeout=60
    )
    response.raise_for_status()
    report: dict[str, Any] = response.json()
    return report


# ------------------------------------------------------------------------------------------------ the benchmark
def run(quick: bool) -> list[str]:
    from tests.support.shopify import new_shop, proxy_query, webhook_request
    from tests.support.stack import running_stack

    count = 200 if quick else 1000
    poll_interval = 0.5
    roi_every = 5.0 if quick else 10.0
    deadline_s = 240.0 if quick else 480.0
    config = {
        "orders": count,
        "threads": THREADS,
        "seed": SEED,
        "trivial_requests_every_n_webhooks": PROBE_EVERY,
        "queue_poll_interval_s": poll_interval,
        "roi_poll_interval_s": f"{roi_every}, and as soon as the queue is empty",
        "primary_baseline": "GET /admin/roi without a session token (401 from the AdminFunction)",
        "secondary_baseline": "GET /_local/health (the local gateway alone)",
        "quick": quick,
    }
    orders = plan(count)
    expected = expected_report(orders)
    shop = new_shop()

    with tempfile.TemporaryDirectory(prefix="reclift-bench-") as tmp:
        started = time.monotonic()
        with running_stack(Path(tmp)) as stack:
            startup_s = time.monotonic() - started
            client = Client(stack.url)
            print(f"  stack ready in {startup_s:.1f} s; storefront events for {count} buyers", file=sys.stderr)

            # 1. Every buyer's storefront events, through the signed app proxy.
            def track(order: PlannedOrder) -> Sample:
                query = proxy_query(shop, order.customer_id or "")
                return client.timed(
                    "storefront", "POST", f"/apps/proxy/events?{query}", json={"events": events_for(shop, order)}
                )

            with ThreadPoolExecutor(THREADS) as pool:
                storefront = list(pool.map(track, orders))
            if any(sample.status != 200 for sample in storefront):
                raise RuntimeError(f"storefront requests failed: {Counter(s.status for s in storefront)}")

            # 2. Warm the pools the burst will use, as traffic before it would have: deliveries with a bad signature
            #    (401, nothing queued) and unauthenticated reports. The cold starts are reported apart.
            def warm_webhook(_: int) -> Sample:
                headers, body = webhook_request(shop, b"{}", secret="not-the-app-secret")  # noqa: S106 - a wrong one
                return client.timed(
                    "warm_webhook_401", "POST", "/webhooks/orders/create", data=body, headers=dict(headers)
                )

            def warm_admin(_: int) -> Sample:
                return client.timed("warm_admin_401", "GET", "/admin/roi")

            with ThreadPoolExecutor(THREADS) as pool:
                warmup = list(pool.map(warm_webhook, range(THREADS * 3)))
                warmup += pool.map(warm_admin, range(THREADS * 2))
            before = stack.status()["functions"]

            # 3. The webhooks, signed in advance, dated now (after every event).
            now = datetime.now(UTC)
            deliveries = [webhook_request(shop, order_json(order, now, shop=shop)) for order in orders]
            tasks: list[Callable[[], Sample]] = []
            for index, (headers, body) in enumerate(deliveries):
                post = partial(client.timed, "webhook", "POST", "/webhooks/orders/create")
                tasks.append(partial(post, data=body, headers=dict(headers)))
                if index % PROBE_EVERY == 0:
                    tasks.append(partial(client.timed, "admin_401", "GET", "/admin/roi"))
                if index % PROBE_EVERY == PROBE_EVERY // 2:
                    tasks.append(partial(client.timed, "health", "GET", "/_local/health"))
            print(f"  burst of {count} webhooks", file=sys.stderr)

            # Progress is watched on the queue (cheap) every poll; the report, whose query grows with every order
            # and competes with the processing for the emulator, only every few seconds and once the queue drained.
            poller = Client(stack.url)
            sqs = stack.client("sqs")
            timeline: list[tuple[float, int, int]] = []  # seconds since the first POST, attributed orders, orders
            backlog: list[tuple[float, int]] = []  # seconds, messages on the WebhookQueue (visible and in flight)
            burst_started = time.monotonic()
            with ThreadPoolExecutor(THREADS) as pool:
                futures: list[Future[Sample]] = [pool.submit(task) for task in tasks]
                last_report = -roi_every
                while True:
                    time.sleep(poll_interval)
                    depth = queue_depth(sqs, stack.resource("WebhookQueue"))
                    elapsed = time.monotonic() - burst_started
                    backlog.append((elapsed, depth))
                    sent = all(future.done() for future in futures)
                    if (sent and depth == 0) or elapsed - last_report >= roi_every:
                        last_report = elapsed
                        try:
                            report = roi(poller, shop)
                        except requests.RequestException as exc:  # a slow report under load: poll again
                            print(f"  ROI poll failed: {exc}", file=sys.stderr)
                            continue
                        seen = (
                            time.monotonic() - burst_started,
                            int(report["attributed_orders"]),
                            int(report["orders"]),
                        )
                        timeline.append(seen)
                        if sent and seen[2] >= count and seen[1] >= expected["attributed_orders"]:
                            break
                    if elapsed > deadline_s:
                        print(f"  gave up after {deadline_s:.0f} s: {timeline[-1:]}", file=sys.stderr)
                        break
                samples = [future.result() for future in futures]
            first_post = min(s.started for s in samples if s.kind == "webhook")
            visible_s = burst_started + timeline[-1][0] - first_post

            # 4. Nothing left behind: the queue drained, nothing in the DLQ.
            depth_deadline = time.monotonic() + 30
            while (
                webhook_depth := queue_depth(sqs, stack.resource("WebhookQueue"))
            ) and time.monotonic() < depth_deadline:
                time.sleep(0.2)
            dlq_depth = queue_depth(sqs, stack.resource("WebhookDLQ"))
            final = roi(poller, shop)
            status = stack.status()

    figures = analyse(
        samples=samples,
        storefront=storefront,
        events=sum(len(order.events) for order in orders),
        timeline=[(t - (first_post - burst_started), a, o) for t, a, o in timeline],
        visible_s=visible_s,
        queue_depth=webhook_depth,
        backlog=[(t - (first_post - burst_started), depth) for t, depth in backlog],
        dlq_depth=dlq_depth,
        expected=expected,
        actual=actual_report(final),
        startup_s=startup_s,
        functions=status.get("functions", {}),
        functions_before=before,
        warmup=warmup,
        first_post=first_post,
    )
    write_results(NAME, description=DESCRIPTION, config=config, figures=figures)
    plot(samples, figures["timeline"], figures["backlog"], count)
    return summary_lines(figures)


def analyse(
    *,
    samples: list[Sample],
    storefront: list[Sample],
    events: int,
    timeline: list[tuple[float, int, int]],
    visible_s: float,
    queue_depth: int,
    backlog: list[tuple[float, int]],
    dlq_depth: int,
    expected: dict[str, Any],
    actual: dict[str, Any],
    startup_s: float,
    functions: dict[str, Any],
    functions_before: dict[str, Any],
    warmup: list[Sample],
    first_post: float,
) -> dict[str, Any]:
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    ms = {kind: [s.seconds * 1000 for s in rows] for kind, rows in by_kind.items()}
    webhooks = by_kind["webhook"]
    last_accept = max(s.started + s.seconds for s in webhooks) - first_post
    mismatches = sorted(key for key in expected if expected[key] != actual.get(key))
    kept = downsample(timeline, 60)
    return {
        "stack_startup_s": startup_s,
        "storefront_setup": {
            "requests": len(storefront),
            "events": events,
            "latency": latency_summary([s.seconds * 1000 for s in storefront]),
        },
        "pool_warmup": {
            "requests": len(warmup),
            "responses_by_status": dict(sorted(Counter(str(s.status) for s in warmup).items())),
            "latency": latency_summary([s.seconds * 1000 for s in warmup]),
        },
        "cold_starts_during_burst": {
            name: int(stats.get("cold_starts", 0)) - int(functions_before.get(name, {}).get("cold_starts", 0))
            for name, stats in sorted(functions.items())
        },
        "accept": {
            "responses_by_status": dict(sorted(Counter(str(s.status) for s in webhooks).items())),
            "latency": latency_summary(ms["webhook"]),
        },
        "baselines": {
            "admin_401": {
                "responses_by_status": dict(sorted(Counter(str(s.status) for s in by_kind["admin_401"]).items())),
                "latency": latency_summary(ms["admin_401"]),
            },
            "health": {
                "responses_by_status": dict(sorted(Counter(str(s.status) for s in by_kind["health"]).items())),
                "latency": latency_summary(ms["health"]),
            },
        },
        "accept_p50_over_admin_401_p50": ratio(median(ms["webhook"]), median(ms["admin_401"])),
        "accept_p99_over_admin_401_p99": ratio(
            latency_summary(ms["webhook"])["p99_ms"], latency_summary(ms["admin_401"])["p99_ms"]
        ),
        "accept_p50_over_health_p50": ratio(median(ms["webhook"]), median(ms["health"])),
        "all_accepted_after_s": last_accept,
        "accepted_per_s": len(webhooks) / last_accept if last_accept > 0 else None,
        "all_attributions_visible_after_s": visible_s,
        "orders_processed_per_s": len(webhooks) / visible_s if visible_s > 0 else None,
        "webhook_queue_depth_after": queue_depth,
        "dlq_depth_after": dlq_depth,
        "functions": {
            name: {k: v for k, v in stats.items() if k != "workers"} | {"workers": len(stats.get("workers", []))}
            for name, stats in sorted(functions.items())
        },
        "verification": {
            # Not exact when processing did not finish within the deadline: `complete` says which it was.
            "complete": actual["orders"] >= expected["orders"] and queue_depth == 0,
            "exact": not mismatches,
            "mismatched": mismatches,
            "expected": as_json(expected),
            "actual": as_json(actual),
        },
        "timeline": [{"s": t, "attributed_orders": a, "orders": o} for t, a, o in kept],
        "backlog": [{"s": t, "messages": n} for t, n in downsample(backlog, 80)],
    }


def downsample(rows: list[Any], most: int) -> list[Any]:
    """At most about `most` rows, evenly spaced, always with the last one."""
    step = max(1, len(rows) // most)
    return rows[::step] + ([rows[-1]] if rows and (len(rows) - 1) % step else [])


def plot(samples: list[Sample], timeline: list[dict[str, Any]], backlog: list[dict[str, Any]], count: int) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = {
        "webhook": "POST /webhooks/orders/create",
        "admin_401": "GET /admin/roi → 401",
        "health": "GET /_local/health",
    }
    values = {kind: [s.seconds * 1000 for s in samples if s.kind == kind] for kind in labels}
    low = max(0.1, min(min(v) for v in values.values() if v))
    high = max(max(v) for v in values.values() if v)
    bins = [low * (high / low) ** (i / 40) for i in range(41)]
    for kind, label in labels.items():
        left.hist(values[kind], bins=bins, alpha=0.6, label=f"{label} (n={len(values[kind])})")
    left.set(xscale="log", xlabel="latency, ms (log)", ylabel="requests", title="Accept latency during the burst")
    left.legend(fontsize=7)
    accepted = sorted(s.started + s.seconds for s in samples if s.kind == "webhook")
    first = min(s.started for s in samples if s.kind == "webhook")
    right.plot([t - first for t in accepted], range(1, len(accepted) + 1), label="webhooks accepted (200)")
    right.plot(
        [row["s"] for row in timeline],
        [row["orders"] for row in timeline],
        marker=".",
        label="orders processed (/admin/roi)",
    )
    right.plot(
        [row["s"] for row in timeline],
        [row["attributed_orders"] for row in timeline],
        marker=".",
        label="attributed orders (/admin/roi)",
    )
    right.plot(
        [row["s"] for row in backlog], [row["messages"] for row in backlog], linestyle=":", label="WebhookQueue backlog"
    )
    right.set(xlabel="seconds since the first POST", ylabel="orders", title=f"{count} orders: accepted and visible")
    right.legend(fontsize=7)
    save_figure(fig, NAME)


def summary_lines(figures: dict[str, Any]) -> list[str]:
    accept = figures["accept"]["latency"]
    admin = figures["baselines"]["admin_401"]["latency"]
    health = figures["baselines"]["health"]["latency"]
    verification = figures["verification"]
    expected = verification["expected"]
    warmup = figures["pool_warmup"]["latency"]
    cold = {name: n for name, n in figures["cold_starts_during_burst"].items() if n}
    return [
        f"burst: {accept['n']} webhooks, {figures['accept']['responses_by_status']} "
        f"(stack up in {figures['stack_startup_s']:.1f} s; pools warmed by {warmup['n']} requests, max "
        f"{warmup['max_ms']:.0f} ms; cold starts during the burst: {cold or 'none'})",
        f"  accept latency p50 {accept['p50_ms']:.1f} ms, p99 {accept['p99_ms']:.1f} ms, max {accept['max_ms']:.0f} ms",
        f"  vs GET /admin/roi→401 p50 {admin['p50_ms']:.1f} ms: ×{figures['accept_p50_over_admin_401_p50']:.2f}; "
        f"vs GET /_local/health p50 {health['p50_ms']:.1f} ms: ×{figures['accept_p50_over_health_p50']:.2f}",
        f"  all accepted after {figures['all_accepted_after_s']:.1f} s; "
        + ("every attribution visible after" if verification["complete"] else "NOT all processed within")
        + f" {figures['all_attributions_visible_after_s']:.1f} s; queue {figures['webhook_queue_depth_after']}, "
        f"DLQ {figures['dlq_depth_after']}",
        f"  exact: {verification['exact']} (attributed orders {expected['attributed_orders']}, "
        f"revenue {expected['attributed_revenue']} = click {expected['click_through_revenue']} + view "
        f"{expected['view_through_revenue']}, {expected['attributed_lines']} lines)"
        + (f"; mismatched: {verification['mismatched']}" if verification["mismatched"] else "")
        + ("" if verification["complete"] else f"; INCOMPLETE: {verification['actual']['orders']} orders processed"),
    ]
