"""The few distribution functions learning needs (no scipy in a Lambda layer): pure Python, but for `lgamma` over
numpy arrays, which the learning job alone calls.

The regularized incomplete beta function uses the continued fraction of Numerical Recipes (Lentz's method),
accurate to about 1e-9 over the parameter ranges reclift meets (shape parameters up to a few hundred thousand;
lgamma's rounding at large arguments is what limits it).
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_EPSILON = 1e-14
_TINY = 1e-300
_MAX_ITERATIONS = 10_000


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPSILON:
            return h
    return h  # converged as far as it will; the error is far below anything a decision depends on


def beta_cdf(x: float, a: float, b: float) -> float:
    """P(X ≤ x) for X ~ Beta(a, b), a, b > 0."""
    if not (a > 0 and b > 0):  # written so that NaN is refused too
        raise ValueError("Beta parameters must be positive")
    if math.isnan(x):
        raise ValueError("x must be a number")
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(x, a, b) / a
    return 1.0 - front * _beta_continued_fraction(1.0 - x, b, a) / b


def beta_draw(rng: random.Random, a: float, b: float) -> float:
    """One draw from Beta(a, b)."""
    return rng.betavariate(a, b)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: what a merchant reads beside an observed rate (it always holds
    that rate, stays in [0, 1], and keeps close to its nominal coverage even at rates near 0, where the plain
    normal interval collapses to a point)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials and trials > 0")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate, z2 = successes / trials, z * z
    centre = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials))
    # At 0 or all successes the bound is exactly 0 or 1; computed, it can round a hair inside the observed rate.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


# ln Γ by Stirling's series: its terms in 1/x past ln √(2π) + (x − ½) ln x − x, as multiples of 1/x, 1/x³, … 1/x¹³
# (B₂ₙ / (2n (2n − 1))). Taken at x + 8, past which the next term is under 1e-15.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)
_LGAMMA_SHIFT = 8
_HALF_LN_TAU = 0.5 * math.log(2 * math.pi)


def lgamma(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """ln Γ of every element of `x` (each > 0, under about 1e30), as math.lgamma gives it to within a few units of
    its last place: Stirling's series at x + 8, brought back by Γ(x + 8) = Γ(x) · x (x + 1) … (x + 7). The learning
    job's alone (numpy): its prior fits evaluate a likelihood over every product some hundreds of times, which
    math.lgamma, one number at a time, made about a fifth of the learner's CPU."""
    import numpy as np  # the learning job's alone: the request path never loads it

    shifted = x + _LGAMMA_SHIFT
    rising = x.copy()
    for step in range(1, _LGAMMA_SHIFT):
        rising *= x + step
    inverse = 1.0 / shifted
    square = inverse * inverse
    series = np.full_like(shifted, _STIRLING[-1])
    for coefficient in reversed(_STIRLING[:-1]):
        series = series * square + coefficient
    result: NDArray[np.float64] = (
        (shifted - 0.5) * np.log(shifted) - shifted + _HALF_LN_TAU + series * inverse - np.log(rising)
    )
    return result
