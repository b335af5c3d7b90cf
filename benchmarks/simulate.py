"""The store simulation (DESIGN.md §3): does the feedback loop learn, and which policy earns the most per visitor?

`python -m benchmarks.simulate --scenario steady --days 28 --seed 101 --out run.json` plays one store day by day
through production's use cases, over the data ports in memory (`benchmarks.memory_store`):

- every widget is `logic.recommendations.recommend()` (similarity candidates combined under the 100-key read budget,
  production's best-seller fill, the catalog filter, exclusions of the page, the cart and what the visitor bought,
  the shop's arm and holdout, exploration, a signed rec id);
- the shopper's events go through `logic.tracking.track_events()` with that rec id, then
  `logic.counting.count_events()` over what it wrote, as the events table's stream does;
- every order, the widget's buyers' and the store's other orders alike, is an `orders/create` payload through
  `logic.deliveries.process_order_created()` (touches, attribution, the order's record and counters, profiles);
- every night `logic.similarity.similarity_for_shop()` then `logic.learning.learn_shop()`.

The world supplies only shoppers, orders and catalog events (`products/create` for every product at the install).
`--judge` runs every scenario over the judged seeds and writes `benchmarks/results/simulation.json` and `.png`.

The shopper model. Each product has a true CTR and a true purchase probability per impression (the plan's CVR).
A visitor sees one widget on the product they land on; at slot s a product is clicked with probability
ctr × s^−k and bought with probability cvr × s^−k (k = 0.5: 1/√slot), at `unrelated_factor` of that where it is
not one of the page's related products; a purchase always goes through a click: both come from one uniform u per
(visitor, product), click ⇔ u < ctr·f, buy ⇔ u < cvr·f. Because u belongs to the visitor and the product, not to
the policy, the policies meet the same visitors on the same landings with the same dice (common random numbers);
a policy's own randomness (exploration) has its own stream. The world also knows what each widget was worth before
the dice: its expected revenue Σ cvr × f × price over the products shown, which is what the policies are judged on
(`erpv_by_day`), beside the realised revenue (`rpv_by_day`).

The store's other orders: each day `organic_orders_per_day` orders (and `history_days` of them before the install,
as the backfill brings them) of a landing-popular product, each related product joining the basket at a rate around
`co_purchase_rate` that is correlated (rank `similarity_rank_correlation`) with that product's true value: the
co-purchase similarity the job computes from them is the candidates' only source, as in production.

A world with categories (`--product-types N`, the `launch` scenario) gives every product a type, a vendor and tags
in its `products/create`, so that the similarity job's catalog neighbours come from them as in production; a share
`related_same_type` of each product's related products are of its own type. With `compare_sources`, the judged
policy also plays the same visitors with the similarity job's lists withheld from serving (`SourcesWithheld`: no
catalog neighbours; best sellers alone), and the run reports, over the first days and the whole run, the share of
slots by source, of the page's type, of the page's type or co-purchased, and the expected-revenue gap each closes
between best sellers alone and the best widget the world allows.

A world with context (`--pair-affinity-sigma` > 0, the `context` scenario): a related product sells on a page at its
rates × a pair effect e(p, c) (log-normal, mean 1 over each product's pages, its log correlated with the pair's log
co-purchase rate), so that the same product is worth more on some pages than on others; the widget's expected revenue
and the best widget include it. The oracle ranks each page by true value × e(p, c) (`PageTruth`), where production's
learning is product-level; in every world it values an unrelated product at `unrelated_factor` of its rates, as the
shoppers buy it. With `--views-per-visit`, each visitor also views a trail of the landing's related
products, the more likely the higher their pair effect, sent as the storefront's `view` events, so that co-views
carry the pair signal. Off (0), the world draws and plays exactly as without these flags: every new quantity comes
from its own stream.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from benchmarks.memory_store import MemoryStore
from benchmarks.scenarios import SCENARIOS, World, scenario
from reclift.catalog import parse_webhook_product
from reclift.data.learning import LearnedModel
from reclift.data.serving import CandidateItems, ServingContext, ServingPort
from reclift.learning import Performance, Prior
from reclift.logic.counting import count_events
from reclift.logic.deliveries import process_order_created
from reclift.logic.learning import LearnShop, learn_shop
from reclift.logic.recommendations import RecommendationQuery, recommend
from reclift.logic.similarity import similarity_for_shop
from reclift.logic.tracking import track_events
from reclift.ranking import assign_arm
from reclift.recids import RecIds
from reclift.settings import SettingsError, ShopSettings, merge_settings
from reclift.tracking import exposure

POLICIES = ("static", "seed", "bayes", "context", "oracle")
LEARNING_POLICIES = ("seed", "bayes", "context")
JUDGED_POLICY = ShopSettings().policy  # the shop's default: the targets are the default's
SHOP = "sim-store.myshopify.com"
FIRST_DAY = date(2025, 3, 3)
PRODUCT_ID_BASE = 7_000_000_000_000  # Shopify-like numeric product ids
ORACLE_CERTAINTY = 1e12  # a posterior this concentrated is the true CVR itself
AFFINITY_BISECTIONS = 24  # the pair effects' generating correlation, to within 1e-7
ORACLE_CVR_MAX = 1.0 - 1e-9  # a page's true CVR past 1 (a strong pair effect) is a certain purchase
RESULTS_DIR = Path(__file__).resolve().parent / "results"
JUDGED_SEEDS = tuple(range(101, 111))  # never used to tune anything
TUNING_SEEDS = tuple(range(1, 6))  # used to tune the policies in the past: reported beside, not judged
LAST_DAYS = 7  # policies are judged on the last week, once learning has had three weeks of data
REC_IDS = RecIds.of_secrets(["simulation-app-secret"])
# The targets, on the expected-revenue gap closed over the last week (learning arm, `JUDGED_POLICY`).
GAP_TARGETS: dict[str, tuple[float, float]] = {  # scenario → (mean at least, every seed at least)
    "steady": (0.85, 0.75),
    "large": (0.85, 0.75),
    "recovery": (0.85, 0.75),
    "small": (0.70, 0.50),
}
WRONGLY_BLACKLISTED_MAX = 0.01
RECOVERY_DAYS_MAX = 5
# The context policy's: in the `context` world it closes at least this much of the gap and beats the product-level
# policy on every seed; in a world without context it loses at most CONTEXT_FREE_LOSS_MAX of the gap against it (the
# means). Both held before `context` became the default.
CONTEXT_POLICY = "context"
PRODUCT_LEVEL_POLICY = "bayes"
CONTEXT_GAP_MIN = 0.80
CONTEXT_FREE_LOSS_MAX = 0.01


# ------------------------------------------------------------------------------------------------ the world
@dataclass
class Catalog:
    """The products and their truths. `cvr` and `ctr` are per impression at slot 1; ctr ≥ cvr always."""

    ids: list[str]
    index: dict[str, int]
    prices: list[Decimal]
    price_floats: list[float]
    ctr: list[float]
    cvr: list[float]
    related: list[list[int]]
    related_sets: list[frozenset[int]]
    co_purchase: list[list[float]]  # co_purchase[i][k]: chance that related[i][k] joins an order of i
    landing_cumulative: list[float]
    co_purchase_rank_correlation: float  # of the co-purchase rates with the related product's true value
    jump_product: int | None
    types: list[int] | None = None  # each product's type, vendor and tags (a world with categories)
    vendors: list[int] | None = None
    tags: list[list[int]] | None = None
    # pair_effects[p][c]: how well related product c sells on page p relative to its own rates (a world with
    # context, `pair_affinity_sigma` > 0; None: 1 everywhere)
    pair_effects: list[dict[int, float]] | None = None

    def value(self, product: int) -> float:
        """The true expected revenue per impression at slot 1: what the oracle ranks by."""
        return self.cvr[product] * self.price_floats[product]

    def page_factor(self, page: int, product: int, unrelated_factor: float) -> float:
        """How a product sells on a page relative to its own rates: its pair effect where it is related to the page
        (1 in a world without context), `unrelated_factor` where it is not."""
        if product not in self.related_sets[page]:
            return unrelated_factor
        return self.pair_effects[page][product] if self.pair_effects is not None else 1.0


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    for position, item in enumerate(order):
        ranks[item] = float(position)
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Rank correlation (continuous draws: ties have probability zero)."""
    if len(xs) < 2:
        return 0.0
    return statistics.correlation(_ranks(xs), _ranks(ys))


