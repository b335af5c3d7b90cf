"""The merchant's embedded page, in headless Chromium against the running local stack with the fake Shopify Admin
API: a shop installed by its first session token and backfilled, then shown recommendations, bought from them and
learned from (`make invoke FN=DailyLearningFunction`, `FN=HealthCheckFunction`). The page shows every section as the
API serves it (earned revenue and its lift, per-product performance with the admin's product links, settings, rules,
health, the backfill), with readable times and each count defined where it is shown; a setting and a rule are edited
through it (the PUT is sent, the saved value shown, a refused value's field named inline); the dates change the ROI
request. `RECLIFT_ADMIN_SCREENSHOT=docs/admin-page.png` keeps the page's screenshot (the documentation's sample)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from reclift.ranking import Arm, assign_arm
from reclift.settings import ShopSettings
from reclift_local.fake_admin import FakeAdminApi, FakeOrder, FakeProduct, FakeVariant
from tests.support.browser import chromium
from tests.support.recs import shown as issued
from tests.support.shopify import new_shop, order_payload, proxy_query, session_token
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.stack

SCREENSHOT_COPY = "RECLIFT_ADMIN_SCREENSHOT"
TITLES = {3001: "Linen shirt", 3002: "Wool scarf", 3003: "Canvas tote", 3004: "Leather belt", 3005: "Cotton socks"}
READABLE_TIME = re.compile(r"^\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d{2}:\d{2} UTC")
RAW_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
SHOWN = ["3001", "3002", "3003"]
# The merchant's rules the page starts from (each test leaves them so).
RULES = {"exclude": {"tags": ["gift card"]}, "pin": {"home": ["3001"]}, "never_blacklist": ["3003"]}


@dataclass(frozen=True)
class Seeded:
    shop: str
    roi: dict[str, Any]
    performance: dict[str, Any]
    health: dict[str, Any]
    install: dict[str, Any]


@pytest.fixture(scope="module")
def shopify() -> Iterator[FakeAdminApi]:
    now = datetime.now(UTC)
    products = [
        FakeProduct(
            number=number,
            title=title,
            handle=title.lower().replace(" ", "-"),
            status="ACTIVE",
            updated_at=now - timedelta(days=3),
            variants=[FakeVariant(price="20.00", inventory_quantity=10)],
        )
        for number, title in TITLES.items()
    ]
    orders = [
        FakeOrder(number=9000 + n, created_at=now - timedelta(days=2 + n), product_numbers=[3001, 3003])
        for n in range(3)
    ]
    with FakeAdminApi(new_shop(), "shpat_page", orders=orders, products=products, restore_rate=20000.0) as api:
        yield api


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, shopify: FakeAdminApi) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("admin-page-stack"), extra_env={"RECLIFT_ADMIN_API_URL": shopify.url}
    ) as running:
        yield running


def visitors(shop: str, arm: Arm, count: int) -> list[str]:
    found = (f"visitor-{n}" for n in range(100_000) if assign_arm(shop, f"visitor-{n}", 0.1) == arm)
    return [next(found) for _ in range(count)]


def impression(shop: str, visitor: str, products: list[int], arm: Arm) -> dict[str, Any]:
    listed = [str(p) for p in products]
    return {
        "type": "impression",
        "visitor_id": visitor,
        "placement": "home",
        "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(listed)],
    } | issued(shop, visitor, listed, arm=arm, placement="home")


def click(shop: str, visitor: str, product: int, arm: Arm) -> dict[str, Any]:
    event = {"type": "click", "visitor_id": visitor, "product_id": str(product), "position": 1}
    return event | issued(shop, visitor, [str(product)], arm=arm, placement="home")


def post_events(stack: RunningStack, shop: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 50):
        response = requests.post(
            f"{stack.url}/apps/proxy/events?{proxy_query(shop)}",
            json={"events": events[start : start + 50]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["ignored"] == 0, response.text


def admin_put(stack: RunningStack, shop: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.put(
        f"{stack.url}{path}", json=body, headers={"authorization": f"Bearer {session_token(shop)}"}, timeout=10
    )


def learned_from(stack: RunningStack, shop: str, shown: int) -> bool:
    invoke(stack, "DailyLearningFunction")
    rows = {row["product_id"]: row for row in admin_get(stack, shop, "/admin/performance")["products"]}
    return all(p in rows and rows[p]["impressions"] == shown for p in SHOWN) and rows["3001"]["clicks"] == 4


def invoke(stack: RunningStack, function: str) -> None:
    done = stack.command("invoke", function, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def seeded(stack: RunningStack, shopify: FakeAdminApi) -> Seeded:
    """The shop installed and backfilled; 120 learning visitors shown 3001–3003 (6 orders of 3001, one of them with
    two lines of it; 2 of 3003; none of 3002) and 4 holdout visitors (one order); the seed policy's nightly run and an
    hourly health check."""
    shop = shopify.shop
    wait_for(
        lambda: (status := admin_get(stack, shop, "/admin/install"))["installed"] and status["backfill"]["complete"],
        timeout=120,
        message="the install's backfill",
    )
    assert admin_put(stack, shop, "/admin/settings", {"policy": "seed"}).status_code == 200
    assert admin_put(stack, shop, "/admin/rules", RULES).status_code == 200
    learning, holdout = visitors(shop, "learning", 120), visitors(shop, "holdout", 4)
    events = [impression(shop, v, [3001, 3002, 3003], "learning") for v in learning]
    events += [impression(shop, v, [3001, 3002, 3003], "holdout") for v in holdout]
    events += [click(shop, v, 3001, "learning") for v in learning[:3]] + [click(shop, holdout[0], 3001, "holdout")]
    post_events(stack, shop, events)
    now = datetime.now(UTC)
    orders = [(learning[n], [3001]) for n in range(5)] + [(learning[5], [3001, 3001])]
    orders += [(learning[6], [3003]), (learning[7], [3003]), (holdout[0], [3001])]
    for n, (visitor, products) in enumerate(orders):
        lines = [{"product_id": p, "price": "20.00" if i == 0 else "5.00"} for i, p in enumerate(products)]
        body = order_payload(order_id=93_000 + n, created_at=now, visitor_id=visitor, lines=lines)
        deliver_webhook(stack, shop, json.dumps(body).encode())
    roi = wait_for(
        lambda: (report := admin_get(stack, shop, "/admin/roi"))["attributed_orders"] == len(orders) and report,
        timeout=90,
        message="the attributed orders",
    )
    # The counters come from the events table's stream, which may lag behind on a busy machine: the nightly run is
    # invoked again (a rerun of the day replaces its results) until it has learned from every impression and click.
    wait_for(
        lambda: learned_from(stack, shop, len(learning) + len(holdout)), timeout=300, interval=5, message="learning"
    )
    invoke(stack, "HealthCheckFunction")
    return Seeded(
        shop=shop,
        roi=roi,
        performance=admin_get(stack, shop, "/admin/performance"),
        health=admin_get(stack, shop, "/admin/health"),
        install=admin_get(stack, shop, "/admin/install"),
    )


@pytest.fixture
def page(stack: RunningStack, seeded: Seeded) -> Iterator[Page]:
    """The page as the Shopify admin opens it (no App Bridge here: the id_token Shopify adds to the URL), loaded."""
    url = f"{stack.url}/admin?shop={seeded.shop}&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdA&embedded=1"
    url += "&id_token=" + session_token(seeded.shop)  # a minute's lifetime, like Shopify's
    with chromium() as browser:
        opened = browser.new_page(viewport={"width": 1280, "height": 900})
        opened.route(re.compile(r"^https://cdn\.shopify\.com/.*"), lambda route: route.abort())  # no Shopify here
        opened.goto(url)
        opened.wait_for_selector('#status[data-state="ready"]', timeout=20_000)
        yield opened


def cell_texts(page: Page, selector: str, script: str) -> Any:
    return page.eval_on_selector_all(selector, script)


def test_given_a_seeded_shop_when_the_page_loads_then_every_section_shows_what_the_api_serves(
    page: Page, stack: RunningStack, seeded: Seeded, tmp_path: Path
) -> None:
    roi, performance = seeded.roi, seeded.performance
    # Earned: the ROI's figures, lines told apart from orders.
    assert page.inner_text("#attributed-revenue") == f"{roi['attributed_revenue']} {roi['currency']}"
    assert page.inner_text("#attributed-orders") == str(roi["attributed_orders"]) == "9"
    assert page.inner_text("#attributed-lines") == str(roi["attributed_lines"]) == "10"
    assert "lines" in (page.get_attribute("#earned .hint >> nth=1", "title") or "")  # an order may have several lines
    assert roi["lift"]["enough_data"] is False
    assert page.inner_text("#lift-rpv-ci") == page.inner_text("#lift-cvr-ci") == "not enough data yet"
    assert page.inner_text("#lift-badge") == "not enough data yet"

    # Products: one row per learned product, most shown first, titled from the backfilled catalog, linked to the
    # product in the Shopify admin; the seed policy's verdicts as badges, with the reason.
    rows = cell_texts(
        page,
        "#products tbody tr[data-product]",
        """rows => rows.map(r => ({id: r.dataset.product, title: r.querySelector('a').textContent,
             href: r.querySelector('a').getAttribute('href'), shown: r.querySelector('.impressions').textContent,
             clicked: r.querySelector('.clicks').textContent, bought: r.querySelector('.purchases').textContent,
             badges: [...r.querySelectorAll('.badge')].map(b => b.textContent),
             reason: r.querySelector('.status .reason').textContent,
             interval: r.querySelector('.cvr .interval')?.textContent ?? null}))""",
    )
    api_rows = performance["products"]
    assert [row["id"] for row in rows] == [row["product_id"] for row in api_rows]
    assert {"3001", "3002", "3003"} <= {row["id"] for row in rows}
    store = seeded.shop.removesuffix(".myshopify.com")
    by_id = {row["id"]: row for row in rows}
    for api_row in api_rows:
        row = by_id[api_row["product_id"]]
        assert row["href"] == f"https://admin.shopify.com/store/{store}/products/{api_row['product_id']}"
        assert (row["shown"], row["clicked"], row["bought"]) == tuple(
            str(api_row[key]) for key in ("impressions", "clicks", "purchases")
        )
        assert row["reason"] == api_row["reason"]
        # Each CVR with its 95 % interval: over 100 impressions (the shop's min_impressions) learning judges it.
        low, high = api_row["cvr_ci95"]
        assert low <= api_row["cvr"] <= high
        assert row["interval"] is not None
        assert row["interval"].count("%") == 2
        assert " – " in row["interval"]
    assert by_id["3001"]["title"] == "Linen shirt" == next(r["title"] for r in api_rows if r["product_id"] == "3001")
    # Seven orders of 3001 and eight lines: the order with two lines of it counts once per product, once per line in
    # the ROI.
    assert by_id["3001"]["bought"] == "7"
    assert next(p["purchases"] for p in roi["by_product"] if p["product_id"] == "3001") == 8
    assert by_id["3001"]["badges"] == ["Boosted ×1.3", "Pinned: home"]
    assert by_id["3002"]["badges"] == ["Blacklisted"]
    assert by_id["3003"]["badges"] == ["Recommended", "Never blacklisted"]
    bought_hint = page.get_attribute("#products thead th:nth-child(4) .hint", "title") or ""
    assert "orders" in bought_hint
    assert "lines" in bought_hint

    # Settings: every key the API serves has its input, holding its value.
    shown_settings: dict[str, str] = page.eval_on_selector_all(
        "#settings-form [name]",
        "inputs => Object.fromEntries(inputs.map(i => [i.name, i.type === 'checkbox' ? String(i.checked) : i.value]))",
    )
    served = admin_get(stack, seeded.shop, "/admin/settings")
    assert shown_settings.keys() == served.keys()
    for key, value in served.items():
        if isinstance(value, bool | str):
            assert shown_settings[key] == str(value).lower(), key
        else:
            assert float(shown_settings[key]) == value, key
    assert shown_settings["policy"] == "seed"
    # Rules: each list in its field, one value a line.
    assert page.input_value("#rule-exclude-tags") == "gift card"
    assert page.input_value("#rule-pin-home") == "3001"
    assert page.input_value("#rule-never_blacklist") == "3003"
    assert page.input_value("#rule-exclude-product_ids") == ""

    # Health and the installation: readable times, never a raw ISO timestamp.
    statuses = cell_texts(
        page, "#health tr[data-condition]", "rows => rows.map(r => [r.dataset.condition, r.cells[1].textContent])"
    )
    assert dict(statuses) == {n: c["status"].replace("_", " ") for n, c in seeded.health["conditions"].items()}
    assert READABLE_TIME.match(page.inner_text("#checked-at")), page.inner_text("#checked-at")
    since = cell_texts(page, "#health tr[data-condition] time", "times => times.map(t => t.textContent)")
    assert since
    assert all(READABLE_TIME.match(value) for value in since), since
    assert page.inner_text("#install-state").startswith("installed")
    products_stored = seeded.install["backfill"]["products"]["stored"]
    assert products_stored == seeded.install["backfill"]["products"]["expected"] == len(TITLES)
    assert seeded.install["backfill"]["orders"]["expected"] == 3  # the shop's past orders, as the API counted them
    assert page.inner_text("#backfill-products").startswith(f"done, {products_stored} stored · updated ")
    assert page.inner_text("#backfill-orders-badge") == "done"
    assert page.is_hidden("#install-banner")
    assert not RAW_ISO_TIME.search(page.inner_text("main"))

    screenshot = tmp_path / "admin-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000
    if copy_to := os.environ.get(SCREENSHOT_COPY):
        shutil.copyfile(screenshot, copy_to)


def sent(page: Page, method: str, path: str) -> list[Any]:
    """Record the page's requests of `method` to `path` (their JSON bodies) from now on."""
    bodies: list[Any] = []

    def record(request: Any) -> None:
        if request.method == method and urlsplit(request.url).path == path:
            bodies.append(json.loads(request.post_data) if request.post_data else urlsplit(request.url).query)

    page.on("request", record)
    return bodies


