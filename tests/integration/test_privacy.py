"""Shopify's privacy topics end to end: a customer's redaction leaves nothing of them (and only of them), their data
export holds all of it for 30 days, and a shop's erasure reads only that shop's items, by key.

The handlers run in this process against the emulator, as in test_handlers.py; what they left is read back with
real boto3 calls.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclift.data.erasure import ShopEraser
from reclift.data.privacy import PrivacyStore
from reclift.logic.shop_redaction import ShopRedactionJob, erase_shop
from reclift.privacy import CustomerRequest
from reclift_local.pollers import sqs_record
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, forget_execution_environment, process_queue, queued
from tests.support.calls import ApiCallCounter
from tests.support.recs import shown
from tests.support.shop_items import TABLES, mentions, orders_of, shop_items
from tests.support.shopify import admin_event, new_shop, order_payload, proxy_event, proxy_query, webhook_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
REGION = "us-east-1"
REDACTED, OTHER = "191167", "5005"  # Shopify's sample customer; the other customer of the shared device


def for_shop(fixture: str, shop: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / fixture).read_text())
    payload["shop_domain"] = shop
    return payload


def click(aws: EmulatedAws, shop: str, visitor: str, product: str, customer: str = "") -> None:
    event = {"type": "click", "visitor_id": visitor, "product_id": product, "position": 1}
    body = json.dumps({"events": [event | shown(shop, visitor, [product])]}).encode()
    response = aws.invoke(
        "StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop, customer), body)
    )
    assert json.loads(response["body"])["stored"] == 1, response


def deliver(aws: EmulatedAws, sqs: Any, queue: str, shop: str, topic: str, payload: Any) -> None:
    assert (
        aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(payload).encode(), topic=topic))["statusCode"]
        == 200
    )
    assert process_queue(aws, sqs, queue) == {"batchItemFailures": []}


def order(order_id: int, visitor: str, customer: str, product: str) -> dict[str, Any]:
    return order_payload(
        order_id=order_id,
        created_at=datetime.now(UTC),
        visitor_id=visitor,
        customer_id=int(customer),
        lines=[{"product_id": int(product), "price": "10.00"}],
    )


def items_of(aws: EmulatedAws, shop: str) -> dict[str, list[dict[str, Any]]]:
    """Every item of the shop, per table (a scan of the emulator: the test's view, not the code's)."""
    dynamodb = aws.client("dynamodb")
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id in TABLES:
        for page in dynamodb.get_paginator("scan").paginate(TableName=aws.resource(logical_id)):
            rows = [item for item in page["Items"] if item["pk"]["S"] == shop or item["pk"]["S"].startswith(f"{shop}#")]
            found.setdefault(logical_id, []).extend(rows)
    return found


def mentioning(aws: EmulatedAws, shop: str, needle: str) -> list[str]:
    return [
        f"{table}:{item['pk']['S']}:{item.get('sk', {}).get('S', '')}"
        for table, rows in items_of(aws, shop).items()
        for item in rows
        if mentions(item, needle)
    ]


def roi_visitor_days(aws: EmulatedAws, shop: str, visitors: list[str]) -> list[str]:
    """The ROI's per-visitor-day items of these visitors (keyed by a digest of the visitor id), as sort keys."""
    digests = {hashlib.sha256(visitor.encode()).hexdigest()[:32] for visitor in visitors}
    return [
        item["sk"]["S"]
        for item in items_of(aws, shop)["CountersTable"]
        if item["sk"]["S"].startswith("_roiv#") and item["sk"]["S"].rsplit("#", 1)[1] in digests
    ]


def events_of(aws: EmulatedAws, shop: str) -> dict[tuple[str, str], str | None]:
    """(visitor, clicked product) → the customer id the event carries."""
    return {
        (item["visitor_id"]["S"], item["product_ids"]["L"][0]["S"]): item.get("customer_id", {}).get("S")
        for item in items_of(aws, shop)["EventsTable"]
    }


@contextmanager
def data_layer(aws: EmulatedAws) -> Iterator[None]:
    """The data-access layer in this process, pointed at the emulator as a function's would be."""
    forget_execution_environment()
    with function_env(aws.environment("ShopRedactFunction")):
        yield
    forget_execution_environment()


