"""Co-purchase and co-view similarity (DESIGN.md §3): baskets (or view sessions) → co-occurrence counts → Jaccard,
support and lift → the top neighbours of every product.

Definitions, over the weighted baskets of a shop's window (an order's basket weighs 1):
- n(A)        the weight of the baskets holding A;
- support     |A∩B|, the weight of the baskets holding both A and B;
- Jaccard     |A∩B| / |A∪B| = support / (n(A) + n(B) − support);
- lift        support × N / (n(A) × n(B)), N the total weight of the baskets.

"Bought instead" (a missed opportunity: the buyer bought A after being recommended B, C …) is a weaker sign of
co-interest than a shared basket: each (A, B) pair of it counts as a basket {A, B} of weight `bought_instead_weight`
(default 0.25: four such pairs weigh as much as one order holding both). The weighting keeps every figure a
Jaccard of weighted sets, so it stays in [0, 1] and symmetric.

A pair is kept when its support reaches `min_support`; each product keeps its `top` neighbours, ordered by Jaccard,
then support, then product id (ascending, numeric ids in numeric order), so equal inputs give equal lists.

Co-view similarity ("viewed together") is the same computation over sessions instead of baskets: a session is the
distinct products one visitor viewed on one (UTC) day, each session weighing 1, with the same minimum support and
top 50. A session is a visitor's day rather than a run of views split by a 30-minute gap because the day is what the
visitor's profile already keeps (its daily view cap counts by day): the job reads it from the profile, and no view
has to be stored with its time. A session lists a product once however often it was viewed, so one visitor viewing
two products all day adds 1 to their support, and below a support of 2 makes no neighbours alone.

Each source is weighted by what predicts sales in the shop (`source_weights`): the newest orders are held out, and
for every pair (A, B) bought together in them, where a source lists neighbours of A, it counts whether B was among
A's first `WEIGHT_TOP` neighbours (co-purchase from the older orders only, so it is not scored on what it learned
from). Each source's hit rate is shrunk toward the pooled rate (co-view's toward a share of it, as a view is a weaker
sign than a purchase) and co-view's weight is its rate over co-purchase's: a shop whose shoppers buy what they
viewed together weighs co-view up, one where views say little about baskets weighs it down.

Which way a pair goes, the baskets cannot say: a teapot and its strainer share their baskets both ways, and so do
two products bought with a third. Where an order names the product page its buyer's visit landed on (Shopify's
`landing_site`), it does: `landed_counts` counts, for each page's co-purchase neighbours, how many of the orders that
landed on the page bought each of them, and the context policy's prior reads their share (reclift.context.Landed).

The counting is numpy over integer codes: pairs of each basket size are generated as whole arrays, counted with one
sort, and ranked with one more, so a shop's million orders take about as long as scipy's sparse XᵀX on the same
baskets (benchmarks/similarity.py). numpy is imported by the functions that count, not by the module: the request
path uses `combine` and `id_order` and does not pay for numpy's import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from reclift.context import Landed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_MIN_SUPPORT = 2
DEFAULT_TOP = 50
DEFAULT_BOUGHT_INSTEAD_WEIGHT = 0.25
# Co-view neighbours' weight against co-purchase's (1) while the shop's orders say nothing of it: a shared session is
# a weaker sign than a shared basket.
DEFAULT_VIEWED_WEIGHT = 0.5
MAX_VIEWED_WEIGHT = 4.0
WEIGHT_HOLDOUT_SHARE = 0.2  # the newest orders that score the sources
WEIGHT_TOP = 10  # a source predicts a pair when it lists it among the first this many (a widget shows 4 to 20)
WEIGHT_PRIOR_PAIRS = 20.0  # the pairs of evidence each source's rate is shrunk with
# An order of hundreds of lines (a wholesale restock) says little about what goes together and would add tens of
# thousands of pairs: a basket counts its first products only.
MAX_BASKET_PRODUCTS = 100

IntArray: TypeAlias = "npt.NDArray[np.int64]"
FloatArray: TypeAlias = "npt.NDArray[np.float64]"


class WindowBasket(NamedTuple):
    """A stored order as the similarity job reads it: its distinct products, and the handle of the product page its
    buyer's visit landed on (None: another page, or not known)."""

    products: list[str]
    landing: str | None = None


