"""Where alerts go: the alerts SNS topic (its email subscription) and, when configured, a Slack incoming webhook.

The webhook URL is a secret (whoever holds it can post to the channel): it comes from SSM Parameter Store, named by
`SLACK_WEBHOOK_URL_PARAM` (empty: Slack is off), or from `SLACK_WEBHOOK_URL` in a developer's shell, and is never
logged.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from reclift import config

SLACK_TIMEOUT_SECONDS = 5


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered; the shop's check is retried (its state is saved only once it was sent)."""


@cache
def _sns() -> Any:
    return boto3.client("sns")


@dataclass(frozen=True)
class AlertChannels:
    topic_arn: str
    slack_url: str | None

    def send(self, subject: str, text: str) -> None:
        try:
            _sns().publish(TopicArn=self.topic_arn, Subject=subject, Message=text)
        except (BotoCoreError, ClientError) as exc:
            raise AlertDeliveryError(f"publishing to the alerts topic failed: {exc}") from exc
        if self.slack_url:
            post_to_slack(self.slack_url, text)


def post_to_slack(url: str, text: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise AlertDeliveryError("the Slack webhook URL is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=SLACK_TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except (urllib.error.URLError, TimeoutError) as exc:
        # The URL itself stays out of the message: it is the secret.
        raise AlertDeliveryError(f"posting to Slack failed: {type(exc).__name__}") from exc
    if not 200 <= status < 300:
        raise AlertDeliveryError(f"Slack answered {status}")


def alert_channels() -> AlertChannels:
    return AlertChannels(topic_arn=config.required("ALERTS_TOPIC_ARN"), slack_url=config.slack_webhook_url())
