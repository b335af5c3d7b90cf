"""Writes `events/`: one sample event per function and case, signed with the documented development secret.

The events are what API Gateway and SQS hand the functions (the same builders the local stack uses), so they
work with `make invoke FN=… EVENT=…`, with `sam local invoke -e`, and in the tests.

Two sets, one builder. `make events` (this module without options) writes a fresh set, made for the current time,
to invoke by hand: its app-proxy samples pass the timestamp check for APP_PROXY_MAX_SKEW_SECONDS (90 s by default),
its webhooks the trigger-time check for 48 h, its rec ids count for 24 h and its admin session tokens live one
minute, as Shopify's do. The committed set is made for a fixed moment, so it is reproducible and the tests can rely
on it (`--fixed` writes it, `--check` fails when events/ is not it): invoke its app-proxy and webhook samples with
`APP_PROXY_MAX_SKEW_SECONDS=0` and `WEBHOOK_MAX_AGE_SECONDS=0`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reclift.recids import RecIds
from reclift.signatures import SESSION_TOKEN_LIFETIME_SECONDS, mint_session_token, sign_webhook, signed_app_proxy_query
from reclift.tracking import REC_PRODUCTS_FIELD
from reclift.webhooks import envelope_for

from .gateway import build_http_event
from .pollers import sqs_record
from .sign import DEV_API_KEY, DEV_API_SECRET
from .template import HttpRoute

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = PROJECT_ROOT / "events"
BODIES_DIR = EVENTS_DIR / "bodies"
FIXED_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO_SHOP = "reclift-demo.myshopify.com"
DEMO_VISITOR = "v-demo-1"
DEMO_CUSTOMER = "207119551"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reclift-WebhookQueue"
LEARNING_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reclift-LearningQueue"
HEALTH_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reclift-HealthQueue"
SIMILARITY_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reclift-SimilarityQueue"
SHOP_REDACT_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reclift-ShopRedactQueue"
# The demo shop's catalog: the products the sample order buys and the storefront samples list, so that the
# recommendations the walk-through asks for render titles, prices and images.
CATALOG_BODIES = ("ipod-nano", "ipod-touch", "ipod-shuffle")


def _stable_id(*parts: str) -> str:
    return str(uuid.UUID(hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]))


def order_body(now: datetime) -> bytes:
    """Shopify's published orders/create sample, placed at `now` by the demo visitor, with a widget line."""
    order = json.loads((BODIES_DIR / "orders-create.json").read_text())
    order["created_at"] = order["updated_at"] = order["processed_at"] = now.isoformat().replace("+00:00", "Z")
    return json.dumps(order, indent=2).encode()


def webhook_headers(
    topic: str, body: bytes, *, secret: str, now: datetime, shop: str = DEMO_SHOP, webhook_id: str | None = None
) -> list[tuple[str, str]]:
    """The headers Shopify sends with a delivery, signed with `secret`."""
    return [
        ("content-type", "application/json"),
        ("x-shopify-topic", topic),
        ("x-shopify-hmac-sha256", sign_webhook(body, secret)),
        ("x-shopify-shop-domain", shop),
        ("x-shopify-api-version", "2025-10"),
        ("x-shopify-webhook-id", webhook_id or _stable_id("webhook", topic, body.decode())),
        ("x-shopify-event-id", _stable_id("event", topic, body.decode())),
        ("x-shopify-triggered-at", now.isoformat()),
        ("user-agent", "Shopify-Captain-Hook"),
    ]


