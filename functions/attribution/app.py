"""AttributionFunction: the webhook queue's worker. Failed records are reported one by one, so the rest of the
batch is kept, and a delivery that keeps failing ends in the DLQ."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift.data.store import StoreError, dynamo_store
from reclift.logic.queue_worker import handle_message, register_context, shop_of
from reclift.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    try:
        summary = handle_message(record.body)
    except Exception:
        metrics.add_metric(name="DeliveriesFailed", unit=MetricUnit.Count, value=1)
        logger.exception("delivery failed", extra={"message_id": record.message_id})
        count_shop_error(record.body)
        raise
    metrics.add_metric(name="DeliveriesProcessed", unit=MetricUnit.Count, value=1)
    if summary.get("attributed_lines") and not summary.get("duplicate"):
        metrics.add_metric(name="AttributedLines", unit=MetricUnit.Count, value=summary["attributed_lines"])
        purchases = summary.get("attributed_products", 0)
        metrics.add_metric(name="AttributedPurchases", unit=MetricUnit.Count, value=purchases)
        metrics.add_metric(name="AttributedOrders", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="AttributedRevenue", unit=MetricUnit.NoUnit, value=float(Decimal(summary["attributed_revenue"]))
        )
    logger.info("delivery processed", extra={"message_id": record.message_id, "summary": summary})


def count_shop_error(body: str) -> None:
    """The shop's failed attempt, in its hourly totals (what its health check's error rate reads); a failure to
    count it is logged, never raised over the delivery's own error."""
    shop = shop_of(body)
    if shop is None:
        return
    try:
        dynamo_store().add_hour_counts(shop, datetime.now(UTC), {"errors": 1})
    except StoreError:
        logger.warning("the failed delivery could not be counted for its shop")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    register_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