def entered_counts(
    visits: Iterable[tuple[str | None, Iterable[str]]], lists: Mapping[str, Sequence[Neighbour]]
) -> dict[str, Landed]:
    """For every product with neighbours in `lists`: how many `visits` (each the product page it entered by, None if
    none, and the products it reached from there) entered on its page and how many of those reached each of its
    neighbours, with the shop's pooled share (Σ reached / Σ visits × neighbours, over the pages some visit entered
    on). Empty when no visit names a product page."""
    entered: dict[str, int] = {}
    reached: dict[tuple[str, str], int] = {}
    for page, products in visits:
        if page is None:
            continue
        entered[page] = entered.get(page, 0) + 1
        for product in set(products):
            if product != page:
                reached[(page, product)] = reached.get((page, product), 0) + 1
    counts = {
        page: tuple(reached.get((page, n.product_id), 0) for n in neighbours) for page, neighbours in lists.items()
    }
    chances = sum(entered.get(page, 0) * len(neighbours) for page, neighbours in lists.items())
    if chances == 0:
        return {}
    pooled = sum(map(sum, counts.values())) / chances  # a page no visit entered on counts nothing
    return {page: Landed(entered.get(page, 0), counts[page], pooled) for page in lists}


def landed_counts(
    baskets: Iterable[WindowBasket], handles: Mapping[str, str], lists: Mapping[str, Sequence[Neighbour]]
) -> dict[str, Landed]:
    """What the orders that landed on each product's page (their landing handle resolved to a product by `handles`)
    bought of its co-purchase neighbours `lists` (`entered_counts`). Empty when no basket names a product page: the
    shop's orders say nothing of where their buyers landed."""
    return entered_counts(
        ((handles.get(basket.landing) if basket.landing else None, basket.products) for basket in baskets), lists
    )


def viewed_after_counts(
    sessions: Iterable[Sequence[str]], lists: Mapping[str, Sequence[Neighbour]]
) -> dict[str, Landed]:
    """What the view sessions (each newest first, as `profiles.day_session` gives them) that began on each product's
    page went on to view of its co-view neighbours `lists` (`entered_counts`): a session began on the oldest of its
    views, and the others came after it. (A product viewed again moves to the front of its session, so a visitor who
    went back to the page they began on counts as having begun on the next one.) A session of one product entered and
    went nowhere."""
    return entered_counts(((session[-1], session[:-1]) for session in sessions if session), lists)


@dataclass(frozen=True)
class Neighbour:
    product_id: str
    jaccard: float
    support: float
    lift: float


def id_order(product_id: str) -> tuple[int, str]:
    """Numeric ids in numeric order (Shopify's ids are numbers), anything else after them by text."""
    return (len(product_id), product_id) if product_id.isdigit() else (1 << 30, product_id)


@dataclass(frozen=True)
class Baskets:
    """Baskets as compressed rows of product codes (without repeats) with a weight per row.
    `products[code]` is the product id; codes follow `id_order`, so comparing codes compares ids."""

    products: list[str]
    indptr: IntArray
    indices: IntArray
    weights: FloatArray | None = None  # None: every basket weighs 1

    @property
    def count(self) -> int:
        return len(self.indptr) - 1


def encode_baskets(baskets: Iterable[Sequence[str]], weights: Sequence[float] | None = None) -> Baskets:
    """Product ids → codes; repeats within a basket dropped; at most MAX_BASKET_PRODUCTS per basket."""
    import numpy as np

    rows = [list(dict.fromkeys(basket))[:MAX_BASKET_PRODUCTS] for basket in baskets]
    products = sorted({product for row in rows for product in row}, key=id_order)
    code = {product: index for index, product in enumerate(products)}
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(row) for row in rows], dtype=np.int64)
    indices = np.fromiter(map(code.__getitem__, [p for row in rows for p in row]), dtype=np.int64, count=indptr[-1])
    return Baskets(
        products=products,
        indptr=indptr,
        indices=indices,
        weights=None if weights is None else np.asarray(weights, dtype=np.float64),
    )


def join_baskets(orders: Sequence[Sequence[str]], bought_instead: Iterable[tuple[str, str]], weight: float) -> Baskets:
    """The orders' baskets (weight 1) and each bought-instead pair as a basket of two of weight `weight`."""
    pairs = [pair for pair in bought_instead if pair[0] != pair[1]] if weight > 0 else []
    if not pairs:
        return encode_baskets(orders)
    return encode_baskets([*orders, *pairs], [1.0] * len(orders) + [weight] * len(pairs))


