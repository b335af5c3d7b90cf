"""The store simulation (DESIGN.md §3): does the feedback loop learn, and which policy earns the most per visitor?

`python -m benchmarks.simulate --scenario steady --days 28 --seed 1 --out run.json` plays one store day by day
through the domain functions the Lambdas call — `rank` with a `Scorer` for every widget, `counter_increments`
over the widget's impression and click events, `attribute_order` over the buyer's touches for every order, and
each night `aggregate` → `learn` → `best_sellers` over the last `learning_window_days` of product-day counters.
Only the shoppers are simulated. `--judge` runs every scenario over several seeds and writes
`benchmarks/results/simulation.json` and `.png`.

The shopper model. Each product has a true CTR and a true purchase probability per impression (the plan's CVR).
A visitor sees one widget on the product they land on; at slot s a product is clicked with probability
ctr × s^−k and bought with probability cvr × s^−k (k = 0.5: 1/√slot), and a purchase always goes through a
click: both come from one uniform u per (visitor, product), click ⇔ u < ctr·f, buy ⇔ u < cvr·f, with the CTR
raised to the CVR where a draw put it below (so P(buy | click) ≤ 1). Because u belongs to the visitor and the
product, not to the policy, two policies that show the same product in the same slot to the same visitor get the
same outcome: the policies are compared on the same traffic, and differences are the policies', not the dice's.
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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.scenarios import SCENARIOS, World, scenario
from reclift.attribution import Touch, TouchKind, Windows, attribute_order
from reclift.learning import (
    Performance,
    Prior,
    ProductDay,
    ProductWindow,
    aggregate,
    best_sellers,
    learn,
    median_price,
)
from reclift.orders import Order, OrderLine
from reclift.ranking import Arm, Candidate, Ranked, Scorer, assign_arm, rank
from reclift.settings import ShopSettings
from reclift.tracking import TrackedEvent, counter_increments

POLICIES = ("static", "seed", "bayes", "oracle")
LEARNING_POLICIES = ("seed", "bayes")
SHOP = "sim-store.myshopify.com"
FIRST_DAY = date(2025, 3, 3)
PRODUCT_ID_BASE = 7_000_000_000_000  # Shopify-like numeric product ids
ORACLE_CERTAINTY = 1e12  # a posterior this concentrated is the true CVR itself
RESULTS_DIR = Path(__file__).resolve().parent / "results"
JUDGE_SEEDS = 5
LAST_DAYS = 7  # policies are judged on the last week, once learning has had three weeks of data


# ------------------------------------------------------------------------------------------------ the world
@dataclass
class Catalog:
    """The products and their truths. `cvr` and `ctr` are per impression at slot 1; ctr ≥ cvr always."""

    ids: list[str]
    index: dict[str, int]
    prices: list[Decimal]
    ctr: list[float]
    cvr: list[float]
    related: list[list[int]]
    related_slot: list[dict[int, int]]  # related[i][k] = j  ⇔  related_slot[i][j] = k
    candidates: list[list[Candidate]]  # the landing product's related products, as ranking receives them
    exclude: list[tuple[str, ...]]  # the current product is never recommended on its own page
    landing_cumulative: list[float]
    similarity_rank_correlation: float  # measured over every (product, related product) pair
    similarity_rank_correlation_within_lists: float  # mean over the lists, which is what ranking sees
    jump_product: int | None

    def value(self, product: int) -> float:
        """The true expected revenue per impression at slot 1: what the oracle ranks by."""
        return self.cvr[product] * float(self.prices[product])


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    for position, item in enumerate(order):
        ranks[item] = float(position)
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Rank correlation (continuous draws: ties have probability zero)."""
    rx, ry = _ranks(xs), _ranks(ys)
    if len(xs) < 2:
        return 0.0
    return statistics.correlation(rx, ry)


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
    for i in range(n):
        others = rng.sample(range(n - 1), related_count)
        related.append([j if j < i else j + 1 for j in others])

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

    # Similarity: a Gaussian copula with the product's true value. Pearson ρ = 2·sin(π·r_s/6) gives Spearman r_s;
    # the value's normal score is exact in rank, so the planted correlation does not depend on the value's shape.
    values = [c * float(p) for c, p in zip(cvr, prices, strict=True)]
    normal = statistics.NormalDist()
    normal_score = [normal.inv_cdf((r + 0.5) / n) for r in _ranks(values)]
    rho = 2.0 * math.sin(math.pi * world.similarity_rank_correlation / 6.0)
    noise = math.sqrt(max(0.0, 1.0 - rho * rho))
    similarity: list[list[float]] = []
    for i in range(n):
        row = []
        for j in related[i]:
            z = rho * normal_score[j] + noise * rng.gauss(0.0, 1.0)
            # Jaccard-like scores: around 0.1, a few times apart within one list, never above 1.
            row.append(min(1.0, 0.1 * math.exp(world.similarity_sigma * z)))
        similarity.append(row)

    pair_similarity = [s for row in similarity for s in row]
    pair_value = [values[j] for row in related for j in row]
    within = [spearman(similarity[i], [values[j] for j in related[i]]) for i in range(n) if len(related[i]) > 2]
    return Catalog(
        ids=ids,
        index={pid: i for i, pid in enumerate(ids)},
        prices=prices,
        ctr=ctr,
        cvr=cvr,
        related=related,
        related_slot=[{j: k for k, j in enumerate(row)} for row in related],
        candidates=[
            [Candidate(ids[j], round(s, 6), prices[j]) for j, s in zip(related[i], similarity[i], strict=True)]
            for i in range(n)
        ],
        exclude=[(pid,) for pid in ids],
        landing_cumulative=landing_cumulative,
        similarity_rank_correlation=spearman(pair_similarity, pair_value),
        similarity_rank_correlation_within_lists=statistics.fmean(within) if within else 0.0,
        jump_product=jump_product,
    )


