"""`python -m reclift_local traffic` against the running local stack: signed storefront traffic until the ROI report
measures the lift it was generated with."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.support.shopify import order_payload, session_token
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for_value

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
# A shop of this module's own stack, named so the visitors' arms (a hash of shop and visitor id) and every draw are
# the same on each run: the figures below are reproducible, not a matter of luck.
SHOP = "traffic-lift.myshopify.com"
CATALOG = sorted((ROOT / "events" / "bodies").glob("products-create-*.json"))
BEST_SELLER = 632910392  # IPod Nano, 199.00


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("traffic")) as running:
        yield running


def traffic(stack: RunningStack, shop: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclift_local", "traffic", "--base-url", stack.url, "--shop", shop, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def sent_per_arm(stdout: str) -> dict[str, int]:
    line = next(line for line in stdout.splitlines() if line.startswith("traffic sent:"))
    return {arm: int(count) for arm, count in re.findall(r"(learning|holdout) (\d+) shown", line)}


def test_traffic_makes_the_report_measure_the_lift_it_was_generated_with(stack: RunningStack) -> None:
    """Given a shop with a catalog, one order and a learning run, and a holdout of half its visitors, when 200
    visitors convert at 0.25 in the holdout and 0.375 in the learning arm (lift 0.5), then the report counts exactly the
    visitors shown a recommendation in each arm, has enough data, and each relative lift's 95 % interval holds 0.5."""
    assert len(CATALOG) == 3
    for product in CATALOG:
        deliver_webhook(stack, SHOP, product.read_bytes(), topic="products/create")
    placed = datetime.now(UTC) - timedelta(minutes=5)
    order = order_payload(order_id=1001, created_at=placed, lines=[{"product_id": BEST_SELLER, "price": "199.00"}])
    deliver_webhook(stack, SHOP, json.dumps(order).encode())
    wait_for_value(lambda: admin_get(stack, SHOP, "/admin/roi")["orders"], 1, timeout=60, message="the order stored")
    learning = stack.command("invoke", "DailyLearningFunction", timeout=120)
    assert learning.returncode == 0, learning.stdout + learning.stderr
    settings = requests.put(
        f"{stack.url}/admin/settings",
        json={"holdout_share": 0.5},
        headers={"authorization": f"Bearer {session_token(SHOP)}"},
        timeout=10,
    )
    assert settings.status_code == 200, settings.text

    result = traffic(stack, SHOP, "--visitors", "200", "--seed", "11", "--conversion", "0.25", "--lift", "0.5")

    assert result.returncode == 0, result.stdout + result.stderr
    sent = sent_per_arm(result.stdout)
    assert sum(sent.values()) == 200, result.stdout
    assert min(sent.values()) > 70, result.stdout  # about half each
    assert "0 errors" in result.stdout
    report = admin_get(stack, SHOP, "/admin/roi")
    lift = report["lift"]
    assert lift["visitors"] == sent
    # Buyers who clicked carry the widget's `_rec_id` (click-through); the others are credited to what they saw.
    assert Decimal(report["click_through_revenue"]) > 0
    assert Decimal(report["view_through_revenue"]) > 0
    assert lift["enough_data"] is True
    for name in ("conversion_rate", "revenue_per_visitor"):
        block = lift[name]
        low, high = block["ci95"]
        assert math.isfinite(block["relative"]), name
        assert low < 0.5 < high, (name, block)
    assert "ROI lift: visitors" in result.stdout


def test_a_shop_with_nothing_to_recommend_says_what_to_do_first(stack: RunningStack) -> None:
    """Given a shop with no catalog and no orders, when traffic runs, then no visitor is shown anything, no event or
    order is sent, and it exits 1 saying what the shop needs first."""
    empty = "traffic-empty.myshopify.com"

    result = traffic(stack, empty, "--visitors", "5")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "5 shown nothing" in result.stdout
    assert "run the learning job" in result.stdout
    assert admin_get(stack, empty, "/admin/roi")["lift"]["visitors"] == {"learning": 0, "holdout": 0}
