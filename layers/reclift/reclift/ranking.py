"""Ranking at request time (DESIGN.md §3): candidates → exclusions → the shop's policy → top N.

Pinned products (the merchant's, for the placement) come first in their order, then the similar products (bought
together, `similar`, and viewed together, `viewed_together`: one group, each candidate's similarity the sum of its
two sources' similarities, each weighted by the shop's weight of its source, and its source the one that gave it
more; see logic.recommendations.similar_candidates), then the catalog neighbours (same type, vendor or tags, near in
price: a new shop's candidates before it has orders), and
spare slots are filled with best sellers. The learning arm applies the policy within each of these groups; the
sticky holdout arm gets the same candidates in similarity order with no learning adjustment, so that lift is
measured rather than assumed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, get_args

from reclift.context import ContextPrior
from reclift.learning import Performance, Prior
from reclift.settings import ShopSettings

Arm = Literal["learning", "holdout"]
# Where a recommended product comes from, in the order the groups are shown.
Source = Literal["pinned", "similar", "viewed_together", "catalog", "best_seller"]
SOURCES: tuple[Source, ...] = get_args(Source)
HOLDOUT_SALT = "reclift-holdout-v1"


@dataclass(frozen=True)
class Candidate:
    product_id: str
    similarity: float  # to the context (a product, a cart, a profile); best sellers carry a descending score
    price: Decimal | None = None  # from the catalog when known
    source: Source = "similar"
    # a similar candidate's parts: its co-purchase and (weighted) co-view similarity, its landed share and its
    # viewed-after share (the context policy's prior: reclift.context.Similarity)
    parts: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Ranked:
    product_id: str
    score: float
    explored: bool = False
    source: Source = "similar"


def best_seller_candidates(sellers: Sequence[Performance]) -> list[Candidate]:
    """Best sellers as candidates, in the learning run's order (most sold first): their base score falls with rank."""
    return [
        Candidate(
            product_id=p.product_id, similarity=round(1 - rank / len(sellers), 6), price=p.price, source="best_seller"
        )
        for rank, p in enumerate(sellers)
    ]


def assign_arm(shop: str, visitor_id: str | None, holdout_share: float) -> Arm:
    """Sticky: the same shop and visitor always land in the same arm. No visitor id: the learning arm."""
    if not visitor_id or holdout_share <= 0:
        return "learning"
    digest = hashlib.sha256(f"{HOLDOUT_SALT}:{shop}:{visitor_id}".encode()).digest()
    return "holdout" if int.from_bytes(digest[:8], "big") / 2**64 < holdout_share else "learning"


@dataclass(frozen=True)
class Scorer:
    """Scores candidates by the shop's policy, from the last learning run's performance."""

    settings: ShopSettings
    performance: Mapping[str, Performance]
    prior: Prior | None  # None before the first learning run: similarity alone orders candidates
    fallback_price: Decimal | None = None
    never_blacklisted: frozenset[str] = frozenset()  # the merchant's: shown even if the last run blacklisted them
    # the context policy's: the shop's prior over pair ratios, and the page's learned ratios (reclift.context)
    context: ContextPrior | None = None
    pair_ratios: Mapping[str, float] = field(default_factory=dict)

    @property
    def learned(self) -> bool:
        """Whether candidates are valued by a learned rate (bayes or context, once the shop has a prior)."""
        return self.settings.policy != "seed" and self.prior is not None

    def multiplier(self, candidate: Candidate) -> float:
        """The context policy's ρ of the candidate on this page: the pair's learned ratio, else the prior ratio of
        its band of similarity (a best seller or catalog neighbour in a spare slot: the unrelated band); 1 under
        the other policies."""
        if self.settings.policy != "context" or self.context is None:
            return 1.0
        learned = self.pair_ratios.get(candidate.product_id)
        if learned is not None:
            return learned
        related = candidate.source in ("similar", "viewed_together")
        parts = candidate.parts if candidate.parts is not None else (candidate.similarity, 0.0)
        return self.context.ratio(parts if related else None)

    def price(self, candidate: Candidate) -> float:
        """The catalog's price, else the price paid in orders, else the shop's median; a zero price is unknown."""
        performance = self.performance.get(candidate.product_id)
        for known in (candidate.price, performance.price if performance else None, self.fallback_price):
            if known is not None and known > 0:
                return float(known)
        return 1.0

    def _value(self, candidate: Candidate, cvr: float) -> float:
        value = cvr * self.multiplier(candidate)
        return value * (self.price(candidate) if self.settings.objective == "revenue" else 1.0)

    def blacklisted(self, product_id: str) -> bool:
        performance = self.performance.get(product_id)
        return performance is not None and performance.blacklisted and product_id not in self.never_blacklisted

    def score(self, candidate: Candidate) -> float:
        performance = self.performance.get(candidate.product_id)
        if self.settings.policy == "seed":
            confidence = performance.confidence if performance else 0.5
            if confidence > self.settings.boost_confidence:
                return candidate.similarity * self.settings.boost_multiplier
            if confidence < self.settings.penalty_confidence:
                return candidate.similarity * self.settings.penalty_multiplier
            return candidate.similarity
        if self.prior is None:
            return candidate.similarity
        mean = performance.posterior_mean if performance else self.prior.mean
        return self._value(candidate, mean)

    def draw(self, candidate: Candidate, rng: random.Random) -> float:
        """A Thompson draw of the candidate's value from its recent posterior: uncertain products get their chance,
        and demoted ones, no longer shown, draw from (close to) the prior again and return."""
        performance = self.performance.get(candidate.product_id)
        if performance is not None:
            alpha, beta = performance.explore_posterior
        elif self.prior is not None:
            alpha, beta = self.prior.alpha, self.prior.beta
        else:
            return rng.random()
        return self._value(candidate, rng.betavariate(alpha, beta))