def build_catalog(world: World) -> Catalog:
    rng = random.Random(f"world:{world.seed}")
    n = world.products
    ids = [str(PRODUCT_ID_BASE + i) for i in range(n)]
    prices = [
        Decimal(f"{world.price_median * math.exp(world.price_sigma * rng.gauss(0.0, 1.0)):.2f}").max(Decimal("0.01"))
        for _ in range(n)
    ]
    cvr = [rng.betavariate(world.cvr_alpha, world.cvr_beta) for _ in range(n)]
    ctr = [rng.betavariate(world.ctr_alpha, world.ctr_beta) for _ in range(n)]
    related_count = min(world.related_per_product, n - 1)
    related: list[list[int]] = []
    categories = _categories(world) if world.product_types > 0 else None
    if categories is None:
        for i in range(n):
            others = rng.sample(range(n - 1), related_count)
            related.append([j if j < i else j + 1 for j in others])
    else:
        related = _related_by_type(world, categories[0], related_count)

    # Landing popularity is Zipf-like over a random order of the products, independent of their true rates.
    popularity_order = list(range(n))
    rng.shuffle(popularity_order)
    weights = [0.0] * n
    for popularity_rank, product in enumerate(popularity_order):
        weights[product] = 1.0 / (popularity_rank + 1) ** world.zipf_exponent
    total_weight = sum(weights)
    landing_cumulative: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight / total_weight
        landing_cumulative.append(running)

    jump_product = _choose_jump_product(world, prices, related, weights) if world.jump_day >= 0 else None
    if jump_product is not None:
        cvr[jump_product] = world.jump_cvr_before
    ctr = [max(click, buy) for click, buy in zip(ctr, cvr, strict=True)]

    # Co-purchase rates: a Gaussian copula with the related product's value. Pearson ρ = 2·sin(π·r_s/6) gives
    # Spearman r_s; the value's normal score is exact in rank, so the correlation does not depend on its shape.
    values = [c * float(p) for c, p in zip(cvr, prices, strict=True)]
    normal = statistics.NormalDist()
    normal_score = [normal.inv_cdf((r + 0.5) / n) for r in _ranks(values)]
    rho = 2.0 * math.sin(math.pi * world.similarity_rank_correlation / 6.0)
    noise = math.sqrt(max(0.0, 1.0 - rho * rho))
    spread = math.exp(world.similarity_sigma**2 / 2)  # the log-normal's mean, so the rates average co_purchase_rate
    co_purchase: list[list[float]] = []
    for i in range(n):
        row = []
        for j in related[i]:
            z = rho * normal_score[j] + noise * rng.gauss(0.0, 1.0)
            row.append(min(1.0, world.co_purchase_rate * math.exp(world.similarity_sigma * z) / spread))
        co_purchase.append(row)
    pairs = [(rate, values[j]) for i in range(n) for rate, j in zip(co_purchase[i], related[i], strict=True)]
    pair_effects = _pair_effects(world, related, co_purchase) if world.pair_affinity_sigma > 0 and n > 1 else None
    return Catalog(
        ids=ids,
        index={pid: i for i, pid in enumerate(ids)},
        prices=prices,
        price_floats=[float(p) for p in prices],
        ctr=ctr,
        cvr=cvr,
        related=related,
        related_sets=[frozenset(row) for row in related],
        co_purchase=co_purchase,
        landing_cumulative=landing_cumulative,
        co_purchase_rank_correlation=spearman([a for a, _ in pairs], [b for _, b in pairs]),
        jump_product=jump_product,
        types=categories[0] if categories else None,
        vendors=categories[1] if categories else None,
        tags=categories[2] if categories else None,
        pair_effects=pair_effects,
    )


def _pair_effects(
    world: World, related: Sequence[Sequence[int]], co_purchase: Sequence[Sequence[float]]
) -> list[dict[int, float]]:
    """Each related pair's effect e(p, c), from its own stream: log e = σ·(r·s + √(1−r²)·ε) − m_c, s the pair's log
    co-purchase rate standardised over every pair, ε a standard normal, and m_c what makes product c's mean effect
    over the pages it is related to exactly 1 (a product shown wherever it is related sells, on average, at its own
    rates). That scaling takes part of the pair signal with it, so r is solved for (by bisection over the same ε)
    such that log e itself has Pearson correlation `pair_affinity_correlation` with the log co-purchase rate."""
    rng = random.Random(f"affinity:{world.seed}")
    pages = [page for page, row in enumerate(related) for _ in row]
    products = [product for row in related for product in row]
    logs = [math.log(rate) for row in co_purchase for rate in row]
    noises = [rng.gauss(0.0, 1.0) for _ in logs]
    centre, scale = statistics.fmean(logs), statistics.pstdev(logs)
    strengths = [(value - centre) / scale if scale > 0 else 0.0 for value in logs]
    counts: dict[int, int] = {}
    for product in products:
        counts[product] = counts.get(product, 0) + 1

    def effects(r: float) -> list[float]:
        noise = math.sqrt(max(0.0, 1.0 - r * r))
        raw = [
            math.exp(world.pair_affinity_sigma * (r * s + noise * e)) for s, e in zip(strengths, noises, strict=True)
        ]
        totals: dict[int, float] = {}
        for product, effect in zip(products, raw, strict=True):
            totals[product] = totals.get(product, 0.0) + effect
        return [effect * counts[p] / totals[p] for p, effect in zip(products, raw, strict=True)]

    def correlation(r: float) -> float:
        return statistics.correlation([math.log(e) for e in effects(r)], strengths)

    target = min(1.0, max(-1.0, world.pair_affinity_correlation))
    low, high = -1.0, 1.0
    if scale > 0:
        for _ in range(AFFINITY_BISECTIONS):
            middle = (low + high) / 2
            low, high = (middle, high) if correlation(middle) < target else (low, middle)
        r = (low + high) / 2
    else:  # every pair co-purchased alike: nothing to correlate with
        r = 0.0
    found: list[dict[int, float]] = [{} for _ in related]
    for page, product, effect in zip(pages, products, effects(r), strict=True):
        found[page][product] = effect
    return found


def _categories(world: World) -> tuple[list[int], list[int], list[list[int]]]:
    """Each product's type (types of about equal size, in a random order), vendor and tags, from their own stream."""
    rng = random.Random(f"categories:{world.seed}")
    types = [i % world.product_types for i in range(world.products)]
    rng.shuffle(types)
    vendors = [rng.randrange(max(1, world.vendors)) for _ in range(world.products)]
    count = min(world.tags_per_product, world.tag_pool)
    tags = [sorted(rng.sample(range(world.tag_pool), count)) for _ in range(world.products)]
    return types, vendors, tags


def _related_by_type(world: World, types: Sequence[int], count: int) -> list[list[int]]:
    """Each product's related products: each of its own type with probability `related_same_type` (while its type
    has products left), else of another type; drawn without replacement."""
    rng = random.Random(f"related:{world.seed}")
    members: dict[int, list[int]] = {}
    for product, kind in enumerate(types):
        members.setdefault(kind, []).append(product)
    related: list[list[int]] = []
    for i, kind in enumerate(types):
        same = [j for j in members[kind] if j != i]
        other = [j for j in range(len(types)) if types[j] != kind]
        wanted = sum(rng.random() < world.related_same_type for _ in range(count))
        wanted = max(min(wanted, len(same)), count - len(other))
        related.append(rng.sample(same, wanted) + rng.sample(other, count - wanted))
    return related


