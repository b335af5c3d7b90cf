"""The order replay end to end: BackfillFunction reads the shop's orders back from the fake Admin API (a real HTTP
server) and queues what Shopify never delivered on the webhook queue, which AttributionFunction processes; the ROI
then reads as if every delivery had arrived."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclift.data.replay import ReplayStore
from reclift.logic import replay as replay_module
from reclift.logic.replay import replay_orders
from reclift.orders import parse_order
from reclift.shopify_admin import AdminClient
from reclift.webhooks import WebhookEnvelope
from reclift_local.fake_admin import FakeAdminApi, FakeOrder
from reclift_local.pollers import sqs_record
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, invoke_outcome, process_queue, process_stream, queued
from tests.support.calls import ApiCall, ApiCallCounter
from tests.support.recs import shown
from tests.support.shopify import admin_event, new_shop, order_payload, proxy_event, proxy_query, webhook_event

TOKEN = "shpat_test_token"
TOKEN_PREFIX = "/reclift/admin-tokens/"  # the template parameter's default
EVENTS = Path(__file__).resolve().parents[2] / "events"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"


@pytest.fixture
def admin(aws: EmulatedAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAdminApi]:
    """A new shop's Admin API holding no order yet, its token in SSM as on AWS."""
    with FakeAdminApi(new_shop(), TOKEN, restore_rate=20000.0) as fake:
        ssm = aws.client("ssm")
        ssm.put_parameter(Name=f"{TOKEN_PREFIX}{fake.shop}", Value=TOKEN, Type="SecureString")
        monkeypatch.setenv("RECLIFT_ADMIN_API_URL", fake.url)
        yield fake
        ssm.delete_parameter(Name=f"{TOKEN_PREFIX}{fake.shop}")


def click(aws: EmulatedAws, shop: str, visitor: str, product: str) -> None:
    event = {"type": "click", "visitor_id": visitor, "product_id": product, "position": 1} | shown(
        shop, visitor, [product]
    )
    body = json.dumps({"events": [event]}).encode()
    response = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
    assert response["statusCode"] == 200
    process_stream(aws, "CountingFunction")


def deliver(aws: EmulatedAws, sqs: Any, queue: str, shop: str, topic: str, payload: dict[str, Any]) -> None:
    event = webhook_event(shop, json.dumps(payload).encode(), topic=topic)
    assert aws.invoke("WebhookFunction", event)["statusCode"] == 200
    assert process_queue(aws, sqs, queue) == {"batchItemFailures": []}


def replay(aws: EmulatedAws, shop: str, since: datetime) -> dict[str, Any]:
    result: dict[str, Any] = aws.invoke(
        "BackfillFunction", {"shop": shop, "what": "replay", "since": since.isoformat()}
    )
    return result


def roi(aws: EmulatedAws, shop: str, day: datetime, first: datetime | None = None) -> dict[str, Any]:
    """The report of `day`, or of the days from `first` to `day` (orders placed either side of midnight)."""
    query = f"?from={(first or day).date().isoformat()}&to={day.date().isoformat()}"
    response = aws.invoke("AdminFunction", admin_event("GET", f"/admin/roi{query}", shop))
    assert response["statusCode"] == 200, response
    report: dict[str, Any] = json.loads(response["body"])
    return {key: report[key] for key in ("attributed_revenue", "attributed_orders", "orders", "by_product")}


def next_second() -> datetime:
    """A moment after every event so far, in whole seconds as Shopify stamps an order (and the Admin API answers)."""
    return (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)


def demo_order(now: datetime) -> dict[str, Any]:
    """Shopify's sample order (three lines of product 632910392, its buyer the visitor `v-demo-1`), placed `now`."""
    order: dict[str, Any] = json.loads((EVENTS / "bodies" / "orders-create.json").read_text())
    return order | {"created_at": now.isoformat(), "updated_at": now.isoformat()}


