"""The nightly learning job of one shop: DynamoDB requests and wall time by catalogue size, × 30 days of counters.

End to end on AWS's DynamoDB Local (the real engine; moto scans its whole table for every Query, which would
measure moto): the shop's day counters are written with BatchWriteItem, then the DailyLearningFunction handler
learns the shop from an SQS record, exactly as in production, with every AWS request counted at the botocore
level. The learner's own work — the same `aggregate`, `learn` and `best_sellers` over rows held in memory — is
measured apart, to show where the time goes.
"""

from __future__ import annotations

import random
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
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
from reclift.learning import ProductDay, aggregate, best_sellers, learn, median_price
from reclift.settings import ShopSettings
from reclift.tracking import EXPOSURE_DIGITS, exposure

NAME = "learning_job"
DESCRIPTION = (
    "One shop's nightly learning: DynamoDB requests and wall time end to end on DynamoDB Local for 1k, 10k and "
    "100k products x 30 days, and the learner's compute alone"
)
DAYS = 30
END_TO_END = (1_000, 10_000, 100_000)
COMPUTE_ONLY = (1_000, 10_000, 100_000)
# an impression's mean exposure over a 4-place widget's places: (1 + 1/√2 + 1/√3 + 1/2) / 4
MEAN_PLACE_EXPOSURE = sum(exposure(place) for place in range(1, 5)) / 4


def counter_rows(products: int, day: date, rng: random.Random) -> list[tuple[str, dict[str, int | str]]]:
    """One day's counters: every product shown, some clicked, a few bought (what tracking and attribution add)."""
    rows = []
    for index in range(products):
        impressions = rng.randint(5, 60)
        clicks = rng.randint(0, max(1, impressions // 10))
        purchases = 1 if rng.random() < 0.15 else 0
        counts: dict[str, int | str] = {
            "impressions": impressions,
            "clicks": clicks,
            "purchases": purchases,
            "units": purchases,
            "revenue": f"{purchases * rng.randint(10, 90)}.00",
            "exposure": str(round(impressions * MEAN_PLACE_EXPOSURE, EXPOSURE_DIGITS)),
        }
        rows.append((str(1_000_000 + index), counts))
    return rows


def seed_counters(dynamodb: Any, table: str, shop: str, products: int, last_day: date, rng: random.Random) -> int:
    """The counters tracking and attribution would have left, written 25 to a request from 8 threads, a day at a
    time (so that a 100k-product catalogue never holds more than one day of items in memory)."""

    written = 0
    with ThreadPoolExecutor(8) as pool:
        for age in range(DAYS):
            day = last_day - timedelta(days=age)
            items = []
            for product, counts in counter_rows(products, day, rng):
                item: dict[str, Any] = {"pk": {"S": f"{shop}#{day.isoformat()}"}, "sk": {"S": product}}
                item |= {name: {"N": str(value)} for name, value in counts.items()}
                items.append(item)
            written += put_items(pool, dynamodb, table, items)
    return written


def end_to_end(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Each catalogue size is its own shop in one DynamoDB Local (the handlers keep their clients per process)."""
    from tests.support.aws import emulated_aws

    today = datetime.now(UTC).date()
    results = []
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        dynamodb = seeding_client(aws)
        learner = WarmFunction(aws, "DailyLearningFunction")
        counter = ApiCallCounter(names=logical_names(aws))
        meter = CapacityMeter(logical_names(aws))
        for products in sizes:
            shop = f"bench-{products}.myshopify.com"
            started = time.perf_counter()
            seeded = seed_counters(
                dynamodb, aws.resource("CountersTable"), shop, products, today, random.Random(products)
            )
            seed_seconds = time.perf_counter() - started
            block, capacity, seconds = run_job(learner, counter, meter, {"shop": shop, "day": today.isoformat()})
            reads = {k: v for k, v in calls_by_operation(block.calls, "dynamodb").items() if "Counters" in k}
            results.append(
                {
                    "products": products,
                    "product_days": seeded,
                    "seed_s": seed_seconds,
                    "wall_s": seconds,
                    "aws_s": block.aws_seconds,
                    "dynamodb_requests": calls_by_operation(block.calls, "dynamodb"),
                    "counter_reads": sum(reads.values()),
                    "counter_items_read": sum(v for k, v in block.items.items() if k.target == "CountersTable"),
                }
                | capacity.units()
            )
    return results


def compute_only(products: int) -> dict[str, Any]:
    rng = random.Random(products)
    today = date(2026, 11, 26)
    rows = [
        ProductDay(
            day=today - timedelta(days=age),
            product_id=product,
            impressions=int(c["impressions"]),
            clicks=int(c["clicks"]),
            purchases=int(c["purchases"]),
            units=int(c["units"]),
            revenue=Decimal(str(c["revenue"])),
        )
        for age in range(DAYS)
        for product, c in counter_rows(products, today, rng)
    ]
    settings = ShopSettings()
    tracemalloc.start()
    started = time.perf_counter()
    windows = aggregate(
        rows, today=today, window_days=settings.learning_window_days, half_life_days=settings.half_life_days
    )
    _, performance = learn(windows, settings)
    best_sellers(windows, 50)
    median_price(windows.values())
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "products": products,
        "product_days": len(rows),
        "compute_s": seconds,
        "us_per_product_day": seconds / len(rows) * 1e6,
        "peak_mib": peak / 2**20,
        "blacklisted": sum(p.blacklisted for p in performance.values()),
    }


def run(quick: bool) -> list[str]:
    e2e = end_to_end(END_TO_END[:2] if quick else END_TO_END)
    compute = [compute_only(n) for n in (COMPUTE_ONLY[:2] if quick else COMPUTE_ONLY)]
    per_1k = {row["products"]: row["counter_reads"] / (row["product_days"] / 1000) for row in e2e}
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "days": DAYS,
            "end_to_end_products": [r["products"] for r in e2e],
            "compute_only_products": [r["products"] for r in compute],
        },
        figures={"end_to_end": e2e, "compute_only": compute, "counter_reads_per_1000_product_days": per_1k},
    )
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot([r["product_days"] for r in e2e], [r["wall_s"] for r in e2e], "o-", label="end to end")
    left.set_xlabel("product-days")
    left.set_ylabel("seconds")
    left.set_title("learning one shop on DynamoDB Local")
    left.legend()
    right.plot([r["product_days"] for r in compute], [r["compute_s"] for r in compute], "o-", color="C1")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("product-days")
    right.set_ylabel("seconds")
    right.set_title("learner compute alone")
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for row in e2e:
        lines.append(
            f"  {row['products']:>7,} products x {DAYS} d end to end: {row['wall_s']:.1f} s, "
            f"{row['counter_reads']} counter queries for {row['counter_items_read']:,} items; "
            f"{row['dynamodb_requests']}"
        )
    for row in compute:
        lines.append(
            f"  {row['products']:>7,} products x {DAYS} d compute: {row['compute_s']:.2f} s "
            f"({row['us_per_product_day']:.2f} us per product-day, peak {row['peak_mib']:.0f} MiB)"
        )
    return lines
