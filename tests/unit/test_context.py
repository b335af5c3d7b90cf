"""The context policy's pair learning (reclift.context), checked on drawn worlds: what it recovers, not its formula."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

import reclift.context as context_module
from reclift.context import (
    CLICKS,
    NEUTRAL,
    STRENGTH_MAX,
    Clicks,
    ContextPrior,
    Landed,
    PairWindow,
    Similarity,
    aggregate_pairs,
    fit_context,
    learn_pairs,
    page_ratio,
    page_similarities,
    pair_ratios,
)
from reclift.learning import PairDay, Performance, Prior, ProductDay, aggregate, product_rows
from reclift.ranking import Candidate, Scorer, rank
from reclift.settings import ShopSettings

TODAY = date(2026, 3, 31)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method is slow for large means; the worlds here predict a few purchases a pair.
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _world(
    seed: int, *, sigma: float, pages: int = 120, per_page: int = 12, impressions: int = 400, unrelated: float = 1.0
) -> tuple[
    dict[tuple[str, str], PairWindow], dict[str, float], dict[str, dict[str, Similarity]], dict[tuple[str, str], float]
]:
    """Pages with `per_page` neighbours each (similarity 0.05-0.5) and 3 unrelated fill products; each pair's true
    CVR is its product's × a log-normal effect of mean 1 (σ `sigma`), × `unrelated` off the page's neighbours."""
    rng = random.Random(seed)
    products = [str(7_000 + i) for i in range(200)]
    rates = {p: rng.uniform(0.005, 0.04) for p in products}
    windows: dict[tuple[str, str], PairWindow] = {}
    similarities: dict[str, dict[str, Similarity]] = {}
    truth: dict[tuple[str, str], float] = {}
    for index in range(pages):
        page = str(9_000 + index)
        shown = rng.sample(products, per_page + 3)
        similarities[page] = {p: (round(rng.uniform(0.05, 0.5), 4), 0.0) for p in shown[:per_page]}
        for position, product in enumerate(shown):
            effect = math.exp(rng.gauss(-(sigma**2) / 2, sigma)) if sigma > 0 else 1.0
            if position >= per_page:
                effect *= unrelated
            truth[(page, product)] = effect
            purchases = _poisson(rng, impressions * rates[product] * effect)
            windows[(page, product)] = PairWindow(impressions, purchases, float(impressions), float(purchases))
    return windows, rates, similarities, truth


def _with_clicks(
    seed: int, windows: dict[tuple[str, str], PairWindow], truth: dict[tuple[str, str], float], *, follow: bool
) -> Clicks:
    """The pairs' clicks, each product clicked at 3 times its rate or so (a CTR of 1.5-12 %): × the pair's effect
    where clicks follow the page as purchases do (`follow`), else alike on every page."""
    rng = random.Random(f"clicks:{seed}")
    products = sorted({product for _, product in windows})
    rates = {p: rng.uniform(0.015, 0.12) for p in products}
    clicked: dict[tuple[str, str], PairWindow] = {}
    for pair, window in windows.items():
        clicks = _poisson(rng, window.impressions * rates[pair[1]] * (truth[pair] if follow else 1.0))
        clicked[pair] = replace(window, clicks=clicks, decayed_clicks=float(clicks))
    return Clicks(clicked, rates)


def _rank_correlation(xs: list[float], ys: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        for rank_, i in enumerate(order):
            out[i] = float(rank_)
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_pairs_that_sell_alike_everywhere_when_fitted_then_ratios_stay_near_one(seed: int) -> None:
    windows, rates, similarities, _ = _world(seed, sigma=0.0)
    prior = fit_context(windows, rates, similarities)
    assert prior.strength >= 20  # no spread beyond Poisson noise: a strong prior
    assert all(0.85 <= prior.ratio(s) <= 1.15 for s in (None, (0.05, 0.0), (0.2, 0.0), (0.5, 0.0)))
    ratios = [r for page in pair_ratios(windows, rates, similarities, prior).values() for r in page.values()]
    assert sum(abs(r - 1) for r in ratios) / len(ratios) < 0.1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_pair_effects_when_fitted_then_the_strength_matches_their_spread_and_ratios_rank_them(seed: int) -> None:
    sigma = 0.8
    windows, rates, similarities, truth = _world(seed, sigma=sigma)
    prior = fit_context(windows, rates, similarities)
    expected_strength = 1 / (math.exp(sigma**2) - 1)  # a Gamma of the same relative variance as the log-normal
    assert expected_strength / 2 <= prior.strength <= expected_strength * 2
    learned = pair_ratios(windows, rates, similarities, prior)
    pairs = [pair for pair in truth if pair[1] in learned.get(pair[0], {})]
    correlation = _rank_correlation([learned[p][c] for p, c in pairs], [truth[(p, c)] for p, c in pairs])
    assert correlation > 0.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_clicks_that_follow_the_page_when_learned_then_the_ratios_are_nearer_the_truth_than_from_purchases(
    seed: int,
) -> None:
    """A page changes how often a candidate is clicked as it changes how often it is bought, and a widget's products
    are clicked about three times as often as bought: learned from the clicks first, the pairs' ratios are nearer
    their true effects than learned from the purchases alone, at 100 impressions a pair."""
    windows, rates, similarities, truth = _world(seed, sigma=0.8, impressions=100)
    clicks = _with_clicks(seed, windows, truth, follow=True)

    def error(ratios: dict[str, dict[str, float]]) -> float:  # the mean |log(learned / true)|
        return statistics.fmean(abs(math.log(ratios[p][c] / truth[(p, c)])) for p, c in truth)

    alone_prior, alone = learn_pairs(windows, rates, similarities)
    prior, with_clicks = learn_pairs(clicks.windows, rates, similarities, clicks)
    assert error(with_clicks) < 0.85 * error(alone)
    correlation = _rank_correlation([with_clicks[p][c] for p, c in truth], [truth[pair] for pair in truth])
    assert correlation > _rank_correlation([alone[p][c] for p, c in truth], [truth[pair] for pair in truth]) + 0.05
    # the purchases agree with what the clicks learned: a prior several times as strong as similarity's alone
    assert prior.purchase_strength > 3 * alone_prior.strength


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_clicks_that_ignore_the_page_when_learned_then_the_purchases_still_tell_the_pairs_apart(
    seed: int,
) -> None:
    """Where the page changes what a click turns into and not the clicks, the click level learns ratios of about 1
    and the purchase level finds the purchases' own spread around them (a weak prior): what the pairs' purchases
    say is kept, as learned from the purchases alone."""
    windows, rates, similarities, truth = _world(seed, sigma=0.8, impressions=100)
    clicks = _with_clicks(seed, windows, truth, follow=False)

    def correlation(ratios: dict[str, dict[str, float]]) -> float:
        return _rank_correlation([ratios[p][c] for p, c in truth], [truth[pair] for pair in truth])

    alone_prior, alone = learn_pairs(windows, rates, similarities)
    prior, with_clicks = learn_pairs(clicks.windows, rates, similarities, clicks)
    assert prior.strength >= 20  # the clicks do not differ by page
    assert prior.purchase_strength <= 2 * alone_prior.strength
    assert correlation(with_clicks) > correlation(alone) - 0.05


def test_the_click_level_reads_a_pairs_clicks_as_the_purchase_level_reads_its_purchases() -> None:
    """The click level reads the clicks in the pairs' own windows (no copy of them): its prior is the one the
    purchases would give if they were those clicks, and not the one the purchases give."""
    windows, rates, similarities, truth = _world(5, sigma=0.8, impressions=100)
    clicks = _with_clicks(5, windows, truth, follow=True)
    as_purchases = {
        pair: replace(window, purchases=window.clicks, decayed_purchases=window.decayed_clicks)
        for pair, window in clicks.windows.items()
    }
    on_clicks = fit_context(clicks.windows, clicks.rates, similarities, CLICKS)
    assert on_clicks == fit_context(as_purchases, clicks.rates, similarities)
    assert on_clicks != fit_context(clicks.windows, clicks.rates, similarities)
    prior, _ = learn_pairs(clicks.windows, rates, similarities, clicks)
    assert replace(prior, purchase_strength=STRENGTH_MAX) == on_clicks


def test_given_an_unrelated_factor_when_fitted_then_the_unrelated_band_recovers_it() -> None:
    windows, rates, similarities, _ = _world(4, sigma=0.0, unrelated=0.3)
    prior = fit_context(windows, rates, similarities)
    assert 0.2 <= prior.unrelated <= 0.4
    assert all(prior.ratio(s) > 0.85 for s in ((0.05, 0.0), (0.2, 0.0), (0.5, 0.0)))
    assert prior.ratio(None) == prior.unrelated
    assert prior.ratio((0.0, 0.0)) == prior.unrelated


def test_given_effects_rising_with_similarity_when_fitted_then_the_ratio_rises_with_it_as_the_world_does() -> None:
    rng = random.Random(5)
    windows: dict[tuple[str, str], PairWindow] = {}
    similarities: dict[str, dict[str, Similarity]] = {}
    rates: dict[str, float] = {}
    for index in range(300):
        page, product = f"p{index % 60}", f"c{index}"
        bought, seen = (math.exp(rng.uniform(math.log(0.01), math.log(0.6))) for _ in range(2))
        rates[product] = 0.02
        similarities.setdefault(page, {})[product] = (bought, seen)
        purchases = _poisson(rng, 2000 * 0.02 * (seen / 0.1) ** 0.5)  # ρ = (co-view / 0.1)^0.5; co-purchase: none
        windows[(page, product)] = PairWindow(2000, purchases, 2000.0, float(purchases))
    prior = fit_context(windows, rates, similarities)
    assert prior.baseline <= 0.05  # the ratio falls toward 0 with the similarity: no rate it keeps whatever it says
    assert prior.slopes[0] == pytest.approx(0.0, abs=0.08)
    assert prior.slopes[1] == pytest.approx(0.5, abs=0.08)
    assert prior.ratio((0.2, 0.1)) == pytest.approx(1.0, abs=0.1)
    assert prior.ratio((0.02, 0.4)) == pytest.approx(2.0, rel=0.12)
    assert prior.ratio((0.2, 5.0)) == prior.ratio((0.2, prior.highs[1]))  # clamped to the similarities the fit saw


def _floored_world(seed: int) -> tuple[dict[tuple[str, str], PairWindow], dict[str, dict[str, Similarity]]]:
    """Neighbours whose viewed-after share runs from 0.00002 (a busy page's sessions that never reached them, shrunk
    toward a small pooled share) to 0.5, and who sell at 0.3 of their rate however weak it is, plus a part that rises
    with it: ρ = 0.3 + 0.7 × (share / 0.05)^0.6. A page's strays (its neighbours' neighbours) are the first kind: they
    sell, at the rate a product sells at where it does not belong."""
    rng = random.Random(seed)
    windows: dict[tuple[str, str], PairWindow] = {}
    similarities: dict[str, dict[str, Similarity]] = {}
    for index in range(600):
        page, product = f"p{index % 60}", f"c{index}"
        share = math.exp(rng.uniform(math.log(0.00002), math.log(0.5)))
        similarities.setdefault(page, {})[product] = (0.1, 0.0, 0.0, share)
        purchases = _poisson(rng, 1000 * 0.02 * (0.3 + 0.7 * (share / 0.05) ** 0.6))
        windows[(page, product)] = PairWindow(1000, purchases, 1000.0, float(purchases))
    return windows, similarities


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_neighbours_that_sell_at_a_base_rate_however_weak_their_similarity_then_r_keeps_it(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R(s) is fitted with a baseline: the share of a candidate's rate it sells at on a page whatever its similarities
    say. A log-linear R alone extrapolates the steep rise among strong neighbours down to nothing among the weakest,
    and values a busy page's strays, which sell at 0.3 of their rates, at a few hundredths."""
    windows, similarities = _floored_world(seed)
    rates = {product: 0.02 for _, product in windows}
    prior = fit_context(windows, rates, similarities)
    weakest, strong = (0.1, 0.0, 0.0, 0.00002), (0.1, 0.0, 0.0, 0.2)
    assert 0.2 <= prior.baseline <= 0.4
    assert 0.2 <= prior.ratio(weakest) <= 0.45
    assert prior.ratio(strong) == pytest.approx(0.3 + 0.7 * 4**0.6, rel=0.2)
    monkeypatch.setattr(context_module, "BASELINES", (0.0,))
    assert fit_context(windows, rates, similarities).ratio(weakest) < 0.2  # the truth: 0.3


