"""The data ports in memory: what the store simulation runs production's use cases over.

One `MemoryStore` implements every port a use case of the simulated loop takes: `Store` (events, counters,
profiles, orders and their attributions), `ServingPort` (what `recommend` reads), `LearningPort` (the counters'
product-days and the learned run), `SimilarityPort` (baskets, bought-instead pairs, neighbours) and the catalog's
writes. It keeps what the DynamoDB implementation keeps, in dictionaries, with the same rules: an event is stored
once per (rec id, type, product), an impression per rec id with its products a set, an order once (a backfilled
basket is replaced by its webhook), a catalog listing only when it is not older than the stored one, a performance
item of another run than the model's is not served. tests/integration/test_store_contract.py runs both on the same
cases so that this one cannot drift.

It lives with the benchmarks, not in the layer: no Lambda needs it, and the layer ships with every function.
Not modelled: expiry (TTL), the serving caches (their staleness is bounded by minutes; a simulated day is served
after its night's runs), capacity and errors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from reclift.adjustments import Adjustment, AttributedLine
from reclift.attribution import OrderAttribution, Touch, TouchKind, page_purchases
from reclift.catalog import Listing, ProductStatus
from reclift.context import ContextPrior, Landed, Similarity, page_similarities
from reclift.data.learning import LearnedModel
from reclift.data.serving import MAX_CONTEXT_PRODUCTS, ROUND_TRIP_KEYS, CandidateItems, Scores, ServingContext
from reclift.data.similarity import ViewedTogether
from reclift.data.store import (
    ArmVisitors,
    AttributionRow,
    OrderWriteOutcome,
    ShopDayTotals,
    customer_key,
    hour_key,
    visitor_key,
)
from reclift.learning import CounterDay, PairDay, Performance, Prior, ProductDay, product_rows
from reclift.profiles import (
    LINKED_VISITORS_LIMIT,
    ProfileLists,
    day_session,
    day_views,
    push_recent,
    views_within_cap,
)
from reclift.recids import REC_ID_LIFETIME, page_of
from reclift.rules import MerchantRules
from reclift.settings import ShopSettings
from reclift.similarity import Neighbour, WindowBasket
from reclift.tracking import PageCounts, ProductCounts, ProfileChange, TrackedEvent

COUNTER_FIELDS = ("impressions", "clicks", "add_to_carts", "purchases", "units", "sold")


@dataclass
class _StoredEvent:
    """An event item: a click or add to cart as it came, an impression with the set of its rec id's products."""

    event: TrackedEvent
    products: set[str]

    def touch(self) -> Touch:
        event = self.event
        event_id = f"{event.rec_tag}.impression" if event.type == "impression" else event.event_id
        return Touch(
            event_id=event_id,
            kind=TouchKind(event.type),
            at=event.at,
            product_ids=tuple(sorted(self.products)) if event.type == "impression" else event.product_ids,
            rec_id=event.rec_id,
            arm=event.arm,
            page=page_of(event.rec_id),
        )


@dataclass
class _Profile:
    lists: ProfileLists = field(default_factory=ProfileLists)
    neighbours: Scores = field(default_factory=list)
    catalog_neighbours: Scores = field(default_factory=list)
    visitors: list[str] = field(default_factory=list)
    views_day: str | None = None  # as ProfileItem: the day of views_taken and day_views
    views_taken: int = 0
    day_views: int = 0


@dataclass
class _Order:
    order_id: str
    created_at: datetime
    currency: str
    test: bool
    basket: list[str]
    backfilled: bool = False
    landing: str | None = None
    attributed_revenue: Decimal = Decimal(0)
    lines: dict[str, AttributionRow] = field(default_factory=dict)  # attributed lines by line id
    stored: dict[str, AttributedLine] = field(default_factory=dict)
    missed: list[tuple[str, list[str]]] = field(default_factory=list)  # (product, shown instead)
    markers: set[str] = field(default_factory=set)


