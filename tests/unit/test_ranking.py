"""Ranking at request time (DESIGN.md §3): the sticky holdout arm, exclusions, fill, the policies, exploration."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclift.learning import Performance, Prior
from reclift.ranking import Arm, Candidate, Ranked, Scorer, assign_arm, rank
from reclift.settings import ShopSettings

SEED = ShopSettings(policy="seed")
BAYES = ShopSettings(policy="bayes", explore_share=0.0)
PRIOR = Prior(alpha=2.0, beta=98.0)


def perf(
    product_id: str,
    *,
    confidence: float = 0.5,
    blacklisted: bool = False,
    mean: float = 0.02,
    strength: float = 1000.0,
    price: Decimal | None = None,
    explore: tuple[float, float] | None = None,
) -> Performance:
    """A learned performance whose posterior has this mean and strength (and exploration's, when given)."""
    return Performance(
        product_id=product_id,
        impressions=1000,
        clicks=50,
        purchases=10,
        units=10,
        revenue=Decimal(0),
        ctr=0.05,
        cvr=0.01,
        confidence=confidence,
        blacklisted=blacklisted,
        reason="test",
        alpha=mean * strength,
        beta=(1 - mean) * strength,
        price=price,
        explore_alpha=explore[0] if explore else None,
        explore_beta=explore[1] if explore else None,
    )


def scorer(
    settings: ShopSettings,
    *performances: Performance,
    prior: Prior | None = PRIOR,
    fallback_price: Decimal | None = None,
) -> Scorer:
    return Scorer(settings, {p.product_id: p for p in performances}, prior, fallback_price)


def candidates(*pairs: tuple[str, float]) -> list[Candidate]:
    return [Candidate(pid, similarity) for pid, similarity in pairs]


def ids(ranked: Sequence[Ranked]) -> list[str]:
    return [r.product_id for r in ranked]


def run(
    scoring: Scorer,
    similar: Sequence[Candidate],
    fill: Sequence[Candidate] = (),
    *,
    arm: Arm = "learning",
    limit: int = 4,
    exclude: Sequence[str] = (),
    seed: int = 0,
) -> list[Ranked]:
    return rank(similar, fill, scoring, arm=arm, limit=limit, exclude=set(exclude), rng=random.Random(seed))


# --- assign_arm ------------------------------------------------------------------------------------------------------


def test_given_the_same_shop_and_visitor_when_assigned_repeatedly_then_the_arm_is_sticky() -> None:
    for i in range(500):
        visitor = f"visitor-{i}"
        first = assign_arm("shop.myshopify.com", visitor, 0.3)
        assert all(assign_arm("shop.myshopify.com", visitor, 0.3) == first for _ in range(3))


@pytest.mark.parametrize("share", [0.05, 0.1, 0.25, 0.5])
def test_given_20000_visitors_when_assigned_then_the_holdout_share_is_within_one_percent(share: float) -> None:
    rng = random.Random(42)
    visitors = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20_000)]
    arms = Counter(assign_arm("shop.myshopify.com", v, share) for v in visitors)
    assert arms["holdout"] / len(visitors) == pytest.approx(share, abs=0.01)


def test_given_a_zero_share_when_assigned_then_everyone_is_in_the_learning_arm() -> None:
    assert {assign_arm("shop.myshopify.com", f"v{i}", 0.0) for i in range(2000)} == {"learning"}


@pytest.mark.parametrize("visitor", [None, ""])
def test_given_no_visitor_id_when_assigned_then_it_is_the_learning_arm(visitor: str | None) -> None:
    assert assign_arm("shop.myshopify.com", visitor, 0.5) == "learning"


def test_given_a_larger_share_when_assigned_then_holdout_visitors_stay_in_holdout() -> None:
    visitors = [f"v{i}" for i in range(2000)]
    small = {v for v in visitors if assign_arm("s.myshopify.com", v, 0.1) == "holdout"}
    large = {v for v in visitors if assign_arm("s.myshopify.com", v, 0.3) == "holdout"}
    assert small <= large


