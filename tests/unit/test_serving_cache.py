"""What an execution environment remembers between recommendation requests: the expiring LRU's lifetime and bounds
on an injected clock, and the serving reader's round trips, cold and warm, through a fake BatchGetItem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from reclift import config
from reclift.config import ConfigurationError
from reclift.data.expiring_cache import ExpiringLru, item_size
from reclift.data.learning import MODEL_KEY, PERFORMANCE_PREFIX, performance_to_json
from reclift.data.models import CatalogItem, LearningItem, ShopItem, SimilarityItem, reset_bindings
from reclift.data.neighbours import similarity_sk
from reclift.data.serving import ServingCaches, ServingReader
from reclift.learning import Performance

SHOP = "cache.myshopify.com"
TABLES = {
    "EVENTS_TABLE": "events",
    "COUNTERS_TABLE": "counters",
    "ORDERS_TABLE": "orders",
    "PROFILES_TABLE": "profiles",
    "SHOPS_TABLE": "shops",
    "LEARNING_TABLE": "learning",
    "CATALOG_TABLE": "catalog",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def lru(clock: Clock, *, ttl: float = 60, entries: int = 10, size: int = 1_000) -> ExpiringLru[str, int | None]:
    return ExpiringLru(ttl_seconds=ttl, max_entries=entries, max_bytes=size, clock=clock)


# ---------------------------------------------------------------------------------------------------- the LRU
def test_given_an_entry_when_its_lifetime_passes_then_it_is_a_miss_and_its_bytes_are_freed() -> None:
    clock = Clock()
    cache = lru(clock, ttl=60)
    cache.put("a", 1, 100)

    clock.advance(59.9)
    assert cache.get("a") == (True, 1)
    clock.advance(0.1)
    assert cache.get("a") == (False, None)
    assert (len(cache), cache.bytes) == (0, 0)


def test_given_a_read_entry_then_its_lifetime_still_counts_from_when_it_was_stored() -> None:
    clock = Clock()
    cache = lru(clock, ttl=60)
    cache.put("a", 1, 10)
    for _ in range(5):
        clock.advance(10)
        assert cache.get("a") == (True, 1)
    clock.advance(10)
    assert cache.get("a") == (False, None)


def test_given_an_absent_item_remembered_then_it_is_a_hit_whose_value_is_none() -> None:
    cache = lru(Clock())
    cache.put("gone", None, 64)
    assert cache.get("gone") == (True, None)
    assert cache.get("never") == (False, None)


def test_given_more_entries_than_allowed_then_the_least_recently_used_go_first() -> None:
    cache = lru(Clock(), entries=3)
    for key in ("a", "b", "c"):
        cache.put(key, 1, 10)
    cache.get("a")  # now b is the least recently used
    cache.put("d", 1, 10)

    assert [key for key in "abcd" if cache.get(key)[0]] == ["a", "c", "d"]
    assert (len(cache), cache.bytes) == (3, 30)


def test_given_entries_over_the_byte_bound_then_old_ones_go_until_they_fit() -> None:
    cache = lru(Clock(), entries=100, size=1_000)
    for key in ("a", "b", "c", "d"):
        cache.put(key, 1, 300)
    assert cache.bytes == 900
    cache.put("e", 1, 500)

    assert [key for key in "abcde" if cache.get(key)[0]] == ["d", "e"]
    assert cache.bytes == 800


def test_given_an_entry_bigger_than_the_cache_then_it_is_not_stored_and_evicts_nothing() -> None:
    cache = lru(Clock(), size=1_000)
    cache.put("a", 1, 400)
    cache.put("huge", 2, 1_001)
    assert cache.get("huge") == (False, None)
    assert cache.get("a") == (True, 1)


def test_given_a_key_stored_again_then_its_value_size_and_lifetime_are_replaced() -> None:
    clock = Clock()
    cache = lru(clock, ttl=60)
    cache.put("a", 1, 100)
    clock.advance(50)
    cache.put("a", 2, 40)
    clock.advance(50)
    assert cache.get("a") == (True, 2)
    assert cache.bytes == 40


def test_given_a_lifetime_of_zero_then_nothing_is_kept() -> None:
    cache = lru(Clock(), ttl=0)
    cache.put("a", 1, 10)
    assert cache.get("a") == (False, None)
    assert len(cache) == 0


def test_given_a_raw_item_then_its_size_is_counted_as_dynamodb_bills_it() -> None:
    # names and strings in bytes; a number ~ digits/2 + 1; a list 3 + 1 per element; a boolean 1
    item = {"pk": {"S": "shop"}, "n": {"N": "1234"}, "ok": {"BOOL": True}, "l": {"L": [{"S": "é"}]}}
    assert item_size(item) == (2 + 4) + (1 + 3) + (2 + 1) + (1 + 3 + 1 + 2)


# ---------------------------------------------------------------------------------------------------- configuration
def test_given_no_setting_then_listings_live_two_minutes_and_learning_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CATALOG_CACHE_SECONDS", raising=False)
    monkeypatch.delenv("LEARNING_CACHE_SECONDS", raising=False)
    caches = ServingCaches.configured()
    assert (caches.listings.ttl_seconds, caches.models.ttl_seconds) == (120, 600)
    assert caches.performance.ttl_seconds == caches.neighbours.ttl_seconds == 600


def test_given_settings_then_they_set_the_lifetimes_and_zero_turns_a_cache_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CATALOG_CACHE_SECONDS", "0")
    monkeypatch.setenv("LEARNING_CACHE_SECONDS", "30")
    caches = ServingCaches.configured()
    assert not caches.listings.enabled
    assert caches.models.ttl_seconds == 30


@pytest.mark.parametrize("value", ["two minutes", "-1", "1.5"])
def test_given_a_bad_setting_then_the_configuration_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CATALOG_CACHE_SECONDS", value)
    with pytest.raises(ConfigurationError, match="CATALOG_CACHE_SECONDS"):
        config.catalog_cache_seconds()


# ---------------------------------------------------------------------------------------------------- the reader
def performance(product_id: str, purchases: int = 5) -> Performance:
    return Performance(
        product_id=product_id,
        impressions=500,
        clicks=25,
        purchases=purchases,
        units=purchases,
        revenue=Decimal(purchases * 20),
        ctr=0.05,
        cvr=purchases / 500,
        confidence=0.5,
        blacklisted=False,
        reason="",
        alpha=1 + purchases,
        beta=500 - purchases,
        price=Decimal(20),
    )


class FakeTables(ServingReader):
    """The serving reader over items held in a dict, recording each BatchGetItem's keys (one list per round trip)."""

    def __init__(self, caches: ServingCaches) -> None:
        super().__init__(caches)
        self.items: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.round_trips: list[dict[str, list[str]]] = []

    def store(self, table: str, item: Any) -> None:
        raw = item.serialize()
        self.items[(table, raw["pk"]["S"], raw.get("sk", {}).get("S", ""))] = raw

    def _batch_get(self, requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        asked = {table: keys for table, keys in requests.items() if keys}
        self.round_trips.append(
            {table: [key.get("sk", key["pk"])["S"] for key in keys] for table, keys in asked.items()}
        )
        return {
            table: [
                self.items[found]
                for key in keys
                if (found := (table, key["pk"]["S"], key.get("sk", {}).get("S", ""))) in self.items
            ]
            for table, keys in asked.items()
        }

    def request(self, product: str = "1", *, catalog: list[str], performance_ids: list[str]) -> Any:
        """A product page's two round trips, as `recommend` makes them."""
        context = self.context(SHOP, visitor_id="v", customer_id=None, products=[product])
        run = context.model.run if context.model else None
        return context, self.candidates(SHOP, performance_ids=performance_ids, catalog_ids=catalog, run=run)


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in TABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_bindings()
    yield
    reset_bindings()


def listing_item(product: str, price: str, *, available: bool = True) -> CatalogItem:
    return CatalogItem(
        pk=SHOP,
        sk=product,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
        deleted=False,
        title=f"Product {product}",
        handle=f"product-{product}",
        status="active",
        price=Decimal(price),
        available=available,
    )


def model_item(run: str, sellers: list[Performance]) -> LearningItem:
    return LearningItem(
        pk=SHOP,
        sk=MODEL_KEY,
        run=run,
        policy="bayes",
        updated_at=datetime(2026, 11, 30, tzinfo=UTC),
        prior_alpha=1,
        prior_beta=99,
        median_price=Decimal(20),
        best_sellers=json.dumps([performance_to_json(p) for p in sellers]),
        products=len(sellers),
        blacklisted_products=0,
    )


def performance_item(run: str, result: Performance) -> LearningItem:
    return LearningItem(
        pk=SHOP,
        sk=f"{PERFORMANCE_PREFIX}{result.product_id}",
        run=run,
        policy="bayes",
        updated_at=datetime(2026, 11, 30, tzinfo=UTC),
        **asdict(result),
    )


def neighbours_item(product: str, neighbours: list[tuple[str, float]], *, expires_in_days: int = 3) -> SimilarityItem:
    return SimilarityItem(
        pk=SHOP,
        sk=similarity_sk(product),
        run="2026-11-30",
        product_id=product,
        neighbours=json.dumps([[p, score, 0.1, 2.0] for p, score in neighbours]),
        orders=10,
        updated_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(days=expires_in_days),
    )


@pytest.fixture
def shop_tables(tables: None) -> tuple[FakeTables, Clock]:
    """A shop with settings, a model of two best sellers (9, 8), product 1's neighbours (2, 3), three products of
    the catalog (2, 3, 9; 8 is unknown to it) and product 2's performance (3 has none)."""
    clock = Clock()
    reader = FakeTables(ServingCaches.of(catalog_seconds=120, learning_seconds=600, clock=clock))
    reader.store("shops", ShopItem(pk=SHOP, settings=json.dumps({"holdout_share": 0.2})))
    reader.store("learning", model_item("2026-11-30", [performance("9", 9), performance("8", 8)]))
    reader.store("learning", neighbours_item("1", [("2", 0.5), ("3", 0.25)]))
    reader.store("learning", performance_item("2026-11-30", performance("2", 2)))
    for product, price in (("2", "20.00"), ("3", "30.00"), ("9", "90.00")):
        reader.store("catalog", listing_item(product, price))
    return reader, clock


CATALOG = ["9", "8", "2", "3"]
UNKNOWN_TO_MODEL = ["2", "3"]


def test_given_a_cold_environment_then_both_round_trips_read_everything_the_ranking_needs(
    shop_tables: tuple[FakeTables, Clock],
) -> None:
    reader, _ = shop_tables
    context, items = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)

    assert reader.round_trips == [
        {"shops": [SHOP], "learning": [MODEL_KEY, "s#1"], "profiles": [f"{SHOP}#v#v"]},
        {"learning": ["p#2", "p#3"], "catalog": CATALOG},
    ]
    assert context.model is not None
    assert [p.product_id for p in context.model.best_sellers] == ["9", "8"]
    assert context.similar == {"1": [("2", 0.5), ("3", 0.25)]}
    assert context.settings.holdout_share == 0.2
    assert set(items.performance) == {"2"}
    assert {p: str(listing.price) for p, listing in items.listings.items()} == {
        "2": "20.00",
        "3": "30.00",
        "9": "90.00",
    }


