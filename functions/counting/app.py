"""CountingFunction: reads the events table's stream in batches and adds what the new events count to the shops'
counters (a product shown in many requests of a batch is one counter update). A batch that fails is retried, halved
until the failing record is alone, and then kept in the counting failure queue, visible and re-drivable."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift.data.store import dynamo_store
from reclift.logic.counting import count_stream
from reclift.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    counted = count_stream(records, dynamo_store())
    metrics.add_metric(name="StreamRecordsRead", unit=MetricUnit.Count, value=len(records))
    metrics.add_metric(name="EventsCounted", unit=MetricUnit.Count, value=counted.events)
    metrics.add_metric(name="CounterUpdates", unit=MetricUnit.Count, value=counted.counters)
    return {"records": len(records), "events": counted.events, "shops": counted.shops, "counters": counted.counters}
