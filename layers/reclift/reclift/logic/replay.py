"""Replaying the order deliveries Shopify dropped: the shop's orders updated since a moment, read from the Admin
GraphQL API, and for each what reclift never received (`reclift.replay.missing`) queued as the webhook it would
have been, for the webhook queue's worker to process as any delivery.

Orders are read oldest update first; a run that must stop (the invocation's deadline) says where to resume
(`resume_from`, the last read page's latest update), and a resumed run reads from there: what it reads again is
skipped when recorded, or queued again under the same webhook id, which the worker processes once.

Every night (`fan_out_replays`, BackfillFunction's schedule at 01:30 UTC, before the learning) each installed shop's
orders of the last NIGHTLY_REPLAY_HOURS are read back so: a delivery Shopify gave up on is recovered within a day,
whether or not anyone noticed it was lost. After a longer outage an operator runs the replay from its start.

An order the Admin API answers in a shape reclift cannot turn into a delivery is named in the outcome, and the others
are replayed. Its id is kept (`unreadable_ids`) for a replay of the named orders (`replay_named_orders`), each read by
itself, which the queue's worker queues and lets fail until it can read them: retried, then in the DLQ, never lost
when the window moves past them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from reclift.data.installs import INSTALLED, REFRESH_FAILED, Installation
from reclift.ids import shopify_id
from reclift.logic import jobs
from reclift.logic.backfill import FOLLOW_UP_PAGE, PAGE_INFO, nested_first_page, rest_of
from reclift.logic.install import REPLAY, REPLAY_ORDERS_PER_JOB, BackfillJob, missing_scopes
from reclift.orders import OrderPayloadError, parse_timestamp
from reclift.replay import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    REFUND_CREATED,
    Delivery,
    Missing,
    StoredOrder,
    keys_to_read,
    missing,
    order_payload,
    refund_payload,
    webhook_id,
)
from reclift.shopify_admin import AdminClient

# Orders are readable back 60 days without the read_all_orders scope; the events attribution needs live 30.
MAX_REPLAY_DAYS = 60
# The nightly replay reads back a day of orders and two hours more, so that two nights overlap whatever the
# schedule's delay (an order still inside Shopify's 4 hours of retries is replayed too: the worker keeps the first).
NIGHTLY_REPLAY_HOURS = 26
# Page sizes keep each query's requested cost under Shopify's 1,000-point ceiling for one query. The orders are listed
# by what says whether anything of them is missing (about 1 point an order, and 1 a refund), and only an order whose
# creation or cancellation is replayed is read whole: about 6 points a line (the line, its product, two money bags,
# the discount allocations).
ORDERS_PER_PAGE = 40
REFUNDS_PER_ORDER = 20
# An order listed with REFUNDS_PER_ORDER refunds may have more: its refund ids are read again, by themselves, up to
# this many (about a point each).
EVERY_REFUND = 250
LINES_PER_ORDER = 100
UNREADABLE_NAMED = 20

LINE_FIELDS = (
    "id quantity product { id } customAttributes { key value } originalUnitPriceSet { shopMoney { amount } } "
    "discountAllocations { allocatedAmountSet { shopMoney { amount } } }"
)
LISTED_FIELDS = "id createdAt updatedAt cancelledAt refunds(first: $refunds) { id }"
ORDER_FIELDS = (
    f"{LISTED_FIELDS} test currencyCode customer {{ id }} customAttributes {{ key value }} "
    "customerJourneySummary { lastVisit { landingPage } }"
)

REPLAY_ORDERS_QUERY = f"""
query ReplayOrders($first: Int!, $after: String, $query: String, $refunds: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{ {PAGE_INFO} nodes {{ {LISTED_FIELDS} }} }}
}}"""

REPLAY_ORDER_QUERY = f"""
query ReplayOrder($id: ID!, $lines: Int!, $refunds: Int!) {{
  order(id: $id) {{ {ORDER_FIELDS} lineItems(first: $lines) {{ {PAGE_INFO} nodes {{ {LINE_FIELDS} }} }} }}
}}"""

REPLAY_ORDER_LINES_QUERY = f"""
query ReplayOrderLines($id: ID!, $after: String, $lines: Int!) {{
  order(id: $id) {{ lineItems(first: $lines, after: $after) {{ {PAGE_INFO} nodes {{ {LINE_FIELDS} }} }} }}
}}"""

ORDER_REFUNDS_QUERY = """
query ReplayOrderRefunds($id: ID!, $refunds: Int!) {
  order(id: $id) { id refunds(first: $refunds) { id } }
}"""

REFUND_LINE_FIELDS = "lineItem { id } quantity"
REFUND_QUERY = f"""
query ReplayRefund($id: ID!, $lines: Int!) {{
  refund(id: $id) {{ id createdAt refundLineItems(first: $lines) {{ {PAGE_INFO} nodes {{ {REFUND_LINE_FIELDS} }} }} }}
}}"""
REFUND_LINES_QUERY = f"""
query ReplayRefundLines($id: ID!, $after: String, $lines: Int!) {{
  refund(id: $id) {{ refundLineItems(first: $lines, after: $after) {{ {PAGE_INFO} nodes {{ {REFUND_LINE_FIELDS} }} }} }}
}}"""


def replayable(installation: Installation | None) -> bool:
    """Whether the shop's orders can be read back: installed through the managed installation with `read_orders`
    granted (as its backfill is queued only then), its offline token not refused by Shopify (a shop known only from
    its webhooks has no token)."""
    return (
        installation is not None
        and installation.state == INSTALLED
        and installation.token_kind != REFRESH_FAILED
        and "read_orders" not in missing_scopes(installation.scopes)
    )


def fan_out_replays(
    shops: Iterable[str],
    installation: Callable[[str], Installation | None],
    send: Callable[[list[str]], int],
    *,
    fired: datetime,
) -> dict[str, Any]:
    """The night's replay jobs, one message per shop whose orders can be read back, each from NIGHTLY_REPLAY_HOURS
    before the schedule fired: what Shopify dropped since the last night is delivered before the night's learning."""
    since = fired - timedelta(hours=NIGHTLY_REPLAY_HOURS)
    readable = (shop for shop in shops if replayable(installation(shop)))
    sent = jobs.fan_out(readable, lambda shop: BackfillJob(shop=shop, what=REPLAY, since=since), send)
    return {"since": since.isoformat(), "shops": sent}


