"""Context: what a candidate earns on one page, learned per (page product, candidate) pair (DESIGN.md §3).

A tea strainer sells on a teapot's page and not on a phone case's. The `context` policy values a candidate c on the
page of product p at m_c × ρ_pc × price: m_c its product-level posterior mean CVR (what `learn` gives, itself shrunk
toward the shop's prior), ρ_pc how much better or worse it sells on this page than its own rate says. Three levels
of shrinkage, each toward the one above it:

- the shop: before any pair's own evidence, ρ's prior mean is R(s), from the candidate's similarities s to the page
  (its co-purchase Jaccard, its weighted co-view Jaccard, the share of the orders that landed on the page which
  bought it, and the share of the view sessions that began on the page which went on to view it: `Landed.share`,
  the last two directed from the page to the candidate): R(s) = u + (1 − u) exp(a + Σ b_i ln s_i), a Poisson
  regression of the shop's pairs' purchases on their log similarities, offset by what their products' rates
  predicted (impressions × m_c), with a ridge of SHRINKAGE predicted purchases toward R = 1. The baseline u is what
  a neighbour sells at however weak its similarities (a page's stray, bought at a share of its rate where it does not
  belong): chosen from BASELINES by the fit's likelihood, 0 where the ratio falls with the similarity without
  end. Without it the log-linear part alone extrapolates down to nothing: a busy page's sessions that never reached
  a neighbour give it a share near 0, and it was valued at a few hundredths of its rate. A candidate that is not a
  neighbour of the page (a best seller or a catalog neighbour in a spare slot) has a ratio of its own,
  Σ purchases / Σ predicted, shrunk alike. So the similarity is prior information about the pair, not a tie-breaker;
- the pair: a Gamma–Poisson update of ρ from the pair's decayed purchases k and the purchases its prior predicts,
  E = decayed impressions × m_c × R(s): ρ̂ = R(s) × (A + k) / (A + E). A, the prior's strength in predicted
  purchases, is fitted by marginal maximum likelihood on the pairs' raw counts (each pair's purchases negative
  binomial around E, its ratio Gamma(A, A): the spread beyond Poisson noise is the pairs' real differences) on a
  grid of [STRENGTH_MIN, STRENGTH_MAX]: where pairs do not differ (a world without context) A is large and ρ̂ stays
  at R(s);
- the product and the shop above it: m_c, as the `bayes` policy learns it.

With clicks (a product page's widget counts them in its page item since they were signed; `learn_pairs`' `clicks`),
the shop and pair levels are learned on the clicks first, against each candidate's click rate: a widget's product
is clicked about three times as often as it is bought, and a page that sells a candidate better shows it in both.
The pair's click posterior is then the prior mean of its purchase ratio, updated by its purchases with a strength
fitted on the pairs' purchases as A is (large where purchases follow the clicks; small where a page changes what a
click turns into, and then the purchases decide).

Pure functions: no AWS, no I/O.
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from operator import attrgetter
from typing import Any, TypeGuard

from reclift.learning import (
    DEFAULT_RECENT_DAYS,
    CounterDay,
    PairDay,
    ProductDay,
    ProductWindow,
    add_product_day,
    decay,
)

SHRINKAGE = 5.0  # predicted purchases of pseudo-evidence pulling the shop's ratios toward 1
NEWTON_STEPS = 50
MAX_EXPONENT = 30.0
STRENGTH_MIN = 0.5
STRENGTH_MAX = 100.0
STRENGTH_STEPS = 41  # the grid A is chosen on, log-spaced
# The baselines R(s) is fitted with (the share of a candidate's rate that it sells at on a page whatever its
# similarities to it say), the one of highest likelihood kept.
BASELINES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)

Pair = tuple[str, str]  # (page product, candidate)


@dataclass(slots=True)
class PairWindow:
    """A pair's counts over the learning window: raw (for fitting) and decayed by age (for its posterior); what it
    predicts rests on the impressions' exposure (`PairDay.exposed`), as a product's posterior does."""

    impressions: int = 0
    purchases: int = 0
    decayed_impressions: float = 0.0  # the exposure, decayed
    decayed_purchases: float = 0.0
    exposure: float = -1.0  # negative: the impressions themselves (a window not built by `aggregate_pairs`)
    clicks: int = 0
    decayed_clicks: float = 0.0
    recent_impressions: int = 0  # the last `recent_days` alone (raw), which the candidate's own window counts too
    recent_exposure: float = 0.0

    def __post_init__(self) -> None:
        if self.exposure < 0:
            self.exposure = float(self.impressions)


def aggregate_pairs(
    days: Iterable[PairDay],
    *,
    today: date,
    window_days: int,
    half_life_days: float,
    recent_days: int = DEFAULT_RECENT_DAYS,
) -> dict[Pair, PairWindow]:
    """Sum each pair's days in (today − window, today], a day `age` days old weighing 0.5^(age / half-life), as
    `learning.aggregate` sums a product's."""
    return sum_window(
        days, today=today, window_days=window_days, half_life_days=half_life_days, recent_days=recent_days
    ).pairs


