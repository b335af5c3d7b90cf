"""Data access for the similarity job: a window of stored baskets and bought-instead pairs (through the orders
table's by_shop_date_v2 index, newest first, never a scan), visitors' view sessions (their profiles, found through the
profiles table's by_shop index, never a scan), the shop's catalog (one Query of its partition), and the products'
neighbour lists written back (co-purchase, catalog and co-view neighbours in one item per product)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pynamodb.exceptions import PynamoDBException

from reclift.catalog import Listing
from reclift.context import Landed
from reclift.data.catalog import listing_of
from reclift.data.models import (
    CatalogItem,
    OrderRecord,
    ProfileItem,
    SimilarityItem,
    bind_tables,
    shop_bucket_keys,
)
from reclift.data.neighbours import SIMILARITY_RETENTION_DAYS, neighbours_json, scores_json, similarity_sk
from reclift.data.store import StoreError, _stamp, landing_of, visitor_key
from reclift.profiles import day_session
from reclift.similarity import Neighbour, WindowBasket

PROFILES_PER_BATCH = 100  # BatchGetItem's limit


@dataclass(frozen=True)
class ViewedTogether:
    """A run's co-view neighbours, the shop's weight of them (reclift.similarity.source_weights) and what the view
    sessions that began on each product's page went on to view of them (reclift.similarity.viewed_after_counts)."""

    neighbours: Mapping[str, Sequence[Neighbour]]
    weight: float
    after: Mapping[str, Landed] = field(default_factory=dict)


class SimilarityPort(Protocol):
    """What the similarity job reads and writes: `SimilarityStore` on DynamoDB, the simulation's store in memory."""

    def baskets(self, shop: str, since: datetime, until: datetime, limit: int) -> list[WindowBasket]: ...

    def bought_instead(self, shop: str, since: datetime, until: datetime, limit: int) -> list[tuple[str, str]]: ...

    def view_sessions(self, shop: str, since: datetime, until: datetime, limit: int) -> list[list[str]]: ...

    def catalog_products(self, shop: str) -> list[Listing]: ...

    def save_similarity(
        self,
        shop: str,
        run: str,
        neighbours: Mapping[str, Sequence[Neighbour]],
        orders: Mapping[str, int],
        catalog: Mapping[str, Sequence[tuple[str, float]]] | None = None,
        viewed: ViewedTogether | None = None,
        landed: Mapping[str, Landed] | None = None,
    ) -> int: ...


