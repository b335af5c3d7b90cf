"""The entry of a function that runs a job for every shop: its schedule fires it to fan out one message per shop,
and its queue feeds those messages back to it in batches, each failed shop reported on its own (so only it is
retried and, failing still, ends in the function's DLQ)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift.observability import logger, metrics


def fired_at(event: dict[str, Any]) -> datetime:
    """When the schedule fired (the scheduled event's `time`), or now for an invocation without one."""
    fired = str(event.get("time") or datetime.now(UTC).isoformat())
    return datetime.fromisoformat(fired.replace("Z", "+00:00"))


@dataclass
class ShopJobs:
    """`record_handler` works one queued shop job; `fan_out` queues one job per shop for the time the schedule
    fired and returns its summary, whose `shops` (the count sent) is counted in `queued_metric`."""

    record_handler: Callable[[SQSRecord], None]
    fan_out: Callable[[datetime], dict[str, Any]]
    queued_metric: str
    fanned_out_message: str
    processor: BatchProcessor = field(default_factory=lambda: BatchProcessor(event_type=EventType.SQS))

    def handle(self, event: dict[str, Any], context: LambdaContext) -> Any:
        """A batch of queued jobs is worked record by record; anything else is the schedule firing."""
        if "Records" in event:
            return process_partial_response(
                event=event, record_handler=self.record_handler, processor=self.processor, context=context
            )
        summary = self.fan_out(fired_at(event))
        metrics.add_metric(name=self.queued_metric, unit=MetricUnit.Count, value=summary["shops"])
        logger.info(self.fanned_out_message, extra=summary)
        return summary
