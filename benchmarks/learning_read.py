"""The nightly learning's read of one shop's counters, three ways, on AWS's DynamoDB Local, by catalogue size.

The learning job reads every product counter and page item of the shop's 30 days (`LearningStore.counter_days`) and
sums them as it reads (`sum_window`, as `learn_shop` does). Three ways of reading the same shop, alternating, in the
same process and run:

- `botocore`: the Query parsed by botocore, through the service model, one thread (the read before 7 December);
- `raw`: the Query's items as DynamoDB sent them (`raw_reads.read_queries_raw`), one thread;
- `raw, read ahead` (the read as built, `LearningStore.counter_days`): those, with the pages read ahead of the
  learner by a thread of their own (`raw_reads.read_ahead`, `COUNTER_PAGES_AHEAD` pages).

Wall time is what Lambda bills for the read, CPU time the process's own (both threads). DynamoDB Local is a Java
process on the same 2-core machine, slower than DynamoDB: its share of the wall time is not DynamoDB's. The shop is
`learning_job`'s: every page active every day, 13 candidates shown a page a day.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import ApiCallCounter, logical_names, pyplot, save_figure, write_results
from benchmarks.learning_job import DAYS, GeneratedShop, seed_shop
from reclift.learning import CounterDay

NAME = "learning_read"
DESCRIPTION = (
    "The nightly learning's read and summing of one shop's 30 days of counters on DynamoDB Local: as botocore "
    "parses the Query, the Query's items as DynamoDB sent them, and those with its pages read ahead by a thread; "
    "wall and CPU seconds, alternating in one run, by catalogue size"
)
SIZES = (1_000, 3_000)
QUICK_SIZES = (300,)
ROUNDS = 3
QUICK_ROUNDS = 1
WAYS = ("botocore", "raw", "raw, read ahead")
HALF_LIFE_DAYS = 14.0


def rows(way: str, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
    """The window's rows read `way`: as built, the store's `counter_days` itself; the two others from the store's
    own parts (its Query pages and its rows of a raw item), one thread, with botocore's parse or without it."""
    from reclift.data import learning
    from reclift.data.models import CounterItem
    from reclift.data.raw_reads import RAW_QUERY_HOOK, read_queries_raw

    if way == "raw, read ahead":
        yield from learning.LearningStore().counter_days(shop, first_day, last_day)
        return
    connection = CounterItem._get_connection()
    if way == "botocore":
        connection.connection.client.meta.events.unregister("before-parse.dynamodb.Query", unique_id=RAW_QUERY_HOOK)
    else:
        read_queries_raw(connection)
    for day, items in learning.counter_pages(connection, shop, first_day, last_day):
        for raw in items:
            yield from learning.counter_rows(day, raw)


def measure(sizes: tuple[int, ...], rounds: int) -> list[dict[str, Any]]:
    from tests.support.aws import emulated_aws

    from reclift.context import sum_window
    from reclift.data.learning import LearningStore
    from reclift_local.worker import function_env

    today = datetime.now(UTC).date()
    first_day = today - timedelta(days=DAYS - 1)
    results = []
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        counter = ApiCallCounter(names=logical_names(aws))
        for products in sizes:
            shop = f"read-{products}.myshopify.com"
            with ThreadPoolExecutor(8) as pool:
                seeded = seed_shop(aws, pool, shop, GeneratedShop(products), today)
            timings: dict[str, dict[str, list[float]]] = {way: {"wall_s": [], "cpu_s": []} for way in WAYS}
            read: dict[str, Any] = {}
            with function_env(aws.environment("DailyLearningFunction")):
                LearningStore()  # the tables bound, as the handler's store does
                for _ in range(rounds):
                    for way in WAYS:
                        with counter.counting() as block:
                            cpu, wall = time.process_time(), time.perf_counter()
                            window = sum_window(
                                rows(way, shop, first_day, today),
                                today=today,
                                window_days=DAYS,
                                half_life_days=HALF_LIFE_DAYS,
                            )
                            timings[way]["wall_s"].append(time.perf_counter() - wall)
                            timings[way]["cpu_s"].append(time.process_time() - cpu)
                        summed = (len(window.products), len(window.pairs))
                        queries = sum(n for call, n in block.calls.items() if call.operation == "Query")
                        assert read.setdefault("summed", summed) == summed, (way, summed, read)
                        assert read.setdefault("queries", queries) == queries, (way, queries, read)
            base = {name: statistics.mean(values) for name, values in timings["botocore"].items()}
            for way in WAYS:
                means = {name: statistics.mean(values) for name, values in timings[way].items()}
                results.append(
                    {
                        "products": products,
                        "way": way,
                        "counter_items": seeded,
                        "queries": read["queries"],
                        "products_summed": read["summed"][0],
                        "pairs_summed": read["summed"][1],
                        **{name: [round(v, 3) for v in values] for name, values in timings[way].items()},
                        "wall_s_mean": means["wall_s"],
                        "cpu_s_mean": means["cpu_s"],
                        "wall_ratio": means["wall_s"] / base["wall_s"],
                        "cpu_ratio": means["cpu_s"] / base["cpu_s"],
                    }
                )
    return results


def run(quick: bool) -> list[str]:
    figures = measure(QUICK_SIZES if quick else SIZES, QUICK_ROUNDS if quick else ROUNDS)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "days": DAYS,
            "half_life_days": HALF_LIFE_DAYS,
            "sizes": sorted({row["products"] for row in figures}),
            "rounds": QUICK_ROUNDS if quick else ROUNDS,
            "ways": list(WAYS),
            "quick": quick,
        },
        figures={"reads": figures},
    )
    plt = pyplot()
    sizes = sorted({row["products"] for row in figures})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(WAYS)
    for axis, measure_name, label in ((axes[0], "wall_s_mean", "wall seconds"), (axes[1], "cpu_s_mean", "CPU seconds")):
        for index, way in enumerate(WAYS):
            mine = [next(r for r in figures if r["products"] == n and r["way"] == way) for n in sizes]
            axis.bar(
                [position + index * width for position in range(len(sizes))],
                [row[measure_name] for row in mine],
                width,
                label=way,
            )
        axis.set_xticks([position + width for position in range(len(sizes))], [f"{n:,} products" for n in sizes])
        axis.set_ylabel(label)
        axis.set_title(f"reading and summing {DAYS} days of counters: {label.split()[0]}")
        axis.legend()
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for row in figures:
        lines.append(
            f"  {row['products']:>6,} products x {DAYS} d, {row['way']}: wall {row['wall_s_mean']:.1f} s "
            f"(x{row['wall_ratio']:.2f}), CPU {row['cpu_s_mean']:.1f} s (x{row['cpu_ratio']:.2f}); "
            f"{row['queries']} Query pages"
        )
    return lines
