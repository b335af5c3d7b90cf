"""What the order replay reads and writes: the orders table's items of an order (whether it was recorded, which
refunds and cancellation were applied to it) and the webhook queue it queues the deliveries on."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from pynamodb.exceptions import PynamoDBException

from reclift.data.models import OrderRecord
from reclift.data.queue import send_webhook
from reclift.data.store import StoreError, order_key
from reclift.replay import CANCELLED_MARKER, Delivery, StoredOrder
from reclift.webhooks import envelope_for


class ReplayStore:
    """The orders table, read by key, and the webhook queue (WEBHOOK_QUEUE_URL)."""

    def stored_orders(self, shop: str, order_ids: Iterable[str]) -> dict[str, StoredOrder]:
        """Each order's state, from one query of its items' keys (no attributes: an order's items are small, so a
        query costs 0.5 read units per 4 KB of them, eventually consistent; an order not in the table is absent)."""
        found: dict[str, StoredOrder] = {}
        for order_id in dict.fromkeys(order_ids):
            try:
                items = list(OrderRecord.query(order_key(shop, order_id), attributes_to_get=["pk", "sk", "backfilled"]))
            except PynamoDBException as exc:
                raise StoreError(f"reading the order's items failed: {exc.msg}") from exc
            if not items:
                continue
            markers = frozenset(
                item.sk for item in items if item.sk == CANCELLED_MARKER or item.sk.startswith("refund#")
            )
            # a basket the backfill stored ahead of the order's delivery is replaced when the delivery is processed
            recorded = any(item.sk == "order" and not item.backfilled for item in items)
            found[order_id] = StoredOrder(recorded=recorded, markers=markers)
        return found

    def queue_delivery(self, shop: str, delivery: Delivery, *, now: datetime) -> str:
        """Queue `delivery` as the webhook function queues a verified one (large bodies compressed alike)."""
        headers = {
            "X-Shopify-Topic": delivery.topic,
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Triggered-At": now.isoformat(),
        }
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        try:
            return send_webhook(envelope_for(headers, body, None).model_dump_json(), topic=delivery.topic)
        except RuntimeError as exc:
            raise StoreError(str(exc)) from exc
