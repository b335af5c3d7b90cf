"""A shop's erasure (`shop/redact`): the items ShopRedactFunction reads and its time, against the shop's size and
against the other shops' size.

On AWS's DynamoDB Local: shops seeded as the functions key them (tests.support.shop_items), the erasure run by the
warm ShopRedactFunction from its queued message, every AWS request counted at the botocore level. A Scan would read
every shop's items; the erasure reads by key, so its items read follow the shop's own size, and the other shops'
only show in the table sizes around it. Time per million items is projected from the measured rate, with the number
of 15-minute invocations (each stops a minute early and queues the rest) it would take.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
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

NAME = "shop_redact"
DESCRIPTION = (
    "ShopRedactFunction erasing one shop among others on DynamoDB Local: items read, requests and seconds against "
    "the shop's size and the other shops' size"
)
# (visitors of the erased shop, other shops, visitors of each other shop); about 7.75 items a visitor.
CASES = ((500, 0, 0), (500, 4, 2_000), (2_000, 0, 0), (2_000, 4, 2_000), (8_000, 4, 2_000))
QUICK_CASES = ((200, 0, 0), (200, 2, 800), (800, 2, 800))
INVOCATION_SECONDS = 900 - 60  # a run stops a minute before the deadline and queues the rest


def measure(cases: tuple[tuple[int, int, int], ...]) -> list[dict[str, Any]]:
    from tests.support.aws import emulated_aws, forget_execution_environment
    from tests.support.shop_items import shop_items

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        forget_execution_environment()
        names = logical_names(aws)
        dynamodb = seeding_client(aws)
        function = WarmFunction(aws, "ShopRedactFunction")
        counter = ApiCallCounter(names=names)
        meter = CapacityMeter(names)
        with ThreadPoolExecutor(8) as pool:
            for index, (visitors, others, other_visitors) in enumerate(cases):
                shop = f"bench-{index}.myshopify.com"
                seeded = {shop: shop_items(shop, visitors)}
                seeded |= {
                    f"other-{index}-{n}.myshopify.com": shop_items(f"other-{index}-{n}.myshopify.com", other_visitors)
                    for n in range(others)
                }
                for items in seeded.values():
                    for table, rows_of_table in items.items():
                        put_items(pool, dynamodb, aws.resource(table), rows_of_table)
                shop_count = sum(len(table_rows) for table_rows in seeded[shop].values())
                other_count = sum(len(t) for other, items in seeded.items() if other != shop for t in items.values())
                block, capacity, seconds = run_job(function, counter, meter, {"shop": shop})
                items_read = sum(count for call, count in block.items.items() if call.service == "dynamodb")
                scans = sum(count for call, count in block.calls.items() if call.operation == "Scan")
                rows.append(
                    {
                        "shop_items": shop_count,
                        "other_shops": others,
                        "other_items": other_count,
                        "items_read": items_read,
                        "items_read_per_shop_item": items_read / shop_count,
                        "scans": scans,
                        "requests": calls_by_operation(block.calls, "dynamodb"),
                        "seconds": seconds,
                        "items_per_s": shop_count / seconds,
                        "projected_s_per_million": 1e6 / (shop_count / seconds),
                        "projected_invocations_per_million": -(-1e6 / (shop_count / seconds) // INVOCATION_SECONDS),
                    }
                    | capacity.units()
                )
        forget_execution_environment()
    return rows


def index_write_units() -> dict[str, float]:
    """What the keys-only `by_shop` index costs a write (ReturnConsumedCapacity INDEXES on DynamoDB Local): a
    profile created, rewritten with other lists (what every tracked request does), and deleted."""
    from tests.support.aws import emulated_aws

    from reclift.data.models import shop_bucket_key

    pk = "bench.myshopify.com#v#visitor"
    item = {"pk": {"S": pk}, "shop": {"S": "bench.myshopify.com"}, "shop_pk": {"S": shop_bucket_key("b", pk)}}
    units: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        dynamodb, table = aws.client("dynamodb"), aws.resource("ProfilesTable")
        for step, viewed in (("created", ["1"]), ("rewritten", ["2", "1"])):
            response = dynamodb.put_item(
                TableName=table,
                Item=item | {"viewed": {"L": [{"S": product} for product in viewed]}},
                ReturnConsumedCapacity="INDEXES",
            )
            units[step] = (
                response["ConsumedCapacity"]
                .get("GlobalSecondaryIndexes", {})
                .get("by_shop", {})
                .get("CapacityUnits", 0.0)
            )
        response = dynamodb.delete_item(TableName=table, Key={"pk": {"S": pk}}, ReturnConsumedCapacity="INDEXES")
        units["deleted"] = (
            response["ConsumedCapacity"].get("GlobalSecondaryIndexes", {}).get("by_shop", {}).get("CapacityUnits", 0.0)
        )
    return units


def run(quick: bool) -> list[str]:
    cases = QUICK_CASES if quick else CASES
    rows = measure(cases)
    index_units = index_write_units()
    write_results(
        NAME,
        description=DESCRIPTION,
        config={"cases": cases, "engine": "dynamodb-local", "invocation_seconds": INVOCATION_SECONDS},
        figures={"runs": rows, "by_shop_index_write_units": index_units},
    )
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for others, marker in ((False, "o"), (True, "s")):
        chosen = [row for row in rows if bool(row["other_shops"]) == others]
        label = "among other shops" if others else "alone"
        left.plot([r["shop_items"] for r in chosen], [r["items_read"] for r in chosen], marker, label=label)
        right.plot([r["shop_items"] for r in chosen], [r["seconds"] for r in chosen], marker, label=label)
    left.set_xlabel("the shop's items")
    left.set_ylabel("items read")
    left.set_title("items read follow the shop, not the others")
    left.legend()
    right.set_xlabel("the shop's items")
    right.set_ylabel("seconds (DynamoDB Local)")
    right.set_title("erasure time")
    right.legend()
    save_figure(fig, NAME)
    lines = [
        f"{NAME}: the keys-only by_shop index costs {index_units['created']:g} write unit when an item is created, "
        f"{index_units['rewritten']:g} when it is rewritten with the same key, {index_units['deleted']:g} when deleted"
    ]
    for row in rows:
        lines.append(
            f"  shop {row['shop_items']:>6,} items, {row['other_shops']} other shops ({row['other_items']:>6,} items): "
            f"read {row['items_read']:>6,} ({row['items_read_per_shop_item']:.2f} per item), {row['scans']} scans, "
            f"{row['seconds']:.1f} s ({row['items_per_s']:.0f} items/s; a million: "
            f"~{row['projected_s_per_million']:.0f} s, {row['projected_invocations_per_million']:.0f} invocations)"
        )
    return lines