def test_given_few_pairs_when_fitted_then_the_ratio_is_shrunk_toward_one() -> None:
    windows = {("1", "2"): PairWindow(50, 0, 50.0, 0.0)}
    prior = fit_context(windows, {"2": 0.02}, {"1": {"2": (0.3, 0.0)}})
    assert 0.8 < prior.ratio((0.3, 0.0)) < 1.0  # 0 purchases where 1 was predicted, shrunk by 5 predicted purchases
    assert fit_context({}, {}, {}).ratio((0.3, 0.1)) == 1.0


def test_the_prior_survives_its_json() -> None:
    prior = ContextPrior(
        intercept=0.2,
        slopes=(0.4, 0.1, 0.3, 0.5),
        centres=(-2.0, -3.0, -4.0, -1.5),
        floors=(0.01, 0.001, 0.002, 0.003),
        highs=(0.6, 0.5, 0.4, 0.9),
        unrelated=0.3,
        strength=1.2,
        baseline=0.2,
    )
    assert ContextPrior.from_json(prior.to_json()) == prior
    centred = (math.exp(-2.0), math.exp(-3.0), math.exp(-4.0), math.exp(-1.5))
    assert prior.ratio(centred) == pytest.approx(0.2 + 0.8 * math.exp(0.2))
    assert prior.ratio(None) == 0.3
    assert prior.ratio((0.0, 0.0)) == 0.3
    assert prior.ratio((0.0, 0.0, 0.1, 0.2)) == 0.3  # the shares alone make no neighbour