def _choose_jump_product(
    world: World, prices: Sequence[Decimal], related: Sequence[Sequence[int]], weights: Sequence[float]
) -> int:
    """The product the jump is planted on: the most-trafficked candidate priced at least at the median.

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


# ------------------------------------------------------------------------------------------------ visitors
@dataclass(frozen=True)
class Visit:
    """One visitor's day: everything the dice decide that no policy can change."""

    number: int
    visitor_id: str
    landing: int
    at: datetime
    draws: tuple[float, ...]  # the uniform u for each of the landing product's related products, in list order
    carries_rec_id: bool
    arm: Arm  # the learning policies' arm for this visitor (sticky: a hash of shop and visitor)

    def uniform(self, catalog: Catalog, product: int) -> float:
        slot = catalog.related_slot[self.landing].get(product)
        if slot is not None:
            return self.draws[slot]
        # A best seller outside the list: its own stream, still the visitor's and the product's, not the policy's.
        return random.Random(f"{self.visitor_id}:{product}").random()


def day_visits(world: World, catalog: Catalog, day: int, holdout_share: float) -> list[Visit]:
    """The day's visitors, each from their own seeded stream, so every policy meets exactly the same people."""
    arrivals = random.Random(f"arrivals:{world.seed}:{day}")
    mean = world.visitors_per_day
    count = max(0, round(arrivals.gauss(mean, math.sqrt(mean))))  # Poisson-like day-to-day variation
    start = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
    related_count = world.related_per_product
    visits: list[Visit] = []
    for number in range(count):
        visitor_id = f"v{world.seed}-{day}-{number}"
        stream = random.Random(f"visitor:{world.seed}:{day}:{number}")
        landing = min(bisect.bisect_left(catalog.landing_cumulative, stream.random()), world.products - 1)
        # Visits end by 23:00 so that the order placed after the widget falls on the same day's counters.
        at = start + timedelta(seconds=int(stream.random() * 82_800))
        draws = tuple(stream.random() for _ in range(related_count))
        carries_rec_id = stream.random() < world.rec_id_share
        arm = assign_arm(SHOP, visitor_id, holdout_share)
        visits.append(Visit(number, visitor_id, landing, at, draws, carries_rec_id, arm))
    return visits


