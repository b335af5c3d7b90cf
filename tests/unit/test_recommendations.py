"""The recommendation request's candidates: a product's, a cart's and a profile's neighbours, exclusions, best
sellers in spare slots, the catalog's word on what is for sale and at what price, and the second round trip's keys."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from reclift.catalog import Listing, ProductStatus
from reclift.context import Landed
from reclift.data.learning import LearnedModel
from reclift.data.serving import ROUND_TRIP_KEYS, CandidateItems, ServingContext, ServingReader
from reclift.learning import Performance, Prior
from reclift.logic.recommendations import parse_query, plan_candidate_reads, recommend, similar_candidates
from reclift.ranking import Candidate, assign_arm
from reclift.recids import RecIds
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

    def __init__(self, context: ServingContext, listings: dict[str, Listing] | None = None) -> None:
        self._context = context
        self._listings = listings or {}
        self.asked: list[list[str]] = []  # the performance items asked for
        self.catalog: list[list[str]] = []  # the catalog items asked for
        self.products: list[str] | None = None
        self.page: str | None = None

    def context(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        products: list[str] | None = None,
        page: str | None = None,
    ) -> ServingContext:
        self.products = products
        self.page = page
        return self._context

    def candidates(
        self, shop: str, *, performance_ids: list[str], catalog_ids: list[str], run: str | None
    ) -> CandidateItems:
        assert len(performance_ids) + len(catalog_ids) <= ROUND_TRIP_KEYS
        self.asked.append(performance_ids)
        self.catalog.append(catalog_ids)
        return CandidateItems(listings={p: self._listings[p] for p in catalog_ids if p in self._listings})


def listing(
    product_id: str, *, price: str = "10", status: str = "active", available: bool = True, **extra: Any
) -> Listing:
    fields: dict[str, Any] = {
        "product_id": product_id,
        "title": f"Product {product_id}",
        "handle": f"product-{product_id}",
        "status": ProductStatus(status),
        "price": Decimal(price),
        "available": available,
        "image": f"https://cdn.example/{product_id}.jpg",
        "updated_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    return Listing(**(fields | extra))


SIMILAR = {"1": [("2", 0.6), ("3", 0.3), ("9", 0.2)], "2": [("3", 0.5), ("1", 0.4), ("4", 0.1)]}
SELLERS = [seller("9", 30), seller("8", 20), seller("7", 10)]
MODEL = LearnedModel("2026-11-26", "bayes", Prior(1, 99), Decimal(10), SELLERS, 3, 0)
# No holdout (the order is the policy's) and no exploration (no draws), so the order is the similarity's.
SETTINGS = ShopSettings(policy="seed", holdout_share=0.0)
REC_IDS = RecIds.of_secrets(["hush"])
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def served(reader: Reader, **params: str) -> list[str]:
    query = parse_query({"limit": "10", **params})
    result = recommend("shop.myshopify.com", None, query, reader, random.Random(1), rec_ids=REC_IDS, now=NOW)
    return [p["product_id"] for p in result["products"]]


def test_given_a_product_page_then_its_neighbours_come_first_and_best_sellers_fill_the_rest() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL, similar=SIMILAR))

    assert served(reader, placement="product", product_id="1") == ["2", "3", "9", "8", "7"]
    assert reader.products == ["1"]
    assert reader.asked == [["2", "3"]]  # 9 is a best seller: the first round trip described it
    assert reader.catalog == [["9", "8", "7", "2", "3"]]  # every candidate's listing, in the same round trip


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


def test_given_a_profile_with_few_co_purchases_then_home_adds_its_catalog_neighbours_before_best_sellers() -> None:
    """A new shop's home widget: the visitor's recent products have one co-purchase neighbour, and their catalog
    neighbours (carried by the profile) fill the next slots before best sellers (under the seed policy, as before a
    shop's first learning run), never repeating what the visitor bought."""
    context = ServingContext(
        settings=SETTINGS,
        model=MODEL,
        purchased=["6"],
        profile_neighbours=[[("5", 0.4)]],
        profile_catalog_neighbours=[[("6", 0.9), ("11", 0.8), ("12", 0.6)]],
    )
    reader = Reader(context)

    query = parse_query({"limit": "5", "placement": "home", "visitor_id": "v1"})
    result = recommend("shop.myshopify.com", None, query, reader, random.Random(1), rec_ids=REC_IDS, now=NOW)

    assert [(p["product_id"], p["source"]) for p in result["products"]] == [
        ("5", "similar"),
        ("11", "catalog"),
        ("12", "catalog"),
        ("9", "best_seller"),
        ("8", "best_seller"),
    ]
    assert {"11", "12"} <= set(reader.catalog[0])  # their listings asked for in the same round trip


def test_given_no_neighbours_then_best_sellers_only_with_their_listings() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL))

    assert served(reader, placement="product", product_id="6") == ["9", "8", "7"]
    assert reader.asked == [[]]
    assert reader.catalog == [["9", "8", "7"]]


