"""Storefront tracking: store the request's events, add them to the day's counters and to visitor profiles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reclift.data.store import Store, customer_key, visitor_key
from reclift.tracking import (
    ProfileChange,
    arm_visitors,
    counter_increments,
    parse_event_batch,
    profile_changes,
    tracked_events,
)


def update_profiles(
    store: Store, shop: str, *, visitor_id: str | None, customer_id: str | None, change: ProfileChange
) -> None:
    """The visitor's profile, then the customer's. A visitor id seen with a customer id (signed by the app proxy, or
    on an order) is a visitor who logged in: the visitor's lists are merged into the customer's profile."""
    visitor = store.update_profile(shop, visitor_key(shop, visitor_id), change) if visitor_id else None
    if customer_id:
        store.update_profile(shop, customer_key(shop, customer_id), change, merge=visitor, linked_visitor=visitor_id)


@dataclass(frozen=True)
class TrackedBatch:
    received: int
    stored: int  # the recommendation events among them
    impressions: int  # products shown in recommendations
    clicks: int

    def response(self) -> dict[str, int]:
        return {"stored": self.stored, "received": self.received}


def track_events(shop: str, customer_id: str | None, body: Any, store: Store, *, now: datetime) -> TrackedBatch:
    """EventBatchError (→ 400) for a body that does not fit the schema; nothing is written then."""
    batch = parse_event_batch(body)
    store.register_shop(shop)
    events = tracked_events(batch, at=now, customer_id=customer_id)
    recommendation_events = [event for event in events if event.is_recommendation_event]
    increments = counter_increments(recommendation_events)
    impressions = sum(counts.impressions for counts in increments.values())
    if recommendation_events:
        store.put_events(shop, recommendation_events)
        store.add_counts(shop, increments)
        if impressions:
            store.add_hour_counts(shop, now, {"impressions": impressions})
        if served := arm_visitors(recommendation_events):
            store.add_arm_visitors(shop, served)
    for visitor_id, change in sorted(profile_changes(events).items()):
        update_profiles(store, shop, visitor_id=visitor_id, customer_id=customer_id, change=change)
    return TrackedBatch(
        received=len(events),
        stored=len(recommendation_events),
        impressions=impressions,
        clicks=sum(counts.clicks for counts in increments.values()),
    )
