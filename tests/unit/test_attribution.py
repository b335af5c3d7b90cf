"""Attribution (DESIGN.md §2): which recommendation touch, if any, earned each line of a real Shopify order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclift.attribution import (
    MAX_SHOWN_INSTEAD,
    Channel,
    LineAttribution,
    OrderAttribution,
    Touch,
    TouchKind,
    Windows,
    attribute_order,
    page_purchases,
)
from reclift.orders import Order, OrderLine, parse_order

LoadFixture = Callable[[str], dict[str, Any]]

# The real orders/create sample: created "2008-01-10T11:00:00-05:00", three lines of the iPod Nano (product
# 632910392) at 199.00, with TENOFF spread as 3.34 / 3.33 / 3.33.
CREATED = datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
NANO = "632910392"
TOUCH = "921728736"  # the iPod Touch of the orders/paid sample
SHUFFLE = "1111111111"
CLASSIC = "2222222222"
DEFAULT = Windows.of_days(7, 7)
MICROSECOND = timedelta(microseconds=1)


def _touch(event_id: str, kind: TouchKind, before: timedelta, products: tuple[str, ...], rec_id: str | None) -> Touch:
    return Touch(event_id=event_id, kind=kind, at=CREATED - before, product_ids=products, rec_id=rec_id)


def click(event_id: str, before: timedelta, *products: str, rec_id: str | None = None) -> Touch:
    return _touch(event_id, TouchKind.CLICK, before, products or (NANO,), rec_id or f"rec-{event_id}")


def cart_add(event_id: str, before: timedelta, *products: str, rec_id: str | None = None) -> Touch:
    return _touch(event_id, TouchKind.ADD_TO_CART, before, products or (NANO,), rec_id or f"rec-{event_id}")


def shown(event_id: str, before: timedelta, *products: str, rec_id: str | None = None) -> Touch:
    return _touch(event_id, TouchKind.IMPRESSION, before, products or (NANO,), rec_id or f"rec-{event_id}")


def _payload(
    load_fixture: LoadFixture, *, lines: int = 1, rec_id: str | None = None, test: bool = False
) -> dict[str, Any]:
    payload = load_fixture("orders_create_sample")
    payload["line_items"] = payload["line_items"][:lines]
    payload["note_attributes"].append({"name": "_reclift_vid", "value": "visitor-1"})
    payload["test"] = test
    if rec_id is not None:
        payload["line_items"][0]["properties"].append({"name": "_rec_id", "value": rec_id})
    return payload


def sample_order(load_fixture: LoadFixture, *, lines: int = 1, rec_id: str | None = None, test: bool = False) -> Order:
    """The real sample order, cut to its first `lines` lines; the first line may carry a `_rec_id`."""
    return parse_order(_payload(load_fixture, lines=lines, rec_id=rec_id, test=test))


def only(result: OrderAttribution) -> LineAttribution:
    assert len(result.attributed) == 1, result.attributed
    return result.attributed[0]


# --- Windows ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TouchKind.CLICK, TouchKind.IMPRESSION])
def test_given_a_touch_exactly_at_created_at_minus_the_window_when_attributed_then_it_is_in(
    load_fixture: LoadFixture, kind: TouchKind
) -> None:
    touch = _touch("e1", kind, timedelta(days=7), (NANO,), "rec-1")

    line = only(attribute_order(sample_order(load_fixture), [touch], DEFAULT))

    assert line.credited == touch
    assert line.conversion_minutes == 7 * 24 * 60


@pytest.mark.parametrize("kind", [TouchKind.CLICK, TouchKind.IMPRESSION])
def test_given_a_touch_one_microsecond_before_the_window_when_attributed_then_it_is_out(
    load_fixture: LoadFixture, kind: TouchKind
) -> None:
    touch = _touch("e1", kind, timedelta(days=7) + MICROSECOND, (NANO,), "rec-1")

    result = attribute_order(sample_order(load_fixture), [touch], DEFAULT)

    assert result.attributed == ()
    assert result.missed == ()  # nothing was shown within the window either


@pytest.mark.parametrize("kind", [TouchKind.CLICK, TouchKind.IMPRESSION])
def test_given_a_touch_after_created_at_when_attributed_then_it_is_out(
    load_fixture: LoadFixture, kind: TouchKind
) -> None:
    touch = _touch("e1", kind, -MICROSECOND, (NANO,), "rec-1")

    assert attribute_order(sample_order(load_fixture), [touch], DEFAULT).attributed == ()


def test_given_a_click_at_created_at_exactly_when_attributed_then_it_counts_with_zero_minutes(
    load_fixture: LoadFixture,
) -> None:
    line = only(attribute_order(sample_order(load_fixture), [click("e1", timedelta(0))], DEFAULT))
    assert line.channel is Channel.CLICK_THROUGH
    assert line.conversion_minutes == 0


def test_given_a_one_day_click_window_when_the_click_is_two_days_old_then_the_seven_day_view_credits(
    load_fixture: LoadFixture,
) -> None:
    """Given click 1 day / view 7 days, a click 2 days ago and an impression 3 days ago, then view-through."""
    old_click = click("c1", timedelta(days=2))
    older_view = shown("v1", timedelta(days=3))

    line = only(attribute_order(sample_order(load_fixture), [old_click, older_view], Windows.of_days(1, 7)))

    assert line.channel is Channel.VIEW_THROUGH
    assert line.credited == older_view
    assert line.event_ids == ("v1",)  # the click is outside its own window


def test_given_a_one_day_click_window_when_the_click_is_exactly_one_day_old_then_it_credits(
    load_fixture: LoadFixture,
) -> None:
    line = only(
        attribute_order(
            sample_order(load_fixture),
            [click("c1", timedelta(days=1)), shown("v1", timedelta(hours=1))],
            Windows.of_days(1, 7),
        )
    )
    assert (line.channel, line.credited.event_id) == (Channel.CLICK_THROUGH, "c1")


def test_given_a_one_day_view_window_when_only_an_older_impression_exists_then_nothing_is_credited(
    load_fixture: LoadFixture,
) -> None:
    result = attribute_order(
        sample_order(load_fixture), [shown("v1", timedelta(days=1) + MICROSECOND)], Windows.of_days(7, 1)
    )
    assert result.attributed == ()
    assert result.missed == ()


def test_given_a_thirty_day_click_window_when_the_click_is_29_days_old_then_it_credits(
    load_fixture: LoadFixture,
) -> None:
    line = only(attribute_order(sample_order(load_fixture), [click("c1", timedelta(days=29))], Windows.of_days(30, 1)))
    assert line.channel is Channel.CLICK_THROUGH
    assert line.conversion_minutes == 29 * 24 * 60


# --- Which touch is credited ----------------------------------------------------------------------------------------


def test_given_a_click_and_a_later_impression_when_attributed_then_the_click_wins(load_fixture: LoadFixture) -> None:
    line = only(
        attribute_order(
            sample_order(load_fixture), [click("c1", timedelta(days=5)), shown("v1", timedelta(minutes=1))], DEFAULT
        )
    )
    assert line.channel is Channel.CLICK_THROUGH
    assert line.credited.event_id == "c1"


def test_given_several_clicks_when_attributed_then_the_latest_click_wins(load_fixture: LoadFixture) -> None:
    touches = [click("c-old", timedelta(days=3)), click("c-new", timedelta(hours=2)), click("c-mid", timedelta(days=1))]

    line = only(attribute_order(sample_order(load_fixture), touches, DEFAULT))

    assert line.credited.event_id == "c-new"
    assert line.conversion_minutes == 120


def test_given_only_an_add_to_cart_when_attributed_then_it_is_a_click_through(load_fixture: LoadFixture) -> None:
    line = only(
        attribute_order(
            sample_order(load_fixture), [cart_add("a1", timedelta(hours=1)), shown("v1", timedelta(minutes=5))], DEFAULT
        )
    )
    assert (line.channel, line.credited.event_id) == (Channel.CLICK_THROUGH, "a1")


def test_given_several_impressions_when_attributed_then_the_latest_impression_wins(load_fixture: LoadFixture) -> None:
    touches = [shown("v-new", timedelta(hours=1), SHUFFLE, NANO), shown("v-old", timedelta(days=6))]

    line = only(attribute_order(sample_order(load_fixture), touches, DEFAULT))

    assert (line.channel, line.credited.event_id) == (Channel.VIEW_THROUGH, "v-new")


def test_given_a_rec_id_on_the_line_when_another_rec_was_clicked_later_then_the_rec_id_wins(
    load_fixture: LoadFixture,
) -> None:
    carried = click("c-carried", timedelta(days=3), rec_id="rec-A")
    later = click("c-later", timedelta(hours=1), rec_id="rec-B")

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), [carried, later], DEFAULT))

    assert line.channel is Channel.CLICK_THROUGH
    assert line.credited == carried
    assert line.conversion_minutes == 3 * 24 * 60
    assert line.event_ids == ("c-carried", "c-later")


def test_given_a_rec_id_with_only_an_impression_of_that_rec_when_attributed_then_it_is_still_click_through(
    load_fixture: LoadFixture,
) -> None:
    """The click event was lost; the `_rec_id` on the line proves the click-through."""
    impression = shown("v-rec", timedelta(hours=5), SHUFFLE, NANO, rec_id="rec-A")
    other_rec_view = shown("v-other", timedelta(hours=1), rec_id="rec-B")

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), [impression, other_rec_view], DEFAULT))

    assert line.channel is Channel.CLICK_THROUGH
    assert line.credited == impression
    assert line.conversion_minutes == 300


def test_given_a_rec_id_with_an_impression_and_a_click_of_that_rec_when_attributed_then_the_click_is_credited(
    load_fixture: LoadFixture,
) -> None:
    earlier_click = click("c-rec", timedelta(hours=3), rec_id="rec-A")
    later_impression = shown("v-rec", timedelta(hours=1), rec_id="rec-A")

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), [later_impression, earlier_click], DEFAULT))
    assert line.credited == earlier_click


@pytest.mark.parametrize(
    ("case", "rec_touches"),
    [
        ("unknown", []),
        ("expired", [click("c-rec", timedelta(days=7) + MICROSECOND, rec_id="rec-A")]),
        ("other product", [click("c-rec", timedelta(hours=1), SHUFFLE, rec_id="rec-A")]),
        ("in the future", [click("c-rec", -timedelta(minutes=1), rec_id="rec-A")]),
    ],
)
def test_given_a_rec_id_that_cannot_be_honoured_when_a_click_exists_then_the_last_click_is_credited(
    load_fixture: LoadFixture, case: str, rec_touches: list[Touch]
) -> None:
    fallback = click("c-other", timedelta(days=2), rec_id="rec-B")
    view = shown("v-other", timedelta(hours=2), rec_id="rec-C")

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), [*rec_touches, fallback, view], DEFAULT))

    assert (line.channel, line.credited) == (Channel.CLICK_THROUGH, fallback), case


@pytest.mark.parametrize("rec_age", [None, timedelta(days=8)], ids=["unknown", "expired"])
def test_given_a_rec_id_that_cannot_be_honoured_and_no_click_when_viewed_then_it_is_view_through(
    load_fixture: LoadFixture, rec_age: timedelta | None
) -> None:
    view = shown("v-other", timedelta(days=2), rec_id="rec-C")
    touches = [view] if rec_age is None else [view, click("c-rec", rec_age, rec_id="rec-A")]

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), touches, Windows.of_days(7, 7)))

    assert (line.channel, line.credited) == (Channel.VIEW_THROUGH, view)


def test_given_a_rec_id_impression_outside_a_short_click_window_when_attributed_then_it_is_plain_view_through(
    load_fixture: LoadFixture,
) -> None:
    """Given click 1 day / view 7 days: the rec is honoured within the click window only."""
    impression = shown("v-rec", timedelta(days=2), rec_id="rec-A")

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), [impression], Windows.of_days(1, 7)))

    assert (line.channel, line.credited) == (Channel.VIEW_THROUGH, impression)


def test_given_touches_of_other_products_only_when_attributed_then_the_line_is_not_credited(
    load_fixture: LoadFixture,
) -> None:
    touches = [click("c1", timedelta(hours=1), TOUCH), shown("v1", timedelta(hours=2), SHUFFLE, CLASSIC)]

    result = attribute_order(sample_order(load_fixture), touches, DEFAULT)

    assert result.attributed == ()
    assert result.revenue == Decimal(0)


@pytest.mark.parametrize("kind", [TouchKind.CLICK, TouchKind.IMPRESSION])
def test_given_two_touches_at_the_same_instant_when_attributed_then_the_greater_event_id_wins_whatever_the_order(
    load_fixture: LoadFixture, kind: TouchKind
) -> None:
    first = _touch("event-a", kind, timedelta(hours=1), (NANO,), "rec-a")
    second = _touch("event-b", kind, timedelta(hours=1), (NANO,), "rec-b")
    order = sample_order(load_fixture)

    forwards = attribute_order(order, [first, second], DEFAULT)
    backwards = attribute_order(order, [second, first], DEFAULT)

    assert only(forwards).credited.event_id == "event-b"
    assert forwards == backwards
    assert only(forwards).event_ids == ("event-a", "event-b")


# --- Lines ----------------------------------------------------------------------------------------------------------


def test_given_the_same_product_on_three_lines_when_clicked_then_each_line_is_attributed_once_to_one_touch(
    load_fixture: LoadFixture,
) -> None:
    order = sample_order(load_fixture, lines=3)
    touches = [click("c1", timedelta(days=1)), click("c2", timedelta(hours=1)), shown("v1", timedelta(minutes=9))]

    result = attribute_order(order, touches, DEFAULT)

    assert [line.line.line_id for line in result.attributed] == ["466157049", "518995019", "703073504"]
    assert {line.credited.event_id for line in result.attributed} == {"c2"}
    assert all(line.event_ids == ("c1", "c2", "v1") for line in result.attributed)
    assert result.revenue == Decimal("587.00")  # 3 × 199.00 − 10.00 TENOFF
    assert result.missed == ()


def test_given_a_custom_line_and_a_zero_quantity_line_when_attributed_then_both_are_skipped(
    load_fixture: LoadFixture,
) -> None:
    payload = _payload(load_fixture, lines=3)
    payload["line_items"][1]["product_id"] = None  # custom line, e.g. gift wrapping
    payload["line_items"][2]["quantity"] = 0
    order = parse_order(payload)

    result = attribute_order(
        order, [shown("v1", timedelta(hours=1), SHUFFLE), click("c1", timedelta(hours=2))], DEFAULT
    )

    assert [line.line.line_id for line in result.attributed] == ["466157049"]
    assert result.missed == ()


def test_given_the_same_event_reached_through_visitor_and_customer_when_attributed_then_it_counts_once(
    load_fixture: LoadFixture,
) -> None:
    by_visitor = click("c1", timedelta(hours=1))
    by_customer = dataclasses.replace(by_visitor)
    view = shown("v1", timedelta(hours=2))

    result = attribute_order(sample_order(load_fixture, lines=3), [by_visitor, view, by_customer, view], DEFAULT)

    assert len(result.attributed) == 3
    assert len({line.line.line_id for line in result.attributed}) == 3
    assert all(line.event_ids == ("v1", "c1") for line in result.attributed)


def test_given_the_same_order_delivered_twice_when_attributed_then_the_results_are_identical(
    load_fixture: LoadFixture,
) -> None:
    touches = [click("c1", timedelta(hours=1)), shown("v1", timedelta(hours=2), NANO, SHUFFLE)]
    first = attribute_order(sample_order(load_fixture, lines=3), touches, DEFAULT)
    again = attribute_order(sample_order(load_fixture, lines=3), list(reversed(touches)), DEFAULT)
    assert first == again


# --- Revenue ----------------------------------------------------------------------------------------------------------


def _single_line_priced(
    load_fixture: LoadFixture, *, quantity: int, shop_price: str, presentment_price: str, discounts: list[str]
) -> Order:
    payload = _payload(load_fixture)
    payload["presentment_currency"] = "EUR"
    line = payload["line_items"][0]
    line["quantity"] = quantity
    line["price"] = presentment_price
    line["price_set"] = {
        "shop_money": {"amount": shop_price, "currency_code": "USD"},
        "presentment_money": {"amount": presentment_price, "currency_code": "EUR"},
    }
    line["discount_allocations"] = [
        {
            "amount": "999.99",  # presentment amount: must not be used
            "amount_set": {
                "shop_money": {"amount": amount, "currency_code": "USD"},
                "presentment_money": {"amount": "999.99", "currency_code": "EUR"},
            },
            "discount_application_index": 0,
        }
        for amount in discounts
    ]
    return parse_order(payload)


def test_given_three_at_1999_less_597_when_attributed_then_revenue_is_exactly_5400(load_fixture: LoadFixture) -> None:
    order = _single_line_priced(
        load_fixture, quantity=3, shop_price="19.99", presentment_price="18.40", discounts=["5.00", "0.97"]
    )

    result = attribute_order(order, [click("c1", timedelta(hours=1))], DEFAULT)

    assert only(result).revenue == Decimal("54.00")
    assert isinstance(result.revenue, Decimal)
    assert result.revenue == Decimal("54.00")
    assert str(result.revenue) == "54.00"


def test_given_a_presentment_currency_other_than_the_shop_currency_when_attributed_then_shop_money_counts(
    load_fixture: LoadFixture,
) -> None:
    order = _single_line_priced(
        load_fixture, quantity=2, shop_price="199.00", presentment_price="183.17", discounts=["3.34"]
    )

    result = attribute_order(order, [shown("v1", timedelta(days=1))], DEFAULT)

    assert order.currency == "USD"
    assert result.revenue == Decimal("394.66")
    assert result.revenue_by_channel(Channel.VIEW_THROUGH) == Decimal("394.66")


def test_given_discounts_above_the_line_total_when_attributed_then_revenue_is_zero_not_negative(
    load_fixture: LoadFixture,
) -> None:
    order = _single_line_priced(load_fixture, quantity=1, shop_price="5.00", presentment_price="5", discounts=["7.50"])

    result = attribute_order(order, [click("c1", timedelta(hours=1))], DEFAULT)

    assert only(result).revenue == Decimal(0)
    assert result.revenue == Decimal(0)


def test_given_click_and_view_lines_when_summed_by_channel_then_each_channel_has_its_lines(
    load_fixture: LoadFixture,
) -> None:
    payload = _payload(load_fixture, lines=3)
    payload["line_items"][1]["product_id"] = int(SHUFFLE)
    payload["line_items"][2]["product_id"] = int(CLASSIC)
    order = parse_order(payload)
    touches = [click("c1", timedelta(hours=1), NANO), shown("v1", timedelta(hours=2), SHUFFLE, TOUCH)]

    result = attribute_order(order, touches, DEFAULT)

    assert [(line.product_id, line.channel) for line in result.attributed] == [
        (NANO, Channel.CLICK_THROUGH),
        (SHUFFLE, Channel.VIEW_THROUGH),
    ]
    assert result.revenue_by_channel(Channel.CLICK_THROUGH) == Decimal("195.66")
    assert result.revenue_by_channel(Channel.VIEW_THROUGH) == Decimal("195.67")
    assert result.revenue == Decimal("391.33")
    # The classic was bought without being recommended, while other products were (clicked ones included).
    assert [(missed.line.product_id, missed.shown_instead) for missed in result.missed] == [
        (CLASSIC, (NANO, SHUFFLE, TOUCH))
    ]


# --- Conversion time ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "minutes"),
    [
        (timedelta(seconds=59, microseconds=999_999), 0),
        (timedelta(minutes=1), 1),
        (timedelta(minutes=90) - MICROSECOND, 89),
        (timedelta(minutes=90), 90),
        (timedelta(days=6, hours=23, minutes=59, seconds=59, microseconds=999_999), 10079),
    ],
)
def test_given_a_click_some_time_before_when_attributed_then_conversion_minutes_are_floored(
    load_fixture: LoadFixture, before: timedelta, minutes: int
) -> None:
    line = only(attribute_order(sample_order(load_fixture), [click("c1", before)], DEFAULT))
    assert line.conversion_minutes == minutes


# --- Event ids ------------------------------------------------------------------------------------------------------


def test_given_events_in_and_out_of_the_windows_when_attributed_then_event_ids_are_the_products_in_window_oldest_first(
    load_fixture: LoadFixture,
) -> None:
    touches = [
        shown("v-late", timedelta(minutes=10), SHUFFLE, NANO),
        click("c-mid", timedelta(days=1)),
        shown("v-tie-b", timedelta(days=2)),
        shown("v-tie-a", timedelta(days=2)),
        shown("v-other-product", timedelta(days=1, hours=1), SHUFFLE),
        click("c-too-old", timedelta(days=3)),  # outside the 2-day click window
        shown("v-too-old", timedelta(days=6)),  # outside the 5-day view window
        shown("v-expired", timedelta(days=5) + MICROSECOND),
        click("c-future", -timedelta(seconds=1)),
    ]

    line = only(attribute_order(sample_order(load_fixture), touches, Windows.of_days(2, 5)))

    assert line.credited.event_id == "c-mid"
    assert line.event_ids == ("v-tie-a", "v-tie-b", "c-mid", "v-late")


# --- Missed opportunities -------------------------------------------------------------------------------------------


def test_given_other_products_shown_but_not_the_bought_one_when_attributed_then_a_missed_opportunity_lists_them(
    load_fixture: LoadFixture,
) -> None:
    touches = [
        shown("v-old", timedelta(days=3), CLASSIC, TOUCH),
        shown("v-new", timedelta(hours=1), SHUFFLE, CLASSIC),
        shown("v-expired", timedelta(days=8), "3333333333"),
        click("c-other", timedelta(minutes=30), TOUCH),
    ]
    order = sample_order(load_fixture)

    result = attribute_order(order, touches, DEFAULT)

    assert result.attributed == ()
    assert len(result.missed) == 1
    missed = result.missed[0]
    assert missed.line == order.lines[0]
    # Most recent first (the click included), each product once, nothing outside the windows.
    assert missed.shown_instead == (TOUCH, SHUFFLE, CLASSIC)
    assert NANO not in missed.shown_instead


def test_given_nothing_shown_when_the_order_is_attributed_then_there_is_no_missed_opportunity(
    load_fixture: LoadFixture,
) -> None:
    result = attribute_order(sample_order(load_fixture, lines=3), [], DEFAULT)
    assert result == OrderAttribution(order=result.order, attributed=(), missed=())


def test_given_an_impression_with_the_bought_product_and_others_when_attributed_then_the_line_is_not_missed(
    load_fixture: LoadFixture,
) -> None:
    payload = _payload(load_fixture, lines=2)
    payload["line_items"][1]["product_id"] = int(SHUFFLE)
    order = parse_order(payload)

    result = attribute_order(order, [shown("v1", timedelta(hours=1), CLASSIC, NANO, TOUCH)], DEFAULT)

    assert [line.product_id for line in result.attributed] == [NANO]
    assert [(missed.line.product_id, missed.shown_instead) for missed in result.missed] == [
        (SHUFFLE, (CLASSIC, NANO, TOUCH))
    ]


def test_given_more_products_shown_than_the_limit_when_missed_then_shown_instead_is_cut_to_the_most_recent(
    load_fixture: LoadFixture,
) -> None:
    touches = [shown(f"v{i:03}", timedelta(minutes=200 - i), str(10_000 + i)) for i in range(MAX_SHOWN_INSTEAD + 10)]

    missed = attribute_order(sample_order(load_fixture), touches, DEFAULT).missed[0]

    assert len(missed.shown_instead) == MAX_SHOWN_INSTEAD
    assert missed.shown_instead[0] == str(10_000 + MAX_SHOWN_INSTEAD + 9)


# --- Test orders --------------------------------------------------------------------------------------------------


def test_given_a_test_order_when_attributed_by_default_then_it_is_skipped(load_fixture: LoadFixture) -> None:
    order = sample_order(load_fixture, test=True)

    result = attribute_order(order, [click("c1", timedelta(hours=1)), shown("v1", timedelta(hours=1), TOUCH)], DEFAULT)

    assert result.skipped_as_test is True
    assert result.attributed == ()
    assert result.missed == ()
    assert result.revenue == Decimal(0)


def test_given_a_test_order_when_the_shop_attributes_test_orders_then_it_is_attributed(
    load_fixture: LoadFixture,
) -> None:
    order = sample_order(load_fixture, test=True)

    result = attribute_order(order, [click("c1", timedelta(hours=1))], DEFAULT, attribute_test_orders=True)

    assert result.skipped_as_test is False
    assert only(result).credited.event_id == "c1"
    assert result.revenue == Decimal("195.66")


def test_given_a_real_order_when_the_shop_attributes_test_orders_then_nothing_changes(
    load_fixture: LoadFixture,
) -> None:
    order = sample_order(load_fixture)
    touches = [click("c1", timedelta(hours=1))]
    assert attribute_order(order, touches, DEFAULT, attribute_test_orders=True) == attribute_order(
        order, touches, DEFAULT
    )


# --- Known defect -------------------------------------------------------------------------------------------------


def test_given_a_rec_id_impression_credited_beyond_the_view_window_when_attributed_then_it_is_in_the_event_ids(
    load_fixture: LoadFixture,
) -> None:
    impression = shown("v-rec", timedelta(days=3), NANO, SHUFFLE, rec_id="rec-A")

    line = only(attribute_order(sample_order(load_fixture, rec_id="rec-A"), [impression], Windows.of_days(7, 1)))

    assert (line.channel, line.credited) == (Channel.CLICK_THROUGH, impression)
    assert line.credited.event_id in line.event_ids


# --- Invariants (hypothesis) --------------------------------------------------------------------------------------

PRODUCTS = (NANO, TOUCH, SHUFFLE, CLASSIC)
RECS = ("rec-1", "rec-2", "rec-3")
BASE = OrderLine(line_id="0", product_id=NANO, quantity=1, unit_price=Decimal(0), discount=Decimal(0), rec_id=None)
_BASE_ORDER = Order(
    order_id="450789469",
    created_at=CREATED,
    currency="USD",
    test=False,
    customer_id="207119551",
    visitor_id="visitor-1",
    lines=(),
)

cents = st.integers(min_value=0, max_value=50_000).map(lambda value: Decimal(value).scaleb(-2))


def _line(
    index: int, product: str | None, quantity: int, price: Decimal, discount: Decimal, rec: str | None
) -> OrderLine:
    return dataclasses.replace(
        BASE,
        line_id=str(1000 + index),
        product_id=product,
        quantity=quantity,
        unit_price=price,
        discount=discount,
        rec_id=rec,
    )


order_lines = st.lists(
    st.builds(
        _line,
        st.integers(0, 10**6),
        st.one_of(st.none(), st.sampled_from(PRODUCTS)),
        st.integers(0, 4),
        cents,
        cents,
        st.one_of(st.none(), st.sampled_from(RECS)),
    ),
    max_size=6,
    unique_by=lambda line: line.line_id,
)
touch_lists = st.lists(
    st.builds(
        Touch,
        event_id=st.text("0123456789abcdef", min_size=1, max_size=4),
        kind=st.sampled_from(list(TouchKind)),
        at=st.integers(min_value=-2 * 24 * 60, max_value=35 * 24 * 60).map(lambda m: CREATED - timedelta(minutes=m)),
        product_ids=st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3, unique=True).map(tuple),
        rec_id=st.one_of(st.none(), st.sampled_from(RECS)),
    ),
    max_size=12,
    unique_by=lambda touch: touch.event_id,
)
windows = st.builds(Windows.of_days, st.integers(1, 30), st.integers(1, 30))


def _in(touch: Touch, window: timedelta) -> bool:
    return CREATED - window <= touch.at <= CREATED


def _expected_credit(line: OrderLine, touches: list[Touch], windows: Windows) -> tuple[Channel, str] | None:
    """An independent reading of DESIGN.md §2, for comparison."""

    def latest(candidates: list[Touch]) -> Touch | None:
        return max(candidates, key=lambda t: (t.at, t.event_id)) if candidates else None

    mine = [t for t in touches if line.product_id in t.product_ids]
    if line.rec_id is not None:
        same_rec = [t for t in mine if t.rec_id == line.rec_id and _in(t, windows.click)]
        best = latest([t for t in same_rec if t.kind is not TouchKind.IMPRESSION]) or latest(same_rec)
        if best is not None:
            return Channel.CLICK_THROUGH, best.event_id
    best = latest([t for t in mine if t.kind is not TouchKind.IMPRESSION and _in(t, windows.click)])
    if best is not None:
        return Channel.CLICK_THROUGH, best.event_id
    best = latest([t for t in mine if t.kind is TouchKind.IMPRESSION and _in(t, windows.view)])
    if best is not None:
        return Channel.VIEW_THROUGH, best.event_id
    return None


@settings(max_examples=150, deadline=None)
@given(lines=order_lines, touches=touch_lists, windows=windows, data=st.data())
def test_given_any_order_and_touches_when_attributed_then_the_rules_hold(
    lines: list[OrderLine], touches: list[Touch], windows: Windows, data: st.DataObject
) -> None:
    order = dataclasses.replace(_BASE_ORDER, lines=tuple(lines))
    result = attribute_order(order, touches, windows)

    attributed_ids = [line.line.line_id for line in result.attributed]
    missed_ids = [missed.line.line_id for missed in result.missed]
    # No line appears twice, nor both attributed and missed; skipped lines appear nowhere.
    assert len(set(attributed_ids + missed_ids)) == len(attributed_ids) + len(missed_ids)
    for line in lines:
        if line.product_id is None or line.quantity == 0:
            assert line.line_id not in attributed_ids + missed_ids

    for attributed in result.attributed:
        credited = attributed.credited
        assert attributed.product_id in credited.product_ids
        assert credited.at <= CREATED
        if attributed.channel is Channel.VIEW_THROUGH:
            assert credited.kind is TouchKind.IMPRESSION
            assert _in(credited, windows.view)
        else:
            assert _in(credited, windows.click)
            assert credited.kind.is_click or credited.rec_id == attributed.line.rec_id
        assert attributed.conversion_minutes == (CREATED - credited.at) // timedelta(minutes=1)
        assert (attributed.channel, credited.event_id) == _expected_credit(attributed.line, touches, windows)
        by_id = {t.event_id: t for t in touches}
        related = [by_id[event_id] for event_id in attributed.event_ids]
        assert related == sorted(related, key=lambda t: (t.at, t.event_id))
        assert all(attributed.product_id in t.product_ids for t in related)

    for line in lines:
        if line.product_id is not None and line.quantity > 0 and line.line_id not in attributed_ids:
            assert _expected_credit(line, touches, windows) is None

    # Revenue: exact, never negative, never more than the lines are worth.
    assert Decimal(0) <= result.revenue <= sum((line.revenue for line in lines), Decimal(0))
    assert result.revenue == result.revenue_by_channel(Channel.CLICK_THROUGH) + result.revenue_by_channel(
        Channel.VIEW_THROUGH
    )

    # The result does not depend on the order the touches arrive in, nor on duplicates from several keys.
    shuffled = data.draw(st.permutations(touches))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(touches), max_size=4)) if touches else shuffled
    assert attribute_order(order, duplicated, windows) == result


# --- Pairs: what a product page's widget sold ---------------------------------------------------------------------


def test_given_lines_credited_to_product_page_widgets_then_each_page_and_product_is_a_purchase_once() -> None:
    """Three lines: two of the Nano credited to the widget of the Touch's page (one by its click, one by its
    impression), the Shuffle to the widget of the Classic's page; the Classic itself to a cart widget (no page)."""
    order = Order(
        "1001",
        CREATED,
        "USD",
        False,
        None,
        "visitor-1",
        (
            OrderLine("1", NANO, 1, Decimal(199), Decimal(0), None),
            OrderLine("2", NANO, 2, Decimal(199), Decimal(0), None),
            OrderLine("3", SHUFFLE, 1, Decimal(49), Decimal(0), None),
            OrderLine("4", CLASSIC, 1, Decimal(249), Decimal(0), None),
        ),
    )
    touches = [
        dataclasses.replace(click("c1", timedelta(hours=1), NANO), page=TOUCH),
        dataclasses.replace(shown("i1", timedelta(hours=2), NANO, SHUFFLE), page=CLASSIC),
        shown("i2", timedelta(hours=3), CLASSIC),
    ]

    result = attribute_order(order, touches, DEFAULT)

    assert [(line.product_id, line.credited.page) for line in result.attributed] == [
        (NANO, TOUCH),
        (NANO, TOUCH),
        (SHUFFLE, CLASSIC),
        (CLASSIC, None),
    ]
    assert page_purchases(result.attributed) == {CLASSIC: [SHUFFLE], TOUCH: [NANO]}
    assert page_purchases([]) == {}
