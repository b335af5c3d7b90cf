"""The recommendation request: candidates (bought together, viewed together, catalog neighbours, best sellers) →
exclusions (the merchant's rules among them) → the shop's policy →
top N after the merchant's pinned products, with the rec id the server
issues for it (binding the shop, visitor, arm, placement, listed products and time) and the event fields that the
widget sends back with every event about it."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from reclift.catalog import Listing
from reclift.context import Landed
from reclift.data.serving import MAX_CANDIDATES, ROUND_TRIP_KEYS, ServingContext, ServingPort
from reclift.http import BadRequest
from reclift.ids import shopify_id
from reclift.learning import Performance
from reclift.logic.install import ShopNotInstalled
from reclift.money import money_text
from reclift.ranking import Candidate, Scorer, assign_arm, rank
from reclift.recids import RecIds
from reclift.rules import MAX_PINS, MerchantRules, excluded_by_rules
from reclift.similarity import combine, id_order
from reclift.tracking import REC_PRODUCTS_FIELD, Key, ProductId

MAX_CART_PRODUCTS = 50
MAX_PINNED = MAX_PINS


def _product_list(value: Any) -> Any:
    if isinstance(value, str):
        return [shopify_id(part, "Product") for part in value.split(",") if part.strip()]
    return value


class RecommendationQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    product_id: ProductId | None = None
    placement: Literal["product", "cart", "home"] = "product"
    limit: int = Field(default=4, ge=1, le=20)
    visitor_id: Key | None = None
    cart_product_ids: Annotated[list[str], BeforeValidator(_product_list)] = Field(
        default_factory=list, max_length=MAX_CART_PRODUCTS
    )

    @model_validator(mode="after")
    def _context_present(self) -> RecommendationQuery:
        if self.placement == "product" and self.product_id is None:
            raise ValueError("product_id: required for the product placement")
        return self


def parse_query(params: dict[str, str]) -> RecommendationQuery:
    try:
        return RecommendationQuery.model_validate({k: v for k, v in params.items() if v != ""})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"][:1])
        message = str(first["msg"])
        if not field:
            field, _, message = message.removeprefix("Value error, ").partition(": ")
        raise BadRequest(field, message) from exc


def context_products(query: RecommendationQuery) -> list[str]:
    """The products a placement recommends around: the product page's product, or the cart's products. The home
    placement's come with the visitor's profile (the neighbours of their recent views and purchases)."""
    if query.placement == "product" and query.product_id:
        return [query.product_id]
    if query.placement == "cart":
        return list(query.cart_product_ids)
    return []


def entered_shares(
    counts: Mapping[str, Landed], lists: Mapping[str, Sequence[tuple[str, float]]], products: Sequence[str]
) -> Callable[[str], float]:
    """A candidate's share (reclift.context.Landed) to the placement's products, from each product page's `counts`
    over its neighbour list in `lists`: the mean over those whose pages have counts, 0 where none has, as the night's
    prior reads it (`context.page_similarities`)."""
    pages = [counts[p].shares(lists.get(p, [])) for p in products if p in counts]

    def share(candidate: str) -> float:
        return sum(page(candidate) for page in pages) / len(pages) if pages else 0.0

    return share


def similar_candidates(query: RecommendationQuery, context: ServingContext, exclude: set[str]) -> list[Candidate]:
    """Candidates by co-purchase and co-view similarity to the placement's products (best first). Each source's
    lists are combined apart (`combine`), the co-view scores already multiplied by the shop's weight of co-view; a
    candidate's similarity is the sum of the two, its source the one that gave more (`similar` on a tie). Without
    co-view neighbours, exactly the co-purchase candidates. The home placement's come from the profile, which keeps
    co-purchase neighbours only. Each candidate's parts (the context policy's prior) add its landed and viewed-after
    shares."""
    products = context_products(query)  # none for home
    if query.placement == "home":
        lists = context.profile_neighbours
        viewed: list[tuple[str, float]] = []
    else:
        lists = [context.similar[p] for p in products if p in context.similar]
        viewed_lists = [context.viewed_similar[p] for p in products if p in context.viewed_similar]
        viewed = combine(viewed_lists, exclude=exclude, limit=MAX_CANDIDATES)
    landed = entered_shares(context.landed, context.similar, products)
    viewed_after = entered_shares(context.viewed_after, context.viewed_similar, products)
    copurchased = combine(lists, exclude=exclude, limit=MAX_CANDIDATES)
    if not viewed:
        return [
            Candidate(
                product_id=product_id,
                similarity=score,
                parts=(score, 0.0, landed(product_id), viewed_after(product_id)),
            )
            for product_id, score in copurchased
        ]
    parts: dict[str, tuple[float, float]] = {product_id: (score, 0.0) for product_id, score in copurchased}
    for product_id, score in viewed:
        parts[product_id] = (parts.get(product_id, (0.0, 0.0))[0], score)
    joined = sorted(parts.items(), key=lambda item: (-round(sum(item[1]), 6), id_order(item[0])))[:MAX_CANDIDATES]
    return [
        Candidate(
            product_id=product_id,
            similarity=round(bought + seen, 6),
            source="similar" if bought >= seen else "viewed_together",
            parts=(bought, seen, landed(product_id), viewed_after(product_id)),
        )
        for product_id, (bought, seen) in joined
    ]


def catalog_candidates(query: RecommendationQuery, context: ServingContext, exclude: set[str]) -> list[Candidate]:
    """The placement's products' catalog neighbours (same type, vendor or tags, near in price; precomputed by the
    similarity job), combined like the similar ones; for home, those of the visitor's recent products, which their
    profile carries beside their co-purchase neighbours."""
    if query.placement == "home":
        lists = context.profile_catalog_neighbours
    else:
        lists = [context.catalog_similar[p] for p in context_products(query) if p in context.catalog_similar]
    return [
        Candidate(product_id=product_id, similarity=score, source="catalog")
        for product_id, score in combine(lists, exclude=exclude, limit=MAX_CANDIDATES)
    ]


@dataclass(frozen=True)
class CandidateReads:
    """The candidates kept for ranking and the keys the second round trip reads for them."""

    similar: list[Candidate]
    fill: list[Candidate]  # catalog neighbours, then best sellers
    performance_ids: list[str]
    catalog_ids: list[str]
    pinned: list[str] = field(default_factory=list)


def plan_candidate_reads(
    similar: list[Candidate],
    fill: list[Candidate],
    known: set[str],
    *,
    limit: int,
    exclude: set[str],
    keys: int = ROUND_TRIP_KEYS,
    pinned: list[str] | None = None,
    neighbours: list[Candidate] | None = None,
    read_performance: bool = True,
) -> CandidateReads:
    """Share one BatchGetItem's keys out among the candidates. Every candidate needs its catalog item (is it still
    for sale, at what price, is it excluded by the merchant's rules, what to render); a similar product or catalog
    neighbour the model does not carry also needs its performance item. The merchant's pinned products come first
    (at most 20, their catalog items only: they are shown in their order, not ranked); the best sellers then get
    enough keys to fill every slot twice over (so blacklisted or sold-out ones can be skipped), the similar products
    the rest in their order; the catalog neighbours, only as many as the similar ones leave short of twice the slots
    (they are for a product with too few co-purchases); any keys left go to further best sellers. A candidate that
    gets no key is not offered: a product is recommended only when the catalog has been asked. Before the shop's first
    learning run (`read_performance` False) there is no performance to read: every key goes to the catalog."""
    fill = [c for c in fill if c.product_id not in exclude]
    similar = [c for c in similar if c.product_id not in exclude]
    pinned_ids = list(dict.fromkeys(p for p in pinned or [] if p not in exclude))[:MAX_PINNED]
    fill_first = fill[: max(2 * limit, 10)]
    catalog = dict.fromkeys([*pinned_ids, *(c.product_id for c in fill_first)])
    budget = keys - len(catalog)
    performance: dict[str, None] = {}

    def afford(candidate: Candidate) -> bool:
        nonlocal budget
        product = candidate.product_id
        unknown = read_performance and product not in known and product not in performance
        cost = (product not in catalog) + unknown
        if cost > budget:
            return False
        budget -= cost
        catalog[product] = None
        if unknown:
            performance[product] = None
        return True

    kept_similar: list[Candidate] = []
    for candidate in similar:
        if not afford(candidate):
            break
        kept_similar.append(candidate)
    similar_ids = {c.product_id for c in kept_similar}
    wanted = max(0, 2 * limit - len(kept_similar))
    kept_neighbours: list[Candidate] = []
    for candidate in neighbours or []:
        if len(kept_neighbours) >= wanted:
            break
        if candidate.product_id in exclude or candidate.product_id in similar_ids:
            continue
        if not afford(candidate):
            break
        kept_neighbours.append(candidate)
    kept_fill = list(fill_first)
    for candidate in fill[len(fill_first) :]:
        if candidate.product_id in catalog:
            kept_fill.append(candidate)
        elif budget > 0:
            budget -= 1
            catalog[candidate.product_id] = None
            kept_fill.append(candidate)
    return CandidateReads(kept_similar, kept_neighbours + kept_fill, list(performance), list(catalog), pinned_ids)


def unservable(listing: Listing, rules: MerchantRules) -> bool:
    """Never recommended: not for sale (or a gift card), or excluded by the merchant's tags, types or vendors."""
    return not listing.recommendable or excluded_by_rules(
        rules,
        listing.product_id,
        tags=listing.tags,
        product_type=listing.product_type,
        vendor=listing.vendor,
        gift_card=listing.gift_card,
    )


