"""Processing queued webhook deliveries: one function per topic, each safe to run again on a redelivery."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from reclift.adjustments import (
    AttributedLine,
    cancellation_adjustment,
    parse_cancelled_order_id,
    parse_refund,
    refund_adjustment,
)
from reclift.attribution import Channel, Windows, attribute_order
from reclift.catalog import CatalogPayloadError, parse_deleted_product_id, parse_webhook_product
from reclift.data.catalog import catalog_store
from reclift.data.erasure import shop_eraser
from reclift.data.installs import install_registry, token_vault
from reclift.data.privacy import privacy_store
from reclift.data.store import Store
from reclift.ids import shop_domain
from reclift.logic.auth import server_rec_ids
from reclift.logic.install import uninstall
from reclift.logic.tracking import update_profiles
from reclift.money import money_text
from reclift.orders import Order, parse_order
from reclift.privacy import CustomerRequest, parse_customer_request, parse_shop_redaction
from reclift.recids import RecIds
from reclift.tracking import ProfileChange
from reclift.webhooks import WebhookEnvelope


class UnprocessableDelivery(ValueError):
    """An authentic delivery that cannot be processed as it is: it stays on the queue, then in the DLQ."""


@dataclass(frozen=True)
class OrderSummary:
    order_id: str
    lines: int
    attributed_lines: int
    attributed_products: int  # distinct products bought after a recommendation (the CVR's purchases)
    missed_lines: int
    attributed_revenue: str
    click_through_revenue: str
    view_through_revenue: str
    skipped_as_test: bool
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def issued_rec_ids_only(shop: str, order: Order, rec_ids: RecIds) -> Order:
    """The order with a line's `_rec_id` kept only where the server issued it to this shop (its MAC verifies): the
    shopper's browser writes that property, so any other proves no click-through, costs no query, and the line falls
    back to the buyer's other keys. A kept one still credits only through a stored event of it that lists the line's
    product, within the click window."""
    lines = tuple(
        line if line.rec_id is None or rec_ids.verified(line.rec_id, shop=shop) else replace(line, rec_id=None)
        for line in order.lines
    )
    return replace(order, lines=lines)


def process_order_created(
    shop: str, payload: Any, store: Store, *, rec_ids: Callable[[], RecIds] = server_rec_ids
) -> OrderSummary:
    """Attribute an `orders/create` delivery and record it exactly once (orders are keyed by shop and id). The app
    secret is read (for the rec ids' keys) only for an order that carries a `_rec_id`."""
    try:
        order = parse_order(payload)
    except ValueError as exc:
        raise UnprocessableDelivery(f"orders/create: {exc}") from exc
    if any(line.rec_id for line in order.lines):
        order = issued_rec_ids_only(shop, order, rec_ids())
    settings = store.get_settings(shop)
    windows = Windows.of_days(settings.click_window_days, settings.view_window_days)
    counts_as_test = order.test and not settings.attribute_test_orders
    touches = (
        []
        if counts_as_test
        else store.touches(
            shop,
            visitor_id=order.visitor_id,
            customer_id=order.customer_id,
            rec_ids=[line.rec_id for line in order.lines if line.rec_id],
            since=order.created_at - windows.longest,
            until=order.created_at,
        )
    )
    result = attribute_order(order, touches, windows, attribute_test_orders=settings.attribute_test_orders)
    outcome = store.record_order(shop, result)
    if not counts_as_test and order.product_ids:
        # Profiles take a purchase idempotently (lists are deduplicated), so a redelivery may safely repeat it.
        purchased = ProfileChange(purchased=list(order.product_ids))
        update_profiles(store, shop, visitor_id=order.visitor_id, customer_id=order.customer_id, change=purchased)
    store.register_shop(shop, currency=order.currency)
    return OrderSummary(
        order_id=order.order_id,
        lines=len(order.lines),
        attributed_lines=len(result.attributed),
        attributed_products=len({line.product_id for line in result.attributed}),
        missed_lines=len(result.missed),
        attributed_revenue=money_text(result.revenue),
        click_through_revenue=money_text(result.revenue_by_channel(Channel.CLICK_THROUGH)),
        view_through_revenue=money_text(result.revenue_by_channel(Channel.VIEW_THROUGH)),
        skipped_as_test=result.skipped_as_test,
        duplicate=outcome.duplicate,
    )


class OrderNotRecordedYet(RuntimeError):
    """A refund or cancellation that arrived before its order: retried until the order is in (then the DLQ)."""


def _recorded_lines(shop: str, order_id: str, store: Store) -> list[AttributedLine]:
    lines = store.attributed_lines(shop, order_id)
    if lines is None:
        # Shopify does not promise delivery order; adjusting nothing now would lose the refund for good.
        raise OrderNotRecordedYet(f"order {order_id} has not been recorded yet")
    return lines


def process_refund_created(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Take the refunded quantities' share of their lines' attributed revenue back, once per refund."""
    try:
        refund = parse_refund(payload)
    except ValueError as exc:
        raise UnprocessableDelivery(f"refunds/create: {exc}") from exc
    lines = _recorded_lines(shop, refund.order_id, store)
    adjustment = refund_adjustment(refund, lines)
    applied = store.apply_adjustment(shop, adjustment, sum((line.revenue for line in lines), Decimal(0)))
    return {
        "order_id": refund.order_id,
        "refund_id": refund.refund_id,
        "lines": len(adjustment.changes),
        "removed_revenue": money_text(adjustment.removed),
        "duplicate": not applied,
    }


def process_order_cancelled(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Take back what is left of the order's attributed revenue, once."""
    try:
        order_id = parse_cancelled_order_id(payload)
    except ValueError as exc:
        raise UnprocessableDelivery(f"orders/cancelled: {exc}") from exc
    lines = _recorded_lines(shop, order_id, store)
    adjustment = cancellation_adjustment(order_id, lines)
    applied = store.apply_adjustment(shop, adjustment, sum((line.revenue for line in lines), Decimal(0)))
    return {
        "order_id": order_id,
        "lines": len(adjustment.changes),
        "removed_revenue": money_text(adjustment.removed),
        "duplicate": not applied,
    }


def _for_this_shop(topic: str, shop: str, named: str, named_id: str | None) -> None:
    """A privacy topic acts only on the shop its signed body names: the shop header is not signed, so a captured
    delivery re-sent under another shop's domain (or another topic) must change nothing. The body's `shop_id`, where
    Shopify sends it, must be the id read from the shop at its installation, where that is known."""
    if named != shop:
        raise UnprocessableDelivery(f"{topic}: the body names another shop than the delivery's")
    if named_id is None:
        return
    installation = install_registry().installation(shop)
    known = installation.shop_id if installation is not None else None
    if known is not None and known != named_id:
        raise UnprocessableDelivery(f"{topic}: the body's shop_id is not the installed shop's")


def _customer_request(topic: str, shop: str, payload: Any, orders_key: str) -> CustomerRequest:
    try:
        request = parse_customer_request(payload, orders_key)
    except ValueError as exc:
        raise UnprocessableDelivery(f"{topic}: {exc}") from exc
    _for_this_shop(topic, shop, request.shop_domain, request.shop_id)
    return request


def process_customer_redact(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Remove everything derived from the customer: their profile, the visitors linked to them (profiles and
    events), their data exports, and every link from their orders' items to them."""
    request = _customer_request("customers/redact", shop, payload, "orders_to_redact")
    return {"customer_redacted": True, **privacy_store().redact_customer(shop, request)}


def process_customer_data_request(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Gather what reclift keeps of the customer, for the merchant to fetch at /admin/privacy/requests/{id}."""
    request = _customer_request("customers/data_request", shop, payload, "orders_requested")
    if request.request_id is None:
        raise UnprocessableDelivery("customers/data_request: no data_request id")
    privacy = privacy_store()
    data = privacy.customer_data(shop, request)
    privacy.save_data_request(shop, request.request_id, request.customer_id, data)
    return {
        "data_request": request.request_id,
        "visitors": len(data["visitors"]),
        "events": len(data["events"]),
        "orders": len(data["orders"]),
    }


def process_shop_redact(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Queue the erasure of everything of the shop (Shopify sends this 48 hours after the app is uninstalled): a
    large shop's erasure outlasts this worker's time limit, so ShopRedactFunction does it from its own queue."""
    try:
        redaction = parse_shop_redaction(payload)
    except ValueError as exc:
        raise UnprocessableDelivery(f"shop/redact: {exc}") from exc
    _for_this_shop("shop/redact", shop, redaction.shop_domain, redaction.shop_id)
    shop_eraser().queue_shop_redaction(shop)
    return {"shop_redaction_queued": True}


def process_app_uninstalled(shop: str, payload: Any, triggered_at: datetime | None) -> dict[str, Any]:
    """The shop uninstalled reclift: stop serving it and delete its offline grant (its data stays until
    `shop/redact`). Safe to run again: the state is set, the grant already gone. An uninstallation triggered before
    the shop's current installation (a failed delivery retried after a reinstall) changes nothing."""
    try:
        return uninstall(
            shop, payload, install_registry(), token_vault(), now=datetime.now(UTC), triggered_at=triggered_at
        )
    except ValueError as exc:
        raise UnprocessableDelivery(f"app/uninstalled: {exc}") from exc


def trigger_time(envelope: WebhookEnvelope) -> datetime | None:
    """The delivery's `X-Shopify-Triggered-At` (checked at intake; None only for a delivery queued before it was
    required, or one that does not parse)."""
    try:
        moment = datetime.fromisoformat((envelope.triggered_at or "").strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def process_product_changed(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Store a `products/create` or `products/update` listing, unless a newer one (or its deletion) is stored."""
    try:
        listing = parse_webhook_product(payload)
    except CatalogPayloadError as exc:
        raise UnprocessableDelivery(f"products: {exc}") from exc
    applied = catalog_store().save_listing(shop, listing)
    return {
        "product_id": listing.product_id,
        "status": listing.status.value,
        "available": listing.available,
        "recommendable": listing.recommendable,
        "stale": not applied,
    }


def process_product_deleted(shop: str, payload: Any, store: Store) -> dict[str, Any]:
    """Replace the product by a tombstone that wins over any update still in flight."""
    try:
        product_id = parse_deleted_product_id(payload)
    except CatalogPayloadError as exc:
        raise UnprocessableDelivery(f"products/delete: {exc}") from exc
    catalog_store().save_deletion(shop, product_id)
    return {"product_id": product_id, "deleted": True}


TopicHandler = Callable[[str, Any, Store], dict[str, Any]]

TOPIC_HANDLERS: dict[str, TopicHandler] = {
    "orders/create": lambda shop, payload, store: process_order_created(shop, payload, store).as_dict(),
    "refunds/create": process_refund_created,
    "orders/cancelled": process_order_cancelled,
    "customers/redact": process_customer_redact,
    "customers/data_request": process_customer_data_request,
    "shop/redact": process_shop_redact,
    "products/create": process_product_changed,
    "products/update": process_product_changed,
    "products/delete": process_product_deleted,
}
# Topics whose handling depends on when the delivery was triggered (`X-Shopify-Triggered-At`), not only on its body.
TIMED_TOPIC_HANDLERS: dict[str, Callable[[str, Any, datetime | None], dict[str, Any]]] = {
    "app/uninstalled": process_app_uninstalled,
}
HANDLED_TOPICS = frozenset(TOPIC_HANDLERS) | frozenset(TIMED_TOPIC_HANDLERS)


def process_delivery(envelope: WebhookEnvelope, store: Store) -> dict[str, Any]:
    """Run the delivery's topic handler; UnprocessableDelivery for what no retry can fix."""
    try:
        shop = shop_domain(envelope.shop)
    except ValueError as exc:
        raise UnprocessableDelivery(f"the delivery names no valid shop: {exc}") from exc
    if envelope.topic not in HANDLED_TOPICS:
        # Kept, not dropped: it waits in the DLQ until a version that handles the topic re-drives it.
        raise UnprocessableDelivery(f"no handler for the topic {envelope.topic!r}")
    try:
        payload = envelope.payload()
    except ValueError as exc:
        raise UnprocessableDelivery(f"{envelope.topic}: the body is not JSON") from exc
    except RecursionError as exc:  # authentic, but nested deeper than any Shopify payload: no retry can parse it
        raise UnprocessableDelivery(f"{envelope.topic}: the body is JSON nested too deep") from exc
    timed = TIMED_TOPIC_HANDLERS.get(envelope.topic)
    if timed is not None:
        return {"topic": envelope.topic, "shop": shop, **timed(shop, payload, trigger_time(envelope))}
    return {"topic": envelope.topic, "shop": shop, **TOPIC_HANDLERS[envelope.topic](shop, payload, store)}
