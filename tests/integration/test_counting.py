"""Counting storefront events from the events table's stream: the storefront request writes only its events, and
CountingFunction, on the stream, adds each new (rec id, product, type) to the counters once, with one update per
product and hour whatever the number of requests in its batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reclift.data.store import HOUR_COUNTER, day_key
from tests.support.aws import EmulatedAws, process_stream
from tests.support.recs import shown
from tests.support.shopify import new_shop, proxy_event, proxy_query

# Each test reads the counters of the hour and the day it posted in.
pytestmark = pytest.mark.usefixtures("one_hour")


def post(aws: EmulatedAws, shop: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps({"events": events}).encode()
    response = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
    assert response["statusCode"] == 200, response
    result: dict[str, Any] = json.loads(response["body"])
    return result


def impression(visitor: str, products: list[str], rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "impression",
        "visitor_id": visitor,
        "placement": "product",
        "source_product_id": "999",
        "products": [{"product_id": p, "position": rec["rec_products"].index(p) + 1} for p in products],
    } | rec


def counters(aws: EmulatedAws, shop: str) -> dict[str, dict[str, Any]]:
    """The shop's counter items of today, by sort key (the markers left out)."""
    table = aws.resource("CountersTable")
    items = aws.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": day_key(shop, datetime.now(UTC).date())}},
    )["Items"]
    return {
        item["sk"]["S"]: {name: value.get("N") for name, value in item.items() if "N" in value and name != "expires_at"}
        for item in items
        if not item["sk"]["S"].startswith("_seen#")
    }


def test_an_events_request_writes_its_events_and_the_stream_counts_them_once(aws: EmulatedAws) -> None:
    shop = new_shop()
    process_stream(aws, "CountingFunction")  # what earlier tests left
    rec = shown(shop, "v-1", ["11", "12", "13", "14"])
    assert post(aws, shop, [impression("v-1", ["11", "12"], rec)]) == {"received": 1, "stored": 1, "ignored": 0}
    assert counters(aws, shop) == {}, "the request itself counts nothing"

    # The same rec id again: two products already seen, one new (it came into view); and the same request twice.
    again = [impression("v-1", ["11", "12", "13"], rec)]
    assert post(aws, shop, again) == {"received": 1, "stored": 1, "ignored": 0}  # it proved something new
    assert post(aws, shop, again) == {"received": 1, "stored": 0, "ignored": 1}
    deliveries = process_stream(aws, "CountingFunction")

    # (DynamoDB writes no stream record for an update that changes nothing; moto writes one, and one more, of the
    # keys alone, when an update creates an item: the counting reads the images, so all of these count right.)
    assert [d.outcome.error for d in deliveries] == [None] * len(deliveries)
    found = counters(aws, shop)
    hour = f"{HOUR_COUNTER}{datetime.now(UTC).hour:02d}#e"
    assert {sk: row.get("impressions") for sk, row in found.items() if sk in ("11", "12", "13", "14")} == {
        "11": "1",
        "12": "1",
        "13": "1",
    }
    assert found[hour] == {"impressions": "3", "visitors_learning": "1"}


def test_a_visitor_counts_once_a_day_in_their_arm_and_products_once_per_batch(aws: EmulatedAws) -> None:
    shop = new_shop()
    process_stream(aws, "CountingFunction")
    for visitor in ("v-1", "v-2", "v-3"):
        for _ in range(2):  # two widgets each, two rec ids
            rec = shown(shop, visitor, ["21", "22"], arm="holdout" if visitor == "v-3" else "learning")
            post(aws, shop, [impression(visitor, ["21", "22"], rec)])
    deliveries = process_stream(aws, "CountingFunction")
    assert len(deliveries) == 1  # one batch of 6 records

    found = counters(aws, shop)
    assert found["21"]["impressions"] == found["22"]["impressions"] == "6"
    hour = f"{HOUR_COUNTER}{datetime.now(UTC).hour:02d}#e"
    assert found[hour] == {"impressions": "12", "visitors_learning": "2", "visitors_holdout": "1"}

    rec = shown(shop, "v-1", ["21"])  # v-1 again, in a later batch: shown, not a new visitor
    post(aws, shop, [impression("v-1", ["21"], rec)])
    process_stream(aws, "CountingFunction")
    found = counters(aws, shop)
    assert found["21"]["impressions"] == "7"
    assert found[hour] == {"impressions": "13", "visitors_learning": "2", "visitors_holdout": "1"}


