"""The running local stack over HTTP, called the way Shopify and the storefront call it, inspected with real boto3."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from reclift.ranking import assign_arm
from tests.support.recs import shown as issued
from tests.support.shopify import (
    new_shop,
    order_payload,
    proxy_query,
    session_token,
    webhook_event,
    webhook_request,
)
from tests.support.stack import RunningStack, admin_get, process_alive, running_stack, wait_for, wait_for_value
from tests.support.truth import actual_counters

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[RunningStack]:
    """Catalog listings are served from the StorefrontFunction's cache for 2 s here (2 minutes by default), so a
    catalog change shows within the tests' patience."""
    with running_stack(
        tmp_path_factory.mktemp("stack"), database=database, extra_env={"CATALOG_CACHE_SECONDS": "2"}
    ) as running:
        yield running


def post_webhook(
    stack: RunningStack, shop: str, order: dict[str, Any], webhook_id: str | None = None, topic: str = "orders/create"
) -> requests.Response:
    headers, body = webhook_request(shop, json.dumps(order).encode(), webhook_id=webhook_id, topic=topic)
    return requests.post(f"{stack.url}/webhooks/{topic}", data=body, headers=dict(headers), timeout=10)


def post_events(stack: RunningStack, shop: str, events: list[dict[str, Any]], customer: str = "") -> requests.Response:
    return requests.post(
        f"{stack.url}/apps/proxy/events?{proxy_query(shop, customer)}", json={"events": events}, timeout=10
    )


def clicked(shop: str, product: str, visitor: str, response: dict[str, Any] | None = None) -> dict[str, Any]:
    """A click on `product`, about `response` (its rec id and event fields), else about a response listing it."""
    fields = response or issued(shop, visitor, [product])
    return {"type": "click", "visitor_id": visitor, "product_id": product, "position": 1} | fields


def test_given_storefront_events_and_a_signed_order_when_posted_then_the_roi_shows_it_within_seconds(
    stack: RunningStack,
) -> None:
    shop = new_shop()
    response = issued(shop, "v1", ["501", "502"])
    shown = {
        "type": "impression",
        "visitor_id": "v1",
        "placement": "product",
        "products": [{"product_id": "501", "position": 1}, {"product_id": "502", "position": 2}],
    } | response
    events = [shown, clicked(shop, "501", "v1", response)]
    assert post_events(stack, shop, events).json() == {"received": 2, "stored": 2, "ignored": 0}
    assert post_events(stack, shop, events).json() == {"received": 2, "stored": 0, "ignored": 2}  # a replay
    order = order_payload(
        order_id=9001,
        created_at=datetime.now(UTC),
        visitor_id="v1",
        lines=[
            {"product_id": 501, "price": "12.50", "quantity": 2, "rec_id": response["rec_id"]},  # click-through
            {"product_id": 502, "price": "7.25", "discount": "0.25"},  # view-through
            {"product_id": 503, "price": "3.00"},  # never recommended: a missed opportunity
        ],
    )

    accepted = post_webhook(stack, shop, order)
    assert accepted.status_code == 200
    report = wait_for(  # "within seconds": the wait's bound, not a timed assertion (the benchmarks measure time)
        lambda: (r := admin_get(stack, shop, "/admin/roi"))["attributed_orders"] and r,
        timeout=30,
        message="the attribution",
    )

    assert report["attributed_revenue"] == "32.00"
    assert report["click_through_revenue"] == "25.00"
    assert report["view_through_revenue"] == "7.00"
    assert {p["product_id"]: p["revenue"] for p in report["by_product"]} == {"501": "25.00", "502": "7.00"}
    missed = stack.client("dynamodb").get_item(
        TableName=stack.resource("OrdersTable"), Key={"pk": {"S": f"{shop}#9001"}, "sk": {"S": "missed#900102"}}
    )["Item"]
    # Both shown by one impression, at the same moment: neither is more recent than the other.
    assert sorted(v["S"] for v in missed["shown_instead"]["L"]) == ["501", "502"]


