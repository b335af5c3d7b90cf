"""reclift.data.raw_reads: a Query's items as DynamoDB sent them, and pages read ahead by a thread of their own."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from pynamodb.attributes import BinaryAttribute, BinarySetAttribute

from reclift.data.models import CounterItem
from reclift.data.raw_reads import _items_as_sent, read_ahead

# A Query response as DynamoDB sends it: a product counter and a page item, with every kind of value but binary.
BODY = {
    "Items": [
        {
            "pk": {"S": "shop.myshopify.com#2026-12-01"},
            "sk": {"S": "9101"},
            "impressions": {"N": "12"},
            "exposure": {"N": "8.125"},
            "revenue": {"N": "40.50"},
            "visitors": {"SS": ["v-1", "v-2"]},
        },
        {
            "pk": {"S": "shop.myshopify.com#2026-12-01"},
            "sk": {"S": "P#9102"},
            "i9101": {"N": "3"},
            "e9101": {"N": "2.284"},
            "flags": {"M": {"on": {"BOOL": True}, "none": {"NULL": True}, "list": {"L": [{"N": "1"}, {"S": "a"}]}}},
            "sizes": {"NS": ["1", "2.5"]},
        },
    ],
    "Count": 2,
    "ScannedCount": 2,
    "LastEvaluatedKey": {"pk": {"S": "shop.myshopify.com#2026-12-01"}, "sk": {"S": "P#9102"}},
    "ConsumedCapacity": {"TableName": "counters", "CapacityUnits": 0.5},
}
HEADERS = {"x-amzn-requestid": "req-1", "content-type": "application/x-amz-json-1.0"}


def parsed(body: dict[str, Any], *, status: int = 200, raw: bool) -> dict[str, Any]:
    """What botocore makes of a Query response, with the hook or without it (its own endpoint's sequence: the
    `before-parse` handlers, the protocol's parser, the handlers' customised dict merged in)."""
    model = botocore.session.get_session().get_service_model("dynamodb").operation_model("Query")
    response = {"status_code": status, "headers": HEADERS, "body": json.dumps(body).encode()}
    customized: dict[str, Any] = {}
    if raw:
        _items_as_sent(response_dict=response, customized_response_dict=customized)
    assert model.output_shape is not None
    result: dict[str, Any] = create_parser("json").parse(response, model.output_shape)
    result.update(customized)
    return result


def test_a_query_read_raw_is_what_botocore_parses_for_every_kind_of_value_but_binary() -> None:
    assert parsed(BODY, raw=True) == parsed(BODY, raw=False)
    response = {"status_code": 200, "headers": HEADERS, "body": json.dumps(BODY).encode()}
    customized: dict[str, Any] = {}
    _items_as_sent(response_dict=response, customized_response_dict=customized)
    assert customized == BODY  # the body as sent, loaded once
    assert response["body"] == b"{}"  # botocore walks nothing through the model

    blob = {"Items": [{"pk": {"S": "p"}, "data": {"B": base64.b64encode(b"\x00\x01").decode()}}], "Count": 1}
    assert parsed(blob, raw=False)["Items"][0]["data"] == {"B": b"\x00\x01"}
    assert parsed(blob, raw=True)["Items"][0]["data"] == {"B": "AAE="}  # why a table read raw holds no binary


def test_the_counters_table_declares_no_binary_attribute() -> None:
    """The learning read takes the counters' Query raw, which differs from botocore's parse for binary alone."""
    kinds = {type(attribute) for attribute in CounterItem.get_attributes().values()}
    assert not kinds & {BinaryAttribute, BinarySetAttribute}


def test_an_error_response_is_left_to_botocore() -> None:
    error = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "slow"}
    with_hook = parsed(error, status=400, raw=True)
    assert with_hook["Error"] == parsed(error, status=400, raw=False)["Error"]
    assert with_hook["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert "Items" not in with_hook


def test_read_ahead_yields_every_item_in_order() -> None:
    assert list(read_ahead(iter(range(500)), 2)) == list(range(500))
    assert list(read_ahead(iter([]), 2)) == []


def test_read_ahead_holds_at_most_ahead_items_beyond_the_one_being_made() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for item in range(50):
            made.append(item)
            yield item

    for consumed, item in enumerate(read_ahead(items(), 3), start=1):
        time.sleep(0.002)  # a slow consumer: the producer fills the room it has
        # the item being consumed, 3 handed over and waiting, 1 made and waiting for room
        assert len(made) <= consumed + 3 + 1, (item, len(made))
    assert made == list(range(50))


def test_read_ahead_raises_the_producers_error_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 could not be read")

    got: list[int] = []
    with pytest.raises(ValueError, match="page 3"):
        got.extend(read_ahead(items(), 2))
    assert got == [1, 2]


def test_leaving_a_read_ahead_early_stops_its_producer() -> None:
    made: list[int] = []

    def endless() -> Iterator[int]:
        item = 0
        while True:
            made.append(item)
            yield item
            item += 1

    reader = read_ahead(endless(), 2)
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert "read-ahead" in {thread.name for thread in threading.enumerate()}
    reader.close()  # what leaving a `for` loop over it does
    assert "read-ahead" not in {thread.name for thread in threading.enumerate()}  # its thread was joined
    stopped_at = len(made)
    time.sleep(0.05)
    assert len(made) == stopped_at <= 5 + 2 + 1


def test_read_ahead_produces_in_the_consumers_context() -> None:
    invocation: ContextVar[str] = ContextVar("invocation", default="none")
    invocation.set("night of 2026-12-01")

    def items() -> Iterator[str]:
        yield invocation.get()

    assert list(read_ahead(items(), 1)) == ["night of 2026-12-01"]
