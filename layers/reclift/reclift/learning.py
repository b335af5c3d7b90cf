"""Learning: per-product performance over the last days of counters, under the shop's policy.

Two policies (DESIGN.md §3):
- `seed`, the rules as first specified: CVR < 0.5 % after 100+ impressions blacklists; confidence 0.5 below 100
  impressions, else 0.2 when CVR < 0.5 %, 0.9 when CVR > 2 %, 0.5 otherwise.
- `bayes`, empirical Bayes: a Beta prior of the shop's products' CVRs, its mean and strength fitted by maximum
  marginal likelihood on the raw window counts (the strength clipped), updated with counts decayed by a half-life so
  products can recover; confidence = P(CVR > the prior's mean); blacklisted only when P(CVR < threshold) reaches the
  blacklist confidence.
  Non-stationarity (NOTES-learning.md §3.4): Thompson exploration draws from a posterior over the last
  `explore_window_days` only, so a product not shown lately draws from (close to) the prior and is retried; and
  when the recent evidence contradicts the older with probability `change_confidence` or more (either way), the
  product's CVR is taken to have changed and its posterior rests on the recent evidence alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from statistics import NormalDist

from reclift.settings import ShopSettings
from reclift.stats import beta_cdf, lgamma

DEFAULT_PRIOR_MEAN = 0.01  # a shop with no purchases yet: a typical recommendation CVR
DEFAULT_RECENT_DAYS = 7  # ShopSettings.explore_window_days' default


@dataclass(frozen=True)
class ProductDay:
    """One product's counters for one day."""

    day: date
    product_id: str
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    units: int = 0
    revenue: Decimal = Decimal(0)
    sold: int = 0  # the day's orders containing the product, attributed or not
    # what the impressions are worth as evidence of the product's own rate, each weighed by its place in the widget
    # (reclift.tracking.exposure); None (counters from before it was counted): the impressions themselves
    exposure: float | None = None

    @property
    def exposed(self) -> float:
        return self.impressions if self.exposure is None else self.exposure


@dataclass(frozen=True)
class PairDay:
    """One (page, candidate) pair's counters for one day: `product_id` shown in the product widget of the page of
    `page_id` (impressions, counted from the storefront's proven events), clicked there (clicks, likewise), and
    bought after it (purchases, from the attributed lines whose touch was such a widget)."""

    day: date
    page_id: str
    product_id: str
    impressions: int = 0
    purchases: int = 0
    exposure: float | None = None  # as ProductDay's
    clicks: int = 0

    @property
    def exposed(self) -> float:
        return self.impressions if self.exposure is None else self.exposure


CounterDay = ProductDay | PairDay


def product_rows(rows: Iterable[CounterDay], ratio: Callable[[str, str], float] | None = None) -> Iterator[ProductDay]:
    """The product counters of a window, a pair's impressions (and their exposure) and clicks counted as its
    candidate's (a product-page impression or click is stored in its page's item only); a pair's purchases are
    already in its product's counters. With `ratio(page, product)`, what the page makes of the product's own rate
    (`context.page_ratio`), a pair's exposure is weighed by it, so that what is learned from the product's rows is
    its rate on an average page."""
    for row in rows:
        if isinstance(row, ProductDay):
            yield row
        else:
            exposure = row.exposure if ratio is None else row.exposed * ratio(row.page_id, row.product_id)
            yield ProductDay(row.day, row.product_id, impressions=row.impressions, clicks=row.clicks, exposure=exposure)


@dataclass
class ProductWindow:
    """A product's counts over the learning window: raw, decayed by age for the posterior, and those of the last
    `recent_days` alone (for exploration and for telling a changed CVR from an unlucky week). The posteriors rest on
    exposure (`ProductDay.exposed`: the impressions weighed by their places), so that a product shown in the last
    places is not taken to sell worse than one shown first; what is reported (impressions, CVR) and the minimum
    impressions rest on the impressions themselves."""

    product_id: str
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    units: int = 0
    revenue: Decimal = field(default_factory=Decimal)
    exposure: float = -1.0  # negative: the impressions themselves (a window not built by `aggregate`)
    decayed_impressions: float = 0.0  # the exposure, decayed
    decayed_purchases: float = 0.0
    recent_impressions: int = 0
    recent_exposure: float = -1.0  # negative: the recent impressions themselves
    recent_purchases: int = 0
    sold: int = 0  # orders containing the product over the window, attributed or not (raw)

    def __post_init__(self) -> None:
        if self.exposure < 0:
            self.exposure = float(self.impressions)
        if self.recent_exposure < 0:
            self.recent_exposure = float(self.recent_impressions)

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def cvr(self) -> float:
        return self.purchases / self.impressions if self.impressions else 0.0

    @property
    def price(self) -> Decimal | None:
        """The average price paid, from attributed purchases (until the catalog knows better)."""
        return (self.revenue / self.units).quantize(Decimal("0.01")) if self.units else None


