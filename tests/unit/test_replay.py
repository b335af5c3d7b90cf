"""The order replay's pure half: an order and a refund read back from the Admin API become the webhook bodies
Shopify would have sent, which parse to exactly what the delivered ones parse to; and what of an order is replayed,
given what reclift holds of it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reclift.adjustments import parse_cancelled_order_id, parse_refund
from reclift.data.installs import INSTALLED, INSTALLING, REFRESH_FAILED, UNINSTALLED, Installation
from reclift.logic.install import parse_backfill_job
from reclift.logic.replay import ReplayOutcome, UnreadableOrders, check_since, fan_out_replays, follow_up_jobs
from reclift.orders import OrderPayloadError, parse_order
from reclift.replay import StoredOrder, keys_to_read, missing, order_payload, refund_payload
from reclift_local.fake_admin import FakeAdminApi, FakeOrder
from tests.support.shopify import order_payload as webhook_order

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return payload


def as_admin_api_holds_it(order: dict[str, Any], refunds: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The order's node as the Admin API answers the replay's query for it (every line on the first page)."""
    return FakeAdminApi("fake.myshopify.com", "token")._order_node(FakeOrder.from_webhook(order, refunds), 250, 20)


def refund_node(order: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    fake = FakeAdminApi("fake.myshopify.com", "token", orders=[FakeOrder.from_webhook(order, [refund])])
    answer, _, _ = fake._resolve("refund", {"id": f"gid://shopify/Refund/{refund['id']}", "lines": 250})
    node: dict[str, Any] = answer["refund"]
    return node


# ---------------------------------------------------------------- the bodies, as delivered
def test_shopifys_order_sample_read_back_from_the_admin_api_parses_as_the_delivered_one() -> None:
    delivered = sample("orders_create_sample.json")

    replayed = order_payload(as_admin_api_holds_it(delivered))

    assert parse_order(replayed) == parse_order(delivered)


def test_an_order_with_a_rec_id_a_visitor_a_customer_and_discounts_parses_as_the_delivered_one() -> None:
    lines = [
        {"product_id": 111, "price": "20.00", "quantity": 2, "discount": "5.00", "rec_id": "rec-1"},
        {"product_id": 333, "price": "9.99"},
    ]
    delivered = webhook_order(order_id=1001, created_at=NOW, lines=lines, visitor_id="v1", customer_id=42)
    delivered["line_items"].append(copy.deepcopy(delivered["line_items"][1]) | {"id": 7, "product_id": None})

    order = parse_order(order_payload(as_admin_api_holds_it(delivered)))

    assert order == parse_order(delivered)
    assert (order.visitor_id, order.customer_id) == ("v1", "42")
    assert [(line.rec_id, line.revenue) for line in order.lines] == [
        ("rec-1", Decimal("35.00")),
        (None, Decimal("9.99")),
        (None, Decimal("9.99")),
    ]
    assert order.lines[2].product_id is None  # a custom line stays a line without a product


def test_lines_beyond_the_first_page_are_part_of_the_order() -> None:
    delivered = webhook_order(order_id=9, created_at=NOW, lines=[{"product_id": n, "price": "1.00"} for n in range(30)])
    node = as_admin_api_holds_it(delivered)
    first, rest = node["lineItems"]["nodes"][:25], node["lineItems"]["nodes"][25:]

    replayed = order_payload(node | {"lineItems": {"nodes": first}}, rest)

    assert parse_order(replayed) == parse_order(delivered)


def test_shopifys_refund_sample_read_back_from_the_admin_api_parses_as_the_delivered_one() -> None:
    order, refund = sample("orders_create_sample.json"), sample("refunds_create_sample.json")

    replayed = refund_payload(refund_node(order, refund), str(order["id"]))

    assert parse_refund(replayed) == parse_refund(refund)


def test_a_cancelled_order_read_back_is_a_cancellation_of_that_order() -> None:
    delivered = sample("orders_cancelled_sample.json")

    assert parse_cancelled_order_id(order_payload(as_admin_api_holds_it(delivered))) == str(delivered["id"])


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda line: line.pop("originalUnitPriceSet"), "no originalUnitPriceSet"),
        (lambda line: line.update(discountAllocations=[{"allocatedAmountSet": {}}]), "malformed discountAllocations"),
        (lambda line: line.update(id="gid://shopify/Product/1"), "expected a LineItem id"),
    ],
)
def test_a_line_the_admin_api_answered_without_what_attribution_needs_is_refused_by_name(
    change: Any, problem: str
) -> None:
    node = as_admin_api_holds_it(sample("orders_create_sample.json"))
    change(node["lineItems"]["nodes"][0])

    with pytest.raises(OrderPayloadError, match=problem):
        order_payload(node)


