"""The catalog's domain: availability, price selection, both of Shopify's product shapes, bad input, and the
serving path's keys and item decoding."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.catalog import (
    CatalogPayloadError,
    Listing,
    ProductStatus,
    Variant,
    lowest_price,
    parse_deleted_product_id,
    parse_graphql_product,
    parse_webhook_product,
)
from reclift.data.catalog import _item, catalog_keys, listings_from_items
from reclift.ids import shopify_id
from tests.unit.conftest import LoadFixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOP = "reclift-demo.myshopify.com"


def variant(
    price: str | None = "10.00", quantity: int = 0, *, tracked: bool | None = True, policy: str = "deny"
) -> dict[str, Any]:
    raw: dict[str, Any] = {"price": price, "inventory_quantity": quantity, "inventory_policy": policy}
    if tracked is not None:
        raw["inventory_management"] = "shopify" if tracked else None
    return raw


def product(load_fixture: LoadFixture, *variants: dict[str, Any], **fields: Any) -> dict[str, Any]:
    payload = load_fixture("products_update_sample")
    payload["variants"] = list(variants)
    payload.update(fields)
    return payload


# ---------------------------------------------------------------- availability
@pytest.mark.parametrize(
    ("quantity", "tracked", "policy", "sellable"),
    [
        (3, True, "deny", True),  # in stock
        (0, True, "deny", False),  # sold out
        (-2, True, "deny", False),  # oversold and closed
        (0, False, "deny", True),  # not tracked: always sellable
        (0, True, "continue", True),  # overselling allowed
        (-5, True, "continue", True),
        (0, None, "deny", False),  # tracking not stated: the stock decides
        (1, None, "deny", True),
    ],
)
def test_a_variant_can_be_sold_with_stock_untracked_inventory_or_overselling(
    quantity: int, tracked: bool | None, policy: str, sellable: bool
) -> None:
    assert Variant(Decimal(10), quantity, tracked, policy == "continue").sellable is sellable


def test_given_the_sample_update_then_the_listing_has_its_fields_and_is_recommendable(
    load_fixture: LoadFixture,
) -> None:
    listing = parse_webhook_product(load_fixture("products_update_sample"))

    assert listing.product_id == "788032119674292922"
    assert (listing.title, listing.handle, listing.status) == (
        "Example T-Shirt",
        "example-t-shirt",
        ProductStatus.ACTIVE,
    )
    assert listing.price == Decimal("19.99")  # 17.50 is the sold-out Medium: not what a shopper can buy
    assert listing.available
    assert listing.recommendable
    assert listing.image == "https://cdn.shopify.com/s/files/1/0005/4838/0009/products/example-t-shirt.jpg"
    assert listing.updated_at == datetime(2026, 11, 26, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize("status", ["draft", "archived", "DRAFT", "something-new", None])
def test_given_a_product_that_is_not_active_then_it_is_not_recommendable(
    load_fixture: LoadFixture, status: str | None
) -> None:
    listing = parse_webhook_product(product(load_fixture, variant(quantity=5), status=status))
    assert listing.available
    assert not listing.recommendable


def test_given_every_variant_sold_out_then_the_product_is_unavailable_with_its_lowest_price(
    load_fixture: LoadFixture,
) -> None:
    listing = parse_webhook_product(product(load_fixture, variant("12.00", 0), variant("9.00", 0)))
    assert not listing.available
    assert not listing.recommendable
    assert listing.price == Decimal("9.00")


# ---------------------------------------------------------------- price
def test_the_price_is_the_lowest_price_of_a_variant_that_can_be_sold(load_fixture: LoadFixture) -> None:
    listing = parse_webhook_product(
        product(
            load_fixture,
            variant("30.00", 4),
            variant("5.00", 0),  # sold out
            variant("22.50", 0, tracked=False),  # untracked
            variant("25.00", 0, policy="continue"),
        )
    )
    assert listing.price == Decimal("22.50")


@pytest.mark.parametrize("bad", ["0.00", "0", "-3.00", "free", "NaN", "Infinity", None, True, "1e400"])
def test_a_zero_negative_or_unreadable_price_is_never_the_products_price(load_fixture: LoadFixture, bad: Any) -> None:
    listing = parse_webhook_product(product(load_fixture, variant(bad, 4), variant("14.00", 4)))
    assert listing.price == Decimal("14.00")


def test_given_only_zero_prices_then_the_price_is_unknown_and_rendered_without_it(load_fixture: LoadFixture) -> None:
    listing = parse_webhook_product(product(load_fixture, variant("0.00", 4)))
    assert listing.price is None
    assert listing.recommendable
    assert "price" not in listing.render_fields()


def test_given_no_variants_then_the_product_is_stored_unavailable_with_no_price(load_fixture: LoadFixture) -> None:
    for variants in ([], None, "not a list", [None, 3]):
        payload = product(load_fixture)
        payload["variants"] = variants
        listing = parse_webhook_product(payload)
        assert (listing.available, listing.price, listing.recommendable) == (False, None, False)


def test_given_hundreds_of_variants_then_the_lowest_sellable_one_is_found(load_fixture: LoadFixture) -> None:
    variants = [variant(f"{100 + index}.00", 0) for index in range(600)]
    variants[431] = variant("131.00", 2)
    variants[517] = variant("99.00", 1)
    listing = parse_webhook_product(product(load_fixture, *variants))
    assert listing.price == Decimal("99.00")
    assert listing.available


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10000), places=2),
            st.integers(-5, 5),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_price_is_never_above_a_sellable_variants_price(specs: list[tuple[Decimal, int, bool]]) -> None:
    variants = [Variant(price, quantity, True, oversell) for price, quantity, oversell in specs]
    price = lowest_price(variants)
    assert price is not None
    sellable = [v.price for v in variants if v.sellable and v.price is not None]
    if sellable:
        assert price == min(sellable)
    else:
        assert price == min(v.price for v in variants if v.price is not None)


# ---------------------------------------------------------------- image and render fields
def test_the_image_is_the_featured_one_else_the_first_by_position_else_none(load_fixture: LoadFixture) -> None:
    payload = product(load_fixture, variant(quantity=1))
    payload["image"] = None
    payload["images"] = [
        {"src": "https://cdn.example.com/b.jpg", "position": 2},
        {"src": "https://cdn.example.com/a.jpg", "position": 1},
        {"src": "javascript:alert(1)", "position": 0},
    ]
    assert parse_webhook_product(payload).image == "https://cdn.example.com/a.jpg"
    payload["images"] = []
    listing = parse_webhook_product(payload)
    assert listing.image is None
    assert listing.render_fields() == {"title": "Example T-Shirt", "url": "/products/example-t-shirt", "price": "10.00"}


def test_the_render_fields_are_title_url_price_and_image(load_fixture: LoadFixture) -> None:
    listing = parse_webhook_product(load_fixture("products_update_sample"))
    assert listing.render_fields() == {
        "title": "Example T-Shirt",
        "url": "/products/example-t-shirt",
        "price": "19.99",
        "image": "https://cdn.shopify.com/s/files/1/0005/4838/0009/products/example-t-shirt.jpg",
    }


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "text",
        {},
        {"id": "abc", "updated_at": "2026-11-26T00:00:00Z"},
        {"id": 5},
        {"id": 5, "updated_at": "soon"},
    ],
)
def test_a_product_without_a_valid_id_or_update_time_is_refused_with_a_reason(payload: Any) -> None:
    with pytest.raises(CatalogPayloadError):
        parse_webhook_product(payload)


def test_a_deletion_names_its_product_or_is_refused() -> None:
    assert parse_deleted_product_id(json.loads((FIXTURES / "products_delete_sample.json").read_text())) == (
        "788032119674292922"
    )
    assert parse_deleted_product_id({"id": "gid://shopify/Product/77"}) == "77"
    listing = json.loads((FIXTURES / "products_update_sample.json").read_text())  # signed for products/update
    for payload in ({}, {"id": None}, {"id": "gid://shopify/Order/1"}, [1], listing):
        with pytest.raises(CatalogPayloadError):
            parse_deleted_product_id(payload)


# ---------------------------------------------------------------- the GraphQL shape
def test_a_graphql_product_parses_like_its_webhook() -> None:
    page = json.loads((FIXTURES / "products_graphql_page.json").read_text())
    [node] = page["data"]["products"]["nodes"]

    listing = parse_graphql_product(node)

    assert listing == Listing(
        product_id="788032119674292922",
        title="Example T-Shirt",
        handle="example-t-shirt",
        status=ProductStatus.ACTIVE,
        price=Decimal("19.99"),
        available=True,
        image="https://cdn.shopify.com/s/files/1/0005/4838/0009/products/example-t-shirt.jpg",
        updated_at=datetime(2026, 11, 26, 13, 30, tzinfo=UTC),
    )


def test_a_graphql_products_later_variant_pages_count_and_untracked_or_continue_variants_sell() -> None:
    node = {
        "id": "gid://shopify/Product/9",
        "title": "Mug",
        "handle": "mug",
        "status": "ACTIVE",
        "updatedAt": "2026-11-26T10:00:00Z",
        "featuredImage": None,
        "variants": {"edges": [{"node": {"price": "8.00", "inventoryQuantity": 0, "inventoryPolicy": "DENY"}}]},
    }
    assert not parse_graphql_product(node).available  # tracking unknown, no stock
    untracked = {
        "price": "9.00",
        "inventoryQuantity": 0,
        "inventoryPolicy": "DENY",
        "inventoryItem": {"tracked": False},
    }
    oversold = {
        "price": "7.00",
        "inventoryQuantity": -1,
        "inventoryPolicy": "CONTINUE",
        "inventoryItem": {"tracked": True},
    }
    listing = parse_graphql_product(node, [untracked, oversold])
    assert (listing.available, listing.price, listing.image) == (True, Decimal("7.00"), None)


# ---------------------------------------------------------------- what the serving path uses
def test_catalog_keys_are_the_shop_and_each_product_once_in_order() -> None:
    assert catalog_keys(SHOP, ["3", "1", "3"]) == [
        {"pk": {"S": SHOP}, "sk": {"S": "3"}},
        {"pk": {"S": SHOP}, "sk": {"S": "1"}},
    ]
    assert catalog_keys(SHOP, []) == []


def test_raw_items_as_batch_get_returns_them_come_back_as_the_listings_stored(load_fixture: LoadFixture) -> None:
    listing = parse_webhook_product(load_fixture("products_update_sample"))
    bare = parse_webhook_product(
        product(load_fixture, variant("0", 0), id=1234, title="", handle="", image=None, images=[])
    )
    raw = [_item(SHOP, item).serialize() for item in (listing, bare)]

    found = listings_from_items(raw)

    assert found[listing.product_id] == listing
    assert found[bare.product_id].render_fields() == {}
    assert not found[bare.product_id].recommendable


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
variant_fields = st.fixed_dictionaries(
    {},
    optional={
        "price": json_values,
        "inventory_quantity": json_values,
        "inventory_management": json_values,
        "inventory_policy": json_values,
    },
)


@given(
    variants=st.one_of(json_values, st.lists(st.one_of(variant_fields, json_values), max_size=6)),
    status=json_values,
    title=json_values,
    image=json_values,
    images=json_values,
)
def test_any_product_body_is_a_listing_or_a_named_refusal_never_a_crash(
    load_fixture: LoadFixture, variants: Any, status: Any, title: Any, image: Any, images: Any
) -> None:
    payload = product(load_fixture, status=status, title=title, image=image, images=images)
    payload["variants"] = variants

    listing = parse_webhook_product(payload)

    assert listing.price is None or listing.price > 0
    assert set(listing.render_fields()) <= {"title", "url", "price", "image"}
    assert not listing.recommendable or listing.status is ProductStatus.ACTIVE


@given(
    node=st.fixed_dictionaries(
        {
            "id": st.one_of(st.just("gid://shopify/Product/5"), json_values),
            "updatedAt": st.one_of(st.just("2026-11-26T10:00:00Z"), json_values),
        },
        optional={"variants": json_values, "featuredImage": json_values, "status": json_values, "title": json_values},
    )
)
def test_any_graphql_product_node_is_a_listing_or_a_named_refusal(node: dict[str, Any]) -> None:
    with contextlib.suppress(CatalogPayloadError):
        listing = parse_graphql_product(node)
        assert listing.product_id == shopify_id(node["id"], "Product")
        assert listing.price is None or listing.price > 0
