"""Nightly learning: fan out one message per shop, then learn each shop on its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from reclift.context import (
    Clicks,
    CounterWindow,
    Similarity,
    learn_pairs,
    page_ratio,
    sum_window,
    with_pairs,
)
from reclift.data.learning import LearningPort, LearningStore
from reclift.data.store import Store
from reclift.learning import (
    Performance,
    Prior,
    ProductWindow,
    best_sellers,
    click_rates,
    learn,
    median_price,
)
from reclift.logic import jobs
from reclift.settings import ShopSettings

BEST_SELLERS = 50
NEVER_BLACKLISTED = "never blacklisted (the merchant's rule)"


class LearnShop(BaseModel):
    """One shop's learning job, as queued by the fan-out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shop: str
    day: date  # learn from the window of days ending on this day (the day just finished)


def fan_out(store: LearningStore, send: Callable[[list[str]], int], *, day: date) -> dict[str, Any]:
    """One message per known shop: ten thousand shops are ten thousand small invocations."""
    sent = jobs.fan_out(store.shops(), lambda shop: LearnShop(shop=shop, day=day), send)
    return {"day": day.isoformat(), "shops": sent}


def parse_job(body: str) -> LearnShop:
    return jobs.parse_job(body, LearnShop)


def _read_window(learning: LearningPort, job: LearnShop, settings: ShopSettings, first_day: date) -> CounterWindow:
    """The shop's counter days from `first_day` to the job's day, summed as the store pages them in."""
    return sum_window(
        learning.counter_days(job.shop, first_day, job.day),
        today=job.day,
        window_days=settings.learning_window_days,
        half_life_days=settings.half_life_days,
        recent_days=settings.explore_window_days,
    )


def _learn_products(
    windows: dict[str, ProductWindow], settings: ShopSettings, protected: set[str]
) -> tuple[dict[str, ProductWindow], list[str], Prior, dict[str, Performance]]:
    # Best sellers count every order of the window, attributed or not (a new install has sales before it has
    # attributions); the ones never shown get their prior-only performance. Products that only sold are learned
    # only if they are among the best sellers.
    sold = {product: window.sold for product, window in windows.items() if window.sold}
    sellers = best_sellers(windows, BEST_SELLERS, sold)
    shown = {product: window for product, window in windows.items() if window.impressions or window.purchases}
    windows = {
        product: shown.get(product) or windows.get(product) or ProductWindow(product_id=product)
        for product in {*shown, *sellers}
    }
    prior, performance = learn(windows, settings)
    # The merchant's never-blacklisted products keep their learned rates and confidence, never the blacklist.
    performance = {
        product: replace(result, blacklisted=False, reason=NEVER_BLACKLISTED)
        if result.blacklisted and product in protected
        else result
        for product, result in performance.items()
    }
    return windows, sellers, prior, performance


def _means(performance: Mapping[str, Performance]) -> dict[str, float]:
    return {product: result.posterior_mean for product, result in performance.items()}


def _on_average_pages(
    window: CounterWindow,
    performance: Mapping[str, Performance],
    similarities: Mapping[str, Mapping[str, Similarity]],
    clicks: Clicks | None,
) -> dict[str, ProductWindow]:
    """The products' windows with their pages' impressions, each page's weighed by what that page was learned to make
    of the product (in a spare slot off its neighbours' pages, about a third): a product's own rate is then its rate
    on an average page, learned again from these; then the pairs, against the rates so found (docs/learning.md, the
    context policy). The first pass's ratios are needed for this alone, and go with it."""
    first, ratios = learn_pairs(window.pairs, _means(performance), similarities, clicks)
    return with_pairs(window.products, window.pairs, page_ratio(first, similarities, ratios, window.pairs))


def learn_shop(job: LearnShop, learning: LearningPort, store: Store) -> dict[str, Any]:
    """Performance of every product over the shop's window of counters, under the shop's policy; best sellers
    from the same counters (`sold`: every order of the window, which each order adds to when it is recorded)."""
    settings = store.get_settings(job.shop)
    first_day = job.day - timedelta(days=settings.learning_window_days - 1)
    window = _read_window(learning, job, settings, first_day)
    protected = set(store.get_rules(job.shop).never_blacklist)
    windows, sellers, prior, performance = _learn_products(
        with_pairs(window.products, window.pairs), settings, protected
    )
    run = job.day.isoformat()
    context = None
    if settings.policy == "context":
        pairs = window.pairs
        # The click level learns from the days since the pages' items first counted a click (before, a product
        # page's clicks went to the product's counter alone): the same windows when that is their first day, else
        # those days read again.
        clicked = None
        if window.clicked_since is not None:
            clicked = (
                pairs
                if window.clicked_since == window.first_pair_day
                else _read_window(learning, job, settings, window.clicked_since).pairs
            )

        def clicks(windows: Mapping[str, ProductWindow]) -> Clicks | None:
            return None if clicked is None else Clicks(clicked, click_rates(windows, settings))

        # the pages' neighbours: one BatchGetItem per 100 pages with evidence
        similarities = learning.page_similarities(job.shop, {page for page, _ in pairs})
        windows, sellers, prior, performance = _learn_products(
            _on_average_pages(window, performance, similarities, clicks(windows)), settings, protected
        )
        context, ratios = learn_pairs(pairs, _means(performance), similarities, clicks(windows))
        learning.save_pairs(job.shop, run, ratios)
    learning.save_run(
        job.shop, run, settings.policy, prior, performance, sellers, median_price(windows.values()), context=context
    )
    return {
        "shop": job.shop,
        "run": job.day.isoformat(),
        "policy": settings.policy,
        "products": len(performance),
        "blacklisted": sum(result.blacklisted for result in performance.values()),
        "prior_mean": round(prior.mean, 6),
        "prior_strength": round(prior.strength, 1),
    }
