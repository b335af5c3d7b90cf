"""Data access for a shop's erasure (`shop/redact`): everything of one shop deleted by key, never by scanning other
shops' items.

The tables keyed by the shop (learning, catalog) are queried by it, the counters by the shop and each of its days,
the orders through the shop's `basket` list; the tables whose partition keys belong to a visitor or a customer
(events, profiles, data exports) through their sparse `by_shop` index, keys only. Items are read as keys and deleted
in batches of 25. The erasure runs in phases; each reads only what is left of the shop, so a phase cut short by the
invocation's deadline is simply run again by the next one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.models import Model

from reclift import config
from reclift.data.backfill import backfill_key
from reclift.data.day_totals import month_partitions
from reclift.data.health import health_key
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
    shop_bucket_keys,
)
from reclift.data.queue import QueueError, send_all
from reclift.data.store import COUNTER_RETENTION_DAYS, StoreError, day_key, marker_keys, orders_day_key

SHOP_PHASES = ("events", "profiles", "orders", "counters", "learning", "catalog", "shops")
# Counters are keyed by shop and day. Their days start at the shop's first registration, less the oldest order day a
# late delivery can carry (Shopify retries for 48 hours); none is older than the counters' retention plus the days
# DynamoDB may take to delete an expired item.
COUNTER_DAYS_BEFORE_FIRST_SEEN = 7
COUNTER_DAYS_KEPT = COUNTER_RETENTION_DAYS + 30
MARKER_DAYS_KEPT = 14  # the days whose visitor markers may still be stored (kept 2 days, deleted within days after)
KEEP_GOING_EVERY = 100  # items deleted between two checks of the invocation's remaining time


@dataclass(frozen=True)
class ShopErasure:
    """One invocation's share of a shop's erasure: the keys it read and the items it deleted per phase, and the
    phase to resume at (None when everything of the shop is gone)."""

    shop: str
    resume_at: str | None
    items_read: int
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.resume_at is None


class _OutOfTime(Exception):
    """The invocation must stop; the phase in progress is resumed by the next one."""

    def __init__(self, deleted: int) -> None:
        super().__init__(f"stopped after {deleted} items")
        self.deleted = deleted


class ShopEraser:
    def __init__(self) -> None:
        bind_tables()

    def queue_shop_redaction(self, shop: str, *, resume_at: str | None = None) -> None:
        """Hand the shop's erasure to its own queue (and function), from the phase given."""
        body = json.dumps({"shop": shop, "resume_at": resume_at} if resume_at else {"shop": shop})
        try:
            send_all(config.required("SHOP_REDACT_QUEUE_URL"), [body])
        except QueueError as exc:
            raise StoreError(f"queueing the shop's erasure failed: {exc}") from exc

    def redact_shop(
        self,
        shop: str,
        *,
        resume_at: str | None = None,
        keep_going: Callable[[], bool] = lambda: True,
        today: date | None = None,
    ) -> ShopErasure:
        """Erase everything of the shop by key, phase by phase (SHOP_PHASES), from `resume_at`; stop when
        `keep_going` says so, answering the phase to resume at."""
        phases = SHOP_PHASES[SHOP_PHASES.index(resume_at) :] if resume_at else SHOP_PHASES
        day = today or datetime.now(UTC).date()
        read = 0
        deleted: dict[str, int] = {}

        def keys_of(phase: str) -> Iterator[tuple[type[Model], Model]]:
            nonlocal read
            for model, item in _shop_keys(shop, phase, day):
                read += 1
                yield model, item

        try:
            for phase in phases:
                try:
                    deleted[phase] = _delete_in_batches(keys_of(phase), keep_going)
                except _OutOfTime as stop:
                    deleted[phase] = stop.deleted
                    return ShopErasure(shop, phase, read, deleted)
        except PynamoDBException as exc:
            raise StoreError(f"erasing the shop failed: {exc.msg}") from exc
        return ShopErasure(shop, None, read, deleted)


