"""The data ports' contract: the in-memory implementation the store simulation runs on (`benchmarks.memory_store`)
and the DynamoDB one (on moto) answer the same cases the same way, so that the simulation's evidence holds for what
is deployed. Each case goes through production's use cases (tracking, counting, attribution, the similarity and
learning jobs, the recommendation's reads) and states what both must show."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from benchmarks.memory_store import MemoryStore

from reclift.catalog import parse_webhook_product
from reclift.context import Landed
from reclift.data.learning import LearningPort, LearningStore
from reclift.data.serving import ServingPort, ServingReader
from reclift.data.similarity import SimilarityPort, SimilarityStore
from reclift.data.store import Store, dynamo_store
from reclift.learning import PairDay, ProductDay, product_rows
from reclift.logic.counting import count_events
from reclift.logic.deliveries import process_order_created
from reclift.logic.learning import LearnShop, learn_shop
from reclift.logic.similarity import similarity_for_shop
from reclift.logic.tracking import track_events
from reclift.recids import RecIds
from reclift.settings import ShopSettings
from reclift.tracking import TrackedEvent
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, emulated_aws, forget_execution_environment
from tests.support.shopify import new_shop, order_payload

REC_IDS = RecIds.of_secrets(["contract-secret"])
A, B, C, D = "9101", "9102", "9103", "9104"
PRICES = {A: Decimal("10.00"), B: Decimal("25.00"), C: Decimal("40.00"), D: Decimal("5.00")}


def recently(before: timedelta = timedelta(0)) -> datetime:
    """`before` ago, moved back to an hour before midnight when that is within an hour of either end of its UTC day:
    a case's orders, views and widget sales (minutes either side of it) and the night it learns then share one day
    at whatever hour the suite runs."""
    at = datetime.now(UTC) - before
    start, margin = datetime.combine(at.date(), time(), UTC), timedelta(hours=1)
    if at - start < margin:
        return start - margin
    return min(at, start + timedelta(days=1) - margin)


@dataclass
class Ports:
    name: str
    store: Store
    learning: LearningPort
    similarity: SimilarityPort
    serving: ServingPort
    catalog: Any  # save_listing(shop, listing) -> bool


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    with emulated_aws(tmp_path_factory.mktemp("contract-aws"), database="moto") as emulated:
        yield emulated


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ports]:
    if request.param == "memory":
        memory = MemoryStore()
        yield Ports("memory", memory, memory, memory, memory, memory)
        return
    aws: EmulatedAws = request.getfixturevalue("moto")
    env: dict[str, str] = {}
    for logical_id in aws.stack.specs:  # every function's tables, as the use cases here span them
        env |= aws.environment(logical_id)
    # The serving caches would answer from memory what this test just wrote: each read goes to the table.
    env |= {"CATALOG_CACHE_SECONDS": "0", "LEARNING_CACHE_SECONDS": "0"}
    forget_execution_environment()
    try:
        with function_env(env):
            from reclift.data.catalog import CatalogStore

            yield Ports("dynamodb", dynamo_store(), LearningStore(), SimilarityStore(), ServingReader(), CatalogStore())
    finally:
        forget_execution_environment()


def shown(shop: str, visitor: str, products: list[str], at: datetime) -> dict[str, Any]:
    rec_id = REC_IDS.issue(
        shop=shop, visitor_id=visitor, arm="learning", placement="product", products=products, now=at
    )
    return {"rec_id": rec_id, "rec_products": products}


def widget_events(shop: str, visitor: str, products: list[str], clicked: list[str], at: datetime) -> dict[str, Any]:
    rec = shown(shop, visitor, products, at)
    events: list[dict[str, Any]] = [
        {
            "type": "impression",
            "visitor_id": visitor,
            "placement": "product",
            "source_product_id": D,
            "products": [{"product_id": p, "position": k} for k, p in enumerate(products, start=1)],
            **rec,
        }
    ]
    for product in clicked:
        position = products.index(product) + 1
        events.append({"type": "click", "visitor_id": visitor, "product_id": product, "position": position, **rec})
    return {"events": events, "_rec_id": rec["rec_id"]}


def track(ports: Ports, shop: str, body: dict[str, Any], at: datetime) -> list[TrackedEvent]:
    """Tracking, then counting on what it wrote (as the events table's stream does)."""
    batch = track_events(shop, None, {"events": body["events"]}, ports.store, now=at, rec_ids=REC_IDS)
    count_events(ports.store, shop, list(batch.written))
    return list(batch.written)


def counters(ports: Ports, shop: str, day: datetime) -> dict[str, tuple[int, int, int, int, Decimal, int]]:
    return {
        row.product_id: (row.impressions, row.clicks, row.purchases, row.units, row.revenue, row.sold)
        for row in product_rows(ports.learning.counter_days(shop, day.date(), day.date()))
    }


def test_given_a_widgets_events_sent_twice_then_each_is_stored_and_counted_once(ports: Ports) -> None:
    shop, now = new_shop(), recently()
    body = widget_events(shop, "v-1", [A, B, C], [B], now)

    first = track(ports, shop, body, now)
    again = track(ports, shop, body, now + timedelta(seconds=5))

    assert sorted((event.type, event.product_ids) for event in first) == [
        ("click", (B,)),
        ("impression", (A,)),
        ("impression", (B,)),
        ("impression", (C,)),
    ]
    assert again == []
    assert counters(ports, shop, now) == {
        A: (1, 0, 0, 0, Decimal(0), 0),
        B: (1, 1, 0, 0, Decimal(0), 0),
        C: (1, 0, 0, 0, Decimal(0), 0),
    }
    touches = ports.store.touches(
        shop, visitor_id="v-1", customer_id=None, rec_ids=[], since=now - timedelta(days=1), until=now + timedelta(1)
    )
    assert sorted((touch.kind.value, touch.product_ids) for touch in touches) == [
        ("click", (B,)),
        ("impression", (A, B, C)),
    ]


def test_given_an_order_after_a_click_then_its_line_is_attributed_counted_and_recorded_once(ports: Ports) -> None:
    shop, now = new_shop(), recently(timedelta(minutes=30))
    body = widget_events(shop, "v-2", [A, B], [B], now)
    track(ports, shop, body, now)
    payload = order_payload(
        order_id=5001,
        created_at=now + timedelta(minutes=10),
        visitor_id="v-2",
        lines=[{"product_id": B, "price": "25.00", "rec_id": body["_rec_id"]}, {"product_id": C, "price": "40.00"}],
    )

    summary = process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)
    repeat = process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)

    assert (summary.attributed_lines, summary.missed_lines, summary.attributed_revenue) == (1, 1, "25.00")
    assert (summary.duplicate, repeat.duplicate) == (False, True)
    assert counters(ports, shop, now)[B] == (1, 1, 1, 1, Decimal("25.00"), 1)
    assert counters(ports, shop, now)[C][2:] == (0, 0, Decimal(0), 1)  # sold, not attributed
    rows = ports.store.attributions(shop, now.date(), now.date())
    assert [(row.product_id, row.revenue, row.channel.value, row.arm) for row in rows] == [
        (B, Decimal("25.00"), "click_through", "learning")
    ]
    # Every field of the row, as the index projects it (an attribute it left out would read as None or empty).
    assert [(row.order_id, row.line_id, row.quantity, row.visitor_id, row.created_at) for row in rows] == [
        ("5001", "500100", 1, "v-2", now + timedelta(minutes=10))
    ]
    assert rows[0].currency == payload["currency"]
    lines = ports.store.attributed_lines(shop, "5001")
    assert lines is not None
    assert [(line.product_id, line.revenue) for line in lines] == [(B, Decimal("25.00"))]
    assert ports.store.attributed_lines(shop, "5002") is None
    context = ports.serving.context(shop, visitor_id="v-2", customer_id=None, products=[])
    assert set(context.purchased) == {B, C}