@dataclass
class CounterWindow:
    """A shop's counter days over one window, summed: each product's and each (page, candidate) pair's, the first day
    a page item holds, and the first day one counted a click."""

    products: dict[str, ProductWindow] = field(default_factory=dict)
    pairs: dict[Pair, PairWindow] = field(default_factory=dict)
    first_pair_day: date | None = None
    clicked_since: date | None = None


def sum_window(
    rows: Iterable[CounterDay],
    *,
    today: date,
    window_days: int,
    half_life_days: float,
    recent_days: int = DEFAULT_RECENT_DAYS,
) -> CounterWindow:
    """The rows in (today − window, today] summed in one pass, each added to its product's or pair's window as it
    comes and then dropped: memory grows with the products and pairs, not with their days (a catalogue of 10k
    products whose pages all show a dozen candidates a day is 4 million rows over 30 days)."""
    window = CounterWindow()
    for row in rows:
        age = (today - row.day).days
        if not 0 <= age < window_days:
            continue
        weight, recent = decay(age, half_life_days), age < recent_days
        if isinstance(row, ProductDay):
            add_product_day(window.products, row, weight, recent=recent)
            continue
        add_pair_day(window.pairs, row, weight, recent=recent)
        if window.first_pair_day is None or row.day < window.first_pair_day:
            window.first_pair_day = row.day
        if row.clicks and (window.clicked_since is None or row.day < window.clicked_since):
            window.clicked_since = row.day
    return window


def add_pair_day(windows: dict[Pair, PairWindow], row: PairDay, weight: float, *, recent: bool) -> None:
    """Add one day of a pair's counters, weighing `weight` (`learning.decay`), to its window in `windows`."""
    key = (row.page_id, row.product_id)
    window = windows.get(key)
    if window is None:  # the ids interned: a page's or product's id is then one string in every pair it is in
        window = windows[sys.intern(row.page_id), sys.intern(row.product_id)] = PairWindow()
    window.impressions += row.impressions
    window.purchases += row.purchases
    window.exposure += row.exposed
    window.decayed_impressions += weight * row.exposed
    window.decayed_purchases += weight * row.purchases
    window.clicks += row.clicks
    window.decayed_clicks += weight * row.clicks
    if recent:
        window.recent_impressions += row.impressions
        window.recent_exposure += row.exposed