def aggregate(
    days: Iterable[ProductDay],
    *,
    today: date,
    window_days: int,
    half_life_days: float,
    recent_days: int = DEFAULT_RECENT_DAYS,
) -> dict[str, ProductWindow]:
    """Sum each product's days in (today − window, today]; a day `age` days old weighs 0.5^(age / half-life).

    The days in (today − recent_days, today] are summed apart as well (raw), within the window."""
    windows: dict[str, ProductWindow] = {}
    for row in days:
        age = (today - row.day).days
        if 0 <= age < window_days:
            add_product_day(windows, row, decay(age, half_life_days), recent=age < recent_days)
    return windows


def decay(age: int, half_life_days: float) -> float:
    """What a day `age` days old weighs in a posterior: 0.5^(age / half-life)."""
    return float(0.5 ** (age / half_life_days))


def add_product_day(windows: dict[str, ProductWindow], row: ProductDay, weight: float, *, recent: bool) -> None:
    """Add one day of a product's counters, weighing `weight` (`decay`), to its window in `windows`."""
    window = windows.setdefault(row.product_id, ProductWindow(row.product_id))
    window.impressions += row.impressions
    window.clicks += row.clicks
    window.purchases += row.purchases
    window.units += row.units
    window.revenue += row.revenue
    window.sold += row.sold
    window.exposure += row.exposed
    window.decayed_impressions += weight * row.exposed
    window.decayed_purchases += weight * row.purchases
    if recent:
        window.recent_impressions += row.impressions
        window.recent_exposure += row.exposed
        window.recent_purchases += row.purchases


@dataclass(frozen=True)
class Prior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def strength(self) -> float:
        return self.alpha + self.beta


_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_STRENGTH_STEPS = 25  # golden-section steps on ln(strength) over [min, max]: width × 0.618^25, under 1e-5 of it
_MEAN_STEPS = 25  # … on logit(mean), inside each, over the pooled CVR's logit −3 to +1.5 (about 1/20 to 4.5 times it)


def _golden_max(f: Callable[[float], float], low: float, high: float, steps: int) -> float:
    """The x in [low, high] that maximises a unimodal f, by golden-section search."""
    x1, x2 = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    f1, f2 = f(x1), f(x2)
    for _ in range(steps):
        if f1 < f2:
            low, x1, f1 = x1, x2, f2
            x2 = low + _GOLDEN * (high - low)
            f2 = f(x2)
        else:
            high, x2, f2 = x2, x1, f1
            x1 = high - _GOLDEN * (high - low)
            f1 = f(x1)
    return (low + high) / 2.0


class BetaBinomial:
    """Products' raw counts, (exposure n, purchases k) each, held as columns for `log_marginal` (the learning job's
    alone: numpy)."""

    def __init__(self, counts: Sequence[tuple[float, float]]) -> None:
        import numpy as np  # the learning job's alone: the request path never loads it

        columns = np.array(counts, dtype=np.float64).reshape(-1, 2)
        self.exposure, self.purchases = columns[:, 0], columns[:, 1]
        self.misses = self.exposure - self.purchases

    def log_marginal(self, mean: float, strength: float) -> float:
        """ln P(every product's purchases | its exposure) under Beta(mean × strength, (1 − mean) × strength): each
        a beta-binomial, Σ ln B(a + k, b + n − k) − ln B(a, b) (the binomial coefficients do not depend on the
        prior)."""
        a, b = mean * strength, (1.0 - mean) * strength
        per_product = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        each = lgamma(a + self.purchases) + lgamma(b + self.misses) - lgamma(a + b + self.exposure)
        return float(len(self.exposure) * per_product + each.sum())


