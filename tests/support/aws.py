"""The template's resources in an embedded moto server, and the functions run in-process against it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from reclift_local.output import Output
from reclift_local.pollers import sqs_record
from reclift_local.sign import DEV_API_SECRET
from reclift_local.stack import LocalStack, StackOptions
from reclift_local.streams import Delivery, StreamConsumer
from reclift_local.worker import LambdaContext, function_env, load_handler
from reclift_local.workers import Outcome, function_environment

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
_ACTIVE: EmulatedAws | None = None  # the emulator this process's cached clients were made for


@dataclass
class EmulatedAws:
    """moto server with every table, queue and secret of template.yaml, as `make run` provisions them."""

    stack: LocalStack
    endpoint: str
    handlers: dict[str, Any] = field(default_factory=dict)  # loaded once, like a warm execution environment
    # The functions' DynamoDB stream event sources, each where it stands in its stream (see `process_stream`).
    streams: dict[str, list[StreamConsumer]] = field(default_factory=dict)

    def environment(self, logical_id: str) -> dict[str, str]:
        """The environment the function gets on Lambda (here pointed at the emulator)."""
        env = function_environment(
            self.stack.specs[logical_id],
            region=REGION,
            endpoint=self.endpoint,
            dynamodb_endpoint=self.stack.dynamodb_endpoint,
        )
        for key in ("PYTHONPATH", "PATH", "HOME", "LANG", "TZ", "PYTHONDONTWRITEBYTECODE"):
            env.pop(key, None)
        return env

    def client(self, service: Any) -> Any:
        """A boto3 client of the emulated AWS (DynamoDB Local's endpoint for DynamoDB and its streams when it is
        used)."""
        endpoint = self.stack.dynamodb_endpoint if service in {"dynamodb", "dynamodbstreams"} else None
        return boto3.client(service, endpoint_url=endpoint or self.endpoint, region_name=REGION)

    def resource(self, logical_id: str) -> str:
        return self.stack.resources()[logical_id]

    def empty_queues(self, *logical_ids: str) -> None:
        """Take every message off these queues (moto allows one PurgeQueue a minute, so one by one)."""
        sqs = self.client("sqs")
        for logical_id in logical_ids:
            url = self.resource(logical_id)
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in batch:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def empty_tables(self) -> int:
        """Delete every item of every table, then move the functions' stream consumers past the deletions (what the
        tests before left behind, delivered to none after); returns how many items were deleted."""
        dynamodb = self.client("dynamodb")
        deleted = 0
        for name in dynamodb.list_tables()["TableNames"]:
            schema = dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
            names = {f"#k{i}": key["AttributeName"] for i, key in enumerate(schema)}
            keys = [
                item
                for page in dynamodb.get_paginator("scan").paginate(
                    TableName=name, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
                )
                for item in page["Items"]
            ]
            batch_write(dynamodb, name, [{"DeleteRequest": {"Key": key}} for key in keys])
            deleted += len(keys)
        for logical_id in self.streams:
            skip_streams(self, logical_id)
        return deleted

    def invoke(self, logical_id: str, event: Any, *, env: dict[str, str] | None = None) -> Any:
        """Run the function's handler in this process with its own environment (`env` overrides some of it, as a
        stack deployed with other parameter values would set it), as one Lambda invocation."""
        global _ACTIVE
        if _ACTIVE is not self:
            # Another emulator was used since: its clients and bindings must not serve this one.
            forget_execution_environment()
            _ACTIVE = self
        spec = self.stack.specs[logical_id]
        with function_env(self.environment(logical_id) | (env or {})):
            # One process runs every function here; on Lambda each has its own, whose metrics carry its service and
            # the namespace its environment names. Both are read when the shared Metrics is first imported, which
            # may have been in a test that set neither (the in-memory store's contract tests import reclift bare).
            from reclift.observability import metrics

            metrics.service = os.environ.get("POWERTOOLS_SERVICE_NAME")
            metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
            if logical_id not in self.handlers:
                self.handlers[logical_id] = load_handler(spec.code_dir, spec.handler, spec.name)
            handler = self.handlers[logical_id]
            context = LambdaContext(
                request_id=str(uuid.uuid4()),
                invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{spec.name}",
                deadline_ms=int(time.time() * 1000) + spec.timeout * 1000,
            )
            return handler(event, context)


def batch_write(dynamodb: Any, table: str, requests: Sequence[dict[str, Any]]) -> None:
    """`requests` (PutRequest and DeleteRequest entries) sent to `table` 25 to a BatchWriteItem, what the engine
    leaves unprocessed sent again."""
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: list(requests[start : start + 25])}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def queued(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message on the queue, taken off it."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages += batch


def process_queue(aws: EmulatedAws, sqs: Any, url: str) -> dict[str, Any]:
    """Hand everything queued to the AttributionFunction as Lambda's SQS poller would."""
    records = [sqs_record(message, f"arn:aws:sqs:{REGION}:123456789012:queue", REGION) for message in queued(sqs, url)]
    result: dict[str, Any] = aws.invoke("AttributionFunction", {"Records": records})
    return result