def test_given_two_shops_when_the_same_visitors_are_assigned_then_their_arms_differ() -> None:
    visitors = [f"v{i}" for i in range(1000)]
    a = [assign_arm("a.myshopify.com", v, 0.5) for v in visitors]
    b = [assign_arm("b.myshopify.com", v, 0.5) for v in visitors]
    agreement = sum(x == y for x, y in zip(a, b, strict=True)) / len(visitors)
    assert 0.4 < agreement < 0.6  # independent coins, not the same split


# --- holdout arm -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [SEED, BAYES, ShopSettings(policy="bayes", explore_share=0.5)])
def test_given_the_holdout_arm_when_ranked_then_it_is_similarity_order_with_blacklisted_kept_and_no_boosts(
    settings: ShopSettings,
) -> None:
    scoring = scorer(
        settings,
        perf("bad", confidence=0.2, blacklisted=True, mean=0.001),
        perf("boosted", confidence=0.9, mean=0.2),
        perf("weak", confidence=0.1, mean=0.0001),
    )
    similar = candidates(("boosted", 0.2), ("bad", 0.9), ("weak", 0.5), ("plain", 0.7))
    fill = candidates(("best1", 0.0), ("best2", 0.0))
    for seed in range(20):
        ranked = run(scoring, similar, fill, arm="holdout", limit=6, seed=seed)
        assert ranked == [
            Ranked("bad", 0.9),
            Ranked("plain", 0.7),
            Ranked("weak", 0.5),
            Ranked("boosted", 0.2),
            Ranked("best1", 0.0),
            Ranked("best2", 0.0),
        ]


def test_given_the_holdout_arm_and_a_limit_when_ranked_then_the_top_of_the_similarity_order_is_kept() -> None:
    similar = candidates(("a", 0.1), ("b", 0.3), ("c", 0.2))
    assert ids(run(scorer(SEED), similar, candidates(("f", 0.0)), arm="holdout", limit=2)) == ["b", "c"]


# --- exclusions, fill, blacklist -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arm", ["learning", "holdout"])
@pytest.mark.parametrize(
    "settings", [SEED, BAYES, ShopSettings(policy="bayes", explore_share=0.5)], ids=["seed", "bayes", "explore"]
)
def test_given_excluded_products_when_ranked_then_they_never_appear(arm: Arm, settings: ShopSettings) -> None:
    scoring = scorer(settings, perf("current", confidence=0.9, mean=0.5), perf("bought", mean=0.5))
    similar = candidates(("current", 1.0), ("bought", 0.9), ("a", 0.5), ("b", 0.4))
    fill = candidates(("bought", 0.3), ("c", 0.2), ("current", 0.1), ("d", 0.05))
    for seed in range(200):
        ranked = run(scoring, similar, fill, arm=arm, limit=10, exclude=["current", "bought"], seed=seed)
        assert not {"current", "bought"} & set(ids(ranked))
        assert set(ids(ranked)) <= {"a", "b", "c", "d"}


@pytest.mark.parametrize("settings", [SEED, BAYES], ids=["seed", "bayes"])
def test_given_similar_products_and_best_sellers_when_ranked_then_similar_come_first_and_fill_spare_slots(
    settings: ShopSettings,
) -> None:
    # The best sellers score far higher than the similar products, yet come after them.
    scoring = scorer(settings, perf("star", confidence=0.95, mean=0.3), perf("s1", mean=0.001))
    similar = candidates(("s1", 0.2), ("s2", 0.1))
    fill = candidates(("star", 5.0), ("f2", 4.0), ("f3", 3.0))
    ranked = run(scoring, similar, fill, limit=4)
    assert set(ids(ranked)[:2]) == {"s1", "s2"}
    assert ids(ranked)[2:] == ["star", "f2"]


def fill_of_neighbours_and_sellers() -> list[Candidate]:
    """A weak catalog neighbour (same type, never sold) and a strong best seller, in the order serving plans them."""
    return [
        Candidate("neighbour", 0.8, price=Decimal(20), source="catalog"),
        Candidate("seller", 1.0, price=Decimal(20), source="best_seller"),
    ]