def _choose_jump_product(
    world: World, prices: Sequence[Decimal], related: Sequence[Sequence[int]], weights: Sequence[float]
) -> int:
    """The product the jump is planted on: the most-trafficked related product priced at least at the median.

    Most traffic so that its recovery is measured on many widgets (not on a handful of visits); a median price or
    more so that, at the after-jump CVR, it is worth more per impression than its neighbours and the oracle serves it.
    """
    traffic = [0.0] * len(prices)
    for landing, row in enumerate(related):
        for j in row:
            traffic[j] += weights[landing]
    median = sorted(prices)[len(prices) // 2]
    eligible = [j for j in range(len(prices)) if prices[j] >= median]
    return max(eligible, key=lambda j: (traffic[j], -j))


def product_payload(catalog: Catalog, product: int, at: datetime) -> dict[str, Any]:
    """The `products/create` delivery of a product: active, in stock, at its price; in a world with categories, with
    its product type, vendor and tags (REST's comma-separated string), as the catalog neighbours compare them."""
    payload: dict[str, Any] = {
        "id": int(catalog.ids[product]),
        "title": f"Product {product}",
        "handle": f"product-{product}",
        "status": "active",
        "updated_at": at.isoformat(),
        "variants": [
            {"price": str(catalog.prices[product]), "inventory_quantity": 100, "inventory_management": "shopify"}
        ],
    }
    if catalog.types is not None and catalog.vendors is not None and catalog.tags is not None:
        payload["product_type"] = f"Type {catalog.types[product]}"
        payload["vendor"] = f"Vendor {catalog.vendors[product]}"
        payload["tags"] = ", ".join(f"tag-{tag}" for tag in catalog.tags[product])
    return payload


def order_payload(
    order_id: int,
    created_at: datetime,
    lines: Sequence[tuple[str, Decimal, str | None]],
    visitor_id: str | None,
    landing_site: str | None = None,
) -> dict[str, Any]:
    """An `orders/create` body with the fields reclift reads: lines of (product, price, `_rec_id`), and the page the
    buyer's visit landed on."""
    return {
        "id": order_id,
        "created_at": created_at.isoformat(),
        "landing_site": landing_site,
        "currency": "USD",
        "test": False,
        "customer": None,
        "note_attributes": [{"name": "_reclift_vid", "value": visitor_id}] if visitor_id else [],
        "line_items": [
            {
                "id": order_id * 100 + k,
                "product_id": int(product),
                "quantity": 1,
                "price": str(price),
                "price_set": {"shop_money": {"amount": str(price), "currency_code": "USD"}},
                "discount_allocations": [],
                "properties": [{"name": "_rec_id", "value": rec_id}] if rec_id else [],
            }
            for k, (product, price, rec_id) in enumerate(lines)
        ],
    }


def landing_site(world: World, order_id: int, landing: int) -> str:
    """The order's `landing_site`: the landing product's page for `landing_page_share` of the orders (by a hash of
    the order's id, so that no stream of the world draws it), else the home page, with a campaign's query as
    Shopify keeps it."""
    if _mix(order_id ^ _mix(world.seed)) / 2**64 < world.landing_page_share:
        return f"/products/product-{landing}?utm_source=newsletter"
    return "/?utm_source=newsletter"


def _landing(catalog: Catalog, u: float) -> int:
    return min(bisect.bisect_left(catalog.landing_cumulative, u), len(catalog.ids) - 1)


def organic_orders(world: World, catalog: Catalog, day: int) -> list[dict[str, Any]]:
    """The day's orders placed without a widget (day < 0: before the install). The same for every policy."""
    stream = random.Random(f"orders:{world.seed}:{day}")
    mean = world.organic_orders_per_day
    count = max(0, round(stream.gauss(mean, math.sqrt(mean))))
    start = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
    payloads = []
    for number in range(count):
        anchor = _landing(catalog, stream.random())
        basket = [anchor] + [
            j
            for j, rate in zip(catalog.related[anchor], catalog.co_purchase[anchor], strict=True)
            if stream.random() < rate
        ]
        at = start + timedelta(seconds=int(stream.random() * 86_000))
        lines = [(catalog.ids[p], catalog.prices[p], None) for p in basket]
        order_id = _order_id(day, number, organic=True)
        payloads.append(order_payload(order_id, at, lines, None, landing_site(world, order_id, anchor)))
    return payloads


def _order_id(day: int, number: int, *, organic: bool) -> int:
    return (1 if organic else 2) * 10**15 + (day + 1000) * 10**8 + number


# ------------------------------------------------------------------------------------------------ visitors
def _mix(value: int) -> int:
    """splitmix64's finaliser: a fast, well-mixed hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


@dataclass(frozen=True)
class Visit:
    """One visitor's day: everything the dice decide that no policy can change."""

    number: int
    visitor_id: str
    landing: int
    at: datetime
    key: int  # the visitor's own stream of uniforms, one per product
    carries_rec_id: bool
    learning_arm: bool  # the learning policies' arm for this visitor (production's sticky hash)
    trail: tuple[int, ...] = ()  # the products viewed after the landing, in order (`views_per_visit`)

    def uniform(self, product: int) -> float:
        return _mix(self.key ^ _mix(product + 1)) / 2**64


def day_visits(world: World, catalog: Catalog, day: int) -> list[Visit]:
    """The day's visitors, from the world's own streams, so every policy meets exactly the same people."""
    arrivals = random.Random(f"arrivals:{world.seed}:{day}")
    mean = world.visitors_per_day
    count = max(0, round(arrivals.gauss(mean, math.sqrt(mean))))  # Poisson-like day-to-day variation
    start = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
    visits: list[Visit] = []
    for number in range(count):
        visitor_id = f"v{world.seed}-{day}-{number}"
        stream = random.Random(f"visitor:{world.seed}:{day}:{number}")
        landing = _landing(catalog, stream.random())
        # Visits end by 23:00 so that the order placed after the widget falls on the same day's counters.
        at = start + timedelta(seconds=int(stream.random() * 82_800))
        key = stream.getrandbits(64)
        carries_rec_id = stream.random() < world.rec_id_share
        learning_arm = assign_arm(SHOP, visitor_id, world.holdout_share) == "learning"
        trail = view_trail(world, catalog, landing, day, number) if world.views_per_visit > 0 else ()
        visits.append(Visit(number, visitor_id, landing, at, key, carries_rec_id, learning_arm, trail))
    return visits


def view_trail(world: World, catalog: Catalog, landing: int, day: int, number: int) -> tuple[int, ...]:
    """The products a visitor views after landing, from their own stream: a Poisson number (mean `views_per_visit`)
    of the landing's related products, without repeats, each next one drawn with weight e(landing, c)^γ
    (`view_affinity_exponent`), so that how often two products are viewed together follows their pair effect."""
    stream = random.Random(f"views:{world.seed}:{day}:{number}")
    count, threshold, product = 0, math.exp(-world.views_per_visit), stream.random()
    while product > threshold:  # Knuth's Poisson draw
        count += 1
        product *= stream.random()
    effects = catalog.pair_effects[landing] if catalog.pair_effects is not None else None
    left = list(catalog.related[landing])
    weights = [effects[c] ** world.view_affinity_exponent if effects is not None else 1.0 for c in left]
    trail: list[int] = []
    for _ in range(min(count, len(left))):
        k = _weighted_index(weights, stream.random())
        trail.append(left.pop(k))
        weights.pop(k)
    return tuple(trail)


def _weighted_index(weights: Sequence[float], u: float) -> int:
    target, running = u * sum(weights), 0.0
    for k, weight in enumerate(weights):
        running += weight
        if target < running:
            return k
    return len(weights) - 1


# ------------------------------------------------------------------------------------------------ a policy
# What serving may read of the similarity job's candidate sources, per variant of the judged policy's run: production
# (co-purchase neighbours and catalog neighbours), co-purchase only (serving before catalog neighbours), and best
# sellers alone (neither: production's fill is all a widget gets).
SOURCE_VARIANTS: dict[str, frozenset[str]] = {
    "all": frozenset({"similar", "catalog"}),
    "co_purchase": frozenset({"similar"}),
    "best_sellers": frozenset(),
}
VARIANT_LABELS = {"all": "every source", "co_purchase": "no catalog neighbours", "best_sellers": "best sellers alone"}
SLOT_SOURCES = ("similar", "catalog", "best_seller", "pinned")
FIRST_DAYS = 3  # a new shop's first days, on which the sources are measured beside the whole run


@dataclass(frozen=True)
class SourcesWithheld:
    """The store as `recommend()` reads it, with some of the similarity job's lists withheld: production serves what
    it finds (its best-seller fill when it finds no neighbours), so a variant is production's own path over a store
    whose job wrote less, not a re-implementation of serving."""

    store: MemoryStore
    keep: frozenset[str]

    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext:
        context = self.store.context(shop, visitor_id=visitor_id, customer_id=customer_id, products=products, page=page)
        similar = "similar" in self.keep
        return replace(
            context,
            similar=context.similar if similar else {},
            profile_neighbours=context.profile_neighbours if similar else [],
            catalog_similar=context.catalog_similar if "catalog" in self.keep else {},
        )

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        return self.store.candidates(shop, performance_ids=performance_ids, catalog_ids=catalog_ids, run=run)


@dataclass
class PageTruth:
    """The store as the oracle's `recommend()` reads it: production ranks by product-level performance, so for each
    request every candidate's performance (the model's best sellers' included) is concentrated on its true CVR on
    THIS page, its own × its pair effect where it is related (1 in a world without context), × `unrelated_factor`
    where it is not. The oracle then ranks each page by the value it truly has there, through production's own path:
    in every world a product shown on a page it is not related to (a stray among the page's co-purchase neighbours,
    a best seller in a spare slot) sells at `unrelated_factor` of its rate, and an oracle that valued it at its full
    rate would be beaten by a policy that learned better. The page is the product placement's product,
    which `context()` is asked about before `candidates()`."""

    store: MemoryStore
    catalog: Catalog
    unrelated_factor: float
    page: int | None = None
    _models: dict[int, LearnedModel] = field(default_factory=dict)  # per page, for the stored run
    _truths: dict[tuple[int, str], Performance] = field(default_factory=dict)

    def forget(self) -> None:
        """A new run (or new truths, after the jump): nothing remembered holds."""
        self._models.clear()
        self._truths.clear()

    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext:
        context = self.store.context(shop, visitor_id=visitor_id, customer_id=customer_id, products=products, page=page)
        self.page = self.catalog.index.get(products[0]) if products and len(products) == 1 else None
        if self.page is None or context.model is None:
            return context
        model = self._models.get(self.page)
        if model is None or model.run != context.model.run:
            model = replace(context.model, best_sellers=[self._truth(p) for p in context.model.best_sellers])
            self._models[self.page] = model
        return replace(context, model=model)

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        items = self.store.candidates(shop, performance_ids=performance_ids, catalog_ids=catalog_ids, run=run)
        if self.page is None:
            return items
        return replace(items, performance={pid: self._truth(p) for pid, p in items.performance.items()})

    def _truth(self, performance: Performance) -> Performance:
        assert self.page is not None
        key = (self.page, performance.product_id)
        truth = self._truths.get(key)
        if truth is None:
            product = self.catalog.index[performance.product_id]
            factor = self.catalog.page_factor(self.page, product, self.unrelated_factor)
            cvr = min(ORACLE_CVR_MAX, self.catalog.cvr[product] * factor)
            truth = replace(performance, cvr=cvr, alpha=cvr * ORACLE_CERTAINTY, beta=(1.0 - cvr) * ORACLE_CERTAINTY)
            self._truths[key] = truth
        return truth


@dataclass
class DayFigures:
    visitors: int = 0
    widgets: int = 0
    impressions: int = 0
    clicks: int = 0
    orders: int = 0  # the widget's buyers' orders
    purchases: int = 0  # attributed lines
    revenue: Decimal = Decimal(0)  # attributed revenue (what production credits)
    realised: float = 0.0  # what the widget's buyers paid (the world's view)
    expected: float = 0.0  # Σ over widgets of the expected revenue of what was shown
    learning_visitors: int = 0
    learning_expected: float = 0.0
    learning_realised: float = 0.0
    filled: int = 0  # slots taken by products not related to the page (best sellers, mostly)
    jump_widgets: int = 0  # widgets on pages where the jump product is related
    jump_served: int = 0  # … and it was shown
    # the jump product's impressions on any widget, as the learner weighs them (reclift.tracking.exposure), and its
    # purchases there: how much evidence serving gave it, day by day
    jump_exposure: float = 0.0
    jump_purchases: int = 0
    # … of which on the pages it is related to, where it sells at its own rates (× the pair effect, with context)
    jump_exposure_related: float = 0.0
    jump_purchases_related: int = 0
    blacklisted: int = 0  # after the night's learning
    wrongly_blacklisted: int = 0
    views: int = 0  # product views sent (`views_per_visit`)
    # slots by the response's `source` (similar, catalog, best_seller, pinned), and those of the page's product type
    sources: dict[str, int] = field(default_factory=dict)
    same_type: int = 0
    same_type_or_similar: int = 0


def policy_settings(policy: str, world: World, shop_settings: Mapping[str, Any] | None = None) -> ShopSettings:
    """The shop's settings under each policy. Static serves every visitor the holdout arm (a share past the
    setting's 0.5 cap, which only the simulation sets); the oracle serves the truth, without exploring. A learning
    policy plays production's defaults with `shop_settings` applied, as a merchant's `PUT /admin/settings` would
    apply them (validated alike: a bad key or value raises SettingsError naming it); they override the world's
    `holdout_share`."""
    if policy == "static":
        return ShopSettings().model_copy(update={"holdout_share": 1.0})
    if policy == "oracle":
        return ShopSettings(policy="bayes", explore_share=0.0, holdout_share=0.0)
    learned: Literal["seed", "bayes", "context"] = (
        "seed" if policy == "seed" else "context" if policy == "context" else "bayes"
    )
    return merge_settings(ShopSettings(policy=learned, holdout_share=world.holdout_share), dict(shop_settings or {}))


class PolicyRun:
    """One policy playing the store through production's use cases over its own store in memory."""

    def __init__(
        self,
        policy: str,
        world: World,
        catalog: Catalog,
        sources: str = "all",
        shop_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.world = world
        self.catalog = catalog
        self.store = MemoryStore()
        self.reader: ServingPort = (
            self.store if sources == "all" else SourcesWithheld(self.store, SOURCE_VARIANTS[sources])
        )
        if policy == "oracle":
            self.reader = PageTruth(self.store, catalog, world.unrelated_factor)
        self.settings = policy_settings(policy, world, shop_settings)
        self.store.put_settings(SHOP, self.settings)
        self.days: list[DayFigures] = []
        self.position = [0.0] + [s**-world.position_exponent for s in range(1, 21)]

    def order(self, payload: dict[str, Any]) -> None:
        process_order_created(SHOP, payload, self.store, rec_ids=lambda: REC_IDS)

    def install(self, history: Sequence[dict[str, Any]]) -> None:
        """The install: every product's `products/create`, the backfilled orders, and the first night's jobs."""
        at = datetime.combine(FIRST_DAY - timedelta(days=self.world.history_days + 1), datetime.min.time(), tzinfo=UTC)
        for product in range(len(self.catalog.ids)):
            self.store.save_listing(SHOP, parse_webhook_product(product_payload(self.catalog, product, at)))
        for payload in history:
            self.order(payload)
        self.night(-1, record=False)

    # -------------------------------------------------------------------------------------------- one day
    def serve_day(self, day: int, visits: Sequence[Visit], organic: Sequence[dict[str, Any]]) -> None:
        catalog, world, store = self.catalog, self.world, self.store
        figures = DayFigures(visitors=len(visits))
        rng = random.Random(f"policy:{world.seed}:{self.policy}:{day}")  # only the policy's own randomness
        jump = catalog.jump_product
        jump_id = catalog.ids[jump] if jump is not None else None
        organic_left = sorted(organic, key=lambda payload: str(payload["created_at"]))
        next_organic = 0
        for visit in visits:
            # The store's other orders arrive in time order between the visits.
            while next_organic < len(organic_left) and str(organic_left[next_organic]["created_at"]) <= str(
                visit.at.isoformat()
            ):
                self.order(organic_left[next_organic])
                next_organic += 1
            figures.learning_visitors += visit.learning_arm
            landing_id = catalog.ids[visit.landing]
            query = RecommendationQuery(product_id=landing_id, limit=world.slots, visitor_id=visit.visitor_id)
            response = recommend(SHOP, None, query, self.reader, rng, rec_ids=REC_IDS, now=visit.at)
            if world.views_per_visit > 0:
                figures.views += self._views(visit)
            shown = [item["product_id"] for item in response["products"]]
            if not shown:
                continue
            if catalog.types is not None:
                self._count_slots(figures, visit.landing, response["products"])
            figures.widgets += 1
            figures.impressions += len(shown)
            rec_id = response["rec_id"]
            listed = response["event_fields"]["rec_products"]
            events: list[dict[str, Any]] = [
                {
                    "type": "impression",
                    "rec_id": rec_id,
                    "visitor_id": visit.visitor_id,
                    "placement": "product",
                    "source_product_id": landing_id,
                    "products": [{"product_id": p, "position": k} for k, p in enumerate(shown, start=1)],
                    "rec_products": listed,
                }
            ]
            bought: list[int] = []
            expected = 0.0
            related_here = catalog.related_sets[visit.landing]
            effects = catalog.pair_effects[visit.landing] if catalog.pair_effects is not None else None
            for slot, product_id in enumerate(shown, start=1):
                product = catalog.index[product_id]
                factor = self.position[slot]
                if product not in related_here:
                    factor *= world.unrelated_factor
                    figures.filled += 1
                elif effects is not None:
                    factor *= effects[product]
                # A probability: a pair effect can take a product's rates past 1 (rarely); a click or a purchase
                # is then certain.
                expected += min(1.0, catalog.cvr[product] * factor) * catalog.price_floats[product]
                u = visit.uniform(product)
                if u >= catalog.ctr[product] * factor:
                    continue
                click = {"rec_id": rec_id, "visitor_id": visit.visitor_id, "product_id": product_id}
                events.append({"type": "click", "position": slot, "rec_products": listed, **click})
                if u < catalog.cvr[product] * factor:
                    events.append({"type": "add_to_cart", "position": slot, "rec_products": listed, **click})
                    bought.append(product)
            figures.expected += expected
            if visit.learning_arm:
                figures.learning_expected += expected
            if jump_id is not None and jump in related_here:
                figures.jump_widgets += 1
                figures.jump_served += jump_id in shown
            if jump_id is not None and jump_id in shown:
                weight = exposure(shown.index(jump_id) + 1)
                figures.jump_exposure += weight
                figures.jump_purchases += jump in bought
                if jump in related_here:
                    figures.jump_exposure_related += weight
                    figures.jump_purchases_related += jump in bought
            # The widget's events, one request a minute after the response; counted as the stream would.
            batch = track_events(
                SHOP, None, {"events": events}, store, now=visit.at + timedelta(minutes=1), rec_ids=REC_IDS
            )
            counted = count_events(store, SHOP, list(batch.written))
            figures.clicks += counted.clicks
            if not bought:
                continue
            # The buyer's order, as the orders/create webhook delivers it, through attribution's use case.
            lines = [(catalog.ids[p], catalog.prices[p], rec_id if visit.carries_rec_id else None) for p in bought]
            order_id = _order_id(day, visit.number, organic=False)
            payload = order_payload(
                order_id,
                visit.at + timedelta(minutes=15),
                lines,
                visit.visitor_id,
                landing_site(world, order_id, visit.landing),
            )
            process_order_created(SHOP, payload, store, rec_ids=lambda: REC_IDS)
            paid = sum(catalog.price_floats[p] for p in bought)
            figures.orders += 1
            figures.realised += paid
            if visit.learning_arm:
                figures.learning_realised += paid
        for payload in organic_left[next_organic:]:
            self.order(payload)
        today = FIRST_DAY + timedelta(days=day)
        figures.purchases = sum(1 for row in store.attributions(SHOP, today, today))
        figures.revenue = store.shop_day_attributed(SHOP, today)[1]
        self.days.append(figures)
        self.night(day)

    def _views(self, visit: Visit) -> int:
        """The visit's product views (the landing, then its trail), as the storefront sends them: one request, a
        couple of minutes after the landing; counted as the events table's stream would count what it stored."""
        viewed = [visit.landing, *visit.trail]
        events = [
            {"type": "view", "visitor_id": visit.visitor_id, "product_id": self.catalog.ids[product]}
            for product in viewed
        ]
        at = visit.at + timedelta(minutes=2)
        batch = track_events(SHOP, None, {"events": events}, self.store, now=at, rec_ids=REC_IDS)
        if batch.written:
            count_events(self.store, SHOP, list(batch.written))
        return len(events)

    def _count_slots(self, figures: DayFigures, landing: int, products: Sequence[Mapping[str, Any]]) -> None:
        types = self.catalog.types
        assert types is not None
        for item in products:
            source = str(item["source"])
            same = types[self.catalog.index[item["product_id"]]] == types[landing]
            figures.sources[source] = figures.sources.get(source, 0) + 1
            figures.same_type += same
            figures.same_type_or_similar += same or source == "similar"

    def night(self, day: int, *, record: bool = True) -> None:
        """The nightly jobs on the day just finished: similarity, then learning (the oracle's: the truth)."""
        today = FIRST_DAY + timedelta(days=day)
        end = datetime.combine(today, datetime.max.time(), tzinfo=UTC)
        similarity_for_shop(SHOP, end, self.store, self.store)
        learn_shop(LearnShop(shop=SHOP, day=today), self.store, self.store)
        model = self.store.model(SHOP)
        if self.policy == "oracle" and model is not None:
            self._oracle_run(model.run, [p.product_id for p in model.best_sellers], model.median_price)
        if not record or self.policy not in LEARNING_POLICIES or model is None:
            return
        blacklisted = [
            self.catalog.index[p.product_id] for p in self.store.performance(SHOP, model.run) if p.blacklisted
        ]
        figures = self.days[-1]
        figures.blacklisted = len(blacklisted)
        figures.wrongly_blacklisted = sum(
            1 for product in blacklisted if self.catalog.cvr[product] >= 2 * self.settings.blacklist_cvr
        )

    def _oracle_run(self, run: str, sellers: list[str], median_price: Decimal | None) -> None:
        """The night's run replaced by the truth: every product's posterior concentrated on its true CVR, under the
        same best sellers, so the oracle ranks through production's path by true expected value."""
        performance = {
            pid: Performance(
                product_id=pid,
                impressions=0,
                clicks=0,
                purchases=0,
                units=0,
                revenue=Decimal(0),
                ctr=0.0,
                cvr=cvr,
                confidence=1.0,
                blacklisted=False,
                reason="oracle",
                alpha=cvr * ORACLE_CERTAINTY,
                beta=(1.0 - cvr) * ORACLE_CERTAINTY,
                price=price,
            )
            for pid, cvr, price in zip(self.catalog.ids, self.catalog.cvr, self.catalog.prices, strict=True)
        }
        prior = Prior(alpha=0.015 * ORACLE_CERTAINTY, beta=0.985 * ORACLE_CERTAINTY)
        self.store.save_run(SHOP, run, "bayes", prior, performance, sellers, median_price)
        if isinstance(self.reader, PageTruth):
            self.reader.forget()


# ------------------------------------------------------------------------------------------------ one run
def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _last(run: PolicyRun, attribute: str) -> float:
    return sum(float(getattr(d, attribute)) for d in run.days[-LAST_DAYS:])


def _series(run: PolicyRun, world: World) -> dict[str, Any]:
    days = run.days
    series: dict[str, Any] = {
        "erpv_by_day": [round(_ratio(d.expected, d.visitors), 4) for d in days],
        "rpv_by_day": [round(_ratio(d.realised, d.visitors), 4) for d in days],
        "attributed_rpv_by_day": [round(_ratio(float(d.revenue), d.visitors), 4) for d in days],
        "learning_arm_erpv_by_day": [round(_ratio(d.learning_expected, d.learning_visitors), 4) for d in days],
        "visitors_by_day": [d.visitors for d in days],
        "widgets_by_day": [d.widgets for d in days],
        "impressions_by_day": [d.impressions for d in days],
        "clicks_by_day": [d.clicks for d in days],
        "orders_by_day": [d.orders for d in days],
        "purchases_by_day": [d.purchases for d in days],
        "filled_slots_by_day": [d.filled for d in days],
        "blacklisted_by_day": [d.blacklisted for d in days],
        "wrongly_blacklisted_by_day": [d.wrongly_blacklisted for d in days],
    }
    if run.catalog.types is not None:
        series["slots_by_source_by_day"] = {source: [d.sources.get(source, 0) for d in days] for source in SLOT_SOURCES}
        series["same_type_slots_by_day"] = [d.same_type for d in days]
        series["same_type_or_similar_slots_by_day"] = [d.same_type_or_similar for d in days]
    if world.views_per_visit > 0:
        series["views_by_day"] = [d.views for d in days]
    if world.jump_day >= 0:
        series["jump_served_share_by_day"] = [round(_ratio(d.jump_served, d.jump_widgets), 3) for d in days]
        series["jump_exposure_by_day"] = [round(d.jump_exposure, 1) for d in days]
        series["jump_purchases_by_day"] = [d.jump_purchases for d in days]
    visitors = _last(run, "visitors")
    series["erpv_last7"] = round(_ratio(_last(run, "expected"), visitors), 5)
    series["rpv_last7"] = round(_ratio(_last(run, "realised"), visitors), 5)
    series["attributed_rpv_last7"] = round(_ratio(_last(run, "revenue"), visitors), 5)
    series["learning_arm_erpv_last7"] = round(
        _ratio(_last(run, "learning_expected"), _last(run, "learning_visitors")), 5
    )
    series["learning_arm_rpv_last7"] = round(
        _ratio(_last(run, "learning_realised"), _last(run, "learning_visitors")), 5
    )
    series["wrongly_blacklisted_share_max"] = round(
        max((d.wrongly_blacklisted for d in days), default=0) / world.products, 5
    )
    return series


def _served_share(figures: DayFigures) -> float:
    return _ratio(figures.jump_served, figures.jump_widgets)


def _rate_after(days: Sequence[DayFigures]) -> float | None:
    """The jump product's purchases per exposure over `days` on the pages it is related to (None: never shown there)."""
    exposure = sum(d.jump_exposure_related for d in days)
    return round(sum(d.jump_purchases_related for d in days) / exposure, 4) if exposure > 0 else None


def _served_again(run: PolicyRun, oracle: PolicyRun, world: World) -> int | None:
    """Days after the jump until the policy serves the product again and keeps serving it: from that day on, it
    shows it on at least half as many of the pages it is related to as the oracle does (the oracle shows it only
    where production's candidates hold it). 0 = the day of the jump; None = not within the run."""
    after = list(zip(run.days[world.jump_day :], oracle.days[world.jump_day :], strict=True))

    def served(pair: tuple[DayFigures, DayFigures]) -> bool:
        mine, best = pair
        return _served_share(best) > 0 and _served_share(mine) >= 0.5 * _served_share(best)

    for offset in range(len(after)):
        if all(served(pair) for pair in after[offset:]):
            return offset
    return None


def play_jump(world: World, catalog: Catalog) -> None:
    """Recovery's jump: the product's true CVR becomes `jump_cvr_after` (and its CTR at least that: a purchase is a
    click's). Played on `jump_day`, before that day's visits."""
    product = catalog.jump_product
    assert product is not None
    catalog.cvr[product] = world.jump_cvr_after
    catalog.ctr[product] = max(catalog.ctr[product], world.jump_cvr_after)


def ideal_widget(world: World, catalog: Catalog, landing: int, position: Sequence[float]) -> float:
    """The expected revenue of the best widget the world allows on a page: its `slots` products of most true value
    on this page (a related one's × its pair effect, an unrelated one's × `unrelated_factor`), the best first. What
    no candidate source can beat."""
    values = sorted(
        (
            catalog.value(j) * catalog.page_factor(landing, j, world.unrelated_factor)
            for j in range(len(catalog.ids))
            if j != landing
        ),
        reverse=True,
    )[: world.slots]
    return sum(value * position[slot] for slot, value in enumerate(values, start=1))


@dataclass
class CoViews:
    """How often each related pair was viewed together (the landing, then its trail) over the run's visits."""

    landings: dict[int, int] = field(default_factory=dict)
    pairs: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(self, visits: Iterable[Visit]) -> None:
        for visit in visits:
            self.landings[visit.landing] = self.landings.get(visit.landing, 0) + 1
            for product in visit.trail:
                pair = (visit.landing, product)
                self.pairs[pair] = self.pairs.get(pair, 0) + 1


CO_VIEW_MIN_LANDINGS = 30  # pages landed on this often have co-view shares worth correlating


def pair_affinity_figures(catalog: Catalog, co_views: CoViews | None) -> dict[str, Any]:
    """What the world's pair effects came out as: their log-sd, the Pearson correlation of log e(p, c) with the
    pair's log co-purchase rate, each product's mean effect over its pages (1 by construction), and
    with views, the rank correlation of e(p, c) with the share of p's landings that viewed c (pages landed on at
    least CO_VIEW_MIN_LANDINGS times)."""
    assert catalog.pair_effects is not None
    effects = [catalog.pair_effects[page][c] for page, row in enumerate(catalog.related) for c in row]
    rates = [rate for row in catalog.co_purchase for rate in row]
    log_effects = [math.log(effect) for effect in effects]
    figures: dict[str, Any] = {
        "log_sd": round(statistics.pstdev(log_effects), 4),
        "co_purchase_log_correlation": round(statistics.correlation(log_effects, [math.log(r) for r in rates]), 4),
        "max": round(max(effects), 3),
    }
    means = product_mean_effects(catalog)
    figures["product_mean_effect_range"] = [round(min(means.values()), 6), round(max(means.values()), 6)]
    if co_views is not None:
        pairs = [
            (catalog.pair_effects[page][c], co_views.pairs.get((page, c), 0) / landed)
            for page, landed in co_views.landings.items()
            if landed >= CO_VIEW_MIN_LANDINGS
            for c in catalog.related[page]
        ]
        figures["co_view_share_rank_correlation"] = round(spearman(*zip(*pairs, strict=True)), 4) if pairs else None
        figures["co_view_pages"] = sum(1 for landed in co_views.landings.values() if landed >= CO_VIEW_MIN_LANDINGS)
    return figures


def product_mean_effects(catalog: Catalog) -> dict[int, float]:
    """Each related product's mean pair effect over the pages it is related to."""
    assert catalog.pair_effects is not None
    totals: dict[int, float] = {}
    counts: dict[int, int] = {}
    for page, row in enumerate(catalog.related):
        for product in row:
            totals[product] = totals.get(product, 0.0) + catalog.pair_effects[page][product]
            counts[product] = counts.get(product, 0) + 1
    return {product: totals[product] / counts[product] for product in totals}


def _window_figures(run: PolicyRun, window: slice) -> dict[str, Any]:
    days = run.days[window]
    slots = sum(d.impressions for d in days)
    visitors = sum(d.visitors for d in days)
    shares = {source: _ratio(sum(d.sources.get(source, 0) for d in days), slots) for source in SLOT_SOURCES}
    shares["same_type"] = _ratio(sum(d.same_type for d in days), slots)
    shares["same_type_or_similar"] = _ratio(sum(d.same_type_or_similar for d in days), slots)
    shares["related"] = _ratio(sum(d.impressions - d.filled for d in days), slots)
    return {
        "slots": slots,
        "widgets_per_visitor": round(_ratio(sum(d.widgets for d in days), visitors), 4),
        "share": {key: round(value, 4) for key, value in shares.items()},
        "erpv": round(_ratio(sum(d.expected for d in days), visitors), 5),
    }


def sources_summary(
    runs: Mapping[str, PolicyRun], ideal_by_day: Sequence[float], visitors_by_day: Sequence[int]
) -> dict[str, Any]:
    """Per variant of the judged policy (every source, co-purchase only, best sellers alone), over the first days
    and the whole run: the share of slots by source, of the page's product type, of the page's type or co-purchased
    (`similar`), of the page's truly related products, the expected revenue per visitor, and the share of the gap
    from best sellers alone to the best widget the world allows (`ideal_widget`) that the variant closes, and of the
    gap from best sellers alone's share of same-type or co-purchased slots to all of them."""
    windows = {"first_days": slice(0, FIRST_DAYS), "all_days": slice(0, None)}
    summary: dict[str, Any] = {"first_days": FIRST_DAYS, "policy": JUDGED_POLICY}
    for label, window in windows.items():
        ideal = _ratio(sum(ideal_by_day[window]), sum(visitors_by_day[window]))
        figures = {variant: _window_figures(run, window) for variant, run in runs.items()}
        floor = figures["best_sellers"]["erpv"]
        least = figures["best_sellers"]["share"]["same_type_or_similar"]
        summary[label] = {
            "ideal_erpv": round(ideal, 5),
            "variants": figures,
            "gap_closed_vs_best_sellers": {
                variant: round(_ratio(entry["erpv"] - floor, ideal - floor), 4)
                for variant, entry in figures.items()
                if variant != "best_sellers"
            },
            "share_gap_closed_vs_best_sellers": {
                variant: round(
                    _ratio(entry["share"]["same_type_or_similar"] - least, 1.0 - least),
                    4,
                )
                for variant, entry in figures.items()
                if variant != "best_sellers"
            },
        }
    return summary


def played_policies(policies: Iterable[str]) -> tuple[str, ...]:
    """The policies to play, in POLICIES' order: `static` and the oracle always (the gap is measured between them).
    A policy's run depends only on the world and its own randomness, so playing fewer changes none of their figures."""
    wanted = {*policies, "static", "oracle"}
    unknown = sorted(wanted - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown policies: {', '.join(unknown)}; of {', '.join(POLICIES)}")
    return tuple(policy for policy in POLICIES if policy in wanted)


def simulate(
    world: World,
    name: str = "custom",
    policies: Iterable[str] = POLICIES,
    shop_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Play the store under each policy (`played_policies`), in lockstep over the same visitors and orders, and report
    per policy; with `compare_sources`, the judged policy also with candidate sources withheld (`SOURCE_VARIANTS`).
    `shop_settings`: the merchant's settings the learning policies play under (`policy_settings`)."""
    started, cpu_started = time.monotonic(), time.process_time()
    catalog = build_catalog(world)
    runs = {
        policy: PolicyRun(policy, world, catalog, shop_settings=shop_settings) for policy in played_policies(policies)
    }
    learning = [policy for policy in LEARNING_POLICIES if policy in runs]
    variants = {
        variant: PolicyRun(JUDGED_POLICY, world, catalog, sources=variant, shop_settings=shop_settings)
        for variant in SOURCE_VARIANTS
        if world.compare_sources and variant != "all" and JUDGED_POLICY in runs
    }
    played = [*runs.values(), *variants.values()]
    history = [payload for day in range(-world.history_days, 0) for payload in organic_orders(world, catalog, day)]
    for run in played:
        run.install(history)
    ideal_by_day: list[float] = []
    ideal_cache: dict[int, float] = {}
    co_views = CoViews()
    for day in range(world.days):
        if day == world.jump_day and catalog.jump_product is not None:
            play_jump(world, catalog)
            oracle = runs["oracle"]
            if (model := oracle.store.model(SHOP)) is not None:
                oracle._oracle_run(model.run, [p.product_id for p in model.best_sellers], model.median_price)
            ideal_cache.clear()
        visits = day_visits(world, catalog, day)
        organic = organic_orders(world, catalog, day)
        co_views.add(visits)
        if variants:
            for visit in visits:
                if visit.landing not in ideal_cache:
                    position = runs[JUDGED_POLICY].position
                    ideal_cache[visit.landing] = ideal_widget(world, catalog, visit.landing, position)
            ideal_by_day.append(sum(ideal_cache[visit.landing] for visit in visits))
        for run in played:
            run.serve_day(day, visits, organic)

    policies = {policy: _series(run, world) for policy, run in runs.items()}

    def gap(key: str, policy: str) -> float:
        static, oracle = policies["static"][key], policies["oracle"][key]
        return round(_ratio(policies[policy][key] - static, oracle - static), 4)

    summary: dict[str, Any] = {
        "erpv_last7": {policy: figures["erpv_last7"] for policy, figures in policies.items()},
        "rpv_last7": {policy: figures["rpv_last7"] for policy, figures in policies.items()},
        # The judged figure: the learning arm's visitors, whom every policy served (static and oracle too).
        "gap_closed_last7": {policy: gap("learning_arm_erpv_last7", policy) for policy in learning},
        "gap_closed_last7_shop": {policy: gap("erpv_last7", policy) for policy in learning},
        "gap_closed_last7_realised": {policy: gap("learning_arm_rpv_last7", policy) for policy in learning},
        "wrongly_blacklisted_share_max": {
            policy: policies[policy]["wrongly_blacklisted_share_max"] for policy in learning
        },
    }
    config: dict[str, Any] = {
        "world": asdict(world),
        "settings": {policy: run.settings.model_dump() for policy, run in runs.items()},
        "co_purchase_rank_correlation": round(catalog.co_purchase_rank_correlation, 4),
        "true_cvr_mean": round(statistics.fmean(catalog.cvr), 5),
        "true_cvr_below_blacklist": sum(1 for c in catalog.cvr if c < 0.005),
        "true_cvr_at_least_twice_blacklist": sum(1 for c in catalog.cvr if c >= 0.01),
        "price_median": str(sorted(catalog.prices)[len(catalog.prices) // 2]),
        "history_orders": len(history),
    }
    if catalog.pair_effects is not None:
        config["pair_affinity"] = pair_affinity_figures(catalog, co_views if world.views_per_visit > 0 else None)
    extra: dict[str, Any] = {}
    if catalog.types is not None:
        related_same = sum(catalog.types[j] == catalog.types[i] for i, row in enumerate(catalog.related) for j in row)
        config["related_same_type_share"] = round(_ratio(related_same, sum(map(len, catalog.related))), 4)
    if variants:
        compared = {"all": runs[JUDGED_POLICY], **variants}
        summary["sources"] = sources_summary(compared, ideal_by_day, policies[JUDGED_POLICY]["visitors_by_day"])
        extra["variants"] = {variant: _series(run, world) for variant, run in variants.items()}
    if catalog.jump_product is not None:
        product = catalog.jump_product
        config["jump"] = {
            "day": world.jump_day,
            "product_id": catalog.ids[product],
            "price": str(catalog.prices[product]),
            "cvr_before": world.jump_cvr_before,
            "cvr_after": world.jump_cvr_after,
            "lists_containing_it": sum(1 for row in catalog.related if product in row),
        }
        summary["recovery_days_after_jump"] = {
            policy: _served_again(run, runs["oracle"], world) for policy, run in runs.items() if policy != "oracle"
        }
        before = slice(max(0, world.jump_day - LAST_DAYS), world.jump_day)
        summary["jump_served_share_week_before"] = {
            policy: round(
                _ratio(sum(d.jump_served for d in run.days[before]), sum(d.jump_widgets for d in run.days[before])), 3
            )
            for policy, run in runs.items()
        }
        # The evidence serving gave the product: its exposure a day in the week before the jump (what it gets while it
        # has not sold: before its first purchase after the jump nothing tells it from any other demoted product),
        # and the days after the jump until it first sold on a widget.
        summary["jump_exposure_a_day_week_before"] = {
            policy: round(_ratio(sum(d.jump_exposure for d in run.days[before]), len(run.days[before])), 1)
            for policy, run in runs.items()
        }
        summary["jump_first_purchase_days_after_jump"] = {
            policy: next((k for k, d in enumerate(run.days[world.jump_day :]) if d.jump_purchases), None)
            for policy, run in runs.items()
        }
        # What its impressions on its own pages sold from the jump on, per exposure, the oracle's included: the new
        # CVR in expectation for every policy (no pair effects here), so on the same seed a policy's rate far under
        # the oracle's is the dice of which visitors it showed the product to, not the policy's doing.
        summary["jump_sales_per_exposure_after_jump"] = {
            policy: _rate_after(run.days[world.jump_day :]) for policy, run in runs.items()
        }
    return {
        "scenario": name,
        "days": world.days,
        "seed": world.seed,
        "config": config,
        "policies": policies,
        **extra,
        "summary": summary,
        "runtime_seconds": round(time.monotonic() - started, 2),
        # This process's own CPU time: on a shared machine the wall time also counts other processes' turns.
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
    }


# ------------------------------------------------------------------------------------------------ plots
def _plot_run(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for policy, figures in result["policies"].items():
        days = range(1, len(figures["erpv_by_day"]) + 1)
        (line,) = axis.plot(days, figures["erpv_by_day"], label=f"{policy} expected", marker=".")
        axis.plot(days, figures["rpv_by_day"], color=line.get_color(), alpha=0.35, linestyle="--")
    if (jump := result["config"].get("jump")) is not None:
        axis.axvline(jump["day"] + 1, color="grey", linestyle=":", label="CVR jump")
    axis.set_xlabel("simulated day")
    axis.set_ylabel("revenue per visitor (dashed: realised)")
    axis.set_title(f"{result['scenario']} (seed {result['seed']}): expected revenue per visitor by day")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_judge(per_scenario: Mapping[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in per_scenario if per_scenario[name]]
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        runs = per_scenario[name]
        series = [(policy, [run["policies"][policy] for run in runs]) for policy in _common(runs, POLICIES)]
        if all("variants" in run for run in runs):  # the judged policy with candidate sources withheld
            series += [
                (f"{JUDGED_POLICY}, {VARIANT_LABELS[variant]}", [run["variants"][variant] for run in runs])
                for variant in runs[0]["variants"]
            ]
        for label, figures in series:
            curves = [entry["erpv_by_day"] for entry in figures]
            days = list(range(1, len(curves[0]) + 1))
            mean = [statistics.fmean(values) for values in zip(*curves, strict=True)]
            low = [min(values) for values in zip(*curves, strict=True)]
            high = [max(values) for values in zip(*curves, strict=True)]
            (line,) = axis.plot(days, mean, label=label, linestyle="-" if label in POLICIES else "--")
            axis.fill_between(days, low, high, color=line.get_color(), alpha=0.12)
        if (jump := runs[0]["config"].get("jump")) is not None:
            axis.axvline(jump["day"] + 1, color="grey", linestyle=":", label="CVR jump")
        axis.set_title(f"{name} (mean of {len(runs)} judged seeds, band = min–max)", fontsize=9)
        axis.set_xlabel("simulated day")
        axis.set_ylabel("expected revenue per visitor")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# ------------------------------------------------------------------------------------------------ the judge
# Student's t, 97.5 % quantile, by degrees of freedom (the 95 % interval of a mean over few seeds).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def spread(values: Sequence[float], seeds: Sequence[int]) -> dict[str, Any]:
    """Mean, worst seed (and which), best, the 95 % t-interval of the mean, and every seed's value."""
    mean = statistics.fmean(values)
    half = (
        _T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    )
    worst = min(range(len(values)), key=values.__getitem__)
    return {
        "mean": round(mean, 4),
        "min": round(values[worst], 4),
        "worst_seed": seeds[worst],
        "max": round(max(values), 4),
        "interval95": [round(mean - half, 4), round(mean + half, 4)] if len(values) > 1 else None,
        "per_seed": {str(seed): round(value, 4) for seed, value in zip(seeds, values, strict=True)},
    }


def settings_tag(shop_settings: Mapping[str, Any]) -> str:
    """The shop settings in a run's file name: "" for the defaults, else "-key=value" per setting, sorted."""
    return "".join(f"-{key}={value}" for key, value in sorted(shop_settings.items()))


def _judge_task(task: tuple[str, int, int | None, str | None, tuple[str, ...], dict[str, Any]]) -> dict[str, Any]:
    """One scenario and seed; with a runs directory, a run already there that played every policy asked for is read
    back instead of played again (a run of every policy keeps its name; a run of fewer names them; a run under
    other shop settings than the defaults names them too)."""
    name, seed, days, runs_dir, policies, shop_settings = task
    world = scenario(name, seed=seed, days=days)  # days None: the scenario's own
    played = played_policies(policies)
    stem = f"{name}-{seed}-{world.days}{settings_tag(shop_settings)}"
    path = None
    if runs_dir:
        kept = [Path(runs_dir) / f"{stem}.json", Path(runs_dir) / f"{stem}-{'+'.join(played)}.json"]
        for candidate in kept:
            if candidate.exists():
                result: dict[str, Any] = json.loads(candidate.read_text())
                if set(played) <= set(result["policies"]):
                    return result
        path = kept[0] if played == POLICIES else kept[1]
    result = simulate(world, name, played, shop_settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result) + "\n")
    return result


def seed_table(runs: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """One scenario's figures over a set of seeds."""
    seeds = [run["seed"] for run in runs]

    def over(values: Iterable[float]) -> dict[str, Any]:
        return spread(list(values), seeds)

    played, learning = _common(runs, POLICIES), _common(runs, LEARNING_POLICIES)
    entry: dict[str, Any] = {
        "seeds": seeds,
        "erpv_last7": {p: over(r["policies"][p]["erpv_last7"] for r in runs) for p in played},
        "rpv_last7": {p: over(r["policies"][p]["rpv_last7"] for r in runs) for p in played},
        "learning_arm_erpv_last7": {p: over(r["policies"][p]["learning_arm_erpv_last7"] for r in runs) for p in played},
        "gap_closed_last7": {p: over(r["summary"]["gap_closed_last7"][p] for r in runs) for p in learning},
        "gap_closed_last7_shop": {p: over(r["summary"]["gap_closed_last7_shop"][p] for r in runs) for p in learning},
        "gap_closed_last7_realised": {
            p: over(r["summary"]["gap_closed_last7_realised"][p] for r in runs) for p in learning
        },
        "wrongly_blacklisted_share_max": {
            p: over(r["summary"]["wrongly_blacklisted_share_max"][p] for r in runs) for p in learning
        },
        "runtime_seconds": over(r["runtime_seconds"] for r in runs),
    }
    if all("cpu_seconds" in r for r in runs):
        entry["cpu_seconds"] = over(r["cpu_seconds"] for r in runs)
    if all("sources" in r["summary"] for r in runs):
        entry["sources"] = sources_table(runs, seeds)
    if name == "recovery":
        # per policy and seed (a run kept before the jump product's evidence was counted has none of it); the
        # oracle's sales per exposure too, what the others' are read against
        learners = [p for p in played if p != "oracle"]
        for key, policies in (
            ("recovery_days_after_jump", learners),
            ("jump_exposure_a_day_week_before", learners),
            ("jump_first_purchase_days_after_jump", learners),
            ("jump_sales_per_exposure_after_jump", played),
        ):
            if all(key in r["summary"] for r in runs):
                entry[key] = {p: {str(r["seed"]): r["summary"][key][p] for r in runs} for p in policies}
    return entry


def _common(runs: Sequence[Mapping[str, Any]], policies: Sequence[str]) -> list[str]:
    """Those of `policies` every run played."""
    return [policy for policy in policies if all(policy in run["policies"] for run in runs)]


def sources_table(runs: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """The candidate sources' figures over seeds: per window and variant, each slot share and the gap closed."""
    table: dict[str, Any] = {}
    for window in ("first_days", "all_days"):
        entries = [r["summary"]["sources"][window] for r in runs]
        variants = list(entries[0]["variants"])
        table[window] = {
            "ideal_erpv": spread([e["ideal_erpv"] for e in entries], seeds),
            "share": {
                variant: {
                    key: spread([e["variants"][variant]["share"][key] for e in entries], seeds)
                    for key in entries[0]["variants"][variant]["share"]
                }
                for variant in variants
            },
            "erpv": {variant: spread([e["variants"][variant]["erpv"] for e in entries], seeds) for variant in variants},
            "gap_closed_vs_best_sellers": {
                variant: spread([e["gap_closed_vs_best_sellers"][variant] for e in entries], seeds)
                for variant in entries[0]["gap_closed_vs_best_sellers"]
            },
            "share_gap_closed_vs_best_sellers": {
                variant: spread([e["share_gap_closed_vs_best_sellers"][variant] for e in entries], seeds)
                for variant in entries[0]["share_gap_closed_vs_best_sellers"]
            },
        }
    return table


def targets_of(table: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's targets on the judged seeds' table: each with its value and whether it is met."""
    targets: dict[str, Any] = {}
    for name, (mean_min, seed_min) in GAP_TARGETS.items():
        target = f"{name}_gap_closed_mean_at_least_{mean_min}_every_seed_at_least_{seed_min}"
        if name not in table or JUDGED_POLICY not in table[name]["gap_closed_last7"]:
            targets[target] = {"value": "not run", "met": False}
            continue
        gap = table[name]["gap_closed_last7"][JUDGED_POLICY]
        targets[target] = {
            "value": {"mean": gap["mean"], "worst": gap["min"], "worst_seed": gap["worst_seed"]},
            "met": gap["mean"] >= mean_min and gap["min"] >= seed_min,
        }
    wrong = {
        name: entry["wrongly_blacklisted_share_max"][JUDGED_POLICY]["max"]
        for name, entry in table.items()
        if JUDGED_POLICY in entry["wrongly_blacklisted_share_max"]
    }
    targets[f"wrongly_blacklisted_at_most_{WRONGLY_BLACKLISTED_MAX:.0%}"] = {
        "value": wrong or "not run",
        "met": bool(wrong) and all(value <= WRONGLY_BLACKLISTED_MAX for value in wrong.values()),
    }
    recovered = f"recovery_served_again_within_{RECOVERY_DAYS_MAX}_days_every_seed"
    if "recovery" in table and JUDGED_POLICY in table["recovery"]["recovery_days_after_jump"]:
        days = table["recovery"]["recovery_days_after_jump"][JUDGED_POLICY]
        targets[recovered] = {
            "value": days,
            "met": all(value is not None and value <= RECOVERY_DAYS_MAX for value in days.values()),
        }
    else:
        targets[recovered] = {"value": "not run", "met": False}
    return targets | context_targets_of(table)


def context_targets_of(table: Mapping[str, Any]) -> dict[str, Any]:
    """The context policy's targets: its gap in the `context` scenario and against the product-level policy seed by
    seed there, and what it loses against it in every scenario without context that was judged."""
    targets: dict[str, Any] = {}
    product_level = PRODUCT_LEVEL_POLICY
    closes = f"context_gap_closed_by_{CONTEXT_POLICY}_mean_at_least_{CONTEXT_GAP_MIN}"
    beats = f"context_{CONTEXT_POLICY}_beats_{product_level}_every_seed"
    gaps = table["context"]["gap_closed_last7"] if "context" in table else {}
    targets[closes] = targets[beats] = {"value": "not run", "met": False}
    if CONTEXT_POLICY in gaps:
        targets[closes] = {
            "value": gaps[CONTEXT_POLICY]["mean"],
            "met": gaps[CONTEXT_POLICY]["mean"] >= CONTEXT_GAP_MIN,
        }
    if CONTEXT_POLICY in gaps and product_level in gaps:
        mine, theirs = gaps[CONTEXT_POLICY]["per_seed"], gaps[product_level]["per_seed"]
        margins = {seed: round(mine[seed] - theirs[seed], 4) for seed in mine}
        targets[beats] = {"value": margins, "met": all(margin > 0 for margin in margins.values())}
    losses = {
        name: round(
            entry["gap_closed_last7"][product_level]["mean"] - entry["gap_closed_last7"][CONTEXT_POLICY]["mean"], 4
        )
        for name, entry in table.items()
        if name != "context" and {CONTEXT_POLICY, product_level} <= set(entry["gap_closed_last7"])
    }
    targets[f"without_context_{CONTEXT_POLICY}_loses_at_most_{CONTEXT_FREE_LOSS_MAX}_against_{product_level}"] = {
        "value": losses or "not run",
        "met": bool(losses) and all(loss <= CONTEXT_FREE_LOSS_MAX for loss in losses.values()),
    }
    return targets


def judge(
    plan: Mapping[str, tuple[Sequence[int], Sequence[int]]],
    days: int | None,
    processes: int | None = None,
    runs_dir: Path | None = None,
    results: Path = RESULTS_DIR / "simulation.json",
    policies: Sequence[str] = POLICIES,
    shop_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every scenario of `plan` (name → judged seeds, seeds reported beside) in parallel, one run per process, each
    playing `policies` (`played_policies`) under `shop_settings` (`policy_settings`); `days` None plays each
    scenario's own length. The document goes to `results`, its plot beside it; a target whose policy was not played
    is "not run" (not met)."""
    started = time.monotonic()
    names = list(plan)
    played = played_policies(policies)
    changes = dict(shop_settings or {})
    tasks = [
        (name, seed, days, str(runs_dir) if runs_dir else None, played, changes)
        for name in names
        for seed in [*plan[name][0], *plan[name][1]]
    ]
    workers = processes or min(len(tasks), os.cpu_count() or 1)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results_by_task = pool.map(_judge_task, tasks, chunksize=1)
    by_seed: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in names}
    for result in results_by_task:
        by_seed[result["scenario"]][result["seed"]] = result
    judged_runs = {name: [by_seed[name][seed] for seed in plan[name][0]] for name in names}
    table = {name: seed_table(judged_runs[name], name) for name in names}
    tuning = {name: seed_table([by_seed[name][s] for s in plan[name][1]], name) for name in names if plan[name][1]}
    targets = targets_of(table)
    document = {
        "benchmark": "simulation",
        "description": (
            "The store simulation (DESIGN.md §3) through production's use cases (recommend, track_events and "
            "count_events, process_order_created, similarity_for_shop, learn_shop) over the data ports in memory, "
            "every scenario over the judged seeds: expected revenue per visitor of what was shown (erpv) and the "
            "realised revenue (rpv) over the last 7 days per policy, the share of the static→oracle expected-revenue "
            "gap the learning policies close on the learning arm's visitors (judged; also shop-wide, holdout "
            "included, and on realised revenue), products wrongly blacklisted (true CVR ≥ 2× the blacklist "
            "threshold, max over days, as a share of the catalogue), and the days after the recovery jump until each "
            "policy serves the product again. `judged` are seeds never tuned on; `tuning_seeds` (used for tuning in "
            "the past) are reported beside and not judged."
        ),
        "config": {
            "judged_seeds": {name: list(seeds) for name, (seeds, _) in plan.items()},
            "tuning_seeds": {name: list(seeds) for name, (_, seeds) in plan.items()},
            "days": {name: scenario(name, days=days).days for name in names},
            "scenarios": {name: SCENARIOS[name] for name in names},
            "processes": workers,
            "judged_policy": JUDGED_POLICY,
            "policies": list(played),
            "shop_settings": changes,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "cpu_count": os.cpu_count(),
            "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        },
        "figures": table,
        "tuning_seeds": tuning,
        "targets": targets,
        "runtime_seconds": round(time.monotonic() - started, 1),
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(document, indent=1) + "\n")
    _plot_judge(judged_runs, results.with_suffix(".png"))
    return document


def _interval(figures: Mapping[str, Any]) -> str:
    interval = "[{:.4f}, {:.4f}]".format(*figures["interval95"]) if figures["interval95"] else "[one seed]"
    return f"{figures['mean']:.4f} {interval} worst {figures['min']:.4f} (seed {figures['worst_seed']})"


def judge_lines(document: Mapping[str, Any]) -> list[str]:
    """The judge table as text: mean, 95 % interval and worst seed per scenario and policy."""
    lines = []
    for label, table in (("judged seeds", document["figures"]), ("tuning seeds, beside", document["tuning_seeds"])):
        for name, entry in table.items():
            lines.append(f"{name} ({label} {entry['seeds']})")
            for policy in entry["erpv_last7"]:
                text = f"  {policy:<7} erpv {_interval(entry['erpv_last7'][policy])}"
                text += f"  rpv {entry['rpv_last7'][policy]['mean']:.4f}"
                if policy in entry["gap_closed_last7"]:
                    text += f"  gap closed {_interval(entry['gap_closed_last7'][policy])}"
                    text += f"  wrongly bl. max {entry['wrongly_blacklisted_share_max'][policy]['max']:.2%}"
                lines.append(text)
            if "recovery_days_after_jump" in entry:
                lines.append(f"  recovery days after the jump: {entry['recovery_days_after_jump']}")
            if "jump_exposure_a_day_week_before" in entry:
                exposed, first = entry["jump_exposure_a_day_week_before"], entry["jump_first_purchase_days_after_jump"]
                lines.append(f"  its exposure a day, week before the jump: {exposed}")
                lines.append(f"  its first purchase, days after the jump: {first}")
            if "jump_sales_per_exposure_after_jump" in entry:
                lines.append(f"  its sales per exposure after the jump: {entry['jump_sales_per_exposure_after_jump']}")
            if "sources" in entry:
                lines += sources_lines(entry["sources"])
            cpu = entry.get("cpu_seconds", {}).get("mean", float("nan"))
            lines.append(f"  per seed: wall {entry['runtime_seconds']['mean']:.1f} s, cpu {cpu:.1f} s")
    for target, verdict in document["targets"].items():
        lines.append(f"{'met' if verdict['met'] else 'NOT met'}: {target} ({verdict['value']})")
    lines.append(f"runtime {document['runtime_seconds']} s")
    return lines


def sources_lines(table: Mapping[str, Any]) -> list[str]:
    """The candidate sources' table as text: per window and variant, the mean slot shares and gap closed."""
    lines = []
    for window, entry in table.items():
        lines.append(f"  {window} (ideal erpv {entry['ideal_erpv']['mean']:.4f}):")
        for variant, shares in entry["share"].items():
            text = "  ".join(f"{key} {figures['mean']:.3f}" for key, figures in shares.items())
            text += f"  erpv {entry['erpv'][variant]['mean']:.4f}"
            if variant in entry["gap_closed_vs_best_sellers"]:
                text += f"  erpv gap closed vs best sellers {_interval(entry['gap_closed_vs_best_sellers'][variant])}"
                text += f"  share gap closed {_interval(entry['share_gap_closed_vs_best_sellers'][variant])}"
            lines.append(f"    {variant:<12} {text}")
    return lines


# ------------------------------------------------------------------------------------------------ the CLI
def _seeds(text: str) -> list[int]:
    """`101-110` or `1,2,5` (or both, comma-separated)."""
    seeds: list[int] = []
    for part in text.split(","):
        if part.strip():
            low, _, high = part.partition("-")
            seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def _policies(text: str) -> list[str]:
    return [policy for policy in text.split(",") if policy]


def _shop_settings(text: str) -> dict[str, Any]:
    """A JSON object of shop settings, as `PUT /admin/settings` takes it, checked as that checks it."""
    try:
        changes = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc.msg}") from exc
    try:
        merge_settings(ShopSettings(), changes)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return dict(changes)


def _per_scenario(values: Sequence[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for value in values:
        name, _, seeds = value.partition("=")
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r} in {value!r}")
        found[name] = _seeds(seeds)
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady")
    parser.add_argument("--out", type=Path, help="the run's JSON (a PNG learning curve is written beside it)")
    parser.add_argument(
        "--judge", action="store_true", help="every scenario over the seeds → results/simulation.*; exit 1 on a miss"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join([*GAP_TARGETS, "context"]),
        help="the judge's scenarios, comma-separated (default: those with a target; launch by name)",
    )
    parser.add_argument("--seeds", type=_seeds, default=list(JUDGED_SEEDS), help="judged seeds (default 101-110)")
    parser.add_argument(
        "--beside-seeds", type=_seeds, default=list(TUNING_SEEDS), help="seeds reported beside, not judged (1-5)"
    )
    parser.add_argument(
        "--seeds-for",
        action="append",
        default=[],
        metavar="SCENARIO=SEEDS",
        help="judged seeds of one scenario, in place of --seeds (e.g. large=101-103)",
    )
    parser.add_argument(
        "--beside-for", action="append", default=[], metavar="SCENARIO=SEEDS", help="seeds beside, for one scenario"
    )
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep each run's JSON here and reuse it")
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR / "simulation.json", help="the judge's JSON (its PNG beside it)"
    )
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument(
        "--policies",
        type=_policies,
        default=list(POLICIES),
        help="the policies played, comma-separated (static and oracle always; default: every one)",
    )
    parser.add_argument(
        "--shop-settings",
        type=_shop_settings,
        default={},
        metavar="JSON",
        help="the learning policies' settings, as PUT /admin/settings takes them: '{\"explore_share\": 0.1}'",
    )
    # Every part of the world is a flag; None keeps the scenario's value.
    for world_field in fields(World):
        flag = "--" + world_field.name.replace("_", "-")
        kind = int if world_field.type in ("int", int) else float
        parser.add_argument(flag, type=kind, default=None, dest=world_field.name)
    return parser


def _world_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {world_field.name: getattr(args, world_field.name) for world_field in fields(World)}


def _print(lines: Iterable[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.judge:
        names = [name for name in args.scenarios.split(",") if name]
        judged = {name: list(args.seeds) for name in names} | _per_scenario(args.seeds_for)
        beside = {name: list(args.beside_seeds) for name in names} | _per_scenario(args.beside_for)
        plan = {name: (judged[name], beside[name]) for name in names}
        document = judge(
            plan, args.days, args.processes, args.runs_dir, args.results, args.policies, args.shop_settings
        )
        _print(judge_lines(document))
        _print([f"results in {args.results} and {args.results.with_suffix('.png').name}"])
        return 0 if all(verdict["met"] for verdict in document["targets"].values()) else 1
    world = scenario(args.scenario, **_world_flags(args))
    result = simulate(world, args.scenario, args.policies, args.shop_settings)
    lines = [f"{args.scenario}, seed {world.seed}, {world.days} days ({result['runtime_seconds']} s)"]
    for policy, figures in result["policies"].items():
        lines.append(
            f"  {policy:<7} erpv last 7 days {figures['erpv_last7']:.4f}  rpv {figures['rpv_last7']:.4f}"
            f"  learning arm erpv {figures['learning_arm_erpv_last7']:.4f}"
            f"  blacklisted at the end {figures['blacklisted_by_day'][-1] if figures['blacklisted_by_day'] else 0}"
            f"  wrongly (max) {figures['wrongly_blacklisted_share_max']:.2%}"
        )
    lines.append(f"  gap closed (expected, learning arm): {result['summary']['gap_closed_last7']}")
    lines.append(f"  gap closed (realised, learning arm): {result['summary']['gap_closed_last7_realised']}")
    if "recovery_days_after_jump" in (summary := result["summary"]):
        lines.append(f"  recovery days after the jump: {summary['recovery_days_after_jump']}")
        lines.append(f"  its exposure a day, week before the jump: {summary['jump_exposure_a_day_week_before']}")
        lines.append(f"  its first purchase, days after the jump: {summary['jump_first_purchase_days_after_jump']}")
    if (sources := result["summary"].get("sources")) is not None:
        for window in ("first_days", "all_days"):
            entry = sources[window]
            lines.append(f"  {window} ({JUDGED_POLICY}; ideal erpv {entry['ideal_erpv']:.4f}):")
            for variant, figures in entry["variants"].items():
                text = "  ".join(f"{key} {value:.3f}" for key, value in figures["share"].items())
                gap = entry["gap_closed_vs_best_sellers"].get(variant)
                share_gap = entry["share_gap_closed_vs_best_sellers"].get(variant)
                closed = (
                    f"  gap closed vs best sellers: erpv {gap:.3f}, share {share_gap:.3f}" if gap is not None else ""
                )
                lines.append(f"    {variant:<12} {text}  erpv {figures['erpv']:.4f}{closed}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        _plot_run(result, out.with_suffix(".png"))
        lines.append(f"  written {out} and {out.with_suffix('.png')}")
    _print(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
