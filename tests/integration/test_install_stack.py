"""A shop installs reclift end to end, on the running local stack with the fake Shopify Admin API, with nothing done
by hand in between: its first session token (the admin page's first call) → the token exchange → the offline token
in SSM → the backfill queued and worked → similarity computed at the backfill's end → the storefront's
recommendations built from the backfilled orders. Then `app/uninstalled` stops the storefront and deletes the token,
and a reinstall resumes. The test prints its wall time and the Admin API requests the installation spent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from reclift.offline_grants import EXPIRING, parse_grant
from reclift_local.fake_admin import FakeAdminApi, FakeOrder, FakeProduct, FakeVariant
from tests.support.shopify import fixture, new_shop, proxy_query
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for

pytestmark = pytest.mark.stack

PREFIX = "/reclift/admin-tokens/"
# Co-purchases the similarity must find: 2001 is bought with 2002 most, then 2003, then 2004.
BASKETS = [[2001, 2002]] * 5 + [[2001, 2003]] * 3 + [[2001, 2004]] * 2 + [[2005, 2006]] * 2


def shop_with_history(shop: str) -> FakeAdminApi:
    now = datetime.now(UTC)
    products = [
        FakeProduct(
            number=number,
            title=f"Product {number}",
            handle=f"product-{number}",
            status="ACTIVE",
            updated_at=now - timedelta(days=3),
            variants=[FakeVariant(price="20.00", inventory_quantity=10)],
        )
        for number in range(2001, 2007)
    ]
    orders = [
        FakeOrder(number=8000 + n, created_at=now - timedelta(days=1 + n), product_numbers=list(basket))
        for n, basket in enumerate(BASKETS)
    ]
    return FakeAdminApi(shop, "shpat_installed", orders=orders, products=products, restore_rate=20000.0)


@pytest.fixture(scope="module")
def shopify() -> Iterator[FakeAdminApi]:
    with shop_with_history(new_shop()) as api:
        yield api


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, shopify: FakeAdminApi) -> Iterator[RunningStack]:
    """The stack's functions reach the fake instead of Shopify, as `RECLIFT_ADMIN_API_URL=… make run` does."""
    with running_stack(
        tmp_path_factory.mktemp("install-stack"), extra_env={"RECLIFT_ADMIN_API_URL": shopify.url}
    ) as running:
        yield running


def recommended(stack: RunningStack, shop: str, product_id: str) -> requests.Response:
    query = proxy_query(shop, extra={"product_id": product_id, "limit": "3"})
    return requests.get(f"{stack.url}/apps/proxy/recommendations?{query}", timeout=10)


def stored_token(stack: RunningStack, shop: str) -> str | None:
    """The access token of the shop's stored grant (an expiring one, with its refresh token)."""
    ssm = stack.client("ssm")
    try:
        value: str = ssm.get_parameter(Name=f"{PREFIX}{shop}", WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    grant = parse_grant(value)
    assert grant.kind == EXPIRING
    return grant.access_token


def backfilled(stack: RunningStack, shop: str) -> dict[str, Any] | None:
    status = admin_get(stack, shop, "/admin/install")
    return status if status["installed"] and status["backfill"]["complete"] else None


def test_given_a_new_shop_when_its_session_token_arrives_then_it_installs_backfills_and_serves_on_its_own(
    stack: RunningStack, shopify: FakeAdminApi, tmp_path: Path
) -> None:
    shop = shopify.shop
    started = time.monotonic()

    first = admin_get(stack, shop, "/admin/install")  # the admin page's first call, with its session token
    assert (first["installed"], first["state"]) == (True, "installed")
    done = wait_for(lambda: backfilled(stack, shop), timeout=120, message="the install's backfill")
    # The backfill ends with the shop's similarity, so the storefront serves the backfilled co-purchases at once.
    served = recommended(stack, shop, "2001")
    installed_after = time.monotonic() - started
    install_requests = len(shopify.requests)

    assert served.status_code == 200, served.text
    products = served.json()["products"]
    assert [p["product_id"] for p in products] == ["2002", "2003", "2004"]
    assert products[0]["title"] == "Product 2002"  # rendered from the backfilled catalog
    assert done["backfill"]["products"]["stored"] == 6
    assert done["backfill"]["orders"]["stored"] == len(BASKETS)
    first_token = stored_token(stack, shop)
    assert shopify.accepts(first_token)
    assert [record.status for record in shopify.exchanges] == [200]

    # app/uninstalled, as Shopify delivers it: the storefront stops serving the shop, and its token is deleted.
    uninstalled_at = time.monotonic()
    body = json.dumps(fixture("shopify/app_uninstalled_sample.json")).encode()
    deliver_webhook(stack, shop, body, topic="app/uninstalled")
    wait_for(lambda: stored_token(stack, shop) is None, timeout=30, message="the token deleted")
    refused = recommended(stack, shop, "2001")
    assert (refused.status_code, refused.json()["field"]) == (403, "shop")
    events = {"events": [{"type": "view", "visitor_id": "v-gone", "product_id": "2001"}]}
    wait_for(
        lambda: (
            requests.post(f"{stack.url}/apps/proxy/events?{proxy_query(shop)}", json=events, timeout=10).status_code
            == 403
        ),
        timeout=30,
        message="events refused (the storefront remembers a shop's state a few seconds)",
    )
    uninstall_seconds = time.monotonic() - uninstalled_at

    # A reinstall: Shopify issued a new offline token; the next session token installs the shop again.
    shopify.uninstall()
    reinstalled_at = time.monotonic()
    again = admin_get(stack, shop, "/admin/install")
    assert (again["installed"], again["state"]) == (True, "installed")
    wait_for(lambda: backfilled(stack, shop), timeout=120, message="the reinstall's backfill")
    assert len(shopify.requests) == 2 * install_requests  # the reinstall backfilled again: what it missed meanwhile
    token = stored_token(stack, shop)
    assert shopify.accepts(token)
    assert token != first_token
    resumed = recommended(stack, shop, "2001")
    assert resumed.status_code == 200, resumed.text
    assert [p["product_id"] for p in resumed.json()["products"]] == ["2002", "2003", "2004"]
    reinstall_seconds = time.monotonic() - reinstalled_at

    figures = {
        "install_to_recommendations_seconds": round(installed_after, 2),
        "install_admin_api_requests": install_requests,
        "install_token_exchanges": 1,
        "uninstall_to_refused_seconds": round(uninstall_seconds, 2),
        "reinstall_to_recommendations_seconds": round(reinstall_seconds, 2),
        "total_admin_api_requests": len(shopify.requests),
        "total_wall_seconds": round(time.monotonic() - started, 2),
    }
    print("install figures:", json.dumps(figures))
    (tmp_path / "install_figures.json").write_text(json.dumps(figures))
    assert len(shopify.exchanges) == 2