def test_given_a_shop_that_has_learned_when_ranked_then_catalog_neighbours_and_best_sellers_compete_on_value() -> None:
    """Offered before every best seller whatever its value, a catalog neighbour cost a new shop a quarter of its
    expected revenue in the simulation's launch scenario; once the shop has a prior, the policy values both alike."""
    scoring = scorer(BAYES, perf("seller", mean=0.05, price=Decimal(20)))  # the prior's mean is 0.02

    assert ids(run(scoring, [], fill_of_neighbours_and_sellers(), limit=2)) == ["seller", "neighbour"]


@pytest.mark.parametrize(
    "scoring",
    [scorer(BAYES, perf("seller", mean=0.05), prior=None), scorer(SEED, perf("seller", confidence=0.95))],
    ids=["bayes-before-its-first-run", "seed"],
)
def test_given_no_learned_prior_or_the_seed_policy_when_ranked_then_catalog_neighbours_come_before_best_sellers(
    scoring: Scorer,
) -> None:
    """Scores that are similarities (a neighbour's likeness, a best seller's sales rank) are not comparable: the
    page's type goes first until the shop has learned."""
    assert ids(run(scoring, [], fill_of_neighbours_and_sellers(), limit=2)) == ["neighbour", "seller"]


def test_given_a_best_seller_that_is_also_similar_when_ranked_then_it_appears_once_among_the_similar() -> None:
    ranked = run(scorer(SEED), candidates(("a", 0.5), ("b", 0.4)), candidates(("b", 9.0), ("c", 1.0)), limit=4)
    assert ids(ranked) == ["a", "b", "c"]


@pytest.mark.parametrize("settings", [SEED, BAYES], ids=["seed", "bayes"])
def test_given_a_blacklisted_similar_product_when_ranked_then_its_slot_goes_to_the_next_candidate(
    settings: ShopSettings,
) -> None:
    scoring = scorer(settings, perf("bad", confidence=0.2, blacklisted=True, mean=0.5))
    similar = candidates(("bad", 0.9), ("b", 0.5), ("c", 0.4))
    fill = candidates(("d", 0.3), ("e", 0.2))
    ranked = run(scoring, similar, fill, limit=3)
    assert "bad" not in ids(ranked)
    assert len(ranked) == 3
    assert ids(ranked) == ["b", "c", "d"]


@pytest.mark.parametrize("settings", [SEED, BAYES], ids=["seed", "bayes"])
def test_given_a_blacklisted_best_seller_when_ranked_then_it_does_not_fill_a_slot(settings: ShopSettings) -> None:
    scoring = scorer(settings, perf("bad", blacklisted=True))
    ranked = run(scoring, candidates(("a", 0.5)), candidates(("bad", 0.9), ("ok", 0.1)), limit=3)
    assert ids(ranked) == ["a", "ok"]


@pytest.mark.parametrize("limit", [0, 1, 2, 5, 50])
@pytest.mark.parametrize("arm", ["learning", "holdout"])
def test_given_a_limit_when_ranked_then_at_most_that_many_products_are_returned(limit: int, arm: Arm) -> None:
    similar = candidates(*((f"s{i}", 1 - i / 10) for i in range(5)))
    fill = candidates(*((f"f{i}", 0.0) for i in range(5)))
    ranked = run(scorer(BAYES), similar, fill, arm=arm, limit=limit)
    assert len(ranked) == min(limit, 10)


def test_given_no_candidates_when_ranked_then_the_list_is_empty() -> None:
    assert run(scorer(BAYES), [], []) == []
    assert run(scorer(BAYES), [], [], arm="holdout") == []


# --- seed scoring ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "multiplier"),
    [(0.9, 1.3), (0.71, 1.3), (0.7, 1.0), (0.5, 1.0), (0.3, 1.0), (0.29, 0.7), (0.2, 0.7), (0.0, 0.7)],
)
def test_given_the_seed_policy_when_scored_then_confidence_beyond_strict_thresholds_multiplies_similarity(
    confidence: float, multiplier: float
) -> None:
    scoring = scorer(SEED, perf("p", confidence=confidence))
    assert scoring.score(Candidate("p", 0.4)) == pytest.approx(0.4 * multiplier)


