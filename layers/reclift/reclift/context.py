"""Context: what a candidate earns on one page, learned per (page product, candidate) pair (DESIGN.md §3).

A tea strainer sells on a teapot's page and not on a phone case's. The `context` policy values a candidate c on the
page of product p at m_c × ρ_pc × price: m_c its product-level posterior mean CVR (what `learn` gives, itself shrunk
toward the shop's prior), ρ_pc how much better or worse it sells on this page than its own rate says. Three levels
of shrinkage, each toward the one above it:

- the shop: before any pair's own evidence, ρ's prior mean is R(s), from the candidate's similarity s to the page
  (co-purchase Jaccard plus the shop's weighted co-view Jaccard, as serving combines them). The shop's pairs with
  evidence are split into bands of similarity (terciles, fewer while there are few pairs) and R of a band is what its
  pairs bought against what their products' rates predicted, Σ purchases / Σ impressions × m_c, shrunk toward 1 by
  BAND_SHRINKAGE predicted purchases. A candidate that is not a neighbour of the page (a best seller or a catalog
  neighbour in a spare slot) is in a band of its own. So the similarity is prior information about the pair, not a
  tie-breaker;
- the pair: a Gamma–Poisson update of ρ from the pair's decayed purchases k and the purchases its prior predicts,
  E = decayed impressions × m_c × R(s): ρ̂ = R(s) × (A + k) / (A + E). A, the prior's strength in predicted
  purchases, is fitted by the method of moments on the pairs' raw counts (Var k = E + E²/A: the spread beyond
  Poisson noise is the pairs' real differences) and clipped to [STRENGTH_MIN, STRENGTH_MAX]: where pairs do not
  differ (a world without context) A is large and ρ̂ stays at R(s);
- the product and the shop above it: m_c, as the `bayes` policy learns it.

Pure functions: no AWS, no I/O.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from reclift.learning import PairDay

BANDS = 3
PAIRS_PER_BAND = 30  # a band of similarity needs this many pairs with evidence
BAND_SHRINKAGE = 5.0  # predicted purchases of pseudo-evidence pulling a band's ratio toward 1
STRENGTH_MIN = 0.5
STRENGTH_MAX = 100.0
UNRELATED = "unrelated"

Pair = tuple[str, str]  # (page product, candidate)


@dataclass
class PairWindow:
    """A pair's counts over the learning window: raw (for fitting) and decayed by age (for its posterior)."""

    impressions: int = 0
    purchases: int = 0
    decayed_impressions: float = 0.0
    decayed_purchases: float = 0.0


def aggregate_pairs(
    days: Iterable[PairDay], *, today: date, window_days: int, half_life_days: float
) -> dict[Pair, PairWindow]:
    """Sum each pair's days in (today − window, today], a day `age` days old weighing 0.5^(age / half-life), as
    `learning.aggregate` sums a product's."""
    windows: dict[Pair, PairWindow] = {}
    for row in days:
        age = (today - row.day).days
        if age < 0 or age >= window_days:
            continue
        weight = 0.5 ** (age / half_life_days)
        window = windows.setdefault((row.page_id, row.product_id), PairWindow())
        window.impressions += row.impressions
        window.purchases += row.purchases
        window.decayed_impressions += weight * row.impressions
        window.decayed_purchases += weight * row.purchases
    return windows


