"""Integration fixtures: the template's resources in moto server, functions run in-process or in the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import EmulatedAws, emulated_aws, queued
from tests.support.clock import clear_of_the_hour_turn

# Every integration test runs on moto's DynamoDB and on AWS's DynamoDB Local (the real engine, on Java).
DATABASES = ("moto", "dynamodb-local")


@pytest.fixture(scope="session", params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[EmulatedAws]:
    with emulated_aws(tmp_path_factory.mktemp("emulated-aws"), database=database) as emulated:
        yield emulated


@pytest.fixture
def one_hour() -> None:
    """For a test that reads back the counters of the hour or the day it wrote in: it starts clear of the hour's
    end, so its writes and its reads fall in one hour."""
    clear_of_the_hour_turn()


@pytest.fixture
def sqs(aws: EmulatedAws) -> Any:
    return aws.client("sqs")


@pytest.fixture
def webhook_queue(aws: EmulatedAws, sqs: Any) -> Iterator[str]:
    """The webhook queue, empty before and after the test."""
    url = aws.resource("WebhookQueue")
    queued(sqs, url)
    yield url
    queued(sqs, url)