def test_given_the_seed_policy_and_no_performance_when_scored_then_the_similarity_is_kept() -> None:
    assert scorer(SEED).score(Candidate("new", 0.4)) == pytest.approx(0.4)


def test_given_the_seed_policy_with_other_multipliers_when_scored_then_the_shop_settings_apply() -> None:
    settings = SEED.model_copy(
        update={"boost_confidence": 0.8, "penalty_confidence": 0.1, "boost_multiplier": 2.0, "penalty_multiplier": 0.5}
    )
    scoring = scorer(
        settings, perf("hot", confidence=0.9), perf("warm", confidence=0.75), perf("cold", confidence=0.05)
    )
    assert scoring.score(Candidate("hot", 1.0)) == pytest.approx(2.0)
    assert scoring.score(Candidate("warm", 1.0)) == pytest.approx(1.0)
    assert scoring.score(Candidate("cold", 1.0)) == pytest.approx(0.5)


def test_given_the_seed_policy_when_ranked_then_boosted_products_overtake_and_penalised_ones_fall() -> None:
    scoring = scorer(SEED, perf("boosted", confidence=0.9), perf("penalised", confidence=0.2))
    similar = candidates(("penalised", 0.5), ("plain", 0.4), ("boosted", 0.35))
    ranked = run(scoring, similar, limit=3)
    # 0.35 × 1.3 = 0.455 > 0.4 > 0.5 × 0.7 = 0.35
    assert ranked == [Ranked("boosted", 0.455), Ranked("plain", 0.4), Ranked("penalised", 0.35)]


def test_given_the_seed_policy_with_exploration_set_when_ranked_then_it_never_explores() -> None:
    settings = SEED.model_copy(update={"explore_share": 0.5})
    scoring = scorer(settings, perf("bad", confidence=0.2, blacklisted=True))
    similar = candidates(("bad", 0.9), ("a", 0.5), ("b", 0.4))
    for seed in range(100):
        ranked = run(scoring, similar, candidates(("c", 0.1)), limit=3, seed=seed)
        assert ids(ranked) == ["a", "b", "c"]
        assert not any(r.explored for r in ranked)


# --- bayes scoring ---------------------------------------------------------------------------------------------------


def test_given_the_revenue_objective_when_ranked_then_posterior_mean_times_price_orders() -> None:
    scoring = scorer(
        BAYES,
        perf("cheap-converter", mean=0.04),  # 0.04 × 10 = 0.4
        perf("pricey", mean=0.01),  # 0.01 × 100 = 1.0
        perf("middle", mean=0.02),  # 0.02 × 30 = 0.6
    )
    similar = [Candidate("cheap-converter", 0.9, Decimal(10)), Candidate("pricey", 0.1, Decimal(100))]
    similar.append(Candidate("middle", 0.5, Decimal(30)))
    ranked = run(scoring, similar, limit=3)
    assert ids(ranked) == ["pricey", "middle", "cheap-converter"]
    assert [r.score for r in ranked] == [pytest.approx(1.0), pytest.approx(0.6), pytest.approx(0.4)]


def test_given_the_conversions_objective_when_ranked_then_posterior_mean_alone_orders() -> None:
    settings = BAYES.model_copy(update={"objective": "conversions"})
    scoring = scorer(settings, perf("cheap-converter", mean=0.04), perf("pricey", mean=0.01))
    similar = [Candidate("pricey", 0.9, Decimal(100)), Candidate("cheap-converter", 0.1, Decimal(10))]
    ranked = run(scoring, similar, limit=2)
    assert ids(ranked) == ["cheap-converter", "pricey"]
    assert [r.score for r in ranked] == [pytest.approx(0.04), pytest.approx(0.01)]


def test_given_a_product_without_performance_when_scored_under_bayes_then_it_is_valued_at_the_prior_mean() -> None:
    scoring = scorer(BAYES)
    assert scoring.score(Candidate("new", 0.3, Decimal(50))) == pytest.approx(0.02 * 50)


