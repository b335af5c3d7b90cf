"""Storefront tracking: the events the widget sends through the app proxy, validated at the edge, proven against
the rec id the server issued (DESIGN.md §2, "Proven events"), and what they add to the per-day product counters, to
the day's page items (what each candidate was shown in the product widget of one page) and to visitor profiles.

The page of a product-placement event is the one its rec id signs (reclift.recids, version 2): the body's
`source_product_id` is still accepted, and ignored, so a widget that sends another page than it was served for
counts for the page it was served for, never for the one it names."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from reclift.ids import shopify_id
from reclift.ranking import Arm
from reclift.recids import RecIds, page_of

MAX_EVENTS_PER_REQUEST = 50
MAX_PRODUCTS_PER_IMPRESSION = 20
# The products a response listed, sent back in every event about it (the response's `event_fields`).
REC_PRODUCTS_FIELD = "rec_products"
# At most this many (rec id, product, type) are counted per request, each one conditional PutItem: a request of 50
# impressions of the default 4-card widget fits (the widget sends its events in batches of 20, each impression the
# cards that came into view), while a request's writes, and so its time, stay bounded.
MAX_COUNTED_PER_REQUEST = 200

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
    rec_products: list[ProductId] = Field(default_factory=list, max_length=MAX_PRODUCTS_PER_IMPRESSION)


class ClickIn(_Event):
    type: Literal["click", "add_to_cart"]
    rec_id: Key
    visitor_id: Key
    product_id: ProductId
    position: Position
    rec_products: list[ProductId] = Field(default_factory=list, max_length=MAX_PRODUCTS_PER_IMPRESSION)


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
    """An event as stored: the server's time, the customer only as the app proxy signed it. A proven recommendation
    event is about one product and carries what its verified rec id says (`arm`, `issued_at`, `rec_tag`, and as
    `source_product_id` its signed page); its id is `{rec_tag}.{type}.{product}`, the same for every copy of it.
    Its `positions` are its products' places in the list its rec id signs (1 = first; 0 = unknown), never the ones
    the browser sends, and `listed` that list, which an impression keeps so that counting can read the places back
    from the events table's stream."""

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
    arm: Arm | None = None
    issued_at: datetime | None = None
    rec_tag: str | None = None
    listed: tuple[str, ...] = ()

    @property
    def places(self) -> tuple[int, ...]:
        """Each product's place (0 where unknown: a view, or an item stored before it kept its list)."""
        return self.positions or (0,) * len(self.product_ids)

    @property
    def is_recommendation_event(self) -> bool:
        return self.type != "view"

    @property
    def page(self) -> str | None:
        """The page its rec id signs (a product-placement id of version 2), else None. Read from the rec id, not
        from `source_product_id`: events are stored proven only, while an item stored before the page was signed
        may hold the browser's `source_product_id` (and the stream reads such items back when they change)."""
        return page_of(self.rec_id)


@dataclass(frozen=True)
class ProvenBatch:
    """A request's events sorted by what they prove. `events` holds one event per (rec id, product, type), the
    first of the request; `sources[i]` is the index in the request of the event `events[i]` came from."""

    received: int
    events: list[TrackedEvent]
    sources: list[int]
    views: list[TrackedEvent]


def prove_events(
    batch: EventBatchIn, *, shop: str, customer_id: str | None, at: datetime, rec_ids: RecIds
) -> ProvenBatch:
    """Keep what a recommendation event proves: its rec id was issued to this shop and visitor, with the products it
    sends back, within the rec id's lifetime, and the products it is about are among them. Anything else, and any
    repeat of a (rec id, product, type) within the request, is left out (the store drops repeats across requests)."""
    events: list[TrackedEvent] = []
    sources: list[int] = []
    views: list[TrackedEvent] = []
    taken: set[str] = set()
    for index, event in enumerate(batch.events):
        if isinstance(event, ViewIn):
            views.append(
                TrackedEvent(
                    event_id=f"view.{index}",
                    type="view",
                    at=at,
                    visitor_id=event.visitor_id,
                    customer_id=customer_id,
                    rec_id=None,
                    placement=None,
                    source_product_id=None,
                    product_ids=(event.product_id,),
                    positions=(),
                )
            )
            continue
        issued = rec_ids.proven(event.rec_id, shop=shop, visitor_id=event.visitor_id, listed=event.rec_products, now=at)
        if issued is None:
            continue
        # The list the rec id's digest signs, in its order: a product's place is its place there, whatever the
        # body's `position` says.
        places = {product: place for place, product in enumerate(event.rec_products, start=1)}
        shown = [item.product_id for item in event.products] if isinstance(event, ImpressionIn) else [event.product_id]
        for product in shown:
            event_id = f"{issued.tag}.{event.type}.{product}"
            if product not in places or event_id in taken or len(events) >= MAX_COUNTED_PER_REQUEST:
                continue
            taken.add(event_id)
            events.append(
                TrackedEvent(
                    event_id=event_id,
                    type=event.type,
                    at=at,
                    visitor_id=event.visitor_id,
                    customer_id=customer_id,
                    rec_id=issued.rec_id,
                    placement=issued.placement,
                    source_product_id=issued.page,  # the signed page; the body's `source_product_id` is ignored
                    product_ids=(product,),
                    positions=(places[product],),
                    arm=issued.arm,
                    issued_at=issued.issued_at,
                    rec_tag=issued.tag,
                    listed=tuple(event.rec_products) if event.type == "impression" else (),
                )
            )
            sources.append(index)
    return ProvenBatch(received=len(batch.events), events=events, sources=sources, views=views)


