"""The merchant's rules: parsing and validation (every list present, partial replacement, errors naming the field
and element), what the catalog keeps for them (tags, type, vendor, gift cards), and how a recommendation applies
them: exclusions never shown, pinned products first in their order while for sale, never-blacklisted products kept,
and every product's source."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.catalog import Listing, ProductStatus, parse_graphql_product, parse_webhook_product
from reclift.data.learning import LearnedModel
from reclift.data.serving import ROUND_TRIP_KEYS, ServingContext
from reclift.learning import Performance, Prior
from reclift.logic.recommendations import parse_query, plan_candidate_reads, recommend
from reclift.ranking import Candidate, Scorer, rank
from reclift.recids import RecIds
from reclift.rules import (
    MAX_PINS,
    MAX_PRODUCT_IDS,
    MerchantRules,
    RulesError,
    excluded_by_rules,
    merge_rules,
    stored_form,
    stored_rules,
)
from reclift.settings import ShopSettings
from tests.unit.test_recommendations import Reader, seller

EMPTY = {
    "exclude": {"product_ids": [], "tags": [], "product_types": [], "vendors": []},
    "pin": {"product": [], "cart": [], "home": []},
    "never_blacklist": [],
}


# ------------------------------------------------------------------------------------------------ parsing
def test_given_no_rules_then_every_list_is_present_and_empty() -> None:
    assert MerchantRules().model_dump() == EMPTY


def test_given_a_partial_change_then_only_the_lists_it_names_are_replaced() -> None:
    rules = merge_rules(MerchantRules(), {"exclude": {"tags": ["Sale"], "vendors": ["Acme"]}, "pin": {"home": [5]}})

    changed = merge_rules(rules, {"exclude": {"tags": ["clearance"]}, "never_blacklist": ["gid://shopify/Product/7"]})

    assert changed.model_dump() == {
        "exclude": {"product_ids": [], "tags": ["clearance"], "product_types": [], "vendors": ["acme"]},
        "pin": {"product": [], "cart": [], "home": ["5"]},
        "never_blacklist": ["7"],
    }


def test_given_names_then_they_are_compared_without_case_or_extra_spaces_and_deduplicated() -> None:
    rules = merge_rules(MerchantRules(), {"exclude": {"tags": [" Gift  Wrap ", "gift wrap", "SALE"]}})

    assert rules.exclude.tags == ["gift wrap", "sale"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"exclude": {"product_ids": ["1", "2", "shirt"]}}, "exclude.product_ids[2]"),
        ({"exclude": {"product_ids": ["gid://shopify/Order/4"]}}, "exclude.product_ids[0]"),
        ({"pin": {"cart": [1, True]}}, "pin.cart[1]"),
        ({"never_blacklist": [1.5]}, "never_blacklist[0]"),
        ({"exclude": {"brands": []}}, "exclude.brands"),
        ({"pins": {}}, "pins"),
        ({"pin": {"checkout": []}}, "pin.checkout"),
        ({"exclude": {"tags": "sale"}}, "exclude.tags"),
        ({"exclude": {"tags": [""]}}, "exclude.tags[0]"),
        ({"exclude": {"vendors": ["v" * 256]}}, "exclude.vendors[0]"),
        ({"exclude": {"product_types": [None]}}, "exclude.product_types[0]"),
        ({"exclude": []}, "exclude"),
        ({"pin": {"product": [str(n) for n in range(MAX_PINS + 1)]}}, "pin.product"),
        ({"never_blacklist": [str(n) for n in range(MAX_PRODUCT_IDS + 1)]}, "never_blacklist"),
        ({"exclude": {"tags": [f"t{n}" for n in range(101)]}}, "exclude.tags"),
    ],
)
def test_given_a_malformed_change_then_the_error_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RulesError) as raised:
        merge_rules(MerchantRules(), change)

    assert raised.value.field == field


def test_given_a_body_that_is_not_an_object_then_it_is_refused() -> None:
    with pytest.raises(RulesError) as raised:
        merge_rules(MerchantRules(), ["1"])

    assert raised.value.field == "body"


def test_given_rules_then_only_their_non_empty_lists_are_stored_and_read_back_alike() -> None:
    rules = merge_rules(MerchantRules(), {"exclude": {"tags": ["sale"]}, "pin": {"product": ["3", "2"]}})

    stored = stored_form(rules)

    assert stored == {"exclude": {"tags": ["sale"]}, "pin": {"product": ["3", "2"]}}
    assert stored_rules(stored) == rules
    assert stored_form(MerchantRules()) == {}


def test_given_stored_rules_with_a_part_that_no_longer_validates_then_the_rest_is_kept() -> None:
    rules = stored_rules({"exclude": {"tags": ["sale"]}, "pin": {"home": ["x"]}, "retired": True})

    assert rules.exclude.tags == ["sale"]
    assert rules.pin.home == []


@given(st.lists(st.one_of(st.integers(min_value=0, max_value=10**12), st.text(max_size=8)), max_size=8))
def test_any_list_of_ids_is_either_kept_as_digit_strings_or_refused_naming_an_element(values: list[Any]) -> None:
    valid = all(isinstance(v, int) or re.fullmatch("[0-9]{1,20}", v.strip()) for v in values)
    if valid:
        rules = merge_rules(MerchantRules(), {"exclude": {"product_ids": values}})
        assert all(product.isdigit() for product in rules.exclude.product_ids)
    else:
        with pytest.raises(RulesError, match=r"^exclude\.product_ids\[\d+\]: "):
            merge_rules(MerchantRules(), {"exclude": {"product_ids": values}})


def test_given_a_product_matching_a_rule_then_it_is_excluded_and_gift_cards_always_are() -> None:
    rules = merge_rules(
        MerchantRules(),
        {"exclude": {"product_ids": ["1"], "tags": ["Sale"], "product_types": ["Socks"], "vendors": ["Acme"]}},
    )

    assert excluded_by_rules(rules, "1")
    assert excluded_by_rules(rules, "2", tags=("new", "sale"))
    assert excluded_by_rules(rules, "2", product_type="socks")
    assert excluded_by_rules(rules, "2", vendor="acme")
    assert excluded_by_rules(MerchantRules(), "2", gift_card=True)
    assert not excluded_by_rules(rules, "2", tags=("new",), product_type="shirts", vendor="other")


# ------------------------------------------------------------------------------------------------ the catalog
def test_given_a_webhook_product_then_its_tags_type_and_vendor_are_kept_for_the_rules() -> None:
    listing = parse_webhook_product(
        {
            "id": 7,
            "updated_at": "2026-11-26T08:30:00-05:00",
            "status": "active",
            "product_type": "Shirts",
            "vendor": "Acme ",
            "tags": "example, Mens,  t-shirt,,example",
            "variants": [{"price": "19.99", "inventory_quantity": 3}],
        }
    )

    assert (listing.product_type, listing.vendor, listing.tags) == ("shirts", "acme", ("example", "mens", "t-shirt"))
    assert listing.recommendable
    assert not listing.gift_card


def test_given_a_gift_card_then_it_is_kept_in_the_catalog_but_never_recommendable() -> None:
    node = {
        "id": "gid://shopify/Product/9",
        "updatedAt": "2026-11-26T13:30:00Z",
        "status": "ACTIVE",
        "isGiftCard": True,
        "tags": ["Gift"],
        "variants": {"nodes": [{"price": "25.00", "inventoryQuantity": 0, "inventoryItem": {"tracked": False}}]},
    }
    webhook = {
        "id": 10,
        "updated_at": "2026-11-26T08:30:00-05:00",
        "status": "active",
        "product_type": "Gift Card",
        "variants": [{"price": "25.00", "inventory_quantity": 1}],
    }

    assert parse_graphql_product(node).gift_card
    assert not parse_graphql_product(node).recommendable
    assert parse_webhook_product(webhook).gift_card
    assert not parse_webhook_product(webhook).recommendable
    assert parse_graphql_product(node | {"isGiftCard": False}).recommendable


# ------------------------------------------------------------------------------------------------ ranking
SETTINGS = ShopSettings(policy="seed", holdout_share=0.0)


def scorer(*performances: Performance, protected: frozenset[str] = frozenset()) -> Scorer:
    return Scorer(
        settings=SETTINGS,
        performance={p.product_id: p for p in performances},
        prior=None,
        never_blacklisted=protected,
    )


def blacklisted(product_id: str) -> Performance:
    performance = seller(product_id, 0)
    return Performance(**(performance.__dict__ | {"blacklisted": True, "confidence": 0.1}))


def test_given_pins_then_they_come_first_in_their_order_in_either_arm_and_say_so() -> None:
    similar = [Candidate("2", 0.9), Candidate("3", 0.5)]
    fill = [Candidate("8", 0.4, source="catalog"), Candidate("9", 1.0, source="best_seller")]
    pinned = [Candidate("7", 1.0, source="pinned"), Candidate("3", 1.0, source="pinned")]

    for arm in ("learning", "holdout"):
        ranked = rank(similar, fill, scorer(), arm=arm, limit=4, exclude=set(), rng=random.Random(1), pinned=pinned)

        assert [(r.product_id, r.source) for r in ranked] == [
            ("7", "pinned"),
            ("3", "pinned"),
            ("2", "similar"),
            ("8", "catalog"),
        ]


def test_given_catalog_neighbours_then_they_fill_before_best_sellers_whatever_their_scores() -> None:
    fill = [Candidate("9", 1.0, source="best_seller"), Candidate("8", 0.1, source="catalog")]

    ranked = rank([Candidate("2", 0.5)], fill, scorer(), arm="learning", limit=3, exclude=set(), rng=random.Random(1))

    assert [(r.product_id, r.source) for r in ranked] == [("2", "similar"), ("8", "catalog"), ("9", "best_seller")]


def test_given_a_never_blacklisted_product_then_the_blacklist_does_not_drop_it() -> None:
    similar = [Candidate("2", 0.9), Candidate("3", 0.5)]

    dropped = rank(similar, [], scorer(blacklisted("2")), arm="learning", limit=2, exclude=(), rng=random.Random(1))
    kept = rank(
        similar,
        [],
        scorer(blacklisted("2"), protected=frozenset({"2"})),
        arm="learning",
        limit=2,
        exclude=(),
        rng=random.Random(1),
    )

    assert [r.product_id for r in dropped] == ["3"]
    assert [r.product_id for r in kept] == ["2", "3"]


# ------------------------------------------------------------------------------------------------ the request
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
REC_IDS = RecIds.of_secrets(["hush"])
MODEL = LearnedModel("2026-11-26", "bayes", Prior(1, 99), Decimal(10), [seller("9", 30), seller("8", 20)], 2, 0)


def listing(product_id: str, **extra: Any) -> Listing:
    fields: dict[str, Any] = {
        "product_id": product_id,
        "title": f"Product {product_id}",
        "handle": f"product-{product_id}",
        "status": ProductStatus.ACTIVE,
        "price": Decimal(10),
        "available": True,
        "image": None,
        "updated_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    return Listing(**(fields | extra))


def served(context: ServingContext, listings: dict[str, Listing], **params: str) -> list[tuple[str, str]]:
    query = parse_query({"limit": "6", "placement": "product", "product_id": "1", **params})
    result = recommend(
        "shop.myshopify.com", None, query, Reader(context, listings), random.Random(1), rec_ids=REC_IDS, now=NOW
    )
    return [(p["product_id"], p["source"]) for p in result["products"]]


def test_given_rules_then_excluded_products_never_appear_and_pins_come_first_while_for_sale() -> None:
    rules = merge_rules(
        MerchantRules(),
        {
            "exclude": {"product_ids": ["3"], "tags": ["hidden"], "vendors": ["Rival"]},
            "pin": {"product": ["20", "21", "22", "1", "4"], "cart": ["30"]},
        },
    )
    context = ServingContext(
        settings=SETTINGS,
        model=MODEL,
        similar={"1": [("2", 0.6), ("3", 0.5), ("4", 0.4), ("5", 0.3), ("6", 0.2)]},
        rules=rules,
    )
    listings = {p: listing(p) for p in ("2", "3", "4", "20", "8", "9", "30")} | {
        "5": listing("5", tags=("hidden",)),
        "6": listing("6", vendor="rival"),
        "21": listing("21", available=False),  # sold out: not shown while it is
        "9": listing("9", gift_card=True),  # a best seller, but a gift card
    }  # 22: the catalog has not heard of it, so it is not known to be for sale

    assert served(context, listings) == [
        ("20", "pinned"),
        ("4", "pinned"),  # pinned and similar: shown once, where the pin puts it
        ("2", "similar"),
        ("8", "best_seller"),
    ]


def test_given_too_few_co_purchases_then_catalog_neighbours_come_before_best_sellers() -> None:
    context = ServingContext(
        settings=SETTINGS,
        model=MODEL,
        similar={"1": [("2", 0.6)]},
        catalog_similar={"1": [("9", 0.7), ("5", 0.6), ("2", 0.5), ("6", 0.4)]},
    )
    listings = {p: listing(p) for p in ("2", "5", "8", "9")} | {"6": listing("6", status=ProductStatus.DRAFT)}

    assert served(context, listings, limit="4") == [
        ("2", "similar"),
        ("9", "catalog"),
        ("5", "catalog"),
        ("8", "best_seller"),
    ]


def test_given_pins_and_catalog_neighbours_then_the_second_round_trip_stays_within_its_keys() -> None:
    similar = [Candidate(str(n), 1 - n / 100) for n in range(100, 160)]
    neighbours = [Candidate(str(n), 0.5, source="catalog") for n in range(200, 260)]
    fill = [Candidate(str(n), 0.5, source="best_seller") for n in range(300, 350)]
    pins = [str(n) for n in range(400, 420)]

    reads = plan_candidate_reads(similar, fill, set(), limit=20, exclude=set(), pinned=pins, neighbours=neighbours)

    assert len(reads.catalog_ids) + len(reads.performance_ids) <= ROUND_TRIP_KEYS
    assert reads.pinned == pins
    assert set(pins) <= set(reads.catalog_ids)
    assert reads.catalog_ids[: len(pins)] == pins


def test_given_enough_co_purchases_then_no_catalog_neighbour_takes_a_key() -> None:
    similar = [Candidate(str(n), 1 - n / 100) for n in range(10, 20)]
    neighbours = [Candidate("50", 0.9, source="catalog")]

    reads = plan_candidate_reads(similar, [], set(), limit=4, exclude=set(), neighbours=neighbours)

    assert "50" not in reads.catalog_ids
    assert all(c.source != "catalog" for c in reads.fill)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
rule_keys = st.sampled_from(["exclude", "pin", "never_blacklist", "product_ids", "tags", "product", "home", ""])


@given(
    st.one_of(
        json_values,
        st.dictionaries(rule_keys, json_values | st.dictionaries(rule_keys, json_values, max_size=3), max_size=3),
    )
)
def test_any_json_body_either_gives_rules_with_every_list_or_an_error_naming_a_field(body: Any) -> None:
    outcome: MerchantRules | RulesError
    try:
        outcome = merge_rules(MerchantRules(), body)
    except RulesError as exc:
        outcome = exc
    if isinstance(outcome, RulesError):
        top = outcome.field.split(".")[0].split("[")[0]
        assert outcome.field
        assert top in ("body", "exclude", "pin", "never_blacklist") or (isinstance(body, dict) and top in body)
    else:
        assert set(outcome.model_dump()) == set(EMPTY)


def test_given_no_learning_run_yet_then_no_key_goes_to_performance_items() -> None:
    similar = [Candidate("2", 0.5)]
    neighbours = [Candidate("3", 0.4, source="catalog")]

    before = plan_candidate_reads(similar, [], set(), limit=4, exclude=set(), neighbours=neighbours)
    first_day = plan_candidate_reads(
        similar, [], set(), limit=4, exclude=set(), neighbours=neighbours, read_performance=False
    )

    assert before.performance_ids == ["2", "3"]
    assert first_day.performance_ids == []
    assert first_day.catalog_ids == ["2", "3"]


def test_given_a_gift_card_in_memory_when_a_later_webhook_cannot_tell_then_it_stays_a_gift_card() -> None:
    from benchmarks.memory_store import MemoryStore

    store = MemoryStore()
    store.save_listing("s.myshopify.com", listing("9", gift_card=True))
    later = listing("9", updated_at=datetime(2026, 11, 2, tzinfo=UTC), title="Renamed")

    assert store.save_listing("s.myshopify.com", later)
    kept = store.catalog_listings("s.myshopify.com", ["9"])["9"]
    assert kept.title == "Renamed"
    assert kept.gift_card
