"""The merchant's ROI report: revenue the recommendations earned, by channel, product and day."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from reclift.lift import Sums, lift_from_sums
from reclift.money import money_text
from reclift.roi_totals import ARMS, ArmFigures, DayFigures, RoiTotals
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
    totals: RoiTotals,
    *,
    currency: str | None,
    arm_visitors: dict[str, int] | None = None,
    daily_arm_visitors: dict[str, dict[str, int]] | None = None,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
) -> dict[str, Any]:
    """The report's JSON, from the range's day totals (`reclift.roi_totals`). An order counts in `attributed_orders`
    while its attributed revenue is above zero; each day's `lift` is that day's revenue per visitor of the learning
    arm relative to the holdout's (null while either arm has no visitor or the holdout no revenue that day).

    The lift's unit is the visitor-day: `arm_visitors` counts each day's distinct visitors of an arm (what tracking
    can count at a constant cost per request), so revenue is summed per visitor and day of the order; a visitor who
    buys on two days is two units, as they are two of the visitors counted. Each arm's `Sums` is the sum of its
    days' totals."""
    days = [period.first + timedelta(days=n) for n in range((period.last - period.first).days + 1)]
    in_range = [totals.days[day.isoformat()] for day in days if day.isoformat() in totals.days]
    daily = []
    for day in days:
        key = day.isoformat()
        figures = totals.days.get(key, DayFigures())
        daily.append(
            {
                "date": key,
                "attributed_revenue": money_text(figures.attributed_revenue),
                "attributed_orders": figures.attributed_orders,
                "orders": figures.orders,
                **_day_lift(key, (daily_arm_visitors or {}).get(key, {}), totals.arms),
            }
        )
    ranked = sorted(totals.products.items(), key=lambda item: (-item[1].revenue, item[0]))
    in_days = {day.isoformat() for day in days}
    arm_days = [(arm, figures) for (day, arm), figures in totals.arms.items() if day in in_days]
    sums = {
        arm: Sums(
            visitors=(arm_visitors or {}).get(arm, 0),
            converting=sum(figures.converting for name, figures in arm_days if name == arm),
            total=float(sum((figures.revenue for name, figures in arm_days if name == arm), Decimal(0))),
            squares=float(sum((figures.squares for name, figures in arm_days if name == arm), Decimal(0))),
        )
        for arm in ARMS
    }
    return {
        "shop": shop,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "currency": currency or next((figures.currency for figures in in_range if figures.currency), None),
        "attributed_revenue": money_text(sum((f.attributed_revenue for f in in_range), Decimal(0))),
        "attributed_orders": sum(f.attributed_orders for f in in_range),
        "attributed_lines": sum(f.attributed_lines for f in in_range),
        "click_through_revenue": money_text(sum((f.click_through_revenue for f in in_range), Decimal(0))),
        "view_through_revenue": money_text(sum((f.view_through_revenue for f in in_range), Decimal(0))),
        "orders": sum(f.orders for f in in_range),
        "test_orders": sum(f.test_orders for f in in_range),
        "by_product": [
            {
                "product_id": product,
                "purchases": figures.purchases,
                "units": figures.units,
                "revenue": money_text(figures.revenue),
            }
            for product, figures in ranked
        ],
        "daily": daily,
        "lift": lift_from_sums(sums["learning"], sums["holdout"], holdout_share),
    }


def _day_lift(day: str, visitors: dict[str, int], arms: Mapping[tuple[str, str], ArmFigures]) -> dict[str, Any]:
    per_visitor = {
        arm: float(arms[(day, arm)].revenue if (day, arm) in arms else 0) / visitors[arm] if visitors.get(arm) else None
        for arm in ARMS
    }
    learning, holdout = per_visitor["learning"], per_visitor["holdout"]
    return {
        "visitors": {arm: visitors.get(arm, 0) for arm in ("learning", "holdout")},
        "lift": round(learning / holdout - 1, 6) if learning is not None and holdout else None,
    }
