"""shopify.app.toml: it parses, subscribes the topics reclift handles, and names only routes template.yaml has."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from reclift import shopify_admin
from reclift.logic import backfill
from reclift.logic.deliveries import HANDLED_TOPICS
from reclift.logic.install import REQUIRED_SCOPES
from reclift_local.fake_admin import ROOT_FIELD

ROOT = Path(__file__).resolve().parents[2]
COMPLIANCE = {"customers/data_request", "customers/redact", "shop/redact"}


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    return tomllib.loads((ROOT / "shopify.app.toml").read_text())


def route_matches(route: str, path: str) -> bool:
    """Whether an HTTP API route (with {name} and greedy {name+} parameters) serves `path`."""
    pattern = re.sub(r"\{[^}/]+\+\}", ".+", route)
    pattern = re.sub(r"\{[^}/]+\}", "[^/]+", pattern)
    return re.fullmatch(pattern, path) is not None


def routes(cfn_template: dict[str, Any], method: str) -> list[str]:
    """The HTTP API's paths for `method`, from the OpenAPI body the SAM transform generates."""
    found = []
    for resource in cfn_template["Resources"].values():
        if resource["Type"] != "AWS::ApiGatewayV2::Api":
            continue
        for path, operations in (resource["Properties"].get("Body", {}).get("paths") or {}).items():
            if method.lower() in operations:
                found.append(path)
    return found


def test_every_topic_reclift_handles_is_subscribed_and_nothing_else(app: dict[str, Any]) -> None:
    subscribed = {
        topic
        for subscription in app["webhooks"]["subscriptions"]
        for topic in subscription.get("topics", []) + subscription.get("compliance_topics", [])
    }
    compliance = {t for s in app["webhooks"]["subscriptions"] for t in s.get("compliance_topics", [])}

    assert subscribed == HANDLED_TOPICS
    assert compliance == COMPLIANCE  # Shopify requires these three


def test_every_subscription_goes_to_a_declared_webhook_route(app: dict[str, Any], cfn_template: dict[str, Any]) -> None:
    posts = routes(cfn_template, "POST")
    assert "/webhooks/{topic+}" in posts
    for subscription in app["webhooks"]["subscriptions"]:
        [topic] = subscription.get("topics", []) + subscription.get("compliance_topics", [])
        assert subscription["uri"] == f"/webhooks/{topic}"
        assert any(route_matches(route, subscription["uri"]) for route in posts), subscription["uri"]


def test_the_app_proxy_forwards_to_the_declared_storefront_routes(
    app: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    proxy = app["app_proxy"]
    base = "/" + proxy["url"].split("://", 1)[1].split("/", 1)[1]

    assert (proxy["prefix"], proxy["subpath"]) == ("apps", "reclift")
    assert base == "/apps/proxy"
    assert f"{base}/recommendations" in routes(cfn_template, "GET")
    assert f"{base}/events" in routes(cfn_template, "POST")


def test_the_scopes_are_the_ones_reclift_reads(app: dict[str, Any]) -> None:
    assert set(app["access_scopes"]["scopes"].split(",")) == {"read_orders", "read_products"}


# ------------------------------------------------------------------------------ every URL is a route of the template
API_HOST = "API_ID.execute-api.REGION.amazonaws.com"


def path_of(url: str) -> str:
    """The path of one of the app's URLs (all on the deployed HTTP API's host); "/" for the bare host."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    assert (scheme, host) == ("https", API_HOST), f"{url} is not on the app's API"
    return "/" + path


def test_the_app_home_and_every_redirect_url_are_pages_the_template_serves(
    app: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    """Shopify opens application_url in the admin, and sends a browser to a redirect URL: each is a GET route."""
    gets = routes(cfn_template, "GET")
    pages = [app["application_url"], *app["auth"]["redirect_urls"]]
    assert len(pages) >= 2  # Shopify requires at least one redirect URL
    for url in pages:
        assert any(route_matches(route, path_of(url)) for route in gets), url


def test_every_url_of_the_configuration_is_on_the_api_and_reaches_a_route(
    app: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    """Every URL in the file — found wherever it is, so a new one cannot be missed — is the API's, and reaches a
    route: pages by GET, webhook subscriptions (relative to application_url) by POST, the app proxy's base by the
    routes under it."""

    def urls(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value] if value.startswith(("https://", "http://")) else []
        if isinstance(value, dict):
            return [url for item in value.values() for url in urls(item)]
        if isinstance(value, list):
            return [url for item in value for url in urls(item)]
        return []

    every = {path_of(url) for url in urls(app)}
    every |= {subscription["uri"] for subscription in app["webhooks"]["subscriptions"]}
    declared = [route for method in ("GET", "POST", "PUT") for route in routes(cfn_template, method)]
    for path in sorted(every):
        under = [route for route in declared if route.startswith(path.rstrip("/") + "/")]
        assert any(route_matches(route, path) for route in declared) or under, f"{path} reaches no route"


def test_the_install_is_shopifys_managed_installation_of_an_embedded_app(app: dict[str, Any]) -> None:
    assert app["embedded"] is True
    assert app["access_scopes"]["use_legacy_install_flow"] is False


def test_the_scopes_are_what_the_code_checks_an_installation_grants(app: dict[str, Any]) -> None:
    assert set(app["access_scopes"]["scopes"].split(",")) == REQUIRED_SCOPES


# What each Admin API root field the code queries needs (a bulk operation runs one of these queries; `node` reads
# the bulk operation itself).
ROOT_FIELD_SCOPES = {
    "orders": "read_orders",
    "order": "read_orders",
    "ordersCount": "read_orders",
    "products": "read_products",
    "product": "read_products",
    "productsCount": "read_products",
    "bulkOperationRunQuery": None,
    "shop": None,  # the shop's own id: every app may read it
    "node": None,
}


def test_every_admin_api_query_of_the_backfill_is_covered_by_the_scopes(app: dict[str, Any]) -> None:
    queries = [
        value
        for module in (backfill, shopify_admin)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and re.search(r"^\s*(query|mutation|\{)", value)
    ]
    queries += list(backfill.COUNT_QUERIES.values()) + list(backfill.BULK_QUERIES.values())
    roots = {match.group(1) for query in queries if (match := ROOT_FIELD.match(query))}
    assert roots == set(ROOT_FIELD_SCOPES), "a new root field: say which scope it needs"
    needed = {scope for root in roots if (scope := ROOT_FIELD_SCOPES[root])}
    assert needed <= set(app["access_scopes"]["scopes"].split(","))