def with_pairs(
    products: Mapping[str, ProductWindow],
    pairs: Mapping[Pair, PairWindow],
    ratio: Callable[[str, str], float] | None = None,
) -> dict[str, ProductWindow]:
    """The products' windows with their pairs' impressions, clicks and exposure added (a product page's impression
    or click is stored in its page's item only; a pair's purchases are already in its product's counters), each
    pair's exposure weighed by `ratio(page, product)` where given: `learning.aggregate(learning.product_rows(rows,
    ratio))` from the windows of the same rows, without holding the rows. `products` is left as it was."""
    windows = {product: replace(window) for product, window in products.items()}
    for (page, product), pair in pairs.items():
        weight = 1.0 if ratio is None else ratio(page, product)
        window = windows.get(product)
        if window is None:
            window = windows[product] = ProductWindow(product)
        window.impressions += pair.impressions
        window.clicks += pair.clicks
        window.exposure += weight * pair.exposure
        window.decayed_impressions += weight * pair.decayed_impressions
        window.recent_impressions += pair.recent_impressions
        window.recent_exposure += weight * pair.recent_exposure
    return windows


@dataclass(frozen=True)
class Clicks:
    """What the click level of `learn_pairs` learns from: the pairs' windows over the days their pages counted clicks,
    and each candidate's clicks per exposure (`learning.click_rates`)."""

    windows: Mapping[Pair, PairWindow]
    rates: Mapping[str, float]


@dataclass(frozen=True)
class Outcome:
    """Which of a pair window's counts a fit learns from, raw and decayed: its purchases, or its clicks as the events
    counted them (the click level of `learn_pairs`). Read in place: the windows are the learner's largest state."""

    raw: Callable[[PairWindow], float]
    decayed: Callable[[PairWindow], float]


PURCHASES = Outcome(attrgetter("purchases"), attrgetter("decayed_purchases"))
CLICKS = Outcome(attrgetter("clicks"), attrgetter("decayed_clicks"))


# A candidate's similarities to the page: its co-purchase Jaccard, its weighted co-view Jaccard, its landed share and
# its viewed-after share (0 where the source does not list it or says nothing; a shorter tuple, as older runs stored,
# lacks the last ones).
Similarity = tuple[float, ...]
SOURCES = 4
LISTING_SOURCES = 2  # the sources that list a page's neighbours (co-purchase, co-view); the shares describe them
# The visits of evidence a page's shares are shrunk with, toward the shop's pooled share.
LANDED_PRIOR_VISITS = 2.0


def is_neighbour(similarity: Similarity | None) -> TypeGuard[Similarity]:
    """Whether a candidate with these similarities to a page is one of the page's neighbours (some source lists it)."""
    return similarity is not None and any(value > 0 for value in similarity[:LISTING_SOURCES])


def _sources(similarity: Similarity) -> Similarity:
    return (*similarity[:SOURCES], *(0.0,) * (SOURCES - len(similarity)))