@dataclass
class _Shop:
    settings: ShopSettings = field(default_factory=ShopSettings)
    rules: MerchantRules = field(default_factory=MerchantRules)
    registered: bool = False
    currency: str | None = None
    events: dict[str, dict[str, _StoredEvent]] = field(default_factory=lambda: defaultdict(dict))  # visitor → sk
    by_rec: dict[str, list[_StoredEvent]] = field(default_factory=lambda: defaultdict(list))
    by_customer: dict[str, list[_StoredEvent]] = field(default_factory=lambda: defaultdict(list))
    counters: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (day, product) → counts
    # the page items: (day, page) → candidate → [impressions, purchases, exposure (None until an impression's), clicks]
    page_counts: dict[tuple[str, str], dict[str, list[Any]]] = field(default_factory=dict)
    revenue: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    hours: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # (day, hour sk) → totals
    shop_days: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # day → orders, attributed …
    arm_seen: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))  # (day, arm)
    profiles: dict[str, _Profile] = field(default_factory=dict)
    orders: dict[str, _Order] = field(default_factory=dict)
    model: LearnedModel | None = None
    performance: dict[str, tuple[str, Performance]] = field(default_factory=dict)  # product → (run, performance)
    similarity: dict[str, Scores] = field(default_factory=dict)
    similarity_orders: dict[str, int] = field(default_factory=dict)
    catalog_similarity: dict[str, Scores] = field(default_factory=dict)
    viewed_similarity: dict[str, Scores] = field(default_factory=dict)  # co-view neighbours × the shop's weight
    landed: dict[str, Landed] = field(default_factory=dict)  # what the orders landed on a page bought
    viewed_after: dict[str, Landed] = field(default_factory=dict)  # what the sessions begun on a page viewed
    listings: dict[str, Listing] = field(default_factory=dict)
    pairs: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)  # page → (run, pair ratios)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MemoryStore:
    """Every data port of the simulated loop, in memory (see the module's docstring)."""

    def __init__(self) -> None:
        self._shops: dict[str, _Shop] = defaultdict(_Shop)

    def _shop(self, shop: str) -> _Shop:
        return self._shops[shop]

    # ------------------------------------------------------------ Store: shops and settings
    def get_settings(self, shop: str) -> ShopSettings:
        return self._shop(shop).settings

    def put_settings(self, shop: str, settings: ShopSettings) -> None:
        self._shop(shop).settings = settings

    def get_rules(self, shop: str) -> MerchantRules:
        return self._shop(shop).rules

    def put_rules(self, shop: str, rules: MerchantRules) -> None:
        self._shop(shop).rules = rules

    def register_shop(self, shop: str, *, currency: str | None = None) -> None:
        state = self._shop(shop)
        state.registered = True
        state.currency = currency or state.currency

    def shops(self) -> Iterator[str]:
        yield from (shop for shop, state in self._shops.items() if state.registered)

    # ------------------------------------------------------------ Store: tracking and counting
    def put_events(self, shop: str, events: Sequence[TrackedEvent]) -> list[TrackedEvent]:
        state = self._shop(shop)
        written: list[TrackedEvent] = []
        for event in events:
            if event.issued_at is None or event.rec_tag is None:
                raise ValueError("only proven events are stored")
        for event in events:
            stamp = _stamp(event.issued_at)  # type: ignore[arg-type]  # checked above
            by_visitor = state.events[event.visitor_id]
            if event.type == "impression":
                sk = f"{stamp}#{event.rec_tag}#impression"
                stored = by_visitor.get(sk)
                if stored is None:
                    stored = by_visitor[sk] = _StoredEvent(event, set())
                    if event.customer_id:
                        state.by_customer[event.customer_id].append(stored)
                if not set(event.product_ids) <= stored.products:
                    written.append(event)
                stored.products |= set(event.product_ids)
                continue
            sk = f"{stamp}#{event.rec_tag}#{event.type}#{','.join(event.product_ids)}"
            if sk in by_visitor:
                continue
            stored = by_visitor[sk] = _StoredEvent(event, set(event.product_ids))
            if event.rec_id:
                state.by_rec[event.rec_id].append(stored)
            if event.customer_id:
                state.by_customer[event.customer_id].append(stored)
            written.append(event)
        return written

    def add_counts(self, shop: str, increments: dict[tuple[str, str], ProductCounts]) -> None:
        counters = self._shop(shop).counters
        for key, counts in increments.items():
            row = counters.setdefault(key, dict.fromkeys(COUNTER_FIELDS, 0))
            for name, value in counts.as_increments().items():
                row[name] = row.get(name, 0) + value

    def add_pair_counts(self, shop: str, increments: Mapping[tuple[str, str], PageCounts]) -> None:
        page_counts = self._shop(shop).page_counts
        for key, shown in increments.items():
            for product, counts in shown.items():
                if not counts.impressions and not counts.clicks:
                    continue
                cell = page_counts.setdefault(key, {}).setdefault(product, [0, 0, None, 0])
                cell[0] += counts.impressions
                cell[3] += counts.clicks
                if counts.impressions:
                    cell[2] = (cell[2] or 0) + counts.exposure

    def add_hour_counts(self, shop: str, at: datetime, counts: dict[str, int], *, part: str | None = None) -> None:
        row = self._shop(shop).hours.setdefault(hour_key(at, part), defaultdict(int))
        for name, value in counts.items():
            row[name] += value

    def add_event_totals(self, shop: str, hour: datetime, impressions: int, visitors: Mapping[str, set[str]]) -> int:
        state = self._shop(shop)
        if impressions:
            self.add_hour_counts(shop, hour, {"impressions": impressions}, part="e")
        day = hour.astimezone(UTC).date().isoformat()
        new = 0
        for arm, ids in visitors.items():
            seen = state.arm_seen[(day, arm)]
            new += len(ids - seen)
            seen |= ids
        return new

    def arm_visitors(self, shop: str, first_day: date, last_day: date) -> ArmVisitors:
        total: dict[str, int] = defaultdict(int)
        by_day: dict[str, dict[str, int]] = defaultdict(dict)
        for (day, arm), ids in self._shop(shop).arm_seen.items():
            if first_day.isoformat() <= day <= last_day.isoformat():
                by_day[day][arm] = len(ids)
                total[arm] += len(ids)
        return ArmVisitors(total=dict(total), by_day=dict(by_day))

    # ------------------------------------------------------------ Store: profiles
    def update_profile(
        self,
        shop: str,
        key: str,
        change: ProfileChange,
        *,
        merge: ProfileLists | None = None,
        linked_visitor: str | None = None,
        now: datetime | None = None,
    ) -> ProfileLists:
        state = self._shop(shop)
        profile = state.profiles.get(key) or _Profile()
        viewed = list(change.viewed)
        if viewed:  # the daily cap and the day's session, as DynamoStore keeps them
            today = (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
            same_day = profile.views_day == today
            viewed, taken = views_within_cap(
                viewed, day=today, counted_day=profile.views_day, counted=profile.views_taken
            )
            if not (viewed or change.carted or change.purchased or merge is not None or linked_visitor):
                return profile.lists
            if key.startswith(visitor_key(shop, "")):
                profile.day_views = day_views(profile.lists.viewed, profile.day_views if same_day else 0, viewed)
            profile.views_day, profile.views_taken = today, taken
        state.profiles[key] = profile
        lists = profile.lists.pushed(viewed, change.carted, change.purchased)
        if merge is not None:
            lists = lists.merged_under(merge)
        profile.lists = lists
        seeds = lists.seeds()
        profile.neighbours, profile.catalog_neighbours = lists.home_neighbours(
            [state.similarity[p] for p in seeds if p in state.similarity],
            [state.catalog_similarity[p] for p in seeds if p in state.catalog_similarity],
        )
        if linked_visitor:
            profile.visitors = push_recent(profile.visitors, [linked_visitor], LINKED_VISITORS_LIMIT)
        return lists

    def profile(self, shop: str, key: str) -> ProfileLists | None:
        found = self._shop(shop).profiles.get(key)
        return found.lists if found else None

    # ------------------------------------------------------------ Store: attribution
    def touches(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        rec_ids: Iterable[str],
        since: datetime,
        until: datetime,
    ) -> list[Touch]:
        state = self._shop(shop)
        low, high = since - REC_ID_LIFETIME, until
        found: dict[str, Touch] = {}

        def take(stored: Iterable[_StoredEvent]) -> None:
            for item in stored:
                issued = item.event.issued_at
                if issued is not None and low <= issued <= high + timedelta(seconds=1):
                    touch = item.touch()
                    found[touch.event_id] = touch

        if visitor_id:
            take(state.events.get(visitor_id, {}).values())
        if customer_id:
            take(state.by_customer.get(customer_id, []))
        known = {touch.rec_id for touch in found.values()}
        for rec_id in sorted(set(rec_ids) - known):
            take(state.by_rec.get(rec_id, []))
        return [touch for touch in found.values() if since <= touch.at <= until]

    def record_order(self, shop: str, attribution: OrderAttribution) -> OrderWriteOutcome:
        state = self._shop(shop)
        order = attribution.order
        stored = state.orders.get(order.order_id)
        if stored is not None and not stored.backfilled:
            return OrderWriteOutcome(chunks_written=0, chunks_already_written=1)
        record = _Order(
            order_id=order.order_id,
            created_at=order.created_at,
            currency=order.currency,
            test=order.test,
            basket=list(order.product_ids),
            attributed_revenue=attribution.revenue,
            landing=order.landing,
        )
        day = order.created_at.date()
        for line in attribution.attributed:
            record.lines[line.line.line_id] = AttributionRow(
                order_id=order.order_id,
                line_id=line.line.line_id,
                product_id=line.product_id,
                quantity=line.line.quantity,
                revenue=line.revenue,
                channel=line.channel,
                created_at=order.created_at,
                currency=order.currency,
                arm=line.credited.arm,
                visitor_id=order.visitor_id,
            )
            record.stored[line.line.line_id] = AttributedLine(
                line_id=line.line.line_id,
                product_id=line.product_id,
                day=day,
                quantity=line.line.quantity,
                original_revenue=line.revenue,
                revenue=line.revenue,
            )
        record.missed = [(missed.line.product_id or "", list(missed.shown_instead)) for missed in attribution.missed]
        state.orders[order.order_id] = record
        per_product: dict[str, list[int]] = defaultdict(list)
        for line in attribution.attributed:
            per_product[line.product_id].append(line.line.quantity)
            state.revenue[(day.isoformat(), line.product_id)] += line.revenue
        for product, quantities in per_product.items():
            row = state.counters.setdefault((day.isoformat(), product), dict.fromkeys(COUNTER_FIELDS, 0))
            row["purchases"] += 1  # an order converts a product once, however many of its lines carry it
            row["units"] += sum(quantities)
        for page, products in page_purchases(attribution.attributed).items():
            for product in products:  # once per (page, product) and order, on the order's day
                state.page_counts.setdefault((day.isoformat(), page), {}).setdefault(product, [0, 0, None, 0])[1] += 1
        if not attribution.skipped_as_test:
            for product in order.product_ids:  # every order, attributed or not: what best sellers rank by
                row = state.counters.setdefault((day.isoformat(), product), dict.fromkeys(COUNTER_FIELDS, 0))
                row["sold"] += 1
        totals = state.shop_days.setdefault(day.isoformat(), defaultdict(Decimal))
        if attribution.skipped_as_test:
            totals["test_orders"] += 1
        else:
            totals["orders"] += 1
            if attribution.revenue > 0:
                totals["attributed_orders"] += 1
                totals["attributed_revenue"] += attribution.revenue
            hour = state.hours.setdefault(hour_key(order.created_at, "o"), defaultdict(int))
            hour["orders"] += 1
            if per_product:
                hour["purchases"] += len(per_product)
        return OrderWriteOutcome(chunks_written=1, chunks_already_written=0)

    def store_basket(self, shop: str, order_id: str, created_at: datetime, products: Sequence[str]) -> None:
        """A backfilled basket (what the backfill stores ahead of an order's webhook)."""
        state = self._shop(shop)
        if order_id not in state.orders:
            state.orders[order_id] = _Order(order_id, created_at, "", False, list(products), backfilled=True)

    def attributed_lines(self, shop: str, order_id: str) -> list[AttributedLine] | None:
        record = self._shop(shop).orders.get(order_id)
        return None if record is None else list(record.stored.values())

    def apply_adjustment(self, shop: str, adjustment: Adjustment, order_revenue_before: Decimal) -> bool:
        state = self._shop(shop)
        record = state.orders.get(adjustment.order_id)
        if record is None or adjustment.marker in record.markers:
            return False
        record.markers.add(adjustment.marker)
        for change in adjustment.changes:
            line = change.line
            record.stored[line.line_id] = replace(
                record.stored[line.line_id],
                revenue=change.revenue_after,
                refunded_quantity=change.refunded_quantity_after,
            )
            row = record.lines.get(line.line_id)
            if row is not None:
                record.lines[line.line_id] = replace(row, revenue=change.revenue_after)
            state.revenue[(line.day.isoformat(), line.product_id)] -= change.removed
        if adjustment.changes:
            after = order_revenue_before - adjustment.removed
            totals = state.shop_days.setdefault(adjustment.changes[0].line.day.isoformat(), defaultdict(Decimal))
            totals["attributed_revenue"] -= adjustment.removed
            if order_revenue_before > 0 >= after:
                totals["attributed_orders"] -= 1
            record.attributed_revenue = after
        return True

    def attributions(self, shop: str, first_day: date, last_day: date) -> list[AttributionRow]:
        rows = [
            row
            for record in self._shop(shop).orders.values()
            for row in record.lines.values()
            if first_day <= row.created_at.date() <= last_day
        ]
        return sorted(rows, key=lambda row: (_stamp(row.created_at), row.order_id, row.line_id))

    def shop_day_totals(self, shop: str, first_day: date, last_day: date) -> list[ShopDayTotals]:
        return [
            ShopDayTotals(day=day, orders=int(totals["orders"]), test_orders=int(totals["test_orders"]))
            for day, totals in sorted(self._shop(shop).shop_days.items())
            if first_day.isoformat() <= day <= last_day.isoformat()
        ]

    def shop_day_attributed(self, shop: str, day: date) -> tuple[int, Decimal]:
        """The day's attributed orders and revenue (the `_shop` counter's)."""
        totals = self._shop(shop).shop_days.get(day.isoformat(), {})
        return int(totals.get("attributed_orders", 0)), Decimal(totals.get("attributed_revenue", 0))

    # ------------------------------------------------------------ LearningPort
    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
        """As LearningStore's: day by day, the product counters, then each page's candidates (the Query's order)."""
        state = self._shop(shop)
        low, high = first_day.isoformat(), last_day.isoformat()
        products: dict[str, list[str]] = defaultdict(list)
        pages: dict[str, list[str]] = defaultdict(list)
        for day, product in state.counters:
            if low <= day <= high:
                products[day].append(product)
        for day, page in state.page_counts:
            if low <= day <= high:
                pages[day].append(page)
        for day in sorted({*products, *pages}):
            for product in sorted(products[day]):
                row = state.counters[(day, product)]
                yield ProductDay(
                    day=date.fromisoformat(day),
                    product_id=product,
                    impressions=int(row["impressions"]),
                    clicks=int(row["clicks"]),
                    purchases=int(row["purchases"]),
                    units=int(row["units"]),
                    revenue=state.revenue.get((day, product), Decimal(0)),
                    sold=int(row["sold"]),
                    exposure=row.get("exposure"),
                )
            for page in sorted(pages[day]):
                for product, cell in sorted(state.page_counts[(day, page)].items()):
                    impressions, purchases, exposure, clicks = cell
                    yield PairDay(date.fromisoformat(day), page, product, impressions, purchases, exposure, clicks)

    def product_days(self, shop: str, first_day: date, last_day: date) -> Iterator[ProductDay]:
        return product_rows(self.counter_days(shop, first_day, last_day))

    def save_run(
        self,
        shop: str,
        run: str,
        policy: str,
        prior: Prior,
        performance: Mapping[str, Performance],
        best_sellers: list[str],
        median_price: Decimal | None,
        *,
        context: ContextPrior | None = None,
    ) -> None:
        state = self._shop(shop)
        for product, result in performance.items():
            state.performance[product] = (run, result)
        state.model = LearnedModel(
            run=run,
            policy=policy,
            prior=prior,
            median_price=median_price,
            best_sellers=[performance[p] for p in best_sellers],
            products=len(performance),
            blacklisted=sum(r.blacklisted for r in performance.values()),
            context=context,
        )

    def page_similarities(self, shop: str, pages: Iterable[str]) -> dict[str, dict[str, Similarity]]:
        state = self._shop(shop)
        return {
            page: page_similarities(
                state.similarity.get(page, []),
                state.viewed_similarity.get(page, []),
                state.landed.get(page),
                state.viewed_after.get(page),
            )
            for page in sorted(set(pages))
            if page in state.similarity or page in state.viewed_similarity
        }

    def save_pairs(self, shop: str, run: str, ratios: Mapping[str, Mapping[str, float]]) -> None:
        state = self._shop(shop)
        for page, products in ratios.items():
            state.pairs[page] = (run, dict(products))

    def model(self, shop: str) -> LearnedModel | None:
        return self._shop(shop).model

    def performance(self, shop: str, run: str) -> list[Performance]:
        return [result for stored_run, result in self._shop(shop).performance.values() if stored_run == run]

    # ------------------------------------------------------------ SimilarityPort
    def baskets(self, shop: str, since: datetime, until: datetime, limit: int) -> list[WindowBasket]:
        window = [o for o in self._orders_newest_first(shop) if since <= o.created_at <= until][:limit]
        return [WindowBasket(list(o.basket), o.landing) for o in window if not o.test and o.basket]

    def bought_instead(self, shop: str, since: datetime, until: datetime, limit: int) -> list[tuple[str, str]]:
        lines = [
            (product, shown)
            for o in self._orders_newest_first(shop)
            if since <= o.created_at <= until
            for product, shown in o.missed
        ][:limit]
        return [(product, other) for product, shown in lines if product for other in shown]

    def view_sessions(self, shop: str, since: datetime, until: datetime, limit: int) -> list[list[str]]:
        first, last = since.astimezone(UTC).date().isoformat(), until.astimezone(UTC).date().isoformat()
        visitors = [p for key, p in self._shop(shop).profiles.items() if key.startswith(visitor_key(shop, ""))][:limit]
        return [
            day_session(p.lists.viewed, p.day_views)
            for p in visitors
            if p.views_day and first <= p.views_day <= last and p.day_views
        ]

    def _orders_newest_first(self, shop: str) -> list[_Order]:
        return sorted(self._shop(shop).orders.values(), key=lambda o: (o.created_at, o.order_id), reverse=True)

    def catalog_products(self, shop: str) -> list[Listing]:
        return list(self._shop(shop).listings.values())

    def save_similarity(
        self,
        shop: str,
        run: str,
        neighbours: Mapping[str, Sequence[Neighbour]],
        orders: Mapping[str, int],
        catalog: Mapping[str, Sequence[tuple[str, float]]] | None = None,
        viewed: ViewedTogether | None = None,
        landed: Mapping[str, Landed] | None = None,
    ) -> int:
        state = self._shop(shop)
        landed = landed or {}
        coviewed = viewed.neighbours if viewed else {}
        after = viewed.after if viewed else {}
        for product in {*neighbours, *(catalog or {}), *coviewed}:
            # each product's item is written whole, as SimilarityStore does; its counts as stored (trailing 0s dropped)
            for kept, counts in ((state.landed, landed), (state.viewed_after, after)):
                stored = Landed.from_json(counts[product].to_json()) if product in counts else None
                if stored is None:
                    kept.pop(product, None)
                else:
                    kept[product] = stored
        for product, products in neighbours.items():
            state.similarity[product] = [(n.product_id, round(n.jaccard, 6)) for n in products]
            state.similarity_orders[product] = orders.get(product, 0)
        for product, scores in (catalog or {}).items():
            state.catalog_similarity[product] = list(scores)
        for product, together in (viewed.neighbours if viewed else {}).items():
            weight = viewed.weight if viewed else 0.0
            state.viewed_similarity[product] = [(n.product_id, round(n.jaccard * weight, 6)) for n in together]
        return len(neighbours)

    def neighbours(self, shop: str, product: str) -> Scores | None:
        return self._shop(shop).similarity.get(product)

    # ------------------------------------------------------------ the catalog's writes and reads
    def save_listing(self, shop: str, listing: Listing) -> bool:
        listings = self._shop(shop).listings
        stored = listings.get(listing.product_id)
        if stored is not None and (stored.deleted or stored.updated_at > listing.updated_at):
            return False
        # the gift card flag only ever turns on (as CatalogStore keeps it)
        listings[listing.product_id] = replace(listing, gift_card=True) if stored and stored.gift_card else listing
        return True

    def save_deletion(self, shop: str, product_id: str, deleted_at: datetime | None = None) -> None:
        at = deleted_at or datetime.now(UTC)
        self._shop(shop).listings[product_id] = Listing(
            product_id=product_id,
            title="",
            handle=None,
            status=ProductStatus.UNKNOWN,
            price=None,
            available=False,
            image=None,
            updated_at=at,
            deleted=True,
        )

    def catalog_listings(self, shop: str, product_ids: Sequence[str]) -> dict[str, Listing]:
        listings = self._shop(shop).listings
        return {p: listings[p] for p in dict.fromkeys(product_ids) if p in listings}

    # ------------------------------------------------------------ ServingPort
    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext:
        state = self._shop(shop)
        run, ratios = state.pairs.get(page, ("", {})) if page else ("", {})
        keys = [visitor_key(shop, visitor_id)] if visitor_id else []
        keys += [customer_key(shop, customer_id)] if customer_id else []
        profiles = [state.profiles[key] for key in keys if key in state.profiles]
        wanted = list(dict.fromkeys(products or []))[:MAX_CONTEXT_PRODUCTS]
        return ServingContext(
            settings=state.settings,
            rules=state.rules,
            model=state.model,
            purchased=list(dict.fromkeys(p for profile in profiles for p in profile.lists.purchased)),
            viewed=list(dict.fromkeys(p for profile in profiles for p in profile.lists.viewed)),
            similar={p: state.similarity[p] for p in wanted if p in state.similarity},
            catalog_similar={p: state.catalog_similarity[p] for p in wanted if p in state.catalog_similarity},
            viewed_similar={p: state.viewed_similarity[p] for p in wanted if p in state.viewed_similarity},
            landed={p: state.landed[p] for p in wanted if p in state.landed},
            viewed_after={p: state.viewed_after[p] for p in wanted if p in state.viewed_after},
            profile_neighbours=[profile.neighbours for profile in profiles if profile.neighbours],
            profile_catalog_neighbours=[p.catalog_neighbours for p in profiles if p.catalog_neighbours],
            pair_ratios=dict(ratios) if state.model is not None and run == state.model.run else {},
        )

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        if len(set(performance_ids)) + len(set(catalog_ids)) > ROUND_TRIP_KEYS:
            raise ValueError(f"one round trip reads at most {ROUND_TRIP_KEYS} keys")
        state = self._shop(shop)
        performance = {
            product: stored[1]
            for product in performance_ids
            if (stored := state.performance.get(product)) is not None and stored[0] == run
        }
        listings = {product: state.listings[product] for product in catalog_ids if product in state.listings}
        return CandidateItems(performance=performance, listings=listings)
