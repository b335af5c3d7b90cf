"""The hourly health check: fan out one message per shop; per shop, judge the alert conditions over its hourly totals,
send each alert or recovery once, and keep the state for `GET /admin/health`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from reclift.data.health import HealthState, HealthStore
from reclift.health import WEEK, Notification, evaluate, message, transition
from reclift.logic import jobs


class CheckShop(BaseModel):
    """One shop's health check, as queued by the fan-out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shop: str
    scheduled_at: AwareDatetime


class Channels(Protocol):
    def send(self, subject: str, text: str) -> None: ...


def fan_out(shops: Iterable[str], send: Callable[[list[str]], int], *, scheduled_at: datetime) -> dict[str, Any]:
    sent = jobs.fan_out(shops, lambda shop: CheckShop(shop=shop, scheduled_at=scheduled_at), send)
    return {"scheduled_at": scheduled_at.isoformat(), "shops": sent}


def parse_job(body: str) -> CheckShop:
    return jobs.parse_job(body, CheckShop)


def check_shop(shop: str, store: HealthStore, channels: Channels, *, now: datetime) -> dict[str, Any]:
    """Judge the shop now. Alerts go out before the new state is saved: a failed send leaves the old state, and the
    retried check sends it again rather than never."""
    hours = store.hour_totals(shop, (now - WEEK).date(), now.date())
    checks = evaluate(hours, now)
    previous = store.state(shop)
    states, notifications = transition(previous.conditions, checks, now)
    for notification in notifications:
        channels.send(*message(shop, notification))
    store.save_state(shop, now, states)
    return {
        "shop": shop,
        "alerting": sorted(name for name, state in states.items() if state.status == "alerting"),
        "alerts": _names(notifications, "alert"),
        "recoveries": _names(notifications, "recovery"),
    }


def _names(notifications: list[Notification], kind: str) -> list[str]:
    return [n.check.condition.value for n in notifications if n.kind == kind]


def health_report(shop: str, store: HealthStore) -> dict[str, Any]:
    """What `GET /admin/health` shows: the last check's time and each condition's state."""
    state: HealthState = store.state(shop)
    return {"shop": shop, **state.as_dict()}
