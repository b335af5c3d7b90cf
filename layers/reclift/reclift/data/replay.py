"""What the order replay reads and writes: the orders table's items of an order (whether it was recorded, which
refunds and cancellation were applied to it) and the webhook queue it queues the deliveries on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from pynamodb.exceptions import PynamoDBException

from reclift.data.models import OrderRecord, bind_tables
from reclift.data.queue import QueueError, send_webhook
from reclift.data.store import StoreError, order_key
from reclift.replay import Delivery, StoredOrder
from reclift.webhooks import envelope_for


class ReplayStore:
    """The orders table, read by key, and the webhook queue (WEBHOOK_QUEUE_URL)."""

    def __init__(self) -> None:
        bind_tables()

    def stored_orders(self, shop: str, keys: Mapping[str, Iterable[str]]) -> dict[str, StoredOrder]:
        """Each order's state from the items whose sort keys `keys` names per order id (`reclift.replay.keys_to_read`),
        read by key in BatchGetItem requests of up to 100: 0.5 read units per item found or not, eventually
        consistent, whatever the order's size. An order none of whose items is in the table is absent."""
        wanted = [(order_key(shop, order_id), sk) for order_id, sks in keys.items() for sk in dict.fromkeys(sks)]
        found: dict[str, list[OrderRecord]] = {}
        try:
            for item in OrderRecord.batch_get(wanted, attributes_to_get=["pk", "sk", "order_id", "backfilled"]):
                found.setdefault(item.order_id, []).append(item)
        except PynamoDBException as exc:
            raise StoreError(f"reading the orders' items failed: {exc.msg}") from exc
        return {
            order_id: StoredOrder(
                # a basket the backfill stored ahead of the order's delivery is replaced when the delivery is processed
                recorded=any(item.sk == "order" and not item.backfilled for item in items),
                markers=frozenset(item.sk for item in items if item.sk != "order"),
            )
            for order_id, items in found.items()
        }

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
        except QueueError as exc:
            raise StoreError(str(exc)) from exc
