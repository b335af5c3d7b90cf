"""The daily similarity job: fan out one message per shop, then compute each shop's co-purchase neighbours from
the baskets of its window, its co-view neighbours from its visitors' view sessions (and their weight against
co-purchase, from which of the two predicted the newest orders' pairs), and its catalog neighbours from its catalog
(reclift.catalog_neighbours), count what the orders that landed on each product's page bought of its co-purchase
neighbours (reclift.similarity.landed_counts) and what the view sessions that began there viewed of its co-view
neighbours (reclift.similarity.viewed_after_counts), and write one item per product holding all of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from reclift.catalog_neighbours import catalog_neighbours
from reclift.data.learning import LearningStore
from reclift.data.similarity import SimilarityPort, SimilarityStore, ViewedTogether
from reclift.data.store import Store, dynamo_store
from reclift.logic import jobs
from reclift.settings import ShopSettings
from reclift.similarity import (
    WEIGHT_HOLDOUT_SHARE,
    encode_baskets,
    join_baskets,
    landed_counts,
    neighbour_table,
    predicted_pairs,
    source_weights,
    viewed_after_counts,
)


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
    window = similarity.baskets(shop, since, now, settings.similarity_max_orders)
    orders = [basket.products for basket in window]
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
    sessions = similarity.view_sessions(shop, since, now, settings.similarity_max_orders)
    viewed = viewed_together(sessions, orders, instead, settings)
    run = now.astimezone(UTC).date().isoformat()
    listings = similarity.catalog_products(shop)
    catalog = catalog_neighbours(listings)
    handles = {listing.handle.lower(): listing.product_id for listing in listings if listing.handle}
    landed = landed_counts(window, handles, lists)
    written = similarity.save_similarity(shop, run, lists, counts, catalog, viewed, landed)
    return {
        "shop": shop,
        "run": run,
        "baskets": len(orders),
        "bought_instead_pairs": len(instead),
        "products": len(table.products),
        "products_with_neighbours": written,
        "products_with_catalog_neighbours": len(catalog),
        "view_sessions": len(sessions),
        "products_with_viewed_together": len(viewed.neighbours) if viewed else 0,
        "baskets_with_landing_page": sum(basket.landing is not None for basket in window),
        "viewed_together_weight": viewed.weight if viewed else None,
        "view_sessions_counted_for_viewed_after": sum(v.visits for v in viewed.after.values()) if viewed else 0,
    }


def viewed_together(
    sessions: Sequence[Sequence[str]],
    orders: Sequence[Sequence[str]],
    instead: Sequence[tuple[str, str]],
    settings: ShopSettings,
) -> ViewedTogether | None:
    """Co-view neighbours over the view sessions (the thresholds of co-purchase), weighted by how well they, against
    co-purchase neighbours learned from the older orders, predicted the pairs of the newest orders (`orders` is
    newest first), with what the sessions that began on each product's page went on to view of them. None when no
    product has co-view neighbours: the shop is served as without views."""
    coviewed = neighbour_table(encode_baskets(sessions), min_support=settings.similarity_min_support).as_lists()
    if not coviewed:
        return None
    held_out = len(orders) * WEIGHT_HOLDOUT_SHARE
    newest, older = orders[: int(held_out)], orders[int(held_out) :]
    learned = neighbour_table(
        join_baskets(older, instead, settings.bought_instead_weight), min_support=settings.similarity_min_support
    ).as_lists()
    weights = source_weights(predicted_pairs(learned, newest), predicted_pairs(coviewed, newest))
    return ViewedTogether(
        neighbours=coviewed, weight=weights.viewed_together, after=viewed_after_counts(sessions, coviewed)
    )


def compute_shop(shop: str, now: datetime | None = None) -> dict[str, Any]:
    """Compute one shop's similarity now, with the deployed stores (what the backfill calls once a new shop's
    orders are stored). Returns the run's summary."""
    return similarity_for_shop(shop, now or datetime.now(UTC), SimilarityStore(), dynamo_store())
