"""Data access for the similarity job: a window of stored baskets and bought-instead pairs (through the orders
table's by_shop_date_v2 index, newest first, never a scan), the shop's catalog (one Query of its partition), and the
products' neighbour lists written back (co-purchase and catalog neighbours in one item per product)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pynamodb.exceptions import PynamoDBException

from reclift.catalog import Listing
from reclift.data.catalog import listing_of
from reclift.data.models import CatalogItem, OrderRecord, SimilarityItem, bind_tables
from reclift.data.neighbours import SIMILARITY_RETENTION_DAYS, neighbours_json, scores_json, similarity_sk
from reclift.data.store import StoreError, _stamp
from reclift.similarity import Neighbour


class SimilarityPort(Protocol):
    """What the similarity job reads and writes: `SimilarityStore` on DynamoDB, the simulation's store in memory."""

    def baskets(self, shop: str, since: datetime, until: datetime, limit: int) -> list[list[str]]: ...

    def bought_instead(self, shop: str, since: datetime, until: datetime, limit: int) -> list[tuple[str, str]]: ...

    def catalog_products(self, shop: str) -> list[Listing]: ...

    def save_similarity(
        self,
        shop: str,
        run: str,
        neighbours: Mapping[str, Sequence[Neighbour]],
        orders: Mapping[str, int],
        catalog: Mapping[str, Sequence[tuple[str, float]]] | None = None,
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

    def baskets(self, shop: str, since: datetime, until: datetime, limit: int) -> list[list[str]]:
        """The baskets of the shop's orders created in [since, until], the newest `limit` of them; test orders are
        left out (but count towards the limit). A basket of one product pairs with nothing but still counts in
        that product's |A∪B|."""
        found: list[list[str]] = []
        try:
            for read, item in enumerate(self._window(f"{shop}#basket", since, until, ["basket", "test"])):
                if read >= limit:
                    break
                if not item.test and item.basket:
                    found.append(list(item.basket))
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
    ) -> int:
        """One item per product with co-purchase or catalog neighbours (batch writes); a product that lost them
        keeps its last lists until they expire, a few days on. Returns the products with co-purchase neighbours."""
        now = datetime.now(UTC)
        expires = now + timedelta(days=SIMILARITY_RETENTION_DAYS)
        catalog = catalog or {}
        try:
            with SimilarityItem.batch_write() as batch:
                for product_id in dict.fromkeys([*neighbours, *catalog]):
                    batch.save(
                        SimilarityItem(
                            pk=shop,
                            sk=similarity_sk(product_id),
                            run=run,
                            product_id=product_id,
                            neighbours=neighbours_json(neighbours.get(product_id, ())),
                            catalog=scores_json(catalog[product_id]) if catalog.get(product_id) else None,
                            orders=orders.get(product_id, 0),
                            updated_at=now,
                            expires_at=expires,
                        )
                    )
        except PynamoDBException as exc:
            raise StoreError(f"saving similarity failed: {exc.msg}") from exc
        return len(neighbours)
