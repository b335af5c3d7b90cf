"""Nightly learning: fan out one message per shop, then learn each shop on its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from reclift.context import ContextPrior, aggregate_pairs, fit_context, pair_ratios
from reclift.data.learning import LearningPort, LearningStore
from reclift.data.store import Store
from reclift.learning import (
    PairDay,
    Performance,
    ProductWindow,
    aggregate,
    best_sellers,
    learn,
    median_price,
    product_rows,
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


def learn_pairs(
    learning: LearningPort,
    job: LearnShop,
    settings: ShopSettings,
    rows: list[PairDay],
    performance: Mapping[str, Performance],
) -> ContextPrior:
    """The context policy's part of the night (reclift.context): the pairs' windows, the pages' neighbours (one
    BatchGetItem per 100 pages with evidence), the shop's prior over pair ratios, and each page's ratios, saved
    before the model that makes the run current."""
    windows = aggregate_pairs(
        rows, today=job.day, window_days=settings.learning_window_days, half_life_days=settings.half_life_days
    )
    means = {product: result.posterior_mean for product, result in performance.items()}
    similarities = learning.page_similarities(job.shop, {page for page, _ in windows})
    prior = fit_context(windows, means, similarities)
    learning.save_pairs(job.shop, job.day.isoformat(), pair_ratios(windows, means, similarities, prior))
    return prior


def learn_shop(job: LearnShop, learning: LearningPort, store: Store) -> dict[str, Any]:
    """Performance of every product over the shop's window of counters, under the shop's policy; best sellers
    from the same counters (`sold`: every order of the window, which each order adds to when it is recorded)."""
    settings = store.get_settings(job.shop)
    first_day = job.day - timedelta(days=settings.learning_window_days - 1)
    rows = list(learning.counter_days(job.shop, first_day, job.day))
    windows = aggregate(
        product_rows(rows),
        today=job.day,
        window_days=settings.learning_window_days,
        half_life_days=settings.half_life_days,
        recent_days=settings.explore_window_days,
    )
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
    protected = set(store.get_rules(job.shop).never_blacklist)
    performance = {
        product: replace(result, blacklisted=False, reason=NEVER_BLACKLISTED)
        if result.blacklisted and product in protected
        else result
        for product, result in performance.items()
    }
    run = job.day.isoformat()
    context = None
    if settings.policy == "context":
        context = learn_pairs(learning, job, settings, [row for row in rows if isinstance(row, PairDay)], performance)
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
