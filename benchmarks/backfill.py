"""A new install's backfill: DynamoDB requests, Admin API requests and cost points, and wall time, page by page
and with a bulk operation.

End to end on AWS's DynamoDB Local against the fake Admin API (a real HTTP server with Shopify's shapes and cost
arithmetic): the same `backfill` the BackfillFunction runs, with its environment, every AWS request counted at the
botocore level. The fake restores cost points fast, so the wall time is reclift's and the emulators' own; the
time Shopify's rate limit would add is projected from the points actually spent (standard plans restore 100 a
second).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ApiCallCounter,
    CapacityMeter,
    calls_by_operation,
    counted_and_metered,
    logical_names,
    pyplot,
    save_figure,
    write_results,
)
from reclift_local.fake_admin import FakeAdminApi, seeded_catalog

NAME = "backfill"
DESCRIPTION = (
    "A new install's backfill of products and 180 days of orders on DynamoDB Local against the fake Admin API: "
    "DynamoDB and Admin API requests per object, cost points, wall time; pages vs one bulk operation"
)
SIZES = {"products": 2_000, "orders": 3_000}
QUICK_SIZES = {"products": 300, "orders": 500}
STANDARD_RESTORE_RATE = 100.0  # points a second on Shopify's standard plans
TOKEN = "shpat_bench"  # noqa: S105 - the fake's token


def measure(sizes: dict[str, int]) -> list[dict[str, Any]]:
    from tests.support.aws import emulated_aws, forget_execution_environment

    from reclift.data.backfill import BackfillStore
    from reclift.logic.backfill import backfill
    from reclift.shopify_admin import AdminClient
    from reclift_local.worker import function_env

    orders, products = seeded_catalog(orders=sizes["orders"], products=sizes["products"], seed=7)
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as state,
        emulated_aws(Path(state), database="dynamodb-local") as aws,
        function_env(aws.environment("BackfillFunction")),
    ):
        forget_execution_environment()
        counter = ApiCallCounter(names=logical_names(aws))
        meter = CapacityMeter(logical_names(aws))
        for mode in ("pages", "bulk"):
            for what in ("products", "orders"):
                shop = f"bench-{mode}.myshopify.com"
                with FakeAdminApi(shop, TOKEN, orders=orders, products=products, restore_rate=1e6) as fake:
                    client = AdminClient(shop, TOKEN, base_url=fake.url)
                    started = time.perf_counter()
                    with counted_and_metered(counter, meter) as (block, capacity):
                        outcome = backfill(
                            what, shop, client, BackfillStore(), bulk=mode == "bulk", bulk_poll_seconds=0.05
                        )
                    seconds = time.perf_counter() - started
                assert outcome.complete, outcome
                dynamodb = calls_by_operation(block.calls, "dynamodb")
                requests = sum(dynamodb.values())
                results.append(
                    {
                        "mode": mode,
                        "what": what,
                        "objects": outcome.stored,
                        "wall_s": seconds,
                        "objects_per_s": outcome.stored / seconds,
                        "dynamodb_requests": dynamodb,
                        "dynamodb_requests_per_object": requests / max(outcome.stored, 1),
                        "admin_requests": client.requests,
                        "admin_points": fake.points_spent,
                        "projected_rate_limit_s": fake.points_spent / STANDARD_RESTORE_RATE,
                    }
                    | capacity.units()
                    | {"wcu_per_object": capacity.write_units / max(outcome.stored, 1)}
                )
        forget_execution_environment()
    return results


def run(quick: bool) -> list[str]:
    sizes = QUICK_SIZES if quick else SIZES
    rows = measure(sizes)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={"sizes": sizes, "standard_restore_rate": STANDARD_RESTORE_RATE, "engine": "dynamodb-local"},
        figures={"runs": rows},
    )
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{row['what']}\n{row['mode']}" for row in rows]
    left.bar(labels, [row["wall_s"] for row in rows], color=["C0" if r["mode"] == "pages" else "C1" for r in rows])
    left.set_ylabel("seconds (fast restore)")
    left.set_title("backfill wall time")
    right.bar(labels, [row["projected_rate_limit_s"] for row in rows], color="C2")
    right.set_ylabel("seconds at 100 points/s")
    right.set_title("Shopify rate limit, projected from points spent")
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for row in rows:
        lines.append(
            f"  {row['what']:<8} {row['mode']:<5} {row['objects']:>6,} stored in {row['wall_s']:.1f} s "
            f"({row['objects_per_s']:.0f}/s), {row['dynamodb_requests_per_object']:.2f} DynamoDB requests per object "
            f"{row['dynamodb_requests']}, {row['admin_requests']} Admin API requests, {row['admin_points']:.0f} points "
            f"(~{row['projected_rate_limit_s']:.0f} s at 100 points/s)"
        )
    return lines