class ReplayStores(Protocol):
    def stored_orders(self, shop: str, keys: Mapping[str, Iterable[str]]) -> dict[str, StoredOrder]: ...
    def queue_delivery(self, shop: str, delivery: Delivery, *, now: datetime) -> str: ...


def replay_search(moment: datetime) -> str:
    """The orders search filter: updated at or after `moment` (a refund or cancellation updates its order)."""
    return f"updated_at:>='{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}'"


def check_offset(since: datetime) -> None:
    """ValueError when `since` is a naive time (its moment unknown)."""
    if since.tzinfo is None:
        raise ValueError("since must carry its offset (for example 2026-12-05T08:00:00Z)")


def check_since(since: datetime, now: datetime) -> None:
    """ValueError naming the problem when `since` is not a moment of the last MAX_REPLAY_DAYS days."""
    check_offset(since)
    if since > now:
        raise ValueError("since is in the future")
    if now - since > timedelta(days=MAX_REPLAY_DAYS):
        raise ValueError(f"since is more than {MAX_REPLAY_DAYS} days ago: Shopify keeps older orders from apps")


@dataclass
class ReplayOutcome:
    shop: str
    since: str
    complete: bool = False
    resume_from: str | None = None  # when not complete: the `resume_from` a next run starts at
    pages: int = 0
    orders_read: int = 0
    recorded: int = 0  # orders read that reclift had recorded
    unreadable: int = 0  # orders whose nodes could not be turned into deliveries (not fatal to the others)
    unreadable_orders: list[str] = field(default_factory=list)  # the first UNREADABLE_NAMED of them, and why
    unreadable_ids: list[str] = field(default_factory=list)  # every one of them with an id, to read again
    gone: int = 0  # named orders the Admin API no longer has (deleted since): nothing of them to replay
    queued: Counter[str] = field(default_factory=Counter)  # deliveries queued, by topic

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "queued": {topic: self.queued[topic] for topic in sorted(self.queued)}}


def _order_id(node: dict[str, Any]) -> str | None:
    try:
        return shopify_id(node.get("id"), "Order")
    except ValueError:
        return None