def test_given_the_page_when_a_setting_is_edited_then_it_is_saved_and_a_refused_value_names_its_field(
    page: Page, stack: RunningStack, seeded: Seeded
) -> None:
    puts = sent(page, "PUT", "/admin/settings")
    page.fill("#setting-holdout_share", "0.2")
    page.click("#settings-save")
    page.wait_for_selector('#settings-message[data-tone="success"]')
    assert puts == [{"holdout_share": 0.2}]  # only what changed
    assert admin_get(stack, seeded.shop, "/admin/settings")["holdout_share"] == 0.2
    assert page.input_value("#setting-holdout_share") == "0.2"
    assert page.inner_text("#holdout-share") == "20 %"
    assert "holdout_share = 0.2" in page.inner_text("#settings-message")

    page.fill("#setting-holdout_share", "0.9")
    page.click("#settings-save")
    page.wait_for_selector('#settings-message[data-tone="critical"]')
    assert puts[-1] == {"holdout_share": 0.9}
    error = page.inner_text('#settings-form .field-error[data-for="holdout_share"]')
    assert error.startswith("holdout_share: "), error
    assert "0.5" in error
    assert page.get_attribute("#setting-holdout_share", "aria-invalid") == "true"
    assert admin_get(stack, seeded.shop, "/admin/settings")["holdout_share"] == 0.2  # refused, nothing written

    admin_put(stack, seeded.shop, "/admin/settings", {"holdout_share": 0.1})


