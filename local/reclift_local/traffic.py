"""`python -m reclift_local traffic`: storefront traffic against a running deployment (the local stack or AWS), so
the ROI report has enough visitors in each arm to measure the lift.

Each visitor lands on the home page (or a `--product-id` page), and the widget asks for recommendations through the
signed app proxy: the server issues the rec id and decides the visitor's arm. The visitor sees the products (an
impression citing that rec id and its `event_fields`), clicks one with `--click` probability, and orders with
`--conversion` probability in the holdout arm and `--conversion × (1 + --lift)` in the learning arm: a signed
`orders/create` webhook whose one line is a product it was shown (the clicked one, if any), at its listed price,
carrying the visitor id as the `_reclift_vid` cart attribute and, when the visitor clicked (the widget added it to
the cart), the rec id as the `_rec_id` line property; otherwise attribution credits the impression. The lift
generated is that of the conversion rate; revenue per visitor follows it while both arms are shown products of
similar prices.

Every draw is made up front from `--seed`, and the visitor and order ids are named by it, so a seed replays the same
visitors and orders (each counted once by the report, however often it is sent); without `--seed` each run is new.
Then it waits until `GET /admin/roi` counts every visitor shown a recommendation and every order, and prints the
report's lift. The secret and API key come from `SHOPIFY_API_SECRET` and `SHOPIFY_API_KEY`, else the local stack's
development ones. Exit status: 0 when every request succeeded and the report caught up, 1 otherwise, 2 for a usage
error.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from .sign import DEV_API_KEY, DEV_API_SECRET
from .smoke import Smoke, SmokeOptions, StepFailed, UsageError, check_target, smoke_order

ARMS = ("learning", "holdout")
TRAFFIC_TAG = "reclift-traffic"
FALLBACK_PRICE = Decimal("20.00")  # a product listed without a price
SECOND_UNIT = 0.1  # the share of orders of two units
ORDER_ID_BASE = 8_000_000_000_000_000  # Shopify-shaped ids (below 2^63) no real order of a shop has
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class TrafficOptions:
    base_url: str
    shop: str
    secret: str = field(repr=False)
    api_key: str
    visitors: int
    seed: int
    conversion: float = 0.1
    lift: float = 0.3
    click: float = 0.3
    workers: int = 8
    product_ids: tuple[str, ...] = ()
    timeout: float = 300.0
    interval: float = 1.0
    wait: bool = True


@dataclass(frozen=True)
class Visitor:
    """One visitor's draws, made before any request so the threads' order changes nothing."""

    index: int
    visitor_id: str
    order_id: int
    landing: str | None  # a product page's product id, None for the home page
    clicks: float  # clicks when below the click probability
    pick: float  # which shown product it clicks or buys
    buys: float  # orders when below its arm's conversion rate
    units: int


@dataclass(frozen=True)
class Outcome:
    arm: str | None = None  # None when nothing was shown
    clicked: bool = False
    revenue: Decimal = Decimal(0)
    error: str | None = None


@dataclass
class Tally:
    shown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ARMS, 0))
    orders: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ARMS, 0))
    revenue: dict[str, Decimal] = field(default_factory=lambda: {arm: Decimal(0) for arm in ARMS})
    clicks: int = 0
    empty: int = 0
    errors: list[str] = field(default_factory=list)
    done: int = 0

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.error is not None:
            self.errors.append(outcome.error)
        elif outcome.arm is None:
            self.empty += 1
        else:
            self.shown[outcome.arm] += 1
            self.clicks += outcome.clicked
            if outcome.revenue:
                self.orders[outcome.arm] += 1
                self.revenue[outcome.arm] += outcome.revenue


def plan(options: TrafficOptions) -> list[Visitor]:
    rng = random.Random(options.seed)  # noqa: S311 - a simulation's draws, not security
    pages: list[str | None] = [None, *options.product_ids]
    return [
        Visitor(
            index=index,
            visitor_id=f"traffic-{options.seed}-{index}",
            order_id=ORDER_ID_BASE + (options.seed % 10**9) * 10**6 + index,
            landing=pages[int(rng.random() * len(pages))],
            clicks=rng.random(),
            pick=rng.random(),
            buys=rng.random(),
            units=2 if rng.random() < SECOND_UNIT else 1,
        )
        for index in range(options.visitors)
    ]


def conversion_rate(options: TrafficOptions, arm: str) -> float:
    rate = options.conversion * (1 + options.lift) if arm == "learning" else options.conversion
    return min(rate, 1.0)


def _price(item: Mapping[str, Any]) -> Decimal:
    try:
        price = Decimal(str(item.get("price")))
    except InvalidOperation:
        return FALLBACK_PRICE
    return price if price.is_finite() and price > 0 else FALLBACK_PRICE


class Traffic:
    def __init__(self, options: TrafficOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.smoke_options = SmokeOptions(
            base_url=options.base_url, shop=options.shop, secret=options.secret, api_key=options.api_key
        )
        self.local = threading.local()
        self.currency = "USD"

    def _client(self) -> Smoke:
        """This thread's signed client (a requests session of its own): smoke's requests, as Shopify signs them."""
        client: Smoke | None = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = Smoke(self.smoke_options, self.out)
        return client

    def visit(self, visitor: Visitor) -> Outcome:
        try:
            return self._visit(visitor)
        except StepFailed as exc:
            return Outcome(error=exc.detail)

    def _visit(self, visitor: Visitor) -> Outcome:
        client = self._client()
        params = {"placement": "home", "limit": "4", "visitor_id": visitor.visitor_id}
        if visitor.landing is not None:
            params |= {"placement": "product", "product_id": visitor.landing}
        body = client._json(client._proxy("GET", "recommendations", params), "GET /apps/proxy/recommendations")
        rec_id, arm = body.get("rec_id"), body.get("arm")
        products = [item for item in body.get("products") or [] if isinstance(item, dict) and "product_id" in item]
        if not isinstance(rec_id, str) or arm not in ARMS:
            raise StepFailed(f"GET /apps/proxy/recommendations: no rec_id or arm in {str(body)[:200]}")
        if not products:
            return Outcome()
        fields = body.get("event_fields")
        common = {"rec_id": rec_id, "visitor_id": visitor.visitor_id, **(fields if isinstance(fields, dict) else {})}
        impression: dict[str, Any] = {
            **common,
            "type": "impression",
            "placement": params["placement"],
            "products": [{"product_id": str(item["product_id"]), "position": n} for n, item in enumerate(products, 1)],
        }
        if visitor.landing is not None:
            impression["source_product_id"] = visitor.landing
        chosen = min(int(visitor.pick * len(products)), len(products) - 1)
        product = products[chosen]
        clicked = visitor.clicks < self.options.click
        events = [impression]
        if clicked:
            events.append({**common, "type": "click", "product_id": str(product["product_id"]), "position": chosen + 1})
        stored = client._json(client._proxy("POST", "events", {}, {"events": events}), "POST /apps/proxy/events")
        if stored.get("ignored"):
            raise StepFailed(f"POST /apps/proxy/events: events ignored: {stored}")
        if visitor.buys >= conversion_rate(self.options, str(arm)):
            return Outcome(arm=str(arm), clicked=clicked)
        price = _price(product)
        order = smoke_order(
            order_id=visitor.order_id,
            product_id=str(product["product_id"]),
            price=price,
            currency=self.currency,
            visitor_id=visitor.visitor_id,
            # the widget puts `_rec_id` on a line it added to the cart: a visitor who never clicked bought it some
            # other way, and attribution credits the impression they saw (view-through)
            rec_id=rec_id if clicked else "",
            now=datetime.now(UTC),
        )
        line = order["line_items"][0]
        line.update(quantity=visitor.units, current_quantity=visitor.units)
        order.update(
            name=f"#TRAFFIC-{visitor.order_id}",
            tags=TRAFFIC_TAG,
            note=f"{TRAFFIC_TAG}: a synthetic order written by `python -m reclift_local traffic`",
        )
        client._json(client._webhook("orders/create", order), "POST /webhooks/orders/create")
        return Outcome(arm=str(arm), clicked=clicked, revenue=price * visitor.units)

    def report(self) -> dict[str, Any]:
        client = self._client()
        return client._json(client._admin("/admin/roi"), "GET /admin/roi")

    # ------------------------------------------------------------------ the run
    def run(self) -> int:
        options = self.options
        try:
            before = self.report()
        except StepFailed as exc:
            self._print(f"traffic: {exc.detail}")
            return EXIT_FAILED
        currency = before.get("currency")
        self.currency = currency if isinstance(currency, str) and len(currency) == 3 else "USD"
        visitors = plan(options)
        self._print(
            f"traffic: {options.visitors} visitors for {options.shop} at {options.base_url} (seed {options.seed}, "
            f"{options.workers} workers; conversion {options.conversion:g} holdout, "
            f"{conversion_rate(options, 'learning'):g} learning)"
        )
        tally, started = Tally(), time.monotonic()
        step = max(1, options.visitors // 10)
        with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="visitor") as pool:
            for outcome in pool.map(self.visit, visitors):
                tally.add(outcome)
                if tally.done % step == 0 or tally.done == options.visitors:
                    self._print(
                        f"  {tally.done}/{options.visitors} visitors, {sum(tally.orders.values())} orders, "
                        f"{len(tally.errors)} errors, {time.monotonic() - started:.1f} s"
                    )
        elapsed = time.monotonic() - started
        for error in sorted(set(tally.errors))[:5]:
            self._print(f"  error: {error}")
        shown = sum(tally.shown.values())
        self._print(
            f"traffic sent: {options.visitors} visitors in {elapsed:.1f} s ({options.visitors / elapsed:.0f}/s): "
            + "; ".join(
                f"{arm} {tally.shown[arm]} shown, {tally.orders[arm]} orders, {tally.revenue[arm]:.2f} {self.currency}"
                for arm in ARMS
            )
            + f"; {tally.clicks} clicks, {tally.empty} shown nothing, {len(tally.errors)} errors"
        )
        if tally.errors:
            return EXIT_FAILED
        if not shown:
            self._print(
                "traffic: the shop recommended nothing to any visitor (no catalog or best sellers yet): deliver its "
                "products and orders, run the learning job, then run this again"
            )
            return EXIT_FAILED
        if not options.wait:
            return EXIT_OK
        return self._wait(before, tally)

    def _wait(self, before: Mapping[str, Any], tally: Tally) -> int:
        """Until the report counts every visitor shown a recommendation and every order; then its lift."""

        def counts(report: Mapping[str, Any]) -> tuple[dict[str, int], int]:
            lift = report.get("lift") or {}
            return (
                {arm: int((lift.get("visitors") or {}).get(arm) or 0) for arm in ARMS},
                int(report.get("attributed_orders") or 0),
            )

        seen_before, orders_before = counts(before)
        want = {arm: seen_before[arm] + tally.shown[arm] for arm in ARMS}
        want_orders = orders_before + sum(tally.orders.values())
        deadline = time.monotonic() + self.options.timeout
        seen, orders, failure = seen_before, orders_before, ""
        while True:
            try:
                report = self.report()
            except StepFailed as exc:  # a report that failed once (a cold start on a busy machine) is asked again
                failure = f"; the last report failed: {exc.detail}"
            else:
                seen, orders, failure = *counts(report), ""
                if all(seen[arm] >= want[arm] for arm in ARMS) and orders >= want_orders:
                    break
            if time.monotonic() >= deadline:
                self._print(
                    f"traffic: after {self.options.timeout:g} s the report counts {seen} visitors and {orders} "
                    f"attributed orders, not {want} and {want_orders} (a repeated --seed replays visitors and orders "
                    f"the report has counted already){failure}"
                )
                return EXIT_FAILED
            time.sleep(self.options.interval)
        self._print(f"ROI lift: {lift_line(report.get('lift') or {})}")
        return EXIT_OK

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def lift_line(lift: Mapping[str, Any]) -> str:
    """The report's lift block in a line: each arm's visitors, and each relative lift with its 95 % interval."""

    def percent(value: Any) -> str:
        return "n/a" if value is None else f"{float(value) * 100:+.1f} %"

    parts = [
        f"visitors {lift.get('visitors')}, converting {lift.get('converting_visitors')}, "
        f"enough_data {str(lift.get('enough_data')).lower()}"
    ]
    for name in ("revenue_per_visitor", "conversion_rate"):
        block = lift.get(name) or {}
        ci = block.get("ci95")
        interval = f" (95 % CI {percent(ci[0])} to {percent(ci[1])})" if isinstance(ci, list) and len(ci) == 2 else ""
        parts.append(f"{name.replace('_', ' ')} {percent(block.get('relative'))}{interval}")
    return "; ".join(parts)


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {value}")
    return number


def _share(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1: {value}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url", required=True, help="the API's base URL: the stack's ApiUrl output, or make run's"
    )
    parser.add_argument("--shop", required=True, help="the shop's myshopify.com domain")
    parser.add_argument("--visitors", type=_positive_int, default=1000, help="how many visitors (default 1000)")
    parser.add_argument(
        "--seed", type=int, default=None, help="the draws and the visitors' and orders' ids (default: a new run)"
    )
    parser.add_argument(
        "--conversion", type=_share, default=0.1, help="the holdout's conversion rate per visitor (default 0.1)"
    )
    parser.add_argument(
        "--lift",
        type=float,
        default=0.3,
        help="the learning arm converts (1 + LIFT) times as often as the holdout (default 0.3)",
    )
    parser.add_argument("--click", type=_share, default=0.3, help="the share of visitors who click (default 0.3)")
    parser.add_argument(
        "--product-id",
        action="append",
        default=[],
        help="a product page visitors land on besides the home page (repeatable; default: the home page only)",
    )
    parser.add_argument("--workers", type=_positive_int, default=8, help="visitors in flight at once (default 8)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the report to count them (default 300)"
    )
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the report")


def options_from(args: argparse.Namespace, environ: Mapping[str, str]) -> TrafficOptions:
    check_target(args)
    product_ids: Sequence[str] = args.product_id
    if any(not str(product).isdigit() for product in product_ids):
        raise UsageError(f"--product-id: expected Shopify's numeric product ids, got {product_ids!r}")
    if args.lift <= -1 or args.conversion * (1 + args.lift) > 1:
        raise UsageError("--lift: the learning arm's conversion rate, conversion × (1 + lift), must lie in (0, 1]")
    return TrafficOptions(
        base_url=str(args.base_url).rstrip("/"),
        shop=args.shop.lower(),
        secret=environ.get("SHOPIFY_API_SECRET") or DEV_API_SECRET,
        api_key=environ.get("SHOPIFY_API_KEY") or DEV_API_KEY,
        visitors=args.visitors,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(10**9),
        conversion=args.conversion,
        lift=args.lift,
        click=args.click,
        workers=args.workers,
        product_ids=tuple(product_ids),
        timeout=args.timeout,
        wait=not args.no_wait,
    )


def command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        options = options_from(args, os.environ)
    except UsageError as exc:
        print(f"traffic: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return Traffic(options, out).run()
