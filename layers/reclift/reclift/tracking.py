"""Storefront tracking: the events the widget sends through the app proxy, validated at the edge, and what
they add to the per-day product counters and to visitor profiles."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from reclift.ids import shopify_id
from reclift.ranking import arm_of

MAX_EVENTS_PER_REQUEST = 50
MAX_PRODUCTS_PER_IMPRESSION = 20

ProductId = Annotated[str, BeforeValidator(lambda value: shopify_id(value, "Product"))]
Key = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Position = Annotated[int, Field(ge=1, le=100)]
Placement = Literal["product", "cart", "home"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ShownProduct(_Event):
    product_id: ProductId
    position: Position


class ImpressionIn(_Event):
    type: Literal["impression"]
    rec_id: Key
    visitor_id: Key
    placement: Placement
    source_product_id: ProductId | None = None
    products: list[ShownProduct] = Field(min_length=1, max_length=MAX_PRODUCTS_PER_IMPRESSION)


class ClickIn(_Event):
    type: Literal["click", "add_to_cart"]
    rec_id: Key
    visitor_id: Key
    product_id: ProductId
    position: Position


class ViewIn(_Event):
    type: Literal["view"]
    visitor_id: Key
    product_id: ProductId


EventIn = Annotated[ImpressionIn | ClickIn | ViewIn, Field(discriminator="type")]


class EventBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)


class EventBatchError(ValueError):
    """A request body the events endpoint cannot take; `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_event_batch(body: Any) -> EventBatchIn:
    if not isinstance(body, dict):
        raise EventBatchError("body", 'expected a JSON object {"events": [...]}')
    events = body.get("events")
    if isinstance(events, list) and len(events) > MAX_EVENTS_PER_REQUEST:
        raise EventBatchError("events", f"at most {MAX_EVENTS_PER_REQUEST} events per request, got {len(events)}")
    try:
        return EventBatchIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "union_tag_invalid":
            found = first.get("ctx", {}).get("tag", "")
            raise EventBatchError(where, f"unknown event type {found!r}") from exc
        if first["type"] == "union_tag_not_found":
            raise EventBatchError(where, "an event needs a 'type'") from exc
        raise EventBatchError(where, str(first["msg"])) from exc


@dataclass(frozen=True)
class TrackedEvent:
    """An event as stored: the server's time and id, the customer only as the app proxy signed it."""

    event_id: str
    type: str
    at: datetime
    visitor_id: str
    customer_id: str | None
    rec_id: str | None
    placement: str | None
    source_product_id: str | None
    product_ids: tuple[str, ...]
    positions: tuple[int, ...]

    @property
    def is_recommendation_event(self) -> bool:
        return self.type != "view"


def tracked_events(batch: EventBatchIn, *, at: datetime, customer_id: str | None) -> list[TrackedEvent]:
    tracked: list[TrackedEvent] = []
    for event in batch.events:
        if isinstance(event, ImpressionIn):
            products = tuple(shown.product_id for shown in event.products)
            positions = tuple(shown.position for shown in event.products)
            rec_id, placement, source = event.rec_id, event.placement, event.source_product_id
        elif isinstance(event, ClickIn):
            products, positions = (event.product_id,), (event.position,)
            rec_id, placement, source = event.rec_id, None, None
        else:
            products, positions = (event.product_id,), ()
            rec_id, placement, source = None, None, None
        tracked.append(
            TrackedEvent(
                event_id=uuid.uuid4().hex,
                type=event.type,
                at=at,
                visitor_id=event.visitor_id,
                customer_id=customer_id,
                rec_id=rec_id,
                placement=placement,
                source_product_id=source,
                product_ids=products,
                positions=positions,
            )
        )
    return tracked


@dataclass
class ProductCounts:
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0

    def as_increments(self) -> dict[str, int]:
        return {name: value for name, value in vars(self).items() if value}


def counter_increments(events: Iterable[TrackedEvent]) -> dict[tuple[str, str], ProductCounts]:
    """What the events add to each (day, product) counter, merged so one counter is written once."""
    counts: dict[tuple[str, str], ProductCounts] = defaultdict(ProductCounts)
    for event in events:
        day = event.at.date().isoformat()
        for product in event.product_ids:
            if event.type == "impression":
                counts[(day, product)].impressions += 1
            elif event.type == "click":
                counts[(day, product)].clicks += 1
            elif event.type == "add_to_cart":
                counts[(day, product)].add_to_carts += 1
    return dict(counts)


def arm_visitors(events: Iterable[TrackedEvent]) -> dict[tuple[str, str], set[str]]:
    """Per day and arm, the visitors shown a recommendation of that arm (from the arm its rec id carries)."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        arm = arm_of(event.rec_id) if event.type == "impression" else None
        if arm is not None:
            seen[(event.at.date().isoformat(), arm)].add(event.visitor_id)
    return dict(seen)


@dataclass
class ProfileChange:
    """Products to put at the front of a profile's lists, oldest first (the newest ends up first)."""

    viewed: list[str] = field(default_factory=list)
    carted: list[str] = field(default_factory=list)
    purchased: list[str] = field(default_factory=list)


def profile_changes(events: Sequence[TrackedEvent]) -> dict[str, ProfileChange]:
    """Per visitor: viewed products, and those clicked or added to the cart from a recommendation."""
    changes: dict[str, ProfileChange] = defaultdict(ProfileChange)
    for event in events:
        if event.type == "view":
            changes[event.visitor_id].viewed.extend(event.product_ids)
        elif event.type in ("click", "add_to_cart"):
            changes[event.visitor_id].carted.extend(event.product_ids)
    return dict(changes)
