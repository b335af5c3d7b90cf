"""The backfill's own data: its progress (the cursor, saved after every page) and the baskets it stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from reclift.data.catalog import CatalogStore
from reclift.data.models import BackfillItem, CounterItem, OrderRecord, region
from reclift.data.store import COUNTER_RETENTION_DAYS, StoreError, basket_record, day_key
from reclift.orders import Basket

SOLD_PER_BACKFILLED_BASKET = 99  # a transaction holds 100 actions: the basket's record and this many counts


def backfill_key(shop: str, what: str) -> str:
    return f"{shop}#backfill#{what}"


@dataclass(frozen=True)
class BackfillProgress:
    shop: str
    what: str  # orders | products
    status: str  # running | done | failed
    search: str | None  # the search filter the cursor belongs to
    cursor: str | None
    pages: int
    fetched: int
    stored: int
    started_at: datetime
    updated_at: datetime
    error: str | None = None
    bulk_lines: int = 0  # with a bulk operation (cursor `bulk:{id}`): the result's lines already stored
    expected: int | None = None  # how many the API said there were to fetch when the run began (None: unknown)


class BackfillStore(CatalogStore):
    """What a backfill writes: its progress, baskets, and (as a catalog store) listings."""

    def backfill_progress(self, shop: str, what: str) -> BackfillProgress | None:
        try:
            item = BackfillItem.get(backfill_key(shop, what), consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StoreError(f"reading the backfill's progress failed: {exc.msg}") from exc
        return BackfillProgress(
            shop=item.shop,
            what=item.what,
            status=item.status,
            search=item.search,
            cursor=item.cursor,
            pages=int(item.pages),
            fetched=int(item.fetched),
            stored=int(item.stored),
            started_at=item.started_at,
            updated_at=item.updated_at,
            error=item.error,
            bulk_lines=int(item.bulk_lines),
            expected=None if item.expected is None else int(item.expected),
        )

    def save_backfill_progress(self, progress: BackfillProgress) -> None:
        try:
            BackfillItem(
                backfill_key(progress.shop, progress.what),
                shop=progress.shop,
                what=progress.what,
                status=progress.status,
                search=progress.search,
                cursor=progress.cursor,
                pages=progress.pages,
                fetched=progress.fetched,
                stored=progress.stored,
                started_at=progress.started_at,
                updated_at=progress.updated_at,
                error=progress.error,
                bulk_lines=progress.bulk_lines,
                expected=progress.expected,
            ).save()
        except PynamoDBException as exc:
            raise StoreError(f"saving the backfill's progress failed: {exc.msg}") from exc

    def save_backfilled_basket(self, shop: str, basket: Basket) -> bool:
        """Store the order's basket as attribution would, unless the order is already stored (False then), and, in
        the same transaction, add it to its products' `sold` counts of its day (what best sellers rank by), as a
        recorded order does: a new install's best sellers come from its past orders. A basket of more products
        than a transaction holds counts the first SOLD_PER_BACKFILLED_BASKET."""
        record = basket_record(shop, basket, backfilled=True)
        expires = datetime.now(UTC) + timedelta(days=COUNTER_RETENTION_DAYS)
        key = day_key(shop, basket.created_at.date())
        try:
            with TransactWrite(connection=Connection(region=region())) as transaction:
                transaction.save(record, condition=OrderRecord.pk.does_not_exist())
                if not basket.test:
                    for product in list(dict.fromkeys(basket.product_ids))[:SOLD_PER_BACKFILLED_BASKET]:
                        transaction.update(
                            CounterItem(key, product),
                            actions=[CounterItem.sold.add(1), CounterItem.expires_at.set(expires)],
                        )
        except TransactWriteError as exc:
            reasons = [reason.code if reason is not None else None for reason in exc.cancellation_reasons]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return False  # the order is already stored (by its webhook or an earlier page)
            raise StoreError(f"storing a backfilled basket failed: {exc.msg}") from exc
        except PynamoDBException as exc:
            raise StoreError(f"storing a backfilled basket failed: {exc.msg}") from exc
        return True


@cache
def backfill_store() -> BackfillStore:
    return BackfillStore()
