"""The one-time backfill of the ROI's day totals (`reclift.data.day_totals`) for days recorded before they were kept:
`python -m reclift.data.roi_backfill SHOP FROM TO`, with the functions' table variables (and AWS credentials) set.

It rebuilds every month the range touches, whole (a month's `m#` items sum all its days), from the month's attribution
lines (the `by_shop_date_v2` index) and the shop's day counters (orders, test orders), a month at a time, and replaces
what the month's totals held. Run it while no order or refund of those days is being recorded: one landing between
the read and the write would be missed. No function imports this module: only an operator runs it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from reclift.data.day_totals import DayTotalsStore
from reclift.data.store import dynamo_store, shop_day_totals
from reclift.roi_totals import totals_from_lines


def shop_counter_orders(shop: str, days: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Each day's (orders, test orders) from the shop's day counters (`_shop`), which the rebuild copies."""
    return {total.day: (total.orders, total.test_orders) for total in shop_day_totals(shop, days)}


def rebuild_months(shop: str, first_day: date, last_day: date) -> dict[str, int]:
    """Rebuild the totals of every month the range touches from its lines; returns the items written per month."""
    store, totals = dynamo_store(), DayTotalsStore()
    written: dict[str, int] = {}
    start = first_day.replace(day=1)
    while start <= last_day:
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
        lines = totals_from_lines(store.attributions(shop, start, end), shop_counter_orders(shop, days))
        written[start.isoformat()[:7]] = totals.rebuild(shop, lines)
        start = end + timedelta(days=1)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """The command (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=rebuild_months.__doc__)
    parser.add_argument("shop")
    parser.add_argument("first", type=date.fromisoformat)
    parser.add_argument("last", type=date.fromisoformat)
    args = parser.parse_args(argv)
    for month, items in rebuild_months(args.shop, args.first, args.last).items():
        print(f"{month}: {items} items")


if __name__ == "__main__":
    main()
