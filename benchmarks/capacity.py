"""What AWS bills per operation: DynamoDB read and write capacity units, measured on DynamoDB Local through the real
handlers, against the shop's traffic.

Every DynamoDB request of the measured invocation asks for ReturnConsumedCapacity (INDEXES) and its units are summed
(`benchmarks.common.CapacityMeter`); a transaction is costed per item at AWS's 2×, since DynamoDB Local undercounts
them. The day's state a request meets (the visitors already counted, the counters, orders and attributions of the
window) is seeded directly, as the functions key it, so a day of a million visitors costs seconds to set up.

Operations: a storefront events request (one impression of 4 products by a new visitor, in the widget of a product
page whose rec id signs the page) on a day that already has 0 to 1M visitors, with what counting it costs
(CountingFunction on the events table's stream: alone in its batch, the worst case, and amortized over batches of 10
to 1,000 requests, as traffic fills them), and the same request with a version-1 rec id (no page: what cart and home
widgets, and ids issued before the page was signed, cost); a page item's size and write units as its candidates of
the day grow; orders/create of 3 lines, its rec ids with and without a page; a recommendation request (product
placement); the nightly learning of a 1k-product shop with 1k or 100k visitors a day, without and with every
product's page item of every day; GET /admin/roi over 30 and 365 days. The benchmark fails (non-zero exit) when a
per-request figure grows with traffic, or a target is missed.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import tracemalloc
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CapacityMeter,
    WarmFunction,
    job_event,
    logical_names,
    put_items,
    pyplot,
    quiet_stdout,
    save_figure,
    seeding_client,
    write_results,
)
from benchmarks.learning_job import MEAN_PLACE_EXPOSURE
from reclift.tracking import EXPOSURE_DIGITS

NAME = "capacity"
DESCRIPTION = (
    "DynamoDB capacity units (RCU, WCU; transactions at 2x) per operation on DynamoDB Local through the handlers, "
    "against the day's visitors, the shop's size and the report's range"
)
EVENT_VISITORS = (0, 1_000, 10_000, 50_000, 100_000, 1_000_000)
QUICK_EVENT_VISITORS = (0, 1_000, 100_000)
PRODUCTS = 1_000
DAYS = 30
REPORT_DAYS = 365
SHOPS = {"small": 1_000, "large": 100_000}  # visitors a day
HOLDOUT_SHARE = 0.1
ORDER_RATE = 0.02  # orders per visitor
ATTRIBUTED_SHARE = 0.1  # orders with an attributed line
GROWTH_TOLERANCE = 1.10  # a per-request figure may vary this much between no traffic and the most
BLACK_FRIDAY = {"events_requests_per_s": 2_000, "orders_per_s": 100}
BLACK_FRIDAY_SAMPLE = 8  # events requests of different visitors (and half as many orders) sampled
# The counting function's batches: up to 1,000 records or 5 minutes (template.yaml). At Black Friday's rate a stream
# shard fills a batch in well under a second. DynamoDB gives a stream a shard per table partition; a partition takes at
# most 1,000 writes a second, so 2,000 impression items a second need at least 2 (4 assumed: more shards, more
# batches).
STREAM_BATCH = 1_000
STREAM_SHARDS = 4
BATCH_SIZES = (1, 10, 100, 1_000)
QUICK_BATCH_SIZES = (1, 10, 100)
TIMED_REQUESTS = 20  # warm requests timed for the handler's own time (the median)
CATALOG_SHOWN = 1_000  # products the amortized batches' requests show, by Zipf-like popularity
# A widget product's chance of a click (a CTR of 5 %): each shown product of an amortized batch's impression requests
# is clicked in a request of its own with this chance, and the seeded page items hold the clicks it gives them.
CLICK_RATE = 0.05
PAGE = "999"  # the product page of the measured widgets (its rec ids sign it)
PAGE_CANDIDATES = (10, 30, 50, 100)  # distinct candidates a page item holds for the day
# The nightly learning with page items: every product's page has an item every day, with this many candidates
# (a small shop's pages show few distinct candidates a day, a large shop's explore more of each page's candidates).
LEARNING_PAGE_CANDIDATES = {"small": 10, "large": 30}
PARTITION_WCU_PER_S = 1_000  # DynamoDB's write limit of one partition (and so of one item or partition key at worst)
TARGETS = {
    "event_request_wcu": 8.0,
    "roi_365_days_large_rcu": 1_000.0,
    "learning_large_over_small_rcu": 1.2,
}


# ---------------------------------------------------------------------------------------------------- seeding
def arm_items(shop: str, day: date, visitors: int) -> list[dict[str, Any]]:
    """The day's events totals as the counting function leaves them (DynamoDB JSON): per hour, the events' part
    (`_hour#HH#e`) with its impressions (4 per visitor) and each arm's visitors first seen that hour. The visitors'
    day markers are not seeded: a new visitor's conditional put costs the same whatever other markers the day
    holds."""
    from reclift.data.store import HOUR_COUNTER, day_key

    holdout = int(visitors * HOLDOUT_SHARE)
    items = []
    for hour in range(24):

        def share(count: int, hour: int = hour) -> int:
            return count // 24 + (1 if hour < count % 24 else 0)

        learning, held = share(visitors - holdout), share(holdout)
        if learning or held:
            items.append(
                {
                    "pk": {"S": day_key(shop, day)},
                    "sk": {"S": f"{HOUR_COUNTER}{hour:02d}#e"},
                    "impressions": {"N": str(4 * (learning + held))},
                    "visitors_learning": {"N": str(learning)},
                    "visitors_holdout": {"N": str(held)},
                }
            )
    return items


def order_items(shop: str, day: date, orders: int, seed: int, *, products: int) -> list[dict[str, Any]]:
    """The day's orders (their basket items) and, for a share of them, an attributed line (DynamoDB JSON)."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for index in range(orders):
        order_id = f"{seed}{index:06d}"
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=rng.randrange(86_400))
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        created = at.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
        basket = [str(1_000_000 + rng.randrange(products)) for _ in range(rng.randint(1, 4))]
        common = {"shop": {"S": shop}, "order_id": {"S": order_id}, "created_at": {"S": created}}
        items.append(
            {
                "pk": {"S": f"{shop}#{order_id}"},
                "sk": {"S": "order"},
                "gsi1pk": {"S": f"{shop}#basket"},
                "gsi1sk": {"S": f"{stamp}#{order_id}"},
                "currency": {"S": "USD"},
                "basket": {"L": [{"S": product} for product in basket]},
                "visitor_id": {"S": uuid.UUID(int=rng.getrandbits(128)).hex},
            }
            | common
        )
        if rng.random() < ATTRIBUTED_SHARE:
            items.append(
                {
                    "pk": {"S": f"{shop}#{order_id}"},
                    "sk": {"S": "line#1"},
                    "gsi1pk": {"S": f"{shop}#attr"},
                    "gsi1sk": {"S": f"{stamp}#{order_id}#1"},
                    "currency": {"S": "USD"},
                    "line_id": {"S": "1"},
                    "product_id": {"S": basket[0]},
                    "quantity": {"N": "1"},
                    "revenue": {"N": f"{rng.randint(5, 120)}.00"},
                    "channel": {"S": "click_through" if rng.random() < 0.5 else "view_through"},
                    "arm": {"S": "holdout" if rng.random() < HOLDOUT_SHARE else "learning"},
                    "visitor_id": {"S": uuid.UUID(int=rng.getrandbits(128)).hex},
                }
                | common
            )
    return items


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


