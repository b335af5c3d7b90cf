"""The storefront widget in headless Chromium, on a product page of a local storefront that plays Shopify's part,
against the running local stack: what it renders, what it records and when, what it puts in the cart, and that a
signed order carrying that cart is attributed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.browser import chromium
from tests.support.recs import shown as issued
from tests.support.shopify import new_shop, order_payload, proxy_query
from tests.support.stack import RunningStack, admin_get, deliver_webhook, running_stack, wait_for, wait_for_value
from tests.support.storefront import Storefront, StoreProduct, storefront
from tests.support.truth import counter_days

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Route

pytestmark = pytest.mark.stack

# The product whose page the shopper is on, and four others that sell (units sold, price): the best sellers.
CURRENT = 2000
SELLERS = {2001: (4, "19.90"), 2002: (3, "12.50"), 2003: (2, "7.25"), 2004: (1, "30.00")}


def catalog() -> list[StoreProduct]:
    products = [
        StoreProduct(
            product_id=product_id,
            handle=f"product-{product_id}",
            title=f"Product {product_id}",
            price=Decimal(price),
            # The first variant is sold out: the widget must add the first *available* one.
            variants=[
                {"id": product_id * 10 + 1, "available": False, "price": int(Decimal(price) * 100)},
                {"id": product_id * 10 + 2, "available": True, "price": int(Decimal(price) * 100)},
            ],
        )
        for product_id, (_, price) in SELLERS.items()
    ]
    products.append(
        StoreProduct(
            product_id=CURRENT,
            handle=f"product-{CURRENT}",
            title="The product on the page",
            price=Decimal("25.00"),
            variants=[{"id": CURRENT * 10 + 1, "available": True, "price": 2500}],
        )
    )
    return products


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("stack"), database=database) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shop(stack: RunningStack) -> str:
    """A shop whose earlier widget traffic showed SELLERS, whose visitors then bought them (attributed purchases),
    learned by the nightly job: its best sellers are what it recommends."""
    shop = new_shop()
    order_id = 50_000
    for product_id, (units, price) in SELLERS.items():
        for _ in range(units):
            order_id += 1
            visitor = f"earlier-{order_id}"
            shown = {
                "type": "impression",
                "visitor_id": visitor,
                "placement": "home",
                "products": [{"product_id": str(product_id), "position": 1}],
            } | issued(shop, visitor, [str(product_id)], placement="home")
            tracked = requests.post(
                f"{stack.url}/apps/proxy/events?{proxy_query(shop)}", json={"events": [shown]}, timeout=10
            )
            assert tracked.status_code == 200, tracked.text
            order = order_payload(
                order_id=order_id,
                created_at=datetime.now(UTC),
                visitor_id=visitor,
                lines=[{"product_id": product_id, "price": price}],
            )
            deliver_webhook(stack, shop, json.dumps(order).encode())
    placed = order_id - 50_000
    wait_for(
        lambda: admin_get(stack, shop, "/admin/roi")["attributed_orders"] == placed,
        timeout=60,
        message="the orders' attribution",
    )
    learned = stack.command("invoke", "DailyLearningFunction", timeout=120)
    assert learned.returncode == 0, learned.stderr
    return shop


def counters(stack: RunningStack, shop: str, product_id: int | str) -> dict[str, int]:
    """The product's storefront counters over `counter_days()` (a test may run across midnight UTC): its own counter,
    and its impressions and clicks in product pages' widgets, which the page items (`P#{page}`, numbers `i{product}`
    and `c{product}` per candidate) hold instead."""
    totals: dict[str, int] = {}
    dynamodb, table = stack.client("dynamodb"), stack.resource("CountersTable")
    for day in counter_days():
        key = f"{shop}#{day.isoformat()}"
        item = dynamodb.get_item(
            TableName=table, Key={"pk": {"S": key}, "sk": {"S": str(product_id)}}, ConsistentRead=True
        ).get("Item", {})
        for name in ("impressions", "clicks", "add_to_carts"):
            if name in item:
                totals[name] = totals.get(name, 0) + int(item[name]["N"])
        pages = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :pages)",
            ExpressionAttributeValues={":pk": {"S": key}, ":pages": {"S": "P#"}},
            ConsistentRead=True,
        )["Items"]
        for page_item in pages:
            for name, kind in (("impressions", "i"), ("clicks", "c")):
                if f"{kind}{product_id}" in page_item:
                    totals[name] = totals.get(name, 0) + int(page_item[f"{kind}{product_id}"]["N"])
    return totals


def page_hides(page: Page) -> None:
    """What the browser does when the shopper switches tab or leaves: the widget sends what it has batched."""
    page.evaluate("window.dispatchEvent(new Event('pagehide'))")


def batches_once_hidden(page: Page, store: Storefront) -> int:
    """The batches of events posted once the page hides (an impression is queued when its observer fires)."""
    page_hides(page)
    return len(store.event_posts())


def impressions_once_hidden(page: Page, store: Storefront) -> int:
    """The impressions posted once the page hides."""
    page_hides(page)
    return [event["type"] for post in store.event_posts() for event in post.body["events"]].count("impression")


def events_sent(store: Storefront, after: int) -> list[dict[str, Any]]:
    """The events of every batch posted after the first `after` ones, once reclift has stored them (2xx)."""
    posts = wait_for(lambda: len(store.event_posts()) > after and store.event_posts(), message="a batch of events")
    assert all(post.status == 200 for post in posts), [post.response for post in posts]
    return [event for post in posts[after:] for event in post.body["events"]]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        yield context.new_page()
    finally:
        context.close()


def visitor_of(page: Page) -> str:
    visitor: str = page.evaluate("localStorage.getItem('_reclift_vid')")
    assert visitor
    return visitor


def test_given_best_sellers_when_the_product_page_loads_then_the_cards_render_and_impressions_wait_for_the_viewport(
    stack: RunningStack, shop: str, page: Page
) -> None:
    """The visitor has no cart: the impression is sent, and no cart is created for it (no write to the cart)."""
    baseline = {p: counters(stack, shop, p) for p in SELLERS}
    with storefront(shop, stack.url, catalog(), block_settings={"title": "Bought together"}) as store:
        page.goto(store.product_page(f"product-{CURRENT}"))
        cards = page.locator(".reclift__item")
        [served] = wait_for(store.recommendations, message="the recommendation request")
        expected = served.response["products"]
        cards.nth(len(expected) - 1).wait_for(state="attached")
        visitor = visitor_of(page)

        # Rendered: the response's products in its order, with what the response knows of them (here the price).
        assert served.status == 200
        assert served.query == {"placement": "product", "limit": "4", "visitor_id": visitor, "product_id": str(CURRENT)}
        assert sorted(p["product_id"] for p in expected) == sorted(str(p) for p in SELLERS)
        assert cards.evaluate_all("cs => cs.map(c => [c.dataset.productId, Number(c.dataset.position)])") == [
            [p["product_id"], p["position"]] for p in expected
        ]
        for index, product in enumerate(expected):
            assert cards.nth(index).locator(".reclift__price").inner_text() == f"${product['price']}"
        assert page.locator(".reclift__title").inner_text() == "Bought together"
        assert page.locator(".reclift").is_visible()

        # Below the fold: the page hides, only the view of the current product is sent; no impression is stored.
        page.wait_for_timeout(500)
        page_hides(page)
        assert events_sent(store, 0) == [{"type": "view", "visitor_id": visitor, "product_id": str(CURRENT)}]
        assert store.event_posts()[0].content_type == "text/plain;charset=UTF-8"  # a beacon, as the page hides
        profile = stack.client("dynamodb").get_item(
            TableName=stack.resource("ProfilesTable"), Key={"pk": {"S": f"{shop}#v#{visitor}"}}, ConsistentRead=True
        )["Item"]
        assert [v["S"] for v in profile["viewed"]["L"]] == [str(CURRENT)]
        assert {p: counters(stack, shop, p) for p in SELLERS} == baseline
        assert store.cart_attributes == {}

        # A quarter of the row in view is less than half of any card: still no impression.
        page.evaluate(
            """() => {
                const card = document.querySelector('.reclift__item').getBoundingClientRect();
                window.scrollBy(0, card.top - window.innerHeight + card.height * 0.25);
            }"""
        )
        page.wait_for_timeout(500)
        page_hides(page)
        page.wait_for_timeout(500)
        assert len(store.event_posts()) == 1

        # Scrolled into view: one impression with every card's position, stored and counted once per product.
        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for(lambda: batches_once_hidden(page, store) > 1, message="the impression")
        [impression] = events_sent(store, 1)
        assert impression == {
            "type": "impression",
            "rec_id": served.response["rec_id"],
            "visitor_id": visitor,
            "placement": "product",
            "source_product_id": str(CURRENT),
            "products": [{"product_id": p["product_id"], "position": p["position"]} for p in expected],
            "rec_products": [p["product_id"] for p in expected],
        }
        wait_for(
            lambda: (
                {p: counters(stack, shop, p).get("impressions", 0) for p in SELLERS}
                == {p: baseline[p].get("impressions", 0) + 1 for p in SELLERS}
            ),
            message="the impressions counted",
        )
        page.wait_for_timeout(300)
        assert (store.cart_token, store.cart_requests, store.cart_attributes) == (None, [], {})

        # Seen once is counted once: hiding the page again sends nothing new.
        page_hides(page)
        page.wait_for_timeout(500)
        assert len(store.event_posts()) == 2


def test_given_cards_when_the_shopper_adds_one_and_clicks_another_then_the_cart_carries_them_to_an_attributed_order(
    stack: RunningStack, shop: str, page: Page
) -> None:
    baseline = {str(p): counters(stack, shop, p) for p in SELLERS}
    # The cards need a product's url for their link and button: where the stack's recommendations do not carry the
    # catalog's render fields yet, the storefront fills them in from its own products (never overriding the stack's).
    with storefront(shop, stack.url, catalog(), catalog_stand_in=True) as store:
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        rec_id, expected = served.response["rec_id"], served.response["products"]
        first, second = expected[0], expected[1]
        cards = page.locator(".reclift__item")
        cards.nth(len(expected) - 1).wait_for(state="attached")
        visitor = visitor_of(page)
        page.locator(".reclift__list").scroll_into_view_if_needed()

        # Title, link and image when the response has them.
        link = cards.nth(0).locator("a.reclift__link")
        assert link.get_attribute("href") == f"{store.url}/products/product-{first['product_id']}"
        assert link.locator(".reclift__name").inner_text() == f"Product {first['product_id']}"
        assert link.locator("img").get_attribute("alt") == f"Product {first['product_id']}"

        # Add to cart: the first available variant, with the recommendation's id as a line-item property.
        cards.nth(1).locator(".reclift__add").click()
        wait_for(lambda: store.cart_items, message="the cart add")
        [line] = store.cart_items
        added = store.by_id(second["product_id"])
        assert line["variant_id"] == added.variants[1]["id"]
        assert line["properties"] == {"_rec_id": rec_id}
        assert store.cart_attributes == {"_reclift_vid": visitor}
        assert [path for path, _ in store.cart_requests] == ["/cart/update.js", "/cart/add.js"]  # the add's cart
        sent = events_sent(store, 0)
        assert {"type": "add_to_cart", "rec_id": rec_id, "visitor_id": visitor, "product_id": second["product_id"],
                "position": second["position"], **served.response["event_fields"]} in sent  # fmt: skip
        assert cards.nth(1).locator(".reclift__add").inner_text() == "Added"

        # A click on a card's link: recorded, and sent as the page goes.
        posted = len(store.event_posts())
        with page.expect_navigation():
            link.click()
        assert page.url == f"{store.url}/products/product-{first['product_id']}"
        click = {"type": "click", "rec_id": rec_id, "visitor_id": visitor, "product_id": first["product_id"],
                 "position": first["position"], **served.response["event_fields"]}  # fmt: skip
        assert click in wait_for(lambda: click in (e := events_sent(store, posted)) and e, message="the click")
        wait_for(
            lambda: (
                counters(stack, shop, first["product_id"]).get("clicks", 0)
                == baseline[first["product_id"]].get("clicks", 0) + 1
            ),
            message="the click counted",
        )
        wait_for(
            lambda: (
                counters(stack, shop, second["product_id"]).get("add_to_carts", 0)
                == baseline[second["product_id"]].get("add_to_carts", 0) + 1
            ),
            message="the add to cart counted",
        )

    # The order Shopify sends for that cart: the cart attribute as note_attributes, the line property kept.
    order = order_payload(
        order_id=59_001,
        created_at=datetime.now(UTC),
        visitor_id=store.cart_attributes["_reclift_vid"],
        lines=[
            {"product_id": added.product_id, "price": str(added.price), "rec_id": line["properties"]["_rec_id"]},
            {"product_id": int(first["product_id"]), "price": "19.90"},
        ],
    )
    before = admin_get(stack, shop, "/admin/roi")
    deliver_webhook(stack, shop, json.dumps(order).encode())
    report = wait_for(
        lambda: (r := admin_get(stack, shop, "/admin/roi"))["attributed_orders"] > before["attributed_orders"] and r,
        message="the attribution",
    )
    assert report["attributed_orders"] == before["attributed_orders"] + 1
    revenue = {p["product_id"]: Decimal(p["revenue"]) for p in report["by_product"]}
    earlier = {p["product_id"]: Decimal(p["revenue"]) for p in before["by_product"]}
    assert revenue[second["product_id"]] - earlier.get(second["product_id"], Decimal(0)) == added.price
    assert revenue[first["product_id"]] - earlier.get(first["product_id"], Decimal(0)) == Decimal("19.90")
    assert Decimal(report["click_through_revenue"]) - Decimal(before["click_through_revenue"]) == Decimal("19.90") + (
        added.price
    )
    for index in (0, 1):  # each line credited to this recommendation, as a click-through
        stored = stack.client("dynamodb").get_item(
            TableName=stack.resource("OrdersTable"),
            Key={"pk": {"S": f"{shop}#59001"}, "sk": {"S": f"line#{59_001 * 100 + index}"}},
        )["Item"]
        assert (stored["rec_id"]["S"], stored["channel"]["S"]) == (rec_id, "click_through")


def test_given_the_cart_placement_then_the_cart_s_products_are_sent_and_not_recommended(
    stack: RunningStack, shop: str, page: Page
) -> None:
    in_cart = 2001
    with storefront(shop, stack.url, catalog(), block_settings={"placement": "cart", "products_count": 3}) as store:
        store.fill_cart(in_cart, in_cart * 10 + 2)
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        shown = served.response["products"]
        page.locator(".reclift__item").nth(len(shown) - 1).wait_for(state="attached")

        assert served.query["placement"] == "cart"
        assert served.query["cart_product_ids"] == str(in_cart)
        assert served.query["limit"] == "3"
        cards = page.locator(".reclift__item").evaluate_all("cs => cs.map(c => c.dataset.productId)")
        assert cards == [p["product_id"] for p in shown]
        assert sorted(p["product_id"] for p in shown) == sorted(str(p) for p in SELLERS if p != in_cart)


@pytest.mark.parametrize("storage", ["localStorage", "cookie"])
def test_given_a_returning_visitor_then_the_widget_asks_with_the_same_anonymous_id_even_without_local_storage(
    stack: RunningStack, shop: str, browser: Browser, storage: str
) -> None:
    context = browser.new_context()
    if storage == "cookie":  # storage blocked (privacy settings, some embedded browsers): the cookie keeps the id
        context.add_init_script(
            "Object.defineProperty(window, 'localStorage', "
            "{get() { throw new DOMException('denied', 'SecurityError'); }})"
        )
    try:
        with storefront(shop, stack.url, catalog()) as store:
            for visits in (1, 2):
                context.new_page().goto(store.product_page(f"product-{CURRENT}"))
                wait_for(lambda n=visits: len(store.recommendations()) == n, message="the recommendation request")
            first, second = (served.query["visitor_id"] for served in store.recommendations())
            cookies = {c["name"]: c["value"] for c in context.cookies()}
    finally:
        context.close()

    assert first == second
    assert re.fullmatch(r"v-[0-9a-f]{32}", first)
    assert cookies.get("_reclift_vid") == (first if storage == "cookie" else None)


# The page's body without the block (a copy: the page itself is left as it is).
WITHOUT_THE_BLOCK = """() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll('.reclift').forEach(block => block.remove());
    return body.innerHTML;
}"""


@pytest.mark.parametrize("failure", ["error", "bad-json", "drop"])
def test_given_a_failing_proxy_when_the_page_loads_then_the_widget_adds_nothing_and_throws_nothing(
    stack: RunningStack, shop: str, browser: Browser, page: Page, failure: str
) -> None:
    errors: list[str] = []
    console: list[ConsoleMessage] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(message) if message.type == "error" else None)
    with storefront(shop, stack.url, catalog(), proxy_mode=failure) as store:
        static = browser.new_context(java_script_enabled=False)
        try:
            static_page = static.new_page()
            static_page.goto(store.product_page(f"product-{CURRENT}"))
            as_served = static_page.evaluate(WITHOUT_THE_BLOCK)
            served_block = static_page.locator(".reclift").evaluate("b => b.outerHTML")
        finally:
            static.close()

        page.goto(store.product_page(f"product-{CURRENT}"))
        wait_for(lambda: "recommendations" in store.proxied, message="the recommendation request")
        page.wait_for_timeout(1000)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # where the cards would be
        page.wait_for_timeout(300)

        # The block, served with its placeholders, is hidden as it was served: the rest of the page is untouched.
        assert page.evaluate(WITHOUT_THE_BLOCK) == as_served
        assert page.locator(".reclift").is_hidden()
        assert page.locator(".reclift").evaluate("b => b.outerHTML") == served_block.replace(">", ' hidden="">', 1)
        assert errors == []
        # The browser itself logs a failed request (no script can silence that); nothing else may be logged.
        assert [m.text for m in console if not m.text.startswith("Failed to load resource")] == []
        assert all(urlsplit(m.location["url"]).path == "/apps/reclift/recommendations" for m in console), [
            (m.text, m.location["url"]) for m in console
        ]


# --- consent: Shopify's Customer Privacy API, as the storefront offers it (tests/support/storefront.py CONSENT) -------


def stored_visitor(page: Page) -> dict[str, str | None]:
    """What the browser keeps of a visitor id: its localStorage item and its cookie."""
    stored: dict[str, str | None] = page.evaluate(
        """() => ({
            localStorage: localStorage.getItem('_reclift_vid'),
            cookie: (document.cookie.split('; ').find(c => c.startsWith('_reclift_vid=')) || '').slice(13) || null,
        })"""
    )
    return stored


def reported(events: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """The events with only the given fields (whatever else the server asks the widget to add to them)."""
    return [{key: event.get(key) for key in keys} for event in events]


@pytest.mark.parametrize("consent", ["given", "not-required"])
def test_given_analytics_consent_or_none_required_then_the_visitor_id_is_kept_and_events_are_sent(
    stack: RunningStack, shop: str, page: Page, consent: str
) -> None:
    with storefront(shop, stack.url, catalog(), consent=consent) as store:
        store.fill_cart(CURRENT, CURRENT * 10 + 1)  # a cart from an earlier visit: the id goes onto it
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        page.locator(".reclift__item").nth(len(served.response["products"]) - 1).wait_for(state="attached")
        visitor = visitor_of(page)
        assert served.query["visitor_id"] == visitor

        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for(lambda: store.cart_attributes, message="the cart attribute")
        page_hides(page)
        sent = events_sent(store, 0)

    assert reported(sent, "type", "visitor_id", "rec_id") == [
        {"type": "view", "visitor_id": visitor, "rec_id": None},
        {"type": "impression", "visitor_id": visitor, "rec_id": served.response["rec_id"]},
    ]
    assert store.cart_attributes == {"_reclift_vid": visitor}
    assert stored_visitor(page) == {"localStorage": visitor, "cookie": None}


@pytest.mark.parametrize("consent", ["denied", "pending", "unavailable"])
def test_given_no_analytics_consent_where_required_then_cards_render_and_nothing_is_stored_or_sent(
    stack: RunningStack, shop: str, page: Page, consent: str
) -> None:
    """Denied on the banner, not answered yet, or no Customer Privacy API on the page (the widget cannot tell whether
    the visitor's region requires consent, so it assumes it does): the same page without any tracking."""
    with storefront(shop, stack.url, catalog(), catalog_stand_in=True, consent=consent) as store:
        # What an earlier visit with consent left in this browser is forgotten.
        page.goto(f"{store.url}/cart.js")
        page.evaluate(
            "localStorage.setItem('_reclift_vid', 'v-earlier'); document.cookie = '_reclift_vid=v-earlier; path=/'"
        )
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        expected = served.response["products"]
        cards = page.locator(".reclift__item")
        cards.nth(len(expected) - 1).wait_for(state="attached")

        # Recommendations asked for without a visitor id (the learning arm) and shown.
        assert served.status == 200
        assert served.query == {"placement": "product", "limit": "4", "product_id": str(CURRENT)}
        assert cards.evaluate_all("cs => cs.map(c => c.dataset.productId)") == [p["product_id"] for p in expected]
        page.locator(".reclift__list").scroll_into_view_if_needed()
        assert page.locator(".reclift").is_visible()

        # Seen, added to the cart (without the `_rec_id` that would attribute the order), clicked: nothing recorded.
        added = cards.nth(1).locator(".reclift__add")
        added.click()
        wait_for_value(lambda: added.inner_text(), "Added", message="the cart add")
        with page.expect_navigation():
            cards.nth(0).locator("a.reclift__link").click()
        page.wait_for_timeout(500)
        page_hides(page)
        page.wait_for_timeout(500)

        assert "events" not in store.proxied
        assert [path for path, _ in store.cart_requests] == ["/cart/add.js"]
        assert [line["properties"] for line in store.cart_items] == [{}]
        assert store.cart_attributes == {}
        assert stored_visitor(page) == {"localStorage": None, "cookie": None}


def test_given_consent_given_on_the_banner_later_then_tracking_starts_and_withdrawn_it_stops_and_the_id_is_forgotten(
    stack: RunningStack, shop: str, page: Page
) -> None:
    with storefront(shop, stack.url, catalog(), catalog_stand_in=True, consent="pending") as store:
        store.fill_cart(CURRENT, CURRENT * 10 + 1)  # a cart from an earlier visit: the id goes onto it
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        cards = page.locator(".reclift__item")
        cards.nth(len(served.response["products"]) - 1).wait_for(state="attached")
        assert "visitor_id" not in served.query
        page_hides(page)
        page.wait_for_timeout(300)
        assert stored_visitor(page) == {"localStorage": None, "cookie": None}
        assert "events" not in store.proxied

        # The visitor accepts on the banner: the product still on the page is viewed, the cards seen from now on.
        page.evaluate("Shopify.customerPrivacy.setTrackingConsent({analytics: true, marketing: true}, () => {})")
        visitor = visitor_of(page)
        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for(lambda: store.cart_attributes, message="the cart attribute")
        page_hides(page)
        sent = events_sent(store, 0)
        assert reported(sent, "type", "visitor_id", "rec_id", "product_id") == [
            {"type": "view", "visitor_id": visitor, "rec_id": None, "product_id": str(CURRENT)},
            {"type": "impression", "visitor_id": visitor, "rec_id": served.response["rec_id"], "product_id": None},
        ]
        assert store.cart_attributes == {"_reclift_vid": visitor}

        # Then withdraws it (the privacy preferences): the id leaves the browser and the cart, nothing more is sent.
        posted = len(store.event_posts())
        page.evaluate("Shopify.customerPrivacy.setTrackingConsent({analytics: false, marketing: false}, () => {})")
        wait_for(lambda: not store.cart_attributes, message="the cart attribute's removal")
        assert stored_visitor(page) == {"localStorage": None, "cookie": None}
        added = cards.nth(1).locator(".reclift__add")
        added.click()
        wait_for_value(lambda: added.inner_text(), "Added", message="the cart add")
        page_hides(page)
        page.wait_for_timeout(500)
        assert [line["properties"] for line in store.cart_items][1:] == [{}]
        assert len(store.event_posts()) == posted


# --- the visitor's cart: an impression writes the visitor id onto a cart only when there is one ----------------------


def test_given_no_cart_when_the_theme_adds_a_product_after_the_cards_were_seen_then_the_id_goes_onto_that_cart(
    stack: RunningStack, shop: str, page: Page
) -> None:
    """The theme's own add to cart (its product form, on this page) creates the cart the impression did not."""
    with storefront(shop, stack.url, catalog()) as store:
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        page.locator(".reclift__item").nth(len(served.response["products"]) - 1).wait_for(state="attached")
        visitor = visitor_of(page)
        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for_value(lambda: impressions_once_hidden(page, store), 1, message="the impression")
        page.wait_for_timeout(300)
        assert (store.cart_token, store.cart_requests) == (None, [])

        theme_adds = {"items": [{"id": CURRENT * 10 + 1, "quantity": 1}]}
        page.evaluate(
            "items => fetch('/cart/add.js', {method: 'POST', body: JSON.stringify(items),"
            " headers: {'Content-Type': 'application/json'}})",
            theme_adds,
        )
        wait_for(lambda: store.cart_attributes, message="the cart attribute")

        assert store.cart_attributes == {"_reclift_vid": visitor}
        assert store.cart_requests == [
            ("/cart/add.js", theme_adds),
            ("/cart/update.js", {"attributes": {"_reclift_vid": visitor}}),
        ]


def test_given_a_cart_emptied_earlier_when_the_cards_are_seen_then_nothing_is_written_to_it(
    stack: RunningStack, shop: str, page: Page
) -> None:
    """The `cart` cookie names a cart that holds nothing (its lines were removed): no order can come of it yet."""
    with storefront(shop, stack.url, catalog()) as store:
        with store.lock:
            token = store.create_cart()
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        page.locator(".reclift__item").nth(len(served.response["products"]) - 1).wait_for(state="attached")
        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for_value(lambda: impressions_once_hidden(page, store), 1, message="the impression")
        page.wait_for_timeout(300)

        assert page.evaluate("document.cookie").count(f"cart={token}") == 1
        assert (store.cart_token, store.cart_requests, store.cart_attributes) == (token, [], {})


def test_given_a_cart_with_items_when_the_cards_are_seen_then_the_visitor_id_goes_onto_that_cart_once(
    stack: RunningStack, shop: str, page: Page
) -> None:
    with storefront(shop, stack.url, catalog()) as store:
        store.fill_cart(CURRENT, CURRENT * 10 + 1)
        token = store.cart_token
        page.goto(store.product_page(f"product-{CURRENT}"))
        [served] = wait_for(store.recommendations, message="the recommendation request")
        page.locator(".reclift__item").nth(len(served.response["products"]) - 1).wait_for(state="attached")
        visitor = visitor_of(page)

        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for(lambda: store.cart_attributes, message="the cart attribute")
        page.evaluate("window.scrollTo(0, 0)")
        page.locator(".reclift__list").scroll_into_view_if_needed()  # seen again: no new impression, no new write
        page.wait_for_timeout(500)

        assert store.cart_token == token
        assert store.cart_attributes == {"_reclift_vid": visitor}
        assert store.cart_requests == [("/cart/update.js", {"attributes": {"_reclift_vid": visitor}})]

        # The next page finds the id already on the cart: nothing is written.
        page.goto(store.product_page(f"product-{CURRENT}"))
        wait_for_value(lambda: len(store.recommendations()), 2, message="the second page's recommendations")
        page.locator(".reclift__item:not(.reclift__item--placeholder)").first.wait_for(state="attached")
        page.locator(".reclift__list").scroll_into_view_if_needed()
        wait_for_value(lambda: impressions_once_hidden(page, store), 2, message="the second page's impression")
        page.wait_for_timeout(300)
        assert len(store.cart_requests) == 1


# --- no layout shift: the block holds its place before the cards arrive ----------------------------------------------

# Cumulative Layout Shift as Chrome reports it to a page (PerformanceObserver 'layout-shift'), from the first paint:
# the sum of the shifts not caused by the visitor's input (web.dev's definition for one page without user input).
CLS_OBSERVER = """
window.__cls = 0;
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
}).observe({type: 'layout-shift', buffered: true});
"""
GOOD_CLS = 0.1  # Google's "good" threshold


def layout_shift(page: Page, url: str) -> float:
    """CLS of the page until its cards are shown, their images loaded and the page still for a second."""
    page.add_init_script(CLS_OBSERVER)
    page.goto(url)
    page.locator(".reclift__item:not(.reclift__item--placeholder)").first.wait_for(state="visible")
    page.wait_for_function("[...document.querySelectorAll('.reclift__image')].every(i => i.complete)")
    page.wait_for_timeout(1000)
    block, viewport = page.locator(".reclift").bounding_box(), page.viewport_size
    assert block is not None
    assert viewport is not None
    assert block["y"] + block["height"] < viewport["height"], block  # the whole block in the first screen
    cls: float = page.evaluate("window.__cls")
    return cls


def served_without_placeholders(route: Route) -> None:
    """The product page as the block was served before it held its place: hidden and empty until the cards came."""
    page = route.fetch().text()
    page = re.sub(r'<li class="reclift__item reclift__item--placeholder".*?</li>', "", page, flags=re.DOTALL)
    route.fulfill(body=page.replace("data-reclift-recommendations", "data-reclift-recommendations hidden", 1))


# (width, height, products): a desktop's row of four cards, a phone's two cards side by side.
SCREENS = {"desktop": (1280, 720, 4), "phone": (390, 844, 2)}


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("placeholders", [True, False], ids=["reserved", "not-reserved"])
def test_given_the_block_in_the_first_screen_when_the_cards_arrive_then_the_page_does_not_shift(
    stack: RunningStack, shop: str, page: Page, placeholders: bool, screen: str
) -> None:
    """Placeholders sized like the cards: CLS under 0.1. The same page with the block served hidden and empty (as
    it was) shifts the content below it by the row's height when the cards arrive, over the threshold."""
    width, height, products = SCREENS[screen]
    page.set_viewport_size({"width": width, "height": height})
    settings = {"products_count": products}
    with storefront(
        shop, stack.url, catalog(), catalog_stand_in=True, above_block_px=100, block_settings=settings
    ) as store:
        url = store.product_page(f"product-{CURRENT}")
        if not placeholders:
            page.route(url, served_without_placeholders)
        cls = layout_shift(page, url)
        [served] = store.recommendations()
        shown = page.locator(".reclift__item").evaluate_all("cs => cs.map(c => c.dataset.productId)")

    print(f"CLS on a {screen} with the block's place {'reserved' if placeholders else 'not reserved'}: {cls:.4f}")
    assert shown == [p["product_id"] for p in served.response["products"]]
    assert len(shown) == products  # every placeholder replaced by a card
    if placeholders:
        assert cls < GOOD_CLS
    else:
        assert cls > GOOD_CLS


# --- the block's settings and the storefront's language --------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "locale", "query", "heading", "button"),
    [
        (
            {"placement": "home", "products_count": 2, "title": "Picked for you"},
            "en",
            {"placement": "home", "limit": "2"},
            "Picked for you",
            "Add to cart",
        ),
        ({}, "fr", {"placement": "product", "limit": "4"}, "Vous aimerez aussi", "Ajouter au panier"),
        (
            {"show_title": False, "products_count": 3},
            "de",
            {"placement": "product", "limit": "3"},
            None,
            "In den Warenkorb",
        ),
    ],
    ids=["home-2-own-heading", "fr-defaults", "de-3-no-heading"],
)
def test_given_the_block_s_settings_and_the_storefront_s_language_then_the_widget_asks_and_renders_as_set(
    stack: RunningStack,
    shop: str,
    page: Page,
    settings: dict[str, Any],
    locale: str,
    query: dict[str, str],
    heading: str | None,
    button: str,
) -> None:
    with storefront(shop, stack.url, catalog(), catalog_stand_in=True, block_settings=settings, locale=locale) as store:
        page.goto(store.product_page(f"product-{CURRENT}"))
        placeholders = page.locator(".reclift__item--placeholder").count()
        [served] = wait_for(store.recommendations, message="the recommendation request")
        expected = served.response["products"]
        cards = page.locator(".reclift__item")
        cards.nth(len(expected) - 1).wait_for(state="attached")

        assert {key: served.query[key] for key in query} == query
        assert placeholders in (0, int(query["limit"]))  # as served, unless the cards already replaced them
        assert 0 < len(expected) <= int(query["limit"])
        assert cards.evaluate_all("cs => cs.map(c => c.dataset.productId)") == [p["product_id"] for p in expected]
        titles = page.locator(".reclift__title")
        assert titles.all_inner_texts() == ([heading] if heading else [])
        assert set(cards.locator(".reclift__add").all_inner_texts()) == {button}
