"""Counting: what newly stored storefront events add to the day's product counters, the day's page items, the hour's
totals and the arms' visitors. It runs on the events table's stream, a batch at a time, so that a product shown in a
thousand requests is one counter update, not a thousand: the storefront request itself writes only its events.

An impression or a click in a product page's widget (its rec id signs the page) is counted in the page's item of the
day, one number per candidate, and not in the candidate's own counter: one update per page instead of one per product
shown, which keeps an impression's write units where they were while the learning gets what each candidate does on
each page (a click mostly lands in the same batch as its widget's impressions, whose page item is written anyway).
Add-to-carts, and the impressions and clicks of the cart and home widgets, go to the product counters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reclift.data.event_stream import new_events
from reclift.data.store import Store
from reclift.tracking import TrackedEvent, counting_increments


@dataclass(frozen=True)
class Counted:
    shops: int
    events: int
    impressions: int
    clicks: int
    counters: int  # product counters and page items written (one per shop, day and product or page of the batch)


def count_events(store: Store, shop: str, events: Sequence[TrackedEvent]) -> Counted:
    """Add the events to the shop's counters: one update per (day, product) and per (day, page), and per hour one
    update of the events' part of the hour's totals, with the impressions and each arm's visitors not counted before
    that day (a visitor counts in the first hour of the batch the arm showed them something)."""
    increments = counting_increments(events)
    if increments.products:
        store.add_counts(shop, increments.products)
    if increments.pages:
        store.add_pair_counts(shop, increments.pages)
    impressions: dict[datetime, int] = defaultdict(int)
    visitors: dict[datetime, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    first_hour: dict[tuple[str, str, str], datetime] = {}
    for event in events:
        if event.type != "impression":
            continue
        hour = event.at.replace(minute=0, second=0, microsecond=0)
        impressions[hour] += len(event.product_ids)
        if event.arm is not None:
            first = first_hour.setdefault((hour.date().isoformat(), event.arm, event.visitor_id), hour)
            visitors[first][event.arm].add(event.visitor_id)
    for hour in sorted({*impressions, *visitors}):
        store.add_event_totals(shop, hour, impressions.get(hour, 0), visitors.get(hour, {}))
    return Counted(
        shops=1,
        events=len(events),
        impressions=increments.impressions,
        clicks=increments.clicks,
        counters=len(increments.products) + len(increments.pages),
    )


def count_stream(records: Iterable[Mapping[str, Any]], store: Store) -> Counted:
    """Count a batch of the events table's stream records, shop by shop. A batch whose counting fails is delivered
    again (halved until the failing record is alone, then kept in the failure queue): the counters are
    at-least-once, so a batch that failed after some of its updates were written counts those twice. That takes a
    DynamoDB error in the middle of a batch, which the function's error alarm reports."""
    totals = Counted(shops=0, events=0, impressions=0, clicks=0, counters=0)
    for shop, events in sorted(new_events(records).items()):
        counted = count_events(store, shop, events)
        totals = Counted(
            shops=totals.shops + 1,
            events=totals.events + counted.events,
            impressions=totals.impressions + counted.impressions,
            clicks=totals.clicks + counted.clicks,
            counters=totals.counters + counted.counters,
        )
    return totals
