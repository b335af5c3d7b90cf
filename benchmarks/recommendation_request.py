"""The recommendation request: DynamoDB round trips, the handler's own compute for 50 candidates, and latency
through the local stack as a ratio to a trivial route measured in the same run.

1. Round trips and capacity units: the StorefrontFunction handler in-process against DynamoDB Local, for a shop
   with a learned model of 50 best sellers, co-purchase similarity (its job's items, and a visitor whose profile
   carries the neighbours of their views) and a catalog of every product (some of them drafts or sold out), per
   placement, from a cold execution environment (the serving caches empty) and then warm (the same request again);
   every AWS request counted at the botocore level (target: at most 2, the second the one BatchGetItem of the
   candidates' items — catalog listings and performance together; warm, one) and metered in read and write
   capacity units (ReturnConsumedCapacity, as DynamoDB Local reports them).
2. Compute: `recommend()` (similar candidates combined, ranking by the shop's policy, exclusions, response) with the
   shop's data already read (an in-memory reader), 50 similar candidates and 50 best sellers, both policies.
   Signing: the same `recommend()` with the server-issued rec id (a MAC over the shop, visitor, arm, placement,
   listed products and time) against a variant issuing an unsigned random id as before, interleaved call by call in
   this process: the MAC's share of the handler's compute, as a ratio measured in one run.
3. Latency: GET /apps/proxy/recommendations through the running local stack (signature check, worker process,
   one BatchGetItem on moto server) against GET /_local/health, interleaved request by request.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from tests.support.aws import emulated_aws
from tests.support.shopify import proxy_event, proxy_query
from tests.support.stack import running_stack

from benchmarks.common import (
    ApiCallCounter,
    CapacityMeter,
    WarmFunction,
    calls_by_operation,
    counted_and_metered,
    latency_summary,
    logical_names,
    pyplot,
    quiet_stdout,
    ratio,
    save_figure,
    write_results,
)
from reclift.catalog import Listing, ProductStatus
from reclift.context import ContextPrior, Landed
from reclift.data.catalog import CatalogStore
from reclift.data.health import HealthStore
from reclift.data.learning import LearnedModel, LearningStore
from reclift.data.serving import CandidateItems, ServingContext, ServingReader, serving_reader
from reclift.data.similarity import SimilarityStore
from reclift.data.store import dynamo_store
from reclift.learning import Performance, Prior, ProductDay, aggregate, learn
from reclift.logic.recommendations import parse_query, recommend
from reclift.recids import RecIds
from reclift.settings import ShopSettings
from reclift.similarity import similar_products
from reclift_local.worker import function_env

NAME = "recommendation_request"
DESCRIPTION = (
    "GET /apps/proxy/recommendations: DynamoDB round trips per request (a product page under the context policy "
    "too), handler compute for 50 candidates (the context policy's as a ratio to bayes's), and latency through the "
    "local stack as a ratio to GET /_local/health measured in the same run"
)
CANDIDATES = 50


def best_sellers(count: int, rng: random.Random) -> list[Performance]:
    sellers = []
    for index in range(count):
        impressions = rng.randint(100, 3000)
        purchases = rng.randint(0, impressions // 40)
        sellers.append(
            Performance(
                product_id=str(2_000_000 + index),
                impressions=impressions,
                clicks=impressions // 20,
                purchases=purchases,
                units=purchases,
                revenue=Decimal(purchases * 30),
                ctr=0.05,
                cvr=purchases / impressions,
                confidence=rng.random(),
                blacklisted=rng.random() < 0.1,
                reason="",
                alpha=2 + purchases,
                beta=98 + impressions - purchases,
                price=Decimal(rng.randint(5, 120)),
            )
        )
    return sorted(sellers, key=lambda p: -p.purchases)


class InMemoryReader(ServingReader):
    """The serving port with the shop's data already in hand: what is left is the handler's own work."""

    def __init__(self, context: ServingContext, candidates: CandidateItems | None = None) -> None:
        self._context = context
        self._candidates = candidates or CandidateItems()

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        return self._candidates

    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext:
        return self._context


def listing(product_id: str, rng: random.Random) -> Listing:
    """A catalog listing as the products webhooks store it; one product in ten a draft, one in ten sold out."""
    draw = rng.random()
    return Listing(
        product_id=product_id,
        title=f"Product {product_id}",
        handle=f"product-{product_id}",
        status=ProductStatus.DRAFT if draw < 0.1 else ProductStatus.ACTIVE,
        price=Decimal(rng.randint(500, 12_000)) / 100,
        available=not 0.1 <= draw < 0.2,
        image=f"https://cdn.shopify.com/s/files/{product_id}.jpg",
        updated_at=datetime.now(UTC),
    )


REC_IDS = RecIds.of_secrets(["bench-secret"])
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


class UnsignedRecIds(RecIds):
    """The id as it was before rec ids were signed: the arm's letter and 24 random hex digits, nothing bound."""

    def issue(self, **fields: Any) -> str:
        return f"{fields['arm'][0]}-{uuid.uuid4().hex[:24]}"