def _refund_delivery(client: AdminClient, refund_id: str, order_id: str) -> Delivery:
    gid = f"gid://shopify/Refund/{refund_id}"
    node = client.execute(REFUND_QUERY, {"id": gid, "lines": FOLLOW_UP_PAGE}).get("refund")
    if not isinstance(node, dict):
        raise OrderPayloadError(f"refund {refund_id} of order {order_id} could not be read")
    extra = rest_of(
        client, REFUND_LINES_QUERY, gid, ("refund", "refundLineItems"), nested_first_page(node, "refundLineItems")
    )
    return Delivery(REFUND_CREATED, webhook_id(REFUND_CREATED, refund_id), refund_payload(node, order_id, extra))


def read_whole(client: AdminClient, gid: object) -> dict[str, Any] | None:
    """The order with its first LINES_PER_ORDER lines (REPLAY_ORDER_QUERY), or None when the shop has no such order."""
    variables = {"id": gid, "lines": LINES_PER_ORDER, "refunds": REFUNDS_PER_ORDER}
    whole = client.execute(REPLAY_ORDER_QUERY, variables).get("order")
    return with_every_refund(client, whole) if isinstance(whole, dict) else None


def with_every_refund(client: AdminClient, node: dict[str, Any]) -> dict[str, Any]:
    """The order `node` as listed, or, when it lists as many refunds as were asked for (there may be more), with its
    refund ids read again up to EVERY_REFUND."""
    refunds = node.get("refunds")
    if not isinstance(refunds, list) or len(refunds) < REFUNDS_PER_ORDER:
        return node
    again = client.execute(ORDER_REFUNDS_QUERY, {"id": node.get("id"), "refunds": EVERY_REFUND}).get("order")
    if not isinstance(again, dict) or not isinstance(again.get("refunds"), list):
        return node
    return {**node, "refunds": again["refunds"]}


def deliveries_of(
    client: AdminClient, node: dict[str, Any], gap: Missing, *, whole: dict[str, Any] | None = None
) -> list[Delivery]:
    """The deliveries to queue for one order: its creation first, then its refunds, then its cancellation (the
    worker retries an adjustment that arrives before its order). `whole` is the order as REPLAY_ORDER_QUERY answers
    it, when it was read already."""
    payload: dict[str, Any] = {}
    if gap.created or gap.cancelled:  # both bodies are the whole order, read only then
        whole = whole or read_whole(client, node.get("id"))
        if whole is None:
            raise OrderPayloadError(f"order {gap.order_id} could not be read")
        lines = nested_first_page(whole, "lineItems")
        extra = rest_of(client, REPLAY_ORDER_LINES_QUERY, str(node.get("id")), ("order", "lineItems"), lines)
        payload = order_payload(whole, extra)
    return [
        *([Delivery(ORDER_CREATED, webhook_id(ORDER_CREATED, gap.order_id), payload)] if gap.created else []),
        *(_refund_delivery(client, refund_id, gap.order_id) for refund_id in gap.refund_ids),
        *([Delivery(ORDER_CANCELLED, webhook_id(ORDER_CANCELLED, gap.order_id), payload)] if gap.cancelled else []),
    ]


