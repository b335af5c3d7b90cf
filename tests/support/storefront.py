"""A local storefront that plays Shopify's part for the widget: real HTTP on a free port.

It renders the theme app extension's block with python-liquid into a product page (the block's own Liquid, with the
objects Shopify gives it: `block`, `product`, `cart`, `request` and the extension's `t` translations), includes the
assets the block's `{% schema %}` names the way Shopify injects them, keeps a cart (`/cart.js`, `/cart/update.js`,
`/cart/add.js`; created, with its `cart` cookie, by its first write as Shopify's is), answers `/products/<handle>.js`,
offers Shopify's Customer Privacy API (`CONSENT`), and forwards `/apps/<subpath>/*` to reclift as Shopify's app
proxy does: the storefront's query plus `shop`, `logged_in_customer_id`, `path_prefix`, `timestamp` and the
`signature`.

What it forwarded, what reclift answered and what the cart received are recorded for the tests to assert.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from liquid import Environment

from reclift.signatures import signed_app_proxy_query
from reclift_local.sign import DEV_API_SECRET

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "extensions" / "reclift-recommendations"
BLOCK = EXTENSION / "blocks" / "recommendations.liquid"
ASSET_PATH = "/cdn/reclift/"  # where Shopify's CDN would serve the extension's assets from
PLACEHOLDER_IMAGE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200"/></svg>'
)
SCHEMA = re.compile(r"{%-?\s*schema\s*-?%}(?P<json>.*?){%-?\s*endschema\s*-?%}", re.DOTALL)
# What Shopify's Customer Privacy API answers for a visitor: (whether the merchant requires consent in the visitor's
# region, the visitor's analytics choice on the banner: None while they have not answered). "unavailable": a page
# without the API (no `Shopify.loadFeatures`).
CONSENT = {"not-required": (False, None), "pending": (True, None), "given": (True, True), "denied": (True, False)}
# The API as `Shopify.loadFeatures` brings it: asynchronously, only under its name and version, and with the method a
# banner calls (`setTrackingConsent`), which dispatches `visitorConsentCollected` on the document as Shopify's does.
CUSTOMER_PRIVACY = """(function (required, analytics) {
  function allowed() { return !required || analytics === true; }
  var privacy = {
    analyticsProcessingAllowed: allowed,
    setTrackingConsent: function (consent, callback) {
      analytics = consent.analytics === true;
      var detail = {analyticsAllowed: allowed(), marketingAllowed: !required || consent.marketing === true};
      document.dispatchEvent(new CustomEvent('visitorConsentCollected', {detail: detail}));
      if (callback) callback();
    },
  };
  window.Shopify.loadFeatures = function (features, callback) {
    var known = features.length === 1 && features[0].name === 'consent-tracking-api' && features[0].version === '0.1';
    setTimeout(function () {
      if (known) window.Shopify.customerPrivacy = privacy;
      callback(known ? undefined : new Error('unknown feature'));
    }, 20);
  };
})(%s, %s);"""


def block_schema(source: str | None = None) -> dict[str, Any]:
    """The block's `{% schema %}` JSON."""
    match = SCHEMA.search(BLOCK.read_text() if source is None else source)
    if match is None:
        raise ValueError("the block has no {% schema %}")
    schema: dict[str, Any] = json.loads(match.group("json"))
    return schema


def app_proxy_path() -> str:
    """`/<prefix>/<subpath>`: where the storefront reaches reclift, as shopify.app.toml declares it."""
    proxy = tomllib.loads((ROOT / "shopify.app.toml").read_text())["app_proxy"]
    return f"/{proxy['prefix']}/{proxy['subpath']}"


def translations(locale: str = "en", *, schema: bool = False) -> dict[str, Any]:
    """The extension's storefront strings (`locales/<locale>.json`, the default locale's `en.default.json`), or with
    `schema` the theme editor's (`<locale>.schema.json`)."""
    kind = ".schema.json" if schema else ".json"
    path = EXTENSION / "locales" / f"{locale}{kind}"
    if not path.is_file():
        path = EXTENSION / "locales" / f"{locale}.default{kind}"
    strings: dict[str, Any] = json.loads(path.read_text())
    return strings


