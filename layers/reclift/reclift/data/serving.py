"""The recommendation request's reads: at most two DynamoDB round trips, each one BatchGetItem across tables.

1. the shop (its settings), the last learning run's model (prior, best sellers with their posteriors) and the
   visitor's and customer's profiles;
2. (with similarity candidates) those candidates' performance items.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from reclift import config
from reclift.data.learning import MODEL_KEY, LearnedModel, model_from_item
from reclift.data.models import LearningItem, ProfileItem, ShopItem, bind_tables
from reclift.data.store import StoreError, customer_key, visitor_key
from reclift.settings import ShopSettings, stored_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

UNPROCESSED_ATTEMPTS = 5


@dataclass(frozen=True)
class ServingContext:
    settings: ShopSettings
    model: LearnedModel | None
    purchased: list[str] = field(default_factory=list)
    viewed: list[str] = field(default_factory=list)


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

    def context(self, shop: str, *, visitor_id: str | None, customer_id: str | None) -> ServingContext:
        names = config.tables()
        profile_keys = [visitor_key(shop, visitor_id)] if visitor_id else []
        profile_keys += [customer_key(shop, customer_id)] if customer_id else []
        found = self._batch_get(
            {
                names.shops: [{"pk": {"S": shop}}],
                names.learning: [{"pk": {"S": shop}, "sk": {"S": MODEL_KEY}}],
                names.profiles: [{"pk": {"S": key}} for key in profile_keys],
            }
        )
        shops = [ShopItem.from_raw_data(item) for item in found.get(names.shops, [])]
        models = [LearningItem.from_raw_data(item) for item in found.get(names.learning, [])]
        profiles = [ProfileItem.from_raw_data(item) for item in found.get(names.profiles, [])]
        settings = stored_settings(json.loads(shops[0].settings) if shops and shops[0].settings else None)
        return ServingContext(
            settings=settings,
            model=model_from_item(models[0]) if models else None,
            purchased=list(dict.fromkeys(p for profile in profiles for p in profile.purchased)),
            viewed=list(dict.fromkeys(p for profile in profiles for p in profile.viewed)),
        )


@cache
def serving_reader() -> ServingReader:
    return ServingReader()