def test_an_older_runs_prior_of_fewer_sources_reads_as_saying_nothing_of_the_others() -> None:
    older = '{"intercept":0.2,"slopes":[0.4,0.1],"centres":[-2.0,-3.0],"floors":[0.01,0.001],"highs":[0.6,0.5]}'
    prior = ContextPrior.from_json(older)
    assert prior.slopes == (0.4, 0.1, 0.0, 0.0)
    assert prior.baseline == 0.0  # fitted before the baseline: R(s) as it was
    # whatever the landed and viewed-after shares, the ratio is the two sources' alone
    assert prior.ratio((0.3, 0.0, 0.9, 0.8)) == prior.ratio((0.3, 0.0, 0.001, 0.0)) == prior.ratio((0.3, 0.0))
    three = ContextPrior.from_json(
        '{"slopes":[0.4,0.1,0.3],"centres":[-2.0,-3.0,-4.0],"floors":[0.01,0.001,0.002],"highs":[0.6,0.5,0.4]}'
    )
    assert three.slopes == (0.4, 0.1, 0.3, 0.0)
    assert three.ratio((0.3, 0.0, 0.1, 0.9)) == three.ratio((0.3, 0.0, 0.1))
    assert prior.ratio((0.001, 0.05)) == prior.ratio((0.01, 0.05))  # clamped to the fitted range
    assert prior.ratio((0.0, 0.05)) == prior.ratio((0.01, 0.05))  # a source that does not list it: its floor


