"""Storefront tracking: event batches validated at the edge, and what they add to counters and profiles."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.profiles import VIEWS_PER_DAY, views_within_cap
from reclift.recids import Placement, RecIds
from reclift.tracking import (
    MAX_COUNTED_PER_REQUEST,
    MAX_EVENTS_PER_REQUEST,
    MAX_PRODUCTS_PER_IMPRESSION,
    ClickIn,
    EventBatchError,
    ImpressionIn,
    PairCounts,
    ProductCounts,
    ProfileChange,
    TrackedEvent,
    ViewIn,
    counter_increments,
    counting_increments,
    exposure,
    parse_event_batch,
    profile_changes,
    prove_events,
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


SHOP = "shop.myshopify.com"
REC_IDS = RecIds.of_secrets(["hush"])


def test_given_a_batch_citing_an_issued_rec_id_when_proven_then_each_product_event_carries_the_verified_rec() -> None:
    rec_id = REC_IDS.issue(
        shop=SHOP, visitor_id="visitor-1", arm="holdout", placement="product", products=[TOUCH, NANO], now=AT
    )
    fields: dict[str, Any] = {"rec_id": rec_id, "rec_products": [TOUCH, NANO]}
    batch = parse_event_batch(
        {"events": [impression(**fields), click(**fields), click("add_to_cart", **fields), view()]}
    )

    proof = prove_events(batch, shop=SHOP, customer_id="207119551", at=AT, rec_ids=REC_IDS)

    assert [(event.type, event.product_ids, event.positions) for event in proof.events] == [
        ("impression", (TOUCH,), (1,)),
        ("impression", (NANO,), (2,)),
        ("click", (TOUCH,), (1,)),
        ("add_to_cart", (TOUCH,), (1,)),
    ]
    assert proof.sources == [0, 0, 1, 2]
    assert all(e.at == AT and e.customer_id == "207119551" and e.rec_id == rec_id for e in proof.events)
    assert {(e.arm, e.placement, e.issued_at) for e in proof.events} == {("holdout", "product", AT)}
    assert len({event.event_id for event in proof.events}) == 4
    [viewed] = proof.views
    assert (viewed.product_ids, viewed.rec_id, viewed.is_recommendation_event) == ((NANO,), None, False)


def test_given_events_that_prove_nothing_when_proven_then_none_is_kept() -> None:
    rec_id = REC_IDS.issue(
        shop=SHOP, visitor_id="visitor-1", arm="learning", placement="product", products=[TOUCH], now=AT
    )
    other_shop = REC_IDS.issue(
        shop="other.myshopify.com",
        visitor_id="visitor-1",
        arm="learning",
        placement="product",
        products=[TOUCH],
        now=AT,
    )
    forged = "1hp." + rec_id.split(".", 1)[1]  # the arm's letter changed: the tag no longer matches
    events = [
        impression(rec_id="h-00000000000000000000000", products=[{"product_id": TOUCH, "position": 1}]),
        impression(rec_id=forged, rec_products=[TOUCH]),
        impression(rec_id=other_shop, rec_products=[TOUCH]),
        impression(rec_id=rec_id, rec_products=[TOUCH], visitor_id="visitor-2"),  # issued to visitor-1
        impression(rec_id=rec_id, rec_products=[TOUCH, NANO]),  # not the products it was issued with
        impression(rec_id=rec_id),  # without the response's event fields
        click(rec_id=rec_id, rec_products=[TOUCH], product_id=NANO),  # a product the response did not list
    ]

    proof = prove_events(parse_event_batch({"events": events}), shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS)

    assert proof.events == []
    assert proof.received == len(events)


def test_given_a_rec_id_older_than_a_day_when_proven_then_it_is_expired() -> None:
    rec_id = REC_IDS.issue(
        shop=SHOP, visitor_id="visitor-1", arm="learning", placement="product", products=[TOUCH], now=AT
    )
    batch = parse_event_batch({"events": [click(rec_id=rec_id, rec_products=[TOUCH])]})

    def proven_at(moment: datetime) -> int:
        return len(prove_events(batch, shop=SHOP, customer_id=None, at=moment, rec_ids=REC_IDS).events)

    assert proven_at(AT + timedelta(hours=24)) == 1
    assert proven_at(AT + timedelta(hours=24, seconds=1)) == 0
    assert proven_at(AT - timedelta(minutes=5)) == 0  # issued in the future


def test_given_the_same_product_listed_many_times_when_proven_then_it_counts_once_per_type() -> None:
    """The reproduced attack: one impression listing one product twenty times, fifty times over."""
    rec_id = REC_IDS.issue(
        shop=SHOP, visitor_id="visitor-1", arm="learning", placement="product", products=[TOUCH], now=AT
    )
    repeated = [{"product_id": TOUCH, "position": 1}] * 20
    batch = parse_event_batch({"events": [impression(rec_id=rec_id, rec_products=[TOUCH], products=repeated)] * 50})

    proof = prove_events(batch, shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS)

    assert [(event.type, event.product_ids) for event in proof.events] == [("impression", (TOUCH,))]


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
        # NANO first in both impressions, TOUCH second: exposure 1/√2, to the stored 3 decimals
        ("2025-04-02", NANO): ProductCounts(impressions=2, clicks=1, add_to_carts=1, exposure=2.0),
        ("2025-04-02", TOUCH): ProductCounts(impressions=1, exposure=0.707),
        ("2025-04-03", NANO): ProductCounts(impressions=1, exposure=1.0),
    }
    assert increments[("2025-04-02", TOUCH)].as_increments() == {"impressions": 1, "exposure": 0.707}
    assert increments[("2025-04-02", NANO)].as_increments() == {
        "impressions": 2,
        "clicks": 1,
        "add_to_carts": 1,
        "exposure": 2.0,
    }


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


def test_given_more_proven_product_events_than_a_request_may_write_then_the_first_ones_are_kept() -> None:
    products = [str(1000 + n) for n in range(5)]
    shown = [{"product_id": p, "position": i + 1} for i, p in enumerate(products)]
    events = [
        impression(rec_id=rec_id, rec_products=products, products=shown, source_product_id=None)
        for rec_id in (
            REC_IDS.issue(
                shop=SHOP, visitor_id="visitor-1", arm="learning", placement="home", products=products, now=AT
            )
            for _ in range(50)  # 50 responses of 5 products: 250 product impressions
        )
    ]

    proof = prove_events(parse_event_batch({"events": events}), shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS)

    assert len(proof.events) == MAX_COUNTED_PER_REQUEST == 200
    assert proof.sources[-1] == 39  # the first 40 events' products


def test_given_views_over_a_day_when_capped_then_a_profile_takes_the_first_fifty_and_a_new_day_starts_again() -> None:
    viewed = [str(n) for n in range(30)]

    kept, counted = views_within_cap(viewed, day="2026-12-02", counted_day=None, counted=0)
    assert (kept, counted) == (viewed, 30)
    kept, counted = views_within_cap(viewed, day="2026-12-02", counted_day="2026-12-02", counted=counted)
    assert (kept, counted) == (viewed[:20], VIEWS_PER_DAY)
    assert views_within_cap(viewed, day="2026-12-02", counted_day="2026-12-02", counted=counted) == ([], 50)
    assert views_within_cap(viewed, day="2026-12-03", counted_day="2026-12-02", counted=counted) == (viewed, 30)


PAGE, FORGED_PAGE = "7000000000001", "7000000000002"


def _paged_rec(placement: Placement = "product", page: str | None = PAGE) -> dict[str, Any]:
    rec_id = REC_IDS.issue(
        shop=SHOP,
        visitor_id="visitor-1",
        arm="learning",
        placement=placement,
        products=[TOUCH, NANO],
        now=AT,
        page=page,
    )
    return {"rec_id": rec_id, "rec_products": [TOUCH, NANO]}


def test_given_a_forged_source_product_when_proven_then_the_events_carry_the_page_their_rec_id_signs() -> None:
    """The attack: a widget served on page A sends its impression as if it were on page B."""
    rec = _paged_rec()
    batch = parse_event_batch(
        {"events": [impression(source_product_id=FORGED_PAGE, **rec), click(source_product_id=FORGED_PAGE, **rec)]}
    )

    proof = prove_events(batch, shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS)

    assert [(e.type, e.source_product_id, e.page) for e in proof.events] == [
        ("impression", PAGE, PAGE),
        ("impression", PAGE, PAGE),
        ("click", PAGE, PAGE),
    ]


def test_given_a_rec_id_edited_to_name_another_page_when_proven_then_nothing_is_kept() -> None:
    rec = _paged_rec()
    edited = rec["rec_id"].replace(f".{PAGE}.", f".{FORGED_PAGE}.", 1)
    batch = parse_event_batch({"events": [impression(rec_id=edited, rec_products=[TOUCH, NANO])]})

    assert prove_events(batch, shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS).events == []


def test_given_a_rec_id_without_a_page_when_proven_then_the_browsers_source_product_is_not_taken() -> None:
    for rec in (_paged_rec(page=None), _paged_rec("cart", page=None)):
        batch = parse_event_batch({"events": [impression(source_product_id=FORGED_PAGE, **rec)]})
        proof = prove_events(batch, shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS)
        assert {(e.source_product_id, e.page) for e in proof.events} == {(None, None)}


def test_given_paged_and_unpaged_events_when_counted_then_page_impressions_and_clicks_go_to_their_page_item_alone() -> (
    None
):
    """A product page's impressions and clicks are counted per (day, page) and candidate, not in the candidates'
    counters; add-to-carts and the impressions and clicks of ids without a page stay on the product counters."""
    paged = _paged_rec()["rec_id"]
    unpaged = _paged_rec(page=None)["rec_id"]
    next_day = AT + timedelta(hours=8)
    events = [
        replace(_tracked("impression", (NANO,)), rec_id=paged),
        replace(_tracked("impression", (TOUCH,)), rec_id=paged),
        replace(_tracked("impression", (TOUCH,), visitor="visitor-2"), rec_id=paged),
        replace(_tracked("impression", (NANO,), at=next_day), rec_id=paged),
        replace(_tracked("click", (TOUCH,)), rec_id=paged),
        replace(_tracked("add_to_cart", (TOUCH,)), rec_id=paged),
        replace(_tracked("impression", (NANO,)), rec_id=unpaged),
        replace(_tracked("click", (NANO,)), rec_id=unpaged),
        _tracked("view", (NANO,)),
    ]

    increments = counting_increments(events)

    assert increments.pages == {
        ("2025-04-02", PAGE): {NANO: PairCounts(1, 1.0), TOUCH: PairCounts(2, 2.0, clicks=1)},
        ("2025-04-03", PAGE): {NANO: PairCounts(1, 1.0)},
    }
    assert increments.products == {
        ("2025-04-02", TOUCH): ProductCounts(add_to_carts=1),
        ("2025-04-02", NANO): ProductCounts(impressions=1, clicks=1, exposure=1.0),
    }
    assert increments.impressions == 5
    assert increments.clicks == 2
    assert counter_increments(events)[("2025-04-02", TOUCH)].impressions == 2  # what a request reports as shown


def test_given_forged_positions_when_proven_then_each_product_counts_at_its_place_in_the_signed_list() -> None:
    """The attack: the browser claims the second product was shown first (and the first last), to have it credited
    with a first place's exposure. The rec id's digest signs the list in its order: the places are taken from it."""
    rec = _paged_rec()  # lists TOUCH, then NANO
    forged = [{"product_id": NANO, "position": 1}, {"product_id": TOUCH, "position": 9}]
    batch = parse_event_batch({"events": [impression(products=forged, **rec), click(product_id=NANO, **rec)]})

    proof = prove_events(batch, shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS)

    assert {(e.type, e.product_ids, e.positions) for e in proof.events} == {
        ("impression", (NANO,), (2,)),
        ("impression", (TOUCH,), (1,)),
        ("click", (NANO,), (2,)),
    }
    assert {e.listed for e in proof.events if e.type == "impression"} == {(TOUCH, NANO)}
    assert all(e.listed == () for e in proof.events if e.type != "impression")  # kept where counting reads it
    pages = counting_increments(proof.events).pages
    assert pages == {("2025-04-02", PAGE): {TOUCH: PairCounts(1, 1.0), NANO: PairCounts(1, 0.707, clicks=1)}}


def test_given_a_list_reordered_in_the_body_when_proven_then_the_rec_id_does_not_verify() -> None:
    """Reordering `rec_products` itself (to move a product up) breaks the digest: nothing is counted."""
    rec = _paged_rec()
    batch = parse_event_batch({"events": [impression(rec_id=rec["rec_id"], rec_products=[NANO, TOUCH])]})

    assert prove_events(batch, shop=SHOP, customer_id=None, at=AT, rec_ids=REC_IDS).events == []


@pytest.mark.parametrize(
    ("places", "expected"), [((1,), 1.0), ((4,), 0.5), ((1, 2, 3, 4), 1 + 2**-0.5 + 3**-0.5 + 0.5), ((0,), 1.0)]
)
def test_exposure_is_one_at_the_first_place_and_falls_as_one_over_the_root_of_the_place(
    places: tuple[int, ...], expected: float
) -> None:
    assert sum(exposure(place) for place in places) == pytest.approx(expected)