# ------------------------------------------------------------------------------------------------- customers/redact
def test_given_two_customers_on_one_device_when_one_is_redacted_then_all_of_theirs_goes_and_all_of_the_others_stays(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    """The rule for a shared device: a visitor id linked to the redacted customer (by login or by an order's
    `_reclift_vid`) loses its profile and every event no other customer's login claims — its anonymous events too,
    since they may be the redacted customer's; the events another customer's login claims, and that customer's
    profile and orders, stay as they were."""
    shop = new_shop()
    click(aws, shop, "v-shared", "111")  # before anyone logged in on the shared device
    click(aws, shop, "v-shared", "112", customer=REDACTED)  # the redacted customer logs in on it
    click(aws, shop, "v-shared", "113", customer=OTHER)  # then the other customer does
    click(aws, shop, "v-phone", "114", customer=REDACTED)  # the redacted customer's own phone
    click(aws, shop, "v-checkout", "115")  # a device known only through the redacted customer's order
    deliver(aws, sqs, webhook_queue, shop, "orders/create", order(299938, "v-checkout", REDACTED, "115"))
    deliver(aws, sqs, webhook_queue, shop, "orders/create", order(777001, "v-shared", OTHER, "113"))
    deliver(
        aws, sqs, webhook_queue, shop, "customers/data_request", for_shop("customers_data_request_sample.json", shop)
    )
    others_before = {
        table: [item for item in rows if mentions(item, OTHER)] for table, rows in items_of(aws, shop).items()
    }

    fetched = aws.invoke("AdminFunction", admin_event("GET", "/admin/privacy/requests/9999", shop))
    assert fetched["statusCode"] == 200, fetched
    export = json.loads(fetched["body"])["data"]
    assert {(event["visitor_id"], event["products"][0], event["logged_in"]) for event in export["events"]} == {
        ("v-shared", "111", False),  # before login, on a device linked to them
        ("v-shared", "112", True),
        ("v-phone", "114", True),
        ("v-checkout", "115", False),  # before their order, on the device the order named
    }  # and not the other customer's click on the shared device
    assert {visitor["visitor_id"] for visitor in export["visitors"]} == {"v-shared", "v-phone", "v-checkout"}
    assert {visitor["visitor_id"]: visitor["profile"]["carted"] for visitor in export["visitors"]}["v-checkout"] == [
        "115"
    ]
    assert {row["order_id"] for row in export["orders"]} == {"299938"}

    assert roi_visitor_days(aws, shop, ["v-checkout"])  # the ROI's revenue of the redacted customer's visitor-day

    deliver(aws, sqs, webhook_queue, shop, "customers/redact", for_shop("customers_redact_sample.json", shop))

    assert roi_visitor_days(aws, shop, ["v-shared", "v-phone", "v-checkout"]) == []
    assert mentioning(aws, shop, REDACTED) == []  # profile, events, order links, export and its list: all gone
    assert mentioning(aws, shop, "v-phone") == []
    assert mentioning(aws, shop, "v-checkout") == []
    assert events_of(aws, shop) == {("v-shared", "113"): OTHER}  # the other customer's click stays, alone
    profiles = {item["pk"]["S"].removeprefix(f"{shop}#") for item in items_of(aws, shop)["ProfilesTable"]}
    assert profiles == {f"c#{OTHER}"}  # the shared device's profile went with the redacted customer
    others_after = {
        table: [item for item in rows if mentions(item, OTHER)] for table, rows in items_of(aws, shop).items()
    }
    assert others_after == others_before  # the other customer's profile, click and order, unchanged
    lines = [item for item in items_of(aws, shop)["OrdersTable"] if item["pk"]["S"] == f"{shop}#299938"]
    assert lines
    links = {"customer_id", "visitor_id", "credited_event_id", "event_ids", "rec_id"}
    assert [sorted(links & set(item)) for item in lines] == [[] for _ in lines]
    assert {item["sk"]["S"] for item in lines} == {"order", f"line#{299938 * 100}"}  # the sale is the shop's
    gone = aws.invoke("AdminFunction", admin_event("GET", "/admin/privacy/requests/9999", shop))
    assert gone["statusCode"] == 404


def test_given_a_data_export_when_30_days_have_passed_then_it_reads_as_gone_before_dynamodb_deletes_it(
    aws: EmulatedAws,
) -> None:
    shop = new_shop()
    made = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)  # expires in the future: nothing deletes it
    with data_layer(aws):
        privacy = PrivacyStore()
        privacy.save_data_request(shop, "4242", REDACTED, {"customer_id": REDACTED}, now=made)

        assert privacy.data_request(shop, "4242", now=made + timedelta(days=29, hours=23)) is not None
        assert privacy.data_request(shop, "4242", now=made + timedelta(days=30)) is None
    stored = {row["pk"]["S"]: row for row in items_of(aws, shop)["ShopsTable"]}
    expiry = (made + timedelta(days=30)).timestamp()
    assert int(stored[f"{shop}#privacy#4242"]["expires_at"]["N"]) == int(expiry)  # DynamoDB's TTL deletes it, later
    assert int(stored[f"{shop}#exports#{REDACTED}"]["expires_at"]["N"]) == int(expiry)


