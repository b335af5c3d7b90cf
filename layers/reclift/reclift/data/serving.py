"""The recommendation request's reads: at most two DynamoDB round trips, each one BatchGetItem across tables.

1. the shop (its settings and the merchant's rules), the last learning run's model (prior, best sellers with their
   posteriors), the visitor's and customer's profiles (with the neighbours of their recent products, for the home
   placement) and
   the similarity items of the request's products (the product page's product, the cart's products), which carry
   their co-purchase, catalog and co-view neighbours (precomputed by the similarity job; co-view scores come
   multiplied by the shop's weight of them, kept in the same items), and, for a product page under the context
   policy, the page's learned pair ratios (one small item);
2. every per-candidate item, keyed by `candidate_keys`: the catalog items of every candidate (pinned products,
   similar products, catalog neighbours and best sellers: status, availability, price, tags, type and vendor for the
   merchant's exclusions, what the widget renders) and the performance items of those the model does not carry.

At most 100 keys per BatchGetItem (DynamoDB's limit): the first holds 4 + MAX_CONTEXT_PRODUCTS, the second at most
ROUND_TRIP_KEYS, shared out by `plan_candidate_reads`.

What an execution environment keeps between requests (`ServingCaches`, in memory, one set per environment, each an
`ExpiringLru` bounded in entries and bytes): a key found there is left out of its round trip, and a round trip with
no key left is not made. Each may serve stale, for at most its lifetime after it was read:

- catalog listings, CATALOG_CACHE_SECONDS (2 minutes by default): a price change shows in the widget up to that
  late (the product page and the checkout always show the true price); a product that sold out, went to draft or was
  deleted may still be recommended that long (its page then says sold out, or is gone); a product the catalog had
  never heard of stays priced at the shop's median that long. Two minutes is about how late the webhooks and their
  queue bring a change anyway, at a cost of one read per listing per environment every two minutes.
- the learned model, the performance items of products the model does not carry, the products' neighbours and the
  pages' pair ratios,
  LEARNING_CACHE_SECONDS (10 minutes by default): all written once a night by the learning and similarity jobs, so a
  new run (or a re-run of the day) is served up to ten minutes after it is written, beside a day-long run; a
  shop's first run, likewise (no model is remembered as none for as long).

Never cached: the shop's item (its settings and rules, whose changes the merchant expects at once, and whether it
uninstalled reclift) and the visitor's and customer's profiles (they change with every view).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from reclift import config
from reclift.catalog import Listing
from reclift.context import Landed
from reclift.data.catalog import catalog_keys, listing_of
from reclift.data.expiring_cache import ExpiringLru, item_size
from reclift.data.installs import uninstalled_in
from reclift.data.learning import (
    MODEL_KEY,
    PAIRS_PREFIX,
    PERFORMANCE_PREFIX,
    LearnedModel,
    model_from_item,
    pairs_from_item,
    performance_from_item,
)
from reclift.data.models import CatalogItem, LearningItem, ProfileItem, ShopItem, SimilarityItem, bind_tables
from reclift.data.neighbours import SIMILARITY_PREFIX, neighbours_from_json, scores_from_json, similarity_sk
from reclift.data.store import StoreError, customer_key, visitor_key
from reclift.learning import Performance
from reclift.rules import MerchantRules, stored_rules
from reclift.settings import ShopSettings, stored_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

UNPROCESSED_ATTEMPTS = 5
MAX_CONTEXT_PRODUCTS = 50  # the cart's products whose neighbours are read (the query allows no more)
MAX_CANDIDATES = 50
ROUND_TRIP_KEYS = 100  # DynamoDB's BatchGetItem limit

Scores = list[tuple[str, float]]
# a product's co-purchase, catalog and (weighted) co-view neighbours, what the orders landed on its page bought and
# what the view sessions that began there viewed
Neighbours = tuple[Scores, Scores, Scores, Landed | None, Landed | None]


@dataclass(frozen=True)
class ServingContext:
    settings: ShopSettings
    model: LearnedModel | None
    purchased: list[str] = field(default_factory=list)
    viewed: list[str] = field(default_factory=list)
    similar: dict[str, Scores] = field(default_factory=dict)  # the request's products' neighbours (by Jaccard)
    catalog_similar: dict[str, Scores] = field(default_factory=dict)  # their catalog neighbours (best first)
    # their co-view neighbours, Jaccard × the shop's weight of co-view (best first); none for a shop without views
    viewed_similar: dict[str, Scores] = field(default_factory=dict)
    rules: MerchantRules = field(default_factory=MerchantRules)  # read with the settings, at no extra cost
    profile_neighbours: list[Scores] = field(default_factory=list)  # each profile's recent products' neighbours
    profile_catalog_neighbours: list[Scores] = field(default_factory=list)  # and their catalog neighbours
    uninstalled: bool = False  # the shop uninstalled reclift (read with its settings, at no extra cost)
    # the context policy's learned pair ratios on the product page's product (of the served model's run)
    pair_ratios: dict[str, float] = field(default_factory=dict)
    # what the orders that landed on the request's products' pages bought of their co-purchase neighbours
    landed: dict[str, Landed] = field(default_factory=dict)
    # what the view sessions that began on the request's products' pages went on to view of their co-view neighbours
    viewed_after: dict[str, Landed] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateItems:
    """What the second round trip read per candidate: the performance items asked for, and the catalog's listings
    (a product the catalog has never heard of is absent: its price is unknown, it is not known to be unsellable)."""

    performance: dict[str, Performance] = field(default_factory=dict)
    listings: dict[str, Listing] = field(default_factory=dict)


class ServingPort(Protocol):
    """What the recommendation request reads: `ServingReader` on DynamoDB, the simulation's store in memory."""

    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext: ...

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems: ...