def compute(iterations: int) -> dict[str, Any]:
    rng = random.Random(7)
    model = LearnedModel(
        run="2026-11-26",
        policy="bayes",
        prior=Prior(1.5, 98.5),
        median_price=Decimal(30),
        best_sellers=best_sellers(CANDIDATES, rng),
        products=CANDIDATES,
        blacklisted=5,
    )
    similar = [replace(p, product_id=str(3_000_000 + index)) for index, p in enumerate(best_sellers(CANDIDATES, rng))]
    neighbours = [[(p.product_id, rng.random()) for p in similar[start::3]] for start in range(3)]
    figures: dict[str, Any] = {}
    for policy in ("seed", "bayes"):
        context = ServingContext(
            settings=ShopSettings(policy=policy), model=model, purchased=["1"], profile_neighbours=neighbours
        )
        listings = {p.product_id: listing(p.product_id, rng) for p in [*similar, *model.best_sellers]}
        reader = InMemoryReader(
            context, CandidateItems(performance={p.product_id: p for p in similar}, listings=listings)
        )
        query = parse_query({"placement": "home", "limit": "4", "visitor_id": "v-1"})
        timings = []
        for _ in range(iterations):
            started = time.perf_counter()
            recommend("bench.myshopify.com", None, query, reader, rng, rec_ids=REC_IDS, now=datetime.now(UTC))
            timings.append((time.perf_counter() - started) * 1000)
        figures[policy] = latency_summary(timings)
    return figures


def context_cost(iterations: int) -> dict[str, Any]:
    """`recommend()` on a product page of 50 candidates (25 bought together, 25 viewed together, every one with a
    learned pair ratio on the page, the page's landed and viewed-after counts beside them) under `bayes` and under
    `context`, alternating which goes first, in this process: the ratio of their medians is what valuing each
    candidate on its page costs."""
    rng = random.Random(13)
    page = "2999999"
    similar = [replace(p, product_id=str(3_000_000 + index)) for index, p in enumerate(best_sellers(CANDIDATES, rng))]
    bought = [(p.product_id, round(rng.uniform(0.01, 0.5), 6)) for p in similar[:25]]
    seen = [(p.product_id, round(rng.uniform(0.001, 0.2), 6)) for p in similar[25:]]
    prior = ContextPrior(
        intercept=-0.4,
        slopes=(0.2, 0.15, 0.3, 0.5),
        centres=(-3.0, -4.0, -3.5, -2.0),
        floors=(0.001, 0.001, 0.002, 0.005),
        highs=(0.5, 0.5, 0.6, 0.7),
        strength=1.0,
    )
    landed = Landed(40, tuple(rng.choice((0, 0, 0, 1, 2, 5)) for _ in bought), 0.02)
    viewed_after = Landed(300, tuple(rng.choice((0, 2, 5, 10, 30)) for _ in seen), 0.03)
    model = LearnedModel(
        "2026-11-26", "context", Prior(1.5, 98.5), Decimal(30), best_sellers(CANDIDATES, rng), 50, 5, context=prior
    )
    listings = {p.product_id: listing(p.product_id, rng) for p in [*similar, *model.best_sellers]}
    items = CandidateItems(performance={p.product_id: p for p in similar}, listings=listings)
    query = parse_query({"placement": "product", "product_id": page, "limit": "4", "visitor_id": "v-1"})
    readers = {
        policy: InMemoryReader(
            ServingContext(
                settings=ShopSettings(policy=policy),
                model=replace(model, policy=policy),
                similar={page: bought},
                viewed_similar={page: seen},
                pair_ratios={p.product_id: round(rng.uniform(0.3, 3.0), 4) for p in similar},
                landed={page: landed},
                viewed_after={page: viewed_after},
            ),
            items,
        )
        for policy in ("bayes", "context")
    }
    timings: dict[str, list[float]] = {policy: [] for policy in readers}
    for index in range(iterations):
        for policy in list(readers) if index % 2 == 0 else list(reversed(readers)):
            started = time.perf_counter()
            recommend(
                "bench.myshopify.com", None, query, readers[policy], random.Random(index), rec_ids=REC_IDS, now=NOW
            )
            timings[policy].append((time.perf_counter() - started) * 1000)
    bayes, context = latency_summary(timings["bayes"]), latency_summary(timings["context"])
    return {
        "bayes": bayes,
        "context": context,
        "ratio_p50": ratio(context["p50_ms"], bayes["p50_ms"]),
        "ratio_p99": ratio(context["p99_ms"], bayes["p99_ms"]),
    }


