"""Integration fixtures: the template's resources in moto server, functions run in-process or in the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import EmulatedAws, emulated_aws, queued
from tests.support.clock import clear_of_turn

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


def _database(item: pytest.Item | None) -> str | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("database")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """moto answers a Query of a global secondary index by reading every item of its table, so on the session's one
    moto server a module's index reads slowed with everything the modules before it wrote (the ROI report's test of
    random orders took 176 s in the whole suite, 7 s alone). So when a module's last test on moto is done, its
    module's fixtures with it, every table is emptied for the next module. DynamoDB Local indexes as DynamoDB does:
    it keeps what the modules wrote, as a shared table would."""
    emulated = (getattr(item, "funcargs", None) or {}).get("aws")
    yield
    if (
        isinstance(emulated, EmulatedAws)
        and _database(item) == "moto"
        and nextitem is not None
        and getattr(nextitem, "module", None) is not getattr(item, "module", None)
        and _database(nextitem) in (None, "moto")  # else the moto server's session ends here
    ):
        emulated.empty_tables()


# Longer than any test that uses `one_hour` takes, on a busy 2-core machine.
HOUR_TURN_MARGIN = timedelta(seconds=90)


@pytest.fixture
def one_hour() -> None:
    """For a test that reads back the counters of the hour or the UTC day it wrote in: one that starts within
    HOUR_TURN_MARGIN of the hour's end sleeps into the next hour first, so its writes and its reads fall in one hour."""
    clear_of_turn(HOUR_TURN_MARGIN)


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
