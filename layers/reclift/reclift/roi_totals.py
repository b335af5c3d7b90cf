"""The ROI report's figures as per-day totals that recording an order adds to, so a report reads days, not lines.

Per day: the orders, the attributed revenue (by channel), attributed orders and lines. Per day and arm, what the lift
needs (`reclift.lift.Sums`), over visitor-days (a visitor's attributed revenue summed per day of the order, the unit
the arms' visitors are counted in): Σ revenue, Σ revenue², and the visitor-days with revenue above zero. Per product,
its lines, units and revenue.

Σ revenue² is kept exact as revenue comes and goes: an order that takes a visitor-day's revenue from r₀ to r₁ adds
r₁² − r₀² (2·r₀·r + r² for an order of r), and a visitor-day converts while its revenue is above zero, so each change
needs r₀: the visitor-day's revenue before it (`VisitorDayChange`), which the store keeps per shop, day, arm and
visitor. Money stays `Decimal`, so the sums are exact and the totals equal the lines' figures to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from reclift.adjustments import Adjustment
from reclift.attribution import Channel, LineAttribution, OrderAttribution

ARMS = ("learning", "holdout")


@dataclass
class DayFigures:
    """A day's totals (or an order's increments of them)."""

    orders: int = 0
    test_orders: int = 0
    attributed_revenue: Decimal = field(default_factory=Decimal)
    attributed_orders: int = 0
    attributed_lines: int = 0
    click_through_revenue: Decimal = field(default_factory=Decimal)
    view_through_revenue: Decimal = field(default_factory=Decimal)
    currency: str | None = None

    def add(self, other: DayFigures) -> None:
        self.orders += other.orders
        self.test_orders += other.test_orders
        self.attributed_revenue += other.attributed_revenue
        self.attributed_orders += other.attributed_orders
        self.attributed_lines += other.attributed_lines
        self.click_through_revenue += other.click_through_revenue
        self.view_through_revenue += other.view_through_revenue
        self.currency = other.currency or self.currency

    def add_channel(self, channel: Channel | str | None, revenue: Decimal) -> None:
        if channel == Channel.CLICK_THROUGH:
            self.click_through_revenue += revenue
        elif channel == Channel.VIEW_THROUGH:
            self.view_through_revenue += revenue


@dataclass
class ArmFigures:
    """An arm's visitor-day totals of a day: Σ revenue, Σ revenue², visitor-days with revenue above zero."""

    revenue: Decimal = field(default_factory=Decimal)
    squares: Decimal = field(default_factory=Decimal)
    converting: int = 0

    def add(self, other: ArmFigures) -> None:
        self.revenue += other.revenue
        self.squares += other.squares
        self.converting += other.converting


@dataclass
class ProductFigures:
    """A product's attributed lines (`purchases`, as the report has always counted them), units and revenue."""

    purchases: int = 0
    units: int = 0
    revenue: Decimal = field(default_factory=Decimal)

    def add(self, other: ProductFigures) -> None:
        self.purchases += other.purchases
        self.units += other.units
        self.revenue += other.revenue


@dataclass
class RoiTotals:
    """A range's totals, as the report reads them: per day, per (day, arm), and per product over the range."""

    days: dict[str, DayFigures] = field(default_factory=lambda: defaultdict(DayFigures))
    arms: dict[tuple[str, str], ArmFigures] = field(default_factory=lambda: defaultdict(ArmFigures))
    products: dict[str, ProductFigures] = field(default_factory=lambda: defaultdict(ProductFigures))

    def add(self, delta: TotalsDelta) -> None:
        """Add an order's or an adjustment's increments (what the store's transaction adds to its items)."""
        self.days[delta.day].add(delta.figures)
        for arm, arm_figures in delta.arms.items():
            self.arms[(delta.day, arm)].add(arm_figures)
        for product, product_figures in delta.products.items():
            self.products[product].add(product_figures)


@dataclass(frozen=True)
class VisitorDayChange:
    """A visitor-day's revenue in an arm, before (None: never recorded) and after an order or an adjustment."""

    day: str
    arm: str
    visitor_id: str
    before: Decimal | None
    after: Decimal


@dataclass
class TotalsDelta:
    """What one order or adjustment adds to its day's totals."""

    day: str
    figures: DayFigures
    arms: dict[str, ArmFigures]
    products: dict[str, ProductFigures]
    visitor_days: list[VisitorDayChange]


VisitorDayKey = tuple[str, str, str]  # (day, arm, visitor id)


def _arm_change(key: VisitorDayKey, before: Decimal | None, change: Decimal) -> tuple[ArmFigures, VisitorDayChange]:
    old = before if before is not None else Decimal(0)
    new = old + change
    figures = ArmFigures(revenue=change, squares=new * new - old * old, converting=int(new > 0) - int(old > 0))
    return figures, VisitorDayChange(*key, before=before, after=new)


def order_day(attribution: OrderAttribution) -> str:
    return attribution.order.created_at.date().isoformat()  # created_at is UTC


def order_visitor_days(attribution: OrderAttribution) -> list[VisitorDayKey]:
    """The visitor-days an order adds revenue to: one per arm its lines were credited in, when it names its visitor."""
    visitor = attribution.order.visitor_id
    if not visitor:
        return []
    arms = sorted({line.credited.arm for line in attribution.attributed if line.credited.arm})
    return [(order_day(attribution), arm, visitor) for arm in arms]


def product_increments(lines: Iterable[LineAttribution]) -> dict[str, ProductFigures]:
    products: dict[str, ProductFigures] = defaultdict(ProductFigures)
    for line in lines:
        products[line.product_id].add(ProductFigures(1, line.line.quantity, line.revenue))
    return dict(products)


