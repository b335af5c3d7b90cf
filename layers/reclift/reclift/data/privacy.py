"""Data access for Shopify's privacy topics: a customer's data gathered or redacted, a shop's data erased.

A customer is reached by key only: their profile (which lists the visitor ids linked to them), their events through
the `by_customer` index, the orders Shopify names, and the events and profiles of those visitors. A shop is reached
by key only too: the tables keyed by the shop or by the shop and a day are read by those keys, the others through
their sparse `by_shop` index (keys only). Nothing here scans a table.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, get_args

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.models import Model

from reclift.data.day_totals import DayTotalItem, visitor_day_item
from reclift.data.models import (
    CustomerExportsItem,
    EventItem,
    OrderRecord,
    PrivacyRequestItem,
    ProfileItem,
    bind_tables,
    shop_bucket_key,
)
from reclift.data.store import StoreError, customer_key, order_key, visitor_key
from reclift.privacy import CustomerRequest
from reclift.ranking import Arm

EXPORT_RETENTION = timedelta(days=30)
# An export is one item (DynamoDB's limit: 400 KB). Its JSON is kept deflated: a customer's events repeat the same
# keys and products, and compress several times over.
PACKED = "zlib:"


def _packed(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return PACKED + base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def _unpacked(stored: str) -> dict[str, Any]:
    """An export as saved: deflated, or plain JSON (an export saved before exports were deflated)."""
    text = (
        zlib.decompress(base64.b64decode(stored.removeprefix(PACKED))).decode() if stored.startswith(PACKED) else stored
    )
    data: dict[str, Any] = json.loads(text)
    return data


def privacy_key(shop: str, request_id: str) -> str:
    return f"{shop}#privacy#{request_id}"


def exports_key(shop: str, customer_id: str) -> str:
    return f"{shop}#exports#{customer_id}"


def _lists(profile: ProfileItem | None) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {"viewed": list(profile.viewed), "carted": list(profile.carted), "purchased": list(profile.purchased)}


def _get_profile(key: str) -> ProfileItem | None:
    try:
        return ProfileItem.get(key, consistent_read=True)
    except DoesNotExist:
        return None


@dataclass
class _Footprint:
    """What reclift keeps of one customer: their profile, the visitors linked to them and those visitors' profiles,
    the events of theirs (their own, and the linked visitors' that no other customer's login claims), the items of
    the orders Shopify named."""

    profile: ProfileItem | None
    visitors: list[str]
    visitor_profiles: dict[str, ProfileItem | None]
    events: list[EventItem]
    orders: list[OrderRecord]


def _footprint(shop: str, customer_id: str, order_ids: Iterable[str]) -> _Footprint:
    key = customer_key(shop, customer_id)
    profile = _get_profile(key)
    own_events = list(EventItem.by_customer.query(key))
    orders = [item for order_id in order_ids for item in OrderRecord.query(order_key(shop, order_id))]
    linked = [
        *(profile.visitors or [] if profile is not None else []),
        *(event.visitor_id for event in own_events),
        *(item.visitor_id for item in orders if item.visitor_id),
    ]
    visitors = list(dict.fromkeys(linked))
    events: dict[tuple[str, str], EventItem] = {(event.pk, event.sk): event for event in own_events}
    for visitor in visitors:
        # A shared device: its events before anyone logged in may be this customer's, so they count as theirs;
        # the events another customer's login claims are that customer's.
        for event in EventItem.query(visitor_key(shop, visitor)):
            if event.customer_id in (None, customer_id):
                events[(event.pk, event.sk)] = event
    return _Footprint(
        profile=profile,
        visitors=visitors,
        visitor_profiles={visitor: _get_profile(visitor_key(shop, visitor)) for visitor in visitors},
        events=sorted(events.values(), key=lambda event: (event.at, event.event_id)),
        orders=orders,
    )


# Every attribute of an order's items that links it to the buyer or to their events (the revenue stays the shop's).
_ORDER_LINKS = ("customer_id", "visitor_id", "credited_event_id", "event_ids", "rec_id")


class PrivacyStore:
    def __init__(self) -> None:
        bind_tables()

    # ------------------------------------------------------------ a customer
    def customer_data(self, shop: str, request: CustomerRequest) -> dict[str, Any]:
        """Everything reclift keeps of the customer: their profile, the visitors linked to them with their profiles,
        their events (before and after login), their orders' attributions."""
        try:
            found = _footprint(shop, request.customer_id, request.order_ids)
        except PynamoDBException as exc:
            raise StoreError(f"gathering the customer's data failed: {exc.msg}") from exc
        events = [
            {
                "type": event.type,
                "at": event.at.isoformat(),
                "products": list(event.products),
                "rec_id": event.rec_id,
                "visitor_id": event.visitor_id,
                "logged_in": event.customer_id is not None,
            }
            for event in found.events
        ]
        orders = [
            {
                "order_id": item.order_id,
                "record": item.sk,
                "product_id": item.product_id,
                "revenue": None if item.revenue is None else str(item.revenue),
                "channel": item.channel,
            }
            for item in found.orders
        ]
        visitors = [
            {"visitor_id": visitor, "profile": _lists(found.visitor_profiles[visitor])} for visitor in found.visitors
        ]
        return {
            "customer_id": request.customer_id,
            "profile": _lists(found.profile),
            "visitors": visitors,
            "events": events,
            "orders": orders,
        }

    def save_data_request(
        self, shop: str, request_id: str, customer_id: str, data: dict[str, Any], *, now: datetime | None = None
    ) -> None:
        """Keep the export 30 days, and note it on the customer's list of exports (so their redaction finds it)."""
        created = now or datetime.now(UTC)
        expires = created + EXPORT_RETENTION
        key = privacy_key(shop, request_id)
        listing = exports_key(shop, customer_id)
        try:
            PrivacyRequestItem(
                key,
                shop=shop,
                shop_pk=shop_bucket_key(shop, key),
                customer_id=customer_id,
                data=_packed(data),
                created_at=created,
                expires_at=expires,
            ).save()
            CustomerExportsItem(listing).update(
                actions=[
                    CustomerExportsItem.shop.set(shop),
                    CustomerExportsItem.shop_pk.set(shop_bucket_key(shop, listing)),
                    CustomerExportsItem.request_ids.add({request_id}),
                    CustomerExportsItem.expires_at.set(expires),
                ]
            )
        except PynamoDBException as exc:
            raise StoreError(f"saving the data request failed: {exc.msg}") from exc

    def data_request(self, shop: str, request_id: str, *, now: datetime | None = None) -> dict[str, Any] | None:
        """The export, while it is kept: None once 30 days old, whether or not DynamoDB has deleted it yet."""
        try:
            item = PrivacyRequestItem.get(privacy_key(shop, request_id))
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StoreError(f"reading the data request failed: {exc.msg}") from exc
        expires = item.expires_at or item.created_at + EXPORT_RETENTION
        if (now or datetime.now(UTC)) >= expires:
            return None
        data = _unpacked(item.data)
        return {"id": request_id, "created_at": item.created_at.isoformat(), "data": data}

    def redact_customer(self, shop: str, request: CustomerRequest) -> dict[str, int]:
        """Remove everything derived from the customer: their profile and their linked visitors' profiles, their
        events before and after login, their data exports, and every link from their orders' items to them, their
        visitors or their events. The orders' revenue stays: it is the shop's."""
        try:
            found = _footprint(shop, request.customer_id, request.order_ids)
            events = _delete_all(EventItem, found.events)
            profiles = [found.profile, *found.visitor_profiles.values()]
            deleted_profiles = _delete_all(ProfileItem, [profile for profile in profiles if profile is not None])
            exports = self._delete_exports(shop, request.customer_id)
            visitor_days = _delete_all(DayTotalItem, _visitor_days(shop, found))
            unlinked = 0
            for item in found.orders:
                linked = [name for name in _ORDER_LINKS if getattr(item, name) is not None]
                if linked:
                    item.update(actions=[getattr(OrderRecord, name).remove() for name in linked])
                    unlinked += 1
        except PynamoDBException as exc:
            raise StoreError(f"redacting the customer failed: {exc.msg}") from exc
        return {
            "events": events,
            "profiles": deleted_profiles,
            "visitors": len(found.visitors),
            "exports": exports,
            "visitor_days": visitor_days,
            "order_items_unlinked": unlinked,
        }

    @staticmethod
    def _delete_exports(shop: str, customer_id: str) -> int:
        try:
            listing = CustomerExportsItem.get(exports_key(shop, customer_id), consistent_read=True)
        except DoesNotExist:
            return 0
        request_ids = sorted(listing.request_ids or ())
        _delete_all(PrivacyRequestItem, [PrivacyRequestItem(privacy_key(shop, rid)) for rid in request_ids])
        listing.delete()
        return len(request_ids)


def _visitor_days(shop: str, found: _Footprint) -> list[DayTotalItem]:
    """The ROI's per-visitor-day revenue items the customer's orders wrote (keyed by a digest of the order's visitor
    id, one per arm): for each day of their orders, each of their visitors, each arm. The day totals they fed stay:
    sums over every visitor, the shop's."""
    days = {item.created_at.date().isoformat() for item in found.orders if item.created_at is not None}
    visitors = {*found.visitors, *(item.visitor_id for item in found.orders if item.visitor_id)}
    return [
        visitor_day_item(shop, (day, arm, visitor))
        for day in sorted(days)
        for visitor in sorted(visitors)
        for arm in get_args(Arm)
    ]


def _delete_all(model: type[Model], items: Iterable[Model]) -> int:
    deleted = 0
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
            deleted += 1
    return deleted


@cache
def privacy_store() -> PrivacyStore:
    return PrivacyStore()