def test_given_an_order_and_its_refund_shopify_dropped_when_replayed_then_the_roi_is_as_if_both_were_delivered(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str
) -> None:
    # One shop received both deliveries; the other, with the same click, received neither.
    delivered_to = new_shop()
    for shop in (delivered_to, admin.shop):
        click(aws, shop, "v-demo-1", "632910392")
    now = next_second()
    order, refund = demo_order(now), json.loads((FIXTURES / "refunds_create_sample.json").read_text())
    deliver(aws, sqs, webhook_queue, delivered_to, "orders/create", order)
    deliver(aws, sqs, webhook_queue, delivered_to, "refunds/create", refund)
    admin.orders = [FakeOrder.from_webhook(order, [refund])]

    result = replay(aws, admin.shop, since=now - timedelta(hours=6))

    assert result["complete"] is True
    assert result["queued"] == {"orders/create": 1, "refunds/create": 1}
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    expected = roi(aws, delivered_to, now)
    assert expected["attributed_revenue"] == "391.33"  # 587.00 less the refunded line's 195.67
    assert roi(aws, admin.shop, now) == expected

    # A second replay (or one overlapping a delivery that did arrive) queues nothing, for one read of the order's items.
    counter = ApiCallCounter(names={aws.resource(name): name for name in ("OrdersTable", "ShopsTable")})
    with counter.counting() as block:
        again = replay(aws, admin.shop, since=now - timedelta(hours=6))
    assert (again["queued"], again["recorded"]) == ({}, 1)
    assert queued(sqs, webhook_queue) == []
    assert dict(block.calls) == {
        ApiCall("dynamodb", "BatchGetItem", "ShopsTable"): 1,  # the shop's installation
        ApiCall("ssm", "GetParameter", "-"): 1,  # its offline token
        ApiCall("dynamodb", "BatchGetItem", "OrdersTable"): 1,  # the order's own item and its refund's marker
    }


def test_given_recorded_orders_when_their_refund_and_cancellation_were_dropped_then_only_those_are_replayed(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str
) -> None:
    click(aws, admin.shop, "v-demo-1", "632910392")
    now = next_second()
    since = now - timedelta(hours=6)
    refunded = demo_order(now)  # delivered; its refund was not
    deliver(aws, sqs, webhook_queue, admin.shop, "orders/create", refunded)
    refund = json.loads((FIXTURES / "refunds_create_sample.json").read_text())
    cancelled = order_payload(
        order_id=61, created_at=now - timedelta(days=1), lines=[{"product_id": 5, "price": "8.00"}]
    )
    deliver(aws, sqs, webhook_queue, admin.shop, "orders/create", cancelled)
    cancelled |= {"cancelled_at": now.isoformat(), "updated_at": now.isoformat()}
    # placed before the range and never received: not the replay's to add
    older = order_payload(order_id=62, created_at=since - timedelta(minutes=5), lines=[{"product_id": 5, "price": "1"}])
    older |= {"updated_at": now.isoformat()}
    admin.orders = [FakeOrder.from_webhook(refunded, [refund]), FakeOrder.from_webhook(cancelled)]
    admin.orders.append(FakeOrder.from_webhook(older))

    result = replay(aws, admin.shop, since=since)

    assert result["queued"] == {"orders/cancelled": 1, "refunds/create": 1}
    assert (result["orders_read"], result["recorded"]) == (3, 2)
    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    placed = datetime.fromisoformat(refunded["created_at"])
    assert roi(aws, admin.shop, placed)["attributed_revenue"] == "391.33"
    assert replay(aws, admin.shop, since=since)["queued"] == {}


def test_given_an_order_of_more_refunds_than_a_listing_holds_when_its_last_was_dropped_then_that_one_is_replayed(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str
) -> None:
    """An order is listed with its first 20 refunds; one listed with 20 has its refund ids read again, in full."""
    click(aws, admin.shop, "v-demo-1", "632910392")
    now = next_second()
    order = demo_order(now)
    deliver(aws, sqs, webhook_queue, admin.shop, "orders/create", order)
    sample = json.loads((FIXTURES / "refunds_create_sample.json").read_text())
    # 21 refunds of nothing attributed (shipping, say), delivered; the 22nd refunds an attributed line, and was dropped
    delivered = [sample | {"id": 7000 + n, "order_id": order["id"], "refund_line_items": []} for n in range(21)]
    for refund in delivered:
        deliver(aws, sqs, webhook_queue, admin.shop, "refunds/create", refund)
    dropped = sample | {"id": 7099}
    admin.orders = [FakeOrder.from_webhook(order, [*delivered, dropped])]

    result = replay(aws, admin.shop, since=now - timedelta(hours=1))

    assert result["queued"] == {"refunds/create": 1}
    (message,) = queued(sqs, webhook_queue)
    assert json.loads(message["Body"])["webhook_id"] == "replay:refunds/create:7099"
    # the listing, the order's refund ids, the dropped refund: the order itself is not read again
    assert [r.root for r in admin.requests if r.outcome == "ok"] == ["orders", "order", "refund"]
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert aws.invoke("AttributionFunction", {"Records": [record]}) == {"batchItemFailures": []}
    assert roi(aws, admin.shop, now)["attributed_revenue"] == "391.33"


