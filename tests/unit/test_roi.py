"""The merchant's ROI report: the date range it covers and the sums it shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.attribution import Channel
from reclift.data.store import AttributionRow, ShopDayTotals
from reclift.logic.roi import (
    DEFAULT_RANGE_DAYS,
    MAX_RANGE_DAYS,
    ReportRange,
    ReportRangeError,
    report_range,
    roi_report,
)
from reclift.roi_totals import RoiTotals, totals_from_lines

TODAY = date(2025, 4, 30)
SHOP = "demo-shop.myshopify.com"
NANO = "632910392"
TOUCH = "921728736"
SHUFFLE = "1111111111"


def range_error(raw_from: str | None, raw_to: str | None) -> ReportRangeError:
    with pytest.raises(ReportRangeError) as exc_info:
        report_range(raw_from, raw_to, today=TODAY)
    return exc_info.value


# --- report_range -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw_from", "raw_to"), [(None, None), ("", ""), (None, ""), ("", None)])
def test_given_no_dates_when_ranged_then_it_is_the_last_30_days_to_today(
    raw_from: str | None, raw_to: str | None
) -> None:
    period = report_range(raw_from, raw_to, today=TODAY)
    assert period == ReportRange(first=date(2025, 4, 1), last=TODAY)
    assert (period.last - period.first).days + 1 == DEFAULT_RANGE_DAYS


def test_given_only_to_when_ranged_then_it_is_the_30_days_ending_there() -> None:
    assert report_range(None, "2025-03-10", today=TODAY) == ReportRange(first=date(2025, 2, 9), last=date(2025, 3, 10))


def test_given_only_from_when_ranged_then_it_runs_to_today() -> None:
    assert report_range("2025-01-01", None, today=TODAY) == ReportRange(first=date(2025, 1, 1), last=TODAY)


def test_given_from_equal_to_to_when_ranged_then_it_is_one_day() -> None:
    assert report_range("2025-04-02", "2025-04-02", today=TODAY) == ReportRange(date(2025, 4, 2), date(2025, 4, 2))


def test_given_exactly_366_days_when_ranged_then_it_is_accepted() -> None:
    period = report_range("2024-01-01", "2024-12-31", today=TODAY)  # 2024 is a leap year: 366 days
    assert (period.last - period.first).days + 1 == MAX_RANGE_DAYS


def test_given_367_days_when_ranged_then_from_is_named() -> None:
    error = range_error("2023-12-31", "2024-12-31")
    assert error.field == "from"
    assert "at most 366 days" in error.message


def test_given_from_after_to_when_ranged_then_from_is_named() -> None:
    error = range_error("2025-04-03", "2025-04-02")
    assert (error.field, error.message) == ("from", "must not be after 'to'")


def test_given_from_after_today_without_to_when_ranged_then_it_is_refused() -> None:
    assert range_error("2025-05-01", None).field == "from"


@pytest.mark.parametrize(
    ("raw_from", "raw_to", "field"),
    [
        ("2025-02-30", None, "from"),
        ("yesterday", None, "from"),
        ("2025/04/01", None, "from"),
        ("01-04-2025", None, "from"),
        (None, "2025-13-01", "to"),
        (None, "2025-04-31", "to"),
        ("2025-04-01", "not-a-date", "to"),
    ],
)
def test_given_a_bad_date_when_ranged_then_the_field_is_named(
    raw_from: str | None, raw_to: str | None, field: str
) -> None:
    error = range_error(raw_from, raw_to)
    assert error.field == field
    assert "expected a date as YYYY-MM-DD" in error.message
    assert str(error).startswith(f"{field}: ")


@given(
    first=st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31)),
    length=st.integers(min_value=-5, max_value=400),
)
def test_given_any_from_and_to_when_ranged_then_only_forward_ranges_up_to_366_days_pass(
    first: date, length: int
) -> None:
    last = first + timedelta(days=length - 1)
    if 1 <= length <= MAX_RANGE_DAYS:
        assert report_range(first.isoformat(), last.isoformat(), today=TODAY) == ReportRange(first, last)
    else:
        assert range_error(first.isoformat(), last.isoformat()).field == "from"


# --- roi_report ---------------------------------------------------------------------------------------------------


def row(
    order: str,
    line: str,
    product: str,
    revenue: str,
    *,
    day: int = 2,
    quantity: int = 1,
    channel: Channel = Channel.CLICK_THROUGH,
    currency: str = "USD",
) -> AttributionRow:
    return AttributionRow(
        order_id=order,
        line_id=line,
        product_id=product,
        quantity=quantity,
        revenue=Decimal(revenue),
        channel=channel,
        created_at=datetime(2025, 4, day, 23, 59, 59, tzinfo=UTC),
        currency=currency,
    )


def totals_of(rows: list[AttributionRow], days: list[ShopDayTotals]) -> RoiTotals:
    """The day totals recording these lines (and the days' orders) leaves."""
    orders = {day.day: (day.orders, day.test_orders) for day in days}
    return totals_from_lines(rows, orders).report_totals()


APRIL_1_TO_5 = ReportRange(first=date(2025, 4, 1), last=date(2025, 4, 5))
ROWS = [
    row("450789469", "466157049", NANO, "195.66", day=2),
    row("450789469", "518995019", NANO, "195.67", day=2, channel=Channel.VIEW_THROUGH),
    row("1073459966", "1071823177", TOUCH, "199.00", day=4, quantity=2),
    row("1073459967", "1071823178", SHUFFLE, "0.00", day=4),  # fully refunded: no longer counts as an order
    row("1073459968", "1071823179", TOUCH, "0.50", day=5, channel=Channel.VIEW_THROUGH),
]
TOTALS = [
    ShopDayTotals(day="2025-04-02", orders=3, test_orders=1),
    ShopDayTotals(day="2025-04-04", orders=5, test_orders=0),
]


def test_given_attributions_when_reported_then_the_sums_are_exact_decimal_text() -> None:
    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(ROWS, TOTALS), currency="USD")

    assert report["shop"] == SHOP
    assert (report["from"], report["to"]) == ("2025-04-01", "2025-04-05")
    assert report["currency"] == "USD"
    assert report["attributed_revenue"] == "590.83"
    assert report["click_through_revenue"] == "394.66"
    assert report["view_through_revenue"] == "196.17"
    assert report["attributed_lines"] == 5
    assert report["orders"] == 8
    assert report["test_orders"] == 1


