"""The daily similarity job: fan out one message per shop, then compute each shop's co-purchase neighbours from
the baskets of its window, and its catalog neighbours from its catalog (reclift.catalog_neighbours), and write one
item per product holding both."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from reclift.catalog_neighbours import catalog_neighbours
from reclift.data.learning import LearningStore
from reclift.data.similarity import SimilarityPort, SimilarityStore
from reclift.data.store import Store, dynamo_store
from reclift.logic import jobs
from reclift.similarity import join_baskets, neighbour_table


class SimilarityJob(BaseModel):
    """One shop's similarity job, as queued by the fan-out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shop: str
    now: AwareDatetime  # the window of orders ends here


def fan_out(shops: LearningStore, send: Callable[[list[str]], int], *, now: datetime) -> dict[str, Any]:
    """One message per known shop."""
    sent = jobs.fan_out(shops.shops(), lambda shop: SimilarityJob(shop=shop, now=now), send)
    return {"now": now.isoformat(), "shops": sent}


def parse_job(body: str) -> SimilarityJob:
    return jobs.parse_job(body, SimilarityJob)


def similarity_for_shop(shop: str, now: datetime, similarity: SimilarityPort, store: Store) -> dict[str, Any]:
    """Every product's top neighbours over the shop's window of baskets and bought-instead pairs."""
    settings = store.get_settings(shop)
    since = now - timedelta(days=settings.similarity_window_days)
    orders = similarity.baskets(shop, since, now, settings.similarity_max_orders)
    instead = (
        similarity.bought_instead(shop, since, now, settings.similarity_max_orders)
        if settings.bought_instead_weight > 0
        else []
    )
    baskets = join_baskets(orders, instead, settings.bought_instead_weight)
    table = neighbour_table(baskets, min_support=settings.similarity_min_support)
    lists = table.as_lists()
    frequency = table.frequency.tolist()
    counts = {product: round(frequency[code]) for code, product in enumerate(table.products)}
    run = now.astimezone(UTC).date().isoformat()
    catalog = catalog_neighbours(similarity.catalog_products(shop))
    written = similarity.save_similarity(shop, run, lists, counts, catalog)
    return {
        "shop": shop,
        "run": run,
        "baskets": len(orders),
        "bought_instead_pairs": len(instead),
        "products": len(table.products),
        "products_with_neighbours": written,
        "products_with_catalog_neighbours": len(catalog),
    }


def compute_shop(shop: str, now: datetime | None = None) -> dict[str, Any]:
    """Compute one shop's similarity now, with the deployed stores (what the backfill calls once a new shop's
    orders are stored). Returns the run's summary."""
    return similarity_for_shop(shop, now or datetime.now(UTC), SimilarityStore(), dynamo_store())