def test_given_a_warm_environment_then_one_round_trip_reads_only_the_shop_and_the_profiles(
    shop_tables: tuple[FakeTables, Clock],
) -> None:
    reader, clock = shop_tables
    cold = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)
    reader.round_trips.clear()
    clock.advance(119)

    warm = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)

    assert reader.round_trips == [{"shops": [SHOP], "profiles": [f"{SHOP}#v#v"]}]
    assert warm == cold  # the same context and items: what is known absent (8's listing, 3's performance) too


def test_given_a_price_change_then_it_is_served_stale_until_the_listing_expires_and_no_longer(
    shop_tables: tuple[FakeTables, Clock],
) -> None:
    reader, clock = shop_tables
    reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)
    reader.store("catalog", listing_item("3", "35.00", available=False))  # the webhook's write, a minute later
    clock.advance(60)
    _, stale = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)
    assert (stale.listings["3"].price, stale.listings["3"].recommendable) == (Decimal("30.00"), True)

    clock.advance(60)
    reader.round_trips.clear()
    _, fresh = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)

    assert (fresh.listings["3"].price, fresh.listings["3"].recommendable) == (Decimal("35.00"), False)
    # The listings are read again, the learned items are not (they live longer).
    assert reader.round_trips[1] == {"catalog": CATALOG}
    assert "learning" not in reader.round_trips[0]