def test_a_product_pages_impressions_and_clicks_are_counted_in_its_page_item(aws: EmulatedAws) -> None:
    """The widget of page 30's rec id signs the page: its impressions and its click go to the day's `P#30` item, one
    number per candidate (whatever page the browser names), not to the candidates' own counters. A cart widget's
    impressions and clicks go to the products' counters as before. Each impression's exposure goes with it."""
    shop = new_shop()
    process_stream(aws, "CountingFunction")
    for visitor in ("v-1", "v-2"):
        rec = shown(shop, visitor, ["31", "32", "33"], page="30")
        post(aws, shop, [impression(visitor, ["31", "32"], rec) | {"source_product_id": "40"}])
    rec = shown(shop, "v-1", ["31", "32", "33"], page="30")
    post(
        aws,
        shop,
        [
            impression("v-1", ["33"], rec),
            {"type": "click", "visitor_id": "v-1", "product_id": "33", "position": 3} | rec,
        ],
    )
    cart = shown(shop, "v-3", ["31"], placement="cart")
    post(
        aws,
        shop,
        [
            impression("v-3", ["31"], cart) | {"placement": "cart"},
            {"type": "click", "visitor_id": "v-3", "product_id": "31", "position": 1, "placement": "cart"} | cart,
        ],
    )
    process_stream(aws, "CountingFunction")

    found = {sk: {name: float(value) for name, value in row.items()} for sk, row in counters(aws, shop).items()}
    # each impression's exposure is its place's in the signed list, read back from the stream: 31 first, 32 second,
    # 33 third (1/√3 ≈ 0.577)
    assert found["P#30"] == {"i31": 2, "i32": 2, "i33": 1, "x31": 2.0, "x32": 1.414, "x33": 0.577, "c33": 1}
    assert "P#40" not in found
    assert {sk: row for sk, row in found.items() if sk in ("31", "32", "33")} == {
        "31": {"impressions": 1, "exposure": 1.0, "clicks": 1},  # the cart widget's
    }
    hour = f"{HOUR_COUNTER}{datetime.now(UTC).hour:02d}#e"
    assert found[hour]["impressions"] == 6


def test_a_busy_pages_batch_of_hundreds_of_candidates_is_counted_whole(aws: EmulatedAws) -> None:
    """A popular page's counting batch can hold hundreds of distinct candidates, whose item is updated in chunks of
    PAGE_UPDATE_CANDIDATES (10 updates here): every candidate's impressions, exposure and clicks are there, each
    candidate clicked so that every chunk takes its most actions. (One update of them all was refused by DynamoDB
    Local in the capacity benchmark's batch of 1,000 requests, "Expression size has exceeded the maximum allowed
    size"; this batch of 100 is not refused either way.)"""
    shop = new_shop()
    process_stream(aws, "CountingFunction")
    candidates = [str(7_000_000_000_000 + n) for n in range(400)]  # Shopify's ids: 13 digits
    for request in range(100):
        products = candidates[request * 4 : request * 4 + 4]
        rec = shown(shop, f"v-{request}", products, page="30")
        clicks = [
            {"type": "click", "visitor_id": f"v-{request}", "product_id": product, "position": place} | rec
            for place, product in enumerate(products, start=1)
        ]
        post(aws, shop, [impression(f"v-{request}", products, rec), *clicks])
    process_stream(aws, "CountingFunction")

    found = counters(aws, shop)["P#30"]
    assert {name for name in found if name.startswith("i")} == {f"i{c}" for c in candidates}
    assert {float(found[f"x{c}"]) for c in candidates} == {1.0, 0.707, 0.577, 0.5}
    assert {name for name in found if name.startswith("c")} == {f"c{c}" for c in candidates}
