"""The product catalog: Shopify products as the listings ranking and the widget need, parsed from both of Shopify's
shapes — the `products/create` / `products/update` webhook (REST) and the Admin GraphQL `Product`.

A listing is recommendable only while it is active, some variant can be sold, it has not been deleted and it is
not a gift card. Its price
is the lowest price, in shop currency, of a variant that can be sold; a product with nothing to sell keeps the
lowest price of any variant, and a product with no positive price has none (ranking then values it at the shop's
median). Bad input degrades to "not recommendable" or "price unknown"; only a payload without a product id or an
update time is refused, since it cannot be stored or ordered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from reclift.ids import shopify_id
from reclift.money import money_text
from reclift.orders import MAX_AMOUNT, OrderPayloadError, parse_timestamp

MAX_TITLE_LENGTH = 255
MAX_HANDLE_LENGTH = 255
MAX_IMAGE_URL_LENGTH = 2048
# What the merchant's rules and the catalog neighbours compare: Shopify bounds a tag, a type and a vendor at 255
# characters; a listing keeps its first tags up to MAX_TAGS_LENGTH characters in all, so that its item (read per
# candidate at serving, 0.5 read unit per 4 KB) stays within one unit.
MAX_NAME_LENGTH = 255
MAX_TAGS_LENGTH = 2000
GIFT_CARD_TYPES = frozenset({"gift card", "gift cards"})


class CatalogPayloadError(ValueError):
    """A product payload that names no product or no update time."""


class ProductStatus(StrEnum):
    ACTIVE = "active"
    DRAFT = "draft"
    ARCHIVED = "archived"
    UNKNOWN = "unknown"  # missing or unrecognised: never recommended


@dataclass(frozen=True)
class Variant:
    """What availability and price need of a variant. `tracked` is None when the payload does not say."""

    price: Decimal | None
    inventory_quantity: int
    tracked: bool | None
    continue_selling: bool

    @property
    def sellable(self) -> bool:
        """Some unit can be sold: stock above zero, inventory not tracked, or overselling allowed.

        A variant whose tracking the payload does not state (webhooks of recent API versions dropped
        `inventory_management`) is taken as tracked, so its stock decides: recommending a sold-out product is
        worse than missing an untracked one until the next update or backfill says otherwise."""
        return self.inventory_quantity > 0 or self.tracked is False or self.continue_selling


@dataclass(frozen=True)
class Listing:
    product_id: str
    title: str
    handle: str | None
    status: ProductStatus
    price: Decimal | None  # in shop currency; None when no variant has a positive price
    available: bool
    image: str | None
    updated_at: datetime
    deleted: bool = False
    tags: tuple[str, ...] = ()  # case-folded, spaces collapsed (as the merchant's rules compare them)
    product_type: str | None = None
    vendor: str | None = None
    gift_card: bool = False

    @property
    def recommendable(self) -> bool:
        """Active, for sale and still there; never a gift card (DESIGN.md §3: gift cards are never recommended)."""
        return self.status is ProductStatus.ACTIVE and self.available and not self.deleted and not self.gift_card

    @property
    def url(self) -> str | None:
        return f"/products/{self.handle}" if self.handle else None

    def render_fields(self) -> dict[str, str]:
        """What the widget needs to show the product without another request, as far as it is known:
        `title`, `url` (`/products/<handle>`), `price` (a decimal string in shop currency), `image`."""
        fields = {"title": self.title, "url": self.url, "image": self.image}
        if self.price is not None:
            fields["price"] = money_text(self.price)
        return {key: value for key, value in fields.items() if value}


def lowest_price(variants: Iterable[Variant]) -> Decimal | None:
    """The lowest positive price of a sellable variant; if none can be sold, of any variant; else None."""
    priced = [variant for variant in variants if variant.price is not None and variant.price > 0]
    sellable = [variant.price for variant in priced if variant.sellable and variant.price is not None]
    candidates = sellable or [variant.price for variant in priced if variant.price is not None]
    return min(candidates) if candidates else None


def _price(raw: object) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and abs(amount) <= MAX_AMOUNT else None


def _quantity(raw: object) -> int:
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            return 0
    return 0


def _text(raw: object, limit: int) -> str:
    return raw.strip()[:limit] if isinstance(raw, str) else ""


def _image(raw: object) -> str | None:
    url = _text(raw, MAX_IMAGE_URL_LENGTH)
    return url if url.startswith(("https://", "http://", "//")) else None


def name_key(raw: object) -> str:
    """A tag, product type or vendor as rules and neighbours compare it: spaces collapsed, case folded."""
    return " ".join(raw.split()).casefold()[:MAX_NAME_LENGTH] if isinstance(raw, str) else ""


def _tags(raw: object) -> tuple[str, ...]:
    """Shopify's tags: a comma-separated string (REST) or a list (GraphQL); the first ones up to MAX_TAGS_LENGTH."""
    parts = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    kept: list[str] = []
    length = 0
    for tag in dict.fromkeys(name_key(part) for part in parts):
        if not tag:
            continue
        length += len(tag) + 1
        if length > MAX_TAGS_LENGTH:
            break
        kept.append(tag)
    return tuple(kept)


def _status(raw: object) -> ProductStatus:
    try:
        return ProductStatus(str(raw).strip().lower())
    except ValueError:
        return ProductStatus.UNKNOWN


def _identity(payload: object, shape: str) -> tuple[dict[str, Any], str, datetime]:
    if not isinstance(payload, dict):
        raise CatalogPayloadError(f"the {shape} product is not a JSON object")
    try:
        product_id = shopify_id(payload.get("id"), "Product")
    except ValueError as exc:
        raise CatalogPayloadError(f"the {shape} product has no valid id: {exc}") from exc
    stamp_key = "updated_at" if shape == "webhook" else "updatedAt"
    try:
        updated_at = parse_timestamp(payload.get(stamp_key))
    except OrderPayloadError as exc:
        raise CatalogPayloadError(f"product {product_id}: {stamp_key} is missing or invalid") from exc
    return payload, product_id, updated_at


