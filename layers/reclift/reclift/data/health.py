"""Data access for the health check: a shop's hourly totals, its alert state, and the served-recommendation tally.

Reading a shop's week of hourly totals is one Query per day partition (eight, for seven days and today), each
limited to the `_hour#` items: the cost does not depend on the number of products.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from reclift.data.models import CounterItem, HealthItem, bind_tables
from reclift.data.store import HOUR_COUNTER, StoreError, day_key, dynamo_store, hour_key, hour_of, orders_day_key
from reclift.health import ConditionState, HourTotals

HEALTH_SUFFIX = "#health"


def health_key(shop: str) -> str:
    return f"{shop}{HEALTH_SUFFIX}"


@dataclass(frozen=True)
class HealthState:
    checked_at: datetime | None
    conditions: dict[str, ConditionState]

    def as_dict(self) -> dict[str, object]:
        return {
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "conditions": {name: state.as_dict() for name, state in sorted(self.conditions.items())},
        }


class HealthStore:
    def __init__(self) -> None:
        bind_tables()

    def hour_totals(self, shop: str, first_day: date, last_day: date) -> list[HourTotals]:
        """Each hour's totals, its parts (events', the tally's in the day's partition, orders' in the day's orders
        partition, or in the day's own for the days before it had one) summed."""
        hours: dict[datetime, HourTotals] = {}
        day = first_day
        try:
            while day <= last_day:
                items = [
                    item
                    for key in (day_key(shop, day), orders_day_key(shop, day))
                    for item in CounterItem.query(key, CounterItem.sk.startswith(HOUR_COUNTER))
                ]
                for item in items:
                    start = datetime(day.year, day.month, day.day, hour_of(item.sk), tzinfo=UTC)
                    before = hours.get(start) or HourTotals(start)
                    hours[start] = HourTotals(
                        start=start,
                        impressions=before.impressions + int(item.impressions),
                        purchases=before.purchases + int(item.purchases),
                        orders=before.orders + int(item.orders),
                        served=before.served + int(item.served),
                        errors=before.errors + int(item.errors),
                    )
                day += timedelta(days=1)
        except PynamoDBException as exc:
            raise StoreError(f"reading the hourly totals failed: {exc.msg}") from exc
        return [hours[start] for start in sorted(hours)]

    def state(self, shop: str) -> HealthState:
        try:
            item = HealthItem.get(health_key(shop), consistent_read=True)
        except DoesNotExist:
            return HealthState(checked_at=None, conditions={})
        except PynamoDBException as exc:
            raise StoreError(f"reading the health state failed: {exc.msg}") from exc
        raw = json.loads(item.state)
        return HealthState(
            checked_at=item.checked_at,
            conditions={name: ConditionState.from_dict(value) for name, value in raw.items()},
        )

    def save_state(self, shop: str, checked_at: datetime, conditions: Mapping[str, ConditionState]) -> None:
        state = json.dumps({name: value.as_dict() for name, value in sorted(conditions.items())}, sort_keys=True)
        try:
            HealthItem(health_key(shop), shop=shop, checked_at=checked_at, state=state).save()
        except PynamoDBException as exc:
            raise StoreError(f"saving the health state failed: {exc.msg}") from exc


@cache
def health_store() -> HealthStore:
    return HealthStore()


# ---------------------------------------------------------------- recommendations served, per shop and hour
FLUSH_SECONDS = 60.0


@dataclass
class ServedTally:
    """Counts served recommendations per shop and hour in the execution environment and writes them at most once a
    minute per shop (the first one at once), so serving does not pay a write per request.

    What an environment served in its last minute before it is recycled is lost: the stored count is a lower bound,
    exact about what the health check asks (whether anything was served at all).
    """

    write: Callable[[str, datetime, dict[str, int]], None]
    clock: Callable[[], float] = time.monotonic
    pending: dict[tuple[str, datetime], int] = field(default_factory=lambda: defaultdict(int))
    flushed_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _hour(at: datetime) -> datetime:
        day, sk = hour_key(at)
        return datetime.fromisoformat(day).replace(hour=int(sk.removeprefix(HOUR_COUNTER)), tzinfo=UTC)

    def retract(self, shop: str, at: datetime) -> None:
        """Take back a recorded serve whose request then failed: the next flush writes the net count (a serve
        already written is corrected by a negative one), so the tally never counts what was not served."""
        with self.lock:
            self.pending[(shop, self._hour(at))] -= 1

    def record(self, shop: str, at: datetime) -> None:
        hour = self._hour(at)
        with self.lock:
            self.pending[(shop, hour)] += 1
            last = self.flushed_at.get(shop)
            if last is not None and self.clock() - last < FLUSH_SECONDS:
                return
            self.flushed_at[shop] = self.clock()
            due = {key: count for key, count in self.pending.items() if key[0] == shop and count}
            for key in due:
                del self.pending[key]
        try:
            for (_, hour_start), count in sorted(due.items()):
                self.write(shop, hour_start, {"served": count})
        except StoreError:
            with self.lock:  # kept for the next flush
                for key, count in due.items():
                    self.pending[key] += count
            raise


@cache
def served_tally() -> ServedTally:
    return ServedTally(write=dynamo_store().add_hour_counts)
