"""The merchant's rules and a new shop's day-one recommendations, through the handlers against the emulator:
`/admin/rules` (session token, validation naming the field), products signed as Shopify sends them → the catalog →
the similarity job's catalog neighbours → recommendations that exclude, pin and say where each product comes from,
in two DynamoDB round trips; the nightly learning keeping a never-blacklisted product off the blacklist."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reclift.data.serving import serving_reader
from tests.integration.test_learning import (  # noqa: F401 - fixtures
    history,
    performance,
    run_learning,
    shop_with_history,
)
from tests.integration.test_similarity import job_event
from tests.support.aws import EmulatedAws, process_queue
from tests.support.calls import ApiCallCounter
from tests.support.shopify import admin_event, new_shop, proxy_event, proxy_query, webhook_event

EMPTY = {
    "exclude": {"product_ids": [], "tags": [], "product_types": [], "vendors": []},
    "pin": {"product": [], "cart": [], "home": []},
    "never_blacklist": [],
}


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def rules_call(aws: EmulatedAws, shop: str, method: str = "GET", body: Any = None) -> dict[str, Any]:
    response: dict[str, Any] = aws.invoke("AdminFunction", admin_event(method, "/admin/rules", shop, body))
    return response


def product(number: int, price: str, *, product_type: str, vendor: str, tags: str, **extra: Any) -> dict[str, Any]:
    """A products/create body as Shopify sends it (REST shape), with one variant in stock."""
    return {
        "id": number,
        "title": f"Product {number}",
        "handle": f"product-{number}",
        "status": "active",
        "updated_at": "2026-11-26T08:30:00-05:00",
        "product_type": product_type,
        "vendor": vendor,
        "tags": tags,
        "variants": [{"price": price, "inventory_quantity": 5, "inventory_management": "shopify"}],
        "images": [],
    } | extra


# A new shop: no orders yet. 1's neighbours by the catalog: 2 and 3 (same type, near price; 3 also shares a tag),
# 4 (same vendor and tag, another type), 5 (same type but more than twice the price: not near), 6 (a gift card).
CATALOG = [
    product(1, "30.00", product_type="Shirts", vendor="Acme", tags="cotton, summer"),
    product(2, "32.00", product_type="Shirts", vendor="Other", tags="linen"),
    product(3, "27.00", product_type="Shirts", vendor="Other", tags="summer"),
    product(4, "35.00", product_type="Hats", vendor="Acme", tags="summer"),
    product(5, "80.00", product_type="Shirts", vendor="Acme", tags="cotton, summer"),
    product(6, "30.00", product_type="Gift Card", vendor="Acme", tags="summer"),
]


@pytest.fixture(scope="module")
def new_catalog_shop(aws: EmulatedAws) -> str:
    """A shop whose products arrived by webhook and whose nightly similarity job ran: no orders, no learning yet."""
    shop = new_shop()
    assert rules_call(aws, shop)["statusCode"] == 200  # installs the shop (and registers it)
    no_exploration = admin_event("PUT", "/admin/settings", shop, {"explore_share": 0.0, "holdout_share": 0.0})
    assert aws.invoke("AdminFunction", no_exploration)["statusCode"] == 200
    for payload in CATALOG:
        event = webhook_event(shop, json.dumps(payload).encode(), topic="products/create")
        assert aws.invoke("WebhookFunction", event)["statusCode"] == 200
    assert process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue")) == {"batchItemFailures": []}
    result = aws.invoke("SimilarityFunction", job_event({"shop": shop, "now": datetime.now(UTC).isoformat()}))
    assert result == {"batchItemFailures": []}
    return shop


def served(aws: EmulatedAws, shop: str, **params: str) -> list[tuple[str, str]]:
    query = proxy_query(shop, extra={"limit": "4", "placement": "product", "product_id": "1", **params})
    response = aws.invoke("StorefrontFunction", proxy_event("GET", "/apps/proxy/recommendations", query))
    assert response["statusCode"] == 200, response
    return [(p["product_id"], p["source"]) for p in body_of(response)["products"]]


# ------------------------------------------------------------------------------------------------ /admin/rules
def test_given_a_shop_without_rules_then_every_list_is_present_and_empty(aws: EmulatedAws) -> None:
    response = rules_call(aws, new_shop())

    assert response["statusCode"] == 200
    assert body_of(response) == EMPTY


def test_given_partial_changes_then_each_replaces_only_the_lists_it_names(aws: EmulatedAws) -> None:
    shop = new_shop()
    first = rules_call(aws, shop, "PUT", {"exclude": {"tags": ["Sale"], "vendors": ["Rival"]}, "pin": {"home": [7]}})
    second = rules_call(aws, shop, "PUT", {"exclude": {"tags": []}, "never_blacklist": ["gid://shopify/Product/8"]})

    assert first["statusCode"] == second["statusCode"] == 200
    expected = {
        "exclude": {"product_ids": [], "tags": [], "product_types": [], "vendors": ["rival"]},
        "pin": {"product": [], "cart": [], "home": ["7"]},
        "never_blacklist": ["8"],
    }
    assert body_of(second) == expected
    assert body_of(rules_call(aws, shop)) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"exclude": {"product_ids": ["1", "2", "not-an-id"]}}, "exclude.product_ids[2]"),
        ({"exclude": {"collections": ["x"]}}, "exclude.collections"),
        ({"pin": {"product": [str(n) for n in range(21)]}}, "pin.product"),
        ("[]", "body"),
    ],
)
def test_given_a_bad_change_then_400_names_the_field_and_nothing_is_written(
    aws: EmulatedAws, body: Any, field: str
) -> None:
    shop = new_shop()
    rules_call(aws, shop, "PUT", {"exclude": {"tags": ["kept"]}})

    response = rules_call(aws, shop, "PUT", body.encode() if isinstance(body, str) else body)

    assert response["statusCode"] == 400
    assert body_of(response)["field"] == field
    assert body_of(rules_call(aws, shop))["exclude"]["tags"] == ["kept"]


def test_given_no_or_a_forged_session_token_then_401(aws: EmulatedAws) -> None:
    assert aws.invoke("AdminFunction", admin_event("GET", "/admin/rules", None))["statusCode"] == 401
    forged = admin_event("PUT", "/admin/rules", None, {"pin": {"home": ["1"]}}, token="e30.e30.bad")
    assert aws.invoke("AdminFunction", forged)["statusCode"] == 401


# ------------------------------------------------------------------------------------------------ serving
def test_given_a_new_shop_then_its_catalog_neighbours_are_recommended_same_type_first_never_a_gift_card(
    aws: EmulatedAws, new_catalog_shop: str
) -> None:
    assert served(aws, new_catalog_shop) == [("3", "catalog"), ("2", "catalog"), ("4", "catalog")]


def test_given_rules_then_excluded_products_never_appear_and_pins_come_first_in_two_round_trips(
    aws: EmulatedAws, new_catalog_shop: str
) -> None:
    shop = new_catalog_shop
    rules = {"exclude": {"tags": ["Linen"]}, "pin": {"product": ["5", "6", "404"]}}
    assert rules_call(aws, shop, "PUT", rules)["statusCode"] == 200
    serving_reader().caches.clear()

    counter = ApiCallCounter(names={aws.resource(table): table for table in ("CatalogTable", "LearningTable")})
    with counter.counting() as cold:
        result = served(aws, shop)

    # 5 is pinned and for sale; 6 is a gift card and 404 unknown to the catalog; 2 is tagged linen.
    assert result == [("5", "pinned"), ("3", "catalog"), ("4", "catalog")]
    assert [(call.service, call.operation) for call in cold.calls.elements()] == [
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "BatchGetItem"),
    ]
    assert rules_call(aws, shop, "PUT", {"exclude": {"tags": []}, "pin": {"product": []}})["statusCode"] == 200
    assert served(aws, shop) == [("3", "catalog"), ("2", "catalog"), ("4", "catalog")]  # at once: never cached


def test_given_a_new_shop_then_a_visitors_home_shows_the_catalog_neighbours_of_what_they_viewed(
    aws: EmulatedAws, new_catalog_shop: str
) -> None:
    """No orders, so no co-purchases: the visitor's profile carries its recent products' catalog neighbours, read
    with the profile in the first round trip, and home recommends them."""
    shop, visitor = new_catalog_shop, "home-visitor-1"
    view = json.dumps({"events": [{"type": "view", "visitor_id": visitor, "product_id": "1"}]}).encode()
    posted = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), view))
    assert posted["statusCode"] == 200, posted

    assert served(aws, shop, placement="home", visitor_id=visitor) == [
        ("3", "catalog"),
        ("2", "catalog"),
        ("4", "catalog"),
    ]


# ------------------------------------------------------------------------------------------------ learning
def test_given_a_never_blacklisted_product_then_the_nightly_learning_keeps_it_off_the_blacklist(
    aws: EmulatedAws,
    shop_with_history: str,  # noqa: F811 - the fixture imported above
) -> None:
    shop = shop_with_history
    assert (
        aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"policy": "seed"}))["statusCode"]
        == 200
    )
    assert rules_call(aws, shop, "PUT", {"never_blacklist": ["802"]})["statusCode"] == 200

    assert run_learning(aws, shop) == {"batchItemFailures": []}

    rows = performance(aws, shop)
    assert rows["802"]["blacklisted"] is False  # CVR 0 in 150 impressions: the seed policy blacklists it otherwise
    assert "never blacklisted" in rows["802"]["reason"]
    assert rows["802"]["confidence"] == 0.2  # what was learned stays as it was


def test_given_a_gift_card_when_a_later_update_does_not_say_so_then_it_is_still_never_recommended(
    aws: EmulatedAws,
) -> None:
    """The REST webhook often cannot tell a gift card (GraphQL's isGiftCard can): once known, the flag stays."""
    from reclift.data.catalog import catalog_keys, listings_from_items

    shop = new_shop()
    card = product(9, "25.00", product_type="Gift Card", vendor="Acme", tags="")
    later = card | {"product_type": "", "title": "Gift card (renamed)", "updated_at": "2026-11-27T08:30:00-05:00"}
    for topic, payload in (("products/create", card), ("products/update", later)):
        event = webhook_event(shop, json.dumps(payload).encode(), topic=topic)
        assert aws.invoke("WebhookFunction", event)["statusCode"] == 200
        assert process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue")) == {"batchItemFailures": []}

    table = aws.resource("CatalogTable")
    found = aws.client("dynamodb").batch_get_item(
        RequestItems={table: {"Keys": catalog_keys(shop, ["9"]), "ConsistentRead": True}}
    )
    listing = listings_from_items(found["Responses"][table])["9"]
    assert listing.title == "Gift card (renamed)"
    assert listing.gift_card
    assert not listing.recommendable
