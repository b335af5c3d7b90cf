"""Catalog neighbours: same product type first, then vendor or shared tags, within a factor of 2 in price; only
products that can be recommended; every catalog product (sold-out ones too) gets its list."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from reclift.catalog import Listing, ProductStatus
from reclift.catalog_neighbours import catalog_neighbours


def listing(product_id: str, price: str | None = "30", **extra: Any) -> Listing:
    fields: dict[str, Any] = {
        "product_id": product_id,
        "title": product_id,
        "handle": None,
        "status": ProductStatus.ACTIVE,
        "price": Decimal(price) if price is not None else None,
        "available": True,
        "image": None,
        "updated_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    return Listing(**(fields | extra))


def neighbours_of(product: str, *listings: Listing, top: int = 20) -> list[str]:
    return [other for other, _ in catalog_neighbours(listings, top=top).get(product, [])]


def test_given_a_product_then_the_same_type_comes_before_vendor_and_tags_and_near_prices_first() -> None:
    shirt = listing("1", product_type="shirts", vendor="acme", tags=("cotton", "summer"))
    others = [
        listing("2", "32", product_type="shirts"),  # same type, near price
        listing("3", "55", product_type="shirts"),  # same type, far within the band
        listing("4", "30", vendor="acme", tags=("cotton", "summer")),  # vendor and every tag, no type
        listing("5", "30", tags=("cotton",)),
        listing("6", "61", product_type="shirts"),  # more than twice the price
        listing("7", "30", product_type="shoes"),  # nothing shared
    ]

    assert neighbours_of("1", shirt, *others) == ["2", "3", "4", "5"]


def test_given_products_not_for_sale_or_gift_cards_then_they_are_nobody_s_neighbours_but_have_their_own() -> None:
    shop = [
        listing("1", product_type="shirts", available=False),
        listing("2", product_type="shirts", gift_card=True),
        listing("3", product_type="shirts", status=ProductStatus.DRAFT),
        listing("4", product_type="shirts", deleted=True),
        listing("5", product_type="shirts"),
    ]

    result = catalog_neighbours(shop)

    assert result == {"1": [("5", result["1"][0][1])], "2": result["2"], "3": result["3"]}
    assert all(neighbours == [("5", neighbours[0][1])] for neighbours in result.values())


def test_given_an_unknown_price_then_the_band_does_not_apply_but_a_known_near_price_ranks_first() -> None:
    shop = [
        listing("1", product_type="mugs"),
        listing("2", None, product_type="mugs"),
        listing("3", "31", product_type="mugs"),
    ]

    assert neighbours_of("1", *shop) == ["3", "2"]
    assert neighbours_of("2", *shop) == ["1", "3"]


def test_given_a_large_type_then_each_product_keeps_its_top_nearest_in_price() -> None:
    shop = [listing(str(n), str(20 + n), product_type="socks") for n in range(1, 200)]

    near = neighbours_of("100", *shop, top=4)

    assert sorted(near) == ["101", "102", "98", "99"]


def test_given_no_shared_type_vendor_or_tag_then_a_product_has_no_neighbours() -> None:
    assert catalog_neighbours([listing("1", product_type="a"), listing("2", product_type="b"), listing("3")]) == {}
