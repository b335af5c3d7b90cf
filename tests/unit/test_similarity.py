"""Co-purchase similarity: Jaccard, support and lift on hand-computed baskets, ties, the minimum support, the
top-N cut, bought-instead pairs, bad baskets, and the numpy counting checked against a plain count."""

from __future__ import annotations

import random
from collections import Counter
from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from reclift.context import Landed
from reclift.similarity import (
    MAX_BASKET_PRODUCTS,
    Neighbour,
    WindowBasket,
    combine,
    encode_baskets,
    id_order,
    landed_counts,
    neighbour_table,
    similar_products,
    viewed_after_counts,
)


def by_product(lists: dict[str, list[Neighbour]], product: str) -> list[tuple[str, float, float, float]]:
    return [(n.product_id, round(n.jaccard, 6), n.support, round(n.lift, 6)) for n in lists.get(product, [])]


def test_given_hand_computed_baskets_then_jaccard_support_and_lift_match() -> None:
    # n(1) = 4, n(2) = 3, n(3) = 4, n(4) = 2 over N = 6 baskets; |1∩2| = 3, |1∩3| = 2, |3∩4| = 2, |2∩3| = 1.
    baskets = [["1", "2"], ["1", "2"], ["1", "3"], ["2", "3", "1"], ["3", "4"], ["3", "4"]]

    lists = similar_products(baskets)

    assert by_product(lists, "1") == [("2", round(3 / 4, 6), 3.0, 1.5), ("3", round(2 / 6, 6), 2.0, 0.75)]
    assert by_product(lists, "2") == [("1", 0.75, 3.0, 1.5)]  # |2∩3| = 1 is below the minimum support
    assert by_product(lists, "3") == [("4", 0.5, 2.0, 1.5), ("1", round(2 / 6, 6), 2.0, 0.75)]
    assert by_product(lists, "4") == [("3", 0.5, 2.0, 1.5)]


def test_given_equal_jaccard_then_the_larger_support_ranks_first() -> None:
    # Jaccard(A, B) = 2 / (6 + 2 − 2) = 1/3 and Jaccard(A, C) = 4 / (6 + 10 − 4) = 1/3; support 2 < 4.
    baskets = [["7", "8"]] * 2 + [["7", "9"]] * 4 + [["9"]] * 6

    assert [(n.product_id, n.support) for n in similar_products(baskets)["7"]] == [("9", 4.0), ("8", 2.0)]


def test_given_a_full_tie_then_the_smaller_product_id_ranks_first_in_numeric_order() -> None:
    baskets = [["5", "10", "9", "100"]] * 2

    assert [n.product_id for n in similar_products(baskets)["5"]] == ["9", "10", "100"]
    assert sorted(["10", "9", "x", "100"], key=id_order) == ["9", "10", "100", "x"]


def test_given_the_minimum_support_then_rarer_pairs_are_dropped_or_kept() -> None:
    baskets = [["1", "2"], ["1", "2"], ["1", "3"]]

    assert [n.product_id for n in similar_products(baskets)["1"]] == ["2"]
    assert [n.product_id for n in similar_products(baskets, min_support=1)["1"]] == ["2", "3"]
    assert similar_products(baskets, min_support=3) == {}


def test_given_more_neighbours_than_the_top_then_the_best_are_kept_in_order() -> None:
    # Product 1 is bought with each of 60 others k + 2 times (k = 0..59): the 50 most frequent survive.
    baskets = [["1", str(1000 + k)] for k in range(60) for _ in range(k + 2)]

    lists = similar_products(baskets)

    assert [n.product_id for n in lists["1"]] == [str(1000 + k) for k in range(59, 9, -1)]
    assert [n.product_id for n in similar_products(baskets, top=3)["1"]] == ["1059", "1058", "1057"]


def test_given_bought_instead_pairs_then_they_count_at_their_weight() -> None:
    orders = [["1", "2"], ["1", "2"]]
    instead = [("1", "3")] * 8  # bought 1 after being shown 3, eight times

    weighted = similar_products(orders, instead, bought_instead_weight=0.25)

    # Eight pairs at 0.25 weigh as two shared baskets: support 2, n(1) = 2 + 2, n(3) = 2.
    assert by_product(weighted, "3") == [("1", 0.5, 2.0, round(2 * 4 / (4 * 2), 6))]
    assert "3" not in similar_products(orders, instead, bought_instead_weight=0.0)
    assert "3" not in similar_products(orders, instead[:7], bought_instead_weight=0.25)  # 1.75 < 2


def test_given_bad_baskets_then_repeats_singletons_and_huge_orders_are_handled() -> None:
    assert similar_products([]) == {}
    assert similar_products([["1"], ["2"], ["1"]]) == {}
    # A product repeated on several lines counts once per basket.
    assert by_product(similar_products([["1", "1", "2"], ["2", "1", "2"]]), "1") == [("2", 1.0, 2.0, 1.0)]
    huge = [str(n) for n in range(1, 301)]
    encoded = encode_baskets([huge])
    assert len(encoded.indices) == MAX_BASKET_PRODUCTS
    assert len(similar_products([huge, huge])["1"]) == 50


