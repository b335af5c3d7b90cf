"""Storefront tracking: store the request's proven events once each, and take them and the product views into visitor
profiles. Nothing else is written: the counters are added to from the events table's stream (`logic.counting`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reclift.data.store import Store, customer_key, visitor_key
from reclift.recids import RecIds
from reclift.tracking import (
    ProfileChange,
    TrackedEvent,
    counter_increments,
    parse_event_batch,
    profile_changes,
    prove_events,
)


def update_profiles(
    store: Store,
    shop: str,
    *,
    visitor_id: str | None,
    customer_id: str | None,
    change: ProfileChange,
    now: datetime | None = None,
) -> None:
    """The visitor's profile, then the customer's. A visitor id seen with a customer id (signed by the app proxy, or
    on an order) is a visitor who logged in: the visitor's lists are merged into the customer's profile. `now` is
    the day the views count on (the request's time; None: the clock)."""
    visitor = store.update_profile(shop, visitor_key(shop, visitor_id), change, now=now) if visitor_id else None
    if customer_id:
        store.update_profile(
            shop, customer_key(shop, customer_id), change, merge=visitor, linked_visitor=visitor_id, now=now
        )


@dataclass(frozen=True)
class TrackedBatch:
    received: int
    stored: int  # recommendation events that proved something not counted before
    ignored: int  # recommendation events that proved nothing new (forged, expired, foreign, repeated): counted nowhere
    impressions: int  # products shown in recommendations
    clicks: int
    written: tuple[TrackedEvent, ...]  # the events stored: what the stream will count

    def response(self) -> dict[str, int]:
        return {"received": self.received, "stored": self.stored, "ignored": self.ignored}


def track_events(
    shop: str, customer_id: str | None, body: Any, store: Store, *, now: datetime, rec_ids: RecIds
) -> TrackedBatch:
    """EventBatchError (→ 400) for a body that does not fit the schema; nothing is written then. A recommendation
    event counts only when it proves what was shown (`prove_events`) and its (rec id, product, type) is new: the
    event's own item is written only where it is absent, and only what was written is counted (from the table's
    stream, not here). Views go to the
    profiles alone (at most VIEWS_PER_DAY a visitor a day) and are neither stored nor ignored."""
    batch = parse_event_batch(body)
    store.register_shop(shop)
    proof = prove_events(batch, shop=shop, customer_id=customer_id, at=now, rec_ids=rec_ids)
    written = store.put_events(shop, proof.events) if proof.events else []
    increments = counter_increments(written)
    impressions = sum(counts.impressions for counts in increments.values())
    for visitor_id, change in sorted(profile_changes([*written, *proof.views]).items()):
        update_profiles(store, shop, visitor_id=visitor_id, customer_id=customer_id, change=change, now=now)
    written_ids = {event.event_id for event in written}
    counted = {
        source for event, source in zip(proof.events, proof.sources, strict=True) if event.event_id in written_ids
    }
    recommendation_events = proof.received - len(proof.views)
    return TrackedBatch(
        received=proof.received,
        stored=len(counted),
        ignored=recommendation_events - len(counted),
        impressions=impressions,
        clicks=sum(counts.clicks for counts in increments.values()),
        written=tuple(written),
    )
