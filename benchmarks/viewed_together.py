"""What viewed-together candidates cost, on DynamoDB Local through the real handlers (capacity units summed as in
`benchmarks.capacity`):

- the nightly similarity job's extra read units for views: one shop's job with its visitors' profiles (each holding
  a day's session of views, with profiles' usual neighbour lists, so items are their real size) at two traffic
  levels, less the same job on a shop without profiles; and what it writes for the co-view neighbours;
- the recommendation request of a product whose similarity item holds co-purchase and co-view neighbours: its round
  trips (at most 2) and read units, cold and warm;
- the storefront events requests: an impression of 4 products (the cost target, 8 WCU, untouched by views) and a
  request of 4 product views (the visitor's profile, where the day's session is kept).
"""

from __future__ import annotations

import json
import random
import tempfile
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.capacity import TARGETS, Bench
from benchmarks.common import job_event, put_items, quiet_stdout, seeding_client, write_results

NAME = "viewed_together"
DESCRIPTION = (
    "Viewed-together candidates on DynamoDB Local: the similarity job's extra read units for visitors' view sessions "
    "at two traffic levels, the recommendation request's round trips with co-view neighbours, the events requests"
)
PROFILES = {"small": 30_000, "large": 300_000}  # visitor profiles: 1k and 10k new visitors a day over 30 days
QUICK_DIVISOR = 10
CATALOG = 1_000
SHOP_BUCKETS = 16  # reclift.data.models.SHOP_BUCKETS