def visitor_in(arm: str) -> str:
    """A visitor the half-and-half holdout sends to this arm."""
    return next(v for n in range(100) if assign_arm("shop.myshopify.com", v := f"v{n}", 0.5) == arm)


@pytest.mark.parametrize("arm", ["learning", "holdout"])
@pytest.mark.parametrize(
    "unsellable",
    [
        {"status": "draft"},
        {"status": "archived"},
        {"available": False},
        {"deleted": True},
    ],
)
def test_given_a_product_the_catalog_says_is_not_for_sale_then_no_arm_recommends_it(
    unsellable: dict[str, Any], arm: str
) -> None:
    settings = ShopSettings(policy="seed", holdout_share=0.5)
    listings = {"2": listing("2", **unsellable), "9": listing("9", **unsellable)}
    reader = Reader(ServingContext(settings=settings, model=MODEL, similar=SIMILAR), listings)

    # 2 is a neighbour, 9 a neighbour and the top best seller: neither is shown, the next candidates take their slots.
    assert served(reader, placement="product", product_id="1", visitor_id=visitor_in(arm)) == ["3", "8", "7"]


def test_given_a_product_the_catalog_has_never_seen_then_it_is_still_recommended_at_the_median_price() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL, similar=SIMILAR), {"2": listing("2")})

    assert served(reader, placement="product", product_id="1") == ["2", "3", "9", "8", "7"]


def test_given_listings_then_each_product_carries_what_the_widget_renders() -> None:
    listings = {"2": listing("2", price="19.90"), "3": listing("3", image=None, handle=None)}
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL, similar=SIMILAR), listings)
    query = parse_query({"limit": "3", "placement": "product", "product_id": "1"})

    result = recommend("shop.myshopify.com", None, query, reader, random.Random(1), rec_ids=REC_IDS, now=NOW)
    products = result["products"]

    assert products[0] == {
        "product_id": "2",
        "score": products[0]["score"],
        "position": 1,
        "source": "similar",
        "title": "Product 2",
        "url": "/products/product-2",
        "price": "19.90",
        "image": "https://cdn.example/2.jpg",
    }
    assert products[1] == {
        "product_id": "3",
        "score": products[1]["score"],
        "position": 2,
        "source": "similar",
        "title": "Product 3",
        "price": "10.00",
    }
    assert products[2]["price"] == "10.00"  # 9: the catalog knows nothing, the price paid in orders stands


def test_given_the_revenue_objective_then_a_catalog_price_change_reorders_the_candidates() -> None:
    settings = ShopSettings(policy="bayes", holdout_share=0.0, explore_share=0.0, objective="revenue")
    context = ServingContext(settings=settings, model=MODEL, similar={"1": [("2", 0.6), ("3", 0.3)]})

    cheap_3 = served(Reader(context, {"2": listing("2", price="20"), "3": listing("3", price="5")}), product_id="1")
    dear_3 = served(Reader(context, {"2": listing("2", price="20"), "3": listing("3", price="80")}), product_id="1")

    assert cheap_3[:2] == ["2", "3"]
    assert dear_3[:2] == ["3", "2"]


def candidates(prefix: str, count: int) -> list[Candidate]:
    return [Candidate(product_id=f"{prefix}{n}", similarity=1 - n / 100) for n in range(count)]


