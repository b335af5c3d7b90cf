"""A shop's health: the plan's alert conditions over its hourly totals, and their alert state.

Each condition is checked every hour. One alert is sent when a condition starts to breach, nothing while it keeps
breaching, and one recovery message when it clears; a condition that cannot be judged (too few impressions) keeps
its state, so a quiet night neither raises nor clears an alert.

Thresholds (README, "Health and alarms"):
- CVR (products bought after a recommendation / products shown) over 24 h and over 7 days below 0.5 %, judged only
  from 100 impressions on (the blacklist's own minimum: below it a CVR of 0 says little);
- the error rate (failed processing attempts of the shop's deliveries / (orders recorded + failed attempts)) over
  24 h above 5 %;
- no recommendation served in 24 h.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

CVR_FLOOR = 0.005
MIN_IMPRESSIONS = 100
ERROR_RATE_CEILING = 0.05
DAY = timedelta(hours=24)
WEEK = timedelta(days=7)


class Condition(StrEnum):
    CVR_24H = "cvr_24h"
    CVR_7D = "cvr_7d"
    ERROR_RATE = "error_rate_24h"
    NOTHING_SERVED = "no_recommendations_24h"


DESCRIPTIONS = {
    Condition.CVR_24H: "conversion rate of recommended products over 24 h below 0.5 %",
    Condition.CVR_7D: "conversion rate of recommended products over 7 days below 0.5 %",
    Condition.ERROR_RATE: "share of the shop's deliveries that failed processing over 24 h above 5 %",
    Condition.NOTHING_SERVED: "no recommendation served in 24 h",
}


@dataclass(frozen=True)
class HourTotals:
    """The shop's totals of one hour (UTC), starting at `start`."""

    start: datetime
    impressions: int = 0
    purchases: int = 0
    orders: int = 0
    served: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Totals:
    impressions: int = 0
    purchases: int = 0
    orders: int = 0
    served: int = 0
    errors: int = 0


def totals_since(hours: Iterable[HourTotals], since: datetime) -> Totals:
    """The sum of the hours that start after `since` (the hour `since` falls in is the first one left out)."""
    chosen = [hour for hour in hours if hour.start > since]
    return Totals(
        impressions=sum(hour.impressions for hour in chosen),
        purchases=sum(hour.purchases for hour in chosen),
        orders=sum(hour.orders for hour in chosen),
        served=sum(hour.served for hour in chosen),
        errors=sum(hour.errors for hour in chosen),
    )


@dataclass(frozen=True)
class Check:
    condition: Condition
    breaching: bool | None  # None: not enough data to judge
    value: float | None
    threshold: float


def cvr_check(condition: Condition, totals: Totals) -> Check:
    if totals.impressions < MIN_IMPRESSIONS:
        value = totals.purchases / totals.impressions if totals.impressions else None
        return Check(condition, None, value, CVR_FLOOR)
    cvr = totals.purchases / totals.impressions
    return Check(condition, cvr < CVR_FLOOR, cvr, CVR_FLOOR)


def error_rate_check(totals: Totals) -> Check:
    attempts = totals.orders + totals.errors
    rate = totals.errors / attempts if attempts else 0.0
    return Check(Condition.ERROR_RATE, rate > ERROR_RATE_CEILING, rate, ERROR_RATE_CEILING)


def served_check(totals: Totals) -> Check:
    return Check(Condition.NOTHING_SERVED, totals.served == 0, float(totals.served), 1.0)


def evaluate(hours: Iterable[HourTotals], now: datetime) -> list[Check]:
    """Every condition over the hours up to `now` (the current hour, still filling, counts in both windows)."""
    hours = list(hours)
    day = totals_since(hours, now - DAY)
    week = totals_since(hours, now - WEEK)
    return [
        cvr_check(Condition.CVR_24H, day),
        cvr_check(Condition.CVR_7D, week),
        error_rate_check(day),
        served_check(day),
    ]


Status = Literal["ok", "alerting", "insufficient_data"]


@dataclass(frozen=True)
class ConditionState:
    status: Status
    since: str  # ISO time of the last change of status
    value: float | None = None
    threshold: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "since": self.since, "value": self.value, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ConditionState:
        status: Status = "insufficient_data"
        if raw.get("status") in ("ok", "alerting"):
            status = "ok" if raw["status"] == "ok" else "alerting"
        value, threshold = raw.get("value"), raw.get("threshold")
        return cls(
            status=status,
            since=str(raw.get("since") or ""),
            value=None if value is None else float(value),
            threshold=None if threshold is None else float(threshold),
        )


@dataclass(frozen=True)
class Notification:
    kind: Literal["alert", "recovery"]
    check: Check


def transition(
    previous: Mapping[str, ConditionState], checks: Iterable[Check], now: datetime
) -> tuple[dict[str, ConditionState], list[Notification]]:
    """The new state of every condition and the messages to send: one alert when a condition starts breaching, one
    recovery when it clears, nothing otherwise."""
    stamp = now.isoformat()
    states: dict[str, ConditionState] = {}
    notifications: list[Notification] = []
    for check in checks:
        before = previous.get(check.condition.value)
        was = before.status if before else "insufficient_data"
        if check.breaching is None:
            status: Status = was
        else:
            status = "alerting" if check.breaching else "ok"
        if status == "alerting" and was != "alerting":
            notifications.append(Notification("alert", check))
        elif status == "ok" and was == "alerting":
            notifications.append(Notification("recovery", check))
        since = before.since if before and status == was else stamp
        states[check.condition.value] = ConditionState(status, since, check.value, check.threshold)
    return states, notifications


def message(shop: str, notification: Notification) -> tuple[str, str]:
    """Subject and text of an alert or recovery (the shop's domain and figures only: no customer data)."""
    check = notification.check
    what = DESCRIPTIONS[check.condition]
    if notification.kind == "alert":
        subject = f"reclift alert: {shop}: {what}"
    else:
        subject = f"reclift recovered: {shop}: {what} no more"
    figures = f"value {_figure(check)}, threshold {_threshold(check)}"
    return subject[:100], f"{subject} ({figures})"


def _figure(check: Check) -> str:
    if check.value is None:
        return "n/a"
    if check.condition in (Condition.CVR_24H, Condition.CVR_7D, Condition.ERROR_RATE):
        return f"{check.value:.2%}"
    return f"{check.value:g}"


def _threshold(check: Check) -> str:
    if check.condition is Condition.NOTHING_SERVED:
        return "at least 1 served"
    return f"{check.threshold:.2%}"