def test_given_baskets_when_the_jobs_ran_then_neighbours_model_and_candidates_read_the_same(ports: Ports) -> None:
    shop, now = new_shop(), recently(timedelta(hours=2))
    ports.store.put_settings(shop, ShopSettings(policy="bayes"))
    for product, price in PRICES.items():
        listing = {
            "id": int(product),
            "title": f"Product {product}",
            "handle": f"p-{product}",
            "status": "active" if product != D else "draft",
            "updated_at": (now - timedelta(days=1)).isoformat(),
            "variants": [{"price": str(price), "inventory_quantity": 5, "inventory_management": "shopify"}],
        }
        assert ports.catalog.save_listing(shop, parse_webhook_product(listing))
    stale = parse_webhook_product(listing | {"updated_at": (now - timedelta(days=3)).isoformat(), "status": "active"})
    assert not ports.catalog.save_listing(shop, stale)  # older than the stored listing: ignored
    baskets = [[A, B], [A, B], [A, B, C], [A, C], [B, C], [A, D]]
    for number, basket in enumerate(baskets):
        payload = order_payload(
            order_id=6000 + number,
            created_at=now - timedelta(minutes=number),
            lines=[{"product_id": p, "price": str(PRICES[p])} for p in basket],
        )
        process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)
    for visitor in range(3):  # impressions of A and B, one click on A
        track(ports, shop, widget_events(shop, f"v-{visitor}", [A, B], [A] if visitor == 0 else [], now), now)

    job = similarity_for_shop(shop, now + timedelta(minutes=1), ports.similarity, ports.store)
    learned = learn_shop(LearnShop(shop=shop, day=now.date()), ports.learning, ports.store)

    assert (job["baskets"], job["products"], job["products_with_neighbours"]) == (6, 4, 3)
    context = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A, B, D])
    # Jaccard: A and B in 3 of 6 orders of either; A and C in 2 of 6; B and C in 2 of 5; A and D once (below support).
    assert {
        product: [(other, round(score, 4)) for other, score in scores] for product, scores in context.similar.items()
    } == {
        A: [(B, 0.5), (C, 0.3333)],
        B: [(A, 0.5), (C, 0.4)],
    }
    assert context.landed == {}  # the sample order's landing_site is the home page: nothing is counted
    assert (learned["products"], learned["blacklisted"]) == (4, 0)
    model = context.model
    assert model is not None
    assert (model.run, model.policy) == (now.date().isoformat(), "bayes")
    assert [p.product_id for p in model.best_sellers] == [A, B, C, D]  # most sold first
    assert [(p.product_id, p.impressions, p.clicks, p.purchases) for p in model.best_sellers[:2]] == [
        (A, 3, 1, 0),
        (B, 3, 0, 0),
    ]
    items = ports.serving.candidates(shop, performance_ids=[A, "9999"], catalog_ids=[A, D, "9999"], run=model.run)
    assert {p: result.impressions for p, result in items.performance.items()} == {A: 3}
    assert {p: (listing.price, listing.recommendable) for p, listing in items.listings.items()} == {
        A: (Decimal("10.00"), True),
        D: (Decimal("5.00"), False),
    }
    other_run = ports.serving.candidates(shop, performance_ids=[A], catalog_ids=[], run="2000-01-01")
    assert other_run.performance == {}


