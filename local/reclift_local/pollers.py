"""SQS event sources: what Lambda's pollers do, on a thread per event source, against the emulator's queues."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .emulator import QueueInfo
from .output import Output
from .template import SqsSource
from .workers import Outcome

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# The system attributes Lambda copies into a record's `attributes`.
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
# Invocations that never returned: the runtime died or timed out in the middle of the batch.
UNFINISHED_INVOCATION_ERRORS = frozenset({"Runtime.ExitError", "Sandbox.Timedout"})


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS's message attributes in the shape Lambda gives them (camelCase, with the list fields always present)."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            item["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        item["stringListValues"] = list(value.get("StringListValues") or [])
        item["binaryListValues"] = [
            base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in value.get("BinaryListValues") or []
        ]
        item["dataType"] = value["DataType"]
        out[name] = item
    return out


def sqs_record(message: MessageTypeDef | dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {str(k): v for k, v in (message.get("Attributes") or {}).items()}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {key: attributes[key] for key in RECORD_ATTRIBUTES if key in attributes},
        "messageAttributes": lambda_message_attributes(dict(message.get("MessageAttributes") or {})),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(
        {
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record


def failed_message_ids(source: SqsSource, messages: list[dict[str, Any]], outcome: Outcome) -> set[str]:
    """The messages of a batch that must stay on the queue, by Lambda's rules."""
    every = {str(m["messageId"]) for m in messages}
    if not outcome.ok:
        return every
    if not source.report_batch_item_failures:
        return set()
    result = outcome.result
    if result is None or result == {}:
        return set()
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return every
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        # An empty, missing or unknown identifier makes Lambda treat the whole batch as failed.
        if not isinstance(identifier, str) or identifier not in every:
            return every
        failed.add(identifier)
    return failed


class SqsPoller:
    def __init__(
        self,
        source: SqsSource,
        queue: QueueInfo,
        sqs: SQSClient,
        invoke: Callable[[str, Any], Outcome],
        *,
        region: str,
        retry_delay: int,
        function_timeout: int,
        output: Output,
        on_failed_records: Callable[[str, int], None],
    ) -> None:
        self.source = source
        self.queue = queue
        self.sqs = sqs
        self.invoke = invoke
        self.region = region
        self.retry_delay = retry_delay
        self.function_timeout = function_timeout
        self.output = output
        self.on_failed_records = on_failed_records
        self.busy = False  # True from the receive that returned messages until the batch is settled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{source.function}-{source.event}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                if self._stop.is_set():
                    break
                self.output.line(self.source.function, f"SQS poller error on {self.queue.name}: {exc}")
                self._stop.wait(1.0)

    def poll_once(self) -> None:
        response = self.sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=max(1, min(self.source.batch_size, 10)),
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages") or []
        if not messages:
            return
        self.busy = True
        try:
            self._process(list(messages))
        finally:
            self.busy = False

    def _process(self, messages: list[MessageTypeDef]) -> None:
        records = [sqs_record(m, self.queue.arn, self.region) for m in messages]
        outcome = self.invoke(self.source.function, {"Records": records})
        failed = failed_message_ids(self.source, records, outcome)
        handles = {r["messageId"]: r["receiptHandle"] for r in records}
        done = [(mid, handle) for mid, handle in handles.items() if mid not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, (_, handle) in enumerate(chunk)],
            )
        if failed:
            self.on_failed_records(self.source.function, len(failed))
            # Locally the queue's visibility timeout (minutes, sized for AWS) would stall every retry: failed
            # messages come back after the short retry delay instead; receive counts and the DLQ work as on AWS.
            # Not before the function's timeout, though, when the invocation never returned: its deliveries stay
            # marked in progress (idempotency) until its deadline, and retried sooner they would reach the DLQ
            # still marked, where on AWS the visibility timeout (six times the function's) outlasts the mark.
            delay = self.retry_delay
            if not outcome.ok and (outcome.error or {}).get("errorType") in UNFINISHED_INVOCATION_ERRORS:
                delay = max(self.retry_delay, self.function_timeout)
            retry = [handles[mid] for mid in failed]
            for start in range(0, len(retry), 10):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": delay}
                        for i, h in enumerate(retry[start : start + 10])
                    ],
                )


def redrive(sqs: SQSClient, dlq: QueueInfo, target: QueueInfo) -> int:
    """Move every message from a DLQ back to its source queue (moto has no StartMessageMoveTask)."""
    moved = 0
    while True:
        response = sqs.receive_message(
            QueueUrl=dlq.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=30,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages") or []
        if not messages:
            return moved
        for message in messages:
            kwargs: dict[str, Any] = {"QueueUrl": target.url, "MessageBody": message.get("Body", "")}
            if message.get("MessageAttributes"):
                kwargs["MessageAttributes"] = message["MessageAttributes"]
            group = (message.get("Attributes") or {}).get("MessageGroupId")
            if group:
                kwargs["MessageGroupId"] = group
                kwargs["MessageDeduplicationId"] = message["MessageId"]
            sqs.send_message(**kwargs)
            sqs.delete_message(QueueUrl=dlq.url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