def profile_item(shop: str, visitor: int, day: str, rng: random.Random, weights: list[float]) -> dict[str, Any]:
    """A visitor profile as DynamoStore.update_profile writes it after a day of views: its session (1 to 8 products
    by Zipf-like popularity, the first of them `day_views`) and the home placement's neighbour lists."""
    viewed: list[str] = []
    for _ in range(min(1 + int(rng.expovariate(0.5)), 8)):
        pick = str(7_000_000 + rng.choices(range(CATALOG), weights)[0])
        if pick not in viewed:
            viewed.append(pick)
    pk = f"{shop}#v#visitor-{visitor}"
    neighbours = json.dumps([[str(7_000_000 + k), round(1 / (k + 2), 6)] for k in range(50)], separators=(",", ":"))
    catalog = json.dumps([[str(7_100_000 + k), round(1 / (k + 2), 6)] for k in range(20)], separators=(",", ":"))
    now = datetime.now(UTC)
    return {
        "pk": {"S": pk},
        "shop": {"S": shop},
        "shop_pk": {"S": f"{shop}#{zlib.crc32(pk.encode()) % SHOP_BUCKETS:02d}"},
        "viewed": {"L": [{"S": p} for p in viewed]},
        "carted": {"L": []},
        "purchased": {"L": []},
        "updated_at": {"S": now.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "version": {"N": "1"},
        "expires_at": {"N": str(int((now + timedelta(days=180)).timestamp()))},
        "seeds": {"L": [{"S": p} for p in viewed]},
        "neighbours": {"S": neighbours},
        "catalog_neighbours": {"S": catalog},
        "neighbours_at": {"S": now.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "views_day": {"S": day},
        "views_taken": {"N": str(len(viewed))},
        "day_views": {"N": str(len(viewed))},
    }


def seed_profiles(aws: Any, pool: ThreadPoolExecutor, shop: str, count: int) -> None:
    rng = random.Random(count)
    weights = [1 / (rank + 1) for rank in range(CATALOG)]
    today = datetime.now(UTC).date()
    items = [
        profile_item(shop, visitor, (today - timedelta(days=visitor % 30)).isoformat(), rng, weights)
        for visitor in range(count)
    ]
    put_items(pool, seeding_client(aws), aws.resource("ProfilesTable"), items)


def similarity_job(bench: Bench, shop: str) -> dict[str, Any]:
    from benchmarks.common import WarmFunction

    function = WarmFunction(bench.aws, "SimilarityFunction")
    with bench.meter.metering() as capacity, quiet_stdout():
        response, seconds = function(job_event({"shop": shop, "now": datetime.now(UTC).isoformat()}))
    assert response == {"batchItemFailures": []}, response
    return {k: v for k, v in capacity.summary().items() if k != "wcu_by_item"} | {"seconds": seconds}


def recommendation_with_views(bench: Bench) -> dict[str, Any]:
    """As `Bench.recommendation`, with the page's product also viewed together with 40 others."""
    return bench.recommendation(shop="serving-views.myshopify.com", view_sessions=40)


def view_request(bench: Bench, shop: str) -> dict[str, Any]:
    """A request of 4 product views by a visitor with a day's views already (their profile exists)."""
    from tests.support.shopify import proxy_event, proxy_query

    visitor = f"viewer-{uuid.uuid4().hex}"

    def post(products: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        events = [{"type": "view", "visitor_id": visitor, "product_id": p} for p in products]
        body = json.dumps({"events": events}).encode()
        with bench.meter.metering() as capacity, quiet_stdout():
            response, _ = bench.storefront(proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
        assert response["statusCode"] == 200, response
        return capacity.summary(), response

    post(["31", "32", "33", "34"])
    summary, _ = post(["35", "36", "37", "38"])
    return {k: v for k, v in summary.items() if k != "wcu_by_item"}


def measure(quick: bool) -> dict[str, Any]:
    from tests.support.aws import emulated_aws, forget_execution_environment

    figures: dict[str, Any] = {"similarity_job": {}}
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        forget_execution_environment()
        bench = Bench(aws)
        with ThreadPoolExecutor(8) as pool:
            base = similarity_job(bench, "no-views.myshopify.com")
            figures["similarity_job"]["no_views"] = base
            for size, count in PROFILES.items():
                profiles = count // (QUICK_DIVISOR if quick else 1)
                shop = f"views-{size}.myshopify.com"
                seed_profiles(aws, pool, shop, profiles)
                row = similarity_job(bench, shop) | {"profiles": profiles}
                row["extra_rcu"] = row["rcu"] - base["rcu"]
                row["extra_rcu_per_1000_profiles"] = 1000 * row["extra_rcu"] / profiles
                figures["similarity_job"][size] = row
            figures["recommendation_product_with_views"] = recommendation_with_views(bench)
            impression, response = bench.event_request("events-views.myshopify.com", "v-imp", ["1", "2", "3", "4"])
            assert response["statusCode"] == 200, response
            figures["impression_request"] = {k: v for k, v in impression.items() if k != "wcu_by_item"}
            figures["view_request"] = view_request(bench, "events-views.myshopify.com")
        forget_execution_environment()
    return figures


def run(quick: bool) -> list[str]:
    figures = measure(quick)
    recommendation = figures["recommendation_product_with_views"]
    failures = []
    if recommendation["requests"] > 2:
        failures.append(f"the recommendation request took {recommendation['requests']} DynamoDB requests")
    if figures["impression_request"]["wcu"] > TARGETS["event_request_wcu"]:
        failures.append(f"an impression of 4 products wrote {figures['impression_request']['wcu']:g} WCU")
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "engine": "dynamodb-local",
            "profiles": {k: v // (QUICK_DIVISOR if quick else 1) for k, v in PROFILES.items()},
            "catalog": CATALOG,
            "quick": quick,
        },
        figures=figures | {"failures": failures},
    )
    lines = [f"{NAME}: capacity units (DynamoDB Local)"]
    base = figures["similarity_job"]["no_views"]
    lines.append(f"  similarity job, no profiles: {base['rcu']:.1f} RCU {base['wcu']:.1f} WCU")
    for size in PROFILES:
        row = figures["similarity_job"][size]
        lines.append(
            f"  similarity job, {row['profiles']:,} visitor profiles: +{row['extra_rcu']:.1f} RCU for views "
            f"({row['extra_rcu_per_1000_profiles']:.1f} per 1,000 profiles), {row['wcu']:.0f} WCU, "
            f"{row['requests']} requests, {row['seconds']:.1f} s"
        )
    warm = recommendation["warm"]
    lines.append(
        f"  recommendation with co-view neighbours: {recommendation['requests']} requests {recommendation['rcu']:.1f} "
        f"RCU cold, {warm['requests']} requests {warm['rcu']:.1f} RCU warm, {recommendation['products']} products"
    )
    lines.append(f"  impression of 4 products: {figures['impression_request']['wcu']:.1f} WCU")
    lines.append(f"  4 product views (a profile with a day's views): {figures['view_request']['wcu']:.1f} WCU")
    lines += [f"  FAILED: {failure}" for failure in failures]
    if failures:
        print("\n".join(lines))
        raise SystemExit(f"{NAME}: {len(failures)} figure(s) miss their target")
    return lines
