"""stats.beta_cdf against closed forms, the exact binomial relation and the NOTES-learning.md §3.3 worked examples."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclift.stats import beta_cdf, beta_draw, lgamma, wilson_interval

TOLERANCE = 1e-9

unit_interval = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
# dyadic points, so that 1 − x is exact and the symmetry check compares the function, not rounding of 1 − x
dyadic_unit_interval = st.integers(min_value=0, max_value=2**20).map(lambda k: k / 2**20)
shapes = st.floats(min_value=0.05, max_value=5_000.0, allow_nan=False, allow_infinity=False)


def binomial_at_least(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) ≥ k), exactly in rationals, then rounded once to a float."""
    q = Fraction(p)
    below = sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k))
    return float(1 - below)


# --- closed forms ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [1e-6, 0.001, 0.005, 0.1, 0.37, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("b", [0.5, 1.0, 2.0, 7.0, 98.0, 1000.0])
def test_given_beta_1_b_when_evaluated_then_it_is_one_minus_one_minus_x_to_the_b(x: float, b: float) -> None:
    assert beta_cdf(x, 1.0, b) == pytest.approx(1 - (1 - x) ** b, abs=TOLERANCE)


@pytest.mark.parametrize("x", [1e-6, 0.001, 0.005, 0.1, 0.37, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("a", [0.5, 1.0, 2.0, 7.0, 98.0, 1000.0])
def test_given_beta_a_1_when_evaluated_then_it_is_x_to_the_a(x: float, a: float) -> None:
    assert beta_cdf(x, a, 1.0) == pytest.approx(x**a, abs=TOLERANCE)


@given(x=unit_interval)
def test_given_beta_1_1_when_evaluated_then_it_is_uniform(x: float) -> None:
    assert beta_cdf(x, 1.0, 1.0) == pytest.approx(x, abs=TOLERANCE)


@pytest.mark.parametrize("a", [0.01, 0.5, 1.0, 2.0, 7.5, 100.0, 10_000.0, 100_000.0])
def test_given_a_symmetric_beta_when_evaluated_at_one_half_then_it_is_one_half(a: float) -> None:
    assert beta_cdf(0.5, a, a) == pytest.approx(0.5, abs=TOLERANCE)


@pytest.mark.parametrize("x", [0.001, 0.1, 0.3, 0.5, 0.8, 0.999])
def test_given_the_arcsine_distribution_when_evaluated_then_it_matches_two_over_pi_asin_sqrt_x(x: float) -> None:
    assert beta_cdf(x, 0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)), abs=TOLERANCE)


# --- the exact binomial relation I_p(k, n − k + 1) = P(Binomial(n, p) ≥ k) -------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "p"),
    [
        (1, 1, 0.3),
        (10, 3, 0.2),
        (40, 40, 0.9),
        (50, 25, 0.5),
        (100, 1, 0.005),
        (199, 2, 0.005),
        (300, 150, 0.52),
        (1000, 5, 0.004),
        (1000, 20, 0.02),
        (2000, 30, 0.0125),
    ],
)
def test_given_integer_shapes_when_evaluated_then_it_equals_the_binomial_upper_tail(n: int, k: int, p: float) -> None:
    assert beta_cdf(p, k, n - k + 1) == pytest.approx(binomial_at_least(n, p, k), abs=TOLERANCE)


@pytest.mark.parametrize("n", [1, 10, 100, 598, 1000, 10_000])
def test_given_the_exact_one_sided_bound_for_zero_conversions_when_evaluated_then_it_is_the_95th_percentile(
    n: int,
) -> None:
    # 0 conversions in n: the exact 95 % upper bound 1 − 0.05^(1/n) is the 0.95 quantile of Beta(1, n).
    bound = 1 - 0.05 ** (1 / n)
    assert beta_cdf(bound, 1.0, n) == pytest.approx(0.95, abs=TOLERANCE)


# --- NOTES-learning.md §3.3 worked examples (prior Beta(2, 98), threshold 0.5 %) ------------------------------------


@pytest.mark.parametrize(
    ("purchases", "impressions", "rounded"),
    [(0, 100, 0.26), (0, 1000, 0.97), (1, 100, 0.08)],
)
def test_given_the_worked_examples_when_p_cvr_below_half_a_percent_then_the_notes_figures_hold(
    purchases: int, impressions: int, rounded: float
) -> None:
    a, b = 2 + purchases, 98 + impressions - purchases
    value = beta_cdf(0.005, a, b)
    assert value == pytest.approx(rounded, abs=0.005)
    # and exactly, through the binomial relation (integer shapes): I_p(a, b) = P(Binomial(a + b − 1, p) ≥ a)
    assert value == pytest.approx(binomial_at_least(a + b - 1, 0.005, a), abs=TOLERANCE)


# --- bounds, monotonicity, symmetry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [0.0, -0.1, -1e300, -math.inf])
def test_given_x_at_or_below_zero_when_evaluated_then_it_is_zero(x: float) -> None:
    assert beta_cdf(x, 2.0, 98.0) == 0.0


@pytest.mark.parametrize("x", [1.0, 1.1, 1e300, math.inf])
def test_given_x_at_or_above_one_when_evaluated_then_it_is_one(x: float) -> None:
    assert beta_cdf(x, 2.0, 98.0) == 1.0


