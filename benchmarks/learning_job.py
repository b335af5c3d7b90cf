"""The nightly learning job of one shop: capacity units, dollars, wall time and memory by catalogue size, under the
default policy (`context`) and under `bayes`, × 30 days of every product's counter and every product page's item.

End to end on AWS's DynamoDB Local (the real engine; moto scans its whole table for every Query, which would
measure moto): the shop's counters are written as counting and attribution leave them (a product counter and a
page item per product and day: the page's widgets showed SHOWN_A_DAY of its NEIGHBOURS co-purchase neighbours and
one product exploration tried), with each page's neighbours as the similarity job saves them; then the
DailyLearningFunction handler learns the shop from an SQS record, exactly as in production, with every AWS request
counted and its capacity units metered.

The learner alone — `learn_shop` over the same days, generated as they are read, as the DynamoDB store pages its
Query — runs in a fresh interpreter per case, for its CPU time and its peak resident memory: what Lambda reports as
Max Memory Used, against the function's MemorySize. Every page active every day is the worst case a catalogue of
that size meets: a shop whose tail pages go unvisited for days holds fewer pairs. Under `context` the learner is also
measured in a shop's first month of click counting, at its worst, when it reads 29 of the 30 days a second time.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
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
from benchmarks.cost import PRICE
from reclift.context import ContextPrior, Similarity, page_similarities
from reclift.learning import CounterDay, PairDay, Performance, Prior, ProductDay
from reclift.tracking import EXPOSURE_DIGITS, exposure

NAME = "learning_job"
DESCRIPTION = (
    "One shop's nightly learning under the default policy (context) and bayes, with every product's counter and "
    "page item of 30 days: DynamoDB requests, capacity units, dollars and wall time end to end on DynamoDB Local, "
    "and the learner's CPU time and peak memory alone, by catalogue size"
)
DAYS = 30
POLICIES = ("context", "bayes")
END_TO_END = (1_000, 10_000, 30_000)
COMPUTE_ONLY = (1_000, 10_000, 30_000)
QUICK_END_TO_END = (1_000,)
QUICK_COMPUTE_ONLY = (1_000, 10_000)
NEIGHBOURS = 24  # a page's co-purchase neighbours (the similarity job keeps up to 50)
SHOWN_A_DAY = 12  # of them, the candidates its widgets show in a day; exploration tries one product more
CLICK_RATE = 0.05
PAGE_IMPRESSIONS_A_DAY = 84  # a product's impressions a day in product pages' widgets: on 13 pages, about 6.5 each
# an impression's mean exposure over a 4-place widget's places: (1 + 1/√2 + 1/√3 + 1/2) / 4
MEAN_PLACE_EXPOSURE = sum(exposure(place) for place in range(1, 5)) / 4
# A shop in its first month of click counting, at its worst: the pages' items counted clicks from the window's second
# day, so the job reads 29 of its 30 days a second time for the click level and holds both reads' pairs.
FIRST_CLICK_MONTH_DAYS = DAYS - 1
TODAY = date(2026, 11, 26)  # the compute cases' job day (end to end: today, as the counters' expiry needs)


def product_id(index: int) -> str:
    return str(1_000_000 + index)


class GeneratedShop:
    """A shop of `products` products whose every page is visited every day: the learning port over counter days
    generated as they are read (each day from its own seed, so a second read of a day yields the same rows), the
    pages' neighbours, and what the run writes (counted, not kept). With `clicks_from`, the pages' items count clicks
    from that day on, as a shop's do in its first 30 days of click counting."""

    def __init__(self, products: int, *, clicks_from: date | None = None) -> None:
        self.products = products
        self.clicks_from = clicks_from  # the first day the pages' items count clicks (None: every day)
        rng = random.Random(products)
        self.neighbours = [
            [j for j in rng.sample(range(products), NEIGHBOURS + 1) if j != page][:NEIGHBOURS]
            for page in range(products)
        ]
        self.rates = [rng.uniform(0.003, 0.03) for _ in range(products)]  # purchases per impression, 1.65 % mean
        self.written: dict[str, int] = {"performance": 0, "pair_items": 0, "pair_ratios": 0}

    def day_rows(self, day: date) -> Iterator[CounterDay]:
        """The day's product counters (the impressions of the widgets that are not a product page's, the purchases
        of all), then every page's candidates."""
        rng = random.Random(f"{self.products}-{day.isoformat()}")
        for index, rate in enumerate(self.rates):
            impressions = rng.randint(5, 60)
            purchases = int(rate * (impressions + PAGE_IMPRESSIONS_A_DAY) + rng.random())
            yield ProductDay(
                day,
                product_id(index),
                impressions=impressions,
                clicks=int(impressions * CLICK_RATE + rng.random()),
                purchases=purchases,
                units=purchases,
                revenue=Decimal(purchases * rng.randint(10, 90)),
                sold=purchases,
                exposure=round(impressions * MEAN_PLACE_EXPOSURE, EXPOSURE_DIGITS),
            )
        for page in range(self.products):
            shown = [*rng.sample(self.neighbours[page], SHOWN_A_DAY), rng.randrange(self.products)]
            for candidate in dict.fromkeys(c for c in shown if c != page):
                impressions = rng.randint(1, 2 * PAGE_IMPRESSIONS_A_DAY // (SHOWN_A_DAY + 1))
                purchases = int(self.rates[candidate] * impressions + rng.random())
                clicks = int(impressions * CLICK_RATE + rng.random())
                yield PairDay(
                    day,
                    product_id(page),
                    product_id(candidate),
                    impressions=impressions,
                    purchases=purchases,
                    exposure=round(impressions * MEAN_PLACE_EXPOSURE, EXPOSURE_DIGITS),
                    clicks=0 if self.clicks_from is not None and day < self.clicks_from else clicks,
                )

    def similar(self, page: int) -> list[tuple[str, float]]:
        """The page's co-purchase neighbours, best first, with their Jaccard."""
        return [(product_id(j), round(0.3 / (rank + 1), 6)) for rank, j in enumerate(self.neighbours[page])]

    # ------------------------------------------------------------ LearningPort
    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
        day = first_day
        while day <= last_day:
            yield from self.day_rows(day)
            day += timedelta(days=1)

    def page_similarities(self, shop: str, pages: Iterable[str]) -> dict[str, dict[str, Similarity]]:
        return {page: page_similarities(self.similar(int(page) - 1_000_000), [], None, None) for page in pages}

    def save_pairs(self, shop: str, run: str, ratios: Mapping[str, Mapping[str, float]]) -> None:
        self.written["pair_items"] = len(ratios)
        self.written["pair_ratios"] = sum(len(page) for page in ratios.values())

    def save_run(
        self,
        shop: str,
        run: str,
        policy: str,
        prior: Prior,
        performance: Mapping[str, Performance],
        best_sellers: list[str],
        median_price: Decimal | None,
        *,
        context: ContextPrior | None = None,
    ) -> None:
        self.written["performance"] = len(performance)


# ---------------------------------------------------------------------------------------------------- end to end
def counter_items(shop: str, rows: Iterable[CounterDay]) -> list[dict[str, Any]]:
    """A day's product counters (DynamoDB JSON) as counting and attribution leave them, from its product rows."""
    return [
        {"pk": {"S": f"{shop}#{row.day.isoformat()}"}, "sk": {"S": row.product_id}}
        | {
            "impressions": {"N": str(row.impressions)},
            "clicks": {"N": str(row.clicks)},
            "purchases": {"N": str(row.purchases)},
            "units": {"N": str(row.units)},
            "revenue": {"N": str(row.revenue)},
            "sold": {"N": str(row.sold)},
            "exposure": {"N": str(row.exposure)},
        }
        for row in rows
        if isinstance(row, ProductDay)
    ]


def page_items(shop: str, rows: Iterable[CounterDay]) -> list[dict[str, Any]]:
    """A day's page items (DynamoDB JSON) as counting and attribution leave them, from its pair rows."""
    items: dict[str, dict[str, Any]] = {}
    expires = str(int(datetime.now(UTC).timestamp()) + 400 * 86_400)
    for row in rows:
        if not isinstance(row, PairDay):
            continue
        item = items.setdefault(
            row.page_id,
            {
                "pk": {"S": f"{shop}#{row.day.isoformat()}"},
                "sk": {"S": f"P#{row.page_id}"},
                "expires_at": {"N": expires},
            },
        )
        item[f"i{row.product_id}"] = {"N": str(row.impressions)}
        item[f"x{row.product_id}"] = {"N": str(row.exposure)}
        if row.clicks:
            item[f"c{row.product_id}"] = {"N": str(row.clicks)}
        if row.purchases:
            item[f"p{row.product_id}"] = {"N": str(row.purchases)}
    return list(items.values())


def seed_shop(aws: Any, pool: ThreadPoolExecutor, shop: str, generated: GeneratedShop, last_day: date) -> int:
    """DAYS days of counters and page items (25 items a request from 8 threads, a day at a time), and every page's
    neighbours through the similarity job's own store; the counter items written."""
    from reclift.data.similarity import SimilarityStore
    from reclift.similarity import Neighbour
    from reclift_local.worker import function_env

    dynamodb, table = seeding_client(aws), aws.resource("CountersTable")
    written = 0
    for age in range(DAYS):
        day = last_day - timedelta(days=age)
        rows = list(generated.day_rows(day))
        written += put_items(pool, dynamodb, table, counter_items(shop, rows) + page_items(shop, rows))
    neighbours = {
        product_id(page): [Neighbour(product, jaccard, 2.0, 1.0) for product, jaccard in generated.similar(page)]
        for page in range(generated.products)
    }
    with function_env(aws.environment("SimilarityFunction")):
        SimilarityStore().save_similarity(shop, last_day.isoformat(), neighbours, dict.fromkeys(neighbours, 10))
    return written


def dollars(rcu: float, wcu: float, seconds: float, memory_mb: int) -> dict[str, float]:
    """A run's list price: its capacity units, and its Lambda time at the function's memory."""
    dynamodb = rcu * PRICE["rcu"] + wcu * PRICE["wcu"]
    compute = seconds * memory_mb / 1024 * PRICE["lambda_gb_second"]
    return {"dynamodb": dynamodb, "lambda": compute, "run": dynamodb + compute, "month": 30 * (dynamodb + compute)}


def end_to_end(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Each catalogue size is its own shop in one DynamoDB Local (the handlers keep their clients per process),
    learned under each policy."""
    from tests.support.aws import emulated_aws

    from reclift.data.store import dynamo_store
    from reclift.settings import ShopSettings
    from reclift_local.worker import function_env

    today = datetime.now(UTC).date()
    results = []
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        learner = WarmFunction(aws, "DailyLearningFunction")
        counter = ApiCallCounter(names=logical_names(aws))
        meter = CapacityMeter(logical_names(aws))
        for products in sizes:
            shop = f"bench-{products}.myshopify.com"
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                seeded = seed_shop(aws, pool, shop, GeneratedShop(products), today)
            seed_seconds = time.perf_counter() - started
            for policy in POLICIES:
                with function_env(aws.environment("AdminFunction")):
                    dynamo_store().put_settings(shop, ShopSettings.model_validate({"policy": policy}))
                cpu_started = time.process_time()  # DynamoDB Local is a process of its own: this is the handler's
                block, capacity, seconds = run_job(learner, counter, meter, {"shop": shop, "day": today.isoformat()})
                cpu_seconds = time.process_time() - cpu_started
                units = capacity.units()
                results.append(
                    {
                        "products": products,
                        "policy": policy,
                        "counter_items": seeded,
                        "seed_s": seed_seconds,
                        "wall_s": seconds,
                        "cpu_s": cpu_seconds,
                        "aws_s": block.aws_seconds,
                        "dynamodb_requests": calls_by_operation(block.calls, "dynamodb"),
                        "counter_items_read": sum(v for k, v in block.items.items() if k.target == "CountersTable"),
                        "dollars": dollars(units["rcu"], units["wcu"], seconds, learner.spec.memory),
                        "memory_mb": learner.spec.memory,
                        "timeout_s": learner.spec.timeout,
                    }
                    | units
                )
    return results


# ---------------------------------------------------------------------------------------------------- compute only
def resident_mib(field: str) -> float:
    """This process's resident memory from /proc (VmHWM: its peak). Not getrusage's ru_maxrss, which Linux carries
    over from the parent across fork and exec: a case started by a benchmark that already holds 800 MiB would report
    at least that."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def compute_case(products: int, policy: str, clicks_days: int = DAYS) -> dict[str, Any]:
    """`learn_shop` over a generated shop, in this interpreter: CPU seconds and peak resident memory (the
    interpreter and the learner's modules included, as Lambda counts them). The pages' items count clicks on the
    window's last `clicks_days` days: under `context`, fewer than the window's are read a second time for the click
    level, and both reads' pairs are held."""
    from benchmarks.memory_store import MemoryStore
    from reclift.logic.learning import LearnShop, learn_shop
    from reclift.settings import ShopSettings

    generated = GeneratedShop(products, clicks_from=TODAY - timedelta(days=clicks_days - 1))
    settings = MemoryStore()
    settings.put_settings("bench", ShopSettings.model_validate({"policy": policy}))
    before = resident_mib("VmHWM")
    started = time.process_time()
    summary = learn_shop(LearnShop(shop="bench", day=TODAY), generated, settings)
    return {
        "products": products,
        "policy": policy,
        "clicks_days": clicks_days,
        "pair_days": products * DAYS * (SHOWN_A_DAY + 1),
        "cpu_s": time.process_time() - started,
        "peak_rss_mib": resident_mib("VmHWM"),
        "rss_before_mib": before,
        "written": generated.written,
        "blacklisted": summary["blacklisted"],
    }


def compute_only(products: int, policy: str, clicks_days: int = DAYS) -> dict[str, Any]:
    """`compute_case` in a fresh interpreter, so that each peak is its own."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.learning_job",
            "--compute",
            str(products),
            policy,
            "--clicks-days",
            str(clicks_days),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[str]:
    e2e = end_to_end(QUICK_END_TO_END if quick else END_TO_END)
    sizes = QUICK_COMPUTE_ONLY if quick else COMPUTE_ONLY
    compute = [compute_only(n, p) for n in sizes for p in POLICIES]
    compute += [compute_only(n, "context", FIRST_CLICK_MONTH_DAYS) for n in sizes]
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "days": DAYS,
            "neighbours_a_page": NEIGHBOURS,
            "shown_a_page_a_day": SHOWN_A_DAY + 1,
            "end_to_end_products": sorted({r["products"] for r in e2e}),
            "compute_only_products": sorted({r["products"] for r in compute}),
            "first_click_month_clicks_days": FIRST_CLICK_MONTH_DAYS,
            "prices": {name: PRICE[name] for name in ("rcu", "wcu", "lambda_gb_second")},
            "quick": quick,
        },
        figures={"end_to_end": e2e, "compute_only": compute},
    )
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    variants = [(policy, DAYS, "o-", policy) for policy in POLICIES]
    variants.append(("context", FIRST_CLICK_MONTH_DAYS, "s--", "context, first month of click counting"))
    for policy, clicks_days, style, label in variants:
        mine = [r for r in compute if r["policy"] == policy and r["clicks_days"] == clicks_days]
        left.plot([r["products"] for r in mine], [r["cpu_s"] for r in mine], style, label=label)
        right.plot([r["products"] for r in mine], [r["peak_rss_mib"] for r in mine], style, label=label)
    memory = e2e[0]["memory_mb"] if e2e else None
    if memory:
        right.axhline(memory, color="grey", linestyle=":", label="the function's MemorySize")
    for axis, label in ((left, "CPU seconds"), (right, "peak resident MiB")):
        axis.set_xscale("log")
        axis.set_xlabel(f"products (every page active, {DAYS} days)")
        axis.set_ylabel(label)
        axis.legend()
    left.set_title("the learner alone: CPU")
    right.set_title("the learner alone: memory")
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for row in e2e:
        lines.append(
            f"  {row['products']:>7,} products x {DAYS} d, {row['policy']}, end to end: {row['wall_s']:.1f} s "
            f"({row['cpu_s']:.1f} s of it the handler's CPU), "
            f"{row['rcu']:,.0f} RCU {row['wcu']:,.0f} WCU, ${row['dollars']['run']:.4f} a night; "
            f"{row['dynamodb_requests']}"
        )
    for row in compute:
        clicks = "" if row["clicks_days"] == DAYS else f" (clicks on the last {row['clicks_days']} d)"
        lines.append(
            f"  {row['products']:>7,} products x {DAYS} d, {row['policy']}{clicks}, the learner alone: "
            f"{row['cpu_s']:.1f} s CPU, peak {row['peak_rss_mib']:.0f} MiB resident"
        )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one case of the learning_job benchmark, printed as JSON")
    case = parser.add_mutually_exclusive_group(required=True)
    case.add_argument("--compute", nargs=2, metavar=("PRODUCTS", "POLICY"), help="the learner alone, in this process")
    case.add_argument("--end-to-end", type=int, metavar="PRODUCTS", help="every policy on DynamoDB Local")
    parser.add_argument(
        "--clicks-days",
        type=int,
        default=DAYS,
        help=f"the pages' items count clicks on the window's last N days (default: all {DAYS}; --compute alone)",
    )
    arguments = parser.parse_args()
    if arguments.end_to_end:
        for row in end_to_end((arguments.end_to_end,)):
            print(json.dumps(row))
    else:
        print(json.dumps(compute_case(int(arguments.compute[0]), arguments.compute[1], arguments.clicks_days)))
