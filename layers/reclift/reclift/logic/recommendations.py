"""The recommendation request: candidates → exclusions → the shop's policy → top N, with a rec id to carry back."""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from reclift.data.serving import MAX_CANDIDATES, ServingContext, ServingReader
from reclift.http import BadRequest
from reclift.ids import shopify_id
from reclift.learning import Performance
from reclift.money import money_text
from reclift.ranking import Candidate, Scorer, assign_arm, new_rec_id, rank
from reclift.similarity import combine
from reclift.tracking import Key, ProductId

MAX_CART_PRODUCTS = 50


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


def best_seller_candidates(sellers: list[Performance]) -> list[Candidate]:
    """Best sellers as candidates: their base score is their share of the top seller's purchases."""
    top = max((p.purchases for p in sellers), default=0)
    return [
        Candidate(product_id=p.product_id, similarity=round(p.purchases / top, 6) if top else 0.0, price=p.price)
        for p in sellers
    ]


def context_products(query: RecommendationQuery) -> list[str]:
    """The products a placement recommends around: the product page's product, or the cart's products. The home
    placement's come with the visitor's profile (the neighbours of their recent views and purchases)."""
    if query.placement == "product" and query.product_id:
        return [query.product_id]
    if query.placement == "cart":
        return list(query.cart_product_ids)
    return []


def similar_candidates(query: RecommendationQuery, context: ServingContext, exclude: set[str]) -> list[Candidate]:
    """Candidates by co-purchase similarity to the placement's products, combined (best first)."""
    if query.placement == "home":
        lists = context.profile_neighbours
    else:
        lists = [context.similar[p] for p in context_products(query) if p in context.similar]
    return [
        Candidate(product_id=product_id, similarity=score)
        for product_id, score in combine(lists, exclude=exclude, limit=MAX_CANDIDATES)
    ]


def recommend(
    shop: str, customer_id: str | None, query: RecommendationQuery, reader: ServingReader, rng: random.Random
) -> dict[str, Any]:
    """Two round trips at most: the context (settings, model, profiles, the placement's products' neighbours), then
    the candidates' own items."""
    context = reader.context(
        shop, visitor_id=query.visitor_id, customer_id=customer_id, products=context_products(query)
    )
    settings, model = context.settings, context.model
    arm = assign_arm(shop, query.visitor_id, settings.holdout_share)
    exclude = {*query.cart_product_ids, *context.purchased}
    if query.product_id:
        exclude.add(query.product_id)

    known: dict[str, Performance] = {p.product_id: p for p in model.best_sellers} if model else {}
    similar = similar_candidates(query, context, exclude)
    unknown = [candidate.product_id for candidate in similar if candidate.product_id not in known]
    if unknown:
        known |= reader.candidates(shop, unknown, run=model.run if model else None).performance
    fill = best_seller_candidates(model.best_sellers if model else [])
    scorer = Scorer(
        settings=settings,
        performance=known,
        prior=model.prior if model else None,
        fallback_price=model.median_price if model else None,
    )
    ranked = rank(similar, fill, scorer, arm=arm, limit=query.limit, exclude=exclude, rng=rng)
    products: list[dict[str, Any]] = []
    for position, item in enumerate(ranked, start=1):
        product: dict[str, Any] = {"product_id": item.product_id, "score": item.score, "position": position}
        performance = known.get(item.product_id)
        if performance is not None and performance.price is not None:
            product["price"] = money_text(performance.price)
        products.append(product)
    return {
        "rec_id": new_rec_id(arm),
        "arm": arm,
        "policy": settings.policy if arm == "learning" else "static",
        "placement": query.placement,
        "products": products,
    }