def test_given_orders_that_name_their_landing_page_when_the_job_ran_then_both_read_what_they_bought(
    ports: Ports,
) -> None:
    shop, now = new_shop(), recently(timedelta(hours=2))
    for product, price in PRICES.items():
        listing = {
            "id": int(product),
            "title": f"Product {product}",
            "handle": f"P-{product}",  # matched whatever its case
            "status": "active",
            "updated_at": (now - timedelta(days=1)).isoformat(),
            "variants": [{"price": str(price), "inventory_quantity": 5, "inventory_management": "shopify"}],
        }
        assert ports.catalog.save_listing(shop, parse_webhook_product(listing))
    orders = [
        ([A, B], f"/products/p-{A}?utm_source=newsletter"),  # landed on A, bought B
        ([A, B], f"https://shop.example/fr/products/p-{A}"),  # landed on A (under a locale), bought B
        ([A, C], f"/products/p-{C}"),  # landed on C, bought A
        ([A, B, C], "/?utm_source=newsletter"),  # the home page
        ([B, C], None),
        ([A, C], f"/collections/all/products/p-{A}"),  # landed on A (through a collection), bought C
    ]
    for number, (basket, landing) in enumerate(orders):
        payload = order_payload(
            order_id=6100 + number,
            created_at=now - timedelta(minutes=number),
            lines=[{"product_id": p, "price": str(PRICES[p])} for p in basket],
        )
        process_order_created(shop, payload | {"landing_site": landing}, ports.store, rec_ids=lambda: REC_IDS)

    job = similarity_for_shop(shop, now + timedelta(minutes=1), ports.similarity, ports.store)

    assert (job["baskets"], job["baskets_with_landing_page"]) == (6, 4)
    context = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A, B, C])
    assert [p for p, _ in context.similar[A]] == [B, C]
    # 3 orders landed on A (2 bought B, 1 C), 1 on C (bought A), none on B; pooled: 4 of 3 × 2 + 1 × 2 chances
    assert context.landed == {
        A: Landed(3, (2, 1), 0.5),
        B: Landed(0, (), 0.5),
        C: Landed(1, (1,), 0.5),
    }
    similarities = ports.learning.page_similarities(shop, [A, B])
    assert {p: s[:2] for p, s in similarities[A].items()} == {B: (0.5, 0.0), C: (0.5, 0.0)}
    assert {p: s[2] for p, s in similarities[A].items()} == pytest.approx({B: 3 / 5, C: 2 / 5})
    assert {p: s[2] for p, s in similarities[B].items()} == {A: 0.5, C: 0.5}  # no order landed on B: the shop's


