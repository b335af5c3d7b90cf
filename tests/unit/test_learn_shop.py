"""The nightly use case's reading of a shop's counter days: summed as they stream in, never held, and the same sums
as the rows' own."""

from __future__ import annotations

import random
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from benchmarks.memory_store import MemoryStore

from reclift.context import Similarity, aggregate_pairs, page_similarities, with_pairs
from reclift.learning import CounterDay, PairDay, ProductDay, aggregate, product_rows
from reclift.logic.learning import LearnShop, learn_shop
from reclift.settings import ShopSettings

TODAY = date(2026, 11, 26)
PRODUCTS = [str(100 + n) for n in range(12)]


def drawn_rows(seed: int, *, clicks_from_age: int = 40) -> list[tuple[Any, ...]]:
    """Row specs over 35 days (some out of a 30-day window), some counted before exposure was (exposure None); pages
    count clicks only on days younger than `clicks_from_age`."""
    rng = random.Random(seed)
    specs: list[tuple[Any, ...]] = []
    for age in range(35):
        day = TODAY - timedelta(days=age)
        for product in PRODUCTS:
            impressions = rng.randint(0, 40)
            exposure = None if age > 20 else round(impressions * rng.uniform(0.5, 1.0), 4)
            purchases = int(rng.random() < 0.2)
            specs.append(("product", day, product, impressions, rng.randint(0, 3), purchases, exposure))
        for page in PRODUCTS[:8]:
            for product in rng.sample([p for p in PRODUCTS if p != page], 5):
                impressions = rng.randint(1, 30)
                exposure = None if age > 25 else round(impressions * rng.uniform(0.5, 1.0), 4)
                clicks = rng.randint(0, 3) if age < clicks_from_age else 0
                specs.append(("pair", day, page, product, impressions, int(rng.random() < 0.1), exposure, clicks))
    return specs


def made(spec: tuple[Any, ...]) -> CounterDay:
    if spec[0] == "product":
        _, day, product, impressions, clicks, purchases, exposure = spec
        return ProductDay(
            day, product, impressions, clicks, purchases, purchases, Decimal(purchases * 20), purchases, exposure
        )
    _, day, page, product, impressions, purchases, exposure, clicks = spec
    return PairDay(day, page, product, impressions, purchases, exposure, clicks)


class StreamedShop:
    """A learning port that makes each row as it is read and keeps only a weak reference to it: `alive_at_end`
    counts the rows still held by the reader when it asked for the row after the last; `reads` are the day ranges
    asked for."""

    def __init__(self, specs: list[tuple[Any, ...]]) -> None:
        self.specs = specs
        self.alive_at_end: list[int] = []
        self.reads: list[tuple[date, date]] = []
        self.ratios: dict[str, dict[str, float]] = {}

    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
        self.reads.append((first_day, last_day))
        refs = []
        for spec in self.specs:
            if first_day <= spec[1] <= last_day:
                row = made(spec)
                refs.append(weakref.ref(row))
                yield row
                del row
        self.alive_at_end.append(sum(ref() is not None for ref in refs))

    def page_similarities(self, shop: str, pages: Iterable[str]) -> dict[str, dict[str, Similarity]]:
        neighbours = {page: [(p, 0.2) for p in PRODUCTS if p != page][:6] for page in pages}
        return {page: page_similarities(scores, [], None, None) for page, scores in neighbours.items()}

    def save_pairs(self, shop: str, run: str, ratios: Mapping[str, Mapping[str, float]]) -> None:
        self.ratios = {page: dict(products) for page, products in ratios.items()}

    def save_run(self, *args: Any, **kwargs: Any) -> None:
        pass


