"""Erasing a shop (`shop/redact`), from its own queue: by key, phase by phase, resumed by a message of its own when
one invocation cannot finish."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reclift.data.erasure import SHOP_PHASES, ShopEraser
from reclift.ids import shop_domain


class ShopRedactionJobError(ValueError):
    """A queued message that is not a shop's erasure: it stays on the queue, then in the DLQ."""


@dataclass(frozen=True)
class ShopRedactionJob:
    shop: str
    resume_at: str | None = None


def parse_shop_redaction_job(body: str) -> ShopRedactionJob:
    """`{"shop": "<shop>.myshopify.com"}`, optionally with `"resume_at": <phase>` (a continuation)."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ShopRedactionJobError("the message is not JSON") from exc
    if not isinstance(message, dict) or not isinstance(message.get("shop"), str):
        raise ShopRedactionJobError("the message names no shop")
    try:
        shop = shop_domain(message["shop"])
    except ValueError as exc:
        raise ShopRedactionJobError(f"shop: {exc}") from exc
    resume_at = message.get("resume_at")
    if resume_at is not None and resume_at not in SHOP_PHASES:
        raise ShopRedactionJobError(f"resume_at: no phase {resume_at!r}")
    return ShopRedactionJob(shop, resume_at)


def erase_shop(job: ShopRedactionJob, eraser: ShopEraser, *, keep_going: Callable[[], bool]) -> dict[str, Any]:
    """Erase what `keep_going` leaves time for; queue the rest as a continuation of its own."""
    erasure = eraser.redact_shop(job.shop, resume_at=job.resume_at, keep_going=keep_going)
    if not erasure.complete:
        eraser.queue_shop_redaction(job.shop, resume_at=erasure.resume_at)
    return {
        "shop": job.shop,
        "started_at": job.resume_at or SHOP_PHASES[0],
        "complete": erasure.complete,
        "resume_at": erasure.resume_at,
        "items_read": erasure.items_read,
        "deleted": erasure.deleted,
    }