def view(ports: Ports, shop: str, visitor: str, products: list[str], at: datetime) -> None:
    events = [{"type": "view", "visitor_id": visitor, "product_id": p} for p in products]
    track(ports, shop, {"events": events}, at)


def test_given_visitors_views_then_each_visitors_day_is_one_session_of_distinct_products(ports: Ports) -> None:
    shop, now = new_shop(), recently()
    view(ports, shop, "v-1", [A, B, A, B], now)
    view(ports, shop, "v-1", [B, C], now)  # the same day: the same session
    view(ports, shop, "v-2", [D], now)
    view(ports, shop, "v-3", [A] * 30, now)
    view(ports, shop, "v-3", [A] * 20 + [B] * 10, now)  # the views past the day's cap of 50 are dropped
    customer = track_events(
        shop,
        "77",
        {"events": [{"type": "view", "visitor_id": "v-4", "product_id": C}]},
        ports.store,
        now=now,
        rec_ids=REC_IDS,
    )
    assert customer.received == 1

    sessions = ports.similarity.view_sessions(shop, now - timedelta(days=1), now, 1000)
    later = ports.similarity.view_sessions(shop, now + timedelta(days=1), now + timedelta(days=2), 1000)

    # v-4's customer profile repeats v-4's views and is not a session of its own.
    assert sorted(sorted(session) for session in sessions) == [[A], [A, B, C], [C], [D]]
    assert later == []


def test_given_views_sent_on_other_days_then_each_counts_on_the_day_of_its_request(ports: Ports) -> None:
    # The day of a session is the request's, not the clock's: a job over past days (a late run, the store
    # simulation's days) finds the views taken on them, and a visitor's new day starts a new session.
    shop = new_shop()
    first = datetime(2025, 3, 1, 10, tzinfo=UTC)
    view(ports, shop, "v-1", [A, B], first)
    view(ports, shop, "v-2", [C, D], first)
    view(ports, shop, "v-2", [A], first + timedelta(days=1))

    on_the_first = ports.similarity.view_sessions(shop, first - timedelta(hours=10), first + timedelta(hours=13), 1000)
    on_the_second = ports.similarity.view_sessions(shop, first + timedelta(days=1), first + timedelta(days=2), 1000)
    today = ports.similarity.view_sessions(shop, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC), 1000)

    assert sorted(sorted(session) for session in on_the_first) == [[A, B]]  # v-2's profile now holds its second day
    assert sorted(sorted(session) for session in on_the_second) == [[A]]
    assert today == []


