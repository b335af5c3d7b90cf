"""Storefront tracking: event batches validated at the edge, and what they add to counters and profiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.tracking import (
    MAX_EVENTS_PER_REQUEST,
    MAX_PRODUCTS_PER_IMPRESSION,
    ClickIn,
    EventBatchError,
    ImpressionIn,
    ProductCounts,
    ProfileChange,
    TrackedEvent,
    ViewIn,
    counter_increments,
    parse_event_batch,
    profile_changes,
    tracked_events,
)

NANO = "632910392"
TOUCH = "921728736"
AT = datetime(2025, 4, 2, 16, 30, tzinfo=UTC)


def impression(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "impression",
        "rec_id": "rec-1",
        "visitor_id": "visitor-1",
        "placement": "product",
        "source_product_id": NANO,
        "products": [{"product_id": TOUCH, "position": 1}, {"product_id": NANO, "position": 2}],
    }
    return event | overrides


def click(kind: str = "click", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "rec_id": "rec-1",
        "visitor_id": "visitor-1",
        "product_id": TOUCH,
        "position": 1,
    }
    return event | overrides


def view(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "view", "visitor_id": "visitor-1", "product_id": NANO}
    return event | overrides


def error_of(body: Any) -> EventBatchError:
    with pytest.raises(EventBatchError) as exc_info:
        parse_event_batch(body)
    return exc_info.value


# --- Valid events -------------------------------------------------------------------------------------------------


def test_given_an_impression_when_parsed_then_its_products_and_positions_are_kept() -> None:
    batch = parse_event_batch({"events": [impression()]})

    [event] = batch.events
    assert isinstance(event, ImpressionIn)
    assert (event.rec_id, event.visitor_id, event.placement, event.source_product_id) == (
        "rec-1",
        "visitor-1",
        "product",
        NANO,
    )
    assert [(shown.product_id, shown.position) for shown in event.products] == [(TOUCH, 1), (NANO, 2)]


@pytest.mark.parametrize("kind", ["click", "add_to_cart"])
def test_given_a_click_or_add_to_cart_when_parsed_then_it_is_a_click_event(kind: str) -> None:
    [event] = parse_event_batch({"events": [click(kind)]}).events
    assert isinstance(event, ClickIn)
    assert (event.type, event.product_id, event.position) == (kind, TOUCH, 1)


def test_given_a_view_when_parsed_then_it_is_a_view_event() -> None:
    [event] = parse_event_batch({"events": [view()]}).events
    assert isinstance(event, ViewIn)
    assert event.product_id == NANO


@pytest.mark.parametrize("placement", ["product", "cart", "home"])
def test_given_each_placement_when_parsed_then_it_is_accepted(placement: str) -> None:
    [event] = parse_event_batch({"events": [impression(placement=placement, source_product_id=None)]}).events
    assert isinstance(event, ImpressionIn)
    assert event.placement == placement
    assert event.source_product_id is None


def test_given_a_mixed_batch_when_parsed_then_the_events_keep_their_order_and_types() -> None:
    batch = parse_event_batch({"events": [view(), impression(), click(), click("add_to_cart")]})
    assert [event.type for event in batch.events] == ["view", "impression", "click", "add_to_cart"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gid://shopify/Product/632910392", NANO),
        (632910392, NANO),
        ("  632910392 ", NANO),
        ("0632910392", NANO),
    ],
)
def test_given_product_ids_in_any_shopify_form_when_parsed_then_they_are_normalised(raw: object, expected: str) -> None:
    batch = parse_event_batch(
        {
            "events": [
                view(product_id=raw),
                click(product_id=raw),
                impression(source_product_id=raw, products=[{"product_id": raw, "position": 1}]),
            ]
        }
    )
    view_event, click_event, impression_event = batch.events
    assert isinstance(view_event, ViewIn)
    assert isinstance(click_event, ClickIn)
    assert isinstance(impression_event, ImpressionIn)
    assert view_event.product_id == click_event.product_id == impression_event.source_product_id == expected
    assert impression_event.products[0].product_id == expected


def test_given_extra_unknown_fields_on_events_when_parsed_then_they_are_ignored() -> None:
    batch = parse_event_batch(
        {
            "events": [
                view(referrer="https://example.com", ts=1),
                impression(products=[{"product_id": NANO, "position": 1, "price": "9.99"}], widget="v2"),
            ]
        }
    )
    assert len(batch.events) == 2
    assert "referrer" not in batch.events[0].model_dump()


def test_given_exactly_the_maximum_number_of_events_when_parsed_then_all_are_taken() -> None:
    batch = parse_event_batch({"events": [view()] * MAX_EVENTS_PER_REQUEST})
    assert len(batch.events) == MAX_EVENTS_PER_REQUEST


@pytest.mark.parametrize("position", [1, 100])
def test_given_a_position_at_either_bound_when_parsed_then_it_is_accepted(position: int) -> None:
    parse_event_batch({"events": [click(position=position)]})


def test_given_an_impression_with_the_maximum_products_when_parsed_then_it_is_accepted() -> None:
    products = [{"product_id": 1000 + i, "position": i + 1} for i in range(MAX_PRODUCTS_PER_IMPRESSION)]
    [event] = parse_event_batch({"events": [impression(products=products)]}).events
    assert isinstance(event, ImpressionIn)
    assert len(event.products) == MAX_PRODUCTS_PER_IMPRESSION


@given(st.from_regex(r"[A-Za-z0-9_.:\-]{1,128}", fullmatch=True))
def test_given_any_visitor_id_of_allowed_characters_when_parsed_then_it_is_kept(visitor_id: str) -> None:
    [event] = parse_event_batch({"events": [view(visitor_id=visitor_id)]}).events
    assert event.visitor_id == visitor_id


# --- Refused batches ----------------------------------------------------------------------------------------------


def test_given_an_unknown_event_type_when_parsed_then_the_error_names_the_event_and_type() -> None:
    error = error_of({"events": [view(), view(type="purchase")]})
    assert error.field == "events.1"
    assert error.message == "unknown event type 'purchase'"


def test_given_an_event_without_type_when_parsed_then_the_error_says_it_needs_one() -> None:
    event = view()
    del event["type"]
    error = error_of({"events": [event]})
    assert (error.field, error.message) == ("events.0", "an event needs a 'type'")


def test_given_more_than_the_maximum_events_when_parsed_then_the_batch_is_refused_before_validation() -> None:
    error = error_of({"events": [{"not": "even an event"}] * (MAX_EVENTS_PER_REQUEST + 1)})
    assert error.field == "events"
    assert error.message == f"at most {MAX_EVENTS_PER_REQUEST} events per request, got {MAX_EVENTS_PER_REQUEST + 1}"


def test_given_no_events_when_parsed_then_the_batch_is_refused() -> None:
    error = error_of({"events": []})
    assert error.field == "events"
    assert "at least 1" in error.message


@pytest.mark.parametrize("body", [None, [], "events", 1, [view()]])
def test_given_a_body_that_is_not_an_object_when_parsed_then_the_body_is_named(body: Any) -> None:
    error = error_of(body)
    assert error.field == "body"
    assert "JSON object" in error.message


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (click(position=0), "events.0.click.position"),
        (click(position=101), "events.0.click.position"),
        (click(position=-1), "events.0.click.position"),
        (impression(products=[{"product_id": NANO, "position": 0}]), "events.0.impression.products.0.position"),
        (click(visitor_id="visitor 1"), "events.0.click.visitor_id"),
        (click(visitor_id="visitor/1"), "events.0.click.visitor_id"),
        (click(visitor_id="visitor-1\n"), "events.0.click.visitor_id"),
        (click(visitor_id="visitör"), "events.0.click.visitor_id"),
        (click(visitor_id=""), "events.0.click.visitor_id"),
        (click(visitor_id="v" * 129), "events.0.click.visitor_id"),
        (click(rec_id="rec;drop"), "events.0.click.rec_id"),
        (view(product_id="gid://shopify/ProductVariant/1"), "events.0.view.product_id"),
        (view(product_id="abc"), "events.0.view.product_id"),
        (view(product_id=-5), "events.0.view.product_id"),
        (view(product_id=True), "events.0.view.product_id"),
        (view(product_id=None), "events.0.view.product_id"),
        (impression(products=[]), "events.0.impression.products"),
        (
            impression(products=[{"product_id": i + 1, "position": 1} for i in range(MAX_PRODUCTS_PER_IMPRESSION + 1)]),
            "events.0.impression.products",
        ),
        (impression(placement="checkout"), "events.0.impression.placement"),
        (impression(rec_id=None), "events.0.impression.rec_id"),
        (view(visitor_id=None), "events.0.view.visitor_id"),
    ],
)
def test_given_an_invalid_field_when_parsed_then_the_error_names_its_path(event: dict[str, Any], field: str) -> None:
    assert error_of({"events": [event]}).field == field


def test_given_an_unknown_top_level_key_when_parsed_then_it_is_refused() -> None:
    assert error_of({"events": [view()], "shop": "demo.myshopify.com"}).field == "shop"


def test_given_events_that_are_not_a_list_when_parsed_then_events_is_named() -> None:
    assert error_of({"events": {"0": view()}}).field == "events"


def test_given_an_error_when_raised_then_it_is_a_value_error_with_field_and_message() -> None:
    error = error_of({"events": []})
    assert isinstance(error, ValueError)
    assert str(error) == f"{error.field}: {error.message}"


# --- Tracked events ------------------------------------------------------------------------------------------------


def test_given_a_batch_when_tracked_then_each_event_gets_the_server_time_a_fresh_id_and_the_signed_customer() -> None:
    batch = parse_event_batch({"events": [impression(), click(), click("add_to_cart"), view()]})

    tracked = tracked_events(batch, at=AT, customer_id="207119551")

    assert [event.type for event in tracked] == ["impression", "click", "add_to_cart", "view"]
    assert len({event.event_id for event in tracked}) == 4
    assert all(event.at == AT and event.customer_id == "207119551" for event in tracked)
    shown, clicked, carted, viewed = tracked
    assert (shown.product_ids, shown.positions, shown.placement, shown.source_product_id) == (
        (TOUCH, NANO),
        (1, 2),
        "product",
        NANO,
    )
    assert (clicked.product_ids, clicked.positions, clicked.rec_id, clicked.placement) == (
        (TOUCH,),
        (1,),
        "rec-1",
        None,
    )
    assert carted.type == "add_to_cart"
    assert (viewed.product_ids, viewed.positions, viewed.rec_id) == ((NANO,), (), None)
    assert [event.is_recommendation_event for event in tracked] == [True, True, True, False]


def _tracked(kind: str, products: tuple[str, ...], *, at: datetime = AT, visitor: str = "visitor-1") -> TrackedEvent:
    return TrackedEvent(
        event_id=f"{kind}-{at.isoformat()}-{products}",
        type=kind,
        at=at,
        visitor_id=visitor,
        customer_id=None,
        rec_id=None if kind == "view" else "rec-1",
        placement=None,
        source_product_id=None,
        product_ids=products,
        positions=tuple(range(1, len(products) + 1)),
    )


def test_given_events_on_two_days_when_counted_then_increments_merge_per_day_and_product() -> None:
    next_day = AT + timedelta(hours=8)  # 2025-04-03 00:30 UTC
    events = [
        _tracked("impression", (NANO, TOUCH)),
        _tracked("impression", (NANO,), at=AT + timedelta(minutes=1)),
        _tracked("click", (NANO,)),
        _tracked("add_to_cart", (NANO,)),
        _tracked("view", (TOUCH,)),  # not a recommendation event: counts nothing
        _tracked("impression", (NANO,), at=next_day),
    ]

    increments = counter_increments(events)

    assert increments == {
        ("2025-04-02", NANO): ProductCounts(impressions=2, clicks=1, add_to_carts=1),
        ("2025-04-02", TOUCH): ProductCounts(impressions=1),
        ("2025-04-03", NANO): ProductCounts(impressions=1),
    }
    assert increments[("2025-04-02", TOUCH)].as_increments() == {"impressions": 1}
    assert increments[("2025-04-02", NANO)].as_increments() == {"impressions": 2, "clicks": 1, "add_to_carts": 1}


def test_given_only_views_when_counted_then_there_are_no_increments() -> None:
    assert counter_increments([_tracked("view", (NANO,))]) == {}
    assert counter_increments([]) == {}


def test_given_views_clicks_and_carts_when_profiled_then_each_visitor_gets_viewed_and_carted_oldest_first() -> None:
    events = [
        _tracked("view", (NANO,)),
        _tracked("impression", (TOUCH, NANO)),  # shown is neither viewed nor carted
        _tracked("click", (TOUCH,)),
        _tracked("view", (TOUCH,)),
        _tracked("add_to_cart", (NANO,)),
        _tracked("view", (NANO,), visitor="visitor-2"),
    ]

    changes = profile_changes(events)

    assert changes == {
        "visitor-1": ProfileChange(viewed=[NANO, TOUCH], carted=[TOUCH, NANO], purchased=[]),
        "visitor-2": ProfileChange(viewed=[NANO]),
    }


def test_given_only_impressions_when_profiled_then_no_visitor_changes() -> None:
    assert profile_changes([_tracked("impression", (NANO,))]) == {}
