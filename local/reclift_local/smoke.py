"""`make smoke`: the README's walk-through as one command, against any deployment (the local stack or AWS).

It plays Shopify's and the storefront's parts with the app's own secret: a recommendation request through the signed
app proxy, an impression and a click citing that response's `rec_id`, a signed `orders/create` webhook for the
clicked product carrying the visitor id and the `_rec_id`, then it polls `GET /admin/roi` (session token) until the
order is attributed, and asks for recommendations again. Each run uses a fresh visitor and order id, so it can be
repeated against a live shop. The order is a real (non-test) order, because test orders are not attributed by
default; once it is seen attributed, an `orders/cancelled` webhook for it takes its revenue back out of the report
(`--keep-order` leaves it in).

The secret and the API key come from `SHOPIFY_API_SECRET` and `SHOPIFY_API_KEY` only: never from the command line,
never printed. Exit status: 0 when every step passed, 1 at the first failed step (named), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

import requests

from reclift.ids import is_shop_domain
from reclift.recids import RecIds
from reclift.signatures import mint_session_token, signed_app_proxy_query
from reclift.tracking import REC_PRODUCTS_FIELD

from .sample_events import BODIES_DIR, webhook_headers

# The steps in the order they run; each is printed with ✓ or ✗ and what it saw.
RECOMMENDATIONS = "recommendations"
REPORT_BEFORE = "report before"
EVENTS = "storefront events"
ORDER = "order webhook"
ATTRIBUTION = "attribution"
RECOMMENDATIONS_AFTER = "recommendations after the purchase"
CLEANUP = "cleanup"
STEPS = (RECOMMENDATIONS, REPORT_BEFORE, EVENTS, ORDER, ATTRIBUTION, RECOMMENDATIONS_AFTER, CLEANUP)

# The README walk-through's product (Shopify's sample order): tracked when the shop has nothing to recommend yet.
DEFAULT_PRODUCT_ID = "632910392"
APP_PROXY_PATH_PREFIX = "/apps/reclift"
ORDER_SAMPLE = BODIES_DIR / "orders-create.json"
SMOKE_TAG = "reclift-smoke"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class StepFailed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UsageError(ValueError):
    pass


@dataclass(frozen=True)
class SmokeOptions:
    base_url: str
    shop: str
    secret: str = field(repr=False)
    api_key: str
    timeout: float = 60.0
    interval: float = 1.0
    product_id: str | None = None
    price: Decimal = Decimal("1.00")
    keep_order: bool = False
    request_timeout: float = 15.0


@dataclass
class _Run:
    """What one run has learnt so far, step by step."""

    visitor_id: str
    order_id: int
    rec_id: str = ""
    product_id: str = ""
    currency: str = "USD"
    recommended: list[str] = field(default_factory=list)
    event_fields: dict[str, Any] = field(default_factory=dict)
    order: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    attributed: dict[str, Any] = field(default_factory=dict)


def _fresh_numeric_id() -> int:
    """A Shopify-shaped numeric id (16 digits, below 2^63) no real order of a shop will have."""
    return 9_000_000_000_000_000 + uuid.uuid4().int % 1_000_000_000_000_000


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "…"


def _product_line(report: Mapping[str, Any], product_id: str) -> tuple[int, Decimal]:
    """The report's purchases and revenue of one product (0 when it is not listed)."""
    for item in report.get("by_product") or []:
        if isinstance(item, dict) and str(item.get("product_id")) == product_id:
            return int(item.get("purchases") or 0), Decimal(str(item.get("revenue") or "0"))
    return 0, Decimal(0)


def _with_currency(value: Any, currency: str) -> Any:
    """Every `currency_code` of a Shopify payload set to the shop's currency."""
    if isinstance(value, dict):
        return {
            key: currency if key == "currency_code" else _with_currency(item, currency) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_with_currency(item, currency) for item in value]
    return value