def signing_cost(iterations: int) -> dict[str, Any]:
    """`recommend()` (bayes, 50 + 50 candidates, 4 slots) issuing the signed rec id against the unsigned one,
    alternating which goes first, in this process: the ratio of their medians is the MAC's cost."""
    rng = random.Random(11)
    model = LearnedModel("2026-11-26", "bayes", Prior(1.5, 98.5), Decimal(30), best_sellers(CANDIDATES, rng), 50, 5)
    similar = [replace(p, product_id=str(3_000_000 + index)) for index, p in enumerate(best_sellers(CANDIDATES, rng))]
    neighbours = [[(p.product_id, rng.random()) for p in similar[start::3]] for start in range(3)]
    context = ServingContext(settings=ShopSettings(), model=model, purchased=["1"], profile_neighbours=neighbours)
    listings = {p.product_id: listing(p.product_id, rng) for p in [*similar, *model.best_sellers]}
    reader = InMemoryReader(context, CandidateItems(performance={p.product_id: p for p in similar}, listings=listings))
    query = parse_query({"placement": "home", "limit": "4", "visitor_id": "v-1"})
    variants = {"signed": REC_IDS, "unsigned": UnsignedRecIds(REC_IDS.keys)}
    timings: dict[str, list[float]] = {name: [] for name in variants}
    issue_only: dict[str, list[float]] = {name: [] for name in variants}
    listed = [str(9_000_000_000_000 + n) for n in range(4)]
    for index in range(iterations):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            now = datetime.now(UTC)
            started = time.perf_counter()
            recommend("bench.myshopify.com", None, query, reader, random.Random(index), rec_ids=variants[name], now=now)
            timings[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            variants[name].issue(
                shop="bench.myshopify.com", visitor_id="v-1", arm="learning", placement="home", products=listed, now=now
            )
            issue_only[name].append((time.perf_counter() - started) * 1000)
    signed, unsigned = latency_summary(timings["signed"]), latency_summary(timings["unsigned"])
    return {
        "recommend_signed": signed,
        "recommend_unsigned": unsigned,
        "ratio_p50": ratio(signed["p50_ms"], unsigned["p50_ms"]),
        "ratio_p99": ratio(signed["p99_ms"], unsigned["p99_ms"]),
        "issue_signed": latency_summary(issue_only["signed"]),
        "issue_unsigned": latency_summary(issue_only["unsigned"]),
    }


def round_trips() -> dict[str, Any]:
    shop = "bench-serving.myshopify.com"
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        storefront = WarmFunction(aws, "StorefrontFunction")
        # A learning run's output, saved the way the DailyLearningFunction saves it.
        with function_env(aws.environment("DailyLearningFunction")):
            today = datetime.now(UTC).date()
            rows = [
                ProductDay(today, s.product_id, s.impressions, s.clicks, s.purchases, s.units, s.revenue)
                for s in best_sellers(CANDIDATES, random.Random(3))
            ]
            windows = aggregate(rows, today=today, window_days=30, half_life_days=14)
            prior, performance = learn(windows, ShopSettings())
            LearningStore().save_run(
                shop, today.isoformat(), "bayes", prior, performance, list(performance), Decimal(30)
            )
        # Co-purchase similarity, saved the way the SimilarityFunction saves it: 2000001 and 2000002 bought with
        # 60 other products each (some best sellers, most not), 2000003 with nothing.
        rng = random.Random(5)
        baskets = [
            [seller, str(4_000_000 + k)]
            for seller in ("2000001", "2000002")
            for k in range(60)
            for _ in range(rng.randint(2, 6))
        ]
        baskets += [["2000001", f"200{k:04d}"] for k in range(10, 30) for _ in range(3)]
        with function_env(aws.environment("SimilarityFunction")):
            SimilarityStore().save_similarity(shop, today.isoformat(), similar_products(baskets), {})
        # The catalog, saved the way the products webhooks save it.
        products = {p for basket in baskets for p in basket} | {s.product_id for s in best_sellers(CANDIDATES, rng)}
        with function_env(aws.environment("AttributionFunction")):
            catalog = CatalogStore()
            for product in sorted(products):
                catalog.save_listing(shop, listing(product, rng))
        viewed = [{"type": "view", "visitor_id": "v-7", "product_id": p} for p in ("2000002", "2000001")]
        with quiet_stdout():
            posted, _ = storefront(
                proxy_event("POST", "/apps/proxy/events", proxy_query(shop), json.dumps({"events": viewed}).encode())
            )
        assert posted["statusCode"] == 200, posted
        counter = ApiCallCounter(names=logical_names(aws))
        meter = CapacityMeter(logical_names(aws))
        placements = {
            "product": {"placement": "product", "product_id": "2000001"},
            "product_without_neighbours": {"placement": "product", "product_id": "2000003"},
            "cart": {"placement": "cart", "cart_product_ids": "2000001,2000002"},
            "home": {"placement": "home"},
        }
        figures: dict[str, Any] = {}
        with quiet_stdout():
            # The first request reads the secret and writes the shop's served tally (once a minute per shop,
            # concurrently with the request's reads); measured apart below.
            warm = proxy_query(shop, extra={"placement": "product", "product_id": "2000003", "visitor_id": "v-0"})
            with counted_and_metered(counter, meter) as (first, first_capacity):
                storefront(proxy_event("GET", "/apps/proxy/recommendations", warm))
            with function_env(aws.environment("HealthCheckFunction")):
                today = datetime.now(UTC).date()
                tallied = sum(hour.served for hour in HealthStore().hour_totals(shop, today, today))
            assert tallied == 1, tallied
            figures["first_request_in_a_minute"] = {
                "dynamodb_requests": calls_by_operation(first.calls, "dynamodb"),
                "served_tally_written": tallied,
                "note": "the served tally's UpdateItem runs on its own thread while the request reads, not after",
            } | first_capacity.units()
            for name, params in placements.items():
                query = proxy_query(shop, extra={**params, "limit": "4", "visitor_id": "v-7"})
                serving_reader().caches.clear()  # cold: a new execution environment's first request of this page
                measured = []
                for _ in ("cold", "warm"):
                    with counted_and_metered(counter, meter) as (block, capacity):
                        response, _ = storefront(proxy_event("GET", "/apps/proxy/recommendations", query))
                    assert response["statusCode"] == 200, response
                    reads = [call.operation for call in block.calls.elements() if call.service == "dynamodb"]
                    assert reads in (["BatchGetItem"], ["BatchGetItem", "BatchGetItem"]), block.calls
                    measured.append(
                        {
                            "dynamodb_requests": calls_by_operation(block.calls, "dynamodb"),
                            "round_trips": len(reads),
                            "products": len(served := json.loads(response["body"])["products"]),
                            "products_with_catalog_fields": sum(
                                {"title", "url", "price", "image"} <= set(p) for p in served
                            ),
                        }
                        | capacity.units()
                    )
                cold, warmed = measured
                assert warmed["round_trips"] == 1, warmed
                figures[name] = cold | {"warm": warmed}
        # The same product page under the context policy: a run with its prior, the page's pair ratios beside it.
        with function_env(aws.environment("DailyLearningFunction")):
            neighbours = LearningStore().page_similarities(shop, ["2000001"])["2000001"]
            LearningStore().save_pairs(shop, today.isoformat(), {"2000001": dict.fromkeys(neighbours, 1.2)})
            LearningStore().save_run(
                shop,
                today.isoformat(),
                "context",
                prior,
                performance,
                list(performance),
                Decimal(30),
                context=ContextPrior(intercept=-0.2, slopes=(0.2, 0.1), centres=(-3.0, -4.0), strength=1.0),
            )
        with function_env(aws.environment("AdminFunction")):
            dynamo_store().put_settings(shop, ShopSettings(policy="context", holdout_share=0.0))  # every visitor learns
        query = proxy_query(
            shop, extra={"placement": "product", "product_id": "2000001", "limit": "4", "visitor_id": "v-7"}
        )
        serving_reader().caches.clear()
        measured = []
        with quiet_stdout():
            for _ in ("cold", "warm"):
                with counted_and_metered(counter, meter) as (block, capacity):
                    response, _ = storefront(proxy_event("GET", "/apps/proxy/recommendations", query))
                assert response["statusCode"] == 200, response
                assert json.loads(response["body"])["policy"] == "context", response
                reads = [call.operation for call in block.calls.elements() if call.service == "dynamodb"]
                assert reads in (["BatchGetItem"], ["BatchGetItem", "BatchGetItem"]), block.calls
                measured.append(
                    {"dynamodb_requests": calls_by_operation(block.calls, "dynamodb"), "round_trips": len(reads)}
                    | capacity.units()
                )
        figures["product_under_the_context_policy"] = measured[0] | {"warm": measured[1]}
        return figures


def through_stack(requests_count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state, running_stack(Path(state)) as stack:
        session = requests.Session()
        shop = "bench-latency.myshopify.com"
        recs, trivial = [], []
        for index in range(requests_count):
            query = proxy_query(shop, extra={"placement": "home", "limit": "4", "visitor_id": f"v{index % 50}"})
            started = time.perf_counter()
            response = session.get(f"{stack.url}/apps/proxy/recommendations?{query}", timeout=10)
            recs.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            started = time.perf_counter()
            session.get(f"{stack.url}/_local/health", timeout=10)
            trivial.append((time.perf_counter() - started) * 1000)
        rec, base = latency_summary(recs[20:]), latency_summary(trivial[20:])  # the first requests warm up
        return {
            "recommendations": rec,
            "trivial_route": base,
            "trivial_route_is": "GET /_local/health (the local gateway alone, no function)",
            "ratio_p50": ratio(rec["p50_ms"], base["p50_ms"]),
            "ratio_p99": ratio(rec["p99_ms"], base["p99_ms"]),
            "samples": {"recommendations_ms": recs, "trivial_ms": trivial},
        }


def run(quick: bool) -> list[str]:
    trips = round_trips()
    cpu = compute(300 if quick else 3000)
    signing = signing_cost(300 if quick else 3000)
    context = context_cost(300 if quick else 3000)
    latency = through_stack(100 if quick else 600)
    samples = latency.pop("samples")
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "candidates": CANDIDATES,
            "compute_iterations": 300 if quick else 3000,
            "stack_requests": 100 if quick else 600,
            "round_trips_engine": "dynamodb-local (capacity units as it reports them)",
        },
        figures={
            "round_trips": trips,
            "compute_ms": cpu,
            "signed_rec_id": signing,
            "context_policy_compute_ms": context,
            "through_stack": latency,
        },
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(samples["recommendations_ms"][20:], bins=40, alpha=0.7, label="GET /apps/proxy/recommendations")
    ax.hist(samples["trivial_ms"][20:], bins=40, alpha=0.7, label="GET /_local/health")
    ax.set_xlabel("ms")
    ax.set_ylabel("requests")
    ax.set_title("latency through the local stack")
    ax.legend()
    save_figure(fig, NAME)
    lines = [f"{NAME}:"]
    for placement, row in trips.items():
        trips_text = f"{row['round_trips']} DynamoDB round trip(s) " if "round_trips" in row else ""
        lines.append(f"  {placement}: {trips_text}{row['rcu']:.1f} RCU {row['dynamodb_requests']}")
        if "warm" in row:
            lines.append(
                f"  {placement}, warm caches: {row['warm']['round_trips']} round trip(s) {row['warm']['rcu']:.1f} RCU"
            )
    for policy, row in cpu.items():
        lines.append(
            f"  compute, {CANDIDATES} similar + {CANDIDATES} best sellers, {policy}: p50 {row['p50_ms']:.3f} ms, "
            f"p99 {row['p99_ms']:.3f} ms"
        )
    lines.append(
        f"  signed rec id: recommend() p50 {signing['recommend_signed']['p50_ms']:.3f} ms against "
        f"{signing['recommend_unsigned']['p50_ms']:.3f} ms unsigned (x{signing['ratio_p50']:.3f} p50, "
        f"x{signing['ratio_p99']:.3f} p99); issuing alone p50 {signing['issue_signed']['p50_ms'] * 1000:.1f} µs "
        f"against {signing['issue_unsigned']['p50_ms'] * 1000:.1f} µs"
    )
    lines.append(
        f"  context policy, a product page of 50 candidates with pair ratios: recommend() p50 "
        f"{context['context']['p50_ms']:.3f} ms against {context['bayes']['p50_ms']:.3f} ms under bayes "
        f"(x{context['ratio_p50']:.3f} p50, x{context['ratio_p99']:.3f} p99)"
    )
    lines.append(
        f"  through the stack: p50 {latency['recommendations']['p50_ms']:.1f} ms, p99 "
        f"{latency['recommendations']['p99_ms']:.1f} ms; x{latency['ratio_p50']:.1f} / "
        f"x{latency['ratio_p99']:.1f} the trivial route"
    )
    return lines
