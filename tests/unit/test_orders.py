"""orders.parse_order: Shopify order webhooks (the real sample payloads) as the values attribution works on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.orders import (
    MAX_KEY_LENGTH,
    OrderLine,
    OrderPayloadError,
    landing_handle,
    parse_order,
    parse_timestamp,
)

LoadFixture = Callable[[str], dict[str, Any]]

ORDER_ID = "450789469"
PRODUCT_ID = "632910392"
LINE_IDS = ("466157049", "518995019", "703073504")


def _money(amount: str, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency_code": currency}


def _priced(line: dict[str, Any], shop: str, presentment: str, *, shop_ccy: str = "USD", pres_ccy: str = "EUR") -> None:
    line["price"] = presentment  # Shopify's plain `price` is in presentment currency on multi-currency orders
    line["price_set"] = {"shop_money": _money(shop, shop_ccy), "presentment_money": _money(presentment, pres_ccy)}


def _allocation(shop: str, presentment: str, *, shop_ccy: str = "USD", pres_ccy: str = "EUR") -> dict[str, Any]:
    return {
        "amount": presentment,
        "amount_set": {"shop_money": _money(shop, shop_ccy), "presentment_money": _money(presentment, pres_ccy)},
        "discount_application_index": 0,
    }


# --- The real payloads ----------------------------------------------------------------------------------------------


def test_given_the_real_orders_create_sample_when_parsed_then_ids_time_customer_and_discounts_are_read(
    load_fixture: LoadFixture,
) -> None:
    order = parse_order(load_fixture("orders_create_sample"))

    assert order.order_id == ORDER_ID
    # "2008-01-10T11:00:00-05:00" is 16:00 UTC.
    assert order.created_at == datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    assert order.created_at.tzinfo is UTC
    assert order.currency == "USD"
    assert order.test is False
    assert order.customer_id == "207119551"
    assert order.visitor_id is None  # its note_attributes carry no _reclift_vid
    assert order.product_ids == (PRODUCT_ID,)
    assert [line.line_id for line in order.lines] == list(LINE_IDS)
    assert order.lines[0] == OrderLine(
        line_id="466157049",
        product_id=PRODUCT_ID,
        quantity=1,
        unit_price=Decimal("199.00"),
        discount=Decimal("3.34"),
        rec_id=None,  # its properties are engravings, not _rec_id
    )
    assert [line.discount for line in order.lines] == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]
    # The order's TENOFF code, spread over its three lines, is taken off exactly.
    assert sum((line.revenue for line in order.lines), Decimal(0)) == Decimal("587.00")


def test_given_the_real_orders_paid_sample_without_customer_when_parsed_then_customer_is_none(
    load_fixture: LoadFixture,
) -> None:
    order = parse_order(load_fixture("orders_paid_sample"))

    assert order.order_id == "1073459966"
    assert order.customer_id is None
    assert order.visitor_id is None
    assert order.created_at == datetime(2025, 4, 2, 16, 30, 54, tzinfo=UTC)
    assert [(line.product_id, line.revenue) for line in order.lines] == [("921728736", Decimal("199.00"))]


def test_given_the_real_orders_cancelled_sample_when_parsed_then_it_is_the_same_order(
    load_fixture: LoadFixture,
) -> None:
    order = parse_order(load_fixture("orders_cancelled_sample"))
    assert order.order_id == ORDER_ID
    assert len(order.lines) == 3


# --- Identity keys: _reclift_vid, _rec_id -----------------------------------------------------------------------------


def test_given_a_reclift_vid_note_attribute_when_parsed_then_it_is_the_visitor_id(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_create_sample")
    payload["note_attributes"].append({"name": "_reclift_vid", "value": "  v-123.abc  "})

    assert parse_order(payload).visitor_id == "v-123.abc"


def test_given_a_rec_id_line_property_when_parsed_then_only_that_line_carries_it(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_create_sample")
    payload["line_items"][1]["properties"].append({"name": "_rec_id", "value": "rec-42"})

    order = parse_order(payload)

    assert [line.rec_id for line in order.lines] == [None, "rec-42", None]


@pytest.mark.parametrize("value", ["", "   ", None, ["rec"], {"v": 1}])
def test_given_an_empty_or_non_text_rec_id_when_parsed_then_the_line_has_no_rec_id(
    load_fixture: LoadFixture, value: object
) -> None:
    payload = load_fixture("orders_create_sample")
    payload["line_items"][0]["properties"] = [{"name": "_rec_id", "value": value}]

    assert parse_order(payload).lines[0].rec_id is None


def test_given_an_overlong_visitor_id_when_parsed_then_it_is_cut_to_the_key_length(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_create_sample")
    payload["note_attributes"] = [{"name": "_reclift_vid", "value": "v" * 500}]

    assert parse_order(payload).visitor_id == "v" * MAX_KEY_LENGTH


def test_given_properties_not_a_list_when_parsed_then_they_are_ignored(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_create_sample")
    payload["line_items"][0]["properties"] = {"_rec_id": "rec-1"}
    payload["note_attributes"] = None

    order = parse_order(payload)
    assert order.lines[0].rec_id is None
    assert order.visitor_id is None


# --- Money ------------------------------------------------------------------------------------------------------------


def test_given_three_units_at_1999_with_597_off_when_parsed_then_revenue_is_exactly_5400(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_paid_sample")
    line = payload["line_items"][0]
    line["quantity"] = 3
    _priced(line, "19.99", "19.99", pres_ccy="USD")
    line["discount_allocations"] = [_allocation("2.00", "2.00", pres_ccy="USD"), _allocation("3.97", "3.97")]

    parsed = parse_order(payload).lines[0]

    assert parsed.revenue == Decimal("54.00")
    assert isinstance(parsed.revenue, Decimal)
    assert str(parsed.revenue) == "54.00"


def test_given_a_presentment_currency_other_than_the_shop_currency_when_parsed_then_shop_money_is_used(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_create_sample")
    payload["presentment_currency"] = "EUR"
    line = payload["line_items"][0]
    _priced(line, "199.00", "183.17")
    line["discount_allocations"] = [_allocation("3.34", "3.07")]

    parsed = parse_order(payload)

    assert parsed.currency == "USD"
    assert parsed.lines[0].unit_price == Decimal("199.00")
    assert parsed.lines[0].discount == Decimal("3.34")
    assert parsed.lines[0].revenue == Decimal("195.66")


def test_given_no_price_set_when_parsed_then_the_plain_price_is_used(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_paid_sample")
    del payload["line_items"][0]["price_set"]
    payload["line_items"][0]["price"] = 19.99  # a JSON number, not a string

    assert parse_order(payload).lines[0].unit_price == Decimal("19.99")


def test_given_no_price_at_all_when_parsed_then_the_price_is_zero(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_paid_sample")
    del payload["line_items"][0]["price_set"]
    del payload["line_items"][0]["price"]

    assert parse_order(payload).lines[0].unit_price == Decimal(0)


def test_given_discounts_above_the_line_price_when_parsed_then_revenue_is_zero_not_negative(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_paid_sample")
    payload["line_items"][0]["discount_allocations"] = [_allocation("150.00", "150.00"), _allocation("60.00", "60")]

    line = parse_order(payload).lines[0]
    assert line.discount == Decimal("210.00")
    assert line.revenue == Decimal(0)


def test_given_a_currency_missing_when_parsed_then_usd_is_assumed(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_paid_sample")
    del payload["currency"]
    assert parse_order(payload).currency == "USD"


@pytest.mark.parametrize(
    ("where", "amount", "named"),
    [
        ("price", "NaN", "price is not a finite amount"),
        ("price", "Infinity", "price is not a finite amount"),
        ("price", "-Infinity", "price is not a finite amount"),
        ("price", "sNaN", "price is not a finite amount"),
        ("price", "19,99", "price is not a decimal amount"),
        ("discount", "NaN", "amount is not a finite amount"),
        ("discount", "ten", "amount is not a decimal amount"),
    ],
)
def test_given_a_non_finite_or_non_decimal_amount_when_parsed_then_the_error_names_the_amount(
    load_fixture: LoadFixture, where: str, amount: str, named: str
) -> None:
    payload = load_fixture("orders_paid_sample")
    line = payload["line_items"][0]
    if where == "price":
        _priced(line, amount, "1.00")
    else:
        line["discount_allocations"] = [_allocation(amount, "1.00")]

    with pytest.raises(OrderPayloadError, match=named):
        parse_order(payload)


def test_given_a_float_infinity_price_when_parsed_then_it_is_refused(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_paid_sample")
    payload["line_items"][0]["price_set"]["shop_money"]["amount"] = float("inf")

    with pytest.raises(OrderPayloadError, match="not a finite amount"):
        parse_order(payload)


# --- Lines ----------------------------------------------------------------------------------------------------


def test_given_a_custom_line_without_product_when_parsed_then_it_has_no_product_and_is_not_in_the_basket(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_paid_sample")
    custom = payload["line_items"][0] | {"id": 1, "product_id": None, "title": "Gift wrapping"}
    payload["line_items"].append(custom)

    order = parse_order(payload)
    assert order.lines[1].product_id is None
    assert order.product_ids == ("921728736",)


def test_given_gid_ids_when_parsed_then_they_are_the_numeric_ids(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_create_sample")
    payload["id"] = payload["admin_graphql_api_id"]
    payload["customer"]["id"] = "gid://shopify/Customer/207119551"
    for line in payload["line_items"]:
        line["id"] = line["admin_graphql_api_id"]
        line["product_id"] = f"gid://shopify/Product/{line['product_id']}"

    order = parse_order(payload)
    assert order.order_id == ORDER_ID
    assert order.customer_id == "207119551"
    assert [line.line_id for line in order.lines] == list(LINE_IDS)
    assert order.product_ids == (PRODUCT_ID,)


def test_given_a_gid_of_another_kind_as_order_id_when_parsed_then_the_error_says_so(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_create_sample")
    payload["id"] = "gid://shopify/Product/450789469"
    with pytest.raises(OrderPayloadError, match="expected a Order id, got a Product id"):
        parse_order(payload)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda p: p.pop("id"), "the order has no id"),
        (lambda p: p.update(id=None), "the order has no id"),
        (lambda p: p.update(id="four-five"), "not a Shopify Order id"),
        (lambda p: p.pop("line_items"), "no line_items list"),
        (lambda p: p.update(line_items={"0": {}}), "no line_items list"),
        (lambda p: p.pop("created_at"), "created_at is missing"),
        (lambda p: p.update(created_at=""), "created_at is missing"),
        (lambda p: p.update(created_at=1199980800), "created_at is missing"),
        (lambda p: p.update(created_at="10/01/2008 11:00"), "created_at is not an ISO-8601 timestamp"),
        (lambda p: p.update(created_at="2008-13-10T11:00:00-05:00"), "created_at is not an ISO-8601 timestamp"),
        (lambda p: p["customer"].update(id="bob"), "not a Shopify Customer id"),
        (lambda p: p["line_items"].append("a line"), "a line item is not an object"),
        (lambda p: p["line_items"][0].pop("id"), "a line item has no id"),
        (lambda p: p["line_items"][0].update(product_id="gid://shopify/Variant/1"), "expected a Product id"),
        (lambda p: p["line_items"][0].update(quantity=-1), "line item 466157049 has an invalid quantity"),
        (lambda p: p["line_items"][0].update(quantity=1.5), "line item 466157049 has an invalid quantity"),
        (lambda p: p["line_items"][0].update(quantity="2"), "line item 466157049 has an invalid quantity"),
        (lambda p: p["line_items"][0].update(quantity=True), "line item 466157049 has an invalid quantity"),
        (lambda p: p["line_items"][0].pop("quantity"), "line item 466157049 has an invalid quantity"),
    ],
    ids=[
        "no-id",
        "null-id",
        "bad-id",
        "no-line-items",
        "line-items-not-a-list",
        "no-created-at",
        "empty-created-at",
        "numeric-created-at",
        "non-iso-created-at",
        "month-13",
        "bad-customer-id",
        "line-not-object",
        "line-without-id",
        "variant-gid-as-product",
        "negative-quantity",
        "fractional-quantity",
        "string-quantity",
        "bool-quantity",
        "missing-quantity",
    ],
)
def test_given_a_broken_order_when_parsed_then_the_error_names_what_is_wrong(
    load_fixture: LoadFixture, edit: Any, named: str
) -> None:
    payload = load_fixture("orders_create_sample")
    edit(payload)

    with pytest.raises(OrderPayloadError, match=named):
        parse_order(payload)


@pytest.mark.parametrize("payload", [None, [], "order", 450789469, [{"id": 1}]])
def test_given_a_payload_that_is_not_an_object_when_parsed_then_the_error_says_so(payload: object) -> None:
    with pytest.raises(OrderPayloadError, match="not a JSON object"):
        parse_order(payload)


def test_given_a_zero_quantity_line_when_parsed_then_it_is_kept_with_zero_revenue(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_paid_sample")
    payload["line_items"][0]["quantity"] = 0

    line = parse_order(payload).lines[0]
    assert line.quantity == 0
    assert line.revenue == Decimal(0)


def test_given_an_empty_line_items_list_when_parsed_then_the_order_has_no_lines(load_fixture: LoadFixture) -> None:
    payload = load_fixture("orders_paid_sample")
    payload["line_items"] = []
    assert parse_order(payload).lines == ()


def test_given_test_true_when_parsed_then_the_order_is_a_test_and_truthy_strings_are_not(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_paid_sample")
    payload["test"] = True
    assert parse_order(payload).test is True
    payload["test"] = "true"
    assert parse_order(payload).test is False


# --- Timestamps ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2008-01-10T11:00:00-05:00", datetime(2008, 1, 10, 16, 0, tzinfo=UTC)),
        ("2008-01-10T16:00:00Z", datetime(2008, 1, 10, 16, 0, tzinfo=UTC)),
        ("2008-01-10T16:00:00+00:00", datetime(2008, 1, 10, 16, 0, tzinfo=UTC)),
        ("2008-01-11T01:30:00+09:30", datetime(2008, 1, 10, 16, 0, tzinfo=UTC)),
        ("2008-01-10T16:00:00.123456Z", datetime(2008, 1, 10, 16, 0, 0, 123456, tzinfo=UTC)),
        ("2008-01-10T16:00:00", datetime(2008, 1, 10, 16, 0, tzinfo=UTC)),  # no offset: taken as UTC
    ],
)
def test_given_iso_timestamps_with_offsets_when_parsed_then_they_are_aware_utc(raw: str, expected: datetime) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.tzinfo is UTC


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=_OFFSETS))
def test_given_any_time_with_an_offset_when_formatted_and_parsed_then_the_instant_is_kept(moment: datetime) -> None:
    parsed = parse_timestamp(moment.isoformat())
    assert parsed == moment
    assert parsed.tzinfo is UTC


def test_given_a_created_at_at_the_edge_of_the_calendar_when_parsed_then_the_error_is_an_order_payload_error(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_create_sample")
    payload["created_at"] = "0001-01-01T00:00:00+01:00"

    with pytest.raises(OrderPayloadError):
        parse_order(payload)


def test_given_discount_allocations_that_are_not_a_list_when_parsed_then_the_error_is_an_order_payload_error(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_create_sample")
    payload["line_items"][0]["discount_allocations"] = 1

    with pytest.raises(OrderPayloadError):
        parse_order(payload)


@pytest.mark.parametrize(
    ("landing_site", "handle"),
    [
        ("/products/teapot", "teapot"),
        ("/products/teapot?utm_source=newsletter&utm_medium=email#reviews", "teapot"),
        ("https://shop.example/products/Tea-Pot/", "tea-pot"),
        ("/fr/products/th%C3%A9i%C3%A8re", "théière"),  # under a locale, percent-encoded
        ("/collections/tea/products/teapot", "teapot"),  # through a collection
        ("http://www.example.com?source=abc", None),  # the real sample's: the home page
        ("/collections/tea", None),
        ("/products/", None),
        ("/products/tea%23pot", None),  # no Shopify handle holds a "#"
        ("/search?q=products", None),
        ("", None),
        (None, None),
        (42, None),
        ("/products/" + "x" * 256, None),  # longer than any handle Shopify allows
    ],
)
def test_the_landing_page_names_a_product_page_by_its_handle(landing_site: object, handle: str | None) -> None:
    assert landing_handle(landing_site) == handle


def test_given_the_real_sample_then_its_home_page_landing_names_no_product_and_a_product_page_one_does(
    load_fixture: LoadFixture,
) -> None:
    payload = load_fixture("orders_create_sample")
    assert parse_order(payload).landing is None  # "http://www.example.com?source=abc"
    assert parse_order(payload | {"landing_site": "/products/ipod-nano?ref=abc"}).landing == "ipod-nano"