def test_given_views_and_baskets_when_the_job_ran_then_viewed_together_neighbours_read_the_same(
    ports: Ports,
) -> None:
    shop, now = new_shop(), recently()  # a profile keeps its views by the day they were taken
    for visitor in range(3):  # A and C viewed together by three visitors, B and D by one
        view(ports, shop, f"v-{visitor}", [A, C] if visitor else [A, C, B, D], now)
    for number, basket in enumerate([[A, B], [A, B], [C, D]]):
        payload = order_payload(
            order_id=7000 + number,
            created_at=now - timedelta(minutes=number),
            lines=[{"product_id": p, "price": str(PRICES[p])} for p in basket],
        )
        process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)

    job = similarity_for_shop(shop, now + timedelta(minutes=1), ports.similarity, ports.store)
    context = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A, B, C])

    assert (job["view_sessions"], job["products_with_viewed_together"]) == (3, 2)
    weight = job["viewed_together_weight"]
    assert weight is not None
    assert 0 < weight <= 4
    assert context.similar == {A: [(B, 1.0)], B: [(A, 1.0)]}
    # A and C share 3 of 3 sessions (Jaccard 1); B and D, one session: below the support of 2.
    assert context.viewed_similar == {A: [(C, round(weight, 6))], C: [(A, round(weight, 6))]}
    # Every session began on A (its oldest view) and went on to view C; none began on C: pooled 3 of 3 × 1 chances.
    assert job["view_sessions_counted_for_viewed_after"] == 3
    assert context.viewed_after == {A: Landed(3, (1 * 3,), 1.0), C: Landed(0, (), 1.0)}
    similarities = ports.learning.page_similarities(shop, [A, C])
    # B, a co-purchase neighbour the co-view list does not hold: none of the 3, shrunk by 2 toward the pooled 1.0
    assert {p: s[3] for p, s in similarities[A].items()} == pytest.approx({B: 2 / 5, C: 1.0})
    assert similarities[C][A][3] == 1.0  # no session began on C: the shop's pooled share


def test_given_a_shop_without_views_when_the_job_ran_then_it_has_no_viewed_together_neighbours(ports: Ports) -> None:
    shop, now = new_shop(), recently(timedelta(hours=1))
    for number in range(2):
        payload = order_payload(
            order_id=7100 + number,
            created_at=now - timedelta(minutes=number),
            lines=[{"product_id": p, "price": str(PRICES[p])} for p in (A, B)],
        )
        process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)

    job = similarity_for_shop(shop, now + timedelta(minutes=1), ports.similarity, ports.store)
    context = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A, B])

    assert (job["view_sessions"], job["products_with_viewed_together"], job["viewed_together_weight"]) == (0, 0, None)
    assert context.similar == {A: [(B, 1.0)], B: [(A, 1.0)]}
    assert (context.viewed_similar, context.viewed_after) == ({}, {})


def test_given_a_widget_without_a_page_then_each_product_counter_keeps_its_impressions_exposure(ports: Ports) -> None:
    """A rec id without a page (issued before pages were signed, or a cart's): its impressions go to the products'
    counters, each with the exposure of its place in the signed list, whatever places the body claims; a repeat
    adds nothing."""
    shop, now = new_shop(), recently()
    body = widget_events(shop, "v-1", [A, B, C, D], [], now)
    body["events"][0]["products"] = [{"product_id": p, "position": 1} for p in (A, B, C, D)]  # all "first"
    track(ports, shop, body, now)
    track(ports, shop, body, now + timedelta(seconds=5))

    rows = {row.product_id: row for row in ports.learning.counter_days(shop, now.date(), now.date())}
    assert {p: (row.impressions, row.exposure) for p, row in rows.items() if isinstance(row, ProductDay)} == {
        A: (1, 1.0),
        B: (1, 0.707),
        C: (1, 0.577),
        D: (1, 0.5),
    }


