"""The events table's stream records, read back as the events they add: for an impression item, the products its
update added to the set (new image less old), each at its place in the list the rec id signed (`listed`; 0 for an
item stored before it kept one); for a click or add-to-cart item, the item when inserted. Removals (TTL expiry,
erasure) and rewrites that add nothing are not events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from reclift.data.models import EventItem
from reclift.ranking import Arm
from reclift.tracking import TrackedEvent

VISITOR_KEY = "#v#"


def _arm(value: str | None) -> Arm | None:
    for arm in get_args(Arm):
        if value == arm:
            return arm  # type: ignore[no-any-return]
    return None


def _products(image: Mapping[str, Any] | None) -> list[str]:
    if not image:
        return []
    if "product_set" in image:
        return sorted(image["product_set"].get("SS", []))
    return [value["S"] for value in image.get("product_ids", {}).get("L", [])]


def new_events(records: Iterable[Mapping[str, Any]]) -> dict[str, list[TrackedEvent]]:
    """Per shop, the events the records add, in stream order."""
    found: dict[str, list[TrackedEvent]] = defaultdict(list)
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        change = record.get("dynamodb") or {}
        new, old = change.get("NewImage"), change.get("OldImage")
        if not new or VISITOR_KEY not in new.get("pk", {}).get("S", ""):
            continue
        before = set(_products(old))
        added = [product for product in _products(new) if product not in before]
        if not added:
            continue
        item = EventItem.from_raw_data(dict(new))
        shop = item.pk[: item.pk.index(VISITOR_KEY)]
        places = {product: place for place, product in enumerate(item.listed or [], start=1)}
        found[shop].append(
            TrackedEvent(
                event_id=item.event_id,
                type=item.type,
                at=item.at,
                visitor_id=item.visitor_id,
                customer_id=item.customer_id,
                rec_id=item.rec_id,
                placement=item.placement,
                source_product_id=item.source_product_id,
                product_ids=tuple(added),
                positions=tuple(places.get(product, 0) for product in added),
                arm=_arm(item.arm),
            )
        )
    return dict(found)