def test_given_equal_values_under_bayes_when_ranked_then_similarity_breaks_the_tie() -> None:
    scoring = scorer(BAYES, perf("a", mean=0.02), perf("b", mean=0.02), perf("c", mean=0.02))
    ranked = run(scoring, candidates(("a", 0.1), ("b", 0.3), ("c", 0.2)), limit=3)
    assert ids(ranked) == ["b", "c", "a"]


@pytest.mark.parametrize("settings", [BAYES, BAYES.model_copy(update={"explore_share": 0.5})])
def test_given_no_learning_run_yet_when_ranked_under_bayes_then_similarity_orders(settings: ShopSettings) -> None:
    scoring = scorer(settings, perf("a", mean=0.5), prior=None)
    assert scoring.score(Candidate("a", 0.1, Decimal(100))) == pytest.approx(0.1)
    if settings.explore_share == 0:
        ranked = run(scoring, candidates(("a", 0.1), ("b", 0.3), ("c", 0.2)), limit=3)
        assert ranked == [Ranked("b", 0.3), Ranked("c", 0.2), Ranked("a", 0.1)]


# --- the price a candidate is valued at ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate_price", "performance_price", "fallback", "expected"),
    [
        (Decimal("12.50"), Decimal(40), Decimal(30), 12.5),  # the catalog's price first
        (None, Decimal(40), Decimal(30), 40.0),  # then the price paid, from learning
        (None, None, Decimal(30), 30.0),  # then the shop's median price
        (None, None, None, 1.0),  # nothing known: a neutral unit
    ],
    ids=["catalog", "performance", "fallback", "nothing"],
)
def test_given_prices_known_or_not_when_a_candidate_is_valued_then_the_first_known_price_is_used(
    candidate_price: Decimal | None, performance_price: Decimal | None, fallback: Decimal | None, expected: float
) -> None:
    scoring = scorer(BAYES, perf("p", price=performance_price, mean=0.02), fallback_price=fallback)
    candidate = Candidate("p", 0.5, candidate_price)
    assert scoring.price(candidate) == pytest.approx(expected)
    assert scoring.score(candidate) == pytest.approx(0.02 * expected)


def test_given_an_unknown_product_without_a_price_when_valued_then_the_fallback_price_is_used() -> None:
    scoring = scorer(BAYES, fallback_price=Decimal(25))
    assert scoring.price(Candidate("new", 0.5)) == pytest.approx(25.0)


# --- exploration -----------------------------------------------------------------------------------------------------


def test_given_no_exploration_when_ranked_with_any_rng_then_the_result_is_deterministic() -> None:
    scoring = scorer(BAYES, perf("bad", blacklisted=True, mean=0.001, strength=50), perf("a", mean=0.03))
    similar = candidates(("bad", 0.9), ("a", 0.5), ("b", 0.4), ("c", 0.3))
    fill = candidates(("d", 0.2), ("e", 0.1))
    first = run(scoring, similar, fill, limit=4, seed=0)
    for seed in range(1, 200):
        assert run(scoring, similar, fill, limit=4, seed=seed) == first
    assert not any(r.explored for r in first)
    assert "bad" not in ids(first)


def test_given_half_the_slots_explored_when_ranked_many_times_then_demoted_products_come_back() -> None:
    explore = BAYES.model_copy(update={"explore_share": 0.5})
    performances = (
        perf("bad", blacklisted=True, mean=0.004, strength=60),
        perf("a", mean=0.03),
        perf("b", mean=0.025),
        perf("c", mean=0.02),
        perf("d", mean=0.015),
    )
    similar = candidates(("bad", 0.9), ("a", 0.5), ("b", 0.4), ("c", 0.3), ("d", 0.2))
    fill = candidates(("e", 0.1), ("f", 0.05))
    rng = random.Random(1234)
    requests = 2000
    slots = explored = bad_shown = 0
    for _ in range(requests):
        ranked = rank(similar, fill, scorer(explore, *performances), arm="learning", limit=4, exclude=(), rng=rng)
        assert len(ranked) == 4
        assert len(set(ids(ranked))) == 4
        slots += len(ranked)
        explored += sum(r.explored for r in ranked)
        bad_shown += "bad" in ids(ranked)
        assert all(r.explored for r in ranked if r.product_id == "bad")  # only exploration brings it back
    assert explored / slots == pytest.approx(0.5, abs=0.03)
    assert 0 < bad_shown < requests

    rng = random.Random(1234)
    for _ in range(requests):
        ranked = rank(similar, fill, scorer(BAYES, *performances), arm="learning", limit=4, exclude=(), rng=rng)
        assert "bad" not in ids(ranked)
        assert not any(r.explored for r in ranked)