@given(
    st.lists(st.lists(st.integers(1, 12).map(str), min_size=1, max_size=6), max_size=60),
    st.integers(1, 3),
    st.integers(1, 5),
)
def test_given_any_baskets_then_the_counting_matches_a_plain_count(
    baskets: list[list[str]], min_support: int, top: int
) -> None:
    frequency: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for basket in baskets:
        products = sorted(set(basket))
        frequency.update(products)
        pairs.update(combinations(products, 2))
    expected: dict[str, list[tuple[str, float, float]]] = {}
    for (a, b), support in pairs.items():
        if support >= min_support:
            jaccard = round(support / (frequency[a] + frequency[b] - support), 9)
            expected.setdefault(a, []).append((b, jaccard, support))
            expected.setdefault(b, []).append((a, jaccard, support))
    for product, rows in expected.items():
        expected[product] = sorted(rows, key=lambda row: (-row[1], -row[2], id_order(row[0])))[:top]

    lists = similar_products(baskets, min_support=min_support, top=top)

    assert {p: [(n.product_id, round(n.jaccard, 9), n.support) for n in ns] for p, ns in lists.items()} == expected


def test_given_a_larger_store_then_every_list_is_symmetric_in_score_and_sorted() -> None:
    rng = random.Random(5)
    baskets = [[str(rng.randint(1, 200)) for _ in range(rng.randint(1, 5))] for _ in range(3000)]

    table = neighbour_table(encode_baskets(baskets))
    lists = table.as_lists()

    scores = {(p, n.product_id): n.jaccard for p, ns in lists.items() for n in ns}
    for (a, b), jaccard in scores.items():
        assert scores.get((b, a), jaccard) == jaccard
    for neighbours in lists.values():
        keys = [(-n.jaccard, -n.support, id_order(n.product_id)) for n in neighbours]
        assert keys == sorted(keys)


def test_given_several_lists_then_combine_averages_excludes_and_breaks_ties_by_id() -> None:
    lists = [[("2", 0.6), ("3", 0.2)], [("3", 0.4), ("4", 0.4), ("1", 0.9)]]

    assert combine(lists, exclude={"1"}, limit=10) == [("2", 0.3), ("3", 0.3), ("4", 0.2)]
    assert combine(lists, limit=1) == [("1", 0.45)]
    assert combine([], limit=5) == []


def test_given_orders_that_landed_on_pages_then_what_they_bought_of_each_pages_neighbours_is_counted() -> None:
    lists = similar_products([["1", "2"], ["1", "2"], ["1", "3"], ["1", "3"], ["2", "3"], ["2", "3"]])
    assert [n.product_id for n in lists["1"]] == ["2", "3"]
    handles = {"teapot": "1", "strainer": "2", "cosy": "3"}
    baskets = [
        WindowBasket(["1", "2"], "teapot"),
        WindowBasket(["1", "2", "3"], "teapot"),
        WindowBasket(["1"], "teapot"),
        WindowBasket(["2", "3"], "strainer"),
        WindowBasket(["1", "3"], None),  # the home page: not counted
        WindowBasket(["3"], "gone"),  # a handle no longer in the catalog: not counted
    ]
    landed = landed_counts(baskets, handles, lists)
    # 3 orders landed on 1's page (2 bought 2, 1 bought 3), 1 on 2's (bought 3), none on 3's; pooled: 4 of 3×2 + 1×2
    assert landed == {
        "1": Landed(3, (2, 1), 0.5),
        "2": Landed(1, (0, 1), 0.5),
        "3": Landed(0, (0, 0), 0.5),
    }
    assert landed_counts([WindowBasket(["1", "2"], None)], handles, lists) == {}  # no landing: nothing to say
    assert landed_counts(baskets, handles, {}) == {}


def test_given_view_sessions_then_what_those_begun_on_a_page_went_on_to_view_of_its_neighbours_is_counted() -> None:
    """A session is newest first (`profiles.day_session`): it began on its last product."""
    lists = similar_products([["1", "2"], ["1", "2"], ["1", "3"], ["1", "3"], ["2", "3"], ["2", "3"]])
    sessions = [
        ["2", "1"],  # began on 1, then viewed 2
        ["3", "2", "1"],  # began on 1, then 2 and 3
        ["1"],  # began on 1 and went nowhere
        ["3", "2"],  # began on 2, then 3
        ["2", "3"],  # began on 3, then 2
        [],
    ]
    after = viewed_after_counts(sessions, lists)
    # 3 sessions began on 1 (2 viewed 2, 1 viewed 3), 1 on 2 (viewed 3), 1 on 3 (viewed 2, its first neighbour
    # by id on a tie); pooled 5 of 3×2 + 1×2 + 1×2
    assert [n.product_id for n in lists["3"]] == ["1", "2"]
    assert after == {
        "1": Landed(3, (2, 1), 0.5),
        "2": Landed(1, (0, 1), 0.5),
        "3": Landed(1, (0, 1), 0.5),
    }
    assert viewed_after_counts([["1"]], {}) == {}