def log_marginal(counts: Sequence[tuple[float, float]], mean: float, strength: float) -> float:
    """`BetaBinomial.log_marginal` of the counts (exposure, purchases)."""
    return BetaBinomial(counts).log_marginal(mean, strength)


def fit_prior(windows: Iterable[ProductWindow], *, min_strength: float, max_strength: float) -> Prior:
    """Beta prior of the products' CVRs: mean and strength by maximum marginal likelihood on the raw counts (each
    product's purchases beta-binomial in its exposure), the strength within [min_strength, max_strength].

    Exposure is not spread evenly: serving shows most what has sold, so the shown products hold most of it. Moments
    of the observed CVRs weighed by exposure (and the pooled CVR) describe the shown products, a narrower and better
    set than the catalogue; they read the products as more alike and better than they are (on a shop whose products
    first get 200 impressions each and then the best quarter by its CVR 4,000 more, a pooled mean of 2.6 % and a
    strength of 150 for a true 1.5 % and 100). The likelihood of the counts does not depend on how the exposure was
    chosen from earlier counts, so its maximum describes the catalogue whatever serving did. The clip keeps one
    lucky or unlucky week from deciding; a shop with no purchase yet gets DEFAULT_PRIOR_MEAN at the maximum strength.
    """
    counts = [(w.exposure, min(float(w.purchases), w.exposure)) for w in windows if w.exposure > 0]
    total_exposure = sum(n for n, _ in counts)
    total_purchases = sum(k for _, k in counts)
    if total_exposure == 0 or total_purchases == 0:
        mean = DEFAULT_PRIOR_MEAN
        return Prior(alpha=mean * max_strength, beta=(1 - mean) * max_strength)
    pooled = min(total_purchases / total_exposure, 0.5)
    centre = math.log(pooled / (1.0 - pooled))
    likelihood = BetaBinomial(counts).log_marginal

    def best_mean(strength: float) -> float:
        def at(z: float) -> float:
            return likelihood(1.0 / (1.0 + math.exp(-z)), strength)

        return 1.0 / (1.0 + math.exp(-_golden_max(at, centre - 3.0, centre + 1.5, _MEAN_STEPS)))

    def fitted(log_strength: float) -> tuple[float, float, float]:
        """(ln likelihood, mean, strength) at the strength e^log_strength and its likeliest mean."""
        strength = math.exp(log_strength)
        mean = best_mean(strength)
        return likelihood(mean, strength), mean, strength

    # The search's point, or a bound if the likelihood is higher there (it keeps rising toward the maximum where the
    # products differ no more than their counts' noise; toward the minimum where they differ without end).
    low, high = math.log(min_strength), math.log(max_strength)
    searched = _golden_max(lambda x: fitted(x)[0], low, high, _STRENGTH_STEPS)
    _, mean, strength = max(fitted(x) for x in (searched, low, high))
    return Prior(alpha=mean * strength, beta=(1 - mean) * strength)


@dataclass(frozen=True)
class Performance:
    """A product's learned performance (the plan's MLProductPerformance) and its posteriors for serving."""

    product_id: str
    impressions: int
    clicks: int
    purchases: int
    units: int
    revenue: Decimal
    ctr: float
    cvr: float
    confidence: float
    blacklisted: bool
    reason: str
    alpha: float  # posterior Beta(alpha, beta) of the CVR per impression: what the product is ranked by
    beta: float
    price: Decimal | None
    # The posterior Thompson exploration draws from: the prior and the last explore_window_days only, so that a
    # product not shown lately is retried. None (a run before it existed): exploration draws from alpha, beta.
    explore_alpha: float | None = None
    explore_beta: float | None = None

    @property
    def posterior_mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def explore_posterior(self) -> tuple[float, float]:
        if self.explore_alpha is None or self.explore_beta is None:
            return self.alpha, self.beta
        return self.explore_alpha, self.explore_beta


_NORMAL = NormalDist()
_GRID = 48  # cells over the narrower Beta's ±8 standard deviations
_SCREEN = 10.0  # the normal approximation decides alone while its tail is this many times the decision's tail