def test_given_a_new_learning_run_then_it_is_served_once_the_old_model_expires_with_its_own_performance(
    shop_tables: tuple[FakeTables, Clock],
) -> None:
    reader, clock = shop_tables
    reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)
    reader.store("learning", model_item("2026-12-01", [performance("3", 3)]))
    reader.store("learning", performance_item("2026-12-01", performance("2", 7)))
    clock.advance(599)
    context, items = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)
    assert context.model is not None
    assert (context.model.run, items.performance["2"].purchases) == ("2026-11-30", 2)

    clock.advance(1)
    context, items = reader.request(catalog=CATALOG, performance_ids=UNKNOWN_TO_MODEL)

    assert context.model is not None
    assert context.model.run == "2026-12-01"
    assert items.performance["2"].purchases == 7  # the new run's, not the old one's remembered


def test_given_expired_neighbours_then_they_are_not_served_and_remembered_as_none(
    shop_tables: tuple[FakeTables, Clock],
) -> None:
    reader, _ = shop_tables
    reader.store("learning", neighbours_item("5", [("2", 0.5)], expires_in_days=-1))

    first, _ = reader.request("5", catalog=[], performance_ids=[])
    second, _ = reader.request("5", catalog=[], performance_ids=[])

    assert first.similar == second.similar == {}
    assert reader.round_trips[1] == {"shops": [SHOP], "profiles": [f"{SHOP}#v#v"]}


