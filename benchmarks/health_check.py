"""One shop's hourly health check: DynamoDB requests (and items read) by catalogue size.

End to end on AWS's DynamoDB Local: each shop gets 8 days of counters — one item per product and day, the day's
`_shop` item and the hourly `_hour#HH` totals — then the HealthCheckFunction handler checks it from an SQS record,
as in production (alerts published to the emulator's alerts topic), with every AWS request counted at the botocore
level. The check reads only the hourly totals, so its requests do not grow with the number of products.
"""

from __future__ import annotations

import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ApiCallCounter,
    CapacityMeter,
    WarmFunction,
    calls_by_operation,
    logical_names,
    put_items,
    pyplot,
    run_job,
    save_figure,
    seeding_client,
    write_results,
)

NAME = "health_check"
DESCRIPTION = (
    "One shop's hourly health check on DynamoDB Local: DynamoDB requests and items read for 10, 1,000 and 10,000 "
    "products x 8 days of counters (constant: the check reads the shop's hourly totals, never its products)"
)
DAYS = 8
SIZES = (10, 1_000, 10_000)


def day_items(shop: str, day: str, products: int, hours: int, rng: random.Random) -> list[dict[str, Any]]:
    pk = {"S": f"{shop}#{day}"}
    items: list[dict[str, Any]] = [
        {"pk": pk, "sk": {"S": str(1_000_000 + index)}, "impressions": {"N": str(rng.randint(5, 60))}}
        for index in range(products)
    ]
    items.append({"pk": pk, "sk": {"S": "_shop"}, "orders": {"N": str(rng.randint(0, 50))}})
    for hour in range(hours):
        items.append(
            {
                "pk": pk,
                "sk": {"S": f"_hour#{hour:02d}"},
                "impressions": {"N": str(rng.randint(100, 2000))},
                "purchases": {"N": str(rng.randint(0, 20))},
                "orders": {"N": str(rng.randint(0, 10))},
                "served": {"N": str(rng.randint(0, 500))},
            }
        )
    return items


def seed(dynamodb: Any, table: str, shop: str, products: int, now: datetime) -> int:
    rng = random.Random(products)
    written = 0
    with ThreadPoolExecutor(8) as pool:
        for age in range(DAYS):
            day = (now - timedelta(days=age)).date()
            hours = now.hour + 1 if age == 0 else 24
            written += put_items(pool, dynamodb, table, day_items(shop, day.isoformat(), products, hours, rng))
    return written


def measure(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    from tests.support.aws import emulated_aws

    now = datetime.now(UTC)
    results = []
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        dynamodb = seeding_client(aws)
        checker = WarmFunction(aws, "HealthCheckFunction")
        counter = ApiCallCounter(names=logical_names(aws))
        meter = CapacityMeter(logical_names(aws))
        for products in sizes:
            shop = f"health-{products}.myshopify.com"
            seeded = seed(dynamodb, aws.resource("CountersTable"), shop, products, now)
            block, capacity, seconds = run_job(checker, counter, meter, {"shop": shop, "scheduled_at": now.isoformat()})
            dynamodb_calls = calls_by_operation(block.calls, "dynamodb")
            results.append(
                {
                    "products": products,
                    "counter_items": seeded,
                    "wall_s": seconds,
                    "dynamodb_requests": sum(dynamodb_calls.values()),
                    "dynamodb_by_operation": dynamodb_calls,
                    "counter_items_read": sum(v for k, v in block.items.items() if k.target == "CountersTable"),
                    "other_requests": {
                        service: sum(n for call, n in block.calls.items() if call.service == service)
                        for service in sorted({call.service for call in block.calls} - {"dynamodb"})
                    },
                }
                | capacity.units()
            )
    return results


def run(quick: bool) -> list[str]:
    rows = measure(SIZES[:2] if quick else SIZES)
    requests = {row["products"]: row["dynamodb_requests"] for row in rows}
    write_results(
        NAME,
        description=DESCRIPTION,
        config={"days": DAYS, "products": [row["products"] for row in rows]},
        figures={
            "per_shop": rows,
            "dynamodb_requests_by_products": requests,
            "constant": len(set(requests.values())) == 1,
        },
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["products"] for r in rows], [r["dynamodb_requests"] for r in rows], "o-", label="DynamoDB requests")
    ax.plot([r["products"] for r in rows], [r["counter_items_read"] for r in rows], "s--", label="counter items read")
    ax.set_xscale("log")
    ax.set_xlabel("products in the shop's catalogue")
    ax.set_ylabel("per shop check")
    ax.set_ylim(bottom=0)
    ax.set_title("hourly health check of one shop (DynamoDB Local)")
    ax.legend()
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for row in rows:
        lines.append(
            f"  {row['products']:>6,} products ({row['counter_items']:,} counter items): "
            f"{row['dynamodb_requests']} DynamoDB requests {row['dynamodb_by_operation']}, "
            f"{row['counter_items_read']} counter items read, other {row['other_requests']}, "
            f"{row['wall_s'] * 1000:.0f} ms"
        )
    return lines