def test_given_one_delivery_three_times_and_the_order_again_under_a_new_id_then_it_counts_once(
    stack: RunningStack,
) -> None:
    shop = new_shop()
    post_events(stack, shop, [clicked(shop, "601", "v2")])
    order = order_payload(
        order_id=9002, created_at=datetime.now(UTC), visitor_id="v2", lines=[{"product_id": 601, "price": "40.00"}]
    )

    for _ in range(3):
        assert post_webhook(stack, shop, order, webhook_id="the-same-delivery").status_code == 200
    assert post_webhook(stack, shop, order, webhook_id="a-new-delivery-of-the-same-order").status_code == 200
    wait_for_value(lambda: stack.queue_depth("WebhookQueue"), 0, message="the queue to drain")

    report = admin_get(stack, shop, "/admin/roi")
    assert report["attributed_revenue"] == "40.00"
    assert report["attributed_orders"] == 1
    assert report["orders"] == 1
    counter = wait_for(  # the click is counted from the events table's stream, within the batching window
        lambda: (
            (c := actual_counters(stack.client("dynamodb"), stack.resource("CountersTable"), shop, ["601"])["601"])
            and c["clicks"]
            and c
        ),
        message="the click counted",
    )
    assert (counter["purchases"], counter["revenue"], counter["clicks"]) == (1, Decimal("40.00"), 1)


def test_given_the_forged_impressions_attack_over_http_then_only_the_genuine_impression_counts(
    stack: RunningStack,
) -> None:
    """The reproduced attack through the local stack: 50 impressions listing one product 20 times, with made-up
    `h-…` rec ids and with a genuine rec id replayed; the product's counters and the arms' visitors see one showing."""
    shop = new_shop()
    genuine = issued(shop, "v-real", ["611", "612"])
    twenty = [{"product_id": "611", "position": 1}] * 20
    first = {"type": "impression", "visitor_id": "v-real", "placement": "product", "products": twenty} | genuine
    assert post_events(stack, shop, [first]).json() == {"received": 1, "stored": 1, "ignored": 0}
    forged = [
        {"type": "impression", "visitor_id": f"h-visitor-{n}", "placement": "product", "products": twenty}
        | {"rec_id": f"h-{n:024x}"}
        for n in range(50)
    ]
    for attack in (forged, [first] * 50):
        assert post_events(stack, shop, attack).json() == {"received": 50, "stored": 0, "ignored": 50}

    counters = wait_for(  # counted from the events table's stream, within the batching window
        lambda: (
            (found := actual_counters(stack.client("dynamodb"), stack.resource("CountersTable"), shop, ["611"]))
            and "611" in found
            and found
        ),
        message="the genuine impression counted",
    )
    time.sleep(3)  # a batching window more: anything the attack had counted would be in by now
    counters = actual_counters(stack.client("dynamodb"), stack.resource("CountersTable"), shop, ["611", "612"])
    assert counters["611"]["impressions"] == 1
    assert admin_get(stack, shop, "/admin/roi")["lift"]["visitors"] == {"learning": 1, "holdout": 0}


def test_given_a_poison_delivery_beside_good_ones_then_it_reaches_the_dlq_and_the_rest_are_processed(
    stack: RunningStack,
) -> None:
    shop = new_shop()
    post_events(stack, shop, [clicked(shop, "701", "v3")])
    good = order_payload(
        order_id=9003, created_at=datetime.now(UTC), visitor_id="v3", lines=[{"product_id": 701, "price": "5.00"}]
    )
    poison = dict(good, id=9004, created_at="not a time")  # authentic, but it can never be processed
    dlq_before = stack.queue_depth("WebhookDLQ")

    assert post_webhook(stack, shop, poison).status_code == 200
    assert post_webhook(stack, shop, good).status_code == 200

    wait_for_value(lambda: admin_get(stack, shop, "/admin/roi")["attributed_orders"], 1, message="the good order")
    wait_for_value(lambda: stack.queue_depth("WebhookDLQ"), dlq_before + 1, timeout=60, message="the DLQ")
    [message] = [
        m
        for m in stack.client("sqs").receive_message(
            QueueUrl=stack.resource("WebhookDLQ"), MaxNumberOfMessages=10, VisibilityTimeout=0
        )["Messages"]
        if json.loads(m["Body"])["shop"] == shop
    ]
    assert json.loads(json.loads(message["Body"])["body"])["id"] == 9004  # kept whole, re-drivable

    moved = stack.command("redrive")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["total"] >= 1  # back on its queue, where it is retried (and fails) again


