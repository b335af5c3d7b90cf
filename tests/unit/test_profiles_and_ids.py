"""Small value rules: profile lists (newest first, bounded), Shopify ids and shop domains, money text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.ids import shop_domain, shopify_id
from reclift.money import money_text
from reclift.profiles import (
    NEIGHBOURS_MAX_AGE,
    PROFILE_LIST_LIMIT,
    PROFILE_SEEDS,
    ProfileLists,
    neighbours_stale,
    push_recent,
)

# --- profiles.push_recent -----------------------------------------------------------------------------------------


def test_given_a_profile_when_products_are_pushed_then_the_newest_is_first() -> None:
    assert push_recent(["c", "b"], ["d", "e"]) == ["e", "d", "c", "b"]


def test_given_a_product_seen_again_when_pushed_then_it_moves_to_the_front_once() -> None:
    assert push_recent(["c", "b", "a"], ["a", "x", "a"]) == ["a", "x", "c", "b"]


def test_given_a_full_profile_when_pushed_then_the_oldest_fall_off_at_the_limit() -> None:
    current = [f"old-{i}" for i in range(PROFILE_LIST_LIMIT)]

    pushed = push_recent(current, ["new-1", "new-2"])

    assert len(pushed) == PROFILE_LIST_LIMIT
    assert pushed[:3] == ["new-2", "new-1", "old-0"]
    assert pushed[-1] == f"old-{PROFILE_LIST_LIMIT - 3}"


def test_given_profile_lists_when_pushed_then_each_list_is_bounded_newest_first_and_deduplicated() -> None:
    lists = ProfileLists(viewed=tuple(f"v{i}" for i in range(PROFILE_LIST_LIMIT)), purchased=("p1",))

    pushed = lists.pushed(viewed=["v9", "new"], carted=["c1", "c1"], purchased=["p2"])

    assert pushed.viewed[:3] == ("new", "v9", "v0")
    assert len(pushed.viewed) == PROFILE_LIST_LIMIT
    assert pushed.carted == ("c1",)
    assert pushed.purchased == ("p2", "p1")


def test_given_a_visitor_who_logs_in_when_merged_then_their_lists_come_first_and_merging_again_changes_nothing() -> (
    None
):
    customer = ProfileLists(viewed=("a", "b"), carted=("x",), purchased=("p",))
    visitor = ProfileLists(viewed=("c", "a"), purchased=("q",))

    merged = customer.merged_under(visitor)

    assert merged == ProfileLists(viewed=("c", "a", "b"), carted=("x",), purchased=("q", "p"))
    assert merged.merged_under(visitor) == merged


def test_given_two_full_profiles_when_merged_then_the_result_stays_bounded() -> None:
    customer = ProfileLists(viewed=tuple(f"c{i}" for i in range(PROFILE_LIST_LIMIT)))
    visitor = ProfileLists(viewed=tuple(f"v{i}" for i in range(PROFILE_LIST_LIMIT)))

    assert customer.merged_under(visitor).viewed == visitor.viewed


def test_given_views_and_purchases_then_the_seeds_alternate_newest_first_then_cart_additions() -> None:
    lists = ProfileLists(viewed=("v1", "v2", "p1"), carted=("c1",), purchased=("p1", "p2"))

    assert lists.seeds() == ["v1", "p1", "v2", "p2", "c1"]
    many = ProfileLists(viewed=tuple(f"v{i}" for i in range(30)))
    assert len(many.seeds()) == PROFILE_SEEDS


def test_given_stored_neighbours_then_they_are_refreshed_on_new_seeds_or_after_a_day() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)

    assert not neighbours_stale(["a"], ["a"], now - timedelta(hours=1), now)
    assert neighbours_stale(["b", "a"], ["a"], now - timedelta(hours=1), now)
    assert neighbours_stale(["a"], ["a"], now - NEIGHBOURS_MAX_AGE, now)
    assert neighbours_stale(["a"], None, None, now)
    assert not neighbours_stale([], None, None, now)
    assert neighbours_stale([], ["a"], now, now)


def test_given_a_custom_limit_when_pushed_then_it_is_honoured() -> None:
    assert push_recent(["b", "a"], ["c"], limit=2) == ["c", "b"]
    assert push_recent([], [], limit=2) == []


def test_given_nothing_new_when_pushed_then_the_profile_is_unchanged() -> None:
    assert push_recent(["b", "a"], []) == ["b", "a"]


@given(
    current=st.lists(st.sampled_from("abcdefghij"), unique=True, max_size=10),
    newest_last=st.lists(st.sampled_from("abcdefghijklmnop"), max_size=12),
    limit=st.integers(1, 12),
)
def test_given_any_lists_when_pushed_then_unique_bounded_and_the_latest_push_first(
    current: list[str], newest_last: list[str], limit: int
) -> None:
    pushed = push_recent(current, newest_last, limit)

    assert len(pushed) == len(set(pushed)) <= limit
    assert set(pushed) <= set(current) | set(newest_last)
    if newest_last:
        assert pushed[0] == newest_last[-1]
    # Whatever is kept stays in recency order: the pushed items by last push, then the rest as they were.
    expected = list(dict.fromkeys([*reversed(newest_last), *current]))[:limit]
    assert pushed == expected


# --- ids.shop_domain ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("demo-shop.myshopify.com", "demo-shop.myshopify.com"),
        ("  Demo-Shop.MyShopify.COM \n", "demo-shop.myshopify.com"),
        ("0shop.myshopify.com", "0shop.myshopify.com"),
        ("a.myshopify.com", "a.myshopify.com"),
    ],
)
def test_given_a_myshopify_domain_when_read_then_it_is_lower_cased_and_trimmed(raw: str, expected: str) -> None:
    assert shop_domain(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "demo-shop",
        "demo-shop.com",
        "-demo.myshopify.com",
        "demo_shop.myshopify.com",
        "demo.shop.myshopify.com",
        "https://demo-shop.myshopify.com",
        "demo-shop.myshopify.com/admin",
        "demo-shop.myshopify.com.evil.com",
        "demo-shop.myshopifyXcom",
        ".myshopify.com",
        "démo.myshopify.com",
    ],
)
def test_given_anything_but_a_myshopify_domain_when_read_then_it_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"not a myshopify\.com shop domain"):
        shop_domain(raw)


# --- ids.shopify_id -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (632910392, "Product", "632910392"),
        (0, "Product", "0"),
        ("632910392", "Product", "632910392"),
        (" 632910392 ", "Product", "632910392"),
        ("000632910392", "Product", "632910392"),
        ("9" * 20, "Product", "9" * 20),
        ("gid://shopify/Product/632910392", "Product", "632910392"),
        ("gid://shopify/LineItem/466157049", "LineItem", "466157049"),
        ("gid://shopify/Customer/207119551", "Customer", "207119551"),
        (" gid://shopify/Order/450789469\n", "Order", "450789469"),
    ],
)
def test_given_a_shopify_id_in_any_form_when_read_then_it_is_the_digits(raw: object, kind: str, expected: str) -> None:
    assert shopify_id(raw, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind", "says"),
    [
        (True, "Product", "cannot be a boolean"),
        (False, "Product", "cannot be a boolean"),
        (-1, "Product", "cannot be negative"),
        ("-1", "Product", "not a Shopify Product id"),
        ("", "Product", "not a Shopify Product id"),
        ("12a", "Product", "not a Shopify Product id"),
        ("1.0", "Product", "not a Shopify Product id"),
        ("1" * 21, "Product", "not a Shopify Product id"),
        (1.0, "Product", "not a Shopify Product id"),
        (None, "Product", "not a Shopify Product id"),
        (["1"], "Product", "not a Shopify Product id"),
        ("gid://shopify/ProductVariant/1", "Product", "expected a Product id, got a ProductVariant id"),
        ("gid://shopify/Product/1", "Order", "expected a Order id, got a Product id"),
        ("gid://shopify/Product/", "Product", "not a Shopify Product id"),
        ("gid://shopify/Product/1/2", "Product", "not a Shopify Product id"),
        ("gid://other/Product/1", "Product", "not a Shopify Product id"),
        ("gid://shopify/Product/1?x=y", "Product", "not a Shopify Product id"),
    ],
)
def test_given_something_that_is_not_a_shopify_id_when_read_then_the_error_says_why(
    raw: object, kind: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        shopify_id(raw, kind)


@given(st.integers(min_value=0, max_value=10**20 - 1))
def test_given_any_id_when_read_as_int_string_or_gid_then_all_three_agree(number: int) -> None:
    as_int = shopify_id(number, "Product")
    assert as_int == str(number)
    assert shopify_id(str(number), "Product") == as_int
    assert shopify_id(f"gid://shopify/Product/{number}", "Product") == as_int


def test_given_the_same_digits_as_gid_and_plain_string_when_read_then_the_ids_agree() -> None:
    assert shopify_id("gid://shopify/Product/007", "Product") == shopify_id("007", "Product") == "7"


@pytest.mark.parametrize("value", ["١٢٣", "gid://shopify/Product/١٢٣"])
def test_given_non_ascii_digits_when_read_then_they_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="Product id"):
        shopify_id(value, "Product")


# --- money.money_text ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal(0), "0.00"),
        (Decimal("0.00"), "0.00"),
        (Decimal("54"), "54.00"),
        (Decimal("54.0"), "54.00"),
        (Decimal("54.00"), "54.00"),
        (Decimal("587.00"), "587.00"),
        (Decimal("1.005"), "1.005"),  # more places only when the amount has them
        (Decimal("0.125"), "0.125"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("-3.3"), "-3.30"),
        (Decimal("19.99") * 3 - Decimal("5.97"), "54.00"),
    ],
)
def test_given_an_amount_when_shown_then_it_has_at_least_two_decimal_places(amount: Decimal, text: str) -> None:
    assert money_text(amount) == text


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False))
def test_given_any_amount_when_shown_then_the_text_is_the_same_decimal_with_two_or_more_places(amount: Decimal) -> None:
    text = money_text(amount)
    assert Decimal(text) == amount
    assert "E" not in text
    assert len(text.partition(".")[2]) >= 2
