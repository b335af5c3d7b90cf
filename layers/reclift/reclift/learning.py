"""Learning: per-product performance over the last days of counters, under the shop's policy.

Two policies (DESIGN.md §3):
- `seed`, the rules as first specified: CVR < 0.5 % after 100+ impressions blacklists; confidence 0.5 below 100
  impressions, else 0.2 when CVR < 0.5 %, 0.9 when CVR > 2 %, 0.5 otherwise.
- `bayes`, empirical Bayes: a Beta prior centred on the shop's pooled CVR, its strength fitted by the method of
  moments on the raw window counts and clipped, updated with counts decayed by a half-life so products can recover;
  confidence = P(CVR > pooled CVR); blacklisted only when P(CVR < threshold) reaches the blacklist confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from reclift.settings import ShopSettings
from reclift.stats import beta_cdf

DEFAULT_PRIOR_MEAN = 0.01  # a shop with no purchases yet: a typical recommendation CVR


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


@dataclass
class ProductWindow:
    """A product's counts over the learning window: raw, and decayed by age for the posterior."""

    product_id: str
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    units: int = 0
    revenue: Decimal = field(default_factory=Decimal)
    decayed_impressions: float = 0.0
    decayed_purchases: float = 0.0

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
    days: Iterable[ProductDay], *, today: date, window_days: int, half_life_days: float
) -> dict[str, ProductWindow]:
    """Sum each product's days in (today − window, today]; a day `age` days old weighs 0.5^(age / half-life)."""
    windows: dict[str, ProductWindow] = {}
    for row in days:
        age = (today - row.day).days
        if age < 0 or age >= window_days:
            continue
        weight = 0.5 ** (age / half_life_days)
        window = windows.setdefault(row.product_id, ProductWindow(row.product_id))
        window.impressions += row.impressions
        window.clicks += row.clicks
        window.purchases += row.purchases
        window.units += row.units
        window.revenue += row.revenue
        window.decayed_impressions += weight * row.impressions
        window.decayed_purchases += weight * row.purchases
    return windows


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


def fit_prior(windows: Iterable[ProductWindow], *, min_strength: float, max_strength: float) -> Prior:
    """Beta prior: mean = the pooled CVR; strength by the method of moments on the raw counts.

    The impression-weighted variance of the products' observed CVRs is the spread of their true CVRs plus the
    binomial noise of each estimate (pooled × (1 − pooled) per product); what remains after removing the noise is
    the true spread, and strength = m(1 − m) / spread − 1, clipped so one lucky or unlucky week cannot decide.
    """
    observed = [w for w in windows if w.impressions > 0]
    total_impressions = sum(w.impressions for w in observed)
    total_purchases = sum(w.purchases for w in observed)
    if total_impressions == 0 or total_purchases == 0:
        mean = DEFAULT_PRIOR_MEAN
        return Prior(alpha=mean * max_strength, beta=(1 - mean) * max_strength)
    mean = min(total_purchases / total_impressions, 0.5)
    weighted_spread = sum(w.impressions * (w.purchases / w.impressions - mean) ** 2 for w in observed)
    true_spread = (weighted_spread - len(observed) * mean * (1 - mean)) / total_impressions
    strength = max_strength if true_spread <= 0 else mean * (1 - mean) / true_spread - 1
    strength = min(max(strength, min_strength), max_strength)
    return Prior(alpha=mean * strength, beta=(1 - mean) * strength)


@dataclass(frozen=True)
class Performance:
    """A product's learned performance (the plan's MLProductPerformance) and its posterior for serving."""

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
    alpha: float  # posterior Beta(alpha, beta) of the CVR per impression
    beta: float
    price: Decimal | None

    @property
    def posterior_mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def _seed(window: ProductWindow, settings: ShopSettings, prior: Prior) -> tuple[float, bool, str]:
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


def _bayes(window: ProductWindow, settings: ShopSettings, prior: Prior) -> tuple[float, bool, str]:
    alpha, beta = _posterior(window, prior)
    confidence = 1.0 - beta_cdf(prior.mean, alpha, beta)
    below = beta_cdf(settings.blacklist_cvr, alpha, beta)
    if window.impressions >= settings.min_impressions and below >= settings.blacklist_confidence:
        return (
            confidence,
            True,
            (f"P(CVR < {settings.blacklist_cvr:.2%}) = {below:.2f} after {window.impressions} impressions"),
        )
    return confidence, False, f"P(CVR > shop's {prior.mean:.2%}) = {confidence:.2f}"


def _posterior(window: ProductWindow, prior: Prior) -> tuple[float, float]:
    purchases = min(window.decayed_purchases, window.decayed_impressions)
    return prior.alpha + purchases, prior.beta + window.decayed_impressions - purchases


def learn(windows: Mapping[str, ProductWindow], settings: ShopSettings) -> tuple[Prior, dict[str, Performance]]:
    """Every product's performance under the shop's policy, and the prior it was judged against."""
    prior = fit_prior(
        windows.values(), min_strength=settings.prior_strength_min, max_strength=settings.prior_strength_max
    )
    judge = _seed if settings.policy == "seed" else _bayes
    performance: dict[str, Performance] = {}
    for product_id, window in windows.items():
        confidence, blacklisted, reason = judge(window, settings, prior)
        alpha, beta = _posterior(window, prior)
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
            alpha=alpha,
            beta=beta,
            price=window.price,
        )
    return prior, performance


def best_sellers(windows: Mapping[str, ProductWindow], limit: int) -> list[str]:
    """The products most purchased in the window (then most shown), for filling spare slots."""
    ranked = sorted(windows.values(), key=lambda w: (-w.purchases, -w.units, -w.impressions, w.product_id))
    return [w.product_id for w in ranked if w.purchases > 0 or w.impressions > 0][:limit]


def median_price(windows: Iterable[ProductWindow]) -> Decimal | None:
    prices = sorted(p for w in windows if (p := w.price) is not None)
    if not prices:
        return None
    middle = len(prices) // 2
    return prices[middle] if len(prices) % 2 else (prices[middle - 1] + prices[middle]) / 2