def replay_orders(
    shop: str,
    client: AdminClient,
    stores: ReplayStores,
    *,
    since: datetime,
    now: datetime,
    resume_from: datetime | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> ReplayOutcome:
    """Queue what reclift never received of the shop's orders updated since `since` (orders placed since then,
    their refunds and cancellations; and the refunds and cancellations of older recorded orders). Raises
    AdminApiError when the API keeps failing, StoreError when the table or the queue does. Run again from the same
    `since` (or the outcome's `resume_from`) it changes nothing: what was recorded since is skipped, and what is
    still queued is queued again under the same webhook id, which the worker processes once."""
    check_since(since, now)
    outcome = ReplayOutcome(shop=shop, since=since.isoformat())
    variables: dict[str, Any] = {
        "first": ORDERS_PER_PAGE,
        "refunds": REFUNDS_PER_ORDER,
        "query": replay_search(max(since, resume_from or since)),
    }
    after: str | None = None
    latest = resume_from or since
    while True:
        if not keep_going():
            outcome.resume_from = latest.isoformat()
            return outcome
        page = client.page(REPLAY_ORDERS_QUERY, {**variables, "after": after}, ("orders",))
        outcome.pages += 1
        outcome.orders_read += len(page.nodes)
        nodes = [with_every_refund(client, node) if isinstance(node, dict) else node for node in page.nodes]
        stored = stores.stored_orders(
            shop, {order_id: keys_to_read(node) for node in nodes if (order_id := _order_id(node))}
        )
        for node in nodes:
            updated = _replay_node(client, stores, outcome, node, stored, since=since, now=now)
            latest = max(latest, updated or latest)
        if not page.has_next_page or not page.end_cursor:
            outcome.complete = True
            return outcome
        after = page.end_cursor


def replay_named_orders(
    shop: str, client: AdminClient, stores: ReplayStores, order_ids: Iterable[str], *, since: datetime, now: datetime
) -> ReplayOutcome:
    """Queue what reclift never received of the named orders (a replay's unreadable ones, read again each by itself),
    by the rules of `replay_orders` from `since`. An order the shop no longer has is counted `gone`. No bound on how
    long ago `since` is: the job may have waited in the DLQ."""
    check_offset(since)
    outcome = ReplayOutcome(shop=shop, since=since.isoformat(), complete=True)
    wholes: dict[str, dict[str, Any]] = {}
    for order_id in dict.fromkeys(order_ids):
        whole = read_whole(client, f"gid://shopify/Order/{order_id}")
        if whole is None:
            outcome.gone += 1
        else:
            wholes[order_id] = whole
    outcome.orders_read = len(wholes)
    if not wholes:
        return outcome
    stored = stores.stored_orders(shop, {order_id: keys_to_read(whole) for order_id, whole in wholes.items()})
    for whole in wholes.values():
        _replay_node(client, stores, outcome, whole, stored, since=since, now=now, whole=whole)
    return outcome


def _replay_node(
    client: AdminClient,
    stores: ReplayStores,
    outcome: ReplayOutcome,
    node: dict[str, Any],
    stored: Mapping[str, StoredOrder],
    *,
    since: datetime,
    now: datetime,
    whole: dict[str, Any] | None = None,
) -> datetime | None:
    """Queue what one listed order is missing, counted in `outcome`, and answer when the order was last updated; None
    when it could not be read (named there)."""
    order_id = _order_id(node)
    known = stored.get(order_id or "")
    try:
        gap = missing(node, known, since=since)
        deliveries = deliveries_of(client, node, gap, whole=whole)
        updated = parse_timestamp(node.get("updatedAt"))
    except OrderPayloadError as exc:  # named in the outcome (and its log line), kept to read again
        outcome.unreadable += 1
        if order_id is not None:
            outcome.unreadable_ids.append(order_id)
        if len(outcome.unreadable_orders) < UNREADABLE_NAMED:
            outcome.unreadable_orders.append(f"{order_id or node.get('id')}: {exc}"[:200])
        return None
    outcome.recorded += known is not None and known.recorded
    for delivery in deliveries:
        stores.queue_delivery(outcome.shop, delivery, now=now)
        outcome.queued[delivery.topic] += 1
    return updated


class UnreadableOrders(Exception):
    """The orders a replay job names could still not be read: the job is retried, then kept in the DLQ."""


def follow_up_jobs(job: BackfillJob, outcome: Mapping[str, Any]) -> list[BackfillJob]:
    """What a replay run from the queue leaves to queue (`outcome` as `ReplayOutcome.as_dict` gives it): the rest of
    its orders from where it stopped, in an invocation of its own; the orders it could not read, in jobs that name
    them (the others' deliveries are queued already, and the nightly window will have moved past them). A job of
    named orders that still cannot read them raises UnreadableOrders instead."""
    if job.orders:
        if outcome["unreadable"]:
            raise UnreadableOrders(
                f"named orders still unreadable ({outcome['unreadable']}): {outcome['unreadable_orders']}"
            )
        return []
    jobs: list[BackfillJob] = []
    if not outcome["complete"]:
        jobs.append(BackfillJob.model_validate({**job.model_dump(), "resume_from": outcome["resume_from"]}))
    ids = outcome["unreadable_ids"]
    for start in range(0, len(ids), REPLAY_ORDERS_PER_JOB):
        chunk = tuple(ids[start : start + REPLAY_ORDERS_PER_JOB])
        jobs.append(BackfillJob(shop=job.shop, what=REPLAY, since=job.since, orders=chunk))
    return jobs