def translate(key: str, locale: str = "en") -> str:
    """Shopify's `t` filter: the locale's string, else the default locale's."""
    for strings in (translations(locale), translations("en")):
        value: Any = strings
        for part in str(key).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return f"translation missing: {locale}.{key}"


def render_block(
    settings: dict[str, Any], *, product_id: int | None, cart_product_ids: list[int], locale: str = "en"
) -> str:
    """The block as Shopify renders it: its Liquid with the block's settings (defaults filled in from the schema)
    and the storefront's language; the schema itself renders nothing."""
    source = BLOCK.read_text()
    defaults = {s["id"]: s.get("default") for s in block_schema(source)["settings"] if "id" in s}
    environment = Environment()
    environment.filters["t"] = lambda key: translate(key, locale)
    template = environment.from_string(SCHEMA.sub("", source))
    return template.render(
        block={"id": "AbCd1234", "settings": {**defaults, **settings}, "shopify_attributes": ""},
        product={"id": product_id} if product_id is not None else None,
        cart={
            "items": [{"product_id": p} for p in cart_product_ids],
            "item_count": len(cart_product_ids),
            "currency": {"iso_code": "USD"},
        },
        request={"locale": {"iso_code": locale}},
    )


@dataclass
class StoreProduct:
    """A product of the storefront's catalog, with its variants as `/products/<handle>.js` returns them."""

    product_id: int
    handle: str
    title: str
    price: Decimal
    variants: list[dict[str, Any]]

    def as_shopify_json(self) -> dict[str, Any]:
        return {
            "id": self.product_id,
            "title": self.title,
            "handle": self.handle,
            "price": int(self.price * 100),
            "available": any(v["available"] for v in self.variants),
            "variants": self.variants,
            "images": [],
        }


@dataclass
class Forwarded:
    method: str
    content_type: str | None
    path: str
    query: dict[str, str]
    body: Any
    status: int
    response: Any


