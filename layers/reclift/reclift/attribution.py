"""Attribution: which recommendation, if any, earned each purchased line of an order.

The rules (DESIGN.md §2): a line is credited to exactly one touch — the `_rec_id` it carries (click-through, within
the click window), else the visitor's last click on that product in the click window, else their last impression
of it in the view window. A purchased product the visitor was never recommended, while they did see
recommendations in the window, is a missed opportunity: what they were shown instead.

A line credited to a touch with a page (a product page's widget, its page signed in the rec id) is also a purchase of
that (page, product) pair: the store adds it to the page's item of the order's day, once per (page, product) and
order, as the product's counter takes its purchase once per order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from reclift.orders import Order, OrderLine

MAX_SHOWN_INSTEAD = 50


class TouchKind(StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"

    @property
    def is_click(self) -> bool:
        return self is not TouchKind.IMPRESSION


class Channel(StrEnum):
    CLICK_THROUGH = "click_through"
    VIEW_THROUGH = "view_through"


@dataclass(frozen=True)
class Touch:
    """One recommendation event a buyer can be reached by: products shown (impression) or one clicked."""

    event_id: str
    kind: TouchKind
    at: datetime
    product_ids: tuple[str, ...]
    rec_id: str | None = None
    arm: str | None = None  # the arm of its verified rec id, as tracking stored it
    # The product whose page showed it (the page its rec id signs; reclift.recids): a line credited to it is a
    # purchase of the (page, product) pair as well.
    page: str | None = None


@dataclass(frozen=True)
class Windows:
    click: timedelta
    view: timedelta

    @classmethod
    def of_days(cls, click_days: int, view_days: int) -> Windows:
        return cls(click=timedelta(days=click_days), view=timedelta(days=view_days))

    @property
    def longest(self) -> timedelta:
        return max(self.click, self.view)


@dataclass(frozen=True)
class LineAttribution:
    line: OrderLine
    channel: Channel
    credited: Touch
    conversion_minutes: int
    event_ids: tuple[str, ...]  # every recommendation event for this product in the windows, oldest first

    @property
    def product_id(self) -> str:
        assert self.line.product_id is not None
        return self.line.product_id

    @property
    def revenue(self) -> Decimal:
        return self.line.revenue


@dataclass(frozen=True)
class MissedOpportunity:
    line: OrderLine
    shown_instead: tuple[str, ...]  # products recommended in the window, most recent first


@dataclass(frozen=True)
class OrderAttribution:
    order: Order
    attributed: tuple[LineAttribution, ...]
    missed: tuple[MissedOpportunity, ...]
    skipped_as_test: bool = False

    @property
    def revenue(self) -> Decimal:
        return sum((line.revenue for line in self.attributed), Decimal(0))

    def revenue_by_channel(self, channel: Channel) -> Decimal:
        return sum((line.revenue for line in self.attributed if line.channel is channel), Decimal(0))


def _in_window(touch: Touch, created_at: datetime, window: timedelta) -> bool:
    return created_at - window <= touch.at <= created_at


def _order_key(touch: Touch) -> tuple[datetime, str]:
    # Ties on time are broken by event id so that every delivery credits the same touch.
    return touch.at, touch.event_id


def _latest(touches: Iterable[Touch]) -> Touch | None:
    return max(touches, key=_order_key, default=None)


def _credit(
    line: OrderLine, clicks: list[Touch], views: list[Touch], rec_window: list[Touch]
) -> tuple[Channel, Touch] | None:
    product = line.product_id
    if line.rec_id:
        # The widget put the rec id on the line when the shopper added the product from it: that proves the
        # click-through even when the click event itself was lost, so any event of that rec id counts.
        carried = [t for t in rec_window if t.rec_id == line.rec_id and product in t.product_ids]
        same_rec = _latest(t for t in carried if t.kind.is_click) or _latest(carried)
        if same_rec is not None:
            return Channel.CLICK_THROUGH, same_rec
    last_click = _latest(t for t in clicks if product in t.product_ids)
    if last_click is not None:
        return Channel.CLICK_THROUGH, last_click
    last_view = _latest(t for t in views if product in t.product_ids)
    if last_view is not None:
        return Channel.VIEW_THROUGH, last_view
    return None


def attribute_order(
    order: Order, touches: Iterable[Touch], windows: Windows, *, attribute_test_orders: bool = False
) -> OrderAttribution:
    """Credit each line of `order` to at most one of `touches` (any events of the buyer; deduplicated by id)."""
    if order.test and not attribute_test_orders:
        return OrderAttribution(order=order, attributed=(), missed=(), skipped_as_test=True)

    unique = {touch.event_id: touch for touch in touches}.values()
    ordered = sorted(unique, key=_order_key)
    # A `_rec_id` is honoured within the click window, whatever kind of event carried it.
    rec_window = [t for t in ordered if _in_window(t, order.created_at, windows.click)]
    clicks = [t for t in rec_window if t.kind.is_click]
    views = [t for t in ordered if t.kind is TouchKind.IMPRESSION and _in_window(t, order.created_at, windows.view)]

    seen = clicks + views  # what the visitor was shown or clicked, within the applicable windows

    attributed: list[LineAttribution] = []
    missed: list[MissedOpportunity] = []
    for line in order.lines:
        if line.product_id is None or line.quantity == 0:
            continue
        credit = _credit(line, clicks, views, rec_window)
        if credit is not None:
            channel, touch = credit
            product = line.product_id
            related = {t.event_id: t for t in seen if product in t.product_ids} | {touch.event_id: touch}
            attributed.append(
                LineAttribution(
                    line=line,
                    channel=channel,
                    credited=touch,
                    conversion_minutes=int((order.created_at - touch.at).total_seconds() // 60),
                    event_ids=tuple(t.event_id for t in sorted(related.values(), key=_order_key)),
                )
            )
        elif seen:
            recent_first = sorted(seen, key=_order_key, reverse=True)
            shown = dict.fromkeys(p for t in recent_first for p in t.product_ids if p != line.product_id)
            missed.append(MissedOpportunity(line=line, shown_instead=tuple(shown)[:MAX_SHOWN_INSTEAD]))
    return OrderAttribution(order=order, attributed=tuple(attributed), missed=tuple(missed))


def page_purchases(lines: Iterable[LineAttribution]) -> dict[str, list[str]]:
    """Per page, the products its widget sold in these lines (credited to a touch with that page): each (page,
    product) once, however many lines carry it, as an order converts a product once."""
    pages: dict[str, set[str]] = {}
    for line in lines:
        if line.credited.page is not None:
            pages.setdefault(line.credited.page, set()).add(line.product_id)
    return {page: sorted(products) for page, products in sorted(pages.items())}
