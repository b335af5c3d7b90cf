"""Learning (DESIGN.md §3, NOTES-learning.md §3.1–3.4): the window, the prior, the `seed` and `bayes` policies."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from reclift.learning import (
    DEFAULT_PRIOR_MEAN,
    Performance,
    Prior,
    ProductDay,
    ProductWindow,
    aggregate,
    best_sellers,
    evidence,
    fit_prior,
    learn,
    log_marginal,
    median_price,
    probability_greater,
)
from reclift.settings import ShopSettings
from reclift.stats import beta_cdf

TODAY = date(2024, 6, 30)
SEED = ShopSettings(policy="seed")
# The prior's strength pinned to 100; the notes' Beta(2, 98), given to `learn` where a test's arithmetic rests on it.
PINNED = ShopSettings(policy="bayes", prior_strength_min=100.0, prior_strength_max=100.0)
NOTES_PRIOR = Prior(alpha=2.0, beta=98.0)


def day(age: int, product_id: str = "p", impressions: int = 0, purchases: int = 0) -> ProductDay:
    return ProductDay(TODAY - timedelta(days=age), product_id, impressions=impressions, purchases=purchases)


def window(
    product_id: str,
    impressions: int,
    purchases: int,
    *,
    decayed_impressions: float | None = None,
    decayed_purchases: float | None = None,
) -> ProductWindow:
    """A window as `aggregate` builds it for days all of age 0 (decayed = raw) unless told otherwise."""
    return ProductWindow(
        product_id,
        impressions=impressions,
        purchases=purchases,
        decayed_impressions=float(impressions if decayed_impressions is None else decayed_impressions),
        decayed_purchases=float(purchases if decayed_purchases is None else decayed_purchases),
    )


def windows_of(*items: ProductWindow) -> dict[str, ProductWindow]:
    return {w.product_id: w for w in items}


# --- aggregate -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "included"),
    [(0, True), (1, True), (29, True), (30, False), (31, False), (-1, False), (-30, False)],
    ids=["today", "yesterday", "window-1", "window", "window+1", "tomorrow", "a-month-ahead"],
)
def test_given_a_day_of_some_age_when_aggregated_then_only_the_last_window_days_count(age: int, included: bool) -> None:
    windows = aggregate([day(age, impressions=10, purchases=1)], today=TODAY, window_days=30, half_life_days=14)
    if included:
        assert windows["p"].impressions == 10
        assert windows["p"].purchases == 1
    else:
        assert windows == {}


@pytest.mark.parametrize("window_days", [7, 14, 90])
def test_given_other_window_lengths_when_aggregated_then_the_edge_moves_with_them(window_days: int) -> None:
    days = [day(window_days - 1, "in", impressions=1), day(window_days, "out", impressions=1)]
    windows = aggregate(days, today=TODAY, window_days=window_days, half_life_days=14)
    assert set(windows) == {"in"}


@pytest.mark.parametrize(
    ("age", "half_life", "weight"),
    [(0, 14.0, 1.0), (14, 14.0, 0.5), (28, 14.0, 0.25), (7, 14.0, 0.5**0.5), (10, 10.0, 0.5), (3, 1.0, 0.125)],
)
def test_given_a_day_of_some_age_when_aggregated_then_its_decayed_counts_weigh_half_per_half_life(
    age: int, half_life: float, weight: float
) -> None:
    windows = aggregate(
        [day(age, impressions=1000, purchases=40)], today=TODAY, window_days=30, half_life_days=half_life
    )
    assert windows["p"].decayed_impressions == pytest.approx(1000 * weight, rel=1e-12)
    assert windows["p"].decayed_purchases == pytest.approx(40 * weight, rel=1e-12)
    # the raw counts are not decayed: the prior and the seed rules read them
    assert windows["p"].impressions == 1000
    assert windows["p"].purchases == 40


def test_given_several_days_and_products_when_aggregated_then_every_counter_is_summed_per_product() -> None:
    days = [
        ProductDay(TODAY, "a", impressions=100, clicks=10, purchases=2, units=3, revenue=Decimal("59.97")),
        ProductDay(
            TODAY - timedelta(days=14), "a", impressions=50, clicks=4, purchases=1, units=1, revenue=Decimal("20")
        ),
        ProductDay(
            TODAY - timedelta(days=40), "a", impressions=999, clicks=99, purchases=9, units=9, revenue=Decimal(9)
        ),
        ProductDay(TODAY - timedelta(days=1), "b", impressions=7, clicks=1),
    ]
    windows = aggregate(days, today=TODAY, window_days=30, half_life_days=14)
    a, b = windows["a"], windows["b"]
    assert (a.impressions, a.clicks, a.purchases, a.units, a.revenue) == (150, 14, 3, 4, Decimal("79.97"))
    assert a.decayed_impressions == pytest.approx(100 + 25)
    assert a.decayed_purchases == pytest.approx(2 + 0.5)
    assert (b.impressions, b.clicks, b.purchases, b.units, b.revenue) == (7, 1, 0, 0, Decimal(0))
    assert a.ctr == pytest.approx(14 / 150)
    assert a.cvr == pytest.approx(3 / 150)


@pytest.mark.parametrize(("recent_days", "recent"), [(7, (30, 3)), (1, (10, 1)), (14, (80, 5)), (30, (180, 10))])
def test_given_days_of_several_ages_when_aggregated_then_the_recent_days_are_also_summed_apart_raw(
    recent_days: int, recent: tuple[int, int]
) -> None:
    days = [
        day(0, impressions=10, purchases=1),
        day(6, impressions=20, purchases=2),
        day(7, impressions=50, purchases=2),
    ]
    days += [day(20, impressions=100, purchases=5), day(30, impressions=1000, purchases=50)]  # the last one: outside
    window = aggregate(days, today=TODAY, window_days=30, half_life_days=14, recent_days=recent_days)["p"]
    assert (window.recent_impressions, window.recent_purchases) == recent
    assert (window.impressions, window.purchases) == (180, 10)


def test_given_no_recent_days_argument_when_aggregated_then_the_last_7_days_are_recent() -> None:
    window = aggregate([day(6, impressions=5), day(7, impressions=9)], today=TODAY, window_days=30, half_life_days=14)
    assert window["p"].recent_impressions == 5


def test_given_no_days_when_aggregated_then_there_are_no_windows() -> None:
    assert aggregate([], today=TODAY, window_days=30, half_life_days=14) == {}


def test_given_a_window_without_impressions_when_rates_are_read_then_they_are_zero() -> None:
    empty = ProductWindow("p")
    assert (empty.ctr, empty.cvr) == (0.0, 0.0)


# --- ProductWindow.price, median_price, best_sellers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("revenue", "units", "price"),
    [
        (Decimal("59.97"), 3, Decimal("19.99")),
        (Decimal(100), 3, Decimal("33.33")),
        (Decimal(20), 1, Decimal("20.00")),
        (Decimal(0), 0, None),
        (Decimal(50), 0, None),
    ],
)
def test_given_revenue_and_units_when_the_price_is_read_then_it_is_the_average_paid_to_the_cent(
    revenue: Decimal, units: int, price: Decimal | None
) -> None:
    assert ProductWindow("p", units=units, revenue=revenue).price == price


def priced(product_id: str, price: str | None) -> ProductWindow:
    return ProductWindow(product_id, units=0 if price is None else 1, revenue=Decimal(price or 0))


def test_given_an_odd_number_of_prices_when_the_median_is_taken_then_it_is_the_middle_one() -> None:
    windows = [priced("a", "30.00"), priced("b", "10.00"), priced("c", "99.00")]
    assert median_price(windows) == Decimal("30.00")


def test_given_an_even_number_of_prices_when_the_median_is_taken_then_it_is_the_mean_of_the_middle_two() -> None:
    windows = [priced("a", "30.00"), priced("b", "10.00"), priced("c", "99.00"), priced("d", "20.00")]
    assert median_price(windows) == Decimal("25.00")


def test_given_products_without_a_price_when_the_median_is_taken_then_they_are_ignored() -> None:
    windows = [priced("a", None), priced("b", "12.50"), ProductWindow("c", impressions=100)]
    assert median_price(windows) == Decimal("12.50")


@pytest.mark.parametrize("windows", [[], [priced("a", None), ProductWindow("b", impressions=5)]])
def test_given_no_prices_when_the_median_is_taken_then_it_is_none(windows: list[ProductWindow]) -> None:
    assert median_price(windows) is None


def test_given_products_when_best_sellers_are_listed_then_most_purchased_come_first_with_stable_ties() -> None:
    windows = windows_of(
        ProductWindow("few", impressions=10, purchases=1, units=1),
        ProductWindow("most", impressions=10, purchases=9, units=9),
        ProductWindow("tie-more-units", impressions=10, purchases=5, units=8),
        ProductWindow("tie-fewer-units", impressions=10, purchases=5, units=5),
        ProductWindow("tie-more-shown", impressions=50, purchases=5, units=5),
        ProductWindow("shown-only", impressions=200),
        ProductWindow("b-same", impressions=10, purchases=1, units=1),
        ProductWindow("never-seen"),
    )
    assert best_sellers(windows, limit=10) == [
        "most",
        "tie-more-units",
        "tie-more-shown",
        "tie-fewer-units",
        "b-same",
        "few",
        "shown-only",
    ]


def test_given_orders_never_attributed_when_best_sellers_are_listed_then_the_shops_sales_lead() -> None:
    windows = windows_of(
        ProductWindow("attributed", impressions=100, purchases=3, units=3),
        ProductWindow("shown-only", impressions=100),
    )
    sold = {"sold-most": 9, "attributed": 4, "sold-twice": 2, "never": 0}

    assert best_sellers(windows, limit=10, sold=sold) == ["sold-most", "attributed", "sold-twice", "shown-only"]


@pytest.mark.parametrize("limit", [0, 1, 2, 3])
def test_given_a_limit_when_best_sellers_are_listed_then_at_most_that_many_are_returned(limit: int) -> None:
    windows = windows_of(*(ProductWindow(f"p{i}", impressions=10, purchases=i) for i in range(1, 6)))
    assert best_sellers(windows, limit=limit) == ["p5", "p4", "p3", "p2", "p1"][:limit]


# --- fit_prior -------------------------------------------------------------------------------------------------------


def likeliest(prior: Prior, windows: list[ProductWindow], *, free_strength: bool = True) -> bool:
    """Whether no prior nearby explains the windows' counts better (a 2 % step of the mean, and of the strength
    unless it is pinned at a bound)."""
    counts = [(w.exposure, float(w.purchases)) for w in windows if w.exposure > 0]
    best = log_marginal(counts, prior.mean, prior.strength)
    steps = [(m, prior.strength) for m in (prior.mean * 0.98, prior.mean * 1.02)]
    if free_strength:
        steps += [(prior.mean, s) for s in (prior.strength * 0.98, prior.strength * 1.02)]
    return all(log_marginal(counts, m, s) <= best + 1e-9 for m, s in steps)


def exact_log_marginal(counts: list[tuple[int, int]], a: int, b: int) -> float:
    """Σ ln B(a + k, b + n − k) / B(a, b) for whole numbers, B(x, y) = (x − 1)! (y − 1)! / (x + y − 1)! exactly."""

    def beta(x: int, y: int) -> Fraction:
        return Fraction(math.factorial(x - 1) * math.factorial(y - 1), math.factorial(x + y - 1))

    return sum(math.log(beta(a + k, b + n - k) / beta(a, b)) for n, k in counts)


@pytest.mark.parametrize(
    ("counts", "a", "b"),
    [
        ([(10, 1)], 1, 1),
        ([(100, 3), (40, 0), (7, 7)], 2, 98),
        ([(1_000, 15), (2_500, 20), (0, 0), (300, 0)], 3, 197),
    ],
)
def test_given_whole_counts_and_shapes_then_log_marginal_is_the_exact_beta_binomial_likelihood(
    counts: list[tuple[int, int]], a: int, b: int
) -> None:
    got = log_marginal([(float(n), float(k)) for n, k in counts], a / (a + b), a + b)
    assert got == pytest.approx(exact_log_marginal(counts, a, b), rel=1e-12, abs=1e-9)


def test_given_a_moderate_spread_when_the_prior_is_fitted_then_no_nearby_prior_explains_the_counts_better() -> None:
    windows = [window("a", 1000, 10), window("b", 3000, 90), window("c", 500, 5), window("d", 0, 0)]
    prior = fit_prior(windows, min_strength=1.0, max_strength=1e9)
    assert 10 / 1000 < prior.mean < 90 / 3000
    assert 1.0 < prior.strength < 1e9
    assert likeliest(prior, windows)
    assert prior.alpha == pytest.approx(prior.mean * prior.strength, rel=1e-12)
    assert prior.beta == pytest.approx((1 - prior.mean) * prior.strength, rel=1e-12)


def test_given_a_large_true_spread_when_the_prior_is_fitted_then_the_strength_is_clipped_at_the_minimum() -> None:
    windows = [window("a", 100, 10), window("b", 100, 0)]
    prior = fit_prior(windows, min_strength=50.0, max_strength=1000.0)
    assert fit_prior(windows, min_strength=1.0, max_strength=1000.0).strength < 50.0  # what the counts alone say
    assert prior.strength == pytest.approx(50.0)
    assert 0.0 < prior.mean < 0.10
    assert likeliest(prior, windows, free_strength=False)


def test_given_a_tiny_true_spread_when_the_prior_is_fitted_then_the_strength_is_clipped_at_the_maximum() -> None:
    # 200/10,000 vs 210/10,000: a true spread far smaller than m(1 − m) / 1000
    windows = [window("a", 10_000, 200), window("b", 10_000, 210), window("c", 10_000, 190), window("d", 10_000, 250)]
    prior = fit_prior(windows, min_strength=50.0, max_strength=1000.0)
    assert prior.strength == pytest.approx(1000.0)
    assert prior.mean == pytest.approx(850 / 40_000, rel=0.05)


def test_given_identical_cvrs_when_the_prior_is_fitted_then_no_variation_gives_the_maximum_strength() -> None:
    windows = [window("a", 100, 2), window("b", 1000, 20), window("c", 50, 1)]
    prior = fit_prior(windows, min_strength=50.0, max_strength=777.0)
    assert prior.strength == pytest.approx(777.0)
    assert prior.mean == pytest.approx(0.02, rel=0.05)


def test_given_one_product_when_the_prior_is_fitted_then_it_is_centred_on_it_at_the_maximum_strength() -> None:
    prior = fit_prior([window("only", 400, 6)], min_strength=50.0, max_strength=1000.0)
    assert prior.mean == pytest.approx(6 / 400, rel=0.05)
    assert prior.strength == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "windows",
    [
        [],
        [window("a", 0, 0)],
        [window("a", 500, 0), window("b", 2000, 0)],
    ],
    ids=["no-products", "no-impressions", "no-purchases"],
)
def test_given_no_purchases_when_the_prior_is_fitted_then_it_is_the_default_mean_at_the_maximum_strength(
    windows: list[ProductWindow],
) -> None:
    prior = fit_prior(windows, min_strength=50.0, max_strength=1000.0)
    assert prior.mean == pytest.approx(DEFAULT_PRIOR_MEAN)
    assert prior.strength == pytest.approx(1000.0)


def test_given_products_without_impressions_when_the_prior_is_fitted_then_they_do_not_count() -> None:
    base = [window("a", 100, 10), window("b", 100, 0)]
    with_empty = [*base, *(window(f"empty{i}", 0, 0) for i in range(50))]
    assert fit_prior(with_empty, min_strength=1.0, max_strength=1000.0) == fit_prior(
        base, min_strength=1.0, max_strength=1000.0
    )


def test_given_many_products_drawn_from_a_known_beta_when_the_prior_is_fitted_then_it_recovers_it() -> None:
    # True CVRs ~ Beta(2, 98) (mean 2 %, strength 100); 400 products × 2,000 impressions, binomial purchases.
    rng = random.Random(20240630)
    windows = []
    for i in range(400):
        true_cvr = rng.betavariate(2, 98)
        purchases = sum(rng.random() < true_cvr for _ in range(2000))
        windows.append(window(f"p{i}", 2000, purchases))
    prior = fit_prior(windows, min_strength=1.0, max_strength=1e6)
    assert prior.mean == pytest.approx(0.02, rel=0.1)
    assert 75 <= prior.strength <= 135


def drawn_shop(seed: int, products: int, low: int, high: int) -> list[ProductWindow]:
    """Products whose true CVRs are drawn from the store simulation's Beta(1.5, 98.5) (mean 1.5 %, strength 100),
    each shown a uniform number of times in [low, high], with binomial purchases."""
    rng = np.random.default_rng(seed)
    cvr = rng.beta(1.5, 98.5, size=products)
    impressions = rng.integers(low, high + 1, size=products)
    purchases = rng.binomial(impressions, cvr)
    return [window(f"p{i}", int(n), int(k)) for i, (n, k) in enumerate(zip(impressions, purchases, strict=True))]


@pytest.mark.parametrize("seed", range(5))
def test_given_few_impressions_per_product_when_the_prior_is_fitted_then_it_still_recovers_the_true_beta(
    seed: int,
) -> None:
    # 100–600 impressions a product: the binomial noise is about a third of the observed spread of the CVRs. The
    # likelihood counts each product's noise; a fit that took the observed CVRs for the true ones would read the
    # products as more alike than they are (about 76 instead of 100), and fail here.
    windows = drawn_shop(seed, 2000, 100, 600)
    prior = fit_prior(windows, min_strength=1.0, max_strength=1e6)
    assert prior.mean == pytest.approx(0.015, rel=0.1)
    assert prior.strength == pytest.approx(100, rel=0.15)
    assert naive_strength(windows) < 100 * 0.85


def naive_strength(windows: list[ProductWindow]) -> float:
    """The method of moments on the observed CVRs as if they were the true ones (no binomial noise removed)."""
    rates = [w.purchases / w.impressions for w in windows]
    mean = float(np.mean(rates))
    return mean * (1 - mean) / float(np.var(rates)) - 1


@pytest.mark.parametrize("seed", range(4))
def test_given_exposure_that_follows_what_sold_when_the_prior_is_fitted_then_it_is_the_catalogue_s(seed: int) -> None:
    # Serving shows most what has sold: every product 200 impressions, then the best quarter by its observed CVR
    # 4,000 more. The pooled CVR describes the shown products (about 2.5 %, not the catalogue's 1.5 %); the
    # likelihood does not depend on how the exposure was chosen from the counts, and recovers the catalogue's Beta.
    rng = np.random.default_rng(seed)
    cvr = rng.beta(1.5, 98.5, size=400)
    first = rng.binomial(200, cvr)
    shown = np.zeros(400, dtype=int)
    shown[np.argsort(-first, kind="stable")[:100]] = 4000
    windows = [
        window(f"p{i}", 200 + int(more), int(bought + rng.binomial(more, rate)))
        for i, (rate, bought, more) in enumerate(zip(cvr, first, shown, strict=True))
    ]
    pooled = sum(w.purchases for w in windows) / sum(w.impressions for w in windows)
    assert pooled > 1.4 * float(cvr.mean())
    prior = fit_prior(windows, min_strength=1.0, max_strength=1e6)
    assert prior.mean == pytest.approx(float(cvr.mean()), rel=0.1)
    assert prior.strength == pytest.approx(100, rel=0.25)


def test_given_decayed_counts_when_the_prior_is_fitted_then_only_the_raw_counts_are_used() -> None:
    raw = [window("a", 100, 10), window("b", 100, 0)]
    decayed = [
        window("a", 100, 10, decayed_impressions=3.0, decayed_purchases=3.0),
        window("b", 100, 0, decayed_impressions=90.0),
    ]
    assert fit_prior(decayed, min_strength=1.0, max_strength=1000.0) == fit_prior(
        raw, min_strength=1.0, max_strength=1000.0
    )


# --- learn: seed ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("impressions", "purchases", "confidence", "blacklisted"),
    [
        (0, 0, 0.5, False),  # no data
        (99, 0, 0.5, False),  # one impression short of the rule
        (100, 0, 0.2, True),  # exactly 100: the rule applies
        (200, 1, 0.5, False),  # exactly 0.5 %: not below it
        (201, 1, 0.2, True),  # just below 0.5 %
        (100, 2, 0.5, False),  # exactly 2 %: boosted only when above
        (10_000, 201, 0.9, False),  # 2.01 %: just above
        (100, 3, 0.9, False),
        (99, 50, 0.5, False),  # a great CVR is not boosted before 100 impressions either
    ],
    ids=["zero", "99-imps", "100-imps", "cvr-0.5%", "cvr-below-0.5%", "cvr-2%", "cvr-2.01%", "cvr-3%", "99-imps-hot"],
)
def test_given_the_seed_policy_when_learning_then_the_rules_apply_at_their_exact_edges(
    impressions: int, purchases: int, confidence: float, blacklisted: bool
) -> None:
    windows = windows_of(window("p", impressions, purchases), window("other", 1000, 15))
    _, performance = learn(windows, SEED)
    assert performance["p"].confidence == confidence
    assert performance["p"].blacklisted is blacklisted
    assert performance["p"].reason


@pytest.mark.parametrize(
    ("impressions", "purchases", "phrase"),
    [(50, 0, "fewer than 100 impressions"), (300, 0, "below"), (100, 5, "boosted"), (100, 1, "CVR 1.00%")],
)
def test_given_the_seed_policy_when_learning_then_the_reason_explains_the_rule(
    impressions: int, purchases: int, phrase: str
) -> None:
    _, performance = learn(windows_of(window("p", impressions, purchases)), SEED)
    assert phrase in performance["p"].reason


def test_given_the_seed_policy_with_other_thresholds_when_learning_then_the_shop_settings_apply() -> None:
    settings = ShopSettings(policy="seed", min_impressions=10, blacklist_cvr=0.1, boost_cvr=0.3)
    windows = windows_of(window("low", 10, 0), window("mid", 10, 2), window("high", 10, 4), window("short", 9, 0))
    _, performance = learn(windows, settings)
    assert {pid: (p.confidence, p.blacklisted) for pid, p in performance.items()} == {
        "low": (0.2, True),
        "mid": (0.5, False),
        "high": (0.9, False),
        "short": (0.5, False),
    }


def test_given_learning_when_performance_is_built_then_it_carries_the_window_counts() -> None:
    source = ProductWindow(
        "p", impressions=400, clicks=20, purchases=8, units=9, revenue=Decimal("180.00"),
        decayed_impressions=300.0, decayed_purchases=6.0,
    )  # fmt: skip
    for settings in (SEED, PINNED):
        _, performance = learn({"p": source}, settings)
        p = performance["p"]
        assert (p.impressions, p.clicks, p.purchases, p.units, p.revenue) == (400, 20, 8, 9, Decimal("180.00"))
        assert (p.ctr, p.cvr) == pytest.approx((0.05, 0.02))
        assert p.price == Decimal("20.00")


def test_given_no_windows_when_learning_then_nothing_is_judged_and_the_prior_is_the_default() -> None:
    prior, performance = learn({}, ShopSettings())
    assert performance == {}
    assert prior.mean == pytest.approx(DEFAULT_PRIOR_MEAN)


# --- learn: bayes ----------------------------------------------------------------------------------------------------


def test_given_the_strength_pinned_when_learning_then_the_prior_has_it_and_the_likeliest_mean() -> None:
    windows = windows_of(window("p", 100, 0), window("filler", 100, 4))
    prior, _ = learn(windows, PINNED)
    assert prior.strength == pytest.approx(100.0)
    assert 0.0 < prior.mean < 0.04
    assert likeliest(prior, list(windows.values()), free_strength=False)


def test_given_a_prior_when_learning_then_products_are_judged_against_it_not_a_fitted_one() -> None:
    windows = windows_of(window("p", 100, 0), window("filler", 100, 4))
    prior, performance = learn(windows, PINNED, NOTES_PRIOR)
    assert prior == NOTES_PRIOR
    assert (performance["p"].alpha, performance["p"].beta) == pytest.approx((2.0, 198.0))
    assert learn(windows, PINNED)[0] != NOTES_PRIOR


def test_given_0_of_100_under_a_beta_2_98_prior_when_learning_then_it_is_not_blacklisted() -> None:
    _, performance = learn(windows_of(window("p", 100, 0), window("filler", 100, 4)), PINNED, NOTES_PRIOR)
    p = performance["p"]
    assert (p.alpha, p.beta) == pytest.approx((2.0, 198.0))
    below = beta_cdf(0.005, p.alpha, p.beta)
    assert below == pytest.approx(0.26, abs=0.005)
    assert not p.blacklisted
    assert p.reason.startswith("P(CVR > shop's 2.00%)")


def test_given_0_of_1000_under_a_beta_2_98_prior_when_learning_then_it_is_blacklisted() -> None:
    _, performance = learn(windows_of(window("p", 1000, 0), window("filler", 1000, 40)), PINNED, NOTES_PRIOR)
    p = performance["p"]
    assert (p.alpha, p.beta) == pytest.approx((2.0, 1098.0))
    assert beta_cdf(0.005, p.alpha, p.beta) == pytest.approx(0.97, abs=0.005)
    assert p.blacklisted
    assert p.reason == "P(CVR < 0.50%) = 0.97 after 1000 impressions"


def test_given_1_of_100_under_a_beta_2_98_prior_when_learning_then_it_is_not_blacklisted() -> None:
    _, performance = learn(windows_of(window("p", 100, 1), window("filler", 100, 3)), PINNED, NOTES_PRIOR)
    p = performance["p"]
    assert beta_cdf(0.005, p.alpha, p.beta) == pytest.approx(0.08, abs=0.005)
    assert not p.blacklisted


@pytest.mark.parametrize(("min_impressions", "blacklisted"), [(999, True), (1000, True), (1001, False), (5000, False)])
def test_given_strong_evidence_when_impressions_are_below_the_minimum_then_it_is_not_blacklisted(
    min_impressions: int, blacklisted: bool
) -> None:
    settings = PINNED.model_copy(update={"min_impressions": min_impressions})
    _, performance = learn(windows_of(window("p", 1000, 0), window("filler", 1000, 40)), settings, NOTES_PRIOR)
    assert performance["p"].blacklisted is blacklisted


def test_given_a_higher_blacklist_confidence_when_learning_then_0_of_1000_is_no_longer_enough() -> None:
    settings = PINNED.model_copy(update={"blacklist_confidence": 0.99})
    _, performance = learn(windows_of(window("p", 1000, 0), window("filler", 1000, 40)), settings, NOTES_PRIOR)
    assert not performance["p"].blacklisted


def test_given_products_of_known_cvr_when_learning_then_bayes_blacklists_the_bad_and_spares_the_good() -> None:
    rng = random.Random(5)
    windows, truth = {}, {}
    for i in range(400):
        n = rng.choice([0, 20, 99, 100, 150, 400, 800, 1500, 3000])
        truth[f"p{i}"] = rng.choice([0.001, 0.004, 0.01, 0.02, 0.04])
        k = sum(rng.random() < truth[f"p{i}"] for _ in range(n))
        windows[f"p{i}"] = window(f"p{i}", n, k)
    _, bayes = learn(windows, ShopSettings())
    _, seed = learn(windows, SEED)

    def blacklisted(performance: dict[str, Performance], cvr: float, min_impressions: int = 0) -> list[bool]:
        return [
            p.blacklisted
            for pid, p in performance.items()
            if truth[pid] == cvr and windows[pid].impressions >= min_impressions
        ]

    # A product converting at twice the blacklist line (1 %) or more is never blacklisted; the raw rule does it.
    good = [flag for cvr in (0.01, 0.02, 0.04) for flag in blacklisted(bayes, cvr)]
    assert not any(good)
    assert any(flag for cvr in (0.01, 0.02) for flag in blacklisted(seed, cvr))
    # One converting at 0.1 % is blacklisted once 3,000 impressions show it (most of them at 1,500), never below 100.
    assert all(blacklisted(bayes, 0.001, 3000))
    caught = blacklisted(bayes, 0.001, 1500)
    assert sum(caught) >= 0.75 * len(caught)
    assert not any(p.blacklisted for pid, p in bayes.items() if windows[pid].impressions < 100)


def test_given_decayed_counts_when_learning_then_the_posterior_is_the_prior_plus_the_decayed_counts() -> None:
    windows = windows_of(
        window("p", 1000, 100, decayed_impressions=400.25, decayed_purchases=30.5),
        window("q", 1000, 0),
    )
    prior, performance = learn(windows, ShopSettings())
    p = performance["p"]
    assert p.alpha == pytest.approx(prior.alpha + 30.5, rel=1e-12)
    assert p.beta == pytest.approx(prior.beta + 400.25 - 30.5, rel=1e-12)
    assert p.posterior_mean == pytest.approx((prior.alpha + 30.5) / (prior.strength + 400.25), rel=1e-12)


def test_given_days_of_several_ages_when_aggregated_and_learned_then_old_days_weigh_half_per_half_life() -> None:
    days = [day(0, "p", 100, 4), day(14, "p", 200, 2), day(28, "p", 400, 8), day(0, "q", 500, 5)]
    windows = aggregate(days, today=TODAY, window_days=30, half_life_days=14)
    prior, performance = learn(windows, ShopSettings())
    assert performance["p"].alpha == pytest.approx(prior.alpha + 4 + 1 + 2)
    assert performance["p"].beta == pytest.approx(prior.beta + (100 + 100 + 100) - (4 + 1 + 2))


def test_given_old_bad_days_and_recent_good_days_when_learning_then_decay_lets_the_product_recover() -> None:
    # Same raw counts (10 purchases in 2,500 impressions = 0.4 %), opposite histories.
    days = [
        day(28, "recovering", 2000, 0),
        day(0, "recovering", 500, 10),
        day(28, "declining", 500, 10),
        day(0, "declining", 2000, 0),
        day(0, "filler", 2000, 80),
    ]
    windows = aggregate(days, today=TODAY, window_days=30, half_life_days=14)
    _, seed = learn(windows, SEED)
    assert seed["recovering"].blacklisted  # the raw rule cannot tell them apart
    assert seed["declining"].blacklisted
    _, bayes = learn(windows, PINNED)
    assert not bayes["recovering"].blacklisted
    assert bayes["declining"].blacklisted
    assert bayes["recovering"].posterior_mean > bayes["declining"].posterior_mean
    assert bayes["recovering"].confidence > bayes["declining"].confidence


def test_given_products_of_rising_cvr_when_learning_then_confidence_is_p_cvr_above_the_prior_mean_and_ordered() -> None:
    windows = windows_of(*(window(f"p{k:02d}", 1000, k) for k in range(0, 41, 4)), window("fresh", 0, 0))
    prior, performance = learn(windows, ShopSettings())
    for p in performance.values():
        assert 0.0 <= p.confidence <= 1.0
        assert p.confidence == round(1 - beta_cdf(prior.mean, p.alpha, p.beta), 6)
    # among products with the same evidence (1,000 impressions), a higher posterior mean is a higher confidence
    by_mean = sorted((p for p in performance.values() if p.impressions == 1000), key=lambda p: p.posterior_mean)
    assert len(by_mean) == 11
    confidences = [p.confidence for p in by_mean]
    assert confidences == sorted(confidences)
    assert confidences[0] < 0.5 < confidences[-1]
    # a product with no data sits on the prior: about even odds of beating the shop's mean (a little under, as a
    # Beta of a small mean leans right: less than half its mass above its mean)
    assert performance["fresh"].posterior_mean == pytest.approx(prior.mean)
    assert 0.35 < performance["fresh"].confidence < 0.6


def test_given_zero_impressions_under_bayes_when_learning_then_it_is_not_blacklisted() -> None:
    _, performance = learn(windows_of(window("p", 0, 0), window("q", 1000, 0)), ShopSettings())
    assert not performance["p"].blacklisted
    assert not performance["q"].blacklisted  # the pooled CVR is 0: the default prior, mean 1 %, strength 1000


def test_given_prior_type_when_reading_then_mean_and_strength_follow_alpha_and_beta() -> None:
    prior = Prior(alpha=3.0, beta=147.0)
    assert prior.mean == pytest.approx(0.02)
    assert prior.strength == pytest.approx(150.0)


# --- non-stationarity: exploration over the recent days, change detection (NOTES-learning.md §3.4) -----------------


@pytest.mark.parametrize(
    ("x", "y"),
    [((4.5, 145.5), (4.5, 1595.0)), ((1.5, 118.5), (6.5, 193.5)), ((1.5, 118.5), (21.5, 1078.5)), ((30, 70), (2, 8))],
)
def test_given_two_betas_when_p_greater_is_computed_then_it_matches_monte_carlo(
    x: tuple[float, float], y: tuple[float, float]
) -> None:
    rng = random.Random(7)
    draws = 100_000
    monte_carlo = sum(rng.betavariate(*x) > rng.betavariate(*y) for _ in range(draws)) / draws
    assert probability_greater(x, y) == pytest.approx(monte_carlo, abs=0.005)
    assert probability_greater(x, y) + probability_greater(y, x) == pytest.approx(1.0, abs=1e-9)


def test_given_the_same_beta_twice_when_p_greater_is_computed_then_it_is_one_half() -> None:
    assert probability_greater((2.0, 98.0), (2.0, 98.0)) == pytest.approx(0.5, abs=1e-4)


def recent_and_older(product_id: str, recent: tuple[int, int], older: tuple[int, int]) -> list[ProductDay]:
    """`recent` (impressions, purchases) yesterday and `older` three weeks ago."""
    return [day(1, product_id, *recent), day(21, product_id, *older)]


def learned(
    days: list[ProductDay], settings: ShopSettings = PINNED
) -> tuple[Prior, dict[str, ProductWindow], dict[str, Performance]]:
    windows = aggregate(
        days,
        today=TODAY,
        window_days=30,
        half_life_days=settings.half_life_days,
        recent_days=settings.explore_window_days,
    )
    prior, performance = learn(windows, settings)
    return prior, windows, performance


FILLER = [day(3, "filler", 5000, 100)]  # the shop's pooled CVR near 2 %


def test_given_a_cvr_that_jumped_when_learning_then_the_older_days_are_dropped_and_the_recent_ones_alone_count() -> (
    None
):
    # 1,500 impressions at 0.2 % three weeks ago, then 6 purchases in 100 impressions yesterday.
    prior, _, performance = learned(recent_and_older("jumped", (100, 6), (1500, 3)) + FILLER)
    jumped = performance["jumped"]
    assert jumped.alpha == pytest.approx(prior.alpha + 6)
    assert jumped.beta == pytest.approx(prior.beta + 94)
    assert "CVR changed: the last 7 days alone" in jumped.reason
    assert jumped.posterior_mean > prior.mean  # it ranks above an unknown product again


def test_given_a_cvr_that_dropped_when_learning_then_the_change_is_detected_too_and_it_can_be_blacklisted() -> None:
    prior, _, performance = learned(recent_and_older("dropped", (1200, 0), (1000, 40)) + FILLER)
    dropped = performance["dropped"]
    assert dropped.alpha == pytest.approx(prior.alpha)
    assert dropped.beta == pytest.approx(prior.beta + 1200)
    assert dropped.blacklisted
    assert "after 1200 impressions (CVR changed" in dropped.reason


def test_given_a_change_on_few_recent_impressions_when_learning_then_the_minimum_impressions_apply_to_them() -> None:
    settings = PINNED.model_copy(update={"min_impressions": 1000})
    _, _, performance = learned(recent_and_older("dropped", (900, 0), (3000, 120)) + FILLER, settings)
    assert "CVR changed" in performance["dropped"].reason
    assert not performance["dropped"].blacklisted  # 900 recent impressions: fewer than the shop's minimum


@pytest.mark.parametrize(
    ("recent", "older"),
    [((100, 2), (1500, 30)), ((100, 1), (1500, 3)), ((30, 0), (1000, 40)), ((0, 0), (1500, 3)), ((100, 2), (0, 0))],
    ids=["same-rate", "one-lucky-purchase", "few-impressions", "not-shown-lately", "new-product"],
)
def test_given_recent_evidence_that_does_not_contradict_the_older_when_learning_then_the_decayed_window_counts(
    recent: tuple[int, int], older: tuple[int, int]
) -> None:
    prior, windows, performance = learned(recent_and_older("p", recent, older) + FILLER)
    p, window = performance["p"], windows["p"]
    assert p.alpha == pytest.approx(prior.alpha + window.decayed_purchases)
    assert p.beta == pytest.approx(prior.beta + window.decayed_impressions - window.decayed_purchases)
    assert "CVR changed" not in p.reason


def test_given_change_confidence_1_when_learning_then_a_jump_is_not_detected() -> None:
    settings = PINNED.model_copy(update={"change_confidence": 1.0})
    prior, windows, performance = learned(recent_and_older("jumped", (100, 6), (1500, 3)) + FILLER, settings)
    assert performance["jumped"].alpha == pytest.approx(prior.alpha + windows["jumped"].decayed_purchases)
    assert "CVR changed" not in performance["jumped"].reason


def test_given_a_lower_change_confidence_when_learning_then_weaker_contradictions_count() -> None:
    days = recent_and_older("p", (100, 3), (1500, 15)) + FILLER  # 3 % lately, 1 % before
    window = aggregate(days, today=TODAY, window_days=30, half_life_days=14)["p"]
    prior = learn(aggregate(days, today=TODAY, window_days=30, half_life_days=14), PINNED)[0]
    recent = (prior.alpha + 3, prior.beta + 97)
    older = (prior.alpha + 15, prior.beta + 1485)
    p = probability_greater(recent, older)
    assert 0.9 < p < 0.99
    assert not evidence(window, prior, PINNED).changed
    assert evidence(window, prior, PINNED.model_copy(update={"change_confidence": 0.9})).changed


def test_given_a_shorter_explore_window_when_learning_then_recent_means_those_days() -> None:
    settings = PINNED.model_copy(update={"explore_window_days": 3})
    days = [day(5, "p", 100, 6), day(21, "p", 1500, 3), *FILLER]  # the jump is 5 days old: not recent under 3 days
    prior, windows, performance = learned(days, settings)
    assert windows["p"].recent_impressions == 0
    assert (performance["p"].explore_alpha, performance["p"].explore_beta) == (prior.alpha, prior.beta)
    assert "CVR changed" not in performance["p"].reason


def test_given_a_demoted_product_not_shown_lately_when_learning_then_exploration_draws_from_the_prior() -> None:
    prior, _, performance = learned(recent_and_older("demoted", (0, 0), (1500, 3)) + FILLER)
    demoted = performance["demoted"]
    assert demoted.posterior_mean < 0.006  # exploitation still knows it as bad …
    assert (demoted.explore_alpha, demoted.explore_beta) == (prior.alpha, prior.beta)  # … exploration retries it
    assert demoted.explore_posterior == (prior.alpha, prior.beta)


def test_given_recent_impressions_when_learning_then_the_exploration_posterior_is_the_prior_plus_recent_counts() -> (
    None
):
    prior, _, performance = learned(recent_and_older("p", (200, 4), (1500, 30)) + FILLER)
    assert performance["p"].explore_alpha == pytest.approx(prior.alpha + 4)
    assert performance["p"].explore_beta == pytest.approx(prior.beta + 196)


def test_given_the_seed_policy_when_learning_then_no_change_is_looked_for_and_the_posterior_is_the_decayed_one() -> (
    None
):
    prior, windows, performance = learned(recent_and_older("jumped", (100, 6), (1500, 3)) + FILLER, SEED)
    assert performance["jumped"].alpha == pytest.approx(prior.alpha + windows["jumped"].decayed_purchases)
    assert "CVR changed" not in performance["jumped"].reason


# --- properties of the learning on drawn worlds -----------------------------------------------------------------------
def test_given_drawn_shops_when_ranking_by_the_posterior_then_the_top_k_earns_more_than_by_raw_cvr() -> None:
    # 20 shops of 200 products, true CVRs ~ Beta(1.5, 98.5), prices log-normal (median 30, σ 0.6), impressions
    # Zipf-like (20 to ~2,000). Top 10 by expected revenue per impression: posterior mean × price against raw CVR ×
    # price, judged by the true CVR × price of what each picks.
    top, wins, earned = 10, 0, {"posterior": 0.0, "raw": 0.0}
    for seed in range(20):
        rng = np.random.default_rng(seed)
        cvr = rng.beta(1.5, 98.5, size=200)
        price = 30 * np.exp(rng.normal(0.0, 0.6, size=200))
        impressions = (2000 / np.arange(1, 201) ** 0.8).astype(int) + 20
        rng.shuffle(impressions)
        purchases = rng.binomial(impressions, cvr)
        windows = {f"p{i}": window(f"p{i}", int(impressions[i]), int(purchases[i])) for i in range(200)}
        _, performance = learn(windows, ShopSettings())
        posterior = np.array([performance[f"p{i}"].posterior_mean for i in range(200)])
        value = cvr * price
        best = np.sort(value)[-top:].sum()
        by = {
            "posterior": value[np.argsort(-posterior * price)[:top]].sum() / best,
            "raw": value[np.argsort(-(purchases / impressions) * price)[:top]].sum() / best,
        }
        wins += by["posterior"] > by["raw"]
        for name, share in by.items():
            earned[name] += share / 20
    assert wins >= 14
    assert earned["posterior"] >= earned["raw"] + 0.03  # measured: 83 % of the best top 10 against 79 %


def comeback_days(settings: ShopSettings, seed: int = 3) -> int | None:
    """Days of a good stretch (3 % CVR) after 30 bad days (0.1 %), 300 impressions a day, until the product is off the
    blacklist and its posterior mean above the median of 40 steady products (0.5–3 %); None if not within 30."""
    rng = np.random.default_rng(seed)
    steady = {f"s{i}": 0.005 + 0.025 * i / 39 for i in range(40)}
    history: list[ProductDay] = []
    start = TODAY - timedelta(days=60)
    for offset in range(60):
        when = start + timedelta(days=offset)
        rate = 0.001 if offset < 30 else 0.03
        history.append(ProductDay(when, "comeback", 300, purchases=int(rng.binomial(300, rate))))
        history += [ProductDay(when, pid, 300, purchases=int(rng.binomial(300, r))) for pid, r in steady.items()]
        if offset < 29:
            continue
        windows = aggregate(
            history,
            today=when,
            window_days=settings.learning_window_days,
            half_life_days=settings.half_life_days,
            recent_days=settings.explore_window_days,
        )
        _, performance = learn(windows, settings)
        product = performance["comeback"]
        if offset == 29:
            assert product.blacklisted, "30 bad days blacklist it"
            continue
        median = float(np.median([performance[pid].posterior_mean for pid in steady]))
        if not product.blacklisted and product.posterior_mean > median:
            return offset - 29
    return None


@pytest.mark.parametrize("seed", range(3))
def test_given_a_bad_history_then_a_good_stretch_when_learning_daily_then_decay_brings_the_product_back(
    seed: int,
) -> None:
    # Decay alone (change detection off): back within about a half-life (measured 10–15 days over seeds 0–5), days
    # before the same counts undecayed (17–19: only the 30-day window lets the bad days go).
    decay_only = comeback_days(ShopSettings(change_confidence=1.0), seed)
    no_decay = comeback_days(ShopSettings(change_confidence=1.0, half_life_days=365.0), seed)
    assert decay_only is not None
    assert decay_only <= 16
    assert no_decay is None or no_decay >= decay_only + 3
    # With the defaults (decay and change detection) within a week (measured 4–6 days).
    days = comeback_days(ShopSettings(), seed)
    assert days is not None
    assert days <= 7


# --- exposure: impressions weighed by their place in the widget ------------------------------------------------------
def _placed_shop(
    seed: int, *, with_exposure: bool
) -> tuple[dict[str, float], dict[str, int], dict[str, ProductWindow]]:
    """200 products, true CVRs ~ Beta(1.5, 98.5) at the first place, each shown 3,000 times at one place of 1-4
    (where a widget's ranking happens to put it) and bought at its CVR × place^−½; the windows as learning sees them,
    with the impressions' exposure counted or not."""
    rng = np.random.default_rng(seed)
    cvr = rng.beta(1.5, 98.5, size=200)
    places = rng.integers(1, 5, size=200)
    purchases = rng.binomial(3000, cvr * places**-0.5)
    days = [
        ProductDay(
            TODAY,
            f"p{i}",
            impressions=3000,
            purchases=int(purchases[i]),
            exposure=3000 * float(places[i]) ** -0.5 if with_exposure else None,
        )
        for i in range(200)
    ]
    windows = aggregate(days, today=TODAY, window_days=30, half_life_days=14)
    return {f"p{i}": float(cvr[i]) for i in range(200)}, {f"p{i}": int(places[i]) for i in range(200)}, windows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_products_shown_at_different_places_when_learned_on_exposure_then_the_last_places_are_not_undervalued(
    seed: int,
) -> None:
    def bias_by_place(with_exposure: bool) -> dict[int, float]:
        truth, places, windows = _placed_shop(seed, with_exposure=with_exposure)
        _, performance = learn(windows, PINNED)
        logs: dict[int, list[float]] = {}
        for product, p in performance.items():
            logs.setdefault(places[product], []).append(np.log(p.posterior_mean / truth[product]))
        return {place: float(np.mean(values)) for place, values in logs.items()}

    counted, ignored = bias_by_place(True), bias_by_place(False)
    # On exposure, a product's learned CVR is as close to its own at the 4th place as at the 1st …
    assert abs(counted[4] - counted[1]) < 0.15
    # … where on impressions alone it is about half of it (ln ½ ≈ −0.69)
    assert ignored[4] - ignored[1] < -0.4


def test_given_impressions_in_the_last_place_when_judged_then_the_minimum_applies_to_their_exposure() -> None:
    settings = PINNED.model_copy(update={"min_impressions": 100})
    shown_last = ProductDay(TODAY, "last", impressions=150, purchases=0, exposure=75.0)  # 150 at the 4th place
    shown_first = ProductDay(TODAY, "first", impressions=150, purchases=0, exposure=150.0)
    filler = [ProductDay(TODAY, f"f{i}", impressions=2000, purchases=40, exposure=2000.0) for i in range(20)]
    windows = aggregate([shown_last, shown_first, *filler], today=TODAY, window_days=30, half_life_days=14)
    _, performance = learn(windows, settings.model_copy(update={"blacklist_confidence": 0.5, "blacklist_cvr": 0.03}))
    assert performance["first"].blacklisted
    assert not performance["last"].blacklisted  # 75 of exposure: not yet the 100 the shop asks for