def seed_shop(aws: Any, pool: ThreadPoolExecutor, shop: str, visitors: int, days: int, last_day: date) -> None:
    """`days` days of a shop of `visitors` a day: counters of PRODUCTS products, the arms' visitors, orders."""
    dynamodb = seeding_client(aws)
    counters, orders = aws.resource("CountersTable"), aws.resource("OrdersTable")
    rng = random.Random(visitors)
    for age in range(days):
        day = last_day - timedelta(days=age)
        rows = []
        for product, counts in counter_rows(PRODUCTS, day, rng):
            item: dict[str, Any] = {"pk": {"S": f"{shop}#{day.isoformat()}"}, "sk": {"S": product}}
            rows.append(item | {name: {"N": str(value)} for name, value in counts.items()})
        shop_day = {"pk": {"S": f"{shop}#{day.isoformat()}#o"}, "sk": {"S": "_shop"}}
        rows.append(shop_day | {"orders": {"N": str(int(visitors * ORDER_RATE))}, "test_orders": {"N": "0"}})
        put_items(pool, dynamodb, counters, rows + arm_items(shop, day, visitors))
        order_rows = order_items(shop, day, int(visitors * ORDER_RATE), seed=1_000 + age, products=PRODUCTS)
        put_items(pool, dynamodb, orders, order_rows)


def page_item(shop: str, day: date, page: str, candidates: list[str], rng: random.Random) -> dict[str, Any]:
    """A page's item of the day (DynamoDB JSON) as counting and attribution leave it: each candidate's impressions
    in that page's widget and their exposure, its clicks there (at CLICK_RATE), and its purchases there for a few."""
    item: dict[str, Any] = {
        "pk": {"S": f"{shop}#{day.isoformat()}"},
        "sk": {"S": f"P#{page}"},
        "expires_at": {"N": str(int(datetime.now(UTC).timestamp()) + 400 * 86_400)},
    }
    for candidate in candidates:
        impressions = rng.randint(1, 60)
        item[f"i{candidate}"] = {"N": str(impressions)}
        item[f"x{candidate}"] = {"N": str(round(impressions * MEAN_PLACE_EXPOSURE, EXPOSURE_DIGITS))}
        clicks = sum(rng.random() < CLICK_RATE for _ in range(impressions))
        if clicks:
            item[f"c{candidate}"] = {"N": str(clicks)}
        if rng.random() < 0.15:
            item[f"p{candidate}"] = {"N": "1"}
    return item


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: each attribute's name, a string's UTF-8 bytes, a number's significant
    digits a byte for two, plus one."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        else:
            digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
            size += (len(digits) + 1) // 2 + 1
    return size


