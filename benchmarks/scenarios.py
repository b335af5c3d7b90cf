"""The store simulation's world (DESIGN.md §3, "The store simulation"): every part a flag, and the named presets.

A scenario is only a set of flag values over `World`'s defaults; nothing here is tuned to one seed. The defaults
are the ones DESIGN.md names (price log-normal with median 30 and σ 0.6, CTR ~ Beta(2, 38), CVR ~ Beta(1.5, 98.5),
a 1/√slot position effect, 12 related products per product, bought together with it at rates whose rank correlation
with the related product's true value is about 0.25, 4 slots); the rest are choices the design leaves open, each
documented where it is declared.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class World:
    """Everything that shapes one simulated store. Field names are the CLI flags (`--visitors-per-day` …)."""

    products: int = 400
    visitors_per_day: int = 2_500
    days: int = 28
    seed: int = 1
    # catalog
    price_median: float = 30.0
    price_sigma: float = 0.6
    ctr_alpha: float = 2.0
    ctr_beta: float = 38.0
    cvr_alpha: float = 1.5
    cvr_beta: float = 98.5
    # click and purchase probabilities at slot s are multiplied by s^(−position_exponent): 0.5 is 1/√slot
    position_exponent: float = 0.5
    # candidates
    related_per_product: int = 12
    similarity_rank_correlation: float = 0.25  # Spearman with the true expected revenue per impression
    similarity_sigma: float = 0.5  # spread of log similarity: Jaccard-like scores, a few times apart in one list
    slots: int = 4
    # A product shown where it is not related to the page (a best seller filling a slot) is clicked and bought at
    # this fraction of its rates. Without it the world has no context: the best widget would show the same few best
    # sellers on every page, a policy could beat the oracle by blacklisting its way into them, and related lists
    # would not matter.
    unrelated_factor: float = 0.3
    # visitors
    zipf_exponent: float = 1.0  # landing popularity ∝ 1 / popularity-rank^exponent, independent of the true rates
    rec_id_share: float = 0.8  # buyers whose cart line carries `_rec_id` (the rest are credited by the last click)
    # the learning policies' shop setting (production's default, 10 %); static serves every visitor as holdout
    holdout_share: float = 0.1
    # orders placed without a widget (the store's other traffic): their baskets make the co-purchase similarity
    # and the best sellers, as a shop's orders do. `history_days` of them come before the install (the backfill).
    organic_orders_per_day: int = 200
    history_days: int = 90
    co_purchase_rate: float = 0.1  # mean chance that a related product joins an order of the landing product
    # the share of orders (with a widget or without) whose `landing_site` names the product page the buyer landed on,
    # as Shopify's does for a visit that entered there; the others name the home page. Only the similarity job's
    # landed counts read it (the context policy's prior): no draw of the world depends on it.
    landing_page_share: float = 0.5
    # recovery: on day `jump_day` (0-based; −1 = none) one product's true CVR jumps from `jump_cvr_before`
    jump_day: int = -1
    jump_cvr_before: float = 0.002
    jump_cvr_after: float = 0.06
    # categories: products belong to `product_types` types (0 = none: the catalog carries no type, vendor or tags,
    # and related products are drawn from the whole catalog, as before types existed), of about equal size, and
    # each to one of `vendors` vendors with `tags_per_product` tags out of `tag_pool`, vendor and tags independent of
    # the type and of what is related (the catalog neighbours' noise). Each of a product's related products is of
    # its own type with probability `related_same_type` (while its type has products left), else of another type.
    product_types: int = 0
    related_same_type: float = 0.8
    vendors: int = 8
    tag_pool: int = 24
    tags_per_product: int = 2
    # 1: also play the judged policy with the similarity job's candidate sources withheld from serving (co-purchase
    # only: no catalog neighbours; best sellers alone: neither), to measure what each source brings.
    compare_sources: int = 0
    # context: how well a related product sells depends on the page it is shown on (a tea strainer on a teapot's page,
    # not on a phone case's). Shown on page p, related product c is clicked and bought at its rates × a pair effect
    # e(p, c), log-normal with log-sd about `pair_affinity_sigma` (0 = none: the world without context), scaled per
    # product so that its mean effect over the pages it is related to is 1 (its own rates still mean what they did),
    # and whose log then has Pearson correlation `pair_affinity_correlation` with the pair's log co-purchase rate
    # (the rate its organic orders use). An unrelated pair keeps `unrelated_factor`.
    pair_affinity_sigma: float = 0.0
    pair_affinity_correlation: float = 0.5
    # views: each visitor also views on average `views_per_visit` more products (0 = none, and no view events at all;
    # else the landing's view too), a trail through the landing's related products, each next one chosen with weight
    # e(p, c)^`view_affinity_exponent` (0: co-views carry no pair signal), sent as the storefront's `view` events.
    views_per_visit: float = 0.0
    view_affinity_exponent: float = 1.0

    def with_flags(self, **flags: Any) -> World:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(flags) - known)
        if unknown:
            raise ValueError(f"unknown world flags: {', '.join(unknown)}")
        return replace(self, **{key: value for key, value in flags.items() if value is not None})


# Presets: only the flags that differ from World's defaults. `recovery` puts its jump at mid-run (see scenario()).
SCENARIOS: dict[str, dict[str, Any]] = {
    "steady": {"products": 400, "visitors_per_day": 2_500},
    "recovery": {"products": 400, "visitors_per_day": 2_500, "jump_day": 0},
    "small": {"products": 120, "visitors_per_day": 300, "organic_orders_per_day": 30},
    "large": {"products": 5_000, "visitors_per_day": 10_000, "organic_orders_per_day": 800},
    # A new shop: a week of few orders before the install (the backfill's), few orders a day after, a catalog of
    # 12 types whose related products are mostly of the same type; judged on its first days and its first two weeks.
    "launch": {
        "products": 240,
        "visitors_per_day": 400,
        "days": 14,
        "organic_orders_per_day": 12,
        "history_days": 7,
        "product_types": 12,
        "compare_sources": 1,
    },
    # A store with context, steady-sized: pair effects with log-sd 0.8, a little under that of the products' own
    # values (CVR × price, about 1.0), so a related product's best pages sell it 2-3 times as well as its average and
    # its worst at half or less, and a product-level learner sees only part of what the oracle sees; co-purchase half
    # tells the pairs apart (correlation 0.5: the similarity job's order already follows them in part); and three
    # more product views a visit, about a shopper's pages in a session, so that co-views carry the pair signal too.
    # Measured (14 days, seeds 101-103, gap closed on the learning arm over the last 7 days, co-purchase candidates
    # only): bayes 0.45 (0.34-0.58), seed 0.25; the same preset at σ 1e-6, with the same page-knowing oracle, bayes
    # 0.65, seed 0.29; steady, whose oracle ranks by product-level value alone, bayes 0.86, seed 0.39. Product-level
    # learning keeps about half of its lead over seed here (0.20 against 0.36).
    "context": {
        "products": 400,
        "visitors_per_day": 2_500,
        "pair_affinity_sigma": 0.8,
        "pair_affinity_correlation": 0.5,
        "views_per_visit": 3.0,
    },
}


def scenario(name: str, **flags: Any) -> World:
    """The preset `name` with `flags` (None = keep the preset's value) applied on top."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")
    world = World().with_flags(**SCENARIOS[name]).with_flags(**flags)
    if name == "recovery" and flags.get("jump_day") is None:
        # Mid-run whatever the run's length, so that learning has had half the run to demote the product.
        world = replace(world, jump_day=world.days // 2)
    return world