@dataclass(frozen=True)
class Landed:
    """Where the visits that landed on a product's page went (reclift.similarity.entered_counts): `visits` of them,
    `reached[i]` of which reached the i-th of the page's neighbours in a list (missing at the end: 0); `pooled` the
    shop's share over every page's neighbours. Two kinds, each over its own list: the orders that name the page as
    their landing page and what they bought of its co-purchase neighbours (`landed`), and the view sessions that
    began on the page and which of its co-view neighbours they went on to view (`viewed_after`)."""

    visits: int
    reached: tuple[int, ...]
    pooled: float

    def share(self, index: int | None) -> float:
        """The shrunk share of the page's visits that reached its `index`-th neighbour (None: a candidate the list
        does not hold, which none of them reached): (k + LANDED_PRIOR_VISITS × pooled) / (n + LANDED_PRIOR_VISITS).
        A page no visit landed on gets the pooled share, what the shop's pages say on average."""
        reached = self.reached[index] if index is not None and index < len(self.reached) else 0
        return (reached + LANDED_PRIOR_VISITS * self.pooled) / (self.visits + LANDED_PRIOR_VISITS)

    def shares(self, listed: Sequence[tuple[str, float]]) -> Callable[[str], float]:
        """Each candidate's share on the page whose neighbours the counts follow are `listed` (as stored, best
        first: the order `reached` follows); a candidate it does not list gets `share(None)`."""
        position = {product: index for index, (product, _) in enumerate(listed)}
        return lambda product: self.share(position.get(product))

    def to_json(self) -> str:
        reached = list(self.reached)
        while reached and reached[-1] == 0:
            reached.pop()
        return json.dumps([self.visits, round(self.pooled, 6), reached], separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> Landed | None:
        if not raw:
            return None
        visits, pooled, reached = json.loads(raw)
        return cls(int(visits), tuple(int(k) for k in reached), float(pooled))


@dataclass(frozen=True)
class ContextPrior:
    """The shop's prior over pair ratios. For a neighbour of the page with similarities s (`Similarity`):
    R(s) = baseline + (1 − baseline) exp(intercept + Σ slope_i × (ln max(s_i, floor_i) − centre_i)), each s_i
    clamped to the [floor_i, high_i] the fit saw (a source that does not list the pair counts as its weakest
    neighbour); `unrelated` for a candidate that is no neighbour of the page; and the pair prior's strength A. A
    prior stored before the baseline was fitted reads with a baseline of 0, as it was fitted."""

    intercept: float = 0.0
    slopes: tuple[float, ...] = (0.0,) * SOURCES
    centres: tuple[float, ...] = (0.0,) * SOURCES
    floors: tuple[float, ...] = (1e-6,) * SOURCES
    highs: tuple[float, ...] = (1.0,) * SOURCES
    unrelated: float = 1.0
    strength: float = STRENGTH_MAX
    # with clicks: the strength, in predicted purchases, of a pair's click-learned ratio as the prior of its purchases
    purchase_strength: float = STRENGTH_MAX
    baseline: float = 0.0

    def features(self, similarity: Similarity) -> list[float]:
        return [
            math.log(min(high, max(floor, value))) - centre
            for value, floor, high, centre in zip(
                _sources(similarity), self.floors, self.highs, self.centres, strict=True
            )
        ]

    def feature_matrix(self, similarities: Any) -> Any:
        """`features` of every row of an (n, SOURCES) numpy array of similarities, as one array."""
        import numpy as np  # the learning job's alone, as in _poisson_fit

        return np.log(np.clip(similarities, self.floors, self.highs)) - np.array(self.centres)

    def ratio(self, similarity: Similarity | None) -> float:
        """R(s): a candidate's expected ratio on a page it has similarities `s` to (None or zeros: no neighbour)."""
        if is_neighbour(similarity):
            x = self.features(similarity)
            exponent = self.intercept + sum(b * v for b, v in zip(self.slopes, x, strict=True))
            return self.baseline + (1.0 - self.baseline) * math.exp(min(MAX_EXPONENT, exponent))
        return self.unrelated

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> ContextPrior:
        data = json.loads(raw)
        values: dict[str, Any] = {}
        for name in _FIELDS:
            if name in data:
                raw_value = data[name]
                if isinstance(raw_value, list):  # an older run's has fewer sources: the rest say nothing
                    missing = getattr(NEUTRAL, name)[len(raw_value) :]
                    values[name] = (*(float(v) for v in raw_value[:SOURCES]), *missing)
                else:
                    values[name] = float(raw_value)
        return cls(**values)


_FIELDS = (
    "intercept",
    "slopes",
    "centres",
    "floors",
    "highs",
    "unrelated",
    "strength",
    "purchase_strength",
    "baseline",
)
NEUTRAL = ContextPrior()


def page_similarities(
    copurchased: Sequence[tuple[str, float]],
    viewed: Sequence[tuple[str, float]],
    landed: Landed | None = None,
    viewed_after: Landed | None = None,
) -> dict[str, Similarity]:
    """A page's neighbours and their similarities, as serving has them: the co-purchase Jaccard, the co-view
    Jaccard × the shop's weight of co-view (both lists as stored; 0 where a source does not list the neighbour), the
    landed share (0 where the shop's orders name no landing page) and the viewed-after share (0 where the shop has no
    view sessions)."""
    scores: dict[str, tuple[float, float]] = {product: (score, 0.0) for product, score in copurchased}
    for product, score in viewed:
        scores[product] = (scores.get(product, (0.0, 0.0))[0], score)
    bought = landed.shares(copurchased) if landed is not None else _nothing
    seen = viewed_after.shares(viewed) if viewed_after is not None else _nothing
    return {product: (*pair, bought(product), seen(product)) for product, pair in scores.items()}


def _nothing(_: str) -> float:
    return 0.0


def _ratio(purchases: float, predicted: float) -> float:
    return (purchases + SHRINKAGE) / (predicted + SHRINKAGE)


def _poisson_fit(x: Any, k: Any, e: Any, baselines: Sequence[float]) -> tuple[list[float], float]:
    """The coefficients β (intercept first) and the baseline u among `baselines` that maximise
    Σ k log μ − μ − SHRINKAGE |β|² / 2 over the rows of the features x (numpy, one row a pair), its purchases k and
    its predicted purchases E, where μ = E × (u + (1 − u) e^(β·x)): a Poisson regression of purchases on the features,
    its offset the predicted purchases, with a ridge of SHRINKAGE predicted purchases toward β = 0 (ratio 1 at every
    similarity). Each baseline's β by Fisher scoring (Newton's method where u is 0), starting where the next lower
    baseline's ended."""
    import numpy as np  # the learning job's alone: the request path (ranking imports this module) never loads it

    features = x.shape[1]
    if not len(k):
        return [0.0] * (features + 1), min(baselines)
    x = np.column_stack([np.ones(len(k)), x])
    ridge = SHRINKAGE * np.eye(features + 1)

    def parts(baseline: float, beta: Any) -> tuple[Any, Any]:
        """μ's part that rises with the similarities, and μ."""
        related = e * (1.0 - baseline) * np.exp(np.minimum(MAX_EXPONENT, x @ beta))
        return related, e * baseline + related

    beta: Any = np.zeros(features + 1)
    best: tuple[float, list[float], float] | None = None  # objective, β, baseline
    for baseline in sorted(baselines):
        for _ in range(NEWTON_STEPS):
            related, mu = parts(baseline, beta)
            share = related / mu if baseline > 0 else np.ones_like(mu)  # 1 without a baseline, even where μ underflows
            gradient = x.T @ (k * share - related) - SHRINKAGE * beta
            step = np.linalg.solve((x.T * (related * share)) @ x + ridge, gradient)
            beta = beta + step
            if float(np.abs(step).sum()) < 1e-9:
                break
        _, mu = parts(baseline, beta)
        objective = float(np.sum(k * np.log(np.maximum(mu, 1e-300)) - mu) - SHRINKAGE * float(beta @ beta) / 2)
        if best is None or objective > best[0]:
            best = (objective, [float(b) for b in beta], baseline)
    assert best is not None
    return best[1], best[2]


def _strength(k: Any, e: Any) -> float:
    """A by marginal maximum likelihood: each pair's purchases k are negative binomial around what the prior predicts
    (E) when its ratio is Gamma(A, A) distributed; A maximises Σ log NB(k | E, A) over a log-spaced grid of
    [STRENGTH_MIN, STRENGTH_MAX] (every pair counts, those shown little as much as they inform). `k` and `e`: numpy
    arrays, one entry a pair. log Γ(k + A) − log Γ(A) = Σ_{j<k} log(A + j), summed over the pairs as
    Σ_j (the pairs with k > j) × log(A + j)."""
    import numpy as np  # the learning job's alone, as in _poisson_fit

    kept = e > 0
    k, e = k[kept], e[kept]
    if not len(k):
        return STRENGTH_MAX
    sold = np.bincount(k.astype(np.int64))
    above = (len(k) - np.cumsum(sold))[:-1]  # above[j]: the pairs with k > j
    steps = np.arange(len(above))

    def log_likelihood(strength: float) -> float:
        total = float(np.sum(strength * np.log(strength / (strength + e)) + k * np.log(e / (strength + e))))
        return total + float(np.sum(above * np.log(strength + steps)))

    grid = [STRENGTH_MIN * (STRENGTH_MAX / STRENGTH_MIN) ** (i / (STRENGTH_STEPS - 1)) for i in range(STRENGTH_STEPS)]
    return float(max(grid, key=log_likelihood))


def fit_context(
    windows: Mapping[Pair, PairWindow],
    means: Mapping[str, float],
    similarities: Mapping[str, Mapping[str, Similarity]],
    outcome: Outcome = PURCHASES,
) -> ContextPrior:
    """The shop's ContextPrior from its pairs with evidence. `means`: each candidate's product-level posterior mean
    CVR (or click rate, with `outcome` CLICKS); `similarities`: each page's neighbours (`page_similarities`). A pair
    whose candidate has no mean is left out. The neighbours' pairs are gathered as columns of floats, not objects: a
    10k-product catalogue has about half a million of them."""
    import numpy as np  # the learning job's alone, as in _poisson_fit

    sources, bought, predicted = array("d"), array("d"), array("d")  # the neighbours' pairs
    unrelated_bought = unrelated_predicted = 0.0
    for (page, product), window in windows.items():
        mean = means.get(product)
        if mean is None or window.impressions <= 0:
            continue
        similarity = similarities.get(page, {}).get(product)
        if is_neighbour(similarity):
            sources.extend(_sources(similarity))
            bought.append(outcome.raw(window))
            predicted.append(window.exposure * mean)
        else:
            unrelated_bought += outcome.raw(window)
            unrelated_predicted += window.exposure * mean
    related = np.frombuffer(sources, dtype=np.float64).reshape(-1, SOURCES)
    floors, highs, centres = [], [], []
    for source in range(SOURCES):
        column = related[:, source]
        listed = column[column > 0]
        floors.append(float(listed.min()) if len(listed) else 1e-6)
        highs.append(float(listed.max()) if len(listed) else 1.0)
        centres.append(float(np.log(np.maximum(floors[-1], column)).mean()) if len(column) else 0.0)
    shape = ContextPrior(centres=tuple(centres), floors=tuple(floors), highs=tuple(highs))
    beta, baseline = _poisson_fit(
        shape.feature_matrix(related),
        np.frombuffer(bought, dtype=np.float64),
        np.frombuffer(predicted, dtype=np.float64),
        BASELINES,
    )
    prior = replace(
        shape,
        intercept=beta[0],
        slopes=tuple(beta[1:]),
        baseline=baseline,
        unrelated=_ratio(unrelated_bought, unrelated_predicted),
    )
    return replace(prior, strength=_fit_strength(windows, means, _prior_ratio(prior, similarities), outcome))


Expected = Callable[[str, str], float]  # a pair's (page, candidate) prior mean ratio


def _prior_ratio(prior: ContextPrior, similarities: Mapping[str, Mapping[str, Similarity]]) -> Expected:
    return lambda page, product: prior.ratio(similarities.get(page, {}).get(product))


def _fit_strength(
    windows: Mapping[Pair, PairWindow], means: Mapping[str, float], expected: Expected, outcome: Outcome = PURCHASES
) -> float:
    """A of the pairs' ratios around their prior means `expected` (`_strength`, on the raw counts)."""
    import numpy as np  # the learning job's alone, as in _poisson_fit

    bought, predicted = array("d"), array("d")
    for (page, product), window in windows.items():
        mean = means.get(product)
        if mean is not None and window.impressions > 0:
            bought.append(outcome.raw(window))
            predicted.append(window.exposure * mean * expected(page, product))
    return _strength(np.frombuffer(bought, dtype=np.float64), np.frombuffer(predicted, dtype=np.float64))


def _posterior_ratios(
    windows: Mapping[Pair, PairWindow],
    means: Mapping[str, float],
    expected: Expected,
    strength: float,
    outcome: Outcome = PURCHASES,
) -> dict[str, dict[str, float]]:
    """Each page's candidates with evidence and their posterior ratio ρ̂ = r × (A + k) / (A + E), r the pair's prior
    mean, E = decayed exposure × mean × r, on the decayed counts."""
    ratios: dict[str, dict[str, float]] = {}
    for (page, product), window in windows.items():
        mean = means.get(product)
        if mean is None or window.decayed_impressions <= 0:
            continue
        expected_ratio = expected(page, product)
        predicted = window.decayed_impressions * mean * expected_ratio
        ratio = expected_ratio * (strength + outcome.decayed(window)) / (strength + predicted)
        ratios.setdefault(page, {})[product] = round(ratio, 4)
    return ratios


def pair_ratios(
    windows: Mapping[Pair, PairWindow],
    means: Mapping[str, float],
    similarities: Mapping[str, Mapping[str, Similarity]],
    prior: ContextPrior,
) -> dict[str, dict[str, float]]:
    """Each page's candidates with evidence and their posterior ratio ρ̂ = R(s) × (A + k) / (A + E), on the decayed
    counts (a candidate without evidence on a page is valued at R(s) by serving)."""
    return _posterior_ratios(windows, means, _prior_ratio(prior, similarities), prior.strength)


def learn_pairs(
    windows: Mapping[Pair, PairWindow],
    means: Mapping[str, float],
    similarities: Mapping[str, Mapping[str, Similarity]],
    clicks: Clicks | None = None,
) -> tuple[ContextPrior, dict[str, dict[str, float]]]:
    """The shop's prior over pair ratios and each page's posterior ratios, against the candidates' rates `means`.

    With `clicks`, the ratios are learned from clicks first: a widget's product is clicked about three times as often
    as it is bought, and what a page does to a candidate shows in both. R(s), the unrelated ratio and A are then
    fitted on the pairs' clicks against the candidates' click rates; each pair's click posterior is the prior mean of
    its purchase ratio, updated by its purchases with a strength fitted on the pairs' purchases alike (large where
    purchases follow the clicks, small where a page's clicks do not turn into purchases as its candidate's do
    elsewhere)."""
    if clicks is None:
        prior = fit_context(windows, means, similarities)
        return prior, pair_ratios(windows, means, similarities, prior)
    prior = fit_context(clicks.windows, clicks.rates, similarities, CLICKS)
    from_similarity = _prior_ratio(prior, similarities)
    by_clicks = _posterior_ratios(clicks.windows, clicks.rates, from_similarity, prior.strength, CLICKS)

    def expected(page: str, product: str) -> float:
        learned = by_clicks.get(page, {}).get(product)
        return learned if learned is not None else from_similarity(page, product)

    strength = _fit_strength(windows, means, expected)
    return replace(prior, purchase_strength=strength), _posterior_ratios(windows, means, expected, strength)


def page_ratio(
    prior: ContextPrior,
    similarities: Mapping[str, Mapping[str, Similarity]],
    ratios: Mapping[str, Mapping[str, float]],
    windows: Mapping[Pair, PairWindow],
) -> Callable[[str, str], float]:
    """What a page makes of a candidate's own rate: the pair's posterior ratio where the pair has evidence, else R(s)
    from its similarities to the page (the unrelated ratio where it is no neighbour), as serving values it; scaled so
    that over the pages a candidate is a neighbour of (exposure-weighted) it is 1. Ratios are learned against rates
    that already mix in every page, so only their relations are known: the scale sets a product's own rate to what it
    sells on an average page it belongs on."""

    def raw(page: str, product: str) -> float:
        known = ratios.get(page, {}).get(product)
        return known if known is not None else prior.ratio(similarities.get(page, {}).get(product))

    weighed = exposure = 0.0
    for (page, product), window in windows.items():
        if is_neighbour(similarities.get(page, {}).get(product)):
            weighed += window.exposure * raw(page, product)
            exposure += window.exposure
    scale = weighed / exposure if exposure > 0 and weighed > 0 else 1.0
    return lambda page, product: raw(page, product) / scale
