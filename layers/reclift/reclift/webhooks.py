"""Shopify webhook deliveries as reclift queues them: an envelope of the delivery's headers and its exact body.

Large bodies are gzip-compressed inside the envelope so that any delivery up to `MAX_WEBHOOK_BYTES` fits an SQS
message, with room to spare for JSON escaping.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

MAX_WEBHOOK_BYTES = 1024 * 1024
COMPRESS_ABOVE_BYTES = 64 * 1024
# How far ahead of this clock a delivery's trigger time may be: clocks differ by seconds, not minutes.
FUTURE_LEEWAY = timedelta(minutes=5)


class WebhookEnvelope(BaseModel):
    """One authentic delivery. `webhook_id` is Shopify's delivery id (the same on every retry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    shop: str
    webhook_id: str
    event_id: str | None = None
    triggered_at: str | None = None
    api_version: str | None = None
    body: str
    body_encoding: Literal["utf-8", "gzip+base64"] = "utf-8"

    def payload(self) -> Any:
        """The delivery's JSON body, decoded (ValueError when it is not JSON)."""
        raw = (
            gzip.decompress(base64.b64decode(self.body))
            if self.body_encoding == "gzip+base64"
            else self.body.encode("utf-8")
        )
        return json.loads(raw)


def envelope_for(headers: Mapping[str, str], raw_body: bytes, path_topic: str | None) -> WebhookEnvelope:
    """The envelope of a delivery whose signature was already verified. Headers are matched case-insensitively."""
    lower = {key.lower(): value for key, value in headers.items()}
    webhook_id = lower.get("x-shopify-webhook-id") or "sha256:" + hashlib.sha256(raw_body).hexdigest()
    if len(raw_body) > COMPRESS_ABOVE_BYTES:
        body, encoding = base64.b64encode(gzip.compress(raw_body, compresslevel=6)).decode("ascii"), "gzip+base64"
    else:
        try:
            body, encoding = raw_body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(gzip.compress(raw_body)).decode("ascii"), "gzip+base64"
    return WebhookEnvelope(
        topic=(lower.get("x-shopify-topic") or path_topic or "").strip().lower(),
        shop=(lower.get("x-shopify-shop-domain") or "").strip().lower(),
        webhook_id=webhook_id,
        event_id=lower.get("x-shopify-event-id"),
        triggered_at=lower.get("x-shopify-triggered-at"),
        api_version=lower.get("x-shopify-api-version"),
        body=body,
        body_encoding=encoding,  # type: ignore[arg-type]
    )


def delivery_time_problem(triggered_at: str | None, *, now: datetime, max_age_seconds: int) -> str | None:
    """Why a delivery's `X-Shopify-Triggered-At` refuses it at intake, or None when it is fresh.

    The signature covers the body only, so a captured delivery could be replayed for as long as its body is
    authentic; the trigger time bounds that to the window (0 switches the check off).
    """
    if max_age_seconds == 0:
        return None
    if not triggered_at:
        return "the delivery has no trigger time"
    try:
        moment = datetime.fromisoformat(triggered_at.strip())
    except ValueError:
        return "the trigger time is not an ISO 8601 time"
    if moment.tzinfo is None:
        return "the trigger time has no time zone"
    if moment > now + FUTURE_LEEWAY:
        return "the trigger time is in the future"
    if now - moment > timedelta(seconds=max_age_seconds):
        return f"the delivery was triggered more than {max_age_seconds} seconds ago"
    return None
