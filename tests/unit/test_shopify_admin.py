"""The Admin API client's pure parts: cost extensions, the throttle wait, pages of a connection, GraphQL orders."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reclift.logic.backfill import bulk_groups, parse_what
from reclift.orders import OrderPayloadError, parse_graphql_order
from reclift.shopify_admin import (
    ADMIN_API_VERSION,
    AdminApiError,
    QueryCost,
    ThrottleStatus,
    connection_page,
    parse_cost,
    throttle_wait_seconds,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "shopify"


def test_the_cost_extension_is_read_from_an_answer() -> None:
    answer = json.loads((FIXTURES / "products_graphql_page.json").read_text())
    assert parse_cost(answer["extensions"]) == QueryCost(
        requested=842,
        actual=9,
        throttle=ThrottleStatus(maximum_available=2000, currently_available=1991, restore_rate=100),
    )
    assert parse_cost({}) is None
    assert parse_cost({"cost": {"requestedQueryCost": 5}}) == QueryCost(requested=5, actual=None, throttle=None)


@pytest.mark.parametrize(
    ("requested", "available", "maximum", "rate", "expected"),
    [
        (752, 666, 1000, 50, 1.72),  # Shopify's documented throttled answer: wait for the 86 missing points
        (100, 500, 1000, 50, 0.0),  # enough in the bucket
        (5000, 0, 1000, 100, 10.0),  # more than a bucket: wait for a full one
        (30, 0, 2000, 100, 0.3),
    ],
)
def test_a_throttled_query_waits_for_its_missing_points_at_the_restore_rate(
    requested: float, available: float, maximum: float, rate: float, expected: float
) -> None:
    cost = QueryCost(requested=requested, actual=None, throttle=ThrottleStatus(maximum, available, rate))
    assert throttle_wait_seconds(cost) == pytest.approx(expected)


def test_without_cost_data_the_wait_is_the_fallback() -> None:
    assert throttle_wait_seconds(None, fallback=2.5) == 2.5
    assert throttle_wait_seconds(QueryCost(10, None, ThrottleStatus(1000, 0, 0)), fallback=1.0) == 1.0


def test_a_connection_page_reads_nodes_or_edges_and_its_cursor() -> None:
    answer = json.loads((FIXTURES / "orders_graphql_page.json").read_text())
    page = connection_page(answer["data"], ("orders",))
    assert (len(page.nodes), page.has_next_page, page.end_cursor) == (
        1,
        False,
        "eyJsYXN0X2lkIjo0NTAzODkyNjMwMzAyMzI4fQ==",
    )
    edges = connection_page(
        {"a": {"edges": [{"node": {"id": 1}}], "pageInfo": {"hasNextPage": True, "endCursor": "c"}}}, ("a",)
    )
    assert (edges.nodes, edges.has_next_page, edges.end_cursor) == ([{"id": 1}], True, "c")
    with pytest.raises(AdminApiError, match="orders"):
        connection_page({"orders": None}, ("orders",))


def test_a_graphql_order_is_a_basket_of_its_distinct_products() -> None:
    answer = json.loads((FIXTURES / "orders_graphql_page.json").read_text())
    [node] = answer["data"]["orders"]["nodes"]

    basket = parse_graphql_order(node, [{"product": {"id": "gid://shopify/Product/5"}}, {"product": None}])

    assert basket.order_id == "450789469"
    assert basket.created_at == datetime(2026, 11, 2, 10, 3, 52, tzinfo=UTC)
    assert basket.product_ids == ("632910392", "921728736", "5")  # custom lines left out, repeats once
    assert (basket.currency, basket.test) == ("USD", False)
    assert basket.landing == "ipod-nano"  # its last visit before the order landed on the product's page
    # Shopify answers null while it has not attributed the order's visits yet
    assert parse_graphql_order(node | {"customerJourneySummary": None}).landing is None
    assert parse_graphql_order(node | {"customerJourneySummary": {"lastVisit": {"landingPage": "/"}}}).landing is None


@pytest.mark.parametrize(
    "node",
    [None, {}, {"id": "gid://shopify/Product/1", "createdAt": "2026-11-02T10:03:52Z"}, {"id": "gid://shopify/Order/1"}],
)
def test_a_graphql_order_without_an_id_or_time_is_refused(node: object) -> None:
    with pytest.raises(OrderPayloadError):
        parse_graphql_order(node)


def test_what_to_backfill_is_orders_products_or_all_with_products_first() -> None:
    assert parse_what("all") == ("products", "orders")
    assert parse_what(" Orders ") == ("orders",)
    with pytest.raises(ValueError, match="one of"):
        parse_what("customers")


def test_the_admin_api_version_is_the_one_the_webhooks_are_subscribed_with() -> None:
    app = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    assert app["webhooks"]["api_version"] == ADMIN_API_VERSION


def test_a_bulk_result_groups_each_parent_with_the_children_that_follow_it() -> None:
    lines: list[dict[str, Any]] = [
        {"id": "gid://shopify/Order/1"},
        {"product": {"id": "gid://shopify/Product/7"}, "__parentId": "gid://shopify/Order/1"},
        {"product": None, "__parentId": "gid://shopify/Order/1"},
        {"id": "gid://shopify/Order/2"},
        {"product": {"id": "gid://shopify/Product/8"}, "__parentId": "gid://shopify/Order/9"},  # an orphan: ignored
        {"id": "gid://shopify/Order/3"},
        {"product": {"id": "gid://shopify/Product/9"}, "__parentId": "gid://shopify/Order/3"},
    ]

    groups = list(bulk_groups(lines))

    assert [(parent["id"][-1], len(children), read) for parent, children, read in groups] == [
        ("1", 2, 3),
        ("2", 0, 5),
        ("3", 1, 7),
    ]
    assert list(bulk_groups([])) == []
