"""Co-purchase similarity: compute time against scipy's sparse XᵀX on the same baskets, quality on planted pairs, and
one shop's job end to end on DynamoDB Local.

1. Compute: 1M orders × 10k products (Zipf popularity, baskets of 1–5 lines; --quick: 100k orders). Both sides
   start from the same compressed baskets (integer codes): ours counts the pairs, computes Jaccard, support and lift
   and keeps each product's top 50; the reference only builds the sparse order × product matrix X and multiplies
   XᵀX (co-occurrence counts, no Jaccard, no ranking). Interleaved repeats, median of each, ratio in the same run.
   Turning product ids into codes and the top lists into Python objects is measured apart.
2. Quality: a synthetic store where every product has one planted complementary partner, bought with it in a share
   of orders, among Zipf-popular noise; the share of planted pairs whose partner is in the product's top 10.
3. End to end: the baskets of 100k stored orders (--quick: 10k) in the orders table on DynamoDB Local, the
   SimilarityFunction handler run on one shop's SQS record as in production, every AWS request counted.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from benchmarks.common import (
    ApiCallCounter,
    CapacityMeter,
    WarmFunction,
    calls_by_operation,
    logical_names,
    put_items,
    pyplot,
    run_job,
    save_figure,
    seeding_client,
    write_results,
)
from reclift.similarity import Baskets, encode_baskets, neighbour_table

NAME = "similarity"
DESCRIPTION = (
    "Co-purchase similarity: counts, Jaccard and top 50 against scipy's sparse XᵀX on 1M orders x 10k products, "
    "top-10 recovery of planted pairs, and one shop's job end to end on DynamoDB Local"
)
PRODUCTS = 10_000
ORDERS_FULL, ORDERS_QUICK = 1_000_000, 100_000
STORED_FULL, STORED_QUICK = 100_000, 10_000
REPEATS = 3
ZIPF_EXPONENT = 1.0


def zipf_baskets(orders: int, products: int, seed: int) -> Baskets:
    """Baskets of 1–5 lines drawn by Zipf-like popularity; repeats within an order are merged (as encoding does)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, orders)
    weights = 1.0 / np.arange(1, products + 1) ** ZIPF_EXPONENT
    cdf = np.cumsum(weights) / weights.sum()
    drawn = np.minimum(np.searchsorted(cdf, rng.random(int(sizes.sum()))), products - 1)
    rows = np.repeat(np.arange(orders, dtype=np.int64), sizes)
    unique = np.unique(rows * products + drawn)  # sorted by order, then product: rows without repeats
    indptr = np.zeros(orders + 1, dtype=np.int64)
    np.add.at(indptr, unique // products + 1, 1)
    return Baskets(
        products=[str(1_000_000 + code) for code in range(products)],
        indptr=np.cumsum(indptr),
        indices=(unique % products).astype(np.int64),
    )


def basket_ids(baskets: Baskets) -> list[list[str]]:
    """The baskets as product ids, as the job reads them from DynamoDB."""
    codes, bounds = baskets.indices.tolist(), baskets.indptr.tolist()
    return [[baskets.products[c] for c in codes[start:end]] for start, end in pairwise(bounds)]


def scipy_reference(baskets: Baskets) -> int:
    matrix = scipy.sparse.csr_matrix(
        (np.ones(len(baskets.indices), dtype=np.float64), baskets.indices, baskets.indptr),
        shape=(baskets.count, len(baskets.products)),
    )
    counts = (matrix.T @ matrix).tocsr()
    return int(counts.nnz)


def compute(orders: int) -> dict[str, Any]:
    baskets = zipf_baskets(orders, PRODUCTS, seed=1)
    ours, reference = [], []
    table = None
    for _ in range(REPEATS):
        started = time.perf_counter()
        scipy_reference(baskets)
        reference.append(time.perf_counter() - started)
        started = time.perf_counter()
        table = neighbour_table(baskets)
        ours.append(time.perf_counter() - started)
    assert table is not None
    started = time.perf_counter()
    lists = table.as_lists()
    as_lists_s = time.perf_counter() - started
    as_ids = basket_ids(baskets)
    started = time.perf_counter()
    encode_baskets(as_ids)
    encode_s = time.perf_counter() - started
    ours_s, reference_s = statistics.median(ours), statistics.median(reference)
    return {
        "orders": orders,
        "products": PRODUCTS,
        "lines": len(baskets.indices),
        "ours_s": ours_s,
        "scipy_xtx_s": reference_s,
        "ratio": ours_s / reference_s,
        "ours_runs_s": ours,
        "scipy_runs_s": reference,
        "products_with_neighbours": len(lists),
        "neighbour_rows": len(table.source),
        "as_python_lists_s": as_lists_s,
        "encode_product_ids_s": encode_s,
    }


def quality(seed: int = 11, orders_count: int = 100_000) -> dict[str, Any]:
    """2,000 products in 1,000 planted complementary pairs. Each order has an anchor product (Zipf popularity), its
    partner with probability 0.3, and 0–3 more products of Zipf noise. A pair the orders hold together fewer times
    than the minimum support cannot be found by any counting: it is reported apart."""
    rng = random.Random(seed)
    products = [str(5_000_000 + n) for n in range(2_000)]
    shuffled = products[:]
    rng.shuffle(shuffled)
    partner = {}
    for a, b in zip(shuffled[::2], shuffled[1::2], strict=True):
        partner[a], partner[b] = b, a
    weights = [1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(products))]
    anchors = rng.choices(products, weights=weights, k=orders_count)
    orders = []
    for anchor in anchors:
        basket = [anchor, *rng.choices(products, weights=weights, k=rng.randint(0, 3))]
        if rng.random() < 0.3:
            basket.append(partner[anchor])
        orders.append(basket)
    lists = neighbour_table(encode_baskets(orders)).as_lists()
    together: dict[tuple[str, str], int] = {}
    for basket in orders:
        for product in set(basket):
            if partner[product] in basket:
                together[(product, partner[product])] = together.get((product, partner[product]), 0) + 1
    planted = list(partner.items())
    observable = [pair for pair in planted if together.get(pair, 0) >= 2]

    def recovered(pairs: list[tuple[str, str]]) -> float:
        found = sum(1 for a, b in pairs if b in [n.product_id for n in lists.get(a, [])[:10]])
        return found / len(pairs)

    return {
        "products": len(products),
        "planted_pairs": len(planted) // 2,
        "orders": len(orders),
        "recovered_in_top_10": recovered(planted),
        "observable_pairs": len(observable) // 2,
        "recovered_in_top_10_of_observable": recovered(observable),
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_orders(dynamodb: Any, table: str, shop: str, baskets: Baskets, now: datetime) -> None:
    """Order items as the attribution worker stores them (basket on the by_shop_date_v2 index), 25 to a request."""

    items = []
    for order, basket in enumerate(basket_ids(baskets)):
        created = _stamp(now - timedelta(minutes=order))
        item = {
            "pk": {"S": f"{shop}#{order}"},
            "sk": {"S": "order"},
            "gsi1pk": {"S": f"{shop}#basket"},
            "gsi1sk": {"S": f"{created}#{order}"},
            "shop": {"S": shop},
            "order_id": {"S": str(order)},
            "created_at": {"S": created},
            "test": {"BOOL": False},
            "basket": {"L": [{"S": p} for p in basket]},
        }
        items.append(item)
    with ThreadPoolExecutor(8) as pool:
        put_items(pool, dynamodb, table, items)


def end_to_end(orders: int) -> dict[str, Any]:
    from tests.support.aws import emulated_aws

    shop = "bench-similarity.myshopify.com"
    now = datetime.now(UTC)
    baskets = zipf_baskets(orders, PRODUCTS, seed=2)
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state), database="dynamodb-local") as aws:
        dynamodb = seeding_client(aws)
        started = time.perf_counter()
        seed_orders(dynamodb, aws.resource("OrdersTable"), shop, baskets, now)
        seed_seconds = time.perf_counter() - started
        function = WarmFunction(aws, "SimilarityFunction")
        counter = ApiCallCounter(names=logical_names(aws))
        meter = CapacityMeter(logical_names(aws))
        block, capacity, seconds = run_job(function, counter, meter, {"shop": shop, "now": now.isoformat()})
        pages = dynamodb.get_paginator("query").paginate(
            TableName=aws.resource("LearningTable"),
            KeyConditionExpression="pk = :shop AND begins_with(sk, :similar)",
            ExpressionAttributeValues={":shop": {"S": shop}, ":similar": {"S": "s#"}},
            Select="COUNT",
        )
        written = sum(page["Count"] for page in pages)
        return {
            "orders": orders,
            "products": PRODUCTS,
            "seed_s": seed_seconds,
            "wall_s": seconds,
            "aws_s": block.aws_seconds,
            "dynamodb_requests": calls_by_operation(block.calls, "dynamodb"),
            "orders_read": sum(v for k, v in block.items.items() if "Orders" in k.target),
            "similarity_items_written": written,
        } | capacity.units()