def smoke_order(
    *, order_id: int, product_id: str, price: Decimal, currency: str, visitor_id: str, rec_id: str, now: datetime
) -> dict[str, Any]:
    """Shopify's published orders/create sample reduced to one line: the recommended product, bought at `price` by
    the smoke visitor through the widget (`_reclift_vid` cart attribute, `_rec_id` line property unless `rec_id` is
    empty: added to the cart elsewhere than the widget). No customer, so no
    customer's profile is touched; a real order (`test: false`), which the shop's report counts."""
    sample: dict[str, Any] = json.loads(ORDER_SAMPLE.read_text())
    order: dict[str, Any] = _with_currency(sample, currency)
    stamp = now.isoformat().replace("+00:00", "Z")
    amount = f"{price:.2f}"
    money = {"shop_money": {"amount": amount, "currency_code": currency}}
    money["presentment_money"] = dict(money["shop_money"])
    zero = {key: {"amount": "0.00", "currency_code": currency} for key in ("shop_money", "presentment_money")}
    line = order["line_items"][0]
    line.update(
        id=order_id + 1,
        admin_graphql_api_id=f"gid://shopify/LineItem/{order_id + 1}",
        product_id=int(product_id),
        quantity=1,
        current_quantity=1,
        price=amount,
        price_set=money,
        total_discount="0.00",
        total_discount_set=zero,
        discount_allocations=[],
        properties=[{"name": "_rec_id", "value": rec_id}] if rec_id else [],
        tax_lines=[],
    )
    order.update(
        id=order_id,
        admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
        name=f"#SMOKE-{order_id}",
        created_at=stamp,
        updated_at=stamp,
        processed_at=stamp,
        currency=currency,
        presentment_currency=currency,
        test=False,
        tags=SMOKE_TAG,
        note=f"{SMOKE_TAG}: a synthetic order written by `make smoke`",
        customer=None,
        email=None,
        contact_email=None,
        billing_address=None,
        shipping_address=None,
        note_attributes=[{"name": "_reclift_vid", "value": visitor_id}],
        line_items=[line],
        refunds=[],
        fulfillments=[],
    )
    return order


