"""Viewed together: co-view neighbours from visitors' day sessions (kept in their profiles), their weight against
co-purchase from which of the two predicted later baskets, and their place among the recommendation's candidates.
Properties over random sessions and shops, each of which fails when its rule is broken."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from benchmarks.memory_store import MemoryStore
from hypothesis import given, settings
from hypothesis import strategies as st

from reclift.data.serving import ServingContext
from reclift.logic.recommendations import parse_query, recommend, similar_candidates
from reclift.logic.similarity import viewed_together
from reclift.profiles import PROFILE_LIST_LIMIT, ProfileLists, day_session, day_views
from reclift.settings import ShopSettings
from reclift.similarity import (
    DEFAULT_TOP,
    DEFAULT_VIEWED_WEIGHT,
    combine,
    encode_baskets,
    neighbour_table,
    source_weights,
)
from reclift.tracking import ProfileChange
from tests.unit.test_recommendations import MODEL, NOW, REC_IDS, SETTINGS, Reader, served

SHOP = "views.myshopify.com"
CATALOG = [str(1000 + k) for k in range(40)]


def coviewed(sessions: list[list[str]], min_support: float = 2) -> dict[str, list[str]]:
    lists = neighbour_table(encode_baskets(sessions), min_support=min_support).as_lists()
    return {product: [n.product_id for n in neighbours] for product, neighbours in lists.items()}


def noise_sessions(rng: random.Random, count: int, products: list[str]) -> list[list[str]]:
    return [rng.sample(products, rng.randint(1, 3)) for _ in range(count)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), together=st.integers(2, 30), noise=st.integers(0, 60))
def test_given_two_products_viewed_together_in_several_sessions_then_each_is_the_others_neighbour(
    seed: int, together: int, noise: int
) -> None:
    rng = random.Random(seed)
    a, b = "1", "2"
    sessions = [[a, b, *rng.sample(CATALOG, rng.randint(0, 3))] for _ in range(together)]
    sessions += noise_sessions(rng, noise, CATALOG)
    rng.shuffle(sessions)

    lists = coviewed(sessions)

    assert (b in lists[a], a in lists[b]) == (True, True)


@settings(max_examples=40, deadline=None)
@given(
    views=st.lists(st.sampled_from(CATALOG[:12]), min_size=1, max_size=200),
    batch=st.integers(1, 20),
    others=st.integers(0, 20),
)
def test_given_one_visitor_viewing_products_over_and_over_in_a_day_then_they_alone_make_no_neighbours(
    views: list[str], batch: int, others: int
) -> None:
    store = MemoryStore()
    now = datetime.now(UTC)
    for start in range(0, len(views), batch):
        store.update_profile(SHOP, f"{SHOP}#v#obsessed", ProfileChange(viewed=views[start : start + batch]))
    for visitor in range(others):  # other visitors each view one product of theirs
        store.update_profile(SHOP, f"{SHOP}#v#o{visitor}", ProfileChange(viewed=[CATALOG[20 + visitor % 20]]))

    sessions = store.view_sessions(SHOP, now - timedelta(days=1), now + timedelta(days=1), 1000)

    mine = [s for s in sessions if set(s) <= set(CATALOG[:12])]
    assert len(mine) == 1  # one visitor, one day: one session, each product once in it
    assert len(mine[0]) == len(set(mine[0]))
    assert coviewed(sessions) == {}


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.sampled_from(CATALOG), min_size=1, max_size=8), min_size=1, max_size=12))
def test_given_a_days_view_batches_then_the_profiles_session_is_exactly_its_distinct_products(
    batches: list[list[str]],
) -> None:
    # Yesterday's views stay in the viewed list but are not today's session.
    lists = ProfileLists(viewed=tuple(CATALOG[30:40]))
    counted = 0
    for batch in batches:
        counted = day_views(lists.viewed, counted, batch)
        lists = lists.pushed(batch, [], [])

    today = {product for batch in batches for product in batch}
    session = day_session(lists.viewed, counted)
    assert len(session) == min(len(today), PROFILE_LIST_LIMIT)
    assert set(session) == today if len(today) <= PROFILE_LIST_LIMIT else set(session) <= today


def test_given_a_product_viewed_with_sixty_others_then_it_keeps_its_fifty_best() -> None:
    hub, others = "1", [str(2000 + k) for k in range(60)]
    # Other k shares k + 2 sessions with the hub: the fifty most shared are 2010 … 2059.
    sessions = [[hub, other] for k, other in enumerate(others) for _ in range(k + 2)]

    lists = coviewed(sessions)

    assert len(lists[hub]) == DEFAULT_TOP == 50
    assert set(lists[hub]) == set(others[10:])


def shop_sessions(rng: random.Random, pairs: list[tuple[str, str]], predictive: bool) -> list[list[str]]:
    """Sessions that view the shop's bought-together pairs (predictive) or unrelated pairs (not)."""
    viewed = pairs if predictive else [(a, b) for (a, _), (_, b) in zip(pairs, pairs[1:] + pairs[:1], strict=True)]
    return [list(rng.choice(viewed)) for _ in range(400)] + noise_sessions(rng, 200, CATALOG)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_given_a_shop_where_co_views_predict_baskets_then_co_view_weighs_more_than_where_they_do_not(
    seed: int,
) -> None:
    rng = random.Random(seed)
    products = rng.sample(CATALOG, 20)
    pairs = [(products[2 * k], products[2 * k + 1]) for k in range(10)]
    # Orders: the pairs bought together now and then (co-purchase learns them too), among single-product orders.
    orders = [list(rng.choice(pairs)) if rng.random() < 0.3 else [rng.choice(products)] for _ in range(600)]
    shop = ShopSettings()

    predictive = viewed_together(shop_sessions(rng, pairs, True), orders, [], shop)
    unrelated = viewed_together(shop_sessions(rng, pairs, False), orders, [], shop)

    assert predictive is not None
    assert unrelated is not None
    assert predictive.weight > DEFAULT_VIEWED_WEIGHT > unrelated.weight


