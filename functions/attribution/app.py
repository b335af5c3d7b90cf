"""AttributionFunction: the webhook queue's worker. Failed records are reported one by one, so the rest of the
batch is kept, and a delivery that keeps failing ends in the DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift.logic.queue_worker import handle_message, register_context
from reclift.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    try:
        summary = handle_message(record.body)
    except Exception:
        metrics.add_metric(name="DeliveriesFailed", unit=MetricUnit.Count, value=1)
        logger.exception("delivery failed", extra={"message_id": record.message_id})
        raise
    metrics.add_metric(name="DeliveriesProcessed", unit=MetricUnit.Count, value=1)
    if summary.get("attributed_lines"):
        metrics.add_metric(name="AttributedLines", unit=MetricUnit.Count, value=summary["attributed_lines"])
    logger.info("delivery processed", extra={"message_id": record.message_id, "summary": summary})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    register_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