def test_given_a_product_pages_widget_and_an_order_then_counter_days_read_the_same_pairs(ports: Ports) -> None:
    """A widget served on D's page (the page signed in its rec id), sent as if it were on C's page: its impressions
    and the click on B are counted in D's page item, not in the products' counters; the order's B (its `_rec_id`)
    and A (seen in that widget) are purchases of (D, B) and (D, A) as well as of B and A."""
    shop, now = new_shop(), recently(timedelta(minutes=30))
    rec_id = REC_IDS.issue(
        shop=shop, visitor_id="v-3", arm="learning", placement="product", products=[A, B], now=now, page=D
    )
    rec = {"rec_id": rec_id, "rec_products": [A, B], "visitor_id": "v-3"}
    events = [
        {"type": "impression", "placement": "product", "source_product_id": C, **rec}
        | {"products": [{"product_id": A, "position": 1}, {"product_id": B, "position": 2}]},
        {"type": "click", "product_id": B, "position": 2, **rec},
    ]
    track(ports, shop, {"events": events}, now)
    payload = order_payload(
        order_id=5003,
        created_at=now + timedelta(minutes=10),
        visitor_id="v-3",
        lines=[
            {"product_id": B, "price": "25.00", "rec_id": rec_id},
            {"product_id": A, "price": "10.00"},
            {"product_id": A, "price": "10.00"},  # a product twice in an order converts once
        ],
    )

    summary = process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)

    assert summary.attributed_lines == 3
    rows = sorted(ports.learning.counter_days(shop, now.date(), now.date()), key=repr)
    day = now.date()
    assert rows == sorted(
        [
            # A listed first, B second in the signed list: exposure 1 and 1/√2 (to the item's 3 decimals)
            PairDay(day, D, A, impressions=1, purchases=1, exposure=1.0),
            PairDay(day, D, B, impressions=1, purchases=1, exposure=0.707, clicks=1),
            ProductDay(day, A, impressions=0, purchases=1, units=2, revenue=Decimal("20.00"), sold=1),
            ProductDay(day, B, impressions=0, purchases=1, units=1, revenue=Decimal("25.00"), sold=1),
        ],
        key=repr,
    )
    shown: dict[str, tuple[int, int]] = {}  # what learning counts: a page's impressions and clicks as the candidate's
    for row in product_rows(ports.learning.counter_days(shop, now.date(), now.date())):
        impressions, clicks = shown.get(row.product_id, (0, 0))
        shown[row.product_id] = (impressions + row.impressions, clicks + row.clicks)
    assert shown == {A: (1, 0), B: (1, 1)}