def _moments(a: float, b: float) -> tuple[float, float]:
    total = a + b
    return a / total, a * b / (total * total * (total + 1.0))


def probability_greater(x: tuple[float, float], y: tuple[float, float]) -> float:
    """P(X > Y) for independent X ~ Beta(x) and Y ~ Beta(y): Σ over cells of the narrower one's mass of the other's
    tail, P(X > Y) = ∫ f_Y(y) (1 − F_X(y)) dy (or 1 − the same with the roles swapped)."""
    var_x, (mean_y, var_y) = _moments(*x)[1], _moments(*y)
    if var_x < var_y:
        return 1.0 - probability_greater(y, x)
    sd = math.sqrt(var_y)
    low, high = max(0.0, mean_y - 8 * sd), min(1.0, mean_y + 8 * sd)
    step = (high - low) / _GRID
    edges = [beta_cdf(low + k * step, *y) for k in range(_GRID + 1)]
    total = edges[0] * (1.0 - beta_cdf(low, *x)) + (1.0 - edges[-1]) * (1.0 - beta_cdf(high, *x))
    for k in range(_GRID):
        total += (edges[k + 1] - edges[k]) * (1.0 - beta_cdf(low + (k + 0.5) * step, *x))
    return min(1.0, max(0.0, total))


def _changed(recent: tuple[float, float], older: tuple[float, float], confidence: float) -> bool:
    """Whether the recent posterior contradicts the older one with `confidence` either way (a rise or a drop).

    A normal approximation screens first, so that the exact sum runs only for the few products near the edge."""
    (mean_r, var_r), (mean_o, var_o) = _moments(*recent), _moments(*older)
    tail = 1.0 - confidence
    approx = _NORMAL.cdf((mean_r - mean_o) / math.sqrt(var_r + var_o))
    if min(approx, 1.0 - approx) > _SCREEN * tail:
        return False
    greater = probability_greater(recent, older)
    return min(greater, 1.0 - greater) <= tail


@dataclass(frozen=True)
class Evidence:
    """What a product's exploitation posterior rests on: the whole window decayed, or the recent days alone."""

    alpha: float
    beta: float
    impressions: int
    changed: bool
    exposure: float  # what the minimum impressions apply to under bayes


def _beta_of(prior: Prior, purchases: float, impressions: float) -> tuple[float, float]:
    purchases = min(purchases, impressions)
    return prior.alpha + purchases, prior.beta + impressions - purchases


def evidence(window: ProductWindow, prior: Prior, settings: ShopSettings) -> Evidence:
    """The posterior over the decayed window; but when the last explore_window_days contradict the days before them
    with change_confidence (P(recent CVR > older CVR) at least that, or at most 1 − that, each judged on its raw
    counts under the shop prior), the CVR has changed and the older days are dropped: the recent ones alone."""
    older_exposure = window.exposure - window.recent_exposure
    if settings.change_confidence < 1.0 and window.recent_exposure > 0 and older_exposure > 0:
        recent = _beta_of(prior, window.recent_purchases, window.recent_exposure)
        older = _beta_of(prior, window.purchases - window.recent_purchases, older_exposure)
        if _changed(recent, older, settings.change_confidence):
            return Evidence(
                *recent, impressions=window.recent_impressions, changed=True, exposure=window.recent_exposure
            )
    alpha, beta = _beta_of(prior, window.decayed_purchases, window.decayed_impressions)
    return Evidence(alpha, beta, impressions=window.impressions, changed=False, exposure=window.exposure)


def _seed(window: ProductWindow, settings: ShopSettings, prior: Prior, posterior: Evidence) -> tuple[float, bool, str]:
    if window.impressions < settings.min_impressions:
        return 0.5, False, f"fewer than {settings.min_impressions} impressions"
    if window.cvr < settings.blacklist_cvr:
        return (
            0.2,
            True,
            f"CVR {window.cvr:.2%} below {settings.blacklist_cvr:.2%} after {window.impressions} impressions",
        )
    if window.cvr > settings.boost_cvr:
        return 0.9, False, f"CVR {window.cvr:.2%} above {settings.boost_cvr:.2%}: boosted"
    return 0.5, False, f"CVR {window.cvr:.2%}"