def _fill_heavy_world(
    seed: int,
) -> tuple[list[PairDay | ProductDay], dict[str, float], dict[str, dict[str, Similarity]]]:
    """One day of 120 pages, each showing 12 neighbours (similarity 0.05-0.5, pair effects log-normal of mean 1,
    σ 0.8) and a spare slot of 6 products that are no neighbour of it, where they sell at 0.3 of their rate; every
    product is shown off its neighbours' pages in about a third of its impressions. The rows as the night reads
    them: a page's impressions of a candidate in its page item, its purchases in the product's own counter; and each
    product's true rate on an average page it belongs on (its rate × its mean effect over them)."""
    rng = random.Random(seed)
    products = [str(7_000 + i) for i in range(200)]
    rates = {p: rng.uniform(0.005, 0.04) for p in products}
    rows: list[PairDay | ProductDay] = []
    bought: dict[str, int] = dict.fromkeys(products, 0)
    effects: dict[str, list[float]] = {p: [] for p in products}
    similarities: dict[str, dict[str, Similarity]] = {}
    for index in range(120):
        page = str(9_000 + index)
        shown = rng.sample(products, 18)
        similarities[page] = {p: (round(rng.uniform(0.05, 0.5), 4), 0.0) for p in shown[:12]}
        for position, product in enumerate(shown):
            effect = math.exp(rng.gauss(-0.32, 0.8)) if position < 12 else 0.3
            impressions = 600 if position < 12 else 400
            purchases = _poisson(rng, impressions * rates[product] * effect)
            bought[product] += purchases
            if position < 12:
                effects[product].append(effect)
            rows.append(PairDay(TODAY, page, product, impressions=impressions, purchases=purchases))
    rows += [ProductDay(TODAY, product, purchases=count) for product, count in bought.items()]
    own = {p: rates[p] * statistics.fmean(effects[p]) for p in products if effects[p]}
    return rows, own, similarities


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_pages_that_weigh_a_products_impressions_then_its_rate_is_its_own_on_an_average_page(seed: int) -> None:
    """Learned from all its impressions alike, a product's rate mixes its pages with the spare slots where it sells
    at a third of it: about a sixth low. With each page's impressions weighed by what the page was learned to make
    of it (`page_ratio`: the pair's ratio, else R(s), else the unrelated ratio), the product's own rate is
    recovered."""
    rows, rates, similarities = _fill_heavy_world(seed)

    def rates_of(ratio: Callable[[str, str], float] | None) -> dict[str, float]:
        windows = aggregate(product_rows(rows, ratio), today=TODAY, window_days=30, half_life_days=14)
        return {p: w.purchases / w.exposure for p, w in windows.items()}

    def bias(learned: dict[str, float]) -> float:  # the median log ratio, learned / true
        return statistics.median(math.log(learned[p] / rates[p]) for p in rates if learned.get(p))

    pairs = aggregate_pairs([r for r in rows if isinstance(r, PairDay)], today=TODAY, window_days=30, half_life_days=14)
    alike = rates_of(None)
    prior, ratios = learn_pairs(pairs, alike, similarities)
    weighed = rates_of(page_ratio(prior, similarities, ratios, pairs))
    assert bias(alike) < -0.15
    assert abs(bias(weighed)) < 0.07
    # and product by product: most are nearer their own rate than before
    nearer = sum(abs(math.log(weighed[p] / rates[p])) < abs(math.log(alike[p] / rates[p])) for p in rates if alike[p])
    assert nearer > 0.7 * len(rates)


