"""Lift measured against the holdout arm (NOTES-learning §3.6): revenue per visitor and conversion rate of each
arm, the relative lift with a 95 % interval, the sample-ratio-mismatch test of the assignment, and how many more
visitors a 10 % lift needs to show.

The unit is the visitor: each visitor's attributed revenue in the period, zero for those who bought nothing. The
interval needs no more of an arm than its `Sums` (visitors, converting visitors, Σ revenue and Σ revenue² per
visitor), so it can be computed from pre-aggregated totals.

The interval is the delta method on the log of the ratio of the two means, exp(log r ± z·se) − 1 with
se² = Var₁/(n₁m₁²) + Var₀/(n₀m₀²). Revenue per visitor is mostly zeros with a skewed tail, and the holdout (10 % of
visitors) has few converting visitors early on, so the ratio's sampling distribution is skewed: the delta method on
the ratio itself, symmetric around the estimate, missed the true lift almost only on one side (wholly below it
6.4–6.6 % of the time with 500 holdout visitors, 4.9–5.5 % with 1,000, instead of 2.5 %; `python -m benchmarks
lift_coverage`). On the log scale each side misses 2.3–3.8 % from 500 to 20,000 holdout visitors, 93.6–94.9 % covered.

The interval is reported only when each arm would have at least `MIN_EXPECTED_CONVERTERS` converting visitors at
the pooled conversion rate (and at least 2 in fact, for a variance): below that the variance of the holdout's mean
rests on a handful of orders. The gate reads the pooled rate rather than each arm's own count on purpose: gating on
the holdout's own converting visitors keeps the stores whose holdout was lucky and biases the lift shown downward
(measured at 400 holdout visitors converting at 2.5 %: requiring 10 of each arm's own left 4–5 % of the intervals
wholly below the true lift and 0–0.1 % above; the pooled gate 2–3 % below and 4 % above).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any, Protocol

Z95 = NormalDist().inv_cdf(0.975)
Z80 = NormalDist().inv_cdf(0.80)
TARGET_LIFT = 0.10
MIN_EXPECTED_CONVERTERS = 10.0


@dataclass(frozen=True)
class Sums:
    """An arm's totals: all the lift's figures need (summable per day, as counters are)."""

    visitors: int
    converting: int
    total: float  # Σ revenue per visitor
    squares: float  # Σ (revenue per visitor)²

    @classmethod
    def of(cls, visitors: int, revenue: Iterable[float]) -> Sums:
        """From each converting visitor's revenue (the other visitors contributed 0)."""
        values = list(revenue)
        return cls(visitors, sum(1 for x in values if x > 0), sum(values), sum(x * x for x in values))

    @property
    def mean(self) -> float:
        return self.total / self.visitors if self.visitors else math.nan

    @property
    def variance(self) -> float:
        """Sample variance of revenue per visitor, zeros included."""
        if self.visitors < 2:
            return math.nan
        mean = self.mean
        return max((self.squares - self.visitors * mean * mean) / (self.visitors - 1), 0.0)

    @property
    def conversion(self) -> float:
        return self.converting / self.visitors if self.visitors else math.nan

    @property
    def conversion_variance(self) -> float:
        """Sample variance of the 0/1 conversion per visitor."""
        if self.visitors < 2:
            return math.nan
        p = self.conversion
        return p * (1 - p) * self.visitors / (self.visitors - 1)


@dataclass(frozen=True)
class Arm:
    visitors: int
    revenue: list[float]  # per converting visitor (the others contributed 0)

    @property
    def sums(self) -> Sums:
        return Sums.of(self.visitors, self.revenue)

    @property
    def total(self) -> float:
        return sum(self.revenue)

    @property
    def mean(self) -> float:
        return self.sums.mean

    @property
    def variance(self) -> float:
        return self.sums.variance

    @property
    def conversion(self) -> float:
        return self.sums.conversion


class _Moments(Protocol):
    @property
    def visitors(self) -> int: ...

    @property
    def mean(self) -> float: ...

    @property
    def variance(self) -> float: ...


def relative(
    treated_mean: float, treated_var: float, n1: int, base_mean: float, base_var: float, n0: int
) -> tuple[float, tuple[float, float]] | None:
    """Relative lift treated/base − 1 and its 95 % interval, by the delta method on log(treated/base):
    Var(log m1 − log m0) ≈ Var₁/(n₁m₁²) + Var₀/(n₀m₀²). None when it cannot be estimated (an arm below 2
    visitors or without revenue)."""
    if n1 < 2 or n0 < 2 or not (base_mean > 0 and treated_mean > 0) or math.isnan(treated_var + base_var):
        return None
    ratio = treated_mean / base_mean
    se = math.sqrt(treated_var / (n1 * treated_mean**2) + base_var / (n0 * base_mean**2))
    return ratio - 1.0, (ratio * math.exp(-Z95 * se) - 1.0, ratio * math.exp(Z95 * se) - 1.0)