def test_given_a_shop_on_the_default_policy_when_another_setting_is_saved_then_the_policy_is_left_as_it_is(
    page: Page, stack: RunningStack, seeded: Seeded
) -> None:
    """Every policy the API accepts is a choice, the default's too: a select that lacked the shop's policy would show
    none and send an empty one with any other change, which the API refuses."""
    policies = list(get_args(ShopSettings.model_fields["policy"].annotation))
    admin_put(stack, seeded.shop, "/admin/settings", {"policy": ShopSettings().policy})
    page.goto(page.url.split("&id_token=")[0] + "&id_token=" + session_token(seeded.shop))  # a fresh token
    page.wait_for_selector('#status[data-state="ready"]', timeout=20_000)
    options = page.eval_on_selector_all("#setting-policy option", "options => options.map(o => o.value)")
    assert sorted(options) == sorted(policies)
    assert page.input_value("#setting-policy") == ShopSettings().policy == "context"
    puts = sent(page, "PUT", "/admin/settings")
    page.fill("#setting-holdout_share", "0.15")
    page.click("#settings-save")
    page.wait_for_selector('#settings-message[data-tone="success"]')
    assert puts == [{"holdout_share": 0.15}]
    assert admin_get(stack, seeded.shop, "/admin/settings")["policy"] == "context"

    admin_put(stack, seeded.shop, "/admin/settings", {"policy": "seed", "holdout_share": 0.1})