@pytest.mark.parametrize("limit", [1, 4, 20])
def test_given_many_candidates_then_the_second_round_trip_stays_within_one_batch_and_keeps_the_best(
    limit: int,
) -> None:
    similar, fill = candidates("s", 50), candidates("b", 50)

    reads = plan_candidate_reads(similar, fill, set(), limit=limit, exclude={"s0", "b0"})

    assert len(reads.performance_ids) + len(reads.catalog_ids) == ROUND_TRIP_KEYS
    assert len(reads.fill) >= 2 * limit  # every slot can be filled twice over
    assert [c.product_id for c in reads.similar] == [f"s{n}" for n in range(1, len(reads.similar) + 1)]
    assert {c.product_id for c in reads.similar} == set(reads.performance_ids)
    assert set(reads.catalog_ids) == {c.product_id for c in [*reads.similar, *reads.fill]}
    assert "s0" not in reads.catalog_ids
    assert "b0" not in reads.catalog_ids


def test_given_known_candidates_then_only_their_listings_cost_a_key() -> None:
    similar, fill = candidates("s", 50), candidates("b", 50)

    reads = plan_candidate_reads(similar, fill, {c.product_id for c in similar}, limit=4, exclude=set())

    assert reads.performance_ids == []
    assert len(reads.similar) == 50
    assert len(reads.fill) == 50


def test_given_a_response_then_its_rec_id_is_issued_for_the_shop_visitor_arm_placement_and_listed_products() -> None:
    reader = Reader(ServingContext(settings=SETTINGS, model=MODEL, similar=SIMILAR))
    query = parse_query({"limit": "3", "placement": "product", "product_id": "1", "visitor_id": "v-1"})

    result = recommend("shop.myshopify.com", None, query, reader, random.Random(1), rec_ids=REC_IDS, now=NOW)

    listed = [p["product_id"] for p in result["products"]]
    assert result["event_fields"] == {"rec_products": listed}
    rec_id = result["rec_id"]
    assert len(rec_id) <= 128
    assert set(rec_id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
    issued = REC_IDS.proven(rec_id, shop="shop.myshopify.com", visitor_id="v-1", listed=listed, now=NOW)
    assert issued is not None
    assert (issued.arm, issued.placement, issued.issued_at) == ("learning", "product", NOW)
    assert REC_IDS.proven(rec_id, shop="shop.myshopify.com", visitor_id="v-2", listed=listed, now=NOW) is None
    again = recommend("shop.myshopify.com", None, query, reader, random.Random(1), rec_ids=REC_IDS, now=NOW)
    assert again["rec_id"] != rec_id  # one id per response


def test_given_visits_that_landed_on_the_page_then_each_candidates_parts_carry_its_shares() -> None:
    """The context policy's prior reads, beside a candidate's co-purchase and co-view similarity, the share of the
    orders that landed on the page which bought it and the share of the view sessions that began there which viewed
    it, each over its own list; a page nobody landed on gives none (0)."""
    similar = {"1": [("2", 0.6), ("3", 0.3)], "2": [("3", 0.5)]}
    context = ServingContext(settings=SETTINGS, model=MODEL, similar=similar, landed={"1": Landed(8, (0, 6), 0.1)})

    page = similar_candidates(parse_query({"placement": "product", "product_id": "1"}), context, {"1"})
    assert [(c.product_id, c.parts) for c in page] == [
        ("2", (0.6, 0.0, 0.2 / 10, 0.0)),
        ("3", (0.3, 0.0, 6.2 / 10, 0.0)),
    ]
    cart = similar_candidates(parse_query({"placement": "cart", "cart_product_ids": "2"}), context, {"2"})
    assert [(c.product_id, c.parts) for c in cart] == [("3", (0.5, 0.0, 0.0, 0.0))]
    # 18 sessions began on 1's page: 9 viewed 4 (second in its co-view list), 3 viewed 3 (first)
    viewing = replace(
        context,
        viewed_similar={"1": [("3", 0.2), ("4", 0.1)]},
        viewed_after={"1": Landed(18, (3, 9), 0.05)},
    )
    viewed = similar_candidates(parse_query({"placement": "product", "product_id": "1"}), viewing, {"1"})
    assert {c.product_id: c.parts[3] for c in viewed if c.parts} == pytest.approx(
        {"2": 0.1 / 20, "3": 3.1 / 20, "4": 9.1 / 20}
    )