def test_given_a_bad_signature_or_body_when_posted_then_the_stack_answers_4xx(stack: RunningStack) -> None:
    shop = new_shop()
    forged = requests.post(
        f"{stack.url}/webhooks/orders/create",
        data=b"{}",
        timeout=10,
        headers={"x-shopify-hmac-sha256": "Zm9yZ2Vk", "x-shopify-shop-domain": shop},
    )
    events = requests.post(
        f"{stack.url}/apps/proxy/events?{proxy_query(shop)}",
        data=b"[1,2",
        headers={"content-type": "application/json"},
        timeout=10,
    )
    admin = requests.get(f"{stack.url}/admin/roi", timeout=10)
    unknown = requests.get(f"{stack.url}/no/such/route", timeout=10)

    assert forged.status_code == 401
    assert events.status_code == 400
    assert events.json()["field"] == "body"
    assert admin.status_code == 401
    assert unknown.status_code == 404


def test_given_the_invoke_command_when_run_against_the_stack_then_it_prints_the_function_response(
    stack: RunningStack, tmp_path: Path
) -> None:
    fresh = tmp_path / "webhook.json"
    fresh.write_text(json.dumps(webhook_event(new_shop(), b"{}", topic="products/update")))

    result = stack.command("invoke", "WebhookFunction", "--event", str(fresh))
    replayed = stack.command("invoke", "WebhookFunction", "--event", "events/webhook-orders-create.json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statusCode"] == 200
    # The sample was triggered at a fixed moment long past: the function refuses it as a replay.
    assert json.loads(replayed.stdout)["statusCode"] == 400