# ------------------------------------------------------------------------------------------------ a policy
@dataclass(frozen=True)
class NightlyScorer(Scorer):
    """The night's Scorer with its scores memoized: its performance and prior are fixed until the next learning
    run, so a candidate's score is too. The scoring itself is Scorer's; only repeated work is skipped."""

    memo: dict[Candidate, float] = field(default_factory=dict, compare=False, repr=False)

    def score(self, candidate: Candidate) -> float:
        value = self.memo.get(candidate)
        if value is None:
            value = super().score(candidate)
            self.memo[candidate] = value
        return value


@dataclass
class DayFigures:
    visitors: int = 0
    widgets: int = 0
    impressions: int = 0
    clicks: int = 0
    orders: int = 0
    purchases: int = 0  # attributed lines
    revenue: Decimal = Decimal(0)  # attributed revenue
    holdout_visitors: int = 0
    holdout_revenue: Decimal = Decimal(0)
    explored: int = 0
    filled: int = 0  # slots taken by best sellers
    jump_widgets: int = 0  # widgets in which the jump product was a candidate
    jump_served: int = 0  # … and the policy chose it (not an exploration draw)
    blacklisted: int = 0  # after the night's learning
    wrongly_blacklisted: int = 0


class PolicyRun:
    """One policy playing the store: the counters it writes, the learning it runs, what it earns."""

    def __init__(self, policy: str, world: World, catalog: Catalog) -> None:
        self.policy = policy
        self.world = world
        self.catalog = catalog
        if policy == "oracle":
            # Ranks through the same rank() by expected value per impression with the true CVR as its "posterior".
            self.settings = ShopSettings(policy="bayes", explore_share=0.0, holdout_share=0.0)
        elif policy in LEARNING_POLICIES:
            self.settings = ShopSettings(
                policy="seed" if policy == "seed" else "bayes", holdout_share=world.holdout_share
            )
        else:
            self.settings = ShopSettings(holdout_share=0.0)
        self.windows = Windows.of_days(self.settings.click_window_days, self.settings.view_window_days)
        self.scorer: Scorer = NightlyScorer(settings=self.settings, performance={}, prior=None)
        # rank() has no randomness unless the policy explores: its answer for a page is then the same all night.
        self.deterministic = not (self.settings.policy == "bayes" and self.settings.explore_share > 0)
        self.rankings: dict[tuple[int, Arm], list[Ranked]] = {}
        self.fill: list[Candidate] = []
        self.history: dict[date, list[ProductDay]] = {}
        self.days: list[DayFigures] = []
        if policy == "oracle":
            self.refresh_oracle()

    def refresh_oracle(self) -> None:
        """The oracle's scorer from the current truths (again after the recovery jump)."""
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
        self.scorer = NightlyScorer(settings=self.settings, performance=performance, prior=prior)
        self.rankings.clear()

    # -------------------------------------------------------------------------------------------- one day
    def serve_day(self, day: int, visits: Sequence[Visit]) -> None:
        catalog, world = self.catalog, self.world
        today = FIRST_DAY + timedelta(days=day)
        figures = DayFigures(visitors=len(visits))
        rng = random.Random(f"policy:{world.seed}:{self.policy}:{day}")  # only the policy's own randomness
        position = [0.0] + [s**-world.position_exponent for s in range(1, world.slots + 1)]
        fill_ids = {candidate.product_id for candidate in self.fill}
        jump_id = catalog.ids[catalog.jump_product] if catalog.jump_product is not None else None
        events: list[TrackedEvent] = []
        purchases: dict[str, list[OrderLine]] = defaultdict(list)
        for visit in visits:
            arm: Arm = "holdout" if self.policy == "static" else visit.arm
            ranked = self.rankings.get((visit.landing, arm)) if self.deterministic or arm == "holdout" else None
            if ranked is None:
                ranked = rank(
                    catalog.candidates[visit.landing],
                    self.fill,
                    self.scorer,
                    arm=arm,
                    limit=world.slots,
                    exclude=catalog.exclude[visit.landing],
                    rng=rng,
                )
                if self.deterministic or arm == "holdout":
                    self.rankings[(visit.landing, arm)] = ranked
            if not ranked:
                continue
            figures.widgets += 1
            rec_id = f"r{world.seed}-{day}-{visit.number}"
            shown = tuple(item.product_id for item in ranked)
            impression = TrackedEvent(
                event_id=f"{rec_id}-i",
                type="impression",
                at=visit.at,
                visitor_id=visit.visitor_id,
                customer_id=None,
                rec_id=rec_id,
                placement="product",
                source_product_id=catalog.ids[visit.landing],
                product_ids=shown,
                positions=tuple(range(1, len(shown) + 1)),
            )
            events.append(impression)
            touches = [Touch(impression.event_id, TouchKind.IMPRESSION, visit.at, shown, rec_id)]
            bought: list[int] = []
            related_here = catalog.related_slot[visit.landing]
            for slot, item in enumerate(ranked, start=1):
                product = catalog.index[item.product_id]
                u = visit.uniform(catalog, product)
                factor = position[slot]
                if item.explored:
                    figures.explored += 1
                if product not in related_here:
                    factor *= world.unrelated_factor
                    figures.filled += item.product_id in fill_ids
                if u >= catalog.ctr[product] * factor:
                    continue
                clicked_at = visit.at + timedelta(seconds=20 * slot)
                click = TrackedEvent(
                    event_id=f"{rec_id}-c{slot}",
                    type="click",
                    at=clicked_at,
                    visitor_id=visit.visitor_id,
                    customer_id=None,
                    rec_id=rec_id,
                    placement=None,
                    source_product_id=None,
                    product_ids=(item.product_id,),
                    positions=(slot,),
                )
                events.append(click)
                touches.append(Touch(click.event_id, TouchKind.CLICK, clicked_at, click.product_ids, rec_id))
                if u < catalog.cvr[product] * factor:
                    bought.append(product)
            if jump_id is not None and catalog.jump_product in catalog.related_slot[visit.landing]:
                figures.jump_widgets += 1
                figures.jump_served += any(item.product_id == jump_id and not item.explored for item in ranked)
            arm_is_holdout = arm == "holdout" and self.policy != "static"
            figures.holdout_visitors += arm_is_holdout
            if not bought:
                continue
            # The buyer's order, as the orders/create webhook would deliver it, through attribution.
            order = Order(
                order_id=f"{day:03d}{visit.number:07d}",
                created_at=visit.at + timedelta(minutes=15),
                currency="USD",
                test=False,
                customer_id=None,
                visitor_id=visit.visitor_id,
                lines=tuple(
                    OrderLine(
                        line_id=f"{visit.number}{k}",
                        product_id=catalog.ids[product],
                        quantity=1,
                        unit_price=catalog.prices[product],
                        discount=Decimal(0),
                        rec_id=rec_id if visit.carries_rec_id else None,
                    )
                    for k, product in enumerate(bought)
                ),
            )
            result = attribute_order(order, touches, self.windows)
            figures.orders += 1
            for line in result.attributed:
                purchases[line.product_id].append(line.line)
            figures.purchases += len(result.attributed)
            figures.revenue += result.revenue
            if arm_is_holdout:
                figures.holdout_revenue += result.revenue
        figures.impressions = sum(len(event.product_ids) for event in events if event.type == "impression")
        figures.clicks = sum(1 for event in events if event.type == "click")

        # The day's counters: tracking's increments plus attribution's purchases, as the stores write them.
        counts = counter_increments(events)
        rows: list[ProductDay] = []
        day_key = today.isoformat()
        products = {pid for (key, pid) in counts if key == day_key} | set(purchases)
        for pid in sorted(products):
            count = counts.get((day_key, pid))
            lines = purchases.get(pid, [])
            rows.append(
                ProductDay(
                    day=today,
                    product_id=pid,
                    impressions=count.impressions if count else 0,
                    clicks=count.clicks if count else 0,
                    purchases=len(lines),
                    units=sum(line.quantity for line in lines),
                    revenue=sum((line.revenue for line in lines), Decimal(0)),
                )
            )
        self.history[today] = rows
        self.days.append(figures)

    def learn_night(self, day: int) -> None:
        """The nightly job: the last window of counters → the policy's performance, best sellers and scorer."""
        today = FIRST_DAY + timedelta(days=day)
        window_days = self.settings.learning_window_days
        for old in [d for d in self.history if (today - d).days >= window_days]:
            del self.history[old]
        windows = aggregate(
            (row for rows in self.history.values() for row in rows),
            today=today,
            window_days=window_days,
            half_life_days=self.settings.half_life_days,
            recent_days=self.settings.explore_window_days,
        )
        self.fill = self._fill(windows)
        self.rankings.clear()  # the fill changed
        if self.policy not in LEARNING_POLICIES:
            return
        prior, performance = learn(windows, self.settings)
        self.scorer = NightlyScorer(
            settings=self.settings, performance=performance, prior=prior, fallback_price=median_price(windows.values())
        )
        figures = self.days[-1]
        blacklisted = [self.catalog.index[p.product_id] for p in performance.values() if p.blacklisted]
        figures.blacklisted = len(blacklisted)
        figures.wrongly_blacklisted = sum(
            1 for product in blacklisted if self.catalog.cvr[product] >= 2 * self.settings.blacklist_cvr
        )

    def _fill(self, windows: Mapping[str, ProductWindow]) -> list[Candidate]:
        sellers = best_sellers(windows, self.world.fill_candidates)
        # Best sellers carry a descending score (ranking's convention) and their catalog price.
        return [
            Candidate(pid, round(1.0 - k / (len(sellers) + 1), 6), self.catalog.prices[self.catalog.index[pid]])
            for k, pid in enumerate(sellers)
        ]


