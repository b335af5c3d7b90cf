"""The learning benchmark's generated shop measures the cases it names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

from benchmarks.learning_job import TODAY, GeneratedShop
from benchmarks.memory_store import MemoryStore

from reclift.learning import CounterDay, PairDay
from reclift.logic.learning import LearnShop, learn_shop
from reclift.settings import ShopSettings


class CountingReads(GeneratedShop):
    """The generated shop, counting the windows the job reads."""

    def __init__(self, products: int, *, clicks_from: date | None = None) -> None:
        super().__init__(products, clicks_from=clicks_from)
        self.reads: list[tuple[date, date]] = []

    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
        self.reads.append((first_day, last_day))
        return super().counter_days(shop, first_day, last_day)


def test_given_clicks_from_a_day_then_the_pages_count_clicks_from_it_and_every_other_count_is_the_same() -> None:
    since = TODAY - timedelta(days=3)
    counted = GeneratedShop(40, clicks_from=since)
    always = GeneratedShop(40)

    for day in (since - timedelta(days=1), since, TODAY):
        mine, theirs = list(counted.day_rows(day)), list(always.day_rows(day))
        pairs = [row for row in theirs if isinstance(row, PairDay)]
        assert pairs
        assert any(row.clicks for row in pairs)
        if day < since:
            assert mine == [replace(row, clicks=0) if isinstance(row, PairDay) else row for row in theirs]
        else:
            assert mine == theirs


def test_given_clicks_counted_from_the_windows_second_day_then_context_reads_those_days_again() -> None:
    window_first_day = TODAY - timedelta(days=ShopSettings().learning_window_days - 1)
    settings = MemoryStore()
    settings.put_settings("bench", ShopSettings.model_validate({"policy": "context"}))
    first_month = CountingReads(60, clicks_from=window_first_day + timedelta(days=1))
    counting_all_along = CountingReads(60)

    learn_shop(LearnShop(shop="bench", day=TODAY), first_month, settings)
    learn_shop(LearnShop(shop="bench", day=TODAY), counting_all_along, settings)

    assert first_month.reads == [(window_first_day, TODAY), (window_first_day + timedelta(days=1), TODAY)]
    assert counting_all_along.reads == [(window_first_day, TODAY)]
