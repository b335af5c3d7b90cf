"""The nightly learning's read of a shop's counters (`LearningStore.counter_days`): its Query taken as DynamoDB sends
it and its pages read ahead by a thread of their own, it gives every product counter and page item the days hold,
across Query pages, through DynamoDB's throttling, and fails as a StoreError when DynamoDB cannot answer."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from benchmarks.learning_job import GeneratedShop, counter_items, page_items

from reclift.data.learning import LearningStore
from reclift.data.store import StoreError
from reclift.learning import CounterDay
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, batch_write, forget_execution_environment
from tests.support.calls import ApiCallCounter
from tests.support.faults import dynamodb_throttling

# A day of 2,000 products, each with its counter and its page's item of 13 candidates, is about 1.2 MB: more than
# one Query page (1 MB). The day after holds 30 products.
BUSY_DAY_PRODUCTS, QUIET_DAY_PRODUCTS = 2_000, 30
DAY, ONE = date(2026, 11, 30), timedelta(days=1)


def seed(aws: EmulatedAws, shop: str) -> list[CounterDay]:
    rows: list[CounterDay] = []
    for day, products in ((DAY, BUSY_DAY_PRODUCTS), (DAY + ONE, QUIET_DAY_PRODUCTS)):
        days = list(GeneratedShop(products).day_rows(day))
        items = counter_items(shop, days) + page_items(shop, days)
        batch_write(aws.client("dynamodb"), aws.resource("CountersTable"), [{"PutRequest": {"Item": i}} for i in items])
        rows += days
    return rows


@pytest.fixture(scope="module")
def seeded(aws: EmulatedAws) -> tuple[str, list[str]]:
    shop = f"reads-{uuid.uuid4().hex[:8]}.myshopify.com"
    return shop, sorted(map(repr, seed(aws, shop)))


def read(aws: EmulatedAws, shop: str) -> list[str]:
    """The days' rows as the learning function reads them, in a new execution environment (its clients made now)."""
    forget_execution_environment()
    try:
        with function_env(aws.environment("DailyLearningFunction")):
            return sorted(map(repr, LearningStore().counter_days(shop, DAY, DAY + ONE)))
    finally:
        forget_execution_environment()


def test_given_a_day_of_more_than_a_query_page_then_every_counter_and_page_item_is_read_once(
    aws: EmulatedAws, seeded: tuple[str, list[str]]
) -> None:
    shop, written = seeded
    counter = ApiCallCounter(names={aws.resource("CountersTable"): "CountersTable"})
    with counter.counting() as block:
        rows = read(aws, shop)

    assert rows == written
    assert len(rows) > 2 * BUSY_DAY_PRODUCTS
    queries = {call.operation: n for call, n in block.calls.items() if call.target == "CountersTable"}
    assert queries == {"Query": 3}, block.calls  # the busy day's two pages and the quiet day's one


def test_given_dynamodb_throttling_a_third_of_the_requests_then_the_read_is_whole(
    aws: EmulatedAws, seeded: tuple[str, list[str]]
) -> None:
    shop, written = seeded
    with dynamodb_throttling(0.3, seed=3) as throttling:
        rows = read(aws, shop)

    assert throttling.operations["Query"] > 0
    assert rows == written


def test_given_dynamodb_refusing_every_request_then_the_read_fails_as_a_store_error(
    aws: EmulatedAws, seeded: tuple[str, list[str]]
) -> None:
    shop, _ = seeded
    with dynamodb_throttling(1.0), pytest.raises(StoreError, match="reading counters failed"):
        read(aws, shop)