def test_given_caches_turned_off_then_every_request_reads_everything(tables: None) -> None:
    reader = FakeTables(ServingCaches.of(catalog_seconds=0, learning_seconds=0, clock=Clock()))
    reader.store("catalog", listing_item("2", "20.00"))
    for _ in range(2):
        reader.request(catalog=["2"], performance_ids=["2"])

    assert reader.round_trips[0] == reader.round_trips[2]
    assert reader.round_trips[1] == reader.round_trips[3] == {"learning": ["p#2"], "catalog": ["2"]}


def test_given_more_listings_than_the_cache_holds_then_it_keeps_the_latest_within_its_bytes_and_rereads_the_rest(
    tables: None,
) -> None:
    clock = Clock()
    caches = ServingCaches.of(catalog_seconds=120, learning_seconds=600, clock=clock)
    small = ServingCaches(
        listings=ExpiringLru(ttl_seconds=120, max_entries=1_000, max_bytes=1_000, clock=clock),
        models=caches.models,
        performance=caches.performance,
        neighbours=caches.neighbours,
        pairs=caches.pairs,
    )
    reader = FakeTables(small)
    products = [str(n) for n in range(20)]
    for product in products:
        reader.store("catalog", listing_item(product, "10.00"))
    size = item_size(reader.items[("catalog", SHOP, "10")])
    reader.candidates(SHOP, performance_ids=[], catalog_ids=products, run=None)

    kept = 1_000 // size
    assert len(small.listings) == kept
    assert small.listings.bytes <= 1_000
    reader.round_trips.clear()
    reader.candidates(SHOP, performance_ids=[], catalog_ids=products[-kept:], run=None)
    assert reader.round_trips == []
    reader.candidates(SHOP, performance_ids=[], catalog_ids=products[:2], run=None)
    assert reader.round_trips == [{"catalog": products[:2]}]