def test_aggregate_pairs_decays_by_age_and_keeps_the_window() -> None:
    rows = [
        PairDay(TODAY, "1", "2", impressions=10, purchases=1),
        PairDay(TODAY - timedelta(days=14), "1", "2", impressions=10, purchases=1),
        PairDay(TODAY - timedelta(days=30), "1", "2", impressions=99, purchases=9),  # out of a 30-day window
        PairDay(TODAY, "1", "3", impressions=5),
    ]
    windows = aggregate_pairs(rows, today=TODAY, window_days=30, half_life_days=14)
    assert windows[("1", "2")].impressions == 20
    assert windows[("1", "2")].purchases == 2
    assert windows[("1", "2")].decayed_impressions == pytest.approx(15.0)
    assert windows[("1", "3")].impressions == 5


def test_page_similarities_add_the_sources() -> None:
    assert page_similarities([("a", 0.2), ("b", 0.1)], [("b", 0.05), ("c", 0.01)]) == {
        "a": (0.2, 0.0, 0.0, 0.0),
        "b": (0.1, 0.05, 0.0, 0.0),
        "c": (0.0, 0.01, 0.0, 0.0),
    }
    # 8 orders landed on the page: 6 bought a, none b; c (co-view only) is one none of them bought
    landed = Landed(visits=8, reached=(6,), pooled=0.1)
    shares = {p: s[2] for p, s in page_similarities([("a", 0.2), ("b", 0.1)], [("c", 0.01)], landed).items()}
    assert shares == pytest.approx({"a": (6 + 0.2) / 10, "b": 0.2 / 10, "c": 0.2 / 10})
    # 18 view sessions began on the page: 9 went on to view c, 2 b (the co-view list's order: b, then c); a, which
    # the co-view list does not hold, none of them
    after = Landed(visits=18, reached=(2, 9), pooled=0.05)
    viewed = page_similarities([("a", 0.2)], [("b", 0.05), ("c", 0.01)], None, after)
    assert {p: s[3] for p, s in viewed.items()} == pytest.approx({"a": 0.1 / 20, "b": 2.1 / 20, "c": 9.1 / 20})
    assert {p: s[2] for p, s in viewed.items()} == {"a": 0.0, "b": 0.0, "c": 0.0}  # no landing pages


