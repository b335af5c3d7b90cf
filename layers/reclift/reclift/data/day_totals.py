"""The ROI's day totals in the counters table (`reclift.roi_totals`): written inside an order's (or an adjustment's)
own transaction, so they are exactly-once as its lines are, and read a month per Query.

Keys. A month's day totals share one partition, `{shop}#roi#{YYYY-MM}`:
- `d#{day}` — the day's orders and attributed figures;
- `d#{day}#a#{arm}` — the arm's visitor-day sums of the day.
Its products are spread over PRODUCT_PARTS partitions, `{shop}#roi#{YYYY-MM}#p{n}` (n from the product id), so that
on a Black Friday (100 orders a second, each buying recommended products) no partition key takes more than a few
hundred write units a second:
- `m#{product}` — a product's lines, units and revenue over the month;
- `p#{day}#{product}` — the same for one day, read only for the days of a month the range covers in part.
A month is read with one Query of its days (all of them, or the range's) and one per product part (its `m#` items
where the range covers the whole month, else the range's `p#` items): 9 queries a month, at most 117 for a year, each
item small, whatever the number of orders.

A visitor-day's attributed revenue in an arm, which the next change of it needs (Σ revenue² and conversion), is kept
in the partition of the day's order totals (`{shop}#{day}#o`, sk `_roiv#{arm}#{digest of the visitor id}`) for as
long as the totals, so a refund within their life still finds it; the shop's erasure removes it with the day. Its
write carries the condition that it still holds the revenue read before, so two orders of one visitor-day cannot
both add to Σ revenue² from the same value; the order retries from a fresh read.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.models import Model

from reclift import config
from reclift.data.models import DecimalAttribute, bind_tables, region
from reclift.roi_totals import (
    ArmFigures,
    DayFigures,
    LineTotals,
    ProductFigures,
    RoiTotals,
    TotalsDelta,
    VisitorDayChange,
    VisitorDayKey,
)

ROI_PARTITION = "roi"
PRODUCT_PARTS = 8
VISITOR_DAY = "_roiv#"
DAY, MONTH_PRODUCT, DAY_PRODUCT, ARM = "d#", "m#", "p#", "#a#"
RETENTION_DAYS = 400  # as the counters (reclift.data.store.COUNTER_RETENTION_DAYS)


class DayTotalItem(Model):
    """An item of a month's ROI totals (see the module's keys), or a visitor-day's revenue. Short attribute names:
    a year of a large shop's totals is read in one report."""

    class Meta:
        table_name = "COUNTERS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    orders = NumberAttribute(null=True, attr_name="o")
    test_orders = NumberAttribute(null=True, attr_name="t")
    revenue = DecimalAttribute(null=True, attr_name="r")  # attributed revenue (a day, an arm, a product)
    attributed_orders = NumberAttribute(null=True, attr_name="ao")
    lines = NumberAttribute(null=True, attr_name="n")  # attributed lines (a day, a product: its purchases)
    click_through = DecimalAttribute(null=True, attr_name="ct")
    view_through = DecimalAttribute(null=True, attr_name="vt")
    currency = UnicodeAttribute(null=True, attr_name="cur")
    squares = DecimalAttribute(null=True, attr_name="q")  # an arm: Σ visitor-day revenue²
    converting = NumberAttribute(null=True, attr_name="c")  # an arm: visitor-days with revenue above zero
    units = NumberAttribute(null=True, attr_name="u")
    visitor_revenue = DecimalAttribute(null=True, attr_name="vr")  # a visitor-day's revenue in an arm
    expires_at = TTLAttribute(null=True)


_bound_to: object = None


def bind() -> None:
    """Point the model at the counters table named by the environment; again (with a new connection) only once the
    configuration was read afresh (`reclift.data.models.reset_bindings`)."""
    tables = config.tables()
    global _bound_to
    if _bound_to is not tables:
        meta: Any = DayTotalItem.Meta
        meta.table_name, meta.region = tables.counters, region()
        DayTotalItem._connection = None
        _bound_to = tables


def _failed(what: str, exc: PynamoDBException) -> Exception:
    from reclift.data.store import StoreError  # the store writes these totals in its transactions

    return StoreError(f"{what} failed: {exc.msg}")


# ---------------------------------------------------------------- keys
def month_key(shop: str, day: date | str) -> str:
    """The partition of the month's day totals."""
    return f"{shop}#{ROI_PARTITION}#{str(day)[:7]}"


def product_part(shop: str, day: date | str, product: str) -> str:
    """The partition of the month's totals of `product`."""
    return f"{month_key(shop, day)}#p{zlib.crc32(product.encode()) % PRODUCT_PARTS}"


def month_partitions(shop: str, day: date | str) -> list[str]:
    """Every partition of the month's totals (what the shop's erasure deletes)."""
    return [month_key(shop, day), *(f"{month_key(shop, day)}#p{n}" for n in range(PRODUCT_PARTS))]


