"""The catalog table: one item per shop and product (pk = shop, sk = product id), written by the product webhooks
and the backfill, read by the recommendation path.

Deliveries arrive out of order, so every write is conditional: a listing replaces what is stored only when it is at
least as recent (Shopify's `updated_at`) and the product has not been deleted; a deletion leaves a tombstone that
no later-arriving update overwrites (Shopify never reuses a product id).

For the serving path, which reads with the low-level client in one BatchGetItem across tables:
`catalog_keys(shop, product_ids)` gives the keys to add to that batch under `config.tables().catalog`, and
`listings_from_items(items)` turns what the batch returned for that table back into listings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pynamodb.exceptions import PynamoDBException

from reclift.catalog import Listing, ProductStatus
from reclift.data.models import CatalogItem, bind_tables
from reclift.data.store import StoreError, update_if

# Shopify retries a delivery for 48 hours: a tombstone kept well beyond that still beats every late update.
TOMBSTONE_RETENTION_DAYS = 30
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem takes at most 100 keys


def catalog_keys(shop: str, product_ids: Iterable[str]) -> list[dict[str, dict[str, str]]]:
    """The catalog table's keys of the shop's products, in the low-level client's form (`{"pk": {"S": shop},
    "sk": {"S": id}}`), deduplicated in order — ready for a BatchGetItem's `Keys` (at most 100 per request)."""
    return [{"pk": {"S": shop}, "sk": {"S": product_id}} for product_id in dict.fromkeys(product_ids)]


def listing_of(item: CatalogItem) -> Listing:
    return Listing(
        product_id=item.sk,
        title=item.title or "",
        handle=item.handle,
        status=ProductStatus(item.status) if item.status in set(ProductStatus) else ProductStatus.UNKNOWN,
        price=item.price,
        available=bool(item.available),
        image=item.image,
        updated_at=item.updated_at,
        deleted=bool(item.deleted),
        tags=tuple(sorted(item.tags or ())),
        product_type=item.product_type,
        vendor=item.vendor,
        gift_card=bool(item.gift_card),
    )


def listings_from_items(items: Iterable[Mapping[str, Any]]) -> dict[str, Listing]:
    """Raw catalog items as a BatchGetItem returns them (`{"pk": {"S": …}, "title": {"S": …}, …}`), as listings by
    product id. Tombstones come back as listings with `deleted=True` (never recommendable); a product with no item
    is simply absent (its price unknown)."""
    listings = [listing_of(CatalogItem.from_raw_data(dict(item))) for item in items]
    return {listing.product_id: listing for listing in listings}


def _item(shop: str, listing: Listing) -> CatalogItem:
    return CatalogItem(
        pk=shop,
        sk=listing.product_id,
        updated_at=listing.updated_at,
        deleted=False,
        title=listing.title or None,
        handle=listing.handle,
        status=listing.status.value,
        price=listing.price,
        available=listing.available,
        image=listing.image,
        tags=set(listing.tags) or None,
        product_type=listing.product_type,
        vendor=listing.vendor,
        gift_card=listing.gift_card,
    )


class CatalogStore:
    """The catalog's writes (webhooks, backfill) and a direct read by product ids."""

    def __init__(self) -> None:
        bind_tables()

    def save_listing(self, shop: str, listing: Listing) -> bool:
        """Store the listing unless a newer one or the product's tombstone is stored; False when it changed nothing.

        Every field is replaced but the gift card flag, which only ever turns on: a product is a gift card from its
        creation on, and the GraphQL product says so (`isGiftCard`) where the REST webhook's often cannot, so a
        later products/update must not make a gift card recommendable."""
        condition = CatalogItem.pk.does_not_exist() | (
            (CatalogItem.deleted == False)  # noqa: E712 - a PynamoDB condition, not a comparison
            & (CatalogItem.updated_at <= listing.updated_at)
        )
        item = _item(shop, listing)
        actions: list[Any] = [CatalogItem.updated_at.set(listing.updated_at), CatalogItem.deleted.set(False)]
        for attribute in (
            CatalogItem.title,
            CatalogItem.handle,
            CatalogItem.status,
            CatalogItem.price,
            CatalogItem.available,
            CatalogItem.image,
            CatalogItem.tags,
            CatalogItem.product_type,
            CatalogItem.vendor,
        ):
            value = getattr(item, attribute.attr_name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
        actions.append(CatalogItem.gift_card.set(True if listing.gift_card else CatalogItem.gift_card | False))
        return update_if(CatalogItem(shop, listing.product_id), actions, condition, "saving a catalog listing")

    def save_deletion(self, shop: str, product_id: str, deleted_at: datetime | None = None) -> None:
        """Replace the product by its tombstone (also for a product never seen: a late create then changes nothing)."""
        at = deleted_at or datetime.now(UTC)
        try:
            CatalogItem(
                pk=shop,
                sk=product_id,
                updated_at=at,
                deleted=True,
                expires_at=at + timedelta(days=TOMBSTONE_RETENTION_DAYS),
            ).save()
        except PynamoDBException as exc:
            raise StoreError(f"saving a catalog deletion failed: {exc.msg}") from exc

    def catalog_listings(self, shop: str, product_ids: Sequence[str]) -> dict[str, Listing]:
        """The stored listings (and tombstones) of these products, by product id."""
        keys = [(shop, product_id) for product_id in dict.fromkeys(product_ids)]
        try:
            return {item.sk: listing_of(item) for item in CatalogItem.batch_get(keys)}
        except PynamoDBException as exc:
            raise StoreError(f"reading catalog listings failed: {exc.msg}") from exc


@cache
def catalog_store() -> CatalogStore:
    return CatalogStore()