def test_given_the_default_exploration_share_when_ranked_many_times_then_about_that_share_is_explored() -> None:
    scoring = scorer(ShopSettings(), *(perf(f"p{i}", mean=0.01 + i / 1000) for i in range(8)))
    similar = candidates(*((f"p{i}", 1 - i / 10) for i in range(8)))
    rng = random.Random(99)
    flags = [
        r.explored
        for _ in range(2500)
        for r in rank(similar, [], scoring, arm="learning", limit=4, exclude=(), rng=rng)
    ]
    assert sum(flags) / len(flags) == pytest.approx(ShopSettings().explore_share, abs=0.01)


def test_given_an_exploration_posterior_when_drawn_then_draws_come_from_it_not_from_the_ranking_posterior() -> None:
    settings = ShopSettings()
    known = perf("demoted", mean=0.003, strength=1500, explore=(PRIOR.alpha, PRIOR.beta))
    legacy = perf("legacy", mean=0.003, strength=1500)  # a run before exploration had its own posterior
    scoring = scorer(settings, known, legacy)
    rng = random.Random(5)
    demoted = [scoring.draw(Candidate("demoted", 0.1), rng) for _ in range(4000)]
    old = [scoring.draw(Candidate("legacy", 0.1), rng) for _ in range(4000)]
    assert sum(demoted) / len(demoted) == pytest.approx(PRIOR.mean, rel=0.05)  # the prior's mean, 2 %
    assert sum(old) / len(old) == pytest.approx(0.003, rel=0.05)
    assert max(old) < 0.015 < max(demoted)
    assert scoring.score(Candidate("demoted", 0.1)) == pytest.approx(0.003)  # exploitation is unchanged


def test_given_exploration_when_ranked_then_it_draws_among_what_the_order_would_not_show_similar_first() -> None:
    explore = ShopSettings(explore_share=0.5)
    performances = [perf(p, mean=m) for p, m in [("a", 0.05), ("b", 0.04), ("c", 0.03), ("d", 0.02), ("e", 0.06)]]
    performances += [perf("x", mean=0.003, strength=1500, explore=(PRIOR.alpha, PRIOR.beta))]
    similar = candidates(("a", 0.5), ("b", 0.4), ("c", 0.3), ("x", 0.2))
    fill = candidates(("d", 0.2), ("e", 0.1))  # e, a best seller, would win any draw against x
    scoring = scorer(explore, *performances)
    rng = random.Random(3)
    explored: Counter[str] = Counter()
    for _ in range(2000):
        ranked = rank(similar, fill, scoring, arm="learning", limit=3, exclude=(), rng=rng)
        explored.update(r.product_id for r in ranked if r.explored)
        assert len(ranked) == 3
    # the order shows a, b, c: every exploration slot goes to x, the only similar product left out, while it lasts
    assert explored["x"] > 0
    assert set(explored) <= {"x", "d", "e"}
    assert explored["e"] + explored["d"] < explored["x"]


