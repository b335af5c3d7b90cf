"""shopify.app.toml: it parses, subscribes the topics reclift handles, and names only routes template.yaml has."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from reclift.logic.deliveries import TOPIC_HANDLERS

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

    assert subscribed == set(TOPIC_HANDLERS)
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