def rank(
    similar: Sequence[Candidate],
    fill: Sequence[Candidate],
    scorer: Scorer,
    *,
    arm: Arm,
    limit: int,
    exclude: Collection[str],
    rng: random.Random,
    pinned: Sequence[Candidate] = (),
) -> list[Ranked]:
    """At most `limit` products, never an excluded one: the pinned ones first, in their order, in either arm (a
    merchant's rule, not learning; never dropped as blacklisted); then the similar ones; then the rest of `fill`.
    Within each group, the policy's order (the learning arm) or the similarity order (the holdout). The rest is one
    group once the shop has learned (bayes with a fitted prior: a catalog neighbour and a best seller are valued
    alike, by expected revenue); before that, or under the seed policy, whose scores are similarities on two
    scales, catalog neighbours come before best sellers."""
    chosen: list[Ranked] = []
    for candidate in pinned:
        shown = {r.product_id for r in chosen}
        if len(chosen) < limit and candidate.product_id not in exclude and candidate.product_id not in shown:
            chosen.append(Ranked(candidate.product_id, round(scorer.score(candidate), 6), source="pinned"))
    taken_ids = {r.product_id for r in chosen}
    return chosen + _rank_groups(
        similar, fill, scorer, arm=arm, limit=limit - len(chosen), exclude={*exclude, *taken_ids}, rng=rng
    )


def _rank_groups(
    similar: Sequence[Candidate],
    fill: Sequence[Candidate],
    scorer: Scorer,
    *,
    arm: Arm,
    limit: int,
    exclude: Collection[str],
    rng: random.Random,
) -> list[Ranked]:
    if limit <= 0:
        return []
    pool: dict[str, Candidate] = {}
    for candidate in [*similar, *fill]:
        if candidate.product_id not in exclude and candidate.product_id not in pool:
            pool[candidate.product_id] = candidate
    similar_ids = {candidate.product_id for candidate in similar}
    first = [c for c in pool.values() if c.product_id in similar_ids]
    neighbours = [c for c in pool.values() if c.product_id not in similar_ids and c.source == "catalog"]
    sellers = [c for c in pool.values() if c.product_id not in similar_ids and c.source != "catalog"]
    learned = scorer.learned
    groups = (first, [*neighbours, *sellers]) if learned else (first, neighbours, sellers)

    if arm == "holdout":
        ordered = sorted(first, key=lambda c: -c.similarity) + sorted(neighbours, key=lambda c: -c.similarity)
        return [Ranked(c.product_id, round(c.similarity, 6), source=c.source) for c in (ordered + sellers)[:limit]]

    def by_policy(group: list[Candidate]) -> list[tuple[float, Candidate]]:
        scored = [(scorer.score(c), c) for c in group if not scorer.blacklisted(c.product_id)]
        return sorted(scored, key=lambda item: (-item[0], -item[1].similarity, item[1].product_id))

    ordered_scored = [scored for group in groups for scored in by_policy(group)]
    chosen: list[Ranked] = []
    taken: set[str] = set()
    explore = scorer.settings.policy != "seed" and scorer.settings.explore_share > 0
    # An exploration slot is for what the policy's own order would not show here, blacklisted products included:
    # the similar ones first, as everywhere (a catalog neighbour or a best seller is for spare slots), then catalog
    # neighbours, then best sellers, and only when every candidate is in the order, among those. Drawing among all
    # of them instead spends most exploration slots on products the order shows anyway or on best sellers whose
    # tight posteriors outdraw any untried product, so that a product left out gets almost no draws at all.
    # Each place is explored with probability explore_share. An explored product takes the place its draw earns:
    # after every product of the policy's order valued above the draw, so mostly the last place (the policy's best
    # keep the places that sell most: purchases fall with the place, 1/√place in the simulation, and an exploration
    # costs only what the last places earn), but a product whose recent evidence draws above a shown one's value
    # is tried where it would be shown if the draw were its value (docs/learning.md has the simulation's figures).
    ordered_ids = {candidate.product_id for _, candidate in ordered_scored[:limit]}
    explored = sum(1 for _ in range(limit) if explore and rng.random() < scorer.settings.explore_share)
    for _ in range(limit - explored):
        next_best = next(((s, c) for s, c in ordered_scored if c.product_id not in taken), None)
        if next_best is None:
            break
        score, candidate = next_best
        chosen.append(Ranked(candidate.product_id, round(score, 6), source=candidate.source))
        taken.add(candidate.product_id)
    for _ in range(explored):
        untaken = [c for c in pool.values() if c.product_id not in taken]
        remaining = next(
            (
                unshown
                for group in groups
                if (unshown := [c for c in group if c.product_id not in taken and c.product_id not in ordered_ids])
            ),
            untaken,
        )
        if not remaining:
            break
        draws = {c.product_id: scorer.draw(c, rng) for c in remaining}
        pick = max(remaining, key=lambda c: draws[c.product_id])
        # before the shop has learned, a draw is not on the scores' scale: the last place
        place = next(
            (
                at
                for at, shown in enumerate(chosen)
                if learned and not shown.explored and shown.score < draws[pick.product_id]
            ),
            len(chosen),
        )
        chosen.insert(place, Ranked(pick.product_id, round(scorer.score(pick), 6), explored=True, source=pick.source))
        taken.add(pick.product_id)
    return chosen