def enough_data(learning: Sums, holdout: Sums) -> bool:
    """Whether the interval can be trusted: each arm would have MIN_EXPECTED_CONVERTERS converting visitors at the
    pooled conversion rate, and has at least 2 (module docstring)."""
    visitors = learning.visitors + holdout.visitors
    if visitors == 0 or min(learning.converting, holdout.converting) < 2:
        return False
    pooled = (learning.converting + holdout.converting) / visitors
    return pooled * min(learning.visitors, holdout.visitors) >= MIN_EXPECTED_CONVERTERS


def srm_p_value(learning: int, holdout: int, holdout_share: float) -> float | None:
    """χ² (1 df) of the arms' visitor counts against the configured split; small means the assignment is off."""
    total = learning + holdout
    if total == 0 or not 0 < holdout_share < 1:
        return None
    expected = (total * (1 - holdout_share), total * holdout_share)
    chi2 = sum((seen - exp) ** 2 / exp for seen, exp in zip((learning, holdout), expected, strict=True))
    return math.erfc(math.sqrt(chi2 / 2))


def sessions_needed(learning: _Moments, holdout: _Moments, holdout_share: float) -> int | None:
    """More visitors (both arms together) before a 10 % lift in revenue per visitor shows at 80 % power, α 5 %."""
    if holdout.visitors < 2 or learning.visitors < 2 or not holdout.mean > 0 or not 0 < holdout_share < 1:
        return None
    delta = TARGET_LIFT * holdout.mean
    variance = max(learning.variance, holdout.variance)
    # n per arm for equal arms; an unequal split f needs n·(1/f + 1/(1 − f))/2 visitors in all.
    per_arm = (Z95 + Z80) ** 2 * 2 * variance / (delta * delta)
    total = per_arm * (1 / holdout_share + 1 / (1 - holdout_share)) / 2
    return max(0, math.ceil(total) - (learning.visitors + holdout.visitors))


def _block(
    learning: float, holdout: float, estimate: tuple[float, tuple[float, float]] | None, trusted: bool
) -> dict[str, Any]:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 6)

    return {
        "learning": clean(learning),
        "holdout": clean(holdout),
        "relative": None if estimate is None else round(estimate[0], 6),
        "ci95": None if estimate is None or not trusted else [round(estimate[1][0], 6), round(estimate[1][1], 6)],
    }


def lift_from_sums(learning: Sums, holdout: Sums, holdout_share: float) -> dict[str, Any]:
    """The ROI's `lift` block from each arm's totals; always present, its figures null while an arm has no visitors,
    the intervals null while `enough_data` is false."""
    trusted = enough_data(learning, holdout)
    rpv = relative(
        learning.mean, learning.variance, learning.visitors, holdout.mean, holdout.variance, holdout.visitors
    )
    cvr = relative(
        learning.conversion,
        learning.conversion_variance,
        learning.visitors,
        holdout.conversion,
        holdout.conversion_variance,
        holdout.visitors,
    )
    return {
        "visitors": {"learning": learning.visitors, "holdout": holdout.visitors},
        "converting_visitors": {"learning": learning.converting, "holdout": holdout.converting},
        "enough_data": trusted,
        "revenue_per_visitor": _block(learning.mean, holdout.mean, rpv, trusted),
        "conversion_rate": _block(learning.conversion, holdout.conversion, cvr, trusted),
        "srm_p_value": srm_p_value(learning.visitors, holdout.visitors, holdout_share),
        "sessions_needed": sessions_needed(learning, holdout, holdout_share),
    }


def lift_report(
    visitors: Mapping[str, int], revenue_by_visitor: Mapping[str, Mapping[str, Decimal]], holdout_share: float
) -> dict[str, Any]:
    """The ROI's `lift` block from each visitor's revenue (see `lift_from_sums`)."""
    learning, holdout = (
        Sums.of(visitors.get(name, 0), (float(v) for v in revenue_by_visitor.get(name, {}).values()))
        for name in ("learning", "holdout")
    )
    return lift_from_sums(learning, holdout, holdout_share)