@dataclass
class Storefront:
    shop: str
    reclift_url: str
    products: dict[str, StoreProduct]
    customer_id: str = ""
    secret: str = DEV_API_SECRET
    block_settings: dict[str, Any] = field(default_factory=dict)
    # How the app proxy behaves: "forward" (as Shopify does), or a failure: "error" (502), "bad-json", "drop".
    proxy_mode: str = "forward"
    # Fills the render fields (title, url, image) that a recommendation's product lacks from this catalog; stands in
    # for reclift's catalog, which serves them (DESIGN §4), where this tree's recommendations do not carry them yet.
    catalog_stand_in: bool = False
    # What the Customer Privacy API answers on the storefront's pages: a key of CONSENT, or "unavailable".
    consent: str = "not-required"
    locale: str = "en"  # the storefront's language (request.locale), for the block's `t` strings
    # The height of the theme's content above the block: by default enough to start the block below the fold.
    above_block_px: int = 2400
    url: str = ""
    proxied: list[str] = field(default_factory=list)  # every app proxy path asked for, answered or not
    forwarded: list[Forwarded] = field(default_factory=list)
    cart_token: str | None = None  # None until something creates the cart (a write to /cart/update.js or add.js)
    cart_attributes: dict[str, str] = field(default_factory=dict)
    cart_items: list[dict[str, Any]] = field(default_factory=list)
    cart_requests: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what the tests read -------------------------------------------------------------------------------------

    def product_page(self, handle: str) -> str:
        return f"{self.url}/products/{handle}"

    def recommendations(self) -> list[Forwarded]:
        with self.lock:
            return [f for f in self.forwarded if f.path == "recommendations"]

    def event_posts(self) -> list[Forwarded]:
        with self.lock:
            return [f for f in self.forwarded if f.path == "events"]

    def by_id(self, product_id: str) -> StoreProduct:
        return next(p for p in self.products.values() if str(p.product_id) == str(product_id))

    def fill_cart(self, product_id: int, variant_id: int) -> None:
        """The visitor's cart holds a line from an earlier visit: it exists, and their browser has its cookie."""
        with self.lock:
            self.create_cart()
            self.cart_items.append(
                {"product_id": product_id, "variant_id": variant_id, "quantity": 1, "properties": {}}
            )

    def create_cart(self) -> str:
        """What Shopify does on a cart's first write; the caller holds the lock."""
        if self.cart_token is None:
            self.cart_token = f"c1-{secrets.token_hex(16)}"
        return self.cart_token

    # --- pages -----------------------------------------------------------------------------------------------------

    def page(self, product: StoreProduct) -> str:
        schema = block_schema()
        assets = [schema.get("stylesheet")], [schema.get("javascript")]
        styles = "".join(f'<link rel="stylesheet" href="{ASSET_PATH}{name}">' for name in assets[0] if name)
        scripts = "".join(f'<script src="{ASSET_PATH}{name}" defer></script>' for name in assets[1] if name)
        block = render_block(
            self.block_settings,
            product_id=product.product_id,
            cart_product_ids=[int(item["product_id"]) for item in self.cart_items],
            locale=self.locale,
        )
        return (
            f"<!doctype html><html lang='{self.locale}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(product.title)}</title><link rel='icon' href='data:,'>"
            f"<script>window.Shopify = {{routes: {{root: '/'}}}};{self.customer_privacy()}</script>"
            f"{styles}{scripts}</head><body>"
            f"<main><h1>{html.escape(product.title)}</h1>"
            f"<p class='price'>{product.price}</p>"
            # The theme's product section: tall enough that the app block below starts out of view.
            f"<section style='height: {self.above_block_px}px'>Description</section>"
            f"<section class='apps'>{block}</section>"
            "<footer style='height: 600px'>Footer</footer></main></body></html>"
        )

    def customer_privacy(self) -> str:
        if self.consent == "unavailable":
            return ""
        required, analytics = CONSENT[self.consent]
        return CUSTOMER_PRIVACY % (json.dumps(required), json.dumps(analytics))

    def cart_json(self) -> dict[str, Any]:
        """/cart.js: without a cart, an empty one with no token (reading creates nothing)."""
        return {
            "token": self.cart_token,
            "item_count": sum(int(item.get("quantity", 1)) for item in self.cart_items),
            "attributes": dict(self.cart_attributes),
            "items": list(self.cart_items),
        }

    # --- the app proxy ------------------------------------------------------------------------------------------------

    def forward(self, method: str, rest: str, query: str, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        params.update(
            {
                "shop": [self.shop],
                "logged_in_customer_id": [self.customer_id],
                "path_prefix": [app_proxy_path()],
                "timestamp": [str(int(time.time()))],
            }
        )
        signed = signed_app_proxy_query(params, self.secret)
        response = requests.request(
            method,
            f"{self.reclift_url}/apps/proxy/{rest}?{signed}",
            data=body or None,
            headers={"content-type": content_type} if content_type else {},
            timeout=30,
        )
        payload: Any = response.json() if response.content else None
        if self.catalog_stand_in and rest == "recommendations" and isinstance(payload, dict):
            for product in payload.get("products", []):
                known = self.by_id(product["product_id"])
                product.setdefault("title", known.title)
                product.setdefault("url", f"/products/{known.handle}")
                product.setdefault("image", f"{self.url}{ASSET_PATH}{known.handle}.svg")
        with self.lock:
            self.forwarded.append(
                Forwarded(
                    method=method,
                    content_type=content_type,
                    path=rest,
                    query=dict(parse_qsl(query)),
                    body=json.loads(body) if body else None,
                    status=response.status_code,
                    response=payload,
                )
            )
        return response.status_code, json.dumps(payload).encode()


def _handler(store: Storefront) -> type[BaseHTTPRequestHandler]:
    proxy = app_proxy_path() + "/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            if store.cart_token is not None:  # Shopify's cart cookie, readable by the page's scripts
                self.send_header("Set-Cookie", f"cart={store.cart_token}; Path=/; SameSite=Lax")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, payload: Any, status: int = 200) -> None:
            self.send(status, json.dumps(payload).encode(), "application/json")

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def proxy(self, method: str) -> None:
            parts = urlsplit(self.path)
            body = self.body() if method == "POST" else b""
            with store.lock:
                store.proxied.append(parts.path[len(proxy) :])
            if store.proxy_mode == "drop":
                self.close_connection = True
                self.connection.shutdown(2)  # no answer at all: the browser sees a network error
                return
            if store.proxy_mode == "error":
                self.send(502, b"<html>Bad gateway</html>", "text/html")
                return
            if store.proxy_mode == "bad-json":
                self.send(200, b'{"rec_id": "l-1", "products": [', "application/json")
                return
            content_type = self.headers.get("Content-Type")
            status, answer = store.forward(method, parts.path[len(proxy) :], parts.query, body, content_type)
            self.send(status, answer, "application/json")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith(proxy):
                self.proxy("GET")
            elif path.startswith(ASSET_PATH):
                name = path[len(ASSET_PATH) :]
                asset = EXTENSION / "assets" / name
                if name.endswith(".svg"):
                    self.send(200, PLACEHOLDER_IMAGE, "image/svg+xml")
                elif "/" not in name and asset.is_file():
                    kind = "text/javascript" if name.endswith(".js") else "text/css"
                    self.send(200, asset.read_bytes(), kind)
                else:
                    self.send(404, b"not found", "text/plain")
            elif path == "/cart.js":
                self.send_json(store.cart_json())
            elif match := re.fullmatch(r"/products/([^/]+)\.js", path):
                product = store.products.get(match.group(1))
                if product is None:
                    self.send_json({"description": "Not found"}, 404)
                else:
                    self.send_json(product.as_shopify_json())
            elif match := re.fullmatch(r"/products/([^/.]+)", path):
                product = store.products.get(match.group(1))
                if product is None:
                    self.send(404, b"not found", "text/plain")
                else:
                    self.send(200, store.page(product).encode(), "text/html; charset=utf-8")
            else:
                self.send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith(proxy):
                self.proxy("POST")
                return
            try:
                payload = json.loads(self.body() or b"{}")
            except ValueError:
                self.send_json({"status": 400, "description": "Bad JSON"}, 400)
                return
            with store.lock:
                store.cart_requests.append((path, payload))
                if path in ("/cart/update.js", "/cart/add.js"):
                    store.create_cart()
            if path == "/cart/update.js":
                for name, value in (payload.get("attributes") or {}).items():
                    if value in ("", None):  # a blank attribute is removed, as Shopify's cart does
                        store.cart_attributes.pop(name, None)
                    else:
                        store.cart_attributes[name] = value
                self.send_json(store.cart_json())
            elif path == "/cart/add.js":
                added = []
                for item in payload.get("items") or []:
                    product = next(
                        (p for p in store.products.values() for v in p.variants if v["id"] == item["id"]), None
                    )
                    if product is None:
                        self.send_json({"status": 404, "description": "Cannot find variant"}, 404)
                        return
                    line = {
                        "id": item["id"],
                        "variant_id": item["id"],
                        "product_id": product.product_id,
                        "quantity": int(item.get("quantity", 1)),
                        "price": int(product.price * 100),
                        "properties": dict(item.get("properties") or {}),
                    }
                    store.cart_items.append(line)
                    added.append(line)
                self.send_json({"items": added})
            else:
                self.send(404, b"not found", "text/plain")

    return Handler


@contextmanager
def storefront(shop: str, reclift_url: str, products: list[StoreProduct], **options: Any) -> Iterator[Storefront]:
    store = Storefront(shop=shop, reclift_url=reclift_url, products={p.handle: p for p in products}, **options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(store))
    server.daemon_threads = True
    store.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="test-storefront", daemon=True)
    thread.start()
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
