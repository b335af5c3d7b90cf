"""Data access for learning: the shops registry, the counters of a window of days, the learned performance."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from types import MappingProxyType
from typing import Any, Protocol

from pynamodb.attributes import Attribute
from pynamodb.connection import TableConnection
from pynamodb.exceptions import DoesNotExist, PynamoDBException

from reclift.context import ContextPrior, Landed, Similarity, page_similarities
from reclift.data.installs import still_installed
from reclift.data.models import CounterItem, LearningItem, ShopItem, SimilarityItem, bind_tables
from reclift.data.neighbours import neighbours_from_json, similarity_sk
from reclift.data.raw_reads import read_ahead, read_queries_raw
from reclift.data.store import (
    PAGE_PREFIX,
    PAIR_CLICKS,
    PAIR_EXPOSURE,
    PAIR_IMPRESSIONS,
    PAIR_PURCHASES,
    StoreError,
    day_key,
)
from reclift.learning import CounterDay, PairDay, Performance, Prior, ProductDay, product_rows
from reclift.ranking import Candidate, best_seller_candidates

MODEL_KEY = "_model"
PERFORMANCE_PREFIX = "p#"
PAIRS_PREFIX = "c#"  # the context policy's pair ratios of a page
BATCH_GET_KEYS = 100
# Performance items outlive their run by a few days, so a failed night keeps serving yesterday's.
PERFORMANCE_RETENTION_DAYS = 4
PERFORMANCE_FIELDS = tuple(field.name for field in fields(Performance))
# The counters' Query pages read ahead of the learner. A page is at most 1 MB of items, about 8 MB of Python objects
# once loaded, so the learner holds at most 4 of them (about 32 MB) beside its windows.
COUNTER_PAGES_AHEAD = 2
SHOP_COUNTERS_PREFIX = "_"  # a day's counters of the shop itself; product ids are digits, which sort before it


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
    context: ContextPrior | None = None  # the context policy's prior over pair ratios

    # Built once per model: a warm function serves one learning run's model to many requests.
    @cached_property
    def seller_candidates(self) -> list[Candidate]:
        """The best sellers as ranking candidates (most sold first)."""
        return best_seller_candidates(self.best_sellers)

    @cached_property
    def sellers_by_id(self) -> Mapping[str, Performance]:
        return MappingProxyType({p.product_id: p for p in self.best_sellers})


def performance_to_json(performance: Performance) -> dict[str, Any]:
    return {name: str(value) if isinstance(value, Decimal) else value for name, value in asdict(performance).items()}


def performance_from_mapping(raw: Mapping[str, Any]) -> Performance:
    """From the model item's JSON or a performance item's attributes (money as text or Decimal)."""

    def money(value: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    def optional_float(value: Any) -> float | None:
        return None if value is None else float(value)

    return Performance(
        product_id=str(raw["product_id"]),
        impressions=int(raw.get("impressions") or 0),
        clicks=int(raw.get("clicks") or 0),
        purchases=int(raw.get("purchases") or 0),
        units=int(raw.get("units") or 0),
        revenue=money(raw.get("revenue")) or Decimal(0),
        ctr=float(raw.get("ctr") or 0),
        cvr=float(raw.get("cvr") or 0),
        confidence=float(raw.get("confidence") or 0),
        blacklisted=bool(raw.get("blacklisted")),
        reason=str(raw.get("reason") or ""),
        alpha=float(raw.get("alpha") or 1),
        beta=float(raw.get("beta") or 1),
        price=money(raw.get("price")),
        explore_alpha=optional_float(raw.get("explore_alpha")),
        explore_beta=optional_float(raw.get("explore_beta")),
    )


def performance_from_item(item: LearningItem) -> Performance:
    return performance_from_mapping({name: getattr(item, name) for name in PERFORMANCE_FIELDS})


class LearningPort(Protocol):
    """What the nightly learning reads and writes: `LearningStore` on DynamoDB, the simulation's store in memory."""

    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]: ...

    def save_run(
        self,
        shop: str,
        run: str,
        policy: str,
        prior: Prior,
        performance: Mapping[str, Performance],
        best_sellers: list[str],
        median_price: Decimal | None,
        *,
        context: ContextPrior | None = None,
    ) -> None: ...

    def page_similarities(self, shop: str, pages: Iterable[str]) -> dict[str, dict[str, Similarity]]: ...

    def save_pairs(self, shop: str, run: str, ratios: Mapping[str, Mapping[str, float]]) -> None: ...


