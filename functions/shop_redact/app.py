"""ShopRedactFunction: erases a shop that Shopify asked to redact, from the queue the webhook worker feeds once the
`shop/redact` delivery is verified. By key, never by scanning other shops' items; a shop too large for one
invocation is continued by a message of its own a minute before the deadline."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift.data.erasure import shop_eraser
from reclift.logic.shop_redaction import erase_shop, parse_shop_redaction_job
from reclift.observability import logger, metrics

STOP_BEFORE_DEADLINE_MS = 60_000

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord, context: LambdaContext) -> None:
    summary = erase_shop(
        parse_shop_redaction_job(record.body),
        shop_eraser(),
        keep_going=lambda: context.get_remaining_time_in_millis() > STOP_BEFORE_DEADLINE_MS,
    )
    metrics.add_metric(name="ShopItemsErased", unit=MetricUnit.Count, value=sum(summary["deleted"].values()))
    logger.info("shop erased" if summary["complete"] else "shop erasure continues", extra={"summary": summary})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, context),
        processor=processor,
        context=context,
    )