def invoke_outcome(aws: EmulatedAws, logical_id: str, event: Any) -> Outcome:
    """One in-process invocation, its exception (if any) reported as Lambda reports a function error."""
    request_id = str(uuid.uuid4())
    started = time.monotonic()
    try:
        result = aws.invoke(logical_id, event)
    except Exception as exc:  # the function's error, whatever it is, is the invocation's outcome
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        return Outcome(request_id, (time.monotonic() - started) * 1000, error=error)
    return Outcome(request_id, (time.monotonic() - started) * 1000, result=result)


def process_stream(aws: EmulatedAws, logical_id: str, *, max_invocations: int = 1000) -> list[Delivery]:
    """Hand the function everything written to its DynamoDB streams since the last call (since the emulator was
    provisioned, at first), in-process and synchronously, as Lambda's event source mapping would: in order, in
    batches of its BatchSize (without waiting for the batching window), with its retries, bisection and OnFailure
    destination. Returns every invocation made, in order, with its records and outcome."""
    deliveries: list[Delivery] = []

    def record(delivery: Delivery) -> None:
        deliveries.append(delivery)
        if len(deliveries) > max_invocations:
            raise RuntimeError(f"{logical_id} was invoked {len(deliveries)} times: a record it retries forever?")

    for consumer in aws.streams.get(logical_id, []):
        consumer.on_delivery = record
        try:
            while consumer.step(wait=False):
                pass
        finally:
            consumer.on_delivery = None
    return deliveries


def skip_streams(aws: EmulatedAws, logical_id: str) -> int:
    """Move the function's stream event sources past everything written so far, delivering nothing (a test that
    wants only its own writes); returns how many records were passed over."""
    skipped = 0
    for consumer in aws.streams.get(logical_id, []):
        skipped += consumer.skip()
    return skipped


def forget_execution_environment() -> None:
    """What a Lambda execution environment keeps between invocations (clients, table bindings, the cached
    secret), forgotten: this process is about to talk to a new emulator, as a new execution environment would."""
    from aws_lambda_powertools.utilities import parameters

    from reclift.data import alerts, health, models, queue, serving, store
    from reclift.logic import queue_worker

    for cached in (
        queue._sqs,
        serving._dynamodb,
        serving.serving_reader,
        store.dynamo_store,
        queue_worker._idempotent,
        alerts._sns,
        health.health_store,
        health.served_tally,
    ):
        cached.cache_clear()
    models.reset_bindings()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@contextmanager
def emulated_aws(
    state_dir: Path, *, database: str = "moto", template: Path | None = None, retry_delay: int = 0
) -> Iterator[EmulatedAws]:
    """`database="dynamodb-local"` keeps the tables in AWS's DynamoDB Local instead of moto; `template` another
    template than the project's (the runner's own tests); stream retries wait `retry_delay` seconds."""
    options = StackOptions(
        database=database,
        template=template or ROOT / "template.yaml",
        state_file=state_dir / "stack.json",
        environ={**os.environ, "SHOPIFY_API_SECRET": DEV_API_SECRET},
        report=False,
    )
    stack = LocalStack(options, output=Output())
    endpoint = stack.provision()
    try:
        emulated = EmulatedAws(stack=stack, endpoint=endpoint)
        # The mappings start with the stack, as they would with the deployment: LATEST is the end of the streams now.
        for consumer in stack.stream_consumers(partial(invoke_outcome, emulated), retry_delay=retry_delay):
            consumer.start()
            emulated.streams.setdefault(consumer.source.function, []).append(consumer)
        yield emulated
    finally:
        stack.stop()