def _bayes(window: ProductWindow, settings: ShopSettings, prior: Prior, posterior: Evidence) -> tuple[float, bool, str]:
    alpha, beta = posterior.alpha, posterior.beta
    confidence = 1.0 - beta_cdf(prior.mean, alpha, beta)
    below = beta_cdf(settings.blacklist_cvr, alpha, beta)
    basis = f" (CVR changed: the last {settings.explore_window_days} days alone)" if posterior.changed else ""
    # The minimum applies to exposure: impressions in the last places, where a product sells less wherever it is
    # good, count for less of it.
    if posterior.exposure >= settings.min_impressions and below >= settings.blacklist_confidence:
        return (
            confidence,
            True,
            f"P(CVR < {settings.blacklist_cvr:.2%}) = {below:.2f} after {posterior.impressions} impressions{basis}",
        )
    return confidence, False, f"P(CVR > shop's {prior.mean:.2%}) = {confidence:.2f}{basis}"


def click_rates(windows: Mapping[str, ProductWindow], settings: ShopSettings) -> dict[str, float]:
    """Each product's clicks per exposure over the window, shrunk toward the shop's by a Beta prior fitted on the
    clicks as `fit_prior` fits one on the purchases (the context policy's click level, reclift.context)."""
    clicked = [replace(window, purchases=window.clicks) for window in windows.values()]
    prior = fit_prior(clicked, min_strength=settings.prior_strength_min, max_strength=settings.prior_strength_max)
    return {
        product: (prior.alpha + window.clicks) / (prior.strength + window.exposure)
        for product, window in windows.items()
    }


def learn(
    windows: Mapping[str, ProductWindow], settings: ShopSettings, prior: Prior | None = None
) -> tuple[Prior, dict[str, Performance]]:
    """Every product's performance under the shop's policy, and the prior it was judged against: `prior`, else the
    one fitted on the windows (`fit_prior`)."""
    if prior is None:
        prior = fit_prior(
            windows.values(), min_strength=settings.prior_strength_min, max_strength=settings.prior_strength_max
        )
    judge = _seed if settings.policy == "seed" else _bayes
    performance: dict[str, Performance] = {}
    for product_id, window in windows.items():
        posterior = (
            evidence(window, prior, settings)
            if settings.policy != "seed"
            else Evidence(
                *_beta_of(prior, window.decayed_purchases, window.decayed_impressions),
                impressions=window.impressions,
                changed=False,
                exposure=window.exposure,
            )
        )
        confidence, blacklisted, reason = judge(window, settings, prior, posterior)
        explore_alpha, explore_beta = _beta_of(prior, window.recent_purchases, window.recent_exposure)
        performance[product_id] = Performance(
            product_id=product_id,
            impressions=window.impressions,
            clicks=window.clicks,
            purchases=window.purchases,
            units=window.units,
            revenue=window.revenue,
            ctr=window.ctr,
            cvr=window.cvr,
            confidence=round(confidence, 6),
            blacklisted=blacklisted,
            reason=reason,
            alpha=posterior.alpha,
            beta=posterior.beta,
            price=window.price,
            explore_alpha=explore_alpha,
            explore_beta=explore_beta,
        )
    return prior, performance


def best_sellers(windows: Mapping[str, ProductWindow], limit: int, sold: Mapping[str, int] | None = None) -> list[str]:
    """The products most purchased in the shop's orders over the window (`sold`: orders containing each product,
    attributed or not), then most purchased after a recommendation, then most shown: for filling spare slots."""
    sold = sold or {}
    products = set(windows) | {product for product, orders in sold.items() if orders > 0}

    def rank(product: str) -> tuple[int, int, int, int, str]:
        window = windows.get(product) or ProductWindow(product_id=product)
        return (-sold.get(product, 0), -window.purchases, -window.units, -window.impressions, product)

    active = [p for p in products if sold.get(p, 0) > 0 or windows[p].purchases > 0 or windows[p].impressions > 0]
    return sorted(active, key=rank)[:limit]


def median_price(windows: Iterable[ProductWindow]) -> Decimal | None:
    prices = sorted(p for w in windows if (p := w.price) is not None)
    if not prices:
        return None
    middle = len(prices) // 2
    return prices[middle] if len(prices) % 2 else (prices[middle - 1] + prices[middle]) / 2
