"""The recommendation request's candidates: a product's, a cart's and a profile's neighbours, exclusions, best
sellers in spare slots, and the second round trip only for candidates the first did not describe."""

from __future__ import annotations

import random
from decimal import Decimal

from reclift.data.learning import LearnedModel
from reclift.data.serving import CandidateItems, ServingContext, ServingReader
from reclift.learning import Performance, Prior
from reclift.logic.recommendations import parse_query, recommend
from reclift.settings import ShopSettings


def seller(product_id: str, purchases: int) -> Performance:
    return Performance(
        product_id=product_id,
        impressions=1000,
        clicks=50,
        purchases=purchases,
        units=purchases,
        revenue=Decimal(purchases * 10),
        ctr=0.05,
        cvr=purchases / 1000,
        confidence=0.5,
        blacklisted=False,
        reason="",
        alpha=1 + purchases,
        beta=1000 - purchases,
        price=Decimal(10),
    )


class Reader(ServingReader):
    """The serving port with the shop's data in hand; records what the second round trip is asked for."""

    def __init__(self, context: ServingContext) -> None:
        self._context = context
        self.asked: list[list[str]] = []
        self.products: list[str] | None = None

    def context(
        self, shop: str, *, visitor_id: str | None, customer_id: str | None, products: list[str] | None = None
    ) -> ServingContext:
        self.products = products
        return self._context

    def candidates(self, shop: str, product_ids: list[str], *, run: str | None) -> CandidateItems:
        self.asked.append(product_ids)
        return CandidateItems()


SIMILAR = {"1": [("2", 0.6), ("3", 0.3), ("9", 0.2)], "2": [("3", 0.5), ("1", 0.4), ("4", 0.1)]}
SELLERS = [seller("9", 30), seller("8", 20), seller("7", 10)]
MODEL = LearnedModel("2026-11-26", "bayes", Prior(1, 99), Decimal(10), SELLERS, 3, 0)
# No holdout (the order is the policy's) and no exploration (no draws), so the order is the similarity's.
SETTINGS = ShopSettings(policy="seed", holdout_share=0.0)


def served(reader: Reader, **params: str) -> list[str]:
    query = parse_query({"limit": "10", **params})
    result = recommend("shop.myshopify.com", None, query, reader, random.Random(1))
    return [p["product_id"] for p in result["products"]]


def test_given_a_product_page_then_its_neighbours_come_first_and_best_sellers_fill_the_rest() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL, similar=SIMILAR))

    assert served(reader, placement="product", product_id="1") == ["2", "3", "9", "8", "7"]
    assert reader.products == ["1"]
    assert reader.asked == [["2", "3"]]  # 9 is a best seller: the first round trip described it


def test_given_a_cart_then_its_products_neighbours_are_combined_and_the_cart_excluded() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL, similar=SIMILAR))

    # 3: (0.3 + 0.5) / 2, 9: 0.2 / 2, 4: 0.1 / 2; 1 and 2 are in the cart.
    assert served(reader, placement="cart", cart_product_ids="1,2") == ["3", "9", "4", "8", "7"]
    assert reader.products == ["1", "2"]


def test_given_a_profile_then_home_uses_its_neighbours_without_what_the_visitor_bought() -> None:
    context = ServingContext(
        settings=SETTINGS, model=MODEL, purchased=["3"], profile_neighbours=[[("3", 0.9), ("5", 0.4), ("8", 0.3)]]
    )
    reader = Reader(context)

    assert served(reader, placement="home", visitor_id="v1") == ["5", "8", "9", "7"]
    assert reader.products == []


def test_given_no_neighbours_then_one_round_trip_and_best_sellers_only() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL))

    assert served(reader, placement="product", product_id="6") == ["9", "8", "7"]
    assert reader.asked == []
