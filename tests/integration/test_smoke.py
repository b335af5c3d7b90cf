"""`make smoke` (python -m reclift_local smoke) against the running local stack, as it runs against a deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclift_local.sign import DEV_API_KEY, DEV_API_SECRET
from reclift_local.smoke import ATTRIBUTION, RECOMMENDATIONS, REPORT_BEFORE, STEPS
from tests.support.shopify import new_shop, order_payload
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for_value

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("smoke")) as running:
        yield running


def smoke(
    stack: RunningStack, shop: str, *args: str, secret: str = DEV_API_SECRET, api_key: str = DEV_API_KEY
) -> subprocess.CompletedProcess[str]:
    """`make smoke BASE_URL=<the stack> SHOP=<shop>`: the secret and the key in the environment only."""
    env = {**os.environ, "SHOPIFY_API_SECRET": secret, "SHOPIFY_API_KEY": api_key}
    return subprocess.run(
        [sys.executable, "-m", "reclift_local", "smoke", "--base-url", stack.url, "--shop", shop, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def passed_steps(stdout: str) -> list[str]:
    return [line[2:].split(":", 1)[0] for line in stdout.splitlines() if line.startswith("✓ ")]


def test_smoke_passes_every_step_on_a_shop_without_data(stack: RunningStack) -> None:
    """Given a shop with nothing to recommend yet, when smoke runs twice, then both runs pass every step (a fresh
    visitor and order each time) and the cancelled synthetic orders leave no attributed revenue behind."""
    shop = new_shop()

    for _ in range(2):
        result = smoke(stack, shop, "--timeout", "60", "--interval", "0.2")

        assert result.returncode == 0, result.stdout + result.stderr
        assert passed_steps(result.stdout) == list(STEPS)
        assert "smoke passed" in result.stdout
        assert "no products yet" in result.stdout
    report = admin_get(stack, shop, "/admin/roi")
    assert report["attributed_revenue"] == "0.00"
    assert report["attributed_orders"] == 0
    assert report["orders"] == 2


def test_smoke_tracks_and_buys_a_product_the_shop_recommends(stack: RunningStack) -> None:
    """Given a shop whose co-purchases make product 222 similar to 111, when smoke runs for 111's product page, then
    it clicks and orders 222 from the response, sees it attributed, and 222 is no longer recommended to the buyer."""
    shop = new_shop()
    placed = datetime.now(UTC) - timedelta(minutes=5)
    for order_id in (7001, 7002):
        lines = [{"product_id": 111, "price": "10.00"}, {"product_id": 222, "price": "20.00"}]
        body = json.dumps(order_payload(order_id=order_id, created_at=placed, lines=lines)).encode()
        deliver_webhook(stack, shop, body)
    wait_for_value(lambda: admin_get(stack, shop, "/admin/roi")["orders"], 2, timeout=60, message="both orders stored")
    similarity = stack.command("invoke", "SimilarityFunction", timeout=120)
    assert similarity.returncode == 0, similarity.stdout + similarity.stderr

    result = smoke(stack, shop, "--product-id", "111", "--keep-order", "--price", "3.50", "--interval", "0.2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_steps(result.stdout) == list(STEPS)
    assert "1 products: ['222']" in result.stdout
    assert "a click on 222" in result.stdout
    assert "the purchased 222 not among them" in result.stdout
    report = admin_get(stack, shop, "/admin/roi")
    assert report["attributed_revenue"] == "3.50"
    assert [(item["product_id"], item["revenue"]) for item in report["by_product"]] == [("222", "3.50")]


def test_a_wrong_secret_fails_at_the_first_signed_request(stack: RunningStack) -> None:
    """Given the wrong app secret, when smoke runs, then it stops at the recommendations step with the 401 it saw,
    exits 1, and never prints the secret."""
    wrong = "not-the-app-secret-0123456789"

    result = smoke(stack, new_shop(), secret=wrong)

    assert result.returncode == 1
    assert passed_steps(result.stdout) == []
    assert f"✗ {RECOMMENDATIONS}: GET /apps/proxy/recommendations: HTTP 401" in result.stdout
    assert f"smoke failed at step '{RECOMMENDATIONS}'" in result.stdout
    assert wrong not in result.stdout + result.stderr


def test_a_wrong_api_key_fails_at_the_first_admin_request(stack: RunningStack) -> None:
    """Given the right secret but another app's API key, when smoke runs, then the storefront step passes and the
    session token is refused at the report step, which the failure names."""
    result = smoke(stack, new_shop(), api_key="another-apps-key")

    assert result.returncode == 1
    assert passed_steps(result.stdout) == [RECOMMENDATIONS]
    assert f"✗ {REPORT_BEFORE}: GET /admin/roi: HTTP 401" in result.stdout
    assert f"smoke failed at step '{REPORT_BEFORE}'" in result.stdout
    assert ATTRIBUTION not in result.stdout


def test_smoke_without_the_secret_in_the_environment_is_a_usage_error(stack: RunningStack) -> None:
    result = smoke(stack, new_shop(), secret="")

    assert result.returncode == 2
    assert "SHOPIFY_API_SECRET" in result.stderr
    assert result.stdout == ""