@given(x=unit_interval, a=shapes, b=shapes)
def test_given_any_valid_inputs_when_evaluated_then_the_result_is_a_probability(x: float, a: float, b: float) -> None:
    value = beta_cdf(x, a, b)
    assert 0.0 <= value <= 1.0


@settings(max_examples=200)
@given(x1=unit_interval, x2=unit_interval, a=shapes, b=shapes)
def test_given_two_points_when_evaluated_then_the_cdf_is_monotonic_in_x(
    x1: float, x2: float, a: float, b: float
) -> None:
    low, high = sorted((x1, x2))
    assert beta_cdf(low, a, b) <= beta_cdf(high, a, b) + 1e-12


@given(x=dyadic_unit_interval, a=shapes, b=shapes)
def test_given_swapped_shapes_when_evaluated_at_one_minus_x_then_they_are_complementary(
    x: float, a: float, b: float
) -> None:
    assert beta_cdf(x, a, b) == pytest.approx(1 - beta_cdf(1 - x, b, a), abs=TOLERANCE)


# --- invalid parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, -1.0), (0.0, 0.0), (-math.inf, 1.0), (1.0, -1e-300)],
)
@pytest.mark.parametrize("x", [-0.5, 0.5, 1.5])
def test_given_a_non_positive_shape_when_evaluated_then_it_is_rejected(x: float, a: float, b: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        beta_cdf(x, a, b)


@pytest.mark.parametrize(("a", "b"), [(math.nan, 1.0), (1.0, math.nan)])
def test_given_a_nan_shape_when_evaluated_then_it_is_rejected(a: float, b: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        beta_cdf(0.5, a, b)


# --- beta_draw -------------------------------------------------------------------------------------------------------


def test_given_a_seeded_rng_when_drawing_then_draws_are_reproducible_and_centred_on_the_mean() -> None:
    first = [beta_draw(random.Random(7), 2.0, 98.0) for _ in range(3)]
    assert first == [beta_draw(random.Random(7), 2.0, 98.0) for _ in range(3)]
    rng = random.Random(11)
    draws = [beta_draw(rng, 2.0, 98.0) for _ in range(20_000)]
    assert all(0.0 < d < 1.0 for d in draws)
    assert sum(draws) / len(draws) == pytest.approx(0.02, abs=0.0005)


# --- the Wilson interval shown beside a product's CVR -----------------------------------------------------------------


@pytest.mark.parametrize(("rate", "trials"), [(0.005, 200), (0.02, 500), (0.02, 5_000), (0.1, 100), (0.3, 1_000)])
def test_given_binomial_counts_when_the_wilson_interval_is_drawn_then_it_covers_the_rate_about_95_percent(
    rate: float, trials: int
) -> None:
    rng = random.Random(rate * trials)
    draws = 4_000
    covered = 0
    for _ in range(draws):
        successes = sum(rng.random() < rate for _ in range(trials))
        low, high = wilson_interval(successes, trials)
        covered += low <= rate <= high
    # Wilson's coverage wobbles around 95 % with the lattice of counts; it never falls to the plain interval's
    # 60-80 % at these small rates.
    assert 0.91 <= covered / draws <= 0.99


@given(st.integers(min_value=1, max_value=100_000), st.data())
@settings(max_examples=300)
def test_given_counts_then_the_wilson_interval_holds_the_observed_rate_inside_zero_one(
    trials: int, data: st.DataObject
) -> None:
    successes = data.draw(st.integers(min_value=0, max_value=trials))
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_given_more_trials_at_the_same_rate_then_the_wilson_interval_narrows() -> None:
    widths = [high - low for low, high in (wilson_interval(n // 50, n) for n in (100, 1_000, 10_000, 100_000))]
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < widths[0] / 20


def test_given_impossible_counts_then_the_wilson_interval_refuses_them() -> None:
    for successes, trials in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="successes"):
            wilson_interval(successes, trials)


# --- lgamma ----------------------------------------------------------------------------------------------------------


def test_given_arguments_from_tiny_to_huge_then_lgamma_is_math_lgamma_to_within_its_last_digits() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([np.geomspace(1e-9, 1e25, 5_000), rng.uniform(0.0, 50.0, 5_000) + 1e-12, np.arange(1.0, 400.0)])
    expected = np.array([math.lgamma(value) for value in x])
    assert np.all(np.abs(lgamma(x) - expected) <= 1e-13 * np.maximum(1.0, np.abs(expected)))


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_given_any_x_then_lgamma_of_x_plus_one_exceeds_it_by_ln_x(x: float) -> None:
    pair = lgamma(np.array([x, x + 1.0]))
    # the difference of two values of ln Γ loses what their size rounds away: a few units of their last place
    assert pair[1] - pair[0] == pytest.approx(math.log(x), rel=1e-9, abs=1e-13 * max(1.0, abs(pair[0])))


def test_given_the_known_values_then_lgamma_gives_them() -> None:
    got = lgamma(np.array([1.0, 2.0, 0.5, 10.0]))
    assert got == pytest.approx([0.0, 0.0, 0.5 * math.log(math.pi), math.log(362_880)], abs=1e-14)