def test_given_an_order_whose_revenue_is_back_to_zero_when_reported_then_it_is_not_an_attributed_order() -> None:
    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(ROWS, TOTALS), currency="USD")
    assert report["attributed_orders"] == 3  # 450789469, 1073459966, 1073459968; not the refunded 1073459967


def test_given_an_order_with_lines_on_two_rows_when_reported_then_it_counts_once() -> None:
    rows = [row("1", "a", NANO, "1.00"), row("1", "b", TOUCH, "2.00")]
    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, []), currency=None)
    assert (report["attributed_orders"], report["attributed_lines"]) == (1, 2)


def test_given_products_when_reported_then_by_product_is_by_revenue_then_product_id() -> None:
    rows = [*ROWS, row("9", "x", SHUFFLE, "199.00", day=3)]

    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, TOTALS), currency="USD")

    assert report["by_product"] == [
        {"product_id": NANO, "purchases": 2, "units": 2, "revenue": "391.33"},
        {"product_id": TOUCH, "purchases": 2, "units": 3, "revenue": "199.50"},
        {"product_id": SHUFFLE, "purchases": 2, "units": 2, "revenue": "199.00"},
    ]


def test_given_two_products_with_equal_revenue_when_reported_then_the_lower_product_id_comes_first() -> None:
    rows = [row("1", "a", "200", "5.00"), row("2", "b", "100", "5.00"), row("3", "c", "300", "5.01")]
    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, []), currency="USD")
    assert [item["product_id"] for item in report["by_product"]] == ["300", "100", "200"]


def test_given_a_range_when_reported_then_the_daily_series_covers_every_day_even_empty_ones() -> None:
    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(ROWS, TOTALS), currency="USD")

    columns = ("date", "attributed_revenue", "attributed_orders", "orders")
    assert [{key: day[key] for key in columns} for day in report["daily"]] == [
        {"date": "2025-04-01", "attributed_revenue": "0.00", "attributed_orders": 0, "orders": 0},
        {"date": "2025-04-02", "attributed_revenue": "391.33", "attributed_orders": 1, "orders": 3},
        {"date": "2025-04-03", "attributed_revenue": "0.00", "attributed_orders": 0, "orders": 0},
        {"date": "2025-04-04", "attributed_revenue": "199.00", "attributed_orders": 1, "orders": 5},
        {"date": "2025-04-05", "attributed_revenue": "0.50", "attributed_orders": 1, "orders": 0},
    ]