def seed_pages(aws: Any, pool: ThreadPoolExecutor, shop: str, candidates: int, days: int, last_day: date) -> None:
    """Every product's page item of every day, each with `candidates` candidates (products of the catalog)."""
    dynamodb = seeding_client(aws)
    counters = aws.resource("CountersTable")
    rng = random.Random(candidates)
    for age in range(days):
        day = last_day - timedelta(days=age)
        rows = []
        for index in range(PRODUCTS):
            chosen = rng.sample(range(PRODUCTS), candidates)
            page_candidates = [str(1_000_000 + other) for other in chosen if other != index]
            rows.append(page_item(shop, day, str(1_000_000 + index), page_candidates, rng))
        put_items(pool, dynamodb, counters, rows)


def seed_report_year(aws: Any, pool: ThreadPoolExecutor, shop: str, visitors: int, last_day: date) -> None:
    """The days of a year before the `DAYS` seeded in full, with what GET /admin/roi's totals are made of: the shop's
    day totals, the arms' counts and the attributed lines (their baskets and product counters left out); the ROI's
    day totals are then rebuilt from them (`seed_roi_totals`)."""
    dynamodb = seeding_client(aws)
    counters, orders = aws.resource("CountersTable"), aws.resource("OrdersTable")
    for age in range(DAYS, REPORT_DAYS):
        day = last_day - timedelta(days=age)
        shop_day = {"pk": {"S": f"{shop}#{day.isoformat()}#o"}, "sk": {"S": "_shop"}}
        totals = shop_day | {"orders": {"N": str(int(visitors * ORDER_RATE))}, "test_orders": {"N": "0"}}
        put_items(pool, dynamodb, counters, [totals, *arm_items(shop, day, visitors)])
        order_rows = order_items(shop, day, int(visitors * ORDER_RATE), seed=1_000 + age, products=PRODUCTS)
        put_items(pool, dynamodb, orders, [row for row in order_rows if row["sk"]["S"].startswith("line#")])


# ---------------------------------------------------------------------------------------------------- GET /admin/roi
def seed_roi_totals(aws: Any, shop: str, first: date, last: date) -> None:
    """The ROI's day totals of the seeded days (what GET /admin/roi reads), as recording their orders would have left
    them: rebuilt from the seeded attribution lines and shop counters by the backfill (`reclift.data.roi_backfill`),
    whole months at a time."""
    from reclift.data.roi_backfill import rebuild_months
    from reclift_local.worker import function_env

    with function_env(aws.environment("AttributionFunction")):
        rebuild_months(shop, first, last)


# ---------------------------------------------------------------------------------------------------- recommendation
def recommendation_cold_and_warm(bench: Bench, shop: str) -> dict[str, Any]:
    """A product page's recommendation request from a cold execution environment (the serving caches empty: every
    key read) and then a warm one (another visitor on the same page, within the caches' lifetimes: the shop's item and
    the profiles alone); the row is the cold request's, with the warm one's under "warm"."""
    from tests.support.shopify import proxy_event, proxy_query

    from reclift.data.serving import serving_reader

    params = {"placement": "product", "product_id": "2000001", "limit": "4"}
    with quiet_stdout():  # the first request of the minute also writes the served tally
        first = proxy_query(shop, extra={**params, "visitor_id": "a"})
        bench.storefront(proxy_event("GET", "/apps/proxy/recommendations", first))
    serving_reader().caches.clear()
    rows = []
    for visitor in ("v-7", "v-8"):
        query = proxy_query(shop, extra={**params, "visitor_id": visitor})
        with bench.meter.metering() as capacity, quiet_stdout():
            response, _ = bench.storefront(proxy_event("GET", "/apps/proxy/recommendations", query))
        assert response["statusCode"] == 200, response
        rows.append(capacity.summary() | {"products": len(json.loads(response["body"])["products"])})
    cold, warm = rows
    times, computes = [], []
    for n in range(TIMED_REQUESTS):  # warm requests' own time: what Lambda bills (DynamoDB Local's round trips)
        query = proxy_query(shop, extra={**params, "visitor_id": f"timed-{n}"})
        with bench.meter.metering() as capacity, quiet_stdout():
            seconds = bench.storefront(proxy_event("GET", "/apps/proxy/recommendations", query))[1]
        times.append(seconds)
        computes.append(seconds - capacity.dynamodb_seconds)
    warm["median_seconds"] = statistics.median(times)
    warm["median_compute_seconds"] = statistics.median(computes)
    return cold | {"cache": "cold", "warm": {k: v for k, v in warm.items() if k != "wcu_by_item"}}