# ---------------------------------------------------------------- what is replayed
def order_node(created: datetime, *, refunds: tuple[int, ...] = (), cancelled: bool = False) -> dict[str, Any]:
    return {
        "id": "gid://shopify/Order/77",
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cancelledAt": NOW.isoformat() if cancelled else None,
        "refunds": [{"id": f"gid://shopify/Refund/{refund}"} for refund in refunds],
    }


SINCE = NOW - timedelta(hours=6)


@pytest.mark.parametrize(
    ("created", "stored", "expected"),
    [
        # dropped: its creation, its refunds and cancellation after it
        (SINCE + timedelta(hours=1), None, (True, ("5", "6"), True)),
        # a basket the backfill stored ahead of the order's delivery is not the delivery
        (SINCE + timedelta(hours=1), StoredOrder(recorded=False), (True, ("5", "6"), True)),
        # recorded: only what was not applied to it
        (SINCE + timedelta(hours=1), StoredOrder(True, frozenset({"refund#5", "cancelled"})), (False, ("6",), False)),
        (SINCE - timedelta(days=3), StoredOrder(True, frozenset({"refund#5"})), (False, ("6",), True)),
        # placed before the range and never recorded: before the installation, or outside what was asked
        (SINCE - timedelta(seconds=1), None, (False, (), False)),
    ],
)
def test_what_of_an_order_is_replayed_is_what_reclift_never_received_of_it(
    created: datetime, stored: StoredOrder | None, expected: tuple[bool, tuple[str, ...], bool]
) -> None:
    gap = missing(order_node(created, refunds=(5, 6), cancelled=True), stored, since=SINCE)

    assert (gap.created, gap.refund_ids, gap.cancelled) == expected


def test_a_recorded_order_with_everything_applied_needs_nothing() -> None:
    stored = StoredOrder(recorded=True, markers=frozenset({"refund#5"}))

    gap = missing(order_node(SINCE + timedelta(hours=1), refunds=(5,)), stored, since=SINCE)
    assert (gap.created, gap.refund_ids, gap.cancelled) == (False, (), False)


# ---------------------------------------------------------------- the job
def test_a_replay_job_names_since_and_refuses_a_range_shopify_no_longer_answers() -> None:
    job = parse_backfill_job({"shop": "a-shop.myshopify.com", "what": "replay", "since": "2026-12-05T08:00:00Z"})
    assert (job.replay, job.whats, job.since) == (True, (), datetime(2026, 12, 5, 8, tzinfo=UTC))

    with pytest.raises(ValueError, match="a replay names since"):
        parse_backfill_job({"shop": "a-shop.myshopify.com", "what": "replay"})
    with pytest.raises(ValueError, match="more than 60 days ago"):
        check_since(NOW - timedelta(days=61), NOW)
    with pytest.raises(ValueError, match="in the future"):
        check_since(NOW + timedelta(minutes=1), NOW)
    with pytest.raises(ValueError, match="offset"):
        check_since(datetime(2026, 12, 5), NOW)  # a naive time