def http_event(
    method: str,
    path: str,
    route_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    now: datetime,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    return build_http_event(
        route=HttpRoute(function="", event="", method=method, path=route_path),
        method=method,
        target=path,
        header_items=[("host", "abc123.execute-api.us-east-1.amazonaws.com"), *headers],
        body=body,
        source_ip="203.0.113.10",
        path_parameters=path_parameters or {},
        request_id=_stable_id("request", method, path),
        now=now.timestamp(),
    )


def product_webhook_event(body: bytes, topic: str, *, secret: str, now: datetime) -> dict[str, Any]:
    """A products webhook delivery of `body`, as API Gateway hands it to WebhookFunction."""
    headers = webhook_headers(topic, body, secret=secret, now=now)
    return http_event("POST", f"/webhooks/{topic}", "/webhooks/{topic+}", headers, body, now, {"topic": topic})


def storefront_events(now: datetime, secret: str = DEV_API_SECRET) -> dict[str, Any]:
    """The widget's events about one response, whose rec id the server issued at `now` under `secret` (with a fixed
    nonce, so the file is reproducible); the server counts them only within the day after `now`."""
    listed, page = ["632910392", "1071559674"], "921728736"
    rec_id = RecIds.of_secrets([secret]).issue(
        shop=DEMO_SHOP,
        visitor_id=DEMO_VISITOR,
        arm="learning",
        placement="product",
        products=listed,
        now=now,
        nonce=hashlib.sha256(b"reclift sample events").digest()[:8],
        page=page,  # signed into the id, as the recommendation endpoint signs the widget's page
    )
    fields = {REC_PRODUCTS_FIELD: listed}
    return {
        "events": [
            {
                "type": "impression",
                "rec_id": rec_id,
                **fields,
                "visitor_id": DEMO_VISITOR,
                "placement": "product",
                "source_product_id": page,
                "products": [{"product_id": product, "position": k} for k, product in enumerate(listed, start=1)],
            },
            {
                "type": "click",
                "rec_id": rec_id,
                **fields,
                "visitor_id": DEMO_VISITOR,
                "product_id": listed[0],
                "position": 1,
            },
            {"type": "view", "visitor_id": DEMO_VISITOR, "product_id": listed[0]},
        ]
    }


def build_all(now: datetime, secret: str = DEV_API_SECRET, api_key: str = DEV_API_KEY) -> dict[str, Any]:
    """Every sample event, by file name."""
    order = order_body(now)
    order_headers = webhook_headers("orders/create", order, secret=secret, now=now)
    topic_params = {"topic": "orders/create"}
    webhook = http_event(
        "POST", "/webhooks/orders/create", "/webhooks/{topic+}", order_headers, order, now, topic_params
    )
    forged = [(k, "c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ==" if k == "x-shopify-hmac-sha256" else v) for k, v in order_headers]

    envelope = envelope_for(dict(order_headers), order, "orders/create").model_dump_json()
    message = {
        "MessageId": _stable_id("message", "1"),
        "ReceiptHandle": "AQEB-sample-1",
        "Body": envelope,
        "MD5OfBody": hashlib.md5(envelope.encode(), usedforsecurity=False).hexdigest(),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(now.timestamp() * 1000)),
            "SenderId": "123456789012",
            "ApproximateFirstReceiveTimestamp": str(int(now.timestamp() * 1000) + 1),
        },
    }
    poison = copy.deepcopy(message) | {
        "MessageId": _stable_id("message", "poison"),
        "ReceiptHandle": "AQEB-poison",
        "Body": '{"topic": "orders/create", "shop": "not a shop"}',
    }
    poison["MD5OfBody"] = hashlib.md5(str(poison["Body"]).encode(), usedforsecurity=False).hexdigest()

    product = (BODIES_DIR / "products-update.json").read_bytes()
    product_headers = webhook_headers("products/update", product, secret=secret, now=now)
    product_webhook = product_webhook_event(product, "products/update", secret=secret, now=now)
    product_envelope = envelope_for(dict(product_headers), product, "products/update").model_dump_json()
    product_message = copy.deepcopy(message) | {
        "MessageId": _stable_id("message", "product"),
        "ReceiptHandle": "AQEB-product",
        "Body": product_envelope,
        "MD5OfBody": hashlib.md5(product_envelope.encode(), usedforsecurity=False).hexdigest(),
    }

    catalog = {
        f"webhook-products-create-{handle}.json": product_webhook_event(
            (BODIES_DIR / f"products-create-{handle}.json").read_bytes(), "products/create", secret=secret, now=now
        )
        for handle in CATALOG_BODIES
    }

    def job(name: str, body: dict[str, str]) -> dict[str, Any]:
        """A scheduled job's fan-out message, as its queue delivers it."""
        text = json.dumps(body)
        return {
            "MessageId": _stable_id("message", name),
            "ReceiptHandle": f"AQEB-{name}",
            "Body": text,
            "MD5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
            "Attributes": message["Attributes"],
        }

    def scheduled(rule: str) -> dict[str, Any]:
        return {
            "version": "0",
            "id": _stable_id("schedule", rule),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": now.isoformat().replace("+00:00", "Z"),
            "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:123456789012:rule/reclift-{rule}"],
            "detail": {},
        }

    learning_job = job("learning", {"shop": DEMO_SHOP, "day": now.date().isoformat()})
    similarity_job = job("similarity", {"shop": DEMO_SHOP, "now": now.isoformat()})
    health_check = job("health", {"shop": DEMO_SHOP, "scheduled_at": now.isoformat().replace("+00:00", "Z")})
    shop_erasure = job("shop-redact", {"shop": DEMO_SHOP})  # what the webhook worker queues for shop/redact

    query = signed_app_proxy_query(
        {
            "shop": DEMO_SHOP,
            "logged_in_customer_id": DEMO_CUSTOMER,
            "path_prefix": "/apps/reclift",
            "timestamp": str(int(now.timestamp())),
        },
        secret,
    )
    events_body = json.dumps(storefront_events(now, secret)).encode()
    json_type = [("content-type", "application/json")]
    token = mint_session_token(
        DEMO_SHOP,
        secret,
        api_key=api_key,
        now=now.timestamp(),
        ttl_seconds=SESSION_TOKEN_LIFETIME_SECONDS,
        session_id=_stable_id("session"),
        extra_claims={"jti": _stable_id("jti")},
    )
    bearer = [("authorization", f"Bearer {token}")]
    return {
        "webhook-orders-create.json": webhook,
        "webhook-orders-create-bad-signature.json": http_event(
            "POST", "/webhooks/orders/create", "/webhooks/{topic+}", forged, order, now, topic_params
        ),
        "attribution-sqs-orders-create.json": {"Records": [sqs_record(message, QUEUE_ARN, "us-east-1")]},
        "attribution-sqs-batch-with-poison.json": {
            "Records": [sqs_record(message, QUEUE_ARN, "us-east-1"), sqs_record(poison, QUEUE_ARN, "us-east-1")]
        },
        "storefront-post-events.json": http_event(
            "POST", f"/apps/proxy/events?{query}", "/apps/proxy/events", json_type, events_body, now
        ),
        "storefront-post-events-bad-signature.json": http_event(
            "POST",
            "/apps/proxy/events?" + query.replace("signature=", "signature=0"),
            "/apps/proxy/events",
            json_type,
            events_body,
            now,
        ),
        "admin-get-roi.json": http_event(
            "GET",
            f"/admin/roi?from={now.date().replace(day=1).isoformat()}&to={now.date().isoformat()}",
            "/admin/roi",
            bearer,
            b"",
            now,
        ),
        "admin-get-settings.json": http_event("GET", "/admin/settings", "/admin/settings", bearer, b"", now),
        "admin-put-settings.json": http_event(
            "PUT",
            "/admin/settings",
            "/admin/settings",
            bearer + json_type,
            json.dumps({"click_window_days": 3, "view_window_days": 7}).encode(),
            now,
        ),
        "admin-get-rules.json": http_event("GET", "/admin/rules", "/admin/rules", bearer, b"", now),
        "admin-put-rules.json": http_event(
            "PUT",
            "/admin/rules",
            "/admin/rules",
            bearer + json_type,
            json.dumps({"exclude": {"tags": ["clearance"]}, "pin": {"product": ["788032119674292922"]}}).encode(),
            now,
        ),
        "admin-get-roi-no-token.json": http_event("GET", "/admin/roi", "/admin/roi", [], b"", now),
        "admin-get-performance.json": http_event(
            "GET", "/admin/performance?blacklisted=true", "/admin/performance", bearer, b"", now
        ),
        "storefront-get-recommendations.json": http_event(
            "GET",
            "/apps/proxy/recommendations?"
            + signed_app_proxy_query(
                {
                    "shop": DEMO_SHOP,
                    "logged_in_customer_id": "",
                    "path_prefix": "/apps/reclift",
                    "timestamp": str(int(now.timestamp())),
                    "product_id": "921728736",
                    "placement": "product",
                    "limit": "4",
                    "visitor_id": DEMO_VISITOR,
                },
                secret,
            ),
            "/apps/proxy/recommendations",
            [],
            b"",
            now,
        ),
        "learning-scheduled.json": scheduled("DailyLearningFunctionNightly"),
        "learning-sqs-shop.json": {"Records": [sqs_record(learning_job, LEARNING_QUEUE_ARN, "us-east-1")]},
        "webhook-products-update.json": product_webhook,
        "attribution-sqs-products-update.json": {"Records": [sqs_record(product_message, QUEUE_ARN, "us-east-1")]},
        "backfill-shop.json": {"shop": DEMO_SHOP, "what": "all"},
        "health-scheduled.json": scheduled("HealthCheckFunctionHourly"),
        "health-sqs-shop.json": {"Records": [sqs_record(health_check, HEALTH_QUEUE_ARN, "us-east-1")]},
        "admin-get-health.json": http_event("GET", "/admin/health", "/admin/health", bearer, b"", now),
        "similarity-scheduled.json": scheduled("SimilarityFunctionDaily"),
        "similarity-sqs-shop.json": {"Records": [sqs_record(similarity_job, SIMILARITY_QUEUE_ARN, "us-east-1")]},
        "shop-redact-sqs-shop.json": {"Records": [sqs_record(shop_erasure, SHOP_REDACT_QUEUE_ARN, "us-east-1")]},
        **catalog,
    }