def _listing(
    product_id: str,
    payload: dict[str, Any],
    updated_at: datetime,
    variants: list[Variant],
    image: str | None,
    *,
    product_type: object,
    gift_card: bool,
) -> Listing:
    kind = name_key(product_type)
    return Listing(
        product_id=product_id,
        title=_text(payload.get("title"), MAX_TITLE_LENGTH),
        handle=_text(payload.get("handle"), MAX_HANDLE_LENGTH) or None,
        status=_status(payload.get("status")),
        price=lowest_price(variants),
        available=any(variant.sellable for variant in variants),
        image=image,
        updated_at=updated_at,
        tags=_tags(payload.get("tags")),
        product_type=kind or None,
        vendor=name_key(payload.get("vendor")) or None,
        gift_card=gift_card or kind in GIFT_CARD_TYPES,
    )


def _rest_variant(raw: dict[str, Any]) -> Variant:
    tracked = None if "inventory_management" not in raw else raw["inventory_management"] not in (None, "")
    return Variant(
        price=_price(raw.get("price")),
        inventory_quantity=_quantity(raw.get("inventory_quantity")),
        tracked=tracked,
        continue_selling=str(raw.get("inventory_policy") or "").lower() == "continue",
    )


def _rest_image(payload: dict[str, Any]) -> str | None:
    image = payload.get("image")
    if isinstance(image, dict) and _image(image.get("src")):
        return _image(image.get("src"))
    images = payload.get("images")
    if isinstance(images, list):
        ordered = sorted(
            (image for image in images if isinstance(image, dict) and _image(image.get("src"))),
            key=lambda image: _quantity(image.get("position")),
        )
        if ordered:
            return _image(ordered[0].get("src"))
    return None


def parse_webhook_product(payload: object) -> Listing:
    """A `products/create` or `products/update` body (Shopify's REST product) as a listing."""
    product, product_id, updated_at = _identity(payload, "webhook")
    raw_variants = product.get("variants")
    variants = [
        _rest_variant(raw) for raw in (raw_variants if isinstance(raw_variants, list) else []) if isinstance(raw, dict)
    ]
    # The REST product says it is a gift card only through its variants' `gift_card` (where the API version sends
    # it) or its type; Shopify's own gift card product is typed "Gift Card". GraphQL says it outright (isGiftCard).
    gift_card = product.get("gift_card") is True or any(
        isinstance(raw, dict) and raw.get("gift_card") is True
        for raw in (raw_variants if isinstance(raw_variants, list) else [])
    )
    return _listing(
        product_id,
        product,
        updated_at,
        variants,
        _rest_image(product),
        product_type=product.get("product_type"),
        gift_card=gift_card,
    )


def _nodes(connection: object) -> list[dict[str, Any]]:
    """The nodes of a GraphQL connection, whether it was asked for as `nodes` or as `edges { node }`."""
    if not isinstance(connection, dict):
        return []
    if isinstance(connection.get("nodes"), list):
        return [node for node in connection["nodes"] if isinstance(node, dict)]
    edges = connection.get("edges")
    if isinstance(edges, list):
        return [edge["node"] for edge in edges if isinstance(edge, dict) and isinstance(edge.get("node"), dict)]
    return []


def _graphql_variant(raw: dict[str, Any]) -> Variant:
    item = raw.get("inventoryItem")
    tracked = item.get("tracked") if isinstance(item, dict) and isinstance(item.get("tracked"), bool) else None
    return Variant(
        price=_price(raw.get("price")),
        inventory_quantity=_quantity(raw.get("inventoryQuantity")),
        tracked=tracked,
        continue_selling=str(raw.get("inventoryPolicy") or "").upper() == "CONTINUE",
    )


def _graphql_image(product: dict[str, Any]) -> str | None:
    featured = product.get("featuredImage")
    if isinstance(featured, dict):
        return _image(featured.get("url"))
    return None


def parse_graphql_product(node: object, extra_variants: Iterable[dict[str, Any]] = ()) -> Listing:
    """An Admin GraphQL `Product` node (id, title, handle, status, updatedAt, productType, vendor, tags, isGiftCard,
    featuredImage { url }, variants { price inventoryQuantity inventoryPolicy inventoryItem { tracked } }) as a
    listing. `extra_variants` are
    variant nodes fetched on later pages of the product's variants connection."""
    product, product_id, updated_at = _identity(node, "GraphQL")
    raw_variants = [*_nodes(product.get("variants")), *extra_variants]
    variants = [_graphql_variant(raw) for raw in raw_variants if isinstance(raw, dict)]
    return _listing(
        product_id,
        product,
        updated_at,
        variants,
        _graphql_image(product),
        product_type=product.get("productType"),
        gift_card=product.get("isGiftCard") is True,
    )


def parse_deleted_product_id(payload: object) -> str:
    """The product id of a `products/delete` body (`{"id": N}`: the id alone, so that a product's listing signed for
    `products/update` cannot be re-sent as its deletion)."""
    if not isinstance(payload, dict):
        raise CatalogPayloadError("the products/delete body is not a JSON object")
    if set(payload) != {"id"}:
        raise CatalogPayloadError("a products/delete body carries the product's id alone")
    try:
        return shopify_id(payload.get("id"), "Product")
    except ValueError as exc:
        raise CatalogPayloadError(f"the products/delete body has no valid id: {exc}") from exc