def test_given_a_run_stopped_at_its_deadline_when_resumed_from_where_it_stopped_then_every_order_is_queued_once(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "ORDERS_PER_PAGE", 5)
    now = datetime.now(UTC)
    placed = [now - timedelta(minutes=n) for n in range(12)]
    admin.orders = [
        FakeOrder.from_webhook(
            order_payload(order_id=100 + n, created_at=moment, lines=[{"product_id": 5, "price": "3"}])
            | {"updated_at": moment.isoformat()}
        )
        for n, moment in enumerate(placed)
    ]
    since = now - timedelta(hours=1)
    with function_env(aws.environment("BackfillFunction")):
        client = AdminClient(admin.shop, TOKEN, base_url=admin.url)
        pages = iter([True, True, False])  # two pages, then the deadline
        first = replay_orders(admin.shop, client, ReplayStore(), since=since, now=now, keep_going=lambda: next(pages))
        rest = replay_orders(
            admin.shop,
            client,
            ReplayStore(),
            since=since,
            now=now,
            resume_from=datetime.fromisoformat(first.resume_from or ""),
        )

    assert (first.complete, first.pages, first.queued["orders/create"]) == (False, 2, 10)
    assert (rest.complete, rest.queued["orders/create"]) == (True, 3)  # the first run's last order read again
    messages = queued(sqs, webhook_queue)
    ids = [json.loads(message["Body"])["webhook_id"] for message in messages]
    # The order the first run stopped at is read again, and may be queued again under its webhook id: the worker's
    # idempotency processes that id once.
    assert set(ids) == {f"replay:orders/create:{100 + n}" for n in range(12)}
    records = [sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:queue", "us-east-1") for message in messages]
    assert aws.invoke("AttributionFunction", {"Records": records}) == {"batchItemFailures": []}
    assert roi(aws, admin.shop, now, first=min(placed))["orders"] == 12


def test_given_an_installed_shop_whose_order_shopify_dropped_then_the_nightly_replay_recovers_it_unasked(
    aws: EmulatedAws, sqs: Any, webhook_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeAdminApi(new_shop(), "shpat_installed", restore_rate=20000.0) as shopify:
        monkeypatch.setenv("RECLIFT_ADMIN_API_URL", shopify.url)
        installed = aws.invoke("AdminFunction", admin_event("GET", "/admin/install", shopify.shop))
        assert json.loads(installed["body"])["installed"] is True
        webhooks_only = new_shop()  # known from its deliveries alone: no token to read its orders with
        deliver(aws, sqs, webhook_queue, webhooks_only, "orders/create", demo_order(datetime.now(UTC)))
        aws.empty_queues("BackfillQueue")
        click(aws, shopify.shop, "v-demo-1", "632910392")
        now = next_second()
        shopify.orders = [FakeOrder.from_webhook(demo_order(now))]  # its orders/create never arrived
        fired = now + timedelta(minutes=1)

        summary = aws.invoke("BackfillFunction", scheduled_event(fired))

        jobs = queued(sqs, aws.resource("BackfillQueue"))
        mine = {json.loads(job["Body"])["shop"]: job for job in jobs}
        assert summary["shops"] == len(jobs)
        assert webhooks_only not in mine
        assert json.loads(mine[shopify.shop]["Body"]) == {
            "shop": shopify.shop,
            "what": "replay",
            "restart": False,
            "since": (fired - timedelta(hours=26)).isoformat().replace("+00:00", "Z"),
            "resume_from": None,
            "orders": [],
        }
        record = sqs_record(mine[shopify.shop], "arn:aws:sqs:us-east-1:123456789012:backfill", "us-east-1")
        assert aws.invoke("BackfillFunction", {"Records": [record]}) == {"batchItemFailures": []}

    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}
    assert roi(aws, shopify.shop, now)["attributed_revenue"] == "587.00"


def scheduled_event(fired: datetime) -> dict[str, Any]:
    """What EventBridge sends on a schedule (as `sam local generate-event` prints it)."""
    event: dict[str, Any] = json.loads((FIXTURES.parent / "aws" / "eventbridge-scheduled-event.json").read_text())
    return event | {"time": fired.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_given_a_dropped_order_of_more_lines_than_one_answer_holds_then_its_delivery_has_every_line(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str
) -> None:
    now = next_second()
    lines = [{"product_id": 9_000 + n, "price": "2.50", "quantity": 1 + n % 3} for n in range(130)]
    order = order_payload(order_id=77, created_at=now, lines=lines) | {"updated_at": now.isoformat()}
    admin.orders = [FakeOrder.from_webhook(order)]

    assert replay(aws, admin.shop, since=now - timedelta(hours=1))["queued"] == {"orders/create": 1}

    (message,) = queued(sqs, webhook_queue)
    delivered = WebhookEnvelope.model_validate_json(message["Body"]).payload()
    assert parse_order(delivered) == parse_order(order)  # 130 lines: the first 100, then the rest on a second page
    assert [r.root for r in admin.requests if r.outcome == "ok"] == ["orders", "order", "order"]


def answer_without_prices(admin: FakeAdminApi, monkeypatch: pytest.MonkeyPatch, *numbers: int) -> None:
    """The fake Admin API answers these orders' lines without their prices (a shape reclift cannot replay)."""
    whole = admin._order_node

    def without_prices(order: FakeOrder, lines: int, refunds: int = 250) -> dict[str, Any]:
        node = whole(order, lines, refunds)
        if order.number in numbers:
            for line in node["lineItems"]["nodes"]:
                line["originalUnitPriceSet"] = None
        return node

    monkeypatch.setattr(admin, "_order_node", without_prices)


def placed_orders(admin: FakeAdminApi, now: datetime, *numbers: int) -> None:
    admin.orders = [
        FakeOrder.from_webhook(
            order_payload(order_id=number, created_at=now, lines=[{"product_id": 5, "price": "3"}])
            | {"updated_at": now.isoformat()}
        )
        for number in numbers
    ]


def test_given_an_order_the_admin_api_answers_unreadably_then_it_is_named_and_the_others_are_still_replayed(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = next_second()
    placed_orders(admin, now, 81, 82)
    answer_without_prices(admin, monkeypatch, 81)

    result = replay(aws, admin.shop, since=now - timedelta(hours=1))

    assert result["queued"] == {"orders/create": 1}
    assert result["unreadable"] == 1
    assert result["unreadable_orders"] == ["81: a line item node has no originalUnitPriceSet.shopMoney.amount"]
    (message,) = queued(sqs, webhook_queue)
    assert json.loads(message["Body"])["webhook_id"] == "replay:orders/create:82"


def test_given_a_queued_replay_with_an_unreadable_order_then_that_order_is_kept_in_a_job_that_fails_until_it_is_read(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly job moves on (its window will not hold the order again); the order stays in a job of its own on
    the backfill queue, failing (retried, then in BackfillDLQ) until the Admin API's answer can be read."""
    now = next_second()
    placed_orders(admin, now, 91, 92)
    answer_without_prices(admin, monkeypatch, 91)
    backfill_queue = aws.resource("BackfillQueue")
    aws.empty_queues("BackfillQueue")
    since = now - timedelta(hours=1)

    def work(message: dict[str, Any]) -> Any:
        """The batch of this one message, as Lambda's poller hands it: the result, or the invocation's error."""
        record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:backfill", "us-east-1")
        outcome = invoke_outcome(aws, "BackfillFunction", {"Records": [record]})
        return outcome.error or outcome.result

    sqs.send_message(
        QueueUrl=backfill_queue,
        MessageBody=json.dumps({"shop": admin.shop, "what": "replay", "since": since.isoformat()}),
    )
    (window_job,) = queued(sqs, backfill_queue)
    assert work(window_job) == {"batchItemFailures": []}
    (readable,) = queued(sqs, webhook_queue)
    assert json.loads(readable["Body"])["webhook_id"] == "replay:orders/create:92"
    (named_job,) = queued(sqs, backfill_queue)
    assert json.loads(named_job["Body"])["orders"] == ["91"]

    # Still unreadable: the job fails (SQS retries it, then moves it to the DLQ), queueing nothing.
    failed = work(named_job)
    assert failed["errorType"] == "BatchProcessingError"
    assert "still unreadable (1): ['91: a line item node has no originalUnitPriceSet" in failed["errorMessage"]
    assert queued(sqs, webhook_queue) == []
    assert queued(sqs, backfill_queue) == []

    monkeypatch.undo()  # the cause fixed: a re-drive of the same job replays the order
    monkeypatch.setenv("RECLIFT_ADMIN_API_URL", admin.url)
    assert work(named_job) == {"batchItemFailures": []}
    (read_again,) = queued(sqs, webhook_queue)
    assert json.loads(read_again["Body"])["webhook_id"] == "replay:orders/create:91"
    records = [sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1") for m in (readable, read_again)]
    assert aws.invoke("AttributionFunction", {"Records": records}) == {"batchItemFailures": []}
    assert roi(aws, admin.shop, now)["orders"] == 2