def test_a_landed_share_is_shrunk_toward_the_shops_pooled_share() -> None:
    assert Landed(0, (), 0.05).share(0) == pytest.approx(0.05)  # no order landed on the page: the shop's share
    few, many = Landed(2, (2,), 0.05), Landed(200, (200,), 0.05)
    assert 0.05 < few.share(0) < many.share(0) < 1.0
    assert many.share(0) == pytest.approx(1.0, abs=0.01)
    assert Landed.from_json(Landed(9, (3, 0, 1, 0, 0), 0.04).to_json()) == Landed(9, (3, 0, 1), 0.04)
    assert Landed(9, (3, 0, 1), 0.04).share(4) == Landed(9, (3, 0, 1), 0.04).share(None)


LandedWorld = tuple[
    dict[tuple[str, str], PairWindow],
    dict[str, float],
    dict[str, list[tuple[str, float]]],
    dict[str, Landed],
    dict[tuple[str, str], float],
]


def _landed_world(
    seed: int, *, pages: int = 150, per_page: int = 12, impressions: int = 60, landed_orders: int = 25
) -> LandedWorld:
    """Pages whose co-purchase lists hold as many strays (selling at 0.3 of their rate there) as related products,
    their Jaccards alike; of the orders that landed on a page, each bought a related product 1 time in 8 and a stray
    1 time in 200. Each pair shown `impressions` times: too few to tell one pair from another by its own sales."""
    rng = random.Random(f"landed:{seed}")
    products = [str(7_000 + i) for i in range(300)]
    rates = {p: rng.uniform(0.01, 0.05) for p in products}
    windows: dict[tuple[str, str], PairWindow] = {}
    lists: dict[str, list[tuple[str, float]]] = {}
    landed: dict[str, Landed] = {}
    truth: dict[tuple[str, str], float] = {}
    for index in range(pages):
        page = str(9_000 + index)
        shown = rng.sample(products, per_page)
        lists[page] = [(p, round(rng.uniform(0.05, 0.5), 4)) for p in shown]
        bought = []
        for position, product in enumerate(shown):
            related = position % 2 == 0
            truth[(page, product)] = 1.0 if related else 0.3
            bought.append(sum(rng.random() < (0.125 if related else 0.005) for _ in range(landed_orders)))
            purchases = _poisson(rng, impressions * rates[product] * truth[(page, product)])
            windows[(page, product)] = PairWindow(impressions, purchases, float(impressions), float(purchases))
        landed[page] = Landed(landed_orders, tuple(bought), 0.0)
    chances = sum(len(lists[p]) * landed_orders for p in lists)
    pooled = sum(sum(counts.reached) for counts in landed.values()) / chances
    return windows, rates, lists, {page: replace(counts, pooled=pooled) for page, counts in landed.items()}, truth


