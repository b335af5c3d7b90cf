"""Interval honesty: across simulated stores with a known true lift, how often the ROI's 95 % interval for the
relative lift in revenue per visitor covers it (target 93–97 %).

Each store: visitors split 90/10 between the learning and holdout arms; a visitor buys with the arm's conversion
rate, and a buyer's attributed revenue is log-normal (median 30, σ 0.6, the simulation's prices) — so revenue per
visitor is zero-inflated and skewed, as in a shop. The learning arm's true revenue per visitor is the holdout's ×
(1 + lift). The interval is the one `/admin/roi` reports (`reclift.lift.lift_report`).
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

from benchmarks.common import pyplot, save_figure, write_results
from reclift.lift import lift_report

NAME = "interval_honesty"
DESCRIPTION = (
    "Coverage of the ROI's 95 % interval for the relative lift in revenue per visitor, over simulated stores with "
    "a known true lift (target 93-97 %)"
)
TRUE_LIFT = 0.15
HOLDOUT_SHARE = 0.1
BASE_CONVERSION = 0.03
MEDIAN_ORDER = 30.0
SIGMA = 0.6


def store(rng: random.Random, visitors: int) -> tuple[dict[str, int], dict[str, dict[str, Decimal]]]:
    counts = {"learning": 0, "holdout": 0}
    revenue: dict[str, dict[str, Decimal]] = {"learning": {}, "holdout": {}}
    for visitor in range(visitors):
        arm = "holdout" if rng.random() < HOLDOUT_SHARE else "learning"
        counts[arm] += 1
        # The lift acts on conversion; order values are drawn alike in both arms.
        conversion = BASE_CONVERSION * (1 + TRUE_LIFT if arm == "learning" else 1)
        if rng.random() < conversion:
            value = MEDIAN_ORDER * math.exp(rng.gauss(0, SIGMA))
            revenue[arm][f"v{visitor}"] = Decimal(f"{value:.2f}")
    return counts, revenue


def coverage(stores: int, visitors: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    covered, widths, estimates, skipped = 0, [], [], 0
    for _ in range(stores):
        counts, revenue = store(rng, visitors)
        block = lift_report(counts, revenue, HOLDOUT_SHARE)["revenue_per_visitor"]
        if block["ci95"] is None:
            skipped += 1
            continue
        low, high = block["ci95"]
        covered += low <= TRUE_LIFT <= high
        widths.append(high - low)
        estimates.append(block["relative"])
    measured = stores - skipped
    return {
        "stores": stores,
        "visitors_per_store": visitors,
        "stores_with_an_interval": measured,
        "coverage": covered / measured if measured else math.nan,
        "median_interval_width": sorted(widths)[len(widths) // 2] if widths else math.nan,
        "mean_estimate": sum(estimates) / len(estimates) if estimates else math.nan,
        "estimates": estimates,
    }


def run(quick: bool) -> list[str]:
    sizes = (20_000,) if quick else (20_000, 60_000)
    stores = 200
    results = [coverage(stores, visitors, seed=visitors) for visitors in sizes]
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "true_lift": TRUE_LIFT,
            "holdout_share": HOLDOUT_SHARE,
            "base_conversion": BASE_CONVERSION,
            "order_value": f"log-normal, median {MEDIAN_ORDER}, sigma {SIGMA}",
            "stores": stores,
        },
        figures={"by_store_size": [{k: v for k, v in r.items() if k != "estimates"} for r in results]},
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for result in results:
        ax.hist(result["estimates"], bins=30, alpha=0.6, label=f"{result['visitors_per_store']:,} visitors/store")
    ax.axvline(TRUE_LIFT, color="black", linestyle="--", label=f"true lift {TRUE_LIFT:.0%}")
    ax.set_xlabel("estimated relative lift in revenue per visitor")
    ax.set_ylabel("stores")
    ax.legend()
    save_figure(fig, NAME)
    return [f"{NAME}:"] + [
        f"  {r['visitors_per_store']:,} visitors x {r['stores_with_an_interval']} stores: coverage "
        f"{r['coverage']:.1%} (target 93-97 %), median interval width {r['median_interval_width']:.3f}, "
        f"mean estimate {r['mean_estimate']:.3f} (true {TRUE_LIFT})"
        for r in results
    ]