def visitor_day_item(shop: str, key: VisitorDayKey) -> DayTotalItem:
    """A visitor-day's revenue in an arm: in the partition of the day's order totals, which the order's transaction
    writes anyway (and the shop's erasure deletes), under a digest of the visitor id."""
    from reclift.data.store import orders_day_key  # the store writes these totals in its transactions

    day, arm, visitor = key
    digest = hashlib.sha256(visitor.encode()).hexdigest()[:32]
    return DayTotalItem(orders_day_key(shop, day), f"{VISITOR_DAY}{arm}#{digest}")


def months(first: date, last: date) -> Iterator[tuple[date, date, bool]]:
    """Each month the range touches: its first and last day within the range, and whether it is whole."""
    start = first.replace(day=1)
    while start <= last:
        following = (start + timedelta(days=32)).replace(day=1)
        low, high = max(first, start), min(last, following - timedelta(days=1))
        yield low, high, low == start and high == following - timedelta(days=1)
        start = following


# ---------------------------------------------------------------- writes inside the order's transaction
def _expires() -> datetime:
    return datetime.now(UTC) + timedelta(days=RETENTION_DAYS)


def visitor_days_before(shop: str, keys: Iterable[VisitorDayKey]) -> dict[VisitorDayKey, Decimal | None]:
    """Each visitor-day's revenue as stored (None where there is none), read strongly consistent."""
    bind()
    found: dict[VisitorDayKey, Decimal | None] = {}
    for key in keys:
        item = visitor_day_item(shop, key)
        try:
            found[key] = DayTotalItem.get(item.pk, item.sk, consistent_read=True).visitor_revenue or Decimal(0)
        except DoesNotExist:
            found[key] = None
        except PynamoDBException as exc:
            raise _failed("reading a visitor-day's revenue", exc) from exc
    return found


def _adds(pairs: Iterable[tuple[Any, Any]]) -> list[Any]:
    return [attribute.add(value) for attribute, value in pairs if value]


def product_updates(shop: str, day: str, products: Mapping[str, ProductFigures]) -> list[tuple[Model, list[Any]]]:
    """A chunk's products: their day's and their month's item."""
    bind()
    expires = _expires()
    updates: list[tuple[Model, list[Any]]] = []
    for product, figures in sorted(products.items()):
        actions = _adds(
            (
                (DayTotalItem.lines, figures.purchases),
                (DayTotalItem.units, figures.units),
                (DayTotalItem.revenue, figures.revenue),
            )
        )
        if actions:
            for sk in (f"{DAY_PRODUCT}{day}#{product}", f"{MONTH_PRODUCT}{product}"):
                updates.append(
                    (
                        DayTotalItem(product_part(shop, day, product), sk),
                        [*actions, DayTotalItem.expires_at.set(expires)],
                    )
                )
    return updates


def day_updates(shop: str, delta: TotalsDelta) -> list[tuple[Model, list[Any]]]:
    """The day's item and its arms' items (an order's first chunk, or an adjustment's)."""
    bind()
    expires = _expires()
    figures = delta.figures
    actions = _adds(
        (
            (DayTotalItem.orders, figures.orders),
            (DayTotalItem.test_orders, figures.test_orders),
            (DayTotalItem.revenue, figures.attributed_revenue),
            (DayTotalItem.attributed_orders, figures.attributed_orders),
            (DayTotalItem.lines, figures.attributed_lines),
            (DayTotalItem.click_through, figures.click_through_revenue),
            (DayTotalItem.view_through, figures.view_through_revenue),
        )
    )
    if figures.currency:
        actions.append(DayTotalItem.currency.set(figures.currency))
    pk = month_key(shop, delta.day)
    updates: list[tuple[Model, list[Any]]] = [
        (DayTotalItem(pk, f"{DAY}{delta.day}"), [*actions, DayTotalItem.expires_at.set(expires)])
    ]
    for arm, arm_figures in sorted(delta.arms.items()):
        arm_actions = _adds(
            (
                (DayTotalItem.revenue, arm_figures.revenue),
                (DayTotalItem.squares, arm_figures.squares),
                (DayTotalItem.converting, arm_figures.converting),
            )
        )
        if arm_actions:
            sk = f"{DAY}{delta.day}{ARM}{arm}"
            updates.append((DayTotalItem(pk, sk), [*arm_actions, DayTotalItem.expires_at.set(expires)]))
    return updates


def visitor_day_updates(shop: str, changes: Sequence[VisitorDayChange]) -> list[tuple[Model, list[Any], Any]]:
    """Each visitor-day's new revenue, on the condition that it still holds what was read (absent: still absent)."""
    bind()
    expires = _expires()
    updates: list[tuple[Model, list[Any], Any]] = []
    for change in changes:
        item = visitor_day_item(shop, (change.day, change.arm, change.visitor_id))
        condition = (
            DayTotalItem.sk.does_not_exist() if change.before is None else DayTotalItem.visitor_revenue == change.before
        )
        actions = [DayTotalItem.visitor_revenue.set(change.after), DayTotalItem.expires_at.set(expires)]
        updates.append((item, actions, condition))
    return updates


