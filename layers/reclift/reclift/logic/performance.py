"""The merchant's view of what learning decided: every product's counts, rates, confidence, blacklist and why."""

from __future__ import annotations

from typing import Any

from reclift.data.learning import LearningStore
from reclift.money import money_text


def performance_report(shop: str, store: LearningStore, *, only_blacklisted: bool) -> dict[str, Any]:
    model = store.model(shop)
    if model is None:
        return {"shop": shop, "run": None, "policy": None, "products": []}
    rows = sorted(store.performance(shop, model.run), key=lambda p: (-p.impressions, p.product_id))
    return {
        "shop": shop,
        "run": model.run,
        "policy": model.policy,
        "prior": {"mean": round(model.prior.mean, 6), "strength": round(model.prior.strength, 1)},
        "products": [
            {
                "product_id": p.product_id,
                "impressions": p.impressions,
                "clicks": p.clicks,
                "purchases": p.purchases,
                "revenue": money_text(p.revenue),
                "ctr": round(p.ctr, 6),
                "cvr": round(p.cvr, 6),
                "confidence": round(p.confidence, 4),
                "blacklisted": p.blacklisted,
                "reason": p.reason,
            }
            for p in rows
            if p.blacklisted or not only_blacklisted
        ],
    }