def test_given_sigterm_when_the_stack_stops_then_no_worker_process_is_left(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with running_stack(tmp_path_factory.mktemp("short-lived")) as short:
        workers = [pid for fn in short.status()["functions"].values() for pid in fn["workers"]]
        assert workers
        short.process.send_signal(signal.SIGTERM)
        assert short.process.wait(timeout=30) == 0
    assert [pid for pid in workers if process_alive(pid, running=b"reclift_local.worker")] == []
    assert not short.log.with_name("stack.json").exists()


SHOWN = ["901", "902", "903"]


def test_given_history_when_the_nightly_job_is_invoked_then_performance_and_recommendations_follow_it(
    stack: RunningStack,
) -> None:
    """Impressions, clicks and signed orders → `make invoke FN=DailyLearningFunction` (its whole scheduled work,
    fan-out included) → /admin/performance shows the seed policy's blacklist → the learning arm drops it."""
    shop = new_shop()
    put = requests.put(
        f"{stack.url}/admin/settings",
        json={"policy": "seed"},
        timeout=10,
        headers={"authorization": f"Bearer {session_token(shop)}"},
    )
    assert put.status_code == 200
    shown = [
        {
            "type": "impression",
            "visitor_id": f"v{n}",
            "placement": "home",
            "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(SHOWN)],
        }
        | issued(shop, f"v{n}", SHOWN, placement="home")
        for n in range(120)
    ]
    for start in range(0, len(shown), 50):
        assert post_events(stack, shop, shown[start : start + 50]).status_code == 200
    for n, product in enumerate(["901"] * 6 + ["903"] * 2):
        order = order_payload(
            order_id=9100 + n,
            created_at=datetime.now(UTC),
            visitor_id=f"v{n}",
            lines=[{"product_id": int(product), "price": "15.00"}],
        )
        assert post_webhook(stack, shop, order).status_code == 200
    wait_for_value(lambda: admin_get(stack, shop, "/admin/roi")["attributed_orders"], 8, message="the orders")

    # The impressions are counted from the events table's stream, within the counting function's batching window:
    # the nightly job learns from the counters, so it runs once they hold every impression (on a loaded machine the
    # stream can lag the orders).
    def every_impression_counted() -> bool:
        found = actual_counters(stack.client("dynamodb"), stack.resource("CountersTable"), shop, SHOWN)
        return all(found.get(product, {}).get("impressions") == 120 for product in SHOWN)

    wait_for(every_impression_counted, message="the impressions counted")

    invoked = stack.command("invoke", "DailyLearningFunction", timeout=300)
    assert invoked.returncode == 0, invoked.stdout + invoked.stderr

    rows = requests.get(
        f"{stack.url}/admin/performance", timeout=10, headers={"authorization": f"Bearer {session_token(shop)}"}
    ).json()["products"]
    by_product = {row["product_id"]: row for row in rows}
    assert by_product["902"]["blacklisted"] is True  # 0 of 120
    assert by_product["901"]["confidence"] == 0.9  # 6 of 120 = 5 %
    assert by_product["903"]["confidence"] == 0.5  # 2 of 120 = 1.7 %
    visitor = next(f"w{n}" for n in range(1000) if assign_arm(shop, f"w{n}", 0.1) == "learning")
    query = proxy_query(shop, extra={"placement": "home", "limit": "3", "visitor_id": visitor})
    served = requests.get(f"{stack.url}/apps/proxy/recommendations?{query}", timeout=10).json()
    assert [p["product_id"] for p in served["products"]] == ["901", "903"]


def test_given_signed_orders_when_the_similarity_job_is_invoked_then_a_product_page_lists_its_co_purchases(
    stack: RunningStack,
) -> None:
    """Signed orders → `make invoke FN=SimilarityFunction` (its schedule's fan-out included) → the product page's
    recommendations are the products bought with it, in Jaccard order; a visitor who views one gets home picks."""
    shop = new_shop()
    no_exploration = requests.put(
        f"{stack.url}/admin/settings",
        json={"explore_share": 0.0},
        timeout=10,
        headers={"authorization": f"Bearer {session_token(shop)}"},
    )
    assert no_exploration.status_code == 200
    baskets = [[701, 702]] * 4 + [[701, 703]] * 3 + [[701, 704]] * 2 + [[702, 705]] * 2
    # Placed a minute before the run: a scheduled event's time is whole seconds (EventBridge's), and the job's
    # window ends there, so an order placed in the very second the job fires waits for the next run.
    placed = datetime.now(UTC) - timedelta(minutes=1)
    for n, basket in enumerate(baskets):
        order = order_payload(
            order_id=9300 + n,
            created_at=placed,
            lines=[{"product_id": product, "price": "15.00"} for product in basket],
        )
        assert post_webhook(stack, shop, order).status_code == 200
    wait_for_value(lambda: admin_get(stack, shop, "/admin/roi")["orders"], len(baskets), message="the orders")

    invoked = stack.command("invoke", "SimilarityFunction", timeout=300)
    assert invoked.returncode == 0, invoked.stdout + invoked.stderr

    def served(**params: str) -> list[str]:
        query = proxy_query(shop, extra={"limit": "10", **params})
        response = requests.get(f"{stack.url}/apps/proxy/recommendations?{query}", timeout=10)
        assert response.status_code == 200, response.text
        return [p["product_id"] for p in response.json()["products"]]

    # n(701) = 9: Jaccard 4/11 with 702 (n = 6), 3/9 with 703, 2/9 with 704.
    assert served(placement="product", product_id="701") == ["702", "703", "704"]
    assert served(placement="home", visitor_id="v-stack") == []
    assert post_events(stack, shop, [{"type": "view", "visitor_id": "v-stack", "product_id": "705"}]).ok
    assert served(placement="home", visitor_id="v-stack") == ["702"]


PRODUCT_SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "products_update_sample.json"


def product_update(
    number: int, updated_at: datetime, *, price: str, status: str = "active", stock: int = 5
) -> dict[str, Any]:
    """Shopify's products/update payload for one product with one variant."""
    payload: dict[str, Any] = json.loads(PRODUCT_SAMPLE.read_text())
    variant = payload["variants"][0] | {"product_id": number, "price": price, "inventory_quantity": stock}
    payload |= {
        "id": number,
        "title": f"Product {number}",
        "handle": f"product-{number}",
        "status": status,
        "updated_at": updated_at.isoformat(),
        "variants": [variant],
    }
    payload["image"] = payload["image"] | {"product_id": number, "src": f"https://cdn.shopify.com/{number}.jpg"}
    return payload


def test_given_the_catalog_when_products_change_then_recommendations_follow_within_seconds(stack: RunningStack) -> None:
    """Signed products webhooks → the product page's recommendations: ranked by catalog price under the revenue
    objective, rendered from the catalog, reordered by a price change, and without a product once it is a draft
    or sold out, each once the listing's cached copy has expired (CATALOG_CACHE_SECONDS, 2 s in this stack)."""
    shop = new_shop()
    settings = {"policy": "bayes", "objective": "revenue", "explore_share": 0.0, "holdout_share": 0.0}
    put = requests.put(
        f"{stack.url}/admin/settings",
        json=settings,
        timeout=10,
        headers={"authorization": f"Bearer {session_token(shop)}"},
    )
    assert put.status_code == 200, put.text
    baskets = [[801, 802]] * 4 + [[801, 803]] * 3 + [[801, 804]] * 2
    placed = datetime.now(UTC) - timedelta(minutes=1)  # before the jobs' runs (see the similarity test above)
    for n, basket in enumerate(baskets):
        lines = [{"product_id": product, "price": "15.00"} for product in basket]
        order = order_payload(order_id=9400 + n, created_at=placed, lines=lines)
        assert post_webhook(stack, shop, order).status_code == 200
    t0 = datetime.now(UTC)
    for number, price in ((802, "20.00"), (803, "30.00"), (804, "10.00")):
        update = product_update(number, t0, price=price)
        assert post_webhook(stack, shop, update, topic="products/update").status_code == 200
    wait_for_value(lambda: admin_get(stack, shop, "/admin/roi")["orders"], len(baskets), message="the orders")
    for job in ("SimilarityFunction", "DailyLearningFunction"):
        invoked = stack.command("invoke", job, timeout=300)
        assert invoked.returncode == 0, invoked.stdout + invoked.stderr

    def served() -> list[dict[str, Any]]:
        query = proxy_query(shop, extra={"placement": "product", "product_id": "801", "limit": "10"})
        response = requests.get(f"{stack.url}/apps/proxy/recommendations?{query}", timeout=10)
        assert response.status_code == 200, response.text
        products: list[dict[str, Any]] = response.json()["products"]
        return products

    def served_ids() -> list[str]:
        return [product["product_id"] for product in served()]

    # No product has data yet: each is worth the prior's CVR × its catalog price.
    wait_for_value(served_ids, ["803", "802", "804"], message="the catalog's prices")
    first = served()[0]
    assert {key: first[key] for key in ("title", "url", "price", "image")} == {
        "title": "Product 803",
        "url": "/products/product-803",
        "price": "30.00",
        "image": "https://cdn.shopify.com/803.jpg",
    }

    dearer = product_update(804, t0 + timedelta(minutes=1), price="50.00")
    assert post_webhook(stack, shop, dearer, topic="products/update").status_code == 200
    wait_for_value(served_ids, ["804", "803", "802"], timeout=30, message="the price change")

    draft = product_update(803, t0 + timedelta(minutes=2), price="30.00", status="draft")
    assert post_webhook(stack, shop, draft, topic="products/update").status_code == 200
    wait_for_value(served_ids, ["804", "802"], timeout=30, message="the draft gone")

    sold_out = product_update(802, t0 + timedelta(minutes=3), price="20.00", stock=0)
    assert post_webhook(stack, shop, sold_out, topic="products/update").status_code == 200
    wait_for_value(served_ids, ["804"], timeout=30, message="the sold-out product gone")

    late = product_update(802, t0 + timedelta(seconds=30), price="20.00")  # an older update, delivered last
    assert post_webhook(stack, shop, late, topic="products/update").status_code == 200
    deleted = {"id": 804}
    assert post_webhook(stack, shop, deleted, topic="products/delete").status_code == 200
    wait_for_value(served_ids, [], timeout=30, message="the deleted product gone, the late update ignored")
