"""DailyLearningFunction: on its nightly schedule it fans out one message per shop; each message (SQS) learns one
shop's product performance. Failed shops are reported one by one and end in the learning DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.data.learning import LearningStore
from reclift.data.queue import send_all
from reclift.data.store import dynamo_store
from reclift.logic.learning import fan_out, learn_shop, parse_job
from reclift.logic.scheduled import ShopJobs
from reclift.observability import logger, metrics


def queue_jobs(bodies: list[str]) -> int:
    return send_all(config.required("LEARNING_QUEUE_URL"), bodies)


def record_handler(record: SQSRecord) -> None:
    summary = learn_shop(parse_job(record.body), LearningStore(), dynamo_store())
    metrics.add_metric(name="ShopsLearned", unit=MetricUnit.Count, value=1)
    logger.info("shop learned", extra={"summary": summary})


# The window ends on the day the schedule fires (at 02:00 UTC the day just ended is its latest full day).
jobs = ShopJobs(
    record_handler=record_handler,
    fan_out=lambda fired: fan_out(LearningStore(), queue_jobs, day=fired.date()),
    queued_metric="LearningJobsQueued",
    fanned_out_message="learning fanned out",
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return jobs.handle(event, context)
