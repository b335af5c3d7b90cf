"""A shop's items as reclift's functions key them, in every table a shop's erasure reaches: what the shop/redact
tests and benchmark seed (DynamoDB JSON, string attributes only: the erasure reads keys, nothing else)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from reclift.data.models import shop_bucket_key


def mentions(item: dict[str, Any], needle: str) -> bool:
    """Whether an item names the id as a whole token: `#c#5005` and `"5005"` do, a timestamp's `51.835005Z` does not
    (a plain substring test fails at random, whenever a timestamp happens to contain the id)."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(needle)}(?![0-9A-Za-z])", json.dumps(item)) is not None


TABLES = ("EventsTable", "CountersTable", "OrdersTable", "ProfilesTable", "ShopsTable", "LearningTable", "CatalogTable")


def shop_items(shop: str, visitors: int, *, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per table: 3 events and a profile per visitor, an order of 2 attributed lines every 4th visitor, a catalog and
    a learning item per visitor's product, counters for half as many products on 3 days, the registry item (first
    seen 5 days ago) and a data export. About 7.75 items per visitor."""
    at = now or datetime.now(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows: dict[str, list[dict[str, str]]] = {table: [] for table in TABLES}
    for n in range(visitors):
        pk = f"{shop}#v#visitor-{n}"
        for e in range(3):
            rows["EventsTable"].append({"pk": pk, "sk": f"{stamp}#{n}-{e}", "shop_pk": shop_bucket_key(shop, pk)})
        rows["ProfilesTable"].append({"pk": pk, "shop": shop, "shop_pk": shop_bucket_key(shop, pk)})
        if n % 4 == 0:
            order_pk, created = f"{shop}#{1000 + n}", f"{stamp}#{1000 + n}"
            rows["OrdersTable"].append({"pk": order_pk, "sk": "order", "gsi1pk": f"{shop}#basket", "gsi1sk": created})
            for line in range(2):
                rows["OrdersTable"].append(
                    {"pk": order_pk, "sk": f"line#{line}", "gsi1pk": f"{shop}#attr", "gsi1sk": f"{created}#{line}"}
                )
        rows["CatalogTable"].append({"pk": shop, "sk": str(n)})
        rows["LearningTable"].append({"pk": shop, "sk": f"p#{n}"})
    for day in range(3):
        for product in range(visitors // 2):
            rows["CountersTable"].append({"pk": f"{shop}#{(at - timedelta(days=day)).date()}", "sk": str(product)})
    export = f"{shop}#privacy#1"
    rows["ShopsTable"] += [
        {"pk": shop, "first_seen": (at - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        {"pk": export, "shop_pk": shop_bucket_key(shop, export)},
    ]
    return {
        table: [{key: {"S": value} for key, value in row.items()} for row in items] for table, items in rows.items()
    }


def orders_of(visitors: int) -> int:
    return len(range(0, visitors, 4))