# ---------------------------------------------------------------------------------------------------- operations
class Bench:
    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self.meter = CapacityMeter(logical_names(aws))
        self.storefront = WarmFunction(aws, "StorefrontFunction")
        self.admin = WarmFunction(aws, "AdminFunction")
        self.learner = WarmFunction(aws, "DailyLearningFunction")

    def count(self) -> dict[str, Any]:
        """What CountingFunction writes for everything the events table's stream holds now (in batches of up to
        STREAM_BATCH records, as its event source mapping delivers them)."""
        from tests.support.aws import process_stream

        with self.meter.metering() as capacity, quiet_stdout():
            deliveries = process_stream(self.aws, "CountingFunction")
        failed = [d.outcome.error for d in deliveries if d.outcome.error]
        assert not failed, failed
        return capacity.summary() | {
            "invocations": len(deliveries),
            "records": sum(len(d.records) for d in deliveries),
        }

    def event_request(
        self, shop: str, visitor: str, products: list[str], page: str | None = PAGE, clicked: int | None = None
    ) -> tuple[dict[str, Any], Any]:
        """One impression of `products` on the page of `page` (signed in the rec id; None: a version-1 rec id); with
        `clicked`, the click on that place of the same widget instead (a request of its own, after the impression)."""
        from tests.support.recs import shown
        from tests.support.shopify import proxy_event, proxy_query

        rec = shown(shop, visitor, products, page=page)
        event = {"visitor_id": visitor, "placement": "product", "source_product_id": page or "999"} | rec
        if clicked is None:
            event |= {
                "type": "impression",
                "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(products)],
            }
        else:
            event |= {"type": "click", "product_id": products[clicked - 1], "position": clicked}
        body = json.dumps({"events": [event]}).encode()
        with self.meter.metering() as capacity, quiet_stdout():
            response, seconds = self.storefront(proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
        return capacity.summary() | {"seconds": seconds}, response

    def events(self, pool: ThreadPoolExecutor, visitors: tuple[int, ...]) -> list[dict[str, Any]]:
        """Per day's traffic: the request's own units, and its counting alone in a batch (the worst case)."""
        dynamodb = seeding_client(self.aws)
        today = datetime.now(UTC).date()
        rows = []
        for seen in visitors:
            shop = f"events-{seen}.myshopify.com"
            row: dict[str, Any] = {"visitors_today": seen}
            try:
                put_items(pool, dynamodb, self.aws.resource("CountersTable"), arm_items(shop, today, seen))
            except Exception as exc:
                row["seeding_failed"] = f"{type(exc).__name__}: {str(exc)[:160]}"
            for _ in range(2):  # the shop's registration (once an hour per execution environment), warm caches
                self.event_request(shop, "warm-up-visitor", ["1", "2", "3", "4"])
                self.count()
            summary, response = self.event_request(shop, f"new-{uuid.uuid4().hex}", ["11", "12", "13", "14"])
            counting = self.count()
            row |= summary | {"status": response["statusCode"]}
            timed = [self.event_request(shop, f"timed-{n}", ["21", "22", "23", "24"])[0] for n in range(5)]
            row["median_seconds"] = statistics.median(t["seconds"] for t in timed)
            # The handler's own compute: its time less its waits on DynamoDB Local (slower than AWS's few ms).
            row["median_compute_seconds"] = statistics.median(t["seconds"] - t["dynamodb_seconds"] for t in timed)
            row["median_dynamodb_requests"] = statistics.median(t["requests"] for t in timed)
            self.count()
            row["request_wcu"] = summary["wcu"]
            row["counting"] = counting
            row["wcu"] = summary["wcu"] + counting["wcu"]
            row["rcu"] = summary["rcu"] + counting["rcu"]
            if response["statusCode"] != 200:
                row["error"] = str(response.get("body"))[:300]
            rows.append(row)
        return rows

    def version_1(self) -> dict[str, Any]:
        """The events request with a version-1 rec id (no page), alone in its counting batch: its 4 products' own
        counters, as every product-page impression was counted before the page was signed."""
        shop = "events-version-1.myshopify.com"
        self.event_request(shop, "warm-up-visitor", ["1", "2", "3", "4"], page=None)
        self.count()
        summary, response = self.event_request(shop, f"new-{uuid.uuid4().hex}", ["11", "12", "13", "14"], page=None)
        counting = self.count()
        assert response["statusCode"] == 200, response
        return {
            "request_wcu": summary["wcu"],
            "counting": counting,
            "wcu": summary["wcu"] + counting["wcu"],
            "rcu": summary["rcu"] + counting["rcu"],
        }

    def page_items(self, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
        """A page item of the day holding `size` candidates' impressions and purchases (seeded as counting and
        attribution leave it), then one impression of 4 of them on that page, alone in its counting batch: the page
        item's size (DynamoDB's sizing of its attributes) and the write units of its update."""
        dynamodb = seeding_client(self.aws)
        today = datetime.now(UTC).date()
        rng = random.Random(23)
        rows = []
        for size in sizes:
            shop = f"page-{size}.myshopify.com"
            self.event_request(shop, "warm-up-visitor", ["1", "2", "3", "4"], page="998")
            self.count()
            candidates = [str(7_000_000_000_000 + rank) for rank in range(size)]
            item = page_item(shop, today, PAGE, candidates, rng)
            dynamodb.put_item(TableName=self.aws.resource("CountersTable"), Item=item)
            summary, response = self.event_request(shop, f"new-{uuid.uuid4().hex}", candidates[:4])
            assert response["statusCode"] == 200, response
            counting = self.count()
            page_units = [units for key, units in counting["wcu_by_item"].items() if key.endswith(f"|P#{PAGE}")]
            rows.append(
                {
                    "candidates": size,
                    "item_bytes": item_bytes(item),
                    "page_item_wcu": sum(page_units),
                    "counting_wcu": counting["wcu"],
                    "wcu": summary["wcu"] + counting["wcu"],
                }
            )
        return rows

    def amortized(self, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
        """Counting's units per request when a batch holds `size` impression requests of different new visitors, each
        of 4 products drawn by Zipf-like popularity from CATALOG_SHOWN on a page drawn the same way, and the click
        requests that follow them (each shown product clicked at CLICK_RATE, a request of its own, in the same batch):
        what traffic buys, per request of either kind."""
        rng = random.Random(14)
        weights = [1 / (rank + 1) for rank in range(CATALOG_SHOWN)]
        catalog = [str(5_000 + rank) for rank in range(CATALOG_SHOWN)]
        rows = []
        for size in sizes:
            shop = f"batch-{size}.myshopify.com"
            self.event_request(shop, "warm-up-visitor", ["1", "2", "3", "4"])
            self.count()
            direct = []
            for _ in range(size):
                page = rng.choices(catalog, weights)[0]
                products: list[str] = []
                while len(products) < 4:
                    pick = rng.choices(catalog, weights)[0]
                    if pick not in products and pick != page:
                        products.append(pick)
                visitor = f"new-{uuid.uuid4().hex}"
                summary, response = self.event_request(shop, visitor, products, page=page)
                assert response["statusCode"] == 200, response
                direct.append(summary["wcu"])
                for place in range(1, len(products) + 1):
                    if rng.random() < CLICK_RATE:
                        summary, response = self.event_request(shop, visitor, products, page=page, clicked=place)
                        assert response["statusCode"] == 200, response
                        direct.append(summary["wcu"])
            counting = self.count()
            requests = len(direct)
            request_wcu = sum(direct) / requests
            rows.append(
                {
                    "requests_per_batch": requests,
                    "impression_requests": size,
                    "click_requests": requests - size,
                    "request_wcu": request_wcu,
                    "counting_wcu_per_request": counting["wcu"] / requests,
                    "wcu": request_wcu + counting["wcu"] / requests,
                    "counting": {k: v for k, v in counting.items() if k != "wcu_by_item"},
                }
            )
        return rows

    def order(self, page: str | None = PAGE) -> dict[str, Any]:
        """orders/create of 3 lines after 2 events, their rec ids signing the page of `page` (None: version 1)."""
        from benchmarks.order_requests import Case, Harness

        harness = Harness(self.aws)
        shop, order = harness.new_order(Case(lines=3, prior_events=2, page=page))
        record = harness.deliver(shop, order)
        attribution = WarmFunction(self.aws, "AttributionFunction")
        with self.meter.metering() as capacity, quiet_stdout():
            response, _ = attribution({"Records": [record]})
        assert response == {"batchItemFailures": []}, response
        return capacity.summary()

    def recommendation(self, shop: str = "serving.myshopify.com", view_sessions: int = 0) -> dict[str, Any]:
        """A product page's recommendation, cold and warm, for a shop with a learned run, co-purchase neighbours and
        the catalog; with `view_sessions`, the page's product also viewed together with that many others."""
        from benchmarks.recommendation_request import CANDIDATES, best_sellers, listing
        from reclift.data.catalog import CatalogStore
        from reclift.data.learning import LearningStore
        from reclift.data.similarity import SimilarityStore, ViewedTogether
        from reclift.learning import ProductDay, aggregate, learn
        from reclift.settings import ShopSettings
        from reclift.similarity import similar_products
        from reclift_local.worker import function_env

        today = datetime.now(UTC).date()
        rng = random.Random(5)
        with function_env(self.aws.environment("DailyLearningFunction")):
            rows = [
                ProductDay(today, s.product_id, s.impressions, s.clicks, s.purchases, s.units, s.revenue)
                for s in best_sellers(CANDIDATES, random.Random(3))
            ]
            prior, performance = learn(aggregate(rows, today=today, window_days=30, half_life_days=14), ShopSettings())
            LearningStore().save_run(shop, today.isoformat(), "bayes", prior, performance, list(performance), None)
        baskets = [["2000001", str(4_000_000 + k)] for k in range(60) for _ in range(rng.randint(2, 6))]
        sessions = [["2000001", str(4_100_000 + k)] for k in range(view_sessions) for _ in range(rng.randint(2, 6))]
        with function_env(self.aws.environment("SimilarityFunction")):
            viewed = ViewedTogether(similar_products(sessions), weight=0.8) if sessions else None
            SimilarityStore().save_similarity(shop, today.isoformat(), similar_products(baskets), {}, None, viewed)
        with function_env(self.aws.environment("AttributionFunction")):
            catalog = CatalogStore()
            for product in sorted({p for basket in [*baskets, *sessions] for p in basket} | set(performance)):
                catalog.save_listing(shop, listing(product, rng))
        return recommendation_cold_and_warm(self, shop)

    def black_friday(self) -> dict[str, Any]:
        """Write units per second on the hottest item and partition key of one shop at Black Friday's rates. Of
        BLACK_FRIDAY_SAMPLE requests of different visitors (orders of different buyers), all showing or buying the
        same products, an item written by at least two is shared by the shop's traffic (the shop's own items, parts
        drawn at random among a few, products everyone is shown or buys): its rate is the request rate times its mean
        units per request. An item only one request wrote is that visitor's own."""
        from tests.support.shopify import order_payload

        from benchmarks.order_requests import Harness, order_lines, storefront_events

        shop = "black-friday.myshopify.com"
        shown_products, bought = ["11", "12", "13", "14"], ["11", "12", "13"]
        self.event_request(shop, "warm-up-visitor", shown_products)
        self.count()
        events = [
            self.event_request(shop, f"bf-{uuid.uuid4().hex}", shown_products)[0] for _ in range(BLACK_FRIDAY_SAMPLE)
        ]
        # Counting: a full batch of the shard's records is one invocation; everyone was shown the same 4 products
        # (the worst case for one item), each visitor new (the worst case for the markers).
        for _ in range(STREAM_BATCH - BLACK_FRIDAY_SAMPLE):
            self.event_request(shop, f"bf-{uuid.uuid4().hex}", shown_products)
        batch = self.count()
        per_shard_rate = BLACK_FRIDAY["events_requests_per_s"] / STREAM_SHARDS
        batches_per_s = STREAM_SHARDS * per_shard_rate / STREAM_BATCH
        harness = Harness(self.aws)
        attribution = WarmFunction(self.aws, "AttributionFunction")
        orders = []
        for n in range(BLACK_FRIDAY_SAMPLE // 2 + 1):  # the first registers the shop's currency
            buyer = f"bf-buyer-{uuid.uuid4().hex}"
            harness.track(shop, storefront_events(shop, bought, 2, buyer, PAGE))
            harness.next_order_id += 1
            lines = order_lines(shop, buyer, bought, PAGE)
            order = order_payload(
                order_id=harness.next_order_id, created_at=datetime.now(UTC), visitor_id=buyer, lines=lines
            )
            record = harness.deliver(shop, order)
            with self.meter.metering() as capacity, quiet_stdout():
                response, _ = attribution({"Records": [record]})
            assert response == {"batchItemFailures": []}, response
            if n:
                orders.append(capacity.summary())

        def shared(summaries: list[dict[str, Any]]) -> dict[str, float]:
            writers = Counter(key for summary in summaries for key in summary["wcu_by_item"])
            return {
                key: sum(summary["wcu_by_item"].get(key, 0.0) for summary in summaries) / len(summaries)
                for key, count in writers.items()
                if count >= 2
            }

        per_item: dict[str, float] = {}
        for rate, summaries in (
            (BLACK_FRIDAY["events_requests_per_s"], events),
            (BLACK_FRIDAY["orders_per_s"], orders),
        ):
            for key, units in shared(summaries).items():
                per_item[key] = per_item.get(key, 0.0) + rate * units
        # Every batch of every shard writes the same counter items (each shard's batches come in sequence); the
        # markers are each visitor's own, but all share the day's partition key.
        for key, units in batch["wcu_by_item"].items():
            per_item[key] = per_item.get(key, 0.0) + batches_per_s * units
        per_partition: dict[str, float] = {}
        for key, units in per_item.items():
            partition = "|".join(key.split("|")[:2])
            per_partition[partition] = per_partition.get(partition, 0.0) + units
        hottest_item = max(per_item.items(), key=lambda pair: pair[1])
        hottest_partition = max(per_partition.items(), key=lambda pair: pair[1])
        return {
            "rates": BLACK_FRIDAY,
            "stream": {
                "shards": STREAM_SHARDS,
                "batch_records": STREAM_BATCH,
                "batches_per_s": batches_per_s,
                "counting_batch_wcu": batch["wcu"],
            },
            "hottest_item": {"key": hottest_item[0].replace(shop, "{shop}"), "wcu_per_s": hottest_item[1]},
            "hottest_partition_key": {
                "key": hottest_partition[0].replace(shop, "{shop}"),
                "wcu_per_s": hottest_partition[1],
            },
            "shared_items_wcu_per_s": {k.replace(shop, "{shop}"): v for k, v in sorted(per_item.items())},
        }

    def learning(self, shop: str, day: date) -> dict[str, Any]:
        with self.meter.metering() as capacity, quiet_stdout():
            response, seconds = self.learner(job_event({"shop": shop, "day": day.isoformat()}))
        assert response == {"batchItemFailures": []}, response
        return capacity.summary() | {"seconds": seconds}

    def roi(self, shop: str, first: date, last: date) -> dict[str, Any]:
        from tests.support.shopify import admin_event

        event = admin_event("GET", f"/admin/roi?from={first.isoformat()}&to={last.isoformat()}", shop)
        tracemalloc.start()
        with self.meter.metering() as capacity, quiet_stdout():
            response, seconds = self.admin(event)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert response["statusCode"] == 200, response
        return capacity.summary() | {"days": (last - first).days + 1, "peak_mib": peak / 2**20, "seconds": seconds}


def measure(quick: bool) -> dict[str, Any]:
    from tests.support.aws import emulated_aws, forget_execution_environment

    today = datetime.now(UTC).date()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        forget_execution_environment()
        bench = Bench(aws)
        with ThreadPoolExecutor(8) as pool:
            figures["events_request"] = bench.events(pool, QUICK_EVENT_VISITORS if quick else EVENT_VISITORS)
            figures["events_request_version_1"] = bench.version_1()
            figures["events_amortized"] = bench.amortized(QUICK_BATCH_SIZES if quick else BATCH_SIZES)
            figures["page_items"] = bench.page_items(PAGE_CANDIDATES)
            figures["orders_create_3_lines"] = bench.order()
            figures["orders_create_3_lines_version_1"] = bench.order(page=None)
            figures["recommendation_product"] = bench.recommendation()
            figures["black_friday"] = bench.black_friday()
            figures["learning"] = {}
            figures["learning_with_pages"] = {}
            figures["roi"] = {}
            for size, visitors in SHOPS.items():
                shop = f"{size}.myshopify.com"
                seed_shop(aws, pool, shop, visitors // (10 if quick else 1), DAYS, today)
                figures["learning"][size] = bench.learning(shop, today)
                seed_pages(aws, pool, shop, LEARNING_PAGE_CANDIDATES[size], DAYS, today)
                figures["learning_with_pages"][size] = bench.learning(shop, today) | {
                    "pages_a_day": PRODUCTS,
                    "candidates_a_page": LEARNING_PAGE_CANDIDATES[size],
                }
                seed_roi_totals(aws, shop, today - timedelta(days=DAYS - 1), today)
                figures["roi"][f"{size}_30_days"] = bench.roi(shop, today - timedelta(days=DAYS - 1), today)
                seed_report_year(aws, pool, shop, visitors // (10 if quick else 1), today)
                seed_roi_totals(aws, shop, today - timedelta(days=REPORT_DAYS - 1), today)
                figures["roi"][f"{size}_365_days"] = bench.roi(shop, today - timedelta(days=REPORT_DAYS - 1), today)
        forget_execution_environment()
    return figures


def verdicts(figures: dict[str, Any]) -> list[str]:
    """What fails the benchmark: a per-request figure that grows with traffic, a target missed."""
    failures = []
    events = figures["events_request"]
    quiet = events[0]
    busiest = max(events, key=lambda row: row["wcu"])
    for row in events:
        if row.get("status") != 200 or row.get("seeding_failed"):
            failures.append(f"events request on a day of {row['visitors_today']:,} visitors failed: {row}")
    if busiest["wcu"] > GROWTH_TOLERANCE * quiet["wcu"]:
        failures.append(
            f"events request grows with the day's visitors: {quiet['wcu']:g} WCU at {quiet['visitors_today']:,}, "
            f"{busiest['wcu']:g} at {busiest['visitors_today']:,}"
        )
    if max(row["wcu"] for row in events) > TARGETS["event_request_wcu"]:
        failures.append(f"events request above {TARGETS['event_request_wcu']:g} WCU")
    learning = figures["learning"]
    if learning["large"]["rcu"] > TARGETS["learning_large_over_small_rcu"] * learning["small"]["rcu"]:
        failures.append(
            f"nightly learning grows with visitors: {learning['small']['rcu']:g} RCU small, "
            f"{learning['large']['rcu']:g} large"
        )
    black_friday = figures["black_friday"]
    for what in ("hottest_item", "hottest_partition_key"):
        if black_friday[what]["wcu_per_s"] > PARTITION_WCU_PER_S:
            failures.append(
                f"Black Friday: {black_friday[what]['key']} takes {black_friday[what]['wcu_per_s']:,.0f} WCU/s "
                f"(a partition's limit is {PARTITION_WCU_PER_S:,})"
            )
    roi = figures["roi"]
    if roi["large_365_days"]["rcu"] > TARGETS["roi_365_days_large_rcu"]:
        failures.append(f"GET /admin/roi over 365 days of the large shop reads {roi['large_365_days']['rcu']:g} RCU")
    return failures


def run(quick: bool) -> list[str]:
    figures = measure(quick)
    failures = verdicts(figures)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "engine": "dynamodb-local",
            "transactions": "per item at 2x (DynamoDB Local undercounts them)",
            "products": PRODUCTS,
            "days_seeded": DAYS,
            "shops_visitors_a_day": {k: v // (10 if quick else 1) for k, v in SHOPS.items()},
            "order_rate": ORDER_RATE,
            "attributed_share": ATTRIBUTED_SHARE,
            "roi_365_days": f"{REPORT_DAYS} days seeded (shop and arm counts, lines), ROI totals rebuilt from them",
            "targets": TARGETS,
            "quick": quick,
        },
        figures=figures | {"failures": failures},
    )
    plot(figures)
    lines = [f"{NAME}: capacity units per operation (DynamoDB Local, transactions at 2x)"]
    for row in figures["events_request"]:
        lines.append(
            f"  events request, day of {row['visitors_today']:>9,} visitors: {row['wcu']:6.1f} WCU "
            f"({row.get('request_wcu', 0):.1f} the request, {row.get('counting', {}).get('wcu', 0):.1f} its counting "
            f"alone in a batch) {row['rcu']:5.1f} RCU, status {row.get('status')}"
        )
    for row in figures["events_amortized"]:
        lines.append(
            f"  events request, {row['requests_per_batch']:>5,} requests a counting batch: {row['wcu']:5.2f} WCU "
            f"({row['request_wcu']:.2f} + {row['counting_wcu_per_request']:.2f} counting)"
        )
    row = figures["events_request_version_1"]
    lines.append(
        f"  events request, version-1 rec id (no page): {row['wcu']:.1f} WCU ({row['request_wcu']:.1f} the request, "
        f"{row['counting']['wcu']:.1f} its counting alone in a batch)"
    )
    for row in figures["page_items"]:
        lines.append(
            f"  page item of {row['candidates']:>3} candidates: {row['item_bytes']:,} bytes, its update "
            f"{row['page_item_wcu']:.0f} WCU; the impression alone in its batch {row['wcu']:.1f} WCU"
        )
    for name in ("orders_create_3_lines", "orders_create_3_lines_version_1", "recommendation_product"):
        row = figures[name]
        lines.append(f"  {name}: {row['wcu']:.1f} WCU {row['rcu']:.1f} RCU, {row['requests']} requests")
    warm = figures["recommendation_product"]["warm"]
    lines.append(f"  recommendation_product, warm caches: {warm['rcu']:.1f} RCU, {warm['requests']} requests")
    for what in ("hottest_item", "hottest_partition_key"):
        row = figures["black_friday"][what]
        lines.append(f"  Black Friday, {what.replace('_', ' ')}: {row['key']} at {row['wcu_per_s']:,.0f} WCU/s")
    for size, row in figures["learning"].items():
        lines.append(f"  nightly learning, {size} shop: {row['wcu']:.0f} WCU {row['rcu']:.1f} RCU")
    for size, row in figures["learning_with_pages"].items():
        lines.append(
            f"  nightly learning, {size} shop with {row['pages_a_day']:,} page items a day of "
            f"{row['candidates_a_page']} candidates: {row['wcu']:.0f} WCU {row['rcu']:.1f} RCU"
        )
    for name, row in figures["roi"].items():
        lines.append(f"  GET /admin/roi {name}: {row['rcu']:.1f} RCU, peak {row['peak_mib']:.1f} MiB")
    lines += [f"  FAILED: {failure}" for failure in failures]
    if failures:
        print("\n".join(lines))
        raise SystemExit(f"{NAME}: {len(failures)} figure(s) grow with traffic or miss their target")
    return lines


def plot(figures: dict[str, Any]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    events = [row for row in figures["events_request"] if row.get("status") == 200]
    left.plot([max(r["visitors_today"], 1) for r in events], [r["wcu"] for r in events], "o-")
    left.set_xscale("log")
    left.axhline(TARGETS["event_request_wcu"], color="grey", linestyle=":", label="target")
    left.set_xlabel("visitors already counted that day (0 plotted at 1)")
    left.set_ylabel("WCU per events request")
    left.set_title("events request: 1 impression of 4 products")
    left.legend()
    names = [*(f"learning {k}" for k in figures["learning"]), *(f"roi {k}" for k in figures["roi"])]
    values = [*(r["rcu"] for r in figures["learning"].values()), *(r["rcu"] for r in figures["roi"].values())]
    right.barh(names, values)
    right.set_xscale("log")
    right.set_xlabel("RCU per run / report")
    right.set_title("jobs and reports")
    save_figure(fig, NAME)


if __name__ == "__main__":
    print("\n".join(run(quick=False)))
