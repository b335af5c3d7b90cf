"""Data access for Shopify's privacy topics: a customer's data gathered or redacted, a shop's data erased."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.models import Model

from reclift.data.models import (
    CatalogItem,
    CounterItem,
    EventItem,
    LearningItem,
    OrderRecord,
    PrivacyRequestItem,
    ProfileItem,
    ShopItem,
    bind_tables,
)
from reclift.data.store import StoreError, customer_key, order_key
from reclift.privacy import CustomerRequest


def _delete_all(model: type[Model], items: Iterable[Model]) -> int:
    deleted = 0
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
            deleted += 1
    return deleted


def privacy_key(shop: str, request_id: str) -> str:
    return f"{shop}#privacy#{request_id}"


class PrivacyStore:
    def __init__(self) -> None:
        bind_tables()

    def customer_data(self, shop: str, request: CustomerRequest) -> dict[str, Any]:
        """Everything reclift keeps of the customer: their profile, their events, their orders' attributions."""
        try:
            events = [
                {"type": e.type, "at": e.at.isoformat(), "products": list(e.product_ids), "rec_id": e.rec_id}
                for e in EventItem.by_customer.query(customer_key(shop, request.customer_id))
            ]
            try:
                profile = ProfileItem.get(customer_key(shop, request.customer_id))
                profile_data: dict[str, Any] | None = {
                    "viewed": list(profile.viewed),
                    "carted": list(profile.carted),
                    "purchased": list(profile.purchased),
                }
            except DoesNotExist:
                profile_data = None
            orders = [
                {
                    "order_id": item.order_id,
                    "record": item.sk,
                    "product_id": item.product_id,
                    "revenue": None if item.revenue is None else str(item.revenue),
                    "channel": item.channel,
                }
                for order_id in request.order_ids
                for item in OrderRecord.query(order_key(shop, order_id))
            ]
        except PynamoDBException as exc:
            raise StoreError(f"gathering the customer's data failed: {exc.msg}") from exc
        return {"customer_id": request.customer_id, "profile": profile_data, "events": events, "orders": orders}

    def save_data_request(self, shop: str, request_id: str, customer_id: str, data: dict[str, Any]) -> None:
        try:
            PrivacyRequestItem(
                privacy_key(shop, request_id),
                shop=shop,
                customer_id=customer_id,
                data=json.dumps(data, sort_keys=True),
                created_at=datetime.now(UTC),
            ).save()
        except PynamoDBException as exc:
            raise StoreError(f"saving the data request failed: {exc.msg}") from exc

    def data_request(self, shop: str, request_id: str) -> dict[str, Any] | None:
        try:
            item = PrivacyRequestItem.get(privacy_key(shop, request_id))
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StoreError(f"reading the data request failed: {exc.msg}") from exc
        data: dict[str, Any] = json.loads(item.data)
        return {"id": request_id, "created_at": item.created_at.isoformat(), "data": data}

    def redact_customer(self, shop: str, request: CustomerRequest) -> dict[str, int]:
        """Remove every item keyed by the customer and the customer's link on their orders."""
        key = customer_key(shop, request.customer_id)
        try:
            events = _delete_all(EventItem, EventItem.by_customer.query(key))
            profiles = 0
            try:
                ProfileItem.get(key, consistent_read=True).delete()
                profiles = 1
            except DoesNotExist:
                pass
            unlinked = 0
            for order_id in request.order_ids:
                for item in OrderRecord.query(order_key(shop, order_id)):
                    if item.customer_id is not None or item.visitor_id is not None:
                        item.update(actions=[OrderRecord.customer_id.remove(), OrderRecord.visitor_id.remove()])
                        unlinked += 1
        except PynamoDBException as exc:
            raise StoreError(f"redacting the customer failed: {exc.msg}") from exc
        return {"events": events, "profiles": profiles, "order_items_unlinked": unlinked}

    def redact_shop(self, shop: str) -> dict[str, int]:
        """Erase everything of the shop: its items are the ones whose key is the shop or begins `{shop}#`."""
        prefix = f"{shop}#"
        deleted: dict[str, int] = {}
        try:
            for model in (EventItem, CounterItem, OrderRecord, ProfileItem):
                deleted[model.__name__] = _delete_all(model, model.scan(model.pk.startswith(prefix)))
            deleted["LearningItem"] = _delete_all(LearningItem, LearningItem.query(shop))
            deleted["CatalogItem"] = _delete_all(CatalogItem, CatalogItem.query(shop))
            # The shops table's `{shop}#…` items: privacy requests and the backfill's progress.
            deleted["PrivacyRequestItem"] = _delete_all(
                PrivacyRequestItem, PrivacyRequestItem.scan(PrivacyRequestItem.pk.startswith(prefix))
            )
            deleted["ShopItem"] = _delete_all(ShopItem, [ShopItem(shop)])
        except PynamoDBException as exc:
            raise StoreError(f"erasing the shop failed: {exc.msg}") from exc
        return deleted


@cache
def privacy_store() -> PrivacyStore:
    return PrivacyStore()