class SimilarityStore:
    def __init__(self) -> None:
        bind_tables()

    def _window(self, key: str, since: datetime, until: datetime, attributes: list[str]) -> Iterator[OrderRecord]:
        # gsi1sk is `{created_at}#{order id}…` in the same fixed-width UTC stamps: a range of times is a range of keys.
        return OrderRecord.by_shop_date.query(
            key,
            OrderRecord.gsi1sk.between(_stamp(since), _stamp(until) + "~"),
            scan_index_forward=False,
            attributes_to_get=attributes,
        )

    def baskets(self, shop: str, since: datetime, until: datetime, limit: int) -> list[WindowBasket]:
        """The baskets of the shop's orders created in [since, until], the newest `limit` of them, each with the
        product page its buyer landed on; test orders are left out (but count towards the limit). A basket of one
        product pairs with nothing but still counts in that product's |A∪B|."""
        found: list[WindowBasket] = []
        try:
            for read, item in enumerate(self._window(f"{shop}#basket", since, until, ["basket", "test", "gsi1sk"])):
                if read >= limit:
                    break
                if not item.test and item.basket:
                    found.append(WindowBasket(list(item.basket), landing_of(item.gsi1sk)))
        except PynamoDBException as exc:
            raise StoreError(f"reading baskets failed: {exc.msg}") from exc
        return found

    def bought_instead(self, shop: str, since: datetime, until: datetime, limit: int) -> list[tuple[str, str]]:
        """(bought, shown instead) pairs of the missed opportunities in [since, until], newest lines first."""
        pairs: list[tuple[str, str]] = []
        try:
            for read, item in enumerate(self._window(f"{shop}#missed", since, until, ["product_id", "shown_instead"])):
                if read >= limit:
                    break
                if item.product_id:
                    pairs.extend((item.product_id, shown) for shown in item.shown_instead or ())
        except PynamoDBException as exc:
            raise StoreError(f"reading missed opportunities failed: {exc.msg}") from exc
        return pairs

    def view_sessions(self, shop: str, since: datetime, until: datetime, limit: int) -> list[list[str]]:
        """The view sessions of the shop's visitors whose last day of views is in [since, until]: each visitor
        profile's distinct products of that day (`day_views`; a customer's profile repeats its visitors' views and is
        left out). The profiles' keys come from the by_shop index (keys only, one Query per bucket), then their
        lists in BatchGetItems of 100; at most `limit` profiles are read, in the index's order (not newest first:
        the index has no time)."""
        first, last = since.astimezone(UTC).date().isoformat(), until.astimezone(UTC).date().isoformat()
        visitors = visitor_key(shop, "")  # every visitor profile's key starts so
        keys: list[str] = []
        sessions: list[list[str]] = []
        try:
            for bucket in shop_bucket_keys(shop):
                if len(keys) >= limit:
                    break
                for found in ProfileItem.by_shop.query(bucket):
                    if len(keys) >= limit:
                        break
                    if found.pk.startswith(visitors):
                        keys.append(found.pk)
            for start in range(0, len(keys), PROFILES_PER_BATCH):
                batch = keys[start : start + PROFILES_PER_BATCH]
                for item in ProfileItem.batch_get(batch, attributes_to_get=["viewed", "views_day", "day_views"]):
                    if item.views_day and first <= item.views_day <= last:
                        session = day_session(item.viewed, int(item.day_views or 0))
                        if session:
                            sessions.append(session)
        except PynamoDBException as exc:
            raise StoreError(f"reading view sessions failed: {exc.msg}") from exc
        return sessions

    def catalog_products(self, shop: str) -> list[Listing]:
        """Every listing of the shop's catalog (tombstones included), from one paginated Query of its partition."""
        try:
            return [listing_of(item) for item in CatalogItem.query(shop)]
        except PynamoDBException as exc:
            raise StoreError(f"reading the catalog failed: {exc.msg}") from exc

    def save_similarity(
        self,
        shop: str,
        run: str,
        neighbours: Mapping[str, Sequence[Neighbour]],
        orders: Mapping[str, int],
        catalog: Mapping[str, Sequence[tuple[str, float]]] | None = None,
        viewed: ViewedTogether | None = None,
        landed: Mapping[str, Landed] | None = None,
    ) -> int:
        """One item per product with co-purchase, catalog or co-view neighbours (batch writes), with what the orders
        that landed on its page bought of its co-purchase neighbours and what the view sessions that began there
        viewed of its co-view neighbours; a product that lost them keeps its last lists until they expire, a few days
        on. Returns the products with co-purchase neighbours."""
        now = datetime.now(UTC)
        expires = now + timedelta(days=SIMILARITY_RETENTION_DAYS)
        catalog = catalog or {}
        coviewed = viewed.neighbours if viewed is not None else {}
        after = viewed.after if viewed is not None else {}
        landed = landed or {}
        try:
            with SimilarityItem.batch_write() as batch:
                for product_id in dict.fromkeys([*neighbours, *catalog, *coviewed]):
                    together = coviewed.get(product_id)
                    batch.save(
                        SimilarityItem(
                            pk=shop,
                            sk=similarity_sk(product_id),
                            run=run,
                            product_id=product_id,
                            neighbours=neighbours_json(neighbours.get(product_id, ())),
                            catalog=scores_json(catalog[product_id]) if catalog.get(product_id) else None,
                            orders=orders.get(product_id, 0),
                            viewed=neighbours_json(together) if together else None,
                            viewed_weight=viewed.weight if together and viewed is not None else None,
                            landed=landed[product_id].to_json() if product_id in landed else None,
                            viewed_after=after[product_id].to_json() if product_id in after else None,
                            updated_at=now,
                            expires_at=expires,
                        )
                    )
        except PynamoDBException as exc:
            raise StoreError(f"saving similarity failed: {exc.msg}") from exc
        return len(neighbours)
