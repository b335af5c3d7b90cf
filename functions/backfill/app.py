"""BackfillFunction: a newly installed shop's products (into the catalog) and recent orders (their baskets, then
similarity) from the Shopify Admin GraphQL API, with the shop's offline access grant from SSM: an expiring access
token is refreshed (and the rotated grant stored) when it nears its hourly expiry between pages, or once when the
Admin API answers 401; a refresh Shopify refuses marks the shop for a new token exchange at its next admin visit and
fails the invocation (the message is retried, then lands in the DLQ).

It works the backfill queue: the installation queues `{"shop": "<shop>.myshopify.com", "what": "all"}` once the
token is stored. It can also be invoked with that same object (`"what": "all" | "orders" | "products"`, optionally
`"restart": true`), which answers the run's summary. A run stops a minute before the invocation's deadline with its
cursor saved; from the queue it then queues its own continuation, invoked it answers `"complete": false` and
invoking it again resumes there. A failing Admin API fails the invocation (the message is retried, then lands in the
DLQ), with the progress kept for the retry. A shop that uninstalled reclift meanwhile is skipped.

Its nightly schedule (01:30 UTC) queues one replay job per installed shop, from 26 hours before. Invoked with
`{"shop": …, "what": "replay", "since": "<ISO-8601 time>"}` (or given that job from the queue) it replays the order
deliveries Shopify dropped since then (reclift.logic.replay): what the shop's orders hold that reclift never received
is queued on the webhook queue as the delivery it would have been. A run that stops before its deadline answers
`"complete": false` with `resume_from`, which a next invocation passes on (from the queue it queues that continuation
itself). From the queue, the orders a replay could not read back go into jobs that name them (`"orders": [ids]`),
which fail until the orders can be read: retried, then in the DLQ.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.data.backfill import BackfillProgress, BackfillStore
from reclift.data.installs import backfill_queue, install_registry, token_vault
from reclift.data.learning import LearningStore
from reclift.data.queue import send_all
from reclift.data.replay import ReplayStore
from reclift.data.store import dynamo_store
from reclift.logic.admin_tokens import ShopAccessTokens
from reclift.logic.backfill import run_backfill
from reclift.logic.install import BackfillJob, parse_backfill_job, serves
from reclift.logic.replay import fan_out_replays, follow_up_jobs, replay_named_orders, replay_orders
from reclift.logic.scheduled import fired_at
from reclift.observability import logger, metrics
from reclift.shopify_admin import AdminClient

STOP_BEFORE_DEADLINE_MS = 60_000

processor = BatchProcessor(event_type=EventType.SQS)


def run_job(job: BackfillJob, context: LambdaContext) -> dict[str, Any]:
    if not serves(install_registry().installation(job.shop)):
        logger.info("backfill skipped: the shop uninstalled reclift")
        return {"shop": job.shop, "skipped": "uninstalled", "complete": False}
    tokens = ShopAccessTokens(job.shop, token_vault(), install_registry())
    client = AdminClient(job.shop, "", tokens=tokens)
    result = run_replay(job, client, context) if job.replay else run_backfills(job, client, context)
    if tokens.refreshes:
        metrics.add_metric(name="AccessTokensRefreshed", unit=MetricUnit.Count, value=tokens.refreshes)
    return result


def run_backfills(job: BackfillJob, client: AdminClient, context: LambdaContext) -> dict[str, Any]:
    def report(progress: BackfillProgress) -> None:
        logger.info(
            "backfill page stored",
            extra={"what": progress.what, "pages": progress.pages, "stored": progress.stored},
        )

    result = run_backfill(
        job.shop,
        job.whats,
        client,
        BackfillStore(),
        dynamo_store(),
        restart=job.restart,
        keep_going=lambda: context.get_remaining_time_in_millis() > STOP_BEFORE_DEADLINE_MS,
        on_progress=report,
    )
    metrics.add_metric(
        name="BackfillPages",
        unit=MetricUnit.Count,
        value=sum(result[what]["pages"] for what in job.whats if what in result),
    )
    logger.info("backfill finished" if result["complete"] else "backfill paused", extra={"result": result})
    return result


def run_replay(job: BackfillJob, client: AdminClient, context: LambdaContext) -> dict[str, Any]:
    """Queue on the webhook queue what the shop's orders since `job.since` (or the orders the job names) hold that
    reclift never received."""
    if job.since is None:  # BackfillJob refuses a replay without it
        raise ValueError("a replay names since")
    if job.orders:
        outcome = replay_named_orders(
            job.shop, client, ReplayStore(), job.orders, since=job.since, now=datetime.now(UTC)
        )
    else:
        outcome = replay_orders(
            job.shop,
            client,
            ReplayStore(),
            since=job.since,
            now=datetime.now(UTC),
            resume_from=job.resume_from,
            keep_going=lambda: context.get_remaining_time_in_millis() > STOP_BEFORE_DEADLINE_MS,
        )
    result = outcome.as_dict()
    metrics.add_metric(name="ReplayedDeliveries", unit=MetricUnit.Count, value=sum(outcome.queued.values()))
    if outcome.unreadable:
        metrics.add_metric(name="ReplayUnreadableOrders", unit=MetricUnit.Count, value=outcome.unreadable)
        logger.warning("replay could not read orders", extra={"unreadable_orders": outcome.unreadable_orders})
    logger.info("replay finished" if outcome.complete else "replay paused", extra={"result": result})
    return result


def record_handler(record: SQSRecord, context: LambdaContext) -> None:
    job = parse_backfill_job(record.body)
    result = run_job(job, context)
    if "skipped" in result:
        return
    if job.replay:
        for follow_up in follow_up_jobs(job, result):
            backfill_queue().queue_job(follow_up.model_dump_json())
    elif not result["complete"]:
        backfill_queue().queue_backfill(job.shop, what=job.what)


def queue_jobs(bodies: list[str]) -> int:
    return send_all(config.required("BACKFILL_QUEUE_URL"), bodies)


def nightly_replays(fired: datetime) -> dict[str, Any]:
    """The nightly schedule: one replay job per shop whose orders can be read back, on the backfill queue."""
    summary = fan_out_replays(LearningStore().shops(), install_registry().installation, queue_jobs, fired=fired)
    metrics.add_metric(name="ReplayJobsQueued", unit=MetricUnit.Count, value=summary["shops"])
    logger.info("replays fanned out", extra=summary)
    return summary


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if isinstance(event, dict) and event.get("source") == "aws.events":
        return nightly_replays(fired_at(event))
    if isinstance(event, dict) and "Records" in event:
        return process_partial_response(
            event=event,
            record_handler=lambda record: record_handler(record, context),
            processor=processor,
            context=context,
        )
    return run_job(parse_backfill_job(event), context)