# ------------------------------------------------------------------------------------------------ one run
def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _series(run: PolicyRun, world: World) -> dict[str, Any]:
    days = run.days
    revenue = [float(d.revenue) for d in days]
    series: dict[str, Any] = {
        "revenue_by_day": [round(r, 2) for r in revenue],
        "visitors_by_day": [d.visitors for d in days],
        "impressions_by_day": [d.impressions for d in days],
        "clicks_by_day": [d.clicks for d in days],
        "orders_by_day": [d.orders for d in days],
        "purchases_by_day": [d.purchases for d in days],
        "rpv_by_day": [round(_ratio(r, d.visitors), 4) for r, d in zip(revenue, days, strict=True)],
        "rpm_by_day": [round(_ratio(1000 * r, d.impressions), 3) for r, d in zip(revenue, days, strict=True)],
        "cvr_by_day": [round(_ratio(d.purchases, d.impressions), 5) for d in days],
        "ctr_by_day": [round(_ratio(d.clicks, d.impressions), 5) for d in days],
        "explored_slots_by_day": [d.explored for d in days],
        "filled_slots_by_day": [d.filled for d in days],
        "blacklisted_by_day": [d.blacklisted for d in days],
        "wrongly_blacklisted_by_day": [d.wrongly_blacklisted for d in days],
    }
    if world.holdout_share > 0 and run.policy in LEARNING_POLICIES:
        series["learning_arm_rpv_by_day"] = [
            round(_ratio(float(d.revenue - d.holdout_revenue), d.visitors - d.holdout_visitors), 4) for d in days
        ]
        series["holdout_arm_rpv_by_day"] = [
            round(_ratio(float(d.holdout_revenue), d.holdout_visitors), 4) for d in days
        ]
    if world.jump_day >= 0:
        series["jump_served_share_by_day"] = [round(_ratio(d.jump_served, d.jump_widgets), 3) for d in days]
    last = days[-LAST_DAYS:]
    last_revenue = sum(float(d.revenue) for d in last)
    series["rpv_last7"] = round(_ratio(last_revenue, sum(d.visitors for d in last)), 4)
    series["rpm_last7"] = round(_ratio(1000 * last_revenue, sum(d.impressions for d in last)), 3)
    series["cvr_last7"] = round(_ratio(sum(d.purchases for d in last), sum(d.impressions for d in last)), 5)
    series["wrongly_blacklisted_share_max"] = round(
        max((d.wrongly_blacklisted for d in days), default=0) / world.products, 5
    )
    return series


