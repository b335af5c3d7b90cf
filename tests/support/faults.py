"""Faults injected where AWS would cause them, through botocore's own event hooks — never a switch in reclift's code.

`dynamodb_throttling` answers a share of DynamoDB's HTTP requests the way DynamoDB does when a table or an account is
over its limits: HTTP 400 with `ProvisionedThroughputExceededException` or `ThrottlingException`. The answer is given
in `before-send` on every botocore client created while it is active (boto3's, PynamoDB's and the Powertools
idempotency layer's), so the SDK's retry logic, PynamoDB's error handling and reclift's see exactly what they would
see from DynamoDB.

The SDK backs off before each retry: a random wait of up to a second, doubling with each attempt. Inside the block
botocore's waits last `BACKOFF_SCALE` of what it asks for, and what it asked for is counted. The retries, their number
and their order stay botocore's own: only the clock is shortened, since what the tests assert (the figures) does not
depend on how long the SDK waited.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import botocore.endpoint
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.session import Session

from tests.support.aws import forget_execution_environment

THROTTLING_ERRORS = {
    "ProvisionedThroughputExceededException": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "ThrottlingException": "com.amazon.coral.availability#ThrottlingException",
}

BACKOFF_SCALE = 0.02


class _Body:
    """The raw body botocore reads an HTTP response from."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


@dataclass
class DynamoDbThrottling:
    """Throttles `share` of the DynamoDB requests (each HTTP attempt, retries included) while `active`."""

    share: float
    seed: int
    active: bool = True
    requests: int = 0
    throttled: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)  # throttled requests by operation
    backoff_asked: float = 0.0  # seconds of waiting botocore's retries asked for
    backoff_waited: float = 0.0  # and what they were given

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self.active:
            return None
        self.requests += 1
        if self._rng.random() >= self.share:
            return None
        code = self._rng.choice(sorted(THROTTLING_ERRORS))
        self.throttled[code] += 1
        target = dict(request.headers).get("X-Amz-Target", b"")
        self.operations[(target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]] += 1
        body = json.dumps({"__type": THROTTLING_ERRORS[code], "message": "Rate of requests exceeds the limit"})
        headers = HTTPHeaders()
        headers["x-amzn-RequestId"] = str(uuid.uuid4())
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, _Body(body.encode()))

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())


class _ShortenedClock:
    """`time` as botocore's endpoint sees it: `sleep` waits `BACKOFF_SCALE` of what it is asked, and counts both."""

    def __init__(self, throttling: DynamoDbThrottling) -> None:
        self._throttling = throttling

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self._throttling.backoff_asked += seconds
        self._throttling.backoff_waited += seconds * BACKOFF_SCALE
        time.sleep(seconds * BACKOFF_SCALE)


@contextmanager
def dynamodb_throttling(share: float, *, seed: int = 1) -> Iterator[DynamoDbThrottling]:
    """Every botocore client created inside the block gets the hook; the functions' cached clients are dropped on
    entry (so they are made again, hooked) and on exit (so no hooked client outlives the block). Retries wait
    `BACKOFF_SCALE` of their backoff while the block lasts."""
    throttling = DynamoDbThrottling(share=share, seed=seed)
    original = Session.create_client

    def create_client(session: Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(session, service_name, *args, **kwargs)
        if service_name == "dynamodb":
            # A `before-send` handler that returns a response stands for the HTTP answer (botocore's own contract).
            client.meta.events.register("before-send.dynamodb", throttling.before_send)  # type: ignore[arg-type]
        return client

    forget_execution_environment()
    Session.create_client = create_client  # type: ignore[method-assign,assignment]
    try:
        with patch.object(botocore.endpoint, "time", _ShortenedClock(throttling)):
            yield throttling
    finally:
        throttling.active = False
        Session.create_client = original  # type: ignore[method-assign]
        forget_execution_environment()
