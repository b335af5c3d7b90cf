"""`python -m benchmarks day_one`: a new shop's day-one recommendation with the merchant's rules, in capacity units.

On DynamoDB Local, through the real handlers: a shop whose catalog holds PRODUCTS products (types, vendors, tags and
log-normal prices, as Shopify's product webhooks would have stored them) and no orders; the nightly similarity job
computes every product's catalog neighbours (its read and write units and seconds are measured too); the merchant's
rules at their bounds' typical use (RULE_IDS excluded ids, excluded tags, a type and a vendor, PINS pins per
placement, never-blacklisted ids). Then a product page's recommendation request from a cold execution environment
(the serving caches empty) and a warm one (another visitor on the same page), with the rules and without, every
DynamoDB request asking for ReturnConsumedCapacity: what the rules and the catalog neighbours add to a request.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import CapacityMeter, WarmFunction, logical_names, quiet_stdout, write_results

NAME = "day_one"
DESCRIPTION = (
    "A new shop's product-page recommendation (no orders: catalog neighbours, no co-purchases) with and without the "
    "merchant's rules, cold and warm; the similarity job's catalog neighbours for the whole catalog."
)
PRODUCTS = 2_000
QUICK_PRODUCTS = 300
TYPES, VENDORS, TAGS = 40, 60, 150
RULE_IDS = 100
PINS = 4
PAGE_PRODUCT = "5000001"


def catalog_payloads(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Products as the products/create webhook sends them."""
    return [
        {
            "id": 5_000_000 + n,
            "title": f"Product {n}",
            "handle": f"product-{n}",
            "status": "active",
            "updated_at": "2026-11-26T08:30:00-05:00",
            "product_type": f"type {rng.randrange(TYPES)}",
            "vendor": f"vendor {rng.randrange(VENDORS)}",
            "tags": ", ".join(f"tag {t}" for t in rng.sample(range(TAGS), 4)),
            "variants": [{"price": f"{math.exp(rng.gauss(math.log(30), 0.6)):.2f}", "inventory_quantity": 5}],
            "image": {"src": f"https://cdn.example/{n}.jpg"},
        }
        for n in range(1, count + 1)
    ]


def rules(rng: random.Random, count: int) -> dict[str, Any]:
    page = int(PAGE_PRODUCT)
    return {
        "exclude": {
            "product_ids": [str(5_000_000 + rng.randrange(2, count)) for _ in range(RULE_IDS)],
            "tags": [f"tag {t}" for t in range(10)],
            "product_types": ["type 39"],
            "vendors": ["vendor 59"],
        },
        "pin": {placement: [str(page + 1 + k) for k in range(PINS)] for placement in ("product", "cart", "home")},
        "never_blacklist": [str(5_000_000 + rng.randrange(2, count)) for _ in range(RULE_IDS)],
    }


def measure(quick: bool) -> dict[str, Any]:
    from tests.support.aws import emulated_aws, forget_execution_environment
    from tests.support.shopify import admin_event, proxy_event, proxy_query

    from reclift.catalog import parse_webhook_product
    from reclift.data.catalog import CatalogStore
    from reclift.data.serving import serving_reader
    from reclift.data.similarity import SimilarityStore
    from reclift.data.store import dynamo_store
    from reclift.logic.similarity import similarity_for_shop
    from reclift_local.worker import function_env

    count = QUICK_PRODUCTS if quick else PRODUCTS
    rng = random.Random(11)
    shop = "day-one.myshopify.com"
    figures: dict[str, Any] = {"products": count}
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        forget_execution_environment()
        meter = CapacityMeter(logical_names(aws))
        storefront = WarmFunction(aws, "StorefrontFunction")
        admin = WarmFunction(aws, "AdminFunction")
        with function_env(aws.environment("AttributionFunction")):
            catalog = CatalogStore()
            for payload in catalog_payloads(count, rng):
                catalog.save_listing(shop, parse_webhook_product(payload))
        with function_env(aws.environment("SimilarityFunction")), meter.metering() as job:
            started = time.perf_counter()
            summary = similarity_for_shop(shop, datetime.now(UTC), SimilarityStore(), dynamo_store())
            seconds = time.perf_counter() - started
        figures["similarity_job"] = job.summary() | {"seconds": round(seconds, 2), "summary": summary}
        figures["similarity_job"].pop("wcu_by_item")

        def request(visitor: str) -> dict[str, Any]:
            params = {"placement": "product", "product_id": PAGE_PRODUCT, "limit": "4", "visitor_id": visitor}
            query = proxy_query(shop, extra=params)
            with meter.metering() as capacity, quiet_stdout():
                response, _ = storefront(proxy_event("GET", "/apps/proxy/recommendations", query))
            assert response["statusCode"] == 200, response
            products = json.loads(response["body"])["products"]
            row = capacity.summary()
            row.pop("wcu_by_item")
            return row | {"sources": [p["source"] for p in products]}

        with quiet_stdout():  # the first request writes the served tally and reads the secret
            storefront(
                proxy_event("GET", "/apps/proxy/recommendations", proxy_query(shop, extra={"placement": "home"}))
            )
        for label, body in (("without_rules", None), ("with_rules", rules(rng, count))):
            if body is not None:
                with quiet_stdout():
                    response, _ = admin(admin_event("PUT", "/admin/rules", shop, body))
                assert response["statusCode"] == 200, response
            with function_env(storefront.env):
                serving_reader().caches.clear()
            cold = request(f"{label}-cold")
            warm = request(f"{label}-warm")
            figures[label] = {"cold": cold, "warm": warm}
        figures["rules_bytes"] = len(json.dumps(rules(random.Random(11), count), separators=(",", ":")))
        forget_execution_environment()
    return figures


def run(quick: bool) -> list[str]:
    figures = measure(quick)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "engine": "dynamodb-local",
            "products": figures["products"],
            "types_vendors_tags": [TYPES, VENDORS, TAGS],
            "rules": {"excluded_ids": RULE_IDS, "excluded_tags": 10, "pins_per_placement": PINS},
            "quick": quick,
            "price": str(Decimal("30")) + " median, log-normal σ 0.6",
        },
        figures=figures,
    )
    job = figures["similarity_job"]
    lines = [
        f"{NAME}: a new shop of {figures['products']:,} products, product page, limit 4 (DynamoDB Local)",
        f"  similarity job (catalog neighbours): {job['rcu']:.1f} RCU {job['wcu']:.1f} WCU, {job['seconds']} s",
    ]
    for label in ("without_rules", "with_rules"):
        for cache in ("cold", "warm"):
            row = figures[label][cache]
            lines.append(
                f"  recommendation {label.replace('_', ' ')}, {cache}: {row['rcu']:.1f} RCU, "
                f"{row['requests']} requests, sources {row['sources']}"
            )
    lines.append(f"  the rules as stored in the shop's item: {figures['rules_bytes']} bytes")
    return lines