def test_given_the_page_when_the_dates_change_then_the_roi_is_asked_for_them(page: Page) -> None:
    asked = sent(page, "GET", "/admin/roi")
    today = datetime.now(UTC).date()
    page.click('#range-form [data-days="7"]')
    page.wait_for_selector('#status[data-state="ready"]')
    assert parse_qs(asked[-1]) == {"from": [(today - timedelta(days=6)).isoformat()], "to": [today.isoformat()]}
    assert page.inner_text("#period").endswith(f"{today.day} {today.strftime('%b')} {today.year} (UTC)")

    first = today - timedelta(days=40)
    page.fill("#range-from", first.isoformat())
    page.fill("#range-to", (today - timedelta(days=10)).isoformat())
    page.click("#range-apply")
    page.wait_for_function(f"() => document.querySelector('#range-from').value === '{first.isoformat()}'")
    page.wait_for_selector('#status[data-state="ready"]')
    assert parse_qs(asked[-1]) == {"from": [first.isoformat()], "to": [(today - timedelta(days=10)).isoformat()]}
    assert page.inner_text("#attributed-orders") == "0"  # the orders are today's, outside these dates
    assert f"from={first.isoformat()}" in page.url  # a reload keeps the dates

    page.fill("#range-from", today.isoformat())
    page.fill("#range-to", (today - timedelta(days=1)).isoformat())
    page.click("#range-apply")
    page.wait_for_selector("#range-error:not(:empty)")
    assert page.inner_text("#range-error").startswith("from: ")
    assert page.get_attribute("#range-from", "aria-invalid") == "true"


