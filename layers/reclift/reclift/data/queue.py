"""The webhook queue (SQS), reached through boto3 with a client made once per execution environment."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from reclift import config

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


class QueueError(RuntimeError):
    """The message could not be queued."""


@cache
def _sqs() -> SQSClient:
    return boto3.client("sqs")


def send_webhook(message_body: str, *, topic: str) -> str:
    """Queue one webhook envelope; returns the SQS message id."""
    try:
        response = _sqs().send_message(
            QueueUrl=config.required("WEBHOOK_QUEUE_URL"),
            MessageBody=message_body,
            MessageAttributes={"topic": {"DataType": "String", "StringValue": topic or "unknown"}},
        )
    except (BotoCoreError, ClientError) as exc:
        raise QueueError(f"queueing the webhook failed: {exc}") from exc
    return response["MessageId"]


def send_all(url: str, bodies: list[str]) -> int:
    """Queue every body on the queue at `url`, ten to a SendMessageBatch call; QueueError if any could not be."""
    for start in range(0, len(bodies), 10):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
        ]
        try:
            response = _sqs().send_message_batch(QueueUrl=url, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            raise QueueError(f"queueing failed: {exc}") from exc
        if response.get("Failed"):
            raise QueueError(f"{len(response['Failed'])} messages could not be queued")
    return len(bodies)