def test_given_both_arms_on_a_day_when_reported_then_that_day_has_its_revenue_per_visitor_lift() -> None:
    """Learning: 30.00 over 10 visitors (3.00 each); holdout: 4.00 over 2 visitors (2.00 each) → +50 %."""
    rows = [
        replace(row("o1", "1", "p1", "30.00", day=2), arm="learning", visitor_id="v1"),
        replace(row("o2", "2", "p1", "4.00", day=2), arm="holdout", visitor_id="v2"),
        replace(row("o3", "3", "p1", "5.00", day=3), arm="learning", visitor_id="v3"),
    ]
    by_day = {"2025-04-02": {"learning": 10, "holdout": 2}, "2025-04-03": {"learning": 4}}

    daily = roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, []), currency="USD", daily_arm_visitors=by_day)["daily"]

    assert daily[1]["lift"] == pytest.approx(0.5)
    assert daily[1]["visitors"] == {"learning": 10, "holdout": 2}
    assert daily[2]["lift"] is None  # no holdout visitor that day
    assert daily[0]["lift"] is None  # nobody at all


def test_given_a_visitor_buying_on_two_days_when_the_lift_is_reported_then_each_visitor_day_is_a_unit() -> None:
    """Arms' visitors are counted per day (visitor-days, summed over the range), so revenue is taken per visitor and
    day: v1 buying on two days is two converting units of 30.00 and 10.00, not one of 40.00."""
    rows = [
        replace(row("o1", "1", "p1", "30.00", day=2), arm="learning", visitor_id="v1"),
        replace(row("o2", "2", "p1", "10.00", day=4), arm="learning", visitor_id="v1"),
        replace(row("o3", "3", "p1", "4.00", day=4), arm="holdout", visitor_id="v2"),
    ]

    lift = roi_report(
        SHOP, APRIL_1_TO_5, totals_of(rows, []), currency="USD", arm_visitors={"learning": 8, "holdout": 2}
    )["lift"]

    assert lift["converting_visitors"] == {"learning": 2, "holdout": 1}
    assert lift["revenue_per_visitor"]["learning"] == pytest.approx(40 / 8)
    assert lift["conversion_rate"]["learning"] == pytest.approx(2 / 8)


def test_given_nothing_attributed_when_reported_then_zeros_and_no_currency_unless_given() -> None:
    report = roi_report(SHOP, APRIL_1_TO_5, totals_of([], []), currency=None)

    assert report["currency"] is None
    assert (report["attributed_revenue"], report["click_through_revenue"], report["view_through_revenue"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
    assert (report["attributed_orders"], report["attributed_lines"], report["orders"]) == (0, 0, 0)
    assert report["by_product"] == []
    assert len(report["daily"]) == 5


def test_given_no_shop_currency_when_reported_then_the_rows_currency_is_used() -> None:
    rows = [row("1", "a", NANO, "1", currency="EUR")]
    assert roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, []), currency=None)["currency"] == "EUR"
    assert roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, []), currency="CAD")["currency"] == "CAD"


def test_given_a_year_long_range_when_reported_then_there_is_one_daily_entry_per_day() -> None:
    period = report_range("2024-01-01", "2024-12-31", today=TODAY)
    daily = roi_report(SHOP, period, totals_of([], []), currency="USD")["daily"]
    assert len(daily) == 366
    assert (daily[0]["date"], daily[59]["date"], daily[-1]["date"]) == ("2024-01-01", "2024-02-29", "2024-12-31")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["o1", "o2", "o3", "o4"]),
            st.sampled_from([NANO, TOUCH, SHUFFLE]),
            st.integers(0, 100_000).map(lambda cents: Decimal(cents).scaleb(-2)),
            st.sampled_from(list(Channel)),
            st.integers(1, 5),
        ),
        max_size=20,
    )
)
def test_given_any_rows_in_range_when_reported_then_totals_channels_products_and_days_agree(
    raw_rows: list[tuple[str, str, Decimal, Channel, int]],
) -> None:
    order_days: dict[str, int] = {}  # an order's lines share its day: the first line's
    rows = [
        row(order, f"line-{index}", product, str(revenue), day=order_days.setdefault(order, day), channel=channel)
        for index, (order, product, revenue, channel, day) in enumerate(raw_rows)
    ]

    report = roi_report(SHOP, APRIL_1_TO_5, totals_of(rows, []), currency="USD")

    total = sum((r.revenue for r in rows), Decimal(0))
    assert Decimal(report["attributed_revenue"]) == total
    assert Decimal(report["click_through_revenue"]) + Decimal(report["view_through_revenue"]) == total
    assert sum(Decimal(item["revenue"]) for item in report["by_product"]) == total
    assert sum(Decimal(day["attributed_revenue"]) for day in report["daily"]) == total
    by_order: dict[str, Decimal] = {}
    for r in rows:
        by_order[r.order_id] = by_order.get(r.order_id, Decimal(0)) + r.revenue
    assert report["attributed_orders"] == sum(1 for revenue in by_order.values() if revenue > 0)
    revenues = [Decimal(item["revenue"]) for item in report["by_product"]]
    assert revenues == sorted(revenues, reverse=True)