def test_given_the_page_when_a_rule_is_edited_then_it_is_saved_and_a_malformed_id_names_its_field(
    page: Page, stack: RunningStack, seeded: Seeded
) -> None:
    puts = sent(page, "PUT", "/admin/rules")
    page.fill("#rule-exclude-tags", "gift card\nClearance\n")
    page.fill("#rule-pin-home", "3003")
    page.click("#rules-save")
    page.wait_for_selector('#rules-message[data-tone="success"]')
    # Only the lists that changed, each whole.
    assert puts == [{"exclude": {"tags": ["gift card", "Clearance"]}, "pin": {"home": ["3003"]}}]
    saved = admin_get(stack, seeded.shop, "/admin/rules")
    assert saved["exclude"]["tags"] == ["gift card", "clearance"]
    assert saved["pin"]["home"] == ["3003"]
    assert saved["never_blacklist"] == ["3003"]
    assert page.input_value("#rule-exclude-tags") == "gift card\nclearance"  # the saved value, as the server keeps it
    assert "Pinned: home" in page.inner_text('#products tr[data-product="3003"] .status')

    page.fill("#rule-exclude-product_ids", "3002\nnot-a-product")
    page.click("#rules-save")
    page.wait_for_selector('#rules-message[data-tone="critical"]')
    assert puts[-1] == {"exclude": {"product_ids": ["3002", "not-a-product"]}}
    error = page.inner_text('#rules-form .field-error[data-for="exclude.product_ids"]')
    assert error.startswith("exclude.product_ids"), error
    assert page.get_attribute("#rule-exclude-product_ids", "aria-invalid") == "true"
    assert admin_get(stack, seeded.shop, "/admin/rules")["exclude"]["product_ids"] == []  # refused, nothing written

    restored = admin_put(stack, seeded.shop, "/admin/rules", RULES)
    assert restored.status_code == 200, restored.text


