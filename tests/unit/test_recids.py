"""Rec ids the server issues: what their MAC binds, how long they live, and the keys they are made under."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.logic.deliveries import issued_rec_ids_only
from reclift.orders import Order, OrderLine
from reclift.recids import KEY_LABEL, MAX_PAGE_DIGITS, REC_ID_LIFETIME, RecIds, page_of, rec_id_keys

SHOP = "shop.myshopify.com"
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
PRODUCTS = [str(9_000_000_000_000 + n) for n in range(20)]  # twenty Shopify-sized ids: more than 128 characters


def issue(rec_ids: RecIds, **overrides: object) -> str:
    fields: dict[str, object] = {
        "shop": SHOP,
        "visitor_id": "v-1",
        "arm": "learning",
        "placement": "product",
        "products": PRODUCTS,
        "now": NOW,
    } | overrides
    return rec_ids.issue(**fields)  # type: ignore[arg-type]


def test_given_twenty_products_then_the_rec_id_is_short_and_of_the_allowed_characters() -> None:
    rec_id = issue(RecIds.of_secrets(["current"]))

    assert len(",".join(PRODUCTS)) > 128
    assert len(rec_id) <= 128
    assert re.fullmatch(r"[A-Za-z0-9_.:-]+", rec_id)


def test_given_the_key_then_it_is_the_app_secret_with_a_domain_separation_label() -> None:
    assert rec_id_keys(["s1", "s0"]) == tuple(
        hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest() for secret in ("s1", "s0")
    )
    assert KEY_LABEL == b"reclift rec_id v1"


def test_given_an_issued_rec_id_then_each_bound_field_must_match() -> None:
    rec_ids = RecIds.of_secrets(["current"])
    rec_id = issue(rec_ids, arm="holdout", placement="cart")

    issued = rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS, now=NOW + timedelta(hours=1))
    assert issued is not None
    assert (issued.arm, issued.placement, issued.issued_at) == ("holdout", "cart", NOW)
    assert rec_ids.proven(rec_id, shop="other.myshopify.com", visitor_id="v-1", listed=PRODUCTS, now=NOW) is None
    assert rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-2", listed=PRODUCTS, now=NOW) is None
    assert rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS[:19], now=NOW) is None
    assert rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS[::-1], now=NOW) is None
    assert rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS, now=NOW + REC_ID_LIFETIME) is not None
    late = NOW + REC_ID_LIFETIME + timedelta(seconds=1)
    assert rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS, now=late) is None
    assert RecIds.of_secrets(["another"]).verified(rec_id, shop=SHOP) is None


def test_given_the_arm_letter_rewritten_then_the_rec_id_is_not_verified() -> None:
    """The arm is read from a verified rec id only: `1l…` turned into `1h…` is no holdout visitor."""
    rec_ids = RecIds.of_secrets(["current"])
    rec_id = issue(rec_ids)

    assert rec_id.startswith("1lp.")
    assert rec_ids.verified("1hp." + rec_id[4:], shop=SHOP) is None
    assert rec_ids.verified(rec_id, shop=SHOP) is not None


def test_given_a_rotation_then_ids_of_the_previous_secret_stay_valid_while_it_is_configured() -> None:
    before = issue(RecIds.of_secrets(["old"]))
    during = RecIds.of_secrets(["new", "old"])
    after = RecIds.of_secrets(["new"])

    assert during.proven(before, shop=SHOP, visitor_id="v-1", listed=PRODUCTS, now=NOW + timedelta(hours=23))
    assert after.verified(before, shop=SHOP) is None
    assert after.verified(issue(during), shop=SHOP) is not None  # new ids are made with the current secret


@given(st.text(max_size=200))
def test_given_any_text_then_only_issued_ids_verify(text: str) -> None:
    assert RecIds.of_secrets(["current"]).verified(text, shop=SHOP) is None


def test_given_an_order_when_its_lines_carry_rec_ids_then_only_those_issued_to_the_shop_are_kept() -> None:
    rec_ids = RecIds.of_secrets(["current"])
    ours, theirs = issue(rec_ids), issue(rec_ids, shop="other.myshopify.com")
    lines = tuple(
        OrderLine(str(n), "632910392", 1, Decimal(10), Decimal(0), rec_id)
        for n, rec_id in enumerate([ours, theirs, "l-0123456789abcdef01234567", None])
    )
    order = Order("450789469", NOW, "USD", False, None, "v-1", lines)

    kept = issued_rec_ids_only(SHOP, order, rec_ids)

    assert [line.rec_id for line in kept.lines] == [ours, None, None, None]
    assert [line.line_id for line in kept.lines] == ["0", "1", "2", "3"]


PAGE = "9000000000123"


def test_given_a_product_page_then_its_rec_id_signs_the_page_within_the_events_key_limit() -> None:
    rec_ids = RecIds.of_secrets(["current"])
    longest = issue(rec_ids, page="9" * MAX_PAGE_DIGITS, now=datetime(5138, 11, 16, tzinfo=UTC))  # 12-digit time
    rec_id = issue(rec_ids, page=PAGE)

    issued = rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS, now=NOW)
    assert rec_id.startswith(f"2lp.{PAGE}.")
    assert issued is not None
    assert (issued.page, issued.placement, issued.issued_at) == (PAGE, "product", NOW)
    assert page_of(rec_id) == PAGE
    assert len(longest) <= 128
    assert re.fullmatch(r"[A-Za-z0-9_.:-]+", longest)
    assert rec_ids.verified(longest, shop=SHOP) is not None


def test_given_a_version_1_rec_id_then_it_stays_valid_and_carries_no_page() -> None:
    """Ids issued before the page was signed (product placement included) keep their 24 hours."""
    rec_ids = RecIds.of_secrets(["current"])
    for placement in ("product", "cart", "home"):
        rec_id = issue(rec_ids, placement=placement)
        issued = rec_ids.proven(rec_id, shop=SHOP, visitor_id="v-1", listed=PRODUCTS, now=NOW + timedelta(hours=23))
        assert rec_id.startswith("1l")
        assert issued is not None
        assert issued.page is None
        assert page_of(rec_id) is None


def test_given_a_rec_id_edited_to_say_another_page_then_it_is_not_verified() -> None:
    rec_ids = RecIds.of_secrets(["current"])
    rec_id = issue(rec_ids, page=PAGE)
    v1 = issue(rec_ids)
    body = rec_id.split(".", 2)[2]

    assert rec_ids.verified(f"2lp.9000000000124.{body}", shop=SHOP) is None  # another page
    assert rec_ids.verified(f"2lp.{PAGE}0.{body}", shop=SHOP) is None
    assert rec_ids.verified(f"2lp.{PAGE}." + v1.split(".", 1)[1], shop=SHOP) is None  # a page added to a v1 id
    assert rec_ids.verified("1lp." + body, shop=SHOP) is None  # the page taken out
    assert rec_ids.verified(f"2lc.{PAGE}.{body}", shop=SHOP) is None  # a page on the cart placement
    assert rec_ids.verified(f"2lp.{'1' * 21}.{body}", shop=SHOP) is None
    assert rec_ids.verified(rec_id, shop=SHOP) is not None


@pytest.mark.parametrize(("placement", "page"), [("cart", PAGE), ("home", PAGE), ("product", "12a"), ("product", "")])
def test_given_a_page_that_is_no_product_page_then_no_rec_id_is_issued(placement: str, page: str) -> None:
    with pytest.raises(ValueError, match="page"):
        issue(RecIds.of_secrets(["current"]), placement=placement, page=page)