def _rendered(events: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(event, indent=2, sort_keys=False) + "\n" for name, event in events.items()}


def stale_files(rendered: dict[str, str], events_dir: Path = EVENTS_DIR) -> list[str]:
    """The names whose file is missing from `events_dir` or differs from `rendered`."""
    return [
        name
        for name, text in rendered.items()
        if not (events_dir / name).exists() or (events_dir / name).read_text() != text
    ]


def write(now: datetime, events_dir: Path = EVENTS_DIR) -> list[str]:
    """Writes the sample events made for `now` into `events_dir`; returns the names of the files it changed."""
    rendered = _rendered(build_all(now))
    stale = stale_files(rendered, events_dir)
    for name in stale:
        (events_dir / name).write_text(rendered[name])
    return stale


def main(
    argv: list[str] | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    events_dir: Path = EVENTS_DIR,
) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reclift_local.sample_events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    moment = parser.add_mutually_exclusive_group()
    moment.add_argument("--now", help="ISO time to make the events for (default: the current time)")
    moment.add_argument("--fixed", action="store_true", help="the committed set, made for a fixed moment")
    moment.add_argument("--check", action="store_true", help="fail if events/ is not the committed set")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(_rendered(build_all(FIXED_NOW)), events_dir)
        if stale:
            print(
                f"events/ is not the committed set of sample events: {', '.join(stale)} differ. "
                "Restore it with `python -m reclift_local.sample_events --fixed` (after `make events`, which makes "
                "a fresh set for invoking by hand) and commit it if the builder changed.",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.fixed:
        now = FIXED_NOW
    elif args.now:
        now = datetime.fromisoformat(args.now).astimezone(UTC)
    else:
        now = clock().replace(microsecond=0)
    written = write(now, events_dir)
    total = len(build_all(now))
    print(f"wrote {len(written)} of {total} sample events to {events_dir}, made for {now.isoformat()}")
    if now != FIXED_NOW:
        print(
            "  app-proxy samples pass the timestamp check for 90 s (APP_PROXY_MAX_SKEW_SECONDS), admin session "
            "tokens for 1 minute, webhooks for 48 h, rec ids for 24 h: run make events again when they expire.\n"
            "  The tests need the committed set: python -m reclift_local.sample_events --fixed (make test says so)."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