def test_given_no_held_out_evidence_then_co_view_keeps_its_default_weight() -> None:
    assert source_weights((0, 0), (0, 0)).viewed_together == DEFAULT_VIEWED_WEIGHT
    assert source_weights((0, 12), (0, 30)).viewed_together == DEFAULT_VIEWED_WEIGHT


def test_given_no_view_sessions_then_the_job_has_no_co_view_neighbours() -> None:
    assert viewed_together([], [["1", "2"], ["1", "2"]], [], ShopSettings()) is None


CONTEXTS = st.dictionaries(
    st.sampled_from(CATALOG[:6]),
    st.lists(st.tuples(st.sampled_from(CATALOG), st.floats(0.01, 1.0)), max_size=8, unique_by=lambda t: t[0]),
    max_size=6,
)


@settings(max_examples=80, deadline=None)
@given(similar=CONTEXTS, cart=st.lists(st.sampled_from(CATALOG[:6]), min_size=1, max_size=4, unique=True))
def test_given_a_shop_without_co_view_neighbours_then_the_candidates_are_exactly_the_co_purchase_ones(
    similar: dict[str, list[tuple[str, float]]], cart: list[str]
) -> None:
    context = ServingContext(settings=SETTINGS, model=MODEL, similar=similar)
    query = parse_query({"placement": "cart", "cart_product_ids": ",".join(cart)})

    candidates = similar_candidates(query, context, set(cart))

    lists = [similar[p] for p in cart if p in similar]
    assert [(c.product_id, c.similarity, c.source) for c in candidates] == [
        (product, score, "similar") for product, score in combine(lists, exclude=cart, limit=50)
    ]


@settings(max_examples=80, deadline=None)
@given(similar=CONTEXTS, viewed=CONTEXTS, product=st.sampled_from(CATALOG[:6]))
def test_given_both_sources_then_each_candidate_sums_them_and_says_the_larger(
    similar: dict[str, list[tuple[str, float]]], viewed: dict[str, list[tuple[str, float]]], product: str
) -> None:
    context = ServingContext(settings=SETTINGS, model=MODEL, similar=similar, viewed_similar=viewed)
    query = parse_query({"placement": "product", "product_id": product})

    candidates = similar_candidates(query, context, {product})

    bought = dict(similar.get(product, []))
    seen = dict(viewed.get(product, []))
    expected = {p for p in [*bought, *seen] if p != product}
    assert {c.product_id for c in candidates} == expected
    for c in candidates:
        b, s = round(bought.get(c.product_id, 0.0), 6), round(seen.get(c.product_id, 0.0), 6)
        assert abs(c.similarity - (b + s)) < 1e-5
        assert c.source == ("similar" if b >= s else "viewed_together")
    assert [c.similarity for c in candidates] == sorted((c.similarity for c in candidates), reverse=True)


def test_given_a_product_only_viewed_together_then_it_is_served_with_that_source() -> None:
    viewed = {"1": [("5", 0.4), ("2", 0.05)]}
    reader = Reader(
        ServingContext(settings=SETTINGS, model=MODEL, similar={"1": [("2", 0.6), ("3", 0.3)]}, viewed_similar=viewed)
    )
    query = parse_query({"limit": "10", "placement": "product", "product_id": "1"})

    result = recommend(SHOP, None, query, reader, random.Random(1), rec_ids=REC_IDS, now=NOW)

    sources = {p["product_id"]: p["source"] for p in result["products"]}
    assert (sources["2"], sources["5"], sources["3"]) == ("similar", "viewed_together", "similar")
    assert served(reader, placement="product", product_id="1")[:3] == ["2", "5", "3"]  # 0.65, 0.4, 0.3
