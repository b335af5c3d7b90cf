"""Learning and its application, through the handlers against moto server: tracked events and signed orders →
the nightly job → the merchant's performance view → recommendations that drop and reorder products."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclift.data.serving import serving_reader
from reclift.ranking import assign_arm
from reclift_local.pollers import sqs_record
from tests.support.aws import EmulatedAws, process_queue, process_stream
from tests.support.calls import ApiCallCounter
from tests.support.clock import DAY, clear_of_turn
from tests.support.recs import SERVER_REC_IDS
from tests.support.recs import shown as issued
from tests.support.shopify import (
    admin_event,
    fresh_sample,
    new_shop,
    order_payload,
    proxy_event,
    proxy_query,
    webhook_event,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
REGION = "us-east-1"
PRODUCTS = ["801", "802", "803", "804"]
# Per product: (impressions, purchases). 801 and 804 convert well, 802 never, 803 in between.
TRAFFIC = {"801": (150, 12), "802": (150, 0), "803": (150, 2), "804": (150, 10)}
PRICES = {"801": "10.00", "802": "10.00", "803": "90.00", "804": "20.00"}


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def learning_visitor(shop: str, arm: str) -> str:
    return next(f"visitor-{n}" for n in range(1000) if assign_arm(shop, f"visitor-{n}", 0.1) == arm)


def run_learning(aws: EmulatedAws, shop: str) -> dict[str, Any]:
    job = json.dumps({"shop": shop, "day": datetime.now(UTC).date().isoformat()})
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": job, "MD5OfBody": "", "Attributes": {}}
    result: dict[str, Any] = aws.invoke(
        "DailyLearningFunction", {"Records": [sqs_record(message, "arn:aws:sqs:us-east-1:1:q", REGION)]}
    )
    # A storefront execution environment serves the run it read for up to LEARNING_CACHE_SECONDS; a second run of
    # the same day (a test's policy change) is asked for from a fresh one.
    serving_reader().caches.clear()
    return result


def recommendations(aws: EmulatedAws, shop: str, visitor: str, **params: str) -> dict[str, Any]:
    query = proxy_query(shop, extra={"placement": "home", "limit": "4", "visitor_id": visitor, **params})
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))
    assert response["statusCode"] == 200, response
    result: dict[str, Any] = body_of(response)
    return result


def performance(aws: EmulatedAws, shop: str) -> dict[str, dict[str, Any]]:
    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/performance", shop))
    assert response["statusCode"] == 200, response
    return {row["product_id"]: row for row in body_of(response)["products"]}


# Longer than the shop's history takes to write, on a busy 2-core machine.
HISTORY_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class History:
    shop: str
    day: date  # the UTC day its counters are on


@pytest.fixture(scope="module")
def history(aws: EmulatedAws) -> History:
    """A shop whose widget showed four products 150 times each, and whose visitors bought some of them, all on one
    UTC day (begun within HISTORY_MARGIN of midnight, it waits for the next day). The module's tests run later, maybe
    on the next day: a test that reads the history's counters reads its day, not today."""
    day = clear_of_turn(HISTORY_MARGIN, DAY).date()
    shop = new_shop()
    impressions = [
        {
            "type": "impression",
            "visitor_id": f"v{n}",
            "placement": "home",
            "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(PRODUCTS)],
        }
        | issued(shop, f"v{n}", list(PRODUCTS), placement="home")
        for n in range(150)
    ]
    for start in range(0, len(impressions), 50):
        body = json.dumps({"events": impressions[start : start + 50]}).encode()
        event = proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body)
        assert aws.invoke("StorefrontFunction", event)["statusCode"] == 200
    process_stream(aws, "CountingFunction")  # the counting function reads the events table's stream
    order_id, visitor = 70_000, 0
    for product, (_, purchases) in TRAFFIC.items():
        for _ in range(purchases):
            order = order_payload(
                order_id=order_id,
                created_at=datetime.now(UTC),
                visitor_id=f"v{visitor}",
                lines=[{"product_id": int(product), "price": PRICES[product]}],
            )
            assert aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))["statusCode"] == 200
            order_id, visitor = order_id + 1, visitor + 1
    drain_orders(aws)
    return History(shop, day)


@pytest.fixture(scope="module")
def shop_with_history(history: History) -> str:
    return history.shop


def drain_orders(aws: EmulatedAws) -> None:
    """Hand every queued delivery to the AttributionFunction, as Lambda's poller would."""
    assert process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue")) == {"batchItemFailures": []}


def test_given_no_learning_run_yet_when_recommendations_are_asked_then_200_and_an_empty_list(
    aws: EmulatedAws,
) -> None:
    shop = new_shop()
    result = recommendations(aws, shop, "v-new")

    assert result["products"] == []
    assert result["arm"] in ("learning", "holdout")
    issued_rec = SERVER_REC_IDS.verified(result["rec_id"], shop=shop)
    assert issued_rec is not None
    assert issued_rec.arm == result["arm"]