@dataclass(frozen=True)
class NeighbourTable:
    """Every product's neighbours as arrays: rows `source`, sorted by source then rank."""

    products: list[str]
    frequency: FloatArray  # n(A) per product code
    source: IntArray
    target: IntArray
    jaccard: FloatArray
    support: FloatArray
    lift: FloatArray

    def as_lists(self) -> dict[str, list[Neighbour]]:
        lists: dict[str, list[Neighbour]] = {}
        products = self.products
        for source, target, jaccard, support, lift in zip(
            self.source.tolist(),
            self.target.tolist(),
            self.jaccard.tolist(),
            self.support.tolist(),
            self.lift.tolist(),
            strict=True,
        ):
            lists.setdefault(products[source], []).append(Neighbour(products[target], jaccard, support, lift))
        return lists


def _pairs(baskets: Baskets) -> tuple[IntArray, IntArray, FloatArray | None]:
    """Every unordered pair (low code, high code) of every basket, with its basket's weight."""
    import numpy as np

    sizes = np.diff(baskets.indptr)
    lows: list[IntArray] = []
    highs: list[IntArray] = []
    pair_weights: list[FloatArray] = []
    for size in np.unique(sizes[sizes >= 2]).tolist():
        rows = np.flatnonzero(sizes == size)
        matrix = baskets.indices[baskets.indptr[rows][:, None] + np.arange(size)]
        upper_i, upper_j = np.triu_indices(size, 1)
        first, second = matrix[:, upper_i].ravel(), matrix[:, upper_j].ravel()
        lows.append(np.minimum(first, second))  # rows are not sorted: each pair is keyed (low, high)
        highs.append(np.maximum(first, second))
        if baskets.weights is not None:
            pair_weights.append(np.repeat(baskets.weights[rows], len(upper_i)))
    if not lows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, None if baskets.weights is None else np.zeros(0)
    weights = None if baskets.weights is None else np.concatenate(pair_weights)
    return np.concatenate(lows), np.concatenate(highs), weights


def neighbour_table(
    baskets: Baskets, *, min_support: float = DEFAULT_MIN_SUPPORT, top: int = DEFAULT_TOP
) -> NeighbourTable:
    """Every product's top neighbours by Jaccard (ties: support, then product id)."""
    import numpy as np

    products = len(baskets.products)
    basket_weights = (
        np.ones(baskets.count) if baskets.weights is None else baskets.weights.astype(np.float64, copy=False)
    )
    frequency = np.bincount(
        baskets.indices, weights=np.repeat(basket_weights, np.diff(baskets.indptr)), minlength=products
    ).astype(np.float64, copy=False)
    total = float(basket_weights.sum())
    low, high, weights = _pairs(baskets)
    # One code per pair; int32 when it fits halves the sort's work.
    key_type = np.int32 if products * products < 2**31 else np.int64
    keys: npt.NDArray[np.signedinteger[Any]] = low.astype(key_type) * products + high.astype(key_type)
    if weights is None:
        keys.sort()
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else keys[:0]
        support = np.diff(np.append(starts, len(keys))).astype(np.float64)
    else:
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else keys[:0]
        support = np.add.reduceat(weights[order], starts) if len(keys) else np.zeros(0)
    unique = keys[starts].astype(np.int64)
    kept = support >= min_support - 1e-9
    unique, support = unique[kept], support[kept]
    low, high = unique // products, unique % products
    union = frequency[low] + frequency[high] - support
    jaccard = support / union
    lift = support * total / (frequency[low] * frequency[high])

    # Both directions, then one sort: by source, Jaccard descending, support descending, target ascending.
    source = np.concatenate((low, high))
    target = np.concatenate((high, low))
    jaccard = np.concatenate((jaccard, jaccard))
    support = np.concatenate((support, support))
    lift = np.concatenate((lift, lift))
    order = np.lexsort((target, -support, -jaccard, source))
    source, target, jaccard, support, lift = (a[order] for a in (source, target, jaccard, support, lift))
    # Rank within each source's run; keep the first `top`.
    group_start = np.flatnonzero(np.concatenate(([True], source[1:] != source[:-1]))) if len(source) else source[:0]
    run_lengths = np.diff(np.append(group_start, len(source)))
    rank = np.arange(len(source)) - np.repeat(group_start, run_lengths)
    keep = rank < top
    return NeighbourTable(
        products=baskets.products,
        frequency=frequency,
        source=source[keep],
        target=target[keep],
        jaccard=jaccard[keep],
        support=support[keep],
        lift=lift[keep],
    )