def test_given_the_default_bounds_then_a_full_listings_cache_holds_about_15k_listings_in_a_few_mb(tables: None) -> None:
    caches = ServingCaches.of(catalog_seconds=120, learning_seconds=600, clock=Clock())
    reader = FakeTables(caches)
    products = [str(7_000_000_000 + n) for n in range(25_000)]
    for product in products:
        item = listing_item(product, "19.99")
        item.image = f"https://cdn.shopify.com/s/files/1/0000/{product}/files/product.jpg"  # a listing of ~250 B
        reader.store("catalog", item)
    for start in range(0, len(products), 100):
        reader.candidates(SHOP, performance_ids=[], catalog_ids=products[start : start + 100], run=None)

    assert caches.listings.bytes <= caches.listings.max_bytes == 4 * 2**20
    assert 15_000 <= len(caches.listings) < caches.listings.max_entries


def test_given_a_product_page_then_its_pair_ratios_come_in_the_first_round_trip_only_for_the_context_policy(
    tables: None,
) -> None:
    """Cold, the page's pair item is asked for with the model (its policy unknown yet); warm, it is asked for again
    only while the model is the context policy's and the item's lifetime has passed; an older run's ratios are not
    served."""
    clock = Clock()
    reader = FakeTables(ServingCaches.of(catalog_seconds=120, learning_seconds=600, clock=clock))
    reader.store("shops", ShopItem(pk=SHOP, settings=json.dumps({"policy": "context"})))
    model = model_item("2026-11-30", [performance("9", 9)])
    model.policy = "context"
    model.context = '{"edges":[],"ratios":[1.0],"unrelated":0.3,"strength":1.0}'
    reader.store("learning", model)
    pairs = LearningItem(
        pk=SHOP, sk="c#1", run="2026-11-30", policy="context", updated_at=datetime(2026, 11, 30, tzinfo=UTC)
    )
    pairs.product_id, pairs.pairs = "1", '{"2":1.8,"3":0.4}'
    reader.store("learning", pairs)

    cold = reader.context(SHOP, visitor_id=None, customer_id=None, products=["1"], page="1")
    warm = reader.context(SHOP, visitor_id=None, customer_id=None, products=["1"], page="1")
    clock.advance(601)
    reader.store("learning", model_item("2026-12-01", [performance("9", 9)]))  # the next night: bayes again
    later = reader.context(SHOP, visitor_id=None, customer_id=None, products=["1"], page="1")
    after = reader.context(SHOP, visitor_id=None, customer_id=None, products=["1"], page="1")

    assert cold.pair_ratios == warm.pair_ratios == {"2": 1.8, "3": 0.4}
    assert cold.model is not None
    assert cold.model.context is not None
    assert cold.model.context.unrelated == 0.3
    assert [trip.get("learning") for trip in reader.round_trips] == [
        [MODEL_KEY, "s#1", "c#1"],  # cold: the model, the page's neighbours (none: remembered absent), its ratios
        None,  # warm: nothing from the learning table
        [MODEL_KEY, "s#1", "c#1"],  # lifetimes passed: the model's policy is unknown again
        None,
    ]
    assert later.pair_ratios == {}  # the 2026-11-30 ratios under the 2026-12-01 model
    assert after.pair_ratios == {}