def test_given_a_new_install_with_sales_but_no_attributions_then_home_shows_its_best_sellers(
    aws: EmulatedAws,
) -> None:
    """Best sellers count every order, not only attributed ones: a shop's first widget has something to show."""
    shop = new_shop()
    sales = {"901": 3, "902": 5, "903": 1}
    order_id = 80_000
    for product, orders in sales.items():
        for _ in range(orders):
            order = order_payload(
                order_id=order_id, created_at=datetime.now(UTC), lines=[{"product_id": int(product), "price": "12.00"}]
            )
            assert aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(order).encode()))["statusCode"] == 200
            order_id += 1
    drain_orders(aws)

    summary = run_learning(aws, shop)

    assert summary == {"batchItemFailures": []}
    no_exploration = admin_event("PUT", "/admin/settings", shop, {"explore_share": 0})  # the order is asserted
    assert aws.invoke("AdminFunction", no_exploration)["statusCode"] == 200
    served = recommendations(aws, shop, "v-first")
    assert [p["product_id"] for p in served["products"]] == ["902", "901", "903"]
    assert {row["product_id"]: row["purchases"] for row in performance(aws, shop).values()} == {
        "901": 0,
        "902": 0,
        "903": 0,
    }  # nothing was attributed: performance stays honest


def test_given_the_seed_policy_when_learned_then_the_plan_rules_blacklist_and_boost(
    aws: EmulatedAws, shop_with_history: str
) -> None:
    shop = shop_with_history
    put = aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"policy": "seed"}))
    assert put["statusCode"] == 200

    assert run_learning(aws, shop) == {"batchItemFailures": []}

    rows = performance(aws, shop)
    assert rows["802"]["blacklisted"] is True
    assert "below 0.50%" in rows["802"]["reason"]
    assert rows["802"]["confidence"] == 0.2
    assert (rows["801"]["confidence"], rows["804"]["confidence"]) == (0.9, 0.9)  # CVR 8 % and 6.7 % > 2 %
    assert rows["803"]["confidence"] == 0.5  # CVR 1.3 %
    assert rows["801"]["impressions"] == 150
    assert rows["801"]["purchases"] == 12
    only = aws.invoke("AdminFunction", admin_event("GET", "/admin/performance?blacklisted=true", shop))
    assert [row["product_id"] for row in body_of(only)["products"]] == ["802"]

    learning = recommendations(aws, shop, learning_visitor(shop, "learning"))
    holdout = recommendations(aws, shop, learning_visitor(shop, "holdout"))
    # Learning arm: the blacklisted product is dropped and its slot goes to the next candidate; 801 and 804 are
    # boosted (× 1.3 of their base score), 803 keeps its own.
    assert [p["product_id"] for p in learning["products"]] == ["801", "804", "803"]
    assert learning["policy"] == "seed"
    # Holdout arm: the same candidates in similarity (best-seller) order, nothing dropped.
    assert [p["product_id"] for p in holdout["products"]] == ["801", "804", "803", "802"]
    assert holdout["policy"] == "static"


def test_given_the_bayes_policy_when_learned_then_no_product_is_blacklisted_on_150_impressions_and_value_ranks(
    aws: EmulatedAws, shop_with_history: str
) -> None:
    shop = shop_with_history
    aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"policy": "bayes", "explore_share": 0}))

    assert run_learning(aws, shop) == {"batchItemFailures": []}

    rows = performance(aws, shop)
    # 0 purchases in 150 impressions cannot show CVR < 0.5 % with 95 % confidence: not blacklisted.
    assert rows["802"]["blacklisted"] is False
    assert rows["801"]["confidence"] > rows["803"]["confidence"] > rows["802"]["confidence"]
    ranked = recommendations(aws, shop, learning_visitor(shop, "learning"))
    # Expected revenue per impression: 803 sells least often but at 90.00; 802 never sells.
    order = [p["product_id"] for p in ranked["products"]]
    assert (order[0], order[-1]) == ("803", "802")
    assert ranked["policy"] == "bayes"


def test_given_a_recommendation_request_then_it_takes_at_most_two_dynamodb_round_trips(
    aws: EmulatedAws, shop_with_history: str
) -> None:
    """Cold (nothing in the execution environment's caches): the context, then the candidates' catalog listings
    (the model carries their performance). Warm: the shop and the profiles alone, in one round trip."""
    assert run_learning(aws, shop_with_history) == {"batchItemFailures": []}  # a model, whatever ran before
    visitor = learning_visitor(shop_with_history, "learning")
    recommendations(aws, shop_with_history, visitor)  # warm: the secret is read from SSM once, then cached
    serving_reader().caches.clear()

    counter = ApiCallCounter(names={aws.resource(table): table for table in ("CatalogTable", "LearningTable")})
    with counter.counting() as cold:
        recommendations(aws, shop_with_history, visitor, placement="product", product_id="801")
    with counter.counting() as warm:
        recommendations(aws, shop_with_history, visitor, placement="product", product_id="801")

    calls = [(call.service, call.operation) for call in cold.calls.elements()]
    assert calls == [("dynamodb", "BatchGetItem"), ("dynamodb", "BatchGetItem")]
    assert "CatalogTable" in {call.target for call in cold.calls}
    assert [(call.service, call.operation) for call in warm.calls.elements()] == [("dynamodb", "BatchGetItem")]
    assert not any("CatalogTable" in call.target or "LearningTable" in call.target for call in warm.calls)