def test_a_replay_job_may_name_the_orders_to_read_again_by_id_or_gid_and_at_most_a_hundred() -> None:
    named = {"shop": "a-shop.myshopify.com", "what": "replay", "since": "2026-12-05T08:00:00Z"}
    job = parse_backfill_job(named | {"orders": ["gid://shopify/Order/450789469", 91]})
    assert job.orders == ("450789469", "91")
    assert parse_backfill_job(job.model_dump_json()) == job  # what the queue carries reads back the same

    with pytest.raises(ValueError, match="orders: Value error, expected a Order id"):
        parse_backfill_job(named | {"orders": ["gid://shopify/Product/1"]})
    with pytest.raises(ValueError, match="at most 100 orders"):
        parse_backfill_job(named | {"orders": list(range(1, 102))})
    with pytest.raises(ValueError, match="orders are named by a replay only"):
        parse_backfill_job({"shop": "a-shop.myshopify.com", "what": "orders", "orders": ["91"]})


def test_a_queued_replay_leaves_its_continuation_and_its_unreadable_orders_in_jobs_of_at_most_a_hundred() -> None:
    job = parse_backfill_job({"shop": "a-shop.myshopify.com", "what": "replay", "since": "2026-12-05T08:00:00Z"})
    ids = [str(n) for n in range(1, 151)]
    paused = ReplayOutcome(shop=job.shop, since="", resume_from="2026-12-05T20:00:00+00:00", unreadable_ids=ids)

    rest, first, second = follow_up_jobs(job, paused.as_dict())

    assert (rest.since, rest.resume_from, rest.orders) == (job.since, datetime(2026, 12, 5, 20, tzinfo=UTC), ())
    assert (first.orders, second.orders) == (tuple(ids[:100]), tuple(ids[100:]))
    assert {first.since, second.since} == {job.since}
    assert follow_up_jobs(job, ReplayOutcome(shop=job.shop, since="", complete=True).as_dict()) == []

    unreadable = ReplayOutcome(shop=job.shop, since="", complete=True, unreadable=1, unreadable_orders=["7: why"])
    with pytest.raises(UnreadableOrders, match=r"still unreadable \(1\): \['7: why'\]"):
        follow_up_jobs(first, unreadable.as_dict())
    assert follow_up_jobs(first, ReplayOutcome(shop=job.shop, since="", complete=True).as_dict()) == []


def test_the_nightly_replay_reads_back_the_last_26_hours_of_the_shops_whose_orders_can_be_read() -> None:
    granted = frozenset({"read_orders", "read_products"})
    installations = {
        "installed.myshopify.com": Installation("installed.myshopify.com", INSTALLED, granted, token_kind="expiring"),
        "writes.myshopify.com": Installation("writes.myshopify.com", INSTALLED, frozenset({"write_orders"})),
        "refused.myshopify.com": Installation("refused.myshopify.com", INSTALLED, granted, token_kind=REFRESH_FAILED),
        "no-orders.myshopify.com": Installation("no-orders.myshopify.com", INSTALLED, frozenset({"read_products"})),
        "installing.myshopify.com": Installation("installing.myshopify.com", INSTALLING),
        "uninstalled.myshopify.com": Installation("uninstalled.myshopify.com", UNINSTALLED),
    }
    shops = [*installations, "webhooks-only.myshopify.com"]  # known from its deliveries: no token to read with

    sent: list[str] = []

    def send(bodies: list[str]) -> int:
        sent.extend(bodies)
        return len(bodies)

    summary = fan_out_replays(shops, installations.get, send, fired=NOW)

    jobs = [parse_backfill_job(body) for body in sent]
    assert summary == {"since": (NOW - timedelta(hours=26)).isoformat(), "shops": 2}
    assert [(job.shop, job.what, job.since) for job in jobs] == [
        ("installed.myshopify.com", "replay", NOW - timedelta(hours=26)),
        ("writes.myshopify.com", "replay", NOW - timedelta(hours=26)),  # write_orders implies reading them
    ]


def test_what_is_read_of_an_order_is_its_own_item_and_the_markers_of_what_the_admin_api_lists_for_it() -> None:
    assert keys_to_read(order_node(NOW)) == ("order",)  # never its lines, however many
    keys = keys_to_read(order_node(NOW, refunds=(5, 6), cancelled=True))
    assert keys == ("order", "cancelled", "refund#5", "refund#6")