def test_given_app_bridge_when_the_page_loads_then_its_tokens_are_used_and_products_open_in_the_admin(
    stack: RunningStack, seeded: Seeded
) -> None:
    """Inside the Shopify admin App Bridge hands out the session tokens (`shopify.idToken()`, here a stand-in: App
    Bridge's script cannot load offline) and navigates `shopify://admin/…` links; the URL then carries no token."""
    token = session_token(seeded.shop)
    with chromium() as browser:
        page = browser.new_page()
        page.route(re.compile(r"^https://cdn\.shopify\.com/.*"), lambda route: route.abort())
        page.add_init_script(
            "window.tokensAsked = 0;"
            f"window.shopify = {{ idToken: async () => {{ window.tokensAsked += 1; return {json.dumps(token)}; }} }};"
        )
        page.goto(f"{stack.url}/admin?shop={seeded.shop}&embedded=1")
        page.wait_for_selector('#status[data-state="ready"]', timeout=20_000)
        page.wait_for_selector('#products-card[data-state="ready"]')
        links = page.eval_on_selector_all("#products a.product-link", "links => links.map(a => a.getAttribute('href'))")
        asked = page.evaluate("window.tokensAsked")
    assert links == [f"shopify://admin/products/{row['product_id']}" for row in seeded.performance["products"]]
    assert asked >= 6  # one per call: install, ROI, health, settings, rules, performance


def test_given_a_backfill_under_way_when_the_page_loads_then_it_shows_how_far_it_is(
    stack: RunningStack, seeded: Seeded
) -> None:
    """A backfill takes minutes at most, too short to catch on the stack: `/admin/install` answers, as it does while one
    runs, with the orders 120 of 444 fetched (the rest of the page is the stack's own)."""
    updated = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    running = seeded.install | {
        "backfill": {
            "products": seeded.install["backfill"]["products"],
            "orders": {
                "status": "running",
                "pages": 12,
                "fetched": 120,
                "stored": 118,
                "expected": 444,
                "complete": False,
                "updated_at": updated,
            },
            "complete": False,
        }
    }
    url = f"{stack.url}/admin?shop={seeded.shop}&id_token={session_token(seeded.shop)}"
    with chromium() as browser:
        page = browser.new_page()
        page.route(re.compile(r"^https://cdn\.shopify\.com/.*"), lambda route: route.abort())
        page.route(re.compile(r".*/admin/install$"), lambda route: route.fulfill(json=running))
        page.goto(url)
        page.wait_for_selector("#install-banner:not([hidden])", timeout=20_000)
        assert "products and past orders are being read" in page.inner_text("#install-banner")
        assert page.inner_text("#backfill-orders").startswith("120 of 444 fetched, 118 stored · updated ")
        assert page.inner_text("#backfill-orders").endswith("(2 minutes ago)")
        assert page.get_attribute("#backfill-orders-bar", "aria-valuenow") == "27"
        assert page.inner_text("#backfill-orders-badge") == "running"
        assert page.inner_text("#backfill-products-badge") == "done"
