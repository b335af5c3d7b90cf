"""Health alerts and the embedded admin page through the running local stack, called the way Shopify, the storefront
and the merchant's browser call it: signed traffic induces each alert condition, the hourly check (`make invoke
FN=HealthCheckFunction`) posts each alert once to a local Slack webhook and one recovery once it clears; the admin
page, in headless Chromium, shows the figures `/admin/roi` and `/admin/health` serve (the whole page, with settings,
rules and the backfill, is tested in test_admin_page.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from reclift.ranking import Arm, assign_arm
from tests.support.browser import chromium
from tests.support.recs import shown as issued
from tests.support.shopify import new_shop, order_payload, proxy_query, session_token
from tests.support.slack import FakeSlack, fake_slack
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for, wait_for_value

pytestmark = pytest.mark.stack

ALL_CONDITIONS = {"cvr_24h", "cvr_7d", "error_rate_24h", "no_recommendations_24h"}


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with fake_slack() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database: str, slack: FakeSlack) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("health-stack")
    with running_stack(state, database=database, extra_env={"SLACK_WEBHOOK_URL": slack.url}) as running:
        yield running


def post_events(stack: RunningStack, shop: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 50):
        response = requests.post(
            f"{stack.url}/apps/proxy/events?{proxy_query(shop)}",
            json={"events": events[start : start + 50]},
            timeout=10,
        )
        assert response.status_code == 200, response.text


def order(order_id: int, visitor: str, product: int, price: str = "10.00") -> bytes:
    lines = [{"product_id": product, "price": price}]
    return json.dumps(
        order_payload(order_id=order_id, created_at=datetime.now(UTC), visitor_id=visitor, lines=lines)
    ).encode()


def hourly_check(stack: RunningStack) -> None:
    done = stack.command("invoke", "HealthCheckFunction", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def about(slack: FakeSlack, shop: str, kind: str) -> list[str]:
    return [text for text in slack.texts() if shop in text and text.startswith(f"reclift {kind}")]


def shown(shop: str, visitor: str, products: list[int], arm: Arm = "learning") -> dict[str, Any]:
    """The impression of a home response (a new one each call) that listed `products` to `visitor`."""
    listed = [str(p) for p in products]
    return {
        "type": "impression",
        "visitor_id": visitor,
        "placement": "home",
        "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(listed)],
    } | issued(shop, visitor, listed, arm=arm, placement="home")


def clicked(shop: str, visitor: str, product: int, arm: Arm = "learning") -> dict[str, Any]:
    click = {"type": "click", "visitor_id": visitor, "product_id": str(product), "position": 1}
    return click | issued(shop, visitor, [str(product)], arm=arm, placement="home")


def test_given_each_condition_induced_through_the_stack_then_slack_gets_one_alert_each_then_one_recovery_each(
    stack: RunningStack, slack: FakeSlack
) -> None:
    shop = new_shop()
    # Given 200 products shown and none bought, no recommendation served, and an order the worker cannot process
    # (five failed attempts, then the DLQ).
    post_events(stack, shop, [shown(shop, "v-seen", [601, 602, 603, 604]) for _ in range(50)])
    dead_before = stack.queue_depth("WebhookDLQ")
    deliver_webhook(stack, shop, b'{"id": "not an order"}')
    wait_for(lambda: stack.queue_depth("WebhookDLQ") > dead_before, timeout=60, message="the poison order in the DLQ")

    hourly_check(stack)
    hourly_check(stack)

    assert len(about(slack, shop, "alert")) == 4
    assert all(condition in str(admin_get(stack, shop, "/admin/health")) for condition in ALL_CONDITIONS)
    state = admin_get(stack, shop, "/admin/health")["conditions"]
    assert {name for name, c in state.items() if c["status"] == "alerting"} == ALL_CONDITIONS

    # When a recommendation is served, a shown product is bought after a click (1 in 200 = 0.5 %) and 94 more orders
    # go through (5 failed attempts in 100 = 5 %).
    served = requests.get(
        f"{stack.url}/apps/proxy/recommendations?{proxy_query(shop, extra={'placement': 'home'})}", timeout=10
    )
    assert served.status_code == 200, served.text
    post_events(stack, shop, [clicked(shop, "v-seen", 601)])
    bodies = [order(60_000, "v-seen", 601)] + [order(60_001 + n, f"v-else-{n}", 990) for n in range(94)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda body: deliver_webhook(stack, shop, body), bodies))
    wait_for_value(lambda: admin_get(stack, shop, "/admin/roi")["orders"], 95, timeout=120, message="the 95 orders")

    hourly_check(stack)
    hourly_check(stack)

    # Then one recovery per condition, and still one alert each.
    assert len(about(slack, shop, "recovered")) == 4
    assert len(about(slack, shop, "alert")) == 4
    state = admin_get(stack, shop, "/admin/health")["conditions"]
    assert {c["status"] for c in state.values()} == {"ok"}


def visitor_in(shop: str, arm: str, skip: int = 0) -> str:
    found = (f"visitor-{n}" for n in range(10_000) if assign_arm(shop, f"visitor-{n}", 0.1) == arm)
    for _ in range(skip):
        next(found)
    return next(found)


def test_given_attributed_orders_in_both_arms_when_the_admin_page_loads_then_it_shows_what_the_api_reports(
    stack: RunningStack, tmp_path: Path
) -> None:
    shop = new_shop()
    learning = [visitor_in(shop, "learning", n) for n in range(3)]
    holdout = [visitor_in(shop, "holdout", n) for n in range(2)]
    events = [shown(shop, v, [611, 612]) for v in learning] + [shown(shop, v, [611, 612], "holdout") for v in holdout]
    events += [clicked(shop, learning[0], 611), clicked(shop, learning[1], 612)]
    events += [clicked(shop, holdout[0], 611, "holdout")]
    post_events(stack, shop, events)
    deliver_webhook(stack, shop, order(61_000, learning[0], 611, "40.00"))
    deliver_webhook(stack, shop, order(61_001, learning[1], 612, "25.50"))
    deliver_webhook(stack, shop, order(61_002, holdout[0], 611, "20.00"))
    roi = wait_for(  # the orders' queue drained, and the events counted from the events table's stream
        lambda: (
            (report := admin_get(stack, shop, "/admin/roi"))["attributed_orders"] == 3
            and report["lift"]["visitors"] == {"learning": 3, "holdout": 2}
            and report
        ),
        timeout=60,
        message="three attributed orders and five visitors counted",
    )
    hourly_check(stack)
    health = admin_get(stack, shop, "/admin/health")

    url = f"{stack.url}/admin?shop={shop}&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdA&embedded=1&id_token="
    url += session_token(shop)  # a minute's lifetime, like Shopify's: the page loads within it
    screenshot = tmp_path / "admin-page.png"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 900})
        page.route(re.compile(r"^https://cdn\.shopify\.com/.*"), lambda route: route.abort())  # no Shopify here
        page.goto(url)
        page.wait_for_selector('#status[data-state="ready"]', timeout=20_000)
        read = {
            key: page.inner_text(f"#{key}")
            for key in (
                "attributed-revenue",
                "attributed-orders",
                "click-through-revenue",
                "view-through-revenue",
                "visitors-learning",
                "visitors-holdout",
                "rpv-learning",
                "rpv-holdout",
                "lift-rpv",
                "lift-rpv-ci",
                "sessions-needed",
            )
        }
        bars = page.eval_on_selector_all(
            "#chart rect.bar", "bars => bars.map(b => [b.dataset.date, b.dataset.revenue])"
        )
        lift_points = page.eval_on_selector_all(
            "#chart circle.lift-point", "points => points.map(p => [p.dataset.date, Number(p.dataset.lift)])"
        )
        statuses = page.eval_on_selector_all(
            "#health tr[data-condition]", "rows => rows.map(r => [r.dataset.condition, r.cells[1].textContent])"
        )
        page.screenshot(path=str(screenshot), full_page=True)

    lift = roi["lift"]
    rpv = lift["revenue_per_visitor"]
    assert read["attributed-revenue"] == f"{roi['attributed_revenue']} {roi['currency']}" == "85.50 USD"
    assert read["attributed-orders"] == str(roi["attributed_orders"]) == "3"
    assert read["click-through-revenue"] == f"{roi['click_through_revenue']} {roi['currency']}"
    assert read["view-through-revenue"] == f"{roi['view_through_revenue']} {roi['currency']}"
    assert (read["visitors-learning"], read["visitors-holdout"]) == ("3", "2")
    assert (read["visitors-learning"], read["visitors-holdout"]) == tuple(str(v) for v in lift["visitors"].values())
    assert rpv["learning"] == pytest.approx(65.5 / 3)
    assert read["rpv-learning"] == f"{rpv['learning']:.2f} USD" == "21.83 USD"
    assert read["rpv-holdout"] == f"{rpv['holdout']:.2f} USD" == "10.00 USD"
    assert read["lift-rpv"] == f"+{rpv['relative'] * 100:.2f} %"
    # One converting visitor in the holdout: the page says so rather than show an interval.
    assert (lift["enough_data"], rpv["ci95"], read["lift-rpv-ci"]) == (False, None, "not enough data yet")
    assert read["sessions-needed"] == f"{lift['sessions_needed']:,}"  # with thousands separators
    assert bars == [[day["date"], day["attributed_revenue"]] for day in roi["daily"]]
    assert lift_points == [[day["date"], pytest.approx(day["lift"])] for day in roi["daily"] if day["lift"] is not None]
    assert len(lift_points) == 1  # today, both arms bought
    assert dict(statuses) == {name: c["status"].replace("_", " ") for name, c in health["conditions"].items()}
    assert screenshot.stat().st_size > 20_000


def test_given_no_token_anywhere_when_the_page_loads_then_it_says_so_and_the_api_refuses(stack: RunningStack) -> None:
    page_response = requests.get(f"{stack.url}/admin", timeout=10)
    assert page_response.status_code == 200
    assert page_response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors https://admin.shopify.com" in page_response.headers["content-security-policy"]
    assert requests.get(f"{stack.url}/admin/roi", timeout=10).status_code == 401

    with chromium() as browser:
        page = browser.new_page()
        page.route(re.compile(r"^https://cdn\.shopify\.com/.*"), lambda route: route.abort())
        page.goto(f"{stack.url}/admin?shop={new_shop()}")
        page.wait_for_selector('#status[data-state="error"]', timeout=20_000)
        assert "no session token" in page.inner_text("#status")