def _served(figures: DayFigures) -> bool:
    return bool(figures.jump_widgets) and figures.jump_served / figures.jump_widgets >= 0.5


def _served_again(run: PolicyRun, world: World) -> int | None:
    """Days after the jump until the policy serves the product again and keeps serving it: from that day on, it
    chooses it (not by an exploration draw) in at least half of the widgets where it is a candidate. 0 = the day of
    the jump; None = not within the run. "Keeps" so that a product retried once as its old evidence fades does not
    count as recovered before the policy has seen a single purchase at the new rate."""
    after = run.days[world.jump_day :]
    for offset in range(len(after)):
        if all(_served(figures) for figures in after[offset:] if figures.jump_widgets):
            return offset if _served(after[offset]) else None
    return None


def simulate(world: World, name: str = "custom") -> dict[str, Any]:
    """Play the store under every policy, in lockstep over the same visitors, and report per policy and day."""
    started = time.monotonic()
    catalog = build_catalog(world)
    runs = {policy: PolicyRun(policy, world, catalog) for policy in POLICIES}
    for day in range(world.days):
        if day == world.jump_day and catalog.jump_product is not None:
            product = catalog.jump_product
            catalog.cvr[product] = world.jump_cvr_after
            catalog.ctr[product] = max(catalog.ctr[product], world.jump_cvr_after)
            runs["oracle"].refresh_oracle()
        visits = day_visits(world, catalog, day, world.holdout_share)
        for run in runs.values():
            run.serve_day(day, visits)
            run.learn_night(day)

    policies = {policy: _series(run, world) for policy, run in runs.items()}
    static, oracle = policies["static"]["rpv_last7"], policies["oracle"]["rpv_last7"]
    summary: dict[str, Any] = {
        "rpv_last7": {policy: figures["rpv_last7"] for policy, figures in policies.items()},
        "gap_closed_last7": {
            policy: round(_ratio(policies[policy]["rpv_last7"] - static, oracle - static), 4)
            for policy in LEARNING_POLICIES
        },
        "wrongly_blacklisted_share_max": {
            policy: policies[policy]["wrongly_blacklisted_share_max"] for policy in LEARNING_POLICIES
        },
    }
    config: dict[str, Any] = {
        "world": asdict(world),
        "settings": {policy: runs[policy].settings.model_dump() for policy in POLICIES},
        "similarity_rank_correlation": round(catalog.similarity_rank_correlation, 4),
        "similarity_rank_correlation_within_lists": round(catalog.similarity_rank_correlation_within_lists, 4),
        "true_cvr_mean": round(statistics.fmean(catalog.cvr), 5),
        "true_cvr_below_blacklist": sum(1 for c in catalog.cvr if c < 0.005),
        "true_cvr_at_least_twice_blacklist": sum(1 for c in catalog.cvr if c >= 0.01),
        "price_median": str(sorted(catalog.prices)[len(catalog.prices) // 2]),
    }
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
        summary["recovery_days_after_jump"] = {policy: _served_again(run, world) for policy, run in runs.items()}
        before = slice(max(0, world.jump_day - LAST_DAYS), world.jump_day)
        # Evidence that the product had been demoted: its served share over the week before the jump.
        summary["jump_served_share_week_before"] = {
            policy: round(
                _ratio(sum(d.jump_served for d in run.days[before]), sum(d.jump_widgets for d in run.days[before])), 3
            )
            for policy, run in runs.items()
        }
    return {
        "scenario": name,
        "days": world.days,
        "seed": world.seed,
        "config": config,
        "policies": policies,
        "summary": summary,
        "runtime_seconds": round(time.monotonic() - started, 2),
    }


# ------------------------------------------------------------------------------------------------ plots
def _plot_run(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for policy, figures in result["policies"].items():
        days = range(1, len(figures["rpv_by_day"]) + 1)
        axis.plot(days, figures["rpv_by_day"], label=policy, marker=".")
    if (jump := result["config"].get("jump")) is not None:
        axis.axvline(jump["day"] + 1, color="grey", linestyle=":", label="CVR jump")
    axis.set_xlabel("simulated day")
    axis.set_ylabel("revenue per visitor")
    axis.set_title(f"{result['scenario']} (seed {result['seed']}): revenue per visitor by day")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_judge(per_scenario: Mapping[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(per_scenario)
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        runs = per_scenario[name]
        for policy in POLICIES:
            curves = [run["policies"][policy]["rpv_by_day"] for run in runs]
            days = list(range(1, len(curves[0]) + 1))
            mean = [statistics.fmean(values) for values in zip(*curves, strict=True)]
            low = [min(values) for values in zip(*curves, strict=True)]
            high = [max(values) for values in zip(*curves, strict=True)]
            (line,) = axis.plot(days, mean, label=policy)
            axis.fill_between(days, low, high, color=line.get_color(), alpha=0.12)
        if (jump := runs[0]["config"].get("jump")) is not None:
            axis.axvline(jump["day"] + 1, color="grey", linestyle=":", label="CVR jump")
        axis.set_title(f"{name} (mean of {len(runs)} seeds, band = min–max)")
        axis.set_xlabel("simulated day")
        axis.set_ylabel("revenue per visitor")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# ------------------------------------------------------------------------------------------------ the judge
def _judge_task(task: tuple[str, int, int]) -> dict[str, Any]:
    name, seed, days = task
    return simulate(scenario(name, seed=seed, days=days), name)


def _spread(values: Sequence[float]) -> dict[str, Any]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "per_seed": [round(v, 4) for v in values],
    }


def judge(seeds: int, days: int, processes: int | None = None) -> dict[str, Any]:
    """Every scenario over `seeds` seeds, in parallel; the figures and whether the issue's targets are met."""
    started = time.monotonic()
    # The largest first, so that the pool is not left waiting on one long run at the end.
    order = sorted(SCENARIOS, key=lambda name: -SCENARIOS[name]["products"] * SCENARIOS[name]["visitors_per_day"])
    tasks = [(name, seed, days) for name in order for seed in range(1, seeds + 1)]
    workers = processes or min(len(tasks), os.cpu_count() or 1)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_judge_task, tasks, chunksize=1)
    per_scenario: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
    for result in results:
        per_scenario[result["scenario"]].append(result)

    table: dict[str, Any] = {}
    for name, runs in per_scenario.items():
        entry: dict[str, Any] = {
            "rpv_last7": {policy: _spread([r["policies"][policy]["rpv_last7"] for r in runs]) for policy in POLICIES},
            "rpm_last7": {policy: _spread([r["policies"][policy]["rpm_last7"] for r in runs]) for policy in POLICIES},
            "gap_closed_last7": {
                policy: _spread([r["summary"]["gap_closed_last7"][policy] for r in runs])
                for policy in LEARNING_POLICIES
            },
            "wrongly_blacklisted_share_max": {
                policy: _spread([r["summary"]["wrongly_blacklisted_share_max"][policy] for r in runs])
                for policy in LEARNING_POLICIES
            },
            "blacklisted_last_day": {
                policy: _spread([r["policies"][policy]["blacklisted_by_day"][-1] for r in runs])
                for policy in LEARNING_POLICIES
            },
            "similarity_rank_correlation": _spread([r["config"]["similarity_rank_correlation"] for r in runs]),
            "runtime_seconds": _spread([r["runtime_seconds"] for r in runs]),
        }
        if name == "recovery":
            entry["recovery_days_after_jump"] = {
                policy: [r["summary"]["recovery_days_after_jump"][policy] for r in runs] for policy in POLICIES
            }
        table[name] = entry

    def gap(name: str, policy: str) -> float:
        return float(table[name]["gap_closed_last7"][policy]["mean"])

    recovery = table["recovery"]["recovery_days_after_jump"]["bayes"]
    targets = {
        "bayes_gap_closed_steady_at_least_0.80": {
            "value": gap("steady", "bayes"),
            "met": gap("steady", "bayes") >= 0.8,
        },
        "bayes_gap_closed_large_at_least_0.80": {"value": gap("large", "bayes"), "met": gap("large", "bayes") >= 0.8},
        "bayes_gap_closed_small_at_least_0.60": {"value": gap("small", "bayes"), "met": gap("small", "bayes") >= 0.6},
        "bayes_ahead_of_seed_everywhere": {
            "value": {name: [gap(name, "seed"), gap(name, "bayes")] for name in SCENARIOS},
            "met": all(
                table[name]["rpv_last7"]["bayes"]["mean"] > table[name]["rpv_last7"]["seed"]["mean"]
                for name in SCENARIOS
            ),
        },
        "wrongly_blacklisted_at_most_1pct": {
            "value": {
                name: {p: table[name]["wrongly_blacklisted_share_max"][p]["max"] for p in LEARNING_POLICIES}
                for name in SCENARIOS
            },
            "met": all(table[name]["wrongly_blacklisted_share_max"]["bayes"]["max"] <= 0.01 for name in SCENARIOS),
        },
        "recovery_within_7_days": {
            "value": recovery,
            "met": all(days_after is not None and days_after <= 7 for days_after in recovery),
        },
    }
    document = {
        "benchmark": "simulation",
        "description": (
            "The store simulation (DESIGN.md §3) over every scenario and several seeds: revenue per visitor over the "
            "last 7 days per policy, the share of the static→oracle gap the learning policies close, products wrongly "
            "blacklisted (true CVR ≥ 2× the blacklist threshold, max over days, as a share of the catalogue), and the "
            "days after the recovery jump until each policy serves the jumped product again."
        ),
        "config": {"seeds": list(range(1, seeds + 1)), "days": days, "scenarios": SCENARIOS, "processes": workers},
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "cpu_count": os.cpu_count(),
            "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        },
        "figures": table,
        "targets": targets,
        "runtime_seconds": round(time.monotonic() - started, 1),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "simulation.json").write_text(json.dumps(document, indent=1) + "\n")
    _plot_judge(per_scenario, RESULTS_DIR / "simulation.png")
    return document


def judge_lines(document: Mapping[str, Any]) -> list[str]:
    """The judge table as text: mean over seeds [min–max] per scenario and policy."""
    lines = [f"{'scenario':<10}{'policy':<8}{'rpv last 7':>24}{'gap closed':>24}{'wrongly bl. max':>18}"]
    for name, entry in document["figures"].items():
        for policy in POLICIES:
            rpv = entry["rpv_last7"][policy]
            text = f"{name:<10}{policy:<8}{rpv['mean']:>10.4f} [{rpv['min']:.4f}–{rpv['max']:.4f}]"
            if policy in LEARNING_POLICIES:
                g = entry["gap_closed_last7"][policy]
                w = entry["wrongly_blacklisted_share_max"][policy]
                text += f"{g['mean']:>10.3f} [{g['min']:.3f}–{g['max']:.3f}]{w['max']:>12.2%}"
            lines.append(text)
        if "recovery_days_after_jump" in entry:
            lines.append(f"{'':<10}recovery days after the jump per seed: {entry['recovery_days_after_jump']}")
    for target, verdict in document["targets"].items():
        lines.append(f"{'met' if verdict['met'] else 'NOT met'}: {target} ({verdict['value']})")
    lines.append(f"runtime {document['runtime_seconds']} s")
    return lines


# ------------------------------------------------------------------------------------------------ the CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady")
    parser.add_argument("--out", type=Path, help="the run's JSON (a PNG learning curve is written beside it)")
    parser.add_argument("--judge", action="store_true", help="every scenario over --seeds seeds → results/simulation.*")
    parser.add_argument("--seeds", type=int, default=JUDGE_SEEDS)
    parser.add_argument("--processes", type=int, default=None)
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
        document = judge(args.seeds, args.days or World().days, args.processes)
        _print(judge_lines(document))
        _print([f"results in {RESULTS_DIR / 'simulation.json'} and simulation.png"])
        return 0
    world = scenario(args.scenario, **_world_flags(args))
    result = simulate(world, args.scenario)
    lines = [f"{args.scenario}, seed {world.seed}, {world.days} days ({result['runtime_seconds']} s)"]
    for policy, figures in result["policies"].items():
        lines.append(
            f"  {policy:<7} rpv last 7 days {figures['rpv_last7']:.4f}  rpm {figures['rpm_last7']:.2f}"
            f"  cvr {figures['cvr_last7']:.3%}  blacklisted at the end {figures['blacklisted_by_day'][-1]}"
            f"  wrongly (max) {figures['wrongly_blacklisted_share_max']:.2%}"
        )
    lines.append(f"  gap closed: {result['summary']['gap_closed_last7']}")
    if "recovery_days_after_jump" in result["summary"]:
        lines.append(f"  recovery days after the jump: {result['summary']['recovery_days_after_jump']}")
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
