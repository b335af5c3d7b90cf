"""The merchant's view of what learning decided: every product's counts, rates, confidence, blacklist and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from reclift.catalog import Listing
from reclift.data.learning import LearnedModel
from reclift.learning import Performance
from reclift.money import money_text
from reclift.stats import wilson_interval


class CatalogReader(Protocol):
    def catalog_listings(self, shop: str, product_ids: Sequence[str]) -> dict[str, Listing]: ...


class PerformanceReader(Protocol):
    def model(self, shop: str) -> LearnedModel | None: ...
    def performance(self, shop: str, run: str) -> list[Performance]: ...


def cvr_interval(performance: Performance, min_impressions: int) -> list[float] | None:
    """The 95 % interval of the product's CVR (Wilson, on the counts shown beside it); None below the impressions
    learning needs before it judges a product, where the interval says little more than "not enough data yet"."""
    if performance.impressions <= 0 or performance.impressions < min_impressions:
        return None
    purchases = min(performance.purchases, performance.impressions)  # CVR is per impression: at most one each
    low, high = wilson_interval(purchases, performance.impressions)
    return [round(low, 6), round(high, 6)]


def performance_report(
    shop: str,
    store: PerformanceReader,
    *,
    only_blacklisted: bool,
    catalog: CatalogReader | None = None,
    min_impressions: int = 0,
) -> dict[str, Any]:
    """Each product's learned figures, most shown first, with its title where the catalog knows it (None else: a
    product never backfilled nor updated since the install), and its CVR's 95 % interval from `min_impressions`
    impressions on (the shop's setting: below it learning does not judge a product either)."""
    model = store.model(shop)
    if model is None:
        return {"shop": shop, "run": None, "policy": None, "products": []}
    rows = sorted(store.performance(shop, model.run), key=lambda p: (-p.impressions, p.product_id))
    rows = [p for p in rows if p.blacklisted or not only_blacklisted]
    listings = catalog.catalog_listings(shop, [p.product_id for p in rows]) if catalog is not None and rows else {}
    return {
        "shop": shop,
        "run": model.run,
        "policy": model.policy,
        "prior": {"mean": round(model.prior.mean, 6), "strength": round(model.prior.strength, 1)},
        "products": [
            {
                "product_id": p.product_id,
                "title": listing.title if (listing := listings.get(p.product_id)) and not listing.deleted else None,
                "impressions": p.impressions,
                "clicks": p.clicks,
                "purchases": p.purchases,
                "revenue": money_text(p.revenue),
                "ctr": round(p.ctr, 6),
                "cvr": round(p.cvr, 6),
                "cvr_ci95": cvr_interval(p, min_impressions),
                "confidence": round(p.confidence, 4),
                "blacklisted": p.blacklisted,
                "reason": p.reason,
            }
            for p in rows
        ],
    }