@dataclass(frozen=True)
class ContextPrior:
    """The shop's prior over pair ratios: by band of similarity (`edges` descending: a similarity of at least
    edges[0] is in the first band, …), the unrelated candidates' ratio, and the pair prior's strength A."""

    edges: tuple[float, ...] = ()
    ratios: tuple[float, ...] = (1.0,)
    unrelated: float = 1.0
    strength: float = STRENGTH_MAX

    def band(self, similarity: float) -> int:
        """The band of a neighbour with similarity `s` > 0 (0: the most similar)."""
        return bisect_left([-edge for edge in self.edges], -similarity)

    def ratio(self, similarity: float | None) -> float:
        """R(s): a candidate's expected ratio on a page it has similarity `s` to (None or 0: not a neighbour)."""
        if not similarity or similarity <= 0:
            return self.unrelated
        return self.ratios[self.band(similarity)]

    def to_json(self) -> str:
        return json.dumps(
            {"edges": self.edges, "ratios": self.ratios, "unrelated": self.unrelated, "strength": self.strength},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> ContextPrior:
        data = json.loads(raw)
        return cls(
            edges=tuple(float(e) for e in data["edges"]),
            ratios=tuple(float(r) for r in data["ratios"]),
            unrelated=float(data["unrelated"]),
            strength=float(data["strength"]),
        )


NEUTRAL = ContextPrior()


def page_similarities(
    copurchased: Sequence[tuple[str, float]], viewed: Sequence[tuple[str, float]]
) -> dict[str, float]:
    """A page's neighbours and their similarity as serving scores them: the co-purchase Jaccard plus the co-view
    Jaccard × the shop's weight of co-view (both lists as stored, co-view already weighted)."""
    scores: dict[str, float] = {}
    for product, score in [*copurchased, *viewed]:
        scores[product] = round(scores.get(product, 0.0) + score, 6)
    return scores


def _band_edges(similarities: list[float]) -> tuple[float, ...]:
    bands = max(1, min(BANDS, len(similarities) // PAIRS_PER_BAND))
    ordered = sorted(similarities, reverse=True)
    return tuple(ordered[len(ordered) * i // bands] for i in range(1, bands))


def _ratio(purchases: float, predicted: float) -> float:
    return (purchases + BAND_SHRINKAGE) / (predicted + BAND_SHRINKAGE)


def fit_context(
    windows: Mapping[Pair, PairWindow],
    means: Mapping[str, float],
    similarities: Mapping[str, Mapping[str, float]],
) -> ContextPrior:
    """The shop's ContextPrior from its pairs with evidence. `means`: each candidate's product-level posterior mean
    CVR; `similarities`: each page's neighbours (`page_similarities`). A pair whose candidate has no mean is left
    out."""
    related: list[tuple[float, PairWindow, float]] = []  # similarity, counts, product mean
    unrelated: list[tuple[PairWindow, float]] = []
    for (page, product), window in windows.items():
        mean = means.get(product)
        if mean is None or window.impressions <= 0:
            continue
        similarity = similarities.get(page, {}).get(product, 0.0)
        if similarity > 0:
            related.append((similarity, window, mean))
        else:
            unrelated.append((window, mean))
    edges = _band_edges([similarity for similarity, _, _ in related])
    bought = [0.0] * (len(edges) + 1)
    predicted = [0.0] * (len(edges) + 1)
    banded = ContextPrior(edges=edges, ratios=(1.0,) * (len(edges) + 1))
    for similarity, window, mean in related:
        band = banded.band(similarity)
        bought[band] += window.purchases
        predicted[band] += window.impressions * mean
    unrelated_ratio = _ratio(sum(w.purchases for w, _ in unrelated), sum(w.impressions * m for w, m in unrelated))
    prior = ContextPrior(
        edges=edges,
        ratios=tuple(_ratio(k, e) for k, e in zip(bought, predicted, strict=True)),
        unrelated=unrelated_ratio,
    )
    # The method of moments on the raw counts: Var k = E + E²/A, so 1/A = (Σ (k − E)² − Σ k) / Σ E².
    spread = squares = 0.0
    for (page, product), window in windows.items():
        mean = means.get(product)
        if mean is None or window.impressions <= 0:
            continue
        expected = window.impressions * mean * prior.ratio(similarities.get(page, {}).get(product))
        spread += (window.purchases - expected) ** 2 - window.purchases
        squares += expected**2
    inverse = spread / squares if squares > 0 else 0.0
    strength = STRENGTH_MAX if inverse <= 1 / STRENGTH_MAX else min(STRENGTH_MAX, max(STRENGTH_MIN, 1 / inverse))
    return ContextPrior(edges=prior.edges, ratios=prior.ratios, unrelated=prior.unrelated, strength=strength)


def pair_ratios(
    windows: Mapping[Pair, PairWindow],
    means: Mapping[str, float],
    similarities: Mapping[str, Mapping[str, float]],
    prior: ContextPrior,
) -> dict[str, dict[str, float]]:
    """Each page's candidates with evidence and their posterior ratio ρ̂ = R(s) × (A + k) / (A + E), on the decayed
    counts (a candidate without evidence on a page is valued at R(s) by serving)."""
    ratios: dict[str, dict[str, float]] = {}
    for (page, product), window in windows.items():
        mean = means.get(product)
        if mean is None or window.decayed_impressions <= 0:
            continue
        expected_ratio = prior.ratio(similarities.get(page, {}).get(product))
        predicted = window.decayed_impressions * mean * expected_ratio
        ratio = expected_ratio * (prior.strength + window.decayed_purchases) / (prior.strength + predicted)
        ratios.setdefault(page, {})[product] = round(ratio, 4)
    return ratios
