"""SimilarityFunction: on its daily schedule it fans out one message per shop; each message (SQS) computes one
shop's co-purchase neighbours. Failed shops are reported one by one and end in the similarity DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.data.learning import LearningStore
from reclift.data.queue import send_all
from reclift.data.similarity import SimilarityStore
from reclift.data.store import dynamo_store
from reclift.logic.scheduled import ShopJobs
from reclift.logic.similarity import fan_out, parse_job, similarity_for_shop
from reclift.observability import logger, metrics


def queue_jobs(bodies: list[str]) -> int:
    return send_all(config.required("SIMILARITY_QUEUE_URL"), bodies)


def record_handler(record: SQSRecord) -> None:
    job = parse_job(record.body)
    summary = similarity_for_shop(job.shop, job.now, SimilarityStore(), dynamo_store())
    metrics.add_metric(name="ShopsSimilarityComputed", unit=MetricUnit.Count, value=1)
    logger.info("shop similarity computed", extra={"summary": summary})


jobs = ShopJobs(
    record_handler=record_handler,
    fan_out=lambda fired: fan_out(LearningStore(), queue_jobs, now=fired),
    queued_metric="SimilarityJobsQueued",
    fanned_out_message="similarity fanned out",
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return jobs.handle(event, context)
