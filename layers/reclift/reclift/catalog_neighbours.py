"""Catalog neighbours: a product's day-one candidates, before its co-purchases say anything (DESIGN.md §3).

When co-purchase gives a placement fewer candidates than slots (a new shop, a new or rarely bought product), the
products most like it in the catalog come before the shop's best sellers. Computed nightly by the similarity job
from the shop's catalog and stored beside the co-purchase neighbours, so the recommendation request reads them in
the item it reads anyway (no extra key, no extra round trip).

Likeness, from what the catalog keeps of a product:
- affinity = 0.6 × [same product type] + 0.2 × [same vendor] + 0.2 × Jaccard(tags), in [0, 1]. The product type
  weighs more than a vendor and every tag together (0.6 > 0.4): a product of the same type always comes first, as
  merchants arrange their own "similar products" (by type, then brand or tags). Collections are not in the catalog
  (the product webhooks do not carry them), so they do not count.
- near in price: within a factor of 2 either way (a 30.00 product's neighbours cost 15.00 to 60.00). Shoppers
  compare within a price band, and a recommendation far above it rarely converts, one far below it lowers the
  basket. On a log scale, since prices are: with the simulation's log-normal prices (σ 0.6), the band is
  ±1.15 σ, about 58 % of a shop's products for a median one — narrow enough to mean "comparable", wide enough to
  leave a pool. A product with no known price is not held to the band.
- score = affinity × (0.8 + 0.2 × closeness), closeness = 1 − |ln(p₁ / p₂)| / ln 2 (0.5 when a price is unknown):
  the price only orders products of equal affinity, never lifts one over a product of the same type.

Cost: each product is compared with at most `window` products of each of its groups (its type, its vendor, its
first tags), nearest in price first, not with the whole catalog; when the type alone gives `top` products in the
price band, nothing else can beat them and the other groups are skipped. About 100k products × a few hundred
comparisons: a minute or two of the nightly job, within its 15 minutes.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from reclift.catalog import Listing
from reclift.similarity import id_order

TOP = 20  # a widget shows at most 20 products
WINDOW = 40  # products of one group compared with each product: those nearest in price
MAX_TAG_GROUPS = 10  # a product's first tags that find it neighbours (all its tags count in the Jaccard)
PRICE_BAND = 2.0
TYPE_WEIGHT, VENDOR_WEIGHT, TAGS_WEIGHT = 0.6, 0.2, 0.2
UNKNOWN_CLOSENESS = 0.5


@dataclass(frozen=True)
class _Product:
    product_id: str
    log_price: float | None
    product_type: str | None
    vendor: str | None
    tags: frozenset[str]

    @classmethod
    def of(cls, listing: Listing) -> _Product:
        price = listing.price
        return cls(
            product_id=listing.product_id,
            log_price=math.log(float(price)) if price is not None and price > 0 else None,
            product_type=listing.product_type or None,
            vendor=listing.vendor or None,
            tags=frozenset(listing.tags),
        )

    def groups(self) -> list[tuple[str, str]]:
        keys = [("type", self.product_type)] if self.product_type else []
        keys += [("vendor", self.vendor)] if self.vendor else []
        return keys + [("tag", tag) for tag in sorted(self.tags)[:MAX_TAG_GROUPS]]


def likeness(a: _Product, b: _Product) -> float:
    """The score of `b` as `a`'s neighbour; 0 when nothing is shared or the prices are too far apart."""
    affinity = (
        TYPE_WEIGHT * (a.product_type is not None and a.product_type == b.product_type)
        + VENDOR_WEIGHT * (a.vendor is not None and a.vendor == b.vendor)
        + (TAGS_WEIGHT * len(a.tags & b.tags) / len(a.tags | b.tags) if a.tags and b.tags else 0.0)
    )
    if affinity <= 0:
        return 0.0
    if a.log_price is None or b.log_price is None:
        closeness = UNKNOWN_CLOSENESS
    else:
        closeness = 1 - abs(a.log_price - b.log_price) / math.log(PRICE_BAND)
        if closeness < 0:
            return 0.0
    return round(affinity * (0.8 + 0.2 * closeness), 6)


@dataclass(frozen=True)
class _Group:
    keys: list[float]  # log prices, ascending (an unknown price sorts at the group's median)
    members: list[_Product]

    @classmethod
    def of(cls, members: list[_Product]) -> _Group:
        known = sorted(p.log_price for p in members if p.log_price is not None)
        median = known[len(known) // 2] if known else 0.0
        ordered = sorted(
            members, key=lambda p: (median if p.log_price is None else p.log_price, id_order(p.product_id))
        )
        return cls([median if p.log_price is None else p.log_price for p in ordered], ordered)

    def nearest(self, log_price: float | None, window: int) -> list[_Product]:
        """The `window` members nearest in price (around the group's median for an unknown price)."""
        centre = self.keys[len(self.keys) // 2] if log_price is None else log_price
        count = len(self.keys)
        low = high = bisect.bisect_left(self.keys, centre)
        while high - low < window and (low > 0 or high < count):
            if low > 0 and (high >= count or centre - self.keys[low - 1] <= self.keys[high] - centre):
                low -= 1
            else:
                high += 1
        return self.members[low:high]


def catalog_neighbours(
    listings: Iterable[Listing], *, top: int = TOP, window: int = WINDOW
) -> dict[str, list[tuple[str, float]]]:
    """Each product's `top` catalog neighbours, best first (ties by product id), among the products that can be
    recommended (active, for sale, not gift cards). Every product of the catalog gets its list, sold-out and draft
    ones included (their pages are still visited); a product sharing nothing with any other gets none."""
    everyone = [listing for listing in listings if not listing.deleted]
    offered = [_Product.of(listing) for listing in everyone if listing.recommendable]
    members: dict[tuple[str, str], list[_Product]] = defaultdict(list)
    for product in offered:
        for key in product.groups():
            members[key].append(product)
    groups = {key: _Group.of(products) for key, products in members.items()}
    result: dict[str, list[tuple[str, float]]] = {}
    for listing in everyone:
        product = _Product.of(listing)
        scores: dict[str, float] = {}
        for key in product.groups():
            group = groups.get(key)
            if group is None:
                continue
            for other in group.nearest(product.log_price, window):
                if other.product_id != product.product_id and other.product_id not in scores:
                    scores[other.product_id] = likeness(product, other)
            if key[0] == "type" and sum(score > 0 for score in scores.values()) >= top:
                break  # a product of the same type in the band outscores any product of another type
        found = [(other, score) for other, score in scores.items() if score > 0]
        best = sorted(found, key=lambda item: (-item[1], id_order(item[0])))[:top]
        if best:
            result[product.product_id] = best
    return result
