"""HealthCheckFunction: every hour it fans out one message per shop; each message (SQS) checks one shop's health,
sends each alert or recovery once (SNS, Slack) and keeps the state for the admin. Failed shops are reported one by
one and end in the health DLQ."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.data.alerts import alert_channels
from reclift.data.health import health_store
from reclift.data.learning import LearningStore
from reclift.data.queue import send_all
from reclift.logic.health import check_shop, fan_out, parse_job
from reclift.logic.scheduled import ShopJobs
from reclift.observability import logger, metrics


def queue_jobs(bodies: list[str]) -> int:
    return send_all(config.required("HEALTH_QUEUE_URL"), bodies)


def record_handler(record: SQSRecord) -> None:
    job = parse_job(record.body)
    summary = check_shop(job.shop, health_store(), alert_channels(), now=datetime.now(UTC))
    metrics.add_metric(name="ShopsChecked", unit=MetricUnit.Count, value=1)
    if summary["alerts"]:
        metrics.add_metric(name="HealthAlertsSent", unit=MetricUnit.Count, value=len(summary["alerts"]))
    logger.info("shop checked", extra={"summary": summary})


jobs = ShopJobs(
    record_handler=record_handler,
    fan_out=lambda fired: fan_out(LearningStore().shops(), queue_jobs, scheduled_at=fired),
    queued_metric="HealthChecksQueued",
    fanned_out_message="health checks fanned out",
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return jobs.handle(event, context)
