"""The webhook queue's worker: each SQS record is one delivery, processed at most once per Shopify delivery id
(Powertools idempotency, keyed on shop and `X-Shopify-Webhook-Id`) and exactly once per order (conditional writes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from reclift import config
from reclift.data.store import dynamo_store
from reclift.ids import shop_domain
from reclift.logic.deliveries import UnprocessableDelivery, process_delivery
from reclift.webhooks import WebhookEnvelope

# Shopify retries a failed delivery for up to 48 hours under the same webhook id.
DELIVERY_MEMORY_SECONDS = 3 * 24 * 3600


def _process(envelope: dict[str, Any]) -> dict[str, Any]:
    return process_delivery(WebhookEnvelope.model_validate(envelope), dynamo_store())


@cache
def _idempotent() -> tuple[IdempotencyConfig, Callable[..., dict[str, Any]]]:
    idempotency = IdempotencyConfig(
        event_key_jmespath="[shop, webhook_id]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=DELIVERY_MEMORY_SECONDS,
    )
    persistence = DynamoDBPersistenceLayer(table_name=config.required("IDEMPOTENCY_TABLE"))
    process = idempotent_function(data_keyword_argument="envelope", config=idempotency, persistence_store=persistence)(
        _process
    )
    return idempotency, process


def register_context(context: LambdaContext) -> None:
    """Lets an interrupted delivery's in-progress mark expire with the invocation, so a retry can run it."""
    _idempotent()[0].register_lambda_context(context)


def handle_message(body: str) -> dict[str, Any]:
    """Process one queued envelope; raises (the record is retried, then lands in the DLQ) when it cannot."""
    try:
        envelope = WebhookEnvelope.model_validate(json.loads(body))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise UnprocessableDelivery("the queued message is not a webhook envelope") from exc
    return _idempotent()[1](envelope=envelope.model_dump())


def shop_of(body: str) -> str | None:
    """The shop a queued envelope belongs to, when it can be read at all."""
    try:
        return shop_domain(WebhookEnvelope.model_validate(json.loads(body)).shop)
    except (ValueError, ValidationError):
        return None