class Smoke:
    def __init__(self, options: SmokeOptions, out: TextIO, *, session: requests.Session | None = None) -> None:
        self.options = options
        self.out = out
        self.http = session or requests.Session()
        self.base = options.base_url.rstrip("/")

    # ------------------------------------------------------------------ signed requests, as Shopify makes them
    def _proxy(self, method: str, route: str, params: dict[str, str], body: Any = None) -> requests.Response:
        signed = signed_app_proxy_query(
            {
                "shop": self.options.shop,
                "logged_in_customer_id": "",
                "path_prefix": APP_PROXY_PATH_PREFIX,
                "timestamp": str(int(time.time())),
                **params,
            },
            self.options.secret,
        )
        return self._send(method, f"/apps/proxy/{route}?{signed}", json=body)

    def _admin(self, path: str) -> requests.Response:
        token = mint_session_token(
            self.options.shop, self.options.secret, api_key=self.options.api_key, now=time.time()
        )
        return self._send("GET", path, headers={"authorization": f"Bearer {token}"})

    def _webhook(self, topic: str, payload: dict[str, Any]) -> requests.Response:
        body = json.dumps(payload).encode()
        headers = webhook_headers(
            topic,
            body,
            secret=self.options.secret,
            now=datetime.now(UTC),
            shop=self.options.shop,
            webhook_id=str(uuid.uuid4()),
        )
        return self._send("POST", f"/webhooks/{topic}", data=body, headers=dict(headers))

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        route = path.split("?", 1)[0]
        try:
            return self.http.request(method, self.base + path, timeout=self.options.request_timeout, **kwargs)
        except requests.Timeout as exc:
            raise StepFailed(f"{method} {route}: no answer within {self.options.request_timeout:g} s") from exc
        except requests.RequestException as exc:
            # The exception's text repeats the signed URL; its type says enough.
            raise StepFailed(f"{method} {route}: cannot reach {self.base} ({type(exc).__name__})") from exc

    @staticmethod
    def _json(response: requests.Response, what: str, *, expect: int = 200) -> dict[str, Any]:
        if response.status_code != expect:
            hint = ""
            if response.status_code == 401:
                hint = " (is SHOPIFY_API_SECRET this app's secret, and SHOPIFY_API_KEY its API key?)"
            elif response.status_code == 403:
                hint = " (is the app installed on this shop? an uninstalled shop is not served)"
            raise StepFailed(f"{what}: HTTP {response.status_code}{hint}: {_short(response.text)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise StepFailed(f"{what}: HTTP {response.status_code} but not JSON: {_short(response.text)}") from exc
        if not isinstance(body, dict):
            raise StepFailed(f"{what}: expected a JSON object, got {_short(body)}")
        return body

    def _report(self, run: _Run) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        window = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
        return self._json(self._admin(f"/admin/roi?{window}"), "GET /admin/roi")

    def _poll(self, condition: Callable[[], str | None], waiting_for: str) -> str:
        """`condition()`'s answer once it has one, polling until the timeout."""
        deadline = time.monotonic() + self.options.timeout
        while True:
            seen = condition()
            if seen is not None:
                return seen
            if time.monotonic() >= deadline:
                raise StepFailed(f"timed out after {self.options.timeout:g} s waiting for {waiting_for}")
            time.sleep(self.options.interval)

    # ------------------------------------------------------------------ the steps
    def recommendations(self, run: _Run) -> str:
        body = self._json(self._recommend(run), "GET /apps/proxy/recommendations")
        rec_id = body.get("rec_id")
        if not isinstance(rec_id, str) or not rec_id:
            raise StepFailed(f"no rec_id in the answer: {_short(body)}")
        run.rec_id = rec_id
        fields = body.get("event_fields")
        run.event_fields = fields if isinstance(fields, dict) else {}
        run.recommended = [str(item["product_id"]) for item in body.get("products") or [] if "product_id" in item]
        if run.recommended:
            run.product_id = run.recommended[0]
            return f"rec_id {rec_id}, arm {body.get('arm')}, {len(run.recommended)} products: {run.recommended}"
        run.product_id = self.options.product_id or DEFAULT_PRODUCT_ID
        # Events count only about products a response listed: with the app's secret, issue a rec id for this one the
        # way the server does (to this visitor, for the placement asked), as the README walk-through does.
        run.recommended = [run.product_id]
        run.rec_id = RecIds.of_secrets([self.options.secret]).issue(
            shop=self.options.shop,
            visitor_id=run.visitor_id,
            arm="holdout" if body.get("arm") == "holdout" else "learning",
            placement="product" if self.options.product_id else "home",
            products=run.recommended,
            now=datetime.now(UTC),
        )
        run.event_fields = {REC_PRODUCTS_FIELD: run.recommended}
        return (
            f"rec_id {rec_id}, arm {body.get('arm')}, no products yet (a shop without data); "
            f"tracking product {run.product_id} instead under a rec id issued for it, as the README walk-through does"
        )

    def _recommend(self, run: _Run) -> requests.Response:
        params = {"placement": "home", "limit": "4", "visitor_id": run.visitor_id}
        if self.options.product_id:
            params |= {"placement": "product", "product_id": self.options.product_id}
        return self._proxy("GET", "recommendations", params)

    def report_before(self, run: _Run) -> str:
        run.before = self._report(run)
        currency = run.before.get("currency")
        if isinstance(currency, str) and len(currency) == 3:
            run.currency = currency
        return (
            f"{run.before.get('attributed_orders')} attributed orders, "
            f"{run.before.get('attributed_revenue')} {run.currency} "
            f"from {run.before.get('from')} to {run.before.get('to')}"
        )

    def storefront_events(self, run: _Run) -> str:
        shown = run.recommended or [run.product_id]
        common = {"rec_id": run.rec_id, "visitor_id": run.visitor_id, **run.event_fields}
        impression = {
            **common,
            "type": "impression",
            "placement": "product" if self.options.product_id else "home",
            "products": [{"product_id": product, "position": index} for index, product in enumerate(shown, start=1)],
        }
        if self.options.product_id:
            impression["source_product_id"] = self.options.product_id
        click = {**common, "type": "click", "product_id": run.product_id, "position": shown.index(run.product_id) + 1}
        body = self._json(self._proxy("POST", "events", {}, {"events": [impression, click]}), "POST /apps/proxy/events")
        if body.get("stored") != 2 or body.get("ignored"):
            raise StepFailed(
                f"expected the impression and the click stored, got {_short(body)}; the server counts only events "
                f"about products a recommendation listed (pass --product-id of a product the shop recommends)"
            )
        return f"impression of {len(shown)} products and a click on {run.product_id}: {_short(body)}"

    def order_webhook(self, run: _Run) -> str:
        order = smoke_order(
            order_id=run.order_id,
            product_id=run.product_id,
            price=self.options.price,
            currency=run.currency,
            visitor_id=run.visitor_id,
            rec_id=run.rec_id,
            now=datetime.now(UTC),
        )
        run.order = order
        self._json(self._webhook("orders/create", order), "POST /webhooks/orders/create")
        return (
            f"order {run.order_id} (one line: product {run.product_id}, {self.options.price:.2f} {run.currency}) queued"
        )

    def attribution(self, run: _Run) -> str:
        purchases_before, revenue_before = _product_line(run.before, run.product_id)
        click_before = Decimal(str(run.before.get("click_through_revenue") or "0"))

        def attributed() -> str | None:
            report = self._report(run)
            purchases, revenue = _product_line(report, run.product_id)
            click = Decimal(str(report.get("click_through_revenue") or "0"))
            gained = revenue - revenue_before
            if purchases > purchases_before and gained >= self.options.price and click - click_before >= gained:
                run.attributed = report
                return (
                    f"product {run.product_id}: +{purchases - purchases_before} purchase, +{gained:.2f} "
                    f"{run.currency} click-through; report now {report.get('attributed_orders')} attributed orders, "
                    f"{report.get('attributed_revenue')} {run.currency}"
                )
            return None

        return self._poll(attributed, f"order {run.order_id} to show in GET /admin/roi")

    def recommendations_after(self, run: _Run) -> str:
        def answered() -> str | None:
            body = self._json(self._recommend(run), "GET /apps/proxy/recommendations")
            products = [str(item.get("product_id")) for item in body.get("products") or []]
            if not body.get("rec_id") or run.product_id in products:
                return None  # the visitor's profile takes the purchase a moment after the order is attributed
            return f"rec_id {body['rec_id']}, {len(products)} products, the purchased {run.product_id} not among them"

        return self._poll(answered, f"an answer without the purchased product {run.product_id}")

    def cleanup(self, run: _Run) -> str:
        if self.options.keep_order:
            return f"kept order {run.order_id} in the report (--keep-order)"
        _, revenue_seen = _product_line(run.attributed, run.product_id)
        cancelled = {**run.order, "cancelled_at": datetime.now(UTC).isoformat(), "cancel_reason": "other"}
        self._json(self._webhook("orders/cancelled", cancelled), "POST /webhooks/orders/cancelled")

        def taken_back() -> str | None:
            _, revenue = _product_line(self._report(run), run.product_id)
            if revenue_seen - revenue >= self.options.price:
                return f"order {run.order_id} cancelled: its {self.options.price:.2f} {run.currency} left the report"
            return None

        return self._poll(taken_back, f"the cancelled order {run.order_id}'s revenue to leave GET /admin/roi")

    # ------------------------------------------------------------------ the run
    def run(self) -> int:
        run = _Run(visitor_id=f"smoke-{uuid.uuid4().hex}", order_id=_fresh_numeric_id())
        self._print(f"smoke: {self.base} for {self.options.shop} (visitor {run.visitor_id}, order {run.order_id})")
        steps: list[tuple[str, Callable[[_Run], str]]] = [
            (RECOMMENDATIONS, self.recommendations),
            (REPORT_BEFORE, self.report_before),
            (EVENTS, self.storefront_events),
            (ORDER, self.order_webhook),
            (ATTRIBUTION, self.attribution),
            (RECOMMENDATIONS_AFTER, self.recommendations_after),
            (CLEANUP, self.cleanup),
        ]
        for name, step in steps:
            try:
                seen = step(run)
            except StepFailed as exc:
                self._print(f"✗ {name}: {exc.detail}")
                self._print(f"smoke failed at step '{name}'")
                return EXIT_FAILED
            self._print(f"✓ {name}: {seen}")
        self._print(f"smoke passed: {len(steps)} steps")
        return EXIT_OK

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {value}")
    return number


def _price(value: str) -> Decimal:
    try:
        price = Decimal(value)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a price: {value}") from exc
    if not price.is_finite() or price <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {value}")
    return price.quantize(Decimal("0.01"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url", required=True, help="the API's base URL: the stack's ApiUrl output, or make run's"
    )
    parser.add_argument("--shop", required=True, help="the shop's myshopify.com domain")
    parser.add_argument(
        "--timeout", type=_positive, default=60.0, help="seconds to wait for each asynchronous result (default 60)"
    )
    parser.add_argument("--interval", type=_positive, default=1.0, help="seconds between polls (default 1)")
    parser.add_argument(
        "--product-id",
        default=None,
        help="ask for the product placement of this product, and track it when nothing is recommended "
        f"(default: the home placement, and product {DEFAULT_PRODUCT_ID})",
    )
    parser.add_argument(
        "--price", type=_price, default=Decimal("1.00"), help="the synthetic order's line price (default 1.00)"
    )
    parser.add_argument(
        "--keep-order", action="store_true", help="leave the synthetic order in the report (no orders/cancelled)"
    )


def check_target(args: argparse.Namespace) -> None:
    """The deployment and shop a command talks to (`--base-url`, `--shop`), or a UsageError naming the option."""
    if not is_shop_domain(args.shop):
        raise UsageError(f"--shop: expected the shop's permanent domain, like demo.myshopify.com, got {args.shop!r}")
    if not str(args.base_url).startswith(("https://", "http://")):
        raise UsageError(f"--base-url: expected an http(s) URL, got {args.base_url!r}")


def options_from(args: argparse.Namespace, environ: Mapping[str, str]) -> SmokeOptions:
    secret = environ.get("SHOPIFY_API_SECRET", "")
    api_key = environ.get("SHOPIFY_API_KEY", "")
    if not secret or not api_key:
        raise UsageError("set SHOPIFY_API_SECRET and SHOPIFY_API_KEY in the environment (the app's secret and API key)")
    check_target(args)
    if args.product_id is not None and not str(args.product_id).isdigit():
        raise UsageError(f"--product-id: expected Shopify's numeric product id, got {args.product_id!r}")
    return SmokeOptions(
        base_url=args.base_url,
        shop=args.shop.lower(),
        secret=secret,
        api_key=api_key,
        timeout=args.timeout,
        interval=args.interval,
        product_id=args.product_id,
        price=args.price,
        keep_order=args.keep_order,
    )


def command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        options = options_from(args, os.environ)
    except UsageError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return Smoke(options, out).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reclift_local.smoke", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