def candidate_keys(shop: str, performance_ids: list[str], catalog_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every per-candidate item the second round trip reads, by table: the one place to add another kind."""
    names = config.tables()
    return {
        names.learning: [{"pk": {"S": shop}, "sk": {"S": f"{PERFORMANCE_PREFIX}{p}"}} for p in performance_ids],
        names.catalog: catalog_keys(shop, catalog_ids),
    }


@cache
def _dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb")


# Bounds of each cache, counted in DynamoDB's item bytes (`item_size`); Python holds an entry in about 2.5 times its
# item's bytes (measured for listings and models), so the four together stay under about 40 MB of the function's
# 512 MB.
ABSENT_ITEM_BYTES = 64  # what an entry saying "no such item" is counted as
LISTINGS_BOUNDS = (20_000, 4 * 2**20)  # entries, bytes: about 16k listings of ~250 B
MODELS_BOUNDS = (1_000, 4 * 2**20)  # a model of 50 best sellers is about 14 KB: some 300 shops
PERFORMANCE_BOUNDS = (10_000, 2 * 2**20)
NEIGHBOURS_BOUNDS = (5_000, 4 * 2**20)  # a product's neighbours: up to 50, about 2 KB
PAIRS_BOUNDS = (5_000, 2 * 2**20)  # a page's pair ratios: the candidates shown on it, about 20 B each

ListingKey = tuple[str, str]  # shop, product
PerformanceKey = tuple[str, str | None, str]  # shop, the model's run, product
NeighboursKey = tuple[str, str]  # shop, product
PairsKey = tuple[str, str]  # shop, page
Pairs = tuple[str, dict[str, float]]  # the run, the page's pair ratios


@dataclass(frozen=True)
class ServingCaches:
    """What one execution environment remembers between requests; None as a value: the item is known absent."""

    listings: ExpiringLru[ListingKey, Listing | None]
    models: ExpiringLru[str, LearnedModel | None]
    performance: ExpiringLru[PerformanceKey, Performance | None]
    neighbours: ExpiringLru[NeighboursKey, Neighbours | None]
    pairs: ExpiringLru[PairsKey, Pairs | None]

    @classmethod
    def of(
        cls, *, catalog_seconds: float, learning_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> ServingCaches:
        def lru(ttl: float, bounds: tuple[int, int]) -> Any:
            return ExpiringLru(ttl_seconds=ttl, max_entries=bounds[0], max_bytes=bounds[1], clock=clock)

        return cls(
            listings=lru(catalog_seconds, LISTINGS_BOUNDS),
            models=lru(learning_seconds, MODELS_BOUNDS),
            performance=lru(learning_seconds, PERFORMANCE_BOUNDS),
            neighbours=lru(learning_seconds, NEIGHBOURS_BOUNDS),
            pairs=lru(learning_seconds, PAIRS_BOUNDS),
        )

    @classmethod
    def configured(cls) -> ServingCaches:
        """Lifetimes from the environment (CATALOG_CACHE_SECONDS, LEARNING_CACHE_SECONDS; 0 turns one off)."""
        return cls.of(catalog_seconds=config.catalog_cache_seconds(), learning_seconds=config.learning_cache_seconds())

    def clear(self) -> None:
        for lru in (self.listings, self.models, self.performance, self.neighbours, self.pairs):
            lru.clear()


class ServingReader:
    def __init__(self, caches: ServingCaches | None = None) -> None:
        bind_tables()
        self.caches = caches if caches is not None else ServingCaches.configured()

    def _batch_get(self, requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """One BatchGetItem (more only for keys DynamoDB leaves unprocessed under throttling)."""
        found: dict[str, list[dict[str, Any]]] = {table: [] for table in requests}
        pending: dict[str, Any] = {table: {"Keys": keys} for table, keys in requests.items() if keys}
        for attempt in range(UNPROCESSED_ATTEMPTS):
            if not pending:
                return found
            try:
                response = _dynamodb().batch_get_item(RequestItems=pending)
            except (BotoCoreError, ClientError) as exc:
                raise StoreError(f"reading for a recommendation failed: {exc}") from exc
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            pending = dict(response.get("UnprocessedKeys") or {})
            if pending:
                time.sleep(0.02 * 2**attempt)
        raise StoreError("DynamoDB kept leaving keys unprocessed")

    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext:
        """Round trip 1. `products`: those whose neighbours the placement recommends around; `page`: the product
        page's product, whose pair ratios the context policy reads (not when the model is known to be of another
        policy). The model, the products' neighbours and the page's ratios come from the environment's caches when
        they hold them."""
        names, caches = config.tables(), self.caches
        profile_keys = [visitor_key(shop, visitor_id)] if visitor_id else []
        profile_keys += [customer_key(shop, customer_id)] if customer_id else []
        wanted = list(dict.fromkeys(products or []))[:MAX_CONTEXT_PRODUCTS]
        model_cached, model = caches.models.get(shop)
        similar: dict[str, Scores] = {}
        catalog_similar: dict[str, Scores] = {}
        viewed_similar: dict[str, Scores] = {}
        landed: dict[str, Landed] = {}
        viewed_after: dict[str, Landed] = {}

        def keep(product: str, lists: Neighbours | None) -> None:
            if lists is not None:
                for kept, scores in zip((similar, catalog_similar, viewed_similar), lists[:3], strict=True):
                    if scores:
                        kept[product] = scores
                for counted, counts in zip((landed, viewed_after), lists[3:], strict=True):
                    if counts is not None:
                        counted[product] = counts

        unknown: list[str] = []
        for product in wanted:
            cached, remembered = caches.neighbours.get((shop, product))
            if not cached:
                unknown.append(product)
            else:
                keep(product, remembered)
        pairs_cached, pairs = caches.pairs.get((shop, page)) if page else (True, None)
        read_pairs = not pairs_cached and not (model_cached and (model is None or model.policy != "context"))
        found = self._batch_get(
            {
                names.shops: [{"pk": {"S": shop}}],
                names.learning: [
                    *([] if model_cached else [{"pk": {"S": shop}, "sk": {"S": MODEL_KEY}}]),
                    *({"pk": {"S": shop}, "sk": {"S": similarity_sk(p)}} for p in unknown),
                    *([{"pk": {"S": shop}, "sk": {"S": f"{PAIRS_PREFIX}{page}"}}] if read_pairs else []),
                ],
                names.profiles: [{"pk": {"S": key}} for key in profile_keys],
            }
        )
        now = datetime.now(UTC)
        shops = [ShopItem.from_raw_data(item) for item in found.get(names.shops, [])]
        learned = found.get(names.learning, [])
        if not model_cached:
            raw_models = [item for item in learned if item["sk"]["S"] == MODEL_KEY]
            model = model_from_item(LearningItem.from_raw_data(raw_models[0])) if raw_models else None
            caches.models.put(shop, model, item_size(raw_models[0]) if raw_models else ABSENT_ITEM_BYTES)
        read: dict[str, tuple[Neighbours | None, int]] = {product: (None, ABSENT_ITEM_BYTES) for product in unknown}
        for raw in learned:
            if raw["sk"]["S"].startswith(SIMILARITY_PREFIX):
                item = SimilarityItem.from_raw_data(raw)
                live: Neighbours | None = None
                if _live(item.expires_at, now):
                    copurchased = [(n.product_id, n.jaccard) for n in neighbours_from_json(item.neighbours)]
                    weight = float(item.viewed_weight or 0)
                    viewed = [(n.product_id, round(n.jaccard * weight, 6)) for n in neighbours_from_json(item.viewed)]
                    live = (
                        copurchased,
                        scores_from_json(item.catalog),
                        viewed,
                        Landed.from_json(item.landed),
                        Landed.from_json(item.viewed_after),
                    )
                read[item.product_id] = (live, item_size(raw))
        for product, (lists, size) in read.items():
            caches.neighbours.put((shop, product), lists, size)
            keep(product, lists)
        if read_pairs and page:
            raw_pairs = [item for item in learned if item["sk"]["S"] == f"{PAIRS_PREFIX}{page}"]
            pair_item = LearningItem.from_raw_data(raw_pairs[0]) if raw_pairs else None
            pairs = (pair_item.run, pairs_from_item(pair_item)) if pair_item is not None else None
            caches.pairs.put((shop, page), pairs, item_size(raw_pairs[0]) if raw_pairs else ABSENT_ITEM_BYTES)
        profiles = [ProfileItem.from_raw_data(item) for item in found.get(names.profiles, [])]
        settings = stored_settings(json.loads(shops[0].settings) if shops and shops[0].settings else None)
        rules = stored_rules(json.loads(shops[0].rules) if shops and shops[0].rules else None)
        return ServingContext(
            settings=settings,
            uninstalled=uninstalled_in(found.get(names.shops, [])),
            model=model,
            # an older run's ratios are not the served model's: serving then falls back on the prior's
            pair_ratios=pairs[1] if pairs is not None and model is not None and pairs[0] == model.run else {},
            purchased=list(dict.fromkeys(p for profile in profiles for p in profile.purchased)),
            viewed=list(dict.fromkeys(p for profile in profiles for p in profile.viewed)),
            similar=similar,
            catalog_similar=catalog_similar,
            viewed_similar=viewed_similar,
            landed=landed,
            viewed_after=viewed_after,
            rules=rules,
            profile_neighbours=[
                scores
                for profile in profiles
                if profile.neighbours and (scores := scores_from_json(profile.neighbours))
            ],
            profile_catalog_neighbours=[
                scores
                for profile in profiles
                if profile.catalog_neighbours and (scores := scores_from_json(profile.catalog_neighbours))
            ],
        )

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        """Round trip 2: the candidates' own items in one BatchGetItem (at most ROUND_TRIP_KEYS keys: the caller
        plans them with `plan_candidate_reads`), less those the environment's caches hold; no request when they
        hold them all. Performance of a run other than the served model's (`run`) is ignored, as it would be
        stale."""
        names, caches = config.tables(), self.caches
        performance_ids = list(dict.fromkeys(performance_ids))
        catalog_ids = list(dict.fromkeys(catalog_ids))
        if len(performance_ids) + len(catalog_ids) > ROUND_TRIP_KEYS:
            raise ValueError(f"one round trip reads at most {ROUND_TRIP_KEYS} keys")
        performance: dict[str, Performance] = {}
        listings: dict[str, Listing] = {}
        unread_performance: list[str] = []
        unread_listings: list[str] = []
        for product in performance_ids:
            cached, result = caches.performance.get((shop, run, product))
            if not cached:
                unread_performance.append(product)
            elif result is not None:
                performance[product] = result
        for product in catalog_ids:
            cached, listing = caches.listings.get((shop, product))
            if not cached:
                unread_listings.append(product)
            elif listing is not None:
                listings[product] = listing
        if not unread_performance and not unread_listings:
            return CandidateItems(performance=performance, listings=listings)
        found = self._batch_get(candidate_keys(shop, unread_performance, unread_listings))
        read_performance: dict[str, tuple[Performance | None, int]] = dict.fromkeys(
            unread_performance, (None, ABSENT_ITEM_BYTES)
        )
        for raw in found.get(names.learning, []):
            item = LearningItem.from_raw_data(raw)
            if item.product_id:
                read_performance[item.product_id] = (
                    performance_from_item(item) if item.run == run else None,
                    item_size(raw),
                )
        for product, (result, size) in read_performance.items():
            caches.performance.put((shop, run, product), result, size)
            if result is not None:
                performance[product] = result
        read_listings: dict[str, tuple[Listing | None, int]] = dict.fromkeys(unread_listings, (None, ABSENT_ITEM_BYTES))
        for raw in found.get(names.catalog, []):
            listing = listing_of(CatalogItem.from_raw_data(dict(raw)))
            read_listings[listing.product_id] = (listing, item_size(raw))
        for product, (listing, size) in read_listings.items():
            caches.listings.put((shop, product), listing, size)
            if listing is not None:
                listings[product] = listing
        return CandidateItems(performance=performance, listings=listings)


def _live(expires_at: datetime | None, now: datetime) -> bool:
    """DynamoDB deletes expired items late: serving ignores them itself."""
    return expires_at is None or expires_at > now


@cache
def serving_reader() -> ServingReader:
    """One per execution environment, with its caches: what a warm Lambda keeps between invocations."""
    return ServingReader()