def test_given_exploration_when_ranked_then_explored_products_take_the_last_places_and_the_order_keeps_the_first() -> (
    None
):
    # Explored products whose draws stay below every shown product's value (their recent posteriors are tight at
    # 1 %, the weakest shown product is worth 2 %) go after the policy's picks, which keep its order.
    explore = ShopSettings(explore_share=0.5)
    performances = [perf(p, mean=m) for p, m in [("a", 0.05), ("b", 0.04), ("c", 0.03), ("d", 0.02)]]
    performances += [perf(f"x{i}", mean=0.01, explore=(10.0, 990.0)) for i in range(4)]
    similar = candidates(("a", 0.5), ("b", 0.4), ("c", 0.3), ("d", 0.2), *((f"x{i}", 0.1) for i in range(4)))
    scoring = scorer(explore, *performances)
    rng = random.Random(8)
    seen_explored_at: Counter[int] = Counter()
    for _ in range(1000):
        ranked = rank(similar, [], scoring, arm="learning", limit=4, exclude=(), rng=rng)
        flags = [r.explored for r in ranked]
        assert flags == sorted(flags)  # every exploited place comes before every explored one
        exploited = [r.product_id for r in ranked if not r.explored]
        assert exploited == ["a", "b", "c", "d"][: len(exploited)]  # the policy's best, in its order, on top
        seen_explored_at.update(position for position, flag in enumerate(flags, start=1) if flag)
    assert set(seen_explored_at) == {1, 2, 3, 4}  # all four places explored in some request (share 0.5)
    assert seen_explored_at[4] > seen_explored_at[3] > seen_explored_at[2] > seen_explored_at[1]


def test_given_an_explored_product_whose_draw_beats_shown_ones_when_ranked_then_it_takes_the_place_its_draw_earns() -> (
    None
):
    # x's recent evidence (30 purchases in 300 exposure: draws about 10 %) beats c (3 %) and d (2 %), never a (20 %):
    # explored, it goes after a and b when b is shown (15 %, beaten by about half of its draws) or before it, and
    # before every shown product its draw beats; a, b, c, d keep their order.
    explore = ShopSettings(explore_share=0.3)
    performances = [perf(p, mean=m) for p, m in [("a", 0.20), ("b", 0.10), ("c", 0.03), ("d", 0.02)]]
    performances.append(perf("x", mean=0.01, explore=(30.0, 270.0)))
    similar = candidates(("a", 0.5), ("b", 0.4), ("c", 0.3), ("d", 0.2), ("x", 0.1))
    scoring = scorer(explore, *performances)
    rng = random.Random(4)
    places: Counter[int] = Counter()
    for _ in range(1000):
        ranked = rank(similar, [], scoring, arm="learning", limit=4, exclude=(), rng=rng)
        exploited = [r.product_id for r in ranked if not r.explored]
        assert exploited == ["a", "b", "c", "d"][: len(exploited)]
        for place, r in enumerate(ranked, start=1):
            if r.product_id == "x":
                assert r.explored
                above = {s.product_id for s in ranked[: place - 1] if not s.explored}
                below = {s.product_id for s in ranked[place:] if not s.explored}
                assert above <= {"a", "b"}  # above c and d whenever they are shown
                assert "a" not in below  # never above a
                if {"a", "b"} <= above | below:
                    places[place] += 1
    assert set(places) == {2, 3}  # with a and b shown: before b (a draw over 10 %) or after it
    assert places[2] > 0.3 * sum(places.values())


def test_given_a_shop_not_yet_learned_when_explored_then_explored_products_keep_the_last_places() -> None:
    # Before the first learning run a draw is a uniform number and the scores are similarities: not comparable.
    explore = ShopSettings(explore_share=0.5)
    scoring = scorer(explore, prior=None)
    similar = candidates(*((f"p{i}", 0.9 - 0.1 * i) for i in range(8)))
    rng = random.Random(2)
    explored = 0
    for _ in range(500):
        ranked = rank(similar, [], scoring, arm="learning", limit=4, exclude=(), rng=rng)
        flags = [r.explored for r in ranked]
        assert flags == sorted(flags)
        explored += sum(flags)
    assert explored > 500


def test_given_every_candidate_in_the_order_when_explored_then_the_draw_is_among_them() -> None:
    explore = ShopSettings(explore_share=0.5)
    scoring = scorer(explore, perf("a", mean=0.03), perf("b", mean=0.02))
    rng = random.Random(11)
    for _ in range(200):
        ranked = rank(candidates(("a", 0.5), ("b", 0.4)), [], scoring, arm="learning", limit=2, exclude=(), rng=rng)
        assert sorted(ids(ranked)) == ["a", "b"]


