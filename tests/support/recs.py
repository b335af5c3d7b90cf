"""Rec ids as the server issues them, for tests that post events without asking for recommendations first.

`shown` mints the id with the server's own function (reclift.recids, under the development secret the emulated
functions and the local stack read) and returns the fields an event about that response carries: the rec id and the
response's `event_fields`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reclift.ranking import Arm
from reclift.recids import Placement, RecIds
from reclift_local.sign import DEV_API_SECRET

SERVER_REC_IDS = RecIds.of_secrets([DEV_API_SECRET])


def shown(
    shop: str,
    visitor_id: str,
    products: Sequence[str],
    *,
    arm: Arm = "learning",
    placement: Placement = "product",
    at: datetime | None = None,
    page: str | None = None,
) -> dict[str, Any]:
    """`rec_id` and `rec_products` of a response listing `products` to `visitor_id` of `shop` (issued now), on the
    page of the product `page` when given (the product placement's rec id signs it)."""
    rec_id = SERVER_REC_IDS.issue(
        shop=shop,
        visitor_id=visitor_id,
        arm=arm,
        placement=placement,
        products=list(products),
        now=at or datetime.now(UTC),
        page=page,
    )
    return {"rec_id": rec_id, "rec_products": list(products)}