def priced(candidates: list[Candidate], listings: dict[str, Listing]) -> list[Candidate]:
    """Candidates valued at their catalog price where the catalog knows one."""
    return [
        Candidate(c.product_id, c.similarity, listing.price, c.source, c.parts)
        if (listing := listings.get(c.product_id)) is not None
        and listing.price is not None
        and listing.price != c.price
        else c
        for c in candidates
    ]


def recommend(
    shop: str,
    customer_id: str | None,
    query: RecommendationQuery,
    reader: ServingPort,
    rng: random.Random,
    *,
    rec_ids: RecIds,
    now: datetime,
) -> dict[str, Any]:
    """Two round trips at most: the context (settings, model, profiles, the placement's products' neighbours), then
    the candidates' own items (catalog listings, and performance the model does not carry). The rec id is signed,
    not stored: no third request. ShopNotInstalled for a shop that uninstalled reclift."""
    context = reader.context(
        shop,
        visitor_id=query.visitor_id,
        customer_id=customer_id,
        products=context_products(query),
        page=query.product_id if query.placement == "product" else None,
    )
    if context.uninstalled:
        raise ShopNotInstalled(shop)
    settings, model, rules = context.settings, context.model, context.rules
    arm = assign_arm(shop, query.visitor_id, settings.holdout_share)
    exclude = {*query.cart_product_ids, *context.purchased, *rules.exclude.product_ids}
    if query.product_id:
        exclude.add(query.product_id)

    known: dict[str, Performance] = dict(model.sellers_by_id) if model else {}
    similar = similar_candidates(query, context, exclude)
    reads = plan_candidate_reads(
        similar,
        model.seller_candidates if model else [],
        set(known),
        limit=query.limit,
        exclude=exclude,
        pinned=rules.pinned(query.placement),
        neighbours=catalog_candidates(query, context, exclude | {c.product_id for c in similar}),
        read_performance=model is not None,  # a run's performance items are only ever served with its model
    )
    items = reader.candidates(
        shop, performance_ids=reads.performance_ids, catalog_ids=reads.catalog_ids, run=model.run if model else None
    )
    known |= items.performance
    # Draft, archived, deleted, sold-out products and gift cards are never recommended, in either arm; nor is what
    # the merchant's rules exclude by tag, product type or vendor.
    exclude |= {product for product, listing in items.listings.items() if unservable(listing, rules)}
    scorer = Scorer(
        settings=settings,
        performance=known,
        prior=model.prior if model else None,
        fallback_price=model.median_price if model else None,
        never_blacklisted=frozenset(rules.never_blacklist),
        context=model.context if model else None,
        pair_ratios=context.pair_ratios,
    )
    # A pinned product is shown only while the catalog says it is for sale (one it has not heard of is not).
    pinned = [Candidate(p, similarity=1.0, source="pinned") for p in reads.pinned if p in items.listings]
    ranked = rank(
        priced(reads.similar, items.listings),
        priced(reads.fill, items.listings),
        scorer,
        arm=arm,
        limit=query.limit,
        exclude=exclude,
        rng=rng,
        pinned=priced(pinned, items.listings),
    )
    products: list[dict[str, Any]] = []
    for position, item in enumerate(ranked, start=1):
        product: dict[str, Any] = {
            "product_id": item.product_id,
            "score": item.score,
            "position": position,
            "source": item.source,
        }
        performance = known.get(item.product_id)
        if performance is not None and performance.price is not None:
            product["price"] = money_text(performance.price)
        if (listing := items.listings.get(item.product_id)) is not None:
            product |= listing.render_fields()
        products.append(product)
    listed = [item.product_id for item in ranked]
    rec_id = rec_ids.issue(
        shop=shop,
        visitor_id=query.visitor_id,
        arm=arm,
        placement=query.placement,
        products=listed,
        now=now,
        page=query.product_id if query.placement == "product" else None,
    )
    return {
        "rec_id": rec_id,
        "arm": arm,
        "policy": settings.policy if arm == "learning" else "static",
        "placement": query.placement,
        "products": products,
        # What the events about this response send back for the rec id to prove (the widget merges it into each).
        "event_fields": {REC_PRODUCTS_FIELD: listed},
    }
