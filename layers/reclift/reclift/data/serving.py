"""The recommendation request's reads: at most two DynamoDB round trips, each one BatchGetItem across tables.

1. the shop (its settings), the last learning run's model (prior, best sellers with their posteriors), the
   visitor's and customer's profiles (with the neighbours of their recent products, for the home placement) and
   the similarity items of the request's products (the product page's product, the cart's products);
2. every per-candidate item, keyed by `candidate_keys`: the catalog items of every candidate (similar products and
   best sellers: status, availability, price, what the widget renders) and the performance items of the similar
   ones the model does not carry.

At most 100 keys per BatchGetItem (DynamoDB's limit): the first holds 4 + MAX_CONTEXT_PRODUCTS, the second at most
ROUND_TRIP_KEYS, shared out by `plan_candidate_reads`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from reclift import config
from reclift.catalog import Listing
from reclift.data.catalog import catalog_keys, listings_from_items
from reclift.data.installs import uninstalled_in
from reclift.data.learning import MODEL_KEY, PERFORMANCE_PREFIX, LearnedModel, model_from_item, performance_from_item
from reclift.data.models import LearningItem, ProfileItem, ShopItem, SimilarityItem, bind_tables
from reclift.data.neighbours import SIMILARITY_PREFIX, neighbours_from_json, scores_from_json, similarity_sk
from reclift.data.store import StoreError, customer_key, visitor_key
from reclift.learning import Performance
from reclift.settings import ShopSettings, stored_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

UNPROCESSED_ATTEMPTS = 5
MAX_CONTEXT_PRODUCTS = 50  # the cart's products whose neighbours are read (the query allows no more)
MAX_CANDIDATES = 50
ROUND_TRIP_KEYS = 100  # DynamoDB's BatchGetItem limit

Scores = list[tuple[str, float]]


@dataclass(frozen=True)
class ServingContext:
    settings: ShopSettings
    model: LearnedModel | None
    purchased: list[str] = field(default_factory=list)
    viewed: list[str] = field(default_factory=list)
    similar: dict[str, Scores] = field(default_factory=dict)  # the request's products' neighbours (by Jaccard)
    profile_neighbours: list[Scores] = field(default_factory=list)  # each profile's recent products' neighbours
    uninstalled: bool = False  # the shop uninstalled reclift (read with its settings, at no extra cost)


@dataclass(frozen=True)
class CandidateItems:
    """What the second round trip read per candidate: the performance items asked for, and the catalog's listings
    (a product the catalog has never heard of is absent: its price is unknown, it is not known to be unsellable)."""

    performance: dict[str, Performance] = field(default_factory=dict)
    listings: dict[str, Listing] = field(default_factory=dict)


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


class ServingReader:
    def __init__(self) -> None:
        bind_tables()

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
        self, shop: str, *, visitor_id: str | None, customer_id: str | None, products: list[str] | None = None
    ) -> ServingContext:
        """Round trip 1. `products`: those whose neighbours the placement recommends around."""
        names = config.tables()
        profile_keys = [visitor_key(shop, visitor_id)] if visitor_id else []
        profile_keys += [customer_key(shop, customer_id)] if customer_id else []
        wanted = list(dict.fromkeys(products or []))[:MAX_CONTEXT_PRODUCTS]
        found = self._batch_get(
            {
                names.shops: [{"pk": {"S": shop}}],
                names.learning: [
                    {"pk": {"S": shop}, "sk": {"S": MODEL_KEY}},
                    *({"pk": {"S": shop}, "sk": {"S": similarity_sk(p)}} for p in wanted),
                ],
                names.profiles: [{"pk": {"S": key}} for key in profile_keys],
            }
        )
        now = datetime.now(UTC)
        shops = [ShopItem.from_raw_data(item) for item in found.get(names.shops, [])]
        learned = found.get(names.learning, [])
        models = [LearningItem.from_raw_data(item) for item in learned if item["sk"]["S"] == MODEL_KEY]
        similar = [
            SimilarityItem.from_raw_data(item) for item in learned if item["sk"]["S"].startswith(SIMILARITY_PREFIX)
        ]
        profiles = [ProfileItem.from_raw_data(item) for item in found.get(names.profiles, [])]
        settings = stored_settings(json.loads(shops[0].settings) if shops and shops[0].settings else None)
        return ServingContext(
            settings=settings,
            uninstalled=uninstalled_in(found.get(names.shops, [])),
            model=model_from_item(models[0]) if models else None,
            purchased=list(dict.fromkeys(p for profile in profiles for p in profile.purchased)),
            viewed=list(dict.fromkeys(p for profile in profiles for p in profile.viewed)),
            similar={
                item.product_id: [(n.product_id, n.jaccard) for n in neighbours_from_json(item.neighbours)]
                for item in similar
                if _live(item.expires_at, now)
            },
            profile_neighbours=[
                scores
                for profile in profiles
                if profile.neighbours and (scores := scores_from_json(profile.neighbours))
            ],
        )

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        """Round trip 2: the candidates' own items in one BatchGetItem (at most ROUND_TRIP_KEYS keys: the caller
        plans them with `plan_candidate_reads`). Performance of a run other than the served model's (`run`) is
        ignored, as it would be stale."""
        names = config.tables()
        performance_ids = list(dict.fromkeys(performance_ids))
        catalog_ids = list(dict.fromkeys(catalog_ids))
        if len(performance_ids) + len(catalog_ids) > ROUND_TRIP_KEYS:
            raise ValueError(f"one round trip reads at most {ROUND_TRIP_KEYS} keys")
        if not performance_ids and not catalog_ids:
            return CandidateItems()
        found = self._batch_get(candidate_keys(shop, performance_ids, catalog_ids))
        performance = {}
        for raw in found.get(names.learning, []):
            item = LearningItem.from_raw_data(raw)
            if item.product_id and item.run == run:
                performance[item.product_id] = performance_from_item(item)
        return CandidateItems(performance=performance, listings=listings_from_items(found.get(names.catalog, [])))


def _live(expires_at: datetime | None, now: datetime) -> bool:
    """DynamoDB deletes expired items late: serving ignores them itself."""
    return expires_at is None or expires_at > now


@cache
def serving_reader() -> ServingReader:
    return ServingReader()