def run(quick: bool) -> list[str]:
    cpu = compute(ORDERS_QUICK if quick else ORDERS_FULL)
    recovered = quality()
    e2e = end_to_end(STORED_QUICK if quick else STORED_FULL)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "products": PRODUCTS,
            "orders": cpu["orders"],
            "stored_orders": e2e["orders"],
            "repeats": REPEATS,
            "zipf_exponent": ZIPF_EXPONENT,
            "basket_lines": "1-5",
        },
        figures={"compute": cpu, "quality": recovered, "end_to_end": e2e},
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(
        ["scipy XᵀX\n(counts only)", "reclift\n(counts, Jaccard, top 50)"],
        [cpu["scipy_xtx_s"], cpu["ours_s"]],
        color=["C0", "C1"],
    )
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"{cpu['orders']:,} orders x {PRODUCTS:,} products: ratio {cpu['ratio']:.2f}")
    save_figure(fig, NAME)
    return [
        f"{NAME}:",
        f"  compute, {cpu['orders']:,} orders x {PRODUCTS:,} products: {cpu['ours_s']:.2f} s vs scipy XᵀX "
        f"{cpu['scipy_xtx_s']:.2f} s (x{cpu['ratio']:.2f}); as Python lists +{cpu['as_python_lists_s']:.2f} s, "
        f"encoding ids {cpu['encode_product_ids_s']:.2f} s",
        f"  quality: {recovered['recovered_in_top_10']:.1%} of planted pairs in the top 10 "
        f"({recovered['recovered_in_top_10_of_observable']:.1%} of those bought together at least twice)",
        f"  end to end, {e2e['orders']:,} stored orders on DynamoDB Local: {e2e['wall_s']:.1f} s, "
        f"{e2e['rcu']:,.1f} RCU {e2e['wcu']:,.1f} WCU, requests {e2e['dynamodb_requests']}",
    ]