class LearningStore:
    def __init__(self) -> None:
        bind_tables()

    def shops(self) -> Iterator[str]:
        """Every shop in the registry (one small item each), but those that uninstalled reclift."""
        try:
            # Registry items have first_seen; the privacy requests kept in the same table do not.
            for item in ShopItem.scan(ShopItem.first_seen.exists() & still_installed(), attributes_to_get=["pk"]):
                yield item.pk
        except PynamoDBException as exc:
            raise StoreError(f"listing shops failed: {exc.msg}") from exc

    def counter_days(self, shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
        """The window's product counters (ProductDay) and page items (a PairDay per candidate of a page), day by day:
        one Query per day, paged, its cost linear in the day's product counters and page items' sizes. The key
        condition reads those two alone: the shop's own counters of the day (`_shop`, `_hour#…`, `_arm#…`) sort
        after both (product ids are digits, pages `P#…`), so they are neither read nor billed."""
        return _counter_days(shop, first_day, last_day)

    def product_days(self, shop: str, first_day: date, last_day: date) -> Iterator[ProductDay]:
        """Every product's counters, day by day (a page's impressions of a candidate as a row of their own)."""
        return product_rows(_counter_days(shop, first_day, last_day))

    def save_run(
        self,
        shop: str,
        run: str,
        policy: str,
        prior: Prior,
        performance: Mapping[str, Performance],
        best_sellers: list[str],
        median_price: Decimal | None,
        *,
        context: ContextPrior | None = None,
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
                            **asdict(result),
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
                context=context.to_json() if context is not None else None,
            ).save()
        except PynamoDBException as exc:
            raise StoreError(f"saving the learning run failed: {exc.msg}") from exc

    def page_similarities(self, shop: str, pages: Iterable[str]) -> dict[str, dict[str, Similarity]]:
        """The pages' neighbours as serving scores them (`context.page_similarities`): their similarity items, read
        by BatchGetItem, 100 keys a request."""
        keys = [(shop, similarity_sk(page)) for page in sorted(set(pages))]
        found: dict[str, dict[str, Similarity]] = {}
        try:
            for start in range(0, len(keys), BATCH_GET_KEYS):
                for item in SimilarityItem.batch_get(keys[start : start + BATCH_GET_KEYS]):
                    weight = float(item.viewed_weight or 0)
                    found[item.product_id] = page_similarities(
                        [(n.product_id, n.jaccard) for n in neighbours_from_json(item.neighbours)],
                        [(n.product_id, round(n.jaccard * weight, 6)) for n in neighbours_from_json(item.viewed)],
                        Landed.from_json(item.landed),
                        Landed.from_json(item.viewed_after),
                    )
        except PynamoDBException as exc:
            raise StoreError(f"reading the pages' neighbours failed: {exc.msg}") from exc
        return found

    def save_pairs(self, shop: str, run: str, ratios: Mapping[str, Mapping[str, float]]) -> None:
        """The context policy's pair ratios, one item per page (`c#{page}`), written before the run's model so that
        serving never pairs a new model with missing ratios (an older run's are ignored)."""
        now = datetime.now(UTC)
        expires = now + timedelta(days=PERFORMANCE_RETENTION_DAYS)
        try:
            with LearningItem.batch_write() as batch:
                for page, products in sorted(ratios.items()):
                    batch.save(
                        LearningItem(
                            pk=shop,
                            sk=f"{PAIRS_PREFIX}{page}",
                            run=run,
                            policy="context",
                            updated_at=now,
                            expires_at=expires,
                            product_id=page,
                            pairs=json.dumps(dict(sorted(products.items())), separators=(",", ":")),
                        )
                    )
        except PynamoDBException as exc:
            raise StoreError(f"saving the pair ratios failed: {exc.msg}") from exc

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


def _counter_days(shop: str, first_day: date, last_day: date) -> Iterator[CounterDay]:
    """LearningStore.counter_days. Page items hold one number per candidate, named by it, which a model cannot
    declare: the Query is read raw (its items as DynamoDB sent them, `raw_reads`), its pages read ahead of the
    learner by a thread of their own, and each item made a ProductDay or PairDays."""
    connection = CounterItem._get_connection()
    try:
        read_queries_raw(connection)
        for day, items in read_ahead(counter_pages(connection, shop, first_day, last_day), COUNTER_PAGES_AHEAD):
            for raw in items:
                yield from counter_rows(day, raw)
    except PynamoDBException as exc:
        raise StoreError(f"reading counters failed: {exc.msg}") from exc


def counter_pages(
    connection: TableConnection, shop: str, first_day: date, last_day: date
) -> Iterator[tuple[date, list[dict[str, Any]]]]:
    """Each day's Query pages of product counters and page items, in order: (day, the page's raw items)."""
    day = first_day
    while day <= last_day:
        start: dict[str, Any] | None = None
        while True:
            page = connection.query(
                day_key(shop, day), CounterItem.sk < SHOP_COUNTERS_PREFIX, exclusive_start_key=start
            )
            yield day, page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        day += timedelta(days=1)


def _raw_number(raw: Mapping[str, Any], attribute: Attribute[Any]) -> str | None:
    """What a CounterItem attribute holds in a raw item, DynamoDB JSON's {"N": "12"}, by the model's own name for it;
    None where the item lacks it."""
    value = raw.get(attribute.attr_name)
    return value["N"] if value else None


def _count(raw: Mapping[str, Any], attribute: Attribute[Any]) -> int:
    number = _raw_number(raw, attribute)
    return int(float(number)) if number else 0


def counter_rows(day: date, raw: Mapping[str, Any]) -> Iterator[CounterDay]:
    """A product counter as its ProductDay, a page item as a PairDay per candidate. Both read raw, as CounterItem
    stores them (a model per product counter cost the nightly job about a tenth of its CPU)."""
    sk = raw[CounterItem.sk.attr_name]["S"]
    if not sk.startswith(PAGE_PREFIX):
        exposed = _raw_number(raw, CounterItem.exposure)
        yield ProductDay(
            day=day,
            product_id=sk,
            impressions=_count(raw, CounterItem.impressions),
            clicks=_count(raw, CounterItem.clicks),
            purchases=_count(raw, CounterItem.purchases),
            units=_count(raw, CounterItem.units),
            revenue=Decimal(_raw_number(raw, CounterItem.revenue) or 0),
            sold=_count(raw, CounterItem.sold),
            exposure=None if exposed is None else float(exposed),
        )
        return
    pairs: dict[str, list[float | None]] = {}  # candidate → [impressions, purchases, exposure, clicks]
    slots = {PAIR_IMPRESSIONS: 0, PAIR_PURCHASES: 1, PAIR_EXPOSURE: 2, PAIR_CLICKS: 3}
    for name, value in raw.items():
        kind, product = name[:1], name[1:]
        if kind in slots and product.isdigit() and "N" in value:
            pairs.setdefault(product, [0, 0, None, 0])[slots[kind]] = float(value["N"])
    page = sk.removeprefix(PAGE_PREFIX)
    for product, (impressions, purchases, exposure, clicks) in sorted(pairs.items()):
        yield PairDay(
            day=day,
            page_id=page,
            product_id=product,
            impressions=int(impressions or 0),
            purchases=int(purchases or 0),
            exposure=exposure,
            clicks=int(clicks or 0),
        )


def model_from_item(item: LearningItem) -> LearnedModel:
    return LearnedModel(
        run=item.run,
        policy=item.policy,
        prior=Prior(alpha=float(item.prior_alpha or 1), beta=float(item.prior_beta or 1)),
        median_price=item.median_price,
        best_sellers=[performance_from_mapping(raw) for raw in json.loads(item.best_sellers or "[]")],
        products=int(item.products or 0),
        blacklisted=int(item.blacklisted_products or 0),
        context=ContextPrior.from_json(item.context) if item.context else None,
    )


def pairs_from_item(item: LearningItem) -> dict[str, float]:
    """A page's pair ratios, {candidate: ratio}."""
    return {str(product): float(ratio) for product, ratio in json.loads(item.pairs or "{}").items()}