def test_given_a_visitor_who_bought_a_product_then_it_is_not_recommended_to_them(
    aws: EmulatedAws, shop_with_history: str
) -> None:
    # v0 bought 801 (the first order of the history).
    products = [p["product_id"] for p in recommendations(aws, shop_with_history, "v0", limit="20")["products"]]

    assert "801" not in products


def test_given_the_current_product_and_cart_then_they_are_never_recommended(
    aws: EmulatedAws, shop_with_history: str
) -> None:
    visitor = learning_visitor(shop_with_history, "learning")
    result = recommendations(
        aws,
        shop_with_history,
        visitor,
        placement="cart",
        cart_product_ids="804,803",
        product_id="gid://shopify/Product/801",
    )

    assert {"801", "803", "804"}.isdisjoint(p["product_id"] for p in result["products"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "21"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"placement": "checkout"}, "placement"),
        ({"placement": "product"}, "product_id"),
        ({"product_id": "not-an-id", "placement": "product"}, "product_id"),
        ({"cart_product_ids": "1,x"}, "cart_product_ids"),
        ({"visitor_id": "spaces are not allowed"}, "visitor_id"),
    ],
)
def test_given_bad_recommendation_parameters_then_400_names_the_parameter(
    aws: EmulatedAws, params: dict[str, str], field: str
) -> None:
    query = proxy_query(new_shop(), extra=params)
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))

    assert response["statusCode"] == 400
    assert body_of(response)["field"] == field


def test_given_the_sample_events_then_the_learning_and_new_routes_answer(
    aws: EmulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = {
        name: json.loads((EVENTS / name).read_text())
        for name in (
            "learning-scheduled.json",
            "learning-sqs-shop.json",
            "storefront-get-recommendations.json",
        )
    }
    sqs = aws.client("sqs")
    # A shop in the registry (the storefront's events register it), so the fan-out has one to queue.
    viewed = json.dumps({"events": [{"type": "view", "visitor_id": "v-1", "product_id": "801"}]}).encode()
    event = proxy_event("POST", "/apps/proxy/events", proxy_query(new_shop()), viewed)
    assert aws.invoke("StorefrontFunction", event)["statusCode"] == 200

    fanned = aws.invoke("DailyLearningFunction", sample["learning-scheduled.json"])
    queued = sqs.receive_message(QueueUrl=aws.resource("LearningQueue"), MaxNumberOfMessages=10)["Messages"]

    assert fanned["shops"] >= 1
    assert all(json.loads(m["Body"])["day"] == "2026-11-01" for m in queued)
    assert aws.invoke("DailyLearningFunction", sample["learning-sqs-shop.json"]) == {"batchItemFailures": []}
    assert aws.invoke("AdminFunction", fresh_sample("admin-get-performance.json"))["statusCode"] == 200
    skew_off = aws.environment("StorefrontFunction") | {"APP_PROXY_MAX_SKEW_SECONDS": "0"}
    monkeypatch.setattr(aws, "environment", lambda logical_id: skew_off)
    assert aws.invoke("StorefrontFunction", sample["storefront-get-recommendations.json"])["statusCode"] == 200


def test_given_a_learning_message_that_is_not_a_job_then_only_it_fails(aws: EmulatedAws) -> None:
    good = {
        "MessageId": "good",
        "ReceiptHandle": "r",
        "Body": json.dumps({"shop": new_shop(), "day": "2026-11-01"}),
        "Attributes": {},
    }
    bad = {"MessageId": "bad", "ReceiptHandle": "r", "Body": '{"shop": "nope"}', "Attributes": {}}
    event = {"Records": [sqs_record(m, "arn:aws:sqs:us-east-1:1:q", REGION) for m in (good, bad)]}

    assert aws.invoke("DailyLearningFunction", event) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_given_a_day_with_the_shops_own_counters_when_learning_reads_it_then_only_product_items_are_read(
    aws: EmulatedAws, history: History
) -> None:
    """The day's partition also holds the shop's totals, its hours and its arms' visitors: learning's key condition
    leaves them unread (and unbilled), so its reads follow the products, not the shop's traffic."""
    from reclift.data.learning import LearningStore
    from reclift_local.worker import function_env

    counter = ApiCallCounter()
    with function_env(aws.environment("DailyLearningFunction")):
        store = LearningStore()
        with counter.counting() as block:
            days = list(store.product_days(history.shop, history.day, history.day))
    assert sorted(day.product_id for day in days) == sorted(PRODUCTS)
    assert sum(block.items.values()) == len(PRODUCTS)