@pytest.mark.parametrize("source", ["landed", "viewed_after"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_given_visits_that_landed_on_the_pages_when_fitted_then_the_pairs_they_reached_are_valued_above_the_strays(
    seed: int, source: str
) -> None:
    """Where the lists' Jaccards cannot tell a page's related neighbours from its strays, where the visits that
    landed on the page went does: what its orders bought (of its co-purchase list) or what its view sessions went on to
    view (of its co-view list). The prior learns it (a positive slope on that share) and the pairs' ratios come nearer
    the truth than without it. Without the counts, the source says nothing."""
    windows, rates, lists, counts, truth = _landed_world(seed)
    index = 2 if source == "landed" else 3

    def similarities(page: str, known: bool) -> dict[str, Similarity]:
        if source == "landed":
            return page_similarities(lists[page], [], counts[page] if known else None)
        return page_similarities([], lists[page], None, counts[page] if known else None)

    def error(known: bool) -> tuple[ContextPrior, float]:
        found = {page: similarities(page, known) for page in lists}
        prior = fit_context(windows, rates, found)
        learned = pair_ratios(windows, rates, found, prior)
        errors = [abs(math.log(learned[p][c] / truth[(p, c)])) for p, c in truth if c in learned.get(p, {})]
        return prior, sum(errors) / len(errors)

    def shared(share: float) -> tuple[float, ...]:
        listing = (0.2, 0.0) if source == "landed" else (0.0, 0.2)
        return (*listing, *(share if k == index else 0.0 for k in (2, 3)))

    prior, counted_error = error(True)
    plain, plain_error = error(False)
    assert prior.slopes[index] > 0.1
    assert prior.ratio(shared(0.6)) > 1.5 * prior.ratio(shared(0.01))
    assert counted_error < 0.8 * plain_error
    assert plain.slopes[index] == pytest.approx(0.0, abs=1e-9)
    assert plain.ratio(shared(0.6)) == pytest.approx(plain.ratio(shared(0.01)))


def _performance(product: str, cvr: float) -> Performance:
    return Performance(
        product_id=product,
        impressions=1000,
        clicks=0,
        purchases=round(cvr * 1000),
        units=0,
        revenue=Decimal(0),
        ctr=0.0,
        cvr=cvr,
        confidence=0.5,
        blacklisted=False,
        reason="",
        alpha=cvr * 1000,
        beta=(1 - cvr) * 1000,
        price=Decimal(10),
    )


def test_given_the_context_policy_when_ranking_then_the_pair_ratio_reorders_what_bayes_would_show() -> None:
    performance = {"a": _performance("a", 0.03), "b": _performance("b", 0.02)}
    similar = [Candidate("a", 0.2), Candidate("b", 0.1)]
    prior = Prior(2, 98)
    context = ContextPrior(unrelated=0.3, strength=1.0)

    def shown(policy: str, ratios: dict[str, float]) -> list[str]:
        settings = ShopSettings(policy=policy, explore_share=0.0)  # type: ignore[arg-type]
        scorer = Scorer(settings, performance, prior, context=context, pair_ratios=ratios)
        ranked = rank(similar, [], scorer, arm="learning", limit=2, exclude=set(), rng=random.Random(1))
        return [r.product_id for r in ranked]

    assert shown("bayes", {"a": 0.2}) == ["a", "b"]  # product-level: the pair's ratio is not bayes's
    assert shown("context", {}) == ["a", "b"]  # no pair evidence: the prior's ratio, alike for both
    assert shown("context", {"a": 0.2}) == ["b", "a"]  # a sells at a fifth of its rate on this page
    fill = Scorer(ShopSettings(policy="context"), performance, prior, context=context)
    assert fill.multiplier(Candidate("a", 0.9, source="best_seller")) == 0.3  # not a neighbour: the unrelated ratio
    assert Scorer(ShopSettings(policy="context"), performance, prior).multiplier(Candidate("a", 0.9)) == 1.0
    assert NEUTRAL.ratio((0.4, 0.1)) == 1.0