def settings_store(policy: str) -> MemoryStore:
    store = MemoryStore()
    store.put_settings("shop", ShopSettings.model_validate({"policy": policy}))
    return store


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("weighed", [False, True])
def test_given_the_windows_of_the_rows_then_the_products_windows_with_their_pairs_are_the_rows_own(
    seed: int, weighed: bool
) -> None:
    """What a product's window holds when its pages' impressions are added from the pairs' windows is what it holds
    when the rows themselves are summed (`aggregate(product_rows(rows, ratio))`), with or without a page's weight."""
    rows = [made(spec) for spec in drawn_rows(seed)]
    rng = random.Random(seed)
    weights = {(page, product): rng.uniform(0.2, 2.0) for page in PRODUCTS for product in PRODUCTS}

    def ratio(page: str, product: str) -> float:
        return weights[page, product]

    products = aggregate(
        (r for r in rows if isinstance(r, ProductDay)), today=TODAY, window_days=30, half_life_days=14.0
    )
    pairs = aggregate_pairs(
        (r for r in rows if isinstance(r, PairDay)), today=TODAY, window_days=30, half_life_days=14.0
    )
    chosen = ratio if weighed else None

    summed = with_pairs(products, pairs, chosen)
    expected = aggregate(product_rows(rows, chosen), today=TODAY, window_days=30, half_life_days=14.0)

    assert summed.keys() == expected.keys()
    for product, mine in summed.items():
        for name in (f.name for f in fields(mine) if f.name != "product_id"):
            value, wanted = getattr(mine, name), getattr(expected[product], name)
            # money is summed exactly (Decimal); the rest are floats summed in another order
            expected_value = wanted if isinstance(wanted, Decimal) else pytest.approx(wanted, rel=1e-12)
            assert value == expected_value, (product, name)
    assert products == aggregate(  # left as it was
        (r for r in rows if isinstance(r, ProductDay)), today=TODAY, window_days=30, half_life_days=14.0
    )


@pytest.mark.parametrize("policy", ["context", "bayes"])
def test_given_a_shops_counter_days_when_learned_then_no_row_is_held_once_read(policy: str) -> None:
    """The nightly job sums each row into its window as the rows stream in: when the port has yielded its last row,
    the reader holds none but that one. A job that listed the rows first holds them all: 4 million rows for a
    catalogue of 10k products whose pages each show a dozen candidates a day, over 30 days, more than the function's
    memory."""
    shop = StreamedShop(drawn_rows(7))

    summary = learn_shop(LearnShop(shop="shop", day=TODAY), shop, settings_store(policy))

    assert summary["products"] == len(PRODUCTS)
    assert shop.alive_at_end
    assert all(alive <= 1 for alive in shop.alive_at_end), shop.alive_at_end
    assert (policy == "context") == bool(shop.ratios)


def test_given_pages_that_counted_clicks_from_the_window_start_then_the_days_are_read_once() -> None:
    shop = StreamedShop(drawn_rows(8))

    learn_shop(LearnShop(shop="shop", day=TODAY), shop, settings_store("context"))

    assert shop.reads == [(TODAY - timedelta(days=29), TODAY)]


def test_given_pages_that_began_counting_clicks_within_the_window_then_the_click_level_reads_those_days_again() -> None:
    """The click level learns from the days since the pages' items first counted a click: they are read again, from
    that day. What is learned does not depend on the rows' order, nor on whether the port holds them."""
    specs = drawn_rows(9, clicks_from_age=10)
    shop = StreamedShop(specs)

    learn_shop(LearnShop(shop="shop", day=TODAY), shop, settings_store("context"))

    assert shop.reads == [(TODAY - timedelta(days=29), TODAY), (TODAY - timedelta(days=9), TODAY)]
    held = ListedShop(specs)
    learn_shop(LearnShop(shop="shop", day=TODAY), held, settings_store("context"))
    assert held.ratios.keys() == shop.ratios.keys()
    for page, ratios in shop.ratios.items():
        assert ratios == pytest.approx(held.ratios[page], rel=1e-9)


class ListedShop(StreamedShop):
    """The same rows, all made before the first is read and held by the port: what the reader's sums must not depend
    on."""

    def __init__(self, specs: list[tuple[Any, ...]]) -> None:
        super().__init__(specs)
        self.rows = [made(spec) for spec in specs]
        random.Random(1).shuffle(self.rows)

    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
        self.reads.append((first_day, last_day))
        return iter([row for row in self.rows if first_day <= row.day <= last_day])
