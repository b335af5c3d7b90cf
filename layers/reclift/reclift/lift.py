"""Lift measured against the holdout arm (NOTES-learning §3.6): revenue per visitor and conversion rate of each
arm, the relative lift with a 95 % interval (delta method on the ratio of two means), the sample-ratio-mismatch
test of the assignment, and how many more visitors a 10 % lift needs to show.

The unit is the visitor: each visitor's attributed revenue in the period, zero for those who bought nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any

Z95 = NormalDist().inv_cdf(0.975)
Z80 = NormalDist().inv_cdf(0.80)
TARGET_LIFT = 0.10


@dataclass(frozen=True)
class Arm:
    visitors: int
    revenue: list[float]  # per converting visitor (the others contributed 0)

    @property
    def total(self) -> float:
        return sum(self.revenue)

    @property
    def mean(self) -> float:
        return self.total / self.visitors if self.visitors else math.nan

    @property
    def variance(self) -> float:
        """Sample variance of revenue per visitor, zeros included."""
        if self.visitors < 2:
            return math.nan
        mean = self.mean
        squares = sum(x * x for x in self.revenue)
        return max((squares - self.visitors * mean * mean) / (self.visitors - 1), 0.0)

    @property
    def conversion(self) -> float:
        return sum(1 for x in self.revenue if x > 0) / self.visitors if self.visitors else math.nan


def relative(
    treated_mean: float, treated_var: float, n1: int, base_mean: float, base_var: float, n0: int
) -> tuple[float, tuple[float, float]] | None:
    """Relative lift treated/base − 1 and its 95 % interval, by the delta method:
    Var(m1/m0) ≈ Var(m1)/m0² + (m1/m0)² Var(m0)/m0². None when it cannot be estimated."""
    if n1 < 2 or n0 < 2 or not base_mean > 0 or math.isnan(treated_mean):
        return None
    ratio = treated_mean / base_mean
    variance = (treated_var / n1) / base_mean**2 + ratio * ratio * (base_var / n0) / base_mean**2
    half = Z95 * math.sqrt(variance)
    return ratio - 1.0, (ratio - 1.0 - half, ratio - 1.0 + half)


def srm_p_value(learning: int, holdout: int, holdout_share: float) -> float | None:
    """χ² (1 df) of the arms' visitor counts against the configured split; small means the assignment is off."""
    total = learning + holdout
    if total == 0 or not 0 < holdout_share < 1:
        return None
    expected = (total * (1 - holdout_share), total * holdout_share)
    chi2 = sum((seen - exp) ** 2 / exp for seen, exp in zip((learning, holdout), expected, strict=True))
    return math.erfc(math.sqrt(chi2 / 2))


def sessions_needed(learning: Arm, holdout: Arm, holdout_share: float) -> int | None:
    """More visitors (both arms together) before a 10 % lift in revenue per visitor shows at 80 % power, α 5 %."""
    if holdout.visitors < 2 or learning.visitors < 2 or not holdout.mean > 0 or not 0 < holdout_share < 1:
        return None
    delta = TARGET_LIFT * holdout.mean
    variance = max(learning.variance, holdout.variance)
    # n per arm for equal arms; an unequal split f needs n·(1/f + 1/(1 − f))/2 visitors in all.
    per_arm = (Z95 + Z80) ** 2 * 2 * variance / (delta * delta)
    total = per_arm * (1 / holdout_share + 1 / (1 - holdout_share)) / 2
    return max(0, math.ceil(total) - (learning.visitors + holdout.visitors))


def _block(learning: float, holdout: float, estimate: tuple[float, tuple[float, float]] | None) -> dict[str, Any]:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 6)

    return {
        "learning": clean(learning),
        "holdout": clean(holdout),
        "relative": None if estimate is None else round(estimate[0], 6),
        "ci95": None if estimate is None else [round(estimate[1][0], 6), round(estimate[1][1], 6)],
    }


def lift_report(
    visitors: Mapping[str, int], revenue_by_visitor: Mapping[str, Mapping[str, Decimal]], holdout_share: float
) -> dict[str, Any]:
    """The ROI's `lift` block; always present, its figures null while an arm has no visitors."""
    arms = {
        name: Arm(visitors=visitors.get(name, 0), revenue=[float(v) for v in revenue_by_visitor.get(name, {}).values()])
        for name in ("learning", "holdout")
    }
    learning, holdout = arms["learning"], arms["holdout"]
    rpv = relative(
        learning.mean, learning.variance, learning.visitors, holdout.mean, holdout.variance, holdout.visitors
    )
    cvr_var = [a.conversion * (1 - a.conversion) * a.visitors / max(a.visitors - 1, 1) for a in (learning, holdout)]
    cvr = relative(learning.conversion, cvr_var[0], learning.visitors, holdout.conversion, cvr_var[1], holdout.visitors)
    return {
        "visitors": {"learning": learning.visitors, "holdout": holdout.visitors},
        "revenue_per_visitor": _block(learning.mean, holdout.mean, rpv),
        "conversion_rate": _block(learning.conversion, holdout.conversion, cvr),
        "srm_p_value": srm_p_value(learning.visitors, holdout.visitors, holdout_share),
        "sessions_needed": sessions_needed(learning, holdout, holdout_share),
    }