def order_delta(attribution: OrderAttribution, before: Mapping[VisitorDayKey, Decimal | None]) -> TotalsDelta:
    """What recording the order adds; `before` holds its visitor-days' revenue as stored (see `order_visitor_days`)."""
    day = order_day(attribution)
    figures = DayFigures(currency=attribution.order.currency)
    if attribution.skipped_as_test:
        figures.test_orders = 1
    else:
        figures.orders = 1
    revenue = attribution.revenue
    figures.attributed_revenue = revenue
    figures.attributed_orders = int(revenue > 0)
    figures.attributed_lines = len(attribution.attributed)
    for line in attribution.attributed:
        figures.add_channel(line.channel, line.revenue)
    arms: dict[str, ArmFigures] = {}
    changes = []
    for key in order_visitor_days(attribution):
        arm_revenue = sum((line.revenue for line in attribution.attributed if line.credited.arm == key[1]), Decimal(0))
        arms[key[1]], change = _arm_change(key, before.get(key), arm_revenue)
        changes.append(change)
    return TotalsDelta(day, figures, arms, product_increments(attribution.attributed), changes)


def adjustment_visitor_days(adjustment: Adjustment) -> list[VisitorDayKey]:
    keys: set[VisitorDayKey] = {
        (change.line.day.isoformat(), change.line.arm, change.line.visitor_id)
        for change in adjustment.changes
        if change.line.arm and change.line.visitor_id
    }
    return sorted(keys)


def adjustment_delta(
    adjustment: Adjustment, order_revenue_before: Decimal, before: Mapping[VisitorDayKey, Decimal | None]
) -> TotalsDelta | None:
    """What a refund or cancellation takes back (None when it changes nothing): revenue by channel, product and arm,
    the order from `attributed_orders` once its revenue is back to zero, each visitor-day's Σ revenue² and
    conversion from its revenue before (`adjustment_visitor_days`). Lines, purchases and units stay, as the lines do."""
    if not adjustment.changes:
        return None
    day = adjustment.changes[0].line.day.isoformat()
    figures = DayFigures(attributed_revenue=-adjustment.removed)
    if order_revenue_before > 0 >= order_revenue_before - adjustment.removed:
        figures.attributed_orders = -1
    products: dict[str, ProductFigures] = defaultdict(ProductFigures)
    for change in adjustment.changes:
        figures.add_channel(change.line.channel, -change.removed)
        products[change.line.product_id].revenue -= change.removed
    arms: dict[str, ArmFigures] = {}
    visitor_days = []
    for key in adjustment_visitor_days(adjustment):
        removed = sum(
            (
                line_change.removed
                for line_change in adjustment.changes
                if (line_change.line.day.isoformat(), line_change.line.arm, line_change.line.visitor_id) == key
            ),
            Decimal(0),
        )
        arms[key[1]], visitor_day = _arm_change(key, before.get(key), -removed)
        visitor_days.append(visitor_day)
    return TotalsDelta(day, figures, arms, dict(products), visitor_days)


# ---------------------------------------------------------------- from the lines themselves
class LineRow(Protocol):
    """An attribution line as the report used to read it (`reclift.data.store.AttributionRow`)."""

    @property
    def order_id(self) -> str: ...
    @property
    def product_id(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def revenue(self) -> Decimal: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def currency(self) -> str: ...
    @property
    def arm(self) -> str | None: ...
    @property
    def visitor_id(self) -> str | None: ...


@dataclass
class LineTotals:
    """Totals computed from the lines: per day, per (day, arm), per (day, product), and each visitor-day's revenue."""

    days: dict[str, DayFigures] = field(default_factory=lambda: defaultdict(DayFigures))
    arms: dict[tuple[str, str], ArmFigures] = field(default_factory=lambda: defaultdict(ArmFigures))
    day_products: dict[tuple[str, str], ProductFigures] = field(default_factory=lambda: defaultdict(ProductFigures))
    visitor_days: dict[VisitorDayKey, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def report_totals(self) -> RoiTotals:
        totals = RoiTotals()
        for day, figures in self.days.items():
            totals.days[day].add(figures)
        for key, arm in self.arms.items():
            totals.arms[key].add(arm)
        for (_, product), product_figures in self.day_products.items():
            totals.products[product].add(product_figures)
        return totals


def totals_from_lines(rows: Iterable[LineRow], orders: Mapping[str, tuple[int, int]] | None = None) -> LineTotals:
    """The totals the lines add up to (what the report computed from them before the totals were kept); `orders`
    gives each day's (orders, test orders), which the lines do not carry."""
    totals = LineTotals()
    order_revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        day = row.created_at.date().isoformat()
        figures = totals.days[day]
        figures.attributed_revenue += row.revenue
        figures.attributed_lines += 1
        figures.add_channel(row.channel, row.revenue)
        figures.currency = figures.currency or row.currency or None
        order_revenue[(day, row.order_id)] += row.revenue
        totals.day_products[(day, row.product_id)].add(ProductFigures(1, row.quantity, row.revenue))
        if row.arm and row.visitor_id:
            totals.visitor_days[(day, row.arm, row.visitor_id)] += row.revenue
    for (day, _), revenue in order_revenue.items():
        totals.days[day].attributed_orders += int(revenue > 0)
    for (day, arm, _), revenue in totals.visitor_days.items():
        totals.arms[(day, arm)].add(ArmFigures(revenue, revenue * revenue, int(revenue > 0)))
    for day, (placed, tests) in (orders or {}).items():
        totals.days[day].orders += placed
        totals.days[day].test_orders += tests
    return totals