def _shop_keys(shop: str, phase: str, today: date) -> Iterator[tuple[type[Model], Model]]:
    """The keys of the shop's items of one phase, each with the model that deletes it."""
    keys = ["pk", "sk"]
    if phase == "events":
        for bucket in shop_bucket_keys(shop):
            yield from ((EventItem, item) for item in EventItem.by_shop.query(bucket))
    elif phase == "profiles":
        for bucket in shop_bucket_keys(shop):
            yield from ((ProfileItem, item) for item in ProfileItem.by_shop.query(bucket))
    elif phase == "orders":
        # Every order's partition has its `order` item in the shop's `basket` list (from the webhook or the backfill).
        for order in OrderRecord.by_shop_date.query(f"{shop}#basket", attributes_to_get=["pk"]):
            yield from ((OrderRecord, item) for item in OrderRecord.query(order.pk, attributes_to_get=keys))
    elif phase == "counters":
        days = _counter_days(shop, today)
        for day in days:
            for key in (day_key(shop, day), orders_day_key(shop, day)):
                yield from ((CounterItem, item) for item in CounterItem.query(key, attributes_to_get=keys))
        # The visitors' day markers live two days; DynamoDB's expiry may take days more to delete them.
        for day in days[-MARKER_DAYS_KEPT:]:
            for key in marker_keys(shop, day):
                yield from ((CounterItem, item) for item in CounterItem.query(key, attributes_to_get=keys))
        for month in sorted({day.isoformat()[:7] for day in days}):  # the ROI's totals, a few partitions a month
            for partition in month_partitions(shop, month):
                yield from ((CounterItem, item) for item in CounterItem.query(partition, attributes_to_get=keys))
    elif phase == "learning":
        yield from ((LearningItem, item) for item in LearningItem.query(shop, attributes_to_get=keys))
    elif phase == "catalog":
        yield from ((CatalogItem, item) for item in CatalogItem.query(shop, attributes_to_get=keys))
    elif phase == "shops":
        for bucket in shop_bucket_keys(shop):
            # Customers' data exports and their lists (keyed by pk alone, like every item of the shops table).
            yield from ((PrivacyRequestItem, item) for item in PrivacyRequestItem.by_shop.query(bucket))
        # The registry item (settings, installation) last: the counters' phase read its first registration.
        for pk in (backfill_key(shop, "orders"), backfill_key(shop, "products"), health_key(shop), shop):
            yield ShopItem, ShopItem(pk)
    else:
        raise ValueError(f"no phase {phase!r} in a shop's erasure")


def _counter_days(shop: str, today: date) -> list[date]:
    """The days the shop's counters can be kept under: from its first registration (less a week), at most the
    counters' retention back, to tomorrow (a day ahead in UTC)."""
    oldest = today - timedelta(days=COUNTER_DAYS_KEPT)
    try:
        first_seen = ShopItem.get(shop, attributes_to_get=["first_seen"]).first_seen
    except DoesNotExist:
        first_seen = None
    if first_seen is not None:
        oldest = max(oldest, first_seen.date() - timedelta(days=COUNTER_DAYS_BEFORE_FIRST_SEEN))
    return [oldest + timedelta(days=n) for n in range((today - oldest).days + 2)]


def _delete_in_batches(keys: Iterator[tuple[type[Model], Model]], keep_going: Callable[[], bool]) -> int:
    """Delete the items, 25 to a BatchWriteItem per table; `_OutOfTime` once `keep_going` says stop (what was handed
    to a batch is written first)."""
    deleted = 0
    batches: dict[type[Model], Any] = {}
    try:
        for model, item in keys:
            if model not in batches:
                batches[model] = model.batch_write()
            batches[model].delete(item)
            deleted += 1
            if deleted % KEEP_GOING_EVERY == 0 and not keep_going():
                raise _OutOfTime(deleted)
    finally:
        for batch in batches.values():
            batch.commit()
    return deleted


@cache
def shop_eraser() -> ShopEraser:
    return ShopEraser()
