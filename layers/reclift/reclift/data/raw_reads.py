"""Reading a large Query fast: its items as DynamoDB sent them, and its pages read ahead of the reader.

The nightly learning reads every product counter and page item of a shop's 30 days: 60,000 items, about 1.3 million
attribute values, for 1,000 products. botocore parses a response by walking it through the service model, a dict
per attribute value, and that walk was more than half of the read's CPU (`python -m benchmarks learning_read`);
DynamoDB's JSON is already the shape a raw read wants. And while the reader turns one page into rows, the next page
can be on its way: waiting for DynamoDB and working on what it sent overlap.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Generator, Iterable
from queue import Full, Queue
from typing import Any, TypeVar

from pynamodb.connection import TableConnection

T = TypeVar("T")

RAW_QUERY_HOOK = "reclift-raw-query-items"
# How long the thread reading ahead waits, at a time, for room to hand its next page over or for being stopped.
_POLL_SECONDS = 0.1


def _items_as_sent(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's `before-parse` hook for a Query: a successful response's body, loaded as DynamoDB sent it, becomes
    the parsed response (botocore merges `customized_response_dict` into what it parses), and botocore is left an
    empty object to parse. Errors are left to botocore whole: its error parsing and retries are unchanged. The one
    kind of value whose parsed form differs from what DynamoDB sends is binary (botocore decodes its base64), so a
    table read this way declares no binary attribute (tests/unit/test_raw_reads.py holds CounterItem to that)."""
    if response_dict.get("status_code", 500) < 300 and response_dict.get("body"):
        customized_response_dict.update(json.loads(response_dict["body"]))
        response_dict["body"] = b"{}"


def read_queries_raw(connection: TableConnection) -> None:
    """From now on, the Query responses of this model's connection are its items as sent (`_items_as_sent`).
    Registered once per botocore client (PynamoDB makes a new client only when its credentials went missing)."""
    events = connection.connection.client.meta.events
    events.register("before-parse.dynamodb.Query", _items_as_sent, unique_id=RAW_QUERY_HOOK)


def read_ahead(items: Iterable[T], ahead: int) -> Generator[T, None, None]:
    """`items` in their order, produced by a thread of its own up to `ahead` items before they are consumed, so that
    its I/O waits overlap the consumer's work; memory holds at most `ahead` + 2 of them. An exception of the
    producer's is raised here, after the items before it. Closing this iterator (or leaving a loop over it) stops the
    producer once its current item is done (its thread is joined before this iterator ends)."""
    handed: Queue[tuple[bool, Any]] = Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def hand_over(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                handed.put(entry, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
        except BaseException as exc:  # raised again in the consumer's thread
            hand_over((False, exc))
            return
        hand_over((False, None))

    # The producer runs in a copy of the consumer's context: what is bound to the invocation there (its log keys, a
    # test's count of the requests it makes) holds for the requests made on its behalf.
    producer = threading.Thread(target=contextvars.copy_context().run, args=(produce,), name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            more, value = handed.get()  # the producer's last word is always handed over, unless it was stopped
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        producer.join()