def similar_products(
    orders: Sequence[Sequence[str]],
    bought_instead: Iterable[tuple[str, str]] = (),
    *,
    bought_instead_weight: float = DEFAULT_BOUGHT_INSTEAD_WEIGHT,
    min_support: float = DEFAULT_MIN_SUPPORT,
    top: int = DEFAULT_TOP,
) -> dict[str, list[Neighbour]]:
    """Per product with any neighbour, its top neighbours, best first."""
    baskets = join_baskets(orders, bought_instead, bought_instead_weight)
    return neighbour_table(baskets, min_support=min_support, top=top).as_lists()


def combine(
    lists: Sequence[Sequence[tuple[str, float]]], *, exclude: Iterable[str] = (), limit: int
) -> list[tuple[str, float]]:
    """Several products' neighbour lists as one: each candidate's score is the mean of its similarity to every
    source (0 where a source does not list it), so a product close to the whole cart beats one close to a single
    item. Best first; ties by product id."""
    if not lists:
        return []
    excluded = set(exclude)
    totals: dict[str, float] = {}
    for neighbours in lists:
        for product_id, score in neighbours:
            if product_id not in excluded:
                totals[product_id] = totals.get(product_id, 0.0) + score
    # Rounded before ranking, so sums that differ only by float error tie and fall to the product id.
    means = {product_id: round(total / len(lists), 6) for product_id, total in totals.items()}
    return sorted(means.items(), key=lambda item: (-item[1], id_order(item[0])))[:limit]


@dataclass(frozen=True)
class SourceWeights:
    """What each candidate source's similarity is multiplied by (co-purchase is the unit), and the evidence."""

    viewed_together: float = DEFAULT_VIEWED_WEIGHT
    copurchase_hits: int = 0
    copurchase_pairs: int = 0
    viewed_hits: int = 0
    viewed_pairs: int = 0


def predicted_pairs(
    lists: Mapping[str, Sequence[Neighbour]], baskets: Iterable[Sequence[str]], *, top: int = WEIGHT_TOP
) -> tuple[int, int]:
    """(hits, pairs) over the baskets' ordered pairs (A, B) of distinct products where `lists` has neighbours of A:
    pairs where B is among A's first `top`."""
    firsts = {product: {n.product_id for n in neighbours[:top]} for product, neighbours in lists.items()}
    hits = pairs = 0
    for basket in baskets:
        products = list(dict.fromkeys(basket))[:MAX_BASKET_PRODUCTS]
        for product in products:
            listed = firsts.get(product)
            if listed is None:
                continue
            pairs += len(products) - 1
            hits += sum(1 for other in products if other != product and other in listed)
    return hits, pairs


def source_weights(copurchase: tuple[int, int], viewed: tuple[int, int]) -> SourceWeights:
    """Co-view's weight from each source's (hits, pairs) on held-out orders: rates shrunk with WEIGHT_PRIOR_PAIRS
    pairs toward the pooled rate (co-view's toward DEFAULT_VIEWED_WEIGHT of it), then co-view's rate over
    co-purchase's, at most MAX_VIEWED_WEIGHT. No hit at all: the default."""
    (c_hits, c_pairs), (v_hits, v_pairs) = copurchase, viewed
    evidence = SourceWeights(copurchase_hits=c_hits, copurchase_pairs=c_pairs, viewed_hits=v_hits, viewed_pairs=v_pairs)
    if c_hits + v_hits == 0:
        return evidence  # no source predicted a later basket: nothing to tell them apart
    pooled = (c_hits + v_hits) / (c_pairs + v_pairs)
    copurchase_rate = (c_hits + WEIGHT_PRIOR_PAIRS * pooled) / (c_pairs + WEIGHT_PRIOR_PAIRS)
    viewed_rate = (v_hits + WEIGHT_PRIOR_PAIRS * pooled * DEFAULT_VIEWED_WEIGHT) / (v_pairs + WEIGHT_PRIOR_PAIRS)
    return replace(evidence, viewed_together=round(min(viewed_rate / copurchase_rate, MAX_VIEWED_WEIGHT), 4))
