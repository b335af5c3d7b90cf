"""Webhook intake: verify the signature over the exact raw body, then queue the delivery. Nothing else inline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reclift.http import BadRequest
from reclift.signatures import verify_webhook
from reclift.webhooks import MAX_WEBHOOK_BYTES, delivery_time_problem, envelope_for

TRIGGERED_AT_HEADER = "x-shopify-triggered-at"


class PayloadTooLarge(ValueError):
    """A delivery too large to queue."""


@dataclass(frozen=True)
class Accepted:
    topic: str
    shop: str
    webhook_id: str
    message_id: str


def accept_webhook(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    path_topic: str | None,
    secrets: Sequence[str],
    send: Callable[..., str],
    now: datetime,
    max_age_seconds: int,
) -> Accepted:
    """Verify (SignatureError → 401), refuse what cannot be queued (PayloadTooLarge → 413) and a replay of an old
    delivery (BadRequest → 400), queue the rest. A delivery re-driven from the DLQ never comes back through here."""
    lower = {key.lower(): value for key, value in headers.items()}
    verify_webhook(raw_body, lower.get("x-shopify-hmac-sha256"), secrets)
    if len(raw_body) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"the body has {len(raw_body)} bytes; at most {MAX_WEBHOOK_BYTES} can be queued")
    problem = delivery_time_problem(lower.get(TRIGGERED_AT_HEADER), now=now, max_age_seconds=max_age_seconds)
    if problem is not None:
        raise BadRequest(TRIGGERED_AT_HEADER, problem)
    envelope = envelope_for(lower, raw_body, path_topic)
    message_id = send(envelope.model_dump_json(), topic=envelope.topic)
    return Accepted(topic=envelope.topic, shop=envelope.shop, webhook_id=envelope.webhook_id, message_id=message_id)