def test_given_a_demoted_product_not_shown_lately_when_ranked_many_times_then_exploration_retries_it() -> None:
    # Its ranking posterior is confidently low (1,500 impressions at 0.3 %); its recent one is the prior.
    neighbours = [perf(f"n{i}", mean=0.015 + i / 1000, strength=800, price=Decimal(30)) for i in range(10)]
    similar = candidates(*((f"n{i}", 0.5) for i in range(10)), ("demoted", 0.4))

    def explored_share(demoted: Performance) -> float:
        scoring = scorer(ShopSettings(), *neighbours, demoted)
        rng = random.Random(21)
        shown = 0
        for _ in range(4000):
            ranked = rank(similar, [], scoring, arm="learning", limit=4, exclude=(), rng=rng)
            shown += "demoted" in ids(ranked)
        return shown / 4000

    stale = perf("demoted", mean=0.003, strength=1500, price=Decimal(30))
    forgotten = perf("demoted", mean=0.003, strength=1500, price=Decimal(30), explore=(PRIOR.alpha, PRIOR.beta))
    assert explored_share(stale) < 0.002
    assert explored_share(forgotten) > 0.02


# --- properties over random candidate sets ---------------------------------------------------------------------------

product_ids = st.sampled_from([f"p{i}" for i in range(12)])
candidate_lists = st.lists(
    st.builds(
        Candidate,
        product_id=product_ids,
        similarity=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
        price=st.one_of(st.none(), st.decimals(min_value=0, max_value=500, places=2)),
    ),
    max_size=15,
)


@settings(max_examples=150, deadline=None)
@given(
    similar=candidate_lists,
    fill=candidate_lists,
    blacklisted=st.sets(product_ids),
    known=st.sets(product_ids),
    exclude=st.sets(product_ids, max_size=4),
    policy=st.sampled_from(["seed", "bayes"]),
    explore_share=st.sampled_from([0.0, 0.05, 0.5]),
    arm=st.sampled_from(["learning", "holdout"]),
    limit=st.integers(min_value=0, max_value=15),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_given_random_candidate_sets_when_ranked_then_no_duplicates_no_exclusions_and_no_empty_slots(
    similar: list[Candidate],
    fill: list[Candidate],
    blacklisted: set[str],
    known: set[str],
    exclude: set[str],
    policy: str,
    explore_share: float,
    arm: Arm,
    limit: int,
    seed: int,
) -> None:
    shop = ShopSettings(policy="seed" if policy == "seed" else "bayes", explore_share=explore_share)
    rng = random.Random(seed)
    performances = [
        perf(pid, confidence=rng.random(), blacklisted=pid in blacklisted, mean=rng.uniform(0.001, 0.1), strength=200)
        for pid in known | blacklisted
    ]
    ranked = run(scorer(shop, *performances), similar, fill, arm=arm, limit=limit, exclude=sorted(exclude), seed=seed)
    chosen = ids(ranked)
    offered = {c.product_id for c in [*similar, *fill]} - exclude
    assert len(chosen) == len(set(chosen))
    assert len(chosen) <= limit
    assert set(chosen) <= offered
    if arm == "holdout":
        assert len(chosen) == min(limit, len(offered))
    else:
        eligible = offered - blacklisted
        assert len(chosen) >= min(limit, len(eligible))  # a blacklisted product's slot is never left empty
        if policy == "seed" or explore_share == 0:
            assert set(chosen) <= eligible
            assert not any(r.explored for r in ranked)
        # similar products first: no best seller precedes a similar product chosen by the policy
        similar_ids = {c.product_id for c in similar}
        policy_chosen = [r.product_id for r in ranked if not r.explored]
        first_fill = next((i for i, pid in enumerate(policy_chosen) if pid not in similar_ids), len(policy_chosen))
        assert all(pid not in similar_ids for pid in policy_chosen[first_fill:])