def test_given_a_pages_widget_and_orders_when_the_context_policy_learned_then_serving_reads_the_same_ratios(
    ports: Ports,
) -> None:
    """On A's page, B and C are shown to 40 visitors and 8 of them buy C through the widget, none B: the context
    policy's night (pairs, the pages' neighbours, the shop's prior) leaves A's page a ratio above 1 for C and below 1
    for B, which serving reads with the model in its first round trip; a later run's model ignores them."""
    shop, now = new_shop(), recently(timedelta(hours=2))
    ports.store.put_settings(shop, ShopSettings(policy="context"))
    for number, basket in enumerate([[A, B], [A, B], [A, C], [A, C], [B, C]]):
        payload = order_payload(
            order_id=7000 + number,
            created_at=now - timedelta(minutes=number),
            lines=[{"product_id": p, "price": str(PRICES[p])} for p in basket],
        )
        process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)
    for visitor in range(40):
        rec_id = REC_IDS.issue(
            shop=shop, visitor_id=f"w-{visitor}", arm="learning", placement="product", products=[B, C], now=now, page=A
        )
        rec = {"rec_id": rec_id, "rec_products": [B, C], "visitor_id": f"w-{visitor}"}
        positions = [{"product_id": B, "position": 1}, {"product_id": C, "position": 2}]
        impression: dict[str, Any] = {"type": "impression", "placement": "product", "products": positions, **rec}
        track(ports, shop, {"events": [impression]}, now)
        if visitor < 8:
            payload = order_payload(
                order_id=7100 + visitor,
                created_at=now + timedelta(minutes=5),
                visitor_id=f"w-{visitor}",
                lines=[{"product_id": C, "price": str(PRICES[C]), "rec_id": rec_id}],
            )
            process_order_created(shop, payload, ports.store, rec_ids=lambda: REC_IDS)

    similarity_for_shop(shop, now + timedelta(minutes=10), ports.similarity, ports.store)
    learn_shop(LearnShop(shop=shop, day=now.date()), ports.learning, ports.store)

    # Jaccard: A and B in 2 of the 5 orders of either, A and C in 2 of the 13 (C alone in the widget's 8)
    assert ports.learning.page_similarities(shop, [A, "9999"]) == {
        A: {B: (0.4, 0.0, 0.0, 0.0), C: (0.153846, 0.0, 0.0, 0.0)}
    }
    context = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A], page=A)
    assert context.model is not None
    assert context.model.policy == "context"
    assert context.model.context is not None
    assert set(context.pair_ratios) == {B, C}
    assert context.pair_ratios[C] > 1 > context.pair_ratios[B]
    other_page = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[B], page=B)
    assert other_page.pair_ratios == {}

    ports.store.put_settings(shop, ShopSettings(policy="bayes"))
    learn_shop(LearnShop(shop=shop, day=now.date() + timedelta(days=1)), ports.learning, ports.store)
    later = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A], page=A)
    assert later.model is not None
    assert later.model.context is None
    assert later.pair_ratios == {}  # the ratios of an older run are not the served model's


def test_given_clicks_alone_when_the_context_policy_learned_then_each_page_rates_the_candidate_it_clicks(
    ports: Ports,
) -> None:
    """B and C are shown together on A's page and on D's page, 40 visitors each, and nothing is bought: on A's page 12
    click C and 1 clicks B, on D's page the other way round. The clicks are counted in the pages' items, the night
    learns the pairs from them (each candidate's clicks on one page against its clicks everywhere), and serving
    reads A's page rating C above B and D's page B above C."""
    shop, now = new_shop(), recently(timedelta(hours=2))
    ports.store.put_settings(shop, ShopSettings(policy="context"))
    for page, favourite in ((A, C), (D, B)):
        for visitor in range(40):
            rec_id = REC_IDS.issue(
                shop=shop,
                visitor_id=f"{page}-{visitor}",
                arm="learning",
                placement="product",
                products=[B, C],
                now=now,
                page=page,
            )
            rec = {"rec_id": rec_id, "rec_products": [B, C], "visitor_id": f"{page}-{visitor}"}
            positions = [{"product_id": B, "position": 1}, {"product_id": C, "position": 2}]
            events: list[dict[str, Any]] = [
                {"type": "impression", "placement": "product", "products": positions, **rec}
            ]
            other = B if favourite == C else C
            clicked = favourite if visitor < 12 else other if visitor == 12 else None
            if clicked is not None:
                events.append({"type": "click", "product_id": clicked, "position": 1 if clicked == B else 2, **rec})
            track(ports, shop, {"events": events}, now)

    learn_shop(LearnShop(shop=shop, day=now.date()), ports.learning, ports.store)

    on_a = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[A], page=A).pair_ratios
    on_d = ports.serving.context(shop, visitor_id=None, customer_id=None, products=[D], page=D).pair_ratios
    assert on_a[C] > on_a[B]
    assert on_d[B] > on_d[C]
    assert on_a[C] > on_d[C]
    assert on_d[B] > on_a[B]
