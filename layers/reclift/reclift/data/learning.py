"""Data access for learning: the shops registry, the counters of a window of days, the learned performance."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from reclift.data.models import CounterItem, LearningItem, ShopItem, bind_tables
from reclift.data.store import SHOP_COUNTER, StoreError, day_key
from reclift.learning import Performance, Prior, ProductDay

MODEL_KEY = "_model"
PERFORMANCE_PREFIX = "p#"
# Performance items outlive their run by a few days, so a failed night keeps serving yesterday's.
PERFORMANCE_RETENTION_DAYS = 4


@dataclass(frozen=True)
class LearnedModel:
    """What one learning run left for serving: the prior, the median price, the best sellers' performance."""

    run: str
    policy: str
    prior: Prior
    median_price: Decimal | None
    best_sellers: list[Performance]
    products: int
    blacklisted: int


def performance_to_json(performance: Performance) -> dict[str, Any]:
    return {
        "product_id": performance.product_id,
        "impressions": performance.impressions,
        "clicks": performance.clicks,
        "purchases": performance.purchases,
        "units": performance.units,
        "revenue": str(performance.revenue),
        "ctr": performance.ctr,
        "cvr": performance.cvr,
        "confidence": performance.confidence,
        "blacklisted": performance.blacklisted,
        "reason": performance.reason,
        "alpha": performance.alpha,
        "beta": performance.beta,
        "price": None if performance.price is None else str(performance.price),
    }


def performance_from_json(raw: Mapping[str, Any]) -> Performance:
    return Performance(
        product_id=str(raw["product_id"]),
        impressions=int(raw["impressions"]),
        clicks=int(raw["clicks"]),
        purchases=int(raw["purchases"]),
        units=int(raw["units"]),
        revenue=Decimal(str(raw["revenue"])),
        ctr=float(raw["ctr"]),
        cvr=float(raw["cvr"]),
        confidence=float(raw["confidence"]),
        blacklisted=bool(raw["blacklisted"]),
        reason=str(raw["reason"]),
        alpha=float(raw["alpha"]),
        beta=float(raw["beta"]),
        price=None if raw.get("price") is None else Decimal(str(raw["price"])),
    )


def performance_from_item(item: LearningItem) -> Performance:
    return Performance(
        product_id=item.product_id or item.sk.removeprefix(PERFORMANCE_PREFIX),
        impressions=int(item.impressions or 0),
        clicks=int(item.clicks or 0),
        purchases=int(item.purchases or 0),
        units=int(item.units or 0),
        revenue=item.revenue or Decimal(0),
        ctr=float(item.ctr or 0),
        cvr=float(item.cvr or 0),
        confidence=float(item.confidence or 0),
        blacklisted=bool(item.blacklisted),
        reason=item.reason or "",
        alpha=float(item.alpha or 1),
        beta=float(item.beta or 1),
        price=item.price,
    )


class LearningStore:
    def __init__(self) -> None:
        bind_tables()

    def shops(self) -> Iterator[str]:
        """Every shop in the registry (one small item each)."""
        try:
            for item in ShopItem.scan(attributes_to_get=["pk"]):
                yield item.pk
        except PynamoDBException as exc:
            raise StoreError(f"listing shops failed: {exc.msg}") from exc

    def product_days(self, shop: str, first_day: date, last_day: date) -> Iterator[ProductDay]:
        """Every product's counters, day by day: one query per day, cost linear in active product-days."""
        day = first_day
        try:
            while day <= last_day:
                for item in CounterItem.query(day_key(shop, day)):
                    if item.sk == SHOP_COUNTER:
                        continue
                    yield ProductDay(
                        day=day,
                        product_id=item.sk,
                        impressions=int(item.impressions),
                        clicks=int(item.clicks),
                        purchases=int(item.purchases),
                        units=int(item.units),
                        revenue=item.revenue,
                    )
                day += timedelta(days=1)
        except PynamoDBException as exc:
            raise StoreError(f"reading counters failed: {exc.msg}") from exc

    def save_run(
        self,
        shop: str,
        run: str,
        policy: str,
        prior: Prior,
        performance: Mapping[str, Performance],
        best_sellers: list[str],
        median_price: Decimal | None,
    ) -> None:
        """Write every product's performance, then the model item that makes this run the one served."""
        now = datetime.now(UTC)
        expires = now + timedelta(days=PERFORMANCE_RETENTION_DAYS)
        try:
            with LearningItem.batch_write() as batch:
                for product_id, result in performance.items():
                    batch.save(
                        LearningItem(
                            pk=shop,
                            sk=f"{PERFORMANCE_PREFIX}{product_id}",
                            run=run,
                            policy=policy,
                            updated_at=now,
                            expires_at=expires,
                            product_id=product_id,
                            impressions=result.impressions,
                            clicks=result.clicks,
                            purchases=result.purchases,
                            units=result.units,
                            revenue=result.revenue,
                            ctr=result.ctr,
                            cvr=result.cvr,
                            confidence=result.confidence,
                            blacklisted=result.blacklisted,
                            reason=result.reason,
                            alpha=result.alpha,
                            beta=result.beta,
                            price=result.price,
                        )
                    )
            LearningItem(
                pk=shop,
                sk=MODEL_KEY,
                run=run,
                policy=policy,
                updated_at=now,
                prior_alpha=prior.alpha,
                prior_beta=prior.beta,
                median_price=median_price,
                best_sellers=json.dumps([performance_to_json(performance[p]) for p in best_sellers]),
                products=len(performance),
                blacklisted_products=sum(r.blacklisted for r in performance.values()),
            ).save()
        except PynamoDBException as exc:
            raise StoreError(f"saving the learning run failed: {exc.msg}") from exc

    def model(self, shop: str) -> LearnedModel | None:
        try:
            item = LearningItem.get(shop, MODEL_KEY)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StoreError(f"reading the learned model failed: {exc.msg}") from exc
        return model_from_item(item)

    def performance(self, shop: str, run: str) -> list[Performance]:
        """Every product's performance of that run."""
        try:
            return [
                performance_from_item(item)
                for item in LearningItem.query(shop, LearningItem.sk.startswith(PERFORMANCE_PREFIX))
                if item.run == run
            ]
        except PynamoDBException as exc:
            raise StoreError(f"reading performance failed: {exc.msg}") from exc


def model_from_item(item: LearningItem) -> LearnedModel:
    return LearnedModel(
        run=item.run,
        policy=item.policy,
        prior=Prior(alpha=float(item.prior_alpha or 1), beta=float(item.prior_beta or 1)),
        median_price=item.median_price,
        best_sellers=[performance_from_json(raw) for raw in json.loads(item.best_sellers or "[]")],
        products=int(item.products or 0),
        blacklisted=int(item.blacklisted_products or 0),
    )