# ---------------------------------------------------------------- reading
class DayTotalsStore:
    """The ROI's day totals of a shop."""

    def __init__(self) -> None:
        bind_tables()
        bind()

    def totals(self, shop: str, first_day: date, last_day: date) -> RoiTotals:
        """The range's totals: per day, per day and arm, per product over the range (a month's `m#` items where the
        range covers the month, its days' `p#` items where it covers part of it); 9 queries a month."""
        totals = RoiTotals()
        try:
            for low, high, whole in months(first_day, last_day):
                days = DayTotalItem.sk.between(f"{DAY}{low}", f"{DAY}{high}~")
                products = (
                    DayTotalItem.sk.startswith(MONTH_PRODUCT)
                    if whole
                    else DayTotalItem.sk.between(f"{DAY_PRODUCT}{low}", f"{DAY_PRODUCT}{high}~")
                )
                partitions = month_partitions(shop, low)
                for item in DayTotalItem.query(partitions[0], days):
                    _add_item(totals, item)
                for partition in partitions[1:]:
                    for item in DayTotalItem.query(partition, products):
                        _add_item(totals, item)
        except PynamoDBException as exc:
            raise _failed("reading the ROI's day totals", exc) from exc
        return totals

    def rebuild(self, shop: str, lines: LineTotals) -> int:
        """Write the totals `lines` add up to (`totals_from_lines` over the days' attribution lines and shop
        counters), replacing what the days held: for days recorded before the totals were kept. Run it while no
        order or refund of those days is being recorded (one may land between the read and this write). Returns
        the items written."""
        expires = _expires()
        items: list[DayTotalItem] = []
        for day, figures in lines.days.items():
            items.append(_day_item(month_key(shop, day), f"{DAY}{day}", figures, expires))
        for (day, arm), arm_figures in lines.arms.items():
            items.append(
                DayTotalItem(
                    month_key(shop, day),
                    f"{DAY}{day}{ARM}{arm}",
                    revenue=arm_figures.revenue,
                    squares=arm_figures.squares,
                    converting=arm_figures.converting,
                    expires_at=expires,
                )
            )
        by_month: dict[tuple[str, str], ProductFigures] = {}
        for (day, product), product_figures in lines.day_products.items():
            items.append(
                _product_item(
                    product_part(shop, day, product), f"{DAY_PRODUCT}{day}#{product}", product_figures, expires
                )
            )
            by_month.setdefault((day[:7], product), ProductFigures()).add(product_figures)
        for (month, product), product_figures in by_month.items():
            items.append(
                _product_item(product_part(shop, month, product), f"{MONTH_PRODUCT}{product}", product_figures, expires)
            )
        for key, revenue in lines.visitor_days.items():
            item = visitor_day_item(shop, key)
            item.visitor_revenue, item.expires_at = revenue, expires
            items.append(item)
        try:
            with DayTotalItem.batch_write() as batch:
                for item in items:
                    batch.save(item)
        except PynamoDBException as exc:
            raise _failed("writing the ROI's day totals", exc) from exc
        return len(items)


def _day_item(pk: str, sk: str, figures: DayFigures, expires: datetime) -> DayTotalItem:
    return DayTotalItem(
        pk,
        sk,
        orders=figures.orders,
        test_orders=figures.test_orders,
        revenue=figures.attributed_revenue,
        attributed_orders=figures.attributed_orders,
        lines=figures.attributed_lines,
        click_through=figures.click_through_revenue,
        view_through=figures.view_through_revenue,
        currency=figures.currency,
        expires_at=expires,
    )


def _product_item(pk: str, sk: str, figures: ProductFigures, expires: datetime) -> DayTotalItem:
    return DayTotalItem(
        pk, sk, lines=figures.purchases, units=figures.units, revenue=figures.revenue, expires_at=expires
    )


def _add_item(totals: RoiTotals, item: DayTotalItem) -> None:
    def number(value: Any) -> int:
        return int(value or 0)

    def money(value: Decimal | None) -> Decimal:
        return value if value is not None else Decimal(0)

    sk = item.sk
    if sk.startswith(DAY):
        day, _, arm = sk.removeprefix(DAY).partition(ARM)
        if arm:
            totals.arms[(day, arm)].add(ArmFigures(money(item.revenue), money(item.squares), number(item.converting)))
        else:
            totals.days[day].add(
                DayFigures(
                    orders=number(item.orders),
                    test_orders=number(item.test_orders),
                    attributed_revenue=money(item.revenue),
                    attributed_orders=number(item.attributed_orders),
                    attributed_lines=number(item.lines),
                    click_through_revenue=money(item.click_through),
                    view_through_revenue=money(item.view_through),
                    currency=item.currency,
                )
            )
    else:
        product = sk.removeprefix(MONTH_PRODUCT) if sk.startswith(MONTH_PRODUCT) else sk.rsplit("#", 1)[1]
        totals.products[product].add(ProductFigures(number(item.lines), number(item.units), money(item.revenue)))
