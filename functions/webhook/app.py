"""WebhookFunction: Shopify → API Gateway → verify the HMAC over the exact body → SQS. Answers within Shopify's 5 s."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.data.queue import send_webhook
from reclift.http import BadRequest, json_response, raw_body
from reclift.logic.intake import PayloadTooLarge, accept_webhook
from reclift.observability import logger, metrics
from reclift.signatures import SignatureError


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        accepted = accept_webhook(
            event.get("headers") or {},
            raw_body(event),
            path_topic=(event.get("pathParameters") or {}).get("topic"),
            secrets=config.api_secrets(),
            send=send_webhook,
            now=datetime.now(UTC),
            max_age_seconds=config.webhook_max_age_seconds(),
        )
    except SignatureError as exc:
        metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
        if exc.mismatched:  # what WebhookSignatureMismatchAlarm reads
            metrics.add_metric(name="SignaturesMismatched", unit=MetricUnit.Count, value=1)
        logger.warning("webhook rejected", extra={"reason": exc.reason})
        return json_response(401, {"error": "invalid webhook signature"})
    except BadRequest as exc:
        metrics.add_metric(name="WebhooksRefused", unit=MetricUnit.Count, value=1)
        logger.warning("webhook refused", extra={"reason": exc.message, "field": exc.field})
        return json_response(exc.status, {"error": exc.message, "field": exc.field})
    except PayloadTooLarge as exc:
        metrics.add_metric(name="WebhooksTooLarge", unit=MetricUnit.Count, value=1)
        logger.warning("webhook refused", extra={"reason": str(exc)})
        return json_response(413, {"error": str(exc)})
    metrics.add_metric(name="WebhooksAccepted", unit=MetricUnit.Count, value=1)
    logger.info("webhook queued", extra={"topic": accepted.topic, "shop": accepted.shop})
    return json_response(200, {"queued": True, "webhook_id": accepted.webhook_id})
