"""Webhook intake: verify the signature over the exact raw body, then queue the delivery. Nothing else inline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reclift.signatures import verify_webhook
from reclift.webhooks import MAX_WEBHOOK_BYTES, envelope_for


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
) -> Accepted:
    """Verify (SignatureError → 401), refuse what cannot be queued (PayloadTooLarge → 413), queue the rest."""
    lower = {key.lower(): value for key, value in headers.items()}
    verify_webhook(raw_body, lower.get("x-shopify-hmac-sha256"), secrets)
    if len(raw_body) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"the body has {len(raw_body)} bytes; at most {MAX_WEBHOOK_BYTES} can be queued")
    envelope = envelope_for(lower, raw_body, path_topic)
    message_id = send(envelope.model_dump_json(), topic=envelope.topic)
    return Accepted(topic=envelope.topic, shop=envelope.shop, webhook_id=envelope.webhook_id, message_id=message_id)
