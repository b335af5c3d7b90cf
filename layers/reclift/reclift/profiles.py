"""User profiles (the plan's MLUserProfile): bounded lists of recently viewed, carted and purchased products, newest
first, kept per visitor and per customer, merged into the customer's when a visitor logs in.

A profile also carries the neighbours of its most recent products (its seeds), refreshed when it is written: the
home placement's candidates are then in the profile itself, so a home request needs no third round trip
(profile → neighbours → candidates' performance) to DynamoDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import zip_longest

from reclift.similarity import combine

PROFILE_LIST_LIMIT = 50
PROFILE_RETENTION_DAYS = 180
PROFILE_SEEDS = 10  # the recent products whose neighbours make the home placement's candidates
PROFILE_NEIGHBOURS = 50
PROFILE_CATALOG_NEIGHBOURS = 20  # as many as a product's own catalog neighbours
NEIGHBOURS_MAX_AGE = timedelta(days=1)  # the similarity job runs daily: older neighbours are read again
# Product views a profile takes per day (UTC); views beyond it are dropped. A shopper rarely opens 50 product pages
# in a day, and 50 is the viewed list's own length: a day's views can refill the list once, while a script posting
# views cannot keep rewriting a profile (and re-reading its neighbours) at the rate it posts.
VIEWS_PER_DAY = 50
# The visitor ids a customer's profile keeps (those that logged in as them or carried their orders, newest first):
# enough for every device a shopper uses, bounded so the item never grows with traffic. A visitor pushed out of it
# is still found by a redaction through the customer's own events and orders, which carry it.
LINKED_VISITORS_LIMIT = 20


def push_recent(current: Sequence[str], newest_last: Sequence[str], limit: int = PROFILE_LIST_LIMIT) -> list[str]:
    """`current` (newest first) with `newest_last` pushed to the front, deduplicated, at most `limit` long."""
    merged = list(dict.fromkeys([*reversed(newest_last), *current]))
    return merged[:limit]


def _newer_first(newer: Sequence[str], older: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*newer, *older]))[:PROFILE_LIST_LIMIT]


@dataclass(frozen=True)
class ProfileLists:
    """A profile's lists, each newest first, deduplicated and bounded."""

    viewed: tuple[str, ...] = ()
    carted: tuple[str, ...] = ()
    purchased: tuple[str, ...] = ()

    def pushed(self, viewed: Sequence[str], carted: Sequence[str], purchased: Sequence[str]) -> ProfileLists:
        """With products pushed to the front (each sequence oldest first, so its last becomes the newest)."""
        return ProfileLists(
            viewed=tuple(push_recent(self.viewed, viewed)),
            carted=tuple(push_recent(self.carted, carted)),
            purchased=tuple(push_recent(self.purchased, purchased)),
        )

    def merged_under(self, newer: ProfileLists) -> ProfileLists:
        """A customer's lists with a visitor's (who just logged in, so newer) merged in front. Merging the same
        visitor again changes nothing, so every event that carries both ids can merge."""
        return ProfileLists(
            viewed=tuple(_newer_first(newer.viewed, self.viewed)),
            carted=tuple(_newer_first(newer.carted, self.carted)),
            purchased=tuple(_newer_first(newer.purchased, self.purchased)),
        )

    def home_neighbours(
        self, copurchased: Sequence[Sequence[tuple[str, float]]], catalog: Sequence[Sequence[tuple[str, float]]]
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The home placement's candidates from the seeds' neighbour lists: their co-purchase neighbours combined and
        their catalog neighbours combined, without the seeds themselves or what the visitor bought."""
        exclude = {*self.seeds(), *self.purchased}
        return (
            combine(copurchased, exclude=exclude, limit=PROFILE_NEIGHBOURS),
            combine(catalog, exclude=exclude, limit=PROFILE_CATALOG_NEIGHBOURS),
        )

    def seeds(self, limit: int = PROFILE_SEEDS) -> list[str]:
        """The products the home placement recommends around: recent views and purchases, alternately, newest
        first, then recent cart additions."""
        alternated = [p for pair in zip_longest(self.viewed, self.purchased) for p in pair if p is not None]
        return list(dict.fromkeys([*alternated, *self.carted]))[:limit]


def neighbours_stale(
    seeds: Sequence[str], stored_seeds: Sequence[str] | None, refreshed_at: datetime | None, now: datetime
) -> bool:
    """Whether a profile's neighbours must be read again: other seeds, or older than the last similarity run."""
    if not seeds:
        return bool(stored_seeds)
    return list(seeds) != list(stored_seeds or ()) or refreshed_at is None or now - refreshed_at >= NEIGHBOURS_MAX_AGE


def views_within_cap(
    viewed: Sequence[str], *, day: str, counted_day: str | None, counted: int, cap: int = VIEWS_PER_DAY
) -> tuple[list[str], int]:
    """The views a profile takes today (the first ones, up to the cap) and its count of views taken today after."""
    used = counted if counted_day == day else 0
    kept = list(viewed[: max(cap - used, 0)])
    return kept, used + len(kept)


def day_views(viewed: Sequence[str], counted: int, newly_viewed: Sequence[str]) -> int:
    """How many of the viewed list's first products were viewed on the profile's views day once `newly_viewed`
    (views taken that day) are pushed: `viewed` is newest first and a view moves its product to the front, so the
    day's distinct views are always the list's first ones. `counted`: that number before (0 on a new day)."""
    return min(len(dict.fromkeys([*newly_viewed, *viewed[:counted]])), PROFILE_LIST_LIMIT)


def day_session(viewed: Sequence[str], counted: int | None) -> list[str]:
    """A visitor profile's session: the distinct products viewed on its views day, newest first."""
    return list(viewed[: counted or 0])