def test_given_an_export_larger_than_an_item_when_saved_then_it_is_read_back_whole(aws: EmulatedAws) -> None:
    """A heavy shopper's 3,000 events (each with its 72-character rec id) make more JSON than DynamoDB's 400 KB
    item; deflated, the export is one item all the same."""
    shop = new_shop()
    events = [
        {
            "type": "impression",
            "at": (datetime.now(UTC) - timedelta(minutes=n)).isoformat(),
            "products": [str(632910392 + n % 40), str(1071559674 + n % 25)],
            "rec_id": secrets.token_urlsafe(54),
            "visitor_id": "v-heavy",
            "logged_in": True,
        }
        for n in range(3000)
    ]
    data = {"customer_id": REDACTED, "profile": None, "visitors": [], "events": events, "orders": []}
    assert len(json.dumps(data)) > 400_000
    with data_layer(aws):
        privacy = PrivacyStore()
        privacy.save_data_request(shop, "777", REDACTED, data)
        export = privacy.data_request(shop, "777")
    assert export is not None
    assert export["data"] == data


def test_given_an_export_saved_as_plain_json_before_exports_were_deflated_then_it_still_reads(
    aws: EmulatedAws,
) -> None:
    shop = new_shop()
    made = datetime.now(UTC) - timedelta(days=2)
    item = {
        "pk": {"S": f"{shop}#privacy#55"},
        "shop": {"S": shop},
        "customer_id": {"S": REDACTED},
        "data": {"S": json.dumps({"customer_id": REDACTED, "events": []})},
        "created_at": {"S": made.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
    }
    aws.client("dynamodb").put_item(TableName=aws.resource("ShopsTable"), Item=item)
    with data_layer(aws):
        export = PrivacyStore().data_request(shop, "55")
        expired = PrivacyStore().data_request(shop, "55", now=made + timedelta(days=30))
    assert export is not None
    assert export["data"] == {"customer_id": REDACTED, "events": []}
    assert expired is None  # no expiry was stored then: 30 days from its making


def test_given_a_customer_with_nothing_stored_when_redacted_then_nothing_fails_and_nothing_is_deleted(
    aws: EmulatedAws,
) -> None:
    shop = new_shop()
    with data_layer(aws):
        outcome = PrivacyStore().redact_customer(shop, CustomerRequest("31337", ("1",), shop_domain=shop))
    assert outcome == {
        "events": 0,
        "profiles": 0,
        "visitors": 0,
        "exports": 0,
        "visitor_days": 0,
        "order_items_unlinked": 0,
    }


# ------------------------------------------------------------------------------------------------------ shop/redact
def seed_shop(aws: EmulatedAws, shop: str, visitors: int) -> int:
    """The shop's items (tests.support.shop_items) written to the emulator: how many."""
    dynamodb = aws.client("dynamodb")
    rows = shop_items(shop, visitors)
    for table, items in rows.items():
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            dynamodb.batch_write_item(RequestItems={aws.resource(table): requests})
    return sum(len(items) for items in rows.values())


def erase_with_the_function(aws: EmulatedAws, sqs: Any, shop: str) -> tuple[dict[str, int], float, int]:
    """Run ShopRedactFunction on the shop's queued erasure, counting its AWS requests: (items returned per
    operation and table, seconds, requests)."""
    queue = aws.resource("ShopRedactQueue")
    [message] = queued(sqs, queue)
    assert json.loads(message["Body"]) == {"shop": shop}
    record = sqs_record(message, f"arn:aws:sqs:{REGION}:123456789012:shop-redact", REGION)
    counter = ApiCallCounter(names={aws.resource(table): table for table in TABLES})
    started = time.perf_counter()
    with counter.counting() as block:
        assert aws.invoke("ShopRedactFunction", {"Records": [record]}) == {"batchItemFailures": []}
    seconds = time.perf_counter() - started
    assert not [call for call in block.calls if call.operation == "Scan"]
    items = {f"{call.operation}@{call.target}": count for call, count in block.items.items()}
    return items, seconds, sum(block.calls.values())


@pytest.mark.parametrize(("visitors", "others"), [(40, 0), (40, 3), (160, 3)], ids=["alone", "among-3", "4x-among-3"])
def test_given_a_shop_among_others_when_shopify_redacts_it_then_only_its_items_are_read_and_all_are_deleted(
    aws: EmulatedAws, sqs: Any, webhook_queue: str, visitors: int, others: int, record_property: Callable[..., None]
) -> None:
    """Given a shop and `others` shops four times its size, when shop/redact is delivered, then the worker queues
    the erasure and ShopRedactFunction reads the shop's keys alone — by key, no Scan — and deletes every one of its
    items; the other shops keep every item. Items read: at most the shop's items plus one per order (its `basket`
    entry) and the registry's first-registration read, whatever the other shops hold."""
    shop = new_shop()
    others_seeded = {other: seed_shop(aws, other, visitors * 4) for other in (new_shop() for _ in range(others))}
    seeded = seed_shop(aws, shop, visitors)
    orders = orders_of(visitors)
    aws.empty_queues("ShopRedactQueue")

    deliver(aws, sqs, webhook_queue, shop, "shop/redact", for_shop("shop_redact_sample.json", shop))
    items, seconds, requests = erase_with_the_function(aws, sqs, shop)

    read = sum(items.values())
    assert seeded <= read <= seeded + orders + 1
    assert items_of(aws, shop) == {table: [] for table in TABLES}
    for other, count in others_seeded.items():
        assert sum(len(rows) for rows in items_of(aws, other).values()) == count
    record_property("shop_items", seeded)
    record_property("other_items", sum(others_seeded.values()))
    record_property("items_read", read)
    record_property("requests", requests)
    record_property("seconds", round(seconds, 3))


def test_given_an_erasure_cut_short_by_its_deadline_when_continued_then_it_resumes_and_finishes(
    aws: EmulatedAws, sqs: Any
) -> None:
    """The invocation's time runs out after the first check: the phase reached is queued as the continuation, and
    the function's next invocation, from that message, erases the rest."""
    shop = new_shop()
    seeded = seed_shop(aws, shop, 60)
    queue = aws.resource("ShopRedactQueue")
    aws.empty_queues("ShopRedactQueue")
    with data_layer(aws):
        summary = erase_shop(ShopRedactionJob(shop), ShopEraser(), keep_going=lambda: False)
    assert (summary["complete"], summary["resume_at"], summary["deleted"]) == (False, "events", {"events": 100})
    [message] = queued(sqs, queue)
    assert json.loads(message["Body"]) == {"shop": shop, "resume_at": "events"}
    record = sqs_record(message, f"arn:aws:sqs:{REGION}:123456789012:shop-redact", REGION)

    assert aws.invoke("ShopRedactFunction", {"Records": [record]}) == {"batchItemFailures": []}

    assert items_of(aws, shop) == {table: [] for table in TABLES}
    assert queued(sqs, queue) == []
    assert seeded > 100