# Shoppers look at a widget's first places more than its last (the examination hypothesis, NOTES-learning.md §3.5):
# an impression in place k is k^−POSITION_EXPONENT of an impression's exposure to the product's own rate, 1/√k.
# Learning rests its posteriors on exposure, so a product shown in the last places (where exploration mostly puts
# what it tries) is not judged as if it sold worse. The curve is fixed, not estimated from the shop's own clicks:
# that needs randomised swaps of places, which the widget does not make.
POSITION_EXPONENT = 0.5
EXPOSURE_DIGITS = 3  # a counting batch's exposure is rounded to this many decimals (a short number in the item)


def exposure(place: int) -> float:
    """The exposure of an impression in this place (0 = unknown: counted as the first place)."""
    return float(max(place, 1) ** -POSITION_EXPONENT)


@dataclass
class ProductCounts:
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    exposure: float = 0.0

    def as_increments(self) -> dict[str, int | float]:
        return {name: value for name, value in vars(self).items() if value}


@dataclass
class PairCounts:
    """A candidate's impressions in the widget of one page, their exposure, and its clicks there."""

    impressions: int = 0
    exposure: float = 0.0
    clicks: int = 0


_Counts = TypeVar("_Counts", ProductCounts, PairCounts)
_Key = TypeVar("_Key")


def _rounded(totals: Mapping[_Key, _Counts]) -> dict[_Key, _Counts]:
    """A batch's summed counts, each exposure rounded once to EXPOSURE_DIGITS (a short number in the item)."""
    for total in totals.values():
        total.exposure = round(total.exposure, EXPOSURE_DIGITS)
    return dict(totals)


def counter_increments(events: Iterable[TrackedEvent]) -> dict[tuple[str, str], ProductCounts]:
    """What the events add to each (day, product) counter, merged so one counter is written once."""
    counts: dict[tuple[str, str], ProductCounts] = defaultdict(ProductCounts)
    for event in events:
        day = event.at.date().isoformat()
        for product, place in zip(event.product_ids, event.places, strict=True):
            if event.type == "impression":
                counts[(day, product)].impressions += 1
                counts[(day, product)].exposure += exposure(place)
            elif event.type == "click":
                counts[(day, product)].clicks += 1
            elif event.type == "add_to_cart":
                counts[(day, product)].add_to_carts += 1
    return _rounded(counts)


PageCounts = dict[str, PairCounts]  # candidate → its counts in the widget of one page


@dataclass(frozen=True)
class CounterIncrements:
    """What a counting batch adds: `products` to the (day, product) counters, `pages` to the (day, page) items.
    An impression or a click whose rec id signs its page is counted in that page's item only (its candidate's
    impressions and clicks are the sum of its pages' and its own counter's); add-to-carts and the other impressions
    and clicks go to products."""

    products: dict[tuple[str, str], ProductCounts]
    pages: dict[tuple[str, str], PageCounts]

    @property
    def impressions(self) -> int:
        return sum(c.impressions for c in self.products.values()) + sum(
            counts.impressions for shown in self.pages.values() for counts in shown.values()
        )

    @property
    def clicks(self) -> int:
        return sum(c.clicks for c in self.products.values()) + sum(
            counts.clicks for shown in self.pages.values() for counts in shown.values()
        )


def counting_increments(events: Iterable[TrackedEvent]) -> CounterIncrements:
    """What the events add to the counters, merged so that each counter and each page item is written once."""
    pages: dict[tuple[str, str], PageCounts] = defaultdict(lambda: defaultdict(PairCounts))
    unpaged: list[TrackedEvent] = []
    for event in events:
        page = event.page if event.type in ("impression", "click") else None
        if page is None:
            unpaged.append(event)
            continue
        for product, place in zip(event.product_ids, event.places, strict=True):
            counts = pages[(event.at.date().isoformat(), page)][product]
            if event.type == "click":
                counts.clicks += 1
            else:
                counts.impressions += 1
                counts.exposure += exposure(place)
    return CounterIncrements(
        products=counter_increments(unpaged), pages={key: _rounded(shown) for key, shown in pages.items()}
    )


def arm_visitors(events: Iterable[TrackedEvent]) -> dict[tuple[str, str], set[str]]:
    """Per day and arm, the visitors shown a recommendation of that arm (the arm of its verified rec id)."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        arm = event.arm if event.type == "impression" else None
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
