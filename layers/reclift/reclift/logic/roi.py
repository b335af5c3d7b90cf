"""The merchant's ROI report: revenue the recommendations earned, by channel, product and day."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from reclift.attribution import Channel
from reclift.data.store import AttributionRow, ShopDayTotals
from reclift.lift import lift_report
from reclift.money import money_text
from reclift.settings import ShopSettings

DEFAULT_RANGE_DAYS = 30
DEFAULT_HOLDOUT_SHARE = ShopSettings.model_fields["holdout_share"].default
MAX_RANGE_DAYS = 366
# Reports end a day after their last day (an exclusive bound), so the calendar's very last day is not allowed.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(9999, 12, 30)


class ReportRangeError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ReportRange:
    first: date
    last: date


def report_range(raw_from: str | None, raw_to: str | None, *, today: date) -> ReportRange:
    """`from`/`to` as inclusive YYYY-MM-DD days; the last 30 days by default."""

    def parse(field: str, raw: str | None, default: date) -> date:
        if raw is None or raw == "":
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise ReportRangeError(field, f"expected a date as YYYY-MM-DD, got {raw[:30]!r}") from exc

    def within(field: str, day: date) -> date:
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ReportRangeError(field, f"must lie between {EARLIEST_DAY} and {LATEST_DAY}")
        return day

    last = within("to", parse("to", raw_to, today))
    first = within("from", parse("from", raw_from, max(EARLIEST_DAY, last - timedelta(days=DEFAULT_RANGE_DAYS - 1))))
    if first > last:
        raise ReportRangeError("from", "must not be after 'to'")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ReportRangeError("from", f"a report covers at most {MAX_RANGE_DAYS} days")
    return ReportRange(first=first, last=last)


def roi_report(
    shop: str,
    period: ReportRange,
    rows: list[AttributionRow],
    totals: list[ShopDayTotals],
    *,
    currency: str | None,
    arm_visitors: dict[str, int] | None = None,
    daily_arm_visitors: dict[str, dict[str, int]] | None = None,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
) -> dict[str, Any]:
    """The report's JSON. An order counts in `attributed_orders` while its attributed revenue is above zero; each
    day's `lift` is that day's revenue per visitor of the learning arm relative to the holdout's (null while either
    arm has no visitor or the holdout no revenue that day)."""
    revenue_by_order: dict[str, Decimal] = defaultdict(Decimal)
    by_channel: dict[Channel, Decimal] = defaultdict(Decimal)
    products: dict[str, dict[str, Any]] = {}
    daily_revenue: dict[str, Decimal] = defaultdict(Decimal)
    daily_orders: dict[str, set[str]] = defaultdict(set)
    daily_arm_revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        revenue_by_order[row.order_id] += row.revenue
        by_channel[row.channel] += row.revenue
        product = products.setdefault(
            row.product_id, {"product_id": row.product_id, "purchases": 0, "units": 0, "revenue": Decimal(0)}
        )
        product["purchases"] += 1
        product["units"] += row.quantity
        product["revenue"] += row.revenue
        row_day = row.created_at.date().isoformat()
        daily_revenue[row_day] += row.revenue
        if row.revenue > 0:
            daily_orders[row_day].add(row.order_id)
        if row.arm and row.visitor_id:
            daily_arm_revenue[(row_day, row.arm)] += row.revenue
    orders_by_day = {total.day: total for total in totals}
    daily = []
    day = period.first
    while day <= period.last:
        key = day.isoformat()
        total = orders_by_day.get(key)
        daily.append(
            {
                "date": key,
                "attributed_revenue": money_text(daily_revenue[key]),
                "attributed_orders": len(daily_orders[key]),
                "orders": total.orders if total else 0,
                **_day_lift(key, (daily_arm_visitors or {}).get(key, {}), daily_arm_revenue),
            }
        )
        day += timedelta(days=1)
    ranked = sorted(products.values(), key=lambda item: (-item["revenue"], item["product_id"]))
    # The lift's unit is the visitor-day: `arm_visitors` counts each day's distinct visitors of an arm (what tracking
    # can count at a constant cost per request), so revenue is summed per visitor and day of the order; a visitor who
    # buys on two days is two units, as they are two of the visitors counted.
    revenue_by_visitor: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row.arm and row.visitor_id:
            revenue_by_visitor[row.arm][f"{row.visitor_id}#{row.created_at.date().isoformat()}"] += row.revenue
    return {
        "shop": shop,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "currency": currency or (rows[0].currency if rows else None),
        "attributed_revenue": money_text(sum(revenue_by_order.values(), Decimal(0))),
        "attributed_orders": sum(1 for revenue in revenue_by_order.values() if revenue > 0),
        "attributed_lines": len(rows),
        "click_through_revenue": money_text(by_channel[Channel.CLICK_THROUGH]),
        "view_through_revenue": money_text(by_channel[Channel.VIEW_THROUGH]),
        "orders": sum(total.orders for total in totals),
        "test_orders": sum(total.test_orders for total in totals),
        "by_product": [{**item, "revenue": money_text(item["revenue"])} for item in ranked],
        "daily": daily,
        "lift": lift_report(arm_visitors or {}, revenue_by_visitor, holdout_share),
    }


def _day_lift(day: str, visitors: dict[str, int], revenue: dict[tuple[str, str], Decimal]) -> dict[str, Any]:
    arms = ("learning", "holdout")
    per_visitor = {arm: float(revenue[(day, arm)]) / visitors[arm] if visitors.get(arm) else None for arm in arms}
    learning, holdout = per_visitor["learning"], per_visitor["holdout"]
    return {
        "visitors": {arm: visitors.get(arm, 0) for arm in ("learning", "holdout")},
        "lift": round(learning / holdout - 1, 6) if learning is not None and holdout else None,
    }
